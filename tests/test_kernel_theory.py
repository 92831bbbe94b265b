"""Unit tests of the kernel-regime formulas (replica.kernel_regime) and the linear dynamics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from replica.kernel_regime import (
    NTK_AT_ONE,
    capacity_measure,
    distillation_fixed_point,
    distillation_loss,
    kernel_regime,
    linearised_ntk_coefficients,
    linearised_ntk_gram,
    mean_offdiagonal_square,
    mixture_readout_error,
    normalise_rows,
    ntk_gram,
    ntk_kernel_function,
    proportional_test_error,
    relu_covariance_function,
    spectral_teacher,
)
from replica.params import ParameterError
from saddle.linear_dynamics import (
    DynamicsInputError,
    LinearDynamics,
    cumulative_gain,
    symmetric_eigh,
)
from simulations.data import sample_mixture


def unit_pair(cosine: float, d: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.zeros(d)
    x[0] = 1.0
    z = np.zeros(d)
    z[0], z[1] = cosine, math.sqrt(1.0 - cosine**2)
    return x, z


def random_psd(n: int, rng: np.random.Generator, *, rank: int | None = None) -> np.ndarray:
    B = rng.standard_normal((n, rank or n))
    return B @ B.T / n


@pytest.fixture(scope="module")
def mixture():
    rng = np.random.default_rng(11)
    train = sample_mixture(12, 30, 0.3, 1.0, rng)
    test = sample_mixture(12, 50, 0.3, 1.0, rng, v=train.v)
    return normalise_rows(train.X), normalise_rows(test.X), train.signs


# ------------------------------------------------------------------------------- kernels
@pytest.mark.parametrize("kappa", [0.3, 2.0])
@pytest.mark.parametrize("cosine", [-0.9, -0.3, 0.0, 0.4, 0.95])
def test_ntk_kernel_matches_monte_carlo(cosine, kappa):
    """k(rho) = E_w[x.x' 1{w.x>0} 1{w.x'>0}], any kappa; tolerance = 5 Monte-Carlo SE."""
    rng = np.random.default_rng(0)
    x, z = unit_pair(cosine, 4)
    w = kappa * rng.standard_normal((400_000, 4))
    ntk = cosine * ((w @ x > 0) & (w @ z > 0))
    relu = np.maximum(w @ x, 0) * np.maximum(w @ z, 0) / kappa**2
    for samples, exact in [(ntk, ntk_kernel_function(cosine)),
                           (relu, relu_covariance_function(cosine))]:
        se = samples.std() / math.sqrt(samples.size)
        assert abs(samples.mean() - exact) <= 5 * se + 1e-15


def test_kernel_function_special_values():
    assert ntk_kernel_function(1.0) == pytest.approx(0.5)
    assert ntk_kernel_function(0.0) == 0.0
    assert ntk_kernel_function(-1.0) == pytest.approx(0.0)
    assert relu_covariance_function(1.0) == pytest.approx(0.5)
    assert relu_covariance_function(0.0) == pytest.approx(1 / (2 * math.pi))
    # Taylor coefficients used by the linearisation: k'(0) = 1/4, k''(0)/2 = 1/(2 pi)
    h = 1e-4
    k = ntk_kernel_function
    assert (k(h) - k(-h)) / (2 * h) == pytest.approx(0.25, rel=1e-6)
    assert (k(h) + k(-h)) / (2 * h**2) == pytest.approx(1 / (2 * math.pi), rel=1e-5)


def test_gram_properties(mixture):
    X, Z, _ = mixture
    H = ntk_gram(X)
    assert np.allclose(H, H.T)
    assert np.allclose(np.diag(H), NTK_AT_ONE)
    assert np.linalg.eigvalsh(H)[0] > 0  # distinct unit inputs: strictly positive definite
    K = ntk_gram(X, Z)
    assert K.shape == (Z.shape[0], X.shape[0])
    assert np.allclose(K, ntk_kernel_function(Z @ X.T))
    with pytest.raises(ParameterError, match="unit sphere"):
        ntk_gram(2 * X)


# ------------------------------------------------------------------------------- the KD problem
def test_fixed_point_minimises_the_loss():
    rng = np.random.default_rng(1)
    y, t = rng.standard_normal(7), rng.standard_normal(7)
    for lam in [0.0, 0.5, 3.0]:
        u = distillation_fixed_point(y, t, lam)
        grad = (u - y) + lam * (u - t)
        assert np.allclose(grad, 0.0, atol=1e-14)
        # any perturbation increases the loss
        for _ in range(5):
            e = 1e-3 * rng.standard_normal(7)
            assert distillation_loss(u + e, y, t, lam) > distillation_loss(u, y, t, lam)
    with pytest.raises(ParameterError, match="lam"):
        distillation_fixed_point(y, t, -1.0)


def explicit_kernel_gd(H, K_test, y, t, lam, lr, u0, f0, steps):
    """The linearised network iterated by hand."""
    u, f = u0.copy(), f0.copy()
    us, fs = [u.copy()], [f.copy()]
    for _ in range(steps):
        r = (u - y) + lam * (u - t)
        u = u - lr * H @ r
        f = f - lr * K_test @ r
        us.append(u.copy())
        fs.append(f.copy())
    return np.array(us), np.array(fs)


@pytest.mark.parametrize("lam", [0.0, 1.5])
def test_gd_closed_form_matches_explicit_iteration(mixture, lam):
    X, Z, s = mixture
    H, K = ntk_gram(X), ntk_gram(X, Z)
    rng = np.random.default_rng(2)
    t = s + 0.5 * rng.standard_normal(s.size)
    u0, f0 = 0.3 * rng.standard_normal(s.size), 0.3 * rng.standard_normal(Z.shape[0])
    mu_max = np.linalg.eigvalsh(H)[-1]
    lr = 1.6 / ((1 + lam) * mu_max)  # includes oscillating modes
    th = kernel_regime(H, s, t, lam, lr, u0)
    steps = np.arange(60)
    us, fs = explicit_kernel_gd(H, K, s, t, lam, lr, u0, f0, 59)
    assert np.allclose(th.train_outputs(steps), us, atol=1e-11)
    assert np.allclose(th.test_outputs(K, f0, steps), fs, atol=1e-11)
    assert np.allclose(th.train_loss(steps), distillation_loss(us, s, t, lam), rtol=1e-10)
    # the end point is u*
    assert np.allclose(th.train_outputs([20000])[0], th.u_star, atol=1e-10)


def test_distance_matches_explicit_linearised_model():
    """|W(k) - W(0)| of a linear model u = u0 + J (w - w0) trained by GD equals the formula."""
    rng = np.random.default_rng(3)
    n, p, lam = 9, 40, 0.7
    J = rng.standard_normal((n, p)) / math.sqrt(p)
    H = J @ J.T
    y, t, u0 = rng.standard_normal(n), rng.standard_normal(n), rng.standard_normal(n)
    lr = 0.9 / ((1 + lam) * np.linalg.eigvalsh(H)[-1])
    th = kernel_regime(H, y, t, lam, lr, u0)
    w = np.zeros(p)
    dist = [0.0]
    for _ in range(300):
        u = u0 + J @ w
        w = w - lr * J.T @ ((u - y) + lam * (u - t))
        dist.append(np.linalg.norm(w))
    assert np.allclose(th.distance(np.arange(301)), dist, rtol=1e-9, atol=1e-12)
    # the capacity measure is the limit, and equals the direct quadratic form
    r = th.u_star - u0
    direct = math.sqrt(r @ np.linalg.solve(H, r))
    assert th.capacity() == pytest.approx(direct, rel=1e-9)
    assert capacity_measure(H, th.u_star, u0) == pytest.approx(direct, rel=1e-9)
    assert th.distance([10**6])[0] == pytest.approx(direct, rel=1e-9)
    # monotone approach when lr (1+lam) mu_max <= 1
    assert np.all(np.diff(th.distance(np.arange(300))) >= -1e-12)


def test_gradient_flow_is_the_small_step_limit(mixture):
    """GD at step lr for T/lr steps -> flow at time T with an O(lr) error."""
    X, _, s = mixture
    H = ntk_gram(X)
    t = np.tanh(2 * s)
    T, errs = 3.0, []
    for lr in [0.04, 0.02, 0.01]:
        th = kernel_regime(H, s, t, 0.5, lr)
        k = round(T / lr)
        errs.append(np.max(np.abs(th.train_outputs([k])[0] - th.flow_outputs([T])[0])))
        assert th.distance([k])[0] == pytest.approx(th.flow_distance([T])[0], rel=5 * lr)
    ratios = np.array(errs[:-1]) / np.array(errs[1:])
    assert np.allclose(ratios, 2.0, rtol=0.1)  # first order in lr
    # the flow solves du/dt = -(1 + lam) H (u - u*)
    h = 1e-6
    du = (th.flow_outputs([T + h])[0] - th.flow_outputs([T - h])[0]) / (2 * h)
    rhs = -(1.5) * H @ (th.flow_outputs([T])[0] - th.u_star)
    assert np.allclose(du, rhs, atol=1e-6)


def test_stability_check():
    H = np.diag([1.0, 2.0])
    with pytest.raises(ParameterError, match="lr"):
        kernel_regime(H, np.ones(2), np.ones(2), 1.0, 0.5)  # lr (1+lam) mu_max = 2
    th = kernel_regime(H, np.ones(2), np.ones(2), 1.0, 0.5, require_stable=False)
    assert not th.dynamics.is_stable
    assert th.iterations_to_reach(1e-3) == math.inf


# ------------------------------------------------------------------------------- linear dynamics
def test_linear_dynamics_modes_rates_and_hitting_times():
    rng = np.random.default_rng(4)
    A = random_psd(8, rng)
    x_star, x0 = rng.standard_normal(8), rng.standard_normal(8)
    step = 1.0 / np.linalg.eigvalsh(A)[-1]
    dyn = LinearDynamics.from_matrix(A, x_star, x0, step)
    # explicit iteration and hitting time by brute force
    x, errs = x0.copy(), []
    for _ in range(6000):
        errs.append(np.linalg.norm(x - x_star))
        x = x - step * A @ (x - x_star)
    errs = np.array(errs)
    assert np.allclose(dyn.error_norms(np.arange(6000)), errs, rtol=1e-9, atol=1e-14)
    for tol in [1.0, 1e-2, 1e-5]:
        assert errs[-1] <= tol
        brute = int(np.argmax(errs <= tol))
        assert dyn.iterations_to_reach(tol) == brute
    # per-mode: |p_i| (1 - step mu_i)^k, rates -log|1 - step mu_i|
    k = dyn.mode_iterations(1e-3)
    p, f = np.abs(dyn.modes), np.abs(dyn.contraction_factors)
    assert np.all(p * f ** k <= 1e-3 * (1 + 1e-9))
    assert np.all((k == 0) | (p * f ** (k - 1) > 1e-3))
    assert np.allclose(dyn.rates, -np.log(f))
    assert dyn.iterations_to_reach(1e-300, max_steps=100) == math.inf
    # flow hitting time
    t_hit = dyn.flow_time_to_reach(1e-2)
    assert dyn.flow_error_norms([t_hit])[0] <= 1e-2 * (1 + 1e-9)
    assert dyn.flow_error_norms([t_hit * (1 - 1e-6)])[0] > 1e-2


def test_linear_dynamics_null_space_and_validation():
    rng = np.random.default_rng(5)
    A = random_psd(6, rng, rank=3)
    mu, _ = symmetric_eigh(A)
    assert np.all(mu >= 0) and np.sum(mu < 1e-12) == 3
    x_star = rng.standard_normal(6)
    # a start differing from x* in the null space never converges
    dyn = LinearDynamics.from_matrix(A, x_star, x_star + rng.standard_normal(6), 0.1)
    assert dyn.iterations_to_reach(1e-6, max_steps=10**6) == math.inf
    assert dyn.flow_time_to_reach(1e-6) == math.inf
    with pytest.raises(DynamicsInputError, match="positive semi-definite"):
        symmetric_eigh(-np.eye(3))
    with pytest.raises(DynamicsInputError, match="symmetric"):
        symmetric_eigh(np.array([[1.0, 2.0], [0.0, 1.0]]))
    with pytest.raises(DynamicsInputError, match="step"):
        LinearDynamics.from_matrix(np.eye(2), np.zeros(2), np.ones(2), 0.0)
    with pytest.raises(DynamicsInputError, match="steps"):
        dyn.trajectory([-1])


def test_cumulative_gain_is_the_partial_geometric_sum():
    mu = np.array([0.0, 1e-12, 1e-3, 0.5, 1.2, 1.9])
    step, steps = 1.0, np.array([0, 1, 7, 100])
    g = cumulative_gain(mu, step, steps)
    for i, k in enumerate(steps):
        direct = step * np.array([np.sum((1 - step * m) ** np.arange(k)) for m in mu])
        assert np.allclose(g[i], direct, rtol=1e-10, atol=1e-14)


# ------------------------------------------------------------------------------- teachers
def test_aligned_teacher_reduces_capacity_and_iterations(mixture):
    """Paper: a teacher in H's top eigenspace lowers the capacity and the iteration count."""
    X, _, s = mixture
    H = ntk_gram(X)
    aligned = spectral_teacher(H, s, 5)
    mu, Q = np.linalg.eigh(H)
    misaligned = Q[:, :5] @ (Q[:, :5].T @ s)  # bottom eigenspace
    misaligned *= np.linalg.norm(aligned) / np.linalg.norm(misaligned)
    lr = 1.0 / (4 * mu[-1])
    base = kernel_regime(H, s, s, 0.0, lr)
    good = kernel_regime(H, s, aligned, 3.0, lr)
    bad = kernel_regime(H, s, misaligned, 3.0, lr)
    assert good.capacity() < base.capacity() < bad.capacity()
    for tol in [0.1, 0.01]:
        assert good.iterations_to_reach(tol) < base.iterations_to_reach(tol)
        assert good.iterations_to_reach(tol) < bad.iterations_to_reach(tol)


