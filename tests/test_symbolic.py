"""The sympy layer: derived saddle-point equations against docs/saddle_point.md and the numeric
code."""

import math

import numpy as np
import pytest
import sympy as sp

from replica.errors import bayes_optimal_error, bayes_optimal_overlaps
from replica.losses import kd_curvature as student_curvature
from replica.losses import kd_loss, kd_loss_cross_derivative
from replica.params import GaussianMixture
from replica.prior import ridge_student_prior, ridge_teacher_prior
from replica.student import solve_student
from replica.symbolic import (
    STUDENT_PRIOR_ARGS,
    TEACHER_PRIOR_ARGS,
    Expectation,
    paper_student_entropic_terms,
    ridge_entropic_term,
    student_entropic_term,
    student_saddle_point,
    teacher_saddle_point,
)
from replica.symbolic import closed_forms as cf
from replica.symbolic import symbols as sy
from replica.symbolic.expectation import integrate_by_parts, single_expectation
from replica.symbolic.moreau import moreau_envelope, proximal_point
from replica.teacher import solve_teacher
from saddle.prox import prox_square

RNG_SEED = 20210501


def _rng():
    return np.random.default_rng(RNG_SEED)


def _same_average(derived: sp.Expr, expected_integrand: sp.Expr, prefactor: sp.Expr) -> bool:
    """``derived == prefactor * E[expected_integrand]`` as an identity of integrands."""
    difference = single_expectation(sp.expand(derived / prefactor)) - expected_integrand
    return sp.cancel(difference) == 0


# ---------------------------------------------------------------------------------------------
# Prior side: derived by differentiation, lambdified, against replica.prior (numba)
# ---------------------------------------------------------------------------------------------


def test_teacher_prior_matches_numba_to_1e12():
    derived = teacher_saddle_point().prior_function(TEACHER_PRIOR_ARGS)
    rng = _rng()
    for _ in range(200):
        mhat, Qhat, Vhat, lam, delta = rng.uniform(0.01, 5.0, size=5)
        lam = 0.0 if rng.random() < 0.1 else lam
        ours = np.array(derived(mhat, Qhat, Vhat, lam, delta))
        numba = np.array(ridge_teacher_prior(mhat, Qhat, Vhat, lam, delta))
        np.testing.assert_allclose(ours, numba, rtol=1e-12, atol=1e-14)


@pytest.mark.slow
def test_student_prior_matches_numba_to_1e12():
    derived = student_saddle_point().prior_function(STUDENT_PRIOR_ARGS)
    rng = _rng()
    for k in range(300):
        mhat, Qhat, Vhat, lam, delta, m_t, V_t = rng.uniform(0.01, 5.0, size=7)
        Qhat_x, Vhat_x = rng.uniform(-2.0, 2.0, size=2)
        eta = rng.uniform(0.05, 1.0)
        q_t = m_t**2 + rng.uniform(0.01, 5.0)
        V_t = 0.0 if k % 10 == 0 else V_t  # the Bayes-optimal proxy teacher has V~ = 0
        args = (mhat, Qhat, Vhat, Qhat_x, Vhat_x, lam, eta, delta, m_t, q_t, V_t)
        ours = np.array(derived(*args))
        numba = np.array(ridge_student_prior(*args))
        np.testing.assert_allclose(ours, numba, rtol=1e-12, atol=1e-13)


def test_student_prior_is_the_spec_formula():
    prior = student_saddle_point().prior
    D = sy.lam + sy.Vhat
    cross = sy.mhat * sy.m_t + sy.Qhat_x * sy.V_t / sy.Delta  # m^ m~ + Q^x / D~
    spec = {
        sy.m: sy.eta * (sy.mhat - sy.Vhat_x * sy.m_t) / D,
        sy.S: sy.eta * (cross - sy.Vhat_x * sy.q_t) / D,
        sy.q: sy.eta
        * (sy.mhat**2 + sy.Qhat - 2 * sy.Vhat_x * cross + sy.Vhat_x**2 * sy.q_t)
        / D**2,
        sy.V: sy.eta * sy.Delta / D,
        sy.V_S: -sy.eta * sy.Vhat_x * sy.V_t / D,
    }
    for name, expr in spec.items():
        assert sp.simplify(prior[name] - expr) == 0, name


