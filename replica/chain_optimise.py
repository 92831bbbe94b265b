"""Optimal hyper-parameters of a distillation chain: gradients through every stage's fixed point.

The stages of a chain are solved in order; stage ``k``'s order parameters
``x_k = (m, q, Q_k<, V, V_k<, b)`` are the fixed point of its map
``x_k = F_k(x_k; x_0..x_{k-1}, theta_0..theta_k)`` (``replica.chain``), which sees the earlier
stages through their fields on the nodes of the grid of ``z_0..z_{k-1}`` and through the prior's
block coefficients, both functions of the earlier states and parameters. By the implicit
function theorem (docs/chains.md, "Optimal hyper-parameters"), for a parameter ``theta_j``,

    dx_k/dtheta_j = (I - dF_k/dx_k)^{-1} D_j F_k,   k >= j,

with ``D_j F_k`` the derivative of ``F_k`` at fixed ``x_k`` along the curve on which
``theta_j`` moves and every earlier state moves along its own tangent ``dx_i/dtheta_j``. That
directional derivative is a central difference of the map with the upstream stages
*re-installed* (their conjugates, prior rows and fields on the nodes recomputed, no re-solve) at
``x_i +- t dx_i/dtheta_j``; the pruning of the node sets is frozen across the stencil, so the
difference is of a smooth function. ``dF_k/dx_k`` is a central difference of the map in each
of the coordinates ``(m, log r, Q_k<, log V, V_k<, b)`` (``r`` the conditional variance of the
stage's field), in which the steps stay in the domain. The gradient of ``eps_g`` of the target
stage is then ``d eps_g/dx`` (paper Eq. 12, closed form) times the tangent.

:func:`optimise_stages` minimises each stage's ``eps_g`` over its own parameters given the
earlier stages (stage-wise) or the target stage's ``eps_g`` over the parameters of every stage
up to it (``jointly=True``), by bounded L-BFGS-B in ``(log lam, chi, log T)``. Each evaluation
starts from the previous one moved along its tangents (a first-order predictor) and solves the
fixed points by chord-Newton steps with the previous evaluation's ``I - dF/dx``.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from replica.chain import (
    ChainParams,
    ChainQuadrature,
    ChainSolution,
    Stage,
    _ChainSolver,
    _cholesky_row,
    _Level,
    _significant,
    _Solved,
    solve_chain,
)
from replica.errors import generalisation_error
from replica.params import ParameterError
from replica.teacher import solve_with_continuation
from saddle.fixed_point import (
    CONVERGED,
    ConvergenceWarning,
    FixedPointResult,
    relative_residual,
    solve_fixed_point,
)

OPTIMISABLE = ("lam", "chi", "temperature")
# Step of the directional differences in the optimiser's coordinates (log lam, chi, log T),
# and relative step of the map's Jacobian in the state coordinates.
TANGENT_STEP = 1e-5
JACOBIAN_STEP = 1e-5


# ----------------------------------------------------------------------------------------------
# Closed-form pieces
# ----------------------------------------------------------------------------------------------


def _eps_g_gradient(x: np.ndarray, rho: float, delta: float) -> np.ndarray:
    """``d eps_g / dx`` for the stage state ``x = (m, q, Q_k<, V, V_k<, b)`` (paper Eq. 12)."""
    m, q, b = x[0], x[1], x[-1]
    width = math.sqrt(delta * q)
    grad = np.zeros(x.size)
    for s, pc in ((1.0, rho), (-1.0, 1.0 - rho)):
        u = (m + s * b) / width
        dens = math.exp(-0.5 * u * u) / math.sqrt(2.0 * math.pi)
        # d H(u) = -phi(u) du
        grad[0] += -pc * dens / width
        grad[-1] += -pc * dens * s / width
        grad[1] += pc * dens * u / (2.0 * q)
    return grad


def _encode(name: str, value: float) -> float:
    """The optimiser's coordinate of a stage parameter: ``log lam``, ``chi``, ``log T``."""
    return value if name == "chi" else math.log(max(value, 1e-300))


def _decode(name: str, y: float) -> float:
    return float(y) if name == "chi" else math.exp(float(y))


