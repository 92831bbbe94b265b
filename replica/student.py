"""The sparse knowledge-distillation student: replica-symmetric fixed point (SPEC §2, §4).

The student has only its first ``eta N`` weights trainable (plus a bias) and minimises, on the
teacher's own training inputs::

    sum_mu (1 - chi) CE(p_mu, sigma(h_mu)) + chi c_T CE(sigma(h~_mu / T), sigma(h_mu / T))
           + lam_s / 2 |w|^2,

with ``c_T = 1`` (the paper) or ``T^2`` (Hinton's scaling), where ``h~_mu`` is the trained
teacher's preactivation on sample ``mu`` (paper Eq. 3-4, App. A.2, B.4). Two teachers:

- ``"ridge"``: the ridge logistic teacher of :mod:`replica.teacher`, solved first;
- ``"bayes"``: the Bayes-optimal proxy teacher of paper Eq. 23-24 (App. A.3),
  ``w~ = v + sqrt(delta/alpha) g``, not trained on the samples: ``m~ = 1``,
  ``q~ = 1 + delta/alpha``, ``V~ = 0`` and no self-fit response (``f~ = 0``).

The fixed point is that of

    (m, q, S, V, V_S, b) --channel--> (m^, Q^, V^, Q^x, V^x) --ridge prior--> (m, q, S, V, V_S)

with the teacher's order parameters held fixed and the bias moved by a Newton step on
``E[f] = 0``. Overlaps are divided by the full ``N`` and the student's preactivation is
``w.x / sqrt(N)`` (not ``/ sqrt(eta N)``).

Gaussian averages over the correlated cavity fields ``(om~, om)`` use a tensor Gauss-Hermite
grid in independent ``(z1, z2)`` (``om~`` depends on ``z1`` only); the teacher's proximal point
at each ``z1`` node is computed once per solve.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np
from numba import njit

from replica.channel import student_channel_averages, student_training_observables
from replica.errors import bayes_optimal_error, bayes_optimal_overlaps, generalisation_error
from replica.losses import kd_term_weight
from replica.params import (
    GaussianMixture,
    MixtureParamsMixin,
    ParameterError,
    check_nonnegative,
    check_positive,
    check_smoothing,
    check_unit_interval,
)
from replica.prior import ridge_student_prior
from replica.teacher import (
    LOSSES,
    QUADRATURE_TOL,
    TeacherSolution,
    limited_bias_step,
    solve_teacher,
    teacher_probe,
    teacher_training_observables,
)
from saddle.fixed_point import (
    CONVERGED,
    ConvergenceWarning,
    FixedPointResult,
    ReportedSolution,
    no_finite_solution,
    solve_fixed_point,
)
from saddle.quadrature import GaussHermite, gauss_hermite, resolved_rule

TEACHERS = ("ridge", "bayes")
DEFAULT_STUDENT_NODES = (64, 24)


@dataclass(frozen=True)
class StudentParams(MixtureParamsMixin):
    """Parameters of the distillation problem.

    Parameters
    ----------
    alpha : float
        Sample ratio ``M / N``.
    rho, delta : float
        Mixture balance and noise variance.
    eta : float
        Fraction of trainable student weights, in (0, 1].
    lam_t, lam_s : float
        Ridge strengths of teacher and student (paper Eq. 1 convention).
    chi : float
        Weight of the distillation term, in [0, 1].
    temperature : float
        Distillation temperature ``T > 0``.
    t2_scaling : bool
        Multiply the distillation term by ``T^2`` (Hinton); off in the paper.
    smoothing : float
        Label smoothing ``eps`` of the hard-label targets (teacher's and student's).
    teacher : {"ridge", "bayes"}
        Ridge logistic teacher or Bayes-optimal proxy teacher.
    """

    alpha: float
    rho: float = 0.2
    delta: float = 1.0
    eta: float = 0.5
    lam_t: float = 0.1
    lam_s: float = 1e-4
    chi: float = 1.0
    temperature: float = 1.0
    t2_scaling: bool = False
    smoothing: float = 0.0
    teacher: str = "ridge"

    def __post_init__(self) -> None:
        mixture = GaussianMixture(self.rho, self.delta)
        checks = {
            "alpha": check_positive("alpha", self.alpha),
            "rho": mixture.rho,
            "delta": mixture.delta,
            "eta": check_unit_interval("eta", self.eta, open_left=True),
            "lam_t": check_nonnegative("lam_t", self.lam_t),
            "lam_s": check_nonnegative("lam_s", self.lam_s),
            "chi": check_unit_interval("chi", self.chi),
            "temperature": check_positive("temperature", self.temperature),
            "smoothing": check_smoothing("smoothing", self.smoothing),
        }
        for name, value in checks.items():
            object.__setattr__(self, name, value)
        object.__setattr__(self, "t2_scaling", bool(self.t2_scaling))
        if self.teacher not in TEACHERS:
            raise ParameterError(f"teacher must be one of {TEACHERS}; got {self.teacher!r}")

    @property
    def kd_weight(self) -> float:
        return kd_term_weight(self.chi, self.temperature, self.t2_scaling)

    def to_dict(self) -> dict:
        return asdict(self)


def bayes_teacher_solution(alpha: float, rho: float, delta: float) -> TeacherSolution:
    """The Bayes-optimal proxy teacher (paper Eq. 23-24) as a :class:`TeacherSolution`.

    Its overlaps are those of the Bayes-optimal estimator; ``V = 0`` encodes that it was not
    trained on the samples (no self-fit). Conjugates are undefined (NaN); its training
    observables are those of its preactivation ``h~ = om~`` on the training set.
    """
    from replica.teacher import TeacherParams

    params = TeacherParams(alpha, rho, delta, lam=0.0)
    m, q, b = bayes_optimal_overlaps(alpha, rho, delta)
    quad = gauss_hermite(96)
    train_loss, train_error = teacher_training_observables(
        m, q, 0.0, b, rho, delta, LOSSES["logistic"], 1.0, 0.0, quad.nodes, quad.weights
    )
    report = FixedPointResult(np.array([m, q, 0.0, b]), True, CONVERGED, "closed form", 0, 0.0, ())
    eps = float(generalisation_error(m, q, b, rho, delta))
    nan = math.nan
    return TeacherSolution(
        params, eps, m, q, 0.0, b, nan, nan, nan, float(train_loss), float(train_error), eps, report
    )


@njit(cache=True)
def student_conjugates(esf, ef2, ea, eff, ex, alpha, delta):
    """``m^ = alpha E[s f]``, ``Q^ = alpha delta E[f^2]``, ``V^ = alpha delta E[a/(1+aV)]``,
    ``Q^x = alpha delta E[f f~]``, ``V^x = alpha delta E[(c - a a~ V_S)/((1+a~V~)(1+aV))]``."""
    ad = alpha * delta
    return alpha * esf, ad * ef2, ad * ea, ad * eff, ad * ex


@njit(cache=True)
def student_map(
    m, q, S, V, V_S, b, alpha, rho, delta, eta, lam_s, m_t, q_t, V_t,
    teacher_h, teacher_f, teacher_a, p_pos, p_neg, chi, temperature, kd_weight, z1, w1, z2, w2,
):  # fmt: skip
    """One sweep of the student's saddle-point equations, ``(m, q, S, V, V_S, b)`` to itself.

    The bias moves by a Newton step on ``E[f] = 0`` limited to ``1 + 2 sqrt(delta q)``.
    """
    esf, ef2, ea, eff, ex, ef = student_channel_averages(
        m, q, S, V, V_S, b, rho, delta, q_t, V_t, teacher_h, teacher_f, teacher_a,
        p_pos, p_neg, chi, temperature, kd_weight, z1, w1, z2, w2,
    )  # fmt: skip
    mhat, Qhat, Vhat, Qhat_x, Vhat_x = student_conjugates(esf, ef2, ea, eff, ex, alpha, delta)
    m_n, q_n, S_n, V_n, VS_n = ridge_student_prior(
        mhat, Qhat, Vhat, Qhat_x, Vhat_x, lam_s, eta, delta, m_t, q_t, V_t
    )
    b_n = limited_bias_step(b, ef, ea, 1.0 + 2.0 * math.sqrt(delta * q))
    return m_n, q_n, S_n, V_n, VS_n, b_n


@dataclass(frozen=True)
class StudentSolution(ReportedSolution):
    """Replica prediction for the distilled student (and its teacher).

    Attributes
    ----------
    params : StudentParams
    teacher : TeacherSolution
        The teacher's fixed point (closed form for the Bayes-optimal proxy).
    eps_g : float
        Student test error, paper Eq. 12.
    m, q, S, V, V_S, b : float
        Student overlaps with ``v``, self-overlap, overlap with the teacher (all over the full
        ``N``), susceptibility (times delta), response to the teacher's self-fit, bias.
    mhat, Qhat, Vhat, Qhat_x, Vhat_x : float
        Conjugate parameters.
    train_loss, train_ce, train_error : float
        Mean KD loss per training sample, mean ``CE(p, sigma(h))``, training error.
    mse_outputs, mse_preactivations : float
        Mean squared teacher-student distance of outputs and preactivations on the training set.
    eps_bo_student, eps_bo_teacher : float
        Bayes-optimal errors of the ``eta``-sparse student and of a full classifier.
    report : FixedPointResult
    quadrature : GaussHermite, optional
        The ``z1`` rule used (Gauss-Hermite, or adapted to the teacher's fields).
    """

    params: StudentParams
    teacher: TeacherSolution
    eps_g: float
    m: float
    q: float
    S: float
    V: float
    V_S: float
    b: float
    mhat: float
    Qhat: float
    Vhat: float
    Qhat_x: float
    Vhat_x: float
    train_loss: float
    train_ce: float
    train_error: float
    mse_outputs: float
    mse_preactivations: float
    eps_bo_student: float
    eps_bo_teacher: float
    report: FixedPointResult = field(repr=False)
    quadrature: GaussHermite | None = field(default=None, repr=False, compare=False)

    @property
    def state(self) -> np.ndarray:
        """``(m, q, S, V, V_S, b)``: pass as ``initial=`` to warm-start a nearby solve."""
        return np.array([self.m, self.q, self.S, self.V, self.V_S, self.b])

    def student_dict(self) -> dict:
        keys = (
            "eps_g", "m", "q", "S", "V", "V_S", "b", "train_loss", "train_ce", "train_error",
            "mse_outputs", "mse_preactivations", "mhat", "Qhat", "Vhat", "Qhat_x", "Vhat_x",
        )  # fmt: skip
        out = {k: getattr(self, k) for k in keys}
        out.update(converged=self.converged, iterations=self.iterations, residual=self.residual)
        out.update(status=self.status)
        return out

    def to_dict(self) -> dict:
        """Nested dictionary: ``params``, ``teacher``, ``student`` and the two BO bounds."""
        teacher = self.teacher.to_dict()
        teacher.pop("eps_bo", None)
        return {
            "params": self.params.to_dict(),
            "teacher": teacher,
            "student": self.student_dict(),
            "eps_bo_teacher": self.eps_bo_teacher,
            "eps_bo_student": self.eps_bo_student,
        }


def default_student_start(params: StudentParams, teacher: TeacherSolution) -> np.ndarray:
    """A feasible starting point ``(m, q, S, V, V_S, b)`` (``S^2 < q q~``).

    - distilling a trained teacher (``chi > 0``, ridge teacher): the teacher restricted to the
      student's support, ``m = eta m~``, ``q = eta q~``, ``S = 0.9 eta q~``, ``V = eta V~``,
      ``b = b~ sqrt(eta)``. At vanishing ridge the teacher's norm is huge and so is the
      student's (below ``alpha_S``): starting there takes ~5x fewer iterations than a small
      start, and as many elsewhere (measured over alpha in [0.3, 10], lam_t in [1e-5, 1]);
    - otherwise a small student, ``q = eta``, with the teacher's bias scaled to its norm,
      ``b~ sqrt(q / q~)`` (the decision rule depends on ``b / sqrt(q)`` only; an unregularised
      teacher's huge bias would throw a small student far off).
    """
    eta = params.eta
    if params.chi > 0.0 and params.teacher == "ridge" and teacher.V > 0.0:
        return np.array([eta * teacher.m, eta * teacher.q, 0.9 * eta * teacher.q,
                         eta * teacher.V, 0.0, teacher.b * math.sqrt(eta)])  # fmt: skip
    q = eta
    b = teacher.b * math.sqrt(q / teacher.q)
    return np.array([0.5 * eta, q, 0.5 * math.sqrt(q * teacher.q), 1.0, 0.0, b])


def solve_student(
    alpha: float,
    rho: float = 0.2,
    delta: float = 1.0,
    eta: float = 0.5,
    lam_t: float = 0.1,
    lam_s: float = 1e-4,
    chi: float = 1.0,
    temperature: float = 1.0,
    t2_scaling: bool = False,
    smoothing: float = 0.0,
    teacher: str = "ridge",
    *,
    teacher_solution: TeacherSolution | None = None,
    initial: np.ndarray | None = None,
    n_nodes: tuple[int, int] = DEFAULT_STUDENT_NODES,
    tol: float = 1e-10,
    damping: float = 0.6,
    max_iter: int = 5000,
    warn: bool = True,
    adapt_quadrature: bool = True,
) -> StudentSolution:
    """Solve the distilled student's replica saddle point.

    Parameters
    ----------
    alpha, rho, delta, eta, lam_t, lam_s, chi, temperature, t2_scaling, smoothing, teacher
        See :class:`StudentParams`.
    teacher_solution : TeacherSolution, optional
        The ridge teacher already solved at the same ``(alpha, rho, delta, lam_t, smoothing)``
        (saves its solve along a sweep in student-only parameters). Ignored for ``"bayes"``.
    initial : array_like, optional
        Starting ``(m, q, S, V, V_S, b)``, e.g. ``previous.state``.
    n_nodes : (int, int)
        Gauss-Hermite nodes in ``z1`` (teacher direction) and ``z2``.
    tol, damping, max_iter, warn
        As in :func:`replica.teacher.solve_teacher`.
    adapt_quadrature : bool
        Use, in ``z1``, a rule that resolves the teacher's fields: the ``n_nodes[0]``
        Gauss-Hermite rule when it does, else an adaptive composite rule
        (:func:`saddle.quadrature.resolved_rule`). At small ``lam_t`` the teacher's field is
        wide (``sqrt(delta q~) ~ 40``) and its trained preactivation nearly a hinge; the
        Gauss-Hermite rule then misses the kink and the iteration crawls or stalls.

    Returns
    -------
    StudentSolution
        With ``status`` 3 (``finite`` False, NaN observables) when no finite unique solution
        exists (``lam_s = 0`` on a separable sample or below interpolation, or a ridge teacher
        with ``lam_t = 0`` on a separable sample; :mod:`replica.thresholds`).

    Notes
    -----
    Robustness: a start scaled to the teacher (:func:`default_student_start`), a limited bias
    step, and, when the solve from the given start fails, continuation in ``lam_s`` from
    ``max(1, lam_s)`` downwards.
    """
    params = StudentParams(
        alpha, rho, delta, eta, lam_t, lam_s, chi, temperature, t2_scaling, smoothing, teacher
    )
    if params.teacher == "bayes":
        tsol = bayes_teacher_solution(params.alpha, params.rho, params.delta)
    elif teacher_solution is not None:
        tp = teacher_solution.params
        wanted = (params.alpha, params.rho, params.delta, params.lam_t, params.smoothing)
        if (tp.alpha, tp.rho, tp.delta, tp.lam, tp.smoothing) != wanted or tp.loss != "logistic":
            raise ParameterError("teacher_solution was solved at other parameters")
        tsol = teacher_solution
    else:
        tsol = solve_teacher(
            params.alpha, params.rho, params.delta, params.lam_t, params.smoothing, warn=warn
        )
    from replica.thresholds import student_has_finite_solution

    finite, reason = student_has_finite_solution(
        params.alpha, params.rho, params.delta, params.eta, params.lam_s, params.chi,
        params.smoothing,
    )  # fmt: skip
    if not tsol.finite:
        finite, reason = False, f"the teacher has none: {tsol.report.message}"
    if not finite:
        return _no_finite_student(params, tsol, reason, warn)
    n1, n2 = int(n_nodes[0]), int(n_nodes[1])
    if adapt_quadrature:
        probe = teacher_probe(tsol.params, tsol.state, params.temperature)
        rule1 = resolved_rule(probe, n1, tol=QUADRATURE_TOL)
    else:
        rule1 = gauss_hermite(n1)
    rule2 = gauss_hermite(n2)
    z1, w1, z2, w2 = rule1.nodes, rule1.weights, rule2.nodes, rule2.weights
    teacher_h, teacher_f, teacher_a = tsol.node_fields(z1)
    p_pos, p_neg = params.targets
    kd_weight = params.kd_weight
    q_t = tsol.q

    def iterate(lam: float, start: np.ndarray) -> FixedPointResult:
        fixed = (
            params.alpha, params.rho, params.delta, params.eta, lam, tsol.m, tsol.q, tsol.V,
            teacher_h, teacher_f, teacher_a, p_pos, p_neg, params.chi, params.temperature,
            kd_weight, z1, w1, z2, w2,
        )  # fmt: skip

        def update(x: np.ndarray) -> np.ndarray:
            return np.array(student_map(x[0], x[1], x[2], x[3], x[4], x[5], *fixed))

        return solve_fixed_point(
            update, start, damping=damping, tol=tol, max_iter=max_iter,
            to_internal=to_internal, from_internal=from_internal,
        )  # fmt: skip

    def to_internal(x: np.ndarray) -> np.ndarray:
        # (m, log(q - S^2/q~), S, log V, V_S, b): the domain q >= S^2/q~, V > 0 becomes R^6.
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.array([x[0], np.log(x[1] - x[2] ** 2 / q_t), x[2], np.log(x[3]), x[4], x[5]])

    def from_internal(y: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):  # an overflowing extrapolation is rejected as inf
            return np.array([y[0], np.exp(y[1]) + y[2] ** 2 / q_t, y[2], np.exp(y[3]), y[4], y[5]])

    default = default_student_start(params, tsol)
    report = iterate(params.lam_s, default if initial is None else np.asarray(initial, float))
    total = report.nit
    if not report.converged and initial is not None:
        report = iterate(params.lam_s, default)
        total += report.nit
    if not report.converged:
        # Continuation in lam_s from a strongly regularised student.
        lams = [max(1.0, params.lam_s)]
        while lams[-1] > params.lam_s * 10.0:
            lams.append(lams[-1] / 10.0)
        lams.append(params.lam_s)
        state = default
        for lam in lams:
            step = iterate(lam, state)
            total += step.nit
            if not step.converged:
                break
            state = step.x
        if step.converged:
            report = step
    report = dataclasses.replace(report, nit=total)
    m, q, S, V, V_S, b = (float(v) for v in report.x)
    esf, ef2, ea, eff, ex, _ = student_channel_averages(
        m, q, S, V, V_S, b, params.rho, params.delta, tsol.q, tsol.V, teacher_h, teacher_f,
        teacher_a, p_pos, p_neg, params.chi, params.temperature, kd_weight, z1, w1, z2, w2,
    )  # fmt: skip
    conj = student_conjugates(esf, ef2, ea, eff, ex, params.alpha, params.delta)
    train = student_training_observables(
        m, q, S, V, V_S, b, params.rho, params.delta, tsol.q, teacher_h, teacher_f,
        p_pos, p_neg, params.chi, params.temperature, kd_weight, z1, w1, z2, w2,
    )  # fmt: skip
    if warn and not report.converged:
        warnings.warn(
            f"student fixed point did not converge at {params.to_dict()}: {report.message}",
            ConvergenceWarning,
            stacklevel=2,
        )
    return StudentSolution(
        params, tsol, float(generalisation_error(m, q, b, params.rho, params.delta)),
        m, q, S, V, V_S, b, *(float(c) for c in conj), *(float(t) for t in train),
        bayes_optimal_error(params.alpha, params.mixture, eta=params.eta),
        bayes_optimal_error(params.alpha, params.mixture),
        report, rule1,
    )  # fmt: skip


def _no_finite_student(params: StudentParams, tsol: TeacherSolution, reason: str,
                       warn: bool) -> StudentSolution:  # fmt: skip
    """A :class:`StudentSolution` flagged "no finite solution" (status 3, NaN observables)."""
    report = no_finite_solution(np.zeros(6), reason)
    if warn:
        warnings.warn(f"student at {params.to_dict()}: {report.message}", ConvergenceWarning,
                      stacklevel=3)  # fmt: skip
    nan = math.nan
    return StudentSolution(
        params, tsol, nan, *([nan] * 16),
        bayes_optimal_error(params.alpha, params.mixture, eta=params.eta),
        bayes_optimal_error(params.alpha, params.mixture), report,
    )  # fmt: skip
