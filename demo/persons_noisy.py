"""Attribute-only person records for probabilistic linkage: two customer exports of one population, with no
shared key, realistic noise and the truth.

``generate_exports`` returns the records and the truth as pandas frames (tests and the benchmark use them
directly); ``write_exports`` lands them as CSV files of the two source contracts in
``demo/linkage_sources/`` (``store_customers`` in Chinese characters, ``web_customers`` mostly in pinyin),
with ``truth/linkage_records.parquet``, for ``cdp ingest`` and ``cdp identity link``. The session demo lake
of the tests does not include them: they change no figure of the main demo.

Noise, per export record: a name typed in pinyin instead of characters (western or Chinese order, any
case), a typo in a name (a homophone character, a letter), day and month swapped, a digit off in a birth
date, missing fields, a phone with a digit off, a person who moved (another city, street and postcode).
Names follow the real skew of Chinese surnames, so 王伟-like collisions happen, which the
term-frequency adjustment is for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

LINKAGE_SOURCES = Path(__file__).resolve().parent / "linkage_sources" / "contracts"
LINKAGE_RULES = LINKAGE_SOURCES.parent / "identity_rules.yaml"
"""Contract folder of the two attribute-only sources (pass it as ``CDP_CONTRACT_PATH``); ``LINKAGE_RULES``
is the identity rules file with the linkage enabled on them."""

SOURCES = ("store_customers", "web_customers")

# Surnames with a realistic skew (the top ones cover about a third of people), with their pinyin.
_SURNAMES = [
    ("王", "wang", 7.1),
    ("李", "li", 7.0),
    ("张", "zhang", 6.7),
    ("刘", "liu", 5.4),
    ("陈", "chen", 4.5),
    ("杨", "yang", 3.1),
    ("黄", "huang", 2.2),
    ("赵", "zhao", 2.0),
    ("吴", "wu", 1.8),
    ("周", "zhou", 1.7),
    ("徐", "xu", 1.3),
    ("孙", "sun", 1.2),
    ("马", "ma", 1.1),
    ("朱", "zhu", 1.1),
    ("胡", "hu", 1.0),
    ("郭", "guo", 0.97),
    ("何", "he", 0.9),
    ("高", "gao", 0.9),
    ("林", "lin", 0.9),
    ("罗", "luo", 0.8),
    ("郑", "zheng", 0.8),
    ("梁", "liang", 0.7),
    ("谢", "xie", 0.6),
    ("宋", "song", 0.5),
    ("唐", "tang", 0.5),
    ("许", "xu", 0.5),
    ("韩", "han", 0.5),
    ("冯", "feng", 0.4),
    ("邓", "deng", 0.4),
    ("曹", "cao", 0.4),
    ("彭", "peng", 0.4),
    ("曾", "zeng", 0.4),
    ("肖", "xiao", 0.4),
    ("田", "tian", 0.3),
    ("董", "dong", 0.3),
    ("袁", "yuan", 0.3),
    ("潘", "pan", 0.3),
    ("于", "yu", 0.3),
    ("蒋", "jiang", 0.3),
    ("蔡", "cai", 0.3),
]
# Given-name characters with pinyin, and a homophone or look-alike typed by mistake.
_GIVEN = [
    ("伟", "wei", "威"),
    ("芳", "fang", "方"),
    ("娜", "na", "那"),
    ("敏", "min", "民"),
    ("静", "jing", "晶"),
    ("丽", "li", "莉"),
    ("强", "qiang", "蔷"),
    ("磊", "lei", "雷"),
    ("军", "jun", "君"),
    ("洋", "yang", "阳"),
    ("勇", "yong", "永"),
    ("艳", "yan", "燕"),
    ("杰", "jie", "洁"),
    ("娟", "juan", "鹃"),
    ("涛", "tao", "韬"),
    ("明", "ming", "铭"),
    ("超", "chao", "朝"),
    ("秀", "xiu", "琇"),
    ("霞", "xia", "侠"),
    ("平", "ping", "萍"),
    ("刚", "gang", "钢"),
    ("桂", "gui", "贵"),
    ("晓", "xiao", "小"),
    ("华", "hua", "花"),
    ("鹏", "peng", "朋"),
    ("辉", "hui", "晖"),
    ("玲", "ling", "琳"),
    ("斌", "bin", "彬"),
    ("宇", "yu", "雨"),
    ("浩", "hao", "昊"),
    ("凯", "kai", "恺"),
    ("健", "jian", "建"),
    ("俊", "jun", "骏"),
    ("帆", "fan", "凡"),
    ("佳", "jia", "嘉"),
    ("欣", "xin", "新"),
    ("婷", "ting", "亭"),
    ("雪", "xue", "薛"),
    ("梅", "mei", "美"),
    ("琴", "qin", "勤"),
    ("云", "yun", "芸"),
    ("峰", "feng", "锋"),
    ("波", "bo", "博"),
    ("丹", "dan", "单"),
    ("宁", "ning", "凝"),
    ("子", "zi", "紫"),
    ("文", "wen", "雯"),
    ("思", "si", "丝"),
    ("雨", "yu", "宇"),
    ("博", "bo", "波"),
]
_CITIES = [
    ("上海", "200"),
    ("北京", "100"),
    ("广州", "510"),
    ("深圳", "518"),
    ("杭州", "310"),
    ("成都", "610"),
    ("武汉", "430"),
    ("南京", "210"),
    ("重庆", "400"),
    ("西安", "710"),
    ("苏州", "215"),
    ("天津", "300"),
    ("长沙", "410"),
    ("郑州", "450"),
    ("青岛", "266"),
    ("厦门", "361"),
]
_STREETS = [
    "人民路",
    "中山路",
    "解放路",
    "建设路",
    "和平路",
    "长江路",
    "新华路",
    "文化路",
    "光明路",
    "胜利路",
    "南京路",
    "北京路",
    "东风路",
    "青年路",
    "花园路",
    "学院路",
]


@dataclass(frozen=True)
class Noise:
    """Shares of export records with each kind of noise (export B is noisier: a web form typed in pinyin)."""

    pinyin: float = 0.0
    name_typo: float = 0.06
    name_missing: float = 0.03
    date_swap: float = 0.05
    date_typo: float = 0.04
    date_missing: float = 0.04
    phone_missing: float = 0.35
    phone_typo: float = 0.04
    moved: float = 0.1
    address_missing: float = 0.1


NOISE = {
    "store_customers": Noise(pinyin=0.05, moved=0.05),
    "web_customers": Noise(pinyin=0.7, name_typo=0.08, phone_missing=0.45, moved=0.08, address_missing=0.12),
}
COVERAGE = {"store_customers": 0.8, "web_customers": 0.7}
"""Share of persons in each export: about 56% of persons are in both (the true pairs to find)."""


def _persons(rng: np.random.Generator, n: int) -> pd.DataFrame:
    weights = np.array([w for _, _, w in _SURNAMES])
    surname = rng.choice(len(_SURNAMES), n, p=weights / weights.sum())
    two = rng.random(n) < 0.6  # two-character given names; one character otherwise (more collisions)
    g1 = rng.integers(0, len(_GIVEN), n)
    g2 = np.where(two, rng.integers(0, len(_GIVEN), n), -1)
    birth = pd.Timestamp("1955-01-01") + pd.to_timedelta(rng.integers(0, 365 * 50, n), unit="D")
    city = rng.integers(0, len(_CITIES), n)
    return pd.DataFrame(
        {
            "person_id": np.arange(n, dtype=np.int64),
            "surname": surname,
            "g1": g1,
            "g2": g2,
            "birth": birth,
            "phone": [f"1{x}" for x in rng.integers(3_000_000_000, 9_999_999_999, n)],
            "city": city,
            "street": rng.integers(0, len(_STREETS), n),
            "number": rng.integers(1, 999, n),
            "postcode_tail": rng.integers(0, 999, n),
        }
    )


def _typo_letter(rng: np.random.Generator, text: str) -> str:
    if len(text) < 2:
        return text
    i = int(rng.integers(0, len(text)))
    kind = rng.integers(0, 3)
    if kind == 0:  # substitution
        return text[:i] + "abcdefghijklmnopqrstuvwxyz"[int(rng.integers(0, 26))] + text[i + 1 :]
    if kind == 1 and i < len(text) - 1:  # transposition
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    return text[:i] + text[i + 1 :]  # deletion


def _name(rng: np.random.Generator, p: pd.Series, noise: Noise) -> str | None:
    if rng.random() < noise.name_missing:
        return None
    han, py, _ = _SURNAMES[p.surname]
    given = [_GIVEN[p.g1]] + ([_GIVEN[p.g2]] if p.g2 >= 0 else [])
    typo = rng.random() < noise.name_typo
    if rng.random() < noise.pinyin:
        given_py = "".join(g[1] for g in given)
        if typo:
            given_py = _typo_letter(rng, given_py)
        surname = py.upper() if rng.random() < 0.3 else py.capitalize()
        if rng.random() < 0.5:
            return f"{given_py.capitalize()} {surname}"
        return f"{surname} {given_py.capitalize()}"
    chars = [g[0] for g in given]
    if typo:
        i = int(rng.integers(0, len(given)))
        chars[i] = given[i][2]
    return han + "".join(chars)


def _birth(rng: np.random.Generator, birth: pd.Timestamp, noise: Noise) -> str | None:
    r = rng.random()
    if r < noise.date_missing:
        return None
    y, m, d = birth.year, birth.month, birth.day
    r = rng.random()
    if r < noise.date_swap and d <= 12 and d != m:
        m, d = d, m
    elif r < noise.date_swap + noise.date_typo:
        d = min(max(d + int(rng.choice([-1, 1])), 1), 28)
    return f"{y:04d}-{m:02d}-{d:02d}"


def generate_exports(persons: int = 1000, seed: int = 11) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two exports of one population.

    Args:
        persons: the population size; the exports hold about 0.8 and 0.7 of it.
        seed: the random seed (the same seed gives the same records).

    Returns:
        ``(records, truth)``: records ``(source, record_key, name, birth_date, phone, city, address,
        postcode)`` as typed (strings, NULL when missing); truth ``(source, record_key, person_id)``.
    """
    rng = np.random.default_rng(seed)
    people = _persons(rng, persons)
    rows = []
    for s, source in enumerate(SOURCES):
        noise = NOISE[source]
        chosen = people[rng.random(persons) < COVERAGE[source]]
        keys = rng.permutation(len(chosen)) + 100_000 * (s + 1)
        for key, p in zip(keys, chosen.itertuples(index=False), strict=True):
            city, street, number, tail = p.city, p.street, p.number, p.postcode_tail
            if rng.random() < noise.moved:
                city, street = int(rng.integers(0, len(_CITIES))), int(rng.integers(0, len(_STREETS)))
                number, tail = int(rng.integers(1, 999)), int(rng.integers(0, 999))
            phone = None if rng.random() < noise.phone_missing else p.phone
            if phone and rng.random() < noise.phone_typo:
                i = int(rng.integers(3, 11))
                phone = phone[:i] + str((int(phone[i]) + 1) % 10) + phone[i + 1 :]
            missing_address = rng.random() < noise.address_missing
            rows.append(
                {
                    "source": source,
                    "record_key": f"{source[:1].upper()}{key:07d}",
                    "name": _name(rng, p, noise),
                    "birth_date": _birth(rng, p.birth, noise),
                    "phone": phone,
                    "city": _CITIES[city][0],
                    "address": None if missing_address else f"{_STREETS[street]}{number}号",
                    "postcode": None if missing_address else f"{_CITIES[city][1]}{tail:03d}",
                    "person_id": int(p.person_id),
                }
            )
    frame = pd.DataFrame(rows)
    truth = frame[["source", "record_key", "person_id"]].copy()
    return frame.drop(columns=["person_id"]), truth


