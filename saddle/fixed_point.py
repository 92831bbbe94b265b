"""Damped, Anderson-accelerated fixed-point iteration with a convergence report.

Solves ``x = F(x)`` for a map ``F`` handed in by the caller (the replica saddle-point
equations, or anything else: this module knows nothing about the physics).

Each iteration takes the damped Picard step ``x + beta (F(x) - x)``, accelerated by Anderson
mixing over the last few residuals (Walker & Ni 2011, "type II"). Safeguards:

- an accelerated point where ``F`` is not finite (the map returns NaN outside its domain, e.g.
  a negative variance), or whose residual exceeds ``growth`` times the best one, is rejected:
  the history is cleared and the plain damped step is taken instead (a convex combination of
  points of the domain, so it stays inside a convex domain);
- if the plain damped step fails too, the iteration returns to the best point seen so far
  and halves the damping, down to ``MIN_DAMPING``;
- if the plain step from the best point fails at ``MIN_DAMPING``, or the iteration returns to
  the same best point at ``MIN_DAMPING`` twice, every later iteration would repeat the same
  steps (the map is deterministic, the history is cleared): the iteration stops at once with
  status 5 (the fixed point lies on, or beyond, the boundary of the map's domain as far as the
  map can resolve it), instead of spending its whole budget on identical rejections.

The report follows ``scipy.optimize.OptimizeResult`` conventions (``success``/``converged``,
``status``, ``message``, ``nit``) and is a frozen dataclass with ``to_dict()``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from saddle.results import ValueEquality

CONVERGED, MAX_ITER, NOT_FINITE, NO_FINITE_SOLUTION, UNRESOLVED, STALLED = 0, 1, 2, 3, 4, 5
#: Smallest damping of the plain step after failures (see the module docstring)
MIN_DAMPING = 1e-3
#: The columns of a solution's convergence report in a row (:meth:`ReportedSolution.convergence`)
REPORT_COLUMNS = ("converged", "nit", "residual", "status")
_MESSAGES = {
    CONVERGED: "converged: residual below tolerance",
    MAX_ITER: "not converged: maximum number of iterations reached",
    NOT_FINITE: "not converged: the map is not finite at the starting point",
    NO_FINITE_SOLUTION: "no finite solution: the order parameters diverge",
    UNRESOLVED: "not converged: the map's averages are not resolved by the quadrature",
    STALLED: "not converged: stalled at the boundary of the map's domain (every damped step "
             "from the best point leaves it)",
}


class FixedPointError(RuntimeError):
    """Raised by :meth:`FixedPointResult.raise_if_failed` when the iteration failed."""


@dataclass(frozen=True, eq=False)
class FixedPointResult(ValueEquality):
    """Outcome of :func:`solve_fixed_point`.

    Attributes
    ----------
    x : ndarray
        Last iterate (the fixed point when ``converged``).
    converged : bool
        Whether the residual fell below the tolerance.
    status : int
        0 converged, 1 iteration budget exhausted, 2 map not finite at the start, 3 no finite
        fixed point exists (set by callers that know, e.g. an unregularised problem on
        separable data, where the norm diverges; see :func:`no_finite_solution`), 4 the
        iteration converged but the caller's quadrature does not resolve the map at the fixed
        point (see :func:`unresolved_quadrature`), 5 stalled: even the most damped step from
        the best point leaves the map's domain (the fixed point lies on its boundary, or the
        map cannot resolve it there).
    message : str
        Human-readable status.
    nit : int
        Number of map evaluations.
    residual : float
        ``max_i |F(x)_i - x_i| / max(1, |x_i|)`` at the returned point.
    residual_history : tuple of float
        Residual after each evaluation.

    Results compare and hash by value (:class:`saddle.results.ValueEquality`), the array
    ``x`` included.
    """

    x: np.ndarray
    converged: bool
    status: int
    message: str
    nit: int
    residual: float
    residual_history: tuple = field(repr=False)

    @property
    def success(self) -> bool:
        """Alias of ``converged`` (``scipy.optimize`` convention)."""
        return self.converged

    def to_dict(self) -> dict:
        return {
            "converged": self.converged,
            "status": self.status,
            "message": self.message,
            "nit": self.nit,
            "residual": self.residual,
        }

    def raise_if_failed(self) -> FixedPointResult:
        if not self.converged:
            raise FixedPointError(f"{self.message} (residual {self.residual:.3g} after {self.nit})")
        return self


@njit(cache=True)
def relative_residual(x: np.ndarray, fx: np.ndarray) -> float:
    """``max_i |fx_i - x_i| / max(1, |x_i|)``; ``inf`` if anything is not finite."""
    worst = 0.0
    for i in range(x.size):
        r = abs(fx[i] - x[i]) / max(1.0, abs(x[i]))
        if not r <= worst:  # also catches NaN
            if not np.isfinite(r):
                return np.inf
            worst = r
    return worst


@njit(cache=True)
def anderson_point(x, g, dX, dG, n_cols, beta, out):
    """Anderson-mixed point ``x + beta g - (dX + beta dG) gamma`` with
    ``gamma = argmin |g - dG gamma|`` over the first ``n_cols`` columns.

    The small least-squares problem is solved through its (Tikhonov-stabilised) normal
    equations by Cholesky; nothing is allocated besides ``n_cols``-sized scratch.
    """
    k = n_cols
    A = np.empty((k, k))
    r = np.empty(k)
    scale = 0.0
    for i in range(k):
        for j in range(i + 1):
            acc = 0.0
            for n in range(x.size):
                acc += dG[n, i] * dG[n, j]
            A[i, j] = acc
            A[j, i] = acc
        scale += A[i, i]
        acc = 0.0
        for n in range(x.size):
            acc += dG[n, i] * g[n]
        r[i] = acc
    reg = 1e-12 * scale / k + 1e-300
    for i in range(k):
        A[i, i] += reg
    # Cholesky factorisation A = L L^T in place (lower triangle), then two triangular solves.
    for j in range(k):
        d = A[j, j]
        for m in range(j):
            d -= A[j, m] * A[j, m]
        if d <= 0.0:
            d = reg
        A[j, j] = np.sqrt(d)
        for i in range(j + 1, k):
            acc = A[i, j]
            for m in range(j):
                acc -= A[i, m] * A[j, m]
            A[i, j] = acc / A[j, j]
    for i in range(k):
        acc = r[i]
        for m in range(i):
            acc -= A[i, m] * r[m]
        r[i] = acc / A[i, i]
    for i in range(k - 1, -1, -1):
        acc = r[i]
        for m in range(i + 1, k):
            acc -= A[m, i] * r[m]
        r[i] = acc / A[i, i]
    for n in range(x.size):
        acc = x[n] + beta * g[n]
        for i in range(k):
            acc -= (dX[n, i] + beta * dG[n, i]) * r[i]
        out[n] = acc


def solve_fixed_point(
    update: Callable[[np.ndarray], np.ndarray],
    x0: np.ndarray,
    *,
    damping: float = 0.6,
    tol: float = 1e-10,
    max_iter: int = 5000,
    anderson_depth: int = 5,
    growth: float = 1e3,
    to_internal: Callable[[np.ndarray], np.ndarray] | None = None,
    from_internal: Callable[[np.ndarray], np.ndarray] | None = None,
) -> FixedPointResult:
    """Solve ``x = update(x)`` by damped Anderson-accelerated iteration.

    Used for the saddle points of docs/saddle_point.md (docs/numerics.md §4).

    Parameters
    ----------
    update : callable
        The map ``F``; returns a new array (NaN entries signal a point outside its domain).
    x0 : array_like
        Starting point (where ``F`` must be finite).
    damping : float
        Mixing ``beta`` in ``(0, 1]`` of the Picard step.
    tol : float
        Convergence threshold on :func:`relative_residual`.
    max_iter : int
        Budget of map evaluations.
    anderson_depth : int
        Number of past residuals mixed (0: plain damped iteration).
    growth : float
        Restart when the residual exceeds ``growth`` times the best one.
    to_internal, from_internal : callable, optional
        A bijection ``y = to_internal(x)`` onto unconstrained coordinates (e.g. ``log`` of a
        variance) in which the iteration and the Anderson mixing run; the fixed point is the
        same, but extrapolations can no longer leave the domain. Residuals are measured on
        ``x``.
    """
    identity = lambda v: v  # noqa: E731
    to_internal = to_internal or identity
    from_internal = from_internal or identity
    x = np.array(x0, dtype=float)
    fx = update(x)
    residual = relative_residual(x, fx)
    history = [residual]
    if not math.isfinite(residual):
        message = _MESSAGES[NOT_FINITE]
        return FixedPointResult(x, False, NOT_FINITE, message, 1, residual, (residual,))
    y = to_internal(x)
    g = to_internal(fx) - y
    best = (y, g, residual)
    beta = damping
    size = y.size
    depth = max(int(anderson_depth), 0)
    dY = np.zeros((size, max(depth, 1)))  # ring buffers of the last `depth` differences
    dG = np.zeros((size, max(depth, 1)))
    n_cols = 0
    slot = 0
    nit = 1
    stalled = False
    floor_return = None  # the best point last returned to at the smallest damping
    while residual > tol and nit < max_iter:
        accelerated = n_cols > 0
        y_new = np.empty(size)
        if accelerated:
            anderson_point(y, g, dY, dG, n_cols, beta, y_new)
        else:
            y_new[:] = y + beta * g
        x_new = from_internal(y_new)
        fx_new = update(x_new)
        nit += 1
        res_new = relative_residual(x_new, fx_new)
        history.append(res_new)
        g_new = to_internal(fx_new) - y_new if math.isfinite(res_new) else None
        if g_new is None or not np.isfinite(g_new).all() or res_new > growth * best[2]:
            n_cols = 0
            slot = 0  # the next columns mixed are the ones written from now on
            if not accelerated:
                if beta <= MIN_DAMPING and (y is best[0] or floor_return is best[0]):
                    # The most damped step from the best point failed, or the iteration came
                    # back to the same best point at the same damping with no history: every
                    # further iteration repeats the same steps exactly. Stop (status 5).
                    stalled = True
                    break
                # Even the damped step failed: go back to the best point, damp more.
                beta = max(0.5 * beta, MIN_DAMPING)
                y, g, residual = best
                if beta <= MIN_DAMPING:
                    floor_return = best[0]
            # else: the extrapolation left the domain (or blew up): forget the history and
            # take the plain damped step next, a convex combination of points of the domain.
            continue
        if depth > 0:
            dY[:, slot] = y_new - y
            dG[:, slot] = g_new - g
            slot = (slot + 1) % depth
            n_cols = min(n_cols + 1, depth)
        y, g, residual = y_new, g_new, res_new
        if residual < best[2]:
            best = (y, g, residual)
    x = from_internal(y)
    status = CONVERGED if residual <= tol else (STALLED if stalled else MAX_ITER)
    if status != CONVERGED:
        x, residual = from_internal(best[0]), best[2]
    return FixedPointResult(
        x=x,
        converged=status == CONVERGED,
        status=status,
        message=_MESSAGES[status],
        nit=nit,
        residual=residual,
        residual_history=tuple(history),
    )


def no_finite_solution(x: np.ndarray, reason: str) -> FixedPointResult:
    """A report for a problem known to have no finite fixed point (status 3, NaN state).

    Parameters
    ----------
    x : array_like
        Shape of the state (its values are replaced by NaN).
    reason : str
        Appended to the message, e.g. "lam = 0 and the data are linearly separable".
    """
    nan = np.full(np.shape(x), np.nan)
    message = f"{_MESSAGES[NO_FINITE_SOLUTION]} ({reason})"
    return FixedPointResult(nan, False, NO_FINITE_SOLUTION, message, 0, np.nan, ())


def unresolved_quadrature(report: FixedPointResult, reason: str) -> FixedPointResult:
    """``report`` re-flagged as not converged (status 4): its map is not accurate enough.

    For callers whose map is a quadrature that could not be made accurate at the fixed point
    (e.g. an adaptive rule out of panels): the iterate is kept, but it is not a trustworthy
    fixed point of the exact equations.
    """
    message = f"{_MESSAGES[UNRESOLVED]} ({reason})"
    return FixedPointResult(report.x, False, UNRESOLVED, message, report.nit, report.residual,
                            report.residual_history)  # fmt: skip


class ConvergenceWarning(RuntimeWarning):
    """Emitted when a fixed point is returned without having converged."""


class ReportedSolution:
    """Mixin for result dataclasses carrying a ``report: FixedPointResult``.

    Exposes the convergence report the way users read it, with ``scipy.optimize``'s names:
    ``converged`` (alias ``success``), ``status``, ``message``, ``nit``, ``residual``, and
    ``finite``. ``iterations`` is the former name of ``nit``, kept as an alias.
    """

    report: FixedPointResult

    @property
    def converged(self) -> bool:
        """Whether the fixed point was reached (always a ``bool``)."""
        return bool(self.report.converged)

    @property
    def success(self) -> bool:
        """Alias of ``converged`` (``scipy.optimize`` convention)."""
        return self.converged

    @property
    def message(self) -> str:
        """Human-readable status of the solve."""
        return self.report.message

    @property
    def nit(self) -> int:
        """Number of map evaluations, over every stage of the solve (retries included)."""
        return self.report.nit

    @property
    def status(self) -> int:
        """Report status: 0 converged, 1 not converged, 2 not finite at the start, 3 no finite
        solution, 4 converged on a quadrature that does not resolve the fixed point, 5 stalled
        at the boundary of the map's domain."""
        return self.report.status

    @property
    def finite(self) -> bool:
        """False when no finite solution exists (e.g. unregularised on separable data)."""
        return self.report.status != NO_FINITE_SOLUTION

    @property
    def iterations(self) -> int:
        """Alias of :attr:`nit` (its former name)."""
        return self.report.nit

    @property
    def residual(self) -> float:
        return self.report.residual

    def convergence(self) -> dict:
        """``{"converged", "nit", "residual", "status"}``: the report's columns in a row."""
        return {name: getattr(self, name) for name in REPORT_COLUMNS}
