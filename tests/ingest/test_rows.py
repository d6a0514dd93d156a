"""Row checks at ingestion on small inline records: CSV and JSON-lines parsing into text columns, Parquet rows
brought to the same shape, typing with the reasons a row is rejected, and one row per key."""

from __future__ import annotations

import datetime
import json

from pyspark.sql import functions as F

from cdp.testing import assert_df_equal
from ingest.rows import (
    KEYS,
    MALFORMED,
    REASONS,
    build_raw_line,
    from_parquet,
    latest_per_key,
    parse_csv,
    parse_jsonl,
    parse_whitespace,
    reason_counts,
    with_mapped_columns,
    with_reason,
    with_typed_columns,
)
from schemas import SourceContract

DT = datetime.date(2026, 11, 1)
CONTRACT = SourceContract.model_validate(
    {
        "kind": "source",
        "name": "shop_orders",
        "description": "orders of a test shop",
        "party": "1P",
        "entity": "orders",
        "format": "csv",
        "event_time": "order_time",
        "keys": ["order_id"],
        "columns": [
            {"name": "order_id", "type": "string", "required": True},
            {"name": "order_time", "type": "timestamp", "required": True},
            {"name": "amount", "type": "double"},
            {"name": "ship_date", "type": "date"},
        ],
    }
)
COLUMNS = [c.name for c in CONTRACT.columns]
PARSED = "_raw string, order_id string, order_time string, amount string, ship_date string, "
PARSED += "_extra string, _malformed boolean"


def lines(spark, *texts: str):
    return spark.createDataFrame([(t,) for t in texts], "_raw string")


def test_parse_csv_splits_quoted_fields_and_marks_malformed_lines(spark) -> None:
    # File order; ship_date is missing and coupon undeclared.
    header = ["order_id", "amount", "order_time", "coupon"]
    got = lines(
        spark,
        'o1,"1,200.50",2026-11-01 10:00:00,NEW10',
        "o2, 12 ,2026-11-01 11:00:00,",
        'o3,"unclosed,2026-11-01 12:00:00,X',
        "o4,1.0,2026-11-01 13:00:00",
        'o5,"say ""hi""",,',
    ).transform(parse_csv(header, COLUMNS))
    expected = spark.createDataFrame(
        [
            ('o1,"1,200.50",2026-11-01 10:00:00,NEW10', "o1", "2026-11-01 10:00:00", "1,200.50", None,
             '{"coupon":"NEW10"}', False),
            ("o2, 12 ,2026-11-01 11:00:00,", "o2", "2026-11-01 11:00:00", "12", None, None, False),
            ('o3,"unclosed,2026-11-01 12:00:00,X', None, None, None, None, None, True),
            ("o4,1.0,2026-11-01 13:00:00", None, None, None, None, None, True),  # 3 fields, header has 4
            ('o5,"say ""hi""",,', "o5", None, 'say "hi"', None, None, False),
        ],
        PARSED,
    )  # fmt: skip
    assert got.columns == ["_raw", *COLUMNS, "_extra", "_malformed"]
    assert_df_equal(got, expected, order_by=["_raw"])


def test_parse_jsonl_keeps_declared_keys_as_text_and_the_others_in_extra(spark) -> None:
    good = '{"order_id": "o1", "order_time": "2026-11-01 10:00:00", "amount": 12.5, "coupon": "NEW10"}'
    blank = '{"order_id": "  ", "amount": "7"}'
    got = lines(spark, good, blank, "not json", "[1, 2]").transform(parse_jsonl(COLUMNS))
    expected = spark.createDataFrame(
        [
            (good, "o1", "2026-11-01 10:00:00", "12.5", None, '{"coupon":"NEW10"}', False),
            (blank, None, None, "7", None, None, False),
            ("not json", None, None, None, None, None, True),
            ("[1, 2]", None, None, None, None, None, True),
        ],
        PARSED,
    )
    assert_df_equal(got.drop(KEYS), expected, order_by=["_raw"])
    # the key set of each JSON object, hashed, for the drift report: equal only for the same keys in any
    # order, NULL for a line that is not one
    shuffled = '{"coupon": "x", "amount": 1, "order_time": "t", "order_id": "o"}'
    parsed = lines(spark, good, shuffled, blank).transform(parse_jsonl(COLUMNS))
    hashes = {r["_raw"]: r[KEYS] for r in parsed.select("_raw", KEYS).collect()}
    assert hashes[good] == hashes[shuffled] != hashes[blank] and None not in hashes.values()
    assert {r[KEYS] for r in got.where(F.col(MALFORMED)).select(KEYS).collect()} == {None}


