"""The run context every job opens: the date parsed once, a scratch folder owned by one run and removed
also on error, Parquet checkpoints (empty ones too), and the date lookups on real Delta tables."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from cdp.lake import Lake, LakeError, bronze_table, quarantine_table, silver_table
from cdp.run import RunContext, parquet_checkpoint, union_all
from cdp.testing import assert_df_equal

DT = datetime.date(2026, 11, 2)
ROWS = "id long, v string"


@pytest.fixture()
def ctx(spark, settings, tmp_path: Path) -> RunContext:
    s = settings.with_data_root(tmp_path / "data")
    return RunContext.open(spark, s, "2026-11-02", stage="tags", lake=Lake(spark, tmp_path / "lake"))


def test_open_parses_the_date_once_and_names_a_scratch_folder_per_run(spark, settings, ctx) -> None:
    assert ctx.dt == DT
    assert ctx.scratch == f"{ctx.settings.data_root}/_scratch/tags/2026-11-02/{ctx.run_id}"
    other = RunContext.open(spark, ctx.settings, DT, stage="tags")
    assert other.dt == DT and other.run_id != ctx.run_id and other.scratch != ctx.scratch
    with pytest.raises(LakeError, match="dt '2026-11-31' is not a date; use YYYY-MM-DD"):
        RunContext.open(spark, settings, "2026-11-31", stage="tags")


def test_checkpoints_read_back_and_the_scratch_goes_at_the_end_also_on_error(spark, ctx) -> None:
    rows = spark.createDataFrame([(1, "a"), (2, "b")], ROWS)
    with pytest.raises(RuntimeError, match="boom"), ctx.scratch_space() as folder:
        got = ctx.checkpoint(rows.where("id > 1"), "kept")
        empty = ctx.checkpoint(rows.where("id > 9"), "empty")  # no files written: the schema is kept
        rounds = ctx.checkpoints("rounds")(rows, "edges")
        assert_df_equal(got, spark.createDataFrame([(2, "b")], ROWS))
        assert empty.dtypes == [("id", "bigint"), ("v", "string")] and empty.count() == 0
        assert_df_equal(rounds, rows)
        assert (Path(folder) / "kept").is_dir() and (Path(folder) / "rounds" / "edges").is_dir()
        raise RuntimeError("boom")
    assert not Path(ctx.scratch).exists()


def test_parquet_checkpoint_overwrites_a_label(spark, tmp_path: Path) -> None:
    checkpoint = parquet_checkpoint(spark, tmp_path)
    checkpoint(spark.createDataFrame([(1, "a")], ROWS), "t")
    got = checkpoint(spark.createDataFrame([(2, "b")], ROWS), "t")
    assert_df_equal(got, spark.createDataFrame([(2, "b")], ROWS))


def test_date_lookups_on_a_dated_table(spark, ctx) -> None:
    lake = ctx.lake
    assert (ctx.previous_dt("gold.t"), ctx.latest_dt("gold.t"), ctx.has_later_dt("gold.t")) == (
        None,
        None,
        False,
    )
    for dt, rows in (("2026-10-30", [(1, "a")]), ("2026-11-02", [(2, "b")]), ("2026-11-05", [(3, "c")])):
        lake.replace_dt("gold.t", spark.createDataFrame(rows, ROWS), dt)
    assert ctx.previous_dt("gold.t") == datetime.date(2026, 10, 30)
    assert ctx.latest_dt("gold.t") == DT
    assert ctx.has_later_dt("gold.t")
    assert lake.latest_dt("gold.t") == datetime.date(2026, 11, 5)
    assert lake.latest_dt("gold.t", before=datetime.date(2026, 10, 30)) is None
    assert_df_equal(ctx.read_dt("gold.t"), spark.createDataFrame([(2, "b", DT)], f"{ROWS}, dt date"))
    assert_df_equal(
        lake.read_dt("gold.t", "2026-10-30"),
        spark.createDataFrame([(1, "a", datetime.date(2026, 10, 30))], f"{ROWS}, dt date"),
    )


def test_read_up_to_keeps_silver_records_ingested_by_the_date(spark, ctx) -> None:
    schema = "id long, _dt date"
    rows = [(1, datetime.date(2026, 11, 1)), (2, DT), (3, datetime.date(2026, 11, 3))]
    ctx.lake.overwrite("silver.s", spark.createDataFrame(rows, schema))
    assert_df_equal(ctx.read_up_to("silver.s"), spark.createDataFrame(rows[:2], schema))


def test_steps_record_seconds_since_the_run_opened(ctx) -> None:
    first = ctx.step("parse")
    second = ctx.step("write")
    assert list(ctx.steps) == ["parse", "write"] and 0 <= first <= second <= ctx.elapsed() + 0.01


def test_union_all_by_name_and_table_names(spark) -> None:
    a = spark.createDataFrame([(1, "a")], ROWS)
    b = spark.createDataFrame([("b", 2)], "v string, id long")
    c = spark.createDataFrame([(3,)], "id long")
    assert_df_equal(union_all([a, b]), spark.createDataFrame([(1, "a"), (2, "b")], ROWS))
    assert_df_equal(union_all([a, c], allow_missing=True), spark.createDataFrame([(1, "a"), (3, None)], ROWS))
    with pytest.raises(LakeError, match="nothing to union"):
        union_all([])
    assert (bronze_table("events"), quarantine_table("events"), silver_table("orders")) == (
        "bronze.events",
        "quarantine.events",
        "silver.orders",
    )