def _stencil(name: str, y: float, step: float) -> tuple[tuple[float, float], ...]:
    """``(offset, weight)`` of a second-order first-derivative stencil in ``y`` that stays in
    the parameter's domain (central; for ``chi`` near 0 or 1 the one-sided three-point rule)."""
    if name == "chi" and y + step > 1.0:
        return ((0.0, 1.5 / step), (-step, -2.0 / step), (-2.0 * step, 0.5 / step))
    if name == "chi" and y - step < 0.0:
        return ((0.0, -1.5 / step), (step, 2.0 / step), (2.0 * step, -0.5 / step))
    return ((step, 0.5 / step), (-step, -0.5 / step))


# ----------------------------------------------------------------------------------------------
# One stage of the chain as a function of its state (no re-solve)
# ----------------------------------------------------------------------------------------------


def _is_bayes(k: int, stage: Stage) -> bool:
    return k == 0 and stage.teacher == "bayes"


def _solve_state(solver: _ChainSolver, k: int, stage: Stage, start: np.ndarray | None):
    """Stage ``k``'s fixed point given the earlier stages installed in ``solver`` (as
    ``_ChainSolver.solve_stage``, without the observables). Returns a FixedPointResult."""

    def iterate(lam, x0):
        update, to_i, from_i, _ = solver._map(k, stage, lam)
        return solve_fixed_point(update, x0, to_internal=to_i, from_internal=from_i,
                                 **solver.options)  # fmt: skip

    default = solver._start(k, stage)
    if start is not None and not _in_domain(solver, k, start):
        start = None
    report, total = solve_with_continuation(iterate, stage.lam, default, start)
    if not report.converged:
        warnings.warn(f"stage{k} of the chain did not converge: {report.message}",
                      ConvergenceWarning, stacklevel=3)  # fmt: skip
    return dataclasses.replace(report, nit=total)


def _chord_solve(solver: _ChainSolver, k: int, stage: Stage, start: np.ndarray,
                 A: np.ndarray, max_steps: int = 12):  # fmt: skip
    """Stage ``k``'s fixed point by Newton steps ``x <- x + A^{-1} (F(x) - x)`` with a fixed
    ``A = I - dF/dx`` from a nearby evaluation (the chord method: linear convergence at the
    rate of the change of the Jacobian, a few map evaluations from a predicted start).
    Returns ``(FixedPointResult or None, best point)``: None unless the residual falls below
    the solver's tolerance while shrinking at every step."""
    from scipy.linalg import lu_factor, lu_solve

    if not np.all(np.isfinite(A)):
        return None, start
    tol = solver.options["tol"]
    update = solver._map(k, stage, stage.lam)[0]
    lu = lu_factor(A)
    x = np.array(start, float)
    with np.errstate(all="ignore"):
        fx = update(x)
        residual = relative_residual(x, fx)
        if not np.isfinite(residual):
            return None, start
        for nit in range(1, max_steps + 1):
            if residual <= tol:
                return FixedPointResult(x, True, CONVERGED, "converged (chord)", nit, residual,
                                        ()), x  # fmt: skip
            x_new = x + lu_solve(lu, fx - x)
            f_new = update(x_new)
            r_new = relative_residual(x_new, f_new)
            if not r_new < residual:
                break
            x, fx, residual = x_new, f_new, r_new
    return None, x


def _in_domain(solver: _ChainSolver, k: int, x: np.ndarray) -> bool:
    x = np.asarray(x, float)
    if x.size != 4 + 2 * k or not np.all(np.isfinite(x)) or not x[2 + k] > 0.0:
        return False
    return _cholesky_row(solver.L[:k, :k], x[2 : 2 + k], x[1], solver.params.delta) is not None


