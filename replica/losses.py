"""The loss table: every loss of the package, defined once
(paper Eq. 1-4, App. B.3-B.4; docs/model.md §2).

A stage (teacher or student) trained on a sample of class ``s = +-1`` (label ``y = (1 + s)/2``)
minimises a *mixture loss*

    L(h) = c l_kind(h; s, p) + k [softplus(h / T) - t h / T],

a label term of one of the kinds below with weight ``c``, plus a distillation term: the
cross-entropy ``CE(t, sigma(h/T))`` against the soft output ``t = sigma(h~ / T)`` of the stage
that teaches it, with weight ``k`` (``k = 0`` for a stage taught by the labels alone):

================  ========================  =====================================================
kind (code)       ``l_kind(h; s, p)``       notes
================  ========================  =====================================================
``"logistic"`` 0  ``softplus(h) - p h``     ``CE(p, sigma(h))`` with the soft target
                                            ``p = y (1 - eps) + (1 - y) eps`` (label smoothing)
``"square"`` 1    ``(h - s)^2 / 2``         regression on the class sign (smoothing unused)
``"hinge"`` 2     ``max(0, 1 - s h)``       margin loss; kink at ``h = s`` (smoothing unused)
================  ========================  =====================================================

The cross-entropy is written without its entropy constant,
``CE(p, sigma(h)) = -p log sigma(h) - (1 - p) log sigma(-h) = softplus(h) - p h``.

**Knowledge distillation** (paper Eq. 3-4): the student's loss is the mixture with
``c = 1 - chi``, ``k = chi`` (the paper) or ``chi T^2`` (Hinton's scaling,
:func:`kd_term_weight`) and ``t = sigma(h~ / T)``; for a student "loss" names the kind of its
*label* term, the distillation term is always the tempered cross-entropy. The teacher is the
mixture with ``c = 1``, ``k = 0``.

For each loss the table gives, as numba functions dispatched on the integer ``kind`` (so
that ``cache=True`` holds: no function objects are passed to jitted code):

- the value :func:`mixture_loss` and derivatives :func:`mixture_derivatives`;
- the proximal map :func:`mixture_prox`, ``h* = argmin_h (h - omega)^2/(2V) + L(h)``, with its
  derivatives ``r = dh*/d omega`` and ``dh*/dt`` (with respect to the distillation target) and
  the response slope ``g = -df/d omega = (1 - r)/V`` of ``f = (h* - omega)/V``; ``g`` is what the
  channel conjugates need (``V^ = alpha delta E[g]``) and stays finite at a kink, where
  ``r = 0`` and the curvature is infinite;
- the field at which ``h* = 0`` (:func:`mixture_omega_zero`), for training errors in closed
  form, and the interval of fields mapped onto a kink (:func:`mixture_kink_fields`), at which
  quadratures are split;
- the same losses as sympy expressions (:func:`symbolic_label_loss`, :func:`symbolic_mixture_loss`)
  for the symbolic layer, and array versions for the finite-size objective
  (:func:`mixture_loss_arrays`).

Adding a loss: a new code in :data:`LOSS_KINDS`, its branch in :func:`label_loss`,
:func:`label_loss_derivatives`, :func:`mixture_prox` (written with :func:`saddle.prox.prox_smooth`
on each smooth piece) and :func:`mixture_kink_fields`, and its sympy form; the contract tests
(``tests/test_losses.py``) run over every row.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from saddle.prox import prox_smooth, prox_tempered_logistic_curvature
from saddle.special import sigmoid, sigmoid_prime, softplus

LOGISTIC = 0
SQUARE = 1
HINGE = 2
LOSS_KINDS = {"logistic": LOGISTIC, "square": SQUARE, "hinge": HINGE}
# Losses with a kink (a point where the proximal map is flat): quadratures split there.
KINKED = frozenset({HINGE})


def loss_code(name: str) -> int:
    """Integer code of a loss name (see the module table); ``KeyError`` if unknown."""
    return LOSS_KINDS[name]


def kd_term_weight(chi: float, temperature: float, t2_scaling: bool) -> float:
    """Weight ``k`` of the distillation term: ``chi``, or ``chi T^2`` with Hinton's scaling."""
    return chi * temperature**2 if t2_scaling else chi


