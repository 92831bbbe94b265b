"""Moreau envelopes and proximal responses of the channel losses, as sympy functions.

For a convex loss ``L(h; theta)`` and a step ``V > 0``
(docs/saddle_point.md §1; paper Eq. 50, 94-97 in our normalisation ``V = Delta * delta_q``):

    M(omega, V; theta) = min_h (h - omega)^2 / (2 V) + L(h; theta)      (Moreau envelope)
    h*(omega, V; theta) = argmin of the same                            (proximal map)

The zero-temperature energetic term of the free entropy is ``-alpha E[M]`` (paper Eq. 49-50:
``M_E = max_u [-u^2/2 - l] = -M`` with ``h = omega + sqrt(V) u``). Neither map has a closed form
for the logistic loss, but their derivatives do, and that is all the saddle point needs:

- ``dM/domega = (omega - h*)/V = -f``,  ``dM/dV = -(h* - omega)^2/(2 V^2) = -f^2/2``,
  ``dM/dtheta = dL/dtheta(h*)`` (envelope theorem);
- from the stationarity ``h* - omega + V L'(h*) = 0``, the response ``f = (h* - omega)/V``
  has ``df/domega = -a/(1 + V a)``, ``df/dV = -a f/(1 + V a)`` and
  ``df/dtheta = -(d2L/(dh dtheta))/(1 + V a)``, with ``a = L''(h*)``.

The teacher's loss ``l(y, h)`` depends on the class only; the student's KD loss
``L(y, h~, h)`` also on the teacher's pre-activation ``h~`` (its parameter ``theta``).
"""

from __future__ import annotations

import sympy as sp

from replica.symbolic.symbols import a, a_t, c, f, f_t, h


def _call(name: str, arguments: str) -> str:
    """LaTeX of a function call ``name(arguments)``."""
    return name + r"\left(" + arguments + r"\right)"


def _arguments(printer, args) -> str:
    return ", ".join(printer._print(x) for x in args)


class LossCurvature(sp.Function):
    """``l''(h)``: curvature of the teacher's loss (abstract)."""

    nargs = 1

    def _latex(self, printer, exp=None) -> str:
        return _call(r"\ell''", printer._print(self.args[0]))


class KDCurvature(sp.Function):
    """``d2L/dh2 (h, h~)``: curvature of the student's KD loss (abstract)."""

    nargs = 2

    def _latex(self, printer, exp=None) -> str:
        return _call(r"\partial_h^2 L", _arguments(printer, self.args))


class KDCross(sp.Function):
    """``d2L/(dh dh~) (h, h~)``: mixed derivative of the KD loss (abstract)."""

    nargs = 2

    def _latex(self, printer, exp=None) -> str:
        return _call(r"\partial_h \partial_{\tilde{h}} L", _arguments(printer, self.args))


class KDTeacherSlope(sp.Function):
    """``dL/dh~ (h, h~)`` (abstract; only needed for the envelope's derivative in ``h~``)."""

    nargs = 2


class _Response(sp.Function):
    """``f(omega, V, *theta) = (h* - omega)/V = -L'(h*)``, ``h* = argmin_h (h - omega)^2/(2V) + L``.

    The response is the primitive (rather than ``h*``) so that the cavity field cancels exactly
    and every dependence on the Gaussian fields stays explicit for integration by parts.
    """

    _loss_tex = "L"

    def proximal_point(self) -> sp.Expr:
        omega, V = self.args[:2]
        return omega + V * self

    def curvature(self) -> sp.Expr:
        raise NotImplementedError

    def cross(self) -> sp.Expr:
        raise NotImplementedError

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        # From h* - omega + V L'(h*) = 0 (see the module docstring).
        V = self.args[1]
        curvature = self.curvature()
        response = 1 / (1 + V * curvature)
        if argindex == 1:
            return -curvature * response
        if argindex == 2:
            return -curvature * self * response
        return -self.cross() * response

    def _latex(self, printer, exp=None) -> str:
        omega, V = self.args[:2]
        tex = _call("f_{" + printer._print(V) + " " + self._loss_tex + "}", printer._print(omega))
        return tex if exp is None else f"{tex}^{{{exp}}}"