def _install(solver: _ChainSolver, k: int, stage: Stage, x: np.ndarray, masks: dict,
             last: bool) -> None:  # fmt: skip
    """Install stage ``k`` at the state ``x`` (a fixed point or not) for the later stages: its
    prior rows, Cholesky row, upstream record and, unless ``last``, its fields on the next
    level's nodes. What ``_ChainSolver.solve_stage`` and ``_finish`` do after the solve,
    without the training observables. The nodes dropped by pruning are those of ``masks[k]``
    when given (frozen across a difference stencil), else recorded there."""
    p = solver.params
    if _is_bayes(k, stage):
        solver._solve_bayes0(stage)  # closed form, no parameter; fills in everything
    else:
        Lrow = _cholesky_row(solver.L[:k, :k], x[2 : 2 + k], x[1], p.delta)
        if Lrow is None:
            raise FloatingPointError(f"stage{k}: the state left the domain")
        conjugates = solver._map(k, stage, stage.lam)[3]
        mhat, Qhat_row, Vhat, Vhat_row, _, _ = conjugates(x, Lrow)
        a, B = solver.prior.stage_rows(k, mhat, Vhat, stage.lam, Vhat_row)
        solver.prior.store(k, a, B, Qhat_row)
        m, q, V, b = (float(v) for v in (x[0], x[1], x[2 + k], x[-1]))
        Qrow, Vrow = x[2 : 2 + k].copy(), x[3 + k : 3 + 2 * k].copy()
        solver.L[k, : k + 1] = Lrow
        solver.Qmat[k, :k] = Qrow
        solver.Qmat[:k, k] = Qrow
        solver.Qmat[k, k] = q
        solver.solved.append(_Solved(m, q, b, V, Lrow, Vrow, np.append(Qrow, q)))
        solver._previous.append((solver.level, m, b, Lrow, V, Vrow, False))
        if last:
            return
        solver.level = _next_level(solver, k, stage, masks)


def _next_level(solver: _ChainSolver, k: int, stage: Stage, masks: dict) -> _Level:
    quad = solver.quad
    solver.quad = dataclasses.replace(quad, pruned_mass=-1.0)  # keep every node
    try:
        full = solver._children(k, stage, solver._previous[k], quad.side)
    finally:
        solver.quad = quad
    keep = masks.get(k)
    if keep is None or keep.size != full.size:
        keep = _significant(full.weight, quad.pruned_mass)
        masks[k] = keep
    return _Level(*(getattr(full, f.name)[keep] for f in dataclasses.fields(_Level)))


def _map_jacobian(solver: _ChainSolver, k: int, stage: Stage, x: np.ndarray) -> np.ndarray:
    """``dF_k/dx_k`` at ``x``: central differences (relative step :data:`JACOBIAN_STEP`) in the
    coordinates ``z`` of :func:`_internal`, where every step stays inside the domain (a stage
    nearly copying its predecessor has a tiny conditional variance), times ``dz/dx``."""
    update = solver._map(k, stage, stage.lam)[0]
    z, dzdx = _internal(solver, k, x, np.eye(x.size))
    n = x.size
    dFdz = np.empty((n, n))
    for i in range(n):
        h = JACOBIAN_STEP * max(1.0, abs(z[i]))
        zp, zm = z.copy(), z.copy()
        zp[i] += h
        zm[i] -= h
        dFdz[:, i] = (update(_external(solver, k, zp)) - update(_external(solver, k, zm))) / (2 * h)
    return dFdz @ dzdx


def _internal(solver: _ChainSolver, k: int, x: np.ndarray, T: np.ndarray):
    """``z = (m, log r, Q_k<, log V, V_k<, b)`` with ``r = q - Q_k< Q^-1 Q_k<`` the variance
    of stage k's field given the earlier ones, and ``(dz/dx) T`` (analytic)."""
    Qinv = np.linalg.inv(solver.Qmat[:k, :k]) if k else np.zeros((0, 0))
    Qr, V = x[2 : 2 + k], x[2 + k]
    r = x[1] - Qr @ Qinv @ Qr
    z = x.copy()
    z[1], z[2 + k] = math.log(r), math.log(V)
    dz = np.array(T, float)
    dz[1] = (T[1] - 2.0 * (Qr @ Qinv) @ T[2 : 2 + k]) / r
    dz[2 + k] = T[2 + k] / V
    return z, dz


def _external(solver: _ChainSolver, k: int, z: np.ndarray) -> np.ndarray:
    """The inverse of :func:`_internal` given the earlier stages installed in ``solver``."""
    Qinv = np.linalg.inv(solver.Qmat[:k, :k]) if k else np.zeros((0, 0))
    x = z.copy()
    Qr = z[2 : 2 + k]
    x[1] = math.exp(min(z[1], 700.0)) + Qr @ Qinv @ Qr
    x[2 + k] = math.exp(min(z[2 + k], 700.0))
    return x


