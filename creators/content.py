"""Early content signal (内容加热): from a content's first days of engagement, its final engagement, so a
marketer knows which posts to boost while they are young.

    silver.creator_content (cumulative statistics per content and day since publication)
        -> build_content_rows: one row per content with its early shape (day 0 and day EARLY_DAY totals,
           share and engagement rates) and, when the content is old enough, its final engagement
    driver: time-based holdout (contents published in the last HOLDOUT_DAYS whose final is known, trained on
        the older ones) -> model vs extrapolation (early engagement x the median final/early ratio), by
        precision@k of the true top contents and median absolute percentage error
        -> refit on every finished content -> score the live ones (mapInPandas)

Engagements are likes + comments + shares. The model is a LightGBM regressor of log(final / early) on the
early shape, single-threaded and deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from creators.potential import precision_at_k, top_k

Transform = Callable[[DataFrame], DataFrame]

EARLY_DAY = 2
"""The last day (0 = publication day) of the early window: three days of statistics."""
FINAL_DAY = 13
"""The day whose cumulative engagement counts as final (14 days of life)."""
HOLDOUT_DAYS = 14
MIN_TRAIN = 100
SEED = 23
CONTENT_FEATURES = (
    "log_early_engagements",
    "log_early_views",
    "day0_share",
    "late_share",
    "early_share_rate",
    "early_engagement_rate",
)


class ContentSignalError(ValueError):
    """Too few finished contents to train and test the content signal; the message says what to land."""


def build_content_rows(dt_day: int) -> Transform:
    """A transform of ``silver.creator_content`` (snapshots up to the run's day) to one row per content.

    Args:
        dt_day: the run's day number (days since 1970-01-01).

    Returns:
        A transform giving ``content_id, creator_id, published_date, published_day, days_observed,
        engagements_so_far, early_engagements, final_engagements`` (NULL until day FINAL_DAY is in) and the
        features of :data:`CONTENT_FEATURES`; contents younger than EARLY_DAY days are left out.
    """

    def transform(snapshots: DataFrame) -> DataFrame:
        eng = F.col("likes") + F.col("comments") + F.col("shares")
        rows = (
            snapshots.where(F.datediff(F.col("snapshot_date"), F.lit("1970-01-01").cast("date")) <= dt_day)
            .withColumn("age", F.datediff(F.col("snapshot_date"), F.col("published_date")))
            .withColumn("eng", eng)
        )

        def at(day: int, column: Any, name: str) -> Any:
            return F.max(F.when(F.col("age") == day, column)).alias(name)

        per = rows.groupBy("content_id", "creator_id", "published_date").agg(
            F.max("age").alias("days_observed"),
            F.max_by(F.col("eng"), F.col("age")).alias("engagements_so_far"),
            at(0, F.col("eng"), "_e0"),
            at(1, F.col("eng"), "_e1"),
            at(EARLY_DAY, F.col("eng"), "early_engagements"),
            at(EARLY_DAY, F.col("views"), "_v2"),
            at(EARLY_DAY, F.col("shares"), "_s2"),
            at(FINAL_DAY, F.col("eng"), "final_engagements"),
        )
        early = F.col("early_engagements").cast("double")
        return (
            per.where(F.col("early_engagements").isNotNull())
            .withColumn(
                "published_day", F.datediff(F.col("published_date"), F.lit("1970-01-01").cast("date"))
            )
            .withColumn("log_early_engagements", F.log1p(early))
            .withColumn("log_early_views", F.log1p(F.col("_v2").cast("double")))
            .withColumn("day0_share", F.when(early > 0, F.col("_e0") / early))
            .withColumn("late_share", F.when(early > 0, (early - F.col("_e1")) / early))
            .withColumn("early_share_rate", F.when(F.col("_v2") > 0, F.col("_s2") / F.col("_v2")))
            .withColumn("early_engagement_rate", F.when(F.col("_v2") > 0, early / F.col("_v2")))
            .drop("_e0", "_e1", "_v2", "_s2")
        )

    return transform


def _ratio_target(rows: pd.DataFrame) -> np.ndarray:
    early = rows["early_engagements"].to_numpy(dtype=float)
    final = rows["final_engagements"].to_numpy(dtype=float)
    return np.log((final + 1) / (early + 1))


def fit_content_model(train: pd.DataFrame, seed: int = SEED) -> Any:
    """A LightGBM regressor of log(final / early) on :data:`CONTENT_FEATURES` (one thread, deterministic)."""
    import lightgbm as lgb

    model = lgb.LGBMRegressor(
        n_estimators=200,
        learning_rate=0.05,
        num_leaves=15,
        min_child_samples=20,
        random_state=seed,
        n_jobs=1,
        deterministic=True,
        force_row_wise=True,
        verbose=-1,
    )
    model.fit(train[list(CONTENT_FEATURES)].astype(float), _ratio_target(train))
    return model


def extrapolation_ratio(train: pd.DataFrame) -> float:
    """The baseline's one number: the median final / early engagement ratio of finished contents."""
    early = train["early_engagements"].to_numpy(dtype=float)
    final = train["final_engagements"].to_numpy(dtype=float)
    return float(np.median((final + 1) / (early + 1)))


@dataclass
class ContentEvaluation:
    """The holdout of the content signal: model vs extrapolation on the newest finished contents."""

    train_contents: int
    holdout_contents: int
    k: int
    precision: dict[str, float] = field(default_factory=dict)
    """``model`` and ``extrapolation`` -> precision@k of the true top contents by final engagement."""
    median_ape: dict[str, float] = field(default_factory=dict)
    """Median absolute percentage error of the final engagement."""


def evaluate_content(rows: pd.DataFrame, dt_day: int, *, seed: int = SEED) -> ContentEvaluation:
    """Hold out the finished contents published in the last :data:`HOLDOUT_DAYS` before the newest finished
    day; train on the older ones.

    Raises:
        ContentSignalError: fewer than :data:`MIN_TRAIN` older finished contents, or none to test.
    """
    done = rows[rows["final_engagements"].notna()]
    newest = dt_day - FINAL_DAY
    test = done[done["published_day"] > newest - HOLDOUT_DAYS]
    train = done[done["published_day"] <= newest - HOLDOUT_DAYS]
    if len(train) < MIN_TRAIN or test.empty:
        raise ContentSignalError(
            f"the content signal needs {MIN_TRAIN}+ contents with {FINAL_DAY + 1} days of statistics before "
            f"the holdout and some in the last {HOLDOUT_DAYS} days (found {len(train)} and {len(test)}): "
            f"land at least {FINAL_DAY + 2 * HOLDOUT_DAYS} days of creator_content"
        )
    model = fit_content_model(train, seed)
    truth = test["final_engagements"].to_numpy(dtype=float)
    early = test["early_engagements"].to_numpy(dtype=float)
    predicted = (early + 1) * np.exp(model.predict(test[list(CONTENT_FEATURES)].astype(float))) - 1
    extrapolated = (early + 1) * extrapolation_ratio(train) - 1
    k = top_k(len(test))

    def ape(guess: np.ndarray) -> float:
        return float(np.median(np.abs(guess - truth) / np.maximum(truth, 1)))

    return ContentEvaluation(
        train_contents=len(train),
        holdout_contents=len(test),
        k=k,
        precision={
            "model": round(precision_at_k(truth, predicted, k), 4),
            "extrapolation": round(precision_at_k(truth, extrapolated, k), 4),
        },
        median_ape={"model": round(ape(predicted), 4), "extrapolation": round(ape(extrapolated), 4)},
    )


def build_content_scores(model: Any, ratio: float, features: Sequence[str] = CONTENT_FEATURES) -> Any:
    """A ``mapInPandas`` function adding ``predicted_final_engagements`` and
    ``extrapolated_final_engagements`` to content rows."""
    names = list(features)

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for pdf in batches:
            early = pdf["early_engagements"].astype(float) + 1
            raw = model.predict(pdf[names].astype(float)) if len(pdf) else np.array([], dtype=float)
            yield pdf.assign(
                predicted_final_engagements=early * np.exp(raw) - 1,
                extrapolated_final_engagements=early * ratio - 1,
            )

    return score
