"""Closed forms derived symbolically, to check the numeric code against.

- the KD loss (paper Eq. 3-4), from the loss table (:mod:`replica.losses`), and its curvatures
  ``a = d2L/dh2``, ``c = d2L/(dh dh~)`` (docs/saddle_point.md §3);
- the channel conjugates through responses, ``V^ = -alpha Delta E[df/d omega]`` and
  ``V^x = -alpha Delta E[df/d om~]``, equal to the curvature forms of smooth losses
  (:func:`response_form_identities`);
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

from replica.losses import symbolic_label_loss, symbolic_mixture_loss
from replica.prior import sparse_equivalent_problem
from replica.symbolic.derive import student_saddle_point, teacher_saddle_point
from replica.symbolic.expectation import Expectation, evaluate_polynomial, gaussian_average
from replica.symbolic.free_entropy import teacher_field
from replica.symbolic.moreau import StudentResponse, proximal_point, to_channel_symbols
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
    omega,
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
    return symbolic_label_loss("logistic", preactivation, s, target)


def kd_loss(loss: str = "logistic") -> sp.Expr:
    """Student loss ``(1 - chi) l(y, h) + kappa CE(sigma(h~/T), sigma(h/T))`` (Eq. 3-4).

    The mixture of the loss table (:func:`replica.losses.symbolic_mixture_loss`) with the
    label loss ``loss`` (the paper's ``CE(p, sigma(h))`` by default); ``kappa`` is ``chi``
    (paper) or ``chi T^2`` (Hinton's scaling).
    """
    teacher_output = 1 / (1 + sp.exp(-h_t / temperature))
    return symbolic_mixture_loss(loss, h, s, p, 1 - chi, kd_weight, temperature, teacher_output)


def kd_curvatures() -> tuple[sp.Expr, sp.Expr]:
    """``(a, c) = (d2L/dh2, d2L/(dh dh~))`` of :func:`kd_loss`, by differentiation."""
    loss = kd_loss()
    return sp.simplify(sp.diff(loss, h, 2)), sp.simplify(sp.diff(loss, h, h_t))


def square_loss() -> sp.Expr:
    """``l(y, h) = (h - s)^2 / 2`` (the table's square row, :mod:`replica.losses`)."""
    return symbolic_label_loss("square", h, s, p)


def response_form_identities() -> dict[str, sp.Expr]:
    """Residuals (each simplifies to 0): the channel's response forms for a smooth loss.

    The response form of docs/saddle_point.md §1-3.

    With the student's response ``f(omega + V_S f~(om~), V, h~*(om~))`` of
    :mod:`~replica.symbolic.moreau` (``h~* = om~ + V~ f~``), differentiation gives
    ``-df/d omega = a/(1 + a V)`` (the ``V^`` integrand) and
    ``-df/d om~ = (c - a a~ V_S)/((1 + a~ V~)(1 + a V))`` (the ``V^x`` integrand), the forms
    :mod:`replica.channel` writes as ``g`` and ``-(dh*/dt / V)(dt/dh~) r~ - g g~ V_S``.
    """
    from replica.symbolic.moreau import TeacherResponse

    om_t = sp.Symbol("omega_t", real=True)
    f_teacher = TeacherResponse(om_t, V_t)
    f_student = StudentResponse(omega + V_S * f_teacher, V, om_t + V_t * f_teacher)
    d_omega = to_channel_symbols(-sp.diff(f_student, omega))
    d_teacher = to_channel_symbols(-sp.diff(f_student, om_t))
    # the same, in the response variables of the channel: r = 1/(1 + a V), g = a r, ...
    r, r_t = 1 / (1 + a * V), 1 / (1 + a_t * V_t)
    g, g_t = a * r, a_t * r_t
    dh_dt_over_V_times_slope = -c * r  # (dh*/dt / V)(dt/dh~) = -c r for the smooth mixture
    return {
        "-df/d omega - a/(1 + a V)": sp.simplify(d_omega - a / (1 + a * V)),
        "-df/d om~ - (c - a a~ V_S)/((1 + a~ V~)(1 + a V))": sp.simplify(
            d_teacher - (c - a * a_t * V_S) / ((1 + a_t * V_t) * (1 + a * V))
        ),
        "channel's g - a/(1 + a V)": sp.simplify(g - a / (1 + a * V)),
        "channel's cross term - (c - a a~ V_S) r r~": sp.simplify(
            (-dh_dt_over_V_times_slope * r_t - g * g_t * V_S)
            - (c - a * a_t * V_S) * r * r_t
        ),
    }


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
        alpha_eq, delta_eq, _ = sparse_equivalent_problem(alpha, Delta, eta)
        error = error.subs({alpha: alpha_eq, Delta: delta_eq}, simultaneous=True)
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
    alpha_eq, delta_eq, lam_eq = sparse_equivalent_problem(alpha, Delta, eta, lam)
    rename = {f_t: f, a_t: a, V_t: V, alpha: alpha_eq, Delta: delta_eq}
    teacher_channel = {k: v.xreplace(rename) for k, v in sp_t.channel.items()}
    rescaled = {lam_t: lam_eq, Delta: delta_eq}
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
    "response_form_identities",
    "square_loss",
    "square_loss_response",
    "square_loss_teacher_fixed_point",
]
