"""Finite-size simulations of distillation chains (the model of docs/chains.md).

Per seed: a cluster direction ``v`` normalised block-wise on every segment cut by the stages'
supports (``|v_seg|^2 = len(seg)``), ``M = round(alpha N)`` training inputs with exactly
``round(rho M)`` positives, exactly ``round(flip n_+)`` flipped positive labels and
``round(flip n_-)`` flipped negative ones (variance reductions with the same N -> inf limit),
then every stage solved exactly in order (:func:`simulations.estimators.fit_linear_classifier`
for a free bias; Newton's method on the weights for a fixed bias), each stage trained, with
the label term of its loss (logistic, square, or hinge as the limit of smoothed hinges,
:mod:`simulations.estimators`), on the observed labels and on the trained previous stage's
preactivations on the same samples (soft ``sigma(h/T)`` or hard ``1[h > 0]`` targets). Each
fit starts from the previous stage's weights on its support when that beats the zero start
(the objective is convex: the start changes the work, not the solution).

Randomness: seed ``k`` of base seed ``s`` draws from ``SeedSequence([s, k], spawn_key=(i,))``,
``i = 0`` the direction, ``1`` the training inputs and classes, ``2`` the label flips, ``3`` the
noise of a Bayes-optimal proxy stage 0: independent streams, and seed ``k``'s numbers do not
depend on the number of seeds.

Observables per stage (overlaps over the full N, as the theory): ``eps_g`` of its ``(m, q, b)``
(paper Eq. 12, exact for the given weights), ``m, q, b``, ``Q_jk`` with every earlier stage,
training loss, CE against the observed labels, training errors against observed and true
labels, training disagreement with the previous stage, and the test disagreement computed
from the empirical overlaps with the same formula as the theory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from replica.chain import ChainParams, Stage, _disagreement
from replica.errors import generalisation_error
from replica.params import check_count
from saddle.executor import blas_thread_limit
from simulations.estimators import (
    HINGE_WIDTHS,
    HingeTerm,
    LossTerm,
    fit_linear_classifier,
    label_terms,
    sigmoid,
    softplus,
)
from simulations.monte_carlo import DEFAULT_BLAS_THREADS, check_blas_threads

__all__ = ["ChainSimulation", "simulate_chain", "chain_seed"]


def segment_normalised_direction(n: int, supports: list[int], rng: np.random.Generator):
    """``v ~ N(0, I_N)`` rescaled so that every segment between support edges has
    ``|v_seg|^2 = len(seg)`` (generalises :func:`simulations.data.draw_cluster_direction`)."""
    v = rng.standard_normal(n)
    edges = sorted({0, n, *supports})
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        if hi > lo:
            v[lo:hi] *= math.sqrt(hi - lo) / np.linalg.norm(v[lo:hi])
    return v


def _stage_terms(stage: Stage, y_obs: np.ndarray, h_prev: np.ndarray | None) -> list:
    """The loss terms of a stage: its label term ``(1 - chi) l(y_obs, h)`` (the loss table's
    row ``stage.loss``, :func:`simulations.estimators.label_terms`) and the distillation term."""
    terms = label_terms(stage.loss, y_obs, y_obs, 1.0 - stage.chi) if stage.chi < 1.0 else []
    if stage.chi > 0.0:
        if stage.hard:
            t = (h_prev > 0.0).astype(float)
        else:
            t = sigmoid(h_prev / stage.temperature)
        terms.append(LossTerm(stage.kd_weight, stage.temperature, t))
    return terms


def _term_parts(terms, h):
    """``(sum of the terms' losses, dL/dh, d2L/dh2)`` per sample at ``h``."""
    val = 0.0
    r = np.zeros_like(h)
    a = np.zeros_like(h)
    for term in terms:
        if not isinstance(term, LossTerm):  # square or (smoothed) hinge: the loss table's rows
            val += term.accumulate(h, r, a, True)
            continue
        z = h / term.temperature
        val += term.weight * float(np.sum(softplus(z) - term.targets * z))
        sg = sigmoid(z)
        r += term.weight * (sg - term.targets) / term.temperature
        a += term.weight * sg * (1.0 - sg) / term.temperature**2
    return val, r, a


def _fit_fixed_bias(X, terms, lam, n, b, gtol=1e-10, max_iter=100, w0=None,
                    hinge_widths=HINGE_WIDTHS):  # fmt: skip
    """Minimise ``sum_mu L(X w/sqrt(N) + b) + lam/2 |w|^2`` over ``w`` at fixed ``b`` exactly.

    Newton's method (conjugate gradients on Hessian-vector products; dense solves for hinge
    terms, whose smoothed curvature ``1/width`` defeats CG), backtracking on the objective,
    stopped when ``max |grad| / N <= gtol`` (the criterion of
    :func:`simulations.estimators.fit_linear_classifier`). Hinge terms are fitted as the
    limit of smoothed hinges along ``hinge_widths``, warm-started, as there. Returns
    ``(w, h, converged, width_change)`` (``width_change`` as ``LinearFit.width_change``).
    """
    w = np.zeros(X.shape[1])
    if w0 is not None and np.any(w0):
        h_zero = np.full(X.shape[0], float(b))
        value_zero = _term_parts(_smoothed(terms, hinge_widths[0]), h_zero)[0]
        h0 = X @ w0 / math.sqrt(n) + b
        value0 = (_term_parts(_smoothed(terms, hinge_widths[0]), h0)[0]
                  + 0.5 * lam * float(w0 @ w0))  # fmt: skip
        if value0 < value_zero:
            w = np.array(w0, dtype=float)
    if not any(isinstance(t, HingeTerm) for t in terms):
        w, h, converged = _newton_fixed_bias(X, terms, lam, n, b, w, gtol, max_iter, False)
        return w, h, converged, math.nan
    previous = w
    for i, width in enumerate(hinge_widths):
        tol = gtol if i == len(hinge_widths) - 1 else max(gtol, 1e-6)
        previous, (w, h, converged) = w, _newton_fixed_bias(
            X, _smoothed(terms, width), lam, n, b, w, tol, max_iter, True)
        if not converged:
            break
    change = float(np.max(np.abs(w - previous)) / max(1.0, float(np.max(np.abs(w)))))
    return w, h, converged, change


def _smoothed(terms, width):
    """``terms`` with every hinge replaced by its smoothed form of width ``width``."""
    return [HingeTerm(t.weight, t.signs, width) if isinstance(t, HingeTerm) else t
            for t in terms]  # fmt: skip


def _newton_fixed_bias(X, terms, lam, n, b, w, gtol, max_iter, dense):
    """Newton iterations in ``w`` at fixed ``b`` from ``w`` (see :func:`_fit_fixed_bias`)."""
    from scipy.sparse.linalg import LinearOperator, cg

    scale = 1.0 / math.sqrt(n)

    def objective(w, h):
        val, r, a = _term_parts(terms, h)
        return val + 0.5 * lam * float(w @ w), r, a

    h = X @ w * scale + b
    value, r, a = objective(w, h)
    converged = False
    g0 = None
    for _ in range(max_iter):
        grad = (X.T @ r) * scale + lam * w
        if np.max(np.abs(grad)) / n <= gtol:
            converged = True
            break
        if dense:
            H = (X.T * (a * scale * scale)) @ X
            H[np.diag_indices_from(H)] += lam
            step = -np.linalg.solve(H, grad)
        else:
            curv = a.copy()
            op = LinearOperator((w.size, w.size), dtype=float,
                                matvec=lambda d, c=curv: (X.T @ (c * (X @ d))) * scale**2
                                + lam * d)  # fmt: skip
            # Inexact Newton (forcing term sqrt(|g|/|g0|)): superlinear, no wasted accuracy.
            g2 = float(np.linalg.norm(grad))
            g0 = g0 or g2
            step, _ = cg(op, -grad, rtol=max(min(0.5, math.sqrt(g2 / g0)), 1e-12), maxiter=500)
        dh = (X @ step) * scale
        slope = float(grad @ step)
        t = 1.0
        for _ in range(60):
            h_new = h + t * dh
            w_new = w + t * step
            new_value, r_new, a_new = objective(w_new, h_new)
            if new_value <= value + 1e-4 * t * slope:
                break
            t *= 0.5
        w, h, r, a, value = w_new, h_new, r_new, a_new, new_value
    h = X @ w * scale + b
    return w, h, converged


def chain_seed(params: ChainParams, n: int, seed: int, index: int, *,
               hinge_widths: tuple = HINGE_WIDTHS) -> list[dict[str, float]]:  # fmt: skip
    """Observables of every stage for seed ``index`` (module docstring); a hinge stage is
    fitted along the smoothed-hinge widths ``hinge_widths`` and reports ``width_change``."""
    n = check_count("n", n)
    entropy = [int(seed), int(index)]

    def rng(i):
        return np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(i,)))

    supports = [max(1, round(s.eta * n)) for s in params.stages]
    v = segment_normalised_direction(n, supports, rng(0))
    M = round(params.alpha * n)
    g = rng(1)
    y = np.zeros(M, dtype=np.int64)
    y[: round(params.rho * M)] = 1
    g.shuffle(y)
    s = 2.0 * y - 1.0
    X = g.standard_normal((M, n)) * math.sqrt(params.delta) + np.outer(s, v / math.sqrt(n))
    y_obs = y.astype(float).copy()
    gf = rng(2)
    for cls in (1, 0):
        idx = np.flatnonzero(y == cls)
        flips = gf.choice(idx, size=round(params.flip * idx.size), replace=False)
        y_obs[flips] = 1.0 - y_obs[flips]
    s_obs = 2.0 * y_obs - 1.0
    rows: list[dict[str, float]] = []
    weights: list[np.ndarray] = []
    biases: list[float] = []
    h_prev = None
    for k, stage in enumerate(params.stages):
        d = supports[k]
        Xs = X[:, :d]
        if k == 0 and stage.teacher == "bayes":
            w = v[:d] + math.sqrt(params.delta / params.alpha) * rng(3).standard_normal(d)
            q0 = stage.eta * (1.0 + params.delta / params.alpha)
            b = params.delta * q0 / (2.0 * stage.eta) * math.log(params.rho / (1 - params.rho))
            if stage.bias == "fixed":
                b = stage.bias_value
            h = Xs @ w / math.sqrt(n) + b
            terms = [LossTerm(1.0, 1.0, y_obs)]
            converged = True
            width_change = math.nan
        else:
            terms = _stage_terms(stage, y_obs, h_prev)
            fixed = None
            if stage.bias == "fixed":
                fixed = stage.bias_value
            elif stage.bias == "inherit":
                fixed = biases[-1]
            # Warm start from the previous stage's weights on this support (a distilled stage
            # is close to its teacher), unless zero is the better start.
            w0 = np.zeros(d)
            if weights:
                shared = min(d, weights[-1].size)
                w0[:shared] = weights[-1][:shared]
            if fixed is None:
                fit = fit_linear_classifier(Xs, terms, stage.lam, n_norm=n, gtol=1e-10,
                                            w0=w0, b0=biases[-1] if biases else 0.0,
                                            cold_start_if_better=True,
                                            hinge_widths=hinge_widths)  # fmt: skip
                w, b, h, converged = fit.w, fit.b, fit.preactivations, fit.converged
                width_change = fit.width_change
            else:
                w, h, converged, width_change = _fit_fixed_bias(
                    Xs, terms, stage.lam, n, fixed, w0=w0, hinge_widths=hinge_widths)
                b = fixed
        m = float(w @ v[:d]) / n
        q = float(w @ w) / n
        row: dict[str, Any] = {"eps_g": float(generalisation_error(m, q, b, params.rho,
                                                                    params.delta)),
                               "m": m, "q": q, "b": float(b)}  # fmt: skip
        for j, wj in enumerate(weights):
            shared = min(wj.size, d)
            row[f"Q{j}"] = float(w[:shared] @ wj[:shared]) / n
        loss = sum(term.per_sample(h) for term in terms)
        ce = softplus(h) - y_obs * h
        row["train_loss"] = float(np.mean(loss))
        row["train_ce"] = float(np.mean(ce))
        row["train_error_observed"] = float(np.mean(s_obs * h < 0.0))
        row["train_error"] = row["train_error_observed"]  # (the schema's name)
        row["train_error_true"] = float(np.mean(s * h < 0.0))
        if k:
            row["train_disagreement"] = float(np.mean((h > 0.0) != (h_prev > 0.0)))
            prev = rows[-1]
            row["disagreement"] = _disagreement(prev["m"], prev["q"], prev["b"], m, q, b,
                                                row[f"Q{k - 1}"], params.rho, params.delta)
        row["converged"] = float(converged)
        if stage.loss == "hinge" and stage.chi < 1.0:
            row["width_change"] = float(width_change)
        rows.append(row)
        weights.append(w)
        biases.append(float(b))
        h_prev = h
    return rows


