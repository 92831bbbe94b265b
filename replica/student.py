"""The sparse knowledge-distillation student: replica-symmetric fixed point
(docs/model.md §2, docs/saddle_point.md §3-4).

The student has only its first ``eta N`` weights trainable (plus a bias) and minimises, on the
teacher's own training inputs::

    sum_mu (1 - chi) l(y_mu, h_mu) + chi c_T CE(sigma(h~_mu / T), sigma(h_mu / T))
           + lam_s / 2 |w|^2,

with ``c_T = 1`` (the paper) or ``T^2`` (Hinton's scaling), where ``h~_mu`` is the trained
teacher's preactivation on sample ``mu`` (paper Eq. 3-4, App. A.2, B.4). The label loss ``l``
is a row of :mod:`replica.losses` (``loss``: the paper's ``CE(p, sigma(h))``, square or hinge);
the distillation term is always the tempered cross-entropy. The teacher is one of the kinds
of :data:`replica.stages.TEACHER_KINDS`:

- ``"ridge"``: the ridge teacher of :mod:`replica.teacher` (loss ``teacher_loss``), solved first;
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

from replica.channel import (
    channel_scratch,
    stage_bend,
    student_channel_averages,
    student_channel_marginals,
    student_training_observables,
    teacher_kink_nodes,
)
from replica.errors import bayes_optimal_error, bayes_optimal_overlaps, generalisation_error
from replica.losses import KINKED, LOGISTIC, LOSS_KINDS, kd_target, kd_term_weight, mixture_prox
from replica.observables import prefixed
from replica.params import (
    MixtureParamsMixin,
    ParameterError,
    check_positive,
    check_rule_nodes,
    check_solver_options,
    default,
    resolve_params,
    teacher_values,
    validate_fields,
)
from replica.prior import ridge_student_prior
from replica.stages import TEACHER_KINDS, NodeFields, teacher_kind
from replica.teacher import (
    EXP_SAFE,
    QUADRATURE_TOL,
    UNRESOLVED_FACTOR,
    TeacherSolution,
    limited_bias_step,
    solve_with_continuation,
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
    unresolved_quadrature,
)
from saddle.piecewise import (
    SPLIT_CUTOFF,
    SPLIT_ORDER,
    SPLIT_PANEL,
    legendre_rule,
    split_gaussian_rule,
    split_rule_capacity,
)
from saddle.quadrature import (
    GaussHermite,
    adaptive_gaussian_rule,
    gauss_hermite,
    gauss_legendre,
    resolved_rule,
    rule_resolves,
)
from saddle.results import ValueEquality

TEACHERS = tuple(TEACHER_KINDS)
# Smallest distillation temperature accepted. In u = h / T the distillation term is the plain
# cross-entropy and the ridge becomes lam_s T^2 / kd_weight: at small T without Hinton's T^2
# the student is an almost unregularised classifier of the teacher's (hard) training labels,
# which its eta N weights usually separate, so its norm in units of T diverges as T -> 0
# (q / T^2 = 52, 5e3, 4e4, 9e4 at T = 0.3, 0.1, 1e-2, 1e-4; alpha = 2, defaults) and the
# iteration needs ever more steps (1e-4: no convergence in 15000). With or without T^2 the
# proximal map has features of width ~T, which the quadrature must resolve over fields of
# width O(1) or more: over 150 random points (issue 13 fuzz, load ~7) every solve that took
# more than 60 s had T < 3e-3 (up to 190 s, some ending in status 1 or 4), and the paper uses
# T >= 1. Below 1e-2 the answer is therefore refused rather than computed for minutes.
MIN_TEMPERATURE = 1e-2
STUDENT_OBSERVABLES = (
    "eps_g", "m", "q", "S", "V", "V_S", "b", "train_loss", "train_ce", "train_error",
    "mse_outputs", "mse_preactivations", "mhat", "Qhat", "Vhat", "Qhat_x", "Vhat_x",
)  # fmt: skip
DEFAULT_STUDENT_NODES = (64, 24)
# The rules in z1 and z2 are re-adapted to the student's fields at its solution and the
# solution re-solved on them, at most this many times (each a warm start).
STUDENT_QUADRATURE_ROUNDS = 5
# Panel budget of the adaptive rule in each direction of the student's average (8 nodes each).
STUDENT_MAX_PANELS = 160


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
        Distillation temperature ``T >= MIN_TEMPERATURE = 1e-2`` (below it the problem is
        numerically that of an unregularised classifier on separable data, with features of
        width ``T`` to resolve; see :data:`MIN_TEMPERATURE`).
    t2_scaling : bool
        Multiply the distillation term by ``T^2`` (Hinton); off in the paper.
    smoothing : float
        Label smoothing ``eps`` of the hard-label targets (teacher's and student's).
    teacher : {"ridge", "bayes"}
        Teacher kind (:data:`replica.stages.TEACHER_KINDS`): ridge teacher or Bayes-optimal
        proxy.
    loss : {"logistic", "square", "hinge"}
        The student's *label* term ``(1 - chi) l(y, h)`` (:mod:`replica.losses`); the
        distillation term stays the tempered cross-entropy.
    teacher_loss : {"logistic", "square", "hinge"}
        The ridge teacher's loss (unused by the Bayes proxy).

    Non-logistic losses need a positive ridge (``lam_s > 0``, and ``lam_t > 0`` for a hinge
    teacher).
    """

    alpha: float
    rho: float = default("rho")
    delta: float = default("delta")
    eta: float = default("eta")
    lam_t: float = default("lam_t")
    lam_s: float = default("lam_s")
    chi: float = default("chi")
    temperature: float = default("temperature")
    t2_scaling: bool = default("t2_scaling")
    smoothing: float = default("smoothing")
    teacher: str = default("teacher")
    loss: str = "logistic"
    teacher_loss: str = "logistic"

    def __post_init__(self) -> None:
        validate_fields(self)  # the schema's checks (replica.params.PARAMETERS)
        check_temperature(self.temperature)  # the theory's own limit (MIN_TEMPERATURE)
        for name in ("loss", "teacher_loss"):
            if getattr(self, name) not in LOSS_KINDS:
                raise ParameterError(f"{name} must be one of {sorted(LOSS_KINDS)}; "
                                     f"got {getattr(self, name)!r}")  # fmt: skip
        if self.loss != "logistic" and self.lam_s == 0.0:
            raise ParameterError(f"lam_s must be > 0 for the {self.loss} loss; got 0.0")
        if self.teacher_loss == "hinge" and self.teacher == "ridge" and self.lam_t == 0.0:
            raise ParameterError("lam_t must be > 0 for the hinge loss; got 0.0")

    @property
    def kd_weight(self) -> float:
        return kd_term_weight(self.chi, self.temperature, self.t2_scaling)

    def to_dict(self) -> dict:
        return asdict(self)


