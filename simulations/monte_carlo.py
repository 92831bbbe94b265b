"""Finite-size Monte-Carlo of the teacher and the distilled student, with error bars over seeds.

Each seed draws a cluster direction ``v`` (``|v|^2 = N``) and ``M = round(alpha N)`` training
samples with exactly ``round(rho M)`` positives (docs/model.md §1 and docs/numerics.md §6), solves
the convex problems exactly (:mod:`simulations.estimators`) and measures the observables of
docs/model.md §3. Order parameters are divided by the FULL N, also for the student.

Randomness
----------
Seed ``k`` (``0 <= k < seeds``) of base seed ``s`` draws everything from the entropy
``[s, k]``, in independent streams ``np.random.SeedSequence([s, k], spawn_key=(i, *key))``:

* ``i = 0``: the cluster direction ``v`` (``key = ()``, shared by all values of a sweep),
  normalised by :func:`simulations.data.draw_cluster_direction` to ``|v|^2 = N``; for the
  student run with ``support = k = round(eta N)``, i.e. ``|v[:k]|^2 = k`` and
  ``|v[k:]|^2 = N - k`` (the student's own signal does not fluctuate from seed to seed);
* ``i = 1``: the training set, ``key = (N, M, bits(rho), bits(delta))`` with ``bits`` the
  IEEE-754 bit pattern of the float as an integer;
* ``i = 2``: the test set, ``key = (N, n_test, bits(rho), bits(delta))``;
* ``i = 3``: the noise ``g`` of the Bayes-optimal proxy teacher (``key = ()``).

Consequences:

* a run is reproducible, and the numbers of seed ``k`` do not depend on ``seeds`` (so
  ``seeds=3`` gives the first three seeds of ``seeds=5``);
* in a sweep (:func:`simulate_teacher_curve`, :func:`simulate_student_curve`) the point at value
  ``x`` uses exactly the data of the single-point run at ``x``; it agrees with it up to the
  solver tolerance (only the starting point of the solver differs);
* along a sweep of a parameter that leaves ``(N, alpha, rho, delta)`` unchanged (``lam``,
  ``chi``, ``temperature``, ``eta``, ...) every value sees the same training and test sets
  (common random numbers: smooth curves, correlated errors);
* along an ``alpha`` sweep the training samples are fresh (independent) for each value, while
  ``v``, the test set and ``g`` are shared.

Warm starts: within a seed a sweep walks the values in the given order and starts every fit
from the solution at the previous value, unless the cold start ``w = 0, b = 0`` has the lower
objective (measured: with fresh samples at small ridge the previous weights are a worse start
than zero; on the same samples they save ~30-40% of the work).  A teacher whose data and
parameters did not change is reused, not refitted.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from replica.errors import generalisation_error
from replica.losses import LOSS_KINDS, kd_targets, kd_term_weight, mixture_loss_arrays
from replica.observables import TEACHER_PREFIX, Estimate, canonical
from replica.params import (
    MODEL_PARAMETERS,
    PARAMETERS,
    ParameterError,
    check_count,
    check_flag,
    default,
    defaults,
    teacher_values,
)
from replica.stages import TEACHER_KINDS, teacher_kind
from replica.tables import columns_of, to_frame
from saddle.executor import blas_thread_limit
from saddle.results import ValueEquality, freeze
from simulations.data import MixtureSample, draw_cluster_direction, sample_mixture
from simulations.estimators import (
    LinearFit,
    bayes_optimal_teacher,
    fit_kd_student,
    fit_linear_classifier,
    label_terms,
    sigmoid,
    smooth_labels,
)

__all__ = [
    "SimulationCurve",
    "SimulationResult",
    "simulate_student",
    "simulate_student_curve",
    "simulate_teacher",
    "simulate_teacher_curve",
]


# ----------------------------------------------------------------------------------------------
# Results
# ----------------------------------------------------------------------------------------------


# Per-seed booleans: summarised as "every seed", not averaged
FLAGS = ("converged", "finite", "teacher_converged", "teacher_finite")


def _aggregate(per_seed: list[dict[str, float]]) -> tuple[dict[str, float], dict[str, float]]:
    """Means and standard errors ``std(ddof=1) / sqrt(seeds)`` (NaN for a single seed) of
    every numeric per-seed entry (not of the :data:`FLAGS`)."""
    mean, sem = {}, {}
    for name in per_seed[0]:
        if name in FLAGS:
            continue
        values = np.array([row[name] for row in per_seed], dtype=float)
        mean[name] = float(values.mean())
        if values.size > 1:
            sem[name] = float(values.std(ddof=1) / math.sqrt(values.size))
        else:
            sem[name] = math.nan
    return mean, sem


class ObservableMap(Mapping):
    """A read-only ``{observable: value}`` mapping that also answers to former names.

    ``n_iter`` (and ``teacher_n_iter``) are the former names of ``nit``; the per-seed flags
    :data:`FLAGS` (``converged``, ``finite`` and the teacher's), formerly averaged into
    fractions, answer the boolean "every seed". Neither is listed among the keys.
    """

    def __init__(self, values: Mapping[str, float], flags: Mapping[str, bool] | None = None):
        self._values = dict(values)
        self._flags = dict(flags or {})

    def __getitem__(self, name: str):
        if name in self._values:
            return self._values[name]
        if name in self._flags:
            return self._flags[name]
        other = canonical(name)
        if other != name and other in self._values:
            return self._values[other]
        raise KeyError(name)

    def __contains__(self, name) -> bool:  # the listed keys only (not the former names)
        return name in self._values

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return repr(self._values)

    def __hash__(self) -> int:
        return hash(freeze(self._values))


@dataclass(frozen=True, eq=False)
class SimulationResult(ValueEquality):
    """Observables at one parameter point, averaged over seeds.

    Attributes
    ----------
    model : str
        ``"teacher"`` or ``"student"``.
    params : dict
        The model parameters (validated values).
    n : int
        Dimension N.
    seeds : int
        Number of independent seeds.
    seed : int
        Base seed (seed ``k`` uses ``SeedSequence([seed, k])``).
    n_test : int
        Size of the test set used for ``eps_g_test`` (0: not measured, nan).
    mean, sem : mapping
        Observable name -> mean over seeds, and its standard error
        ``std(ddof=1) / sqrt(seeds)``. With a single seed the standard error is undefined:
        NaN, and :attr:`sem_defined` is False (:func:`replica.observables.agreement` refuses
        it). ``converged`` is not a mean: see :attr:`converged`.
    per_seed : list of dict
        The observables of every seed, in seed order (``converged`` a bool, ``nit`` an int).

    Observables are also attributes, as on the theory's solutions: ``result.eps_g`` is an
    :class:`replica.observables.Estimate` ``(mean, sem)``, and a student's teacher is
    ``result.teacher`` (a :class:`SimulationResult` of model ``"teacher"``).
    """

    model: str
    params: dict[str, Any]
    n: int
    seeds: int
    seed: int
    n_test: int
    mean: Mapping[str, float]
    sem: Mapping[str, float]
    per_seed: list[dict[str, float]] = field(repr=False)

    def __post_init__(self) -> None:
        flags = {f: all(row[f] for row in self.per_seed) for f in FLAGS if f in self.per_seed[0]}
        object.__setattr__(self, "mean", ObservableMap(self.mean, flags))
        object.__setattr__(self, "sem", ObservableMap(self.sem))

    def __getattr__(self, name: str):
        # Observables as attributes (only called when normal lookup fails).
        if name.startswith("_") or "mean" not in self.__dict__:
            raise AttributeError(name)
        if name in self.mean:
            return Estimate(self.mean[name], self.sem[name])
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def converged(self) -> bool:
        """Whether every seed's fit converged to a finite solution (:attr:`status` 0)."""
        return self.status == 0

    @property
    def success(self) -> bool:
        """Alias of :attr:`converged`."""
        return self.converged

    @property
    def status(self) -> int:
        """As the theory's: 0 every seed converged, 1 some did not, 3 some seeds have no finite
        unique minimiser (``finite`` False: unregularised on separable data, or fewer samples
        than weights), and their observables are NaN. (A student's teacher: ``.teacher``.)"""
        if not all(row.get("finite", True) for row in self.per_seed):
            return 3
        if not all(row.get("converged", True) for row in self.per_seed):
            return 1
        return 0

    @property
    def message(self) -> str:
        """One line describing :attr:`status`."""
        k = self.seeds
        if self.status == 3:
            bad = sum(not row.get("finite", True) for row in self.per_seed)
            return (f"no finite solution at {bad} of {k} seeds: the norm grows without "
                    "bound (unregularised on a separable sample) or the minimiser is not "
                    "unique")  # fmt: skip
        if self.status == 1:
            bad = sum(not row.get("converged", True) for row in self.per_seed)
            return f"not converged at {bad} of {k} seeds"
        return f"converged at all {k} seeds"

    @property
    def nit(self) -> int:
        """Newton iterations of the fits, summed over seeds (the student's, for a student)."""
        return int(sum(row["nit"] for row in self.per_seed))

    @property
    def sem_defined(self) -> bool:
        """Standard errors need at least two seeds (with one they are NaN)."""
        return self.seeds >= 2

    @property
    def teacher(self) -> SimulationResult:
        """A student's teacher, as a teacher result (its ``teacher_`` entries)."""
        if self.model != "student":
            raise AttributeError("only a student simulation has a teacher")
        cut = len(TEACHER_PREFIX)

        def strip(row: Mapping) -> dict:
            return {k[cut:]: v for k, v in row.items() if k.startswith(TEACHER_PREFIX)}

        return SimulationResult(
            "teacher", {**teacher_values(self.params), "kind": self.params["teacher"]},
            self.n, self.seeds, self.seed, self.n_test, strip(self.mean), strip(self.sem),
            [strip(row) for row in self.per_seed],
        )  # fmt: skip

    def observables(self) -> dict[str, Estimate]:
        """``{name: Estimate(mean, sem)}`` of every observable (teacher's with ``teacher_``)."""
        return {name: Estimate(self.mean[name], self.sem[name]) for name in self.mean}

    def to_row(self) -> dict[str, Any]:
        """Flat row: the parameters, ``n``, ``seeds``, ``seed``, ``n_test``, every observable
        ``<name>`` followed by its standard error ``<name>_sem``, then the flags
        (``converged``, ``teacher_converged``: every seed converged)."""
        row: dict[str, Any] = dict(self.params)
        row.update(n=self.n, seeds=self.seeds, seed=self.seed, n_test=self.n_test)
        for name in self.mean:
            row[name] = self.mean[name]
            row[f"{name}_sem"] = self.sem[name]
        row.update({f: self.mean[f] for f in FLAGS if f in self.per_seed[0]})
        return row

    def to_dict(self) -> dict[str, Any]:
        """A plain (JSON-serialisable) dictionary of the result."""
        return {
            "status": self.status,
            "message": self.message,
            "model": self.model,
            "params": dict(self.params),
            "n": self.n,
            "seeds": self.seeds,
            "seed": self.seed,
            "n_test": self.n_test,
            "converged": self.converged,
            "nit": self.nit,
            "mean": dict(self.mean),
            "sem": dict(self.sem),
            "per_seed": [dict(row) for row in self.per_seed],
        }


@dataclass(frozen=True, eq=False)
class SimulationCurve(ValueEquality):
    """A sweep of one parameter: a :class:`SimulationResult` per value (iterable like a list).

    Attributes
    ----------
    model : str
        ``"teacher"`` or ``"student"``.
    vary : str
        The swept parameter.
    values : list
        Its values, in the order they were walked.
    points : list of SimulationResult
        One result per value.
    """

    model: str
    vary: str
    values: list
    points: list[SimulationResult] = field(repr=False)

    def __len__(self) -> int:
        return len(self.points)

    def __iter__(self):
        return iter(self.points)

    def __getitem__(self, index: int) -> SimulationResult:
        return self.points[index]

    def to_columns(self) -> dict[str, list]:
        """Columns ``{name: list}``, one row per value, for CSV files or ``pandas.DataFrame``.

        The parameters (including ``n``, ``seeds``, ``seed``, ``n_test``) come first, then every
        observable ``<obs>`` followed by its standard error ``<obs>_sem``, then ``converged``
        (every seed converged; and ``teacher_converged``): :meth:`SimulationResult.to_row`.
        """
        return columns_of([point.to_row() for point in self.points])

    def to_frame(self):
        """:meth:`to_columns` as a ``pandas.DataFrame`` (pandas imported only here)."""
        return to_frame(self.to_columns())

    def to_dict(self) -> dict[str, Any]:
        """A plain (JSON-serialisable) dictionary: the sweep and every point's ``to_dict``."""
        return {
            "model": self.model,
            "vary": self.vary,
            "values": list(self.values),
            "points": [point.to_dict() for point in self.points],
        }


# ----------------------------------------------------------------------------------------------
# Parameters
# ----------------------------------------------------------------------------------------------


# Validation and defaults of the model parameters come from the one schema
# (replica.params.PARAMETERS); only the run options are the simulations' own.
_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    name: PARAMETERS[name].check for names in MODEL_PARAMETERS.values() for name in names
}
_TEACHER_DEFAULTS: dict[str, Any] = defaults("teacher")
_STUDENT_DEFAULTS: dict[str, Any] = defaults("student")
_DEFAULTS = {"teacher": _TEACHER_DEFAULTS, "student": _STUDENT_DEFAULTS}
_RUN_DEFAULTS: dict[str, Any] = {
    "n": 1000,
    "seeds": 8,
    "seed": 0,
    "n_test": None,
    "progress": False,
}


