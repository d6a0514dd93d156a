"""Creator features per creator and day from the daily creator statistics (``silver.creators``).

    silver.creators (creator_id, snapshot_date, followers, posts, views, likes, comments, shares, price)
        -> with_daily_features: follower growth over 7 / 30 days, 7- and 30-day engagement and share rates,
           their trends, reach per follower, engagements per post, cost per engagement
        -> with_future_growth: the follower growth of the next 30 days (the label of the potential model)

Windows are calendar days, so a missing snapshot does not stretch a window: the snapshots are laid on a
calendar of every day from a creator's first snapshot to its last (a missing day is a row of NULLs, dropped
again at the end), where a window of N rows is N days and the followers 7 and 30 days earlier are 7 and 30
rows back, NULL when that snapshot is missing. Row frames and offsets cost a fraction of ``rangeBetween``
frames, and every window shares one partitioning and order, so the engine sorts the snapshots once; a
self-join of the derived frame would compute the whole pipeline again. The followers ``horizon`` days later
come from a window framed on that one day.
"""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.window import WindowSpec

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


def _days() -> WindowSpec:
    """A creator's rows in day order (built on use: a window needs a session)."""
    return Window.partitionBy("creator_id").orderBy("day")


def _followers_on(offset: int) -> Column:
    """The followers of the same creator's snapshot exactly ``offset`` days away (NULL without one): the
    frame holds that one day, and a creator has one snapshot a day."""
    return F.max("followers").over(_days().rangeBetween(offset, offset))


def latest_snapshots(stats: DataFrame) -> DataFrame:
    """One row per creator and snapshot date (the last ingested wins when a source sent a day twice).

    A creator's rows in date order, the latest ingested first within a date: a row following one of the same
    date is an older copy. One window partition per creator, not one per creator and date: the engine pays
    for a partition far more than for a row."""
    if "_dt" not in stats.columns:
        return stats.dropDuplicates(["creator_id", "snapshot_date"])
    order = Window.partitionBy("creator_id").orderBy("snapshot_date", F.col("_dt").desc())
    same_day = F.lag("snapshot_date").over(order).eqNullSafe(F.col("snapshot_date"))
    older = (F.row_number().over(order) > 1) & same_day
    return stats.withColumn("_older", older).where(~F.col("_older")).drop("_older")


def with_daily_features() -> Transform:
    """A transform of creator snapshots (one per creator and day, ``creator_id`` and ``snapshot_date`` set:
    :func:`latest_snapshots` of the silver keys) to one row per creator and day with the features. The
    snapshots are read twice (their days, then the rows): checkpoint a derived input first.

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
        span = base.groupBy("creator_id").agg(F.min("day").alias("_first"), F.max("day").alias("_last"))
        calendar = span.select("creator_id", F.explode(F.sequence("_first", "_last")).alias("day"))
        dense = calendar.join(base.withColumn("_snapshot", F.lit(True)), ["creator_id", "day"], "left")
        days = _days()
        w7, w30 = days.rowsBetween(-6, 0), days.rowsBetween(-29, 0)
        joined = dense.select(
            *base.columns,
            "_snapshot",
            F.sum("views").over(w7).alias("views_7d"),
            F.sum("views").over(w30).alias("views_30d"),
            F.sum("engagements").over(w7).alias("engagements_7d"),
            F.sum("engagements").over(w30).alias("engagements_30d"),
            F.sum("shares").over(w7).alias("shares_7d"),
            F.sum("shares").over(w30).alias("shares_30d"),
            F.sum("posts").over(w30).alias("posts_30d"),
            F.lag("followers", 7).over(days).alias("_f7"),
            F.lag("followers", 30).over(days).alias("_f30"),
        ).where(F.col("_snapshot"))
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
            .drop("_f7", "_f30", "engagements", "_snapshot")
        )

    return transform


def with_future_growth(horizon: int = 30) -> Transform:
    """A transform of daily features adding ``future_growth``: followers ``horizon`` days later over today's,
    minus one (NULL when that snapshot is not there yet)."""

    def transform(daily: DataFrame) -> DataFrame:
        future = _followers_on(horizon)
        return daily.withColumn("future_growth", _ratio(future - F.col("followers"), F.col("followers")))

    return transform
