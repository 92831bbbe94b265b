"""The teacher protocol and the registry of teacher kinds (replica.stages)."""

import numpy as np
import pytest

from replica.cli import build_parser
from replica.prior import sparse_equivalent_problem
from replica.stages import TEACHER_KINDS, Stage
from replica.student import bayes_teacher_solution, solve_student
from replica.teacher import solve_teacher
from saddle.quadrature import gauss_hermite
from simulations import monte_carlo


def test_every_stage_implements_the_protocol():
    student = solve_student(3.0, lam_s=0.1, chi=0.5)
    for stage in (solve_teacher(3.0), bayes_teacher_solution(3.0, 0.2, 1.0), student):
        assert isinstance(stage, Stage)


def test_a_stage_not_fitted_to_the_samples_has_no_self_fit():
    z = gauss_hermite(12).nodes
    bayes = bayes_teacher_solution(2.0, 0.3, 1.5)
    fields = bayes.node_fields(z)
    width = np.sqrt(bayes.params.delta * bayes.q)
    omega = np.array([s * bayes.m + bayes.b + width * z for s in (1.0, -1.0)])
    assert np.array_equal(fields.h, omega)
    assert np.all(fields.f == 0.0) and np.all(fields.r == 1.0) and np.all(fields.g == 0.0)


@pytest.mark.parametrize("loss", ["logistic", "square", "hinge"])
def test_student_node_fields_average_to_its_conjugates(loss):
    sol = solve_student(3.0, lam_s=0.1, chi=0.5, temperature=2.0, loss=loss)
    fields = sol.node_fields(sol.quadrature.nodes, sol.quadrature_z2.nodes)
    w = np.multiply.outer(sol.quadrature.weights, sol.quadrature_z2.weights)
    rho = sol.params.rho
    esf = rho * np.sum(w * fields.f[0]) - (1 - rho) * np.sum(w * fields.f[1])
    if loss != "hinge":  # (the hinge's own direction is averaged on a rule split at its kink)
        assert esf * sol.params.alpha == pytest.approx(sol.mhat, rel=1e-10)
    assert np.all((fields.r >= 0.0) & (fields.r <= 1.0))
    assert np.allclose(fields.g * sol.V, 1.0 - fields.r, atol=1e-12)


@pytest.mark.parametrize("loss", ["square", "hinge"])
def test_chi_zero_student_is_the_teacher_of_the_sparse_equivalent_problem(loss):
    # The student's own direction is z2 (split at the hinge's kink for each z1 node), the
    # teacher's z1: the same physics through two different averages.
    alpha, delta, eta, lam = 3.0, 1.0, 0.5, 0.1
    student = solve_student(alpha, delta=delta, eta=eta, lam_s=lam, chi=0.0, loss=loss)
    a_eq, d_eq, l_eq = sparse_equivalent_problem(alpha, delta, eta, lam)
    teacher = solve_teacher(a_eq, delta=d_eq, lam=l_eq, loss=loss)
    assert student.converged and teacher.converged
    assert student.m == pytest.approx(teacher.m, rel=1e-8)
    assert student.b == pytest.approx(teacher.b, rel=1e-8, abs=1e-10)
    assert eta * student.q == pytest.approx(teacher.q, rel=1e-8)
    assert student.eps_g == pytest.approx(teacher.eps_g, rel=1e-8)
    assert student.train_loss == pytest.approx(teacher.train_loss, rel=1e-8)
    assert student.train_error == pytest.approx(teacher.train_error, rel=1e-8)


def test_one_registry_of_teacher_kinds_serves_theory_simulation_and_cli():
    assert set(monte_carlo._TEACHER_BUILDERS) == set(TEACHER_KINDS)
    parser = build_parser()
    args = parser.parse_args(["student", "--teacher", "bayes"])
    assert args.teacher == "bayes"
    for name, kind in TEACHER_KINDS.items():
        sol = solve_student(3.0, teacher=name, lam_s=0.1)
        assert sol.converged and (sol.teacher.V > 0.0) == kind.fitted
