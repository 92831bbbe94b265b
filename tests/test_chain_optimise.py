"""Optimal hyper-parameters of chains (replica/chain_optimise.py): gradients through every
stage's fixed point against re-solved chains, the joint and stage-wise optima, the CLI."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from replica.chain import ChainParams, ChainQuadrature, Stage, solve_chain
from replica.chain_optimise import (
    _install,
    _new_solver,
    _solve_state,
    chain_eps_g_and_gradient,
    optimise_stages,
)

MIXTURE = (2.0, 0.3, 1.0, 0.2)  # alpha, rho, delta, flip
K2 = [Stage(lam=0.1), Stage(lam=0.2, chi=1.0, target="hard"),
      Stage(lam=0.3, chi=0.8, temperature=2.0)]  # fmt: skip
K1 = [Stage(lam=0.5), Stage(lam=0.1, chi=1.0, target="hard")]


def _resolved_eps(stages, j, name, value, target):
    chain = list(stages[: target + 1])
    chain[j] = dataclasses.replace(chain[j], **{name: value})
    return solve_chain(*MIXTURE, chain, tol=1e-13)[target].eps_g


def _resolved_derivative(stages, j, name, target, rel=1e-4):
    """Central differences of fully re-solved chains (three-point one-sided at chi = 1)."""
    v = getattr(stages[j], name)
    h = rel * v
    e = lambda u: _resolved_eps(stages, j, name, u, target)  # noqa: E731
    if name == "chi" and v + h > 1.0:
        return (3.0 * e(v) - 4.0 * e(v - h) + e(v - 2.0 * h)) / (2.0 * h)
    return (e(v + h) - e(v - h)) / (2.0 * h)


def _check_gradient(variables, target=2, step_error=False, stages=K2):
    g = chain_eps_g_and_gradient(*MIXTURE, stages, variables, target=target,
                                 step_error=step_error)  # fmt: skip
    reference = solve_chain(*MIXTURE, stages[: target + 1], tol=1e-13)[target].eps_g
    assert abs(g.eps_g - reference) < 1e-10
    for v, (j, name) in enumerate(variables):
        fd = _resolved_derivative(stages, j, name, target=target)
        assert abs(g.gradient[v] - fd) <= 1e-6 * abs(fd), (j, name, g.gradient[v], fd)
        if step_error:
            # the upstream differences' step error (at their rounding floor) is a tenth of that
            assert g.step_error[v] <= 1e-7 * abs(fd)


def test_chain_gradient_matches_resolved_differences():
    # The last stage's eps_g through both earlier fixed points: stage 0's ridge and a hard
    # stage's chi at its bound 1 (one-sided stencil).
    _check_gradient([(0, "lam"), (1, "chi")])


@pytest.mark.slow
def test_chain_gradient_every_parameter_with_step_error():
    _check_gradient([(0, "lam"), (1, "lam"), (2, "lam"), (1, "chi"), (2, "temperature")],
                    step_error=True)  # fmt: skip


def test_intermediate_target_gradient():
    _check_gradient([(0, "lam"), (1, "lam")], target=1)


@pytest.mark.parametrize("stages", [
    [Stage(lam=0.3), Stage(lam=0.2, chi=0.7, bias="inherit")],  # b_0 moves with lam_0
    [Stage(teacher="bayes"), Stage(lam=0.2, chi=1.0, target="hard")],  # no stage-0 variable
    [Stage(lam=0.1, loss="square"), Stage(lam=0.2, chi=0.5, target="hard", loss="square")],
], ids=["inherited-bias", "bayes-teacher", "square-losses"])  # fmt: skip
def test_gradient_with_inherited_bias_bayes_teacher_other_loss(stages):
    bayes = stages[0].teacher == "bayes"
    variables = [(1, "lam"), (1, "chi")] if bayes else [(0, "lam"), (1, "lam")]
    _check_gradient(variables, target=1, stages=stages)


def test_install_reproduces_the_solver():
    # _install (the re-installation of a stage at a given state, used by the tangents) leaves
    # the solver exactly as solve_stage does.
    params = ChainParams(*MIXTURE, tuple(K2))
    reference = _new_solver(params, ChainQuadrature(), 1e-12)
    mine = _new_solver(params, ChainQuadrature(), 1e-12)
    for k in range(2):
        x = reference.solve_stage(k).state
        np.testing.assert_allclose(_solve_state(mine, k, K2[k], None).x, x, rtol=1e-10,
                                   atol=1e-12)  # fmt: skip
        _install(mine, k, K2[k], x, {}, last=False)
        for name in ("cfg", "weight", "Z", "F", "DF", "h", "dh"):
            np.testing.assert_array_equal(getattr(mine.level, name),
                                          getattr(reference.level, name))  # fmt: skip
        for name in ("A", "B", "C"):
            np.testing.assert_array_equal(getattr(mine.prior, name), getattr(reference.prior, name))
        np.testing.assert_array_equal(mine.L, reference.L)


def test_parameter_errors():
    from replica.params import ParameterError

    with pytest.raises(ParameterError, match="stage0.chi"):
        chain_eps_g_and_gradient(*MIXTURE, K1, [(0, "chi")])
    with pytest.raises(ParameterError, match="target"):
        optimise_stages(*MIXTURE, K1, jointly=True, target=3)
    with pytest.raises(ParameterError, match="over"):
        optimise_stages(*MIXTURE, K1, over=("eta",))
    with pytest.raises(ParameterError, match="stage1.loss"):
        optimise_stages(*MIXTURE, [Stage(lam=0.5), Stage(lam=0.1, chi=0.5, loss="hinge")])


def test_joint_optimum_is_a_minimum_and_beats_stagewise():
    # One hard stage on a noisy teacher: jointly, the teacher is deliberately
    # under-regularised (its own eps_g worse) and the student ends up better than stage-wise
    # (measured 0.24640 against 0.25409) and than the best teacher (0.24804).
    sol, best, (res,) = optimise_stages(*MIXTURE, K1, jointly=True)
    assert sol.converged and res.success
    stagewise, best_sw, _ = optimise_stages(*MIXTURE, K1)
    assert sol[1].eps_g < stagewise[1].eps_g - 5e-3
    assert sol[1].eps_g < stagewise[0].eps_g
    assert best[0].lam < 0.5 * best_sw[0].lam and sol[0].eps_g > stagewise[0].eps_g
    for j in range(2):
        for factor in (0.95, 1.05):
            chain = list(best)
            chain[j] = dataclasses.replace(chain[j], lam=best[j].lam * factor)
            assert sol[1].eps_g <= solve_chain(*MIXTURE, chain)[1].eps_g + 1e-12


def test_cli_chain_optimise_jointly(capsys):
    from replica.cli import main

    argv = ["chain", "optimise", "--jointly", "--alpha", "2", "--rho", "0.3", "--flip", "0.2",
            "--stage", "lam=0.5", "--stage", "lam=0.1,chi=1,target=hard", "--json"]  # fmt: skip
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["jointly"] is True and data["target"] == 1
    assert data["optimiser_success"] == [True]
    lams = data["optimal_lam"]
    eps = data["stages"][1]["eps_g"]
    chain = [Stage(lam=lams[0]), Stage(lam=lams[1], chi=1.0, target="hard")]
    assert abs(eps - solve_chain(*MIXTURE, chain)[1].eps_g) < 1e-9
    assert all(math.isfinite(v) for v in lams)


@pytest.mark.parametrize("argv, message", [
    (["optimise", "--jointly", "--target", "2"], "target"),
    (["optimise", "--target", "1"], "target"),
    (["optimise", "--jointly", "--target", "-1"], "target"),
    (["solve", "--jointly"], "jointly"),
])  # fmt: skip
def test_cli_optimise_errors_are_one_line(capsys, argv, message):
    from replica.cli import main

    stages = ["--stage", "lam=0.5", "--stage", "lam=0.1,chi=1,target=hard"]
    try:
        code = main(["chain", *argv, *stages])
    except SystemExit as exc:  # argparse's own type errors
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


@pytest.mark.slow
def test_joint_two_hard_stages():
    # K = 2 hard self-distillation, jointly for the last stage: no better than one hard stage
    # jointly (the middle stage takes a small ridge at which it reproduces the teacher's hard
    # labels on every training sample and passes them on; eps_g is flat in its ridge), and
    # better than stage-wise.
    stages = [Stage(lam=0.1)] + [Stage(lam=0.1, chi=1.0, target="hard")] * 2
    joint, best, (res,) = optimise_stages(*MIXTURE, stages, jointly=True)
    one, _, _ = optimise_stages(*MIXTURE, stages[:2], jointly=True)
    assert joint.converged and res.success
    assert joint[2].eps_g < 0.2541 - 5e-3  # stage-wise: 0.25411 (docs/chains.md)
    assert abs(joint[2].eps_g - one[1].eps_g) < 1e-6
    assert joint[1].train_disagreement < 1e-6
    for j in (0, 2):
        for factor in (0.95, 1.05):
            chain = list(best)
            chain[j] = dataclasses.replace(chain[j], lam=best[j].lam * factor)
            assert joint[2].eps_g <= solve_chain(*MIXTURE, chain)[2].eps_g + 1e-12


@pytest.mark.slow
def test_joint_optimum_against_simulation():
    # The joint optimum of one hard stage (teacher under-regularised) against finite-N
    # simulations: both stages' eps_g, and the student's gain over the best teacher alone
    # (lam_0 = 1.098, stage-wise), paired on the same samples (same seeds), within 3 SE.
    from simulations.chains import chain_seed

    lam0, lam1, best_teacher = 0.3185, 0.4315, 1.0978
    hard = dict(chi=1.0, target="hard")
    chain = ChainParams(*MIXTURE, (Stage(lam=lam0), Stage(lam=lam1, **hard)))
    alone = ChainParams(*MIXTURE, (Stage(lam=best_teacher),))
    theory = solve_chain(*MIXTURE, chain.stages)
    theory_alone = solve_chain(*MIXTURE, alone.stages)[0].eps_g
    runs = [(chain_seed(chain, 1000, 0, i), chain_seed(alone, 1000, 0, i)) for i in range(24)]
    eps = np.array([[r[0]["eps_g"], r[1]["eps_g"], a[0]["eps_g"]] for r, a in runs])
    sem = eps.std(axis=0, ddof=1) / math.sqrt(len(runs))
    predicted = [theory[0].eps_g, theory[1].eps_g, theory_alone]
    for j in range(3):
        assert abs(eps[:, j].mean() - predicted[j]) <= 3.0 * sem[j], (j, eps[:, j].mean())
    gain = eps[:, 1] - eps[:, 2]  # measured -0.0015 +- 0.0005 against -0.0016
    gain_se = gain.std(ddof=1) / math.sqrt(gain.size)
    assert abs(gain.mean() - (predicted[1] - predicted[2])) <= 3.0 * gain_se
