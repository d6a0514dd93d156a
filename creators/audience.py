"""Creator audiences: the OneIDs who engaged with each creator's content, and what they look like.

    silver.kol_engagement (records in the window) + gold.oneid_map
        -> build_engagers:        (creator_id, oneid, engagements)   people, never leaves the lake
        -> build_audience_sizes:  (creator_id, engaged_oneids, engagements)
        -> build_audience_tags:   (creator_id, tag, value, audience_count, audience_share,
                                   population_count, population_share, tgi)   counts only

TGI (Target Group Index) is the share of the creator's audience holding a value over the share of the whole
profiled population holding it, x 100: 150 means the value is 1.5 times as frequent among the creator's
engagers. Which counts a role may see (the minimum group size k) is decided where they are shown.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Mapping, Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

Transform = Callable[[DataFrame], DataFrame]

PROFILE_TAGS = (
    "gender",
    "age_band",
    "city_tier",
    "income_band",
    "category_preference",
    "price_band_preference",
    "rfm_segment",
    "aipl_stage",
    "value_tier",
    "is_member",
)
"""Categorical profile tags described for each creator audience (those the profile has)."""
NONE_LABEL = "(none)"
_SEP = "\u0001"


def build_engagers(
    id_columns: Mapping[str, str],
    oneid_map: DataFrame,
    dt: _dt.date,
    *,
    within_days: int = 30,
    time_column: str = "event_time",
) -> Transform:
    """A transform of ``silver.kol_engagement`` to the OneIDs who engaged with each creator.

    Args:
        id_columns: silver column -> ID type of the engagement source's identifiers.
        oneid_map: ``(id_type, id_value, oneid)`` of one date.
        dt: the last day of the window (inclusive).
        within_days: window length in calendar days.
        time_column: the event time column.

    Returns:
        A transform giving ``(creator_id, oneid, engagements)``: one row per creator and OneID, with the
        number of engagement records that reached the OneID.
    """
    start = dt - _dt.timedelta(days=within_days - 1)
    end = dt + _dt.timedelta(days=1)

    def transform(engagement: DataFrame) -> DataFrame:
        when = F.col(f"`{time_column}`")
        window = engagement.where(
            (when >= F.lit(start).cast("timestamp")) & (when < F.lit(end).cast("timestamp"))
        ).withColumn("_record", F.monotonically_increasing_id())
        pairs = [
            F.struct(F.lit(t).alias("id_type"), F.col(f"`{c}`").cast("string").alias("id_value"))
            for c, t in id_columns.items()
            if c in engagement.columns
        ]
        if not pairs:
            return engagement.sparkSession.createDataFrame(
                [], "creator_id string, oneid string, engagements long"
            )
        ids = window.select(
            "_record",
            "creator_id",
            F.explode(F.filter(F.array(*pairs), lambda p: p["id_value"].isNotNull())).alias("_id"),
        ).select(
            "_record",
            "creator_id",
            F.col("_id.id_type").alias("id_type"),
            F.col("_id.id_value").alias("id_value"),
        )
        mapped = oneid_map.select("id_type", "id_value", F.col("oneid").cast("string").alias("oneid"))
        records = (
            ids.join(mapped, ["id_type", "id_value"]).select("_record", "creator_id", "oneid").distinct()
        )
        return records.groupBy("creator_id", "oneid").agg(F.count("*").alias("engagements"))

    return transform


def build_audience_sizes(engagers: DataFrame) -> DataFrame:
    """``(creator_id, engaged_oneids, engagements)`` per creator from :func:`build_engagers`."""
    return engagers.groupBy("creator_id").agg(
        F.countDistinct("oneid").alias("engaged_oneids"), F.sum("engagements").alias("engagements")
    )


def _label(column: str) -> F.Column:
    return F.coalesce(F.col(f"`{column}`").cast("string"), F.lit(NONE_LABEL))


def build_audience_tags(engagers: DataFrame, tags: Sequence[str]) -> Transform:
    """A transform of one profile date to the tag distribution of each creator's audience, with TGI.

    Args:
        engagers: ``(creator_id, oneid)`` (:func:`build_engagers`).
        tags: categorical profile columns to describe (each person has one value of each; NULL is
            :data:`NONE_LABEL`).

    Returns:
        A transform giving ``(creator_id, tag, value, audience_count, audience_share, population_count,
        population_share, tgi)``; engagers outside the profile are not counted.
    """

    def transform(profile: DataFrame) -> DataFrame:
        people = profile.select(
            F.col("oneid").cast("string").alias("oneid"),
            F.explode(F.array(*[F.concat(F.lit(t + _SEP), _label(t)) for t in tags])).alias("_p"),
        ).select(
            "oneid",
            F.substring_index("_p", _SEP, 1).alias("tag"),
            F.expr(f"substring(_p, instr(_p, '{_SEP}') + 1)").alias("value"),
        )
        population = people.groupBy("tag", "value").agg(F.count("*").alias("population_count"))
        total = profile.agg(F.count("*").alias("_population"))
        audience = engagers.select("creator_id", F.col("oneid").cast("string").alias("oneid")).distinct()
        in_profile = audience.join(profile.select(F.col("oneid").cast("string").alias("oneid")), "oneid")
        sizes = in_profile.groupBy("creator_id").agg(F.count("*").alias("_size"))
        counts = (
            audience.join(people, "oneid")
            .groupBy("creator_id", "tag", "value")
            .agg(F.count("*").alias("audience_count"))
        )
        return (
            counts.join(sizes, "creator_id")
            .join(population, ["tag", "value"])
            .crossJoin(total)
            .select(
                "creator_id",
                "tag",
                "value",
                F.col("audience_count").cast("long").alias("audience_count"),
                (F.col("audience_count") / F.col("_size")).alias("audience_share"),
                F.col("population_count").cast("long").alias("population_count"),
                (F.col("population_count") / F.col("_population")).alias("population_share"),
            )
            .withColumn("tgi", F.col("audience_share") / F.col("population_share") * 100)
        )

    return transform
