"""Row-level contract checks at ingestion: parse landed records, type them, and say why a row is rejected.

These are pure transforms (DataFrame in, DataFrame out). A rejected row is never dropped: it carries its
reasons in ``_reasons`` and the ingest job routes it to ``quarantine.<source>``.

Reasons: ``malformed_line``, ``bad_encoding``, ``missing_required:<col>``, ``bad_type:<col>``,
``impossible_time:<col>``, ``invalid_identifier:<col>`` (added by identity normalisation).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from schemas import SourceContract

Transform = Callable[[DataFrame], DataFrame]

RAW = "_raw"
REASONS = "_reasons"
EXTRA = "_extra"
MALFORMED = "_malformed"
RAW_FIELDS = "_raw_fields"

EARLIEST_TIMESTAMP = "1970-01-01 00:00:00"
EARLIEST_DATE = "1900-01-01"


_CSV_FIELD = r'"(?:[^"]|"")*"|[^,"\r][^,\r]*|'
"""One field as Python's ``csv`` reads it (excel dialect, ``strict=True``): quoted with doubled inner quotes,
or unquoted (not starting with a quote; quotes inside are literal), or empty. A carriage return ends a
record, so one inside an unquoted field makes the line malformed."""
_CSV_FIELD_LIMIT = 131_072  # csv.field_size_limit(): a longer field is an error, so the line is malformed
_WHITESPACE = "".join(c for c in map(chr, range(0x10000)) if c.isspace())
_STRIP = f"^[{_WHITESPACE}]+|[{_WHITESPACE}]+$"  # what str.strip() removes, for any regex engine
_CSV_SPLIT = r',(?:"((?:[^"]|"")*)"|([^,"\r][^,\r]*|))'
"""One field with its leading comma: group 1 is a quoted field's text (quotes still doubled), group 2 an
unquoted field."""


def parse_csv(header: list[str], columns: list[str]) -> Transform:
    """Split CSV lines (column ``_raw``) into the contract's columns, as strings.

    Quoted fields follow RFC 4180 exactly as Python's ``csv`` reads one line with ``strict=True``; a line
    with an unclosed quote, text after a closing quote or the wrong number of fields is marked
    ``_malformed``. Columns of the file the contract does not declare go to ``_extra`` as a JSON object of
    their non-empty values. Parsed by the engine (Sail's ``from_csv`` ignores quotes), about twice as fast
    as Python's ``csv`` in ``mapInPandas``: one regular expression validates the line, a split (or, on lines
    with quotes, a regular expression) cuts it into fields.

    Args:
        header: the file's column names, lower-cased, in file order.
        columns: the contract's column names.
    """
    positions = {name: header.index(name) for name in columns if name in header}
    extra: dict[str, list[int]] = {}
    for i, name in enumerate(header):
        if name not in columns:
            extra.setdefault(name, []).append(i)

    def transform(df: DataFrame) -> DataFrame:
        # Trailing carriage returns end the record (a CRLF file); the leading comma makes every match
        # non-empty, so an empty first field is found like the others.
        text = F.regexp_replace(F.col(RAW), "\r+$", "")
        line = F.concat(F.lit(","), text)
        quoted = F.col(RAW).contains('"')
        # Most lines have no quote: a plain split gives their fields (extracting them with the regular
        # expression is five times slower on Sail, so it only runs on lines with quotes).
        split = df.select(
            RAW,
            line.alias("_line"),
            F.when(quoted, F.regexp_extract_all(line, F.lit(_CSV_SPLIT), 1)).alias("_quoted"),
            F.when(quoted, F.regexp_extract_all(line, F.lit(_CSV_SPLIT), 2))
            .otherwise(F.split(text, ","))
            .alias("_plain"),
        )
        # A field is the text of one group or the other; a malformed line gives no values.
        value = {
            i: F.concat_ws("", F.regexp_replace(F.get("_quoted", i), '""', '"'), F.get("_plain", i))
            for i in range(len(header))
        }
        # csv.field_size_limit(): one position at a time, as Sail cannot push a filter through a lambda.
        too_long = reduce(
            lambda a, b: a | b, [F.length(v) > _CSV_FIELD_LIMIT for v in value.values()], F.lit(False)
        )
        malformed = (
            (F.col("_line") == ",")
            | ~F.col("_line").rlike(f"^(?:,(?:{_CSV_FIELD}))+$")
            | (F.size("_plain") != len(header))
            | ((F.length("_line") > _CSV_FIELD_LIMIT) & too_long)
        )
        fields = split.select(
            RAW, *[v.alias(f"_f{i}") for i, v in value.items()], malformed.alias(MALFORMED)
        ).select(
            RAW,
            *[F.when(~F.col(MALFORMED), F.col(f"_f{i}")).alias(f"_f{i}") for i in value],
            MALFORMED,
        )
        # The last non-empty value of a repeated undeclared name wins, as in a dict built in file order.
        more = {
            name: F.coalesce(*[F.nullif(F.col(f"_f{i}"), F.lit("")) for i in reversed(where)])
            for name, where in extra.items()
        }
        extra_json = (
            F.when(
                F.coalesce(*more.values()).isNotNull(),
                F.to_json(F.struct(*[c.alias(n) for n, c in more.items()])),
            )
            if more
            else F.lit(None).cast("string")
        )
        return fields.select(
            RAW,
            *[
                F.nullif(F.regexp_replace(F.col(f"_f{positions[c]}"), _STRIP, ""), F.lit("")).alias(c)
                if c in positions
                else F.lit(None).cast("string").alias(c)
                for c in columns
            ],
            extra_json.alias(EXTRA),
            MALFORMED,
        )

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
    undeclared columns in ``_extra``, and instead of a ``_raw`` line the row's values as text in the struct
    ``_raw_fields``, turned into JSON (``build_raw_line``) only for the rows that need it (quarantined rows,
    ties between duplicates): a JSON copy of every row would cost more than the rest of the step."""

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
            F.struct(*[as_text[c].alias(c) for c in df.columns]).alias(RAW_FIELDS),
            *[(as_text[c] if c in present else F.lit(None).cast("string")).alias(c) for c in columns],
            extra_col.alias(EXTRA),
            F.lit(False).alias(MALFORMED),
        )

    return transform


