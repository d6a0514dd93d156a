"""Predictive tags' model code on small pandas frames (no engine) and its parallel scoring on the engine: the
feature matrix, the estimators a spec asks for, degenerate training windows, baselines, holdout metrics,
the time-based cutoffs, and scores from ``mapInPandas`` equal to the driver's predictions."""

from __future__ import annotations

import datetime
import math

import numpy as np
import pandas as pd
import pytest

from tags import models
from tags.catalog import ModelSpec


def spec(**changes) -> ModelSpec:
    base = {
        "task": "classification",
        "algorithm": "logistic_regression",
        "features": ["orders_30d", "last_order", "city", "is_member"],
        "label": {"from": "orders", "value": "count(*)"},
        "horizon_days": 30,
    }
    return ModelSpec.model_validate(base | changes)


TYPES = {"orders_30d": "long", "last_order": "date", "city": "string", "is_member": "boolean"}


def test_preprocessor_turns_tag_values_into_floats() -> None:
    train = pd.DataFrame(
        {
            "orders_30d": [1, None, 3],
            "last_order": [datetime.date(1970, 1, 11), None, datetime.date(1970, 1, 1)],
            "city": ["上海", "北京", None],
            "is_member": [True, False, None],
        }
    )
    pre = models.Preprocessor(list(TYPES), TYPES).fit(train)
    assert pre.columns == ["orders_30d", "last_order", "city=上海", "city=北京", "is_member"]
    other = pd.DataFrame(
        {"orders_30d": [2], "last_order": [datetime.date(1970, 1, 2)], "city": ["深圳"], "is_member": [True]}
    )
    got = np.vstack([pre.transform(train), pre.transform(other)])
    nan = np.nan
    expected = np.array(
        [
            [1.0, 10.0, 1.0, 0.0, 1.0],
            [nan, nan, 0.0, 1.0, 0.0],
            [3.0, 0.0, 0.0, 0.0, nan],
            [2.0, 1.0, 0.0, 0.0, 1.0],  # a city unseen in training is all zeros
        ]
    )
    np.testing.assert_array_equal(got, expected)


def test_preprocessor_keeps_at_most_the_most_frequent_categories(monkeypatch) -> None:
    monkeypatch.setattr(models, "MAX_CATEGORIES", 2)
    frame = pd.DataFrame({"city": ["c", "c", "c", "a", "a", "b"]})
    pre = models.Preprocessor(["city"], {"city": "string"}).fit(frame)
    assert pre.categories == {"city": ["a", "c"]}


def test_make_estimator_follows_the_spec() -> None:
    import lightgbm as lgb
    from sklearn.linear_model import LogisticRegression, Ridge

    classifier = models.make_estimator(spec(algorithm="lightgbm", params={"num_leaves": 7}))
    assert isinstance(classifier, lgb.LGBMClassifier)
    # One thread per process, deterministic for a date (the engine has the cores).
    assert classifier.get_params()["n_jobs"] == 1 and classifier.get_params()["deterministic"] is True
    assert models.make_estimator(spec(algorithm="random_forest"))[-1].n_jobs == 1
    assert classifier.get_params()["num_leaves"] == 7 and classifier.get_params()["learning_rate"] == 0.06
    assert isinstance(models.make_estimator(spec(algorithm="lightgbm", task="regression")), lgb.LGBMRegressor)
    assert isinstance(models.make_estimator(spec(params={"C": 0.5}))[-1], LogisticRegression)
    assert models.make_estimator(spec(params={"C": 0.5}))[-1].C == 0.5
    assert isinstance(models.make_estimator(spec(task="regression"))[-1], Ridge)


