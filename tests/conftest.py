"""Shared fixtures: one embedded Sail session for the whole run, tuned for tiny data; a fresh lake root per
test; and one small demo lake built once (population -> ingest -> identity -> every tag layer) that the
jobs, web and identity tests read, or copy when they write."""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("CDP_SHUFFLE_PARTITIONS", "2")
# Airflow reads its configuration when first imported: point it at a throw-away home (SQLite metadata) and
# at this repository's dags/ before any test imports it.
# One throw-away Airflow home per test process: pytest-xdist workers inherit the controller's environment, so
# each worker makes its own (one metadata database per process) unless the caller set AIRFLOW_HOME.
_OWN_HOME = "CDP_TEST_AIRFLOW_HOME"
_AIRFLOW_HOME = (
    None
    if "AIRFLOW_HOME" in os.environ and os.environ.get(_OWN_HOME) != os.environ["AIRFLOW_HOME"]
    else tempfile.mkdtemp(prefix="cdp-airflow-")
)
if _AIRFLOW_HOME:
    os.environ["AIRFLOW_HOME"] = os.environ[_OWN_HOME] = _AIRFLOW_HOME
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


# ---- the shared demo lake ---------------------------------------------------------------------------------

DEMO_DT = "2026-11-01"
# One population satisfies every test that reads it: 3,000 persons and a year of history, because the
# predictive tags train on 180 days and their tests score the 30-day propensity against the generator's
# future purchases (AUC >= 0.75 on > 2,700 persons); seed 7 is the seed those thresholds were set on.
DEMO_POPULATION = {"persons": 3_000, "days": 1, "history_days": 365, "seed": 7}


@dataclasses.dataclass(frozen=True)
class DemoLake:
    """A demo lake built once for the session: read it, never write it (copy it with ``copy_demo_lake``).

    Attributes:
        settings: the lake's settings (data root, the session's PII key, default pack and seed minimums).
        dt: the one date ingested, resolved and tagged.
        persons: the generated population.
        identity: the ``jobs.identity.run`` report of ``dt``.
        tags: the ``jobs.tags.run`` report of ``dt`` (raw, fact, model and predictive layers).
    """

    settings: Any
    dt: str
    persons: int
    identity: Any
    tags: Any


def _files(root: Path) -> set[tuple[str, int, int]]:
    """Every file below ``root`` with its size and modification time: a test that writes changes this set."""
    found = set()
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder, name)
            stat = path.stat()
            found.add((str(path.relative_to(root)), stat.st_size, stat.st_mtime_ns))
    return found


@pytest.fixture(scope="session")
def demo_lake(spark, settings, tmp_path_factory: pytest.TempPathFactory):
    """The demo population of ``DEMO_POPULATION`` landed, ingested (every source), resolved and tagged (every
    layer) for ``DEMO_DT``; read-only, which the session checks at its end."""
    import datetime

    from demo import generate
    from jobs import identity, ingest, tags
    from schemas import load_sources

    s = settings.with_data_root(tmp_path_factory.mktemp("demo_lake") / "data")
    generate(
        Path(s.landing_root),
        Path(s.truth_root),
        start=datetime.date.fromisoformat(DEMO_DT),
        **DEMO_POPULATION,
    )
    for source in sorted(load_sources()):
        ingest.run(spark, s, source, DEMO_DT)
    identity_report = identity.run(spark, s, DEMO_DT)
    tags_report = tags.run(spark, s, DEMO_DT)
    root = Path(s.data_root)
    built = _files(root)
    yield DemoLake(s, DEMO_DT, DEMO_POPULATION["persons"], identity_report, tags_report)
    changed = sorted({f[0] for f in built ^ _files(root)})
    assert not changed, f"a test wrote to the shared demo_lake (use copy_demo_lake): {changed[:10]}"


@pytest.fixture(scope="session")
def copy_demo_lake(demo_lake: DemoLake) -> Callable[..., Any]:
    """A function ``(folder, **changes) -> Settings`` that copies the demo lake's data root (landing, truth,
    lake) into ``folder`` and returns its settings there, with ``changes`` applied (e.g. ``min_pack_size``):
    for tests that write (create audiences, rerun a stage) at the cost of a copy (~1 s), not a build."""

    def copy(folder: Path, **changes: Any):
        shutil.copytree(demo_lake.settings.data_root, folder)
        return dataclasses.replace(demo_lake.settings.with_data_root(folder), **changes)

    return copy