def check_temperature(value) -> float:
    """Validate the distillation temperature: finite and ``>= MIN_TEMPERATURE``."""
    x = check_positive("temperature", value)
    if x < MIN_TEMPERATURE:
        raise ParameterError(
            f"temperature must be >= {MIN_TEMPERATURE:g} (below it the distillation loss is "
            f"nearly a hinge and its fixed point out of practical numerical reach); "
            f"got {value!r}"
        )
    return x


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
        m, q, 0.0, b, rho, delta, LOGISTIC, 1.0, 0.0, quad.nodes, quad.weights,
        channel_scratch(quad.size),
    )  # fmt: skip
    report = FixedPointResult(np.array([m, q, 0.0, b]), True, CONVERGED, "closed form", 0, 0.0, ())
    eps = float(generalisation_error(m, q, b, rho, delta))
    nan = math.nan
    return TeacherSolution(
        params, eps, m, q, 0.0, b, nan, nan, nan, float(train_loss), float(train_error), eps, report
    )


@njit(cache=True)
def student_conjugates(esf, ef2, eg, eff, ex, alpha, delta):
    """``m^ = alpha E[s f]``, ``Q^ = alpha delta E[f^2]``, ``V^ = -alpha delta E[df/d om]``,
    ``Q^x = alpha delta E[f f~]``, ``V^x = -alpha delta E[df/d om~]`` (:mod:`replica.channel`)."""
    ad = alpha * delta
    return alpha * esf, ad * ef2, ad * eg, ad * eff, ad * ex


@njit(cache=True)
def student_map(
    m, q, S, V, V_S, b, alpha, rho, delta, eta, lam_s, m_t, q_t, V_t,
    teacher_h, teacher_f, teacher_r, teacher_g, loss_kind, p_pos, p_neg, chi, temperature,
    kd_weight, z1, w1, z2, w2, gx, gw, scratch,
):  # fmt: skip
    """One sweep of the student's saddle-point equations, ``(m, q, S, V, V_S, b)`` to itself.

    Equations: docs/saddle_point.md §3-4 (paper App. A.2).

    The quadrature ``(z1, w1, z2, w2, gx, gw)`` is that of
    :func:`replica.channel.student_channel_averages`.

    The bias moves by a Newton step on ``E[f] = 0`` limited to ``1 + 2 sqrt(delta q)``.
    """
    esf, ef2, eg, eff, ex, ef = student_channel_averages(
        m, q, S, V, V_S, b, rho, delta, q_t, teacher_h, teacher_f, teacher_r, teacher_g,
        loss_kind, p_pos, p_neg, chi, temperature, kd_weight, z1, w1, z2, w2, gx, gw, scratch,
    )  # fmt: skip
    mhat, Qhat, Vhat, Qhat_x, Vhat_x = student_conjugates(esf, ef2, eg, eff, ex, alpha, delta)
    m_n, q_n, S_n, V_n, VS_n = ridge_student_prior(
        mhat, Qhat, Vhat, Qhat_x, Vhat_x, lam_s, eta, delta, m_t, q_t, V_t
    )
    b_n = limited_bias_step(b, ef, eg, 1.0 + 2.0 * math.sqrt(delta * q))
    return m_n, q_n, S_n, V_n, VS_n, b_n


@njit(cache=True)
def student_node_fields(kind, m, b, V, V_S, sd_1, sd_2, p_pos, p_neg, c, k, T,
                        teacher_h, teacher_f, z1, z2, h_out, f_out, r_out, g_out):  # fmt: skip
    """A solved student's ``h*, f, r, g`` on the grid ``(z1, z2)`` of its two directions.

    The student's cavity field on a sample of class ``s`` is
    ``om = s m + b + sd_1 z1 + sd_2 z2`` and its proximal step (mixture loss of
    :func:`replica.losses.mixture_prox`, label weight ``c``, distillation weight ``k``) is
    taken at ``om + V_S f~(z1)`` against the target ``sigma(h~*(z1) / T)``
    (docs/saddle_point.md §3). Fills the ``(2, len(z1), len(z2))`` outputs; along ``z2`` each
    proximal solve starts from the previous node's ``h*``.
    """
    for cls in range(2):
        s = 1.0 if cls == 0 else -1.0
        target = p_pos if cls == 0 else p_neg
        for i in range(z1.size):
            t = kd_target(teacher_h[cls, i], T)
            centre = s * m + b + sd_1 * z1[i] + V_S * teacher_f[cls, i]
            hj = centre
            for j in range(z2.size):
                omega = centre + sd_2 * z2[j]
                hj, d, gj, _ = mixture_prox(kind, omega, V, s, target, c, k, T, t, hj)
                h_out[cls, i, j] = hj
                f_out[cls, i, j] = (hj - omega) / V
                r_out[cls, i, j] = 1.0 / d
                g_out[cls, i, j] = gj


