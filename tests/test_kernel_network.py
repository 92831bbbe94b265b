"""The kernel-regime theory against the finite-width network (simulations.wide_network).

Tolerances come from measured fluctuations: slopes are fitted per seed and compared with their
standard error over seeds; hitting times are checked against the band allowed by the measured
trajectory deviation; test errors against binomial standard errors.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from replica.kernel import (
    kernel_regime,
    linearised_ntk_gram,
    mean_offdiagonal_square,
    normalise_rows,
    ntk_gram,
    spectral_teacher,
)
from replica.params import ParameterError
from simulations.data import sample_mixture
from simulations.wide_network import (
    KernelExperimentConfig,
    TwoLayerReLU,
    noisy_label_teacher,
    record_schedule,
    run_kernel_experiment,
    train_distillation,
)

pytestmark = pytest.mark.slow  # trains finite-width networks: minutes


def small_problem(n=40, d=10, n_test=100, seed=7):
    rng = np.random.default_rng(seed)
    train = sample_mixture(d, n, 0.2, 1.0, rng)
    test = sample_mixture(d, n_test, 0.2, 1.0, rng, v=train.v)
    X, Z = normalise_rows(train.X), normalise_rows(test.X)
    return X, Z, train.signs, rng


def rms(a, axis=-1):
    return np.sqrt(np.mean(a**2, axis=axis))


# ------------------------------------------------------------------------- the network itself
def test_gradient_matches_finite_differences():
    X, _, s, rng = small_problem(n=6, d=4)
    t = rng.standard_normal(6)
    lam, lr = 0.7, 1e-3
    net = TwoLayerReLU.initialise(16, 4, rng)
    W0 = net.W.copy()

    def loss(W):
        u = np.maximum(X @ W.T, 0) @ net.a / 4.0
        return 0.5 * np.sum((u - s) ** 2) + 0.5 * lam * np.sum((u - t) ** 2)

    train_distillation(net, X, s, t, lam, lr, 1, record=[0, 1])
    grad = (W0 - net.W) / lr
    h = 1e-6
    for r, c in [(0, 0), (3, 2), (15, 3)]:
        E = np.zeros_like(W0)
        E[r, c] = h
        assert grad[r, c] == pytest.approx((loss(W0 + E) - loss(W0 - E)) / (2 * h), abs=1e-6)


def test_symmetric_init_starts_at_zero_and_ntk_concentrates():
    X, _, _, rng = small_problem()
    net = TwoLayerReLU.initialise(20000, X.shape[1], rng, init="symmetric")
    assert np.max(np.abs(net.outputs(X))) < 1e-12
    # the empirical NTK is an average of m/2 i.i.d. terms: compare with H within 5 SE
    H = ntk_gram(X)
    half = net.W[: net.width // 2]
    act = (X @ half.T > 0).astype(float)
    terms = (act[:, None, :] * act[None, :, :]) * (X @ X.T)[:, :, None]
    se = terms.std(axis=2) / math.sqrt(half.shape[0])
    assert np.all(np.abs(net.empirical_ntk(X) - H) <= 5 * se + 1e-12)
    with pytest.raises(ParameterError, match="even"):
        TwoLayerReLU.initialise(5, 3, rng, init="symmetric")


# ------------------------------------------------------------------------- theory vs network
WIDTHS = np.array([64, 256, 1024, 4096])
SEEDS = 10


@pytest.fixture(scope="module")
def width_scan():
    """Max-over-training deviations network vs theory, per seed and width (random init)."""
    X, Z, s, rng = small_problem()
    t = noisy_label_teacher(s, rng, flip=0.2).train_outputs
    lam, steps = 1.0, 150
    H, K = ntk_gram(X), ntk_gram(X, Z)
    lr = 1.0 / ((1 + lam) * np.linalg.eigvalsh(H)[-1])
    rec = np.arange(steps + 1)
    dev = np.zeros((SEEDS, WIDTHS.size, 3))
    final = np.zeros((SEEDS, WIDTHS.size))
    for i in range(SEEDS):
        for j, w in enumerate(WIDTHS):
            net = TwoLayerReLU.initialise(int(w), X.shape[1], np.random.default_rng([i, int(w)]))
            th = kernel_regime(H, s, t, lam, lr, net.outputs(X))
            f0 = net.outputs(Z)
            tr = train_distillation(net, X, s, t, lam, lr, steps, record=rec, X_test=Z)
            dev[i, j, 0] = np.max(rms(tr.train_outputs - th.train_outputs(rec)))
            dev[i, j, 1] = np.max(rms(tr.test_outputs - th.test_outputs(K, f0, rec)))
            dev[i, j, 2] = np.max(np.abs(tr.distance - th.distance(rec))) / th.capacity()
            final[i, j] = rms(tr.train_outputs[-1] - th.u_star)
    return dev, final


def _slopes(dev):
    slopes = np.polyfit(np.log(WIDTHS), np.log(dev).T, 1)[0]
    return slopes.mean(), slopes.std(ddof=1) / math.sqrt(slopes.size)


@pytest.mark.parametrize("which", [0, 1, 2], ids=["train-outputs", "test-outputs", "distance"])
def test_deviation_from_theory_shrinks_with_width(width_scan, which):
    """Per-seed log-log slope of the deviation vs width is significantly negative."""
    dev, _ = width_scan
    mean, se = _slopes(dev[:, :, which])
    assert mean + 3 * se < 0
    assert np.all(np.mean(dev[:, :, which], axis=0)[1:] < np.mean(dev[:, :, which], axis=0)[:-1])


@pytest.mark.parametrize("which", [0, 1], ids=["train-outputs", "test-outputs"])
def test_deviation_rate_is_one_over_sqrt_width(width_scan, which):
    """Leading correction ~ m^-1/2 (NTK fluctuation and drift), next ~ m^-1: slope in
    [-1, -1/2], widened by 3 standard errors over seeds."""
    mean, se = _slopes(width_scan[0][:, :, which])
    assert -1.0 - 3 * se <= mean <= -0.5 + 3 * se


def test_end_point_is_the_fixed_point(width_scan):
    """After training, every network sits at u* well within its own trajectory deviation."""
    dev, final = width_scan
    assert np.all(final <= dev[:, :, 0])


def test_network_converges_to_u_star_exactly():
    X, _, s, rng = small_problem()
    t = np.tanh(s + rng.standard_normal(s.size))
    H = ntk_gram(X)
    lam = 2.0
    lr = 1.0 / ((1 + lam) * np.linalg.eigvalsh(H)[-1])
    net = TwoLayerReLU.initialise(1024, X.shape[1], rng)
    th = kernel_regime(H, s, t, lam, lr, net.outputs(X))
    steps = 2000
    tr = train_distillation(net, X, s, t, lam, lr, steps, record=[0, steps])
    assert th.fixed_point_error([steps])[0] < 1e-12
    e0 = rms(tr.train_outputs[0] - th.u_star)
    assert rms(tr.train_outputs[-1] - th.u_star) < 1e-9 * e0


def test_aligned_teacher_cuts_iterations_as_predicted():
    """lambda > 0 with a teacher in H's top eigenspace: fewer iterations, as the theory says.

    The network's hitting time of |u - u*|/sqrt(n) <= tol must lie in the band of theory
    hitting times for tol -/+ the measured deviation of that very run.
    """
    X, _, s, _ = small_problem()
    H = ntk_gram(X)
    mu, Q = np.linalg.eigh(H)
    aligned = spectral_teacher(H, s, 5)
    misaligned = Q[:, :5] @ (Q[:, :5].T @ s)
    misaligned *= np.linalg.norm(aligned) / np.linalg.norm(misaligned)
    lr = 1.0 / (5.0 * mu[-1])
    tol = 0.05
    hits = {}
    for name, t, lam in [("plain", s, 0.0), ("aligned1", aligned, 1.0),
                         ("aligned4", aligned, 4.0), ("misaligned4", misaligned, 4.0)]:
        net = TwoLayerReLU.initialise(4096, X.shape[1], np.random.default_rng(3), init="symmetric")
        th = kernel_regime(H, s, t, lam, lr, net.outputs(X))
        steps = int(1.5 * th.iterations_to_reach(tol)) + 10
        rec = np.arange(steps + 1)
        tr = train_distillation(net, X, s, t, lam, lr, steps, record=rec)
        e_net = rms(tr.train_outputs - th.u_star)
        dev = np.max(rms(tr.train_outputs - th.train_outputs(rec)))
        k_net = int(np.argmax(e_net <= tol))
        assert e_net[k_net] <= tol
        k_lo, k_hi = th.iterations_to_reach(tol + dev), th.iterations_to_reach(tol - dev)
        assert k_lo <= k_net <= k_hi
        hits[name] = (th.iterations_to_reach(tol), k_net)
    for side in (0, 1):  # theory and network agree on the ordering
        assert hits["aligned4"][side] < hits["aligned1"][side] < hits["plain"][side]
        assert hits["aligned4"][side] < hits["misaligned4"][side]


# ------------------------------------------------------------------------- experiments / teachers
@pytest.mark.parametrize("teacher", ["wide", "noisy", "ridge"])
def test_experiment_with_each_teacher(teacher):
    cfg = KernelExperimentConfig(n=60, d=20, width=2048, lam=1.0, teacher=teacher, steps=300,
                                 n_test=1000, seed=1, teacher_width=4096, record_points=40)
    exp = run_kernel_experiment(cfg)
    tr = exp.trajectories()
    summary = exp.summary()
    assert summary["theory_final_fixed_point_rms"] < 1e-3
    assert summary["network_final_fixed_point_rms"] < summary["max_deviation_rms"]
    # the test errors can differ only on test points whose sign the output deviation can flip:
    # allow the fraction of points with |f_theory| below 3 rms deviations, per step
    f_th, f_net = exp.theory_test_outputs, exp.network.test_outputs
    margin = 3 * rms(f_net - f_th)[:, None]
    flippable = np.mean(np.abs(f_th) < margin, axis=1)
    assert np.all(np.abs(tr["network_test_error"] - tr["theory_test_error"]) <= flippable)
    assert summary["teacher"]["kind"] == teacher
    if teacher != "noisy":
        assert summary["teacher_test_error"] < 0.5
    assert np.allclose(tr["network_distance"][0], 0.0)


def test_linearised_curve_tracks_the_network():
    """Proportional-regime curve vs the network's test error (symmetric init).

    Allowed gap per step = 3 binomial SE of the test set + the measured network-vs-kernel gap
    + the measured exact-vs-linearised kernel gap on the same test points.
    """
    cfg = KernelExperimentConfig(n=200, d=100, width=2048, lam=1.0, teacher="noisy", flip=0.2,
                                 steps=200, n_test=4000, init="symmetric", record_points=30)
    exp = run_kernel_experiment(cfg)
    tr = exp.trajectories()
    rng = np.random.default_rng(cfg.seed)
    train = sample_mixture(cfg.d, cfg.n, cfg.rho, cfg.delta, rng)
    test = sample_mixture(cfg.d, cfg.n_test, cfg.rho, cfg.delta, rng, v=train.v)
    X, Z = normalise_rows(train.X), normalise_rows(test.X)
    Hl = linearised_ntk_gram(X)
    th_lin = kernel_regime(Hl, exp.theory.y, exp.theory.t, cfg.lam, exp.lr, require_stable=False)
    K_lin = linearised_ntk_gram(X, Z, tau2=mean_offdiagonal_square(X))
    f_lin = th_lin.test_outputs(K_lin, None, exp.steps)
    err_lin_mc = np.mean((f_lin > 0) != (test.y == 1)[None, :], axis=1)
    curve = tr["linearised_test_error"]
    se = np.sqrt(curve * (1 - curve) / cfg.n_test)
    allowed = (3 * se + np.abs(tr["network_test_error"] - tr["theory_test_error"])
               + np.abs(tr["theory_test_error"] - err_lin_mc))
    assert np.all(np.abs(tr["network_test_error"] - curve) <= allowed)


def test_record_schedule_and_config_validation():
    rec = record_schedule(1000, 50)
    assert rec[0] == 0 and rec[-1] == 1000 and np.all(np.diff(rec) > 0)
    assert np.array_equal(record_schedule(10, 50), np.arange(11))
    with pytest.raises(ParameterError, match="teacher"):
        KernelExperimentConfig(teacher="oracle")
    with pytest.raises(ParameterError, match="width"):
        KernelExperimentConfig(width=5, init="symmetric")
    with pytest.raises(ParameterError, match="lam"):
        KernelExperimentConfig(lam=-1)
    with pytest.raises(ParameterError, match="lr"):
        run_kernel_experiment(KernelExperimentConfig(n=20, d=5, width=64, lr=100.0, steps=2,
                                                     teacher="noisy", n_test=10))