# ----------------------------------------------------------------------------------------------
# The label terms
# ----------------------------------------------------------------------------------------------


@njit(cache=True)
def label_loss(kind, h, s, p):
    """``l_kind(h; s, p)`` of the module table."""
    if kind == SQUARE:
        return 0.5 * (h - s) * (h - s)
    if kind == HINGE:
        return max(0.0, 1.0 - s * h)
    return softplus(h) - p * h


@njit(cache=True)
def hinge_slopes(s):
    """Slopes of ``max(0, 1 - s h)`` left and right of its kink ``h = s``."""
    if s > 0.0:
        return -1.0, 0.0
    return 0.0, 1.0


@njit(cache=True)
def label_loss_derivatives(kind, h, s, p):
    """``(l'(h), l''(h))`` (the hinge's one-sided slope right of its kink, curvature 0)."""
    if kind == SQUARE:
        return h - s, 1.0
    if kind == HINGE:
        return (-s if s * h < 1.0 else 0.0), 0.0
    return sigmoid(h) - p, sigmoid_prime(h)


# ----------------------------------------------------------------------------------------------
# The mixture loss of a stage
# ----------------------------------------------------------------------------------------------


@njit(cache=True)
def kd_target(h_teacher, temperature):
    """Distillation target ``t = sigma(h~ / T)``, the teacher's tempered output (Eq. 4)."""
    return sigmoid(h_teacher / temperature)


@njit(cache=True)
def kd_target_slope(h_teacher, temperature):
    """``dt/dh~ = sigma'(h~ / T) / T``."""
    return sigmoid_prime(h_teacher / temperature) / temperature


@njit(cache=True)
def mixture_loss(kind, h, s, p, c, k, T, t):
    """``L(h) = c l_kind(h; s, p) + k [softplus(h/T) - t h/T]`` (module docstring).

    The losses of paper Eq. 1-4 (docs/model.md §2).
    """
    value = c * label_loss(kind, h, s, p) if c != 0.0 else 0.0
    if k != 0.0:
        value += k * (softplus(h / T) - t * h / T)
    return value


@njit(cache=True)
def mixture_derivatives(kind, h, s, p, c, k, T, t):
    """``(L'(h), L''(h))`` of :func:`mixture_loss`.

    The response and curvatures of docs/saddle_point.md §1 and §3.
    """
    g = a = 0.0
    if c != 0.0:
        g, a = label_loss_derivatives(kind, h, s, p)
        g *= c
        a *= c
    if k != 0.0:
        x = h / T
        g += k * (sigmoid(x) - t) / T
        a += k * sigmoid_prime(x) / (T * T)
    return g, a


@njit(cache=True)
def kd_curvature_free(h, c, k, T):
    """``L''(h) = c sigma'(h) + (k / T^2) sigma'(h / T)`` of the logistic mixture (any targets)."""
    return mixture_derivatives(LOGISTIC, h, 1.0, 0.0, c, k, T, 0.0)[1]


@njit(cache=True)
def mixture_curvature_slope(kind, h, c, k, T):
    """``dL''/dh``: the slope of the curvature (label term: logistic only; others have none)."""
    out = 0.0
    if c != 0.0 and kind == LOGISTIC:
        out = c * sigmoid_prime(h) * (1.0 - 2.0 * sigmoid(h))
    if k != 0.0:
        x = h / T
        out += k * sigmoid_prime(x) * (1.0 - 2.0 * sigmoid(x)) / (T * T * T)
    return out


@njit(cache=True)
def mixture_target_cross(k, T):
    """``d^2 L / (dh dt) = -k / T``: how the distillation target moves the loss slope."""
    return -k / T


