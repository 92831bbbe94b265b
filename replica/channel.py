"""Channel (energetic) half of the saddle point: the loss, through its proximal map
(docs/saddle_point.md §1-3).

At zero temperature the channel of the replica free entropy is a Moreau envelope: on a
training sample of class ``s`` the trained preactivation is the proximal point of the loss at
the cavity field. The conjugate parameters are Gaussian averages of the resulting
"responses" ``f = (h* - omega) / V`` (minus the loss derivative) and curvatures ``a``:

- teacher, cavity field ``om~ = s m~ + b~ + sqrt(delta q~) z1``::

      m^~ = alpha E[s f~],  Q^~ = alpha delta E[f~^2],  V^~ = alpha delta E[a~/(1 + a~ V~)]

- student, cavity field ``om = s m + b + sqrt(delta) [(S/sqrt(q~)) z1 + sqrt(q - S^2/q~) z2]``
  (so that ``Cov(om~, om) = delta S``), proximal step taken at ``om + V_S f~``::

      m^ = alpha E[s f],  Q^ = alpha delta E[f^2],  V^ = alpha delta E[a/(1 + a V)],
      Q^x = alpha delta E[f f~],
      V^x = alpha delta E[(c - a a~ V_S) / ((1 + a~ V~)(1 + a V))]   (= -alpha delta E[df/d om~])

  where ``c = d^2 L / (dh dh~)`` couples the student's loss to the teacher's preactivation.
  The shift ``V_S f~`` is the student's response to the teacher's own fit of that sample: the
  ``(dS/dq~) lambda~`` term of paper Eq. 96, which equals Eq. 21's ``u~`` term since
  ``lambda~ = sqrt(delta dq~) u~`` (docs/saddle_point.md §5).

- bias: stationarity in ``b`` is ``E[f] = 0``; ``dE[f]/db = -E[a/(1 + a V)]`` gives the Newton
  update used inside the iteration.

Averages over the class (``rho``, ``1 - rho``) and standard Gaussians use Gauss-Hermite rules
(``saddle.quadrature``); the student's average is over the tensor grid ``(z1, z2)``. Within a
class the proximal solve at each node starts from the solution at the previous node (nodes
are sorted), which is deterministic and needs ~2-3 Newton steps per node.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from replica.losses import kd_loss, kd_loss_cross_derivative
from saddle.prox import prox_square, prox_tempered_logistic, prox_tempered_logistic_curvature
from saddle.special import gaussian_cdf, sigmoid, sigmoid_prime, softplus

LOSS_LOGISTIC = 0
LOSS_SQUARE = 1


@njit(cache=True)
def class_sign_weight_target(cls, rho, p_pos, p_neg):
    """``(s, P(class), target)`` for class index 0 (``y = 1``) or 1 (``y = 0``)."""
    if cls == 0:
        return 1.0, rho, p_pos
    return -1.0, 1.0 - rho, p_neg


@njit(cache=True)
def teacher_prox(omega, V, loss_kind, s, p, h_guess):
    """Teacher's proximal point and loss curvature ``(h*, a)`` at the cavity field ``omega``.

    Logistic loss ``softplus(h) - p h`` (soft target ``p``), or square loss ``(h - s)^2 / 2``.
    """
    if loss_kind == LOSS_SQUARE:
        return prox_square(omega, V, 1.0, s), 1.0
    return prox_tempered_logistic_curvature(omega, V, 1.0, 1.0, p, 0.0, 1.0, 0.0, h_guess)


@njit(cache=True)
def teacher_loss_value(h, loss_kind, s, p):
    if loss_kind == LOSS_SQUARE:
        return 0.5 * (h - s) * (h - s)
    return softplus(h) - p * h


@njit(cache=True)
def teacher_channel_averages(m, q, V, b, rho, delta, loss_kind, p_pos, p_neg, z, wz):
    """Gaussian averages of the teacher channel.

    Equations: docs/saddle_point.md §2 (paper Eq. 49-50).

    Returns ``(E[s f], E[f^2], E[a/(1 + a V)], E[f])`` at overlaps ``(m, q, V, b)``.
    """
    width = math.sqrt(delta * q)
    esf = ef2 = ea = ef = 0.0
    for cls in range(2):
        s, pc, p = class_sign_weight_target(cls, rho, p_pos, p_neg)
        h, a, omega_prev = s * m + b, 0.0, s * m + b
        for k in range(z.size):
            omega = s * m + b + width * z[k]
            # First-order predictor from the previous node: dh*/d omega = 1 / (1 + a V).
            h, a = teacher_prox(omega, V, loss_kind, s, p, h + (omega - omega_prev) / (1.0 + a * V))
            omega_prev = omega
            f = (h - omega) / V
            w = pc * wz[k]
            esf += w * s * f
            ef2 += w * f * f
            ea += w * a / (1.0 + a * V)
            ef += w * f
    return esf, ef2, ea, ef


@njit(cache=True)
def teacher_training_observables(m, q, V, b, rho, delta, loss_kind, p_pos, p_neg, z, wz):
    """Training loss per sample and training error of the teacher at its fixed point.

    The trained preactivation of a training sample is the proximal point ``h*(om~)``, which is
    increasing in ``om~``; it changes sign where ``om~ = V l'(0)``, so the training error is a
    Gaussian probability in closed form (no quadrature of a step function).
    """
    width = math.sqrt(delta * q)
    loss = 0.0
    error = 0.0
    for cls in range(2):
        s, pc, p = class_sign_weight_target(cls, rho, p_pos, p_neg)
        h = s * m + b
        for k in range(z.size):
            omega = s * m + b + width * z[k]
            h, _ = teacher_prox(omega, V, loss_kind, s, p, h)
            loss += pc * wz[k] * teacher_loss_value(h, loss_kind, s, p)
        if loss_kind == LOSS_SQUARE:
            omega_zero = -V * (0.0 - s)  # h* = 0  <=>  omega = V l'(0) = -V s
        else:
            omega_zero = V * (0.5 - p)
        # y = 1 is misclassified when om~ < omega_zero, y = 0 when om~ > omega_zero.
        error += pc * gaussian_cdf(s * (omega_zero - s * m - b) / width)
    return loss, error


@njit(cache=True)
def teacher_node_fields(m, q, V, b, rho, delta, loss_kind, p_pos, p_neg, z, h_out, f_out, a_out):
    """Teacher's trained preactivation ``h~*``, response ``f~`` and curvature ``a~`` per node.

    Fills arrays of shape ``(2, len(z))`` (class, node) used by the student channel. With
    ``V = 0`` (Bayes-optimal proxy teacher, not trained on the samples) ``h~* = om~`` and
    ``f~ = 0``.
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
                a_out[cls, k] = 0.0
                continue
            h, a = teacher_prox(omega, V, loss_kind, s, p, h)
            h_out[cls, k] = h
            f_out[cls, k] = (h - omega) / V
            a_out[cls, k] = a


