"""Averages over the disorder, kept unevaluated: ``E[.]`` over the class and Gaussian fields.

:class:`Expectation` is a linear operator: it pulls out factors that do not depend on the random
symbols (:data:`replica.symbolic.symbols.RANDOM_SYMBOLS`: the class sign ``s``, its target ``p``
and the standard Gaussians ``z, z1, z2``), splits sums, and commutes with derivatives in the
parameters (differentiation under the integral sign). :func:`integrate_by_parts` applies
Gaussian integration by parts (Stein's lemma) ``E[z g(z)] = E[g'(z)]``, the step that turns the
derivatives of the energetic term in ``q`` and ``S`` into the curvature averages of
docs/saddle_point.md §3. :func:`evaluate_polynomial` computes expectations of polynomial integrands
exactly.
"""

from __future__ import annotations

from collections.abc import Iterable

import sympy as sp

from replica.symbolic.symbols import RANDOM_SYMBOLS, p, p_neg, p_pos, rho, s


class LinearAverage(sp.Function):
    """An unevaluated average ``E[X]`` over the symbols of ``random_symbols`` (a subclass sets it).

    Linear: ``E[c X + Y] = c E[X] + E[Y]`` for ``c`` free of random symbols, and ``E[c] = c``;
    it commutes with derivatives in the parameters (differentiation under the integral sign).
    """

    nargs = 1
    random_symbols: frozenset = frozenset()

    @classmethod
    def eval(cls, arg: sp.Expr):
        if not arg.free_symbols & cls.random_symbols:
            return arg
        if arg.is_Add:
            return sp.Add(*(cls(term) for term in arg.args))
        if arg.is_Mul:
            const, rest = arg.as_independent(*cls.random_symbols, as_Add=False)
            if const != 1:
                return const * cls(rest)
        return None

    def _eval_derivative(self, x: sp.Symbol) -> sp.Expr:
        return self.func(self.args[0].diff(x))

    def _latex(self, printer, exp=None) -> str:
        tex = r"\mathbb{E}\left[" + printer._print(self.args[0]) + r"\right]"
        return tex if exp is None else f"{tex}^{{{exp}}}"


class Expectation(LinearAverage):
    """``E[X]``: average of ``X`` over the class (``s``, ``p``) and independent ``N(0, 1)`` fields.

    Linear: ``E[c X + Y] = c E[X] + E[Y]`` for ``c`` free of random symbols, and ``E[c] = c``.
    Pass ``evaluate=False`` to keep a combined integrand (for display).
    """

    random_symbols = RANDOM_SYMBOLS

    def _sympystr(self, printer) -> str:
        return f"E[{printer._print(self.args[0])}]"


def expand_outside_functions(expr: sp.Expr) -> sp.Expr:
    """Expand products and integer powers of ``expr`` without touching function arguments.

    Function applications (proximal maps, Moreau envelopes, ...) are frozen as dummies, the rest
    is expanded, and the applications are put back unchanged, so that identical applications
    stay structurally identical (and cancel).
    """
    frozen = {app: sp.Dummy() for app in expr.atoms(sp.Function)}
    thawed = {dummy: app for app, dummy in frozen.items()}
    return sp.expand(expr.xreplace(frozen)).xreplace(thawed)


def _map_expectations(expr: sp.Expr, rule) -> sp.Expr:
    return expr.replace(lambda e: isinstance(e, Expectation), rule)


def linearise(expr: sp.Expr) -> sp.Expr:
    """Expand every integrand and let :class:`Expectation` pull constants and split sums."""
    return _map_expectations(expr, lambda e: Expectation(expand_outside_functions(e.args[0])))


def _power_of(term: sp.Expr, z: sp.Symbol) -> int:
    """Exponent of ``z`` as an explicit factor of the monomial ``term`` (0 if none)."""
    power = 0
    for factor in sp.Mul.make_args(term):
        if factor == z:
            power += 1
        elif factor.is_Pow and factor.base == z and factor.exp.is_Integer and factor.exp > 0:
            power += int(factor.exp)
    return power


def _stein_once(expr: sp.Expr, z: sp.Symbol) -> sp.Expr:
    def rule(e: Expectation) -> sp.Expr:
        out = []
        for term in sp.Add.make_args(expand_outside_functions(e.args[0])):
            if _power_of(term, z):
                out.append(Expectation(sp.diff(term / z, z)))  # E[z g] = E[g']
            else:
                out.append(Expectation(term))
        return sp.Add(*out)

    return _map_expectations(expr, rule)


def integrate_by_parts(expr: sp.Expr, gaussians: Iterable[sp.Symbol], rounds: int = 8) -> sp.Expr:
    """Gaussian integration by parts ``E[z g(z)] = E[g'(z)]`` until no factor ``z`` is left.

    Parameters
    ----------
    expr : sympy expression
        Containing :class:`Expectation` objects.
    gaussians : iterable of Symbol
        Independent standard Gaussians to integrate by parts (e.g. ``(z1, z2)``).
    rounds : int
        Maximum number of passes (each lowers the explicit power of ``z`` by one).
    """
    gaussians = tuple(gaussians)
    for _ in range(rounds):
        new = expr
        for z in gaussians:
            new = _stein_once(new, z)
        if new == expr:
            return new
        expr = new
    raise RuntimeError("integration by parts did not terminate")


def single_expectation(expr: sp.Expr) -> sp.Expr:
    """The integrand ``X`` with ``expr = E[X]`` (constants go inside: ``E[c] = c``)."""
    integrand = sp.Integer(0)
    for term in sp.Add.make_args(sp.expand(expr)):
        const, rest = term.as_independent(Expectation, as_Add=False)
        integrand += const * rest.args[0] if isinstance(rest, Expectation) else term
    return integrand


def class_average(expr: sp.Expr) -> sp.Expr:
    """``E_y``: ``rho * expr(s=1, p=p_+) + (1 - rho) * expr(s=-1, p=p_-)``."""
    return rho * expr.subs({s: 1, p: p_pos}) + (1 - rho) * expr.subs({s: -1, p: p_neg})


def gaussian_moment(k: int) -> sp.Integer:
    """``E[z^k]`` for ``z ~ N(0, 1)``: ``(k - 1)!!`` for even ``k``, else 0."""
    return sp.Integer(0) if k % 2 else sp.factorial2(k - 1)


def gaussian_average(expr: sp.Expr, gaussians: Iterable[sp.Symbol]) -> sp.Expr:
    """Exact average of a polynomial in independent standard Gaussians ``gaussians``."""
    gaussians = tuple(gaussians)
    poly = sp.Poly(sp.expand(expr), *gaussians)
    total = sp.Integer(0)
    for powers, coeff in poly.terms():
        weight = sp.Integer(1)
        for k in powers:
            weight *= gaussian_moment(k)
        total += coeff * weight
    return total


def evaluate_polynomial(expr: sp.Expr, gaussians: Iterable[sp.Symbol]) -> sp.Expr:
    """Evaluate the expectations in ``expr``, whose integrands must be polynomial in ``gaussians``.

    The class average is taken after the Gaussian one (:func:`class_average`).
    """
    gaussians = tuple(gaussians)

    def rule(e: Expectation) -> sp.Expr:
        return class_average(gaussian_average(e.args[0], gaussians))

    return _map_expectations(expr, rule)
