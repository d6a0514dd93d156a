"""Performance of campaigns from delivery logs and 1P data: cost figures, daily trend, funnel, revenue of the
exposed people, outcomes of the holdout groups and AIPL stages before and after.

Inputs (the job keys silver rows with OneIDs and passes them in; nothing here reads a table):

- delivery: ``silver.ad_events`` rows (``campaign_id``, ``media``, ``event_type`` impression / click /
  conversion, ``event_time``, ``cost``) with ``oneid`` (NULL when no identifier of the row is known);
- campaigns: ``gold.campaigns`` rows (``campaign_id``, ``start_date``, ``end_date``,
  ``attribution_window_days``, ...);
- members: ``gold.campaign_holdouts`` rows (``campaign_id``, ``oneid``, ``arm`` treatment / control);
- orders: ``(order_id, oneid, order_time, amount)`` of paid orders, one row per order (:func:`paid_orders`);
- events: ``(oneid, event_time, event_type)`` of 1P behaviour.

Figures: CPM = cost / impressions x 1000, CPC = cost / clicks, CPA = cost / conversions (the platform's),
CTR = clicks / impressions, CVR = conversions / clicks, ROAS = revenue / cost, ROI = (revenue - cost) / cost,
where revenue is the paid orders of exposed OneIDs from their first exposure to the end of the attribution
window. A ratio with a zero denominator is NULL (None), never 0 or infinity.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

Transform = Callable[[DataFrame], DataFrame]

IMPRESSION, CLICK, CONVERSION = "impression", "click", "conversion"
VISIT_EVENTS = ("app_open", "page_view", "product_view", "search", "add_to_cart", "follow", "share", "review")
CART_EVENT = "add_to_cart"
FIGURES = ("cpm", "cpc", "cpa", "ctr", "cvr", "roas", "roi")
FUNNEL = ("exposed", "clicked", "visited", "carted", "purchased")


def _div(num: float | None, den: float | None, scale: float = 1.0) -> float | None:
    if num is None or not den:
        return None
    return num * scale / den


def cost_figures(
    impressions: int, clicks: int, conversions: int, cost: float, revenue: float | None = None
) -> dict[str, float | None]:
    """CPM, CPC, CPA, CTR, CVR, ROAS and ROI from totals (see the module doc); None where undefined."""
    return {
        "cpm": _div(cost, impressions, 1000.0),
        "cpc": _div(cost, clicks),
        "cpa": _div(cost, conversions),
        "ctr": _div(clicks, impressions),
        "cvr": _div(conversions, clicks),
        "roas": _div(revenue, cost),
        "roi": None if revenue is None else _div(revenue - cost, cost),
    }


def build_ratio(num: Column, den: Column, scale: float = 1.0) -> Column:
    """``num x scale / den`` as a double, NULL when ``den`` is 0 or NULL."""
    return F.when(den > 0, num.cast("double") * F.lit(scale) / den.cast("double"))


def with_cost_figures(df: DataFrame) -> DataFrame:
    """Add ``cpm, cpc, cpa, ctr, cvr, roas, roi`` to rows with ``impressions, clicks, conversions, cost,
    revenue`` (the same figures as :func:`cost_figures`)."""
    cost, revenue = F.col("cost"), F.col("revenue")
    return df.select(
        "*",
        build_ratio(cost, F.col("impressions"), 1000.0).alias("cpm"),
        build_ratio(cost, F.col("clicks")).alias("cpc"),
        build_ratio(cost, F.col("conversions")).alias("cpa"),
        build_ratio(F.col("clicks"), F.col("impressions")).alias("ctr"),
        build_ratio(F.col("conversions"), F.col("clicks")).alias("cvr"),
        build_ratio(revenue, cost).alias("roas"),
        build_ratio(revenue - cost, cost).alias("roi"),
    )


def _count(kind: str) -> Column:
    return F.sum(F.when(F.col("event_type") == kind, 1).otherwise(0)).cast("long")


def _delivery_sums() -> list[Column]:
    return [
        _count(IMPRESSION).alias("impressions"),
        _count(CLICK).alias("clicks"),
        _count(CONVERSION).alias("conversions"),
        F.coalesce(F.sum(F.col("cost").cast("double")), F.lit(0.0)).alias("cost"),
        F.countDistinct(F.when(F.col("event_type") == IMPRESSION, F.col("oneid"))).alias("reach"),
        F.countDistinct(F.when(F.col("event_type") == CLICK, F.col("oneid"))).alias("clickers"),
        F.sum(F.when((F.col("event_type") == IMPRESSION) & F.col("oneid").isNull(), 1).otherwise(0))
        .cast("long")
        .alias("unmatched_impressions"),
    ]


def campaign_delivery(delivery: DataFrame) -> DataFrame:
    """Totals per campaign: ``(campaign_id, impressions, clicks, conversions, cost, reach, clickers,
    unmatched_impressions)``; reach and clickers count distinct OneIDs."""
    return delivery.groupBy("campaign_id").agg(*_delivery_sums())


def daily_delivery(delivery: DataFrame) -> DataFrame:
    """The same totals per campaign and day (``day``, the date of ``event_time``)."""
    return (
        delivery.withColumn("day", F.to_date("event_time"))
        .groupBy("campaign_id", "day")
        .agg(*_delivery_sums())
    )


def exposures(delivery: DataFrame) -> DataFrame:
    """``(campaign_id, oneid, first_exposed, first_clicked)`` of every OneID the campaign reached: its first
    impression (or first click when the log has no impression before it) and first click."""
    keyed = delivery.where(F.col("oneid").isNotNull())
    return (
        keyed.groupBy("campaign_id", "oneid")
        .agg(
            F.min(F.when(F.col("event_type").isin(IMPRESSION, CLICK), F.col("event_time"))).alias(
                "first_exposed"
            ),
            F.min(F.when(F.col("event_type") == CLICK, F.col("event_time"))).alias("first_clicked"),
        )
        .where(F.col("first_exposed").isNotNull())
    )


def paid_orders(order_lines: DataFrame) -> DataFrame:
    """One row per paid order, ``(order_id, oneid, order_time, amount)``: lines summed, refunded lines
    left out (a NULL status counts as paid)."""
    paid = order_lines.where(F.coalesce(F.lower(F.col("status")), F.lit("paid")) != "refunded")
    return paid.groupBy("order_id", "oneid").agg(
        F.min("order_time").alias("order_time"), F.sum(F.col("amount").cast("double")).alias("amount")
    )


def _window_end(dt: _dt.date) -> Column:
    """The last day that counts for a campaign on run date ``dt``: the window's end, or ``dt`` before it."""
    end = F.date_add(F.col("end_date"), F.col("attribution_window_days").cast("int"))
    return F.least(end, F.lit(dt))


