"""Closed forms derived symbolically, to check the numeric code against.

- the KD loss (paper Eq. 3-4) and its curvatures ``a = d2L/dh2``, ``c = d2L/(dh dh~)``
  (docs/saddle_point.md §3);
- the square loss: its proximal map, and the teacher's whole fixed point in closed form (its
  susceptibility is the Marchenko-Pastur resolvent of ridge regression, docs/saddle_point.md §2);
- the test error (paper Eq. 12), the optimal bias, and the Bayes-optimal error (Eq. 13-14, with
  the ``eta``-sparse student bound of Sec. 3.2);
- the ``chi = 0`` equivalence of docs/saddle_point.md §7: the student's saddle point at
  ``(alpha, Delta, eta, lam)`` is the teacher's at ``(alpha/eta, Delta/eta, lam/eta^2)``.
"""

from __future__ import annotations

from functools import lru_cache

import sympy as sp

from replica.symbolic.derive import student_saddle_point, teacher_saddle_point
from replica.symbolic.expectation import Expectation, evaluate_polynomial, gaussian_average
from replica.symbolic.free_entropy import teacher_field
from replica.symbolic.moreau import proximal_point
from replica.symbolic.symbols import (
    V_S,
    Delta,
    S,
    V,
    V_t,
    Vhat_x,
    a,
    a_t,
    alpha,
    b,
    b_t,
    c,
    chi,
    eta,
    f,
    f_t,
    h,
    h_t,
    kd_weight,
    lam,
    lam_t,
    m,
    m_t,
    p,
    q,
    q_t,
    rho,
    s,
    z1,
)
from replica.symbolic.symbols import T as temperature

# --------------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------------


def cross_entropy(target: sp.Expr, preactivation: sp.Expr) -> sp.Expr:
    """``CE(t, sigma(x)) = log(1 + e^x) - t x`` (exact, no constant; :mod:`replica.losses`)."""
    return sp.log(1 + sp.exp(preactivation)) - target * preactivation


def kd_loss() -> sp.Expr:
    """Student loss ``(1 - chi) CE(p, sigma(h)) + kappa CE(sigma(h~/T), sigma(h/T))`` (Eq. 3-4).

    ``kappa`` is ``chi`` (paper) or ``chi T^2`` (Hinton's scaling).
    """
    teacher_output = 1 / (1 + sp.exp(-h_t / temperature))
    return (1 - chi) * cross_entropy(p, h) + kd_weight * cross_entropy(
        teacher_output, h / temperature
    )


def kd_curvatures() -> tuple[sp.Expr, sp.Expr]:
    """``(a, c) = (d2L/dh2, d2L/(dh dh~))`` of :func:`kd_loss`, by differentiation."""
    loss = kd_loss()
    return sp.simplify(sp.diff(loss, h, 2)), sp.simplify(sp.diff(loss, h, h_t))


def square_loss() -> sp.Expr:
    """``l(y, h) = (h - s)^2 / 2`` (the regression teacher of :mod:`replica.teacher`)."""
    return (h - s) ** 2 / 2


def square_loss_response(field: sp.Expr, step: sp.Expr) -> sp.Expr:
    """``f = (h* - omega)/V = (s - omega)/(1 + V)`` from the closed-form proximal point."""
    return sp.simplify((proximal_point(square_loss(), field, step) - field) / step)


# --------------------------------------------------------------------------------------------
# Square-loss teacher: the whole fixed point
# --------------------------------------------------------------------------------------------


# A parameter point at which to tell the roots of a quadratic apart (their product is < 0).
_SAMPLE_POINT = {alpha: 2, Delta: 1, lam_t: sp.Rational(1, 10)}


def _positive_root(roots: list[sp.Expr]) -> sp.Expr:
    """The root that is positive at :data:`_SAMPLE_POINT` (there must be exactly one)."""
    positive = [r for r in roots if float(r.subs(_SAMPLE_POINT)) > 0]
    if len(positive) != 1:
        raise ValueError(f"expected one positive root, got {roots}")
    return positive[0]