@njit(cache=True)
def teacher_field_probes(m, q, V, b, rho, delta, loss_kind, p_pos, p_neg, temperature, z, out):
    """Order-one functions of the teacher's fields whose averages a quadrature must resolve.

    Fills ``out`` of shape ``(8, len(z))``: for each class, the soft output
    ``sigma(h~*/T)``, the displacement ``(h~* - om~) / sqrt(delta q~)`` (``V~ f~`` in units of
    the field width), the saturation ``a~ V~ / (1 + a~ V~)`` and ``4 sigma'(h~*/T)``. These
    are what the teacher's channel and the student's (through its targets, its cross-curvature
    ``c`` and the self-fit shift ``V_S f~``) depend on. At vanishing ridge ``h~*(om~)`` is
    nearly a hinge and the displacement has a kink that Gauss-Hermite rules resolve badly
    (see :func:`saddle.quadrature.adaptive_gaussian_rule`).
    """
    width = math.sqrt(delta * q)
    for cls in range(2):
        s, _, p = class_sign_weight_target(cls, rho, p_pos, p_neg)
        h = s * m + b
        a = 0.0
        omega_prev = h
        for k in range(z.size):
            omega = s * m + b + width * z[k]
            if V == 0.0:
                h, a = omega, 0.0
            else:
                guess = h + (omega - omega_prev) / (1.0 + a * V)
                h, a = teacher_prox(omega, V, loss_kind, s, p, guess)
            omega_prev = omega
            x = h / temperature
            out[4 * cls, k] = sigmoid(x)
            out[4 * cls + 1, k] = (h - omega) / width
            out[4 * cls + 2, k] = a * V / (1.0 + a * V)
            out[4 * cls + 3, k] = 4.0 * sigmoid_prime(x)

