"""Replica-symmetric free entropies of the teacher and of the KD student (paper App. A).

Zero temperature, replica symmetric, in the conventions of the numeric code
(:mod:`replica.symbolic.symbols`). Each free entropy is the sum of

- an *interaction* term, bilinear in order parameters and conjugates (paper Eq. 45, 88);
- an *entropic* (prior) term: the ridge penalty ``lam/2 w^2`` gives a Gaussian per-coordinate
  problem, maximised and averaged here in closed form (paper Eq. 46-48 for the teacher,
  Eq. 89-92 for the student, whose coordinate also sees the teacher's weight ``w~*``);
- an *energetic* (channel) term ``-alpha E[M]``, with ``M`` the Moreau envelope of the loss at
  the cavity field (:mod:`replica.symbolic.moreau`; paper Eq. 49-50, 93-97).

Teacher (tilde variables), with ``om~ = s m~ + b~ + sqrt(Delta q~) z1``::

    Phi~ = -m^~ m~ - (Q^~ V~/Delta - V^~ q~)/2 + g_S(m^~, Q^~, V^~; lam~) - alpha E[M_V~[l](om~)]

Student, with ``om = s m + b + sqrt(Delta) (S/sqrt(q~) z1 + sqrt(q - S^2/q~) z2)`` and the
teacher's proximal point ``h~* = prox(om~)``, ``f~ = (h~* - om~)/V~``::

    Phi = -m^ m - (Q^ V/Delta - V^ q)/2 - Q^x V_S/Delta + V^x S
          + eta g_S(student) - alpha E[M_V[L(h~*)](om + V_S f~)]

(paper Eq. 98 with ``S^ = Q^x``, ``delta S^ = -V^x``, ``delta S = V_S/Delta``). The student's
entropic term is written with the teacher's conjugates, as in paper Eq. 92; the teacher's
saddle point turns them into ``m~, q~, V~`` (:func:`replica.symbolic.derive.student_saddle_point`).
"""

from __future__ import annotations

import sympy as sp

from replica.symbolic.expectation import Expectation, gaussian_average
from replica.symbolic.moreau import StudentMoreau, TeacherMoreau, TeacherResponse
from replica.symbolic.symbols import (
    V_S,
    Delta,
    Qhat,
    Qhat_t,
    Qhat_x,
    S,
    V,
    V_t,
    Vhat,
    Vhat_t,
    Vhat_x,
    alpha,
    b,
    b_t,
    eta,
    lam,
    lam_t,
    m,
    m_t,
    mhat,
    mhat_t,
    q,
    q_t,
    s,
    z1,
    z2,
)


def maximise_quadratic(objective: sp.Expr, w: sp.Symbol) -> tuple[sp.Expr, sp.Expr]:
    """``(argmax, max)`` of an objective quadratic and concave in ``w`` (stationary point)."""
    (w_star,) = sp.solve(sp.diff(objective, w), w)
    return w_star, sp.simplify(objective.subs(w, w_star))


def ridge_weight(mhat_: sp.Expr, noise: sp.Expr, Vhat_: sp.Expr, lam_: sp.Expr) -> sp.Expr:
    """Per-coordinate ridge weight ``argmax_w [-(lam + V^) w^2/2 + (m^ v + xi) w]`` at ``v = 1``.

    Paper Eq. 47 / 91: ``w* = (m^ + xi)/(lam + V^)`` (gauge ``v = (1, ..., 1)``, App. A.1).
    """
    w = sp.Dummy("w")
    w_star, _ = maximise_quadratic(-(lam_ + Vhat_) * w**2 / 2 + (mhat_ + noise) * w, w)
    return w_star


def ridge_entropic_term(
    mhat_: sp.Expr = mhat_t, Qhat_: sp.Expr = Qhat_t, Vhat_: sp.Expr = Vhat_t, lam_: sp.Expr = lam_t
) -> sp.Expr:
    """Teacher's entropic term ``g_S = E_z max_w [-(lam + V^) w^2/2 + (m^ + sqrt(Q^) z) w]``.

    Derived (maximum, then exact Gaussian average): ``(m^^2 + Q^)/(2 (lam + V^))``, paper
    Eq. 46-48 with ``q^ -> Q^``, ``delta q^ -> V^``.
    """
    w, zeta = sp.Dummy("w"), sp.Dummy("zeta")
    _, value = maximise_quadratic(
        -(lam_ + Vhat_) * w**2 / 2 + (mhat_ + sp.sqrt(Qhat_) * zeta) * w, w
    )
    return sp.factor(gaussian_average(value, [zeta]))


