"""Pack lines per destination checked line by line against the golden files (written from the platforms'
documented rules with hashlib, see golden/make_golden.py), skipped identifiers counted by reason, file
splitting, zips and manifest checksums. Phones and emails reach the export as silver holds them (keyed hash
and mask, no digest) and as the vault holds them (encrypted); the platform hashes are computed at export."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import zipfile
from pathlib import Path

import pytest

from audiences import DestinationError, get_destination
from audiences.export import build_member_identifiers, build_pack_lines, validate_id_types
from audiences.packs import Manifest, read_pack_lines, split_lines, write_pack
from audiences.sources import build_masks, with_platform_hashes
from ingest.protect import protect_direct_pii, vault_identifiers
from schemas import load_source

GOLDEN = Path(__file__).resolve().parent / "golden"
KEY = "export-test-key"
PHONE_DIGEST = "e10adc3949ba59abbe56e057f20f883e"  # person 3's phone arrived as an md5
EMAIL_DIGEST = hashlib.sha256(b"someone@example.com").hexdigest()
IMEI_SHA256 = hashlib.sha256(b"860000000000001").hexdigest()
PEOPLE = {
    # oneid: (phone, email, imei, idfa, oaid, openid), as silver / gold.oneid_map hold them (normalised)
    "1": ("+8613812345678", "zhang.wei@qq.com", "861234567890123", "6D92078A-8246-4BA4-AE5B-76104861E7DC",
          "a1b2c3d4-e5f6-4711-8899-aabbccddeeff", "oX3kqAbCdEfGhIjKlMnOpQrStUv1"),
    "2": ("+14155552671", "jo@example.com", "a000002c9060f7", "FF1999CD-7177-4937-A474-74937A102630",
          "f0e1d2c3-b4a5-4697-8877-665544332211", None),
    "3": (PHONE_DIGEST, EMAIL_DIGEST, IMEI_SHA256, "5d41402abc4b2a76b9719d911017c592",
          "0123456789abcdef0123456789abcdef", None),
}  # fmt: skip
TYPES = ("phone", "email", "imei", "idfa", "oaid", "wechat_openid")


def keyed(value: str) -> str:
    return hmac.new(KEY.encode(), value.encode(), hashlib.sha256).hexdigest()


@pytest.fixture(scope="module")
def identifiers(spark):
    contract = load_source("crm_members")
    normalised = spark.createDataFrame(
        [(f"M{o}", "张伟", p[0], p[1]) for o, p in PEOPLE.items()],
        "member_id string, name string, phone string, email string",
    )
    silver = normalised.transform(protect_direct_pii(contract, KEY))
    assert not [c for c in silver.columns if "md5" in c or "sha256" in c]
    vault = normalised.transform(vault_identifiers(contract, KEY, datetime.date(2026, 11, 1)))
    hashes = with_platform_hashes(vault, silver.transform(build_masks(contract)), KEY)
    rows = []
    for oneid, values in PEOPLE.items():
        for id_type, value in zip(TYPES, values, strict=True):
            if value is not None:
                rows.append((id_type, keyed(value) if id_type in ("phone", "email") else value, int(oneid)))
    oneid_map = spark.createDataFrame(rows, "id_type string, id_value string, oneid bigint")
    members = spark.createDataFrame([(o,) for o in PEOPLE], "oneid string")
    got = members.transform(build_member_identifiers(oneid_map, hashes, list(TYPES)))
    frame = spark.createDataFrame(got.collect(), got.schema)  # decrypted and hashed once for the module
    return frame.toPandas(), frame


def _lines(identifiers, destination: str, types: list[str] | None = None):
    _, identifiers_frame = identifiers
    dest = get_destination(destination)
    types = validate_id_types(dest, types)
    frame = identifiers_frame.transform(build_pack_lines(dest, types)).toPandas()
    return dest, types, frame


def _write(tmp_path: Path, dest, frame, **kw) -> Manifest:
    by_type = {
        (t, p): sorted(set(g["line"].dropna())) for (t, p), g in frame.groupby(["id_type", "platform_type"])
    }
    manifest = Manifest("vip", "VIP", 1, "2026-11-01", dest.name, dest.label, {"rule": {}}, {}, 3, 0, 0, 0, 1)
    return write_pack(tmp_path / dest.name, dest, by_type, manifest, **kw)


@pytest.mark.parametrize("destination", ["tencent", "oceanengine", "google", "meta", "csv"])
def test_pack_files_match_the_golden_files_line_by_line(identifiers, tmp_path, destination) -> None:
    dest, _, frame = _lines(identifiers, destination)
    manifest = _write(tmp_path, dest, frame)
    got = read_pack_lines(tmp_path / destination)
    golden = {
        p.name: p.read_text(encoding="utf-8").splitlines() for p in sorted((GOLDEN / destination).iterdir())
    }
    renamed = {
        name.split(f"vip_v1_{destination}_")[1].replace("_001.", "."): lines for name, lines in got.items()
    }
    assert renamed.keys() == golden.keys()
    for name, lines in golden.items():
        assert renamed[name] == lines, name
    saved = json.loads((tmp_path / destination / "manifest.json").read_text(encoding="utf-8"))
    assert saved["files"] == [f.__dict__ for f in manifest.files]
    for f in manifest.files:
        blob = (tmp_path / destination / f.zip).read_bytes()
        assert hashlib.sha256(blob).hexdigest() == f.zip_sha256
        with zipfile.ZipFile(tmp_path / destination / f.zip) as zf:
            assert hashlib.sha256(zf.read(f.name)).hexdigest() == f.sha256


def test_bad_identifiers_are_skipped_with_a_reason(identifiers) -> None:
    _, _, frame = _lines(identifiers, "tencent")
    skipped = frame[frame["line"].isna()]
    assert sorted(zip(skipped["oneid"], skipped["id_type"], skipped["reason"], strict=True)) == [
        ("2", "phone", "not_cn_mobile"),
        ("3", "imei", "hashed_with_other_algorithm"),
        ("3", "phone", "arrived_hashed"),
    ]
    _, _, frame = _lines(identifiers, "google")
    skipped = frame[frame["line"].isna()]
    assert sorted(zip(skipped["oneid"], skipped["id_type"], skipped["reason"], strict=True)) == [
        ("3", "email", "arrived_hashed"),
        ("3", "idfa", "arrived_hashed"),
        ("3", "phone", "arrived_hashed"),
    ]


def test_files_are_split_to_the_size_limit(identifiers, tmp_path) -> None:
    dest, _, frame = _lines(identifiers, "tencent", ["oaid"])
    manifest = _write(tmp_path, dest, frame, max_file_bytes=70)  # two 33-byte lines per file
    assert [(f.name, f.lines) for f in manifest.files] == [
        ("vip_v1_tencent_hash_oaid_001.txt", 2),
        ("vip_v1_tencent_hash_oaid_002.txt", 1),
    ]
    got = read_pack_lines(tmp_path / "tencent")
    assert [line for lines in got.values() for line in lines] == (
        GOLDEN / "tencent" / "hash_oaid.txt"
    ).read_text().splitlines()
    assert split_lines(["a", "b", "c"], 6, header="h") == [["a", "b"], ["c"]]


def test_unknown_destination_and_id_type() -> None:
    with pytest.raises(DestinationError, match="unknown destination 'tiktok'"):
        get_destination("tiktok")
    with pytest.raises(DestinationError, match="google does not accept ID type"):
        validate_id_types(get_destination("google"), ["imei"])


def test_phone_forms_come_from_the_vault_not_from_raw_numbers(identifiers) -> None:
    pdf, _ = identifiers
    assert not pdf["id_value"].str.startswith("+").any()  # the keyed hash, never the number
    one = pdf[(pdf["oneid"] == "1") & (pdf["id_type"] == "phone")].iloc[0]
    assert one["md5"] == hashlib.md5(b"13812345678").hexdigest()  # what Tencent and Oceanengine match on
    assert one["sha256_e164"] == hashlib.sha256(b"+8613812345678").hexdigest()
    assert one["sha256_cc"] == hashlib.sha256(b"8613812345678").hexdigest()
    assert one["masked"] == "138****5678"
    email = pdf[(pdf["oneid"] == "1") & (pdf["id_type"] == "email")].iloc[0]
    assert email["sha256"] == hashlib.sha256(b"zhang.wei@qq.com").hexdigest()


def test_the_vault_holds_encrypted_values_under_the_keyed_hash(spark) -> None:
    contract = load_source("crm_members")
    rows = spark.createDataFrame(
        [("M1", "+8613812345678", "zhang.wei@qq.com"), ("M2", "+8613812345678", None)],
        "member_id string, phone string, email string",
    )
    day = datetime.date(2026, 11, 1)
    vault = rows.transform(vault_identifiers(contract, KEY, day)).toPandas()
    assert sorted(zip(vault["id_type"], vault["id_value"], strict=True)) == sorted(
        [("email", keyed("zhang.wei@qq.com")), ("phone", keyed("+8613812345678"))]
    )  # one row per identifier, keyed like silver and gold.oneid_map
    assert not vault["encrypted"].isin(["+8613812345678", "zhang.wei@qq.com"]).any()
    assert set(vault["source"]) == {"crm_members"} and set(vault["first_dt"]) == {day}
    # Identifiers the vault already holds are not encrypted again: a rerun adds nothing.
    known = spark.createDataFrame(vault[["id_type", "id_value"]])
    assert rows.transform(vault_identifiers(contract, KEY, day, known)).count() == 0
    # Without a vault (an older lake) phone lines are skipped, never computed from anything else.
    members = spark.createDataFrame([("1",)], "oneid string")
    oneid_map = spark.createDataFrame(
        [("phone", keyed("+8613812345678"), 1)], "id_type string, id_value string, oneid bigint"
    )
    got = members.transform(build_member_identifiers(oneid_map, None, ["phone"]))
    lines = got.transform(build_pack_lines(get_destination("tencent"), ["phone"])).collect()
    assert [(r.line, r.reason) for r in lines] == [(None, "no_platform_hash")]
