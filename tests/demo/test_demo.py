"""Tests of the demo population generator (small populations, a few seconds each)."""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from demo import GenerationSummary, generate

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "sources"
SOURCES = (
    "crm_members",
    "orders",
    "events",
    "consent",
    "ad_delivery",
    "kol_engagement",
    "dmp_segments",
    "demographics",
)
EXTENSIONS = {
    "crm_members": "csv",
    "orders": "csv.gz",
    "events": "jsonl.gz",
    "consent": "csv",
    "ad_delivery": "parquet",
    "kol_engagement": "jsonl",
    "dmp_segments": "csv",
    "demographics": "csv.gz",
}
START = date(2026, 11, 1)
SMALL = {"persons": 2_000, "start": START, "days": 2, "history_days": 60}
TIMESTAMP = "%Y-%m-%d %H:%M:%S"
CANONICAL = {
    "phone": r"\+861[3-9]\d{9}",
    "email": r"[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}",
    "imei": r"\d{15}|[0-9a-f]{14}",
    "idfa": r"[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}",
    "oaid": r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{16}|[0-9a-f]{64}",
    "android_id": r"[0-9a-f]{16}",
    "wechat_openid": r"o[A-Za-z0-9_-]{27}",
    "wechat_unionid": r"o[A-Za-z0-9_-]{27}",
    "member_id": r"M\d{9}",
    "cookie": r"[0-9a-f]{32}",
}
JUNK = {
    "13800138000",
    "+8613800138000",
    "12345678901",
    "000000000000000",
    "unknown",
    "null",
    "",
    "00000000-0000-0000-0000-000000000000",
    "9774d56d682e549c",
}


@functools.cache
def contract(source: str) -> dict:
    """The YAML contract of a source."""
    return yaml.safe_load((SCHEMAS / f"{source}.yaml").read_text(encoding="utf-8"))


def columns(source: str) -> list[str]:
    """Contract column names in order."""
    return [c["name"] for c in contract(source)["columns"]]


def run(root: Path, **overrides: object) -> tuple[GenerationSummary, Path, Path]:
    """Generate a small demo under ``root``."""
    landing, truth = root / "landing", root / "truth"
    summary = generate(landing, truth, **{**SMALL, **overrides})
    return summary, landing, truth


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[GenerationSummary, Path, Path]:
    """The small demo generated once with the default bad rows, for the tests that only read it."""
    return run(tmp_path_factory.mktemp("small"))


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[GenerationSummary, Path, Path]:
    """The small demo generated once without bad rows, for the tests that only read it."""
    return run(tmp_path_factory.mktemp("clean"), bad_row_rate=0)


def digests(root: Path) -> dict[str, str]:
    """SHA-256 of every file below ``root`` by relative path."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def read_lines(path: Path) -> list[str]:
    """Lines of a (possibly gzipped) JSON-lines file."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return handle.read().splitlines()


def read_source(landing: Path, source: str, day: date | None = None) -> tuple[pd.DataFrame, int]:
    """All rows of a source (one day or all days) as strings/typed frame, plus malformed JSON lines."""
    pattern = f"dt={day.isoformat()}/*" if day else "dt=*/*"
    frames, malformed = [], 0
    for path in sorted((landing / source).glob(pattern)):
        if source == "ad_delivery":
            frames.append(pd.read_parquet(path))
        elif EXTENSIONS[source].startswith("jsonl"):
            records = []
            for line in read_lines(path):
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    malformed += 1
            expected = columns(source)
            assert all(list(r) == expected for r in records), f"{source}: JSON keys differ from contract"
            frames.append(pd.DataFrame.from_records(records, columns=columns(source)))
        else:
            frames.append(pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""]))
    return pd.concat(frames, ignore_index=True), malformed


def problems(frame: pd.DataFrame, source: str) -> dict[str, int]:
    """Count rows violating the contract, by bad-row kind."""
    spec = contract(source)
    required = [c["name"] for c in spec["columns"] if c.get("required")]
    numeric = [
        c["name"] for c in spec["columns"] if str(c["type"]).startswith(("int", "long", "double", "decimal"))
    ]
    missing = frame[required].isna().any(axis=1)
    bad_number = pd.Series(False, index=frame.index)
    if source != "ad_delivery":
        for name in numeric:
            values = frame[name]
            bad_number |= values.notna() & pd.to_numeric(values, errors="coerce").isna()
    bad_time = pd.Series(False, index=frame.index)
    for column in spec["columns"]:
        if column["type"] not in ("timestamp", "date") or source == "ad_delivery":
            continue
        values = frame[column["name"]]
        fmt = "%Y-%m-%d" if column["type"] == "date" else TIMESTAMP
        parsed = pd.to_datetime(values, format=fmt, errors="coerce")
        broken = values.notna() & parsed.isna()
        if column["name"] == spec["event_time"]:
            broken |= values.notna() & ((parsed.dt.year < 2000) | (parsed.dt.year > 2030))
        bad_time |= broken
    if source == "ad_delivery":
        when = frame[spec["event_time"]]
        bad_time = when.notna() & ((when.dt.year < 2000) | (when.dt.year > 2030))
    return {
        "missing_required": int(missing.sum()),
        "bad_number": int(bad_number.sum()),
        "bad_timestamp": int(bad_time.sum()),
    }


