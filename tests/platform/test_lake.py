"""The lake catalog on real Delta tables: naming, idempotent dt replacement, MERGE upserts, time travel,
contract conformance, and maintenance and reads through delta-rs and DuckDB without the engine."""

from __future__ import annotations

import datetime as dt

import pytest

from cdp.lake import Lake, LakeError, split_table_name
from cdp.testing import assert_df_equal
from schemas import load_contract

ROWS = "id long, name string, amount double"


def test_paths_and_names(lake, lake_root) -> None:
    assert lake.path("silver.orders") == f"{lake_root}/silver/orders"
    for bad in ("orders", "platinum.orders", "gold.", "gold.a-b"):
        with pytest.raises(LakeError):
            split_table_name(bad)


def test_replace_dt_is_idempotent_and_keeps_other_dates(spark, lake) -> None:
    day1 = spark.createDataFrame([(1, "a", 1.0), (2, "b", 2.0)], ROWS)
    day2 = spark.createDataFrame([(3, "c", 3.0)], ROWS)
    lake.replace_dt("silver.t", day1, "2026-11-01")
    lake.replace_dt("silver.t", day2, "2026-11-02")
    lake.replace_dt("silver.t", day2, "2026-11-02")  # rerun of one date
    lake.replace_dt("silver.t", day1.limit(1), "2026-11-01")  # a corrected rerun replaces that date only
    got = lake.read("silver.t")
    assert sorted((r.id, r.dt) for r in got.collect()) == [
        (1, dt.date(2026, 11, 1)),
        (3, dt.date(2026, 11, 2)),
    ]
    assert lake.tables() == ["silver.t"]


def test_append_upsert_delete_and_time_travel(spark, lake) -> None:
    lake.append("gold.t", spark.createDataFrame([(1, "a", 1.0), (2, "b", 2.0)], ROWS))
    v0 = lake.version("gold.t")
    lake.upsert("gold.t", spark.createDataFrame([(2, "B", 20.0), (3, "c", 3.0)], ROWS), keys=["id"])
    assert_df_equal(
        lake.read("gold.t"), spark.createDataFrame([(1, "a", 1.0), (2, "B", 20.0), (3, "c", 3.0)], ROWS)
    )
    lake.delete("gold.t", "id = 1")
    assert sorted(r.id for r in lake.read("gold.t").collect()) == [2, 3]
    assert_df_equal(
        lake.read("gold.t", version=v0), spark.createDataFrame([(1, "a", 1.0), (2, "b", 2.0)], ROWS)
    )
    ops = [h["operation"] for h in lake.history("gold.t")]
    assert ops[:2] == ["DELETE", "MERGE"]


def test_upsert_creates_table_and_matches_null_keys(spark, lake) -> None:
    schema = "k1 string, k2 string, v long"
    lake.upsert("gold.u", spark.createDataFrame([("a", None, 1)], schema), keys=["k1", "k2"])
    lake.upsert("gold.u", spark.createDataFrame([("a", None, 2)], schema), keys=["k1", "k2"])
    assert [tuple(r) for r in lake.read("gold.u").collect()] == [("a", None, 2)]


def test_contract_conformance(spark, lake_root, tmp_path) -> None:
    path = tmp_path / "gold.scores.yaml"
    path.write_text("""
kind: table
name: gold.scores
description: test table
keys: [id]
columns:
  - {name: id, type: long, required: true}
  - {name: score, type: double}
""")
    lake = Lake(spark, lake_root, contracts={"gold.scores": load_contract(path)})
    lake.overwrite("gold.scores", spark.createDataFrame([("0.5", 1)], "score string, id int"))
    got = lake.read("gold.scores")
    assert got.dtypes == [("id", "bigint"), ("score", "double")]
    with pytest.raises(LakeError, match=r"missing columns \['score'\], undeclared columns \['x'\]"):
        lake.append("gold.scores", spark.createDataFrame([(1, 2)], "id long, x long"))


def test_missing_table_is_a_clear_error(lake) -> None:
    with pytest.raises(LakeError, match="does not exist"):
        lake.read("gold.nothing")


def test_maintenance_and_reads_without_the_engine(spark, lake) -> None:
    import duckdb
    from deltalake import DeltaTable

    for i in range(3):
        lake.append("gold.m", spark.createDataFrame([(i, f"n{i}", float(i))], ROWS))
    metrics = lake.compact("gold.m")
    assert metrics["numFilesRemoved"] >= 3
    assert metrics["numFilesAdded"] == 1
    assert lake.vacuum("gold.m", retention_hours=0, dry_run=True)  # the compacted files, listed only
    with pytest.raises(LakeError, match="168 hours"):
        lake.vacuum("gold.m", retention_hours=0, dry_run=False)
    dataset = DeltaTable(lake.path("gold.m")).to_pyarrow_dataset()  # noqa: F841 (DuckDB scans it by name)
    total = duckdb.sql("SELECT sum(amount) AS s, count(*) AS n FROM dataset").fetchall()[0]
    assert total == (3.0, 3)
    assert lake.to_arrow("gold.m").num_rows == 3