# ----------------------------------------------------------------------------------------------
# The chain's eps_g as a smooth function of chosen stage parameters
# ----------------------------------------------------------------------------------------------


@dataclass
class _Point:
    """One evaluation: the states, the target's eps_g, its gradient in the optimiser's
    coordinates and the tangents ``dx_k/dy`` (columns: the variables)."""

    y: np.ndarray
    eps: float
    grad: np.ndarray
    states: dict
    tangents: dict
    converged: bool
    step_error: np.ndarray | None = None
    jac: dict | None = None  # I - dF_k/dx_k per stage
    internal: dict = dataclasses.field(default_factory=dict)  # k -> (z_k, dz_k/dy)


class _ChainProblem:
    """``eps_g`` of stage ``target`` as a function of the variables ``(stage j, name)``, all at
    stages ``>= first``; the stages before ``first`` are installed in ``prefix`` and fixed."""

    def __init__(self, prefix: _ChainSolver, variables: Sequence[tuple[int, str]], target: int):
        self.prefix = prefix
        self.variables = tuple(variables)
        self.target = target
        self.first = min(j for j, _ in self.variables)
        self.base_stages = tuple(prefix.params.stages)
        self.last: _Point | None = None
        for k in range(len(prefix.solved), self.first):  # the fixed stages, solved once
            stage = self.base_stages[k]
            if _is_bayes(k, stage):
                prefix._solve_bayes0(stage)
            else:
                _install(prefix, k, stage, _solve_state(prefix, k, stage, None).x, {}, last=False)

    # -- parameters --------------------------------------------------------------------------

    def y_of(self, stages: Sequence[Stage]) -> np.ndarray:
        return np.array([_encode(n, getattr(stages[j], n)) for j, n in self.variables])

    def stages_at(self, y: np.ndarray) -> tuple[Stage, ...]:
        chain = list(self.base_stages)
        for (j, name), v in zip(self.variables, y, strict=True):
            chain[j] = dataclasses.replace(chain[j], **{name: _decode(name, v)})
        return tuple(chain)

    # -- evaluation --------------------------------------------------------------------------

    def _start(self, solver: _ChainSolver, k: int, y: np.ndarray):
        """A warm start for stage ``k``: the last evaluation's state moved along its tangent
        (a first-order predictor) in the coordinates of :func:`_internal` (which keep it
        inside the domain whatever the earlier stages did); None without a last evaluation."""
        last = self.last
        if last is None or k not in last.internal:
            return None
        z, dz = last.internal[k]
        try:
            moved = _external(solver, k, z + dz @ (y - last.y))
        except (np.linalg.LinAlgError, ValueError, OverflowError):
            return None
        return moved if _in_domain(solver, k, moved) else None

    def evaluate(self, y: np.ndarray, *, gradient: bool = True, step_error: bool = False,
                 starts: dict | None = None) -> _Point:  # fmt: skip
        y = np.asarray(y, float)
        stages = self.stages_at(y)
        starts = {} if starts is None else dict(starts)
        solver = copy.deepcopy(self.prefix)
        solver.params = dataclasses.replace(solver.params, stages=stages)
        masks: dict = {}
        snapshots, states, converged = {}, {}, True
        for k in range(self.first, self.target + 1):
            snapshots[k] = copy.deepcopy(solver)
            if _is_bayes(k, stages[k]):
                states[k] = solver._solve_bayes0(stages[k]).state
                continue
            report = None
            last = self.last
            if k not in starts:
                starts[k] = self._start(solver, k, y)
            if starts[k] is not None and last is not None and k in (last.jac or {}):
                report, starts[k] = _chord_solve(solver, k, stages[k], starts[k], last.jac[k])
            if report is None:
                report = _solve_state(solver, k, stages[k], starts.get(k))
            if not report.converged:  # no point in going on: a failed evaluation
                return _Point(y, math.nan, np.full(len(self.variables), np.nan), states, {},
                              False)  # fmt: skip
            states[k] = report.x
            if k < self.target:
                _install(solver, k, stages[k], report.x, masks, last=False)
        x_t = states[self.target]
        p = solver.params
        eps = float(_eps_g_value(x_t, p.rho, p.delta))
        n_var = len(self.variables)
        point = _Point(y, eps, np.full(n_var, np.nan), states,
                       {k: np.zeros((x.size, n_var)) for k, x in states.items()},
                       converged)  # fmt: skip
        if not gradient or not converged:
            return point
        jac = {}
        for k in range(self.first, self.target + 1):
            if not _is_bayes(k, stages[k]):
                with np.errstate(all="ignore"):
                    jac[k] = np.eye(states[k].size) - _map_jacobian(snapshots[k], k, stages[k],
                                                                    states[k])  # fmt: skip
        point.jac = jac
        c = _eps_g_gradient(x_t, p.rho, p.delta)
        errors = np.zeros(n_var)
        for v in range(n_var):
            tangents = self._tangent(v, y, stages, snapshots, states, jac, masks, TANGENT_STEP)
            if tangents is None:  # a moved state left the domain
                continue
            for k, t in tangents.items():
                point.tangents[k][:, v] = t
            point.grad[v] = c @ tangents[self.target]
            if step_error:
                coarse = self._tangent(v, y, stages, snapshots, states, jac, masks,
                                       2.0 * TANGENT_STEP)  # fmt: skip
                errors[v] = np.nan if coarse is None else abs(c @ coarse[self.target]
                                                              - point.grad[v]) / 3.0
        if step_error:
            point.step_error = errors
        if not np.all(np.isfinite(point.grad)):
            # The map is not finite next to the state (a fixed point at the edge of its domain,
            # e.g. an almost interpolating stage): differences of re-solved chains instead.
            for v in np.flatnonzero(~np.isfinite(point.grad)):
                point.grad[v] = self._resolved_derivative(y, v, states)
        if np.all(np.isfinite(point.grad)):
            for k, x in states.items():
                if not _is_bayes(k, stages[k]):
                    point.internal[k] = _internal(snapshots[k], k, x, point.tangents[k])
            self.last = point
        return point

    def _tangent(self, v, y, stages, snapshots, states, jac, masks, step) -> dict:
        """``dx_k/dy_v`` for ``k = j..target`` (zero before): one pass over the stages with a
        replica of the chain per stencil node, re-installing each stage at its moved state."""
        j, name = self.variables[v]
        stencil = _stencil(name, y[v], step)
        moved = []
        for offset, _ in stencil:
            yy = y.copy()
            yy[v] += offset
            moved.append(self.stages_at(yy)[j])
        replicas = []
        for stage_j in moved:
            rep = copy.deepcopy(snapshots[j])
            chain = list(stages)
            chain[j] = stage_j
            rep.params = dataclasses.replace(rep.params, stages=tuple(chain))
            replicas.append(rep)
        out = {}
        for k in range(j, self.target + 1):
            x = states[k]
            if _is_bayes(k, stages[k]):
                t = np.zeros(x.size)
            else:
                with np.errstate(all="ignore"):
                    D = np.zeros(x.size)
                    for (_, weight), rep, stage_j in zip(stencil, replicas, moved, strict=True):
                        stage = stage_j if k == j else stages[k]
                        D += weight * rep._map(k, stage, stage.lam)[0](x)
                    ok = np.all(np.isfinite(D)) and np.all(np.isfinite(jac[k]))
                    t = np.linalg.solve(jac[k], D) if ok else np.full(x.size, np.nan)
            out[k] = t
            if k < self.target:
                for (offset, _), rep, stage_j in zip(stencil, replicas, moved, strict=True):
                    stage = stage_j if k == j else stages[k]
                    try:
                        _install(rep, k, stage, x + offset * t, masks, last=False)
                    except FloatingPointError:
                        return None
        return out

    def _resolved_derivative(self, y, v, states, step: float = 1e-5) -> float:
        """``d eps_g / dy_v`` by central differences of re-solved chains (warm-started)."""
        values = []
        for sign in (1.0, -1.0):
            yy = y.copy()
            yy[v] += sign * step
            if self.variables[v][1] == "chi":
                yy[v] = min(max(yy[v], 0.0), 1.0)
            values.append((self.evaluate(yy, gradient=False, starts=states).eps, yy[v]))
        (ep, yp), (em, ym) = values
        return (ep - em) / (yp - ym)


