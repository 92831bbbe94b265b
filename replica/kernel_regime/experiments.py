"""Knowledge transfer in the kernel regime: theory and finite-width network side by side.

Every experiment is a set of *runs* (lambda, step) on independent *replicates* (seeds).  A
replicate fixes the data, the teacher and the student's initialisation, drawn from three
independent streams (:func:`replica.kernel_regime.data.replicate_streams`); every run of a
replicate starts from the same initial weights, so differences between runs are paired.

Per run, for the kernel theory (:mod:`replica.kernel_regime.dynamics`) and the network
(:mod:`simulations.wide_network`):

* ``test_error`` and ``train_error`` (against the labels) of ``sign f`` after ``steps`` steps;
* ``capacity`` (theory) ``sqrt((u* - u0)^T H^-1 (u* - u0))`` and ``distance`` ``|W(T) - W(0)|_F``
  (theory: the exact trajectory; network: measured);
* ``iterations``: first step with ``|u(k) - u*| / sqrt(n) <= tolerance`` (theory: exact closed
  form; network: from its error at every step);
* ``residual_energy``: ``(q_i . (u(k) - u*))^2`` per eigenvector of H at a diagnostic step.

Step conventions (labelled in every output): the baseline (lambda = 0) runs at step ``lr``;
"equal step" KD runs at the same ``lr`` (effective step ``lr (1 + lambda)``, the trivial speed-up
included); "equal effective step" KD runs at ``lr / (1 + lambda)``, so that only the fixed point
u* differs from the baseline.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np

from replica.kernel_regime.data import DATASETS, KernelData, digits_data, mixture_data
from replica.kernel_regime.data import replicate_streams as _streams
from replica.kernel_regime.dynamics import kernel_regime_from_eigh
from replica.kernel_regime.gram import ntk_gram
from replica.kernel_regime.teachers import QUALITY_KNOB, TEACHER_KINDS, Teacher, build_teacher
from replica.params import (
    PARAMETERS,
    ParameterError,
    check_count,
    check_nonnegative,
    check_positive,
    check_unit_interval,
    default,
)

BASELINE = "baseline"
EQUAL_STEP = "equal step"
EQUAL_EFFECTIVE_STEP = "equal effective step"
STEP_MODES = (EQUAL_STEP, EQUAL_EFFECTIVE_STEP)
INIT_SCHEMES = ("symmetric", "random")
SCALARS = ("test_error", "train_error", "capacity", "distance", "iterations", "fixed_point_rms")
#: Outputs below this magnitude count as exactly zero when labels are predicted (symmetric
#: initialisation gives f_0 = 0 only up to rounding).
ZERO_OUTPUT = 1e-12


# ----------------------------------------------------------------------------------- setup
@dataclass(frozen=True)
class KernelSetup:
    """Data, teacher, student and training budget of a kernel-regime experiment.

    Defaults transfer knowledge: a teacher that has seen 1000 privileged points (its training
    outputs differ from the labels), the symmetric initialisation (f_0 = 0), the Gaussian mixture
    of docs/model.md §1 at n = 200, d = 50.  ``init="random"`` is the independent Gaussian
    initialisation whose initial function (variance kappa^2) persists at test points in the kernel
    regime. ``lr=None`` ("auto") sets the baseline's step per replicate (see :func:`compare`).
    ``diagnostic_step`` (default ``min(10, steps)``) is the step of the per-eigenmode residual.
    ``n_test=None``: 2000 test points for the mixture, every remaining image for digits.
    """

    dataset: str = "mixture"
    n: int = 200
    d: int = 50
    n_test: int | None = None
    n_privileged: int = 1000
    rho: float = default("rho")
    delta: float = default("delta")
    teacher: str = "privileged"
    teacher_ridge: float = 0.0
    teacher_width: int = 8192
    teacher_steps: int = 20
    flip: float = 0.2
    smooth: float = default("smoothing")
    ridge_lam: float = default("lam")
    teacher_modes: int = 10
    init: str = "symmetric"
    kappa: float = 1.0
    width: int = 4096
    steps: int = 300
    lr: float | None = None
    tolerance: float = 1e-2
    diagnostic_step: int | None = None
    seed: int = 0
    seeds: int = 5

    def __post_init__(self) -> None:
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        if self.dataset not in DATASETS:
            raise ParameterError(f"dataset must be one of {DATASETS}; got {self.dataset!r}")
        if self.teacher not in TEACHER_KINDS:
            raise ParameterError(f"teacher must be one of {TEACHER_KINDS}; got {self.teacher!r}")
        if self.init not in INIT_SCHEMES:
            raise ParameterError(f"init must be one of {INIT_SCHEMES}; got {self.init!r}")
        for name in ("n", "d", "width", "teacher_width", "teacher_modes", "seeds"):
            set_(name, check_count(name, getattr(self, name)))
        for name in ("n_privileged", "teacher_steps", "steps", "seed"):
            set_(name, check_count(name, getattr(self, name), minimum=0))
        if self.diagnostic_step is None:
            set_("diagnostic_step", min(10, self.steps))
        set_("diagnostic_step", check_count("diagnostic_step", self.diagnostic_step, minimum=0))
        if self.n_test is None and self.dataset == "mixture":
            set_("n_test", 2000)
        if self.n_test is not None:
            set_("n_test", check_count("n_test", self.n_test))
        set_("rho", PARAMETERS["rho"].validate(self.rho))
        set_("delta", PARAMETERS["delta"].validate(self.delta))
        for name in ("kappa", "tolerance"):
            set_(name, check_positive(name, getattr(self, name)))
        set_("teacher_ridge", check_nonnegative("teacher_ridge", self.teacher_ridge))
        set_("ridge_lam", PARAMETERS["lam"].validate(self.ridge_lam, "ridge_lam"))
        set_("flip", check_unit_interval("flip", self.flip))
        set_("smooth", PARAMETERS["smoothing"].validate(self.smooth, "smooth"))
        if self.lr is not None:
            set_("lr", check_positive("lr", self.lr))
        if self.init == "symmetric":
            for name in ("width", "teacher_width"):
                if getattr(self, name) % 2:
                    raise ParameterError(
                        f"{name} must be even for symmetric init; got {getattr(self, name)}"
                    )
        if self.teacher == "privileged" and self.n_privileged < 1:
            raise ParameterError("n_privileged must be >= 1 for the privileged teacher")
        if self.diagnostic_step > self.steps:
            raise ParameterError(
                f"diagnostic_step must be <= steps = {self.steps}; got {self.diagnostic_step}"
            )

    def teacher_options(self) -> dict:
        return {
            "n_privileged": self.n_privileged,
            "teacher_ridge": self.teacher_ridge,
            "teacher_width": self.teacher_width,
            "teacher_steps": self.teacher_steps,
            "flip": self.flip,
            "smooth": self.smooth,
            "ridge_lam": self.ridge_lam,
            "teacher_modes": self.teacher_modes,
            "kappa": self.kappa,
            "init": self.init,
        }

    def to_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------------------ replicates
@dataclass(frozen=True)
class Replicate:
    """One draw of data, teacher and student initialisation, with H's eigendecomposition."""

    index: int
    data: KernelData
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    K_test: np.ndarray
    teacher: Teacher
    W0: np.ndarray | None
    a: np.ndarray | None
    u0: np.ndarray
    f0_test: np.ndarray

    @property
    def mu_max(self) -> float:
        return float(self.eigenvalues[-1])

    @property
    def H(self) -> np.ndarray:
        Q = self.eigenvectors
        return (Q * self.eigenvalues) @ Q.T