#: BLAS threads of a simulation (``blas_threads``): one, as on the command line. The fits are
#: small dense problems on which threaded OpenBLAS is 5-30x slower on a shared 2-core machine
#: (README "Command line"); the caller's own limits are restored afterwards.
DEFAULT_BLAS_THREADS = 1


def check_blas_threads(value) -> int | None:
    """``blas_threads``: an integer >= 1, or None (leave the process's BLAS threads alone)."""
    return None if value is None else check_count("blas_threads", value)


def _validate_point(model: str, params: dict[str, Any], n: int) -> dict[str, Any]:
    """Validated model parameters; also checks that ``M >= 1`` and ``round(eta N) >= 1``."""
    checked = {name: _CHECKS[name](name, value) for name, value in params.items()}
    if round(checked["alpha"] * n) < 1:
        raise ParameterError(
            f"alpha must give at least one sample (round(alpha N) >= 1); got {checked['alpha']!r}"
        )
    if model == "student" and round(checked["eta"] * n) < 1:
        raise ParameterError(f"eta must give at least one student weight; got {checked['eta']!r}")
    ridges = [("loss", "lam" if model == "teacher" else "lam_s")]
    if model == "student" and checked.get("teacher") == "ridge":
        ridges.append(("teacher_loss", "lam_t"))
    for loss, ridge in ridges:
        if checked.get(loss) == "hinge" and checked.get(ridge) == 0.0:
            raise ParameterError(f"{ridge} must be > 0 for the hinge loss; got 0.0")
    return checked


