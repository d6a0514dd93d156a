"""Bad input is reported, never silently dropped: unknown campaigns, negative costs, clicks without
impressions, delivery outside the dates or on other media."""

from __future__ import annotations

import datetime as dt

from effect import delivery_issues

T = dt.datetime


def test_bad_delivery_rows_are_reported_per_kind_and_campaign(spark) -> None:
    campaigns = spark.createDataFrame(
        [("C1", "oceanengine", dt.date(2026, 11, 2), dt.date(2026, 11, 3))],
        "campaign_id string, media string, start_date date, end_date date",
    )
    delivery = spark.createDataFrame(
        [
            ("C1", "oceanengine", "u1", "impression", T(2026, 11, 2, 10), 0.05),
            ("C1", "oceanengine", "u1", "click", T(2026, 11, 2, 10, 1), 0.5),
            ("C1", "oceanengine", "u2", "click", T(2026, 11, 2, 11), 0.5),  # no impression before
            ("C1", "oceanengine", "u3", "impression", T(2026, 11, 3, 9), -2.0),  # negative cost
            ("C1", "oceanengine", "u3", "impression", T(2026, 11, 5, 9), 0.05),  # after the end
            ("C1", "tencent", "u4", "impression", T(2026, 11, 3, 9), 0.05),  # another platform
            ("X9", "baidu", "u5", "impression", T(2026, 11, 3, 9), 0.07),  # nobody registered X9
            ("X9", "baidu", "u5", "impression", T(2026, 11, 3, 9, 5), 0.07),
        ],
        "campaign_id string, media string, oneid string, event_type string, event_time timestamp, "
        "cost double",
    )
    found = {
        (r["kind"], r["campaign_id"]): r.asDict() for r in delivery_issues(delivery, campaigns).collect()
    }
    assert set(found) == {
        ("unknown_campaign", "X9"),
        ("negative_cost", "C1"),
        ("clicks_without_impressions", "C1"),
        ("outside_dates", "C1"),
        ("wrong_media", "C1"),
    }
    assert found[("unknown_campaign", "X9")]["rows"] == 2
    assert abs(found[("unknown_campaign", "X9")]["amount"] - 0.14) < 1e-9
    assert "baidu" in found[("unknown_campaign", "X9")]["detail"]
    assert found[("negative_cost", "C1")]["amount"] == -2.0
    assert found[("clicks_without_impressions", "C1")]["rows"] == 1
    assert "2026-11-05" in found[("outside_dates", "C1")]["detail"]
    assert "tencent" in found[("wrong_media", "C1")]["detail"]


def test_a_click_is_orphan_only_without_an_impression_of_its_campaign_at_or_before_it(spark) -> None:
    from effect.issues import clicks_without_impressions

    rows = [
        ("C1", "u1", "impression", T(2026, 11, 2, 10), 0.1),
        ("C1", "u1", "click", T(2026, 11, 2, 10), 1.0),  # same time as the impression: seen
        ("C1", "u2", "click", T(2026, 11, 2, 9), 2.0),  # before the impression: orphan
        ("C1", "u2", "impression", T(2026, 11, 2, 10), 0.1),
        ("C1", "u2", "click", T(2026, 11, 2, 11), 4.0),  # after it: seen
        ("C1", "u3", "impression", None, 0.1),  # an impression without a time comes first
        ("C1", "u3", "click", T(2026, 11, 2, 8), 8.0),
        ("C1", "u4", "click", None, 16.0),  # a click without a time comes before the impression: orphan
        ("C1", "u4", "impression", T(2026, 11, 2, 10), 0.1),
        (None, "u5", "impression", T(2026, 11, 2, 9), 0.1),  # the campaign left NULL is a campaign too
        (None, "u5", "click", T(2026, 11, 2, 10), 32.0),
        (None, "u6", "click", T(2026, 11, 2, 10), 64.0),  # its impression is of another campaign: orphan
        ("C1", "u6", "impression", T(2026, 11, 2, 9), 0.1),
        ("C2", "u1", "click", T(2026, 11, 2, 12), 128.0),  # u1 saw C1, not C2: orphan
        ("C1", None, "click", T(2026, 11, 2, 12), 256.0),  # no OneID: not counted
    ]
    delivery = spark.createDataFrame(
        rows, "campaign_id string, oneid string, event_type string, event_time timestamp, cost double"
    )
    got = {r["campaign_id"]: (r["rows"], r["amount"]) for r in clicks_without_impressions(delivery).collect()}
    assert got == {"C1": (2, 18.0), None: (1, 64.0), "C2": (1, 128.0)}