# ------------------------------------------------------------------------ proportional regime
def test_linearised_coefficients():
    c0, c1, c2 = linearised_ntk_coefficients(0.02)
    assert c1 == 0.25 and c0 == pytest.approx(0.02 / (2 * math.pi))
    assert c0 + c1 + c2 == pytest.approx(0.5)  # the diagonal is exact


def _mixture_unit(d, n, seed, n_test=0):
    rng = np.random.default_rng(seed)
    train = sample_mixture(d, n, 0.2, 1.0, rng)
    X = normalise_rows(train.X)
    if not n_test:
        return X, train
    test = sample_mixture(d, n_test, 0.2, 1.0, rng, v=train.v)
    return X, train, normalise_rows(test.X), test


def test_linearised_gram_error_vanishes_in_proportional_limit():
    """|H - H_lin|_op -> 0 at n/d = 2 as d grows.

    The remainder is the centred rho^2 fluctuation (operator norm ~ d^-1/2) plus the rho^4
    term (~ d^-1), so the log-log slope must lie in [-1, -1/2]; it is fitted per seed and the
    band is widened by 3 standard errors over seeds.
    """
    dims = np.array([50, 100, 200])
    slopes = []
    for seed in range(5):
        errs = []
        for d in dims:
            X, _ = _mixture_unit(int(d), 2 * int(d), seed)
            errs.append(np.max(np.abs(np.linalg.eigvalsh(ntk_gram(X) - linearised_ntk_gram(X)))))
        slopes.append(np.polyfit(np.log(dims), np.log(errs), 1)[0])
        assert errs[-1] < errs[0]
    slopes = np.array(slopes)
    se = slopes.std(ddof=1) / math.sqrt(slopes.size)
    assert -1.0 - 3 * se <= slopes.mean() <= -0.5 + 3 * se


