"""The command line as a newcomer uses it: help, contract validation, and the demo end to end on a small
population, whose Delta tables are then read without the engine (delta-rs + DuckDB)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CDP = str(Path(sys.executable).parent / "cdp")


def cdp(*args: str, env: dict[str, str] | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("SPARK_", "CDP_"))} | (env or {})
    return subprocess.run([CDP, *args], capture_output=True, text=True, timeout=timeout, env=full_env)


def test_help_lists_the_commands() -> None:
    out = cdp("--help")
    assert out.returncode == 0
    for command in ("demo", "generate", "ingest", "bench", "contracts", "lake", "engine"):
        assert command in out.stdout


def test_contracts_validate_reports_the_file_and_field(tmp_path: Path) -> None:
    assert cdp("contracts", "validate").returncode == 0
    bad = tmp_path / "x.yaml"
    bad.write_text("kind: source\nname: x\n")
    out = cdp("contracts", "validate", str(bad))
    assert out.returncode == 1
    assert str(bad) in out.stderr and "party: required field is missing" in out.stderr


def test_ingest_without_a_key_says_how_to_set_one(tmp_path: Path) -> None:
    out = cdp("ingest", "orders", "--dt", "2026-11-01", "--data-root", str(tmp_path))
    assert out.returncode == 2
    assert "CDP_PII_KEY" in out.stderr


@pytest.mark.e2e
@pytest.mark.slow
def test_demo_end_to_end_and_tables_readable_without_the_engine(tmp_path: Path) -> None:
    import duckdb
    from deltalake import DeltaTable

    out = cdp("demo", "--persons", "400", "--days", "2", "--data-root", str(tmp_path))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "Delta lake:" in out.stdout and "rows in" in out.stdout
    lake = tmp_path / "lake"
    for table in ("bronze/orders", "silver/orders", "silver/members", "silver/events", "gold/ingest_runs"):
        assert (lake / table / "_delta_log").is_dir(), table
    # DuckDB finds the Arrow dataset by its variable name
    runs = DeltaTable(str(lake / "gold" / "ingest_runs")).to_pyarrow_dataset()  # noqa: F841
    n_runs, unbalanced = duckdb.sql(
        "SELECT count(*), count_if(rows_in <> silver_written + duplicates + quarantined + held_back) "
        "FROM runs"
    ).fetchall()[0]
    assert (n_runs, unbalanced) == (20, 0)  # 10 sources x 2 dates, every one balanced
    listed = cdp("lake", "tables", "--data-root", str(tmp_path))
    assert "silver.members" in listed.stdout


@pytest.mark.e2e
@pytest.mark.slow
def test_airflow_demo_runs_cdp_daily_and_writes_the_example_packs(tmp_path: Path) -> None:
    """What `make demo` runs: cdp_daily through Airflow for each demo date, the example audiences created
    after the first date with their packs, and refreshed (new version, new pack) by the second date."""
    import json

    out = cdp(
        "airflow", "demo", "--persons", "400", "--days", "2", "--data-root", str(tmp_path),
        env={"CDP_MIN_PACK_SIZE": "5"},
        timeout=900,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert out.stdout.count(" success ") >= 2 and "audience interested_not_bought@1" in out.stdout
    for version in ("v1", "v2"):
        manifest = tmp_path / "packs" / "interested_not_bought" / version / "tencent" / "manifest.json"
        assert json.loads(manifest.read_text(encoding="utf-8"))["lines"] > 0, version
