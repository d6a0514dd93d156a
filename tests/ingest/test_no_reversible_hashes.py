"""The curious insider's attack on the demo lake: hash every true phone and email the way ad platforms do
(md5 / SHA-256 of the national number, of E.164, of the digits with country code; md5 / SHA-256 of the email)
and look for those digests in every table an analyst can read. A phone has ~10^4 candidates per mask, so an
unkeyed digest anywhere beside a mask gives the number back. Only ``vault.identifiers`` holds the values,
encrypted; exports compute the platform hashes from it."""

from __future__ import annotations

import hashlib
import hmac
import re

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from cdp.lake import Lake

pytestmark = pytest.mark.slow

_HEX_RUN = r"[0-9a-fA-F]{32,}"


def _digests(value: str, id_type: str) -> set[str]:
    """Every unkeyed digest an attacker would try for one canonical value."""
    forms = {value}
    if id_type == "phone":
        digits = value.lstrip("+")
        forms |= {digits, digits[2:] if value.startswith("+86") else digits}
    out = set()
    for form in forms:
        raw = form.encode("utf-8")
        out |= {hashlib.md5(raw).hexdigest(), hashlib.sha256(raw).hexdigest(), hashlib.sha1(raw).hexdigest()}
    return out


@pytest.fixture(scope="module")
def truth(demo_lake) -> pd.DataFrame:
    ids = pd.read_parquet(f"{demo_lake.settings.truth_root}/identifiers.parquet")
    return ids[ids["id_type"].isin(["phone", "email"])]


@pytest.fixture(scope="module")
def candidates(truth) -> set[str]:
    sample = pd.concat([g.sample(min(len(g), 400), random_state=1) for _, g in truth.groupby("id_type")])
    found: set[str] = set()
    for row in sample.itertuples():
        found |= _digests(row.id_value, row.id_type)
    return found


def _strings(column: pa.ChunkedArray) -> pa.ChunkedArray | None:
    """The column's values as text, nested values flattened; None for columns that cannot hold text."""
    t = column.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return column
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _strings(pc.list_flatten(column))
    if pa.types.is_map(t):
        return _strings(pc.list_flatten(column).combine_chunks().field(1))
    if pa.types.is_struct(t):
        fields = [
            _strings(pa.chunked_array([c.field(i) for c in column.chunks], t.field(i).type))
            for i in range(t.num_fields)
        ]
        fields = [f for f in fields if f is not None]
        return pa.chunked_array([c for f in fields for c in f.chunks], pa.string()) if fields else None
    return None


def _leaks(lake: Lake, table: str, digests: set[str]) -> list[str]:
    """The columns of ``table`` holding one of ``digests``, alone or inside a longer text."""
    data = lake.to_arrow(table)
    leaks = []
    for name in data.column_names:
        values = _strings(data.column(name))
        if values is None or len(values) == 0:
            continue
        hexy = values.filter(pc.fill_null(pc.match_substring_regex(values, _HEX_RUN), False)).to_pylist()
        tokens = {t.lower() for v in set(hexy) for t in re.findall(_HEX_RUN, v)}
        # A digest may sit inside a longer hex run (a keyed hash never equals one by chance).
        if tokens & digests or any(d in t for t in tokens if len(t) > 64 for d in digests):
            leaks.append(f"{table}.{name}")
    return leaks


def test_no_table_an_analyst_can_read_holds_an_unkeyed_digest_of_a_phone_or_email(
    spark, demo_lake, candidates
) -> None:
    lake = Lake(spark, demo_lake.settings.lake_root)
    readable = [t for t in lake.tables() if not t.startswith("vault.")]
    assert {"silver.members", "silver.orders", "silver.consent", "gold.oneid_map"} <= set(readable)
    leaks = [leak for table in readable for leak in _leaks(lake, table, candidates)]
    assert not leaks, f"unkeyed phone/email digests an analyst can reverse: {leaks}"


