"""The finite-width two-layer ReLU student of SPEC §6 and its full-batch GD training.

``f(x) = (1/sqrt(m)) sum_r a_r ReLU(w_r . x)`` with ``a_r = +-1`` fixed and only ``W`` trained on
``L(W) = 1/2 |u - y|^2 + lambda/2 |u - t|^2`` (``u = f(X)``).  The gradient is

    dL/dw_r = (1/sqrt(m)) a_r sum_i [(u_i - y_i) + lambda (u_i - t_i)] 1{w_r . x_i > 0} x_i,

computed for all neurons at once with two matrix products per step into preallocated buffers.

Also here: the teachers of the kernel experiment (a wider network trained on the labels, the
ridge-logistic teacher, a corrupted/smoothed-label teacher) and :func:`run_kernel_experiment`, which
ties data, teacher, network and the kernel-regime theory of :mod:`replica.kernel` together (used by
the ``kd-replica kernel`` command and the notebook).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from replica.kernel import (
    KernelRegime,
    ProportionalPrediction,
    kernel_regime,
    normalise_rows,
    ntk_gram,
    proportional_test_error,
)
from replica.params import (
    ParameterError,
    check_count,
    check_nonnegative,
    check_open_unit,
    check_positive,
    check_smoothing,
    check_unit_interval,
)
from simulations.data import sample_mixture

INIT_SCHEMES = ("random", "symmetric")
#: Outputs below this magnitude are treated as exactly zero when labels are predicted.
ZERO_OUTPUT = 1e-12
TEACHERS = ("wide", "ridge", "noisy")


# ----------------------------------------------------------------------------- the network
class TwoLayerReLU:
    """Two-layer ReLU network with fixed output signs (mutable: ``W`` is trained in place).

    Parameters
    ----------
    W : ndarray, shape (m, d)
        First-layer weights (copied).
    a : ndarray, shape (m,)
        Output weights in {-1, +1} (fixed).
    """

    def __init__(self, W: np.ndarray, a: np.ndarray) -> None:
        self.W = np.array(W, dtype=float)
        self.a = np.asarray(a, dtype=float).copy()
        if self.W.ndim != 2 or self.a.shape != (self.W.shape[0],):
            raise ParameterError(f"W (m, d) and a (m,) shapes disagree: {W.shape}, {a.shape}")
        self.W0 = self.W.copy()

    @classmethod
    def initialise(
        cls,
        width: int,
        n_features: int,
        rng: np.random.Generator,
        *,
        kappa: float = 1.0,
        init: str = "random",
    ) -> TwoLayerReLU:
        """``w_r ~ N(0, kappa^2 I)``, ``a_r`` uniform in {-1, +1} (SPEC §6).

        ``init="symmetric"`` draws m/2 neurons and pairs each with a copy of opposite output
        sign, so ``f_0 = 0`` exactly while every neuron keeps the same marginal law (m even).
        """
        width = check_count("width", width)
        n_features = check_count("n_features", n_features)
        kappa = check_positive("kappa", kappa)
        if init not in INIT_SCHEMES:
            raise ParameterError(f"init must be one of {INIT_SCHEMES}; got {init!r}")
        if init == "random":
            W = kappa * rng.standard_normal((width, n_features))
            a = rng.choice([-1.0, 1.0], size=width)
        else:
            if width % 2:
                raise ParameterError(f"width must be even for symmetric init; got {width}")
            half = width // 2
            Wh = kappa * rng.standard_normal((half, n_features))
            ah = rng.choice([-1.0, 1.0], size=half)
            W = np.concatenate([Wh, Wh])
            a = np.concatenate([ah, -ah])
        return cls(W, a)

    @property
    def width(self) -> int:
        return int(self.W.shape[0])

    def outputs(self, X: np.ndarray) -> np.ndarray:
        """``f(X)``, shape ``(n,)``."""
        return np.maximum(X @ self.W.T, 0.0) @ self.a / math.sqrt(self.width)

    def empirical_ntk(self, X: np.ndarray, Z: np.ndarray | None = None) -> np.ndarray:
        """Finite-width NTK at the current weights, ``(1/m) (Z X^T) * (1{ZW^T>0} 1{XW^T>0}^T)``."""
        Z = X if Z is None else Z
        ax = (X @ self.W.T > 0).astype(float)
        az = ax if Z is X else (Z @ self.W.T > 0).astype(float)
        return (Z @ X.T) * (az @ ax.T) / self.width

    def distance_from_init(self) -> float:
        """``|W - W(0)|_F``."""
        return float(np.linalg.norm(self.W - self.W0))


@dataclass(frozen=True)
class NetworkTrajectory:
    """Recorded full-batch GD run of the finite network.

    Attributes
    ----------
    steps : ndarray, shape (K,)
        Recorded GD steps (outputs *before* the update of that step; the last is after ``steps``).
    train_outputs : ndarray, shape (K, n)
        ``u(k)``.
    test_outputs : ndarray, shape (K, n_test) or None
        Outputs on the test inputs.
    distance : ndarray, shape (K,)
        ``|W(k) - W(0)|_F``.
    loss : ndarray, shape (K,)
        ``1/2 |u - y|^2 + lambda/2 |u - t|^2``.
    """

    steps: np.ndarray
    train_outputs: np.ndarray
    test_outputs: np.ndarray | None
    distance: np.ndarray
    loss: np.ndarray

    def to_dict(self) -> dict:
        return {
            "steps": self.steps.tolist(),
            "distance": self.distance.tolist(),
            "loss": self.loss.tolist(),
        }


def record_schedule(steps: int, n_points: int = 200) -> np.ndarray:
    """Up to ~``n_points`` recording steps in [0, steps]: every step early, geometric later."""
    steps = check_count("steps", steps, minimum=0)
    n_points = check_count("n_points", n_points, minimum=2)
    if steps + 1 <= n_points:
        return np.arange(steps + 1)
    grid = np.unique(np.round(np.geomspace(1, steps, n_points)).astype(np.int64))
    dense = np.arange(min(n_points // 4, steps) + 1)
    return np.unique(np.concatenate([dense, grid, [steps]]))


def train_distillation(
    net: TwoLayerReLU,
    X: np.ndarray,
    y: np.ndarray,
    t: np.ndarray,
    lam: float,
    lr: float,
    steps: int,
    *,
    record: Sequence[int] | None = None,
    X_test: np.ndarray | None = None,
    callback: Callable[[int], None] | None = None,
) -> NetworkTrajectory:
    """Full-batch GD on ``1/2 |u - y|^2 + lambda/2 |u - t|^2`` (trains ``net.W`` in place).

    Parameters
    ----------
    net : TwoLayerReLU
        The student (its current ``W`` is the starting point; ``net.W0`` the reference for the
        distance).
    X : ndarray, shape (n, d)
        Training inputs (on the unit sphere for the kernel model).
    y, t : ndarray, shape (n,)
        Targets and teacher outputs.
    lam, lr : float
        Teacher weight lambda >= 0 and step size > 0.
    steps : int
        Number of GD steps.
    record : sequence of int, optional
        Steps at which to record (default :func:`record_schedule`).
    X_test : ndarray, optional
        Test inputs whose outputs are recorded too.
    callback : callable, optional
        Called with the step index after each update (progress bars).
    """
    lam = check_nonnegative("lam", lam)
    lr = check_positive("lr", lr)
    steps = check_count("steps", steps, minimum=0)
    X = np.ascontiguousarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    t = np.asarray(t, dtype=float)
    n, d = X.shape
    if net.W.shape[1] != d:
        raise ParameterError(f"X must have {net.W.shape[1]} columns; got {d}")
    rec = record_schedule(steps) if record is None else np.unique(np.asarray(record, np.int64))
    if rec.size == 0 or rec[0] < 0 or rec[-1] > steps:
        raise ParameterError(f"record steps must lie in [0, {steps}]")
    m = net.width
    a_scaled = net.a / math.sqrt(m)
    # preallocated work buffers
    Z = np.empty((n, m))
    active = np.empty((n, m), dtype=bool)
    G = np.empty((n, m))
    grad = np.empty((m, d))
    out_u = np.empty((rec.size, n))
    out_test = None
    if X_test is not None:
        X_test = np.ascontiguousarray(X_test, dtype=float)
        out_test = np.empty((rec.size, X_test.shape[0]))
        Z_test = np.empty((X_test.shape[0], m))
    out_dist = np.empty(rec.size)
    r_idx = 0
    W = net.W
    for k in range(steps + 1):
        np.matmul(X, W.T, out=Z)
        np.greater(Z, 0.0, out=active)
        np.maximum(Z, 0.0, out=Z)
        u = Z @ a_scaled
        if r_idx < rec.size and rec[r_idx] == k:
            out_u[r_idx] = u
            out_dist[r_idx] = np.linalg.norm(W - net.W0)
            if out_test is not None:
                np.matmul(X_test, W.T, out=Z_test)
                np.maximum(Z_test, 0.0, out=Z_test)
                np.matmul(Z_test, a_scaled, out=out_test[r_idx])
            r_idx += 1
        if k == steps:
            break
        residual = (u - y) + lam * (u - t)  # dL/du
        np.multiply(active, residual[:, None], out=G)
        np.matmul(G.T, X, out=grad)
        grad *= (lr * a_scaled)[:, None]
        W -= grad
        if callback is not None:
            callback(k + 1)
    loss = 0.5 * np.sum((out_u - y) ** 2, axis=1) + 0.5 * lam * np.sum((out_u - t) ** 2, axis=1)
    return NetworkTrajectory(rec, out_u, out_test, out_dist, loss)


# ----------------------------------------------------------------------------- teachers
@dataclass(frozen=True)
class Teacher:
    """Teacher outputs on the training (and test) inputs of the kernel experiment.

    Attributes
    ----------
    kind : str
        "wide", "ridge" or "noisy".
    train_outputs : ndarray, shape (n,)
        ``t``, on the scale of the sign targets s = 2y - 1.
    test_outputs : ndarray or None
        The teacher's outputs on the test inputs (None for the "noisy" teacher, which is not a
        function of the input).
    details : dict
        Construction parameters.
    """

    kind: str
    train_outputs: np.ndarray
    test_outputs: np.ndarray | None
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"kind": self.kind, **self.details}


def wide_network_teacher(
    X: np.ndarray,
    signs: np.ndarray,
    X_test: np.ndarray,
    rng: np.random.Generator,
    *,
    width: int,
    steps: int,
    lr: float,
    kappa: float = 1.0,
    init: str = "random",
) -> Teacher:
    """(a) A wider network trained on the sign labels (lambda = 0), stopped after ``steps`` steps.

    Early stopping makes its training outputs mostly lie in H's top eigenspace (in the kernel
    regime ``t - t0 = (I - (I - lr H)^steps)(s - t0)``), the "good teacher" of the paper.
    """
    net = TwoLayerReLU.initialise(width, X.shape[1], rng, kappa=kappa, init=init)
    train_distillation(net, X, signs, signs, 0.0, lr, steps, record=[steps])
    details = {"width": width, "steps": steps, "lr": lr, "kappa": kappa, "init": init}
    return Teacher("wide", net.outputs(X), net.outputs(X_test), details)


def ridge_logistic_teacher(
    X_raw: np.ndarray, labels: np.ndarray, X_test_raw: np.ndarray, *, lam: float
) -> Teacher:
    """(b) The ridge-logistic teacher of SPEC §2 fitted on the raw mixture inputs.

    Its probability is mapped to the sign scale, ``t = 2 sigma(h) - 1 = tanh(h/2)`` (the expected
    sign under the teacher), so that t and the targets s live on the same scale.
    """
    from simulations.estimators import fit_ridge_logistic  # written concurrently; import lazily

    fit = fit_ridge_logistic(X_raw, np.asarray(labels, dtype=float), lam)
    n_features = X_raw.shape[1]
    h_train = X_raw @ fit.w / math.sqrt(n_features) + fit.b
    h_test = X_test_raw @ fit.w / math.sqrt(n_features) + fit.b
    details = {"lam": lam, "converged": bool(fit.converged)}
    return Teacher("ridge", np.tanh(h_train / 2.0), np.tanh(h_test / 2.0), details)


def noisy_label_teacher(
    signs: np.ndarray, rng: np.random.Generator, *, flip: float = 0.0, smooth: float = 0.0
) -> Teacher:
    """(c) A teacher of chosen quality: the signs with a fraction ``flip`` flipped (exactly
    ``round(flip n)`` of them, at random), then shrunk by ``1 - 2 smooth`` (label smoothing)."""
    flip = check_unit_interval("flip", flip)
    smooth = check_smoothing("smooth", smooth)
    s = np.asarray(signs, dtype=float).copy()
    n_flip = int(round(flip * s.size))
    idx = rng.choice(s.size, size=n_flip, replace=False)
    s[idx] *= -1.0
    return Teacher("noisy", (1.0 - 2.0 * smooth) * s, None, {"flip": flip, "smooth": smooth})


# ----------------------------------------------------------------------------- the experiment
@dataclass(frozen=True)
class KernelExperimentConfig:
    """Parameters of one kernel-regime KD experiment (validated on construction).

    ``lr=None`` picks ``1 / ((1 + lam) mu_max(H))``, the largest step for which no mode of the
    kernel dynamics oscillates.  Defaults for the teachers: width 4x the student's and
    ``max(1, steps // 20)`` steps for "wide"; ridge 0.1 for "ridge".
    """

    n: int = 200
    d: int = 50
    width: int = 4096
    lam: float = 1.0
    teacher: str = "wide"
    steps: int = 1000
    lr: float | None = None
    seed: int = 0
    kappa: float = 1.0
    rho: float = 0.2
    delta: float = 1.0
    n_test: int = 2000
    init: str = "random"
    teacher_width: int | None = None
    teacher_steps: int | None = None
    teacher_lr: float | None = None
    ridge_lam: float = 0.1
    flip: float = 0.1
    smooth: float = 0.0
    record_points: int = 100
    tolerance: float = 1e-2

    def __post_init__(self) -> None:
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        for name in ("n", "d", "width", "n_test"):
            set_(name, check_count(name, getattr(self, name)))
        set_("steps", check_count("steps", self.steps, minimum=0))
        set_("seed", check_count("seed", self.seed, minimum=0))
        set_("record_points", check_count("record_points", self.record_points, minimum=2))
        set_("lam", check_nonnegative("lam", self.lam))
        set_("kappa", check_positive("kappa", self.kappa))
        set_("rho", check_open_unit("rho", self.rho))
        set_("delta", check_positive("delta", self.delta))
        set_("ridge_lam", check_nonnegative("ridge_lam", self.ridge_lam))
        set_("flip", check_unit_interval("flip", self.flip))
        set_("smooth", check_smoothing("smooth", self.smooth))
        set_("tolerance", check_positive("tolerance", self.tolerance))
        if self.lr is not None:
            set_("lr", check_positive("lr", self.lr))
        if self.teacher_lr is not None:
            set_("teacher_lr", check_positive("teacher_lr", self.teacher_lr))
        if self.teacher not in TEACHERS:
            raise ParameterError(f"teacher must be one of {TEACHERS}; got {self.teacher!r}")
        if self.init not in INIT_SCHEMES:
            raise ParameterError(f"init must be one of {INIT_SCHEMES}; got {self.init!r}")
        if self.init == "symmetric" and self.width % 2:
            raise ParameterError(f"width must be even for symmetric init; got {self.width}")
        tw = 4 * self.width if self.teacher_width is None else self.teacher_width
        set_("teacher_width", check_count("teacher_width", tw))
        if self.init == "symmetric" and self.teacher_width % 2:
            raise ParameterError(f"teacher_width must be even for symmetric init; got {tw}")
        ts = max(1, self.steps // 20) if self.teacher_steps is None else self.teacher_steps
        set_("teacher_steps", check_count("teacher_steps", ts, minimum=0))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class KernelExperiment:
    """Theory and finite-width network on the same data, teacher and initialisation.

    Attributes
    ----------
    config : KernelExperimentConfig
    theory : KernelRegime
        Kernel-regime model built with the network's own initial outputs u0.
    network : NetworkTrajectory
    steps : ndarray
        Recorded steps (shared by theory and network).
    theory_train_outputs, theory_test_outputs : ndarray
        ``u(k)`` and ``f_k(test)`` predicted by the kernel regime.
    theory_distance : ndarray
        Predicted ``|W(k) - W(0)|_F``.
    proportional : ProportionalPrediction or None
        Linearised-Gram test-error curve (symmetric init only: it assumes f_0 = 0).
    teacher : Teacher
    labels, test_labels : ndarray
        Training and test labels in {0, 1}.
    lr : float
        Step size used.
    """

    config: KernelExperimentConfig
    theory: KernelRegime
    network: NetworkTrajectory
    steps: np.ndarray
    theory_train_outputs: np.ndarray
    theory_test_outputs: np.ndarray
    theory_distance: np.ndarray
    proportional: ProportionalPrediction | None
    teacher: Teacher
    labels: np.ndarray
    test_labels: np.ndarray
    lr: float

    # ------------------------------------------------------------ derived trajectories
    @staticmethod
    def _error(outputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Classification error of ``label 1 iff f > 0`` along the rows of ``outputs``.

        Outputs within ``ZERO_OUTPUT`` of 0 count as 0 (the symmetric initialisation gives
        f_0 = 0 only up to rounding, which would otherwise pick labels at random).
        """
        return np.mean((outputs > ZERO_OUTPUT) != (labels == 1), axis=-1)

    def trajectories(self) -> dict[str, np.ndarray]:
        """Per recorded step: loss, RMS distance to u*, train/test error, ``|W - W0|`` (both
        sides)."""
        th, net = self.theory, self.network
        n = th.u_star.size
        rms = lambda u: np.linalg.norm(u - th.u_star, axis=1) / math.sqrt(n)  # noqa: E731
        out = {
            "step": self.steps,
            "theory_loss": th.train_loss(self.steps),
            "network_loss": net.loss,
            "theory_fixed_point_rms": rms(self.theory_train_outputs),
            "network_fixed_point_rms": rms(net.train_outputs),
            "deviation_rms": np.linalg.norm(net.train_outputs - self.theory_train_outputs, axis=1)
            / math.sqrt(n),
            "theory_train_error": self._error(self.theory_train_outputs, self.labels),
            "network_train_error": self._error(net.train_outputs, self.labels),
            "theory_test_error": self._error(self.theory_test_outputs, self.test_labels),
            "network_test_error": self._error(net.test_outputs, self.test_labels),
            "theory_distance": self.theory_distance,
            "network_distance": net.distance,
        }
        if self.proportional is not None:
            out["linearised_test_error"] = self.proportional.test_error
        return out

    def summary(self) -> dict:
        """JSON-ready summary of the run (scalars only)."""
        tr = self.trajectories()
        th = self.theory
        tol = self.config.tolerance
        hit = np.nonzero(tr["network_fixed_point_rms"] <= tol)[0]
        net_hit = int(self.steps[hit[0]]) if hit.size else None
        theory_hit = th.iterations_to_reach(tol)
        teacher_err = None
        if self.teacher.test_outputs is not None:
            teacher_err = float(self._error(self.teacher.test_outputs, self.test_labels))
        teacher_train_err = float(self._error(self.teacher.train_outputs, self.labels))
        out = {
            "config": self.config.to_dict(),
            "lr": self.lr,
            "effective_step": th.effective_step,
            "H_eigenvalue_min": float(th.eigenvalues[0]),
            "H_eigenvalue_max": float(th.eigenvalues[-1]),
            "teacher": self.teacher.to_dict(),
            "teacher_train_error": teacher_train_err,
            "teacher_test_error": teacher_err,
            "capacity": th.capacity(),
            "final_step": int(self.steps[-1]),
            "theory_final_distance": float(tr["theory_distance"][-1]),
            "network_final_distance": float(tr["network_distance"][-1]),
            "max_deviation_rms": float(np.max(tr["deviation_rms"])),
            "theory_final_fixed_point_rms": float(tr["theory_fixed_point_rms"][-1]),
            "network_final_fixed_point_rms": float(tr["network_fixed_point_rms"][-1]),
            "tolerance": tol,
            "theory_iterations_to_tolerance": theory_hit,
            "network_iterations_to_tolerance": net_hit,
            "theory_final_test_error": float(tr["theory_test_error"][-1]),
            "network_final_test_error": float(tr["network_test_error"][-1]),
            "network_final_train_error": float(tr["network_train_error"][-1]),
        }
        if self.proportional is not None:
            out["linearised_final_test_error"] = float(self.proportional.test_error[-1])
        return out

    def to_dict(self) -> dict:
        return self.summary()


def run_kernel_experiment(
    config: KernelExperimentConfig, *, callback: Callable[[int], None] | None = None
) -> KernelExperiment:
    """Sample the mixture, build the teacher, train the network and evaluate the kernel theory.

    Data: ``sample_mixture`` (SPEC §1) normalised onto the unit sphere; regression targets are
    the signs ``s = 2y - 1``; a test set of ``n_test`` points shares the cluster direction.
    """
    c = config
    rng = np.random.default_rng(c.seed)
    train = sample_mixture(c.d, c.n, c.rho, c.delta, rng)
    test = sample_mixture(c.d, c.n_test, c.rho, c.delta, rng, v=train.v)
    X, X_test = normalise_rows(train.X), normalise_rows(test.X)
    s = train.signs
    H = ntk_gram(X)
    mu_max = float(np.linalg.eigvalsh(H)[-1])
    if c.teacher == "wide":
        t_lr = 1.0 / mu_max if c.teacher_lr is None else c.teacher_lr
        if t_lr * mu_max >= 2.0:
            raise ParameterError(f"teacher_lr must be < 2 / mu_max = {2 / mu_max:.4g}; got {t_lr}")
        teacher = wide_network_teacher(
            X,
            s,
            X_test,
            rng,
            width=c.teacher_width,
            steps=c.teacher_steps,
            lr=t_lr,
            kappa=c.kappa,
            init=c.init,
        )
    elif c.teacher == "ridge":
        teacher = ridge_logistic_teacher(train.X, train.y, test.X, lam=c.ridge_lam)
    else:
        teacher = noisy_label_teacher(s, rng, flip=c.flip, smooth=c.smooth)
    t = teacher.train_outputs
    lr = 1.0 / ((1.0 + c.lam) * mu_max) if c.lr is None else c.lr
    net = TwoLayerReLU.initialise(c.width, c.d, rng, kappa=c.kappa, init=c.init)
    u0 = net.outputs(X)
    f0_test = net.outputs(X_test)
    theory = kernel_regime(H, s, t, c.lam, lr, u0)  # raises if lr is unstable
    record = record_schedule(c.steps, c.record_points)
    traj = train_distillation(
        net, X, s, t, c.lam, lr, c.steps, record=record, X_test=X_test, callback=callback
    )
    K_test = ntk_gram(X, X_test)
    prop = None
    if c.init == "symmetric":
        prop = proportional_test_error(
            X, train.v, c.rho, c.delta, theory.u_star, theory.effective_step, record
        )
    return KernelExperiment(
        config=c,
        theory=theory,
        network=traj,
        steps=record,
        theory_train_outputs=theory.train_outputs(record),
        theory_test_outputs=theory.test_outputs(K_test, f0_test, record),
        theory_distance=theory.distance(record),
        proportional=prop,
        teacher=teacher,
        labels=train.y,
        test_labels=test.y,
        lr=lr,
    )
