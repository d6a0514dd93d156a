"""The BG/NBD benchmark of the purchase propensity (``tags.btyd``): maximum likelihood recovers the parameters
of simulated customers, P(no purchase in t days) agrees with a Monte-Carlo run of the process, the grouped
AUC equals scikit-learn's, the Spark summary of a hand-made order table is exact, and on the demo lake the
purchase propensity's holdout AUC is recorded beside BG/NBD's and is not below it."""

from __future__ import annotations

import datetime
import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from tags import btyd

DT = "2026-11-01"  # the demo lake's date (tests/conftest.py)
TRUE = btyd.BgNbd(r=0.5, alpha=20.0, a=0.8, b=3.0)


def test_fit_recovers_the_parameters_of_simulated_customers() -> None:
    # Three cohorts (first purchase 90, 180 and 365 days before the cutoff), 1,500 customers each.
    cohorts = [btyd.simulate(TRUE, 1_500, age, seed=i) for i, age in enumerate((90, 180, 365))]
    x, t_x, big_t, _ = (np.concatenate(c) for c in zip(*cohorts, strict=True))
    triples, n = np.unique(np.round(np.column_stack([x, t_x, big_t])), axis=0, return_counts=True)
    assert len(triples) < len(x)  # the fit runs on the distinct triples, each with its count
    fitted = btyd.fit(triples[:, 0], triples[:, 1], triples[:, 2], n)
    assert fitted.customers == 4_500
    for name in ("r", "alpha", "a", "b"):
        assert getattr(fitted, name) == pytest.approx(getattr(TRUE, name), rel=0.15), name
    # Counting triples is the same likelihood as one row per customer.
    rounded = np.round(np.column_stack([x, t_x, big_t]))
    per_person = btyd.fit(rounded[:, 0], rounded[:, 1], rounded[:, 2])
    assert per_person.log_likelihood == pytest.approx(fitted.log_likelihood, rel=1e-6)


def test_p_no_purchase_agrees_with_a_monte_carlo_run_of_the_process() -> None:
    x, t_x, big_t, bought = btyd.simulate(TRUE, 60_000, 180, t=30, seed=5)
    quiet = btyd.p_no_purchase(TRUE, 30, x, t_x, big_t)
    assert quiet.mean() == pytest.approx(1 - bought.mean(), abs=0.01)
    for low, high in ((0, 0), (1, 2), (3, 5), (6, 10_000)):
        group = (x >= low) & (x <= high)
        assert group.sum() > 3_000
        assert quiet[group].mean() == pytest.approx(1 - bought[group].mean(), abs=0.015), (low, high)
    # A new customer: FHL 2005's P(X(t) = 0) = (alpha / (alpha + t)) ** r.
    zero = np.zeros(1)
    assert btyd.p_no_purchase(TRUE, 30, zero, zero, zero)[0] == pytest.approx((20 / 50) ** 0.5)
    assert btyd.p_purchase(TRUE, 30, x, t_x, big_t) == pytest.approx(1 - quiet)
    alive = btyd.p_alive(TRUE, x, t_x, big_t)
    assert np.all((alive > 0) & (alive <= 1)) and np.all(alive[x == 0] == 1)


def test_expected_purchases_exceed_the_chance_of_one() -> None:
    model = btyd.BgNbd(r=0.5, alpha=20.0, a=1.5, b=3.0)
    x, t_x, big_t = np.array([0.0, 3.0, 3.0]), np.array([0.0, 170.0, 20.0]), np.array([180.0, 180.0, 180.0])
    expected = btyd.expected_purchases(model, 30, x, t_x, big_t)
    assert np.all(expected >= btyd.p_purchase(model, 30, x, t_x, big_t))
    assert expected[1] > expected[2]  # the same purchases, the recent buyer is more likely alive
    assert np.isnan(btyd.expected_purchases(TRUE, 30, x, t_x, big_t)).all()  # a <= 1: no finite mean


