"""Proximal operators of the channel losses, numba-jitted.

The proximal map of a convex loss ``L`` with step ``V`` at the point ``omega`` is

    prox(omega) = argmin_h  (h - omega)^2 / (2 V) + L(h),

the zero of ``phi(h) = h - omega + V L'(h)``, which is strictly increasing. It is the
zero-temperature cavity (Moreau-envelope) step of the replica channel.

Supported losses: a weighted sum of at most two *tempered logistic* terms

    L(h) = sum_k c_k [softplus(h / T_k) - t_k h / T_k],   c_k >= 0, T_k > 0, t_k in [0, 1],

(cross-entropy with soft target ``t_k`` at temperature ``T_k``) and the square loss. These
routines know nothing of knowledge distillation: a caller builds its loss from such terms.

Because ``0 < sigma < 1``, ``L'(h)`` lies in ``(-sum c_k t_k / T_k, sum c_k (1 - t_k) / T_k)``,
so the zero is bracketed by ``omega - V * upper`` and ``omega - V * lower``. Plain Newton from
``omega`` diverges at large ``V``; we use Newton steps safeguarded by bisection inside the
bracket, which converge for every ``V`` and ``omega``.
"""

from __future__ import annotations

import math

from numba import njit

PROX_TOL = 1e-13
PROX_MAX_ITER = 100


@njit(cache=True)
def logistic_term_derivatives(h, c, T, t):
    """First and second derivative of ``c [softplus(h/T) - t h/T]`` from a single ``exp``."""
    x = h / T
    e = math.exp(-abs(x))
    inv = 1.0 / (1.0 + e)
    sig = inv if x >= 0.0 else e * inv
    return c * (sig - t) / T, c * e * inv * inv / (T * T)


@njit(cache=True)
def tempered_logistic_derivatives(h, c1, T1, t1, c2, T2, t2):
    """``(L'(h), L''(h))`` for the two-term tempered logistic loss."""
    g = a = 0.0
    if c1 != 0.0:  # pure distillation (chi = 1) has no label term: skip its exp
        g, a = logistic_term_derivatives(h, c1, T1, t1)
    if c2 != 0.0:
        g2, a2 = logistic_term_derivatives(h, c2, T2, t2)
        g += g2
        a += a2
    return g, a


@njit(cache=True)
def prox_tempered_logistic(omega, V, c1, T1, t1, c2, T2, t2, h_guess):
    """Proximal map of the two-term tempered logistic loss (safeguarded Newton).

    The proximal step of docs/saddle_point.md §1; numerics: docs/numerics.md §3.

    Parameters
    ----------
    omega : float
        Point at which the map is evaluated.
    V : float
        Step (the susceptibility), ``V >= 0``; ``V = 0`` returns ``omega``.
    c1, T1, t1, c2, T2, t2 : float
        Weights, temperatures and soft targets of the two terms (``c2 = 0`` for one term).
    h_guess : float
        Starting point (e.g. the solution at a neighbouring node); clipped into the bracket.

    Returns
    -------
    float
        ``h* = argmin_h (h - omega)^2 / (2 V) + L(h)``.
    """
    return prox_tempered_logistic_curvature(omega, V, c1, T1, t1, c2, T2, t2, h_guess)[0]


@njit(cache=True)
def prox_tempered_logistic_curvature(omega, V, c1, T1, t1, c2, T2, t2, h_guess):
    """:func:`prox_tempered_logistic` and the loss curvature ``L''(h*)``, ``(h*, a)``.

    The curvature is the one of the last Newton evaluation, at a point within the solver's
    tolerance (``1e-13 (1 + |h*|)``) of ``h*``: the caller saves its own evaluation.
    """
    if V <= 0.0:
        return omega, tempered_logistic_derivatives(omega, c1, T1, t1, c2, T2, t2)[1]
    upper = c1 * (1.0 - t1) / T1 + c2 * (1.0 - t2) / T2
    lower = -c1 * t1 / T1 - c2 * t2 / T2
    lo = omega - V * upper
    hi = omega - V * lower
    if hi - lo <= PROX_TOL * (1.0 + abs(omega)):
        h = 0.5 * (lo + hi)
        return h, tempered_logistic_derivatives(h, c1, T1, t1, c2, T2, t2)[1]
    h = h_guess
    if not (lo < h < hi):
        h = omega if lo < omega < hi else 0.5 * (lo + hi)
    step_before_last = hi - lo
    step = step_before_last
    curvature = 0.0
    for _ in range(PROX_MAX_ITER):
        grad, curvature = tempered_logistic_derivatives(h, c1, T1, t1, c2, T2, t2)
        phi = h - omega + V * grad
        if phi > 0.0:
            hi = h
        elif phi < 0.0:
            lo = h
        else:
            return h, curvature
        dphi = 1.0 + V * curvature
        newton = phi / dphi
        h_newton = h - newton
        if lo < h_newton < hi and abs(newton) <= 0.5 * abs(step_before_last):
            step_before_last, step = step, newton
            h = h_newton
        else:
            # Newton would leave the bracket or is not contracting (it can cycle when the
            # loss curvature changes fast): bisect instead.
            step_before_last, step = step, 0.5 * (hi - lo)
            h = lo + step
        if abs(step) <= PROX_TOL * (1.0 + abs(h)):
            return h, curvature
    return h, tempered_logistic_derivatives(h, c1, T1, t1, c2, T2, t2)[1]


@njit(cache=True)
def prox_square(omega, V, c, target):
    """Proximal map of ``L(h) = c (h - target)^2 / 2``: ``(omega + V c target) / (1 + V c)``.

    The proximal step of docs/saddle_point.md §1; numerics: docs/numerics.md §3.
    """
    return (omega + V * c * target) / (1.0 + V * c)


def prox_residual(h: float, omega: float, V: float, terms: tuple) -> float:
    """``h - omega + V L'(h)`` in plain Python (for tests): zero at the proximal point."""
    c1, T1, t1, c2, T2, t2 = terms
    g = c1 * (1.0 / (1.0 + math.exp(-h / T1)) - t1) / T1
    g += c2 * (1.0 / (1.0 + math.exp(-h / T2)) - t2) / T2
    return h - omega + V * g
