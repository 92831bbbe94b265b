"""Distillation chains (replica/chain.py, simulations/chains.py, docs/chains.md).

Exact limits (today's teacher and student, direct training, the Bayes-optimal bound),
and theory (with its quadrature error by refinement) against finite-size simulation at chains
covering K = 2 and 3, hard and soft targets, label noise 0 / 0.1 / 0.3, weak-to-strong,
compression, fixed and inherited biases, rho != 1/2 and a Bayes-optimal stage 0; stages with
the square and hinge label terms of the loss table (stage 0 = solve_teacher(loss=...), K = 1 =
solve_student(loss=..., teacher_loss=...), four chains against simulation, the hinge's limit).
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from replica.chain import (
    ChainParams,
    ChainQuadrature,
    Stage,
    _orthant,
    optimise_stage_lams,
    optimise_stages,
    solve_chain,
    stage_eps_g_and_gradient,
    training_observables_mc,
)
from replica.errors import bayes_optimal_error
from replica.params import GaussianMixture, ParameterError
from replica.student import solve_student
from replica.teacher import solve_teacher
from saddle.truncated_gaussian import half_line_gauss_rules, split_gauss_rules
from simulations.chains import segment_normalised_direction, simulate_chain

# ----------------------------------------------------------------------------------------------
# Numerics
# ----------------------------------------------------------------------------------------------


def test_half_line_rules_are_gauss_rules():
    """An n-point rule integrates z^j, j < 2n, against the half-line Gaussian exactly."""
    from scipy.integrate import quad

    cuts = np.array([-2.0, -0.3, 0.0, 1.1, 4.0])
    n = 6
    nodes, weights = half_line_gauss_rules(cuts, n, "right")
    for i, r in enumerate(cuts):
        for j in range(2 * n):
            exact = quad(lambda z, j=j: z**j * math.exp(-z * z / 2) / math.sqrt(2 * math.pi),
                         r, np.inf, epsabs=1e-14, epsrel=1e-13)[0]  # fmt: skip
            assert abs(weights[i] @ nodes[i] ** j - exact) <= 1e-10 * max(1.0, abs(exact))
        assert np.all(nodes[i] >= r)
    z, w = split_gauss_rules(cuts, 8)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-15)
    assert np.all(np.diff(z, axis=1) > 0)


def test_bivariate_orthant_matches_scipy():
    from scipy.stats import multivariate_normal

    for x, y, r in [(0.3, -0.5, 0.7), (-1.0, -2.0, -0.4), (1.2, 0.4, 0.95), (0.0, 0.5, 0.3)]:
        ref = multivariate_normal([0, 0], [[1, r], [r, 1]]).cdf([x, y])
        assert abs(_orthant(x, y, r) - ref) < 1e-6


def test_segment_normalised_direction():
    v = segment_normalised_direction(100, [30, 70], np.random.default_rng(1))
    for lo, hi in ((0, 30), (30, 70), (70, 100)):
        assert abs(v[lo:hi] @ v[lo:hi] - (hi - lo)) < 1e-9


def test_parameter_errors_name_the_stage_key():
    with pytest.raises(ParameterError, match="target"):
        Stage(target="medium")
    with pytest.raises(ParameterError, match="stage0.chi"):
        ChainParams(2.0, stages=(Stage(chi=0.5),))
    with pytest.raises(ParameterError, match="flip"):
        ChainParams(2.0, flip=0.6)
    with pytest.raises(ParameterError, match="stage1.lam must be > 0"):
        ChainParams(2.0, stages=(Stage(), Stage(lam=0.0, chi=1.0, target="hard")))
    with pytest.raises(ParameterError, match="loss must be one of"):
        Stage(loss="cubic")
    with pytest.raises(ParameterError, match="stage1.lam must be > 0 for the hinge loss"):
        ChainParams(2.0, stages=(Stage(), Stage(lam=0.0, chi=0.5, loss="hinge")))
    with pytest.raises(ParameterError, match="stage0.loss"):
        ChainParams(2.0, stages=(Stage(teacher="bayes", loss="square"),))


def test_chain_results_follow_the_result_conventions():
    """converged a bool, one nit, success/status/message, rows as the teacher's and student's
    (observables named as in replica.observables, then the convergence columns)."""
    import json

    from replica.observables import OBSERVABLES
    from saddle.fixed_point import REPORT_COLUMNS

    sol = solve_chain(2.0, 0.3, 1.0, 0.1, [Stage(lam=0.1, loss="square"),
                                           Stage(lam=0.1, chi=0.5, loss="hinge")])  # fmt: skip
    assert sol.converged is True and sol.success is True and sol.status == 0
    assert sol.nit == sum(st.nit for st in sol.stages) > 0
    assert sol.message.startswith("converged")
    for st in sol.stages:
        assert st.converged is True and st.success is True and isinstance(st.nit, int)
        row = st.to_row()
        assert tuple(row)[-len(REPORT_COLUMNS):] == REPORT_COLUMNS
        for name in st.observables():
            assert name in OBSERVABLES or name[0] == "Q", name
        assert row["train_error"] == st.train_error_observed
    data = json.loads(json.dumps(sol.to_dict()))
    assert data["nit"] == sol.nit and data["converged"] is True and data["status"] == 0
    assert data["stages"][1]["params"]["loss"] == "hinge"
    assert data["stages"][1]["Q0"] == sol[1].overlaps[0] == data["stages"][1]["overlaps"][0]


# ----------------------------------------------------------------------------------------------
# Exact limits
# ----------------------------------------------------------------------------------------------

TODAY = ChainQuadrature(split=False, outer=64, inner=24)


@pytest.mark.parametrize("loss", ["logistic", "square", "hinge"])
@pytest.mark.parametrize("alpha, rho, lam", [(2.0, 0.3, 0.1), (3.0, 0.2, 0.05)])
def test_stage0_is_todays_teacher(loss, alpha, rho, lam):
    """Stage 0 of any loss of the table is the ridge teacher of replica.teacher (same rules:
    96 Gauss-Hermite nodes, split at the kink for the hinge)."""
    sol = solve_chain(alpha, rho, 1.0, 0.0, [Stage(lam=lam, loss=loss)])[0]
    ref = solve_teacher(alpha, rho, 1.0, lam, loss=loss)
    assert sol.converged and ref.converged
    for a, b in [(sol.eps_g, ref.eps_g), (sol.m, ref.m), (sol.q, ref.q), (sol.b, ref.b),
                 (sol.V, ref.V), (sol.mhat, ref.mhat), (sol.Qhat[0], ref.Qhat),
                 (sol.Vhat, ref.Vhat), (sol.train_loss, ref.train_loss),
                 (sol.train_error_true, ref.train_error),
                 (sol.train_error_observed, ref.train_error)]:  # fmt: skip
        assert abs(a - b) <= 1e-10 * max(1.0, abs(b)), (a, b)


@pytest.mark.parametrize("teacher_loss, loss, eta, lam_s, chi, temperature", [
    ("logistic", "square", 0.5, 0.05, 0.5, 2.0),
    ("square", "square", 1.0, 0.1, 0.3, 1.0),
    ("logistic", "hinge", 0.5, 0.05, 0.5, 2.0),
    ("hinge", "logistic", 0.5, 0.1, 0.7, 1.5),
    ("hinge", "hinge", 0.5, 0.1, 0.5, 2.0),
])  # fmt: skip
def test_reduces_to_student_of_each_loss(teacher_loss, loss, eta, lam_s, chi, temperature):
    """K = 1, flip = 0 with any label losses is solve_student(loss=..., teacher_loss=...).
    A smooth stage 0: today's rules. A hinge stage 0: the chain's default rules (split at the
    kinks in z_0) against the student's kink-split z1 rule, different rules that both resolve
    the kinks. To 1e-10 (measured <= 5.4e-11)."""
    stages = [Stage(lam=0.1, loss=teacher_loss),
              Stage(eta=eta, lam=lam_s, chi=chi, temperature=temperature, loss=loss)]
    hinge_teacher = teacher_loss == "hinge"
    sol = solve_chain(2.0, 0.3, 1.0, 0.0, stages, quadrature=None if hinge_teacher else TODAY)
    st = sol[1]
    ref = solve_student(2.0, 0.3, 1.0, eta, 0.1, lam_s, chi, temperature, loss=loss,
                        teacher_loss=teacher_loss)  # fmt: skip
    assert st.converged and ref.converged
    pairs = [(st.eps_g, ref.eps_g), (st.m, ref.m), (st.q, ref.q), (st.overlaps[0], ref.S),
             (st.V, ref.V), (st.responses[0], ref.V_S), (st.b, ref.b),
             (st.train_loss, ref.train_loss), (st.train_ce, ref.train_ce),
             (st.train_error_observed, ref.train_error), (st.Vhat_cross[0], ref.Vhat_x),
             (st.Qhat[0], ref.Qhat_x), (st.mhat, ref.mhat), (st.Vhat, ref.Vhat)]  # fmt: skip
    for a, b in pairs:
        assert abs(a - b) <= 1e-10 * max(1.0, abs(b)), (a, b)


def test_kinked_stage_is_resolved_by_refinement():
    """A hinge stage strongly correlated with its square teacher (eta = 1): its z_1 average
    has near-kinks in z_0, where the parent rules are split (_resolve_kinks); refining the
    rules moves eps_g by < 1e-7 and the overlaps by < 1e-5."""
    stages = [Stage(lam=0.1, loss="square"),
              Stage(lam=0.1, chi=0.5, temperature=2.0, loss="hinge")]
    sol = solve_chain(2.0, 0.3, 1.0, 0.0, stages, error_estimate=True)
    assert sol.converged
    assert sol.errors[1]["eps_g"] < 1e-7 and sol.errors[1]["q"] < 1e-5, sol.errors[1]


@pytest.mark.parametrize(
    "eta, lam_s, chi, temperature",
    [(0.5, 0.01, 0.7, 2.0), (1.0, 0.1, 1.0, 1.0), (0.3, 0.1, 0.4, 0.5)],
)
def test_reduces_to_student(eta, lam_s, chi, temperature):
    """K = 1, flip = 0 is today's solve_student to 1e-10 (same rules: docs/chains.md)."""
    stages = [Stage(lam=0.1), Stage(eta=eta, lam=lam_s, chi=chi, temperature=temperature)]
    sol = solve_chain(2.0, 0.3, 1.0, 0.0, stages, quadrature=TODAY)[1]
    ref = solve_student(2.0, 0.3, 1.0, eta, 0.1, lam_s, chi, temperature)
    assert ref.quadrature.size == 64  # the Gauss-Hermite rule (no adaptive z1 rule here)
    pairs = [(sol.eps_g, ref.eps_g), (sol.m, ref.m), (sol.q, ref.q), (sol.overlaps[0], ref.S),
             (sol.V, ref.V), (sol.responses[0], ref.V_S), (sol.b, ref.b),
             (sol.train_loss, ref.train_loss), (sol.train_ce, ref.train_ce),
             (sol.train_error_observed, ref.train_error), (sol.Vhat_cross[0], ref.Vhat_x),
             (sol.Qhat[0], ref.Qhat_x), (sol.mhat, ref.mhat), (sol.Vhat, ref.Vhat)]  # fmt: skip
    for a, b in pairs:
        assert abs(a - b) <= 1e-10 * max(1.0, abs(b)), (a, b)


