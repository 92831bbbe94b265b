"""Student theory: exact identities (docs/saddle_point.md §7) and the paper's qualitative checks
(paper Sec. 5)."""

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from replica.params import ParameterError
from replica.student import StudentParams, solve_student
from replica.teacher import solve_teacher


@pytest.mark.parametrize(
    "alpha, eta, lam_s", [(3.0, 0.5, 0.2), (4.5, 0.3, 0.05), (1.2, 0.7, 1e-2)]
)
def test_chi_zero_is_ridge_logistic_on_the_support(alpha, eta, lam_s):
    # {eta, alpha, delta, lam_s} is the teacher problem at (alpha/eta, delta/eta, lam_s/eta^2),
    # with the same m and b and a teacher-problem q equal to eta times the student's q.
    student = solve_student(alpha, eta=eta, lam_s=lam_s, chi=0.0, n_nodes=(96, 24))
    teacher = solve_teacher(alpha / eta, delta=1.0 / eta, lam=lam_s / eta**2)
    assert student.converged
    assert student.eps_g == pytest.approx(teacher.eps_g, abs=1e-8)
    assert student.m == pytest.approx(teacher.m, abs=1e-7)
    assert student.b == pytest.approx(teacher.b, abs=1e-7)
    assert eta * student.q == pytest.approx(teacher.q, rel=1e-7)


def test_full_student_distilling_at_unit_temperature_reproduces_its_teacher():
    # eta = 1, chi = 1, T = 1, lam_s -> 0: the deviation is linear in lam_s.
    gaps = []
    for lam_s in (1e-4, 1e-5, 1e-6):
        s = solve_student(3.0, eta=1.0, lam_t=0.1, lam_s=lam_s, chi=1.0)
        t = s.teacher
        gaps.append(max(abs(s.m - t.m), abs(s.q - t.q), abs(s.S - t.q), abs(s.eps_g - t.eps_g)))
    assert gaps[-1] < 1e-4
    assert gaps[0] / gaps[1] == pytest.approx(10.0, rel=0.05)
    assert gaps[1] / gaps[2] == pytest.approx(10.0, rel=0.05)


def test_student_never_beats_its_bayes_optimal_bound():
    for teacher in ("ridge", "bayes"):
        for alpha in (1.0, 3.0, 6.0):
            for chi in (0.0, 0.5, 1.0):
                s = solve_student(alpha, lam_t=0.1, lam_s=0.05, chi=chi, teacher=teacher)
                assert s.converged
                assert s.eps_g >= s.eps_bo_student - 1e-12


def test_cauchy_schwarz_and_consistency_of_observables():
    s = solve_student(4.5, chi=0.5, lam_s=0.2, temperature=2.0)
    assert s.S**2 <= s.q * s.teacher.q
    assert s.q >= s.m**2 / 0.5  # |v_support|^2 = eta N
    assert 0.0 <= s.train_error <= 1.0 and s.mse_outputs > 0 and s.mse_preactivations > 0
    d = s.to_dict()
    assert set(d) == {"params", "teacher", "student", "eps_bo_teacher", "eps_bo_student"}
    for key in ("eps_g", "m", "q", "S", "V", "b", "train_loss", "train_error", "mse_outputs",
                "mse_preactivations", "converged", "nit"):
        assert key in d["student"]


def test_hinton_scaling_is_the_identity_at_unit_temperature_and_not_otherwise():
    plain = solve_student(3.0, chi=0.5, lam_s=0.1, temperature=1.0)
    scaled = solve_student(3.0, chi=0.5, lam_s=0.1, temperature=1.0, t2_scaling=True)
    assert scaled.eps_g == plain.eps_g
    hot = solve_student(3.0, chi=0.5, lam_s=0.1, temperature=2.0)
    hot_scaled = solve_student(3.0, chi=0.5, lam_s=0.1, temperature=2.0, t2_scaling=True)
    assert abs(hot.eps_g - hot_scaled.eps_g) > 1e-4


def test_bayes_teacher_has_no_self_fit_response():
    s = solve_student(4.5, teacher="bayes", chi=1.0, lam_s=0.05)
    assert s.teacher.V == 0.0 and s.V_S == 0.0 and s.Qhat_x == 0.0
    assert s.teacher.eps_g == pytest.approx(s.eps_bo_teacher, abs=1e-14)
    assert s.Vhat_x != 0.0  # the targets still depend on the sample through h~


def test_fig2_distillation_from_a_regularised_teacher_beats_the_unregularised_student():
    for alpha in (2.0, 3.0, 4.5, 6.0, 8.0):
        unregularised = solve_student(alpha, chi=0.0, lam_s=1e-4).eps_g
        kd = {lt: solve_student(alpha, chi=1.0, lam_t=lt, lam_s=1e-4).eps_g
              for lt in (1e-2, 1e-1, 1.0)}  # fmt: skip
        assert kd[1e-2] < unregularised and kd[1e-1] < unregularised
        if alpha >= 4.5:
            assert kd[1e-1] < kd[1e-2] and kd[1e-1] < kd[1.0]


def _best_direct_ridge(alpha: float) -> float:
    res = minimize_scalar(
        lambda x: solve_student(alpha, lam_s=float(np.exp(x)), chi=0.0).eps_g,
        bounds=(np.log(1e-3), np.log(10.0)), method="bounded", options={"xatol": 1e-4},
    )  # fmt: skip
    return float(res.fun)