@dataclass(frozen=True)
class ChainSimulation:
    """Means and standard errors over seeds, per stage (lists of dicts; a stage's
    ``mean["converged"]`` is the fraction of seeds whose fit converged)."""

    params: ChainParams
    n: int
    seeds: int
    mean: tuple
    sem: tuple

    @property
    def converged(self) -> bool:
        """Every stage's fit converged at every seed (a bool)."""
        return bool(all(m["converged"] == 1.0 for m in self.mean))

    @property
    def success(self) -> bool:
        """Alias of :attr:`converged`."""
        return self.converged

    @property
    def status(self) -> int:
        """0 every fit converged, 1 some did not (as
        :class:`simulations.monte_carlo.SimulationResult`)."""
        return 0 if self.converged else 1

    @property
    def message(self) -> str:
        bad = [f"stage{k} ({(1.0 - m['converged']) * self.seeds:.0f} seeds)"
               for k, m in enumerate(self.mean) if m["converged"] != 1.0]  # fmt: skip
        if not bad:
            return f"converged at all {self.seeds} seeds"
        return "not converged at " + ", ".join(bad)

    def to_dict(self) -> dict:
        return {"params": self.params.to_dict(), "n": self.n, "seeds": self.seeds,
                "converged": self.converged, "status": self.status, "message": self.message,
                "stages": [{"mean": m, "sem": s} for m, s in zip(self.mean, self.sem,
                                                                  strict=True)]}  # fmt: skip


