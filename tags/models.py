"""Predictive tags: scikit-learn / LightGBM models trained on the driver on a sample of tag values, evaluated
on a time-based holdout, and scored in parallel with ``mapInPandas`` (no MLlib, works over Spark Connect).

The job (``jobs.tags``) builds the frames (features as of a cutoff joined with labels after it) and stores
the model; this module only turns pandas frames into models and metrics, and a DataFrame into scores.

A date's predictive tags are deterministic: the training rows are sampled by a hash of the OneID and come to
the driver in OneID order, seeds are fixed, and training is single-threaded (LightGBM's deterministic
row-wise mode). One thread per model also keeps OpenMP from spinning on a machine whose cores the engine
is using: on 2 busy cores ``n_jobs=2`` took 89 s where ``n_jobs=1`` took 10.8 s.
"""

from __future__ import annotations

import datetime as _dt
import pickle
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from tags.catalog import ModelSpec

MAX_CATEGORIES = 30
# LightGBM: 150 trees at a learning rate of 0.06 fit in half the time of 300 at 0.03 with the same holdout
# metrics on the 100k-person lake (mean of 4 seeds: churn AUC -0.0003, purchase AUC +0.0000, 90-day value MAE
# +0.1%; seed-to-seed spread 0.0003 AUC, 0.3% MAE). 100 trees at 0.1 were faster again but cost churn ~0.001.
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "lightgbm": {
        "n_estimators": 150,
        "learning_rate": 0.06,
        "num_leaves": 15,
        "min_child_samples": 30,
        "subsample": 0.8,
        "subsample_freq": 1,
        "colsample_bytree": 0.8,
        "reg_lambda": 1.0,
        "verbose": -1,
        "n_jobs": 1,
        "deterministic": True,
        "force_row_wise": True,
        "random_state": 7,
    },
    "logistic_regression": {"C": 1.0, "max_iter": 500},
    "random_forest": {"n_estimators": 200, "min_samples_leaf": 20, "n_jobs": 1, "random_state": 7},
}


@dataclass
class Preprocessor:
    """Tag values -> a float matrix: numbers and booleans as they are (NaN when NULL), dates as days since
    1970, strings one-hot over the categories seen in training (at most ``MAX_CATEGORIES`` per feature)."""

    features: list[str]
    types: dict[str, str]
    categories: dict[str, list[str]] = field(default_factory=dict)

    def fit(self, frame: pd.DataFrame) -> Preprocessor:
        for f in self.features:
            if self.types[f] == "string":
                counts = frame[f].dropna().astype(str).value_counts()
                self.categories[f] = sorted(counts.index[:MAX_CATEGORIES])
        return self

    @property
    def columns(self) -> list[str]:
        out = []
        for f in self.features:
            if self.types[f] == "string":
                out += [f"{f}={c}" for c in self.categories[f]]
            else:
                out.append(f)
        return out

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        parts = []
        for f in self.features:
            col = frame[f]
            kind = self.types[f]
            if kind == "string":
                values = col.astype(object)
                parts += [(values == c).to_numpy(dtype=float) for c in self.categories[f]]
            elif kind == "date":
                days = pd.to_datetime(col, errors="coerce")
                parts.append(((days - pd.Timestamp("1970-01-01")).dt.days).to_numpy(dtype=float))
            else:
                parts.append(pd.to_numeric(col, errors="coerce").astype(float).to_numpy())
        if not parts:
            return np.zeros((len(frame), 0))
        return np.column_stack(parts)


def make_estimator(spec: ModelSpec):
    """The unfitted estimator of a model spec (default hyper-parameters overridden by ``spec.params``)."""
    params = {**DEFAULT_PARAMS[spec.algorithm], **spec.params}
    classify = spec.task == "classification"
    if spec.algorithm == "lightgbm":
        import lightgbm as lgb

        return lgb.LGBMClassifier(**params) if classify else lgb.LGBMRegressor(**params)
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if spec.algorithm == "logistic_regression":
        if not classify:
            from sklearn.linear_model import Ridge

            return make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), Ridge())
        from sklearn.linear_model import LogisticRegression

        return make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), LogisticRegression(**params))
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    forest = RandomForestClassifier(**params) if classify else RandomForestRegressor(**params)
    return make_pipeline(SimpleImputer(strategy="median"), forest)


