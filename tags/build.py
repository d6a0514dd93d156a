"""Tag values from base views: the wide frame (one row per OneID, one column per tag), its long form and
its statistics. Pure DataFrame code: the job reads the views and writes the results.

Order of a build: aggregate and query tags (one grouped pass per base view, plus one two-level pass per
distinct key counted), then expression and function tags in dependency order; predictive tags are scored by
``tags.models`` and joined in by the job.

Memory is bounded by partitions, not by people: a ``count(DISTINCT x) FILTER (WHERE ...)`` in a grouped pass
keeps a set of ``x`` per OneID and per tag (about 18 KB per OneID and tag on Sail), so distinct counts are
computed in two levels instead: group by OneID and ``x`` with one ``bool_or(where)`` flag per tag, then
``count_if`` per tag (see ``distinct_counts``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from tags.catalog import TagDefinition
from tags.functions import build_function

Checkpoint = Callable[[DataFrame, str], DataFrame]
NUMERIC = ("long", "double")
AGGREGATES = frozenset(
    {
        *("count", "sum", "min", "max", "avg", "mean", "max_by", "min_by", "mode", "count_if"),
        *("collect_set", "collect_list", "approx_count_distinct", "first", "last", "stddev", "variance"),
        *("percentile", "median", "any", "bool_or", "bool_and", "every", "some"),
    }
)
_CALL = re.compile(r"^\s*([A-Za-z_]+)\s*\(")
_COUNT_DISTINCT = re.compile(r"^\s*count\s*\(\s*DISTINCT\s+(.+)\)\s*$", re.IGNORECASE | re.DOTALL)
TOP_VALUES = 20


def _typed(tag: TagDefinition, col: Column) -> Column:
    if tag.default is not None:
        # Not coalesce: its result is NOT NULL, and a Delta table created from it refuses NULLs later
        # (a tag whose definition changes, a partial rebuild joining older rows).
        col = F.when(col.isNull(), F.lit(tag.default)).otherwise(col)
    return col.cast(tag.spark_type)


@contextmanager
def registered_views(spark: SparkSession, views: dict[str, DataFrame]):
    """Register the base views under their catalog names for the duration of the block (query tags)."""
    for name, df in views.items():
        df.createOrReplaceTempView(name)
    try:
        yield
    finally:
        for name in views:
            spark.catalog.dropTempView(name)


def source_tags(
    population: DataFrame, views: dict[str, DataFrame], tags: Iterable[TagDefinition]
) -> DataFrame:
    """Aggregate and query tags joined onto the population (``oneid`` plus one column per tag).

    Aggregate tags over the same view are computed in one grouped pass with ``FILTER (WHERE ...)``, except
    ``count(DISTINCT <expr>)`` tags, which get one two-level pass per view and distinct expression
    (``distinct_counts``); query tags read the views registered under their names (see ``registered_views``).
    """
    tags = list(tags)
    wide = population
    by_view: dict[str, list[TagDefinition]] = {}
    by_key: dict[tuple[str, str], list[TagDefinition]] = {}
    for tag in tags:
        if tag.kind == "aggregate":
            key = _distinct_key(tag.value)
            if key is None:
                by_view.setdefault(tag.from_, []).append(tag)  # type: ignore[arg-type]
            else:
                by_key.setdefault((tag.from_, key), []).append(tag)  # type: ignore[arg-type]
    for (view, key), group in by_key.items():
        counts = views[view].transform(distinct_counts(key, {t.id: t.where for t in group}))
        wide = wide.join(counts, "oneid", "left")
    for view, group in by_view.items():
        # One grouped pass per view; a tag whose value is not one aggregate call (FILTER attaches to an
        # aggregate only) gets its own pass over the rows of its where.
        single = [t for t in group if not t.where or _is_one_aggregate(t.value)]
        passes = [(None, single)] if single else []
        passes += [(t.where, [t]) for t in group if t not in single]
        for where, tags_ in passes:
            rows = views[view] if where is None else views[view].where(F.expr(where))
            aggs = [
                F.expr(f"{t.value} FILTER (WHERE {t.where})" if t.where and where is None else t.value).alias(
                    t.id
                )
                for t in tags_
            ]
            wide = wide.join(rows.groupBy("oneid").agg(*aggs), "oneid", "left")
    spark = population.sparkSession
    for tag in tags:
        if tag.kind == "query":
            values = spark.sql(tag.query).select(F.col("oneid").cast("long").alias("oneid"), F.col("value"))
            wide = wide.join(values.withColumnRenamed("value", tag.id), "oneid", "left")
    return wide.select("oneid", *[_typed(t, F.col(t.id)).alias(t.id) for t in tags])


def distinct_counts(key: str, wheres: dict[str, str | None]) -> Callable[[DataFrame], DataFrame]:
    """A transform counting the distinct non-NULL values of ``key`` per OneID, once per tag with its where:
    ``(oneid, <tag> long ...)``, one row per OneID present in the rows, the same values as
    ``count(DISTINCT <key>) FILTER (WHERE <where>)`` in one grouped pass.

    Two levels keep the state bounded: first one row per (OneID, key value) with a flag per tag (whether
    any of its rows passes the tag's where; NULL when none is true or false, which ``count_if`` skips), then
    the flags counted per OneID. Rows with a NULL key are kept in the first level so that a OneID with rows
    but no key counts 0, as the single pass does.

    Args:
        key: the SQL expression inside ``count(DISTINCT ...)``.
        wheres: tag id -> its where (SQL), or None for every row.
    """

    def transform(rows: DataFrame) -> DataFrame:
        flags = [F.expr(f"bool_or({w or 'true'})").alias(f"_f{i}") for i, w in enumerate(wheres.values())]
        per_value = rows.groupBy("oneid", F.expr(key).alias("_key")).agg(*flags)
        counted = F.col("_key").isNotNull()
        return per_value.groupBy("oneid").agg(
            *[F.count_if(counted & F.col(f"_f{i}")).alias(tag_id) for i, tag_id in enumerate(wheres)]
        )

    return transform


def _distinct_key(value: str) -> str | None:
    """The expression of a ``count(DISTINCT <expr>)`` tag value over one expression, else None."""
    match = _COUNT_DISTINCT.match(value)
    if not match or not _is_one_aggregate(value):
        return None
    key = match.group(1).strip()
    depth = 0
    for ch in key:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            return None  # count(DISTINCT a, b): several columns, left to the single pass
    return key


def _is_one_aggregate(value: str) -> bool:
    """Whether ``value`` is a single call of a known aggregate function, e.g. ``count(DISTINCT x)``."""
    match = _CALL.match(value)
    if not match or match.group(1).lower() not in AGGREGATES:
        return False
    depth = 0
    text = value.strip()
    for i, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and ch == ")":
            return i == len(text) - 1
    return False


def derived_tags(tags: Iterable[TagDefinition]) -> Callable[[DataFrame], DataFrame]:
    """A transform adding expression and function tags, in the order given (dependency order)."""

    def transform(wide: DataFrame) -> DataFrame:
        for tag in tags:
            if tag.kind == "expr":
                col = F.expr(tag.expr)
            elif tag.kind == "function":
                col = build_function(tag.function, tag.params)  # type: ignore[arg-type]
            else:
                raise ValueError(f"tag {tag.id} ({tag.kind}) is not an expression or function tag")
            wide = wide.withColumn(tag.id, _typed(tag, col))
        return wide

    return transform


def to_long(wide: DataFrame, tag_ids: list[str]) -> DataFrame:
    """The long form of ``gold.tags``: ``(oneid string, tag_id, value string)``, NULL values left out."""
    cells = F.array(
        *[F.struct(F.lit(t).alias("tag_id"), F.col(t).cast("string").alias("value")) for t in tag_ids]
    )
    return (
        wide.select(F.col("oneid").cast("string").alias("oneid"), F.explode(cells).alias("c"))
        .select("oneid", "c.tag_id", "c.value")
        .where(F.col("value").isNotNull())
    )


def coverage_stats(wide: DataFrame, tags: list[TagDefinition]) -> dict[str, dict[str, Any]]:
    """Population, filled values, approximate distinct values and, for numbers, min/mean/quartiles/max of
    every tag, in one aggregation pass.

    Returns:
        ``{tag_id: {"population", "non_null", "distinct", "distribution"}}``.
    """
    aggs = [F.count(F.lit(1)).alias("_population")]
    for t in tags:
        c = F.col(t.id)
        aggs += [
            F.count(c).alias(f"{t.id}__n"),
            F.approx_count_distinct(c.cast("string")).alias(f"{t.id}__d"),
        ]
        if t.type in NUMERIC:
            x = c.cast("double")
            aggs += [
                F.min(x).alias(f"{t.id}__min"),
                F.avg(x).alias(f"{t.id}__mean"),
                F.max(x).alias(f"{t.id}__max"),
                *[F.percentile_approx(x, q).alias(f"{t.id}__p{int(q * 100)}") for q in (0.25, 0.5, 0.75)],
            ]
    row = wide.agg(*aggs).collect()[0].asDict()
    out = {}
    for t in tags:
        dist: dict[str, Any] = {}
        if t.type in NUMERIC:
            dist = {k: row[f"{t.id}__{k}"] for k in ("min", "p25", "p50", "p75", "mean", "max")}
            if dist["mean"] is not None:  # a float sum in partition order: 12 digits make reruns agree
                dist["mean"] = float(f"{dist['mean']:.12g}")
        out[t.id] = {
            "population": row["_population"],
            "non_null": row[f"{t.id}__n"],
            "distinct": row[f"{t.id}__d"],
            "distribution": dist,
        }
    return out


def value_counts(long: DataFrame, tag_ids: list[str]) -> dict[str, dict[str, int]]:
    """The most frequent values of categorical tags (string, boolean, date), at most ``TOP_VALUES`` each."""
    if not tag_ids:
        return {}
    counts = long.where(F.col("tag_id").isin(tag_ids)).groupBy("tag_id", "value").count().collect()
    out: dict[str, dict[str, int]] = {t: {} for t in tag_ids}
    for r in sorted(counts, key=lambda r: (r["tag_id"], -r["count"], r["value"])):
        if len(out[r["tag_id"]]) < TOP_VALUES:
            out[r["tag_id"]][r["value"]] = r["count"]
    return out


def change_stats(current: DataFrame, previous: DataFrame, tag_ids: list[str]) -> dict[str, float | None]:
    """Share of the OneIDs of both dates whose value of each tag changed between them (NULL-safe)."""
    shared = [t for t in tag_ids if t in previous.columns]
    if not shared:
        return {}
    prev = previous.select("oneid", *[F.col(t).alias(f"_p_{t}") for t in shared])
    joined = current.select("oneid", *shared).join(prev, "oneid")
    aggs = [F.count(F.lit(1)).alias("_n")] + [
        F.sum(
            F.when(~F.col(t).cast("string").eqNullSafe(F.col(f"_p_{t}").cast("string")), 1).otherwise(0)
        ).alias(t)
        for t in shared
    ]
    row = joined.agg(*aggs).collect()[0].asDict()
    n = row["_n"]
    return {t: (row[t] / n if n else None) for t in shared}


def dumps(value: Any) -> str:
    """JSON for the text columns of the stats and registry tables."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