# Composite rules split at the kinks of the student's proximal map (see
# :func:`student_split_rule`): truncation of the Gaussian, largest panel, and the most panels.
SPLIT_CUTOFF = 8.5
SPLIT_MAX_PANEL = 1.0
SPLIT_MAX_PANELS = 480
SPLIT_MIN_WIDTH = 1e-9
# Below this value of ``V a(0)`` the proximal map has no sharp kink (it is smooth on the scale
# of the field): no splitting.
KINK_MIN_SATURATION = 4.0


@njit(cache=True)
def student_curvature_slope(h, chi, kd_weight, temperature):
    """``a'(h) = (1 - chi) sigma''(h) + (kd_weight / T^3) sigma''(h / T)``."""
    x = h / temperature
    s1 = sigmoid(h)
    s2 = sigmoid(x)
    return (1.0 - chi) * sigmoid_prime(h) * (1.0 - 2.0 * s1) + kd_weight * sigmoid_prime(x) * (
        1.0 - 2.0 * s2
    ) / (temperature * temperature * temperature)


@njit(cache=True)
def student_kink(V, chi, kd_weight, temperature):
    """Where the student's proximal map bends: ``(h_k, width)``, or ``(0, 0)`` if it does not.

    The loss curvature ``a(h)`` (:func:`student_curvature`) is even and decreasing in ``|h|``
    and does not depend on the targets. Where ``V a >> 1`` the proximal point barely moves
    (``f = (h* - om)/V`` is linear in ``om`` with slope ``-1/V``); where ``V a << 1`` the loss
    saturates (``f`` is constant). The crossover ``V a(h_k) = 1`` is a kink of ``f(om)`` at
    ``om = +-h_k + V L'(+-h_k)``, of width ``(1 + a V) a / |a'| = 2 a / |a'|`` in ``om`` (the
    scale of the loss there, ~``min(1, T)``). Found by bisection (``a`` is monotone).
    """
    if V * student_curvature(0.0, chi, kd_weight, temperature) <= KINK_MIN_SATURATION:
        return 0.0, 0.0
    # sigma'(x) <= exp(-|x|): beyond hi both terms are below 1 / (2 V).
    hi = 1.0
    if chi < 1.0:
        hi = max(hi, math.log(2.0 * V * (1.0 - chi) + 1.0) + 1.0)
    if kd_weight > 0.0:
        hi = max(hi, temperature * (math.log(2.0 * V * kd_weight / temperature**2 + 1.0) + 1.0))
    lo = 0.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if V * student_curvature(mid, chi, kd_weight, temperature) > 1.0:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * (1.0 + hi):
            break
    h_k = 0.5 * (lo + hi)
    a = student_curvature(h_k, chi, kd_weight, temperature)
    slope = abs(student_curvature_slope(h_k, chi, kd_weight, temperature))
    return h_k, 2.0 * a / max(slope, 1e-300)


@njit(cache=True)
def student_loss_slope(h, chi, p, kd_weight, temperature, t):
    """``L'(h) = (1 - chi) (sigma(h) - p) + (kd_weight / T) (sigma(h / T) - t)``."""
    return (1.0 - chi) * (sigmoid(h) - p) + kd_weight * (sigmoid(h / temperature) - t) / temperature


@njit(cache=True)
def student_split_rule(kink_lo, kink_mid, kink_hi, width, gx, gw, z_out, w_out):
    """A composite Gauss-Legendre rule for ``E[g(Z)]`` graded towards three kinks of ``g``.

    Panels on ``[-8.5, 8.5]`` shrink geometrically towards the kinks ``kink_lo, kink_mid,
    kink_hi``
    (in units of ``Z``), down to ``width`` (the kinks' own width): a panel ahead of a kink at
    distance ``d`` has length ``d / 2``, one behind it length ``d``, so that the nearest
    singularity of ``g`` is at least three half-lengths from each panel's centre and
    ``len(gx)`` Gauss-Legendre points per panel converge like ``(3 + sqrt 8)^(-2 len(gx))``.
    Panels are at most ``SPLIT_MAX_PANEL`` long. Fills ``z_out``, ``w_out`` (weights times
    the Gaussian density, normalised) and returns the number of nodes.
    """
    order = gx.size
    # Kinks narrower than this (in units of Z) are resolved well enough by a panel this wide
    # (the error of a smoothed kink is ~ its slope jump times the panel's mass squared); the
    # floor also keeps every panel wide enough to move x in floating point.
    width = max(width, SPLIT_MIN_WIDTH)
    x = -SPLIT_CUTOFF
    n = 0
    total = 0.0
    for panel in range(SPLIT_MAX_PANELS):
        if x >= SPLIT_CUTOFF:
            break
        # Distance to the next kink ahead and to the last kink behind.
        ahead = np.inf
        behind = np.inf
        for k in (kink_lo, kink_mid, kink_hi):
            if k > x:
                ahead = min(ahead, k - x)
            else:
                behind = min(behind, x - k)
        size = min(SPLIT_MAX_PANEL, max(width, 0.5 * ahead), max(width, behind))
        if panel == SPLIT_MAX_PANELS - 1:  # out of panels (not reached for widths >= 1e-9)
            size = SPLIT_CUTOFF - x
        size = min(size, SPLIT_CUTOFF - x)
        half = 0.5 * size
        mid = x + half
        for i in range(order):
            z = mid + half * gx[i]
            w = half * gw[i] * math.exp(-0.5 * z * z)
            z_out[n] = z
            w_out[n] = w
            total += w
            n += 1
        x += size
    for i in range(n):
        w_out[i] /= total
    return n