def test_tau2_is_about_one_over_d():
    X, _ = _mixture_unit(400, 300, 0)
    assert mean_offdiagonal_square(X) == pytest.approx(1 / 400, rel=0.05)


def test_gaussian_readout_matches_linearised_student_on_a_test_set():
    """The three-scalar formula vs the linearised student evaluated on fresh samples."""
    d, n, n_test = 100, 200, 40_000
    X, train, Z, test = _mixture_unit(d, n, 3, n_test)
    s = train.signs
    Hl = linearised_ntk_gram(X)
    lr = 1.0 / np.linalg.eigvalsh(Hl)[-1]
    steps = np.array([0, 1, 5, 30, 300])
    th = kernel_regime(Hl, s, s, 0.0, lr)
    f = th.test_outputs(linearised_ntk_gram(X, Z, tau2=mean_offdiagonal_square(X)), None, steps)
    mc = np.mean((f > 0) != (test.y == 1)[None, :], axis=1)
    pred = proportional_test_error(X, train.v, 0.2, 1.0, th.u_star, th.effective_step, steps)
    se = np.sqrt(pred.test_error * (1 - pred.test_error) / n_test)
    assert np.all(np.abs(mc - pred.test_error) <= 4 * se + 1e-12)
    assert pred.test_error[0] == pytest.approx(0.2)  # f = 0 predicts the negative class
    assert pred.to_dict()["steps"] == steps.tolist()


