"""The kernel-regime theory against the finite-width network (simulations.wide_network).

Tolerances come from measured fluctuations: slopes are fitted per seed and compared with their
standard error over seeds; hitting times are checked against the band allowed by the measured
trajectory deviation; test errors against binomial standard errors.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from replica.kernel_regime import (
    kernel_regime,
    linearised_ntk_gram,
    mean_offdiagonal_square,
    normalise_rows,
    ntk_gram,
    spectral_teacher,
)
from replica.kernel_regime.experiments import KernelSetup
from replica.kernel_regime.trajectory import run_trajectory
from replica.params import ParameterError
from simulations.data import sample_mixture
from simulations.wide_network import TwoLayerReLU, record_schedule, train_distillation

pytestmark = pytest.mark.slow  # trains finite-width networks (one BLAS thread: conftest.py)


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
    t = s.copy()
    t[rng.choice(s.size, size=round(0.2 * s.size), replace=False)] *= -1.0  # 20% flipped
    lam, steps = 1.0, 150
    H, K = ntk_gram(X), ntk_gram(X, Z)
    lr = 1.0 / ((1 + lam) * np.linalg.eigvalsh(H)[-1])
    rec = np.arange(steps + 1)
    dev = np.zeros((SEEDS, WIDTHS.size, 3))
    final = np.zeros((SEEDS, WIDTHS.size))
    for i in range(SEEDS):
        for j, w in enumerate(WIDTHS):
            net = TwoLayerReLU.initialise(int(w), X.shape[1], np.random.default_rng([i, int(w)]),
                                          init="random")
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
    net = TwoLayerReLU.initialise(1024, X.shape[1], rng, init="random")
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


# ------------------------------------------------------------------------- single-run view
@pytest.mark.parametrize("teacher", ["privileged", "wide", "noisy", "ridge"])
def test_trajectory_with_each_teacher(teacher):
    setup = KernelSetup(n=60, d=20, width=2048, teacher=teacher, steps=300, n_test=1000,
                        n_privileged=300, teacher_width=4096, seed=1)
    res = run_trajectory(setup, 1.0, record_points=40)
    tr = res.trajectories()
    summary = res.summary()
    assert summary["theory_final_fixed_point_rms"] < 1e-3
    assert summary["network_final_fixed_point_rms"] < summary["max_deviation_rms"]
    # the test errors can differ only on test points whose sign the output deviation can flip:
    # allow the fraction of points with |f_theory| below 3 rms deviations, per step
    f_th, f_net = res.theory_test_outputs, res.network.test_outputs
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
    setup = KernelSetup(n=200, d=100, width=2048, teacher="noisy", flip=0.2, steps=200,
                        n_test=4000)
    res = run_trajectory(setup, 1.0, record_points=30)
    tr = res.trajectories()
    data = res.replicate.data
    X, Z = data.X, data.X_test
    Hl = linearised_ntk_gram(X)
    th_lin = kernel_regime(Hl, res.theory.y, res.theory.t, 1.0, res.lr, require_stable=False)
    K_lin = linearised_ntk_gram(X, Z, tau2=mean_offdiagonal_square(X))
    f_lin = th_lin.test_outputs(K_lin, None, res.steps)
    err_lin_mc = np.mean((f_lin > 0) != (data.test_labels == 1)[None, :], axis=1)
    curve = tr["linearised_test_error"]
    se = np.sqrt(curve * (1 - curve) / setup.n_test)
    allowed = (3 * se + np.abs(tr["network_test_error"] - tr["theory_test_error"])
               + np.abs(tr["theory_test_error"] - err_lin_mc))
    assert np.all(np.abs(tr["network_test_error"] - curve) <= allowed)


def test_exact_crossing_is_read_from_every_step():
    """The network's hitting time is the first step below tolerance, not a recorded step."""
    X, _, s, rng = small_problem()
    H = ntk_gram(X)
    lr = 1.0 / np.linalg.eigvalsh(H)[-1]
    net = TwoLayerReLU.initialise(2048, X.shape[1], rng)
    steps = 400
    tr = train_distillation(net, X, s, s, 0.0, lr, steps, record=[0, 50, steps])
    # brute force: rerun recording every step
    net2 = TwoLayerReLU(net.W0, net.a)
    full = train_distillation(net2, X, s, s, 0.0, lr, steps, record=np.arange(steps + 1))
    e = rms(full.train_outputs - s)
    assert np.allclose(tr.fixed_point_rms, e, rtol=1e-10, atol=1e-14)
    for tol in [0.3, 0.05, 0.01]:
        k = tr.iterations_to_reach(tol)
        assert e[k] <= tol < e[k - 1]
    assert tr.iterations_to_reach(1e-300) == math.inf


def test_record_schedule_and_validation():
    rec = record_schedule(1000, 50)
    assert rec[0] == 0 and rec[-1] == 1000 and np.all(np.diff(rec) > 0)
    assert np.array_equal(record_schedule(10, 50), np.arange(11))
    with pytest.raises(ParameterError, match="teacher"):
        KernelSetup(teacher="oracle")
    with pytest.raises(ParameterError, match="width"):
        KernelSetup(width=5)
    with pytest.raises(ParameterError, match="lr"):
        run_trajectory(KernelSetup(n=20, d=5, width=64, lr=100.0, steps=2, teacher="noisy",
                                   n_test=10), 1.0)