@pytest.mark.parametrize("loss", ["logistic", "square", "hinge"])
def test_bayes_stage0_reduces_to_bayes_student(loss):
    stages = [Stage(teacher="bayes"), Stage(eta=0.5, lam=0.05, chi=0.8, temperature=1.5,
                                            loss=loss)]  # fmt: skip
    sol = solve_chain(2.0, 0.3, 1.0, 0.0, stages, quadrature=TODAY)
    ref = solve_student(2.0, 0.3, 1.0, 0.5, 0.1, 0.05, 0.8, 1.5, teacher="bayes", loss=loss)
    assert abs(sol[0].eps_g - ref.eps_bo_teacher) < 1e-12
    for a, b in [(sol[1].eps_g, ref.eps_g), (sol[1].q, ref.q), (sol[1].overlaps[0], ref.S),
                 (sol[1].b, ref.b)]:  # fmt: skip
        assert abs(a - b) <= 1e-9 * max(1.0, abs(b)), (a, b)


def test_chi_zero_is_direct_training():
    """A stage with chi = 0 ignores its upstream: it is stage 0 trained alone."""
    chain = solve_chain(2.0, 0.3, 1.0, 0.1, [
        Stage(lam=0.1), Stage(eta=0.6, lam=0.05, chi=1.0, target="hard"),
        Stage(eta=0.5, lam=0.2, chi=0.0)])  # fmt: skip
    alone = solve_chain(2.0, 0.3, 1.0, 0.1, [Stage(eta=0.5, lam=0.2)])[0]
    for key in ("eps_g", "m", "q", "b", "train_loss", "train_error_observed"):
        assert abs(getattr(chain[2], key) - getattr(alone, key)) < 1e-8, key
    assert max(abs(v) for v in chain[2].responses) < 1e-10
    assert max(abs(v) for v in chain[2].Vhat_cross) < 1e-10


