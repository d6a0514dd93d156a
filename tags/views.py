"""Base views of the tag build: silver tables keyed by OneID and seen "as of" a date.

Every view carries ``oneid`` and ``as_of``; event-like views (orders, events, ads, KOL engagement) keep only
rows up to ``as_of`` and add ``days_ago`` (0 on ``as_of`` itself), so a tag such as "orders in the last 30
days" is ``where: days_ago < 30``, and the same definitions give the features of a model as of a past
cutoff. Members, 3P demographics and DMP segments are profiles, not events: they are taken as known on
``dt`` (the latest record per key).

A record gets the OneID of its highest-priority identifier (the star order of the identity rules): every
identifier of a record resolves to the same OneID, except links pruned as shared, where the record follows
its most personal identifier (a member id before a shared tablet's device id).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F


@dataclass(frozen=True)
class ViewSpec:
    """How one silver table becomes a base view.

    Attributes:
        name: the view name used in tag definitions.
        identifiers: ``(silver column, id_type)`` in priority order (the identity rules' star order).
        time_column: the event time (event-like views) or None for profile views.
        latest_by: for profile views, ``(key columns, order column)`` keeping the latest row per key.
    """

    name: str
    identifiers: tuple[tuple[str, str], ...]
    time_column: str | None = None
    latest_by: tuple[tuple[str, ...], str] | None = None


def _first_identifier(identifiers: Sequence[tuple[str, str]]) -> Column:
    present = [
        F.when(
            F.trim(F.col(f"`{c}`").cast("string")) != "",
            F.struct(F.lit(t).alias("id_type"), F.col(f"`{c}`").cast("string").alias("id_value")),
        )
        for c, t in identifiers
    ]
    return F.coalesce(*present)


def with_oneid(spec: ViewSpec, oneid_map: DataFrame) -> DataFrame:
    """A transform adding ``oneid`` to the records of one silver table (records without a known identifier
    are dropped)."""

    def transform(silver: DataFrame) -> DataFrame:
        key = _first_identifier(spec.identifiers)
        keyed = (
            silver.withColumn("_key", key)
            .where(F.col("_key").isNotNull())
            .withColumn("id_type", F.col("_key.id_type"))
            .withColumn("id_value", F.col("_key.id_value"))
            .drop("_key")
        )
        ids = oneid_map.select("id_type", "id_value", "oneid")
        return keyed.join(ids, ["id_type", "id_value"]).drop("id_type", "id_value")

    return transform


def as_of_view(spec: ViewSpec, as_of: _dt.date) -> Callable[[DataFrame], DataFrame]:
    """A transform keeping what was known on ``as_of``: event rows up to that day with ``days_ago``, or the
    latest profile row per key."""

    def transform(records: DataFrame) -> DataFrame:
        cutoff = F.lit(as_of)
        if spec.time_column is not None:
            date = F.to_date(F.col(spec.time_column))
            records = records.where(date <= cutoff).withColumn("days_ago", F.datediff(cutoff, date))
        elif spec.latest_by is not None:
            keys, order = spec.latest_by
            w = Window.partitionBy(*keys).orderBy(F.col(order).desc_nulls_last())
            records = records.withColumn("_n", F.row_number().over(w)).where(F.col("_n") == 1).drop("_n")
        return records.withColumn("as_of", cutoff)

    return transform


def population(oneid_map: DataFrame) -> DataFrame:
    """Every OneID of a map snapshot, once: the rows of the profile."""
    return oneid_map.select("oneid").distinct()
