"""The ridge-regularised teacher: replica-symmetric fixed point
(docs/saddle_point.md §2; paper App. A.1).

The teacher minimises ``sum_mu l(y_mu, h~_mu) + lam/2 |w~|^2`` with a free bias on the mixture
of paper Eq. 10 (the model of Mignacco et al. 2020), for a loss ``l`` of the table of
:mod:`replica.losses` (the paper's cross-entropy ``CE(p, sigma(h))`` with soft targets, the
square loss or the hinge). Its zero-temperature RS saddle point is the fixed point of

    (m, q, V, b)  --channel-->  (m^, Q^, V^)  --ridge prior-->  (m, q, V),

with the bias moved by a Newton step on its stationarity condition ``E[f] = 0``. The square
loss ``(h - s)^2 / 2`` has a linear channel, which gives closed forms to test against (the
``V`` equation is the Marchenko-Pastur resolvent of ridge regression); the hinge's channel
averages are split at its kink.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np
from numba import njit

from replica.channel import (
    channel_scratch,
    teacher_channel_averages,
    teacher_field_probes,
    teacher_node_fields,
    teacher_training_observables,
)
from replica.errors import bayes_optimal_error, generalisation_error
from replica.losses import KINKED, LOSS_KINDS
from replica.params import (
    MixtureParamsMixin,
    ParameterError,
    check_rule_nodes,
    check_solver_options,
    default,
    resolve_params,
    validate_fields,
)
from replica.prior import ridge_teacher_prior
from replica.stages import NodeFields
from saddle.fixed_point import (
    STALLED,
    ConvergenceWarning,
    FixedPointResult,
    ReportedSolution,
    no_finite_solution,
    solve_fixed_point,
    unresolved_quadrature,
)
from saddle.quadrature import GaussHermite, gauss_hermite, resolved_rule
from saddle.results import ValueEquality

LOSSES = LOSS_KINDS
TEACHER_OBSERVABLES = ("eps_g", "m", "q", "V", "b", "train_loss", "train_error", "eps_bo", "mhat",
                       "Qhat", "Vhat")  # fmt: skip
DEFAULT_NODES = 96


@dataclass(frozen=True)
class TeacherParams(MixtureParamsMixin):
    """Parameters of the teacher problem.

    Parameters
    ----------
    alpha : float
        Sample ratio ``M / N > 0``.
    rho, delta : float
        Mixture balance in (0, 1) and noise variance > 0.
    lam : float
        Ridge strength ``lam >= 0`` (paper Eq. 1 convention: summed loss + ``lam/2 |w|^2``).
    smoothing : float
        Label smoothing ``eps`` in [0, 1/2): targets ``p = y (1 - eps) + (1 - y) eps``.
    loss : {"logistic", "square", "hinge"}
        Cross-entropy (the paper's teacher), square loss ``(h - s)^2 / 2`` or hinge
        ``max(0, 1 - s h)`` (:mod:`replica.losses`; the hinge needs ``lam > 0``).
    """

    alpha: float
    rho: float = default("rho")
    delta: float = default("delta")
    lam: float = default("lam")
    smoothing: float = default("smoothing")
    loss: str = "logistic"

    def __post_init__(self) -> None:
        validate_fields(self)  # the schema's checks (replica.params.PARAMETERS)
        if self.loss not in LOSSES:
            raise ParameterError(f"loss must be one of {sorted(LOSSES)}; got {self.loss!r}")
        if self.loss == "hinge" and self.lam == 0.0:
            raise ParameterError("lam must be > 0 for the hinge loss; got 0.0")

    def to_dict(self) -> dict:
        return asdict(self)


@njit(cache=True)
def teacher_conjugates(esf, ef2, eg, alpha, delta):
    """``m^ = alpha E[s f]``, ``Q^ = alpha delta E[f^2]``, ``V^ = -alpha delta E[df/d omega]``.

    ``eg = E[g] = -E[df/d omega]`` (``= E[a/(1 + a V)]`` for a smooth loss).
    """
    return alpha * esf, alpha * delta * ef2, alpha * delta * eg


@njit(cache=True)
def bias_newton_step(b, ef, ea):
    """Newton step on the bias stationarity ``E[f] = 0`` using ``dE[f]/db = -E[g]``."""
    if ea <= 0.0:
        return np.nan
    return b + ef / ea


@njit(cache=True)
def limited_bias_step(b, ef, ea, max_step):
    """:func:`bias_newton_step` with the step clipped to ``[-max_step, max_step]``.

    When the fields saturate (``E[g]`` tiny, e.g. far from the fixed point at vanishing
    ridge) the plain Newton step on ``E[f] = 0`` can throw the bias to ``1e11``; the clip keeps
    the iteration in a sensible region and does not move the fixed point (step 0 there).
    """
    new = bias_newton_step(b, ef, ea)
    if new - b > max_step:
        return b + max_step
    if new - b < -max_step:
        return b - max_step
    return new


@njit(cache=True)
def teacher_map(m, q, V, b, alpha, rho, delta, lam, loss_kind, p_pos, p_neg, z, wz, scratch):
    """One sweep of the teacher's saddle-point equations: ``(m, q, V, b) -> (m, q, V, b)``.

    Equations: docs/saddle_point.md §2 (paper App. A.1).

    The bias moves by a Newton step on ``E[f] = 0`` limited to ``1 + 2 sqrt(delta q)``.
    """
    out = teacher_map_averages(m, q, V, b, alpha, rho, delta, lam, loss_kind, p_pos, p_neg, z,
                               wz, scratch)  # fmt: skip
    return out[0], out[1], out[2], out[3]


@njit(cache=True)
def teacher_map_averages(m, q, V, b, alpha, rho, delta, lam, loss_kind, p_pos, p_neg, z, wz,
                         scratch):  # fmt: skip
    """:func:`teacher_map` and the channel averages it used at ``(m, q, V, b)``:
    ``(m', q', V', b', E[s f], E[f^2], E[g], E[f])`` (NaN outside the domain)."""
    nan = np.nan
    if not (q > 0.0 and V > 0.0):
        return nan, nan, nan, nan, nan, nan, nan, nan
    esf, ef2, eg, ef = teacher_channel_averages(
        m, q, V, b, rho, delta, loss_kind, p_pos, p_neg, z, wz, scratch
    )
    mhat, Qhat, Vhat = teacher_conjugates(esf, ef2, eg, alpha, delta)
    m_new, q_new, V_new = ridge_teacher_prior(mhat, Qhat, Vhat, lam, delta)
    b_new = limited_bias_step(b, ef, eg, 1.0 + 2.0 * math.sqrt(delta * q))
    return m_new, q_new, V_new, b_new, esf, ef2, eg, ef


@dataclass(frozen=True, eq=False)
class TeacherSolution(ValueEquality, ReportedSolution):
    """Replica prediction for the teacher at its fixed point.

    Attributes
    ----------
    params : TeacherParams
    eps_g : float
        Test error, paper Eq. 12.
    m, q, V, b : float
        Overlaps ``w.v/N``, ``|w|^2/N``, susceptibility (times delta), bias.
    mhat, Qhat, Vhat : float
        Conjugate parameters.
    train_loss, train_error : float
        Mean training loss per sample (no penalty) and training error.
    eps_bo : float
        Bayes-optimal error at the same ``(alpha, rho, delta)``.
    report : FixedPointResult
        Convergence report of the iteration.
    quadrature : GaussHermite, optional
        The rule the fixed point was solved with (Gauss-Hermite, or an adaptive composite rule
        when the fields have a kink; see :func:`solve_teacher`).
    """

    params: TeacherParams
    eps_g: float
    m: float
    q: float
    V: float
    b: float
    mhat: float
    Qhat: float
    Vhat: float
    train_loss: float
    train_error: float
    eps_bo: float
    report: FixedPointResult = field(repr=False)
    quadrature: GaussHermite | None = field(default=None, repr=False, compare=False)

    @property
    def state(self) -> np.ndarray:
        """``(m, q, V, b)``: pass as ``initial=`` to warm-start a nearby solve."""
        return np.array([self.m, self.q, self.V, self.b])

    def node_fields(self, z: np.ndarray) -> NodeFields:
        """The teacher protocol (:mod:`replica.stages`): ``h~*, f~, r~, g~`` at nodes ``z``.

        ``z`` are standardised cavity fields, ``om~ = s m~ + b~ + sqrt(delta q~) z``.
        """
        z = np.ascontiguousarray(z, dtype=float)
        shape = (2, z.size)
        h, f, r, g = np.empty(shape), np.empty(shape), np.empty(shape), np.empty(shape)
        p_pos, p_neg = self.params.targets
        teacher_node_fields(
            self.m, self.q, self.V, self.b, self.params.rho, self.params.delta,
            LOSSES[self.params.loss], p_pos, p_neg, z, h, f, r, g,
        )  # fmt: skip
        return NodeFields(h, f, r, g)

    def observables(self) -> dict:
        """``{name: value}`` of the observables (names of :mod:`replica.observables`)."""
        return {k: getattr(self, k) for k in TEACHER_OBSERVABLES}

    def to_row(self) -> dict:
        """Flat row: the observables, then ``converged``, ``nit``, ``residual``, ``status``."""
        return {**self.observables(), **self.convergence()}

    def to_dict(self) -> dict:
        """JSON-ready record: ``params`` and the flat row (:meth:`to_row`)."""
        return {"params": self.params.to_dict(), **self.to_row()}


def teacher_to_internal(x: np.ndarray) -> np.ndarray:
    """Unconstrained coordinates ``(m, log q, log V, b)`` for the iteration."""
    if x[1] > 0.0 and x[2] > 0.0:  # (the usual case: no floating-point state to set)
        return np.array([x[0], np.log(x[1]), np.log(x[2]), x[3]])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.array([x[0], np.log(x[1]), np.log(x[2]), x[3]])


def teacher_from_internal(y: np.ndarray) -> np.ndarray:
    if y[1] < EXP_SAFE and y[2] < EXP_SAFE:
        return np.array([y[0], np.exp(y[1]), np.exp(y[2]), y[3]])
    with np.errstate(over="ignore"):  # an overflowing extrapolation is rejected as inf
        return np.array([y[0], np.exp(y[1]), np.exp(y[2]), y[3]])


# exp(x) is finite below 709.78: the transforms skip numpy's error-state context there.
EXP_SAFE = 700.0


def default_teacher_start(params: TeacherParams) -> np.ndarray:
    """A starting point that converges across the parameter space: ``(m, q, V, b)``."""
    return np.array([0.5, 1.0, 1.0, 0.0])


def teacher_probe(params: TeacherParams, state: np.ndarray, temperature: float = 1.0):
    """``probe(z)`` of the teacher's fields at ``state = (m, q, V, b)`` for quadrature checks.

    See :func:`replica.channel.teacher_field_probes`; used to choose a rule that resolves the
    teacher's channel (here) and the ``z1`` direction of the student's.
    """
    m, q, V, b = (float(v) for v in state)
    p_pos, p_neg = params.targets
    kind = LOSSES[params.loss]

    def probe(z: np.ndarray) -> np.ndarray:
        z = np.ascontiguousarray(z, dtype=float)
        out = np.empty((8, z.size))
        teacher_field_probes(m, q, V, b, params.rho, params.delta, kind, p_pos, p_neg,
                             temperature, z, out)  # fmt: skip
        return out

    return probe


# A teacher whose fields are not resolved by the Gauss-Hermite rule is re-solved on a rule
# adapted to its fields at the current solution, at most this many times (each a warm start).
QUADRATURE_ROUNDS = 3
# Absolute accuracy asked of the averages of the teacher's field probes.
QUADRATURE_TOL = 1e-10
# An adaptive rule whose estimated error exceeds the tolerance by this factor (its panel
# budget ran out) flags the solution as not resolved (status 4).
UNRESOLVED_FACTOR = 10.0
# Continuation in lam used when a solve from the given start fails; for lam = 0 it goes down to
# HOMOTOPY_FLOOR, then to 0.
HOMOTOPY_FACTOR = 10.0
HOMOTOPY_FLOOR = 1e-10


def _iterate_teacher(params: TeacherParams, rule: GaussHermite, initial: np.ndarray, *,
                     tol: float, damping: float, max_iter: int,
                     last: dict | None = None) -> FixedPointResult:  # fmt: skip
    """Solve on ``rule`` from ``initial``; ``last`` (if given) receives the last evaluated
    point ``"x"``, its channel averages ``"averages"`` and the ``"rule"``."""
    z, wz = rule.nodes, rule.weights
    p_pos, p_neg = params.targets
    loss_kind = LOSSES[params.loss]
    lam = params.lam
    scratch = channel_scratch(z.size)
    last = {} if last is None else last
    last["rule"] = rule

    def update(x: np.ndarray) -> np.ndarray:
        out = teacher_map_averages(
            x[0], x[1], x[2], x[3], params.alpha, params.rho, params.delta, lam,
            loss_kind, p_pos, p_neg, z, wz, scratch,
        )  # fmt: skip
        last["x"], last["averages"] = x, out[4:]
        return np.array(out[:4])

    return solve_fixed_point(
        update, initial, damping=damping, tol=tol, max_iter=max_iter,
        to_internal=teacher_to_internal, from_internal=teacher_from_internal,
    )  # fmt: skip


def homotopy_path(lam: float, factor: float = HOMOTOPY_FACTOR) -> list[float]:
    """Ridge strengths from ``max(1, lam)`` down to ``lam`` by ``factor``; for ``lam = 0`` down
    to ``HOMOTOPY_FLOOR`` and then 0 (the ``lam -> 0+`` solution is the start at 0)."""
    target = lam if lam > 0.0 else HOMOTOPY_FLOOR
    lams = [max(1.0, target)]
    while lams[-1] > target * factor:
        lams.append(lams[-1] / factor)
    lams.append(target)
    if lam <= 0.0:
        lams.append(0.0)
    return lams


def solve_with_continuation(iterate, lam: float, default: np.ndarray,
                            initial: np.ndarray | None = None, *,
                            restart: bool = True):  # fmt: skip
    """Solve at ridge ``lam`` from ``initial`` (if given), else from ``default``, else by
    continuation along :func:`homotopy_path` from ``default``.

    ``iterate(lam, start)`` returns a :class:`saddle.fixed_point.FixedPointResult`. Returns the
    report at ``lam`` (the last failed one if nothing converged) and the total ``nit`` (every
    attempt and every step of the continuation). ``restart=False`` goes from a failed solve
    from ``initial`` straight to the continuation, without a second solve at ``lam`` from
    ``default`` (the teacher's rule: a failure from ``default`` at ``lam`` is then reported).
    A solve that stalled at the boundary of the map's domain (status 5) is reported as it is,
    without continuation (which would end at the same boundary point).
    """
    report = iterate(lam, default if initial is None else np.asarray(initial, float))
    total = report.nit
    if not report.converged and initial is not None and restart:
        report = iterate(lam, default)
        total += report.nit
    if not report.converged and report.status != STALLED:
        # (a stalled solve reached the boundary of the map's domain: continuation in lam
        # leads to the same fixed point, so it is not tried)
        state, step = default, report
        for step_lam in homotopy_path(lam):
            step = iterate(step_lam, state)
            total += step.nit
            if not step.converged:
                break
            state = step.x
        if step.converged:
            report = step
    return report, total


def solve_teacher(
    alpha: float | TeacherParams | None = None,
    rho: float = default("rho"),
    delta: float = default("delta"),
    lam: float = default("lam"),
    smoothing: float = default("smoothing"),
    *,
    loss: str = "logistic",
    params: TeacherParams | None = None,
    initial: np.ndarray | None = None,
    n_nodes: int = DEFAULT_NODES,
    tol: float = 1e-10,
    damping: float = 0.6,
    max_iter: int = 5000,
    warn: bool = True,
    adapt_quadrature: bool = True,
) -> TeacherSolution:
    """Solve the teacher's replica saddle point.

    Equations: docs/saddle_point.md §2 (paper App. A.1); numerics: docs/numerics.md §4.

    Parameters
    ----------
    alpha, rho, delta, lam, smoothing, loss
        See :class:`TeacherParams`.
    params : TeacherParams, optional
        The parameters as one object instead (also accepted in place of ``alpha``:
        ``solve_teacher(TeacherParams(3.0, lam=0.1))``); the model keywords must then be left
        at their defaults.
    initial : array_like, optional
        Starting ``(m, q, V, b)``, e.g. ``previous.state`` along a sweep.
    n_nodes : int
        Gauss-Hermite nodes per Gaussian average.
    tol, damping, max_iter
        Passed to :func:`saddle.fixed_point.solve_fixed_point`.
    warn : bool
        Emit a :class:`ConvergenceWarning` if the iteration did not converge.
    adapt_quadrature : bool
        Check at the solution that the Gauss-Hermite rule resolves the teacher's fields
        (:func:`saddle.quadrature.resolved_rule`); if not (small ridge: the proximal map is
        nearly a hinge over a wide field), re-solve on an adaptive composite rule built at the
        solution, until the solution stops moving; status 4 if the adaptive rule cannot reach
        its tolerance. (A loss with a kink, the hinge, needs no check: its averages are always
        split at the kink.)

    Returns
    -------
    TeacherSolution
        With ``status`` 3 (``finite`` False, NaN observables) when ``lam = 0`` and no finite
        minimiser exists (separable sample, :mod:`replica.thresholds`).

    Notes
    -----
    Robustness: the bias step is limited (:func:`limited_bias_step`); a solve that fails from
    the given start is retried by continuation in ``lam`` from ``max(1, lam)`` downwards (for
    ``lam = 0``: to ``1e-10``, then 0). Far from the fixed point at ``lam = 0`` the loss
    curvature can underflow (``V^ = 0``); the prior then returns NaN, which the solver rejects
    as a step outside the domain.
    """
    params = resolve_params(TeacherParams, alpha, dict(rho=rho, delta=delta, lam=lam,
                                                       smoothing=smoothing, loss=loss), params)
    check_solver_options(tol=tol, damping=damping, max_iter=max_iter)
    n_nodes = check_rule_nodes("n_nodes", n_nodes)
    p_pos, p_neg = params.targets
    loss_kind = LOSSES[params.loss]
    if loss_kind in KINKED:
        adapt_quadrature = False  # the channel splits its averages at the kink itself
    if params.loss == "logistic":
        from replica.thresholds import teacher_has_finite_solution

        finite, reason = teacher_has_finite_solution(
            params.alpha, params.rho, params.delta, params.lam, params.smoothing
        )
        if not finite:
            return _no_finite_teacher(params, reason, warn)
    rule = gauss_hermite(n_nodes)
    warm = initial is not None
    if initial is None:
        initial = default_teacher_start(params)
    if adapt_quadrature and warm and np.all(np.isfinite(initial)):
        # Along a sweep the previous solution tells which rule the fields need.
        rule = resolved_rule(teacher_probe(params, initial), n_nodes, tol=QUADRATURE_TOL)
    last: dict = {}  # the last map evaluation: its averages are the final ones when at report.x
    options = dict(tol=tol, damping=damping, max_iter=max_iter, last=last)
    # The first solve runs on the rule the warm start chose; the continuation after a failure
    # starts cold, on the plain Gauss-Hermite rule (re-adapted below at its solution).
    first_rule, used = rule, []  # used: the rule of each solve, in order

    def iterate(step_lam: float, start: np.ndarray) -> FixedPointResult:
        used.append(first_rule if not used else gauss_hermite(n_nodes))
        step = dataclasses.replace(params, lam=step_lam)
        return _iterate_teacher(step, used[-1], start, **options)

    report, total = solve_with_continuation(iterate, params.lam, default_teacher_start(params),
                                            initial if warm else None, restart=False)
    if report.converged:
        rule = used[-1]  # the converged solve is the last one
    if adapt_quadrature and report.converged:
        for _ in range(QUADRATURE_ROUNDS):
            new_rule = resolved_rule(teacher_probe(params, report.x), n_nodes, tol=QUADRATURE_TOL)
            if new_rule is rule or (
                new_rule.size == rule.size and np.array_equal(new_rule.nodes, rule.nodes)
            ):
                break
            rule = new_rule
            previous = report
            report = _iterate_teacher(params, rule, previous.x, **options)
            total += report.nit
            if not report.converged:
                break
            change = np.max(np.abs(report.x - previous.x) / np.maximum(1.0, np.abs(report.x)))
            if change <= 10 * tol:
                break
    report = dataclasses.replace(report, nit=total)
    if report.converged and rule.estimated_error > UNRESOLVED_FACTOR * QUADRATURE_TOL:
        report = unresolved_quadrature(
            report, f"estimated error {rule.estimated_error:.1e} of the adaptive rule"
        )
    m, q, V, b = report.x
    z, wz = rule.nodes, rule.weights
    scratch = channel_scratch(z.size)
    if report.converged and last.get("rule") is rule and np.array_equal(last.get("x"), report.x):
        esf, ef2, eg, _ = last["averages"]
    else:
        esf, ef2, eg, _ = teacher_channel_averages(
            m, q, V, b, params.rho, params.delta, loss_kind, p_pos, p_neg, z, wz, scratch
        )
    mhat, Qhat, Vhat = teacher_conjugates(esf, ef2, eg, params.alpha, params.delta)
    train_loss, train_error = teacher_training_observables(
        m, q, V, b, params.rho, params.delta, loss_kind, p_pos, p_neg, z, wz, scratch
    )
    if warn and not report.converged:
        warnings.warn(
            f"teacher fixed point did not converge at {params.to_dict()}: {report.message}",
            ConvergenceWarning,
            stacklevel=2,
        )
    return TeacherSolution(
        params=params,
        eps_g=float(generalisation_error(m, q, b, params.rho, params.delta)),
        m=float(m), q=float(q), V=float(V), b=float(b),
        mhat=float(mhat), Qhat=float(Qhat), Vhat=float(Vhat),
        train_loss=float(train_loss), train_error=float(train_error),
        eps_bo=bayes_optimal_error(params.alpha, params.mixture),
        report=report, quadrature=rule,
    )  # fmt: skip


def _no_finite_teacher(params: TeacherParams, reason: str, warn: bool) -> TeacherSolution:
    """A :class:`TeacherSolution` flagged "no finite solution" (status 3, NaN observables)."""
    report = no_finite_solution(np.zeros(4), reason)
    if warn:
        warnings.warn(f"teacher at {params.to_dict()}: {report.message}", ConvergenceWarning,
                      stacklevel=3)  # fmt: skip
    nan = float("nan")
    return TeacherSolution(params, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan,
                           bayes_optimal_error(params.alpha, params.mixture), report)  # fmt: skip