def _eps_g_value(x: np.ndarray, rho: float, delta: float) -> float:
    """Paper Eq. 12 at the state ``x``."""
    return float(generalisation_error(x[0], x[1], x[-1], rho, delta))


# ----------------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainGradient:
    """``eps_g`` of one stage of a chain and its gradient with respect to stage parameters.

    Attributes
    ----------
    target : int
        The stage whose ``eps_g`` is differentiated.
    eps_g : float
    variables : tuple of (int, str)
        ``(stage, name)`` of each parameter.
    gradient : tuple of float
        ``d eps_g / d theta`` in the parameters' own units.
    step_error : tuple of float
        Estimated error of each component from the differences of the upstream maps
        (Richardson: a third of the change when their step is doubled); empty unless asked.
    states : tuple of arrays
        The stages' states ``(m, q, Q_k<, V, V_k<, b)`` up to the target (None for the stages
        before the first variable's, solved but not returned).
    """

    target: int
    eps_g: float
    variables: tuple
    gradient: tuple
    step_error: tuple
    states: tuple

    def to_dict(self) -> dict:
        return {"target": self.target, "eps_g": self.eps_g,
                "variables": [f"stage{j}.{n}" for j, n in self.variables],
                "gradient": list(self.gradient), "step_error": list(self.step_error)}  # fmt: skip


