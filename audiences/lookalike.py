"""Lookalike expansion: learn what sets a seed audience apart from the population, score everyone, keep the
most similar; and the offline evaluation every run prints (hide part of the seed, recover it).

- Features are the profile's tags (one row per OneID): numbers and days before ``dt`` of dates on a signed
  log scale, booleans as 0/1, text tags one-hot over their most frequent values. Tags that define the seed
  (those its rule reads, or any the caller names) are left out, so the model cannot just re-learn the rule.
- The model is trained on the driver: the seed (positives) against a uniform sample of the rest of the
  population (unlabelled, PU learning). Its score blends components, each a z-score over the unlabelled
  rows: LightGBM (interactions) and a regularised logistic regression, both only from 300 seed members up
  (they overfit smaller seeds), the nearest-shrunken-centroid discriminant (weights only the features where
  the seed differs from the population by more than noise) and the cosine similarity to the seed's
  centroid (stable with 100 members).
- Scoring is distributed: the model travels as text (LightGBM's model string, the regression's and the
  shrunken-centroid coefficients, the centroid) into a ``mapInPandas`` function that refers to nothing in
  this package, so executors only need numpy, pandas and lightgbm.
- Evaluation: split the seed 70/30 several times; train on 70 % as above; rank the population without the
  training seed; report recall, precision and lift of the hidden 30 % in the top 1 %, 5 %, 10 % and the AUC,
  next to two baselines, the cosine similarity to the seed's centroid and a plain logistic regression. On
  large populations the non-seed part is a uniform sample weighted back to the population, and the seed
  may be a uniform sample of a larger seed, weighted back to it, so the figures estimate the
  full-population ones; each split retrains the model, so a job evaluates on a bounded sample and trains
  its production model once.
"""

from __future__ import annotations

import datetime as _dt
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from audiences.rules import _kind

MAX_CATEGORIES = 30
KS = (0.01, 0.05, 0.10)
LGBM_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_child_samples": 10,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "reg_lambda": 1.0,
    "max_bin": 63,
    "verbose": -1,
    "num_threads": 1,
    "force_col_wise": True,
    "deterministic": True,
    "seed": 7,
}
DRIVER_THREADS = 1
"""Threads of LightGBM and of BLAS on the driver. One: the engine runs in the same process (embedded) or on
the same machine, and oversubscribed OpenMP/BLAS threads were 10-100x slower than one thread on the small
matrices a lookalike trains on (8.6x measured for LightGBM alone on a busy 2-core box). With one thread,
``deterministic`` and a fixed histogram layout (``force_col_wise``, which also skips LightGBM's timing of
both layouts), the same rows give the same booster."""
ROUNDS = 200


# ---- features ----------------------------------------------------------------------------------------------


def feature_columns(columns: Mapping[str, str], exclude: Sequence[str] = ()) -> dict[str, str]:
    """Profile columns usable as features, by kind (number, boolean, date, string); ``oneid``, ``dt`` and
    ``exclude`` are left out."""
    skip = {"oneid", "dt", *exclude}
    kinds = {c: _kind(t) for c, t in columns.items() if c not in skip}
    return {c: k for c, k in kinds.items() if k in ("number", "boolean", "date", "timestamp", "string")}


def fit_feature_spec(sample: pd.DataFrame, kinds: Mapping[str, str], dt: _dt.date) -> dict[str, Any]:
    """Learn the encoding from a driver sample: the categories kept per text tag, medians and scales.

    Returns:
        A plain dict (it travels to executors with the model).
    """
    spec: dict[str, Any] = {"dt": dt.isoformat(), "numeric": [], "boolean": [], "date": [], "categories": {}}
    for col, kind in kinds.items():
        if kind == "number":
            spec["numeric"].append(col)
        elif kind == "boolean":
            spec["boolean"].append(col)
        elif kind in ("date", "timestamp"):
            spec["date"].append(col)
        elif kind == "string":
            values = sample[col].dropna().astype(str).value_counts()
            values = values[values >= 5].index[:MAX_CATEGORIES].tolist()
            if values:
                spec["categories"][col] = values
    spec["names"] = (
        spec["numeric"]
        + spec["boolean"]
        + [f"{c}_days" for c in spec["date"]]
        + [f"{c}={v}" for c, vs in spec["categories"].items() for v in vs]
    )
    x = make_encoder(spec)(sample)
    with warnings.catch_warnings():  # a tag nobody in the sample has: its median is NaN, then 0
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(np.where(np.isfinite(x), x, np.nan), axis=0) if len(x) else np.zeros(x.shape[1])
    med = np.where(np.isnan(med), 0.0, med)
    filled = np.where(np.isnan(x), med, x)
    spec["median"] = med.tolist()
    spec["mean"] = filled.mean(axis=0).tolist() if len(x) else [0.0] * x.shape[1]
    std = filled.std(axis=0) if len(x) else np.ones(x.shape[1])
    spec["std"] = np.where(std > 1e-9, std, 1.0).tolist()
    return spec