def draw_data(setup: KernelSetup, rng: np.random.Generator) -> KernelData:
    """The replicate's data set, from its ``data`` stream."""
    if setup.dataset == "digits":
        return digits_data(setup.n, setup.n_test, setup.n_privileged, rng)
    return mixture_data(
        setup.n, setup.d, setup.n_test, setup.n_privileged, setup.rho, setup.delta, rng
    )


def prepare_replicate(
    setup: KernelSetup, index: int, *, network: bool = True, teacher_options: dict | None = None
) -> Replicate:
    """Data, teacher and student of replicate ``index`` (independent streams per role).

    With ``network=False`` and the symmetric initialisation no network is drawn (f_0 = 0
    exactly); otherwise the student's initial weights come from the ``student`` stream alone.
    """
    streams = _streams(setup.seed, index)
    data = draw_data(setup, streams["data"])
    H = ntk_gram(data.X)
    mu, Q = np.linalg.eigh(H)
    options = setup.teacher_options() | (teacher_options or {})
    teacher = build_teacher(setup.teacher, data, streams["teacher"], H, **options)
    W0 = a = None
    if network or setup.init == "random":
        from simulations.wide_network import TwoLayerReLU

        net = TwoLayerReLU.initialise(
            setup.width, data.X.shape[1], streams["student"], kappa=setup.kappa, init=setup.init
        )
        W0, a = net.W0, net.a
        u0, f0_test = net.outputs(data.X), net.outputs(data.X_test)
    else:
        u0, f0_test = np.zeros(data.n), np.zeros(data.X_test.shape[0])
    K_test = ntk_gram(data.X, data.X_test)
    return Replicate(index, data, mu, Q, K_test, teacher, W0, a, u0, f0_test)