def test_grouped_auc_equals_the_auc_of_the_rows() -> None:
    rng = np.random.default_rng(1)
    group = rng.integers(0, 6, 400)
    score = np.array([0.1, 0.5, 0.5, 0.2, 0.9, 0.0])  # two groups tie
    y = rng.random(400) < 0.2 + score[group] / 2
    positives = np.bincount(group, weights=y, minlength=6)
    negatives = np.bincount(group, weights=~y, minlength=6)
    assert btyd.grouped_auc(score, positives, negatives) == pytest.approx(roc_auc_score(y, score[group]))
    assert np.isnan(btyd.grouped_auc(score, np.zeros(6), negatives))


def test_champion_publishes_bg_nbd_only_when_it_ranks_the_holdout_better() -> None:
    bench = {"auc": 0.85, "btyd_auc": 0.86, "btyd_direction": 1, "btyd_prospect_score": 0.01}
    assert btyd.champion(bench) == bench | {"selected": "bg_nbd", "model_auc": 0.85, "auc": 0.86}
    assert btyd.champion(bench | {"auc": 0.86})["selected"] == "model"
    assert btyd.champion({"auc": 0.7}) == {"auc": 0.7}  # no benchmark (not a purchase label)
    assert "selected" not in btyd.champion({"auc": 0.7, "btyd_auc": float("nan")})  # no customers to fit


def test_label_direction() -> None:
    assert btyd.label_direction("classification", "orders", "count(DISTINCT order_id) > 0") == 1
    assert btyd.label_direction("classification", "orders", "count(DISTINCT order_id) = 0") == -1
    assert btyd.label_direction("classification", "orders", "sum(amount) > 100") is None
    assert btyd.label_direction("regression", "orders", "count(*) > 0") is None
    assert btyd.label_direction("classification", "events", "count(*) > 0") is None


def test_summary_of_a_hand_made_order_table(spark) -> None:
    from pyspark.sql import functions as F

    orders = spark.createDataFrame(
        [
            (1, "2026-10-01 09:00:00"),
            (1, "2026-10-01 18:00:00"),  # the same day: one purchase day
            (1, "2026-10-11 10:00:00"),
            (1, "2026-10-21 10:00:00"),
            (1, "2026-11-05 10:00:00"),  # after the cutoff: not in the history
            (2, "2026-10-31 23:00:00"),
            (3, "2026-11-02 10:00:00"),  # only after the cutoff: no row
        ],
        "oneid long, order_time string",
    ).withColumn("order_time", F.to_timestamp("order_time"))
    got = orders.transform(btyd.summary(datetime.date(2026, 10, 31)))
    assert got.columns == ["oneid", "x", "t_x", "T"]
    assert sorted(tuple(r) for r in got.collect()) == [(1, 2, 20, 30), (2, 0, 0, 0)]
    x, t_x, big_t, n = btyd.triple_counts(got)
    assert (x.tolist(), t_x.tolist(), big_t.tolist(), n.tolist()) == ([0, 2], [0, 20], [0, 30], [1, 1])

    labels = spark.createDataFrame(
        [(1, True), (2, False), (4, True), (5, False)], "oneid long, label boolean"
    )
    grouped = btyd.labelled_triples(labels, got)
    assert grouped.x.tolist() == [0.0, 2.0] and grouped.big_t.tolist() == [0.0, 30.0]
    assert grouped.positives.tolist() == [0.0, 1.0] and grouped.negatives.tolist() == [1.0, 0.0]
    assert (grouped.prospect_positives, grouped.prospect_negatives) == (1.0, 1.0)

    # The per-person Column equals the driver's closed form; NULL without a purchase.
    scored = labels.join(got, "oneid", "left").select("oneid", btyd.build_p_purchase(TRUE, 30).alias("p"))
    p = {r["oneid"]: r["p"] for r in scored.collect()}
    expected = btyd.p_purchase(TRUE, 30, np.array([2.0, 0.0]), np.array([20.0, 0.0]), np.array([30.0, 0.0]))
    assert [p[1], p[2]] == pytest.approx(expected.tolist()) and p[4] is None and p[5] is None