def _new_solver(params: ChainParams, quadrature: ChainQuadrature | None, tol: float,
                max_iter: int = 5000):  # fmt: skip
    return _ChainSolver(params, quadrature or ChainQuadrature(), tol=tol, damping=0.6,
                        max_iter=max_iter)  # fmt: skip


def _check_smooth(stages: Sequence[Stage], last: int) -> None:
    """The stages whose levels are re-split at their own solution (a kinked loss at k >= 1,
    ``_ChainSolver._resolve_kinks``) are not differentiated through yet."""
    for k in range(1, last + 1):
        if stages[k].kinked:
            raise ParameterError(
                f"stage{k}.loss: optimisation through a stage with a kinked loss ({stages[k].loss}"
                ", chi < 1) after stage 0 is not available yet")


def _check_variables(stages: Sequence[Stage], variables) -> tuple:
    out = []
    for j, name in variables:
        if name not in OPTIMISABLE:
            raise ParameterError(f"over must name parameters among {OPTIMISABLE}; got {name!r}")
        if not 0 <= j < len(stages):
            raise ParameterError(f"stage{j}: the chain has stages 0..{len(stages) - 1}")
        if j == 0 and name != "lam":
            raise ParameterError(f"stage0.{name}: stage 0 has no distillation term")
        if _is_bayes(j, stages[j]):
            raise ParameterError("stage0: the Bayes-optimal proxy has no parameter")
        out.append((int(j), name))
    return tuple(out)


def chain_eps_g_and_gradient(alpha: float, rho: float, delta: float, flip: float,
                             stages: Sequence[Stage], variables: Sequence[tuple[int, str]], *,
                             target: int | None = None,
                             quadrature: ChainQuadrature | None = None, tol: float = 1e-11,
                             step_error: bool = False) -> ChainGradient:  # fmt: skip
    """``eps_g`` of stage ``target`` (default the last) and its gradient with respect to the
    parameters ``variables`` = ``[(stage j, name), ...]`` (name: lam, chi, temperature) of any
    stages ``j <= target``, through every stage's fixed point (implicit function theorem;
    module docstring and docs/chains.md, "Optimal hyper-parameters"). ``tol``: the fixed
    points' tolerance (the K = 3 maps' rounding floor is ~1e-12); ``step_error``: also estimate
    the step error of the upstream differences (doubles the cost)."""
    stages = tuple(s if isinstance(s, Stage) else Stage(**dict(s)) for s in stages)
    params = ChainParams(alpha, rho, delta, flip, stages)
    target = len(stages) - 1 if target is None else int(target)
    if not 0 <= target < len(stages):
        raise ParameterError(f"target must be a stage in 0..{len(stages) - 1}; got {target}")
    variables = _check_variables(stages, variables)
    if any(j > target for j, _ in variables):
        raise ParameterError("variables: every stage must be <= target")
    _check_smooth(stages, target)
    problem = _ChainProblem(_new_solver(params, quadrature, tol), variables, target)
    point = problem.evaluate(problem.y_of(stages), step_error=step_error)
    scale = np.array([1.0 if n == "chi" else getattr(stages[j], n) for j, n in variables])
    err = () if point.step_error is None else tuple(float(e) for e in point.step_error / scale)
    return ChainGradient(target, point.eps, variables, tuple(float(g) for g in point.grad / scale),
                         err, tuple(point.states.get(k) for k in range(target + 1)))  # fmt: skip