def purchases_after_exposure(campaigns: DataFrame, orders: DataFrame, dt: _dt.date) -> Transform:
    """A transform of :func:`exposures` to ``(campaign_id, oneid, orders, revenue)``: the paid orders each
    exposed OneID placed from its first exposure to the end of the attribution window (or ``dt``)."""

    def transform(exposed: DataFrame) -> DataFrame:
        windows = campaigns.select("campaign_id", _window_end(dt).alias("_last"))
        return (
            exposed.join(windows, "campaign_id")
            .join(orders.select("oneid", "order_id", "order_time", "amount"), "oneid")
            .where(
                (F.col("order_time") >= F.col("first_exposed")) & (F.to_date("order_time") <= F.col("_last"))
            )
            .groupBy("campaign_id", "oneid")
            .agg(F.countDistinct("order_id").alias("orders"), F.sum("amount").alias("revenue"))
        )

    return transform


def funnel(campaigns: DataFrame, events: DataFrame, orders: DataFrame, dt: _dt.date) -> Transform:
    """A transform of :func:`exposures` to one row per campaign: ``exposed, clicked, visited, carted,
    purchased``, each the exposed OneIDs that did it after their first exposure and by the end of the
    attribution window (or ``dt``); purchased counts paid orders."""

    def transform(exposed: DataFrame) -> DataFrame:
        windows = campaigns.select("campaign_id", _window_end(dt).alias("_last"))
        base = exposed.join(windows, "campaign_id")
        after = (F.col("event_time") >= F.col("first_exposed")) & (F.to_date("event_time") <= F.col("_last"))
        acts = (
            base.join(events.select("oneid", "event_time", "event_type"), "oneid")
            .where(after)
            .groupBy("campaign_id", "oneid")
            .agg(
                F.max(F.col("event_type").isin(*VISIT_EVENTS).cast("int")).alias("_visited"),
                F.max((F.col("event_type") == CART_EVENT).cast("int")).alias("_carted"),
            )
        )
        bought = exposed.transform(purchases_after_exposure(campaigns, orders, dt)).select(
            "campaign_id", "oneid", F.lit(1).alias("_purchased")
        )
        people = base.join(acts, ["campaign_id", "oneid"], "left").join(
            bought, ["campaign_id", "oneid"], "left"
        )
        return people.groupBy("campaign_id").agg(
            F.count("*").alias("exposed"),
            F.count("first_clicked").alias("clicked"),
            F.coalesce(F.sum("_visited"), F.lit(0)).cast("long").alias("visited"),
            F.coalesce(F.sum("_carted"), F.lit(0)).cast("long").alias("carted"),
            F.coalesce(F.sum("_purchased"), F.lit(0)).cast("long").alias("purchased"),
        )

    return transform