def test_same_seed_gives_identical_bytes_and_other_seed_differs(tmp_path: Path) -> None:
    first, landing_a, truth_a = run(tmp_path / "a", seed=7)
    _, landing_b, truth_b = run(tmp_path / "b", seed=7)
    _, landing_c, _ = run(tmp_path / "c", seed=8)
    same_a, same_b = digests(landing_a), digests(landing_b)
    assert same_a == same_b and len(same_a) == len(first.files)
    assert digests(truth_a) == digests(truth_b)
    other = digests(landing_c)
    differing = {path.split("/")[0] for path in same_a if other.get(path) != same_a[path]}
    assert differing == set(SOURCES)


def test_layout_and_columns_match_contracts(small) -> None:
    summary, landing, _ = small
    days = [START, START + timedelta(days=1)]
    assert summary.dates == days and summary.persons == SMALL["persons"]
    assert set(summary.rows) == set(SOURCES)
    for source in SOURCES:
        for day in days:
            parts = sorted((landing / source / f"dt={day.isoformat()}").iterdir())
            assert [p.name for p in parts] == [f"{source}-{day.isoformat()}-000.{EXTENSIONS[source]}"]
            path = parts[0]
            if source == "ad_delivery":
                schema = pq.read_schema(path)
                assert schema.names == columns(source)
                types = {c["name"]: c["type"] for c in contract(source)["columns"]}
                for field in schema:
                    expected = {"string": "string", "timestamp": "timestamp[us]", "double": "double"}[
                        types[field.name]
                    ]
                    assert str(field.type) == expected, field.name
            elif EXTENSIONS[source].startswith("jsonl"):
                first = json.loads(read_lines(path)[0])
                assert list(first) == columns(source)
            else:
                opener = gzip.open if path.suffix == ".gz" else open
                with opener(path, "rt", encoding="utf-8") as handle:
                    assert handle.readline().rstrip("\n").split(",") == columns(source)
    files = {p for p in landing.rglob("*") if p.is_file()}
    assert files == set(summary.files)


def test_bad_rows_are_counted_exactly(tmp_path: Path) -> None:
    summary, landing, truth = run(tmp_path, bad_row_rate=0.01)
    counted = json.loads((truth / "bad_rows.json").read_text())
    assert set(counted) == set(SOURCES)
    assert sum(sum(kinds.values()) for kinds in counted.values()) > 100
    for source in SOURCES:
        frame, malformed = read_source(landing, source)
        assert len(frame) + malformed == summary.rows[source]
        found = problems(frame, source)
        expected = {kind: counted[source].get(kind, 0) for kind in found}
        assert found == expected, source
        assert malformed == counted[source].get("malformed_json", 0)
    for source in ("events", "ad_delivery", "kol_engagement", "crm_members"):
        assert counted[source]["missing_required"] > 0 and counted[source]["bad_timestamp"] > 0, source
    assert counted["events"]["malformed_json"] > 0 and counted["crm_members"]["bad_number"] > 0


def test_no_bad_rows_when_disabled(clean) -> None:
    _, landing, truth = clean
    counted = json.loads((truth / "bad_rows.json").read_text())
    assert all(n == 0 for kinds in counted.values() for n in kinds.values())
    for source in SOURCES:
        frame, malformed = read_source(landing, source)
        assert malformed == 0 and not any(problems(frame, source).values()), source


def test_truth_is_canonical_and_free_of_junk(small) -> None:
    _, _, truth = small
    ids = pd.read_parquet(truth / "identifiers.parquet")
    assert list(ids.columns) == ["id_type", "id_value", "person_id", "shared"]
    assert set(ids["id_type"]) == set(CANONICAL)
    for id_type, pattern in CANONICAL.items():
        values = ids.loc[ids["id_type"] == id_type, "id_value"]
        bad = values[~values.str.fullmatch(pattern)]
        assert bad.empty, (id_type, bad.head().tolist())
    assert not set(ids["id_value"]) & JUNK
    assert not ids.duplicated(["id_type", "id_value", "person_id"]).any()
    exclusive = ids[~ids["shared"]]
    assert not exclusive.duplicated(["id_type", "id_value"]).any()

    persons = pd.read_parquet(truth / "persons.parquet")
    assert len(persons) == SMALL["persons"] and persons["person_id"].is_unique
    for name in ("seg_premium_skincare", "seg_young_trendsetter", "seg_mom_baby", "is_member"):
        assert 0.03 < persons[name].mean() < 0.8, name
    assert 0.5 < persons["is_member"].mean() < 0.7
    assert persons["churned_at"].notna().any() and persons["churned_at"].isna().any()
    future = pd.read_parquet(truth / "future_purchases.parquet")
    assert len(future) == len(persons) and (future["purchases"] > 0).mean() > 0.05


