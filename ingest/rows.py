"""Row-level contract checks at ingestion: parse landed records, type them, and say why a row is rejected.

These are pure transforms (DataFrame in, DataFrame out). A rejected row is never dropped: it carries its
reasons in ``_reasons`` and the ingest job routes it to ``quarantine.<source>``.

Reasons: ``malformed_line``, ``bad_encoding``, ``missing_required:<col>``, ``bad_type:<col>``,
``impossible_time:<col>``, ``invalid_identifier:<col>`` (added by identity normalisation).
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
from collections.abc import Callable, Iterator

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from schemas import SourceContract

Transform = Callable[[DataFrame], DataFrame]

RAW = "_raw"
REASONS = "_reasons"
EXTRA = "_extra"
MALFORMED = "_malformed"

EARLIEST_TIMESTAMP = "1970-01-01 00:00:00"
EARLIEST_DATE = "1900-01-01"


def _parse_csv_batches(
    header: list[str], columns: list[str]
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    positions = {name: header.index(name) for name in columns if name in header}
    extra = [(i, name) for i, name in enumerate(header) if name not in columns]
    width = len(header)

    def parse(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for pdf in batches:
            out: dict[str, list] = {name: [] for name in (*columns, EXTRA, MALFORMED)}
            for line in pdf[RAW]:
                try:
                    fields = next(csv.reader([line], strict=True))
                    ok = len(fields) == width
                except (csv.Error, StopIteration):
                    ok = False
                if not ok:
                    for name in columns:
                        out[name].append(None)
                    out[EXTRA].append(None)
                    out[MALFORMED].append(True)
                    continue
                for name in columns:
                    pos = positions.get(name)
                    value = fields[pos].strip() if pos is not None else ""
                    out[name].append(value or None)
                more = {name: fields[i] for i, name in extra if fields[i] != ""}
                out[EXTRA].append(json.dumps(more, ensure_ascii=False) if more else None)
                out[MALFORMED].append(False)
            yield pd.DataFrame({RAW: pdf[RAW].tolist(), **out})

    return parse


def parse_csv(header: list[str], columns: list[str]) -> Transform:
    """Split CSV lines (column ``_raw``) into the contract's columns, as strings.

    Quoted fields follow RFC 4180; a line with an unclosed quote or the wrong number of fields is marked
    ``_malformed``. Columns of the file the contract does not declare go to ``_extra`` as a JSON object.
    Parsed with Python's ``csv`` in ``mapInPandas`` because Sail's ``from_csv`` ignores quotes.

    Args:
        header: the file's column names, lower-cased, in file order.
        columns: the contract's column names.
    """
    schema = ", ".join(
        [f"{RAW} string", *[f"`{c}` string" for c in columns], f"{EXTRA} string", f"{MALFORMED} boolean"]
    )

    def transform(df: DataFrame) -> DataFrame:
        return df.select(RAW).mapInPandas(_parse_csv_batches(header, columns), schema)

    return transform


def parse_jsonl(columns: list[str]) -> Transform:
    """Parse JSON-lines records (column ``_raw``) into the contract's columns, as strings.

    A line that is not a JSON object is marked ``_malformed``; keys the contract does not declare go to
    ``_extra``. Numbers and nested values are kept as their JSON text. Columns come from a struct-typed
    ``from_json`` (looking values up in a parsed map is ten times slower on Sail).
    """
    schema = ", ".join(f"`{c}` string" for c in columns)

    def transform(df: DataFrame) -> DataFrame:
        undeclared = F.map_filter(
            F.from_json(F.col(RAW), "map<string,string>"), lambda k, _v: ~k.isin(*columns)
        )
        return df.select(
            RAW,
            F.from_json(F.col(RAW), schema).alias("_s"),
            undeclared.alias("_x"),
            F.json_object_keys(F.col(RAW)).isNull().alias(MALFORMED),
        ).select(
            RAW,
            *[
                F.when(~F.col(MALFORMED), F.nullif(F.trim(F.col(f"_s.`{c}`")), F.lit(""))).alias(c)
                for c in columns
            ],
            F.when(F.size("_x") > 0, F.to_json("_x")).alias(EXTRA),
            MALFORMED,
        )

    return transform


def from_parquet(columns: list[str]) -> Transform:
    """Bring rows read from Parquet to the same shape as parsed text: contract columns as strings,
    ``_raw`` as the row's JSON, undeclared columns in ``_extra``."""

    def transform(df: DataFrame) -> DataFrame:
        present = [c for c in df.columns if c in columns]
        extra = [c for c in df.columns if c not in columns]
        as_text = {c: F.nullif(F.trim(F.col(f"`{c}`").cast("string")), F.lit("")) for c in df.columns}
        extra_col = (
            F.to_json(F.struct(*[as_text[c].alias(c) for c in extra]))
            if extra
            else F.lit(None).cast("string")
        )
        return df.select(
            F.to_json(F.struct(*[as_text[c].alias(c) for c in df.columns])).alias(RAW),
            *[(as_text[c] if c in present else F.lit(None).cast("string")).alias(c) for c in columns],
            extra_col.alias(EXTRA),
            F.lit(False).alias(MALFORMED),
        )

    return transform