def stage_eps_g_and_gradient(alpha: float, rho: float, delta: float, flip: float,
                             stages: Sequence[Stage], k: int, names: Sequence[str] = ("lam",),
                             quadrature: ChainQuadrature | None = None):  # fmt: skip
    """Stage k's ``eps_g`` and its gradient with respect to stage k's parameters ``names``
    (lam, chi, temperature; stages < k fixed; implicit function theorem on stage k's
    fixed-point map). Returns ``(eps_g, gradient array, StageSolution)``."""
    g = chain_eps_g_and_gradient(alpha, rho, delta, flip, stages, [(k, n) for n in names],
                                 target=k, quadrature=quadrature)  # fmt: skip
    sol = solve_chain(alpha, rho, delta, flip, stages[: k + 1], quadrature=quadrature,
                      initial=list(g.states), tol=1e-12)  # fmt: skip
    return g.eps_g, np.array(g.gradient), sol[k]


def _minimise(problem: _ChainProblem, y0: np.ndarray, bounds, ftol: float, gtol: float,
              callback=None):  # fmt: skip
    from scipy.optimize import minimize

    y0 = np.array([min(max(v, lo), hi) for v, (lo, hi) in zip(y0, bounds, strict=True)])
    # L-BFGS-B's first step on a box is -gradient: scale the objective so that it moves
    # log lam by ~0.5 (and keep the tolerance on the unscaled gradient).
    first = problem.evaluate(y0)
    g0 = float(np.max(np.abs(first.grad), initial=0.0))
    scale = min(max(0.5 / g0, 1.0), 1e6) if g0 > 0.0 and math.isfinite(g0) else 1.0

    def objective(y):
        try:
            # a trial point that fails is reported as such (below), not as warnings
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore", ConvergenceWarning)
                point = first if np.array_equal(y, first.y) else problem.evaluate(y)
        except (FloatingPointError, np.linalg.LinAlgError):
            point = None
        finite = point is not None and math.isfinite(point.eps) and np.all(np.isfinite(point.grad))
        if callback is not None:
            callback(problem.target, point.eps if finite else math.nan)
        if not (finite and point.converged):
            # A chain that does not converge here (or has no finite gradient): an error above
            # any classifier's, so that the line search backs off.
            return scale * 1.0, np.zeros(y.size)
        return scale * point.eps, scale * point.grad

    res = minimize(objective, y0, jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"ftol": ftol, "gtol": scale * gtol})  # fmt: skip
    res.fun = res.fun / scale
    res.jac = res.jac / scale
    return res


