"""High-potential creators (高潜达人): a model of each creator's follower growth over the next 30 days.

    daily features (creators.features) with the 30-day future growth where it is known
        -> training_rows: one snapshot a week per creator, label known by dt
        -> time-based holdout: train on snapshots up to dt - 60, test on the snapshot of dt - 30 (whose
           30-day future ends at dt), against two baselines: "largest now" (followers) and "grew most in the
           last 30 days" (growth_30d); metric precision@k of the true top growers
        -> the published model is refit on every labelled snapshot and scores today's (mapInPandas)

The model is a LightGBM regressor of log(1 + growth), single-threaded and deterministic, trained on the
driver: a creator table is small (a few thousand creators x a few dozen weeks).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from creators.features import MODEL_FEATURES

HORIZON = 30
STEP_DAYS = 7
MIN_TRAIN_ROWS = 60
TOP_SHARE = 0.1
SEED = 17
BASELINES = {"current_followers": "followers", "growth_last_30d": "growth_30d"}


class PotentialError(ValueError):
    """The potential model cannot be trained for the date (too little history); the message says why."""


def training_rows(daily: DataFrame, day: int, *, step: int = STEP_DAYS, horizon: int = HORIZON) -> DataFrame:
    """Snapshots usable for training at day number ``day``: every ``step`` days back from ``day - horizon``,
    with a known ``future_growth`` and a 30-day history (``growth_30d``)."""
    last = day - horizon
    return daily.where(
        (F.col("day") <= last)
        & (((F.lit(last) - F.col("day")) % step) == 0)
        & F.col("future_growth").isNotNull()
        & F.col("growth_30d").isNotNull()
    )


def top_k(n: int, share: float = TOP_SHARE) -> int:
    """How many creators count as "top" among ``n``: ``share`` of them, at least 5 (or all when fewer)."""
    return min(n, max(5, round(n * share)))


def precision_at_k(truth: Sequence[float], score: Sequence[float], k: int) -> float:
    """Share of the ``k`` highest ``score`` items that are among the ``k`` highest ``truth`` items (ties in
    ``score`` broken by position, so a constant score is no better than the order given)."""
    t = np.asarray(truth, dtype=float)
    s = np.nan_to_num(np.asarray(score, dtype=float), nan=-np.inf)
    if k <= 0 or len(t) == 0:
        return float("nan")
    true_top = set(np.argsort(-t, kind="stable")[:k].tolist())
    picked = np.argsort(-s, kind="stable")[:k].tolist()
    return len(true_top.intersection(picked)) / k


def _target(growth: pd.Series) -> np.ndarray:
    return np.log1p(growth.clip(lower=-0.9).to_numpy(dtype=float))


def fit_model(train: pd.DataFrame, features: Sequence[str] = MODEL_FEATURES, seed: int = SEED) -> Any:
    """A LightGBM regressor of log(1 + future growth) on ``features`` (single-threaded, deterministic)."""
    import lightgbm as lgb

    model = lgb.LGBMRegressor(
        n_estimators=300,
        learning_rate=0.04,
        num_leaves=15,
        min_child_samples=20,
        subsample=0.8,
        subsample_freq=1,
        colsample_bytree=0.9,
        random_state=seed,
        n_jobs=1,
        deterministic=True,
        force_row_wise=True,
        verbose=-1,
    )
    model.fit(train[list(features)].astype(float), _target(train["future_growth"]))
    return model


@dataclass
class PotentialEvaluation:
    """The time-based holdout: the model and the baselines on the snapshot of ``holdout_dt``."""

    holdout_day: int
    train_rows: int
    holdout_creators: int
    k: int
    precision: dict[str, float] = field(default_factory=dict)
    """``model``, ``current_followers``, ``growth_last_30d`` -> precision@k."""
    spearman: float | None = None

    @property
    def beats_baselines(self) -> bool:
        model = self.precision.get("model", float("nan"))
        return all(model > v for name, v in self.precision.items() if name != "model")


def evaluate(
    rows: pd.DataFrame, day: int, *, horizon: int = HORIZON, seed: int = SEED
) -> PotentialEvaluation:
    """Train on the snapshots up to ``day - 2 * horizon`` and test on the snapshot of ``day - horizon``.

    Args:
        rows: :func:`training_rows` as pandas (features, ``followers``, ``growth_30d``, ``future_growth``,
            ``day``).
        day: the run's day number.

    Raises:
        PotentialError: too few training rows or no holdout snapshot.
    """
    train = rows[rows["day"] <= day - 2 * horizon]
    test = rows[rows["day"] == day - horizon]
    if len(train) < MIN_TRAIN_ROWS or test.empty:
        raise PotentialError(
            f"the potential model needs {MIN_TRAIN_ROWS}+ weekly creator snapshots with a known 30-day "
            f"future before the holdout and a snapshot {horizon} days before the date (found {len(train)}"
            f" and {len(test)}): land at least {2 * horizon + 30} days of creator_stats history"
        )
    model = fit_model(train, seed=seed)
    predicted = model.predict(test[list(MODEL_FEATURES)].astype(float))
    truth = test["future_growth"].to_numpy(dtype=float)
    k = top_k(len(test))
    precision = {"model": precision_at_k(truth, predicted, k)}
    for name, column in BASELINES.items():
        precision[name] = precision_at_k(truth, test[column].to_numpy(dtype=float), k)
    rho = pd.Series(predicted).rank().corr(pd.Series(truth).rank())
    return PotentialEvaluation(
        holdout_day=day - horizon,
        train_rows=len(train),
        holdout_creators=len(test),
        k=k,
        precision={n: round(v, 4) for n, v in precision.items()},
        spearman=None if math.isnan(rho) else round(float(rho), 4),
    )


def build_scores(model: Any, features: Sequence[str] = MODEL_FEATURES) -> Any:
    """A ``mapInPandas`` function adding ``predicted_growth_30d`` (relative growth) to creator rows."""
    names = list(features)

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for pdf in batches:
            if pdf.empty:
                yield pdf.assign(predicted_growth_30d=pd.Series(dtype=float))
                continue
            raw = model.predict(pdf[names].astype(float))
            yield pdf.assign(predicted_growth_30d=np.expm1(raw))

    return score