def build_raw_line(columns: list[str]) -> Column:
    """The record as landed, for rows with these columns: the text line, or a Parquet row's values as JSON.

    Args:
        columns: the columns of the rows (``DataFrame.columns``).
    """
    return F.col(RAW) if RAW in columns else F.to_json(F.col(RAW_FIELDS))


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
    choice is deterministic), or the first by raw line when there is no ordering column.

    Only keys that occur more than once are ranked with a window; the rows of the other keys pass through
    untouched (most keys are unique, and a window sorts every row it sees). NULL keys form one key.
    """

    def transform(df: DataFrame) -> DataFrame:
        from pyspark.sql import Window

        key_cols = [F.col(f"`{k}`") for k in keys]
        repeated = (
            df.groupBy(*key_cols)
            .count()
            .filter(F.col("count") > 1)
            .select(*[F.col(f"`{k}`").alias(f"_key{i}") for i, k in enumerate(keys)])
        )
        same_key = [F.col(f"`{k}`").eqNullSafe(F.col(f"_key{i}")) for i, k in enumerate(keys)]
        single = df.join(repeated, same_key, "left_anti")
        order = ([F.col(order_by).desc_nulls_last()] if order_by else []) + [build_raw_line(df.columns)]
        window = Window.partitionBy(*key_cols).orderBy(*order)
        latest = (
            df.join(repeated, same_key, "left_semi")
            .withColumn("_rank", F.row_number().over(window))
            .filter("_rank = 1")
            .drop("_rank")
        )
        return single.unionByName(latest)

    return transform


def reason_counts(df: DataFrame) -> dict[str, int]:
    """Count rejected rows per reason (a row with two reasons counts under both)."""
    rows = df.select(F.explode(REASONS).alias("reason")).groupBy("reason").count().collect()
    return {r["reason"]: r["count"] for r in sorted(rows, key=lambda r: r["reason"])}