@dataclass
class TrainedModel:
    """A fitted model with what scoring needs."""

    spec: ModelSpec
    preprocessor: Preprocessor
    estimator: Any

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        x = self.preprocessor.transform(frame)
        if self.spec.task == "classification":
            if len(getattr(self.estimator, "classes_", [0, 1])) < 2:
                return np.zeros(len(frame))
            return self.estimator.predict_proba(x)[:, 1]
        return np.maximum(self.estimator.predict(x), 0.0)


def fit(spec: ModelSpec, types: dict[str, str], frame: pd.DataFrame) -> TrainedModel:
    """Fit a model on ``frame`` (feature columns plus ``label``)."""
    pre = Preprocessor(list(spec.features), types).fit(frame)
    y = frame["label"].astype(float).to_numpy()
    if spec.task == "classification":
        y = (y > 0).astype(int)
    estimator = make_estimator(spec)
    x = pre.transform(frame)
    if spec.task == "classification" and len(np.unique(y)) < 2:
        # One class only (a tiny or degenerate window): a constant model instead of a crash.
        from sklearn.dummy import DummyClassifier

        estimator = DummyClassifier(strategy="prior")
    if spec.algorithm == "lightgbm":
        estimator.fit(pd.DataFrame(x, columns=_safe_names(pre.columns)), y)
        return TrainedModel(spec, pre, _LgbWrapper(estimator, _safe_names(pre.columns)))
    estimator.fit(x, y)
    return TrainedModel(spec, pre, estimator)


@dataclass
class _LgbWrapper:
    """LightGBM fitted on named columns; predicts from a matrix with the same names (no warnings)."""

    model: Any
    names: list[str]

    @property
    def classes_(self):
        return getattr(self.model, "classes_", [0, 1])

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(pd.DataFrame(x, columns=self.names))

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.model.predict(pd.DataFrame(x, columns=self.names))


def _safe_names(columns: list[str]) -> list[str]:
    # LightGBM refuses JSON special characters in feature names.
    return [f"f{i}" for i in range(len(columns))]


def baseline_scores(spec: ModelSpec, frame: pd.DataFrame, train: pd.DataFrame) -> np.ndarray:
    """The baseline's predictions: ``baseline_sign * <baseline feature>`` (NULL = the worst score), or the
    training label mean when the spec names no baseline."""
    if spec.baseline is None:
        return np.full(len(frame), float(train["label"].astype(float).mean()))
    values = pd.to_numeric(frame[spec.baseline], errors="coerce").astype(float) * spec.baseline_sign
    if spec.task == "classification":
        worst = np.nanmin(values.to_numpy()) - 1 if values.notna().any() else 0.0
        return values.fillna(worst).to_numpy()
    return values.fillna(0.0).to_numpy()