def test_entropic_terms_closed_form_and_paper_forms():
    teacher = ridge_entropic_term(sy.mhat, sy.Qhat, sy.Vhat, sy.lam)
    assert sp.simplify(teacher - (sy.mhat**2 + sy.Qhat) / (2 * (sy.lam + sy.Vhat))) == 0  # Eq. 48
    student = student_entropic_term()
    for name, paper in paper_student_entropic_terms().items():
        assert sp.simplify(student - paper) == 0, name


# ---------------------------------------------------------------------------------------------
# Channel side: conjugates derived by differentiation + integration by parts
# ---------------------------------------------------------------------------------------------


def test_teacher_channel_is_the_spec_formula():
    sp_t = teacher_saddle_point()
    ad = sy.alpha * sy.Delta
    assert _same_average(sp_t.channel[sy.mhat_t], sy.s * sy.f_t, sy.alpha)
    assert _same_average(sp_t.channel[sy.Qhat_t], sy.f_t**2, ad)
    assert _same_average(sp_t.channel[sy.Vhat_t], sy.a_t / (1 + sy.a_t * sy.V_t), ad)
    assert sp.simplify(sp_t.bias - sy.f_t) == 0


def test_student_channel_is_the_spec_formula():
    sp_s = student_saddle_point()
    ad = sy.alpha * sy.Delta
    a, a_t, c, f, f_t = sy.a, sy.a_t, sy.c, sy.f, sy.f_t
    coupling = (c - a * a_t * sy.V_S) / ((1 + a_t * sy.V_t) * (1 + a * sy.V))
    assert _same_average(sp_s.channel[sy.mhat], sy.s * f, sy.alpha)
    assert _same_average(sp_s.channel[sy.Qhat], f**2, ad)
    assert _same_average(sp_s.channel[sy.Vhat], a / (1 + a * sy.V), ad)
    assert _same_average(sp_s.channel[sy.Qhat_x], f * f_t, ad)
    assert _same_average(sp_s.channel[sy.Vhat_x], coupling, ad)
    assert sp.simplify(sp_s.bias - f) == 0


def test_latex_output():
    tex = student_saddle_point().latex()
    assert tex.startswith("\\begin{aligned}") and tex.endswith("\\end{aligned}")
    for piece in (r"\hat{V}^{\times}", r"\mathbb{E}", r"\tilde{V}", r"V_{S}"):
        assert piece in tex


def test_integration_by_parts():
    z = sy.z
    assert integrate_by_parts(Expectation(z**4), [z]) == 3
    g = sp.Function("g")
    assert integrate_by_parts(Expectation(z * g(z)), [z]) == Expectation(sp.diff(g(z), z))


# ---------------------------------------------------------------------------------------------
# Closed forms
# ---------------------------------------------------------------------------------------------


def test_kd_loss_and_curvatures_match_numba():
    loss = sp.lambdify((sy.h, sy.p, sy.h_t, sy.chi, sy.T, sy.kd_weight), cf.kd_loss(), "math")
    a_expr, c_expr = cf.kd_curvatures()
    curv = sp.lambdify((sy.h, sy.chi, sy.kd_weight, sy.T), a_expr, "math")
    cross = sp.lambdify((sy.h_t, sy.T, sy.kd_weight), c_expr, "math")
    rng = _rng()
    for _ in range(200):
        h, h_t = rng.uniform(-8, 8, size=2)
        p, chi = rng.uniform(0, 1, size=2)
        T = rng.uniform(0.3, 6.0)
        kappa = chi * T**2 if rng.random() < 0.5 else chi
        assert loss(h, p, h_t, chi, T, kappa) == pytest.approx(
            kd_loss(h, p, h_t, chi, T, kappa), rel=1e-12, abs=1e-13
        )
        assert curv(h, chi, kappa, T) == pytest.approx(
            student_curvature(h, chi, kappa, T), rel=1e-12, abs=1e-15
        )
        assert cross(h_t, T, kappa) == pytest.approx(
            kd_loss_cross_derivative(h_t, T, kappa), rel=1e-12, abs=1e-15
        )


def test_square_loss_prox():
    omega, V = sy.omega, sp.Symbol("V", positive=True)
    h_star = proximal_point(cf.square_loss(), omega, V)
    assert sp.simplify(h_star - (omega + V * sy.s) / (1 + V)) == 0
    envelope = moreau_envelope(cf.square_loss(), omega, V)
    assert sp.simplify(envelope - (omega - sy.s) ** 2 / (2 * (1 + V))) == 0
    numeric = sp.lambdify((omega, V, sy.s), h_star, "math")
    for args in [(0.3, 2.0, 1.0), (-1.7, 0.05, -1.0), (4.0, 30.0, 1.0)]:
        assert numeric(*args) == pytest.approx(prox_square(args[0], args[1], 1.0, args[2]), 1e-14)