def with_teacher(rep: Replicate, setup: KernelSetup, **options) -> Replicate:
    """The same replicate (data, student) with the teacher rebuilt from fresh ``options``."""
    streams = _streams(setup.seed, rep.index)
    teacher = build_teacher(
        setup.teacher, rep.data, streams["teacher"], rep.H, **(setup.teacher_options() | options)
    )
    return replace(rep, teacher=teacher)


# ------------------------------------------------------------------------------ one run
@dataclass(frozen=True)
class RunSpec:
    """One training run: teacher weight ``lam`` and step ``lr``.

    ``lr=None`` sets the step per replicate as ``lr_scale / mu_max(H)``.
    """

    label: str
    mode: str
    lam: float
    lr: float | None = None
    lr_scale: float = 1.0

    def step(self, mu_max: float) -> float:
        return self.lr if self.lr is not None else self.lr_scale / mu_max

    def to_dict(self) -> dict:
        return {"label": self.label, "mode": self.mode, "lam": self.lam, "lr": self.lr,
                "lr_scale": None if self.lr is not None else self.lr_scale}  # fmt: skip


@dataclass(frozen=True)
class RunObservables:
    """Observables of one run on one replicate (theory or network)."""

    test_error: float
    train_error: float
    capacity: float
    distance: float
    iterations: float
    fixed_point_rms: float
    residual_energy: np.ndarray
    lr: float

    def scalars(self) -> dict[str, float]:
        return {k: float(getattr(self, k)) for k in SCALARS}

    def to_dict(self) -> dict:
        return self.scalars() | {"lr": self.lr}


def _error(outputs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean((outputs > ZERO_OUTPUT) != (labels == 1)))


def theory_run(rep: Replicate, spec: RunSpec, setup: KernelSetup) -> RunObservables:
    """Kernel-regime prediction of one run (closed forms; no network)."""
    lr = spec.step(rep.mu_max)
    th = kernel_regime_from_eigh(
        rep.eigenvalues, rep.eigenvectors, rep.data.signs, rep.teacher.train_outputs,
        spec.lam, lr, rep.u0,
    )  # fmt: skip
    T, kd = setup.steps, setup.diagnostic_step
    u_T = th.train_outputs([T])[0]
    f_T = th.test_outputs(rep.K_test, rep.f0_test, [T])[0]
    return RunObservables(
        test_error=_error(f_T, rep.data.test_labels),
        train_error=_error(u_T, rep.data.labels),
        capacity=th.capacity(),
        distance=float(th.distance([T])[0]),
        iterations=float(th.iterations_to_reach(setup.tolerance)),
        fixed_point_rms=float(th.fixed_point_error([T])[0]),
        residual_energy=th.residual_energy([kd])[0],
        lr=lr,
    )


