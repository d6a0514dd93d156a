"""Consent on small inline records: the latest record per identifier and purpose counts up to the end of
``dt``, only blocking purposes (and ``all``) opt a OneID out, identifiers reach OneIDs through the map, and
the one filter removes opted-out OneIDs from any frame."""

from __future__ import annotations

import datetime

import pytest

from audiences.consent import build_optouts, without_optouts
from cdp.testing import assert_df_equal
from schemas import load_source

DT = datetime.date(2026, 11, 1)
CONSENT_DDL = (
    "record_id string, member_id string, phone_hash string, "
    "purpose string, status string, updated_at timestamp"
)
OPTOUTS_DDL = "oneid string, purposes string, since timestamp"


def at(day: int, month: int = 10, hour: int = 10, minute: int = 0, second: int = 0) -> datetime.datetime:
    return datetime.datetime(2026, month, day, hour, minute, second)


# Silver consent: member ids as they are, phones as their keyed hash (``phone_hash``).
RECORDS = [
    ("r1", "M1", None, "marketing", "opt_out", at(1)),  # opted out
    ("r2", "M2", None, "ads", "opt_out", at(1)),  # opted out, then in again
    ("r3", "M2", None, "ads", "opt_in", at(15)),
    ("r4", "M3", None, "marketing", "opt_out", at(2, month=11)),  # after dt: not yet
    ("r5", None, "H4", " ALL ", "OPT_OUT", at(3)),  # purpose and status trimmed, any case
    ("r6", "M5", None, "newsletter", "opt_out", at(1)),  # not a blocking purpose
    ("r7", "M6", None, "marketing", "opt_out", at(1)),  # one OneID, two identifiers, two purposes
    ("r8", None, "H6", "ads", "opt_out", at(5)),
    ("r9", "M7", None, "marketing", "opt_out", at(1)),  # no OneID holds M7
    ("r10", "M8", None, "marketing", "opt_out", at(1, month=11, hour=23, minute=59, second=59)),  # end of dt
]
MAP = [
    ("member_id", "M1", 1),
    ("member_id", "M2", 2),
    ("member_id", "M3", 3),
    ("phone", "H4", 4),
    ("member_id", "M5", 5),
    ("member_id", "M6", 6),
    ("phone", "H6", 6),
    ("member_id", "M8", 8),
]


@pytest.fixture(scope="module")
def consent(spark):
    return (
        spark.createDataFrame(RECORDS, CONSENT_DDL),
        spark.createDataFrame(MAP, "id_type string, id_value string, oneid bigint"),
    )


def test_build_optouts_gives_one_row_per_opted_out_oneid(spark, consent) -> None:
    records, oneid_map = consent
    got = records.transform(build_optouts(load_source("consent"), oneid_map, DT))
    want = spark.createDataFrame(
        [
            ("1", "marketing", at(1)),
            ("4", "all", at(3)),
            ("6", "ads,marketing", at(5)),
            ("8", "marketing", at(1, month=11, hour=23, minute=59, second=59)),
        ],
        OPTOUTS_DDL,
    )
    assert_df_equal(got, want)


def test_a_status_spelled_otherwise_fails_closed(spark) -> None:
    """``OPT-OUT``, ``Opt Out`` or a status nobody foresaw blocks; only a spelling of opt-in lets through."""
    statuses = {"A": "OPT-OUT", "B": "Opt Out", "C": "withdrawn", "D": "OPT-IN", "E": "yes", "F": "opt_in"}
    records = spark.createDataFrame(
        [(f"r{m}", m, None, "marketing", status, at(1)) for m, status in statuses.items()], CONSENT_DDL
    )
    oneid_map = spark.createDataFrame(
        [("member_id", m, i) for i, m in enumerate(statuses)], "id_type string, id_value string, oneid bigint"
    )
    got = records.transform(build_optouts(load_source("consent"), oneid_map, DT))
    assert sorted(r.oneid for r in got.collect()) == ["0", "1", "2"]


def test_build_optouts_blocks_only_the_given_purposes_and_all(spark, consent) -> None:
    records, oneid_map = consent
    got = records.transform(build_optouts(load_source("consent"), oneid_map, DT, purposes=("ADS",)))
    want = spark.createDataFrame([("4", "all", at(3)), ("6", "ads", at(5))], OPTOUTS_DDL)
    assert_df_equal(got, want)


def test_build_optouts_on_an_earlier_date_ignores_later_records(spark, consent) -> None:
    records, oneid_map = consent
    got = records.transform(build_optouts(load_source("consent"), oneid_map, datetime.date(2026, 10, 10)))
    # M2's opt-in of 10-15 has not happened yet on 10-10, so its opt-out of 10-01 holds.
    want = spark.createDataFrame(
        [
            ("1", "marketing", at(1)),
            ("2", "ads", at(1)),
            ("4", "all", at(3)),
            ("6", "ads,marketing", at(5)),
        ],
        OPTOUTS_DDL,
    )
    assert_df_equal(got, want)


def test_without_optouts_removes_opted_out_oneids_whatever_their_type(spark) -> None:
    members = spark.createDataFrame([("1", 0.9), ("2", None), ("3", 0.1)], "oneid string, score double")
    optouts = spark.createDataFrame([(2,), (4,)], "oneid bigint")
    got = members.transform(without_optouts(optouts))
    assert_df_equal(got, spark.createDataFrame([("1", 0.9), ("3", 0.1)], "oneid string, score double"))
