"""Erasure domain logic: request parsing, which rows of a table are the person's (from its columns alone), the
bronze/quarantine matches through decryption, erasure digests, and the ingest check with consent grants."""

from __future__ import annotations

import datetime
import hashlib
import hmac

import pytest
from pyspark.sql import functions as F

from identity.erasure import (
    ErasureError,
    ErasureTargets,
    build_erasure_digest,
    build_grant_digests,
    build_person_identifiers,
    build_request_identifiers,
    build_stored_matches,
    erasure_digest,
    oneid_digest,
    parse_request,
    still_erased,
    table_match,
    with_erased_flag,
)
from identity.pii import build_encrypted
from schemas import load_sources

KEY = "unit-test-key"
DIRECT = frozenset({"phone", "email"})


def keyed(value: str) -> str:
    return hmac.new(KEY.encode(), value.encode(), hashlib.sha256).hexdigest()


PHONE, OAID = "+8613812345678", "52efb9ebc32f57e2"
TARGETS = ErasureTargets(
    oneids=frozenset({42}),
    values={"phone": frozenset({keyed(PHONE)}), "oaid": frozenset({OAID})},
    keyed={"phone": frozenset({keyed(PHONE)}), "oaid": frozenset({keyed(OAID)})},
    direct=DIRECT,
)


def test_parse_request() -> None:
    r = parse_request(["phone:138 1234 5678", "OAID: AbC", "oneid:7", "phone:138 1234 5678"], ["9"])
    assert r.identifiers == (("phone", "138 1234 5678"), ("oaid", "AbC")) and r.oneids == (9, 7)
    with pytest.raises(ErasureError, match="unknown ID type 'fax'"):
        parse_request(["fax:1"])
    with pytest.raises(ErasureError, match="#2: not TYPE:VALUE") as err:
        parse_request(["phone:1", "13900001111"])
    assert "13900001111" not in str(err.value)
    with pytest.raises(ErasureError, match="names nobody"):
        parse_request([])
    with pytest.raises(ErasureError, match="a OneID is a number"):
        parse_request(["oneid:x"])


def test_rows_are_found_from_the_columns_without_code_per_table() -> None:
    sources = load_sources()
    members = table_match(
        "silver.members", ["member_id", "phone_hash", "phone_masked", "email_hash"], TARGETS, sources.values()
    )
    assert members is not None and set(members.columns.values()) == {"phone_hash"}
    assert ("m0", keyed(PHONE)) in members.values
    edges = table_match(
        "gold.id_edges", ["src_type", "src_value", "dst_type", "dst_value", "dt"], TARGETS, sources.values()
    )
    assert (
        set(edges.columns.values()) == {"src_value", "dst_value"}
        and "t.`src_type` = 'oaid'" in edges.condition
    )
    tags = table_match("gold.tags", ["oneid", "tag_id", "value"], TARGETS, sources.values())
    assert tags.values == (("m0", "42"),)
    vault = table_match("vault.identifiers", ["id_type", "id_value", "encrypted"], TARGETS, sources.values())
    assert {v for _, v in vault.values} == {keyed(PHONE), keyed(OAID), OAID}
    assert table_match("gold.audit_log", ["event_id", "actor", "rows"], TARGETS, sources.values()) is None
    # No identifier value ever appears in the condition (it is recorded in the Delta commit log).
    for m in (members, edges, tags, vault):
        assert all(v not in m.condition for _, v in m.values)


@pytest.mark.slow
def test_request_identifiers_and_the_person_through_the_map(spark) -> None:
    typed = spark.createDataFrame(
        [("phone", "138-1234-5678"), ("oaid", OAID.upper())], "id_type string, value string"
    )
    named = typed.transform(build_request_identifiers(KEY, DIRECT))
    got = {(r.id_type, r.normalized, r.id_value, r.keyed) for r in named.collect()}
    assert got == {("phone", PHONE, keyed(PHONE), keyed(PHONE)), ("oaid", OAID, OAID, keyed(OAID))}
    day = datetime.date(2026, 11, 1)
    oneid_map = spark.createDataFrame(
        [
            ("phone", keyed(PHONE), 1, day),
            ("member_id", "M1", 1, day),
            ("member_id", "M2", 2, day),
            ("cookie", "c9", 9, day),
        ],
        "id_type string, id_value string, oneid long, dt date",
    )
    person = named.select("id_type", "id_value").transform(
        build_person_identifiers(oneid_map, [9], KEY, DIRECT)
    )
    targets = ErasureTargets.from_rows(person.collect(), DIRECT)
    assert targets.oneids == {1, 9}
    assert targets.values == {"phone": {keyed(PHONE)}, "member_id": {"M1"}, "oaid": {OAID}, "cookie": {"c9"}}
    assert targets.keyed["member_id"] == {keyed("M1")} and targets.normalized("phone") == frozenset()