def network_run(
    rep: Replicate,
    spec: RunSpec,
    setup: KernelSetup,
    *,
    callback: Callable[[int], None] | None = None,
) -> RunObservables:
    """Train the finite network of the replicate (from its own initial weights) for one run."""
    from simulations.wide_network import TwoLayerReLU, train_distillation

    if rep.W0 is None:
        raise ParameterError("the replicate was prepared without a network (network=False)")
    lr = spec.step(rep.mu_max)
    if lr * (1.0 + spec.lam) * rep.mu_max >= 2.0:
        limit = 2.0 / ((1.0 + spec.lam) * rep.mu_max)
        raise ParameterError(f"lr must be < 2 / ((1 + lam) mu_max) = {limit:.4g}; got {lr:g}")
    data, T, kd = rep.data, setup.steps, setup.diagnostic_step
    net = TwoLayerReLU(rep.W0, rep.a)
    s, t = data.signs, rep.teacher.train_outputs
    traj = train_distillation(
        net, data.X, s, t, spec.lam, lr, T, record=sorted({0, kd, T}), X_test=data.X_test,
        callback=callback,
    )  # fmt: skip
    u_star = (s + spec.lam * t) / (1.0 + spec.lam)
    at = {int(k): i for i, k in enumerate(traj.steps)}
    modes = rep.eigenvectors.T @ (traj.train_outputs[at[kd]] - u_star)
    return RunObservables(
        test_error=_error(traj.test_outputs[at[T]], data.test_labels),
        train_error=_error(traj.train_outputs[at[T]], data.labels),
        capacity=float("nan"),
        distance=float(traj.distance[at[T]]),
        iterations=float(traj.iterations_to_reach(setup.tolerance)),
        fixed_point_rms=float(traj.fixed_point_rms[T]),
        residual_energy=modes**2,
        lr=lr,
    )


# ------------------------------------------------------------------------------ statistics
@dataclass(frozen=True)
class Estimate:
    """Mean and standard error over seeds of the finite values (``n`` of them)."""

    mean: float
    se: float
    n: int

    def to_dict(self) -> dict:
        return {"mean": self.mean, "se": self.se, "n": self.n}

    def __str__(self) -> str:
        if self.n == 0:
            return "-"
        return f"{self.mean:.4g} ± {self.se:.2g}" if self.n > 1 else f"{self.mean:.4g}"


def estimate(values: Sequence[float]) -> Estimate:
    """:class:`Estimate` of the finite entries of ``values`` (SE = sample std / sqrt(n))."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return Estimate(float("nan"), float("nan"), 0)
    se = float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else float("nan")
    return Estimate(float(v.mean()), se, int(v.size))


@dataclass(frozen=True)
class RunSummary:
    """A run over seeds: theory, network (None if not run), and the paired change against the
    replicate's lambda = 0 baseline (same data, teacher, initialisation)."""

    spec: RunSpec
    theory: dict[str, Estimate]
    network: dict[str, Estimate] | None
    theory_change: dict[str, Estimate]
    network_change: dict[str, Estimate] | None
    per_seed: tuple[dict, ...]

    def to_dict(self) -> dict:
        conv = lambda d: None if d is None else {k: e.to_dict() for k, e in d.items()}  # noqa: E731
        return {
            **self.spec.to_dict(),
            "theory": conv(self.theory),
            "network": conv(self.network),
            "theory_change_vs_baseline": conv(self.theory_change),
            "network_change_vs_baseline": conv(self.network_change),
        }


def _summarise(spec, theory_obs, network_obs, base_theory, base_network) -> RunSummary:
    def stats(obs):
        return {k: estimate([o.scalars()[k] for o in obs]) for k in SCALARS}

    def change(obs, base):
        return {
            k: estimate([o.scalars()[k] - b.scalars()[k] for o, b in zip(obs, base, strict=True)])
            for k in SCALARS
        }

    per_seed = []
    for i, th in enumerate(theory_obs):
        row = {"seed_index": i, **spec.to_dict(), "lr": th.lr}
        row |= {f"theory_{k}": v for k, v in th.scalars().items()}
        if network_obs is not None:
            row |= {f"network_{k}": v for k, v in network_obs[i].scalars().items()}
        per_seed.append(row)
    return RunSummary(
        spec,
        stats(theory_obs),
        None if network_obs is None else stats(network_obs),
        change(theory_obs, base_theory),
        None if network_obs is None else change(network_obs, base_network),
        tuple(per_seed),
    )


# ------------------------------------------------------------------------------ execution
@dataclass(frozen=True)
class ReplicateResult:
    """What one replicate task returns: per plan item, the teacher's quality and the
    (theory, network-or-None) observables of each run; and H's spectrum."""

    index: int
    eigenvalues: np.ndarray
    items: tuple[tuple[dict, tuple[tuple[RunObservables, RunObservables | None], ...]], ...]