def make_encoder(spec: Mapping[str, Any]) -> Callable[[pd.DataFrame], np.ndarray]:
    """A function from profile rows (pandas) to the float feature matrix (NaN where a value is missing).

    The returned function uses only numpy and pandas, so it can be shipped to executors by value.
    """
    numeric, boolean, dates = list(spec["numeric"]), list(spec["boolean"]), list(spec["date"])
    categories = {c: list(v) for c, v in spec["categories"].items()}
    day = np.datetime64(spec["dt"], "D")

    width = len(numeric) + len(boolean) + len(dates) + sum(len(v) for v in categories.values())

    def encode(pdf):
        import numpy as np
        import pandas as pd

        out = np.empty((len(pdf), width), dtype="float64")  # filled column by column, no stacking copy
        j = 0
        for c in numeric:  # signed log: counts and amounts are heavy-tailed (trees do not care)
            v = pd.to_numeric(pdf[c], errors="coerce").astype("float64").to_numpy()
            out[:, j] = np.sign(v) * np.log1p(np.abs(v))
            j += 1
        for c in boolean:
            out[:, j] = pdf[c].map({True: 1.0, False: 0.0}).astype("float64").to_numpy()
            j += 1
        for c in dates:
            d = pd.to_datetime(pdf[c], errors="coerce").to_numpy().astype("datetime64[D]")
            v = np.where(np.isnat(d), np.nan, (day - d).astype("float64"))  # NaT's days are not -2**63
            out[:, j] = np.sign(v) * np.log1p(np.abs(v))
            j += 1
        for c, values in categories.items():
            # One pass per column: the position of each value among the kept ones (-1 for any other value
            # or none), then one-hot, instead of comparing the text column with every kept value.
            codes = pd.Categorical(pdf[c].astype("object"), categories=values).codes
            block = out[:, j : j + len(values)]
            block[:] = 0.0
            seen = codes >= 0
            block[np.flatnonzero(seen), codes[seen]] = 1.0
            j += len(values)
        return out

    return encode


def standardize(x: np.ndarray, spec: Mapping[str, Any]) -> np.ndarray:
    """Fill missing values with the sample median and scale to unit variance (regression, centroid)."""
    med, mean, std = (np.asarray(spec[k]) for k in ("median", "mean", "std"))
    xs = np.where(np.isnan(x), med, x)  # in one new array: a 180k x 215 matrix took 1.5 s via temporaries
    xs -= mean
    xs /= std
    return xs


# ---- models ------------------------------------------------------------------------------------------------


@dataclass
class LookalikeModel:
    """A trained lookalike model, in the plain form scoring ships to executors.

    The score is a weighted sum of components, each turned into a z-score over the unlabelled training
    rows: LightGBM's probability (seeds of :data:`TREES_FROM` members up), a regularised logistic
    regression's log-odds, the shrunken-centroid discriminant (:func:`shrunken_centroid`) and the cosine
    similarity to the seed's centroid.
    """

    spec: dict[str, Any]
    booster: str | None
    lr_coef: list[float]
    lr_intercept: float
    shrunk_coef: list[float]
    centroid: list[float]
    weights: dict[str, float]
    stats: dict[str, tuple[float, float]] = field(default_factory=dict)

    def score(self, x: np.ndarray) -> np.ndarray:
        """Scores of encoded rows (driver side; executors use :func:`make_scorer`)."""
        return make_scorer(self)(x)


