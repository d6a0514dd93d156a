"""Each attribution model on a small hand-made journey set, and the Markov removal effects by hand."""

from __future__ import annotations

import datetime as dt

import pytest

from effect import markov_credits, markov_removal_effects, rule_credits
from effect.attribution import collapse, markov_paths

T = dt.datetime
TOUCHES = "oneid string, touch_time timestamp, media string, campaign_id string"
ORDERS = "order_id string, oneid string, order_time timestamp, amount double"


def _journeys(spark):
    touches = spark.createDataFrame(
        [
            ("u1", T(2026, 11, 3, 12), "oceanengine", "C1"),  # 7 days before O1: the edge of the look-back
            ("u1", T(2026, 11, 8, 12), "tencent", "C2"),  # 2 days before
            ("u1", T(2026, 11, 10, 11), "oceanengine", "C3"),  # 1 hour before
            ("u2", T(2026, 11, 9, 12), "tencent", "C2"),
            ("u2", T(2026, 11, 11), "oceanengine", "C1"),  # after O2: no credit
            ("u3", T(2026, 10, 31), "baidu", "C4"),  # 10 days before O3: outside the look-back
            ("u4", T(2026, 11, 5), "baidu", "C4"),  # never bought
        ],
        TOUCHES,
    )
    orders = spark.createDataFrame(
        [
            ("O1", "u1", T(2026, 11, 10, 12), 100.0),
            ("O2", "u2", T(2026, 11, 10, 12), 50.0),
            ("O3", "u3", T(2026, 11, 10, 12), 30.0),
        ],
        ORDERS,
    )
    return touches, orders


def _credits(df) -> dict:
    return {(r["model"], r["order_id"], r["campaign_id"]): r["credit"] for r in df.collect()}


def test_each_rule_model_on_hand_made_journeys(spark) -> None:
    touches, orders = _journeys(spark)
    got = _credits(orders.transform(rule_credits(touches, lookback_days=7, half_life_days=7.0)))
    w = [0.5 ** (7 / 7), 0.5 ** (2 / 7), 0.5 ** ((1 / 24) / 7)]
    expected = {
        ("last_touch", "O1", "C3"): 1.0,
        ("first_touch", "O1", "C1"): 1.0,
        ("linear", "O1", "C1"): 1 / 3,
        ("linear", "O1", "C2"): 1 / 3,
        ("linear", "O1", "C3"): 1 / 3,
        ("time_decay", "O1", "C1"): w[0] / sum(w),
        ("time_decay", "O1", "C2"): w[1] / sum(w),
        ("time_decay", "O1", "C3"): w[2] / sum(w),
    }
    for model in ("last_touch", "first_touch", "linear", "time_decay"):
        expected[(model, "O2", "C2")] = 1.0
        expected[(model, "O3", None)] = 1.0  # unattributed: no touch in the look-back
    assert got == pytest.approx(expected)


def test_markov_removal_effects_by_hand() -> None:
    # start->A 2, start->B 1, A->B 1, A->null 1, B->conversion 2: P(conversion) = 2/3 * 1/2 + 1/3 = 2/3;
    # without A: 1/3 (effect 1/2); without B: 0 (effect 1)
    effects = markov_removal_effects([(["A", "B"], 1, 0), (["A"], 0, 1), (["B"], 1, 0)])
    assert effects == pytest.approx({"A": 0.5, "B": 1.0})
    assert markov_removal_effects([(["A"], 0, 3)]) == {}
    assert collapse("A>A>B>A") == ["A", "B", "A"]


def test_markov_credits_follow_the_removal_effects(spark) -> None:
    touches, orders = _journeys(spark)
    paths = {r["path"]: (r["conversions"], r["nulls"]) for r in markov_paths(touches, orders).collect()}
    assert paths["baidu|C4"] == (0, 1)  # u4: touched, never bought
    assert paths["oceanengine|C1>tencent|C2>oceanengine|C3"] == (1, 0)
    effects = spark.createDataFrame(
        [("oceanengine", "C1", 0.5), ("tencent", "C2", 1.0), ("oceanengine", "C3", 0.5)],
        "media string, campaign_id string, effect double",
    )
    got = _credits(orders.transform(markov_credits(touches, effects)))
    assert got == pytest.approx(
        {
            ("markov", "O1", "C1"): 0.25,
            ("markov", "O1", "C2"): 0.5,
            ("markov", "O1", "C3"): 0.25,
            ("markov", "O2", "C2"): 1.0,
            ("markov", "O3", None): 1.0,
        }
    )
