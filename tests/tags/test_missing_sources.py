"""A deployment without some sources still builds its tags: the base view of a missing (or empty) silver
table is an empty frame with the contract's columns, its tags are NULL or their default with a coverage
warning, and a model without two classes of labels or without a usable feature is neither trained nor
published, with the reason in ``gold.models``. The guards themselves are checked on small pandas frames
without an engine; the builds run on demo landing files of a small population, ingested only in part."""

from __future__ import annotations

import datetime
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from cdp.lake import Lake
from jobs import identity, ingest
from jobs import tags as job
from quality.catalog import silver_columns
from schemas import load_sources
from tags import load_catalog, models
from tags.catalog import ModelSpec
from tags.views import silver_ddl

DT = "2026-11-01"
DAY = datetime.date.fromisoformat(DT)
POPULATION = {"persons": 400, "days": 1, "history_days": 200, "seed": 11}
EVENT_VIEWS = {"events", "ad_events", "kol_engagement", "demographics", "dmp_segments"}
DEVICE_MODEL = """
id: device_propensity
name_zh: 设备购买概率
name_en: Repeat purchase propensity from devices only
layer: predictive
type: double
description: >-
  A model whose every feature comes from the events a transactions-only deployment lacks (a repeat
  purchase label, so no BG/NBD feature from the orders is added).
owner: tests
model:
  task: classification
  algorithm: logistic_regression
  horizon_days: 30
  features: [device_os, device_brand]
  label: {from: orders, where: "status = 'paid'", value: "count(DISTINCT order_id) >= 2", default: false}
"""


def spec(**changes) -> ModelSpec:
    base = {
        "task": "classification",
        "algorithm": "logistic_regression",
        "features": ["a", "b"],
        "label": {"from": "orders", "value": "count(*) > 0"},
        "horizon_days": 30,
    }
    return ModelSpec.model_validate(base | changes)


# ---- no engine ----------------------------------------------------------------------------------------


def test_the_empty_view_of_a_missing_source_has_the_silver_columns() -> None:
    sources = load_sources()
    for entity in ("members", "orders", "events"):
        contracts = [c for c in sources.values() if c.entity == entity]
        names = re.findall(r"`([^`]+)`", silver_ddl(contracts))
        assert names == silver_columns(contracts[0]), entity
    with pytest.raises(ValueError, match="at least one source contract"):
        silver_ddl([])


def test_a_model_needs_two_classes_and_a_usable_feature() -> None:
    window = "training window as of 2026-09-02"
    n = 100
    usable = pd.DataFrame(
        {"a": np.arange(n, dtype=float), "b": [None] * n, "label": [i % 2 == 0 for i in range(n)]}
    )
    assert models.untrainable(spec(), usable, window) is None
    assert models.unusable_features(spec(), usable) == ["b"]

    assert models.untrainable(spec(), usable.iloc[0:0], window) == f"no rows in the {window}"
    # All NULL or one value everywhere (the default of a tag over a missing source): nothing to learn.
    flat = usable.assign(a=0.0)
    assert models.untrainable(spec(), flat, window) == (
        f"no usable feature in the {window}: every feature is NULL or constant"
    )
    # One class (no purchase at all in a clickstream-only deployment), or too few of the minority class.
    negatives = usable.assign(label=False)
    assert models.untrainable(spec(), negatives, window) == (
        f"labels of the {window} have 0 positive and {n} negative rows; each class needs at least "
        f"{models.MIN_MINORITY_ROWS}"
    )
    few = usable.assign(label=[i < 5 for i in range(n)])
    assert "5 positive and 95 negative" in models.untrainable(spec(), few, window)
    # Every problem is named.
    both = models.untrainable(spec(), flat.assign(label=False), window)
    assert "0 positive" in both and "; no usable feature" in both
    # Regression: a constant label is nothing to learn either.
    regression = spec(task="regression")
    assert "the label is the same" in models.untrainable(regression, usable.assign(label=0.0), window)
    assert models.untrainable(regression, usable.assign(label=usable["a"]), window) is None


def test_a_nan_holdout_metric_is_never_published() -> None:
    nan = {"auc": math.nan, "baseline_auc": math.nan}
    assert models.unpublishable(spec(), nan) == "holdout auc is nan"
    assert models.unpublishable(spec(), {"auc": 0.7, "baseline_auc": 0.6}) is None


# ---- builds on partly ingested lakes ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def landed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Landing files of every source for a small demo population (generated once for the module)."""
    from demo import generate

    root = tmp_path_factory.mktemp("landed")
    generate(root / "landing", root / "truth", start=DAY, **POPULATION)
    return root / "landing"


