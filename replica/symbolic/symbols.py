"""Symbols of the replica-symmetric computation, in the conventions of the numeric code.

Conventions (docs/conventions.md §1, :mod:`replica.prior`): overlaps are divided by the full ``N``
(also for the ``eta``-sparse student); susceptibilities include the noise variance,
``V = Delta * delta_q`` in the paper's notation (App. A.1.2, Eq. 43); the ridge penalty is
``lam/2 |w|^2`` added to the summed loss (paper Eq. 1, Eq. 25). A tilde (suffix ``_t``) marks the
teacher; ``hat`` marks a conjugate parameter. Dictionary to the paper's App. A (Eq. 16, 88-98):

==========================  ======================================
ours                        paper
==========================  ======================================
``mhat, Qhat, Vhat``        ``m^, q^, delta q^``
``V, V_t, V_S``             ``Delta dq, Delta dq~, Delta dS``
``Qhat_x``                  ``S^`` (teacher-student noise covariance)
``Vhat_x``                  ``-delta S^`` (note the sign)
==========================  ======================================

Symbol names are plain identifiers (so :func:`sympy.lambdify` works); :data:`LATEX_NAMES` gives
their typeset form and :func:`latex` uses it.
"""

from __future__ import annotations

import sympy as sp

# Parameters of the model.
alpha, rho, Delta, eta = sp.symbols("alpha rho Delta eta", positive=True)
lam, lam_t = sp.symbols("lam lam_t", nonnegative=True)
chi = sp.Symbol("chi", nonnegative=True)
T = sp.Symbol("T", positive=True)
kd_weight = sp.Symbol("kappa", nonnegative=True)  # chi (paper) or chi T^2 (Hinton)

# Teacher order parameters and conjugates.
m_t, b_t = sp.symbols("m_t b_t", real=True)
q_t, V_t = sp.symbols("q_t V_t", positive=True)
mhat_t = sp.Symbol("mhat_t", real=True)
Qhat_t, Vhat_t = sp.symbols("Qhat_t Vhat_t", positive=True)

# Student order parameters and conjugates.
m, b, S, V_S = sp.symbols("m b S V_S", real=True)
q, V = sp.symbols("q V", positive=True)
mhat, Qhat_x, Vhat_x = sp.symbols("mhat Qhat_x Vhat_x", real=True)
Qhat, Vhat = sp.symbols("Qhat Vhat", positive=True)

# Disorder: class sign s = 2y - 1, its (soft) target p, and standard Gaussians.
s, p = sp.symbols("s p", real=True)
z, z1, z2 = sp.symbols("z z1 z2", real=True)
p_pos, p_neg = sp.symbols("p_+ p_-", real=True)  # targets of the classes y = 1 and y = 0

# Channel quantities at the proximal points (docs/saddle_point.md §3): responses f = -L'(h*),
# curvatures a = L''(h*) of teacher (tilde) and student, and the cross derivative c = d2 L /
# (dh dh~).
f, a, c = sp.symbols("f a c", real=True)
f_t, a_t = sp.symbols("f_t a_t", real=True)

# Pre-activation / proximal-point variables used when a loss is written explicitly.
h, h_t, omega = sp.symbols("h h_t omega", real=True)

LATEX_NAMES: dict[sp.Symbol, str] = {
    lam: r"\lambda",
    lam_t: r"\tilde{\lambda}",
    kd_weight: r"\kappa",
    m_t: r"\tilde{m}",
    b_t: r"\tilde{b}",
    q_t: r"\tilde{q}",
    V_t: r"\tilde{V}",
    mhat_t: r"\hat{\tilde{m}}",
    Qhat_t: r"\hat{\tilde{Q}}",
    Vhat_t: r"\hat{\tilde{V}}",
    mhat: r"\hat{m}",
    Qhat: r"\hat{Q}",
    Vhat: r"\hat{V}",
    Qhat_x: r"\hat{Q}^{\times}",
    Vhat_x: r"\hat{V}^{\times}",
    f_t: r"\tilde{f}",
    a_t: r"\tilde{a}",
    h_t: r"\tilde{h}",
    z1: r"z_1",
    z2: r"z_2",
    p_pos: r"p_{+}",
    p_neg: r"p_{-}",
}

# Quantities that depend on the disorder (averaged over by ``E[.]``): the class, the Gaussian
# fields, and the channel quantities evaluated at the fields.
RANDOM_SYMBOLS = frozenset({s, p, z, z1, z2, f, a, c, f_t, a_t})


def latex(expr: sp.Basic, **settings) -> str:
    """LaTeX of ``expr`` with the package's symbol names (``\\tilde{m}``, ``\\hat{V}``, ...)."""
    return sp.latex(expr, symbol_names=LATEX_NAMES, **settings)