@dataclass(frozen=True)
class _RunOptions:
    n: int
    seeds: int
    seed: int
    n_test: int
    progress: bool


def _run_options(n, seeds, seed, n_test, progress) -> _RunOptions:
    n = check_count("n", n)
    n_test = max(2000, n) if n_test is None else check_count("n_test", n_test, minimum=0)
    return _RunOptions(
        n=n,
        seeds=check_count("seeds", seeds),
        seed=check_count("seed", seed, minimum=0),
        n_test=n_test,
        progress=check_flag("progress", progress),
    )


# ----------------------------------------------------------------------------------------------
# Data of one seed
# ----------------------------------------------------------------------------------------------


def _float_key(value: float) -> int:
    """The bit pattern of a float, as an integer usable in a seed sequence."""
    return int(np.float64(value).view(np.uint64))


class _SeedData:
    """The random inputs of seed ``k``: ``v``, training set, test set, teacher noise (cached).

    Stream ``i`` is ``SeedSequence([seed, k], spawn_key=(i, *key))`` (module docstring), so
    each quantity is a deterministic function of ``(seed, k)`` and of the parameters ``key``
    it depends on, whatever was computed before; the caches only avoid recomputing it.
    """

    def __init__(self, seed: int, index: int):
        self._entropy = [seed, index]
        self._cache: dict[str, tuple[tuple, Any]] = {}

    def _cached(self, slot: str, key: tuple, build: Callable[[], Any]) -> Any:
        hit = self._cache.get(slot)
        if hit is not None and hit[0] == key:
            return hit[1]
        value = build()
        self._cache[slot] = (key, value)
        return value

    def _rng(self, *key: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence(self._entropy, spawn_key=key))

    def direction(self, n: int, support: int | None) -> np.ndarray:
        """The cluster direction ``v``, stream 0 (``support``: see the module docstring)."""
        return self._cached(
            "v", (n, support), lambda: draw_cluster_direction(n, self._rng(0), support=support)
        )

    def training(
        self, n: int, alpha: float, rho: float, delta: float, support: int | None = None
    ) -> MixtureSample:
        """``M = round(alpha N)`` training samples, stream ``(1, N, M, rho, delta)``."""
        key = (n, round(alpha * n), _float_key(rho), _float_key(delta))
        v = self.direction(n, support)
        return self._cached(
            "train",
            (*key, support),
            lambda: sample_mixture(n, key[1], rho, delta, self._rng(1, *key), v=v),
        )

    def test(
        self, n: int, rho: float, delta: float, n_test: int, support: int | None = None
    ) -> MixtureSample | None:
        """Test set with the same ``v``, stream ``(2, N, n_test, rho, delta)``; None if empty."""
        if n_test == 0:
            return None
        key = (n, n_test, _float_key(rho), _float_key(delta))
        v = self.direction(n, support)
        return self._cached(
            "test",
            (*key, support),
            lambda: sample_mixture(n, n_test, rho, delta, self._rng(2, *key), v=v),
        )

    def teacher(self, key: tuple, build: Callable[[np.random.Generator], Any]) -> Any:
        """A teacher cached under ``key``; ``build`` receives the teacher-noise stream 3."""
        return self._cached("teacher", key, lambda: build(self._rng(3)))


