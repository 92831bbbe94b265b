"""Saddle-point equations derived from the symbolic free entropies, simplified and typeset.

Extremising the RS free entropy (paper Eq. 51, 98) gives two halves (docs/saddle_point.md):

- derivatives in the **conjugates** give the *prior* side: the order parameters as explicit
  functions of the conjugates (the ridge prior is Gaussian, so this is a linear solve);
- derivatives in the **order parameters** give the *channel* side: each conjugate as an average
  over the cavity fields. The ``q`` and ``S`` derivatives act on the Gaussian widths of the
  fields; Gaussian integration by parts turns them into curvature averages.

The bias equation ``dPhi/db = 0`` reads ``E[f] = 0``.

Example
-------
>>> from replica.symbolic import student_saddle_point
>>> sp_ = student_saddle_point()
>>> print(sp_.latex())                             # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

from replica.symbolic.expectation import (
    Expectation,
    integrate_by_parts,
    linearise,
    single_expectation,
)
from replica.symbolic.free_entropy import student_free_entropy, teacher_free_entropy
from replica.symbolic.moreau import to_channel_symbols
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
    latex,
    m,
    m_t,
    mhat,
    mhat_t,
    q,
    q_t,
    z1,
    z2,
)

TEACHER_ORDER = (m_t, q_t, V_t)
TEACHER_CONJUGATES = (mhat_t, Qhat_t, Vhat_t)
STUDENT_ORDER = (m, q, S, V, V_S)
STUDENT_CONJUGATES = (mhat, Qhat, Vhat, Qhat_x, Vhat_x)
# Natural prefactor of each conjugate: m^ = alpha E[s f], the others alpha Delta E[...].
_PREFACTOR = {mhat: alpha, mhat_t: alpha}

# Arguments of the numeric prior functions of replica.prior, in their order.
TEACHER_PRIOR_ARGS = (mhat_t, Qhat_t, Vhat_t, lam_t, Delta)
STUDENT_PRIOR_ARGS = (mhat, Qhat, Vhat, Qhat_x, Vhat_x, lam, eta, Delta, m_t, q_t, V_t)


@dataclass(frozen=True)
class SaddlePoint:
    """Saddle-point equations of one free entropy.

    Attributes
    ----------
    name : str
    free_entropy : sympy expression
        The RS free entropy that was differentiated.
    prior : dict
        Order parameter -> expression in the conjugates (and teacher overlaps): the prior side.
    channel : dict
        Conjugate -> ``prefactor * E[integrand]`` in the channel symbols ``f, a, c, f~, a~``.
    bias : sympy expression
        Integrand whose expectation vanishes at the saddle point (``f`` or ``f~``).
    """

    name: str
    free_entropy: sp.Expr
    prior: dict
    channel: dict
    bias: sp.Expr

    def equations(self) -> list[sp.Eq]:
        """All equations, channel side first, as ``sympy.Eq`` (unevaluated)."""
        eqs = [sp.Eq(k, v, evaluate=False) for k, v in self.channel.items()]
        eqs.append(sp.Eq(Expectation(self.bias, evaluate=False), 0, evaluate=False))
        eqs += [sp.Eq(k, v, evaluate=False) for k, v in self.prior.items()]
        return eqs

    def latex(self) -> str:
        """The equations as a LaTeX ``aligned`` block (paste into ``$$ ... $$``)."""
        return equations_latex(self.equations())

    def prior_function(self, args: Sequence[sp.Symbol]) -> Callable:
        """Lambdified prior side: ``f(*args) -> tuple`` in the order of :attr:`prior`."""
        return sp.lambdify(args, tuple(self.prior.values()), modules="math")


def equations_latex(equations: Iterable[sp.Eq]) -> str:
    """``\\begin{aligned} lhs &= rhs \\\\ ... \\end{aligned}`` with the package's symbol names."""
    rows = [f"{latex(eq.lhs)} &= {latex(eq.rhs)}" for eq in equations]
    return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"


def prior_equations(
    phi: sp.Expr, conjugates: Sequence[sp.Symbol], unknowns: Sequence[sp.Symbol]
) -> dict:
    """Solve ``dPhi/d(conjugate) = 0`` for the order parameters ``unknowns`` (prior side)."""
    solutions = sp.solve([sp.diff(phi, x) for x in conjugates], list(unknowns), dict=True)
    if len(solutions) != 1:
        raise ValueError(f"prior equations have {len(solutions)} solutions")
    return {u: sp.factor(sp.simplify(solutions[0][u])) for u in unknowns}


