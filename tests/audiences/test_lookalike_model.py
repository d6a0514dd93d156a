"""The lookalike model on its own (numpy and pandas, no engine): the shrunken-centroid component, cross-fitted
scoring, folds, the shippable scoring function, deterministic trees and the evaluation on a seed sample."""

from __future__ import annotations

import datetime as _dt

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from audiences.lookalike import (
    FOLDS,
    LGBM_PARAMS,
    build_scores,
    evaluate,
    fit_feature_spec,
    fold_of,
    make_encoder,
    shrunken_centroid,
    standardize,
    train_crossfit,
    train_lookalike,
)

DAY = _dt.date(2026, 11, 1)


def _population(rng: np.random.Generator, n: int, shifted: bool) -> pd.DataFrame:
    """Ten numeric tags; look-alikes differ from the rest on the first three only."""
    x = rng.normal(size=(n, 10))
    if shifted:
        x[:, :3] += 0.8
    return pd.DataFrame({f"t{i}": x[:, i] for i in range(10)})


def test_shrunken_centroid_keeps_the_features_that_differ_and_zeroes_noise() -> None:
    rng = np.random.default_rng(1)
    seed = rng.normal(size=(100, 50))
    seed[:, 0] += 1.0  # the one trait that sets the seed apart
    others = rng.normal(size=(5_000, 50))
    coef = shrunken_centroid(seed, others)
    assert coef[0] > 0
    assert np.count_nonzero(coef[1:]) <= 2  # noise features are (almost all) thresholded away
    assert np.all(shrunken_centroid(seed, others, threshold=0.0) != 0)  # no threshold: every feature counts
    assert not shrunken_centroid(seed[:0], others).any()


def test_cross_fitting_scores_each_row_with_the_model_that_never_saw_it() -> None:
    """The hidden look-alikes are among the unlabelled rows (label 0). Model ``f`` is trained without fold
    ``f`` of them and scores exactly that fold; the ranking still finds the hidden look-alikes."""
    rng = np.random.default_rng(3)
    seed = _population(rng, 300, shifted=True)
    hidden = _population(rng, 150, shifted=True)
    rest = _population(rng, 3_000, shifted=False)
    unlabelled = pd.concat([rest, hidden], ignore_index=True)
    truth = np.r_[np.zeros(len(rest)), np.ones(len(hidden))]
    kinds = {c: "number" for c in seed.columns}
    spec = fit_feature_spec(unlabelled, kinds, DAY)
    encode = make_encoder(spec)
    x_seed, x_unlab = encode(seed), encode(unlabelled)
    folds = rng.integers(0, FOLDS, len(x_unlab))
    crossed = train_crossfit(x_seed, x_unlab, folds, spec)
    assert [m.weights["lgbm"] for m in crossed.models] == [0.4] * FOLDS  # 300 members: trees join the blend
    for f, model in enumerate(crossed.models):
        rows = folds == f
        assert np.allclose(crossed.score(x_unlab[rows], folds[rows]), model.score(x_unlab[rows]))
        # model f's unlabelled training rows were the other folds: refit on them gives the same model
        # (its regression's solver started from the previous fold's coefficients, as train_crossfit does)
        previous = crossed.models[f - 1] if f else None
        refit = train_lookalike(
            np.vstack([x_seed, x_unlab[~rows]]),
            np.r_[np.ones(len(x_seed)), np.zeros(int((~rows).sum()))],
            spec,
            lr_start=(previous.lr_coef, previous.lr_intercept) if previous else None,
        )
        assert np.allclose(refit.score(x_unlab[rows]), model.score(x_unlab[rows]))
    auc = roc_auc_score(truth, crossed.score(x_unlab, folds))
    assert auc > 0.75, auc  # three traits shifted by 0.8 sd: at best 0.84 (Bayes), 0.5 at random


def test_folds_are_stable_and_balanced() -> None:
    ids = pd.Series([str(i) for i in range(30_000)])
    first, again = fold_of(ids), fold_of(ids.copy())
    assert np.array_equal(first, again) and set(first) == set(range(FOLDS))
    assert np.bincount(first).min() > 0.9 * len(ids) / FOLDS  # about a third each
    assert np.array_equal(fold_of(ids.iloc[::-1]), first[::-1])  # per id, not per position