def optimise_stages(alpha: float, rho: float = 0.5, delta: float = 1.0, flip: float = 0.0,
                    stages: Sequence[Stage] = (Stage(),), *, over: Sequence[str] = ("lam",),
                    jointly: bool = False, target: int | None = None,
                    lam_bounds: tuple[float, float] = (1e-4, 1e2),
                    temperature_bounds: tuple[float, float] = (0.1, 10.0),
                    quadrature: ChainQuadrature | None = None, tol: float = 1e-11,
                    ftol: float = 1e-12, gtol: float = 1e-9,
                    callback: Callable[[int, float], None] | None = None):  # fmt: skip
    """Optimal stage parameters ``over`` (lam, chi, temperature) by bounded L-BFGS-B in
    ``(log lam, chi, log T)`` with gradients through the fixed points.

    Stage-wise (default): each stage in turn minimises its own ``eps_g`` over its own
    parameters, the earlier stages fixed at their optima. ``jointly=True``: the ``eps_g`` of
    stage ``target`` (default the last) is minimised over the parameters of every stage up to
    it at once (later stages are kept). Stage 0 optimises its ridge only; a Bayes-optimal
    stage 0 is kept.

    ``tol`` is the fixed points' tolerance (the K = 3 maps' rounding floor is ~1e-12), ``ftol``
    and ``gtol`` L-BFGS-B's (``gtol`` on ``d eps_g / dy``). ``callback(stage, eps_g)`` is called
    after every evaluation of the objective (NaN for a failed trial point), e.g. for a
    progress bar.

    Returns ``(ChainSolution at the optimum, tuple of the optimised Stage objects, tuple of
    optimiser results)``: one result per stage stage-wise (None where nothing was optimised),
    one result in all jointly.
    """
    over = tuple(over)
    for name in over:
        if name not in OPTIMISABLE:
            raise ParameterError(f"over must name parameters among {OPTIMISABLE}; got {name!r}")
    stages = [s if isinstance(s, Stage) else Stage(**dict(s)) for s in stages]
    params = ChainParams(alpha, rho, delta, flip, tuple(stages))
    K1 = len(stages)
    target = K1 - 1 if target is None else int(target)
    if not 0 <= target < K1:
        raise ParameterError(f"target must be a stage in 0..{K1 - 1}; got {target}")
    _check_smooth(stages, target if jointly else K1 - 1)
    box = {"lam": tuple(math.log(b) for b in lam_bounds), "chi": (0.0, 1.0),
           "temperature": tuple(math.log(b) for b in temperature_bounds)}  # fmt: skip

    def stage_variables(k):
        if _is_bayes(k, stages[k]):
            return []
        return [(k, n) for n in (("lam",) if k == 0 else over)]

    if jointly:
        variables = [v for k in range(target + 1) for v in stage_variables(k)]
        if not variables:
            raise ParameterError("jointly: nothing to optimise (over is empty)")
        problem = _ChainProblem(_new_solver(params, quadrature, tol, 1000), variables, target)
        res = _minimise(problem, problem.y_of(stages), [box[n] for _, n in variables],
                        ftol, gtol, callback)  # fmt: skip
        best = list(problem.stages_at(res.x))
        starts = problem.evaluate(res.x, gradient=False).states
        initial = [starts.get(k) for k in range(K1)]
        solution = solve_chain(alpha, rho, delta, flip, best, quadrature=quadrature,
                               initial=initial, tol=tol)  # fmt: skip
        return solution, tuple(best), (res,)

    solver = _new_solver(params, quadrature, tol, 1000)
    results, initial = [], []
    for k in range(K1):
        variables = stage_variables(k)
        solver.params = dataclasses.replace(solver.params, stages=tuple(stages))
        if variables:
            problem = _ChainProblem(solver, variables, k)
            res = _minimise(problem, problem.y_of(stages), [box[n] for _, n in variables],
                            ftol, gtol, callback)  # fmt: skip
            stages[k] = problem.stages_at(res.x)[k]
            # (None if the evaluation at the optimum failed: a cold start below)
            start = problem.evaluate(res.x, gradient=False).states.get(k)
        else:
            res, start = None, None
        results.append(res)
        solver.params = dataclasses.replace(solver.params, stages=tuple(stages))
        if _is_bayes(k, stages[k]):
            solver._solve_bayes0(stages[k])
            initial.append(None)
            continue
        x = _solve_state(solver, k, stages[k], start).x
        initial.append(x)
        _install(solver, k, stages[k], x, {}, last=k == K1 - 1)
    solution = solve_chain(alpha, rho, delta, flip, stages, quadrature=quadrature,
                           initial=initial, tol=tol)  # fmt: skip
    return solution, tuple(stages), tuple(results)


def optimise_stage_lams(alpha: float, rho: float = 0.5, delta: float = 1.0, flip: float = 0.0,
                        stages: Sequence[Stage] = (Stage(),), *,
                        bounds: tuple[float, float] = (1e-4, 1e2),
                        quadrature: ChainQuadrature | None = None, jointly: bool = False):
    """:func:`optimise_stages` over ``lam`` only. Returns ``(ChainSolution, tuple of lam_k,
    tuple of optimiser results)``."""
    solution, best, results = optimise_stages(alpha, rho, delta, flip, stages, over=("lam",),
                                              lam_bounds=bounds, quadrature=quadrature,
                                              jointly=jointly)  # fmt: skip
    return solution, tuple(s.lam for s in best), results


__all__ = ["OPTIMISABLE", "ChainGradient", "ChainSolution", "chain_eps_g_and_gradient",
           "optimise_stage_lams", "optimise_stages", "stage_eps_g_and_gradient"]  # fmt: skip