@njit(cache=True)
def student_z2_rule(split, centre, sd_2, V, chi, p, kd_weight, temperature, t, h_k, width,
                    z2, w2, gx, gw, z_out, w_out):  # fmt: skip
    """The ``z2`` rule at one ``z1`` node: the fixed rule ``(z2, w2)``, or, with ``split``, the
    rule of :func:`student_split_rule` graded towards this node's two kinks and towards the
    image of ``h* = 0``, where the loss curvature peaks: with two terms of very different
    temperatures the narrow one makes a step of width ~``min(1, T) (1 + a(0) V)`` there.
    Returns its size.
    """
    if not split or width <= 0.0 or sd_2 <= 0.0:
        for j in range(z2.size):
            z_out[j] = z2[j]
            w_out[j] = w2[j]
        return z2.size
    om_hi = h_k + V * student_loss_slope(h_k, chi, p, kd_weight, temperature, t)
    om_lo = -h_k + V * student_loss_slope(-h_k, chi, p, kd_weight, temperature, t)
    om_0 = V * student_loss_slope(0.0, chi, p, kd_weight, temperature, t)
    peak = min(1.0, temperature) * (1.0 + V * student_curvature(0.0, chi, kd_weight, temperature))
    return student_split_rule((om_lo - centre) / sd_2, (om_0 - centre) / sd_2,
                              (om_hi - centre) / sd_2, min(width, peak) / sd_2,
                              gx, gw, z_out, w_out)  # fmt: skip


@njit(cache=True)
def student_prox(omega, V, chi, p, kd_weight, temperature, t, h_guess):
    """Student's proximal point for ``(1 - chi) CE(p, sigma(h)) + kd_weight CE(t, sigma(h/T))``."""
    return prox_tempered_logistic(omega, V, 1.0 - chi, 1.0, p, kd_weight, temperature, t, h_guess)


@njit(cache=True)
def student_curvature(h, chi, kd_weight, temperature):
    """``a = d^2 L/dh^2 = (1 - chi) sigma'(h) + (kd_weight / T^2) sigma'(h / T)``."""
    return (1.0 - chi) * sigmoid_prime(h) + kd_weight * sigmoid_prime(h / temperature) / (
        temperature * temperature
    )