def test_the_shipped_scorer_gives_the_driver_scores() -> None:
    rng = np.random.default_rng(5)
    seed, population = _population(rng, 120, shifted=True), _population(rng, 2_000, shifted=False)
    population.insert(0, "oneid", [str(10_000 + i) for i in range(len(population))])
    kinds = {c: "number" for c in seed.columns}
    spec = fit_feature_spec(population, kinds, DAY)
    encode = make_encoder(spec)
    folds = fold_of(population["oneid"])
    model = train_crossfit(encode(seed), encode(population), folds, spec)
    assert model.models[0].weights["lgbm"] == 0  # 120 members: no trees
    out = pd.concat(build_scores(model)(iter([population.iloc[:700], population.iloc[700:]])))
    assert list(out["oneid"]) == list(population["oneid"])
    assert np.allclose(out["score"].to_numpy(), model.score(encode(population), folds))
    xs = standardize(encode(population), spec)
    assert np.isfinite(xs).all()


def test_trees_are_single_threaded_and_the_same_rows_give_the_same_booster() -> None:
    rng = np.random.default_rng(9)
    rows = pd.concat([_population(rng, 400, shifted=True), _population(rng, 3_000, shifted=False)])
    y = np.r_[np.ones(400), np.zeros(3_000)]
    spec = fit_feature_spec(rows, {c: "number" for c in rows.columns}, DAY)
    x = make_encoder(spec)(rows)
    first, again = train_lookalike(x, y, spec), train_lookalike(x, y, spec)
    assert LGBM_PARAMS["num_threads"] == 1 and LGBM_PARAMS["deterministic"]
    assert first.booster is not None and first.booster == again.booster


def test_an_evaluation_on_a_seed_sample_is_weighted_back_to_the_seed() -> None:
    """A job evaluates on at most a few thousand seed rows: each hidden row then stands for
    ``seed_population / rows`` members, so the hidden part's share of the ranked population (precision over
    lift) is the full seed's, and the ranking figures estimate the full seed's."""
    rng = np.random.default_rng(13)
    seed, others = _population(rng, 1_000, shifted=True), _population(rng, 4_000, shifted=False)
    spec = fit_feature_spec(pd.concat([seed, others]), {c: "number" for c in seed.columns}, DAY)
    encode = make_encoder(spec)
    x_seed, x_others = encode(seed), encode(others)
    flags = np.zeros(len(x_others), bool)
    full = evaluate(x_seed, x_others, flags, spec, population=5_000, splits=1)
    part = evaluate(x_seed[:250], x_others, flags, spec, population=5_000, splits=1, seed_population=1_000)
    assert (full.seed_size, part.seed_size) == (1_000, 1_000)
    share = 300 / (4_000 + 300)  # 30 % of the seed hidden among the 4,000 others
    for ev in (full, part):
        assert abs(ev.model.precision["10%"] / ev.model.lift["10%"] - share) < 1e-9
    assert abs(full.model.auc - part.model.auc) < 0.05, (full.model.auc, part.model.auc)


def test_the_encoder_one_hots_kept_values_and_leaves_the_rest_zero() -> None:
    pdf = pd.DataFrame(
        {
            "spend": [0.0, 9.0, None, -3.0],
            "member": [True, False, None, True],
            "last_seen": ["2026-10-31", None, "2026-11-01", "bad"],
            "city": ["上海", "北京", None, "成都"],  # 成都 is not a kept value, None is no value
            "tier": [1, "1", "2", None],  # an int is not the text "1"
        }
    )
    spec = {
        "dt": DAY.isoformat(),
        "numeric": ["spend"],
        "boolean": ["member"],
        "date": ["last_seen"],
        "categories": {"city": ["北京", "上海"], "tier": ["1"]},
    }
    x = make_encoder(spec)(pdf)
    nan = np.nan
    expected = np.array(
        [
            [0.0, 1.0, np.log1p(1.0), 0.0, 1.0, 0.0],
            [np.log1p(9.0), 0.0, nan, 1.0, 0.0, 1.0],
            [nan, nan, 0.0, 0.0, 0.0, 0.0],
            [-np.log1p(3.0), 1.0, nan, 0.0, 0.0, 0.0],
        ]
    )
    assert x.shape == (4, 6) and x.flags.c_contiguous
    np.testing.assert_array_equal(x, expected)
