"""Studies of distillation chains (issue 12, item 6): self-distillation gains with noisy labels,
their dependence on alpha and on the number of stages, bias fixing, and weak-to-strong.

Every function takes its grid (``alphas``, ``eta0s``, ...) and returns a small frozen result
with ``to_dict()``; the chains are solved by :func:`replica.chain.solve_chain` in a plain loop,
warm-started along the grid, so that an executor-backed sweep can later replace the loop
without changing the results. Simulation points come from :func:`simulate_chain_points`, which
runs :func:`simulations.chains.chain_seed` and reports *paired* differences (the gain of a stage
over another one, computed on the same samples per seed), whose standard errors are much
smaller than those of the errors themselves (docs/chains.md, "Findings").

The chains studied (stage 0 first; ``lam`` in the summed-loss convention of the package):

- *self-distillation*: stage 0 ridge logistic regression on the observed (noisy) labels,
  stage ``k >= 1`` the same model trained on ``(1 - chi) CE(y_obs) + chi CE(target)``, the
  target hard ``1[h_{k-1} > 0]`` or soft ``sigma(h_{k-1} / T)``;
- *weak-to-strong*: stage 0 on the first ``eta_0 N`` coordinates, stage 1 on all of them.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from replica.chain import ChainParams, Stage, optimise_stages, solve_chain

__all__ = [
    "VARIANTS",
    "Curve",
    "PhaseGrid",
    "SimulationPoint",
    "variant_stage",
    "best_ridge_on_grid",
    "self_distillation_point",
    "self_distillation_chain",
    "gain_curve",
    "stage_curve",
    "bias_curve",
    "weak_to_strong_stages",
    "weak_to_strong_curve",
    "weak_to_strong_phase",
    "simulate_chain_points",
]

# The distilled stage of a self-distillation study: target, temperature and the parameters
# optimised with it when the hyper-parameters are tuned (stage 0 always tunes its lam only).
VARIANTS = {
    "hard": {"target": "hard", "temperature": 1.0, "over": ("lam", "chi")},
    "soft": {"target": "soft", "temperature": 1.0, "over": ("lam", "chi")},
    "soft-T": {"target": "soft", "temperature": 1.0, "over": ("lam", "chi", "temperature")},
}


@dataclass(frozen=True)
class Curve:
    """Columns of a study along ``x`` (one entry per grid point).

    Attributes
    ----------
    name : str
    x_name : str
        The grid's parameter (``alpha``, ``stage``, ...).
    x : tuple of float
    columns : dict of str -> tuple
        Observables per point (``eps_g`` of each stage, gains, optimal parameters, ...).
    setting : dict
        Everything else that defines the chains.
    """

    name: str
    x_name: str
    x: tuple
    columns: dict
    setting: dict = field(default_factory=dict)

    def __getitem__(self, column: str) -> np.ndarray:
        return np.asarray(self.columns[column], dtype=float)

    def to_dict(self) -> dict:
        return {"name": self.name, "x_name": self.x_name, "x": list(self.x),
                "columns": {k: list(v) for k, v in self.columns.items()},
                "setting": self.setting}  # fmt: skip


@dataclass(frozen=True)
class PhaseGrid:
    """A study on a 2-d grid: ``values[name][i, j]`` at ``(ys[i], xs[j])``."""

    x_name: str
    xs: tuple
    y_name: str
    ys: tuple
    values: dict
    setting: dict = field(default_factory=dict)

    def __getitem__(self, name: str) -> np.ndarray:
        return np.asarray(self.values[name], dtype=float)

    def to_dict(self) -> dict:
        return {"x_name": self.x_name, "xs": list(self.xs), "y_name": self.y_name,
                "ys": list(self.ys),
                "values": {k: np.asarray(v).tolist() for k, v in self.values.items()},
                "setting": self.setting}  # fmt: skip


@dataclass(frozen=True)
class SimulationPoint:
    """Finite-N means and standard errors over seeds of one chain.

    ``eps_g[k]``, ``sem[k]``: stage k's test error (paper Eq. 12 of its trained weights);
    ``gain[k]``, ``gain_sem[k]``: the paired difference ``eps_g[reference] - eps_g[k]`` per
    seed (``reference`` is stage 0 unless given), mean and SE.
    """

    params: ChainParams
    n: int
    seeds: int
    eps_g: tuple
    sem: tuple
    gain: tuple
    gain_sem: tuple
    converged: float

    def to_dict(self) -> dict:
        return {"params": self.params.to_dict(), "n": self.n, "seeds": self.seeds,
                "eps_g": list(self.eps_g), "sem": list(self.sem), "gain": list(self.gain),
                "gain_sem": list(self.gain_sem), "converged": self.converged}  # fmt: skip


# ----------------------------------------------------------------------------------------------
# Self-distillation: one point, curves over alpha and over the number of stages
# ----------------------------------------------------------------------------------------------


def variant_stage(variant: str, *, lam: float = 0.1, chi: float = 1.0,
                  temperature: float | None = None, bias: str = "free") -> Stage:  # fmt: skip
    """The distilled stage of ``variant`` (a key of :data:`VARIANTS`)."""
    spec = VARIANTS[variant]
    T = spec["temperature"] if temperature is None else temperature
    return Stage(lam=lam, chi=chi, target=spec["target"], temperature=T, bias=bias)


def _quiet(call, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return call(*args, **kwargs)


def best_ridge_on_grid(alpha: float, rho: float, delta: float, flip: float,
                       bounds: tuple = (1e-3, 1e2), num: int = 11) -> float:
    """The ridge of least error of stage 0 alone on ``num`` log-spaced values in ``bounds``:
    the start of the gradient-based optimisation (whose objective need not be unimodal in
    ``log lam`` over the whole box)."""
    lams = np.geomspace(bounds[0], bounds[1], num)[::-1]
    best, best_eps, warm = float(lams[0]), math.inf, None
    for lam in lams:
        sol = _quiet(solve_chain, alpha, rho, delta, flip, [Stage(lam=float(lam))],
                     initial=warm)  # fmt: skip
        warm = [sol.stages[0].state]
        if sol.converged and sol.stages[0].eps_g < best_eps:
            best, best_eps = float(lam), sol.stages[0].eps_g
    return best


def self_distillation_point(alpha: float, rho: float, delta: float, flip: float,
                            variant: str, *, lam: float | None = 0.1,
                            lam_bounds: tuple = (1e-3, 1e2), initial=None) -> dict:  # fmt: skip
    """Stage 0 and one distilled stage of ``variant`` at one point.

    With ``lam`` a number: both stages at that ridge, ``chi = 1`` (pure self-distillation),
    ``T = 1``. With ``lam=None``: stage-wise optimal hyper-parameters
    (:func:`replica.chain.optimise_stages`: stage 0's lam, then the distilled stage's
    ``VARIANTS[variant]["over"]``, within ``lam_bounds`` and ``T`` in [0.1, 10]).

    Returns a dict with ``eps0``, ``eps1``, ``gain = eps0 - eps1``, the stages' ``lam0``,
    ``lam1``, ``chi1``, ``T1``, ``converged`` and the solution's ``state`` (warm start).
    """
    if lam is None:
        lam0 = best_ridge_on_grid(alpha, rho, delta, flip, lam_bounds)
        start = variant_stage(variant, lam=0.1, chi=0.5)
        solution, stages, _ = _quiet(optimise_stages, alpha, rho, delta, flip,
                                     [Stage(lam=lam0), start], over=VARIANTS[variant]["over"],
                                     lam_bounds=lam_bounds)  # fmt: skip
    else:
        stages = (Stage(lam=lam), variant_stage(variant, lam=lam))
        solution = _quiet(solve_chain, alpha, rho, delta, flip, stages, initial=initial)
    s0, s1 = solution.stages
    return {"eps0": s0.eps_g, "eps1": s1.eps_g, "gain": s0.eps_g - s1.eps_g,
            "lam0": stages[0].lam, "lam1": stages[1].lam, "chi1": stages[1].chi,
            "T1": stages[1].temperature, "converged": solution.converged,
            "stages": tuple(stages), "state": [s.state for s in solution.stages]}  # fmt: skip


def gain_curve(values: Sequence[float], *, vary: str = "alpha", alpha: float = 2.0,
               rho: float = 0.5, delta: float = 1.0, flip: float = 0.2,
               variants: Sequence[str] = ("hard", "soft"),
               lam: float | None = 0.1) -> Curve:  # fmt: skip
    """The gain of one distilled stage over its teacher along ``vary`` (alpha, rho, delta or
    flip) taking ``values``, per variant.

    Columns: ``eps0`` and ``lam0`` (the teacher), and per variant ``eps1_<v>``, ``gain_<v>``,
    ``lam1_<v>``, ``chi1_<v>``, ``T1_<v>``, ``converged_<v>`` (with ``lam=None`` the
    stage-wise optimal hyper-parameters).
    """
    if vary not in ("alpha", "rho", "delta", "flip"):
        raise ValueError(f"vary must be alpha, rho, delta or flip; got {vary!r}")
    base = {"alpha": alpha, "rho": rho, "delta": delta, "flip": flip}
    keys = ("eps1", "gain", "lam1", "chi1", "T1", "converged")
    cols: dict[str, list] = {"eps0": [], "lam0": []}
    for v in variants:
        for key in keys:
            cols[f"{key}_{v}"] = []
    for v in variants:
        warm = None
        for x in values:
            point_args = {**base, vary: float(x)}
            point = self_distillation_point(point_args["alpha"], point_args["rho"],
                                            point_args["delta"], point_args["flip"], v,
                                            lam=lam, initial=warm)  # fmt: skip
            warm = point["state"] if lam is not None else None
            for key in keys:
                cols[f"{key}_{v}"].append(float(point[key]))
            if v == variants[0]:
                cols["eps0"].append(point["eps0"])
                cols["lam0"].append(point["lam0"])
    setting = {k: val for k, val in base.items() if k != vary}
    setting.update({"lam": "stage-wise optimal" if lam is None else lam,
                    "chi": "stage-wise optimal" if lam is None else 1.0})  # fmt: skip
    return Curve("gain", vary, tuple(float(x) for x in values),
                 {k: tuple(v) for k, v in cols.items()}, setting)  # fmt: skip


def self_distillation_chain(K: int, variant: str, *, lam: float = 0.1, chi: float = 1.0,
                            temperature: float | None = None, bias: str = "free",
                            lam0: float | None = None) -> tuple[Stage, ...]:  # fmt: skip
    """Stage 0 (ridge ``lam0``, default ``lam``) and ``K`` identical distilled stages."""
    head = Stage(lam=lam if lam0 is None else lam0)
    body = variant_stage(variant, lam=lam, chi=chi, temperature=temperature, bias=bias)
    return (head, *([body] * K))


def stage_curve(alpha: float, *, rho: float = 0.5, delta: float = 1.0, flip: float = 0.2,
                K: int = 3, variants: Sequence[str] = ("hard", "soft"), lam: float = 0.1,
                chi: float = 1.0, temperature: float | None = None, quadrature=None,
                ) -> Curve:  # fmt: skip
    """The test error of stages ``0..K`` of a self-distillation chain (one solve per variant:
    the stages of a ``K``-stage chain are the chains of every shorter length).

    Columns ``eps_<v>`` per variant and ``best_<v>``: the stage of least error (an interior
    minimum if ``0 < best < K``).
    """
    cols = {}
    for v in variants:
        stages = self_distillation_chain(K, v, lam=lam, chi=chi, temperature=temperature)
        sol = _quiet(solve_chain, alpha, rho, delta, flip, stages, quadrature=quadrature)
        eps = [s.eps_g for s in sol.stages]
        cols[f"eps_{v}"] = tuple(eps)
        cols[f"best_{v}"] = (int(np.argmin(eps)),) * (K + 1)
        cols[f"converged_{v}"] = (sol.converged,) * (K + 1)
    setting = {"alpha": alpha, "rho": rho, "delta": delta, "flip": flip, "lam": lam,
               "chi": chi, "temperature": temperature or 1.0}  # fmt: skip
    return Curve("stages", "stage", tuple(float(k) for k in range(K + 1)), cols, setting)


def bias_curve(alphas: Sequence[float], *, rho: float = 0.3, delta: float = 1.0,
               flip: float = 0.2, K: int = 2, variant: str = "hard", lam: float = 0.1,
               biases: Sequence[str] = ("free", "inherit"), quadrature=None) -> Curve:
    """Self-distillation chains whose distilled stages have a free bias or keep stage 0's
    (``inherit``, passed on stage by stage), along ``alphas``.

    Columns ``eps0`` and, per bias rule, ``eps<k>_<bias>`` for ``k = 1..K`` and
    ``gain_<bias> = eps0 - eps<K>_<bias>``.
    """
    cols: dict[str, list] = {"eps0": []}
    for bias in biases:
        for k in range(1, K + 1):
            cols[f"eps{k}_{bias}"] = []
        cols[f"gain_{bias}"] = []
        cols[f"converged_{bias}"] = []
    for bias in biases:
        warm = None
        for alpha in alphas:
            stages = self_distillation_chain(K, variant, lam=lam, bias=bias)
            sol = _quiet(solve_chain, alpha, rho, delta, flip, stages, initial=warm,
                         quadrature=quadrature)  # fmt: skip
            warm = [s.state for s in sol.stages]
            eps = [s.eps_g for s in sol.stages]
            for k in range(1, K + 1):
                cols[f"eps{k}_{bias}"].append(eps[k])
            cols[f"gain_{bias}"].append(eps[0] - eps[K])
            cols[f"converged_{bias}"].append(sol.converged)
            if bias == biases[0]:
                cols["eps0"].append(eps[0])
    setting = {"rho": rho, "delta": delta, "flip": flip, "K": K, "target": variant,
               "lam": lam, "chi": 1.0}  # fmt: skip
    return Curve("bias", "alpha", tuple(float(a) for a in alphas),
                 {k: tuple(v) for k, v in cols.items()}, setting)  # fmt: skip


# ----------------------------------------------------------------------------------------------
# Weak-to-strong: a full-support student taught by a sparse teacher
# ----------------------------------------------------------------------------------------------


def weak_to_strong_stages(eta0: float, variant: str = "hard", *, lam: float = 0.1,
                          chi: float = 1.0) -> tuple[Stage, Stage]:  # fmt: skip
    """Teacher on the first ``eta0 N`` coordinates (noisy labels), student on all of them."""
    spec = VARIANTS[variant]
    return (Stage(eta=eta0, lam=lam),
            Stage(eta=1.0, lam=lam, chi=chi, target=spec["target"],
                  temperature=spec["temperature"]))  # fmt: skip


def _baselines(alpha, rho, delta, flip, lam, warm=None):
    """The full-support student trained directly on the noisy and on the clean labels."""
    noisy = _quiet(solve_chain, alpha, rho, delta, flip, [Stage(lam=lam)],
                   initial=None if warm is None else [warm[0]])  # fmt: skip
    clean = _quiet(solve_chain, alpha, rho, delta, 0.0, [Stage(lam=lam)],
                   initial=None if warm is None else [warm[1]])  # fmt: skip
    return noisy, clean


def weak_to_strong_curve(alphas: Sequence[float], *, eta0: float = 0.3, rho: float = 0.5,
                         delta: float = 1.0, flip: float = 0.2,
                         variants: Sequence[str] = ("hard", "soft"), lam: float = 0.1,
                         ) -> Curve:  # fmt: skip
    """Weak-to-strong along ``alphas``: the sparse teacher's error ``eps_teacher``, the
    student's ``eps_<v>`` per variant, its gain over the teacher ``gain_<v>``, and the same
    full student trained on the noisy labels (``eps_noisy``) and on clean labels
    (``eps_clean``); ``recovered_<v> = (eps_teacher - eps_<v>) / (eps_teacher - eps_clean)``
    is the fraction of the teacher-to-clean gap closed."""
    cols: dict[str, list] = {"eps_teacher": [], "eps_noisy": [], "eps_clean": []}
    for v in variants:
        for key in ("eps", "gain", "recovered", "converged"):
            cols[f"{key}_{v}"] = []
    warm_chain = {v: None for v in variants}
    warm_base = None
    for alpha in alphas:
        noisy, clean = _baselines(alpha, rho, delta, flip, lam, warm_base)
        warm_base = (noisy[0].state, clean[0].state)
        cols["eps_noisy"].append(noisy[0].eps_g)
        cols["eps_clean"].append(clean[0].eps_g)
        for v in variants:
            sol = _quiet(solve_chain, alpha, rho, delta, flip,
                         weak_to_strong_stages(eta0, v, lam=lam), initial=warm_chain[v])
            warm_chain[v] = [s.state for s in sol.stages]
            teacher, student = sol.stages[0].eps_g, sol.stages[1].eps_g
            if v == variants[0]:
                cols["eps_teacher"].append(teacher)
            cols[f"eps_{v}"].append(student)
            cols[f"gain_{v}"].append(teacher - student)
            cols[f"recovered_{v}"].append((teacher - student) / (teacher - clean[0].eps_g))
            cols[f"converged_{v}"].append(sol.converged)
    setting = {"eta0": eta0, "eta1": 1.0, "rho": rho, "delta": delta, "flip": flip,
               "lam": lam, "chi": 1.0}  # fmt: skip
    return Curve("weak_to_strong", "alpha", tuple(float(a) for a in alphas),
                 {k: tuple(v) for k, v in cols.items()}, setting)  # fmt: skip


def weak_to_strong_phase(alphas: Sequence[float], eta0s: Sequence[float], *, rho: float = 0.5,
                         delta: float = 1.0, flip: float = 0.2, variant: str = "hard",
                         lam: float = 0.1) -> PhaseGrid:  # fmt: skip
    """The weak-to-strong gain over the ``(alpha, eta0)`` grid (rows: ``eta0s``).

    Values: ``eps_teacher``, ``eps_student``, ``gain = eps_teacher - eps_student`` (> 0: the
    student beats its teacher), ``eps_noisy`` / ``eps_clean`` (the full student on the noisy /
    clean labels, independent of ``eta0``), ``recovered`` (fraction of the teacher-to-clean
    gap closed) and ``converged``. Each row is one warm-started path in ``alpha``; the
    baselines are computed once per ``alpha``.
    """
    alphas = tuple(float(a) for a in alphas)
    eta0s = tuple(float(e) for e in eta0s)
    shape = (len(eta0s), len(alphas))
    out = {k: np.full(shape, np.nan) for k in ("eps_teacher", "eps_student", "gain",
                                               "eps_noisy", "eps_clean", "recovered",
                                               "converged")}  # fmt: skip
    warm_base = None
    clean_row, noisy_row = [], []
    for alpha in alphas:
        noisy, clean = _baselines(alpha, rho, delta, flip, lam, warm_base)
        warm_base = (noisy[0].state, clean[0].state)
        noisy_row.append(noisy[0].eps_g)
        clean_row.append(clean[0].eps_g)
    for i, eta0 in enumerate(eta0s):
        warm = None
        for j, alpha in enumerate(alphas):
            try:
                sol = _quiet(solve_chain, alpha, rho, delta, flip,
                             weak_to_strong_stages(eta0, variant, lam=lam), initial=warm)
            except (FloatingPointError, ValueError):
                warm = None
                continue
            warm = [s.state for s in sol.stages]
            teacher, student = sol.stages[0].eps_g, sol.stages[1].eps_g
            out["eps_teacher"][i, j] = teacher
            out["eps_student"][i, j] = student
            out["gain"][i, j] = teacher - student
            out["recovered"][i, j] = (teacher - student) / (teacher - clean_row[j])
            out["converged"][i, j] = float(sol.converged)
    out["eps_noisy"][:] = noisy_row
    out["eps_clean"][:] = clean_row
    setting = {"rho": rho, "delta": delta, "flip": flip, "target": variant, "lam": lam,
               "chi": 1.0, "eta1": 1.0}  # fmt: skip
    return PhaseGrid("alpha", alphas, "eta0", eta0s, out, setting)


# ----------------------------------------------------------------------------------------------
# Finite-size simulations beside the theory
# ----------------------------------------------------------------------------------------------


def simulate_chain_points(params: ChainParams, *, n: int = 400, seeds: int = 16,
                          seed: int = 0, reference: int = 0) -> SimulationPoint:  # fmt: skip
    """Simulate ``params`` at dimension ``n`` (:func:`simulations.chains.chain_seed`) and
    return every stage's mean error and the paired gains over stage ``reference``.

    The gain ``eps_g[reference] - eps_g[k]`` is formed per seed (same samples, same noise),
    so its SE measures the gain itself, not the seed-to-seed spread of the errors.
    """
    from saddle.executor import blas_thread_limit
    from simulations.chains import chain_seed

    if seeds < 2:
        raise ValueError("seeds must be >= 2")
    runs = []
    conv = []
    with blas_thread_limit(1):  # one BLAS thread, as simulations.chains.simulate_chain
        for index in range(seeds):
            rows = _quiet(chain_seed, params, n, seed, index)
            runs.append([r["eps_g"] for r in rows])
            conv.append(min(r["converged"] for r in rows))
    eps = np.asarray(runs)
    gains = eps[:, [reference]] - eps
    root = math.sqrt(seeds)
    return SimulationPoint(params, n, seeds, tuple(eps.mean(axis=0)),
                           tuple(eps.std(axis=0, ddof=1) / root), tuple(gains.mean(axis=0)),
                           tuple(gains.std(axis=0, ddof=1) / root),
                           float(np.mean(conv)))  # fmt: skip


def with_flip(params: ChainParams, flip: float) -> ChainParams:
    """``params`` with another label-noise level (for clean-label baselines)."""
    return dataclasses.replace(params, flip=flip)
