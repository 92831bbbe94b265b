"""Valid inputs that used to raise or return misleading statuses (issue 13, items 2-4)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from replica.params import ParameterError
from replica.prior import ridge_student_prior, ridge_teacher_prior
from replica.student import MIN_TEMPERATURE, solve_student, student_units
from replica.teacher import homotopy_path, solve_teacher

# lam = 0 teacher with label smoothing above the separability threshold: from the cold start
# the iteration wandered to q ~ 1e14..1e77, V^ underflowed to 0 and the prior divided by 0.
SMOOTHED_TEACHER = dict(alpha=3.7159795573601886, rho=0.7251504655201906,
                        delta=0.053297777361944215, smoothing=0.11075135119243257)  # fmt: skip


def test_prior_rejects_a_vanishing_curvature_instead_of_dividing_by_zero():
    assert all(math.isnan(v) for v in ridge_teacher_prior(1.0, 1.0, 0.0, 0.0, 1.0))
    out = ridge_student_prior(1.0, 1.0, 0.0, 0.1, 0.1, 0.0, 0.5, 1.0, 1.0, 2.0, 0.5)
    assert all(math.isnan(v) for v in out)


def test_homotopy_path_reaches_zero_ridge():
    path = homotopy_path(0.0)
    assert path[0] == 1.0 and path[-2] == pytest.approx(1e-10) and path[-1] == 0.0
    assert all(a > b for a, b in zip(path[:-1], path[1:], strict=True))
    assert homotopy_path(1e-3) == pytest.approx([1.0, 0.1, 0.01, 1e-3])


def test_unregularised_smoothed_teacher_converges_to_the_vanishing_ridge_limit():
    sol = solve_teacher(lam=0.0, **SMOOTHED_TEACHER)
    assert sol.converged
    near = solve_teacher(lam=1e-10, **SMOOTHED_TEACHER)
    assert sol.eps_g == pytest.approx(near.eps_g, rel=1e-6)
    assert sol.q == pytest.approx(near.q, rel=1e-6)


@pytest.mark.parametrize("teacher", ["ridge", "bayes"])
def test_unregularised_student_above_interpolation_converges(teacher):
    # lam_s = 0 with alpha > eta: a unique finite minimiser exists (soft targets).
    kw = dict(alpha=1.5, rho=0.3, delta=0.5, eta=0.5, lam_t=0.05, chi=0.7, teacher=teacher)
    sol = solve_student(lam_s=0.0, **kw)
    assert sol.converged
    near = solve_student(lam_s=1e-10, **kw)
    assert sol.eps_g == pytest.approx(near.eps_g, abs=1e-7)


def test_student_without_distillation_ignores_a_teacher_without_finite_solution():
    # lam_t = 0 on a separable sample: the teacher has no finite solution (status 3), but at
    # chi = 0 the student never uses it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sol = solve_student(1.0, lam_t=0.0, chi=0.0, lam_s=0.01)
    assert sol.teacher.status == 3
    assert sol.status == 0 and sol.converged
    assert math.isnan(sol.S) and math.isnan(sol.mse_outputs)
    other = solve_student(1.0, lam_t=1e-3, chi=0.0, lam_s=0.01)
    assert sol.eps_g == pytest.approx(other.eps_g, abs=1e-9)
    assert sol.q == pytest.approx(other.q, rel=1e-8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        distilled = solve_student(1.0, lam_t=0.0, chi=0.3, lam_s=0.01)
    assert distilled.status == 3


@pytest.mark.parametrize("temperature", [1e-6, 5e-3, 0.0, -1.0, math.inf, math.nan])
def test_temperature_below_the_documented_minimum_is_refused(temperature):
    with pytest.raises(ParameterError, match="temperature"):
        solve_student(2.0, temperature=temperature)


def test_iteration_runs_in_units_of_the_temperature():
    from replica.student import StudentParams

    assert np.array_equal(student_units(StudentParams(2.0, temperature=3.0)), np.ones(6))
    units = student_units(StudentParams(2.0, temperature=0.01))
    assert units[1] == pytest.approx(1e-4) and units[0] == pytest.approx(1e-2)
    # Hinton's scaling with label term: the label term sets the scale.
    assert np.array_equal(
        student_units(StudentParams(2.0, temperature=0.01, chi=0.5, t2_scaling=True)), np.ones(6)
    )
    # q ~ T^2: in absolute terms the residual of the start would already be below 1e-10.
    sol = solve_student(2.0, temperature=0.3)
    assert sol.converged and sol.iterations > 10
    assert 10.0 < sol.q / 0.3**2 < 1e3
    assert MIN_TEMPERATURE == 1e-2
