"""Unit tests of the generic numerics: quadrature, proximal operators, fixed points."""

import math

import numpy as np
import pytest

from saddle.continuation import continuation
from saddle.fixed_point import (
    MAX_ITER,
    NOT_FINITE,
    STALLED,
    FixedPointError,
    solve_fixed_point,
)
from saddle.prox import prox_residual, prox_square, prox_tempered_logistic
from saddle.quadrature import gauss_hermite
from saddle.special import gaussian_cdf, gaussian_tail, sigmoid, sigmoid_prime, softplus


def test_gauss_hermite_reproduces_gaussian_moments():
    rule = gauss_hermite(20)
    assert rule.weights.sum() == pytest.approx(1.0, abs=1e-14)
    for k in range(0, 12):
        exact = 0.0 if k % 2 else math.prod(range(k - 1, 0, -2))
        assert rule.expect(rule.nodes**k) == pytest.approx(exact, rel=1e-11, abs=1e-12)


def test_gauss_hermite_smooth_expectation():
    # E[sigmoid(a + b Z)] against a fine trapezoid rule.
    rule = gauss_hermite(96)
    z = np.linspace(-12, 12, 200001)
    density = np.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    exact = np.trapezoid(density / (1 + np.exp(-(0.3 + 2.0 * z))), z)
    approx = rule.expect(np.array([sigmoid(0.3 + 2.0 * x) for x in rule.nodes]))
    assert approx == pytest.approx(exact, abs=1e-9)


def test_special_functions_are_stable():
    assert softplus(800.0) == 800.0
    assert softplus(-800.0) == 0.0
    assert sigmoid(-800.0) == 0.0 and sigmoid(800.0) == 1.0
    assert sigmoid_prime(0.0) == 0.25
    assert gaussian_tail(0.0) == 0.5
    assert gaussian_cdf(1.3) + gaussian_tail(1.3) == pytest.approx(1.0, abs=1e-15)


@pytest.mark.parametrize("seed", range(3))
def test_tempered_logistic_prox_solves_its_stationarity_condition(seed):
    rng = np.random.default_rng(seed)
    for _ in range(3000):
        omega = rng.normal() * 20
        V = 10 ** rng.uniform(-3, 5)
        p, t = rng.uniform(), rng.uniform()
        c2 = rng.uniform() * (rng.random() < 0.5)
        T = 10 ** rng.uniform(-1, 1)
        terms = (1.0, 1.0, p, c2, T, t)
        h = prox_tempered_logistic(omega, V, *terms, omega + 5 * rng.normal())
        assert abs(prox_residual(h, omega, V, terms)) <= 1e-11 * (1 + abs(omega) + V)


def test_prox_cycling_case_is_solved():
    # Plain Newton cycles between two points here; the safeguard must not.
    terms = (1.0, 1.0, 0.9999122962287261, 0.0, 1.0, 0.0)
    omega, V = -11.458497540721705, 15.15658300355687
    h = prox_tempered_logistic(omega, V, *terms, -7.172805153719423)
    assert abs(prox_residual(h, omega, V, terms)) < 1e-10


def test_prox_limits():
    assert prox_tempered_logistic(0.7, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0) == 0.7
    assert prox_square(1.0, 2.0, 1.0, -1.0) == pytest.approx((1.0 - 2.0) / 3.0)


def test_fixed_point_converges_and_reports():
    target = np.array([1.0, -2.0, 0.5])
    res = solve_fixed_point(lambda x: 0.5 * (x + target) + 0.1 * np.sin(x), np.zeros(3))
    assert res.converged and res.success and res.status == 0
    assert res.residual <= 1e-10
    assert np.allclose(res.x, 0.5 * (res.x + target) + 0.1 * np.sin(res.x), atol=1e-9)
    assert set(res.to_dict()) == {"converged", "status", "message", "nit", "residual"}
    assert len(res.residual_history) == res.nit


def test_fixed_point_recovers_from_domain_violations():
    # F is only defined for x > 0; Anderson extrapolation may leave the domain.
    def update(x):
        return np.where(x > 0, np.sqrt(x) + 0.01, np.nan)

    res = solve_fixed_point(update, np.array([50.0]))
    assert res.converged
    root = ((1.0 + math.sqrt(1.04)) / 2.0) ** 2  # x = sqrt(x) + 0.01
    assert res.x[0] == pytest.approx(root, rel=1e-9)


def test_fixed_point_failures_are_reported_not_hidden():
    res = solve_fixed_point(lambda x: -1.5 * x + 1.0, np.array([0.3]), damping=1.0,
                            anderson_depth=0, max_iter=50)
    assert not res.converged and res.status == MAX_ITER
    with pytest.raises(FixedPointError):
        res.raise_if_failed()
    bad = solve_fixed_point(lambda x: x * np.nan, np.array([1.0]))
    assert bad.status == NOT_FINITE and not bad.converged


def test_continuation_warm_starts_and_retries():
    calls = []

    class Result:
        def __init__(self, value, start):
            self.state = np.array([value])
            self.converged = not (start is not None and value == 2.0)

    def solve(value, start):
        calls.append((value, None if start is None else float(start[0])))
        return Result(value, start)

    out = continuation(solve, [1.0, 2.0, 3.0])
    assert [r.converged for r in out] == [True, True, True]
    assert calls == [(1.0, None), (2.0, 1.0), (2.0, None), (3.0, 2.0)]


def test_fixed_point_on_the_domain_boundary_stalls_at_once():
    """x = F(x) with F(x) = -1 on x > 0 (NaN outside): the iteration approaches the boundary
    x = 0, where every damped step leaves the domain. It stops there with status 5 within a
    few dozen evaluations instead of repeating the same rejected step to the budget."""

    def update(x):
        return np.where(x > 0.0, -1.0, np.nan)

    res = solve_fixed_point(update, np.array([1.0]), max_iter=5000)
    assert res.status == STALLED and not res.converged
    assert res.nit < 100
    assert 0.0 < res.x[0] < 1e-2