@pytest.mark.parametrize("loss", ["square", "hinge"])
def test_chi_one_ignores_the_label_loss(loss):
    """Pure distillation (chi = 1) has no label term: the stage's loss does not matter."""
    stages = [Stage(lam=0.1), Stage(eta=0.7, lam=0.1, chi=1.0, temperature=2.0)]
    ref = solve_chain(2.0, 0.3, 1.0, 0.1, stages)[1]
    stages[1] = Stage(eta=0.7, lam=0.1, chi=1.0, temperature=2.0, loss=loss)
    sol = solve_chain(2.0, 0.3, 1.0, 0.1, stages)[1]
    for key in ("eps_g", "m", "q", "b", "train_loss", "train_error"):
        assert getattr(sol, key) == getattr(ref, key), key


def test_sparse_stage_is_rescaled_full_problem():
    """A stage on eta N coordinates at (alpha, delta, lam) is the full problem at
    (alpha/eta, delta/eta, lam/eta^2) (docs/saddle_point.md §7): same error and m."""
    eta = 0.4
    sparse = solve_chain(2.0, 0.3, 1.0, 0.0, [Stage(eta=eta, lam=0.05)])[0]
    full = solve_teacher(2.0 / eta, 0.3, 1.0 / eta, 0.05 / eta**2)
    assert abs(sparse.eps_g - full.eps_g) < 1e-10
    assert abs(sparse.m - full.m) < 1e-9


CHAINS_FOR_BOUNDS = [
    (2.0, 0.5, 1.0, 0.3, [Stage(lam=0.01)] + [Stage(lam=0.01, chi=1.0, target="hard")] * 2),
    (0.7, 0.3, 1.0, 0.0, [Stage(eta=0.3, lam=0.05), Stage(eta=1.0, lam=0.01, chi=0.9,
                                                            temperature=3.0)]),
    (5.0, 0.2, 0.5, 0.1, [Stage(teacher="bayes"), Stage(eta=0.5, lam=1e-3, chi=1.0,
                                                         target="hard")]),
]  # fmt: skip


@pytest.mark.parametrize("alpha, rho, delta, flip, stages", CHAINS_FOR_BOUNDS)
def test_never_below_bayes_optimal(alpha, rho, delta, flip, stages):
    sol = solve_chain(alpha, rho, delta, flip, stages)
    mixture = GaussianMixture(rho, delta)
    for st in sol.stages:
        assert st.converged
        bound = bayes_optimal_error(alpha, mixture, eta=st.stage.eta)
        assert st.eps_g >= bound - 1e-9
        assert abs(st.eps_bo - bound) < 1e-15


