"""Analyst SQL over the lake (``cdp.sql`` and ``cdp sql``): views named <layer>.<name> over Delta tables
written with delta-rs, one-shot queries to the screen, CSV, JSON and Parquet, the interactive shell, the
sandbox of the web service, and errors that name the problem."""

from __future__ import annotations

import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cdp.sql import LakeSQL, SqlError, write_result


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from deltalake import write_deltalake

    root = tmp_path_factory.mktemp("sqldata")
    day = datetime.date(2026, 11, 1)
    orders = pa.table(
        {
            "order_id": ["o1", "o2", "o3", "o4"],
            "channel": ["app", "web", "app", "小程序"],
            "amount": [10.0, 20.5, 30.0, 5.0],
            "dt": [day, day, day + datetime.timedelta(days=1), day],
        }
    )
    write_deltalake(root / "lake" / "silver" / "orders", orders, partition_by=["dt"])
    write_deltalake(root / "lake" / "gold" / "oneid_map", pa.table({"id_type": ["phone"], "oneid": [7]}))
    (root / "lake" / "gold" / "not_delta").mkdir(parents=True)
    return root


def test_views_per_layer_and_queries(data_root: Path) -> None:
    with LakeSQL(data_root / "lake") as lake_sql:
        assert lake_sql.tables == ["gold.oneid_map", "silver.orders"]
        result = lake_sql.query(
            "SELECT channel, sum(amount) AS revenue FROM silver.orders WHERE dt = DATE '2026-11-01' "
            "GROUP BY channel ORDER BY channel;"
        )
        assert result.rows() == [
            {"channel": "app", "revenue": 10.0},
            {"channel": "web", "revenue": 20.5},
            {"channel": "小程序", "revenue": 5.0},
        ]
        joined = lake_sql.query("SELECT count(*) AS n FROM silver.orders, gold.oneid_map").rows()
        assert joined == [{"n": 4}]
        limited = lake_sql.query("SELECT * FROM silver.orders", limit=2)
        assert limited.table.num_rows == 2 and limited.truncated
        assert dict(lake_sql.describe("silver.orders"))["amount"] == "DOUBLE"


def test_errors_name_the_problem(data_root: Path) -> None:
    with LakeSQL(data_root / "lake") as lake_sql:
        with pytest.raises(SqlError, match="nope"):
            lake_sql.query("SELECT * FROM silver.nope")
        with pytest.raises(SqlError, match="empty query"):
            lake_sql.query("  ;")
        with pytest.raises(SqlError, match="unknown table"):
            lake_sql.describe("gold.missing")
    with pytest.raises(SqlError, match=r"<layer>\.<name>"):
        LakeSQL(data_root / "lake", tables=["orders"])


def test_sandbox_blocks_files_outside_the_lake(data_root: Path) -> None:
    with LakeSQL(data_root / "lake", sandbox=True) as lake_sql:
        assert lake_sql.query("SELECT count(*) AS n FROM silver.orders").rows() == [{"n": 4}]
        with pytest.raises(SqlError, match="disabled"):
            lake_sql.query("SELECT * FROM read_csv('/etc/passwd')")
        with pytest.raises(SqlError):
            lake_sql.query("SET enable_external_access = true")


def test_write_result_formats(data_root: Path, tmp_path: Path) -> None:
    with LakeSQL(data_root / "lake") as lake_sql:
        table = lake_sql.query("SELECT order_id, amount FROM silver.orders ORDER BY order_id").table
    assert pq.read_table(write_result(table, "parquet", tmp_path / "o.parquet")).num_rows == 4
    assert write_result(table, "csv", tmp_path / "o.csv").read_text().splitlines()[0] == '"order_id","amount"'
    assert '"order_id": "o1"' in write_result(table, "json", tmp_path / "o.jsonl").read_text()
    with pytest.raises(SqlError, match="format"):
        write_result(table, "xlsx", tmp_path / "o.xlsx")


def _cdp(data_root: Path, *args: str, stdin: str | None = None):
    """``cdp sql ...`` in this process (the CLI's own code path, without a second interpreter start)."""
    from typer.testing import CliRunner

    from apps.cli.main import app

    result = CliRunner().invoke(app, ["sql", *args, "--data-root", str(data_root)], input=stdin)
    result.returncode = result.exit_code
    return result


def test_cli_one_shot_outputs(data_root: Path, tmp_path: Path) -> None:
    out = _cdp(data_root, "SELECT channel, count(*) AS n FROM silver.orders GROUP BY 1 ORDER BY 1")
    assert out.returncode == 0, out.stderr
    assert "小程序" in out.stdout and "3 rows" in out.stderr
    csv = _cdp(data_root, "SELECT order_id FROM silver.orders ORDER BY 1", "--format", "csv")
    assert csv.stdout.splitlines() == ['"order_id"', '"o1"', '"o2"', '"o3"', '"o4"']
    target = tmp_path / "out.parquet"
    assert _cdp(data_root, "SELECT * FROM silver.orders", "--output", str(target)).returncode == 0
    assert pq.read_table(target).num_rows == 4
    bad = _cdp(data_root, "SELECT * FROM gold.nothing")
    assert bad.returncode == 1 and "nothing" in bad.stderr and "Traceback" not in bad.stderr
    assert _cdp(data_root, "SELECT 1", "--format", "xml").returncode == 2


def test_cli_shell(data_root: Path) -> None:
    script = "\n".join(
        [
            ".tables",
            ".schema silver.orders",
            "SELECT count(*) AS n",
            "  FROM silver.orders;",
            "SELECT * FROM x;",
            ".quit",
        ]
    )
    out = _cdp(data_root, stdin=script)
    assert out.returncode == 0, out.stderr
    assert "gold.oneid_map" in out.stdout and "amount" in out.stdout and "│ 4 │" in out.stdout
    assert "Catalog Error" in out.stderr