def marchenko_pastur_susceptibility() -> sp.Expr:
    """Positive root of ``V = Delta / (lam + alpha Delta / (1 + V))``
    (ridge resolvent, docs/saddle_point.md §2)."""
    roots = sp.solve(sp.Eq(V_t * (lam_t + alpha * Delta / (1 + V_t)), Delta), V_t)
    return _positive_root(roots)


def square_loss_teacher_fixed_point() -> dict:
    """Closed-form saddle point ``{V~, b~, m~, q~}`` of the square-loss ridge teacher.

    The derived teacher equations (:func:`~replica.symbolic.derive.teacher_saddle_point`) with
    ``f~ = (s - om~)/(1 + V~)`` and ``a~ = 1`` have polynomial integrands, so every average is
    exact. ``V~`` is the positive root of the prior's ``V~`` equation (the Marchenko-Pastur form
    of :func:`marchenko_pastur_susceptibility`); the bias, ``m~`` and ``q~`` follow by linear
    solves and are returned as rational functions of the symbol ``V~`` (substitute the root).
    """
    return dict(_square_loss_teacher_fixed_point())


@lru_cache(maxsize=1)
def _square_loss_teacher_fixed_point() -> dict:
    sp_t = teacher_saddle_point()
    concrete = {f_t: square_loss_response(teacher_field(), V_t), a_t: 1}

    def average(expr: sp.Expr) -> sp.Expr:
        return sp.factor(evaluate_polynomial(expr.subs(concrete), [z1]))

    conjugates = {k: average(v) for k, v in sp_t.channel.items()}
    prior = {k: v.subs(conjugates) for k, v in sp_t.prior.items()}
    V_star = _positive_root(sp.solve(sp.Eq(V_t, prior[V_t]), V_t))
    (b_star,) = sp.solve(average(Expectation(sp_t.bias)), b_t)
    (m_star,) = sp.solve(sp.Eq(m_t, prior[m_t].subs(b_t, b_star)), m_t)
    b_star = b_star.subs(m_t, m_star)
    (q_star,) = sp.solve(sp.Eq(q_t, prior[q_t].subs({b_t: b_star, m_t: m_star})), q_t)
    return {V_t: V_star, b_t: sp.factor(b_star), m_t: sp.factor(m_star), q_t: sp.factor(q_star)}


# --------------------------------------------------------------------------------------------
# Test error and the Bayes-optimal bound
# --------------------------------------------------------------------------------------------


def gaussian_tail(x: sp.Expr) -> sp.Expr:
    """``H(x) = P(N(0, 1) > x) = erfc(x / sqrt 2) / 2``."""
    return sp.erfc(x / sp.sqrt(2)) / 2


def generalisation_error(
    m_: sp.Expr = m, q_: sp.Expr = q, b_: sp.Expr = b, rho_: sp.Expr = rho, delta_: sp.Expr = Delta
) -> sp.Expr:
    """Paper Eq. 12: ``rho H((m + b)/sqrt(Delta q)) + (1 - rho) H((m - b)/sqrt(Delta q))``."""
    width = sp.sqrt(delta_ * q_)
    return rho_ * gaussian_tail((m_ + b_) / width) + (1 - rho_) * gaussian_tail((m_ - b_) / width)


def optimal_bias() -> sp.Expr:
    """Bias minimising Eq. 12 at fixed ``(m, q)``: ``b* = Delta q log(rho/(1 - rho)) / (2 m)``.

    ``d eps/db = 0`` equates the two class-conditional Gaussian densities at the threshold;
    taking logarithms makes it linear in ``b``.
    """
    first, second = sp.Add.make_args(sp.diff(generalisation_error(), b))
    balance = sp.expand_log(sp.log(first) - sp.log(-second), force=True)
    (solution,) = sp.solve(balance, b)
    return sp.simplify(solution)