def test_stein_and_forward_derivatives_agree():
    """The two forms of the cross-conjugates (docs/chains.md) on a smooth chain."""
    stages = [Stage(lam=0.1), Stage(lam=0.05, chi=0.7, temperature=2.0), Stage(lam=0.1, chi=1.0)]
    a = solve_chain(2.0, 0.3, 1.0, 0.1, stages)
    b = solve_chain(2.0, 0.3, 1.0, 0.1, stages, quadrature=ChainQuadrature(stein=True))
    for sa, sb in zip(a.stages, b.stages, strict=True):
        assert abs(sa.eps_g - sb.eps_g) < 1e-7
        np.testing.assert_allclose(sa.Vhat_cross, sb.Vhat_cross, atol=1e-6)


# ----------------------------------------------------------------------------------------------
# Theory against simulation (N = 1000, 24 seeds, 3 standard errors)
# ----------------------------------------------------------------------------------------------

HARD = dict(chi=1.0, target="hard")
SIM_CHAINS = {
    "K2-hard-flip0.2": (2.0, 0.5, 1.0, 0.2, [Stage(lam=0.1), Stage(lam=0.1, **HARD),
                                               Stage(lam=0.1, **HARD)]),
    "K2-soft-flip0.1-rho0.3": (2.0, 0.3, 1.0, 0.1, [Stage(lam=0.1),
                                                     Stage(lam=0.05, chi=0.7, temperature=2.0),
                                                     Stage(lam=0.1, chi=1.0)]),
    "K3-hard-flip0.3": (2.0, 0.5, 1.0, 0.3, [Stage(lam=0.1)] + [Stage(lam=0.1, **HARD)] * 3),
    "K3-soft-flip0": (2.0, 0.3, 1.0, 0.0, [Stage(lam=0.1)]
                      + [Stage(lam=0.1, chi=0.8, temperature=1.5)] * 3),
    "weak-to-strong-soft": (2.0, 0.5, 1.0, 0.1, [Stage(eta=0.3, lam=0.1),
                                                  Stage(eta=1.0, lam=0.1, chi=1.0,
                                                        temperature=1.5)]),
    "weak-to-strong-hard-flip0.3": (2.0, 0.5, 1.0, 0.3, [Stage(eta=0.3, lam=0.05),
                                                          Stage(eta=1.0, lam=0.1, **HARD)]),
    "compression-bias-rho0.3": (2.0, 0.3, 1.0, 0.1, [
        Stage(lam=0.1), Stage(eta=0.5, lam=0.1, chi=0.8, target="hard", bias="inherit"),
        Stage(eta=0.5, lam=0.1, chi=0.5, bias="fixed", bias_value=-0.3)]),
    "bayes-hard-rho0.3": (2.0, 0.3, 1.0, 0.1, [Stage(teacher="bayes", eta=0.6),
                                                Stage(eta=1.0, lam=0.1, **HARD),
                                                Stage(eta=0.8, lam=0.1, **HARD)]),
    # Stages of other losses of the table (square labels; hinge labels, fitted as the limit of
    # smoothed hinges with dense Newton solves, hence N = 300 and more seeds).
    "square-K2-hard-flip0.2-rho0.3": (2.0, 0.3, 1.0, 0.2, [
        Stage(lam=0.1, loss="square"), Stage(lam=0.1, chi=0.5, target="hard", loss="square"),
        Stage(eta=0.6, lam=0.1, chi=0.8, temperature=2.0)]),
    "hinge-student-flip0.1": (2.0, 0.5, 1.0, 0.1, [
        Stage(lam=0.1), Stage(eta=0.6, lam=0.1, chi=0.5, temperature=2.0, loss="hinge")]),
    "hinge-teacher-hard-flip0.2-rho0.3": (2.0, 0.3, 1.0, 0.2, [
        Stage(lam=0.1, loss="hinge"), Stage(lam=0.1, **HARD)]),
    "square-hinge-inherit-weak-to-strong": (2.0, 0.3, 1.0, 0.1, [
        Stage(eta=0.5, lam=0.1, loss="square"),
        Stage(eta=1.0, lam=0.1, chi=0.7, target="hard", loss="hinge", bias="inherit"),
        Stage(eta=0.8, lam=0.1, chi=1.0, temperature=1.5)]),
}  # fmt: skip
# (N, seeds) of the simulations, (1000, 24) unless given.
SIM_SIZES = {"hinge-student-flip0.1": (300, 32), "hinge-teacher-hard-flip0.2-rho0.3": (300, 32),
             "square-hinge-inherit-weak-to-strong": (300, 32)}  # fmt: skip
OBSERVABLES = ("eps_g", "m", "q", "b", "train_loss", "train_ce", "train_error_observed",
               "train_error_true", "train_disagreement", "disagreement")  # fmt: skip


def theory_value(stage, key):
    if key.startswith("Q"):
        return stage.overlaps[int(key[1:])]
    return getattr(stage, key)