def test_fig3_regimes_at_alpha_4_5():
    # lam_t = 0.1. Over-regularised lam_s = 0.5: best chi = 0. Properly regularised 0.2: an
    # interior optimal chi matching the best direct ridge. Under-regularised 0.1: KD helps,
    # most at chi = 1, and approaches (without beating) the best direct ridge.
    chis = np.linspace(0.0, 1.0, 21)
    best = _best_direct_ridge(4.5)
    curves = {ls: np.array([solve_student(4.5, lam_t=0.1, lam_s=ls, chi=c).eps_g for c in chis])
              for ls in (0.5, 0.2, 0.1)}  # fmt: skip
    assert np.argmin(curves[0.5]) == 0
    assert 0 < np.argmin(curves[0.2]) < len(chis) - 1
    assert curves[0.2].min() == pytest.approx(best, abs=2e-4)
    assert curves[0.1][-1] < curves[0.1][0]
    for curve in curves.values():
        assert curve.min() >= best - 1e-4


def test_fig4_bayes_teacher_nearly_closes_the_gap():
    # With a small student ridge (erratum: ~0.05, not lam_s -> 0) distilling the Bayes-optimal
    # proxy beats the optimally ridge-regularised student and nearly reaches the BO bound.
    for alpha in (4.5, 8.0, 12.0):
        kd = solve_student(alpha, teacher="bayes", chi=1.0, lam_s=0.05)
        best = _best_direct_ridge(alpha)
        assert kd.eps_bo_student < kd.eps_g < best
        assert (kd.eps_g - kd.eps_bo_student) < 0.25 * (best - kd.eps_bo_student)


@pytest.mark.parametrize("alpha", [1.5, 4.5, 7.5])
@pytest.mark.parametrize("eps", [0.05, 0.25, 0.45])
def test_fig9_label_smoothing_is_inherited_exactly(alpha, eps):
    # T = 1, chi = 1 from a teacher trained on smoothed labels = training on them directly,
    # up to O(lam_t) (teacher stationarity turns the KD gradient into the direct one).
    kd = solve_student(alpha, lam_t=1e-5, lam_s=1e-5, chi=1.0, smoothing=eps)
    direct = solve_student(alpha, lam_t=1e-5, lam_s=1e-5, chi=0.0, smoothing=eps)
    assert kd.converged and direct.converged
    assert abs(kd.eps_g - direct.eps_g) < 3e-5


def test_fig9_equivalence_breaks_at_higher_temperature():
    kd = solve_student(1.5, lam_t=1e-5, lam_s=1e-5, chi=1.0, smoothing=0.05, temperature=2.0)
    direct = solve_student(1.5, lam_t=1e-5, lam_s=1e-5, chi=0.0, smoothing=0.05)
    assert abs(kd.eps_g - direct.eps_g) > 1e-3


def test_teacher_solution_reuse_and_validation():
    t = solve_teacher(3.0, lam=0.1)
    a = solve_student(3.0, lam_t=0.1, teacher_solution=t)
    b = solve_student(3.0, lam_t=0.1)
    assert a.eps_g == pytest.approx(b.eps_g, abs=1e-9)
    with pytest.raises(ParameterError, match="teacher_solution"):
        solve_student(3.0, lam_t=0.2, teacher_solution=t)
    with pytest.raises(ParameterError, match="eta"):
        StudentParams(3.0, eta=0.0)
    with pytest.raises(ParameterError, match="chi"):
        StudentParams(3.0, chi=1.5)
    with pytest.raises(ParameterError, match="temperature"):
        StudentParams(3.0, temperature=0.0)
    with pytest.raises(ParameterError, match="teacher"):
        StudentParams(3.0, teacher="oracle")


def _node_fields_by_python_loop(sol, z1, z2):
    # The student's fields node by node through the loss table's scalar proximal map
    # (StudentSolution.node_fields before it became one numba kernel).
    import math

    from replica.losses import LOSS_KINDS, kd_target, mixture_prox

    p, tq = sol.params, sol.teacher.q
    teacher = sol.teacher.node_fields(z1)
    kind, c, k, T = LOSS_KINDS[p.loss], 1.0 - p.chi, p.kd_weight, p.temperature
    sd_1 = math.sqrt(p.delta) * sol.S / math.sqrt(tq)
    sd_2 = math.sqrt(p.delta * max(sol.q - sol.S**2 / tq, 0.0))
    out = np.empty((4, 2, z1.size, z2.size))
    for cls, (s, target) in enumerate(((1.0, p.targets[0]), (-1.0, p.targets[1]))):
        for i in range(z1.size):
            t = kd_target(teacher.h[cls, i], T)
            centre = s * sol.m + sol.b + sd_1 * z1[i] + sol.V_S * teacher.f[cls, i]
            h = centre
            for j in range(z2.size):
                omega = centre + sd_2 * z2[j]
                h, d, g, _ = mixture_prox(kind, omega, sol.V, s, target, c, k, T, t, h)
                out[:, cls, i, j] = h, (h - omega) / sol.V, 1.0 / d, g
    return out


@pytest.mark.parametrize("options", [
    {"loss": "logistic", "smoothing": 0.1},
    {"loss": "square", "t2_scaling": True},
    {"loss": "hinge", "teacher": "bayes"},
])  # fmt: skip
def test_student_node_fields_kernel_matches_the_scalar_proximal_map(options):
    sol = solve_student(3.0, lam_s=0.1, chi=0.6, temperature=2.0, **options)
    z1 = np.linspace(-4.0, 4.0, 17)
    z2 = np.concatenate([sol.quadrature_z2.nodes, [0.3, -5.0]])
    fields = sol.node_fields(z1, z2)
    expected = _node_fields_by_python_loop(sol, z1, z2)
    for got, want in zip(fields, expected, strict=True):
        assert got.shape == (2, z1.size, z2.size)
        np.testing.assert_allclose(got, want, rtol=0.0, atol=1e-12)
