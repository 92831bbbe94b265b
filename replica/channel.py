"""Channel (energetic) half of the saddle point, through the responses of the loss
(docs/saddle_point.md §1-3).

At zero temperature the channel of the replica free entropy is a Moreau envelope: on a
training sample of class ``s`` the trained preactivation is the proximal point ``h*`` of the
stage's loss (:mod:`replica.losses`) at its cavity field ``omega``. The conjugates are
Gaussian averages of the response ``f = (h* - omega)/V`` (minus the loss slope) and of its
derivatives, written as *responses* so that a loss with a kink (the hinge) fits:

- ``r = dh*/d omega`` and ``g = -df/d omega = (1 - r)/V`` (``= a/(1 + a V)`` with the loss
  curvature ``a`` for a smooth loss; ``g = 1/V``, ``r = 0`` on a kink).

Teacher (a stage taught by the labels), cavity field ``om~ = s m~ + b~ + sqrt(delta q~) z1``::

    m^~ = alpha E[s f~],  Q^~ = alpha delta E[f~^2],
    V^~ = -alpha delta E[df~/d om~] = alpha delta E[g~]

Student, cavity field ``om = s m + b + sqrt(delta) [(S/sqrt(q~)) z1 + sqrt(q - S^2/q~) z2]``
(so that ``Cov(om~, om) = delta S``), proximal step taken at ``om + V_S f~``, distillation
target ``t = sigma(h~*/T)``::

    m^ = alpha E[s f],  Q^ = alpha delta E[f^2],  V^ = alpha delta E[g],
    Q^x = alpha delta E[f f~],
    V^x = -alpha delta E[df/d om~]
        = -alpha delta E[(df/dt)(dt/dh~) r~ + (df/d omega) V_S (df~/d om~)]
        = alpha delta E[-(dh*/dt / V) (dt/dh~) r~ - g g~ V_S],

which for smooth losses is today's ``alpha delta E[(c - a a~ V_S) / ((1 + a~ V~)(1 + a V))]``
with ``c = d^2 L / (dh dh~)`` (asserted symbolically, :mod:`replica.symbolic.closed_forms`).
The shift ``V_S f~`` is the student's response to the teacher's own fit of that sample: the
``(dS/dq~) lambda~`` term of paper Eq. 96, which equals Eq. 21's ``u~`` term since
``lambda~ = sqrt(delta dq~) u~`` (docs/saddle_point.md §5).

- bias: stationarity in ``b`` is ``E[f] = 0``; ``dE[f]/db = -E[g]`` gives the Newton update
  used inside the iteration.

Averages over the class (``rho``, ``1 - rho``) and standard Gaussians use Gauss-Hermite rules
(``saddle.quadrature``); the student's average is over the tensor grid ``(z1, z2)``. For a loss
with a kink the Gaussian average in the stage's own direction (``z1`` for a teacher, ``z2`` for
a student) is split at the fields mapped onto the kink (:func:`replica.losses.mixture_kink_fields`,
:func:`saddle.piecewise.split_gaussian_rule`): no average is taken across a kink. Within a class
the proximal solve at each node starts from the solution at the previous node (nodes are
sorted), predicted to first order with ``r``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from replica.losses import (
    LOGISTIC,
    kd_curvature_free,
    kd_target,
    kd_target_slope,
    label_loss,
    mixture_curvature_slope,
    mixture_derivatives,
    mixture_kink_fields,
    mixture_loss,
    mixture_omega_zero,
    mixture_prox,
    mixture_target_cross,
    prox_pieces,
)
from saddle.piecewise import (
    GRADED_MAX_PANELS,
    SPLIT_CUTOFF,
    SPLIT_ORDER,
    SPLIT_PANEL,
    graded_gaussian_rule,
    split_gaussian_rule,
)
from saddle.special import gaussian_cdf, sigmoid, sigmoid_prime


@njit(cache=True)
def class_sign_weight_target(cls, rho, p_pos, p_neg):
    """``(s, P(class), target)`` for class index 0 (``y = 1``) or 1 (``y = 0``)."""
    if cls == 0:
        return 1.0, rho, p_pos
    return -1.0, 1.0 - rho, p_neg


# Below this value of ``V a(0)`` the proximal map has no sharp bend (it is smooth on the scale
# of the field): no graded rule.
KINK_MIN_SATURATION = 4.0


@njit(cache=True)
def stage_bend(kind, V, c, k, T):
    """Where a smooth loss's proximal map bends sharply: ``(h_k, width)``, or ``(0, 0)``.

    For the logistic mixture (or pure distillation, ``c = 0``) the loss curvature ``a(h)``
    does not depend on the targets and is even and decreasing in ``|h|``. Where ``V a >> 1``
    the proximal point barely moves (``f = (h* - om)/V`` is linear in ``om`` with slope
    ``-1/V``); where ``V a << 1`` the loss saturates (``f`` is constant). The crossover
    ``V a(h_k) = 1`` is a near-kink of ``f(om)`` at ``om = +-h_k + V L'(+-h_k)``, of width
    ``(1 + a V) a / |a'| = 2 a / |a'|`` in ``om`` (the scale of the loss there, ~``min(1, T)``).
    Found by bisection (``a`` is monotone). Other losses: none (the square's curvature is
    bounded below; the hinge's kink is split exactly, :func:`own_direction_rule`).
    """
    if not (kind == LOGISTIC or c == 0.0):
        return 0.0, 0.0
    if V * kd_curvature_free(0.0, c, k, T) <= KINK_MIN_SATURATION:
        return 0.0, 0.0
    # sigma'(x) <= exp(-|x|): beyond hi both terms are below 1 / (2 V).
    hi = 1.0
    if c > 0.0:
        hi = max(hi, math.log(2.0 * V * c + 1.0) + 1.0)
    if k > 0.0:
        hi = max(hi, T * (math.log(2.0 * V * k / T**2 + 1.0) + 1.0))
    lo = 0.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if V * kd_curvature_free(mid, c, k, T) > 1.0:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * (1.0 + hi):
            break
    h_k = 0.5 * (lo + hi)
    a = kd_curvature_free(h_k, c, k, T)
    slope = abs(mixture_curvature_slope(kind, h_k, c, k, T))
    return h_k, 2.0 * a / max(slope, 1e-300)


@njit(cache=True)
def own_direction_rule(kind, V, s, p, c, k, T, t, centre, width, scratch, gx, gw, h_k,
                       bend_width):  # fmt: skip
    """Whether a stage's own field ``omega = centre + width z`` needs its own rule: ``(n, own)``.

    ``own`` is False for a smooth loss without a sharp bend, and the caller averages on its
    rule. Otherwise a rule is written into ``scratch = (legendre nodes, legendre weights,
    breaks, z_out, w_out)``, its ``n`` nodes and weights ``z_out[:n]``, ``w_out[:n]``:

    - a loss with a kink: a composite Gauss-Legendre rule split at the fields mapped onto
      the kink (:func:`replica.losses.mixture_kink_fields`,
      :func:`saddle.piecewise.split_gaussian_rule`);
    - with ``gx`` not empty (Gauss-Legendre nodes, weights ``gw`` on ``[-1, 1]``) and a bend
      ``(h_k, bend_width)`` of :func:`stage_bend`: a rule graded towards the two fields
      ``+-h_k + V L'(+-h_k)`` of the bend and the field ``V L'(0)`` of ``h* = 0``
      (:func:`saddle.piecewise.graded_gaussian_rule`).
    """
    x_leg, w_leg, breaks, z_out, w_out = scratch
    lo, hi, kinked = mixture_kink_fields(kind, V, s, p, c, k, T, t)
    if kinked and width > 0.0:
        breaks[0] = (lo - centre) / width
        breaks[1] = (hi - centre) / width
        n = split_gaussian_rule(breaks, 2, x_leg, w_leg, SPLIT_PANEL, SPLIT_CUTOFF, z_out, w_out)
        return n, True
    if gx.size > 0 and bend_width > 0.0 and width > 0.0:
        om_hi = h_k + V * mixture_derivatives(kind, h_k, s, p, c, k, T, t)[0]
        om_lo = -h_k + V * mixture_derivatives(kind, -h_k, s, p, c, k, T, t)[0]
        # and the image of h* = 0, where the curvature peaks: with two terms of very different
        # temperatures the narrow one makes a step of width ~min(1, T) (1 + a(0) V) there
        om_0 = V * mixture_derivatives(kind, 0.0, s, p, c, k, T, t)[0]
        peak = min(1.0, T) * (1.0 + V * kd_curvature_free(0.0, c, k, T))
        n = graded_gaussian_rule((om_lo - centre) / width, (om_0 - centre) / width,
                                 (om_hi - centre) / width, min(bend_width, peak) / width,
                                 gx, gw, z_out, w_out)  # fmt: skip
        return n, True
    return 0, False


@njit(cache=True)
def rule_size(z, n, split):
    """Number of nodes of the rule chosen by :func:`own_direction_rule`."""
    return n if split else z.size


@njit(cache=True)
def rule_node(z, wz, scratch, split, j):
    """Node and weight ``j`` of the rule chosen by :func:`own_direction_rule`."""
    if split:
        return scratch[3][j], scratch[4][j]
    return z[j], wz[j]


def channel_scratch(graded_order: int = 0, split_order: int = SPLIT_ORDER):
    """Work arrays for :func:`own_direction_rule`: a split rule with two breakpoints, of
    Gauss-Legendre order ``split_order`` per panel, or a graded rule of Gauss-Legendre order
    ``graded_order``."""
    from saddle.piecewise import legendre_rule, split_rule_capacity

    x, w = (np.array(a) for a in legendre_rule(split_order))  # (writable: one array type)
    size = max(split_rule_capacity(2, order=split_order), GRADED_MAX_PANELS * int(graded_order))
    return (x, w, np.empty(2), np.empty(size), np.empty(size))


# ----------------------------------------------------------------------------------------------
# Teacher: a stage taught by the labels (c = 1, no distillation term)
# ----------------------------------------------------------------------------------------------


@njit(cache=True)
def teacher_prox(omega, V, loss_kind, s, p, h_guess):
    """Teacher's proximal point and responses ``(h*, d, g)`` at the cavity field ``omega``.

    ``dh*/d omega = 1/d``, ``g = -df/d omega`` (:func:`replica.losses.mixture_prox`).
    """
    h, d, g, _ = mixture_prox(loss_kind, omega, V, s, p, 1.0, 0.0, 1.0, 0.0, h_guess)
    return h, d, g


@njit(cache=True)
def teacher_channel_averages(m, q, V, b, rho, delta, loss_kind, p_pos, p_neg, z, wz, scratch):
    """Gaussian averages of the teacher channel.

    Equations: docs/saddle_point.md §2 (paper Eq. 49-50).

    Returns ``(E[s f], E[f^2], E[g], E[f])`` at overlaps ``(m, q, V, b)``.
    """
    width = math.sqrt(delta * q)
    esf = ef2 = eg = ef = 0.0
    for cls in range(2):
        s, pc, p = class_sign_weight_target(cls, rho, p_pos, p_neg)
        centre = s * m + b
        n, split = own_direction_rule(loss_kind, V, s, p, 1.0, 0.0, 1.0, 0.0, centre, width,
                                      scratch, z[:0], wz[:0], 0.0, 0.0)  # fmt: skip
        h, d, omega_prev = centre, 1.0, centre
        for j in range(rule_size(z, n, split)):
            zj, wj = rule_node(z, wz, scratch, split, j)
            omega = centre + width * zj
            # First-order predictor from the previous node: dh*/d omega = 1/d.
            h, d, g = teacher_prox(omega, V, loss_kind, s, p, h + (omega - omega_prev) / d)
            omega_prev = omega
            f = (h - omega) / V
            w = pc * wj
            esf += w * s * f
            ef2 += w * f * f
            eg += w * g
            ef += w * f
    return esf, ef2, eg, ef


@njit(cache=True)
def teacher_training_observables(m, q, V, b, rho, delta, loss_kind, p_pos, p_neg, z, wz,
                                 scratch):  # fmt: skip
    """Training loss per sample and training error of the teacher at its fixed point.

    The trained preactivation of a training sample is the proximal point ``h*(om~)``, which is
    non-decreasing in ``om~``; it changes sign at ``om~ = V l'(0)``
    (:func:`replica.losses.mixture_omega_zero`), so the training error is a Gaussian
    probability in closed form (no quadrature of a step function).
    """
    width = math.sqrt(delta * q)
    loss = 0.0
    error = 0.0
    for cls in range(2):
        s, pc, p = class_sign_weight_target(cls, rho, p_pos, p_neg)
        centre = s * m + b
        n, split = own_direction_rule(loss_kind, V, s, p, 1.0, 0.0, 1.0, 0.0, centre, width,
                                      scratch, z[:0], wz[:0], 0.0, 0.0)  # fmt: skip
        h = centre
        for j in range(rule_size(z, n, split)):
            zj, wj = rule_node(z, wz, scratch, split, j)
            omega = centre + width * zj
            h, _, _ = teacher_prox(omega, V, loss_kind, s, p, h)
            loss += pc * wj * label_loss(loss_kind, h, s, p)
        omega_zero = mixture_omega_zero(loss_kind, V, s, p, 1.0, 0.0, 1.0, 0.0)
        # y = 1 is misclassified when om~ < omega_zero, y = 0 when om~ > omega_zero.
        error += pc * gaussian_cdf(s * (omega_zero - centre) / width)
    return loss, error


@njit(cache=True)
def teacher_node_fields(m, q, V, b, rho, delta, loss_kind, p_pos, p_neg, z,
                        h_out, f_out, r_out, g_out):  # fmt: skip
    """Teacher's trained preactivation ``h~*``, response ``f~``, ``r~ = dh~*/d om~`` and
    ``g~ = -df~/d om~`` on the nodes ``z`` (arrays of shape ``(2, len(z))``: class, node).

    With ``V = 0`` (a stage not trained on the samples, e.g. the Bayes-optimal proxy)
    ``h~* = om~``, ``f~ = 0``, ``r~ = 1``, ``g~ = 0``.
    """
    width = math.sqrt(delta * q)
    for cls in range(2):
        s, _, p = class_sign_weight_target(cls, rho, p_pos, p_neg)
        h = s * m + b
        for k in range(z.size):
            omega = s * m + b + width * z[k]
            if V == 0.0:
                h_out[cls, k] = omega
                f_out[cls, k] = 0.0
                r_out[cls, k] = 1.0
                g_out[cls, k] = 0.0
                continue
            h, d, g = teacher_prox(omega, V, loss_kind, s, p, h)
            h_out[cls, k] = h
            f_out[cls, k] = (h - omega) / V
            r_out[cls, k] = 1.0 / d
            g_out[cls, k] = g


@njit(cache=True)
def teacher_field_probes(m, q, V, b, rho, delta, loss_kind, p_pos, p_neg, temperature, z, out):
    """Order-one functions of the teacher's fields whose averages a quadrature must resolve.

    Fills ``out`` of shape ``(8, len(z))``: for each class, the soft output
    ``sigma(h~*/T)``, the displacement ``(h~* - om~) / sqrt(delta q~)`` (``V~ f~`` in units of
    the field width), the saturation ``1 - r~ = a~ V~ / (1 + a~ V~)`` and ``4 sigma'(h~*/T)``.
    These are what the teacher's channel and the student's (through its targets, its
    cross-curvature and the self-fit shift ``V_S f~``) depend on. At vanishing ridge
    ``h~*(om~)`` is nearly a hinge and the displacement has a kink that Gauss-Hermite rules
    resolve badly (see :func:`saddle.quadrature.adaptive_gaussian_rule`).
    """
    width = math.sqrt(delta * q)
    for cls in range(2):
        s, _, p = class_sign_weight_target(cls, rho, p_pos, p_neg)
        h = s * m + b
        a = 0.0
        omega_prev = h
        for k in range(z.size):
            omega = s * m + b + width * z[k]
            kink = False
            if V == 0.0:
                h, a = omega, 0.0
            else:
                guess = h + (omega - omega_prev) / (1.0 + a * V)
                h, a, kink = prox_pieces(loss_kind, omega, V, s, p, 1.0, 0.0, 1.0, 0.0, guess)
            omega_prev = omega
            x = h / temperature
            out[4 * cls, k] = sigmoid(x)
            out[4 * cls + 1, k] = (h - omega) / width
            out[4 * cls + 2, k] = 1.0 if kink else a * V / (1.0 + a * V)
            out[4 * cls + 3, k] = 4.0 * sigmoid_prime(x)


def teacher_kink_nodes(m: float, q: float, V: float, b: float, rho: float, delta: float,
                       loss_kind: int, p_pos: float, p_neg: float) -> list[float]:  # fmt: skip
    """The standardised fields ``z1`` at which a kinked teacher's proximal map has a kink."""
    width = math.sqrt(delta * q)
    out = []
    for cls in range(2):
        s, _, p = class_sign_weight_target(cls, rho, p_pos, p_neg)
        lo, hi, kinked = mixture_kink_fields(loss_kind, V, s, p, 1.0, 0.0, 1.0, 0.0)
        if kinked and V > 0.0:
            out += [(lo - s * m - b) / width, (hi - s * m - b) / width]
    return out


# ----------------------------------------------------------------------------------------------
# Student: a stage taught by a teacher (mixture loss with a distillation term)
# ----------------------------------------------------------------------------------------------


@njit(cache=True)
def student_z2_sweep(loss_kind, s, p, c, kd_weight, temperature, t, t_slope, centre, sd_2, V,
                     V_S, f_t, r_t, g_t, pc, w1_i, i, z2, w2, gx, gw, h_k, bend, scratch,
                     rows, out1, cols, out2, e0, e1, e2, e3, e4, e5):  # fmt: skip
    """The student's channel integrands along ``z2`` at one ``(class, z1)`` node ``i``.

    Adds ``pc w1_i w_j (s f, f^2, g, f f~, -df/d om~, f)`` over the nodes ``j`` of the ``z2``
    rule (:func:`own_direction_rule`) to the running sums ``e0 ... e5`` and returns them. With
    ``rows``, ``out1[:, i]`` also receives the sums with weights ``pc w_j`` (the ``z2``-average
    at this node); with ``cols`` and the common ``z2`` rule (not the node's own), ``out2[:, j]``
    receives ``pc w1_i`` times the integrand at node ``j``. See :func:`student_channel_averages`
    for the notation.
    """
    n, split = own_direction_rule(loss_kind, V, s, p, c, kd_weight, temperature, t, centre,
                                  sd_2, scratch, gx, gw, h_k, bend)  # fmt: skip
    cols = cols and not split
    outer = pc * w1_i
    r0 = r1 = r2 = r3 = r4 = r5 = 0.0
    # -df/d om~ = -(dh*/dt / V)(dt/dh~) r~ - g g~ V_S, with dh*/dt / V = -(d^2 L/(dh dt)) / d
    # (0 on a kink, where d = inf): the first term is cross / d.
    cross = mixture_target_cross(kd_weight, temperature) * t_slope * r_t
    h, d, omega_prev = centre, 1.0, centre
    for j in range(rule_size(z2, n, split)):
        zj, wj = rule_node(z2, w2, scratch, split, j)
        omega = centre + sd_2 * zj
        guess = h + (omega - omega_prev) / d
        h, d, g, _ = mixture_prox(loss_kind, omega, V, s, p, c, kd_weight, temperature, t,
                                  guess)  # fmt: skip
        omega_prev = omega
        f = (h - omega) / V
        x = cross / d - g * g_t * V_S
        w = outer * wj
        e0 += w * s * f
        e1 += w * f * f
        e2 += w * g
        e3 += w * f * f_t
        e4 += w * x
        e5 += w * f
        if rows:
            w = pc * wj
            r0 += w * s * f
            r1 += w * f * f
            r2 += w * g
            r3 += w * f * f_t
            r4 += w * x
            r5 += w * f
        if cols:
            out2[0, j] += outer * (s * f)
            out2[1, j] += outer * (f * f)
            out2[2, j] += outer * g
            out2[3, j] += outer * (f * f_t)
            out2[4, j] += outer * x
            out2[5, j] += outer * f
    if rows:
        out1[0, i] += r0
        out1[1, i] += r1
        out1[2, i] += r2
        out1[3, i] += r3
        out1[4, i] += r4
        out1[5, i] += r5
    return e0, e1, e2, e3, e4, e5


@njit(cache=True)
def student_channel_sums(
    m, q, S, V, V_S, b, rho, delta, q_t, teacher_h, teacher_f, teacher_r, teacher_g,
    loss_kind, p_pos, p_neg, chi, temperature, kd_weight, z1, w1, z2, w2, gx, gw, scratch,
    out1, out2,
):  # fmt: skip
    """Channel averages, and optionally their marginals in each direction.

    Returns the six averages of :func:`student_channel_averages` (NaN outside the domain),
    the same numbers whatever marginals are asked for. If ``out1`` has shape ``(6, len(z1))``
    it receives the class-weighted integrands averaged over ``z2`` at each ``z1`` node; if
    ``out2`` has shape ``(6, len(z2))``, those averaged over ``z1`` at each ``z2`` node (only
    where the ``z2`` rule is the same at every ``z1`` node: zero elsewhere). Pass ``(6, 0)``
    arrays for what is not wanted. ``gx, gw``: see :func:`own_direction_rule`.
    """
    nan = np.nan
    rows = out1.shape[1] == z1.size and z1.size > 0
    cols = out2.shape[1] == z2.size and z2.size > 0
    residual_var = q - S * S / q_t
    fill = nan if (residual_var < 0.0 or V <= 0.0) else 0.0
    for k in range(out1.shape[0]):
        out1[k, :] = fill
        out2[k, :] = fill
    if fill != 0.0:
        return nan, nan, nan, nan, nan, nan
    sd_1 = math.sqrt(delta) * S / math.sqrt(q_t)
    sd_2 = math.sqrt(delta * residual_var)
    c = 1.0 - chi
    h_k, bend = stage_bend(loss_kind, V, c, kd_weight, temperature) if gx.size else (0.0, 0.0)
    esf = ef2 = eg = eff = ex = ef = 0.0
    for cls in range(2):
        s, pc, p = class_sign_weight_target(cls, rho, p_pos, p_neg)
        for i in range(z1.size):
            h_t = teacher_h[cls, i]
            f_t = teacher_f[cls, i]
            t = kd_target(h_t, temperature)
            t_slope = kd_target_slope(h_t, temperature)
            centre = s * m + b + sd_1 * z1[i] + V_S * f_t
            esf, ef2, eg, eff, ex, ef = student_z2_sweep(
                loss_kind, s, p, c, kd_weight, temperature, t, t_slope, centre, sd_2, V, V_S,
                f_t, teacher_r[cls, i], teacher_g[cls, i], pc, w1[i], i, z2, w2, gx, gw, h_k,
                bend, scratch, rows, out1, cols, out2, esf, ef2, eg, eff, ex, ef,
            )  # fmt: skip
    return esf, ef2, eg, eff, ex, ef


@njit(cache=True)
def student_channel_averages(
    m, q, S, V, V_S, b, rho, delta, q_t, teacher_h, teacher_f, teacher_r, teacher_g,
    loss_kind, p_pos, p_neg, chi, temperature, kd_weight, z1, w1, z2, w2, gx, gw, scratch,
):  # fmt: skip
    """Gaussian averages of the student channel over the grid ``(z1, z2)``.

    Equations: docs/saddle_point.md §3 (paper Eq. 93-97).

    The student's loss is the mixture of :mod:`replica.losses` with label term
    ``(1 - chi) l_kind`` and distillation term ``kd_weight CE(sigma(h~*/T), sigma(h/T))``.
    Returns ``(E[s f], E[f^2], E[g], E[f f~], E[-df/d om~], E[f])``, or NaNs if
    ``q < S^2 / q~`` or ``V <= 0`` (outside the domain). The ``z2`` rule is ``(z2, w2)`` at every
    ``z1`` node, or a rule of that node's own (:func:`own_direction_rule`: split at a kink,
    or, if ``gx`` is not empty, graded towards a sharp bend of the proximal map).
    """
    none = np.empty((6, 0))
    return student_channel_sums(
        m, q, S, V, V_S, b, rho, delta, q_t, teacher_h, teacher_f, teacher_r, teacher_g,
        loss_kind, p_pos, p_neg, chi, temperature, kd_weight, z1, w1, z2, w2, gx, gw, scratch,
        none, none,
    )  # fmt: skip


@njit(cache=True)
def marginal_units(out, chi, temperature, kd_weight, V):
    """Divide the rows of ``out`` (shape ``(6, n)``) by their natural units (in place):
    ``F, F^2, 1/V, F, 1/V, F`` with ``F = (1 - chi) + kd_weight / T`` (see
    :func:`student_channel_marginals`)."""
    scale = (1.0 - chi) + kd_weight / temperature
    units = (scale, scale * scale, 1.0 / V, scale, 1.0 / V, scale)
    for k in range(6):
        u = units[k]
        for j in range(out.shape[1]):
            out[k, j] = out[k, j] / u


@njit(cache=True)
def student_channel_marginals(
    m, q, S, V, V_S, b, rho, delta, q_t, teacher_h, teacher_f, teacher_r, teacher_g,
    loss_kind, p_pos, p_neg, chi, temperature, kd_weight, z1, w1, z2, w2, gx, gw, out1, out2,
    scratch,
):  # fmt: skip
    """The student's channel integrands averaged over one direction, for quadrature checks.

    For the six integrands ``g_k(z1, z2)`` of :func:`student_channel_averages`, in units of
    order one (``s f / F``, ``f^2 / F^2``, ``g V``, ``f f~ / F``, ``-V df/d om~`` and ``f / F``,
    with ``F = (1 - chi) + kd_weight / T`` the largest possible ``|f|``), summed over the
    classes with their weights, fills

        out1[k, i] = sum_j w2_j g_k(z1_i, z2_j)    (the z2-average at each z1 node),
        out2[k, j] = sum_i w1_i g_k(z1_i, z2_j)    (the z1-average at each z2 node),

    so that ``out1 @ w1 = out2 @ w2`` are the channel averages. A rule in ``z1`` resolves
    the channel when it integrates the rows of ``out1`` accurately, and likewise in ``z2``.
    At small ``lam_s`` the susceptibility ``V`` is large and the student's proximal point is
    nearly piecewise linear in the cavity field, with two kinks of width ~``T``; over a wide
    residual field ``sqrt(delta (q - S^2/q~))`` they are too sharp for a Gauss-Hermite rule.
    Where the ``z2`` rules are the nodes' own (a kinked loss, or graded rules with ``gx`` not
    empty, see :func:`student_channel_averages`), they differ between ``z1`` nodes and ``out2``
    is left at zero. Either output may be a ``(6, 0)`` array (not computed). ``scratch``: work
    arrays of :func:`channel_scratch` for Gauss-Legendre order ``gx.size``.

    Returns the six channel averages, exactly those of :func:`student_channel_averages`.
    """
    averages = student_channel_sums(
        m, q, S, V, V_S, b, rho, delta, q_t, teacher_h, teacher_f, teacher_r, teacher_g,
        loss_kind, p_pos, p_neg, chi, temperature, kd_weight, z1, w1, z2, w2, gx, gw,
        scratch, out1, out2,
    )  # fmt: skip
    marginal_units(out1, chi, temperature, kd_weight, V)
    marginal_units(out2, chi, temperature, kd_weight, V)
    return averages


@njit(cache=True)
def student_training_observables(
    m, q, S, V, V_S, b, rho, delta, q_t, teacher_h, teacher_f,
    loss_kind, p_pos, p_neg, chi, temperature, kd_weight, z1, w1, z2, w2, gx, gw, scratch,
):  # fmt: skip
    """Student's training observables at its fixed point.

    Returns ``(train_loss, train_ce, train_error, mse_outputs, mse_preactivations)``: the mean
    loss per sample (label and distillation terms), the mean ``CE(p, sigma(h))``, the fraction
    of misclassified training labels, and the mean squared teacher-student distance of outputs
    ``sigma(h~) - sigma(h)`` and of preactivations ``h~ - h`` on the training set (paper App. C,
    Fig. 11).

    The training error integrates, for each ``z1``, the Gaussian probability in ``z2`` that the
    (monotone) proximal point is on the wrong side of zero. The ``z2`` rules are those of
    :func:`student_channel_averages`.
    """
    residual_var = max(q - S * S / q_t, 0.0)
    sd_1 = math.sqrt(delta) * S / math.sqrt(q_t)
    sd_2 = math.sqrt(delta * residual_var)
    c = 1.0 - chi
    h_k, bend = stage_bend(loss_kind, V, c, kd_weight, temperature) if gx.size else (0.0, 0.0)
    loss = ce = error = mse_out = mse_pre = 0.0
    for cls in range(2):
        s, pc, p = class_sign_weight_target(cls, rho, p_pos, p_neg)
        for i in range(z1.size):
            h_t = teacher_h[cls, i]
            t = kd_target(h_t, temperature)
            centre = s * m + b + sd_1 * z1[i] + V_S * teacher_f[cls, i]
            n, split = own_direction_rule(loss_kind, V, s, p, c, kd_weight, temperature, t,
                                          centre, sd_2, scratch, gx, gw, h_k, bend)  # fmt: skip
            h = centre
            for j in range(rule_size(z2, n, split)):
                zj, wj = rule_node(z2, w2, scratch, split, j)
                omega = centre + sd_2 * zj
                h = mixture_prox(loss_kind, omega, V, s, p, c, kd_weight, temperature, t, h)[0]
                w = pc * w1[i] * wj
                loss += w * mixture_loss(loss_kind, h, s, p, c, kd_weight, temperature, t)
                ce += w * label_loss(LOGISTIC, h, s, p)
                d_out = sigmoid(h_t) - sigmoid(h)
                mse_out += w * d_out * d_out
                mse_pre += w * (h_t - h) * (h_t - h)
            # h* = 0 exactly when omega = V L'(0); below it h* < 0.
            omega_zero = mixture_omega_zero(loss_kind, V, s, p, c, kd_weight, temperature, t)
            gap = omega_zero - centre
            if sd_2 > 0.0:
                below = gaussian_cdf(gap / sd_2)
            else:
                below = 1.0 if gap > 0.0 else 0.0
            error += pc * w1[i] * (below if s > 0.0 else 1.0 - below)
    return loss, ce, error, mse_out, mse_pre