# Observables of the training set that the nested rules may not resolve (a stage strongly
# correlated with its predecessor makes P(h_k < 0 | z_<k) a near-step across the outer
# directions: docs/chains.md, "Accuracy"); everything else must always be resolved.
MAY_BE_UNRESOLVED = ("train_error_observed", "train_error_true", "train_disagreement")


def simulation(name, **kw):
    alpha, rho, delta, flip, stages = SIM_CHAINS[name]
    n, seeds = SIM_SIZES.get(name, (1000, 24))
    return simulate_chain(ChainParams(alpha, rho, delta, flip, tuple(stages)), n=n, seeds=seeds,
                          **kw)  # fmt: skip


def agreement_rows(name, sim=None):
    """``(stage, observable, theory, theory SE, sim mean, sim SE, z, quadrature error)``.

    The theory is solved with ``error_estimate=True``. An observable whose estimated
    quadrature error exceeds a third of the simulation's SE (only the training errors and
    disagreement of strongly correlated stages, docs/chains.md) is taken instead from the
    Monte-Carlo evaluation of the same theory (:func:`training_observables_mc`), with its SE
    in ``z = (sim - theory) / sqrt(SE_sim^2 + SE_theory^2)``.
    """
    alpha, rho, delta, flip, stages = SIM_CHAINS[name]
    theory = solve_chain(alpha, rho, delta, flip, stages, error_estimate=True)
    sim = sim or simulation(name)
    mc = None
    rows = []
    for k, st in enumerate(theory.stages):
        assert st.converged
        mean, sem = sim.mean[k], sim.sem[k]
        assert mean["converged"] == 1.0
        keys = [key for key in mean if key in OBSERVABLES or key.startswith("Q")]
        for key in keys:
            value, value_se = theory_value(st, key), 0.0
            if sem[key] == 0.0:  # a fixed bias, the same in theory and simulation
                assert abs(mean[key] - value) < 1e-12
                continue
            error = theory.errors[k].get(key)
            if error is not None and error > sem[key] / 3.0:
                assert key in MAY_BE_UNRESOLVED, (k, key, error)
                mc = mc or training_observables_mc(theory, samples=2**20, seed=1)
                value, value_se = mc[k][key]
            z = (mean[key] - value) / math.hypot(sem[key], value_se)
            rows.append((k, key, value, value_se, mean[key], sem[key], z, error))
    return rows, theory


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SIM_CHAINS))
def test_theory_matches_simulation(name):
    """3 SE at N = 1000, 24 seeds; and |eps_g error| <= 1e-6 by refinement (K <= 3)."""
    rows, theory = agreement_rows(name)
    assert len(theory.eps_g_errors) == len(theory.stages)
    assert max(theory.eps_g_errors) <= 1e-6, theory.eps_g_errors
    bad = [row for row in rows if abs(row[6]) > 3.0]
    assert not bad, "\n".join(f"stage{k} {key}: theory {t:.5f} sim {m:.5f} ({s:.5f}) z={z:.2f}"
                               for k, key, t, _, m, s, z, _ in bad)  # fmt: skip


HINGE_CHAINS = [name for name, chain in SIM_CHAINS.items()
                if any(s.loss == "hinge" for s in chain[4])]  # fmt: skip


@pytest.mark.parametrize("name", HINGE_CHAINS)
def test_hinge_stages_have_reached_their_limit(name):
    """The simulated hinge stages are minimisers of smoothed hinges down to width 3e-4
    (simulations.estimators): stopping one width earlier (1e-3) moves the observables of seed 0
    by d, so the error left at 3e-4 is ~d/2; it must be below a tenth of the standard error of
    the means of the theory-vs-simulation test (from its N and seeds: the SE of
    test_theory_matches_simulation at N = 300, 32 seeds, measured once: m, q, b, eps_g SE
    >= 0.006, 0.009, 0.009, 0.0015)."""
    from simulations.chains import chain_seed
    from simulations.estimators import HINGE_WIDTHS

    alpha, rho, delta, flip, stages = SIM_CHAINS[name]
    params = ChainParams(alpha, rho, delta, flip, tuple(stages))
    n = SIM_SIZES[name][0]
    full = chain_seed(params, n, 0, 0)
    early = chain_seed(params, n, 0, 0, hinge_widths=HINGE_WIDTHS[:-1])
    floor = {"m": 0.006, "q": 0.009, "b": 0.009, "eps_g": 0.0015}
    for k, stage in enumerate(stages):
        if stage.loss != "hinge":
            continue
        assert 0.0 < full[k]["width_change"] < 1e-2
        for key, se in floor.items():
            assert 0.5 * abs(full[k][key] - early[k][key]) < 0.1 * se, (k, key)


@pytest.mark.parametrize("stages", [
    [Stage(lam=0.1), Stage(lam=0.1, **HARD)],
    [Stage(lam=0.1, loss="hinge"), Stage(eta=0.6, lam=0.1, chi=0.5, target="hard",
                                         loss="hinge")],
    [Stage(lam=0.1, loss="square"), Stage(lam=0.1, chi=0.5, target="hard", loss="square")],
], ids=["logistic", "hinge-hinge", "square-square"])  # fmt: skip
def test_training_observables_mc_matches_quadrature(stages):
    """Where the nested rules resolve them, Monte Carlo over the theory's fields agrees."""
    sol = solve_chain(2.0, 0.5, 1.0, 0.2, stages)
    mc = training_observables_mc(sol, samples=2**17, seed=3)
    for st, row in zip(sol.stages, mc, strict=True):
        for key, (value, se) in row.items():
            assert abs(value - getattr(st, key)) <= 4.0 * se + 1e-12, (st.index, key)