def evaluate(spec: ModelSpec, y: np.ndarray, predicted: np.ndarray, baseline: np.ndarray) -> dict[str, float]:
    """Holdout metrics: AUC, log loss, base rate and lift at the top decile for classification; MAE and
    RMSE for regression; each with the baseline's value."""
    from sklearn.metrics import log_loss, mean_absolute_error, mean_squared_error, roc_auc_score

    y = np.asarray(y, dtype=float)
    out: dict[str, float] = {"rows": float(len(y))}
    if spec.task == "classification":
        y = (y > 0).astype(int)
        out["base_rate"] = float(y.mean()) if len(y) else float("nan")
        both = len(np.unique(y)) == 2
        out["auc"] = float(roc_auc_score(y, predicted)) if both else float("nan")
        out["baseline_auc"] = float(roc_auc_score(y, baseline)) if both else float("nan")
        out["log_loss"] = (
            float(log_loss(y, np.clip(predicted, 1e-6, 1 - 1e-6), labels=[0, 1])) if len(y) else 0.0
        )
        top = np.argsort(-predicted)[: max(1, len(y) // 10)]
        out["lift_top_decile"] = float(y[top].mean() / y.mean()) if y.mean() > 0 else float("nan")
    else:
        out["mae"] = float(mean_absolute_error(y, predicted))
        out["rmse"] = float(np.sqrt(mean_squared_error(y, predicted)))
        out["baseline_mae"] = float(mean_absolute_error(y, baseline))
        out["baseline_rmse"] = float(np.sqrt(mean_squared_error(y, baseline)))
        out["mean_label"] = float(y.mean())
    return out


MIN_MINORITY_ROWS = 20
"""A classifier is trained only when each class has at least this many rows in both windows."""


def unusable_features(spec: ModelSpec, frame: pd.DataFrame) -> list[str]:
    """The features of ``frame`` that cannot inform a model: NULL for every row, or one value everywhere
    (a tag whose source the deployment lacks is NULL or its default for every OneID)."""
    return [f for f in spec.features if not frame[f].notna().any() or frame[f].nunique(dropna=False) < 2]


def untrainable(spec: ModelSpec, frame: pd.DataFrame, window: str) -> str | None:
    """Why a model must not be trained on ``frame`` (features and ``label``), or None when it may.

    A model is not trained on a window without rows; for classification, when a class has fewer than
    ``MIN_MINORITY_ROWS`` rows (e.g. no purchase at all in a deployment without transactions: a model of
    one class scores every OneID the same); for regression, when the label is constant; or when no feature
    has non-NULL, varying values. The reason names every problem found, separated by ``; ``.

    Args:
        spec: the model.
        frame: the window's rows.
        window: how the reason names the window (``training window as of 2026-09-02``).
    """
    if frame.empty:
        return f"no rows in the {window}"
    problems = []
    y = pd.to_numeric(frame["label"], errors="coerce").astype(float)
    if spec.task == "classification":
        positives = int((y > 0).sum())
        negatives = len(y) - positives
        if min(positives, negatives) < MIN_MINORITY_ROWS:
            problems.append(
                f"labels of the {window} have {positives} positive and {negatives} negative rows; "
                f"each class needs at least {MIN_MINORITY_ROWS}"
            )
    elif y.nunique() < 2:
        problems.append(f"the label is the same for every row of the {window}")
    if len(unusable_features(spec, frame)) == len(spec.features):
        problems.append(f"no usable feature in the {window}: every feature is NULL or constant")
    return "; ".join(problems) or None


def unpublishable(spec: ModelSpec, metrics: dict[str, float]) -> str | None:
    """Why a trained model must not be published, or None: its holdout metric is not a number (an AUC of
    NaN means the holdout cannot tell the model from chance)."""
    name, value, _ = headline(spec, metrics)
    if value is None or not np.isfinite(value):
        return f"holdout {name} is {value}"
    return None


def headline(spec: ModelSpec, metrics: dict[str, float]) -> tuple[str, float, float]:
    """``(metric name, value, baseline value)`` reported in ``gold.tag_stats``."""
    if spec.task == "classification":
        return "auc", metrics["auc"], metrics["baseline_auc"]
    return "mae", metrics["mae"], metrics["baseline_mae"]


def score(frame: DataFrame, model: TrainedModel, tag_id: str) -> DataFrame:
    """Score every row of ``frame`` (``oneid`` plus the features) in parallel: ``(oneid, <tag_id> double)``.

    The fitted model travels pickled inside the function's closure, so workers need only this package.
    """
    blob = pickle.dumps(model)
    features = list(model.spec.features)

    def predict(batches):
        fitted = pickle.loads(blob)
        for pdf in batches:
            values = fitted.predict(pdf[features]) if len(pdf) else np.zeros(0)
            yield pd.DataFrame({"oneid": pdf["oneid"].astype("int64"), tag_id: values.astype(float)})

    return frame.select(F.col("oneid").cast("long"), *features).mapInPandas(
        predict, schema=f"oneid long, `{tag_id}` double"
    )


SAMPLE_BUCKETS = 1_000_000


def to_pandas(frame: DataFrame, features: list[str], sample_rows: int, seed: int = 7) -> pd.DataFrame:
    """At most about ``sample_rows`` rows of ``frame`` (features and ``label``) on the driver, in OneID order.

    The sample keeps a OneID when a hash of it (salted with ``seed``) falls under the sampled share, so the
    same frame always gives the same rows in the same order (``DataFrame.sample`` depends on partitioning).

    Args:
        frame: ``oneid``, the features and ``label``.
        features: the feature columns to bring.
        sample_rows: the number of rows aimed at.
        seed: the salt of the hash (another seed, another sample).
    """
    n = frame.count()
    if n > sample_rows:
        share = min(1.0, sample_rows * 1.05 / n)
        bucket = F.pmod(F.xxhash64(F.col("oneid").cast("string"), F.lit(seed)), F.lit(SAMPLE_BUCKETS))
        frame = frame.where(bucket < F.lit(int(share * SAMPLE_BUCKETS)))
    return frame.orderBy("oneid").select(*features, "label").toPandas()


def cutoffs(dt: _dt.date, horizon_days: int) -> tuple[_dt.date, _dt.date]:
    """``(train_as_of, holdout_as_of)`` for scoring ``dt``: features as of these days, labels in the
    ``horizon`` after each (the holdout's labels end on ``dt``)."""
    h = _dt.timedelta(days=horizon_days)
    return dt - 2 * h, dt - h
