"""The daily DAG measures campaigns after the audiences stage (which writes the scheduled packs and their
groups), in date order, and publishes the effect tables as assets."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="module")
def daily():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    assert bag.import_errors == {}
    return bag.dags["cdp_daily"]


def test_measure_effect_runs_after_the_audiences_stage(daily) -> None:
    task = daily.get_task("measure_effect")
    assert task.upstream_task_ids == {"refresh_audiences"}
    assert task.depends_on_past and task.retries >= 1 and task.execution_timeout is not None
    assert {a.name for a in task.outlets} >= {"gold.effect_summary", "gold.effect_lift", "gold.attribution"}
    assert "measure_effect" in daily.doc_md
