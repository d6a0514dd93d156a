"""Seed lists on small inline maps: plain values normalised like at ingest (phones and emails to the keyed
hash the map holds), digests matched through the platform hashes or the hashed device ids, junk counted as
invalid, valid unknown values as unmatched, and a value matched one way keeping only its matches."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from audiences.errors import SeedListError
from audiences.seeds import SEED_ID_TYPES, build_seed_matches, validate_seed_id_type
from cdp.testing import assert_df_equal

KEY = "seeds-test-key"
MAP_DDL = "id_type string, id_value string, oneid bigint"
MATCHES_DDL = "value string, status string, oneid string"
HASHES_DDL = (
    "id_type string, id_value string, md5 string, sha256 string, sha256_e164 string, sha256_cc string, "
    "masked string"
)
EMAIL = "zhang.wei@qq.com"
IMEI = "861234567890123"


def keyed(value: str) -> str:
    return hmac.new(KEY.encode(), value.encode(), hashlib.sha256).hexdigest()


def md5(value: str) -> str:
    return hashlib.md5(value.encode()).hexdigest()


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def seeds(spark, values: list[str]):
    return spark.createDataFrame([(v,) for v in values], "value string")


def test_validate_seed_id_type_names_the_accepted_types() -> None:
    assert validate_seed_id_type("imei") == "imei"
    assert {"phone", "email", "imei", "idfa", "oaid", "member_id"} <= set(SEED_ID_TYPES)
    with pytest.raises(SeedListError, match=r"unknown ID type 'mobile' for a seed list; use one of phone, "):
        validate_seed_id_type("mobile")


def test_member_ids_are_normalised_and_sorted_into_matched_unmatched_invalid(spark) -> None:
    oneid_map = spark.createDataFrame([("member_id", "M001", 1), ("member_id", "M002", 2)], MAP_DDL)
    values = [" m001 ", "M001", "M001", "M999", "x", "M002"]
    got = seeds(spark, values).transform(build_seed_matches("member_id", oneid_map, None, KEY))
    want = spark.createDataFrame(
        [
            (" m001 ", "matched", "1"),
            ("M001", "matched", "1"),
            ("M002", "matched", "2"),
            ("M999", "unmatched", None),
            ("x", "invalid", None),
        ],
        MATCHES_DDL,
    )
    assert_df_equal(got, want)


@pytest.fixture(scope="module")
def email_lake(spark):
    oneid_map = spark.createDataFrame([("email", keyed(EMAIL), 1), ("phone", keyed(EMAIL), 9)], MAP_DDL)
    hashes = spark.createDataFrame(
        [("email", keyed(EMAIL), md5(EMAIL), sha256(EMAIL), None, None, "zh***@qq.com")], HASHES_DDL
    )
    return oneid_map, hashes


EMAIL_SEEDS = ["Zhang.Wei@QQ.com", sha256(EMAIL).upper(), md5("li.na@163.com"), "li.na@163.com", "no email"]


def test_emails_match_by_keyed_hash_and_digests_through_platform_hashes(spark, email_lake) -> None:
    oneid_map, hashes = email_lake
    got = seeds(spark, EMAIL_SEEDS).transform(build_seed_matches("email", oneid_map, hashes, KEY))
    want = spark.createDataFrame(
        [
            ("Zhang.Wei@QQ.com", "matched", "1"),  # normalised to lower case, then keyed-hashed
            (sha256(EMAIL).upper(), "matched", "1"),  # a digest in either case
            (md5("li.na@163.com"), "unmatched", None),
            ("li.na@163.com", "unmatched", None),
            ("no email", "invalid", None),
        ],
        MATCHES_DDL,
    )
    assert_df_equal(got, want)


def test_email_digests_stay_unmatched_without_platform_hashes(spark, email_lake) -> None:
    oneid_map, _ = email_lake
    got = seeds(spark, EMAIL_SEEDS[:2]).transform(build_seed_matches("email", oneid_map, None, KEY))
    want = spark.createDataFrame(
        [("Zhang.Wei@QQ.com", "matched", "1"), (sha256(EMAIL).upper(), "unmatched", None)], MATCHES_DDL
    )
    assert_df_equal(got, want)


def test_device_ids_match_plain_or_as_digests_of_their_canonical_form(spark) -> None:
    oneid_map = spark.createDataFrame([("imei", IMEI, 3), ("imei", "a000002c9060f7", 4)], MAP_DDL)
    values = [IMEI, md5(IMEI), sha256("A000002C9060F7".lower()), sha256("860000000000001"), "12345"]
    got = seeds(spark, values).transform(build_seed_matches("imei", oneid_map, None, KEY))
    want = spark.createDataFrame(
        [
            (IMEI, "matched", "3"),
            # The digest is also tried as an IMEI itself and fails there: only its match is kept.
            (md5(IMEI), "matched", "3"),
            (sha256("a000002c9060f7"), "matched", "4"),
            (sha256("860000000000001"), "unmatched", None),
            ("12345", "invalid", None),
        ],
        MATCHES_DDL,
    )
    assert_df_equal(got, want)
