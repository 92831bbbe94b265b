"""Monte-Carlo drivers of simulations.monte_carlo (reproducibility, bookkeeping, validation)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from replica.errors import generalisation_error
from replica.params import ParameterError
from simulations.data import draw_cluster_direction, sample_mixture
from simulations.estimators import fit_ridge_logistic
from simulations.monte_carlo import (
    SimulationResult,
    _SeedData,
    simulate_student,
    simulate_student_curve,
    simulate_teacher,
    simulate_teacher_curve,
)

SMALL = {"n": 80, "n_test": 500}

TEACHER_OBSERVABLES = {
    "m",
    "q",
    "b",
    "eps_g",
    "eps_g_test",
    "train_loss",
    "train_error",
    "grad_norm",
    "nit",  # formerly "n_iter" (still answers as an alias); "converged" is now a flag, not a mean
}
STUDENT_OBSERVABLES = TEACHER_OBSERVABLES | {
    "S",
    "train_ce",
    "mse_outputs",
    "mse_preactivations",
    *(f"teacher_{name}" for name in TEACHER_OBSERVABLES),
}


def test_teacher_observables_and_error_bars():
    result = simulate_teacher(2.0, lam=0.1, seeds=3, **SMALL)
    assert isinstance(result, SimulationResult)
    assert set(result.mean) == set(result.sem) == TEACHER_OBSERVABLES
    assert len(result.per_seed) == 3 and result.seeds == 3 and result.n == 80
    for name in result.mean:
        values = np.array([row[name] for row in result.per_seed])
        assert result.mean[name] == pytest.approx(values.mean())
        assert result.sem[name] == pytest.approx(values.std(ddof=1) / math.sqrt(3), nan_ok=True)
    for row in result.per_seed:
        assert row["converged"] == 1.0 and row["grad_norm"] <= 1e-9
        expected = generalisation_error(row["m"], row["q"], row["b"], 0.2, 1.0)
        assert row["eps_g"] == pytest.approx(expected, rel=1e-12)
        assert 0.0 <= row["train_error"] < row["eps_g"] < 0.5
    json.dumps(result.to_dict())


def test_single_seed_has_nan_sem():
    result = simulate_teacher(2.0, seeds=1, **SMALL)
    assert all(math.isnan(value) for value in result.sem.values())


def test_same_seed_gives_identical_numbers_and_seeds_are_nested():
    kw = {"alpha": 1.5, "lam_s": 1e-3, **SMALL}
    five = simulate_student(seeds=5, seed=11, **kw)
    three = simulate_student(seeds=3, seed=11, **kw)
    again = simulate_student(seeds=3, seed=11, **kw)
    assert three.per_seed == again.per_seed
    assert three.per_seed == five.per_seed[:3]
    other = simulate_student(seeds=3, seed=12, **kw)
    assert other.per_seed[0]["m"] != three.per_seed[0]["m"]


@pytest.mark.parametrize("model", ["teacher", "student"])
def test_seed_k_uses_the_documented_seed_sequence_streams(model):
    """v from SeedSequence([s, k], spawn_key=(0,)) (the student's normalised on its support),
    samples from spawn_key=(1, N, M, bits(rho), bits(delta))."""
    if model == "teacher":
        result = simulate_teacher(2.0, lam=0.2, seeds=2, seed=5, **SMALL)
    else:
        result = simulate_student(2.0, lam_t=0.2, eta=0.25, seeds=2, seed=5, **SMALL)

    def rng(*key):
        return np.random.default_rng(np.random.SeedSequence([5, 1], spawn_key=key))

    def bits(x):
        return int(np.float64(x).view(np.uint64))

    v = draw_cluster_direction(80, rng(0), support=20 if model == "student" else None)
    sample = sample_mixture(80, 160, 0.2, 1.0, rng(1, 80, 160, bits(0.2), bits(1.0)), v=v)
    fit = fit_ridge_logistic(sample.X, sample.y, 0.2)
    prefix = "teacher_" if model == "student" else ""
    assert result.per_seed[1][f"{prefix}m"] == pytest.approx(fit.w @ v / 80, rel=1e-12)


def test_alpha_sweep_draws_independent_samples_with_a_shared_direction():
    data = _SeedData(0, 0)
    small, large = data.training(50, 2.0, 0.2, 1.0), data.training(50, 2.4, 0.2, 1.0)
    np.testing.assert_array_equal(small.v, large.v)
    noise_small = (small.X - np.outer(small.signs, small.v) / math.sqrt(50)).ravel()
    noise_large = (large.X - np.outer(large.signs, large.v) / math.sqrt(50)).ravel()
    assert not np.isin(noise_small[:100], noise_large).any()


def test_hinton_factor_in_student_training_loss():
    """At chi = 1, T^2 on the KD term is the same problem with lam_s / T^2, loss times T^2."""
    kw = {"alpha": 2.0, "chi": 1.0, "temperature": 2.0, "seeds": 1, **SMALL}
    hinton = simulate_student(lam_s=0.04, t2_scaling=True, **kw)
    plain = simulate_student(lam_s=0.01, t2_scaling=False, **kw)
    assert hinton.mean["m"] == pytest.approx(plain.mean["m"], abs=1e-7)
    assert hinton.mean["train_loss"] == pytest.approx(4 * plain.mean["train_loss"], rel=1e-7)


def test_student_observables():
    result = simulate_student(2.0, eta=0.5, chi=0.5, temperature=2.0, seeds=2, **SMALL)
    assert set(result.mean) == STUDENT_OBSERVABLES
    for row in result.per_seed:
        assert row["converged"] == row["teacher_converged"] == 1.0
        assert row["mse_preactivations"] > 0 and 0 < row["mse_outputs"] < 1
        assert row["q"] > 0 and row["teacher_q"] > 0
        assert abs(row["S"]) <= math.sqrt(row["q"] * row["teacher_q"])  # Cauchy-Schwarz
        expected = generalisation_error(row["m"], row["q"], row["b"], 0.2, 1.0)
        assert row["eps_g"] == pytest.approx(expected, rel=1e-12)


def test_student_run_contains_the_teacher_run_with_the_same_seed():
    """Same data when v is normalised the same way (eta = 1: one block, |v|^2 = N)."""
    teacher = simulate_teacher(2.0, lam=0.3, smoothing=0.1, seeds=2, **SMALL)
    student = simulate_student(2.0, eta=1.0, lam_t=0.3, smoothing=0.1, seeds=2, **SMALL)
    for name in TEACHER_OBSERVABLES:
        assert student.mean[f"teacher_{name}"] == pytest.approx(teacher.mean[name], rel=1e-12)


def test_full_student_reproduces_teacher_on_training_data():
    """eta = 1, chi = 1, T = 1, lam_s -> 0 (docs/saddle_point.md §7): h = h~ on the training set.

    With alpha > 1 the match of outputs fixes the weights; lam_s = 1e-8 leaves ~1e-7 offsets.
    """
    result = simulate_student(3.0, eta=1.0, chi=1.0, lam_s=1e-8, seeds=2, **SMALL)
    assert result.mean["mse_preactivations"] < 1e-10
    assert result.mean["m"] == pytest.approx(result.mean["teacher_m"], abs=1e-5)
    assert result.mean["S"] == pytest.approx(result.mean["teacher_q"], abs=1e-5)


def test_bayes_teacher():
    result = simulate_student(4.0, teacher="bayes", seeds=2, n=400, n_test=0)
    assert result.mean["teacher_m"] == pytest.approx(1.0, abs=0.15)
    assert result.mean["teacher_q"] == pytest.approx(1.25, abs=0.15)
    assert result.mean["teacher_b"] == pytest.approx(1.25 / 2 * math.log(0.25))
    assert math.isnan(result.mean["teacher_grad_norm"]) and result.mean["teacher_n_iter"] == 0
    assert math.isnan(result.mean["eps_g_test"])  # n_test = 0 skips the test set


def test_teacher_curve_matches_single_points_and_tabulates():
    values = [1.0, 2.0, 3.0]
    curve = simulate_teacher_curve("alpha", values, lam=0.05, seeds=2, seed=3, **SMALL)
    assert len(curve) == 3 and curve.values == values
    for value, point in zip(values, curve, strict=True):
        single = simulate_teacher(value, lam=0.05, seeds=2, seed=3, **SMALL)
        assert point.params == single.params
        for name in ("m", "q", "b", "eps_g", "train_loss"):
            assert point.mean[name] == pytest.approx(single.mean[name], abs=1e-6)
        assert point.mean["eps_g_test"] == single.mean["eps_g_test"]
    columns = curve.to_columns()
    assert columns["alpha"] == values and columns["lam"] == [0.05] * 3
    assert columns["seeds"] == [2] * 3
    for name in TEACHER_OBSERVABLES:
        assert len(columns[name]) == len(columns[f"{name}_sem"]) == 3
    json.dumps(curve.to_dict())


def test_student_curve_warm_starts_and_reuses_the_teacher():
    curve = simulate_student_curve("chi", [0.0, 0.5, 1.0], alpha=2.0, seeds=2, **SMALL)
    teacher_m = [point.mean["teacher_m"] for point in curve]
    assert teacher_m[0] == teacher_m[1] == teacher_m[2]
    assert [point.params["chi"] for point in curve] == [0.0, 0.5, 1.0]
    single = simulate_student(2.0, chi=1.0, seeds=2, **SMALL)
    assert curve[2].mean["eps_g"] == pytest.approx(single.mean["eps_g"], abs=1e-7)
    eta_curve = simulate_student_curve(
        "eta", [0.25, 1.0], alpha=2.0, seeds=1, progress=True, **SMALL
    )
    assert [point.mean["converged"] for point in eta_curve] == [1.0, 1.0]


@pytest.mark.parametrize(
    ("name", "call"),
    [
        ("alpha", lambda: simulate_teacher(0.0)),
        ("alpha", lambda: simulate_teacher(1e-4, n=100)),
        ("rho", lambda: simulate_teacher(1.0, rho=1.5)),
        ("delta", lambda: simulate_teacher(1.0, delta=-1)),
        ("lam", lambda: simulate_teacher(1.0, lam=-0.1)),
        ("smoothing", lambda: simulate_teacher(1.0, smoothing=0.5)),
        ("n", lambda: simulate_teacher(1.0, n=0)),
        ("n", lambda: simulate_teacher(1.0, n=10.5)),
        ("seeds", lambda: simulate_teacher(1.0, seeds=0)),
        ("seed", lambda: simulate_teacher(1.0, seed=-1)),
        ("n_test", lambda: simulate_teacher(1.0, n_test=-5)),
        ("progress", lambda: simulate_teacher(1.0, progress="yes")),
        ("eta", lambda: simulate_student(1.0, eta=0.0)),
        ("eta", lambda: simulate_student(1.0, eta=1.2)),
        ("eta", lambda: simulate_student(1.0, eta=1e-4, n=100)),
        ("lam_t", lambda: simulate_student(1.0, lam_t=-1.0)),
        ("lam_s", lambda: simulate_student(1.0, lam_s=math.inf)),
        ("chi", lambda: simulate_student(1.0, chi=1.1)),
        ("temperature", lambda: simulate_student(1.0, temperature=0.0)),
        ("t2_scaling", lambda: simulate_student(1.0, t2_scaling="no")),
        ("teacher", lambda: simulate_student(1.0, teacher="oracle")),
        ("vary", lambda: simulate_teacher_curve("chi", [0.1], alpha=1.0)),
        ("values", lambda: simulate_teacher_curve("lam", [], alpha=1.0)),
        ("values", lambda: simulate_teacher_curve("lam", 0.1, alpha=1.0)),
        ("alpha", lambda: simulate_teacher_curve("lam", [0.1])),
        ("lam", lambda: simulate_teacher_curve("lam", [0.1, -1.0], alpha=1.0)),
        ("lam_t", lambda: simulate_teacher_curve("alpha", [1.0], lam_t=0.1)),
    ],
)
def test_bad_inputs_raise_parameter_error_naming_the_parameter(name, call):
    with pytest.raises(ParameterError, match=rf"^{name}\b") as info:
        call()
    assert "\n" not in str(info.value)


# ----------------------------------------------------------------------------------------------
# Size guard and divergence detection (issue 13, items 8 and 10)
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, name",
    [(dict(alpha=1e6, n=50), "alpha"), (dict(alpha=1.0, n=200_000, n_test=0), "n")],
)
def test_simulation_too_large_for_memory_is_refused_before_allocating(kwargs, name):
    with pytest.raises(ParameterError, match=rf"^{name} = .* GiB") as info:
        simulate_teacher(seeds=2, **kwargs)
    assert "limit" in str(info.value)


def test_unregularised_separable_teacher_has_no_finite_solution():
    # alpha = 0.5 is far below the separability threshold (~4.8 at rho = 0.2, delta = 1).
    with pytest.warns(RuntimeWarning, match="no finite solution at 2 of 2 seeds"):
        result = simulate_teacher(0.5, lam=0.0, seeds=2, **SMALL)
    assert result.status == 3 and "no finite solution" in result.message
    assert result.mean["finite"] == 0.0 and result.mean["converged"] == 0.0
    assert math.isnan(result.mean["eps_g"]) and math.isnan(result.mean["q"])
    assert result.to_dict()["status"] == 3
    regularised = simulate_teacher(0.5, lam=1e-3, seeds=2, **SMALL)
    assert regularised.status == 0 and regularised.mean["finite"] == 1.0


def test_student_of_a_teacher_without_solution_has_none_unless_chi_is_zero():
    kw = dict(lam_t=0.0, lam_s=0.1, seeds=2, **SMALL)
    with pytest.warns(RuntimeWarning, match="no finite solution"):
        distilled = simulate_student(0.5, chi=0.5, **kw)
    assert distilled.status == 3 and math.isnan(distilled.mean["eps_g"])
    plain = simulate_student(0.5, chi=0.0, **kw)
    assert plain.mean["finite"] == 1.0 and plain.mean["converged"] == 1.0
    assert math.isnan(plain.mean["teacher_eps_g"]) and plain.mean["teacher_finite"] == 0.0
    assert 0.0 < plain.mean["eps_g"] < 0.5


def _blas_threads() -> int:
    from threadpoolctl import threadpool_info

    return max((i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"),
               default=1)  # fmt: skip


@pytest.mark.parametrize("simulate, model", [(simulate_teacher, "teacher"),
                                             (simulate_student, "student")])  # fmt: skip
def test_simulations_run_one_blas_thread_and_restore_the_callers(monkeypatch, simulate, model):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    import simulations.monte_carlo as mc

    seen = []
    point = mc._POINT_FUNCTIONS[model]

    def recording_point(*args):
        seen.append(_blas_threads())
        return point(*args)

    monkeypatch.setitem(mc._POINT_FUNCTIONS, model, recording_point)
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        if _blas_threads() != 2:
            pytest.skip("this BLAS cannot run two threads here")
        default = simulate(2.0, seeds=2, **SMALL)
        assert seen == [1, 1] and _blas_threads() == 2  # the caller's setting is restored
        seen.clear()
        threaded = simulate(2.0, seeds=2, blas_threads=None, **SMALL)
        assert seen == [2, 2]
        with pytest.raises(ParameterError, match="^blas_threads"):
            simulate(2.0, seeds=2, blas_threads=0, **SMALL)
        assert _blas_threads() == 2
    for name, value in default.mean.items():  # threads change BLAS rounding at most
        assert threaded.mean[name] == pytest.approx(value, rel=1e-8, abs=1e-10), name


def test_curve_simulations_take_blas_threads():
    pytest.importorskip("threadpoolctl")
    curve = simulate_teacher_curve("alpha", [1.5, 2.0], seeds=2, blas_threads=1, **SMALL)
    assert len(curve) == 2
    with pytest.raises(ParameterError, match="^blas_threads"):
        simulate_student_curve("alpha", [1.5], seeds=2, blas_threads=-1, **SMALL)


def test_chain_simulation_runs_one_blas_thread_and_restores_the_callers(monkeypatch):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    import simulations.chains as chains
    from replica.chain import ChainParams, Stage

    seen = []
    seed_run = chains.chain_seed

    def recording(*args, **kwargs):
        seen.append(_blas_threads())
        return seed_run(*args, **kwargs)

    monkeypatch.setattr(chains, "chain_seed", recording)
    params = ChainParams(2.0, stages=(Stage(), Stage(chi=1.0)))
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        if _blas_threads() != 2:
            pytest.skip("this BLAS cannot run two threads here")
        one = chains.simulate_chain(params, n=60, seeds=2)
        assert seen == [1, 1] and _blas_threads() == 2
        threaded = chains.simulate_chain(params, n=60, seeds=2, blas_threads=None)
        assert seen[2:] == [2, 2]
    for a, b in zip(one.mean, threaded.mean, strict=True):
        for name, value in a.items():
            assert b[name] == pytest.approx(value, rel=1e-8, abs=1e-10), name