def hebbian_overlaps() -> tuple[sp.Expr, sp.Expr]:
    """``(m, q)`` of the plug-in estimator ``w = v + sqrt(Delta/alpha) g`` (Eq. 13-14, 23).

    ``w = (1/(alpha sqrt N)) sum_mu s_mu x_mu`` equals ``v + sqrt(Delta/alpha) g`` per
    coordinate; averaging over ``v_i, g_i ~ N(0, 1)``: ``m = 1``, ``q = 1 + Delta/alpha``.
    """
    v, g = sp.symbols("v g", real=True)
    w = v + sp.sqrt(Delta / alpha) * g
    return gaussian_average(w * v, [v, g]), gaussian_average(w**2, [v, g])


def bayes_optimal_error(sparse: bool = False) -> sp.Expr:
    """Bayes-optimal test error: Eq. 12 at the plug-in overlaps and the optimal bias.

    With ``sparse=True``: the ``eta``-sparse student's bound, through the equivalence
    ``{eta, alpha, Delta} -> {1, alpha/eta, Delta/eta}`` (paper Sec. 3.2).
    """
    m_bo, q_bo = hebbian_overlaps()
    b_bo = optimal_bias().subs({m: m_bo, q: q_bo})
    error = generalisation_error(m_bo, q_bo, b_bo)
    if sparse:
        error = error.subs({alpha: alpha / eta, Delta: Delta / eta}, simultaneous=True)
    return sp.simplify(error)


# --------------------------------------------------------------------------------------------
# chi = 0: the student is a ridge teacher of a rescaled problem
# --------------------------------------------------------------------------------------------


def chi_zero_equivalence() -> dict[str, sp.Expr]:
    """Residuals (each simplifies to 0) of the ``chi = 0`` equivalence of docs/saddle_point.md §7.

    At ``chi = 0`` the KD loss does not depend on ``h~`` (``c = 0``). Then ``V^x = V_S = 0`` is
    self-consistent, the student's field has variance ``Delta q`` like a teacher's, and the
    student's equations at ``(alpha, Delta, eta, lam)`` are the teacher's at
    ``(alpha/eta, Delta/eta, lam/eta^2)`` with ``m~ = m``, ``q~ = eta q``, ``V~ = V`` and the
    same bias (the channel averages, functions of ``(m, Delta q, V, b)``, coincide).
    """
    sp_s, sp_t = student_saddle_point(), teacher_saddle_point()
    decoupled = {c: 0, V_S: 0, Vhat_x: 0}
    student_channel = {k: v.subs(decoupled) for k, v in sp_s.channel.items()}
    student = {k: v.subs(decoupled).subs(student_channel) for k, v in sp_s.prior.items()}

    # xreplace: one structural pass (no intermediate dummies inside the expectations).
    rename = {f_t: f, a_t: a, V_t: V, alpha: alpha / eta, Delta: Delta / eta}
    teacher_channel = {k: v.xreplace(rename) for k, v in sp_t.channel.items()}
    rescaled = {lam_t: lam / eta**2, Delta: Delta / eta}
    teacher = {k: v.xreplace(rescaled).subs(teacher_channel) for k, v in sp_t.prior.items()}
    variance = Delta * (S**2 / q_t + (q - S**2 / q_t))
    return {
        "V^x (chi = 0, V_S = 0)": student_channel[Vhat_x],
        "V_S (V^x = 0)": student[V_S],
        "Var(om) - Delta q": variance - Delta * q,
        "m~' - m": teacher[m_t] - student[m],
        "q~' - eta q": teacher[q_t] - eta * student[q],
        "V~' - V": teacher[V_t] - student[V],
        "bias: E[f~] - E[f]": sp_t.bias.xreplace(rename) - sp_s.bias,
    }


__all__ = [
    "bayes_optimal_error",
    "chi_zero_equivalence",
    "cross_entropy",
    "generalisation_error",
    "hebbian_overlaps",
    "kd_curvatures",
    "kd_loss",
    "marchenko_pastur_susceptibility",
    "optimal_bias",
    "square_loss",
    "square_loss_response",
    "square_loss_teacher_fixed_point",
]