def run_replicate(
    setup: KernelSetup,
    index: int,
    plan: Sequence[tuple[dict | None, Sequence[RunSpec]]],
    network: bool,
) -> ReplicateResult:
    """Execute ``plan`` on replicate ``index``: for each (teacher options, runs) item, rebuild
    the teacher if options are given and evaluate every run (theory, and network if asked).

    Runs in a worker process; BLAS is limited to one thread there (threadpoolctl, if
    installed): several single-threaded workers beat threads fighting over shared cores.
    """
    with _single_blas_thread():
        rep = prepare_replicate(setup, index, network=network)
        items = []
        for options, specs in plan:
            r = rep if options is None else with_teacher(rep, setup, **options)
            quality = {"train_disagreement": r.teacher.train_disagreement(r.data.labels),
                       "test_error": r.teacher.test_error(r.data.test_labels)}  # fmt: skip
            obs = tuple(
                (theory_run(r, sp, setup), network_run(r, sp, setup) if network else None)
                for sp in specs
            )
            items.append((quality, obs))
        return ReplicateResult(index, rep.eigenvalues, tuple(items))


class _single_blas_thread:
    """Context manager: one BLAS thread inside (no-op without threadpoolctl)."""

    def __enter__(self):
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover - optional
            self._limit = None
            return self
        self._limit = threadpool_limits(limits=1, user_api="blas")
        return self

    def __exit__(self, *exc):
        if self._limit is not None:
            self._limit.restore_original_limits()
        return False


def run_replicates(
    setup: KernelSetup,
    plan: Sequence[tuple[dict | None, Sequence[RunSpec]]],
    *,
    network: bool = True,
    workers: int | None = 1,
    callback: Callable[[int], None] | None = None,
) -> list[ReplicateResult]:
    """Run ``plan`` on every replicate, in ``workers`` processes (1: in this process).

    Results are identical whatever ``workers`` (each replicate has its own streams).
    ``callback`` is called with the number of replicates done.
    """
    from saddle.executor import make_executor

    results = {}
    with make_executor(workers) as ex:
        futures = [ex.submit(run_replicate, setup, r, plan, network) for r in range(setup.seeds)]
        for fut in futures:
            res = fut.result()
            results[res.index] = res
            if callback is not None:
                callback(len(results))
    return [results[r] for r in range(setup.seeds)]


def _collect(results: list[ReplicateResult], item: int, run: int):
    th = [res.items[item][1][run][0] for res in results]
    net = [res.items[item][1][run][1] for res in results]
    return th, (None if net[0] is None else net)


def _quality(results: list[ReplicateResult], item: int) -> dict[str, Estimate]:
    q = [res.items[item][0] for res in results]
    return {
        "train_disagreement": estimate([x["train_disagreement"] for x in q]),
        "test_error": estimate([np.nan if x["test_error"] is None else x["test_error"]
                                for x in q]),
    }  # fmt: skip


# ------------------------------------------------------------------------------ compare
def auto_base_scale(lam: float) -> float:
    """``1 / (1 + lam)``: the baseline step ``1 / ((1 + lam) mu_max)`` at which the equal-step
    KD run with teacher weight ``lam`` has no oscillating mode (``lr (1 + lam) mu_max = 1``)."""
    return 1.0 / (1.0 + lam)


def compare_specs(lam: float, lr: float | None) -> list[RunSpec]:
    """Baseline, equal-step KD and equal-effective-step KD runs for teacher weight ``lam``."""
    lam = check_nonnegative("lam", lam)
    labels = ("lambda = 0 (baseline)", f"lambda = {lam:g}, equal step",
              f"lambda = {lam:g}, equal effective step")  # fmt: skip
    modes = (BASELINE, EQUAL_STEP, EQUAL_EFFECTIVE_STEP)
    lams = (0.0, lam, lam)
    if lr is None:
        c = auto_base_scale(lam)
        return [RunSpec(lb, m, la, None, sc)
                for lb, m, la, sc in zip(labels, modes, lams, (c, c, c / (1 + lam)), strict=True)]
    return [RunSpec(lb, m, la, r)
            for lb, m, la, r in zip(labels, modes, lams, (lr, lr, lr / (1 + lam)), strict=True)]