if __name__ == "__main__":  # python -m tests.test_chain [CACHE_DIR]: the agreement table
    import json
    import os
    import pickle

    cache = sys.argv[1] if len(sys.argv) > 1 else None
    for chain in SIM_CHAINS:
        sim = None
        path = os.path.join(cache, f"{chain}.pkl") if cache else None
        if path and os.path.exists(path):
            with open(path, "rb") as fh:
                sim = pickle.load(fh)
        sim = sim or simulation(chain)
        if path:
            with open(path, "wb") as fh:
                pickle.dump(sim, fh)
        print(f"## {chain}: {json.dumps(SIM_CHAINS[chain][:4])}")
        rows, theory = agreement_rows(chain, sim)
        print("quadrature error of eps_g by refinement:", theory.eps_g_errors)
        for k, key, t, tse, m, s, z, e in rows:
            ttext = f"{t:10.5f}" + (f" ({tse:.5f}, MC)" if tse else "")
            etext = f"quad.err {e:.1e}" if e is not None else ""
            print(f"stage{k} {key:22s} {ttext} {m:10.5f} ({s:.5f}) z={z:6.2f} {etext}")
        sys.stdout.flush()


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------


def test_cli_chain_json(capsys):
    import json

    from replica.cli import main

    argv = ["chain", "--alpha", "2", "--rho", "0.5", "--flip", "0.2", "--stage", "lam=0.1",
            "--stage", "lam=0.1,chi=1,target=hard", "--json"]  # fmt: skip
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["stages"]) == 2
    ref = solve_chain(2.0, 0.5, 1.0, 0.2, [Stage(lam=0.1), Stage(lam=0.1, chi=1.0,
                                                                 target="hard")])  # fmt: skip
    for key in ("eps_g", "m", "q", "b", "converged"):
        assert data["stages"][1][key] == getattr(ref[1], key)
    assert data["stages"][1]["overlaps"] == list(ref[1].overlaps)