def simulate_chain(params: ChainParams, *, n: int = 1000, seeds: int = 24, seed: int = 0,
                   progress: bool = False,
                   blas_threads: int | None = DEFAULT_BLAS_THREADS,
                   hinge_widths: tuple = HINGE_WIDTHS) -> ChainSimulation:  # fmt: skip
    """Simulate ``params`` at dimension ``n`` over ``seeds`` seeds (module docstring).

    ``blas_threads``: BLAS threads while the fits run, as in
    :func:`simulations.monte_carlo.simulate_teacher` (default 1, the caller's limits restored
    on return; None leaves them alone). ``hinge_widths``: the smoothed-hinge widths of hinge
    stages (:func:`chain_seed`).
    """
    seeds = check_count("seeds", seeds, minimum=2)
    threads = check_blas_threads(blas_threads)
    runs = []
    iterator = range(seeds)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc="chain seeds", unit="seed")
    with blas_thread_limit(threads):
        for index in iterator:
            runs.append(chain_seed(params, n, seed, index, hinge_widths=hinge_widths))
    means, sems = [], []
    for k in range(len(params.stages)):
        keys = runs[0][k].keys()
        vals = {key: np.array([run[k][key] for run in runs]) for key in keys}
        means.append({key: float(x.mean()) for key, x in vals.items()})
        sems.append({key: float(x.std(ddof=1) / math.sqrt(x.size)) for key, x in vals.items()})
    return ChainSimulation(params, n, seeds, tuple(means), tuple(sems))
