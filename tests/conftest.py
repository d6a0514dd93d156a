"""Shared fixtures: one embedded Sail session for the whole run, tuned for tiny data, and a fresh lake
root per test."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("CDP_SHUFFLE_PARTITIONS", "2")
# Airflow reads its configuration when first imported: point it at a throw-away home (SQLite metadata) and
# at this repository's dags/ before any test imports it.
_AIRFLOW_HOME = None if "AIRFLOW_HOME" in os.environ else tempfile.mkdtemp(prefix="cdp-airflow-")
if _AIRFLOW_HOME:
    os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(Path(__file__).resolve().parents[1] / "dags"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
# Tests must never depend on a developer's secret or data folder.
os.environ.setdefault("CDP_PII_KEY", "test-only-pii-key")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remove the throw-away Airflow home this run created (metadata database, logs)."""
    if _AIRFLOW_HOME:
        shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory):
    from cdp.settings import Settings

    return Settings.from_env(
        {"CDP_SHUFFLE_PARTITIONS": "2", "CDP_PII_KEY": "test-only-pii-key"}
    ).with_data_root(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def spark(settings):
    """The embedded engine (in-process Sail), shared by every test."""
    from cdp.engine import get_spark

    session = get_spark(settings, mode="embedded")
    yield session


@pytest.fixture()
def lake_root(tmp_path: Path) -> Path:
    return tmp_path / "lake"


@pytest.fixture()
def lake(spark, lake_root):
    from cdp.lake import Lake

    return Lake(spark, lake_root)