@njit(cache=True)
def student_channel_averages(
    m, q, S, V, V_S, b, rho, delta, q_t, V_t, teacher_h, teacher_f, teacher_a,
    p_pos, p_neg, chi, temperature, kd_weight, z1, w1, z2, w2, gx, gw,
):  # fmt: skip
    """Gaussian averages of the student channel over the grid ``(z1, z2)``.

    Equations: docs/saddle_point.md §3 (paper Eq. 93-97).

    Returns ``(E[s f], E[f^2], E[a/(1+aV)], E[f f~], E[(c - a a~ V_S)/((1+a~V~)(1+aV))], E[f])``,
    or NaNs if ``q < S^2 / q~`` (outside the domain). The ``z2`` rule is ``(z2, w2)`` at every
    ``z1`` node, or, if ``gx`` (Gauss-Legendre nodes, weights ``gw`` on ``[-1, 1]``) is not
    empty, a composite rule graded towards that node's kinks (:func:`student_z2_rule`).
    """
    residual_var = q - S * S / q_t
    if residual_var < 0.0 or V <= 0.0:
        nan = np.nan
        return nan, nan, nan, nan, nan, nan
    sd_1 = math.sqrt(delta) * S / math.sqrt(q_t)
    sd_2 = math.sqrt(delta * residual_var)
    split = gx.size > 0
    h_k, width = student_kink(V, chi, kd_weight, temperature) if split else (0.0, 0.0)
    zb = np.empty(z2.size + SPLIT_MAX_PANELS * gx.size)
    wb = np.empty(zb.size)
    esf = ef2 = ea = eff = ex = ef = 0.0
    for cls in range(2):
        s, pc, p = class_sign_weight_target(cls, rho, p_pos, p_neg)
        for i in range(z1.size):
            h_t = teacher_h[cls, i]
            f_t = teacher_f[cls, i]
            a_t = teacher_a[cls, i]
            t = sigmoid(h_t / temperature)
            c = kd_loss_cross_derivative(h_t, temperature, kd_weight)
            centre = s * m + b + sd_1 * z1[i] + V_S * f_t
            n2 = student_z2_rule(split, centre, sd_2, V, chi, p, kd_weight, temperature, t,
                                 h_k, width, z2, w2, gx, gw, zb, wb)  # fmt: skip
            h, a, omega_prev = centre, 0.0, centre
            for j in range(n2):
                omega = centre + sd_2 * zb[j]
                guess = h + (omega - omega_prev) / (1.0 + a * V)
                h, a = prox_tempered_logistic_curvature(
                    omega, V, 1.0 - chi, 1.0, p, kd_weight, temperature, t, guess
                )
                omega_prev = omega
                f = (h - omega) / V
                r = 1.0 / (1.0 + a * V)
                w = pc * w1[i] * wb[j]
                esf += w * s * f
                ef2 += w * f * f
                ea += w * a * r
                eff += w * f * f_t
                ex += w * (c - a * a_t * V_S) * r / (1.0 + a_t * V_t)
                ef += w * f
    return esf, ef2, ea, eff, ex, ef


@njit(cache=True)
def student_training_observables(
    m, q, S, V, V_S, b, rho, delta, q_t, teacher_h, teacher_f,
    p_pos, p_neg, chi, temperature, kd_weight, z1, w1, z2, w2, gx, gw,
):  # fmt: skip
    """Student's training observables at its fixed point.

    Returns ``(train_loss, train_ce, train_error, mse_outputs, mse_preactivations)``: the mean
    KD loss per sample, the mean ``CE(p, sigma(h))``, the fraction of misclassified training
    labels, and the mean squared teacher-student distance of outputs ``sigma(h~) - sigma(h)``
    and of preactivations ``h~ - h`` on the training set (paper App. C, Fig. 11).

    The training error integrates, for each ``z1``, the Gaussian probability in ``z2`` that the
    (monotone) proximal point is on the wrong side of zero. The ``z2`` rules are those of
    :func:`student_channel_averages`.
    """
    residual_var = max(q - S * S / q_t, 0.0)
    sd_1 = math.sqrt(delta) * S / math.sqrt(q_t)
    sd_2 = math.sqrt(delta * residual_var)
    split = gx.size > 0
    h_k, width = student_kink(V, chi, kd_weight, temperature) if split else (0.0, 0.0)
    zb = np.empty(z2.size + SPLIT_MAX_PANELS * gx.size)
    wb = np.empty(zb.size)
    loss = ce = error = mse_out = mse_pre = 0.0
    for cls in range(2):
        s, pc, p = class_sign_weight_target(cls, rho, p_pos, p_neg)
        for i in range(z1.size):
            h_t = teacher_h[cls, i]
            t = sigmoid(h_t / temperature)
            centre = s * m + b + sd_1 * z1[i] + V_S * teacher_f[cls, i]
            n2 = student_z2_rule(split, centre, sd_2, V, chi, p, kd_weight, temperature, t,
                                 h_k, width, z2, w2, gx, gw, zb, wb)  # fmt: skip
            h = centre
            for j in range(n2):
                omega = centre + sd_2 * zb[j]
                h = student_prox(omega, V, chi, p, kd_weight, temperature, t, h)
                w = pc * w1[i] * wb[j]
                loss += w * kd_loss(h, p, h_t, chi, temperature, kd_weight)
                ce += w * (softplus(h) - p * h)
                d_out = sigmoid(h_t) - sigmoid(h)
                mse_out += w * d_out * d_out
                mse_pre += w * (h_t - h) * (h_t - h)
            # h* = 0 exactly when omega = V L'(0); below it h* < 0.
            omega_zero = V * (
                (1.0 - chi) * (0.5 - p) + kd_weight * (0.5 - t) / temperature
            )
            gap = omega_zero - centre
            if sd_2 > 0.0:
                below = gaussian_cdf(gap / sd_2)
            else:
                below = 1.0 if gap > 0.0 else 0.0
            error += pc * w1[i] * (below if s > 0.0 else 1.0 - below)
    return loss, ce, error, mse_out, mse_pre