def partial_lake(spark, settings, landed: Path, folder: Path, sources: list[str]):
    """A lake where only ``sources`` were delivered and ingested, resolved for ``DT``."""
    s = settings.with_data_root(folder)
    contracts = load_sources()
    for source in sources:
        name = contracts[source].landing_folder
        shutil.copytree(landed / name, Path(s.landing_root) / name)
        ingest.run(spark, s, source, DT)
    identity.run(spark, s, DT)
    return s, Lake(spark, s.lake_root)


def day_of(lake: Lake, table: str):
    return lake.read(table).where(F.col("dt") == F.lit(DAY))


@pytest.mark.slow  # a population, two ingests, identity and every tag layer
def test_transactions_only_builds_with_coverage_warnings_and_no_model_on_null_features(
    spark, settings, landed, tmp_path
) -> None:
    s, lake = partial_lake(spark, settings, landed, tmp_path / "data", ["crm_members", "orders"])
    # A KOL table that exists but holds nothing yet counts as missing too.
    lake.overwrite(
        "silver.kol_engagement",
        spark.createDataFrame([], silver_ddl([load_sources()["kol_engagement"]])),
    )
    extra = tmp_path / "tags"
    extra.mkdir()
    (extra / "device_propensity.yaml").write_text(DEVICE_MODEL, encoding="utf-8")
    catalog = load_catalog([extra])

    report = job.run(spark, s, DT, catalog=catalog)
    print("\n" + "\n".join(report.summary()))

    assert set(report.missing_sources) == EVENT_VIEWS
    assert "does not exist" in report.missing_sources["events"]
    assert "has no records up to 2026-11-01" in report.missing_sources["kol_engagement"]
    assert "silver.events" in report.coverage_warnings["device_os"]
    assert "purchase_count_30d" not in report.coverage_warnings  # orders were ingested
    assert any(line.startswith("  WARNING source events:") for line in report.summary())

    stats = {r["tag_id"]: r for r in day_of(lake, "gold.tag_stats").collect()}
    assert stats["device_os"]["coverage"] == 0.0 and "silver.events" in stats["device_os"]["coverage_warning"]
    assert (
        stats["purchase_count_30d"]["coverage"] == 1.0
        and stats["purchase_count_30d"]["coverage_warning"] is None
    )
    profile = day_of(lake, "gold.profile")
    assert profile.where(F.col("device_os").isNotNull()).count() == 0
    assert profile.count() == report.oneids > 0

    registry = {r["tag_id"]: r for r in day_of(lake, "gold.models").collect()}
    assert set(registry) == {t.id for t in catalog.tags if t.kind == "model"}
    device = registry["device_propensity"]
    assert device["status"] == "not_trained" and device["path"] is None
    assert "no usable feature" in device["reason"]
    assert report.untrained["device_propensity"] == device["reason"]
    assert "device_propensity" not in report.models
    for tag_id, row in registry.items():
        filled = profile.where(F.col(tag_id).isNotNull()).count()
        if row["status"] == "published":
            assert math.isfinite(row["metric_value"]) and Path(row["path"]).is_file(), tag_id
            assert filled > 0, tag_id
        else:
            assert row["reason"] and filled == 0, tag_id
            assert stats[tag_id]["coverage_warning"].startswith("model not published"), tag_id


@pytest.mark.slow  # a population, an ingest, identity and every tag layer
def test_clickstream_only_gives_no_purchase_propensity_model(spark, settings, landed, tmp_path) -> None:
    s, lake = partial_lake(spark, settings, landed, tmp_path / "data", ["events"])
    report = job.run(spark, s, DT)
    print("\n" + "\n".join(report.summary()))

    assert "orders" in report.missing_sources and "events" not in report.missing_sources
    assert report.models == {}  # no purchase anywhere: nothing to learn, nothing published
    registry = {r["tag_id"]: r for r in day_of(lake, "gold.models").collect()}
    propensity = registry["purchase_propensity_30d"]
    assert propensity["status"] == "not_trained" and propensity["path"] is None
    assert f"0 positive and {propensity['train_rows']} negative rows" in propensity["reason"]
    assert not (Path(s.lake_root) / "models" / "purchase_propensity_30d").exists()
    profile = day_of(lake, "gold.profile")
    assert profile.where(F.col("purchase_propensity_30d").isNotNull()).count() == 0
    assert profile.where(F.col("device_os").isNotNull()).count() > 0  # the clickstream's own tags
