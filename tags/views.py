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
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from schemas import SILVER_SOURCE, SourceContract

LINEAGE_DDL = (("_source_file", "string"), ("_batch_id", "string"), ("_ingested_at", "timestamp"))
"""The lineage columns ingest adds to every silver table (``_dt``, the ingest date, comes last)."""


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


def first_identifier(identifiers: Sequence[tuple[str, str]]) -> Column:
    """The ``(id_type, id_value)`` struct of a row's first non-blank identifier in priority order, the one
    :func:`with_oneid` keys the row on (NULL when the row has none)."""
    present = [
        F.when(
            F.trim(F.col(f"`{c}`").cast("string")) != "",
            F.struct(F.lit(t).alias("id_type"), F.col(f"`{c}`").cast("string").alias("id_value")),
        )
        for c, t in identifiers
    ]
    return F.coalesce(*present)


def silver_ddl(contracts: Iterable[SourceContract]) -> str:
    """The DDL of a silver table as ingest writes it from the source contracts of its entity: lineage, the
    contract columns with direct PII as ``<column>_hash`` and ``<column>_masked``, ``_source`` and ``_dt``.

    A deployment without a source for an entity builds its view from an empty frame of this schema, so the
    tags over it are NULL (or their default) instead of failing.

    Args:
        contracts: the source contracts whose ``entity`` is the table (several sources may share one); a
            column declared by more than one keeps the type of the first.

    Raises:
        ValueError: no contract is given.
    """
    columns: dict[str, str] = dict(LINEAGE_DDL)
    given = False
    for contract in contracts:
        given = True
        for c in contract.columns:
            if c.pii == "direct":
                columns.setdefault(f"{c.name}_hash", "string")
                columns.setdefault(f"{c.name}_masked", "string")
            else:
                columns.setdefault(c.name, c.spark_type)
    if not given:
        raise ValueError("a silver schema needs at least one source contract of the entity")
    columns[SILVER_SOURCE] = "string"
    columns["_dt"] = "date"
    return ", ".join(f"`{name}` {kind}" for name, kind in columns.items())


def with_oneid(spec: ViewSpec, oneid_map: DataFrame) -> DataFrame:
    """A transform adding ``oneid`` to the records of one silver table (records without a known identifier
    are dropped)."""

    def transform(silver: DataFrame) -> DataFrame:
        key = first_identifier(spec.identifiers)
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


def referenced_columns(
    spec: ViewSpec, columns: Sequence[str], definitions: str, queries: Iterable[str] = ()
) -> list[str] | None:
    """The columns of a keyed view that a build can read: those named as a word anywhere in the text of
    its tag definitions, and those the view itself needs (event time, profile keys and order), after
    ``oneid``. A build checkpoints only these (the event log keeps 6 of its 22 columns).

    Args:
        spec: the view.
        columns: the keyed view's columns.
        definitions: the text of every tag definition of the build (SQL, names, descriptions); a word match
            over it can only keep more columns than the SQL reads.
        queries: the SQL of the build's query tags.

    Returns:
        The columns to keep, or None (keep every column) when a query may select ``*`` (a ``*`` that is
        not ``count(*)``).
    """
    if any("*" in re.sub(r"\(\s*\*\s*\)", "", q) for q in queries):
        return None
    needed = {spec.time_column} if spec.time_column else set()
    if spec.latest_by is not None:
        needed |= {*spec.latest_by[0], spec.latest_by[1]}
    # Spark resolves column names case-insensitively.
    named = {w.lower() for w in re.findall(r"\w+", definitions)} | {c.lower() for c in needed}
    return ["oneid", *[c for c in columns if c != "oneid" and c.lower() in named]]


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
