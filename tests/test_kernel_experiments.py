"""The kernel-regime experiments (replica.kernel_regime): random streams, data, teachers, step
conventions and the theory side of compare / sweep.  Theory vs network: test_kernel_network.py."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from replica.kernel_regime import (
    empirical_ntk_gram,
    kernel_regime,
    kernel_regime_from_eigh,
    ntk_gram,
    spectral_teacher,
)
from replica.kernel_regime.data import digits_data, mixture_data, replicate_streams
from replica.kernel_regime.experiments import (
    EQUAL_EFFECTIVE_STEP,
    EQUAL_STEP,
    KernelSetup,
    compare,
    compare_specs,
    prepare_replicate,
    sweep,
)
from replica.kernel_regime.teachers import TEACHER_KINDS, build_teacher, privileged_teacher
from replica.params import ParameterError
from simulations.wide_network import TwoLayerReLU

SMALL = dict(n=40, d=10, n_test=300, n_privileged=200, width=64, teacher_width=64, steps=200,
             seeds=3)


# ------------------------------------------------------------------------------ streams
def test_streams_are_independent_and_reproducible():
    a, b = replicate_streams(3, 1), replicate_streams(3, 1)
    # consuming one stream does not move another
    a["teacher"].standard_normal(1000)
    assert np.array_equal(a["student"].standard_normal(5), b["student"].standard_normal(5))
    draws = {k: replicate_streams(3, 1)[k].standard_normal(2000) for k in a}
    for k1 in draws:
        for k2 in draws:
            if k1 < k2:  # |correlation| of independent draws ~ N(0, 1/2000): 5 SE
                assert abs(np.corrcoef(draws[k1], draws[k2])[0, 1]) < 5 / math.sqrt(2000)
    assert not np.array_equal(replicate_streams(3, 0)["data"].standard_normal(3),
                              replicate_streams(3, 1)["data"].standard_normal(3))


def test_student_initialisation_does_not_depend_on_the_teacher_kind():
    """Same seed, every teacher kind: identical data and identical student weights W(0)."""
    reps = {k: prepare_replicate(KernelSetup(teacher=k, **SMALL), 1) for k in TEACHER_KINDS}
    first = reps[TEACHER_KINDS[0]]
    for kind, rep in reps.items():
        assert np.array_equal(rep.W0, first.W0), kind
        assert np.array_equal(rep.a, first.a), kind
        assert np.array_equal(rep.data.X, first.data.X), kind
    # and the teachers really differ
    ts = [rep.teacher.train_outputs for rep in reps.values()]
    assert all(not np.allclose(ts[0], t) for t in ts[1:])


def test_symmetric_initialisation_is_the_default_and_starts_at_zero():
    rep = prepare_replicate(KernelSetup(**SMALL), 0)
    assert KernelSetup().init == "symmetric"
    assert np.max(np.abs(rep.u0)) < 1e-12 and np.max(np.abs(rep.f0_test)) < 1e-12
    theory_only = prepare_replicate(KernelSetup(**SMALL), 0, network=False)
    assert theory_only.W0 is None and not np.any(theory_only.u0)


# ------------------------------------------------------------------------------ data, teachers
def test_mixture_data_shapes_and_sphere():
    data = mixture_data(30, 8, 50, 20, 0.3, 1.0, np.random.default_rng(0))
    for X in (data.X, data.X_test, data.X_privileged):
        assert np.allclose(np.linalg.norm(X, axis=1), 1.0)
    assert data.to_dict()["n_privileged"] == 20 and set(np.unique(data.signs)) == {-1.0, 1.0}


def test_digits_even_vs_odd_on_the_sphere():
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_digits

    data = digits_data(150, None, 1000, np.random.default_rng(0))
    assert data.X.shape == (150, 64) and data.X_test.shape == (1797 - 1150, 64)
    assert np.allclose(np.linalg.norm(data.X, axis=1), 1.0)
    # labels are "even", and the three sets are disjoint images
    digits = load_digits()
    X = digits.data - digits.data.mean(axis=0)
    X /= np.linalg.norm(X, axis=1)[:, None]
    where = {np.round(x, 10).tobytes(): i for i, x in enumerate(X)}
    idx = [np.array([where[np.round(z, 10).tobytes()] for z in Z])
           for Z in (data.X[:20], data.X_test[:20], data.X_privileged[:20])]
    assert not (set(idx[0]) & set(idx[1])) and not (set(idx[0]) & set(idx[2]))
    even = digits.target % 2 == 0
    assert np.array_equal(np.sort(even[idx[0]]), np.sort(data.labels[:20] == 1))
    with pytest.raises(ParameterError, match="n_test"):
        digits_data(150, 1000, 1000, np.random.default_rng(0))


def test_digits_without_scikit_learn_is_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ParameterError, match="scikit-learn"):
        digits_data(10, 10, 10, np.random.default_rng(0))


def test_privileged_teacher_is_ntk_regression_on_disjoint_points():
    data = mixture_data(30, 8, 50, 40, 0.3, 1.0, np.random.default_rng(1))
    t = privileged_teacher(data, n_privileged=40)
    Hp = ntk_gram(data.X_privileged)
    coef = np.linalg.solve(Hp, data.privileged_signs)
    assert np.allclose(t.train_outputs, ntk_gram(data.X_privileged, data.X) @ coef)
    assert np.allclose(t.test_outputs, ntk_gram(data.X_privileged, data.X_test) @ coef)
    # it interpolates its own (privileged) data, not the student's
    assert np.allclose(ntk_gram(data.X_privileged) @ coef, data.privileged_signs)
    assert not np.allclose(t.train_outputs, data.signs)


def test_noisy_teacher_flips_exactly_the_requested_fraction():
    data = mixture_data(50, 8, 10, 0, 0.3, 1.0, np.random.default_rng(2))
    H = ntk_gram(data.X)
    t = build_teacher("noisy", data, np.random.default_rng(0), H, flip=0.2, smooth=0.1)
    assert np.sum(np.sign(t.train_outputs) != data.signs) == 10
    assert np.allclose(np.abs(t.train_outputs), 0.8)
    assert t.train_disagreement(data.labels) == pytest.approx(0.2)


def test_default_teacher_differs_from_the_labels():
    """The default setup transfers knowledge: t != y on the training points, so lam matters."""
    rep = prepare_replicate(KernelSetup(seeds=1), 0, network=False)
    assert rep.teacher.train_disagreement(rep.data.labels) > 0.05
    assert np.sqrt(np.mean((rep.teacher.train_outputs - rep.data.signs) ** 2)) > 0.3


# ------------------------------------------------------------------------------ dynamics
def test_from_eigh_and_residual_energy():
    data = mixture_data(30, 8, 10, 0, 0.3, 1.0, np.random.default_rng(3))
    H, s = ntk_gram(data.X), data.signs
    t = np.tanh(s + 0.3)
    mu, Q = np.linalg.eigh(H)
    lr = 0.7 / (3 * mu[-1])
    a = kernel_regime(H, s, t, 2.0, lr, 0.1 * s)
    b = kernel_regime_from_eigh(mu, Q, s, t, 2.0, lr, 0.1 * s)
    k = [0, 5, 50]
    assert np.allclose(a.train_outputs(k), b.train_outputs(k), atol=1e-12)
    e = b.residual_energy(k)
    p = Q.T @ (0.1 * s - b.u_star)
    assert np.allclose(e, p**2 * (1 - 3 * lr * mu) ** (2 * np.array(k)[:, None]), rtol=1e-10)
    assert np.allclose(e.sum(axis=1), np.sum((b.train_outputs(k) - b.u_star) ** 2, axis=1))


def test_empirical_ntk_gram_matches_the_network():
    rng = np.random.default_rng(4)
    data = mixture_data(12, 6, 7, 0, 0.3, 1.0, rng)
    net = TwoLayerReLU.initialise(256, 6, rng)
    assert np.allclose(empirical_ntk_gram(net.W, data.X), net.empirical_ntk(data.X))
    assert np.allclose(empirical_ntk_gram(net.W, data.X, data.X_test),
                       net.empirical_ntk(data.X, data.X_test))


def test_equal_effective_step_separates_alignment_from_the_trivial_speed_up():
    """With t = y only the step changes: equal effective step reproduces the baseline exactly
    and equal step is the baseline at step lr (1 + lam).  At equal effective step a
    top-eigenspace teacher is faster than the labels alone and a bottom-eigenspace teacher of the
    same norm slower (the old notebook's table said so; its sentence said otherwise)."""
    data = mixture_data(60, 10, 10, 0, 0.2, 1.0, np.random.default_rng(5))
    H, s = ntk_gram(data.X), data.signs
    mu_max = np.linalg.eigvalsh(H)[-1]
    lam, lr, tol = 4.0, 1.0 / (5.0 * mu_max), 0.02
    base = kernel_regime(H, s, s, 0.0, lr)
    same_eff = kernel_regime(H, s, s, lam, lr / (1 + lam))
    same_step = kernel_regime(H, s, s, lam, lr)
    fast_base = kernel_regime(H, s, s, 0.0, lr * (1 + lam))
    k = np.arange(0, 200, 7)
    assert np.allclose(same_eff.train_outputs(k), base.train_outputs(k), atol=1e-12)
    assert np.allclose(same_step.train_outputs(k), fast_base.train_outputs(k), atol=1e-12)
    top = spectral_teacher(H, s, 5)
    bottom = spectral_teacher(H, s, 5, end="bottom")
    bottom *= np.linalg.norm(top) / np.linalg.norm(bottom)
    it = {name: kernel_regime(H, s, t, lam, lr / (1 + lam)).iterations_to_reach(tol)
          for name, t in [("top", top), ("bottom", bottom)]}
    assert it["top"] < base.iterations_to_reach(tol) < it["bottom"]


def test_compare_specs_label_the_step_conventions():
    base, eq, eff = compare_specs(3.0, 0.2)
    assert (base.lam, base.lr, eq.lr, eff.lr) == (0.0, 0.2, 0.2, pytest.approx(0.05))
    assert eq.mode == EQUAL_STEP and eff.mode == EQUAL_EFFECTIVE_STEP
    auto = compare_specs(3.0, None)
    assert [s.step(2.0) for s in auto] == pytest.approx([1 / 8, 1 / 8, 1 / 32])


# ------------------------------------------------------------------------------ compare / sweep
def test_compare_theory_is_paired_and_independent_of_workers():
    setup = KernelSetup(**SMALL)
    a = compare(setup, 1.0, network=False, workers=1)
    b = compare(setup, 1.0, network=False, workers=2)
    assert a.to_dict() == b.to_dict()
    base = a.runs[0]
    assert base.theory_change["test_error"].mean == 0.0 and base.network is None
    # same teacher, same u*: the two KD runs agree at convergence
    eq, eff = a.runs[1], a.runs[2]
    assert eq.theory["capacity"].mean == pytest.approx(eff.theory["capacity"].mean)
    assert eq.theory["iterations"].mean < eff.theory["iterations"].mean


def test_default_teacher_improves_the_kernel_student():
    """Theory, default setup (5 seeds): lam = 1 lowers the test error and the capacity against
    the lam = 0 baseline of the same seeds (paired), by more than 3 SE."""
    c = compare(KernelSetup(), 1.0, network=False)
    change = c.runs[2].theory_change
    for key in ("test_error", "capacity", "iterations"):
        assert change[key].mean + 3 * change[key].se < 0, key


def test_sweeps_always_draw_the_baseline():
    setup = KernelSetup(**SMALL)
    s = sweep(setup, "lam", np.array([2.0, 1.0]), network=False)  # any sequence, arrays too
    for pts in s.curves.values():
        assert [p.value for p in pts] == [0.0, 1.0, 2.0]
    eff = s.curves[EQUAL_EFFECTIVE_STEP]
    assert eff[0].run.theory_change["test_error"].mean == 0.0
    q = sweep(KernelSetup(teacher="noisy", **SMALL), "teacher-quality", [0.0, 0.4],
              network=False)
    assert q.parameter == "flip" and q.baseline.spec.lam == 0.0
    clean, noisy = q.curves[EQUAL_EFFECTIVE_STEP]
    # flipping 40% of the teacher's labels hurts the student
    assert noisy.run.theory["test_error"].mean > clean.run.theory["test_error"].mean
    with pytest.raises(ParameterError, match="vary"):
        sweep(setup, "width")


# ------------------------------------------------------------------------------ lottery
def test_pair_pruning_keeps_the_symmetric_start():
    from replica.kernel_regime.lottery import prune_scores, random_neurons, top_neurons

    rng = np.random.default_rng(0)
    net = TwoLayerReLU.initialise(64, 5, rng)
    net.W += 0.1 * rng.standard_normal(net.W.shape)
    for idx in (top_neurons(prune_scores(net.W, net.W0, "movement"), 16, paired=True),
                random_neurons(rng, 64, 16, paired=True)):
        assert idx.size == 16 and set(idx[idx < 32] + 32) == set(idx[idx >= 32])
        sub = net.subnetwork(idx, rewind=True)
        assert np.array_equal(sub.W, net.W0[idx])
        X = rng.standard_normal((7, 5))
        assert np.max(np.abs(sub.outputs(X))) < 1e-12
    scores = np.array([3.0, 1.0, 2.0, 2.0])
    assert np.array_equal(top_neurons(scores, 2), [0, 2])
    with pytest.raises(ParameterError, match="criterion"):
        prune_scores(net.W, net.W0, "gradient")