def write_exports(
    landing_root: str | Path, truth_root: str | Path, dt: str, persons: int = 1000, seed: int = 11
) -> dict[str, Path]:
    """Land the two exports as CSV for ``cdp ingest`` (``<landing>/<source>/dt=<dt>/<source>.csv``) and
    write the truth to ``<truth_root>/linkage_records.parquet`` (record -> person) and
    ``<truth_root>/linkage_pairs.parquet`` (``true_pairs``).

    Returns:
        The files written, by source (and ``truth``).
    """
    records, truth = generate_exports(persons, seed)
    out: dict[str, Path] = {}
    for source in SOURCES:
        folder = Path(landing_root) / source / f"dt={dt}"
        folder.mkdir(parents=True, exist_ok=True)
        part = records[records["source"] == source].drop(columns=["source"])
        part = part.rename(columns={"record_key": "customer_no"}).assign(updated_at=f"{dt} 00:00:00")
        path = folder / f"{source}.csv"
        part.to_csv(path, index=False)
        out[source] = path
    Path(truth_root).mkdir(parents=True, exist_ok=True)
    out["truth"] = Path(truth_root) / "linkage_records.parquet"
    truth.to_parquet(out["truth"], index=False)
    out["pairs"] = Path(truth_root) / "linkage_pairs.parquet"
    true_pairs(records, truth).to_parquet(out["pairs"], index=False)
    return out