@dataclass(frozen=True)
class Comparison:
    """Result of :func:`compare`: the runs, the teacher's quality and the spectral diagnostic.

    ``spectrum`` holds, for the first replicate, H's eigenvalues and each run's residual energy
    per eigenmode at ``setup.diagnostic_step`` (theory and network).
    """

    setup: KernelSetup
    lam: float
    runs: tuple[RunSummary, ...]
    teacher: dict[str, Estimate]
    spectrum: dict[str, np.ndarray]

    def to_dict(self) -> dict:
        return {
            "setup": self.setup.to_dict(),
            "lam": self.lam,
            "teacher": {k: e.to_dict() for k, e in self.teacher.items()},
            "runs": [r.to_dict() for r in self.runs],
        }

    def rows(self) -> list[dict]:
        """Flat per-seed rows (CSV)."""
        return [row for r in self.runs for row in r.per_seed]


def compare(
    setup: KernelSetup,
    lam: float = 1.0,
    *,
    network: bool = True,
    workers: int | None = 1,
    callback: Callable[[int], None] | None = None,
) -> Comparison:
    """Training with and without the teacher: baseline, equal step, equal effective step.

    With ``setup.lr`` None the baseline step is ``1 / ((1 + lam) mu_max)`` per replicate, so that
    the equal-step KD run has ``lr (1 + lam) mu_max = 1``; the equal-effective-step run uses
    ``lr / (1 + lam)``.  ``callback`` is called with the number of replicates done.
    """
    specs = compare_specs(lam, setup.lr)
    results = run_replicates(setup, [(None, specs)], network=network, workers=workers,
                             callback=callback)  # fmt: skip
    base_th, base_net = _collect(results, 0, 0)
    runs = tuple(_summarise(sp, *_collect(results, 0, i), base_th, base_net)
                 for i, sp in enumerate(specs))  # fmt: skip
    spectrum = {"eigenvalues": results[0].eigenvalues}
    for i, sp in enumerate(specs):
        th, net = results[0].items[0][1][i]
        spectrum[f"theory:{sp.label}"] = th.residual_energy
        if net is not None:
            spectrum[f"network:{sp.label}"] = net.residual_energy
    return Comparison(setup, float(lam), runs, _quality(results, 0), spectrum)


# ------------------------------------------------------------------------------ sweeps
@dataclass(frozen=True)
class SweepPoint:
    """One value of the swept parameter in one step mode."""

    value: float
    run: RunSummary
    teacher: dict[str, Estimate]

    def to_dict(self) -> dict:
        return {"value": self.value, **self.run.to_dict(),
                "teacher": {k: e.to_dict() for k, e in self.teacher.items()}}  # fmt: skip


@dataclass(frozen=True)
class Sweep:
    """Result of :func:`sweep`: ``curves[mode]`` is a tuple of points along ``values``.

    For ``vary="lam"`` each mode's curve contains lambda = 0 (its baseline).  For
    ``vary="teacher-quality"`` ``baseline`` is the lambda = 0 run (independent of the teacher).
    """

    setup: KernelSetup
    vary: str
    parameter: str
    values: tuple[float, ...]
    lam: float | None
    curves: dict[str, tuple[SweepPoint, ...]]
    baseline: RunSummary | None

    def to_dict(self) -> dict:
        return {
            "setup": self.setup.to_dict(),
            "vary": self.vary,
            "parameter": self.parameter,
            "values": list(self.values),
            "lam": self.lam,
            "curves": {m: [p.to_dict() for p in pts] for m, pts in self.curves.items()},
            "baseline": None if self.baseline is None else self.baseline.to_dict(),
        }

    def rows(self) -> list[dict]:
        """Flat per-seed rows (CSV)."""
        out = []
        if self.baseline is not None:
            out += [{"step_mode": BASELINE, self.parameter: None, **row}
                    for row in self.baseline.per_seed]  # fmt: skip
        for mode, pts in self.curves.items():
            for p in pts:
                for row in p.run.per_seed:
                    out.append({"step_mode": mode, self.parameter: p.value, **row})
        return out


VARY = ("lam", "teacher-quality")
DEFAULT_LAMS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
DEFAULT_QUALITY = {
    "privileged": (10, 30, 100, 300, 1000),
    "wide": (2, 5, 10, 20, 50, 200),
    "noisy": (0.0, 0.1, 0.2, 0.3, 0.4),
    "ridge": (0.001, 0.01, 0.1, 1.0, 10.0),
    "top-modes": (1, 3, 10, 30, 100),
    "bottom-modes": (1, 3, 10, 30, 100),
}
_INTEGER_KNOBS = ("n_privileged", "teacher_steps", "teacher_modes")