def test_bronze_and_quarantine_rows_are_found_by_decrypting(spark) -> None:
    sources = load_sources()
    members = sources["crm_members"]
    # Encrypted once and stored, as in bronze (each evaluation of the cipher draws a fresh IV).
    stored = (
        spark.createDataFrame(
            [("M1", "138 1234 5678"), ("M2", "13900000000")], "member_id string, phone string"
        )
        .select("member_id", build_encrypted(F.col("phone"), KEY).alias("phone"))
        .collect()
    )
    bronze = spark.createDataFrame(stored, "member_id string, phone string")
    found = bronze.transform(build_stored_matches(members, TARGETS, KEY, "bronze")).collect()
    assert len(found) == 1 and found[0].column == "phone"
    assert found[0].value in {r.phone for r in bronze.collect()}
    lines = ["M1,张三,138 1234 5678,a@b.cn", "M2,李四,13900000000,c@d.cn"]
    cipher = spark.createDataFrame([(x,) for x in lines], "line string").select(
        build_encrypted(F.col("line"), KEY).alias("_raw")
    )
    quarantine = spark.createDataFrame(cipher.collect(), "_raw string")
    found = quarantine.transform(build_stored_matches(members, TARGETS, KEY, "quarantine")).collect()
    assert len(found) == 1 and found[0].column == "_raw"
    events = sources["events"]
    raw = ['{"event_id": "e1", "oaid": "' + OAID.upper() + '"}', '{"event_id": "e2", "oaid": "ffff"}']
    plain = spark.createDataFrame([(x,) for x in raw], "_raw string")
    found = plain.transform(build_stored_matches(events, TARGETS, KEY, "quarantine")).collect()
    assert [r.value for r in found] == [raw[0]]


def test_erasure_digests_differ_from_the_keyed_hash_and_agree_with_the_engine(spark) -> None:
    digest = erasure_digest(keyed(PHONE), KEY)
    assert digest != keyed(PHONE) and len(digest) == 64
    row = spark.createDataFrame([(keyed(PHONE),)], "k string").select(
        build_erasure_digest(F.col("k"), KEY).alias("d")
    )
    assert row.first().d == digest
    assert oneid_digest(42, KEY) == erasure_digest(keyed("42"), KEY)


def test_erased_rows_are_flagged_until_a_newer_consent_grant(spark) -> None:
    consent = load_sources()["consent"]
    t0 = datetime.datetime(2026, 11, 1, 12)
    erasures = spark.createDataFrame(
        [
            ("phone", erasure_digest(keyed(PHONE), KEY), t0),
            ("member_id", erasure_digest(keyed("M1"), KEY), t0),
        ],
        "id_type string, id_digest string, requested_at timestamp",
    )
    # Checked rows of the consent source: identifiers normalised, the phone still in clear.
    landed = spark.createDataFrame(
        [
            ("r1", "M1", PHONE, "marketing", "opt_out", "2026-10-01 00:00:00"),
            ("r2", None, "+8613900000000", "marketing", "opt_in", "2026-10-01 00:00:00"),
        ],
        "record_id string, member_id string, phone string, purpose string, status string, updated_at string",
    )
    old_grants = landed.transform(build_grant_digests(consent, KEY, form="typed"))
    in_force = {(r.id_type, r.id_digest) for r in still_erased(erasures, old_grants).collect()}
    assert len(in_force) == 2
    erased = {}
    for t, d in in_force:
        erased.setdefault(t, set()).add(d)
    flagged = landed.transform(with_erased_flag(consent, KEY, erased, form="typed"))
    assert [r._erased for r in flagged.orderBy("record_id").collect()] == [True, False]
    grant = spark.createDataFrame(
        [("r3", None, PHONE, "all", "opt_in", "2026-11-02 09:00:00")], landed.schema
    )
    new_grants = grant.transform(build_grant_digests(consent, KEY, form="typed"))
    left = {r.id_type for r in still_erased(erasures, new_grants).collect()}
    assert left == {"member_id"}