def student_entropic_term() -> sp.Expr:
    """Student's entropic term per trainable coordinate (paper Eq. 89-92), derived.

    The cavity noises ``xi~`` (teacher) and ``xi`` (student) are Gaussian with covariance
    ``[[Q^~, Q^x], [Q^x, Q^]]``; the teacher's weight is ``w~* = (m^~ + xi~)/(lam~ + V^~)`` and the
    student maximises ``-(lam + V^) w^2/2 + (m^ + xi - V^x w~*) w``. Returns the Gaussian average
    of the maximum, a function of both sets of conjugates.
    """
    w, zeta_t, zeta = sp.Dummy("w"), sp.Dummy("zeta_t"), sp.Dummy("zeta")
    xi_t = sp.sqrt(Qhat_t) * zeta_t
    xi = Qhat_x / sp.sqrt(Qhat_t) * zeta_t + sp.sqrt(Qhat - Qhat_x**2 / Qhat_t) * zeta
    w_t = ridge_weight(mhat_t, xi_t, Vhat_t, lam_t)
    _, value = maximise_quadratic(-(lam + Vhat) * w**2 / 2 + (mhat + xi - Vhat_x * w_t) * w, w)
    return sp.factor(gaussian_average(value, [zeta_t, zeta]))


def paper_student_entropic_terms() -> dict[str, sp.Expr]:
    """The student's entropic term as printed in the paper (Eq. 17 and Eq. 92), in our symbols.

    Dictionary: ``q^ = Q^``, ``delta q^ = V^``, ``S^ = Q^x``, ``delta S^ = -V^x``, teacher's
    ``m~^ = m^~``, ``q~^ = Q^~``, ``delta q~^ = V^~``.
    """
    D_t = lam_t + Vhat_t
    dS = -Vhat_x
    first = (mhat + mhat_t * dS / D_t) ** 2
    eq17 = (first + Qhat + 2 * dS * Qhat_x / D_t + Qhat_t * dS**2 / D_t**2) / (2 * (lam + Vhat))
    eq92 = (
        first
        + (Qhat_x / sp.sqrt(Qhat_t) + dS * sp.sqrt(Qhat_t) / D_t) ** 2
        + (Qhat_t * Qhat - Qhat_x**2) / Qhat_t
    ) / (2 * (lam + Vhat))
    return {"Eq. 17": eq17, "Eq. 92": eq92}


def teacher_field() -> sp.Expr:
    """Teacher's cavity field on a training sample, ``om~ = s m~ + b~ + sqrt(Delta q~) z1``."""
    return s * m_t + b_t + sp.sqrt(Delta * q_t) * z1


def teacher_response() -> sp.Expr:
    """Teacher's self-fit response ``f~ = (h~* - om~)/V~`` as a function of ``z1``."""
    return TeacherResponse(teacher_field(), V_t)


def student_field() -> sp.Expr:
    """Student's cavity field, ``s m + b + sqrt(Delta)(S/sqrt(q~) z1 + sqrt(q - S^2/q~) z2)``.

    ``Cov(om~, om) = Delta S``, ``Var(om) = Delta q`` (docs/saddle_point.md §3).
    """
    return s * m + b + sp.sqrt(Delta) * (S / sp.sqrt(q_t) * z1 + sp.sqrt(q - S**2 / q_t) * z2)


def teacher_energetic_term() -> sp.Expr:
    """``g_E~ = -E[M_V~[l](om~)]`` (paper Eq. 49-50)."""
    return -Expectation(TeacherMoreau(teacher_field(), V_t))


def student_energetic_term() -> sp.Expr:
    """``g_E = -E[M_V[L(h~*)](om + V_S f~)]`` (paper Eq. 93-97; the shift is ``(dS/dq~) l~*``).

    The KD loss depends on the sample through the teacher's trained pre-activation
    ``h~* = prox(om~)``, which carries its self-fit ``V~ f~``.
    """
    h_t_star = teacher_response().proximal_point()
    return -Expectation(StudentMoreau(student_field() + V_S * teacher_response(), V, h_t_star))


def teacher_free_entropy() -> sp.Expr:
    """RS free entropy of the ridge teacher (paper Eq. 51, our normalisation)."""
    interaction = -mhat_t * m_t - (Qhat_t * V_t / Delta - Vhat_t * q_t) / 2
    return interaction + ridge_entropic_term() + alpha * teacher_energetic_term()


def student_free_entropy() -> sp.Expr:
    """RS free entropy of the KD student (paper Eq. 98, our normalisation and signs)."""
    interaction = -mhat * m - (Qhat * V / Delta - Vhat * q) / 2 - Qhat_x * V_S / Delta + Vhat_x * S
    return interaction + eta * student_entropic_term() + alpha * student_energetic_term()