@njit(cache=True)
def student_channel_marginals(
    m, q, S, V, V_S, b, rho, delta, q_t, V_t, teacher_h, teacher_f, teacher_a,
    p_pos, p_neg, chi, temperature, kd_weight, z1, w1, z2, w2, gx, gw, out1, out2,
):  # fmt: skip
    """The student's channel integrands averaged over one direction, for quadrature checks.

    For the six integrands ``g_k(z1, z2)`` of :func:`student_channel_averages`, in units of
    order one (``s f / F``, ``f^2 / F^2``, ``a V / (1 + a V)``, ``f f~ / F``, ``V (c - a a~
    V_S) / ((1 + a~ V~)(1 + a V))`` and ``f / F``, with ``F = (1 - chi) + kd_weight / T`` the
    largest possible ``|f|``), summed over the classes with their weights, fills

        out1[k, i] = sum_j w2_j g_k(z1_i, z2_j)    (the z2-average at each z1 node),
        out2[k, j] = sum_i w1_i g_k(z1_i, z2_j)    (the z1-average at each z2 node),

    so that ``out1 @ w1 = out2 @ w2`` are the channel averages. A rule in ``z1`` resolves
    the channel when it integrates the rows of ``out1`` accurately, and likewise in ``z2``.
    With split ``z2`` rules (``gx`` not empty, see :func:`student_channel_averages`) the
    nodes differ between ``z1`` nodes and ``out2`` is left at zero.
    At small ``lam_s`` the susceptibility ``V`` is large and the student's proximal point is
    nearly piecewise linear in the cavity field, with two kinks of width ~``T``; over a wide
    residual field ``sqrt(delta (q - S^2/q~))`` they are too sharp for a Gauss-Hermite rule.
    """
    out1[:, :] = 0.0
    out2[:, :] = 0.0
    residual_var = q - S * S / q_t
    if residual_var < 0.0 or V <= 0.0:
        out1[:, :] = np.nan
        out2[:, :] = np.nan
        return
    sd_1 = math.sqrt(delta) * S / math.sqrt(q_t)
    sd_2 = math.sqrt(delta * residual_var)
    scale = (1.0 - chi) + kd_weight / temperature
    split = gx.size > 0
    h_k, width = student_kink(V, chi, kd_weight, temperature) if split else (0.0, 0.0)
    zb = np.empty(z2.size + SPLIT_MAX_PANELS * gx.size)
    wb = np.empty(zb.size)
    for cls in range(2):
        s, pc, p = class_sign_weight_target(cls, rho, p_pos, p_neg)
        for i in range(z1.size):
            h_t = teacher_h[cls, i]
            f_t = teacher_f[cls, i]
            a_t = teacher_a[cls, i]
            t = sigmoid(h_t / temperature)
            c = kd_loss_cross_derivative(h_t, temperature, kd_weight)
            centre = s * m + b + sd_1 * z1[i] + V_S * f_t
            n2 = student_z2_rule(split, centre, sd_2, V, chi, p, kd_weight, temperature, t,
                                 h_k, width, z2, w2, gx, gw, zb, wb)  # fmt: skip
            h, a, omega_prev = centre, 0.0, centre
            for j in range(n2):
                omega = centre + sd_2 * zb[j]
                guess = h + (omega - omega_prev) / (1.0 + a * V)
                h, a = prox_tempered_logistic_curvature(
                    omega, V, 1.0 - chi, 1.0, p, kd_weight, temperature, t, guess
                )
                omega_prev = omega
                f = (h - omega) / V / scale
                r = 1.0 / (1.0 + a * V)
                values = (
                    s * f, f * f, a * V * r, f * f_t,
                    V * (c - a * a_t * V_S) * r / (1.0 + a_t * V_t), f,
                )  # fmt: skip
                for k in range(6):
                    out1[k, i] += pc * wb[j] * values[k]
                    if not split:
                        out2[k, j] += pc * w1[i] * values[k]