@njit(cache=True)
def mixture_kink_fields(kind, V, s, p, c, k, T, t):
    """Fields ``omega`` mapped onto the kink: ``(lo, hi, has_kink)``.

    Where the Gaussian averages are split (docs/numerics.md §2).

    For the hinge, ``h*(omega) = s`` exactly for ``omega`` in ``[lo, hi]`` with
    ``lo = s + V (c l'(s-) + K)``, ``hi = s + V (c l'(s+) + K)``, ``K`` the distillation
    term's slope at ``h = s``; ``h*`` is smooth on either side. Smooth losses: no kink.
    """
    if kind != HINGE or c == 0.0:
        return 0.0, 0.0, False
    left, right = hinge_slopes(s)
    slope = 0.0
    if k != 0.0:
        slope = k * (sigmoid(s / T) - t) / T
    return s + V * (c * left + slope), s + V * (c * right + slope), True


@njit(cache=True)
def prox_pieces(kind, omega, V, s, p, c, k, T, t, h_guess):
    """``(h*, L''(h*), at_kink)``: the proximal point on the piece that holds it."""
    if kind == LOGISTIC or c == 0.0:
        h, a = prox_tempered_logistic_curvature(omega, V, c, 1.0, p, k, T, t, h_guess)
        return h, a, False
    inf = math.inf
    if kind == SQUARE:
        h, a = prox_smooth(omega, V, k, T, t, 0.0, 1.0, 0.0, c, s, 0.0, -inf, inf, h_guess)
        return h, a, False
    # hinge: which side of the kink h = s is the zero of h - omega + V L'(h) on?
    lo, hi, _ = mixture_kink_fields(kind, V, s, p, c, k, T, t)
    left, right = hinge_slopes(s)
    if omega < lo:
        h, a = prox_smooth(omega, V, k, T, t, 0.0, 1.0, 0.0, 0.0, 0.0, c * left, -inf, s, h_guess)
        return h, a, False
    if omega > hi:
        h, a = prox_smooth(omega, V, k, T, t, 0.0, 1.0, 0.0, 0.0, 0.0, c * right, s, inf, h_guess)
        return h, a, False
    return s, 0.0, True


@njit(cache=True)
def mixture_prox(kind, omega, V, s, p, c, k, T, t, h_guess):
    """Proximal map of the mixture loss and its derivatives.

    The proximal step of docs/saddle_point.md §1 (numerics: docs/numerics.md §3).

    Returns ``(h*, d, g, dh_dt)``: ``h* = argmin_h (h - omega)^2 / (2V) + L(h)``;
    ``d = 1 + V L''(h*)``, so that ``r = dh*/d omega = 1/d``; ``g = -df/d omega = L''(h*)/d``
    (``= (1 - r)/V``) for the response ``f = (h* - omega)/V``; and ``dh*/dt = -V d^2L/(dh dt) / d``.
    On a kink ``d = inf`` (``r = 0``), ``g = 1/V`` and ``dh*/dt = 0`` (the subgradient absorbs
    small moves). ``V = 0`` gives ``h* = omega``, ``d = 1``, ``g = L''(omega)``.
    """
    h, a, at_kink = prox_pieces(kind, omega, V, s, p, c, k, T, t, h_guess)
    if at_kink:
        return h, math.inf, 1.0 / V, 0.0
    d = 1.0 + a * V
    return h, d, a / d, -V * mixture_target_cross(k, T) / d


@njit(cache=True)
def mixture_omega_zero(kind, V, s, p, c, k, T, t):
    """The field at which ``h* = 0``: ``omega_0 = V L'(0)`` (every loss here is smooth at 0).

    Part of the loss table of docs/model.md §2 (proximal steps: docs/saddle_point.md §1).

    ``h*`` is non-decreasing in ``omega``, so ``h* < 0`` exactly when ``omega < omega_0``.
    """
    return V * mixture_derivatives(kind, 0.0, s, p, c, k, T, t)[0]


# ----------------------------------------------------------------------------------------------
# The KD student's loss, by name (convenience wrappers over the table)
# ----------------------------------------------------------------------------------------------


@njit(cache=True)
def kd_loss(h, p, h_teacher, chi, temperature, kd_weight):
    """Logistic KD loss ``(1 - chi) CE(p, sigma(h)) + k CE(sigma(h~/T), sigma(h/T))`` (Eq. 3-4)."""
    t = kd_target(h_teacher, temperature)
    return mixture_loss(LOGISTIC, h, 1.0, p, 1.0 - chi, kd_weight, temperature, t)