@dataclass(frozen=True, eq=False)
class StudentSolution(ValueEquality, ReportedSolution):
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
    quadrature, quadrature_z2 : GaussHermite, optional
        The ``z1`` and ``z2`` rules used (Gauss-Hermite, or adaptive rules resolving the
        teacher's fields and the student's channel at the solution).
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
    quadrature_z2: GaussHermite | None = field(default=None, repr=False, compare=False)

    @property
    def state(self) -> np.ndarray:
        """``(m, q, S, V, V_S, b)``: pass as ``initial=`` to warm-start a nearby solve."""
        return np.array([self.m, self.q, self.S, self.V, self.V_S, self.b])

    def node_fields(self, z1: np.ndarray, z2: np.ndarray) -> NodeFields:
        """The teacher protocol (:mod:`replica.stages`) for a solved student.

        The student's field on a training sample of class ``s`` is
        ``om = s m + b + sqrt(delta)(S/sqrt(q~) z1 + sqrt(q - S^2/q~) z2)`` and its proximal
        step is taken at ``om + V_S f~(z1)``: its fields live on the grid ``(z1, z2)`` of its
        own and its teacher's directions. Returns arrays of shape ``(2, len(z1), len(z2))``.
        """
        z1 = np.ascontiguousarray(z1, dtype=float)
        z2 = np.ascontiguousarray(z2, dtype=float)
        p = self.params
        teacher = self.teacher.node_fields(z1)
        sd_1 = math.sqrt(p.delta) * self.S / math.sqrt(self.teacher.q)
        sd_2 = math.sqrt(p.delta * max(self.q - self.S**2 / self.teacher.q, 0.0))
        shape = (2, z1.size, z2.size)
        h, f, r, g = (np.empty(shape) for _ in range(4))
        p_pos, p_neg = p.targets
        student_node_fields(
            LOSS_KINDS[p.loss], float(self.m), float(self.b), float(self.V), float(self.V_S),
            sd_1, sd_2, float(p_pos), float(p_neg), 1.0 - p.chi, float(p.kd_weight),
            float(p.temperature), teacher.h, teacher.f, z1, z2, h, f, r, g,
        )  # fmt: skip
        return NodeFields(h, f, r, g)

    def student_dict(self) -> dict:
        """The student's own observables, then ``converged``, ``nit``, ``residual``, ``status``."""
        return {**{k: getattr(self, k) for k in STUDENT_OBSERVABLES}, **self.convergence()}

    def observables(self) -> dict:
        """``{name: value}``: the student's observables, its teacher's (prefix ``teacher_``)
        and the two Bayes-optimal bounds (names of :mod:`replica.observables`)."""
        own = {k: getattr(self, k) for k in STUDENT_OBSERVABLES}
        bounds = {"eps_bo_student": self.eps_bo_student, "eps_bo_teacher": self.eps_bo_teacher}
        return {**own, **prefixed(self.teacher.observables()), **bounds}

    def to_row(self) -> dict:
        """Flat row (a curve's): :meth:`student_dict`, the teacher's row with prefix
        ``teacher_`` (without its ``eps_bo``), ``eps_bo_student``, ``eps_bo_teacher``."""
        teacher = {k: v for k, v in self.teacher.to_row().items() if k != "eps_bo"}
        return {**self.student_dict(), **prefixed(teacher),
                "eps_bo_student": self.eps_bo_student, "eps_bo_teacher": self.eps_bo_teacher}

    def to_dict(self) -> dict:
        """JSON-ready record, nested by model: ``params``, ``teacher`` and ``student`` (their
        flat rows) and the two BO bounds."""
        teacher = self.teacher.to_row()
        teacher.pop("eps_bo", None)
        return {
            "params": self.params.to_dict(),
            "teacher": teacher,
            "student": self.student_dict(),
            "eps_bo_teacher": self.eps_bo_teacher,
            "eps_bo_student": self.eps_bo_student,
        }


def student_units(params: StudentParams) -> np.ndarray:
    """Natural units of ``(m, q, S, V, V_S, b)``: ``(s, s^2, s, s^2, s, s)``, ``s = min(1, T)``
    when the distillation term sets the scale of the student's preactivations, else 1.

    With ``u = h / T`` the distillation term ``CE(sigma(h~/T), sigma(h/T))`` is the plain
    cross-entropy ``softplus(u) - t u``; at ``T << 1`` it dominates the label term (weight 1 in
    ``h``, against ``1 / T``) unless Hinton's ``T^2`` multiplies it (and ``chi < 1``). The
    student's preactivations are then ``O(T)``: ``q, V = O(T^2)``, ``m, S, b, V_S = O(T)``, and
    a residual measured in absolute terms below 1 (:func:`saddle.fixed_point.relative_residual`)
    would stop the iteration at once. The iteration runs on ``x / units`` (exactly ``x`` for
    ``T >= 1``).
    """
    kd_scaled = params.chi > 0.0 and (not params.t2_scaling or params.chi == 1.0)
    s = min(1.0, params.temperature) if kd_scaled else 1.0
    return np.array([s, s * s, s, s * s, s, s])


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
    if params.chi > 0.0 and teacher_kind(params.teacher).fitted and teacher.V > 0.0:
        return np.array([eta * teacher.m, eta * teacher.q, 0.9 * eta * teacher.q,
                         eta * teacher.V, 0.0, teacher.b * math.sqrt(eta)])  # fmt: skip
    q = eta
    b = teacher.b * math.sqrt(q / teacher.q)
    return np.array([0.5 * eta, q, 0.5 * math.sqrt(q * teacher.q), 1.0, 0.0, b])