def training_frame(labels: list[float]) -> pd.DataFrame:
    n = len(labels)
    return pd.DataFrame(
        {
            "orders_30d": list(range(n)),
            "last_order": [datetime.date(2026, 10, 1)] * n,
            "city": ["上海", "北京"] * (n // 2) + ["上海"] * (n % 2),
            "is_member": [True] * n,
            "label": labels,
        }
    )


def test_a_window_with_one_class_gives_a_constant_model() -> None:
    frame = training_frame([0.0] * 6)
    fitted = models.fit(spec(), TYPES, frame)
    np.testing.assert_array_equal(fitted.predict(frame), np.zeros(6))


def test_a_classifier_learns_the_order_and_a_regressor_never_predicts_below_zero() -> None:
    frame = training_frame([0, 0, 0, 0, 1, 1, 1, 1])
    scores = models.fit(spec(params={"C": 100.0}), TYPES, frame).predict(frame)
    assert list(np.argsort(scores)[:4]) == [0, 1, 2, 3] and scores[4:].min() > 0.5 > scores[:4].max()
    falling = training_frame([7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.0])
    later = falling.assign(orders_30d=[20, 30, 40, 50, 60, 70, 80, 90])
    predicted = models.fit(spec(task="regression"), TYPES, falling).predict(later)
    assert predicted.min() == 0.0


def test_baseline_scores() -> None:
    train = pd.DataFrame({"label": [0.0, 1.0, 1.0, 0.0]})
    frame = pd.DataFrame({"recency": [5.0, None, 1.0]})
    np.testing.assert_array_equal(models.baseline_scores(spec(), frame, train), [0.5, 0.5, 0.5])
    ranked = spec(baseline="recency", baseline_sign=-1)
    np.testing.assert_array_equal(models.baseline_scores(ranked, frame, train), [-5.0, -6.0, -1.0])
    amount = spec(task="regression", baseline="recency")
    np.testing.assert_array_equal(models.baseline_scores(amount, frame, train), [5.0, 0.0, 1.0])


def test_classification_metrics_on_the_holdout() -> None:
    y = np.array([0, 0, 1, 1, 0, 0, 0, 0, 0, 1])
    predicted = np.array([0.1, 0.2, 0.8, 0.7, 0.85, 0.1, 0.2, 0.1, 0.4, 0.9])
    baseline = np.array([0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5])
    got = models.evaluate(spec(), y, predicted, baseline)
    log_loss = -np.mean(y * np.log(predicted) + (1 - y) * np.log(1 - predicted))
    assert got == pytest.approx(
        {
            "rows": 10.0,
            "base_rate": 0.3,
            "auc": 19 / 21,  # one negative (0.85) outranks two of the three positives
            "baseline_auc": 0.5,
            "log_loss": log_loss,
            "lift_top_decile": 1 / 0.3,  # the top decile is one row, a positive
        }
    )
    assert models.headline(spec(), got) == ("auc", pytest.approx(19 / 21), 0.5)


def test_regression_metrics_on_the_holdout() -> None:
    y, predicted, baseline = np.array([1.0, 3.0]), np.array([2.0, 3.0]), np.array([0.0, 0.0])
    got = models.evaluate(spec(task="regression"), y, predicted, baseline)
    assert got == pytest.approx(
        {
            "rows": 2.0,
            "mae": 0.5,
            "rmse": math.sqrt(0.5),
            "baseline_mae": 2.0,
            "baseline_rmse": math.sqrt(5.0),
            "mean_label": 2.0,
        }
    )
    assert models.headline(spec(task="regression"), got) == ("mae", 0.5, 2.0)


def test_one_class_holdout_has_no_auc() -> None:
    got = models.evaluate(spec(), np.array([0, 0]), np.array([0.2, 0.1]), np.array([0.5, 0.5]))
    assert math.isnan(got["auc"]) and math.isnan(got["baseline_auc"]) and math.isnan(got["lift_top_decile"])


def test_cutoffs_are_two_horizons_and_one_horizon_before_dt() -> None:
    assert models.cutoffs(datetime.date(2026, 11, 1), 30) == (
        datetime.date(2026, 9, 2),
        datetime.date(2026, 10, 2),
    )


def test_score_in_parallel_equals_the_driver_prediction(spark) -> None:
    frame = training_frame([0, 0, 0, 0, 1, 1, 1, 1])
    fitted = models.fit(spec(), TYPES, frame)
    rows = frame.drop(columns="label").assign(oneid=[str(i) for i in range(8)])
    df = spark.createDataFrame(
        rows, "orders_30d long, last_order date, city string, is_member boolean, oneid string"
    )
    got = models.score(df, fitted, "buy_30d")
    assert got.dtypes == [("oneid", "bigint"), ("buy_30d", "double")]
    scores = {r["oneid"]: r["buy_30d"] for r in got.collect()}
    assert scores == pytest.approx(dict(enumerate(fitted.predict(frame))))


def test_to_pandas_brings_features_and_label_and_samples_large_frames(spark) -> None:
    df = spark.createDataFrame(
        [(399 - i, i, float(i % 2), "x") for i in range(400)],
        "oneid long, orders_30d long, label double, z string",
    ).repartition(3)
    small = models.to_pandas(df.where("orders_30d < 3"), ["orders_30d"], sample_rows=100)
    assert small.to_dict("list") == {"orders_30d": [2, 1, 0], "label": [0.0, 1.0, 0.0]}  # OneID order
    sampled = models.to_pandas(df, ["orders_30d"], sample_rows=100)
    assert list(sampled.columns) == ["orders_30d", "label"] and 50 <= len(sampled) <= 160
    # The same rows in the same order every time, whatever the partitioning; another seed, another sample.
    again = models.to_pandas(df.repartition(5), ["orders_30d"], sample_rows=100)
    assert again.equals(sampled) and list(sampled["orders_30d"]) == sorted(
        sampled["orders_30d"], reverse=True
    )
    other = models.to_pandas(df, ["orders_30d"], sample_rows=100, seed=11)
    assert set(other["orders_30d"]) != set(sampled["orders_30d"])