@pytest.mark.parametrize("stage, message", [
    ("lam=0.1,chi=2", "stage1.chi must lie in [0, 1]"),
    ("lam=0.1,colour=red", "stage1.colour: unknown key"),
    ("lam=abc", "stage1.lam: bad value"),
    ("lam=0.1,loss=cubic", "stage1.loss must be one of"),
    ("lam=0,loss=square", "stage1.lam must be > 0 for the square loss"),
])  # fmt: skip
def test_cli_chain_errors_name_stage_and_key(capsys, stage, message):
    from replica.cli import main

    assert main(["chain", "--stage", "lam=0.1", "--stage", stage]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_cli_chain_toml(tmp_path, capsys):
    import json

    from replica.cli import main

    path = tmp_path / "chain.toml"
    path.write_text('[[stage]]\nlam = 0.1\n\n[[stage]]\nlam = 0.1\nchi = 1.0\ntarget = "hard"\n')
    assert main(["chain", "--alpha", "2", "--flip", "0.2", "--stages-file", str(path),
                 "--json"]) == 0  # fmt: skip
    data = json.loads(capsys.readouterr().out)
    assert data["params"]["stages"][1]["target"] == "hard"
    path.write_text('[[stage]]\nlam = -1\n')
    assert main(["chain", "--stages-file", str(path)]) == 2
    assert "stage0.lam" in capsys.readouterr().err


def test_cli_chain_losses(tmp_path, capsys):
    """``--stage loss=...`` and the TOML key ``loss`` give the chain of those losses."""
    import json

    from replica.cli import main

    ref = solve_chain(2.0, 0.5, 1.0, 0.1, [Stage(lam=0.1, loss="square"),
                                           Stage(lam=0.2, chi=0.5, loss="hinge")])  # fmt: skip
    argv = ["chain", "--flip", "0.1", "--stage", "loss=square,lam=0.1", "--stage",
            "lam=0.2,chi=0.5,loss=hinge", "--json"]  # fmt: skip
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    path = tmp_path / "chain.toml"
    path.write_text('[[stage]]\nlam = 0.1\nloss = "square"\n\n'
                    '[[stage]]\nlam = 0.2\nchi = 0.5\nloss = "hinge"\n')  # fmt: skip
    assert main(["chain", "--flip", "0.1", "--stages-file", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["stages"] == data["stages"]
    assert [s["params"]["loss"] for s in data["stages"]] == ["square", "hinge"]
    for k in (0, 1):
        assert data["stages"][k]["eps_g"] == ref[k].eps_g
    path.write_text('[[stage]]\nlam = 0.1\n\n[[stage]]\nlam = 0.0\nchi = 0.5\nloss = "hinge"\n')
    assert main(["chain", "--stages-file", str(path)]) == 2
    assert "stage1.lam must be > 0 for the hinge loss" in capsys.readouterr().err


def test_cli_chain_vary(capsys):
    from replica.cli import main

    argv = ["chain", "--flip", "0.2", "--stage", "lam=0.1", "--stage", "lam=0.1,chi=1,target=hard",
            "--vary", "stage1.lam", "--values", "0.05,0.5", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("stage1.lam,stage,eps_g")
    assert len(lines) == 1 + 2 * 2
    ref = solve_chain(2.0, 0.5, 1.0, 0.2, [Stage(lam=0.1), Stage(lam=0.5, chi=1.0, target="hard")])
    value, stage, eps = lines[-1].split(",")[:3]
    assert (float(value), int(stage)) == (0.5, 1) and abs(float(eps) - ref[1].eps_g) < 1e-9
    assert main(["chain", "--stage", "lam=0.1", "--vary", "stage0.lam", "--values", "1,-1"]) == 2
    assert "stage0.lam" in capsys.readouterr().err


def test_cli_chain_simulate_json(capsys):
    import json

    from replica.cli import main

    argv = ["chain", "simulate", "--flip", "0.1", "--stage", "lam=0.1", "--stage",
            "lam=0.1,chi=1,target=hard,bias=inherit", "--n", "60", "--seeds", "2", "--json",
            "--quiet"]  # fmt: skip
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["n"] == 60 and data["seeds"] == 2 and len(data["stages"]) == 2
    stage1 = data["stages"][1]
    assert stage1["mean"]["b"] == data["stages"][0]["mean"]["b"]  # inherited, per seed
    assert stage1["mean"]["converged"] == 1.0


# ----------------------------------------------------------------------------------------------
# Per-stage optimal ridge (implicit function theorem)
# ----------------------------------------------------------------------------------------------

OPT_STAGES = [Stage(lam=0.1), Stage(lam=0.2, chi=1.0, target="hard"),
              Stage(lam=0.3, chi=0.8, temperature=2.0)]  # fmt: skip


def _eps_at(k, lam, stages=OPT_STAGES):
    import dataclasses

    chain = list(stages)
    chain[k] = dataclasses.replace(chain[k], lam=lam)
    return solve_chain(2.0, 0.3, 1.0, 0.2, chain, tol=1e-13)[k].eps_g


@pytest.mark.parametrize("k", [0, 1, 2])
def test_lam_gradient_matches_finite_differences(k):
    eps, grad, _ = stage_eps_g_and_gradient(2.0, 0.3, 1.0, 0.2, OPT_STAGES, k)
    lam, h = OPT_STAGES[k].lam, 1e-4
    fd = (_eps_at(k, lam * (1 + h)) - _eps_at(k, lam * (1 - h))) / (2 * h * lam)
    assert abs(eps - _eps_at(k, lam)) < 1e-10
    assert abs(grad - fd) <= 1e-5 * abs(fd)


@pytest.mark.slow
def test_stagewise_optimal_lams_are_minima():
    sol, lams, results = optimise_stage_lams(2.0, 0.3, 1.0, 0.2, OPT_STAGES)
    assert sol.converged and all(r.success for r in results)
    chain = [s.stage for s in sol.stages]
    for k, lam in enumerate(lams):
        best = sol[k].eps_g
        for factor in (0.9, 1.1):
            assert best <= _eps_at(k, lam * factor, chain) + 1e-12


def test_cli_chain_optimise_json(capsys):
    import json

    from replica.cli import main

    argv = ["chain", "optimise", "--rho", "0.3", "--flip", "0.2", "--stage", "lam=0.1",
            "--json"]  # fmt: skip
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    lam = data["optimal_lam"][0]
    assert data["optimiser_success"] == [True]
    eps = data["stages"][0]["eps_g"]
    for factor in (0.9, 1.1):
        assert eps <= solve_chain(2.0, 0.3, 1.0, 0.2, [Stage(lam=lam * factor)])[0].eps_g


# ----------------------------------------------------------------------------------------------
# Symbolic check of the prior recursion for K = 2 (docs/chains.md, "Prior")
# ----------------------------------------------------------------------------------------------


def test_prior_recursion_matches_symbolic_derivation():
    """Per coordinate, the zero-temperature entropic term of stage k is
    max_w [-(lam_k + Vhat_k) w^2 / 2 + (mhat_k v + xi_k - sum_j Vhat_kj w_j) w], solved in
    stage order; sympy derives the stationary weights, their second moments over
    v ~ N(0, 1), xi ~ N(0, Qhat) and their responses d<w_k>/d xi_j on every block of nested
    supports, and the numeric block recursion of replica.chain._Prior must agree."""
    import sympy as sp

    from replica.chain import _Prior

    rng = np.random.default_rng(7)
    K1 = 3
    etas = [1.0, 0.45, 0.8]
    mhat = rng.uniform(0.2, 1.0, K1)
    Vhat = rng.uniform(0.5, 2.0, K1)
    lam = rng.uniform(0.05, 0.5, K1)
    Vx = np.tril(rng.uniform(-0.6, 0.6, (K1, K1)), -1)
    A = rng.standard_normal((K1, K1))
    Qhat = A @ A.T + K1 * np.eye(K1)
    delta = 0.7

    v = sp.Symbol("v")
    xi = sp.symbols("xi0:3")
    ws = sp.symbols("w0:3")

    def block_weights(active):
        sol = {}
        for k in range(K1):
            if not active[k]:
                sol[ws[k]] = sp.Integer(0)
                continue
            field = mhat[k] * v + xi[k] - sum(Vx[k, j] * sol[ws[j]] for j in range(k))
            objective = -(lam[k] + Vhat[k]) * ws[k] ** 2 / 2 + field * ws[k]
            sol[ws[k]] = sp.solve(sp.diff(objective, ws[k]), ws[k])[0]
        return [sp.expand(sol[w]) for w in ws]

    def moment(e1, e2):
        """E[e1 e2] for e linear in (v, xi) with v ~ N(0, 1), xi ~ N(0, Qhat)."""
        a1, a2 = e1.coeff(v), e2.coeff(v)
        b1 = np.array([float(e1.coeff(x)) for x in xi])
        b2 = np.array([float(e2.coeff(x)) for x in xi])
        return float(a1 * a2) + b1 @ Qhat @ b2

    widths_edges = np.unique(np.concatenate([[0.0], etas]))
    expected_Q = np.zeros((K1, K1))
    expected_m = np.zeros(K1)
    expected_V = np.zeros((K1, K1))
    for lo, hi in zip(widths_edges[:-1], widths_edges[1:], strict=True):
        phi = hi - lo
        w = block_weights([eta >= hi - 1e-15 for eta in etas])
        for k in range(K1):
            expected_m[k] += phi * float(w[k].coeff(v))
            for j in range(K1):
                expected_Q[k, j] += phi * moment(w[k], w[j])
                expected_V[k, j] += phi * delta * float(sp.diff(w[k], xi[j]))

    prior = _Prior.empty(etas)
    for k in range(K1):
        a, B = prior.stage_rows(k, mhat[k], Vhat[k], lam[k], Vx[k, :k])
        m, Q, Bsum = prior.overlaps(k, a, B, Qhat[k, : k + 1])
        prior.store(k, a, B, Qhat[k, : k + 1])
        assert abs(m - expected_m[k]) < 1e-12
        np.testing.assert_allclose(Q, expected_Q[k, : k + 1], atol=1e-12)
        np.testing.assert_allclose(delta * Bsum, expected_V[k, : k + 1], atol=1e-12)


@pytest.mark.parametrize("name", ["chi", "temperature"])
def test_chi_and_temperature_gradients_match_finite_differences(name):
    import dataclasses

    stages = [Stage(lam=0.1), Stage(lam=0.2, chi=0.6, temperature=2.0)]
    _, grad, _ = stage_eps_g_and_gradient(2.0, 0.3, 1.0, 0.2, stages, 1, names=(name,))
    value = getattr(stages[1], name)
    h = 1e-4 * value

    def eps(v):
        chain = list(stages)
        chain[1] = dataclasses.replace(chain[1], **{name: v})
        return solve_chain(2.0, 0.3, 1.0, 0.2, chain, tol=1e-13)[1].eps_g

    fd = (eps(value + h) - eps(value - h)) / (2 * h)
    assert abs(grad[0] - fd) <= 1e-5 * abs(fd)


def test_optimise_lam_chi_temperature_is_a_minimum():
    import dataclasses

    stages = [Stage(lam=0.1), Stage(lam=0.2, chi=0.6, temperature=2.0)]
    sol, best, results = optimise_stages(2.0, 0.3, 1.0, 0.2, stages,
                                         over=("lam", "chi", "temperature"))  # fmt: skip
    assert sol.converged and all(r.success for r in results)
    opt = best[1]
    for name, factor in [("lam", 0.95), ("lam", 1.05), ("temperature", 0.95),
                         ("temperature", 1.05), ("chi", 0.98)]:  # fmt: skip
        chain = [best[0], dataclasses.replace(opt, **{name: getattr(opt, name) * factor})]
        assert sol[1].eps_g <= solve_chain(2.0, 0.3, 1.0, 0.2, chain)[1].eps_g + 1e-12
    assert sol[1].eps_g < sol[0].eps_g  # here an optimised soft stage beats its teacher


@pytest.mark.slow  # ~4 s
def test_stage_copying_its_predecessor_is_solved():
    """K = 3 hard pseudo-labels at chi = 1, small alpha (the optimal stage-0 ridge, lam 0.05
    after it): stage 2's training disagreement with its targets is ~1e-206, so stage 3 is
    trained on stage 2's own targets and copies it; its fixed point lies at L_33 -> 0, next to
    the boundary of the coordinates (Delta Q singular), where damped steps leave the domain.
    The solve used to spend its whole budget (and the continuation's) there (minutes): the
    Anderson history, after a reset, mixed stale columns of the ring buffer. Now it converges,
    to the copy (docs/chains.md, "Numerics")."""
    hard = Stage(lam=0.05, chi=1.0, target="hard")
    sol = solve_chain(1.0, 0.3, 1.0, 0.2, [Stage(lam=0.8574766255860938)] + [hard] * 3)
    assert sol.converged, sol.message
    assert sol[3].nit < 1000
    assert sol[2].train_disagreement < 1e-100
    for key in ("eps_g", "m", "q", "b", "V"):
        copy, original = getattr(sol[3], key), getattr(sol[2], key)
        assert abs(copy - original) < 1e-6 * max(1.0, abs(original)), key
