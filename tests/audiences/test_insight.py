"""Insight and overlap on small inline profiles: which columns are described, value labels (numeric bins,
dates by month, arrays, missing values), counts, shares, TGI and the defining-traits-first order, the
per-tag value limit, quantile edges, and overlap counts."""

from __future__ import annotations

import math

import pytest

from audiences.insight import NONE_LABEL, build_insight, insight_columns, numeric_edges, overlap_counts

PROFILE_DDL = "oneid bigint, gender string, age bigint, vip boolean"
PROFILE = [
    (1, "F", 20, True),
    (2, "F", 30, True),
    (3, "M", 40, False),
    (4, "M", 50, True),
    (5, None, 60, False),
]
KINDS = {"gender": "string", "age": "number", "vip": "boolean"}


def rows_of(df) -> list[tuple]:
    """Rows in the order the transform returns them, floats rounded (the engine's ln and Python's may
    differ in the last bit)."""
    return [tuple(round(v, 9) if isinstance(v, float) else v for v in r) for r in df.collect()]


def expected(tag: str, value: str, a: int, a_share: float, p: int, p_share: float) -> tuple:
    tgi = a_share / p_share * 100
    score = a_share * math.log(tgi / 100) if tgi > 0 else -1.0
    return tuple(
        round(v, 9) if isinstance(v, float) else v for v in (tag, value, a, a_share, p, p_share, tgi, score)
    )


def test_insight_columns_keeps_described_kinds_and_drops_keys_exclusions_and_other_types() -> None:
    columns = {
        "oneid": "bigint",
        "dt": "date",
        "gender": "string",
        "age": "int",
        "spend": "decimal(10,2)",
        "vip": "boolean",
        "interests": "array<string>",
        "attributes": "map<string,string>",
        "last_seen": "timestamp",
    }
    assert insight_columns(columns, exclude=("vip",)) == {
        "gender": "string",
        "age": "number",
        "spend": "number",
        "interests": "array",
        "last_seen": "timestamp",
    }


def test_build_insight_counts_shares_tgi_and_puts_defining_traits_first(spark) -> None:
    profile = spark.createDataFrame(PROFILE, PROFILE_DDL)
    members = spark.createDataFrame([("1",), ("2",), ("2",)], "oneid string")  # a duplicate counts once
    got = profile.transform(build_insight(members, KINDS, {"age": [35.0]}))
    assert got.columns == [
        "tag", "value", "audience_count", "audience_share", "population_count", "population_share", "tgi",
        "score",
    ]  # fmt: skip
    # Audience of 2 in a population of 5. Ties in score are ordered by tag, then value.
    assert rows_of(got) == [
        expected("age", "< 35", 2, 1.0, 2, 0.4),
        expected("gender", "F", 2, 1.0, 2, 0.4),
        expected("vip", "true", 2, 1.0, 3, 0.6),
        expected("age", ">= 35", 0, 0.0, 3, 0.6),
        expected("gender", NONE_LABEL, 0, 0.0, 1, 0.2),
        expected("gender", "M", 0, 0.0, 2, 0.4),
        expected("vip", "false", 0, 0.0, 2, 0.4),
    ]


def test_build_insight_keeps_the_most_frequent_values_of_each_tag(spark) -> None:
    profile = spark.createDataFrame(PROFILE, PROFILE_DDL)
    members = spark.createDataFrame([("1",), ("2",)], "oneid string")
    got = profile.transform(build_insight(members, KINDS, {"age": [35.0]}, max_values=1))
    # gender: F and M both hold 2 people; the tie goes to the smaller value.
    assert rows_of(got) == [
        expected("gender", "F", 2, 1.0, 2, 0.4),
        expected("vip", "true", 2, 1.0, 3, 0.6),
        expected("age", ">= 35", 0, 0.0, 3, 0.6),
    ]


def test_build_insight_labels_dates_by_month_arrays_sorted_and_numbers_without_edges(spark) -> None:
    import datetime

    profile = spark.createDataFrame(
        [
            (1, datetime.date(2026, 10, 3), ["b", "a"], 7),
            (2, datetime.date(2026, 10, 30), ["a", "b"], None),
            (3, None, None, 9),
            (4, datetime.date(2026, 9, 1), ["c"], 1),
        ],
        "oneid bigint, last_order date, interests array<string>, visits bigint",
    )
    kinds = {"last_order": "date", "interests": "array", "visits": "number"}
    members = spark.createDataFrame([("1",), ("2",)], "oneid string")
    got = profile.transform(build_insight(members, kinds, {}))
    assert rows_of(got) == [
        expected("interests", "a,b", 2, 1.0, 2, 0.5),
        expected("last_order", "2026-10", 2, 1.0, 2, 0.5),
        expected("visits", NONE_LABEL, 1, 0.5, 1, 0.25),
        expected("visits", "all", 1, 0.5, 3, 0.75),  # under-represented: a negative score, above no member
        expected("interests", NONE_LABEL, 0, 0.0, 1, 0.25),
        expected("interests", "c", 0, 0.0, 1, 0.25),
        expected("last_order", NONE_LABEL, 0, 0.0, 1, 0.25),
        expected("last_order", "2026-09", 0, 0.0, 1, 0.25),
    ]


def test_numeric_edges_are_sorted_distinct_quantiles_of_numeric_tags_only(spark) -> None:
    # Every quartile falls inside a run of equal values, so exact and interpolating engines agree.
    visits = [10] * 5 + [20] * 10 + [30] * 10 + [40] * 10 + [50] * 5
    orders = [0] * 35 + [1] * 5
    profile = spark.createDataFrame(
        [(i, v, o, "x") for i, (v, o) in enumerate(zip(visits, orders, strict=True))],
        "oneid bigint, visits bigint, orders bigint, city string",
    )
    kinds = {"visits": "number", "orders": "number", "city": "string"}
    assert numeric_edges(profile, kinds, bins=4) == {"visits": [20.0, 30.0, 40.0], "orders": [0.0]}
    assert numeric_edges(profile, {"city": "string"}) == {}


@pytest.mark.parametrize(
    ("a", "b", "counts"),
    [
        (["1", "2", "3", "3"], [3, 4], {"a": 3, "b": 2, "both": 1, "either": 4}),
        (["1"], [2], {"a": 1, "b": 1, "both": 0, "either": 2}),
        (["1", "2"], [1, 2], {"a": 2, "b": 2, "both": 2, "either": 2}),
    ],
)
def test_overlap_counts_distinct_people_across_oneid_types(spark, a, b, counts) -> None:
    left = spark.createDataFrame([(x,) for x in a], "oneid string")
    right = spark.createDataFrame([(x,) for x in b], "oneid bigint")
    assert overlap_counts(left, right) == counts