@njit(cache=True)
def kd_curvature(h, chi, kd_weight, temperature):
    """``d^2 L/dh^2`` of the logistic KD loss (independent of the targets)."""
    return mixture_derivatives(LOGISTIC, h, 1.0, 0.0, 1.0 - chi, kd_weight, temperature, 0.0)[1]


@njit(cache=True)
def kd_loss_cross_derivative(h_teacher, temperature, kd_weight):
    """``d^2 L / (dh dh~) = (d^2 L/(dh dt)) dt/dh~ = -(k / T^2) sigma'(h~ / T)``
    (docs/saddle_point.md §3)."""
    return mixture_target_cross(kd_weight, temperature) * kd_target_slope(h_teacher, temperature)


# ----------------------------------------------------------------------------------------------
# Arrays (the finite-size objective of simulations.estimators)
# ----------------------------------------------------------------------------------------------


@njit(cache=True)
def mixture_loss_arrays(kind, h, s, p, c, k, T, t, want_value, r_out, a_out):
    """Add ``L'(h_mu)`` to ``r_out`` and ``L''(h_mu)`` to ``a_out``; return ``sum L`` (or 0).

    ``s``, ``p``, ``t`` are per-sample arrays (class signs, soft labels, distillation
    targets). Used with the smoothed hinge of :func:`smoothed_hinge_arrays` for the exact
    finite-size fits.
    """
    total = 0.0
    for i in range(h.size):
        g, a = mixture_derivatives(kind, h[i], s[i], p[i], c, k, T, t[i])
        r_out[i] += g
        a_out[i] += a
        if want_value:
            total += mixture_loss(kind, h[i], s[i], p[i], c, k, T, t[i])
    return total


@njit(cache=True)
def smoothed_hinge(h, s, width):
    """``width softplus((1 - s h)/width)``: a smooth hinge, exact as ``width -> 0``.

    It exceeds ``max(0, 1 - s h)`` by at most ``width log 2`` (at the kink).
    Returns ``(value, slope, curvature)`` in ``h``.
    """
    x = (1.0 - s * h) / width
    return width * softplus(x), -s * sigmoid(x), sigmoid_prime(x) / width


@njit(cache=True)
def smoothed_hinge_arrays(h, s, c, width, want_value, r_out, a_out):
    """Add ``c`` times the smoothed hinge's slope and curvature; return ``c sum value`` (or 0)."""
    total = 0.0
    for i in range(h.size):
        value, g, a = smoothed_hinge(h[i], s[i], width)
        r_out[i] += c * g
        a_out[i] += c * a
        if want_value:
            total += c * value
    return total


def kd_targets(h_teacher: np.ndarray, temperature: float) -> np.ndarray:
    """:func:`kd_target` on an array of teacher preactivations."""
    return _kd_targets(np.ascontiguousarray(h_teacher, dtype=float), float(temperature))


@njit(cache=True)
def _kd_targets(h_teacher, temperature):
    out = np.empty(h_teacher.size)
    for i in range(h_teacher.size):
        out[i] = kd_target(h_teacher[i], temperature)
    return out


# ----------------------------------------------------------------------------------------------
# Symbolic forms (the symbolic layer and the contract tests compare against these)
# ----------------------------------------------------------------------------------------------


def symbolic_label_loss(name: str, h, s, p):
    """``l_kind(h; s, p)`` of the module table as a sympy expression."""
    import sympy as sp

    if name == "square":
        return (h - s) ** 2 / 2
    if name == "hinge":
        return sp.Max(0, 1 - s * h)
    return sp.log(1 + sp.exp(h)) - p * h


def symbolic_mixture_loss(name: str, h, s, p, c, k, T, t):
    """The mixture ``c l_kind(h; s, p) + k CE(t, sigma(h/T))`` as a sympy expression.

    The losses of paper Eq. 1-4 in sympy (docs/model.md §2).
    """
    import sympy as sp

    return c * symbolic_label_loss(name, h, s, p) + k * (sp.log(1 + sp.exp(h / T)) - t * h / T)