@pytest.mark.slow
def test_purchase_propensity_is_measured_against_bg_nbd_on_the_demo_lake(spark, demo_lake) -> None:
    from pyspark.sql import functions as F

    from cdp.lake import Lake

    row = demo_lake.tags.models["purchase_propensity_30d"]
    model_auc, btyd_auc, recency_auc = row["metric_value"], row["btyd_auc"], row["baseline_auc"]
    print(f"\npurchase_propensity_30d holdout AUC: model {model_auc:.3f}, BG/NBD {btyd_auc:.3f}, "
          f"recency {recency_auc:.3f} on {row['holdout_rows']:,} rows")  # fmt: skip
    assert 0.5 < btyd_auc < 1 and 0.5 < recency_auc < 1
    # With every source, the trained model itself ranks the holdout at least as well as BG/NBD.
    assert json.loads(row["metrics"])["selected"] == "model" and row["algorithm"] == "lightgbm"
    assert model_auc >= btyd_auc - 0.01
    stored = (
        Lake(spark, demo_lake.settings.lake_root)
        .read("gold.models")
        .where(F.col("tag_id") == "purchase_propensity_30d")
        .select("btyd_auc", "baseline_auc")
        .collect()
    )
    assert [(r["btyd_auc"], r["baseline_auc"]) for r in stored] == [(btyd_auc, recency_auc)]
    assert any("BG/NBD" in line for line in demo_lake.tags.summary())


# What a transactions-only source (customer, time, amount) gives the purchase propensity.
ORDER_FEATURES = [
    "r_365d",
    "purchase_count_30d",
    "purchase_count_90d",
    "purchase_count_365d",
    "purchase_amount_30d",
    "purchase_amount_90d",
    "purchase_amount_365d",
    "lifetime_order_count",
    "purchase_days",
    "days_since_first_order",
    "days_since_last_order",
]


def with_features(catalog, tag_id: str, features: list[str]):
    """The catalog with one model's features replaced."""
    from tags import plan_catalog

    tag = catalog[tag_id]
    model = tag.model.model_copy(update={"features": features})
    return plan_catalog(
        [t.model_copy(update={"model": model}) if t.id == tag_id else t for t in catalog.tags]
    )


@pytest.mark.slow
def test_on_order_features_alone_the_propensity_still_matches_bg_nbd(spark, copy_demo_lake, tmp_path) -> None:
    from pyspark.sql import functions as F

    from cdp.lake import Lake
    from jobs import tags as job
    from tags import load_catalog

    settings = copy_demo_lake(tmp_path / "data")
    catalog = with_features(load_catalog([]), "purchase_propensity_30d", ORDER_FEATURES)
    report = job.run(spark, settings, DT, ["predictive"], catalog=catalog, rebuild=True)
    row = report.models["purchase_propensity_30d"]
    model_auc = json.loads(row["metrics"]).get("model_auc", row["metric_value"])
    print(f"\norder features alone: model {model_auc:.3f}, BG/NBD {row['btyd_auc']:.3f}, "
          f"recency {row['baseline_auc']:.3f}, published {row['algorithm']}")  # fmt: skip
    metrics = json.loads(row["metrics"])
    assert row["metric_value"] >= row["btyd_auc"] and metrics["selected"] in ("model", "bg_nbd")
    if metrics["selected"] == "bg_nbd":  # BG/NBD scores the date: every OneID, one score per triple
        assert row["algorithm"] == "bg_nbd" and metrics["model_auc"] < row["btyd_auc"]
        profile = Lake(spark, settings.lake_root).read("gold.profile").where(F.col("dt") == F.lit(DT))
        p = profile.select("purchase_propensity_30d").toPandas()["purchase_propensity_30d"]
        assert p.notna().all() and p.between(0, 1).all() and p.nunique() < len(p) / 2