# ----------------------------------------------------------------------------------------------
# Observables
# ----------------------------------------------------------------------------------------------


def _mean_stage_loss(loss: str, h: np.ndarray, y: np.ndarray, p: np.ndarray, c: float = 1.0,
                     k: float = 0.0, temperature: float = 1.0,
                     t: np.ndarray | None = None) -> float:  # fmt: skip
    """Mean of the loss table's mixture loss ``c l(y, h) + k CE(t, sigma(h/T))`` (exact hinge)."""
    h = np.ascontiguousarray(h, dtype=float)
    s = 2.0 * np.asarray(y, dtype=float) - 1.0
    t = s if t is None else np.ascontiguousarray(t, dtype=float)
    scratch_r, scratch_a = np.zeros(h.size), np.zeros(h.size)
    total = mixture_loss_arrays(LOSS_KINDS[loss], h, s, np.ascontiguousarray(p, dtype=float),
                                c, k, temperature, t, True, scratch_r, scratch_a)  # fmt: skip
    return total / h.size


def _fit_teacher(sample: MixtureSample, loss: str, p: np.ndarray, lam: float, warm_kw: dict):
    """The ridge teacher of loss ``loss`` (:func:`simulations.estimators.label_terms`)."""
    return fit_linear_classifier(sample.X, label_terms(loss, sample.y, p), lam, warn=False,
                                 **warm_kw)  # fmt: skip


def _preactivations(X: np.ndarray, w: np.ndarray, b: float, n: int) -> np.ndarray:
    """``h = X w / sqrt(N) + b`` (N the full dimension)."""
    h = X @ w
    h *= 1.0 / math.sqrt(n)
    h += b
    return h


def _linear_observables(
    w: np.ndarray,
    b: float,
    h_train: np.ndarray,
    sample: MixtureSample,
    test: MixtureSample | None,
    n: int,
    rho: float,
    delta: float,
) -> dict[str, float]:
    """m, q, b, eps_g (Eq. 12), eps_g_test and train_error of ``h = x[:k].w / sqrt(N) + b``."""
    k = w.shape[0]
    m = float(w @ sample.v[:k]) / n
    q = float(w @ w) / n
    if test is None:
        test_error = math.nan
    else:
        test_error = float(np.mean((_preactivations(test.X[:, :k], w, b, n) > 0) != (test.y == 1)))
    return {
        "m": m,
        "q": q,
        "b": float(b),
        "eps_g": generalisation_error(m, q, b, rho, delta),
        "eps_g_test": test_error,
        "train_error": float(np.mean((h_train > 0) != (sample.y == 1))),
    }


DIAGNOSTICS = ("grad_norm", "nit", "converged", "finite")


