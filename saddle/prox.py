"""Proximal operators of convex scalar losses, numba-jitted (generic numerics).

The proximal map of a convex loss ``L`` with step ``V`` at the point ``omega`` is

    prox(omega) = argmin_h  (h - omega)^2 / (2 V) + L(h),

the zero of ``phi(h) = h - omega + V L'(h)``, which is strictly increasing. It is the
zero-temperature cavity (Moreau-envelope) step of a replica channel.

The losses solved here are the smooth ones of the form

    L(h) = sum_k c_k [softplus(h / T_k) - t_k h / T_k] + c_q (h - h_0)^2 / 2 + g_0 h,

with at most two *tempered logistic* terms (``c_k >= 0``, ``T_k > 0``, ``t_k in [0, 1]``), a
quadratic and a linear term, optionally restricted to an interval ``[lo, hi]`` known to
hold the zero (a piece of a piecewise-smooth loss, e.g. one side of a hinge's kink). These
routines know nothing of the losses of a model: a caller (``replica.losses``) writes its loss
in these terms.

Because ``0 < sigma < 1``, the logistic part of ``L'(h)`` lies in
``(-sum c_k t_k / T_k, sum c_k (1 - t_k) / T_k)``, which brackets the zero in an interval of
width ``V sum c_k / T_k / (1 + V c_q)``. Plain Newton from ``omega`` diverges at large ``V``;
we use Newton steps safeguarded by bisection inside the bracket, which converge for every
``V`` and ``omega``.
"""

from __future__ import annotations

import math

from numba import njit

PROX_TOL = 1e-13
PROX_MAX_ITER = 100


@njit(cache=True)
def exact_quotient(x, y):
    """``x / y``, without the division when ``y = 1`` (where it is exact)."""
    return x if y == 1.0 else x / y


@njit(cache=True)
def logistic_term_derivatives(h, c, T, t):
    """First and second derivative of ``c [softplus(h/T) - t h/T]`` from a single ``exp``.

    At ``T = 1`` (every label term, and the paper's distillation temperature) the divisions
    by ``T``, exact there, are skipped: the same numbers, three divisions fewer.
    """
    unit = T == 1.0
    x = h if unit else h / T
    e = math.exp(-abs(x))
    inv = 1.0 / (1.0 + e)
    sig = inv if x >= 0.0 else e * inv
    if unit:
        return c * (sig - t), c * e * inv * inv
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
def smooth_loss_derivatives(h, c1, T1, t1, c2, T2, t2, cq, h0, g0):
    """``(L'(h), L''(h))`` of the smooth loss of the module docstring."""
    g, a = tempered_logistic_derivatives(h, c1, T1, t1, c2, T2, t2)
    return g + (cq * (h - h0) + g0), a + cq


@njit(cache=True)
def prox_smooth(omega, V, c1, T1, t1, c2, T2, t2, cq, h0, g0, lo_lim, hi_lim, h_guess):
    """Proximal point and curvature ``(h*, L''(h*))`` of the smooth loss of the module docstring.

    The proximal step of docs/saddle_point.md §1; numerics: docs/numerics.md §3.

    Parameters
    ----------
    omega, V : float
        Point and step (``V >= 0``; ``V = 0`` returns ``omega``).
    c1, T1, t1, c2, T2, t2 : float
        Weights, temperatures and soft targets of the two logistic terms (``c = 0``: absent).
    cq, h0, g0 : float
        Quadratic weight and centre, linear slope.
    lo_lim, hi_lim : float
        An interval known to contain the zero (``-inf, inf`` for none).
    h_guess : float
        Starting point (e.g. the solution at a neighbouring node); clipped into the bracket.

    Notes
    -----
    The curvature is that of the last Newton evaluation, at a point within the solver's
    tolerance (``1e-13 (1 + |h*|)``) of ``h*``: the caller saves its own evaluation.
    """
    if V <= 0.0:
        return omega, smooth_loss_derivatives(omega, c1, T1, t1, c2, T2, t2, cq, h0, g0)[1]
    upper = exact_quotient(c1 * (1.0 - t1), T1) + exact_quotient(c2 * (1.0 - t2), T2)
    lower = exact_quotient(-c1 * t1, T1) - exact_quotient(c2 * t2, T2)
    base = omega + V * cq * h0 - V * g0
    scale = 1.0 + V * cq
    lo = max(exact_quotient(base - V * upper, scale), lo_lim)
    hi = min(exact_quotient(base - V * lower, scale), hi_lim)
    if hi - lo <= PROX_TOL * (1.0 + abs(omega)):
        h = 0.5 * (lo + hi)
        return h, smooth_loss_derivatives(h, c1, T1, t1, c2, T2, t2, cq, h0, g0)[1]
    h = h_guess
    if not (lo < h < hi):
        h = omega if lo < omega < hi else 0.5 * (lo + hi)
    step_before_last = hi - lo
    step = step_before_last
    curvature = 0.0
    for _ in range(PROX_MAX_ITER):
        grad, curvature = smooth_loss_derivatives(h, c1, T1, t1, c2, T2, t2, cq, h0, g0)
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
        elif abs(newton) <= PROX_TOL * (1.0 + abs(h)):
            # Converged: a step below the tolerance that rounding put on the bracket's edge
            # (h - newton == h, which is one end of the bracket). Bisecting the rest of the
            # bracket from here would take ~30 steps to come back within an ulp of h.
            return h_newton, curvature
        else:
            # Newton would leave the bracket or is not contracting (it can cycle when the
            # loss curvature changes fast): bisect instead.
            step_before_last, step = step, 0.5 * (hi - lo)
            h = lo + step
        if abs(step) <= PROX_TOL * (1.0 + abs(h)):
            return h, curvature
    return h, smooth_loss_derivatives(h, c1, T1, t1, c2, T2, t2, cq, h0, g0)[1]


@njit(cache=True)
def prox_tempered_logistic_curvature(omega, V, c1, T1, t1, c2, T2, t2, h_guess):
    """:func:`prox_smooth` of the two-term tempered logistic loss alone: ``(h*, L''(h*))``."""
    inf = math.inf
    return prox_smooth(omega, V, c1, T1, t1, c2, T2, t2, 0.0, 0.0, 0.0, -inf, inf, h_guess)


@njit(cache=True)
def prox_tempered_logistic(omega, V, c1, T1, t1, c2, T2, t2, h_guess):
    """Proximal point ``h*`` of the two-term tempered logistic loss (safeguarded Newton).

    The proximal step of docs/saddle_point.md §1; numerics: docs/numerics.md §3.
    """
    return prox_tempered_logistic_curvature(omega, V, c1, T1, t1, c2, T2, t2, h_guess)[0]


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