def test_from_parquet_gives_the_shape_of_parsed_text(spark) -> None:
    rows = spark.createDataFrame(
        [("o1", 12.5, "2026-11-02", "NEW10"), ("o2", None, " ", None)],
        "order_id string, amount double, ship_date string, coupon string",
    )
    parsed = rows.transform(from_parquet(COLUMNS))
    assert parsed.columns == ["_raw_fields", *COLUMNS, "_extra", "_malformed"]
    # the raw line is built from the row's values only where it is needed
    got = parsed.select(build_raw_line(parsed.columns).alias("_raw"), *parsed.columns[1:])
    expected = spark.createDataFrame(
        [
            (json.dumps({"order_id": "o1", "amount": "12.5", "ship_date": "2026-11-02", "coupon": "NEW10"},
                        separators=(",", ":")),
             "o1", None, "12.5", "2026-11-02", '{"coupon":"NEW10"}', False),
            ('{"order_id":"o2"}', "o2", None, None, None, "{}", False),
        ],
        PARSED,
    )  # fmt: skip
    assert_df_equal(got, expected, order_by=["order_id"])


def test_typed_columns_collect_every_reason_a_row_breaks_the_contract(spark) -> None:
    parsed = spark.createDataFrame(
        [
            ("good", "o1", "2026-11-01 10:00:00", "12.5", "2026-11-02", None, False),
            ("missing", None, None, "1", None, None, False),
            ("bad type", "o3", "yesterday", "cheap", "2026-13-45", None, False),
            ("too early", "o4", "1969-12-31 23:59:59", None, "1899-12-31", None, False),
            ("last hour", "o5", "2026-11-02 23:59:59", None, "2026-11-02", None, False),
            ("future", "o6", "2026-11-03 00:00:00", None, "2026-11-03", None, False),
            ("malformed", None, None, None, None, None, True),
        ],
        PARSED,
    )
    got = parsed.transform(with_typed_columns(CONTRACT, DT))
    assert got.dtypes == [
        ("_raw", "string"),
        ("_extra", "string"),
        ("_malformed", "boolean"),
        ("order_id", "string"),
        ("order_time", "timestamp"),
        ("amount", "double"),
        ("ship_date", "date"),
        ("_reasons", "array<string>"),
    ]
    ts, day = datetime.datetime, datetime.date
    expected = spark.createDataFrame(
        [
            ("good", None, False, "o1", ts(2026, 11, 1, 10), 12.5, day(2026, 11, 2), []),
            ("missing", None, False, None, None, 1.0, None,
             ["missing_required:order_id", "missing_required:order_time"]),
            ("bad type", None, False, "o3", None, None, None,
             ["bad_type:order_time", "bad_type:amount", "bad_type:ship_date"]),
            ("too early", None, False, "o4", ts(1969, 12, 31, 23, 59, 59), None, day(1899, 12, 31),
             ["impossible_time:order_time", "impossible_time:ship_date"]),
            ("last hour", None, False, "o5", ts(2026, 11, 2, 23, 59, 59), None, day(2026, 11, 2), []),
            ("future", None, False, "o6", ts(2026, 11, 3), None, day(2026, 11, 3),
             ["impossible_time:order_time", "impossible_time:ship_date"]),
            ("malformed", None, True, None, None, None, None, ["malformed_line"]),
        ],
        "_raw string, _extra string, _malformed boolean, order_id string, order_time timestamp, "
        "amount double, ship_date date, _reasons array<string>",
    )  # fmt: skip
    assert_df_equal(got, expected, order_by=["_raw"])