def solve_student(
    alpha: float | StudentParams | None = None,
    rho: float = default("rho"),
    delta: float = default("delta"),
    eta: float = default("eta"),
    lam_t: float = default("lam_t"),
    lam_s: float = default("lam_s"),
    chi: float = default("chi"),
    temperature: float = default("temperature"),
    t2_scaling: bool = default("t2_scaling"),
    smoothing: float = default("smoothing"),
    teacher: str = default("teacher"),
    loss: str = "logistic",
    teacher_loss: str = "logistic",
    *,
    params: StudentParams | None = None,
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

    Equations: docs/saddle_point.md §3-6 (paper App. A.2-A.3); numerics: docs/numerics.md §4.

    Parameters
    ----------
    alpha, rho, delta, eta, lam_t, lam_s, chi, temperature, t2_scaling, smoothing, teacher
    loss, teacher_loss
        See :class:`StudentParams`.
    params : StudentParams, optional
        The parameters as one object instead (also accepted in place of ``alpha``); the model
        keywords must then be left at their defaults.
    teacher_solution : TeacherSolution, optional
        The ridge teacher already solved at the same
        ``(alpha, rho, delta, lam_t, smoothing, teacher_loss)`` (saves its solve along a sweep in
        student-only parameters). Ignored for a teacher kind that is not fitted (``"bayes"``).
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
    Bound: a student trained on the same samples as its teacher (a ridge teacher, or any
    teacher at ``chi = 0``) cannot do better than the Bayes-optimal error of its ``eta``-sparse
    support, ``eps_bo_student``. The Bayes-optimal *proxy* teacher is different: it was not
    trained on these samples, and its weights ``w~ = v + sqrt(delta/alpha) g`` carry a noise
    ``g`` independent of them, i.e. information about ``v`` beyond the ``M`` samples. With
    ``chi > 0`` the student inherits it and can go below ``eps_bo_student`` (by up to ~1e-2
    over random points, reproduced by an independent solver, issue 13). That is physics, not a
    numerical error; the bound checks of the tests apply only to teachers trained on the same
    samples.

    Quadrature: the ``z1`` rule resolves the teacher's fields; at the solution both
    directions are checked against refined rules on the student's own integrands and, where
    they are not resolved (small ``lam_s``: large ``V`` and a proximal map with kinks of width
    ~``T`` over a wide residual field), re-solved on adaptive rules (``z1``) and on ``z2``
    rules graded towards the kinks of each ``z1`` node
    (:func:`_resolve_student_quadrature`); status 4 if that fails.

    Robustness: a start scaled to the teacher (:func:`default_student_start`), a limited bias
    step, and, when the solve from the given start fails, continuation in ``lam_s`` from
    ``max(1, lam_s)`` downwards (for ``lam_s = 0``: to ``1e-10``, then 0).
    """
    given = dict(rho=rho, delta=delta, eta=eta, lam_t=lam_t, lam_s=lam_s, chi=chi,
                 temperature=temperature, t2_scaling=t2_scaling, smoothing=smoothing,
                 teacher=teacher, loss=loss, teacher_loss=teacher_loss)  # fmt: skip
    params = resolve_params(StudentParams, alpha, given, params)
    check_solver_options(tol=tol, damping=damping, max_iter=max_iter)
    n1, n2 = check_nodes(n_nodes)
    kind = teacher_kind(params.teacher)
    if kind.fitted and teacher_solution is not None:
        tp = teacher_solution.params
        wanted = {**teacher_values(params), "loss": params.teacher_loss}
        if {k: getattr(tp, k) for k in wanted} != wanted:
            raise ParameterError("teacher_solution was solved at other parameters")
        tsol = teacher_solution
    else:
        tsol = kind.solve_theory(params, warn=warn)
    from replica.thresholds import student_has_finite_solution

    finite, reason = True, ""
    if params.loss == "logistic":
        finite, reason = student_has_finite_solution(
            params.alpha, params.rho, params.delta, params.eta, params.lam_s, params.chi,
            params.smoothing,
        )  # fmt: skip
    reported_teacher = tsol
    if not tsol.finite and params.chi == 0.0 and finite:
        # At chi = 0 the student does not use its teacher: its fields and loss depend on
        # (m, q, b) only, whatever the teacher's overlaps. A stand-in teacher carries the
        # (z1, z2) decomposition; the quantities that refer to the teacher are NaN.
        tsol = bayes_teacher_solution(params.alpha, params.rho, params.delta)
    elif not tsol.finite:
        finite, reason = False, f"the teacher has none: {tsol.report.message}"
    if not finite:
        return _no_finite_student(params, tsol, reason, warn)
    kinks = teacher_kink_nodes(tsol.m, tsol.q, tsol.V, tsol.b, tsol.params.rho,
                               tsol.params.delta, LOSS_KINDS[tsol.params.loss],
                               *tsol.params.targets)  # fmt: skip
    teacher_resolved = True
    if kinks:
        rule1 = kink_split_rule(kinks)
    elif adapt_quadrature:
        probe = teacher_probe(tsol.params, tsol.state, params.temperature)
        teacher_resolved = rule_resolves(probe, n1, tol=QUADRATURE_TOL)
        rule1 = gauss_hermite(n1) if teacher_resolved else adaptive_gaussian_rule(
            probe, tol=QUADRATURE_TOL)  # (saddle.quadrature.resolved_rule, with its verdict)
    else:
        rule1 = gauss_hermite(n1)
    grid = _StudentGrid(rule1, gauss_hermite(n2), tsol.node_fields(rule1.nodes),
                        teacher_resolved)  # fmt: skip
    p_pos, p_neg = params.targets
    kd_weight = params.kd_weight
    loss_kind = LOSS_KINDS[params.loss]
    q_t = tsol.q

    unit = student_units(params)

    def iterate(lam: float, start: np.ndarray) -> FixedPointResult:
        """Solve at ridge ``lam`` from ``start``; the iteration runs on ``x / unit``."""
        fixed = (
            params.alpha, params.rho, params.delta, params.eta, lam, tsol.m, tsol.q, tsol.V,
            *grid.fields, loss_kind, p_pos, p_neg, params.chi, params.temperature,
            kd_weight, *grid.nodes_weights, grid.scratch,
        )  # fmt: skip

        def update(u: np.ndarray) -> np.ndarray:
            x = u * unit
            return np.array(student_map(x[0], x[1], x[2], x[3], x[4], x[5], *fixed)) / unit

        report = solve_fixed_point(
            update, np.asarray(start, float) / unit, damping=damping, tol=tol,
            max_iter=max_iter, to_internal=to_internal, from_internal=from_internal,
        )  # fmt: skip
        return dataclasses.replace(report, x=report.x * unit)

    def to_internal(x: np.ndarray) -> np.ndarray:
        # (m, log(q - S^2/q~), S, log V, V_S, b): the domain q >= S^2/q~, V > 0 becomes R^6.
        # (In units of ``unit``, in which q~ is unchanged: S^2/q~ scales like q.)
        residual = x[1] - x[2] ** 2 / q_t
        if residual > 0.0 and x[3] > 0.0:  # (the usual case: no floating-point state to set)
            return np.array([x[0], np.log(residual), x[2], np.log(x[3]), x[4], x[5]])
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.array([x[0], np.log(residual), x[2], np.log(x[3]), x[4], x[5]])

    def from_internal(y: np.ndarray) -> np.ndarray:
        if y[1] < EXP_SAFE and y[3] < EXP_SAFE:
            return np.array([y[0], np.exp(y[1]) + y[2] ** 2 / q_t, y[2], np.exp(y[3]), y[4],
                             y[5]])  # fmt: skip
        with np.errstate(over="ignore"):  # an overflowing extrapolation is rejected as inf
            return np.array([y[0], np.exp(y[1]) + y[2] ** 2 / q_t, y[2], np.exp(y[3]), y[4],
                             y[5]])  # fmt: skip

    default = default_student_start(params, tsol)
    report, total = solve_with_continuation(iterate, params.lam_s, default, initial)
    if adapt_quadrature and report.converged:
        report, extra = _resolve_student_quadrature(params, tsol, grid, report, n1, n2, iterate)
        total += extra
    report = dataclasses.replace(report, nit=total)
    z1, w1, z2, w2, gx, gw = grid.nodes_weights
    fields = grid.fields
    rule1 = grid.rule1
    scratch = grid.scratch
    m, q, S, V, V_S, b = (float(v) for v in report.x)
    averages = grid.cached_averages(report.x)  # the quadrature check's, when at this state
    if averages is None:
        averages = student_channel_averages(
            m, q, S, V, V_S, b, params.rho, params.delta, tsol.q, fields.h, fields.f,
            fields.r, fields.g, loss_kind, p_pos, p_neg, params.chi, params.temperature,
            kd_weight, z1, w1, z2, w2, gx, gw, scratch,
        )  # fmt: skip
    esf, ef2, eg, eff, ex, _ = averages
    conj = student_conjugates(esf, ef2, eg, eff, ex, params.alpha, params.delta)
    train = student_training_observables(
        m, q, S, V, V_S, b, params.rho, params.delta, tsol.q, fields.h, fields.f, loss_kind,
        p_pos, p_neg, params.chi, params.temperature, kd_weight, z1, w1, z2, w2, gx, gw,
        scratch,
    )  # fmt: skip
    if warn and not report.converged:
        warnings.warn(
            f"student fixed point did not converge at {params.to_dict()}: {report.message}",
            ConvergenceWarning,
            stacklevel=2,
        )
    conj = [float(c) for c in conj]
    train = [float(t) for t in train]
    if reported_teacher is not tsol:  # chi = 0 with a stand-in teacher
        S = V_S = conj[3] = conj[4] = train[3] = train[4] = math.nan
    return StudentSolution(
        params, reported_teacher, float(generalisation_error(m, q, b, params.rho, params.delta)),
        m, q, S, V, V_S, b, *conj, *train,
        bayes_optimal_error(params.alpha, params.mixture, eta=params.eta),
        bayes_optimal_error(params.alpha, params.mixture),
        report, rule1, grid.rule2,
    )  # fmt: skip


def check_nodes(n_nodes) -> tuple[int, int]:
    """Validate the student's ``n_nodes = (n1, n2)``: integers in ``[2, MAX_RULE_NODES]``."""
    try:
        n1, n2 = n_nodes
    except (TypeError, ValueError):
        raise ParameterError(f"n_nodes must be a pair of integers; got {n_nodes!r}") from None
    return check_rule_nodes("n_nodes", n1), check_rule_nodes("n_nodes", n2)


class _StudentGrid:
    """The current quadrature of the student's average (mutable: re-adapted at the solution).

    Rules in ``z1`` and ``z2``, the teacher's fields at the ``z1`` nodes, and ``split_order``:
    0 for the ``z2`` rule at every ``z1`` node, else the Gauss-Legendre order of the per-node
    rules graded towards the kinks of the student's proximal map
    (:func:`replica.channel.own_direction_rule`). ``teacher_resolved``: whether the
    Gauss-Hermite rule in ``z1`` resolves the teacher's field probes (they do not change during
    the solve). ``kink_order``: the Gauss-Legendre order of the panels of the ``z2`` rules
    split at the kinks of a kinked loss (the hinge). ``scratch``: the channel's work arrays.
    """

    def __init__(self, rule1: GaussHermite, rule2: GaussHermite, fields: tuple,
                 teacher_resolved: bool = True) -> None:  # fmt: skip
        self.rule1, self.rule2, self.fields = rule1, rule2, fields
        self.split_order = 0
        self.adapted1 = self.adapted2 = False  # whether the student adapted rule1 / rule2
        self.teacher_resolved = teacher_resolved
        self.kink_order = KINK_ORDERS[0]
        self.scratch = channel_scratch(SPLIT_ORDERS[-1] + 1, self.kink_order)
        self._evaluation = None

    def set_kink_order(self, order: int) -> None:
        """Panels of Gauss-Legendre order ``order`` (at most ``KINK_ORDERS[-1]``; a larger
        value records that none converged)."""
        self.kink_order = order
        self.scratch = channel_scratch(SPLIT_ORDERS[-1] + 1, min(order, KINK_ORDERS[-1]))

    @property
    def legendre(self) -> tuple[np.ndarray, np.ndarray]:
        if self.split_order == 0:
            return _NO_SPLIT
        return gauss_legendre(self.split_order)

    @property
    def nodes_weights(self) -> tuple:
        return (self.rule1.nodes, self.rule1.weights, self.rule2.nodes, self.rule2.weights,
                *self.legendre)  # fmt: skip

    def _key(self, state: np.ndarray) -> tuple:
        return (tuple(float(v) for v in state), self.rule1, self.rule2, self.split_order,
                self.kink_order)  # fmt: skip

    def evaluate(self, params: StudentParams, tsol: TeacherSolution,
                 state: np.ndarray) -> _GridEvaluation:  # fmt: skip
        """The channel at ``state`` on the current rules: its six averages (exactly those of
        :func:`replica.channel.student_channel_averages`) and both marginals (cached: the
        quadrature check and the final averages share one evaluation)."""
        key = self._key(state)
        cached = self._evaluation
        if cached is not None and _same_key(cached.key, key):
            return cached
        out1, out2, averages = student_marginals(
            params, tsol, state, self.rule1, self.fields, self.rule2, self.legendre,
            scratch=self.scratch,
        )  # fmt: skip
        self._evaluation = _GridEvaluation(key, out1, out2, averages)
        return self._evaluation

    def cached_averages(self, state: np.ndarray) -> tuple | None:
        """The averages of :meth:`evaluate` at ``state`` on the current rules, if computed."""
        cached = self._evaluation
        if cached is not None and _same_key(cached.key, self._key(state)):
            return cached.averages
        return None


@dataclass(frozen=True)
class _GridEvaluation:
    """One evaluation of the student's channel on a grid (see :meth:`_StudentGrid.evaluate`):
    ``key = (state, rule1, rule2, split_order, kink_order)``, the marginals ``out1`` (over
    ``z2`` at each ``z1`` node) and ``out2`` (over ``z1`` at each ``z2`` node), and the six
    averages."""

    key: tuple
    out1: np.ndarray
    out2: np.ndarray
    averages: tuple


def _same_key(a: tuple, b: tuple) -> bool:
    return a[0] == b[0] and a[1] is b[1] and a[2] is b[2] and a[3:] == b[3:]


_NO_SPLIT = gauss_legendre(1)[0][:0], gauss_legendre(1)[1][:0]  # (empty; read-only like the rules)
_NO_MARGINAL = np.empty((6, 0))


def student_marginals(params: StudentParams, tsol: TeacherSolution, state: np.ndarray,
                      rule1: GaussHermite, fields: NodeFields, rule2: GaussHermite,
                      legendre: tuple, *, want1: bool = True, want2: bool = True,
                      scratch: tuple | None = None) -> tuple:  # fmt: skip
    """``(out1, out2, averages)`` of :func:`replica.channel.student_channel_marginals` at
    ``state``; an output not wanted is a ``(6, 0)`` array (not computed)."""
    m, q, S, V, V_S, b = (float(v) for v in state)
    p_pos, p_neg = params.targets
    out1 = np.empty((6, rule1.size)) if want1 else _NO_MARGINAL
    out2 = np.empty((6, rule2.size)) if want2 else _NO_MARGINAL
    if scratch is None:
        scratch = channel_scratch(legendre[0].size)
    averages = student_channel_marginals(
        m, q, S, V, V_S, b, params.rho, params.delta, tsol.q, *fields, LOSS_KINDS[params.loss],
        p_pos, p_neg, params.chi, params.temperature, params.kd_weight, rule1.nodes,
        rule1.weights, rule2.nodes, rule2.weights, *legendre, out1, out2, scratch,
    )  # fmt: skip
    return out1, out2, averages


def student_probes(params: StudentParams, tsol: TeacherSolution, state: np.ndarray,
                   grid: _StudentGrid):  # fmt: skip
    """``(probe1, probe2)``: functions of ``z1`` and of ``z2`` whose averages a rule must
    resolve in that direction at the student's ``state``.

    ``probe1(z)`` stacks the teacher's field probes (:func:`replica.teacher.teacher_probe`) and
    the student's channel integrands averaged over ``z2`` with the current ``z2`` rules;
    ``probe2(z)`` is the integrands averaged over ``z1`` with the current ``z1`` rule and the
    rule ``z`` in ``z2`` (:func:`replica.channel.student_channel_marginals`).
    """
    teacher = teacher_probe(tsol.params, tsol.state, params.temperature)

    def probe1(z: np.ndarray) -> np.ndarray:
        z = np.ascontiguousarray(z, dtype=float)
        return np.vstack([teacher(z), student_probe1(z)])

    def student_probe1(z: np.ndarray) -> np.ndarray:
        rule = GaussHermite(z, np.zeros(z.size))
        return student_marginals(params, tsol, state, rule, tsol.node_fields(z), grid.rule2,
                                 grid.legendre, want2=False, scratch=grid.scratch)[0]  # fmt: skip

    def probe2(z: np.ndarray) -> np.ndarray:
        z = np.ascontiguousarray(z, dtype=float)
        rule = GaussHermite(z, np.zeros(z.size))
        return student_marginals(params, tsol, state, grid.rule1, grid.fields, rule,
                                 _NO_SPLIT, want1=False, scratch=grid.scratch)[1]  # fmt: skip

    probe1.teacher = teacher
    return probe1, probe2


def _same_rule(a: GaussHermite, b: GaussHermite) -> bool:
    return a is b or (a.size == b.size and np.array_equal(a.nodes, b.nodes))


def _resolve_student_quadrature(params, tsol, grid, report, n1, n2, iterate):
    """A-posteriori quadrature control of the student's fixed point (both directions).

    At the converged state the rules are checked (:func:`_adapt_student_rules`) and, if one
    changed, the fixed point is re-solved from the state on the new rules, until the rules it
    was solved on resolve the channel at the solution (they are the rules adapted there, or
    agree with them, :func:`_still_resolves`), or the solution moves by less than
    ``QUADRATURE_STATE_TOL`` (relative). Where the Gauss-Hermite rules resolve the channel
    nothing changes (bit for bit). Returns the final report, flagged status 4 if the rules
    could not be made to resolve the channel, and the number of extra map evaluations.
    """
    extra = 0
    for round_ in range(STUDENT_QUADRATURE_ROUNDS + 1):
        if not _adapt_student_rules(params, tsol, grid, report.x, n1, n2):
            break
        if round_ == STUDENT_QUADRATURE_ROUNDS:
            return unresolved_quadrature(report, "the adapted rules keep changing"), extra
        previous = report
        report = iterate(params.lam_s, previous.x)
        extra += report.nit
        if not report.converged:
            return report, extra
        change = np.max(np.abs(report.x - previous.x) / np.maximum(1.0, np.abs(report.x)))
        if change <= QUADRATURE_STATE_TOL:
            # Rules adapted at nearby states differ only where a panel's error is at the
            # threshold; the fixed point no longer moves with them.
            break
    worst = max(grid.rule1.estimated_error, grid.rule2.estimated_error)
    if grid.split_order > SPLIT_ORDERS[-1]:
        report = unresolved_quadrature(report, "the kinked z2 averages do not converge")
    elif grid.kink_order > KINK_ORDERS[-1]:
        report = unresolved_quadrature(report, "the z2 averages split at the loss's kink "
                                       "do not converge")  # fmt: skip
    elif worst > UNRESOLVED_FACTOR * QUADRATURE_TOL:
        reason = f"estimated error {worst:.1e} of the adaptive rule: kinks too sharp"
        report = unresolved_quadrature(report, reason)
    return report, extra


def _adapt_student_rules(params, tsol, grid, state, n1, n2) -> bool:
    """Make ``grid``'s rules resolve the student's channel at ``state``; whether one changed.

    1. ``z2``: the Gauss-Hermite rule is kept if it resolves the ``z1``-averaged integrands
       (:func:`saddle.quadrature.rule_resolves`). If not, and the proximal map has kinks
       (large ``V``; their place and width are known, :func:`replica.channel.stage_bend`),
       the ``z2`` average at each ``z1`` node switches to a composite rule graded towards
       that node's two kinks, of the lowest Gauss-Legendre order in ``SPLIT_ORDERS`` that
       agrees with the next one within ``QUADRATURE_TOL`` on the six averages; without
       kinks, to an adaptive rule (:func:`saddle.quadrature.resolved_rule`).
       A loss with a kink of its own (the hinge, ``chi < 1``) has its ``z2`` average at
       every ``z1`` node split exactly at the fields mapped onto the kink
       (:func:`replica.channel.own_direction_rule`), with Gauss-Legendre panels of width at
       most 2 on either side. Without a distillation term the proximal map is linear on each
       side, and these panels are exact to rounding: no check. With one (``chi > 0``) its
       curvature ``(k/T^2) sigma'(h/T)`` bends the proximal map over a width ~``T``, sharply
       when ``V`` is large (small ``lam_s``), which panels of order 10 do not resolve (at
       ``lam_s = 1e-6`` near interpolation the map on order-20 panels had a residual of
       1e-5 at the order-10 solution): the panels' order is the lowest of ``KINK_ORDERS``
       whose averages agree with the next one's within ``QUADRATURE_TOL``
       (:func:`_converged_kink_order`).
    2. ``z1``: the rule must resolve the teacher's fields and the ``z2``-averages taken with
       the rules of step 1 (an unresolved ``z2`` average is not smooth in ``z1``).

    The integrands on the current rules are those of one evaluation of the channel at
    ``state`` (:meth:`_StudentGrid.evaluate`, also the final averages): where a check's
    coarse rule is the current rule its values are taken from there, and a check known to
    fail (the teacher's fields not resolved by the Gauss-Hermite rule in ``z1``) is not made.
    """
    changed = False
    current = grid.evaluate(params, tsol, state)
    own_kink = LOSS_KINDS[params.loss] in KINKED and params.chi < 1.0
    c = 1.0 - params.chi
    kinked = not own_kink and stage_bend(LOSS_KINDS[params.loss], state[3], c, params.kd_weight,
                                         params.temperature)[1] > 0.0  # fmt: skip
    if grid.split_order > 0 and not kinked:
        grid.split_order, changed = 0, True  # the kinks are gone: back to a rule in z2
    if grid.split_order == 0 and not own_kink:
        probe2 = student_probes(params, tsol, state, grid)[1]
        coarse2 = None
        if not changed and current.key[2] is gauss_hermite(n2):
            coarse2 = current.out2  # probe2 on the current grid (rule1 x GH(n2), no split)
        if kinked and not rule_resolves(probe2, n2, tol=QUADRATURE_TOL, coarse=coarse2):
            grid.rule2, grid.split_order, changed = gauss_hermite(n2), SPLIT_ORDERS[0], True
            grid.adapted2 = False
        elif not kinked:
            new2 = resolved_rule(probe2, n2, tol=QUADRATURE_TOL, max_panels=STUDENT_MAX_PANELS,
                                 coarse=coarse2)  # fmt: skip
            known = current.out2 if not changed and current.key[2] is grid.rule2 else None
            if not _same_rule(new2, grid.rule2) and not (
                    grid.adapted2 and _still_resolves(probe2, grid.rule2, new2,
                                                      known)):  # fmt: skip
                grid.rule2, grid.adapted2, changed = new2, True, True
    if grid.split_order > 0:
        reuse = None if changed else current
        order = _converged_split_order(params, tsol, state, grid, reuse)
        if order != grid.split_order:
            grid.split_order, changed = order, True
    if own_kink and params.kd_weight > 0.0:
        order = _converged_kink_order(params, tsol, state, grid, current)
        if order != grid.kink_order:
            grid.set_kink_order(order)
            changed = True
    if LOSS_KINDS[tsol.params.loss] in KINKED and tsol.V > 0.0:
        return changed  # the z1 rule is split at the teacher's kinks already
    probe1 = student_probes(params, tsol, state, grid)[0]
    if grid.teacher_resolved:
        coarse1 = None
        if not changed and current.key[1] is gauss_hermite(n1):
            coarse1 = np.vstack([probe1.teacher(gauss_hermite(n1).nodes), current.out1])
        new1 = resolved_rule(probe1, n1, tol=QUADRATURE_TOL, max_panels=STUDENT_MAX_PANELS,
                             coarse=coarse1)  # fmt: skip
    else:
        # The teacher's rows of probe1 are not resolved by the Gauss-Hermite rule (that is
        # why rule1 is adaptive): resolved_rule would find so again and build this rule.
        new1 = adaptive_gaussian_rule(probe1, tol=QUADRATURE_TOL, max_panels=STUDENT_MAX_PANELS)
    if not _same_rule(new1, grid.rule1) and not (
            grid.adapted1 and _still_resolves(probe1, grid.rule1, new1, _known_probe1(
                probe1, grid, current, changed))):  # fmt: skip
        grid.rule1, grid.adapted1, grid.fields = new1, True, tsol.node_fields(new1.nodes)
        changed = True
    return changed


def _known_probe1(probe1, grid: _StudentGrid, current: _GridEvaluation,
                  changed: bool) -> np.ndarray | None:  # fmt: skip
    """``probe1`` at the nodes of ``grid.rule1`` from the grid's evaluation, if it is current."""
    if changed or current.key[1] is not grid.rule1:
        return None
    return np.vstack([probe1.teacher(grid.rule1.nodes), current.out1])


def _still_resolves(probe, current: GaussHermite, rebuilt: GaussHermite,
                    values: np.ndarray | None = None) -> bool:  # fmt: skip
    """Whether the ``current`` rule, adapted at an earlier state of this solve, still resolves
    ``probe``: its averages agree within ``QUADRATURE_TOL`` with those of the rule ``rebuilt``
    at the present state. The rule is then kept (hysteresis). ``values``: ``probe`` at the
    current rule's nodes, when known.

    Rebuilt from scratch at each state, the adaptive rule can flip between two panel layouts
    whose averages agree to ~1e-11, where a panel's error estimate sits at its threshold; near
    an interpolation peak the fixed point amplifies that ~100-fold, so each re-solve on the
    flipped rule moved the state by more than ``QUADRATURE_STATE_TOL`` and the re-solves
    cycled (Fig. 5, alpha = 2.1457, lam_t = lam_s = 1e-5: status 4 before). The rules of the
    first check (Gauss-Hermite, or the teacher's adapted ``z1`` rule) are replaced as before.
    """
    values = probe(current.nodes) if values is None else values
    old = np.atleast_2d(values) @ current.weights
    new = np.atleast_2d(probe(rebuilt.nodes)) @ rebuilt.weights
    return bool(np.all(np.abs(old - new) <= QUADRATURE_TOL))


def _converged_split_order(params, tsol, state, grid, current=None) -> int:
    """The lowest order of ``SPLIT_ORDERS`` whose averages agree with the next one's within
    ``QUADRATURE_TOL`` (or one past the last if none does). ``current``: the grid's evaluation
    at ``state`` (:meth:`_StudentGrid.evaluate`) when its rules are the grid's."""
    totals = []
    for k, order in enumerate(SPLIT_ORDERS):
        if current is not None and order == grid.split_order:
            out1 = current.out1
        else:
            out1 = student_marginals(params, tsol, state, grid.rule1, grid.fields, grid.rule2,
                                     gauss_legendre(order), want2=False,
                                     scratch=grid.scratch)[0]  # fmt: skip
        totals.append(out1 @ grid.rule1.weights)
        if k > 0 and np.all(np.abs(totals[k] - totals[k - 1]) <= QUADRATURE_TOL):
            return SPLIT_ORDERS[k - 1]
    return SPLIT_ORDERS[-1] + 1


def _converged_kink_order(params, tsol, state, grid, current) -> int:
    """The lowest order of ``KINK_ORDERS`` for the panels of the ``z2`` rules split at the
    kinks of the student's kinked loss whose averages agree with the next order's within
    ``QUADRATURE_TOL`` (or one past the last if none does). ``current``: the grid's evaluation
    at ``state`` (:meth:`_StudentGrid.evaluate`), reused for the grid's own order."""
    totals = []
    for k, order in enumerate(KINK_ORDERS):
        if _same_key(current.key, grid._key(state)[:4] + (order,)):
            out1 = current.out1
        else:
            scratch = channel_scratch(SPLIT_ORDERS[-1] + 1, order)
            out1 = student_marginals(params, tsol, state, grid.rule1, grid.fields, grid.rule2,
                                     grid.legendre, want2=False, scratch=scratch)[0]  # fmt: skip
        totals.append(out1 @ grid.rule1.weights)
        if k > 0 and np.all(np.abs(totals[k] - totals[k - 1]) <= QUADRATURE_TOL):
            return KINK_ORDERS[k - 1]
    return KINK_ORDERS[-1] + 1


# Gauss-Legendre orders tried for the z2 rules split at the kinks (see _adapt_student_rules).
SPLIT_ORDERS = (8, 12, 16, 24)
# Gauss-Legendre orders per panel tried for the z2 rules split at a kinked loss's own kink
# (the first is saddle.piecewise.SPLIT_ORDER, that of every other split rule).
KINK_ORDERS = (SPLIT_ORDER, 20, 40, 80)


# Relative change of the state below which a re-solve on re-adapted rules is accepted.
QUADRATURE_STATE_TOL = 1e-9


def kink_split_rule(kinks: list[float]) -> GaussHermite:
    """A ``z1`` rule split at the kinks of a teacher's fields (:mod:`saddle.piecewise`)."""
    x, w = legendre_rule()
    size = split_rule_capacity(len(kinks))
    z_out, w_out = np.empty(size), np.empty(size)
    n = split_gaussian_rule(np.array(kinks, dtype=float), len(kinks), x, w, SPLIT_PANEL,
                            SPLIT_CUTOFF, z_out, w_out)  # fmt: skip
    nodes, weights = z_out[:n].copy(), w_out[:n].copy()
    nodes.setflags(write=False)
    weights.setflags(write=False)
    return GaussHermite(nodes=nodes, weights=weights)


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
