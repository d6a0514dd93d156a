"""Insight and overlap on small inline profiles: which columns are described, value labels (numeric bins,
dates by month, arrays, missing values), counts, shares, TGI and the defining-traits-first order, the
per-tag value limit, quantile edges, and overlap counts; and the minimum group size: counts below k shown as
"< k", and counts that would give a small group away withheld."""

from __future__ import annotations

import math

import pytest

from audiences.insight import (
    NONE_LABEL,
    build_insight,
    insight_columns,
    is_shown,
    numeric_edges,
    overlap_counts,
    public_count,
    public_counts,
    public_coverage,
    public_insight_rows,
    public_overlap,
    public_share,
)

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


# ---- the minimum group size: what a user may see ----------------------------------------------------------


def test_public_count_hides_every_count_below_k_zero_included() -> None:
    assert [public_count(n, 10) for n in (0, 1, 9, 10, 11)] == ["< 10", "< 10", "< 10", 10, 11]
    assert public_count(None, 5) == "< 5"
    assert [is_shown(x) for x in (10, "< 10", None, True)] == [True, False, False, False]
    assert (
        public_share(20, 80) == 0.25 and public_share("< 10", 80) is None and public_share(20, None) is None
    )


def test_public_counts_withhold_a_shown_cell_that_would_give_a_hidden_one_away() -> None:
    # 100 people: 97 F and 3 M. Hiding M alone is not enough: 100 - 97 gives it back; F is withheld too.
    assert public_counts([97, 3], 100, 10) == [None, "< 10"]
    # The rest is the hidden cells and the values not listed: at least k, nothing to work out.
    assert public_counts([60, 25, 3], 100, 10) == [60, 25, "< 10"]
    # A rest of zero gives away only that the hidden cells are empty.
    assert public_counts([100, 0], 100, 10) == [100, "< 10"]
    # The smallest shown cell goes first.
    assert public_counts([50, 45, 2], 97, 10) == [50, None, "< 10"]
    assert public_counts([5, 5], None, 10) == ["< 10", "< 10"]


def test_public_coverage_withholds_an_id_type_that_all_but_a_few_members_have() -> None:
    counts = {"phone": 95, "email": 40, "imei": 3, "oaid": 100}
    # 100 - 95: five members without a phone would be singled out; 100 - 100: nobody, which tells nothing.
    assert public_coverage(counts, 100, 10) == {"phone": None, "email": 40, "imei": "< 10", "oaid": 100}


def test_public_overlap_suppresses_small_groups_and_what_would_give_them_away() -> None:
    def shown(a, b, both):
        return public_overlap({"a": a, "b": b, "both": both, "either": a + b - both}, 10)

    assert shown(100, 80, 30) == {"a": 100, "b": 80, "both": 30, "either": 150}
    # An intersection of one person: hidden, and so is the union (100 + 80 - union would give it back).
    assert shown(100, 80, 1) == {"a": 100, "b": 80, "both": "< 10", "either": None}
    # One person in b and not in a: the intersection (and the union) would single them out.
    assert shown(100, 80, 79) == {"a": 100, "b": 80, "both": None, "either": None}
    # A size of one: hidden with everything it is part of.
    assert shown(1, 80, 1) == {"a": "< 10", "b": 80, "both": "< 10", "either": None}
    # b inside a: "nobody outside" is a group of zero, shown.
    assert shown(100, 80, 80) == {"a": 100, "b": 80, "both": 80, "either": 100}


def test_public_insight_rows_hide_small_cells_their_share_and_tgi_and_put_them_last() -> None:
    def row(tag, value, a, p, tgi):
        return {
            "tag": tag,
            "value": value,
            "audience_count": a,
            "audience_share": a / 20,
            "population_count": p,
            "population_share": p / 1000,
            "tgi": tgi,
            "score": 1.0,
        }

    rows = [
        row("province", "Hainan", 1, 5, 1000.0),  # one audience member, and a rare value in the population
        row("gender", "F", 19, 500, 190.0),
        row("gender", "M", 1, 500, 10.0),
        row("city", "Beijing", 20, 300, 333.0),
        row("city", "Shanghai", 0, 700, 0.0),
    ]
    got = public_insight_rows(rows, 10, audience_total=20, population_total=1000)
    assert [(r["tag"], r["value"]) for r in got] == [
        ("city", "Beijing"),
        ("city", "Shanghai"),
        ("gender", "F"),
        ("gender", "M"),
        ("province", "Hainan"),
    ]
    beijing, shanghai, female, male, hainan = got
    assert beijing["audience_count"] == 20 and beijing["tgi"] == 333.0
    assert (
        shanghai["audience_count"] == "< 10"
        and shanghai["tgi"] is None
        and shanghai["audience_share"] is None
    )
    assert shanghai["population_count"] == 700  # the population side stays: 1,000 people, 700 of them here
    # Gender: M holds one member, F would give it away (20 - 19); both hidden, neither has a TGI.
    assert (female["audience_count"], male["audience_count"]) == (None, "< 10")
    assert female["tgi"] is None and male["tgi"] is None and female["population_count"] == 500
    # Province: one member among 5 people; the rest of the population (995) is not listed, so nothing more.
    assert hainan["audience_count"] == "< 10" and hainan["population_count"] == "< 10"
    assert hainan["population_share"] is None and hainan["tgi"] is None
