"""Base views of the tag build on small inline tables: records keyed by the OneID of their most personal
identifier, event views cut at a date with ``days_ago``, profile views reduced to the latest row per key."""

from __future__ import annotations

import datetime

from cdp.testing import assert_df_equal
from tags.views import ViewSpec, as_of_view, population, referenced_columns, with_oneid

AS_OF = datetime.date(2026, 11, 1)
MAP = "id_type string, id_value string, oneid long"
ORDERS = ViewSpec(
    "orders", (("member_id", "member_id"), ("oaid", "oaid")), time_column="order_time", latest_by=None
)
MEMBERS = ViewSpec("members", (("member_id", "member_id"),), latest_by=(("member_id",), "updated_at"))


def test_with_oneid_follows_the_first_identifier_present_in_priority_order(spark) -> None:
    oneid_map = spark.createDataFrame(
        [("member_id", "M1", 1), ("oaid", "dev-1", 1), ("oaid", "tablet", 2), ("oaid", "dev-3", 3)], MAP
    )
    silver = spark.createDataFrame(
        [
            ("o1", "M1", "tablet", 10.0),  # a shared tablet pruned from M1: the member id decides
            ("o2", "  ", "dev-3", 20.0),  # a blank member id does not count
            ("o3", None, "dev-1", 30.0),
            ("o4", None, None, 40.0),  # no identifier: dropped
            ("o5", "M9", "dev-3", 50.0),  # the member id is not in the map: dropped, not moved to the OAID
        ],
        "order_id string, member_id string, oaid string, amount double",
    )
    got = silver.transform(with_oneid(ORDERS, oneid_map))
    expected = spark.createDataFrame(
        [("o1", "M1", "tablet", 10.0, 1), ("o2", "  ", "dev-3", 20.0, 3), ("o3", None, "dev-1", 30.0, 1)],
        "order_id string, member_id string, oaid string, amount double, oneid long",
    )
    assert_df_equal(got, expected, order_by=["order_id"])


def test_with_oneid_reads_numeric_identifiers_as_text(spark) -> None:
    spec = ViewSpec("ad_events", (("member_id", "member_id"),), time_column="t")
    oneid_map = spark.createDataFrame([("member_id", "42", 7)], MAP)
    silver = spark.createDataFrame([(42, "a"), (43, "b")], "member_id long, t string")
    got = silver.transform(with_oneid(spec, oneid_map))
    assert_df_equal(got, spark.createDataFrame([(42, "a", 7)], "member_id long, t string, oneid long"))


def test_event_view_keeps_rows_up_to_the_date_with_days_ago(spark) -> None:
    ts = datetime.datetime
    records = spark.createDataFrame(
        [
            (1, "o1", ts(2026, 10, 2, 9)),
            (1, "o2", ts(2026, 11, 1, 23, 59)),  # late on the day itself: 0 days ago
            (2, "o3", ts(2026, 11, 2, 0, 1)),  # after the date: not known yet
        ],
        "oneid long, order_id string, order_time timestamp",
    )
    got = records.transform(as_of_view(ORDERS, AS_OF))
    expected = spark.createDataFrame(
        [(1, "o1", ts(2026, 10, 2, 9), 30, AS_OF), (1, "o2", ts(2026, 11, 1, 23, 59), 0, AS_OF)],
        "oneid long, order_id string, order_time timestamp, days_ago int, as_of date",
    )
    assert_df_equal(got, expected, order_by=["order_id"])


def test_profile_view_keeps_the_latest_row_per_key_whatever_its_date(spark) -> None:
    ts = datetime.datetime
    records = spark.createDataFrame(
        [
            (1, "M1", "silver", ts(2026, 9, 1)),
            (1, "M1", "gold", ts(2026, 12, 1)),  # a later update is taken: profiles are known on dt
            (2, "M2", "none", None),
            (2, "M2", "basic", ts(2026, 1, 1)),  # NULL update times come last
        ],
        "oneid long, member_id string, level string, updated_at timestamp",
    )
    got = records.transform(as_of_view(MEMBERS, AS_OF))
    expected = spark.createDataFrame(
        [(1, "M1", "gold", ts(2026, 12, 1), AS_OF), (2, "M2", "basic", ts(2026, 1, 1), AS_OF)],
        "oneid long, member_id string, level string, updated_at timestamp, as_of date",
    )
    assert_df_equal(got, expected, order_by=["member_id"])


def test_a_view_without_time_or_key_only_gains_as_of(spark) -> None:
    records = spark.createDataFrame([(1, "x"), (1, "x")], "oneid long, v string")
    got = records.transform(as_of_view(ViewSpec("segments", ()), AS_OF))
    expected = spark.createDataFrame([(1, "x", AS_OF), (1, "x", AS_OF)], "oneid long, v string, as_of date")
    assert_df_equal(got, expected)


def test_population_is_every_oneid_of_the_map_once(spark) -> None:
    oneid_map = spark.createDataFrame([("member_id", "M1", 1), ("oaid", "d1", 1), ("oaid", "d2", 2)], MAP)
    assert_df_equal(population(oneid_map), spark.createDataFrame([(1,), (2,)], "oneid long"))


def test_a_build_keeps_only_the_view_columns_its_definitions_name() -> None:
    """A keyed view is checkpointed with ``oneid``, the columns named in the definitions (any case) and
    those the view itself needs; a query that may select ``*`` keeps every column."""
    columns = ["oneid", "_source_file", "order_id", "order_time", "Amount", "status", "sku", "member_id"]
    definitions = '{"value": "sum(amount) FILTER (WHERE status = \'paid\')", "from": "orders"}'
    assert referenced_columns(ORDERS, columns, definitions) == ["oneid", "order_time", "Amount", "status"]
    assert referenced_columns(MEMBERS, columns, "count(*)", ["SELECT oneid, count(*) AS value FROM m"]) == [
        "oneid",
        "member_id",
    ]
    assert referenced_columns(ORDERS, columns, definitions, ["SELECT * FROM orders"]) is None