def true_pairs(records: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Every pair of records of one person, ``(uid_l, uid_r, shares_attribute)`` with ``uid`` as in
    ``identity.linkage`` (``<source>\\u001f<record_key>``); ``shares_attribute``: at least one attribute
    has the same normalised value on both (names compared in pinyin)."""
    from identity.linkage import NORMALIZE_BY_KIND

    kinds = {
        "name": "name",
        "birth_date": "date",
        "phone": "digits",
        "city": "text",
        "address": "text",
        "postcode": "digits",
    }
    frame = records.merge(truth, on=["source", "record_key"])
    frame["uid"] = frame["source"] + "\u001f" + frame["record_key"]
    norm = {a: [NORMALIZE_BY_KIND[k](v) for v in frame[a].astype(object)] for a, k in kinds.items()}
    values = {uid: {a: norm[a][i] for a in kinds} for i, uid in enumerate(frame["uid"])}
    rows = []
    for _, group in frame.groupby("person_id")["uid"]:
        members = sorted(group)
        for i, a in enumerate(members):
            for b in members[i + 1 :]:
                shares = any(values[a][k] is not None and values[a][k] == values[b][k] for k in kinds)
                rows.append((a, b, shares))
    return pd.DataFrame(rows, columns=["uid_l", "uid_r", "shares_attribute"])
