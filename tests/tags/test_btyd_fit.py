"""The BG/NBD fit's analytic gradient (``tags.btyd``): it equals finite differences of the objective, and the
fit it drives reaches the optimum a gradient-free search of the plain log-likelihood finds, in a few dozen
evaluations (numerical differences took five per step)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize

from tags import btyd

MODELS = {
    "moderate": (btyd.BgNbd(r=0.5, alpha=20.0, a=0.8, b=3.0), (90, 180, 365)),
    "loyal": (btyd.BgNbd(r=0.7, alpha=45.0, a=0.05, b=0.9), (30, 400, 700)),  # like the 100k lake's fits
    "fickle": (btyd.BgNbd(r=2.0, alpha=5.0, a=2.0, b=10.0), (60, 120)),
}


def _triples(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    model, ages = MODELS[name]
    cohorts = [btyd.simulate(model, 2_000, age, seed=i) for i, age in enumerate(ages)]
    x, t_x, big_t, _ = (np.concatenate(c) for c in zip(*cohorts, strict=True))
    triples, n = np.unique(np.round(np.column_stack([x, t_x, big_t])), axis=0, return_counts=True)
    return triples[:, 0], triples[:, 1], triples[:, 2], n.astype(float)


def _plain_objective(x, t_x, big_t, n):
    """The objective as the fit defines it, from the public log-likelihood (no shared terms, no gradient)."""

    def objective(theta: np.ndarray) -> float:
        ll = btyd.log_likelihood(tuple(np.exp(theta)), x, t_x, big_t)
        return float(-(n * ll).sum() / n.sum() + 1e-6 * (theta**2).sum())

    return objective


@pytest.mark.parametrize("name", sorted(MODELS))
def test_gradient_equals_finite_differences(name: str) -> None:
    x, t_x, big_t, n = _triples(name)
    objective = btyd._Objective(x, t_x, big_t, n)
    plain = _plain_objective(x, t_x, big_t, n)
    for theta in (np.log([0.6, 30.0, 0.3, 2.0]), np.log([2.0, 4.0, 3.0, 0.7]), np.zeros(4)):
        value, grad = objective(theta)
        assert value == pytest.approx(plain(theta), rel=1e-12)
        numeric = optimize.approx_fprime(theta, plain, 1e-7)
        np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-6)


def test_gradient_without_any_repeat_purchase() -> None:
    # Nobody repeats: the dropout term is -inf for every triple and must add nothing (no NaN).
    x, t_x, big_t, n = np.zeros(3), np.zeros(3), np.array([10.0, 50.0, 200.0]), np.array([5.0, 3.0, 8.0])
    objective = btyd._Objective(x, t_x, big_t, n)
    theta = np.log([0.8, 20.0, 1.0, 1.0])  # b = 1: 1 / (b + x - 1) would divide by 0 at x = 0
    value, grad = objective(theta)
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    numeric = optimize.approx_fprime(theta, _plain_objective(x, t_x, big_t, n), 1e-7)
    np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-6)
    assert btyd.fit(x, t_x, big_t, n).customers == 16


@pytest.mark.parametrize("name", sorted(MODELS))
def test_fit_reaches_the_optimum_of_a_gradient_free_search(name: str, monkeypatch) -> None:
    x, t_x, big_t, n = _triples(name)
    runs = []
    minimize = optimize.minimize

    def counted(*args, **kwargs):
        runs.append(minimize(*args, **kwargs))
        return runs[-1]

    monkeypatch.setattr(btyd.optimize, "minimize", counted)
    fitted = btyd.fit(x, t_x, big_t, n)
    assert len(runs) == 1 and runs[0].success and runs[0].nfev <= 40, runs
    monkeypatch.undo()
    # Nelder-Mead on the plain objective, started at the fit (so that it only polishes), tolerances tight.
    found = np.log([fitted.r, fitted.alpha, fitted.a, fitted.b])
    reference = optimize.minimize(
        _plain_objective(x, t_x, big_t, n),
        found + 0.05,
        method="Nelder-Mead",
        options={"xatol": 1e-9, "fatol": 1e-15, "maxiter": 20_000, "maxfev": 20_000},
    )
    np.testing.assert_allclose(np.exp(found), np.exp(reference.x), rtol=1e-4)
    assert (
        fitted.log_likelihood
        >= (n * btyd.log_likelihood(tuple(np.exp(reference.x)), x, t_x, big_t)).sum() - 1e-6
    )