# ------------------------------------------------------------------------- experiments (slow)
def _run_both(rep, spec, setup):
    """Network trained with every step recorded, and the theory at the same steps."""
    from replica.kernel_regime.dynamics import kernel_regime_from_eigh

    data, t = rep.data, rep.teacher.train_outputs
    lr = spec.step(rep.mu_max)
    th = kernel_regime_from_eigh(rep.eigenvalues, rep.eigenvectors, data.signs, t, spec.lam,
                                 lr, rep.u0)
    rec = np.arange(setup.steps + 1)
    net = TwoLayerReLU(rep.W0, rep.a)
    tr = train_distillation(net, data.X, data.signs, t, spec.lam, lr, setup.steps, record=rec,
                            X_test=data.X_test, test_record=[setup.steps])
    return th, tr, rec


def _check_run_against_theory(rep, spec, setup):
    """Per-run agreement, with bounds measured on the run itself.

    * test error at T: may differ only on test points whose sign the measured output deviation
      (3 x its rms) can flip;
    * iterations to tolerance: inside the theory hitting times for tolerance -/+ the measured
      rms deviation of the training outputs (the error is monotone in k);
    * training error at T against the labels: likewise on flippable training points.
    Returns (theory, network) iterations and test errors.
    """
    th, tr, rec = _run_both(rep, spec, setup)
    data, T = rep.data, setup.steps
    f_th = th.test_outputs(rep.K_test, rep.f0_test, [T])[0]
    f_net = tr.test_outputs[-1]
    err = lambda f, y: np.mean((f > 1e-12) != (y == 1))  # noqa: E731
    flippable = np.mean(np.abs(f_th) < 3 * rms(f_net - f_th))
    e_th, e_net = err(f_th, data.test_labels), err(f_net, data.test_labels)
    assert abs(e_net - e_th) <= flippable
    u_th = th.train_outputs([T])[0]
    flip_train = np.mean(np.abs(u_th) < 3 * rms(tr.train_outputs[-1] - u_th))
    assert abs(err(tr.train_outputs[-1], data.labels) - err(u_th, data.labels)) <= flip_train
    dev = np.max(rms(tr.train_outputs - th.train_outputs(rec)))
    tol = setup.tolerance
    assert dev < tol  # else the band below is empty on one side
    k_net = tr.iterations_to_reach(tol)
    assert th.iterations_to_reach(tol + dev) <= k_net <= th.iterations_to_reach(tol - dev)
    return th.iterations_to_reach(tol), k_net, e_th, e_net


# tolerance 0.05: above the measured max deviation at width 2048 (~0.02), so the band is finite
COMPARE_SETUP = dict(n=100, d=30, n_test=2000, n_privileged=500, width=2048, steps=250,
                     tolerance=0.05)


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["mixture", "digits"])
def test_knowledge_transfer_network_vs_theory(dataset):
    """Baseline, equal step, equal effective step on 4 seeds (width 2048): every run agrees with
    its kernel theory within the measured bounds, and the network shows the theory's effects:
    lower test error with the privileged teacher (paired over seeds, mean + 3 SE < 0) and fewer
    iterations at equal effective step."""
    from replica.kernel_regime.experiments import compare_specs, prepare_replicate

    if dataset == "digits":
        pytest.importorskip("sklearn")
        setup = KernelSetup(dataset="digits", n=150, n_test=None, n_privileged=1000,
                            width=2048, steps=400, seeds=4, tolerance=0.05)
    else:
        setup = KernelSetup(seeds=4, **COMPARE_SETUP)
    specs = compare_specs(1.0, None)
    out = np.zeros((setup.seeds, len(specs), 4))
    for r in range(setup.seeds):
        rep = prepare_replicate(setup, r)
        for j, spec in enumerate(specs):
            out[r, j] = _check_run_against_theory(rep, spec, setup)
    for side, col in (("theory", 0), ("network", 1)):
        d_iter = out[:, 2, col] - out[:, 0, col]  # equal effective step vs baseline
        assert d_iter.mean() + 3 * d_iter.std(ddof=1) / 2 < 0, side  # SE over 4 seeds
        assert np.all(out[:, 1, col] < out[:, 2, col]), side  # equal step: faster still
    for side, col in (("theory", 2), ("network", 3)):
        d_err = out[:, 2, col] - out[:, 0, col]
        assert d_err.mean() + 3 * d_err.std(ddof=1) / 2 < 0, side
    # the network's gain from the teacher is the theory's, within 3 SE of the paired gap
    gap = (out[:, 2, 3] - out[:, 0, 3]) - (out[:, 2, 2] - out[:, 0, 2])
    assert abs(gap.mean()) <= 3 * gap.std(ddof=1) / math.sqrt(gap.size) + 1e-12


@pytest.mark.slow
def test_lottery_tickets_follow_the_kernel_theory_of_the_pruned_network():
    """Half of a width-4096 student (2048 kept neurons, whole pairs): each retrained ticket's
    test error agrees with the kernel theory of its own empirical NTK, within the test points
    that the measured output deviation can flip; tickets start from f_0 = 0."""
    from replica.kernel_regime.lottery import lottery

    setup = KernelSetup(n=100, d=30, n_test=2000, n_privileged=500, width=4096, steps=200,
                        seeds=2)
    res = lottery(setup, lam=1.0, keep=(0.5,))
    assert len(res.per_seed) == 2 * 5  # random + 2 guides x 2 criteria, per seed
    for row in res.per_seed:
        assert row["n_keep"] == 2048 and row["initial_output_rms"] < 1e-12
        assert abs(row["test_error"] - row["theory_test_error"]) <= row["flippable_fraction"]
        assert row["iterations"] < math.inf and row["theory_iterations"] < math.inf