def test_the_attack_would_find_digests_if_there_were_any(
    spark, demo_lake, truth, candidates, tmp_path
) -> None:
    """The scan itself works: a table holding md5 of true phones is caught."""
    phone = truth[truth["id_type"] == "phone"]["id_value"].iloc[0]
    planted = hashlib.md5(phone[3:].encode()).hexdigest()
    lake = Lake(spark, tmp_path / "lake")
    lake.append(
        "silver.planted", spark.createDataFrame([(planted, f'{{"x": "{planted}"}}')], "a string, b string")
    )
    assert _leaks(lake, "silver.planted", candidates | {planted}) == ["silver.planted.a", "silver.planted.b"]


def test_the_vault_holds_every_phone_and_email_encrypted_under_the_oneid_map_key(
    spark, demo_lake, truth
) -> None:
    from pyspark.sql import functions as F

    from identity.pii import build_decrypted, build_keyed_hash

    lake = Lake(spark, demo_lake.settings.lake_root)
    key = demo_lake.settings.require_pii_key()
    vault = lake.read("vault.identifiers")
    assert set(vault.columns) >= {"id_type", "id_value", "encrypted", "first_dt"}
    rows = vault.select(
        "id_type",
        "id_value",
        "encrypted",
        build_decrypted(F.col("encrypted"), key).alias("plain"),
        build_keyed_hash(build_decrypted(F.col("encrypted"), key), key).alias("rehashed"),
    ).toPandas()
    assert len(rows) == len(rows.drop_duplicates(["id_type", "id_value"])), (
        "one row per (id_type, keyed hash)"
    )
    assert not (rows["encrypted"] == rows["plain"]).any()
    assert not rows["encrypted"].str.contains("@").any()  # base64 text, never an address
    assert (rows["rehashed"] == rows["id_value"]).all()
    # Every phone and email the OneID map knows can be exported: its vault row is there.
    mapped = lake.read("gold.oneid_map").where(F.col("id_type").isin("phone", "email"))
    missing = (
        mapped.select("id_type", "id_value").distinct().join(vault, ["id_type", "id_value"], "left_anti")
    )
    assert missing.count() == 0
    true_values = set(truth["id_value"])
    assert len(set(rows["plain"]) & true_values) > 0.9 * len(set(rows["plain"]))


def test_exports_compute_the_digests_platforms_expect_from_the_vault(spark, demo_lake, truth) -> None:
    from jobs.audiences.context import AudienceContext

    key = demo_lake.settings.require_pii_key()
    lake = Lake(spark, demo_lake.settings.lake_root)
    keyed = {hmac.new(key.encode(), p.encode(), hashlib.sha256).hexdigest(): p for p in truth["id_value"]}
    mapped = lake.read("gold.oneid_map").where("id_type IN ('phone', 'email')").select("id_type", "id_value")
    ids = mapped.distinct().limit(400).toPandas()
    ids = ids[ids["id_value"].isin(keyed)]
    assert len(ids) > 100
    add = AudienceContext(spark, demo_lake.settings, lake).with_platform_hashes()
    got = spark.createDataFrame(
        list(ids.itertuples(index=False)), "id_type string, id_value string"
    ).transform(add)
    for r in got.collect():
        value = keyed[r.id_value]
        if r.id_type == "phone":
            assert (
                (r.md5, r.sha256_e164, r.sha256_cc)
                == (
                    hashlib.md5(value[3:].encode()).hexdigest(),  # Tencent / Oceanengine: the 11 digits
                    hashlib.sha256(value.encode()).hexdigest(),  # Google: E.164
                    hashlib.sha256(value[1:].encode()).hexdigest(),  # Meta: digits with country code
                )
            )
            assert r.masked == f"{value[3:6]}****{value[-4:]}"
        else:
            assert r.sha256 == hashlib.sha256(value.encode()).hexdigest() and "***@" in r.masked