def stationarity(phi: sp.Expr, x: sp.Symbol, gaussians: Sequence[sp.Symbol]) -> sp.Expr:
    """``dPhi/dx`` with integration by parts done and proximal points in channel symbols."""
    derivative = integrate_by_parts(linearise(sp.diff(phi, x)), gaussians)
    return linearise(to_channel_symbols(derivative))


def simplify_average(expr: sp.Expr, prefactor: sp.Expr) -> sp.Expr:
    """Write ``expr`` as ``prefactor * E[integrand]`` with a factored integrand."""
    integrand = sp.factor(sp.cancel(single_expectation(sp.expand(expr / prefactor))))
    numerator, denominator = sp.fraction(integrand)  # expanded numerator, factored denominator
    return prefactor * Expectation(sp.expand(numerator) / denominator, evaluate=False)


def channel_equations(
    phi: sp.Expr,
    order_parameters: Sequence[sp.Symbol],
    conjugates: Sequence[sp.Symbol],
    gaussians: Sequence[sp.Symbol],
) -> dict:
    """Solve ``dPhi/d(order parameter) = 0`` for the conjugate it contains (channel side)."""
    out = {}
    for x in order_parameters:
        eq = stationarity(phi, x, gaussians)
        (conjugate,) = [c for c in conjugates if eq.has(c)]
        (solution,) = sp.solve(eq, conjugate)
        out[conjugate] = simplify_average(solution, _PREFACTOR.get(conjugate, alpha * Delta))
    return dict(sorted(out.items(), key=lambda kv: conjugates.index(kv[0])))


def bias_condition(phi: sp.Expr, bias: sp.Symbol, gaussians: Sequence[sp.Symbol]) -> sp.Expr:
    """Integrand ``X`` of the bias stationarity ``dPhi/db = alpha E[X] = 0``."""
    return sp.factor(single_expectation(stationarity(phi, bias, gaussians) / alpha))


@lru_cache(maxsize=1)
def teacher_saddle_point() -> SaddlePoint:
    """Teacher's saddle point from :func:`~replica.symbolic.free_entropy.teacher_free_entropy`.

    Channel: ``m^~ = alpha E[s f~]``, ``Q^~ = alpha Delta E[f~^2]``,
    ``V^~ = alpha Delta E[a~/(1 + a~ V~)]``; prior: ``m~ = m^~/D~``, ``q~ = (m^~^2 + Q^~)/D~^2``,
    ``V~ = Delta/D~`` with ``D~ = lam~ + V^~`` (compare :func:`replica.prior.ridge_teacher_prior`).
    """
    phi = teacher_free_entropy()
    return SaddlePoint(
        name="teacher",
        free_entropy=phi,
        prior=prior_equations(phi, TEACHER_CONJUGATES, TEACHER_ORDER),
        channel=channel_equations(phi, TEACHER_ORDER, TEACHER_CONJUGATES, (z1,)),
        bias=bias_condition(phi, b_t, (z1,)),
    )


def teacher_conjugates_from_overlaps() -> dict:
    """Invert the teacher's prior side: ``(m^~, Q^~, V^~)`` as functions of ``(m~, q~, V~)``.

    ``V^~ = Delta/V~ - lam~``, ``m^~ = Delta m~/V~``, ``Q^~ = Delta^2 (q~ - m~^2)/V~^2``.
    """
    prior = teacher_saddle_point().prior
    solutions = sp.solve(
        [sp.Eq(x, prior[x]) for x in TEACHER_ORDER], list(TEACHER_CONJUGATES), dict=True
    )
    (solution,) = solutions
    return solution


@lru_cache(maxsize=1)
def student_saddle_point() -> SaddlePoint:
    """Student's saddle point from :func:`~replica.symbolic.free_entropy.student_free_entropy`.

    The prior side is expressed with the teacher's overlaps ``(m~, q~, V~)`` (the teacher's
    conjugates eliminated by :func:`teacher_conjugates_from_overlaps`), as in
    :func:`replica.prior.ridge_student_prior`.
    """
    phi = student_free_entropy()
    in_conjugates = prior_equations(phi, STUDENT_CONJUGATES, STUDENT_ORDER)
    to_overlaps = teacher_conjugates_from_overlaps()
    prior = {x: sp.factor(sp.simplify(expr.subs(to_overlaps))) for x, expr in in_conjugates.items()}
    return SaddlePoint(
        name="student",
        free_entropy=phi,
        prior=prior,
        channel=channel_equations(phi, STUDENT_ORDER, STUDENT_CONJUGATES, (z1, z2)),
        bias=bias_condition(phi, b, (z1, z2)),
    )