def test_with_reason_appends_only_where_the_condition_holds(spark) -> None:
    rows = spark.createDataFrame(
        [("a", [], True), ("b", ["bad_type:x"], True), ("c", [], False)],
        "_raw string, _reasons array<string>, bad boolean",
    )
    reasons = with_reason(F.col(REASONS), F.col("bad"), "invalid_identifier:phone")
    got = rows.select("_raw", reasons.alias(REASONS))
    expected = spark.createDataFrame(
        [("a", ["invalid_identifier:phone"]), ("b", ["bad_type:x", "invalid_identifier:phone"]), ("c", [])],
        "_raw string, _reasons array<string>",
    )
    assert_df_equal(got, expected, order_by=["_raw"])


def test_reason_counts_count_a_row_under_each_of_its_reasons(spark) -> None:
    rows = spark.createDataFrame(
        [(["bad_type:amount", "missing_required:order_id"],), (["missing_required:order_id"],), ([],)],
        "_reasons array<string>",
    )
    got = reason_counts(rows)
    assert list(got.items()) == [("bad_type:amount", 1), ("missing_required:order_id", 2)]  # by reason


ROWS = "_raw string, order_id string, updated_at long"


def test_latest_per_key_keeps_the_greatest_order_value_then_the_first_raw_line(spark) -> None:
    rows = spark.createDataFrame(
        [
            ("a1", "a", 1),
            ("a2", "a", 3),
            ("a3", "a", None),
            ("b2", "b", 5),
            ("b1", "b", 5),  # a tie: the smaller raw line wins
            ("n1", None, 1),
            ("n2", None, 2),  # NULL keys form one key
        ],
        ROWS,
    )
    got = rows.transform(latest_per_key(["order_id"], "updated_at"))
    expected = spark.createDataFrame([("a2", "a", 3), ("b1", "b", 5), ("n2", None, 2)], ROWS)
    assert_df_equal(got, expected, order_by=["_raw"])


def test_latest_per_key_without_order_keeps_the_first_raw_line(spark) -> None:
    rows = spark.createDataFrame([("a2", "a", 9), ("a1", "a", 1), ("b1", "b", None)], ROWS)
    got = rows.transform(latest_per_key(["order_id"], None))
    assert_df_equal(got, spark.createDataFrame([("a1", "a", 1), ("b1", "b", None)], ROWS), order_by=["_raw"])


def test_parse_csv_reads_a_line_as_python_csv_does(spark) -> None:
    # CRLF endings, a quote inside an unquoted field, text after a closing quote, a carriage return inside
    # an unquoted field, whitespace str.strip() removes (ideographic space, no-break space), repeated
    # undeclared columns (the last non-empty value wins) and a blank line.
    header = ["order_id", "note", "amount", "note"]
    got = lines(
        spark,
        "o1,,1.5,x\r",
        'o2,a"b,2,\r\r',
        '"o3"x,,3,',
        "o4\rx,,4,",
        "\u3000o5\xa0,y, 5 ,",
        "\r",
    ).transform(parse_csv(header, ["order_id", "amount"]))
    expected = spark.createDataFrame(
        [
            ("o1,,1.5,x\r", "o1", "1.5", '{"note":"x"}', False),
            ('o2,a"b,2,\r\r', "o2", "2", '{"note":"a\\"b"}', False),
            ('"o3"x,,3,', None, None, None, True),
            ("o4\rx,,4,", None, None, None, True),
            ("\u3000o5\xa0,y, 5 ,", "o5", "5", '{"note":"y"}', False),
            ("\r", None, None, None, True),
        ],
        "_raw string, order_id string, amount string, _extra string, _malformed boolean",
    )
    assert_df_equal(got, expected, order_by=["_raw"])


def test_latest_per_key_ranks_repeated_keys_of_parquet_rows_by_their_values(spark) -> None:
    schema = "_raw_fields struct<k1:string,k2:string,v:string>, k1 string, k2 string, updated_at long"
    rows = spark.createDataFrame(
        [
            (("a", "x", "2"), "a", "x", 1),
            (("a", "x", "1"), "a", "x", 1),  # a tie: the smaller row JSON wins
            (("a", "y", "3"), "a", "y", 1),  # another key: passes through
            ((None, "x", "4"), None, "x", 1),
            ((None, "x", "5"), None, "x", 2),  # NULL is a key value like the others
        ],
        schema,
    )
    got = rows.transform(latest_per_key(["k1", "k2"], "updated_at"))
    expected = spark.createDataFrame(
        [(("a", "x", "1"), "a", "x", 1), (("a", "y", "3"), "a", "y", 1), ((None, "x", "5"), None, "x", 2)],
        schema,
    )
    assert_df_equal(got, expected, order_by=["k1", "k2"])


