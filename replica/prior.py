"""Prior (entropic) half of the saddle point: the ridge penalty
(docs/saddle_point.md §4, paper App. A).

Given the conjugate parameters produced by the channel, the ridge prior is Gaussian, so each
weight is an explicit linear function of the cluster direction ``v_i`` and of a Gaussian
cavity noise ``xi_i``:

- teacher:  ``w~_i = (m^~ v_i + xi~_i) / D~``,  ``D~ = lam_t + V^~`` (all N coordinates);
- student:  ``w_i = (m^ v_i + xi_i - V^x w~_i) / D``,  ``D = lam_s + V^`` (its eta N coordinates),

with ``Cov(xi~, xi) = [[Q^~, Q^x], [Q^x, Q^]]``. Averaging over ``v_i ~ N(0, 1)`` and the noise
gives the order parameters below. Overlaps are divided by the full ``N`` (also for the student)
and the susceptibilities ``V`` include the factor ``delta`` (``V = delta * delta_q`` of the paper).

The teacher enters the student's prior only through ``m~``, ``q~`` and ``V~ = delta / D~``; we
write ``Q^x / D~ = Q^x V~ / delta`` so that the Bayes-optimal proxy teacher (``V~ = 0``, no
``D~``) is the same formula.
"""

from __future__ import annotations

import numpy as np
from numba import njit


def sparse_equivalent_problem(alpha, delta, eta, lam=0.0):
    """The ``eta``-sparse problem ``(alpha, delta, eta, lam)`` as a full one
    (docs/saddle_point.md §4, paper Sec. 3.2): ``(alpha/eta, delta/eta, lam/eta^2)``.

    A stage trained on the labels alone (``chi = 0``) on ``eta N`` of the ``N`` coordinates is
    the teacher of this problem (same ``m``, ``b`` and test error; ``q = q'/eta``); the
    Bayes-optimal and separability bounds of a sparse classifier follow the same map. Works on
    numbers and on sympy symbols.
    """
    return alpha / eta, delta / eta, lam / eta**2


@njit(cache=True)
def ridge_teacher_prior(mhat, Qhat, Vhat, lam, delta):
    """Teacher overlaps from its conjugates
    (paper Eq. 46-48 in our normalisation; docs/saddle_point.md §2).

    Returns ``(m, q, V) = (m^/D, (m^^2 + Q^)/D^2, delta/D)`` with ``D = lam + V^``, or NaNs
    when ``D`` or ``D^2`` is not positive (``lam = 0`` and a channel curvature that underflowed, far
    from any fixed point): the fixed-point solver rejects such a step.
    """
    D = lam + Vhat
    if not (D > 0.0 and D * D > 0.0):  # D^2 underflows at D < 1e-154
        return np.nan, np.nan, np.nan
    return mhat / D, (mhat * mhat + Qhat) / (D * D), delta / D


@njit(cache=True)
def ridge_student_prior(
    mhat, Qhat, Vhat, Qhat_x, Vhat_x, lam, eta, delta, m_t, q_t, V_t
):
    """Student overlaps from its conjugates and the teacher's overlaps
    (docs/saddle_point.md §4, prior side).

    Returns ``(m, q, S, V, V_S)``::

        m   = eta (m^ - V^x m~) / D
        S   = eta (m^ m~ + Q^x V~/delta - V^x q~) / D
        q   = eta (m^^2 + Q^ - 2 V^x (m^ m~ + Q^x V~/delta) + V^x^2 q~) / D^2
        V   = eta delta / D
        V_S = -eta V^x V~ / D          (= -eta delta V^x / (D~ D))

    with ``D = lam + V^``. ``V_S`` is the student's linear response to the teacher's own fit of
    a training sample (the ``(dS/dq~) lambda~`` term of paper Eq. 96). NaNs when ``D`` is not
    positive (see :func:`ridge_teacher_prior`).
    """
    D = lam + Vhat
    if not (D > 0.0 and D * D > 0.0):  # D^2 underflows at D < 1e-154
        nan = np.nan
        return nan, nan, nan, nan, nan
    cross = mhat * m_t + Qhat_x * V_t / delta  # E[(m^ v + xi) w~]
    m = eta * (mhat - Vhat_x * m_t) / D
    S = eta * (cross - Vhat_x * q_t) / D
    q = eta * (mhat * mhat + Qhat - 2.0 * Vhat_x * cross + Vhat_x * Vhat_x * q_t) / (D * D)
    V = eta * delta / D
    V_S = -eta * Vhat_x * V_t / D
    return m, q, S, V, V_S
