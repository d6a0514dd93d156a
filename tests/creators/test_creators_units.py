"""Unit tests of the creators stage: features, engagers, audience TGI, match counts and ranking, and the
potential model's evaluation helpers, on small inline data (the engine for the transforms, none otherwise)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from pyspark.sql import functions as F

from creators import (
    PotentialError,
    build_audience_tags,
    build_engagers,
    build_match_counts,
    evaluate,
    latest_snapshots,
    precision_at_k,
    rank_creators,
    top_k,
    with_daily_features,
    with_future_growth,
)
from creators.match import _pct_ranks

DAY0 = dt.date(2026, 9, 1)
STATS_DDL = (
    "creator_id string, snapshot_date date, followers long, posts int, views long, likes long, "
    "comments long, shares long, price_per_post double, _dt date"
)


def _stats(spark, days: int = 40, skip: tuple[int, ...] = ()):
    rows = [
        ("A", DAY0 + dt.timedelta(days=i), 1000 + 10 * i, 1, 100, 5, 1, 4, 500.0, DAY0)
        for i in range(days)
        if i not in skip
    ]
    return spark.createDataFrame(rows, STATS_DDL)


def test_daily_features_growth_rates_and_future(spark) -> None:
    daily = _stats(spark).transform(with_daily_features()).transform(with_future_growth())
    rows = {r["snapshot_date"]: r for r in daily.collect()}
    last = rows[DAY0 + dt.timedelta(days=39)]
    assert last["growth_7d"] == pytest.approx(1390 / 1320 - 1)
    assert last["growth_30d"] == pytest.approx(1390 / 1090 - 1)
    assert last["engagement_rate_7d"] == pytest.approx(0.1)
    assert last["share_rate_7d"] == pytest.approx(0.04)
    assert last["engagement_rate_trend"] == pytest.approx(1.0)
    assert last["posts_30d"] == 30 and last["engagements_per_post_30d"] == pytest.approx(10.0)
    assert last["cost_per_engagement"] == pytest.approx(50.0)
    assert last["future_growth"] is None  # 30 days later is not there yet
    assert rows[DAY0]["future_growth"] == pytest.approx(1300 / 1000 - 1)
    assert rows[DAY0]["growth_7d"] is None  # no history


def test_a_missing_snapshot_leaves_growth_null_instead_of_stretching(spark) -> None:
    daily = _stats(spark, skip=(2,)).transform(with_daily_features())
    rows = {r["snapshot_date"]: r for r in daily.collect()}
    assert rows[DAY0 + dt.timedelta(days=9)]["growth_7d"] is None  # day 2 is missing
    assert rows[DAY0 + dt.timedelta(days=8)]["views_7d"] == 600  # calendar days 2..8: 6 snapshots, not 7


def test_engagers_audience_tags_and_match_counts(spark) -> None:
    t = "2026-10-30 10:00:00"
    kol = spark.createDataFrame(
        [
            ("e1", t, "K1", "o1", None),
            ("e2", t, "K1", None, "I2"),
            ("e3", t, "K1", "o1", None),  # a second engagement of the same person
            ("e4", t, "K2", "o3", None),
            ("e5", "2026-09-01 10:00:00", "K2", "o1", None),  # outside the 30-day window
            ("e6", t, "K2", "unknown", None),  # not in the OneID map
        ],
        "engagement_id string, event_time string, creator_id string, oaid string, idfa string",
    ).withColumn("event_time", F.col("event_time").cast("timestamp"))
    oneid_map = spark.createDataFrame(
        [("oaid", "o1", 1), ("idfa", "I2", 2), ("oaid", "o3", 3)],
        "id_type string, id_value string, oneid long",
    )
    engagers = kol.transform(
        build_engagers({"oaid": "oaid", "idfa": "idfa"}, oneid_map, dt.date(2026, 11, 1))
    )
    assert sorted(tuple(r) for r in engagers.collect()) == [("K1", "1", 2), ("K1", "2", 1), ("K2", "3", 1)]

    profile = spark.createDataFrame(
        [("1", "F"), ("2", "M"), ("3", "F"), ("4", "F")], "oneid string, gender string"
    )
    tags = {
        (r["creator_id"], r["value"]): r
        for r in profile.transform(build_audience_tags(engagers, ["gender"])).collect()
    }
    assert tags[("K1", "F")]["audience_count"] == 1 and tags[("K1", "F")]["audience_share"] == 0.5
    assert tags[("K1", "F")]["population_share"] == 0.75
    assert tags[("K1", "F")]["tgi"] == pytest.approx(0.5 / 0.75 * 100)
    assert tags[("K2", "F")]["tgi"] == pytest.approx(1 / 0.75 * 100)

    target = spark.createDataFrame([("1",), ("3",), ("4",)], "oneid string")
    customers = spark.createDataFrame([("1",)], "oneid string")
    counts = {
        r["creator_id"]: r.asDict()
        for r in build_match_counts(engagers, target, customers, profile).collect()
    }
    assert counts["K1"] == {
        "creator_id": "K1", "engaged": 2, "in_target": 1, "new_in_target": 0, "population": 4,
        "target_population": 3,
    }  # fmt: skip
    assert counts["K2"]["in_target"] == 1 and counts["K2"]["new_in_target"] == 1


# ---- driver-side: no engine -------------------------------------------------------------------------------


def _counts(creator_id: str, engaged: int, in_target: int, new: int) -> dict:
    return {
        "creator_id": creator_id,
        "engaged": engaged,
        "in_target": in_target,
        "new_in_target": new,
        "population": 1000,
        "target_population": 100,
    }


def test_rank_prefers_leaning_audiences_shrinks_small_ones_and_explains() -> None:
    counts = [_counts("lean", 400, 120, 80), _counts("big", 2000, 220, 150), _counts("tiny", 4, 3, 3)]
    info = {
        "lean": {"category": "makeup", "price_per_post": 1000.0, "growth_30d": 0.05, "creator_name": "L"},
        "big": {"category": "skincare", "price_per_post": 20000.0},
    }
    ranked = rank_creators(counts, info)
    assert ranked[0].creator_id == "lean" and {m.creator_id for m in ranked} == {"lean", "big", "tiny"}
    by_id = {m.creator_id: m for m in ranked}
    assert by_id["lean"].tgi == pytest.approx(300.0) and by_id["tiny"].tgi == pytest.approx(750.0)
    assert by_id["tiny"].tgi_smoothed < by_id["lean"].tgi_smoothed  # 3 of 4 does not beat 120 of 400
    assert ranked[0].rank == 1 and ranked[0].cost_per_target == pytest.approx(1000 / 120)
    assert ranked[0].reasons[0].startswith("TGI ") and "followers +5.0%" in ranked[0].reasons[-1]
    assert "no price per post known" in by_id["tiny"].reasons[2]

    assert [m.creator_id for m in rank_creators(counts, info, categories=["Skincare"])] == ["big"]
    # A budget keeps the best creators that fit; a creator without a price never fits.
    assert [m.creator_id for m in rank_creators(counts, info, budget=5000)] == ["lean"]
    assert [m.creator_id for m in rank_creators(counts, info, budget=21000)] == ["lean", "big"]


def test_percentile_ranks_and_precision_at_k() -> None:
    assert _pct_ranks([1.0, None, 3.0, 2.0]) == [0.0, 0.5, 1.0, 0.5]
    assert _pct_ranks([5.0, 5.0]) == [0.5, 0.5]
    truth = [5, 4, 3, 2, 1]
    assert precision_at_k(truth, [5, 4, 0, 0, 0], 2) == 1.0
    assert precision_at_k(truth, [0, 0, 0, 4, 5], 2) == 0.0
    assert precision_at_k(truth, [float("nan")] * 5, 2) == 1.0  # ties keep the given order: no better than it
    assert top_k(300) == 30 and top_k(20) == 5 and top_k(3) == 3


def test_the_potential_model_refuses_a_short_history() -> None:
    rows = pd.DataFrame(
        {"day": [100] * 10, "future_growth": [0.1] * 10, "followers": [1] * 10, "growth_30d": [0.0] * 10}
    )
    with pytest.raises(PotentialError, match="creator_stats history"):
        evaluate(rows, 130)


def test_public_matches_leave_out_creators_whose_counts_are_below_k() -> None:
    from jobs.creators import public_matches

    counts = [
        _counts("shown", 400, 120, 5),  # 5 new people: shown as "< 10", the creator stays
        _counts("few_in_target", 400, 9, 9),  # 9 in the target: its TGI would give 9 away
        _counts("few_outside", 105, 100, 50),  # 5 engaged outside the target: the rest would be 5
        _counts("all_in_target", 60, 60, 60),  # nobody outside: 0 gives nothing away
    ]
    shown, hidden = public_matches(rank_creators(counts, {}), 10)
    assert [m["creator_id"] for m in shown] == ["all_in_target", "shown"] and hidden == 2
    assert [m["rank"] for m in shown] == [1, 2]
    row = shown[1]
    assert (row["engaged"], row["in_target"], row["new_in_target"]) == (400, 120, "< 10")
    assert row["reasons"][1] == "120 engaged people in the target, < 10 of them not customers yet"


def test_followers_of_other_days_come_from_that_exact_day_of_the_same_creator(spark) -> None:
    other = spark.createDataFrame(
        [("B", DAY0 + dt.timedelta(days=30), 7, 1, 100, 5, 1, 4, 500.0, DAY0)], STATS_DDL
    )
    stats = _stats(spark, skip=(5, 31)).unionByName(other)
    daily = stats.transform(with_daily_features()).transform(with_future_growth())
    rows = {(r["creator_id"], (r["snapshot_date"] - DAY0).days): r for r in daily.collect()}
    assert len(rows) == 39  # one row per snapshot, none added or lost
    assert rows[("A", 0)]["future_growth"] == pytest.approx(1300 / 1000 - 1)
    assert rows[("A", 1)]["future_growth"] is None  # day 31 is missing: no nearer day stands in
    assert rows[("A", 12)]["growth_7d"] is None and rows[("A", 35)]["growth_30d"] is None  # day 5 missing
    assert rows[("A", 36)]["growth_30d"] == pytest.approx(1360 / 1060 - 1)
    assert rows[("B", 30)]["growth_30d"] is None  # A's day 0 belongs to another creator
    assert rows[("A", 30)]["growth_30d"] == pytest.approx(1300 / 1000 - 1)


def test_latest_snapshots_keep_the_last_ingested_copy_of_each_creator_and_day(spark) -> None:
    later = dt.date(2026, 9, 5)
    rows = [
        ("A", DAY0, 1, later),  # sent again later: this copy wins
        ("A", DAY0, 2, DAY0),
        ("A", DAY0 + dt.timedelta(days=1), 3, DAY0),
        ("B", DAY0, 4, DAY0),  # another creator on the same day
        ("A", None, 5, DAY0),  # no date: one row for it too
        ("A", None, 6, later),
    ]
    stats = spark.createDataFrame(rows, "creator_id string, snapshot_date date, followers long, _dt date")
    got = sorted((r["creator_id"], r["snapshot_date"] or DAY0 - dt.timedelta(days=1), r["followers"])
                 for r in latest_snapshots(stats).collect())  # fmt: skip
    none = DAY0 - dt.timedelta(days=1)
    assert got == [("A", none, 6), ("A", DAY0, 1), ("A", DAY0 + dt.timedelta(days=1), 3), ("B", DAY0, 4)]