def _logistic(
    xs: np.ndarray, y: np.ndarray, c: float = 1.0, start: tuple[Sequence[float], float] | None = None
):
    """The logistic-regression baseline (sklearn's default strength, balanced classes); with ``start``
    (coefficients and intercept fitted on nearly the same rows, as the cross-fitted folds are) the solver
    starts there and converges in fewer iterations to the same optimum, within the solver's tolerance."""
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    lr = LogisticRegression(C=c, class_weight="balanced", max_iter=2000, warm_start=start is not None)
    if start is not None:
        lr.coef_, lr.intercept_ = (
            np.asarray([start[0]], dtype="float64"),
            np.asarray([start[1]], dtype="float64"),
        )
    with threadpool_limits(DRIVER_THREADS):
        lr.fit(xs, y)
    return lr


def shrunken_centroid(
    xs_seed: np.ndarray, xs_unlabelled: np.ndarray, threshold: float | None = None
) -> np.ndarray:
    """Coefficients of the nearest-shrunken-centroid discriminant (Tibshirani et al., PNAS 2002) on
    standardised rows: per feature, the t-statistic of the seed's mean against the unlabelled rows' is
    soft-thresholded (features whose difference could be noise get weight 0, the others are shrunk
    towards 0), and the score of a row is ``xs @ coef``, a diagonal linear discriminant.

    It needs no fitting loop and stays stable with 100 seed members and 200 features, where a logistic
    regression overfits and a plain centroid weighs every feature alike. The default threshold is the
    universal one, ``sqrt(2 ln p)``: the largest |t| expected from ``p`` features that carry no signal.
    """
    n_s, n_u = len(xs_seed), len(xs_unlabelled)
    if n_s == 0 or n_u == 0:
        return np.zeros(xs_seed.shape[1])
    mu_s, mu_u = xs_seed.mean(axis=0), xs_unlabelled.mean(axis=0)
    pooled = np.sqrt((xs_seed.var(axis=0) * n_s + xs_unlabelled.var(axis=0) * n_u) / (n_s + n_u)) + 1e-3
    se = pooled * math.sqrt(1 / n_s + 1 / n_u)
    t = (mu_s - mu_u) / se
    threshold = math.sqrt(2 * math.log(max(len(t), 2))) if threshold is None else threshold
    shrunk = np.sign(t) * np.maximum(np.abs(t) - threshold, 0.0)
    return shrunk * se / pooled**2


TREES_FROM = 300
"""Seed size from which LightGBM joins the blend: with fewer members trees learn the seed's noise."""
TREES_LEAD_FROM = 3_000
"""Seed size from which LightGBM leads the blend: with thousands of members trees beat linear models."""


def blend_weights(positives: int) -> dict[str, float]:
    """Component weights by seed size, chosen on hide-and-recover over the three demo segments: below 300
    members the shrunken centroid and the centroid (trees and the regression overfit), up to 3,000 trees
    and the regression with some shrunken centroid, then mostly trees."""
    if positives < TREES_FROM:
        return {"lgbm": 0.0, "lr": 0.0, "shrunk": 0.5, "centroid": 0.5}
    if positives < TREES_LEAD_FROM:
        return {"lgbm": 0.4, "lr": 0.4, "shrunk": 0.2, "centroid": 0.0}
    return {"lgbm": 0.7, "lr": 0.3, "shrunk": 0.0, "centroid": 0.0}