def _fit_diagnostics(fit: LinearFit | None) -> dict[str, Any]:
    if fit is None:  # a teacher that was not trained (Bayes-optimal proxy)
        return {"grad_norm": math.nan, "nit": 0, "converged": True, "finite": True}
    return {"grad_norm": fit.grad_norm, "nit": int(fit.nit), "converged": bool(fit.converged),
            "finite": bool(fit.finite)}  # fmt: skip


def _without_solution(obs: dict[str, float], prefix: str = "") -> dict[str, float]:
    """``obs`` with every observable but the solver diagnostics set to NaN (no finite unique
    minimiser: the weights are not a solution, as the theory's status 3 has NaN overlaps)."""
    keep = {prefix + name for name in DIAGNOSTICS}
    return {k: (v if k in keep or not k.startswith(prefix) else math.nan) for k, v in obs.items()}


def _warn_unconverged(fit: LinearFit, what: str, params: dict[str, Any]) -> None:
    if not fit.converged and fit.finite:  # no finite solution: summarised once per run
        warnings.warn(
            f"{what} fit did not converge (grad_norm={fit.grad_norm:.3g} after {fit.n_iter} "
            f"Newton iterations) at {params}",
            RuntimeWarning,
            stacklevel=4,
        )


def _warm(fit: LinearFit | None, size: int) -> dict[str, Any]:
    """Warm-start keywords from a previous fit, its weights cut or zero-padded to ``size``.

    The solver falls back to the cold start when that has the lower objective (a fit to other
    samples at small ridge is a poor start: measured, it costs more Newton work than none).
    """
    if fit is None:
        return {}
    w0 = np.zeros(size)
    common = min(size, fit.w.shape[0])
    w0[:common] = fit.w[:common]
    return {"w0": w0, "b0": fit.b, "cold_start_if_better": True}


# ----------------------------------------------------------------------------------------------
# One parameter point of one seed
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Teacher:
    w: np.ndarray
    b: float
    h: np.ndarray  # preactivations on the training samples
    fit: LinearFit | None  # None for the Bayes-optimal proxy


def _teacher_point(data: _SeedData, prm: dict, run: _RunOptions, warm: dict) -> dict[str, float]:
    n = run.n
    sample = data.training(n, prm["alpha"], prm["rho"], prm["delta"])
    test = data.test(n, prm["rho"], prm["delta"], run.n_test)
    p = smooth_labels(sample.y, prm["smoothing"])
    fit = _fit_teacher(sample, prm["loss"], p, prm["lam"], _warm(warm.get("teacher"), n))
    _warn_unconverged(fit, "teacher", prm)
    warm["teacher"] = fit
    teacher = _Teacher(fit.w, fit.b, fit.preactivations, fit)
    obs = _teacher_observables(teacher, sample, test, p, n, prm["rho"], prm["delta"],
                               prm["loss"])  # fmt: skip
    return obs if fit.finite else _without_solution(obs)


def _teacher_observables(
    teacher: _Teacher, sample, test, p: np.ndarray, n: int, rho: float, delta: float,
    loss: str = "logistic",
) -> dict[str, float]:  # fmt: skip
    """Observables of a teacher; ``train_loss`` is its mean training loss ``l(y, h~)``."""
    obs = _linear_observables(teacher.w, teacher.b, teacher.h, sample, test, n, rho, delta)
    obs["train_loss"] = _mean_stage_loss(loss, teacher.h, sample.y, p)
    obs.update(_fit_diagnostics(teacher.fit))
    return obs


def _bayes_teacher(sample: MixtureSample, prm: dict, run, warm, rng) -> _Teacher:
    w, b = bayes_optimal_teacher(sample.v, prm["alpha"], prm["rho"], prm["delta"], rng)
    return _Teacher(w, b, _preactivations(sample.X, w, b, run.n), None)


def _ridge_teacher(sample: MixtureSample, prm: dict, run, warm, rng) -> _Teacher:
    tp = teacher_values(prm)  # the teacher problem's parameters (lam_t -> lam)
    p = smooth_labels(sample.y, tp["smoothing"])
    fit = _fit_teacher(sample, prm["teacher_loss"], p, tp["lam"],
                       _warm(warm.get("teacher"), run.n))  # fmt: skip
    _warn_unconverged(fit, "teacher", prm)
    return _Teacher(fit.w, fit.b, fit.preactivations, fit)


# The simulation of every teacher kind of the registry replica.stages.TEACHER_KINDS.
_TEACHER_BUILDERS = {"ridge": _ridge_teacher, "bayes": _bayes_teacher}
assert set(_TEACHER_BUILDERS) == set(TEACHER_KINDS), "a teacher kind has no simulation"


def _trained_teacher(data: _SeedData, sample: MixtureSample, prm: dict, run, warm) -> _Teacher:
    """The student's teacher, of the kind ``prm["teacher"]`` (:data:`TEACHER_KINDS`)."""
    kind = teacher_kind(prm["teacher"])
    # what the training sample depends on (v's normalisation depends on the support k)
    data_key = (run.n, round(prm["alpha"] * run.n), prm["rho"], prm["delta"],
                round(prm["eta"] * run.n))  # fmt: skip
    key = (kind.name, *data_key, prm["alpha"], *(prm[name] for name in kind.parameters))
    build = _TEACHER_BUILDERS[kind.name]
    teacher = data.teacher(key, lambda rng: build(sample, prm, run, warm, rng))
    if teacher.fit is not None:
        warm["teacher"] = teacher.fit
    return teacher


