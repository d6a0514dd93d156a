"""Creator features per creator and day from the daily creator statistics (``silver.creators``).

    silver.creators (creator_id, snapshot_date, followers, posts, views, likes, comments, shares, price)
        -> with_daily_features: follower growth over 7 / 30 days, 7- and 30-day engagement and share rates,
           their trends, reach per follower, engagements per post, cost per engagement
        -> with_future_growth: the follower growth of the next 30 days (the label of the potential model)

Windows are calendar days (``rangeBetween`` over the day number), so a missing snapshot does not stretch a
window; the followers 7 and 30 days earlier come from an equi-join on the day number, NULL when that
snapshot is missing.
"""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

Transform = Callable[[DataFrame], DataFrame]

STAT_COLUMNS = ("followers", "posts", "views", "likes", "comments", "shares")
MODEL_FEATURES = (
    "log_followers",
    "growth_7d",
    "growth_30d",
    "engagement_rate_7d",
    "engagement_rate_trend",
    "share_rate_7d",
    "share_rate_trend",
    "views_per_follower_7d",
    "posts_30d",
)
"""The potential model's inputs (all computable from the creator statistics alone)."""


def build_day_number(date: Column) -> Column:
    """Days since 1970-01-01 of a date column (an integer that windows and joins can range over)."""
    return F.datediff(date, F.lit("1970-01-01").cast("date"))


def _ratio(num: Column, den: Column) -> Column:
    return F.when(den > 0, num / den)


def latest_snapshots(stats: DataFrame) -> DataFrame:
    """One row per creator and snapshot date (the last ingested wins when a source sent a day twice)."""
    order = Window.partitionBy("creator_id", "snapshot_date").orderBy(F.col("_dt").desc())
    if "_dt" not in stats.columns:
        return stats.dropDuplicates(["creator_id", "snapshot_date"])
    return stats.withColumn("_r", F.row_number().over(order)).where(F.col("_r") == 1).drop("_r")


def with_daily_features() -> Transform:
    """A transform of creator snapshots to one row per creator and day with the features.

    Returns:
        A transform adding ``day`` and the feature columns (NULL where the history is too short):
        ``growth_7d``, ``growth_30d`` (relative), ``engagements_7d`` / ``_30d`` (likes + comments +
        shares), ``engagement_rate_7d`` / ``_30d`` (per view), ``engagement_rate_trend`` (7d / 30d),
        ``share_rate_7d``, ``share_rate_trend``, ``views_per_follower_7d`` (daily), ``posts_30d``,
        ``engagements_per_post_30d``, ``cost_per_engagement`` (price / engagements per post),
        ``log_followers``.
    """

    def transform(stats: DataFrame) -> DataFrame:
        base = stats.withColumn("day", build_day_number(F.col("snapshot_date"))).withColumn(
            "engagements", F.col("likes") + F.col("comments") + F.col("shares")
        )
        w7 = Window.partitionBy("creator_id").orderBy("day").rangeBetween(-6, 0)
        w30 = Window.partitionBy("creator_id").orderBy("day").rangeBetween(-29, 0)
        rolled = base.select(
            "*",
            F.sum("views").over(w7).alias("views_7d"),
            F.sum("views").over(w30).alias("views_30d"),
            F.sum("engagements").over(w7).alias("engagements_7d"),
            F.sum("engagements").over(w30).alias("engagements_30d"),
            F.sum("shares").over(w7).alias("shares_7d"),
            F.sum("shares").over(w30).alias("shares_30d"),
            F.sum("posts").over(w30).alias("posts_30d"),
        )
        past = base.select("creator_id", "day", "followers")
        ago7 = past.select("creator_id", (F.col("day") + 7).alias("day"), F.col("followers").alias("_f7"))
        ago30 = past.select("creator_id", (F.col("day") + 30).alias("day"), F.col("followers").alias("_f30"))
        joined = rolled.join(ago7, ["creator_id", "day"], "left").join(ago30, ["creator_id", "day"], "left")
        er7 = _ratio(F.col("engagements_7d"), F.col("views_7d"))
        er30 = _ratio(F.col("engagements_30d"), F.col("views_30d"))
        sr7 = _ratio(F.col("shares_7d"), F.col("views_7d"))
        sr30 = _ratio(F.col("shares_30d"), F.col("views_30d"))
        per_post = _ratio(F.col("engagements_30d"), F.col("posts_30d"))
        return (
            joined.withColumn("growth_7d", _ratio(F.col("followers") - F.col("_f7"), F.col("_f7")))
            .withColumn("growth_30d", _ratio(F.col("followers") - F.col("_f30"), F.col("_f30")))
            .withColumn("engagement_rate_7d", er7)
            .withColumn("engagement_rate_30d", er30)
            .withColumn("engagement_rate_trend", _ratio(er7, er30))
            .withColumn("share_rate_7d", sr7)
            .withColumn("share_rate_trend", _ratio(sr7, sr30))
            .withColumn("views_per_follower_7d", _ratio(F.col("views_7d") / 7, F.col("followers")))
            .withColumn("engagements_per_post_30d", per_post)
            .withColumn("cost_per_engagement", _ratio(F.col("price_per_post"), per_post))
            .withColumn("log_followers", F.log1p(F.col("followers").cast("double")))
            .drop("_f7", "_f30", "engagements")
        )

    return transform


def with_future_growth(horizon: int = 30) -> Transform:
    """A transform of daily features adding ``future_growth``: followers ``horizon`` days later over today's,
    minus one (NULL when that snapshot is not there yet)."""

    def transform(daily: DataFrame) -> DataFrame:
        later = daily.select(
            "creator_id", (F.col("day") - horizon).alias("day"), F.col("followers").alias("_future")
        )
        return (
            daily.join(later, ["creator_id", "day"], "left")
            .withColumn("future_growth", _ratio(F.col("_future") - F.col("followers"), F.col("followers")))
            .drop("_future")
        )

    return transform
