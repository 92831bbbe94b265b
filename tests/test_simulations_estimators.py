"""Exact convex solvers of simulations.estimators (docs/model.md §2)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import expit

from replica.params import ParameterError
from simulations.data import sample_mixture
from simulations.estimators import (
    LossTerm,
    _line_search,
    _LinearObjective,
    bayes_optimal_teacher,
    fit_kd_student,
    fit_linear_classifier,
    fit_ridge_logistic,
    kd_loss_terms,
    linear_objective,
    mean_loss,
    smooth_labels,
    softplus,
)


def _mixture(n=60, alpha=2.0, rho=0.3, delta=1.0, seed=0):
    return sample_mixture(n, round(alpha * n), rho, delta, np.random.default_rng(seed))


def _two_terms(sample, rng):
    """A label term and a tempered soft-target term, as in the KD loss."""
    soft = expit(rng.standard_normal(sample.y.shape[0]))
    return [LossTerm(0.7, 1.0, smooth_labels(sample.y, 0.1)), LossTerm(1.3, 2.5, soft)]


def _reference_objective(X, terms, lam, theta, n_norm):
    """The objective written out independently of the module."""
    w, b = theta[:-1], theta[-1]
    h = X @ w / math.sqrt(n_norm) + b
    loss = sum(
        t.weight * np.sum(np.logaddexp(0, h / t.temperature) - t.targets * h / t.temperature)
        for t in terms
    )
    return loss + 0.5 * lam * w @ w


def _reference_gradient(X, terms, lam, theta, n_norm):
    """The gradient written out independently of the module."""
    w, b = theta[:-1], theta[-1]
    h = X @ w / math.sqrt(n_norm) + b
    r = sum(t.weight / t.temperature * (expit(h / t.temperature) - t.targets) for t in terms)
    return np.append(X.T @ r / math.sqrt(n_norm) + lam * w, r.sum())


def _kkt_residual(X, terms, lam, fit, n_norm):
    """``max |dF/dtheta|``: the violation of the stationarity conditions."""
    theta = np.append(fit.w, fit.b)
    return np.abs(_reference_gradient(X, terms, lam, theta, n_norm)).max()


# ----------------------------------------------------------------------------------------------
# Objective, gradient, Hessian-vector products
# ----------------------------------------------------------------------------------------------


def test_softplus_is_stable():
    h = np.array([-800.0, -30.0, 0.0, 30.0, 800.0])
    expected = [0.0, math.log1p(math.exp(-30.0)), math.log(2.0), 30.0 + math.exp(-30.0), 800.0]
    np.testing.assert_allclose(softplus(h), expected, rtol=1e-15, atol=1e-300)


def test_smooth_labels():
    np.testing.assert_allclose(smooth_labels(np.array([0, 1, 1]), 0.1), [0.1, 0.9, 0.9])
    np.testing.assert_array_equal(smooth_labels(np.array([0, 1])), [0.0, 1.0])


def test_gradient_matches_finite_differences():
    sample = _mixture()
    rng = np.random.default_rng(1)
    terms = _two_terms(sample, rng)
    n_norm = 90.0  # != X.shape[1], as for the student
    w, b = rng.standard_normal(sample.X.shape[1]), 0.3
    value, grad_w, grad_b = linear_objective(sample.X, terms, 0.4, w, b, n_norm=n_norm)
    theta = np.append(w, b)
    assert value == pytest.approx(_reference_objective(sample.X, terms, 0.4, theta, n_norm))
    step = 1e-6
    numeric = np.empty_like(theta)
    for i in range(theta.size):
        e = np.zeros_like(theta)
        e[i] = step
        plus = _reference_objective(sample.X, terms, 0.4, theta + e, n_norm)
        minus = _reference_objective(sample.X, terms, 0.4, theta - e, n_norm)
        numeric[i] = (plus - minus) / (2 * step)
    np.testing.assert_allclose(np.append(grad_w, grad_b), numeric, rtol=1e-6, atol=1e-6)


def test_hessian_vector_product_matches_gradient_differences():
    sample = _mixture()
    rng = np.random.default_rng(2)
    terms = _two_terms(sample, rng)
    objective = _LinearObjective(sample.X, terms, 0.4, 90.0)
    theta = np.append(rng.standard_normal(sample.X.shape[1]), -0.2)
    d = rng.standard_normal(theta.size)

    def gradient(t):
        _, r, _ = objective.loss_derivatives(objective.preactivations(t))
        return objective.gradient(t, r)

    _, _, a = objective.loss_derivatives(objective.preactivations(theta))
    hd, dh = objective.hessp(d, a.copy())
    step = 1e-5
    numeric = (gradient(theta + step * d) - gradient(theta - step * d)) / (2 * step)
    np.testing.assert_allclose(hd, numeric, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(dh, sample.X @ d[:-1] / math.sqrt(90.0) + d[-1])


# ----------------------------------------------------------------------------------------------
# Exact solutions
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("alpha", "lam", "smoothing"), [(3.0, 0.1, 0.0), (0.5, 1e-5, 0.0)])
def test_teacher_stationarity(alpha, lam, smoothing):
    """KKT: X^T (p - sigma(h)) / sqrt(N) = lam w and sum(p - sigma(h)) = 0."""
    sample = _mixture(n=200, alpha=alpha, rho=0.2)
    p = smooth_labels(sample.y, smoothing)
    fit = fit_ridge_logistic(sample.X, p, lam)
    assert fit.converged and fit.grad_norm <= 1e-9
    n = sample.X.shape[1]
    residual = p - expit(fit.preactivations)
    np.testing.assert_allclose(sample.X.T @ residual / math.sqrt(n), lam * fit.w, atol=2e-7)
    assert abs(residual.sum()) <= 2e-7
    np.testing.assert_allclose(fit.preactivations, sample.X @ fit.w / math.sqrt(n) + fit.b)


def test_small_ridge_with_fewer_samples_than_features_converges():
    """lam = 1e-5, M < N, hard labels (separable): ill-conditioned but solved."""
    sample = _mixture(n=300, alpha=0.4)
    fit = fit_ridge_logistic(sample.X, sample.y, 1e-5)
    assert fit.converged
    assert np.all((fit.preactivations > 0) == (sample.y == 1))  # interpolates
    assert _kkt_residual(sample.X, [LossTerm(1, 1, sample.y)], 1e-5, fit, 300) <= 1e-9 * 300


def test_agrees_with_brute_force_minimize():
    sample = _mixture(n=12, alpha=3.0)
    terms = _two_terms(sample, np.random.default_rng(3))
    n_norm, lam = 20.0, 0.3
    fit = fit_linear_classifier(sample.X, terms, lam, n_norm=n_norm)
    brute = minimize(
        lambda t: _reference_objective(sample.X, terms, lam, t, n_norm),
        np.zeros(13),
        jac=lambda t: _reference_gradient(sample.X, terms, lam, t, n_norm),
        method="BFGS",
        options={"gtol": 1e-12},
    )
    np.testing.assert_allclose(fit.w, brute.x[:-1], atol=1e-8)
    assert fit.b == pytest.approx(brute.x[-1], abs=1e-8)
    theta = np.append(fit.w, fit.b)
    assert _reference_objective(sample.X, terms, lam, theta, n_norm) <= brute.fun + 1e-12


def test_student_stationarity_with_temperature():
    sample = _mixture(n=100, alpha=2.0)
    rng = np.random.default_rng(4)
    h_teacher = 2.0 * rng.standard_normal(sample.y.shape[0])
    p = smooth_labels(sample.y, 0.05)
    k, n = 40, 100
    fit = fit_kd_student(sample.X[:, :k], p, h_teacher, 1e-3, 0.6, 3.0, True, n_norm=n)
    terms = kd_loss_terms(p, h_teacher, 0.6, 3.0, True)
    assert fit.converged
    assert _kkt_residual(sample.X[:, :k], terms, 1e-3, fit, n) <= 1e-9 * n * 1.0001
    # the preactivation uses the full N, not the support size
    np.testing.assert_allclose(fit.preactivations, sample.X[:, :k] @ fit.w / 10.0 + fit.b)


def test_chi_zero_student_is_ridge_logistic_on_support():
    sample = _mixture(n=100, alpha=2.5)
    p = smooth_labels(sample.y, 0.1)
    h_teacher = np.random.default_rng(5).standard_normal(sample.y.shape[0])
    k = 50
    student = fit_kd_student(sample.X[:, :k], p, h_teacher, 0.05, 0.0, 2.0, n_norm=100)
    direct = fit_ridge_logistic(sample.X[:, :k], p, 0.05, n_norm=100)
    np.testing.assert_allclose(student.w, direct.w, atol=1e-12)
    assert student.b == pytest.approx(direct.b, abs=1e-12)


def test_full_student_distilled_at_unit_temperature_reproduces_teacher():
    """eta = 1, chi = 1, T = 1: the KD loss is minimised by h = h~ (reachable: h~ is linear).

    With M > N the minimiser at lam_s = 0 is the teacher itself; lam_s = 1e-8 moves it by
    O(lam_s |w~| / smallest Hessian eigenvalue) ~ 1e-7, hence the tolerance.
    """
    sample = _mixture(n=80, alpha=3.0)
    teacher = fit_ridge_logistic(sample.X, sample.y, 0.1)
    student = fit_kd_student(sample.X, sample.y, teacher.preactivations, 1e-8, 1.0, n_norm=80)
    np.testing.assert_allclose(student.preactivations, teacher.preactivations, atol=1e-5)
    np.testing.assert_allclose(student.w, teacher.w, atol=1e-5)


def test_t2_scaling_multiplies_the_kd_term_by_t_squared():
    sample = _mixture(n=60, alpha=2.0)
    p = sample.y.astype(float)
    h_teacher = np.random.default_rng(6).standard_normal(p.size)
    T = 3.0
    plain = kd_loss_terms(p, h_teacher, 0.4, T)
    hinton = kd_loss_terms(p, h_teacher, 0.4, T, t2_scaling=True)
    assert hinton[0].weight == plain[0].weight == pytest.approx(0.6)
    assert hinton[1].weight == pytest.approx(T**2 * plain[1].weight)
    h = np.linspace(-3, 3, p.size)
    kd_only = mean_loss(plain[1:], h)
    assert mean_loss(hinton, h) - mean_loss(plain, h) == pytest.approx((T**2 - 1) * kd_only)
    # for pure distillation the factor is equivalent to dividing the ridge by T^2
    a = fit_kd_student(sample.X, p, h_teacher, 0.2, 1.0, T, True, n_norm=60)
    b = fit_kd_student(sample.X, p, h_teacher, 0.2 / T**2, 1.0, T, False, n_norm=60)
    np.testing.assert_allclose(a.w, b.w, atol=1e-7)


def test_warm_start_at_solution_needs_no_iteration():
    sample = _mixture(n=100, alpha=2.0)
    fit = fit_ridge_logistic(sample.X, sample.y, 0.1)
    again = fit_ridge_logistic(sample.X, sample.y, 0.1, w0=fit.w, b0=fit.b)
    assert again.n_iter == 0 and again.converged


def test_cold_start_if_better_discards_a_poor_warm_start():
    """A fit to other samples at small ridge is a worse start than zero; the same fit is not."""
    first, second = _mixture(n=100, alpha=1.0, seed=1), _mixture(n=100, alpha=1.0, seed=2)
    other = fit_ridge_logistic(first.X, first.y, 1e-5)
    cold = fit_ridge_logistic(second.X, second.y, 1e-5)
    kw = {"w0": other.w, "b0": other.b, "cold_start_if_better": True}
    assert fit_ridge_logistic(second.X, second.y, 1e-5, **kw).n_hessp == cold.n_hessp
    kw = {"w0": cold.w, "b0": cold.b, "cold_start_if_better": True}
    assert fit_ridge_logistic(second.X, second.y, 1e-5, **kw).n_iter == 0


def test_line_search_is_exact_enough_and_expands_short_steps():
    sample = _mixture(n=50, alpha=2.0)
    terms = [LossTerm(1.0, 1.0, sample.y)]
    objective = _LinearObjective(sample.X, terms, 0.01, 50.0)
    theta = np.zeros(51)
    h = objective.preactivations(theta)
    _, r, _ = objective.loss_derivatives(h)
    grad = objective.gradient(theta, r)
    p = -1e-4 * grad  # far too short a step
    t = _line_search(objective, theta, h, p, objective.preactivations(p), float(grad @ p))
    slope = _reference_gradient(sample.X, terms, 0.01, theta + t * p, 50.0) @ p
    assert t > 4.0 and abs(slope) <= 0.1 * abs(grad @ p)


def test_non_convergence_is_reported():
    sample = _mixture(n=100, alpha=2.0)
    fit = fit_ridge_logistic(sample.X, sample.y, 1e-5, max_iter=1)
    assert not fit.converged and fit.grad_norm > 1e-9 and fit.n_iter == 1


def test_unregularised_separable_problem_warns():
    sample = _mixture(n=100, alpha=0.5)
    with pytest.warns(RuntimeWarning, match="no minimiser"):
        fit = fit_ridge_logistic(sample.X, sample.y, 0.0, max_iter=30)
    assert not fit.finite and not fit.converged and "separable" in fit.reason
    quiet = fit_ridge_logistic(sample.X, sample.y, 0.0, max_iter=30, warn=False)
    assert not quiet.finite


def test_unregularised_soft_targets_with_fewer_samples_than_weights_are_not_unique():
    sample = _mixture(n=100, alpha=0.5)
    fit = fit_ridge_logistic(sample.X, 0.1 + 0.8 * sample.y, 0.0, warn=False)
    assert not fit.finite and "not unique" in fit.reason
    above = _mixture(n=100, alpha=3.0)
    fit = fit_ridge_logistic(above.X, 0.1 + 0.8 * above.y, 0.0, warn=False)
    assert fit.finite and fit.converged


# ----------------------------------------------------------------------------------------------
# Bayes-optimal proxy teacher
# ----------------------------------------------------------------------------------------------


def test_bayes_optimal_teacher():
    """w~ = v + sqrt(Delta/alpha) g, b~ = (Delta (1 + Delta/alpha) / 2) log(rho/(1-rho))."""
    n, alpha, rho, delta = 200_000, 4.0, 0.3, 2.0
    v = np.ones(n)
    w, b = bayes_optimal_teacher(v, alpha, rho, delta, np.random.default_rng(7))
    g = np.random.default_rng(7).standard_normal(n)
    np.testing.assert_allclose(w, v + math.sqrt(delta / alpha) * g)
    assert b == pytest.approx(delta * (1 + delta / alpha) / 2 * math.log(rho / (1 - rho)))
    assert bayes_optimal_teacher(v[:3], 2.0, 0.5, 1.0, np.random.default_rng(0))[1] == 0.0
    assert w @ v / n == pytest.approx(1.0, abs=5 / math.sqrt(n))
    assert w @ w / n == pytest.approx(1 + delta / alpha, abs=10 / math.sqrt(n))


# ----------------------------------------------------------------------------------------------
# Input validation
# ----------------------------------------------------------------------------------------------


def _bad_calls():
    sample = _mixture(n=10, alpha=2.0)
    X, y = sample.X, sample.y.astype(float)
    h = np.zeros_like(y)
    return [
        ("lam", lambda: fit_ridge_logistic(X, y, -1.0)),
        ("lam", lambda: fit_ridge_logistic(X, y, math.nan)),
        ("X", lambda: fit_ridge_logistic(X[0], y, 0.1)),
        ("targets", lambda: fit_ridge_logistic(X, y[:-1], 0.1)),
        ("targets", lambda: fit_ridge_logistic(X, 2 * y, 0.1)),
        ("w0", lambda: fit_ridge_logistic(X, y, 0.1, w0=np.zeros(3))),
        ("n_norm", lambda: fit_ridge_logistic(X, y, 0.1, n_norm=0)),
        ("gtol", lambda: fit_ridge_logistic(X, y, 0.1, gtol=-1)),
        ("max_iter", lambda: fit_ridge_logistic(X, y, 0.1, max_iter=2.5)),
        ("temperature", lambda: LossTerm(1.0, 0.0, y)),
        ("weight", lambda: LossTerm(-1.0, 1.0, y)),
        ("terms", lambda: fit_linear_classifier(X, [], 0.1)),
        ("chi", lambda: fit_kd_student(X, y, h, 0.1, 1.5, n_norm=10)),
        ("X_support", lambda: fit_kd_student(X[0], y, h, 0.1, 0.5, n_norm=10)),
        ("X", lambda: fit_ridge_logistic(np.full_like(X, np.inf), y, 0.1)),
        ("temperature", lambda: fit_kd_student(X, y, h, 0.1, 0.5, -2.0, n_norm=10)),
        ("lam_s", lambda: fit_kd_student(X, y, h, -0.1, 0.5, n_norm=10)),
        ("n_norm", lambda: fit_kd_student(X, y, h, 0.1, 0.5, n_norm=5)),
        ("teacher_preactivations", lambda: fit_kd_student(X, y, h[:3], 0.1, 0.5, n_norm=10)),
        ("smoothing", lambda: smooth_labels(y, 0.5)),
        ("rho", lambda: bayes_optimal_teacher(np.ones(3), 1.0, 1.0, 1.0, None)),
        ("alpha", lambda: bayes_optimal_teacher(np.ones(3), 0.0, 0.2, 1.0, None)),
        ("delta", lambda: bayes_optimal_teacher(np.ones(3), 1.0, 0.2, -1.0, None)),
        ("v", lambda: bayes_optimal_teacher(np.ones((3, 2)), 1.0, 0.2, 1.0, None)),
    ]


@pytest.mark.parametrize("index", range(len(_bad_calls())))
def test_bad_inputs_raise_parameter_error_naming_the_parameter(index):
    name, call = _bad_calls()[index]
    with pytest.raises(ParameterError, match=rf"^{name}\b") as info:
        call()
    assert "\n" not in str(info.value)