def lam_sweep_specs(values: Sequence[float], lr: float | None, mode: str) -> list[RunSpec]:
    """Runs along lambda for one step mode (lambda = 0 is that mode's baseline).

    Equal effective step: ``lr (1 + lam)`` fixed at the baseline's step (auto: ``1/mu_max``).
    Equal step: ``lr`` fixed (auto: ``1 / ((1 + lam_max) mu_max)``, stable for every lambda).
    """
    if mode not in STEP_MODES:
        raise ParameterError(f"mode must be one of {STEP_MODES}; got {mode!r}")
    lam_max = max(values)
    specs = []
    for lam in values:
        label = f"lambda = {lam:g}, {mode}"
        if mode == EQUAL_EFFECTIVE_STEP:
            specs.append(RunSpec(label, mode, lam, None if lr is None else lr / (1 + lam),
                                 1.0 / (1.0 + lam)))  # fmt: skip
        else:
            specs.append(RunSpec(label, mode, lam, lr, auto_base_scale(lam_max)))
    return specs


def sweep(
    setup: KernelSetup,
    vary: str = "lam",
    values: Sequence[float] | None = None,
    *,
    lam: float = 1.0,
    modes: Sequence[str] = STEP_MODES,
    network: bool = True,
    workers: int | None = 1,
    callback: Callable[[int], None] | None = None,
) -> Sweep:
    """Sweep lambda, or the teacher's quality knob (:data:`QUALITY_KNOB`) at fixed ``lam``.

    ``vary="lam"``: every ``mode`` of :data:`STEP_MODES` is a curve; lambda = 0 is added to the
    values if missing (the baseline is always drawn).  ``vary="teacher-quality"``: the knob of
    ``setup.teacher`` takes ``values`` (defaults :data:`DEFAULT_QUALITY`); the KD runs use the
    equal effective step (``modes`` ignored) and the lambda = 0 baseline is shared.
    """
    if vary not in VARY:
        raise ParameterError(f"vary must be one of {VARY}; got {vary!r}")
    if vary == "lam":
        raw = DEFAULT_LAMS if values is None else values
        vals = sorted({check_nonnegative("lam", float(v)) for v in raw} | {0.0})
        specs = {m: lam_sweep_specs(vals, setup.lr, m) for m in modes}
        plan = [(None, [sp for m in modes for sp in specs[m]])]
        results = run_replicates(setup, plan, network=network, workers=workers,
                                 callback=callback)  # fmt: skip
        curves, j = {}, 0
        for m in modes:
            base_th, base_net = _collect(results, 0, j)
            pts = []
            for sp in specs[m]:
                run = _summarise(sp, *_collect(results, 0, j), base_th, base_net)
                pts.append(SweepPoint(sp.lam, run, _quality(results, 0)))
                j += 1
            curves[m] = tuple(pts)
        return Sweep(setup, vary, "lam", tuple(vals), None, curves, None)
    knob = QUALITY_KNOB[setup.teacher]
    raw = values if values is not None else DEFAULT_QUALITY[setup.teacher]
    vals = tuple(int(v) if knob in _INTEGER_KNOBS else float(v) for v in raw)
    lam = check_nonnegative("lam", lam)
    base_spec, _, kd_spec = compare_specs(lam, setup.lr)
    plan = [(None, [base_spec])] + [({knob: v}, [kd_spec]) for v in vals]
    results = run_replicates(setup, plan, network=network, workers=workers, callback=callback)
    base_th, base_net = _collect(results, 0, 0)
    pts = tuple(
        SweepPoint(float(v), _summarise(kd_spec, *_collect(results, i + 1, 0), base_th, base_net),
                   _quality(results, i + 1))
        for i, v in enumerate(vals)
    )  # fmt: skip
    baseline = _summarise(base_spec, base_th, base_net, base_th, base_net)
    return Sweep(setup, vary, knob, tuple(float(v) for v in vals), lam,
                 {EQUAL_EFFECTIVE_STEP: pts}, baseline)  # fmt: skip
