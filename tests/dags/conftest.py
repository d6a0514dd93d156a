"""Airflow fixtures: a migrated SQLite metadata database in the throw-away AIRFLOW_HOME set by the root
conftest, for the tests that run a DAG, and the DagBag of this repository's dags/ folder, which parsing alone
builds (no database, so the integrity tests stay in the fast loop)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def airflow_db() -> None:
    airflow = Path(sys.executable).parent / "airflow"
    proc = subprocess.run(
        [str(airflow), "db", "migrate"], capture_output=True, text=True, timeout=300, env=dict(os.environ)
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture(scope="session")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
