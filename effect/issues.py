"""Bad input of the effect stage, found and reported (``gold.effect_issues`` and the run's report), never
silently dropped:

- ``unknown_campaign``: delivery logs of a campaign id nobody registered (not tied to a pack). They still
  count in attribution; the report lists them so a missing registration is noticed.
- ``negative_cost``: delivery rows with a cost below 0. Left out of the cost totals (a cost cannot be
  negative; a platform's refund is not a delivery), counted with their sum.
- ``clicks_without_impressions``: clicks of a OneID with no impression of the campaign at or before the
  click (a log with impressions missing, or click fraud). The clicks count; the OneID counts as exposed
  from its first click.
- ``outside_dates``: impressions or clicks of a registered campaign on a day outside its start and end
  (conversions the platform reports later are expected).
- ``wrong_media``: delivery of a registered campaign reported by another platform than the registered one.
- ``campaign_without_pack``: a registered campaign whose pack was never exported (no row in
  ``gold.audience_exports``), so it has no members to measure (found by the job).
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

KINDS = (
    "unknown_campaign",
    "negative_cost",
    "clicks_without_impressions",
    "outside_dates",
    "wrong_media",
    "campaign_without_pack",
)
ISSUE_COLUMNS = "kind string, campaign_id string, rows long, amount double, detail string"


def _issue(df: DataFrame, kind: str, detail: F.Column, amount: F.Column | None = None) -> DataFrame:
    return (
        df.groupBy("campaign_id")
        .agg(
            F.count("*").alias("rows"),
            (F.sum(amount) if amount is not None else F.lit(None)).cast("double").alias("amount"),
            detail.alias("detail"),
        )
        .select(F.lit(kind).alias("kind"), "campaign_id", "rows", "amount", "detail")
    )


def delivery_issues(delivery: DataFrame, campaigns: DataFrame) -> DataFrame:
    """The bad input in delivery logs (``campaign_id, media, event_type, event_time, cost, oneid``) against
    the registered ``campaigns``: ``(kind, campaign_id, rows, amount, detail)``, one row per kind and
    campaign (see the module doc)."""
    known = campaigns.select("campaign_id", F.col("media").alias("_media"), "start_date", "end_date")
    tagged = delivery.join(known, "campaign_id", "left")
    unknown = _issue(
        tagged.where(F.col("_media").isNull()),
        "unknown_campaign",
        F.concat(
            F.lit("delivery logs of a campaign not registered: "),
            F.concat_ws(", ", F.array_sort(F.collect_set("media"))),
            F.lit("; register it with cdp campaign register to measure it"),
        ),
        F.col("cost"),
    )
    negative = _issue(
        delivery.where(F.col("cost") < 0),
        "negative_cost",
        F.lit("rows with a negative cost, left out of the cost totals"),
        F.col("cost"),
    )
    day = F.to_date("event_time")
    outside = _issue(
        tagged.where(
            F.col("_media").isNotNull()
            & F.col("event_type").isin("impression", "click")
            & ((day < F.col("start_date")) | (day > F.col("end_date")))
        ),
        "outside_dates",
        F.concat(
            F.lit("delivery on days outside the campaign's dates: "),
            F.date_format(F.min(day), "yyyy-MM-dd"),
            F.lit(" to "),
            F.date_format(F.max(day), "yyyy-MM-dd"),
        ),
        F.col("cost"),
    )
    media = _issue(
        tagged.where(F.col("_media").isNotNull() & (F.lower("media") != F.col("_media"))),
        "wrong_media",
        F.concat(
            F.lit("delivery reported by "),
            F.concat_ws(", ", F.array_sort(F.collect_set("media"))),
            F.lit(", not the registered media "),
            F.first("_media"),
        ),
        F.col("cost"),
    )
    return (
        unknown.unionByName(negative)
        .unionByName(outside)
        .unionByName(media)
        .unionByName(clicks_without_impressions(delivery))
    )


def clicks_without_impressions(delivery: DataFrame) -> DataFrame:
    """Clicks of a OneID with no impression of the same campaign at or before them, per campaign.

    In time order an impression at the same time as a click comes first, and a time left NULL comes before
    every other. Clicks are few: only the impressions of the (campaign, OneID) pairs that clicked are read,
    for their earliest time, instead of sorting every impression of every pair."""
    keyed = delivery.where(F.col("oneid").isNotNull()).select(
        # a NULL campaign is a pair of its own, as a partition of NULLs is: joined on these keys
        F.coalesce(F.col("campaign_id"), F.lit("")).alias("_campaign"),
        F.col("campaign_id").isNull().alias("_no_campaign"),
        "oneid",
        "campaign_id",
        "event_type",
        "event_time",
        "cost",
    )
    keys = ["_campaign", "_no_campaign", "oneid"]
    clicks = keyed.where(F.col("event_type") == "click")
    first = (
        keyed.where(F.col("event_type") == "impression")
        .join(clicks.select(*keys).distinct(), keys, "left_semi")
        .groupBy(*keys)
        .agg(
            F.min("event_time").alias("_first"),
            F.max(F.col("event_time").isNull().cast("int")).alias("_untimed"),
        )
    )
    seen = F.coalesce(F.col("_untimed"), F.lit(0)) == 1
    seen = seen | F.coalesce(F.col("_first") <= F.col("event_time"), F.lit(False))
    orphan = clicks.join(first, keys, "left").where(~seen).select("campaign_id", "event_type", "cost")
    return _issue(
        orphan,
        "clicks_without_impressions",
        F.lit("clicks of people with no impression of the campaign before them; counted as exposure"),
        F.col("cost"),
    )