class TeacherResponse(_Response):
    """Teacher's response ``f~(om~, V~) = (h~* - om~)/V~`` for its loss ``l(y, .)``."""

    nargs = 2
    _loss_tex = r"\ell"

    def curvature(self) -> sp.Expr:
        return LossCurvature(self.proximal_point())


class StudentResponse(_Response):
    """Student's response ``f(omega, V, h~) = (h* - omega)/V`` for the KD loss ``L(y, h~, .)``."""

    nargs = 3

    def curvature(self) -> sp.Expr:
        return KDCurvature(self.proximal_point(), self.args[2])

    def cross(self) -> sp.Expr:
        return KDCross(self.proximal_point(), self.args[2])


class _MoreauEnvelope(sp.Function):
    """``M(omega, V, *theta) = min_h (h - omega)^2/(2V) + L(h; theta)``."""

    response: type[_Response]

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        f_star = self.response(*self.args)
        if argindex == 1:
            return -f_star
        if argindex == 2:
            return -(f_star**2) / 2
        return self.theta_slope(f_star.proximal_point())

    def theta_slope(self, h_star: sp.Expr) -> sp.Expr:
        raise NotImplementedError

    def _latex(self, printer, exp=None) -> str:
        omega, V = self.args[:2]
        envelope = r"\mathcal{M}_{" + printer._print(V) + r"}\left[" + self.response._loss_tex
        tex = _call(envelope + r"\right]", printer._print(omega))
        return tex if exp is None else f"{tex}^{{{exp}}}"


class TeacherMoreau(_MoreauEnvelope):
    """Moreau envelope of the teacher's loss."""

    nargs = 2
    response = TeacherResponse


class StudentMoreau(_MoreauEnvelope):
    """Moreau envelope of the student's KD loss (parameter: the teacher's pre-activation)."""

    nargs = 3
    response = StudentResponse

    def theta_slope(self, h_star: sp.Expr) -> sp.Expr:
        return KDTeacherSlope(h_star, self.args[2])


def to_channel_symbols(expr: sp.Expr) -> sp.Expr:
    """Rewrite responses and loss derivatives with the symbols of docs/saddle_point.md §1.

    Student ``f``, ``a = d2L/dh2``, ``c = d2L/(dh dh~)``; teacher ``f~``, ``a~ = l''(h~*)``.
    """
    expr = expr.replace(LossCurvature, lambda *_: a_t)
    expr = expr.replace(KDCurvature, lambda *_: a).replace(KDCross, lambda *_: c)
    return expr.replace(StudentResponse, lambda *_: f).replace(TeacherResponse, lambda *_: f_t)


def proximal_point(loss: sp.Expr, omega: sp.Expr, V: sp.Expr) -> sp.Expr:
    """Closed-form ``argmin_h (h - omega)^2/(2V) + loss(h)`` (``loss`` an expression in ``h``).

    Raises ``ValueError`` when sympy finds no unique explicit solution (e.g. the logistic loss).
    """
    solutions = sp.solve(sp.diff((h - omega) ** 2 / (2 * V) + loss, h), h)
    if len(solutions) != 1:
        raise ValueError(f"no unique closed-form proximal point for {loss}: {solutions}")
    return sp.simplify(solutions[0])


def moreau_envelope(loss: sp.Expr, omega: sp.Expr, V: sp.Expr) -> sp.Expr:
    """Closed-form Moreau envelope ``min_h (h - omega)^2/(2V) + loss(h)``."""
    h_star = proximal_point(loss, omega, V)
    return sp.simplify(((h - omega) ** 2 / (2 * V) + loss).subs(h, h_star))
