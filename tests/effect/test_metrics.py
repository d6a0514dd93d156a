"""Cost figures against hand-computed fixtures; delivery totals, funnel and group outcomes on small frames."""

from __future__ import annotations

import datetime as dt

import pytest

from effect import (
    campaign_delivery,
    cost_figures,
    exposures,
    funnel,
    group_outcomes,
    paid_orders,
    with_cost_figures,
)

# 2,000 impressions, 50 clicks, 5 platform conversions for 120 CNY, and 600 CNY of revenue, by hand:
HAND = {"cpm": 60.0, "cpc": 2.4, "cpa": 24.0, "ctr": 0.025, "cvr": 0.1, "roas": 5.0, "roi": 4.0}
DELIVERY = "campaign_id string, oneid string, event_type string, event_time timestamp, cost double"
CAMPAIGNS = "campaign_id string, start_date date, end_date date, attribution_window_days int"
T = dt.datetime


def test_cost_figures_against_a_hand_computed_fixture() -> None:
    assert cost_figures(2000, 50, 5, 120.0, 600.0) == pytest.approx(HAND)
    none = cost_figures(0, 0, 0, 0.0)
    assert none == {
        "cpm": None,
        "cpc": None,
        "cpa": None,
        "ctr": None,
        "cvr": None,
        "roas": None,
        "roi": None,
    }


def test_the_spark_figures_are_the_same(spark) -> None:
    df = spark.createDataFrame(
        [(2000, 50, 5, 120.0, 600.0), (0, 0, 0, 0.0, None)],
        "impressions long, clicks long, conversions long, cost double, revenue double",
    ).transform(with_cost_figures)
    rows = [r.asDict() for r in df.orderBy("impressions").collect()]
    assert {k: rows[1][k] for k in HAND} == pytest.approx(HAND)
    assert all(rows[0][k] is None for k in HAND)


def _delivery(spark):
    rows = [
        # campaign C1: u1 sees two ads and clicks; u2 sees one; an unmatched device sees one; u1 converts
        ("C1", "u1", "impression", T(2026, 11, 2, 10), 0.05),
        ("C1", "u1", "impression", T(2026, 11, 2, 11), 0.05),
        ("C1", "u1", "click", T(2026, 11, 2, 11, 1), 0.5),
        ("C1", "u1", "conversion", T(2026, 11, 2, 12), 0.0),
        ("C1", "u2", "impression", T(2026, 11, 3, 9), 0.05),
        ("C1", None, "impression", T(2026, 11, 3, 9), 0.05),
        ("C2", "u3", "impression", T(2026, 11, 2, 9), 0.1),
    ]
    return spark.createDataFrame(rows, DELIVERY)


def test_delivery_totals_per_campaign(spark) -> None:
    rows = {r["campaign_id"]: r.asDict() for r in _delivery(spark).transform(campaign_delivery).collect()}
    assert rows["C1"] == pytest.approx(
        {
            "campaign_id": "C1",
            "impressions": 4,
            "clicks": 1,
            "conversions": 1,
            "cost": 0.7,
            "reach": 2,
            "clickers": 1,
            "unmatched_impressions": 1,
        }
    )
    assert rows["C2"]["reach"] == 1


def test_funnel_and_revenue_count_what_happened_after_the_first_exposure(spark) -> None:
    campaigns = spark.createDataFrame([("C1", dt.date(2026, 11, 2), dt.date(2026, 11, 3), 2)], CAMPAIGNS)
    events = spark.createDataFrame(
        [
            ("u1", T(2026, 11, 2, 11, 2), "product_view"),
            ("u1", T(2026, 11, 2, 11, 5), "add_to_cart"),
            ("u2", T(2026, 11, 1, 9), "add_to_cart"),
        ],  # u2 carted before the campaign reached them
        "oneid string, event_time timestamp, event_type string",
    )
    lines = spark.createDataFrame(
        [
            ("O1", "u1", T(2026, 11, 2, 12), 100.0, "paid"),
            ("O1", "u1", T(2026, 11, 2, 12), 20.0, "paid"),
            ("O2", "u2", T(2026, 11, 9), 50.0, "paid"),  # after the attribution window
            ("O3", "u1", T(2026, 11, 4), 30.0, "refunded"),
        ],
        "order_id string, oneid string, order_time timestamp, amount double, status string",
    )
    orders = lines.transform(paid_orders)
    exposed = _delivery(spark).where("campaign_id = 'C1'").transform(exposures)
    row = exposed.transform(funnel(campaigns, events, orders, dt.date(2026, 11, 10))).collect()[0].asDict()
    assert row == {"campaign_id": "C1", "exposed": 2, "clicked": 1, "visited": 1, "carted": 1, "purchased": 1}
    members = spark.createDataFrame(
        [("C1", "u1", "treatment"), ("C1", "u2", "treatment"), ("C1", "u9", "control")],
        "campaign_id string, oneid string, arm string",
    )
    out = {
        r["arm"]: r.asDict()
        for r in members.transform(group_outcomes(campaigns, orders, dt.date(2026, 11, 10))).collect()
    }
    assert out["treatment"] == pytest.approx(
        {
            "campaign_id": "C1",
            "arm": "treatment",
            "people": 2,
            "buyers": 1,
            "orders": 1,
            "revenue": 120.0,
            "revenue_sq": 14400.0,
        }
    )
    assert out["control"]["people"] == 1 and out["control"]["buyers"] == 0