def _typed(name: str, type_name: str) -> Column:
    return F.expr(f"try_cast(`{name}` AS {type_name})")


def with_typed_columns(contract: SourceContract, dt: _dt.date) -> Transform:
    """Cast each contract column from text to its type and collect the reasons a row breaks the contract.

    Adds ``_reasons`` (array of strings, empty when the row is good) and replaces each column by its typed
    value. Impossible times are before 1970 (timestamps) or 1900 (dates), or more than one day after ``dt``.

    Args:
        contract: the source contract.
        dt: the logical date of the batch.
    """
    latest = (dt + _dt.timedelta(days=2)).isoformat()

    def transform(df: DataFrame) -> DataFrame:
        checks: list[Column] = [F.when(F.col(MALFORMED), F.lit("malformed_line"))]
        typed: dict[str, Column] = {}
        for col in contract.columns:
            raw = F.col(f"`{col.name}`")
            value = raw if col.spark_type == "string" else _typed(col.name, col.spark_type)
            typed[col.name] = value
            if col.required:
                checks.append(F.when(~F.col(MALFORMED) & raw.isNull(), F.lit(f"missing_required:{col.name}")))
            if col.spark_type != "string":
                checks.append(F.when(raw.isNotNull() & value.isNull(), F.lit(f"bad_type:{col.name}")))
            if col.spark_type in ("timestamp", "date"):
                low = EARLIEST_TIMESTAMP if col.spark_type == "timestamp" else EARLIEST_DATE
                bound = F.lit(low).cast(col.spark_type)
                checks.append(
                    F.when(
                        value.isNotNull() & ((value < bound) | (value >= F.lit(latest).cast(col.spark_type))),
                        F.lit(f"impossible_time:{col.name}"),
                    )
                )
        reasons = F.filter(F.array(*checks), lambda r: r.isNotNull())
        rest = [c for c in df.columns if c not in typed]
        return df.select(*rest, *[v.alias(k) for k, v in typed.items()], reasons.alias(REASONS))

    return transform


def with_reason(reasons: Column, condition: Column, reason: str) -> Column:
    """``reasons`` with ``reason`` appended where ``condition`` holds."""
    return F.when(condition, F.concat(reasons, F.array(F.lit(reason)))).otherwise(reasons)


def latest_per_key(keys: list[str], order_by: str | None) -> Transform:
    """Keep one row per key: the one with the greatest ``order_by`` (ties broken by the raw line, so the
    choice is deterministic), or the first by raw line when there is no ordering column."""

    def transform(df: DataFrame) -> DataFrame:
        from pyspark.sql import Window

        order = ([F.col(order_by).desc_nulls_last()] if order_by else []) + [F.col(RAW)]
        window = Window.partitionBy(*[F.col(f"`{k}`") for k in keys]).orderBy(*order)
        return df.withColumn("_rank", F.row_number().over(window)).filter("_rank = 1").drop("_rank")

    return transform


def reason_counts(df: DataFrame) -> dict[str, int]:
    """Count rejected rows per reason (a row with two reasons counts under both)."""
    rows = df.select(F.explode(REASONS).alias("reason")).groupBy("reason").count().collect()
    return {r["reason"]: r["count"] for r in sorted(rows, key=lambda r: r["reason"])}