def train_lookalike(
    x: np.ndarray,
    y: np.ndarray,
    spec: dict[str, Any],
    *,
    weights: dict[str, float] | None = None,
    rounds: int = ROUNDS,
    lr_start: tuple[Sequence[float], float] | None = None,
) -> LookalikeModel:
    """Train the blended model on encoded rows.

    Args:
        x: encoded features (:func:`make_encoder`), seed rows and unlabelled sample rows.
        y: 1 for seed rows, 0 for the unlabelled sample.
        spec: the feature spec.
        weights: component weights (:func:`blend_weights` of the seed size by default).
        rounds: boosting rounds.
        lr_start: the regression's coefficients and intercept to start the solver from (:func:`_logistic`).
    """
    import lightgbm as lgb

    pos = max(int(y.sum()), 1)
    neg = max(len(y) - pos, 1)
    weights = weights or blend_weights(pos)
    booster = None
    if weights.get("lgbm", 0) > 0:
        params = dict(LGBM_PARAMS, scale_pos_weight=neg / pos, min_child_samples=max(10, min(50, pos // 20)))
        booster = lgb.train(params, lgb.Dataset(x, label=y), num_boost_round=rounds).model_to_string()
    xs = standardize(x, spec)
    seed, unlabelled = xs[y == 1], xs[y == 0]
    coef, intercept = [0.0] * xs.shape[1], 0.0
    if weights.get("lr", 0) > 0:  # stronger regularisation for smaller seeds: few positives, many features
        lr = _logistic(xs, y, c=float(np.clip(pos / 2000, 0.01, 0.5)), start=lr_start)
        coef, intercept = lr.coef_[0].tolist(), float(lr.intercept_[0])
    model = LookalikeModel(
        spec,
        booster,
        coef,
        intercept,
        shrunken_centroid(seed, unlabelled).tolist(),
        seed.mean(axis=0).tolist(),
        weights,
    )
    raw = _components(model, x[y == 0])
    model.stats = {k: (float(v.mean()), float(v.std() or 1.0)) for k, v in raw.items()}
    return model


def _components(model: LookalikeModel, x: np.ndarray) -> dict[str, np.ndarray]:
    return make_scorer(model, raw=True)(x)


def make_scorer(model: LookalikeModel, raw: bool = False) -> Callable[[np.ndarray], Any]:
    """A function from encoded rows to scores, built from plain data only (shippable by value); with ``raw``
    it returns the components before blending."""
    booster_text = model.booster
    weights = dict(model.weights)
    stats = dict(model.stats)
    lr_coef, lr_intercept = np.asarray(model.lr_coef), model.lr_intercept
    coef = np.asarray(model.shrunk_coef)
    centre = np.asarray(model.centroid)
    centre_norm = float(np.linalg.norm(centre)) or 1.0
    med, mean, std = (np.asarray(model.spec[k]) for k in ("median", "mean", "std"))
    cache: dict[str, Any] = {}

    def score(x):
        import numpy as np

        xs = np.where(np.isnan(x), med, x)  # as standardize (this function ships by value)
        xs -= mean
        xs /= std
        parts = {"lr": xs @ lr_coef + lr_intercept, "shrunk": xs @ coef}
        norms = np.linalg.norm(xs, axis=1) * centre_norm
        parts["centroid"] = (xs @ centre) / np.where(norms > 0, norms, 1.0)
        if booster_text is not None and weights.get("lgbm", 0) > 0:
            if "booster" not in cache:
                import lightgbm as lgb

                cache["booster"] = lgb.Booster(model_str=booster_text)
            parts["lgbm"] = cache["booster"].predict(x, num_threads=1)
        if raw:
            return parts
        total = np.zeros(len(x))
        for name, value in parts.items():
            m, s = stats.get(name, (0.0, 1.0))
            total += weights.get(name, 0.0) * (value - m) / s
        return total

    return score


FOLDS = 3
"""Cross-fitting folds of the unlabelled rows (see :class:`CrossFitted`)."""


def make_folder(folds: int = FOLDS) -> Callable[[pd.Series], np.ndarray]:
    """A function from OneIDs to their cross-fitting fold: a stable hash, the same on the driver and every
    executor (it uses only numpy and pandas, so it ships by value like :func:`make_encoder`)."""

    def fold(oneids):
        import numpy as np
        import pandas as pd

        hashed = pd.util.hash_pandas_object(oneids.astype(str), index=False).to_numpy()
        return (hashed % folds).astype(np.int64)

    return fold


def fold_of(oneids: pd.Series, folds: int = FOLDS) -> np.ndarray:
    """The cross-fitting fold of each OneID (:func:`make_folder`)."""
    return make_folder(folds)(oneids)


@dataclass
class CrossFitted:
    """One model per fold of the unlabelled rows, each trained without its fold; a row is scored by the
    model of its own fold.

    Why: the unlabelled rows are the population being ranked, and the seed's look-alikes are among them,
    labelled 0. A model that scores rows it was trained on as negatives can push exactly those rows down
    (flexible models fit their training labels); cross-fitting, as in PU bagging, scores every row with a
    model that never saw it. On the demo segments the measured gain was within the noise of the evaluation,
    at about twice the training time; it is kept because it removes the failure mode, not for a figure.
    """

    models: list[LookalikeModel]

    @property
    def spec(self) -> dict[str, Any]:
        return self.models[0].spec

    def score(self, x: np.ndarray, folds: np.ndarray) -> np.ndarray:
        """Scores of encoded rows whose fold is given (driver side)."""
        return make_crossfit_scorer(self)(x, folds)


def train_crossfit(
    x_seed: np.ndarray,
    x_unlabelled: np.ndarray,
    unlabelled_folds: np.ndarray,
    spec: dict[str, Any],
    *,
    folds: int = FOLDS,
    weights: dict[str, float] | None = None,
) -> CrossFitted:
    """Train :data:`FOLDS` blended models, model ``f`` on the whole seed against the unlabelled rows outside
    fold ``f``."""
    models: list[LookalikeModel] = []
    for f in range(folds):
        rest = x_unlabelled[unlabelled_folds != f]
        x = np.vstack([x_seed, rest])
        y = np.r_[np.ones(len(x_seed)), np.zeros(len(rest))]
        # The folds share two thirds of their rows: each regression starts from the previous fold's.
        start = (
            (models[-1].lr_coef, models[-1].lr_intercept) if models and models[-1].weights.get("lr") else None
        )
        models.append(train_lookalike(x, y, spec, weights=weights, lr_start=start))
    return CrossFitted(models)


def make_crossfit_scorer(model: CrossFitted) -> Callable[[np.ndarray, np.ndarray], Any]:
    """A function from encoded rows and their folds to scores (plain data only, shippable by value)."""
    scorers = [make_scorer(m) for m in model.models]

    def score(x, folds):
        import numpy as np

        out = np.zeros(len(x))
        for f, scorer in enumerate(scorers):
            rows = folds == f
            if rows.any():
                out[rows] = scorer(x[rows])
        return out

    return score


def centroid_scores(xs_seed: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Baseline: cosine similarity of standardised rows to the seed's centroid."""
    centre = xs_seed.mean(axis=0)
    norm = np.linalg.norm(xs, axis=1) * (np.linalg.norm(centre) or 1.0)
    return (xs @ centre) / np.where(norm > 0, norm, 1.0)


def build_scores(model: CrossFitted):
    """A ``mapInPandas`` function from profile rows to ``(oneid string, score double)``; each row is scored
    by the model of its fold (:func:`fold_of`)."""
    encode = make_encoder(model.spec)
    score = make_crossfit_scorer(model)
    fold_of_rows = make_folder(len(model.models))

    def scored(batches):
        import pandas as pd

        for pdf in batches:
            if len(pdf) == 0:
                continue
            oneids = pdf["oneid"].astype(str)
            folds = fold_of_rows(oneids)
            yield pd.DataFrame({"oneid": oneids, "score": score(encode(pdf), folds).astype("float64")})

    return scored


# ---- evaluation -------------------------------------------------------------------------------------------


@dataclass
class Metrics:
    """Hide-and-recover figures of one scorer, averaged over splits."""

    recall: dict[str, float]
    precision: dict[str, float]
    lift: dict[str, float]
    auc: float


@dataclass
class Evaluation:
    """The offline evaluation of a lookalike run."""

    seed_size: int
    hidden_share: float
    splits: int
    population: int
    sampled: int
    features: int
    excluded: list[str]
    model: Metrics
    centroid: Metrics
    logistic: Metrics
    lightgbm: Metrics | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def beats_baselines(self, k: str = "1%") -> bool:
        """Whether the model's lift at ``k`` beats both baselines."""
        return self.model.lift[k] > max(self.centroid.lift[k], self.logistic.lift[k])

    def lines(self) -> list[str]:
        """A small table for the CLI."""
        head = (
            f"{'':10s}"
            + "".join(f"{'recall@' + k:>12s}{'prec@' + k:>11s}{'lift@' + k:>10s}" for k in _labels())
            + f"{'AUC':>8s}"
        )
        rows = [head]
        named = [("model", self.model), ("centroid", self.centroid), ("logistic", self.logistic)]
        if self.lightgbm is not None:
            named.append(("lightgbm", self.lightgbm))
        for name, m in named:
            cells = "".join(f"{m.recall[k]:12.3f}{m.precision[k]:11.3f}{m.lift[k]:10.2f}" for k in _labels())
            rows.append(f"{name:10s}{cells}{m.auc:8.3f}")
        return [
            f"hide-and-recover: seed {self.seed_size:,}, {self.hidden_share:.0%} hidden, "
            f"{self.splits} splits, "
            f"population {self.population:,} ({self.sampled:,} sampled rows), {self.features} features"
            + (f", excluded {', '.join(self.excluded)}" if self.excluded else "")
            + "".join(f"; {n}" for n in self.notes),
            *rows,
        ]


def _labels() -> list[str]:
    return [f"{round(k * 100)}%" for k in KS]


def ranking_metrics(scores: np.ndarray, positive: np.ndarray, weight: np.ndarray) -> Metrics:
    """Recall, precision and lift of the positives in the weighted top k, and the weighted AUC."""
    from sklearn.metrics import roc_auc_score

    order = np.argsort(-scores, kind="stable")
    w, p = weight[order], positive[order].astype(float)
    cum_w, cum_p = np.cumsum(w), np.cumsum(w * p)
    total_w, total_p = cum_w[-1], cum_p[-1]
    recall, precision, lift = {}, {}, {}
    for k, label in zip(KS, _labels(), strict=True):
        idx = min(int(np.searchsorted(cum_w, k * total_w)), len(w) - 1)
        r = cum_p[idx] / total_p if total_p else 0.0
        prec = cum_p[idx] / cum_w[idx] if cum_w[idx] else 0.0
        recall[label], precision[label] = float(r), float(prec)
        lift[label] = float(prec / (total_p / total_w)) if total_p else 0.0
    auc = (
        float(roc_auc_score(positive, scores, sample_weight=weight))
        if 0 < positive.sum() < len(positive)
        else math.nan
    )
    return Metrics(recall, precision, lift, auc)


def _mean(items: list[Metrics]) -> Metrics:
    def avg(attr: str) -> dict[str, float]:
        return {k: float(np.mean([getattr(m, attr)[k] for m in items])) for k in _labels()}

    return Metrics(avg("recall"), avg("precision"), avg("lift"), float(np.nanmean([m.auc for m in items])))


def combine(evaluations: Sequence[Evaluation]) -> Evaluation:
    """Several evaluations of the same seed size (different seed draws) as one: figures averaged, splits
    added up."""
    first = evaluations[0]
    if len(evaluations) == 1:
        return first
    lightgbm = [e.lightgbm for e in evaluations if e.lightgbm is not None]
    return Evaluation(
        seed_size=first.seed_size,
        hidden_share=first.hidden_share,
        splits=sum(e.splits for e in evaluations),
        population=first.population,
        sampled=first.sampled,
        features=first.features,
        excluded=first.excluded,
        model=_mean([e.model for e in evaluations]),
        centroid=_mean([e.centroid for e in evaluations]),
        logistic=_mean([e.logistic for e in evaluations]),
        lightgbm=_mean(lightgbm) if lightgbm else None,
        seconds=round(sum(e.seconds for e in evaluations), 2),
        notes=[f"{len(evaluations)} seed draws of {first.seed_size:,}, figures averaged"],
    )


def evaluate(
    x_seed: np.ndarray,
    x_sample: np.ndarray,
    sample_is_seed: np.ndarray,
    spec: dict[str, Any],
    *,
    population: int,
    hidden_share: float = 0.3,
    splits: int = 3,
    random_state: int = 7,
    excluded: Sequence[str] = (),
    with_lightgbm_alone: bool = False,
    seed_population: int | None = None,
) -> Evaluation:
    """Hide-and-recover evaluation on driver data.

    Args:
        x_seed: encoded rows of every seed member, or of a uniform sample of them (``seed_population``).
        x_sample: encoded rows of a uniform sample of the population (seed members included where drawn).
        sample_is_seed: which sample rows are seed members (they are dropped from the non-seed part).
        spec: the feature spec.
        population: the population size the sample was drawn from (weights the sample back to it).
        hidden_share: share of the seed hidden in each split.
        splits: random splits averaged.
        random_state: seed of the splits.
        excluded: tags left out of the features (reported).
        with_lightgbm_alone: also report LightGBM without the blend.
        seed_population: the seed's size when ``x_seed`` is a sample of it (each hidden row then stands for
            ``seed_population / len(x_seed)`` members); ``len(x_seed)`` by default.
    """
    import time

    started = time.perf_counter()
    rng = np.random.default_rng(random_state)
    n_seed = len(x_seed)
    seed_population = max(seed_population or n_seed, n_seed)
    w_seed = seed_population / max(n_seed, 1)
    others = x_sample[~sample_is_seed]
    non_seed_population = max(population - seed_population, len(others))
    w_other = non_seed_population / max(len(others), 1)
    results: dict[str, list[Metrics]] = {"model": [], "centroid": [], "logistic": [], "lightgbm": []}
    for _ in range(splits):
        perm = rng.permutation(n_seed)
        n_hidden = max(1, round(n_seed * hidden_share))
        hidden, train = perm[:n_hidden], perm[n_hidden:]
        # Unlabelled training rows: the sample without the training seed, i.e. others plus hidden members
        # the uniform sample happened to draw (a random subset of the hidden rows at the sample's rate, in
        # members: a hidden row stands for w_seed of them).
        rate = min(1.0, w_seed * len(others) / max(non_seed_population, 1))
        drawn_hidden = hidden[rng.random(len(hidden)) < rate]
        x_unlab = np.vstack([others, x_seed[drawn_hidden]])
        x_train = np.vstack([x_seed[train], x_unlab])
        y_train = np.r_[np.ones(len(train)), np.zeros(len(x_unlab))]
        x_eval = np.vstack([others, x_seed[hidden]])
        positive = np.r_[np.zeros(len(others)), np.ones(len(hidden))]
        weight = np.r_[np.full(len(others), w_other), np.full(len(hidden), w_seed)]
        # Folds as the job assigns them (a hash of the OneID): random here, the same for a row in
        # training and in evaluation.
        fold_others, fold_hidden = rng.integers(0, FOLDS, len(others)), rng.integers(0, FOLDS, len(hidden))
        fold_unlab = np.r_[fold_others, fold_hidden[np.isin(hidden, drawn_hidden)]]
        fold_eval = np.r_[fold_others, fold_hidden]

        model = train_crossfit(x_seed[train], x_unlab, fold_unlab, spec)
        results["model"].append(ranking_metrics(model.score(x_eval, fold_eval), positive, weight))
        xs_eval = standardize(x_eval, spec)
        results["centroid"].append(
            ranking_metrics(centroid_scores(standardize(x_seed[train], spec), xs_eval), positive, weight)
        )
        lr = _logistic(standardize(x_train, spec), y_train)  # the plain baseline: default C
        results["logistic"].append(ranking_metrics(lr.decision_function(xs_eval), positive, weight))
        if with_lightgbm_alone:
            gbm = train_crossfit(x_seed[train], x_unlab, fold_unlab, spec, weights={"lgbm": 1.0})
            results["lightgbm"].append(ranking_metrics(gbm.score(x_eval, fold_eval), positive, weight))
    return Evaluation(
        seed_size=seed_population,
        hidden_share=hidden_share,
        splits=splits,
        population=population,
        sampled=len(x_sample),
        features=len(spec["names"]),
        excluded=list(excluded),
        model=_mean(results["model"]),
        centroid=_mean(results["centroid"]),
        logistic=_mean(results["logistic"]),
        lightgbm=_mean(results["lightgbm"]) if results["lightgbm"] else None,
        seconds=round(time.perf_counter() - started, 2),
    )
