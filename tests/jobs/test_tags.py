"""The tag build on a generated demo population (real ingest, OneID and Delta tables): every layer, the
wide profile and the long table agree, statistics and the model registry are written, reruns are
idempotent, partial layer rebuilds keep the other tags, history is kept by dt, two builds of a date give the
same predictive tags, and the 30-day purchase propensity is scored against the generator's future
purchases."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest
from pyspark.sql import functions as F
from sklearn.metrics import roc_auc_score

from cdp.lake import Lake
from cdp.testing import assert_df_equal
from jobs import tags as job
from tags import load_catalog

DT = "2026-11-01"
DAY = datetime.date.fromisoformat(DT)
DAY2 = DAY + datetime.timedelta(days=1)
PERSONS = 3_000

# Every test reads the session's demo lake (a population built once, tests/conftest.py).
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built(spark, demo_lake):
    """The shared demo lake, read-only: a year of history ingested and resolved, and the full tag build
    (every layer, predictive included) of its first day."""
    assert (demo_lake.dt, demo_lake.persons) == (DT, PERSONS)
    s = demo_lake.settings
    return s, Lake(spark, s.lake_root, contracts=None), demo_lake.tags


@pytest.fixture()
def built_copy(spark, demo_lake, copy_demo_lake, tmp_path):
    """A copy of the shared demo lake, for a test that rebuilds tags on it."""
    s = copy_demo_lake(tmp_path / "data")
    return s, Lake(spark, s.lake_root, contracts=None), demo_lake.tags


def _text(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def day_of(lake: Lake, table: str, day: datetime.date = DAY):
    return lake.read(table).where(F.col("dt") == F.lit(day))


def test_profile_tags_and_stats_cover_every_tag(built) -> None:
    _, lake, report = built
    catalog = load_catalog([])
    profile = day_of(lake, "gold.profile")
    assert profile.columns == ["oneid", *catalog.ids, "dt"]
    types = dict(profile.dtypes)
    assert types["oneid"] == "string" and types["dt"] == "date" and types["gender"] == "string"
    assert types["purchase_count_30d"] == "bigint" and types["churn_probability"] == "double"
    assert types["is_member"] == "boolean" and types["first_order_date"] == "date"
    oneids = day_of(lake, "gold.oneid_map").select("oneid").distinct().count()
    assert profile.count() == profile.select("oneid").distinct().count() == oneids == report.oneids
    long = day_of(lake, "gold.tags")
    assert long.count() == report.values
    # Long and wide hold the same values.
    for tag in ("rfm_segment", "purchase_count_365d", "aipl_stage", "is_member"):
        wide_values = {(r[0], _text(r[1])) for r in profile.select("oneid", tag).dropna().collect()}
        long_values = {
            (r[0], r[1]) for r in long.where(F.col("tag_id") == tag).select("oneid", "value").collect()
        }
        assert wide_values == long_values, tag
    stats = {r["tag_id"]: r for r in day_of(lake, "gold.tag_stats").collect()}
    assert set(stats) == set(catalog.ids)
    assert stats["purchase_count_30d"]["coverage"] == 1.0
    assert 0.05 < stats["rfm_segment"]["coverage"] < 0.6
    assert set(json.loads(stats["rfm_segment"]["distribution"])) <= {
        "重要价值",
        "重要保持",
        "重要发展",
        "重要挽留",
        "一般价值",
        "一般保持",
        "一般发展",
        "一般挽留",
    }
    assert set(json.loads(stats["aipl_stage"]["distribution"])) == {"A", "I", "P", "L"}
    churn = [r["churn_probability"] for r in profile.where("purchase_count_365d = 0").limit(5).collect()]
    assert churn and all(v is None for v in churn)  # outside the model's population


def test_model_registry_and_holdout_metrics(built) -> None:
    _, lake, _ = built
    models = {r["tag_id"]: r for r in day_of(lake, "gold.models").collect()}
    assert set(models) == {"purchase_propensity_30d", "churn_probability", "expected_value_90d"}
    p = models["purchase_propensity_30d"]
    assert p["metric"] == "auc" and p["metric_value"] > p["baseline_value"]
    assert p["train_as_of"] == DAY - datetime.timedelta(days=60) and p[
        "holdout_as_of"
    ] == DAY - datetime.timedelta(days=30)
    assert Path(p["path"]).is_file() and "r_365d" in json.loads(p["features"])
    v = models["expected_value_90d"]
    assert v["metric"] == "mae" and v["metric_value"] < v["baseline_value"]
    stats = {r["tag_id"]: r for r in day_of(lake, "gold.tag_stats").where("metric IS NOT NULL").collect()}
    assert stats["churn_probability"]["metric_value"] == models["churn_probability"]["metric_value"]


def person_scores(spark, s, lake: Lake):
    """Per person of the ground truth: the best propensity and the most recent purchase over their OneIDs,
    and whether they buy in the 30 days after DT."""
    from identity.evaluate import truth_identifiers

    truth = truth_identifiers(spark.read.parquet(f"{s.truth_root}/identifiers.parquet"), s.require_pii_key())
    persons = (
        day_of(lake, "gold.oneid_map")
        .join(truth.where(F.col("person_id").isNotNull()), ["id_type", "id_value"])
        .select(F.col("oneid").cast("string").alias("oneid"), "person_id")
        .distinct()
    )
    profile = day_of(lake, "gold.profile").select("oneid", "purchase_propensity_30d", "r_365d")
    future = spark.read.parquet(f"{s.truth_root}/future_purchases.parquet")
    rows = (
        persons.join(profile, "oneid")
        .groupBy("person_id")
        .agg(F.max("purchase_propensity_30d").alias("p"), F.min("r_365d").alias("r"))
        .join(future, "person_id")
        .select("p", "r", (F.col("purchases") > 0).cast("int").alias("y"))
        .toPandas()
    )
    return rows


def test_purchase_propensity_beats_recency_against_future_purchases(spark, built) -> None:
    s, lake, _ = built
    rows = person_scores(spark, s, lake)
    assert len(rows) > 0.9 * PERSONS and 0.03 < rows["y"].mean() < 0.5
    auc = roc_auc_score(rows["y"], rows["p"])
    recency = -rows["r"].fillna(10_000).to_numpy(dtype=float)
    baseline = roc_auc_score(rows["y"], recency)
    print(f"\npropensity AUC {auc:.3f} vs recency-only {baseline:.3f} on {len(rows)} persons")
    assert auc >= 0.75
    assert auc > baseline


def test_two_builds_of_a_date_give_the_same_predictive_tags(spark, built, built_copy) -> None:
    """Fixed seeds, a sample by OneID hash in OneID order and single-threaded training: rebuilding the
    predictive layer of the date gives the very same scores and holdout metrics as the first build."""
    _, first, _ = built
    s, lake, _ = built_copy
    predictive = [t.id for t in load_catalog([]).layer("predictive")]
    job.run(spark, s, DT, ["predictive"])
    assert_df_equal(
        day_of(lake, "gold.profile").select("oneid", *predictive),
        day_of(first, "gold.profile").select("oneid", *predictive),
        order_by=["oneid"],
    )
    metrics = ["tag_id", "metric_value", "baseline_value", "train_rows", "holdout_rows"]
    assert_df_equal(
        day_of(lake, "gold.models").select(*metrics), day_of(first, "gold.models").select(*metrics)
    )


def test_rerun_partial_layers_and_history_by_dt(spark, built_copy) -> None:
    s, lake, report = built_copy
    before = sorted(
        tuple(r) for r in day_of(lake, "gold.tags").where("tag_id <> 'high_potential'").drop("dt").collect()
    )
    # A partial rebuild of the fact layer keeps every other tag of the date and changes nothing.
    partial = job.run(spark, s, DT, ["fact"])
    assert partial.tags == [t.id for t in load_catalog([]).layer("fact")]
    after = sorted(
        tuple(r) for r in day_of(lake, "gold.tags").where("tag_id <> 'high_potential'").drop("dt").collect()
    )
    assert after == before
    assert day_of(lake, "gold.profile").count() == report.oneids
    assert day_of(lake, "gold.tag_stats").count() == len(load_catalog([]))
    # The next day (same OneID map, nothing new ingested): a second snapshot, compared with the first.
    lake.replace_dt("gold.oneid_map", day_of(lake, "gold.oneid_map").drop("dt"), DAY2)
    second = job.run(spark, s, DAY2, ["raw", "fact", "model"])
    assert second.previous_dt == DT
    assert {r["dt"] for r in lake.read("gold.profile").select("dt").distinct().collect()} == {DAY, DAY2}
    stats = {r["tag_id"]: r for r in day_of(lake, "gold.tag_stats", DAY2).collect()}
    assert stats["gender"]["changed_share"] == 0.0 and stats["gender"]["coverage_change"] == 0.0
    assert stats["r_365d"]["changed_share"] > 0  # every recency moved by one day
    first_day = day_of(lake, "gold.profile").count()
    assert first_day == report.oneids  # the first snapshot is untouched