@pytest.mark.slow
@pytest.mark.parametrize(
    "alpha, rho, delta, lam", [(0.5, 0.2, 1.0, 0.1), (3.0, 0.3, 0.5, 1.0), (6.0, 0.5, 2.0, 0.02)]
)
def test_square_loss_teacher_closed_form(alpha, rho, delta, lam):
    solution = cf.square_loss_teacher_fixed_point()
    values = {sy.alpha: alpha, sy.rho: rho, sy.Delta: delta, sy.lam_t: lam}
    V_star = float(solution[sy.V_t].subs(values))
    exact = {k: float(v.subs(values).subs(sy.V_t, V_star)) for k, v in solution.items()}
    mp = float(cf.marchenko_pastur_susceptibility().subs(values))
    assert exact[sy.V_t] == pytest.approx(mp, rel=1e-13)
    t = solve_teacher(alpha, rho, delta, lam, loss="square")
    assert t.converged
    for name, numeric in [(sy.V_t, t.V), (sy.m_t, t.m), (sy.q_t, t.q), (sy.b_t, t.b)]:
        assert numeric == pytest.approx(exact[name], rel=1e-8, abs=1e-10), name


def test_optimal_bias_and_bayes_overlaps():
    m_bo, q_bo = cf.hebbian_overlaps()
    b_bo = cf.optimal_bias().subs({sy.m: m_bo, sy.q: q_bo})
    numeric = sp.lambdify((sy.alpha, sy.rho, sy.Delta), (m_bo, q_bo, b_bo), "math")
    for args in [(1.0, 0.2, 1.0), (4.5, 0.35, 0.3), (10.0, 0.6, 2.0)]:
        assert numeric(*args) == pytest.approx(bayes_optimal_overlaps(*args), rel=1e-13)


def test_bayes_optimal_error_matches_numeric_and_spec_table():
    full = sp.lambdify((sy.alpha, sy.rho, sy.Delta), cf.bayes_optimal_error(), "math")
    sparse = sp.lambdify(
        (sy.alpha, sy.rho, sy.Delta, sy.eta), cf.bayes_optimal_error(sparse=True), "math"
    )
    rng = _rng()
    for _ in range(50):
        alpha, delta = rng.uniform(0.1, 10, size=2)
        rho, eta = rng.uniform(0.05, 0.95), rng.uniform(0.1, 1.0)
        mixture = GaussianMixture(rho, delta)
        assert full(alpha, rho, delta) == pytest.approx(
            bayes_optimal_error(alpha, mixture), rel=1e-12
        )
        assert sparse(alpha, rho, delta, eta) == pytest.approx(
            bayes_optimal_error(alpha, mixture, eta=eta), rel=1e-12
        )
    table = {1: (0.15814, 0.18616, 0.23975), 3: (0.13302, 0.17211, 0.19324)}  # docs/model.md §3.3
    for alpha, (teacher, student, balanced) in table.items():
        assert full(alpha, 0.2, 1.0) == pytest.approx(teacher, abs=6e-6)
        assert sparse(alpha, 0.2, 1.0, 0.5) == pytest.approx(student, abs=6e-6)
        assert full(alpha, 0.5, 1.0) == pytest.approx(balanced, abs=6e-6)


def test_chi_zero_equivalence_symbolic():
    for name, residual in cf.chi_zero_equivalence().items():
        assert sp.simplify(residual) == 0, name


def test_chi_zero_equivalence_numeric():
    alpha, delta, eta, lam = 2.0, 1.0, 0.5, 0.05
    s = solve_student(alpha, 0.2, delta, eta, lam_t=0.1, lam_s=lam, chi=0.0)
    t = solve_teacher(alpha / eta, 0.2, delta / eta, lam / eta**2)
    assert s.converged and t.converged
    assert s.eps_g == pytest.approx(t.eps_g, abs=1e-8)
    assert s.m == pytest.approx(t.m, rel=1e-7)
    assert eta * s.q == pytest.approx(t.q, rel=1e-7)
    assert s.V == pytest.approx(t.V, rel=1e-7)
    assert s.b == pytest.approx(t.b, abs=1e-7)
    assert math.isclose(s.Vhat_x, 0.0, abs_tol=1e-12) and math.isclose(s.V_S, 0.0, abs_tol=1e-12)