def group_outcomes(campaigns: DataFrame, orders: DataFrame, dt: _dt.date) -> Transform:
    """A transform of campaign members ``(campaign_id, oneid, arm)`` to one row per campaign and arm:
    ``people, buyers, orders, revenue, revenue_sq`` over the paid orders placed from the campaign's start to
    the end of its attribution window (or ``dt``): the sums the lift statistics need."""

    def transform(members: DataFrame) -> DataFrame:
        windows = campaigns.select("campaign_id", F.col("start_date"), _window_end(dt).alias("_last"))
        bought = (
            members.select("campaign_id", "oneid")
            .distinct()
            .join(windows, "campaign_id")
            .join(orders.select("oneid", "order_id", "order_time", "amount"), "oneid")
            .where(
                (F.to_date("order_time") >= F.col("start_date")) & (F.to_date("order_time") <= F.col("_last"))
            )
            .groupBy("campaign_id", "oneid")
            .agg(F.countDistinct("order_id").alias("_orders"), F.sum("amount").alias("_revenue"))
        )
        per_person = (
            members.select("campaign_id", "oneid", "arm")
            .distinct()
            .join(bought, ["campaign_id", "oneid"], "left")
        )
        revenue = F.coalesce(F.col("_revenue"), F.lit(0.0))
        return per_person.groupBy("campaign_id", "arm").agg(
            F.count("*").alias("people"),
            F.count("_orders").alias("buyers"),
            F.coalesce(F.sum("_orders"), F.lit(0)).cast("long").alias("orders"),
            F.sum(revenue).alias("revenue"),
            F.sum(revenue * revenue).alias("revenue_sq"),
        )

    return transform


def aipl_transitions(before: DataFrame, after: DataFrame) -> Transform:
    """A transform of campaign members ``(campaign_id, oneid, arm)`` to ``(campaign_id, arm, stage_before,
    stage_after, people)``: their AIPL stage (``oneid, stage``; ``none`` without contact) on the profile
    before the campaign and on the latest one."""

    def transform(members: DataFrame) -> DataFrame:
        b = before.select("oneid", F.col("stage").alias("stage_before"))
        a = after.select("oneid", F.col("stage").alias("stage_after"))
        return (
            members.select("campaign_id", "oneid", "arm")
            .join(b, "oneid", "left")
            .join(a, "oneid", "left")
            .select(
                "campaign_id",
                "arm",
                F.coalesce(F.col("stage_before"), F.lit("none")).alias("stage_before"),
                F.coalesce(F.col("stage_after"), F.lit("none")).alias("stage_after"),
            )
            .groupBy("campaign_id", "arm", "stage_before", "stage_after")
            .agg(F.count("*").alias("people"))
        )

    return transform