def _student_point(data: _SeedData, prm: dict, run: _RunOptions, warm: dict) -> dict[str, float]:
    n = run.n
    rho, delta = prm["rho"], prm["delta"]
    k = round(prm["eta"] * n)
    sample = data.training(n, prm["alpha"], rho, delta, support=k)
    test = data.test(n, rho, delta, run.n_test, support=k)
    teacher = _trained_teacher(data, sample, prm, run, warm)
    p = smooth_labels(sample.y, prm["smoothing"])
    kd = (prm["chi"], prm["temperature"], prm["t2_scaling"])
    fit = fit_kd_student(
        sample.X[:, :k], p, teacher.h, prm["lam_s"], *kd, n_norm=n, loss=prm["loss"],
        labels=sample.y, warn=False, **_warm(warm.get("student"), k),
    )  # fmt: skip
    _warn_unconverged(fit, "student", prm)
    warm["student"] = fit
    h = fit.preactivations

    obs = _linear_observables(fit.w, fit.b, h, sample, test, n, rho, delta)
    obs["S"] = float(fit.w @ teacher.w[:k]) / n
    chi, temperature = prm["chi"], prm["temperature"]
    obs["train_loss"] = _mean_stage_loss(
        prm["loss"], h, sample.y, p, 1.0 - chi, kd_term_weight(chi, temperature, kd[2]),
        temperature, kd_targets(teacher.h, temperature),
    )  # fmt: skip
    obs["train_ce"] = _mean_stage_loss("logistic", h, sample.y, p)
    obs["mse_outputs"] = float(np.mean((sigmoid(teacher.h) - sigmoid(h)) ** 2))
    obs["mse_preactivations"] = float(np.mean((teacher.h - h) ** 2))
    obs.update(_fit_diagnostics(fit))

    teacher_loss = prm["teacher_loss"] if teacher.fit is not None else "logistic"
    teacher_obs = _teacher_observables(teacher, sample, test, p, n, rho, delta, teacher_loss)
    obs.update({f"teacher_{name}": value for name, value in teacher_obs.items()})
    teacher_finite = teacher.fit is None or teacher.fit.finite
    if not teacher_finite:
        obs = _without_solution(obs, "teacher_")
        if prm["chi"] > 0.0:  # it distils the outputs of a teacher that is not a solution
            obs["finite"] = obs["converged"] = False
    if not obs["finite"]:
        obs = {k: (v if k.startswith("teacher_") else math.nan) for k, v in obs.items()} | {
            name: obs[name] for name in DIAGNOSTICS
        }
    return obs


_POINT_FUNCTIONS = {"teacher": _teacher_point, "student": _student_point}


# ----------------------------------------------------------------------------------------------
# Driver
# ----------------------------------------------------------------------------------------------