def test_identity_noise_is_present(small) -> None:
    _, landing, truth = small
    ids = pd.read_parquet(truth / "identifiers.parquet")
    shared = ids[ids["shared"]]
    assert shared.groupby(["id_type", "id_value"])["person_id"].nunique().gt(1).all()
    per_person = ids.groupby(["person_id", "id_type"]).size().unstack(fill_value=0)
    assert (per_person["phone"] == 2).sum() > 20
    assert (per_person["oaid"] >= 2).sum() > 20 or (per_person["android_id"] >= 2).sum() > 20

    events, _ = read_source(landing, "events")
    owners = ids[ids["id_type"] == "oaid"].drop_duplicates("id_value").set_index("id_value")["shared"]
    on_shared = events[events["oaid"].map(owners).eq(True)]
    assert on_shared.groupby("oaid")["member_id"].nunique().gt(1).any()

    ads, _ = read_source(landing, "ad_delivery")
    junk_share = (
        ads["idfa"].eq("00000000-0000-0000-0000-000000000000")
        | ads["oaid"].eq("00000000-0000-0000-0000-000000000000")
    ).mean()
    assert 0.02 < junk_share < 0.12
    assert (ads["idfa"].str.fullmatch(CANONICAL["idfa"].lower())).any()

    crm, _ = read_source(landing, "crm_members")
    orders, _ = read_source(landing, "orders")
    phones = pd.concat([crm["phone"], orders["phone"]]).dropna()
    assert phones.isin(["13800138000", "12345678901"]).any()
    for pattern in (
        r"\d{3} \d{4} \d{4}",
        r"\d{3}-\d{4}-\d{4}",
        r"\+86 1\d{10}",
        r"0086\d{11}",
        r"\+86-\d{11}",
    ):
        assert phones.str.fullmatch(pattern).any(), pattern
    emails = crm["email"].dropna()
    assert emails.str.contains(r"[A-Z]").any() and emails.isin(["unknown", "null"]).any()

    # Every real raw phone / member id resolves to the truth after normalisation.
    canonical = "+86" + phones[~phones.isin(JUNK)].str.replace(r"\D", "", regex=True).str[-11:]
    assert canonical.isin(set(ids.loc[ids["id_type"] == "phone", "id_value"])).all()
    members = pd.concat([orders["member_id"], events["member_id"]]).dropna().str.upper()
    assert members.isin(set(ids.loc[ids["id_type"] == "member_id", "id_value"])).all()


def test_first_day_carries_history(clean) -> None:
    summary, landing, _ = clean
    day1, day2 = summary.dates
    orders1 = pd.to_datetime(read_source(landing, "orders", day1)[0]["order_time"], format=TIMESTAMP)
    orders2 = pd.to_datetime(read_source(landing, "orders", day2)[0]["order_time"], format=TIMESTAMP)
    assert orders1.min() < pd.Timestamp(day1 - timedelta(days=50)) and orders1.max() < pd.Timestamp(day2)
    assert (orders2.dt.date == day2).all()
    for source in ("events", "kol_engagement"):
        first = pd.to_datetime(read_source(landing, source, day1)[0]["event_time"], format=TIMESTAMP)
        later = pd.to_datetime(read_source(landing, source, day2)[0]["event_time"], format=TIMESTAMP)
        assert first.min() < pd.Timestamp(day1 - timedelta(days=28)) and (later.dt.date == day2).all()
        assert len(first) > 20 * len(later)
    crm1, crm2 = read_source(landing, "crm_members", day1)[0], read_source(landing, "crm_members", day2)[0]
    assert crm1["member_id"].is_unique and len(crm2) < 0.05 * len(crm1)
    for source in ("dmp_segments", "demographics"):
        full, refresh = read_source(landing, source, day1)[0], read_source(landing, source, day2)[0]
        assert 0 < len(refresh) < 0.06 * len(full)
        assert (refresh["snapshot_date"] == day2.isoformat()).all()


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate(tmp_path / "l", tmp_path / "t", persons=0)