def test_linearised_student_approaches_exact_kernel_student():
    """Test outputs of the exact and linearised kernel students: rms gap shrinks with d."""
    gaps = []
    for d in [25, 100, 400]:
        X, train, Z, _ = _mixture_unit(d, 2 * d, 4, 500)
        s = train.signs
        H, Hl = ntk_gram(X), linearised_ntk_gram(X)
        lr = 1.0 / np.linalg.eigvalsh(H)[-1]
        k = [0, 3, 30, 3000]
        f = kernel_regime(H, s, s, 0.0, lr).test_outputs(ntk_gram(X, Z), None, k)
        fl = kernel_regime(Hl, s, s, 0.0, lr, require_stable=False).test_outputs(
            linearised_ntk_gram(X, Z, tau2=mean_offdiagonal_square(X)), None, k
        )
        gaps.append(np.max(np.sqrt(np.mean((f - fl) ** 2, axis=1))))
    assert gaps[0] > gaps[1] > gaps[2]


def test_readout_error_formula():
    assert mixture_readout_error(0.0, 0.0, 1.0, 0.3) == pytest.approx(0.5)
    # large margin: no error; bias shifts errors between classes
    assert mixture_readout_error(10.0, 0.0, 1.0, 0.3) < 1e-20
    e = mixture_readout_error(1.0, 0.5, 1.0, 0.2)
    from scipy.stats import norm

    assert e == pytest.approx(0.2 * norm.sf(1.5) + 0.8 * norm.sf(0.5))