def _split_fixed(model: str, fixed: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Separate model parameters (with defaults) from run options; reject unknown names."""
    options = (*_RUN_DEFAULTS, "blas_threads")
    run = {name: fixed[name] for name in options if name in fixed}
    params = {**_DEFAULTS[model]}
    for name, value in fixed.items():
        if name in options:
            continue
        if name != "alpha" and name not in params:
            raise ParameterError(f"{name} is not a parameter of the {model} simulation")
        params[name] = value
    return params, run


def _simulate(
    model: str, vary: str, values: Sequence, params: dict[str, Any], run: dict[str, Any]
) -> SimulationCurve:
    """Walk ``values`` of ``vary`` for every seed, warm-starting along the walk."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence | np.ndarray):
        raise ParameterError(f"values must be a sequence of {vary} values; got {values!r}")
    if len(values) == 0:
        raise ParameterError("values must not be empty")
    allowed = {"alpha", "n", *_DEFAULTS[model]}
    if vary not in allowed:
        raise ParameterError(f"vary must be one of {sorted(allowed)}; got {vary!r}")
    if vary != "alpha" and "alpha" not in params:
        raise ParameterError("alpha must be given")
    options = {**_RUN_DEFAULTS, **run}
    threads = check_blas_threads(options.pop("blas_threads", DEFAULT_BLAS_THREADS))
    points = []
    for value in values:
        point_options = _run_options(**{**options, **({"n": value} if vary == "n" else {})})
        point_params = {**params, **({} if vary == "n" else {vary: value})}
        points.append((point_options, _validate_point(model, point_params, point_options.n)))

    for opts, prm in points:
        check_memory(model, prm, opts)
    first = points[0][0]
    per_value: list[list[dict[str, float]]] = [[] for _ in values]
    point_function = _POINT_FUNCTIONS[model]
    with blas_thread_limit(threads), tqdm(
        total=first.seeds * len(values), desc=f"simulate {model}", disable=not first.progress
    ) as bar:
        for index in range(first.seeds):
            data = _SeedData(first.seed, index)
            warm: dict[str, LinearFit] = {}
            for j, (opts, prm) in enumerate(points):
                per_value[j].append(point_function(data, prm, opts, warm))
                bar.update()

    results = []
    for (opts, prm), rows in zip(points, per_value, strict=True):
        mean, sem = _aggregate(rows)
        results.append(
            SimulationResult(
                model, prm, opts.n, opts.seeds, opts.seed, opts.n_test, mean, sem, rows
            )
        )
    diverged = [r for r in results if r.status == 3]
    if diverged:
        warnings.warn(f"{model} simulation: {diverged[0].message}"
                      + (f" (and at {len(diverged) - 1} more points)" if len(diverged) > 1 else ""),
                      NoFiniteSolutionWarning, stacklevel=3)  # fmt: skip
    return SimulationCurve(model, vary, [_plain(v) for v in values], results)


class NoFiniteSolutionWarning(RuntimeWarning):
    """Emitted once per simulation when some seeds have no finite unique minimiser."""


# Largest memory a simulation point may need (data of one seed plus the solver's copies);
# override with the environment variable KD_REPLICA_MAX_MEMORY_GIB.
MAX_MEMORY_GIB = 4.0
# Peak memory of a point over the size of its inputs (training and test X), measured with
# tracemalloc: 1.62 for teacher and student (N = 400, M = 8000, n_test = 2000).
_MEMORY_FACTOR = 1.7


def memory_needed(model: str, prm: dict[str, Any], opts: _RunOptions) -> float:
    """Bytes of the inputs of one seed (training ``M x N`` and test ``n_test x N``) times the
    measured peak factor."""
    m = round(prm["alpha"] * opts.n)
    return 8.0 * opts.n * (m + opts.n_test) * _MEMORY_FACTOR


def check_memory(model: str, prm: dict[str, Any], opts: _RunOptions) -> None:
    """ParameterError naming ``alpha`` (many samples) or ``n`` if a point needs more memory than
    ``MAX_MEMORY_GIB``."""
    import os

    limit = float(os.environ.get("KD_REPLICA_MAX_MEMORY_GIB", MAX_MEMORY_GIB))
    need = memory_needed(model, prm, opts) / 2**30
    if need <= limit:
        return
    m = round(prm["alpha"] * opts.n)
    name, value = ("alpha", prm["alpha"]) if m > max(opts.n, opts.n_test) else ("n", opts.n)
    raise ParameterError(
        f"{name} = {value:g} is too large: N = {opts.n} with M = {m} training and {opts.n_test} "
        f"test samples needs ~{need:.1f} GiB, above the limit of {limit:g} GiB "
        f"(KD_REPLICA_MAX_MEMORY_GIB)"
    )


def _plain(value):
    return value.item() if hasattr(value, "item") else value


# ----------------------------------------------------------------------------------------------
# Public entry points
# ----------------------------------------------------------------------------------------------


def simulate_teacher(
    alpha: float,
    rho: float = default("rho"),
    delta: float = default("delta"),
    lam: float = default("lam"),
    smoothing: float = default("smoothing"),
    loss: str = default("loss"),
    *,
    n: int = 1000,
    seeds: int = 8,
    seed: int = 0,
    n_test: int | None = None,
    progress: bool = False,
    blas_threads: int | None = DEFAULT_BLAS_THREADS,
) -> SimulationResult:
    """Ridge teacher at finite N (docs/model.md §2-3), averaged over ``seeds`` seeds.

    Parameters
    ----------
    alpha, rho, delta : float
        Sample ratio ``M / N`` (``M = round(alpha N)``), positive fraction, noise variance.
    lam : float
        Ridge strength (summed-loss convention of paper Eq. 1, docs/conventions.md §2).
    smoothing : float
        Label smoothing ``eps``: targets ``p = y (1 - eps) + (1 - y) eps``.
    loss : {"logistic", "square", "hinge"}
        The loss (:mod:`replica.losses`): ``CE(p, sigma(h))`` (the paper's), ``(h - s)^2/2`` or
        ``max(0, 1 - s h)`` (fitted as the limit of smoothed hinges, :mod:`simulations.estimators`).
    n : int
        Dimension N.
    seeds, seed : int
        Number of seeds and base seed; seed ``k`` uses ``SeedSequence([seed, k])`` (module doc).
        Standard errors need ``seeds >= 2``: with one seed they are NaN by definition and
        ``result.sem_defined`` is False (``replica.observables.agreement`` then refuses).
    n_test : int, optional
        Test-set size for ``eps_g_test``; default ``max(2000, n)``; 0 skips it (nan).
    progress : bool
        Show a tqdm progress bar.
    blas_threads : int or None
        BLAS threads while the fits run (threadpoolctl), default 1: the fits are small dense
        problems, several times slower with threaded BLAS on a shared machine. The caller's
        limits are restored on return; ``None`` leaves them as they are. Results do not depend
        on it (beyond last-bit rounding of BLAS reductions).

    Returns
    -------
    SimulationResult
        Observables (per seed, then mean and sem): ``m = w.v/N``, ``q = |w|^2/N``, ``b``,
        ``eps_g`` (Eq. 12 with the empirical m, q, b), ``eps_g_test`` (error on a fresh test set
        with the same ``v``), ``train_loss`` (mean training loss ``l(y, h)``, no penalty),
        ``train_error`` (vs the labels y; predicted label 1 iff h > 0), and the solver's
        ``grad_norm``, ``nit`` (Newton iterations; formerly ``n_iter``), and per seed
        ``converged`` (a bool; ``result.converged``: every seed converged).
    """
    params = {"alpha": alpha, "rho": rho, "delta": delta, "lam": lam, "smoothing": smoothing,
              "loss": loss}  # fmt: skip
    run = {"n": n, "seeds": seeds, "seed": seed, "n_test": n_test, "progress": progress,
           "blas_threads": blas_threads}  # fmt: skip
    return _simulate("teacher", "alpha", [alpha], params, run)[0]


def simulate_student(
    alpha: float,
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
    loss: str = default("loss"),
    teacher_loss: str = default("teacher_loss"),
    *,
    n: int = 1000,
    seeds: int = 8,
    seed: int = 0,
    n_test: int | None = None,
    progress: bool = False,
    blas_threads: int | None = DEFAULT_BLAS_THREADS,
) -> SimulationResult:
    """Teacher then distilled student at finite N (docs/model.md §2-3), averaged over seeds.

    The teacher is a kind of :data:`replica.stages.TEACHER_KINDS`: ridge regression of loss
    ``teacher_loss`` on all N weights with the smoothed labels and ``lam_t``
    (``teacher="ridge"``), or the Bayes-optimal proxy of paper Eq. 23-24 (``teacher="bayes"``;
    ``lam_t``, ``teacher_loss`` and the teacher's smoothing are then unused).  The student is
    trained on the SAME inputs, on its first ``k = round(eta N)`` coordinates, with the KD
    loss ``(1 - chi) l(y, h) + chi c_T CE(sigma(h~/T), sigma(h/T))`` (``c_T = T^2`` if
    ``t2_scaling``; ``l`` the label loss ``loss``, the paper's ``CE(p, sigma(h))`` by default)
    and ridge ``lam_s``, where ``h~`` are the teacher's preactivations on the training samples
    and ``p`` the labels smoothed with ``smoothing``.

    Parameters are as in :func:`simulate_teacher`, plus ``eta``, ``lam_t``, ``lam_s``, ``chi``,
    ``temperature``, ``t2_scaling``, ``teacher``, ``loss`` (the student's label term) and
    ``teacher_loss``; the run options (``n``, ``seeds``, ``seed``, ``n_test``, ``progress``,
    ``blas_threads``) are those of :func:`simulate_teacher`.

    Returns
    -------
    SimulationResult
        Student observables (all divided by the full N): ``m = w.v[:k]/N``, ``q = |w|^2/N``,
        ``S = w.w~[:k]/N``, ``b``, ``eps_g`` (Eq. 12), ``eps_g_test``, ``train_loss`` (mean KD
        loss per sample including ``c_T``, no penalty), ``train_ce`` (mean ``CE(p, sigma(h))``),
        ``train_error`` (vs y), ``mse_outputs`` (mean ``(sigma(h~) - sigma(h))^2``),
        ``mse_preactivations`` (mean ``(h~ - h)^2``), ``grad_norm``, ``nit``, ``converged``;
        and the teacher's ``teacher_m``, ``teacher_q``, ``teacher_b``, ``teacher_eps_g``,
        ``teacher_eps_g_test``, ``teacher_train_loss`` (mean ``CE(p, sigma(h~))``),
        ``teacher_train_error``, ``teacher_grad_norm`` (nan for the Bayes proxy),
        ``teacher_nit``, ``teacher_converged``.
    """
    params = {
        "alpha": alpha,
        "rho": rho,
        "delta": delta,
        "eta": eta,
        "lam_t": lam_t,
        "lam_s": lam_s,
        "chi": chi,
        "temperature": temperature,
        "t2_scaling": t2_scaling,
        "smoothing": smoothing,
        "teacher": teacher,
        "loss": loss,
        "teacher_loss": teacher_loss,
    }
    run = {"n": n, "seeds": seeds, "seed": seed, "n_test": n_test, "progress": progress,
           "blas_threads": blas_threads}  # fmt: skip
    return _simulate("student", "alpha", [alpha], params, run)[0]


def simulate_teacher_curve(vary: str, values: Sequence, **fixed) -> SimulationCurve:
    """Sweep one parameter of :func:`simulate_teacher` with warm starts.

    Parameters
    ----------
    vary : str
        A parameter of :func:`simulate_teacher` (``alpha``, ``rho``, ``delta``, ``lam``,
        ``smoothing``) or ``n``.
    values : sequence
        Its values, walked in this order within each seed (sort them for the best warm starts).
    **fixed
        The other parameters and run options (``n``, ``seeds``, ``seed``, ``n_test``,
        ``progress``, ``blas_threads``) as in :func:`simulate_teacher`; ``alpha`` is required
        unless varied.

    Returns
    -------
    SimulationCurve
        One :class:`SimulationResult` per value; ``to_columns()`` gives a table.
        The point at value ``x`` uses the data of ``simulate_teacher`` at ``x`` (module doc).
    """
    params, run = _split_fixed("teacher", fixed)
    return _simulate("teacher", vary, values, params, run)


def simulate_student_curve(vary: str, values: Sequence, **fixed) -> SimulationCurve:
    """Sweep one parameter of :func:`simulate_student` with warm starts.

    As :func:`simulate_teacher_curve`; ``vary`` is any parameter of :func:`simulate_student`
    (including ``teacher``) or ``n``.  A teacher whose data and parameters are unchanged from
    the previous value (e.g. in a ``chi``, ``temperature`` or ``lam_s`` sweep) is reused.
    """
    params, run = _split_fixed("student", fixed)
    return _simulate("student", vary, values, params, run)