OUT = "_raw string, order_id string, amount string, _extra string, _malformed boolean"


def test_parse_csv_with_another_delimiter_and_whitespace_separated_lines(spark) -> None:
    header = ["order_id", "amount", "note"]
    got = lines(spark, 'o1;"1;5";x', "o2;2", "o3|3|y").transform(
        parse_csv(header, ["order_id", "amount"], ";")
    )
    expected = spark.createDataFrame(
        [
            ('o1;"1;5";x', "o1", "1;5", '{"note":"x"}', False),
            ("o2;2", None, None, None, True),
            ("o3|3|y", None, None, None, True),
        ],
        OUT,
    )
    assert_df_equal(got, expected, order_by=["_raw"])
    got = lines(spark, "o1\t2\t", "o2|7|z").transform(parse_csv(header, ["order_id", "amount"], "|"))
    assert sorted(r._malformed for r in got.collect()) == [False, True]
    got = lines(spark, "  o1 \t 1.5   x ", "o2 2", "o3\t3\tz").transform(
        parse_whitespace(header, ["order_id", "amount"])
    )
    expected = spark.createDataFrame(
        [
            ("  o1 \t 1.5   x ", "o1", "1.5", '{"note":"x"}', False),
            ("o2 2", None, None, None, True),
            ("o3\t3\tz", "o3", "3", '{"note":"z"}', False),
        ],
        OUT,
    )
    assert_df_equal(got, expected, order_by=["_raw"])


def test_mapped_columns_are_renamed_derived_constant_translated_defaulted_then_typed(spark) -> None:
    contract = SourceContract.model_validate(
        {
            "kind": "source",
            "name": "shop_orders",
            "description": "orders of a test shop",
            "party": "1P",
            "entity": "shop_orders",
            "format": "csv",
            "format_options": {"dateFormat": "yyyyMMdd"},
            "event_time": "order_time",
            "keys": ["order_id"],
            "columns": [
                {"name": "order_id", "type": "string", "required": True, "expr": "concat_ws('-', cust, day)"},
                {"name": "order_time", "type": "timestamp", "from": "ts", "format": "yyyy-MM-dd HH:mm",
                 "timezone": "Asia/Shanghai"},
                {"name": "status", "type": "string", "const": "paid"},
                {"name": "channel", "type": "string", "from": "device", "map": {"desktop": "web"},
                 "default": "store"},
                {"name": "ship_date", "type": "date", "from": "day"},
            ],
        }
    )  # fmt: skip
    assert contract.input_fields == ["cust", "day", "ts", "device"]
    parsed = spark.createDataFrame(
        [
            ("a", "C1", "20261030", "2026-10-30 08:00", "desktop", None, False),
            ("b", "C2", "20261345", "2026-10-30 8h", None, None, False),
            ("c", None, None, None, None, None, True),
        ],
        "_raw string, cust string, day string, ts string, device string, _extra string, _malformed boolean",
    )
    got = parsed.transform(with_mapped_columns(contract)).transform(with_typed_columns(contract, DT))
    expected = spark.createDataFrame(
        [
            ("a", "C1-20261030", datetime.datetime(2026, 10, 30, 0), "paid", "web",
             datetime.date(2026, 10, 30), []),
            ("b", "C2-20261345", None, "paid", "store", None, ["bad_type:order_time", "bad_type:ship_date"]),
            ("c", None, None, None, None, None, ["malformed_line"]),
        ],
        "_raw string, order_id string, order_time timestamp, status string, channel string, ship_date date, "
        "_reasons array<string>",
    )  # fmt: skip
    assert_df_equal(got.select(*expected.columns), expected, order_by=["_raw"])
