"""The lottery-ticket protocol in the kernel-regime model (ours; the paper's v1 protocol is not
available to us).

Per replicate (:func:`run_lottery_replicate`):

1. train the dense student (width m, from W(0)) for ``steps`` GD steps, once on the labels alone
   ("labels": lambda = 0, step ``1/mu_max``) and once guided by the teacher ("teacher": lambda,
   equal effective step ``1/((1 + lambda) mu_max)``);
2. score every neuron by its *movement* ``|w_r(T) - w_r(0)|`` or its final *magnitude*
   ``|w_r(T)|``, keep the top fraction ``p``; also draw a *random* sub-network of the same size
   (``pruning`` stream).  With the symmetric initialisation the unit is a pair of neurons
   (equal at W(0), opposite output signs), scored by the sum of its two scores, so every
   sub-network still starts from f_0 = 0 (otherwise the broken pairs' initial-function noise,
   which never decays at test points, dominates every comparison);
3. rewind the kept neurons to ``w_r(0)`` and retrain the sub-network
   ``f_S(x) = |S|^-1/2 sum_{r in S} a_r ReLU(w_r . x)`` on the labels alone, with the step
   ``lr = 1 / (2 mu_max(H))`` common to every sub-network of the replicate;
4. compare with the kernel theory of the sub-network: its Gram matrix is the empirical NTK of
   the kept neurons at initialisation (:func:`replica.kernel_regime.gram.empirical_ntk_gram`),
   with the sub-network's own initial outputs.

Observables per ticket: test and training error after ``steps`` steps, iterations to the
tolerance, and the label capacity ``sqrt(y^T H_S^-1 y)`` of the sub-network's kernel.  Differences
are paired against the random sub-network of the same size on the same replicate.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from replica.kernel_regime.data import replicate_streams
from replica.kernel_regime.dynamics import kernel_regime
from replica.kernel_regime.experiments import (
    ZERO_OUTPUT,
    Estimate,
    KernelSetup,
    _single_blas_thread,
    estimate,
    prepare_replicate,
)
from replica.kernel_regime.gram import empirical_ntk_gram
from replica.params import ParameterError, check_nonnegative

GUIDES = ("labels", "teacher")
CRITERIA = ("movement", "magnitude")
TICKET_OBSERVABLES = ("test_error", "train_error", "iterations", "label_capacity",
                      "theory_test_error", "theory_iterations", "mu_max")  # fmt: skip
#: per-ticket diagnostics kept in the rows only
TICKET_DIAGNOSTICS = ("initial_output_rms", "flippable_fraction")


def _error(outputs, labels) -> float:
    return float(np.mean((outputs > ZERO_OUTPUT) != (labels == 1)))


def prune_scores(W: np.ndarray, W0: np.ndarray, criterion: str) -> np.ndarray:
    """Per-neuron score: ``|w_r - w_r(0)|`` (movement) or ``|w_r|`` (magnitude)."""
    if criterion == "movement":
        return np.linalg.norm(W - W0, axis=1)
    if criterion == "magnitude":
        return np.linalg.norm(W, axis=1)
    raise ParameterError(f"criterion must be one of {CRITERIA}; got {criterion!r}")


def top_neurons(scores: np.ndarray, n_keep: int, *, paired: bool = False) -> np.ndarray:
    """Indices of the ``n_keep`` largest scores (ties broken by index), sorted.

    ``paired=True`` (symmetric initialisation: neuron r and r + m/2 start equal with opposite
    output signs) ranks the pairs by the sum of their scores and keeps ``n_keep // 2`` whole
    pairs, so the sub-network still starts from f_0 = 0.
    """
    if not paired:
        order = np.lexsort((np.arange(scores.size), -scores))
        return np.sort(order[:n_keep])
    half = scores.size // 2
    pair = scores[:half] + scores[half:]
    top = np.lexsort((np.arange(half), -pair))[: n_keep // 2]
    return np.sort(np.concatenate([top, top + half]))


def random_neurons(rng: np.random.Generator, m: int, n_keep: int, *, paired: bool) -> np.ndarray:
    """A random sub-network of the same size (whole pairs when ``paired``)."""
    if not paired:
        return np.sort(rng.choice(m, size=n_keep, replace=False))
    top = rng.choice(m // 2, size=n_keep // 2, replace=False)
    return np.sort(np.concatenate([top, top + m // 2]))


def evaluate_ticket(net, data, lr: float, steps: int, tolerance: float) -> dict[str, float]:
    """Retrain a rewound sub-network on the labels; network and kernel-theory observables."""
    from simulations.wide_network import train_distillation

    X, Z, s = data.X, data.X_test, data.signs
    H_S = empirical_ntk_gram(net.W0, X)
    K_S = empirical_ntk_gram(net.W0, X, Z)
    mu = np.linalg.eigvalsh(H_S)
    u0, f0 = net.outputs(X), net.outputs(Z)
    out = {"mu_max": float(mu[-1])}
    with np.errstate(divide="ignore", invalid="ignore"):
        out["label_capacity"] = (float(math.sqrt(s @ np.linalg.solve(H_S, s)))
                                 if mu[0] > 1e-12 * mu[-1] else float("inf"))  # fmt: skip
    if lr * mu[-1] >= 2.0:
        nan = float("nan")
        return out | {"test_error": nan, "train_error": nan, "iterations": float("inf"),
                      "theory_test_error": nan, "theory_iterations": float("inf"),
                      "initial_output_rms": nan, "flippable_fraction": nan}  # fmt: skip
    th = kernel_regime(H_S, s, s, 0.0, lr, u0, require_stable=False)
    traj = train_distillation(net, X, s, s, 0.0, lr, steps, record=[steps], X_test=Z)
    f_th = th.test_outputs(K_S, f0, [steps])[0]
    dev = float(np.sqrt(np.mean((traj.test_outputs[-1] - f_th) ** 2)))
    return out | {
        "test_error": _error(traj.test_outputs[-1], data.test_labels),
        "train_error": _error(traj.train_outputs[-1], data.labels),
        "iterations": float(traj.iterations_to_reach(tolerance)),
        "theory_test_error": _error(f_th, data.test_labels),
        "theory_iterations": float(th.iterations_to_reach(tolerance)),
        "initial_output_rms": float(np.sqrt(np.mean(f0**2))),
        # test points whose sign 3 rms output deviations (network vs theory) could flip
        "flippable_fraction": float(np.mean(np.abs(f_th) < 3 * dev)),
    }


def run_lottery_replicate(
    setup: KernelSetup, index: int, lam: float, keep: Sequence[float]
) -> list[dict]:
    """The protocol on replicate ``index``: one row per (guide, criterion, kept fraction)."""
    from simulations.wide_network import TwoLayerReLU, train_distillation

    with _single_blas_thread():
        rep = prepare_replicate(setup, index, network=True)
        rng = replicate_streams(setup.seed, index)["pruning"]
        data, s, t = rep.data, rep.data.signs, rep.teacher.train_outputs
        lr_sub = 0.5 / rep.mu_max
        trained = {}
        for guide, lam_g in (("labels", 0.0), ("teacher", lam)):
            net = TwoLayerReLU(rep.W0, rep.a)
            lr = 1.0 / ((1.0 + lam_g) * rep.mu_max)
            traj = train_distillation(net, data.X, s, t, lam_g, lr, setup.steps,
                                      record=[setup.steps], X_test=data.X_test)  # fmt: skip
            trained[guide] = (net, _error(traj.test_outputs[-1], data.test_labels))
        rows = []
        m, paired = setup.width, setup.init == "symmetric"
        for p in keep:
            n_keep = max(2, 2 * int(round(p * m / 2)) if paired else int(round(p * m)))
            subsets = {("random", "random"): random_neurons(rng, m, n_keep, paired=paired)}
            for guide in GUIDES:
                net = trained[guide][0]
                for crit in CRITERIA:
                    scores = prune_scores(net.W, net.W0, crit)
                    subsets[(guide, crit)] = top_neurons(scores, n_keep, paired=paired)
            for (guide, crit), idx in subsets.items():
                sub = trained["labels"][0].subnetwork(idx, rewind=True)
                obs = evaluate_ticket(sub, data, lr_sub, setup.steps, setup.tolerance)
                overlap = {g: float(np.mean(np.isin(idx, subsets[(g, "movement")])))
                           for g in GUIDES}  # fmt: skip
                rows.append({"seed_index": index, "keep": p, "n_keep": n_keep, "guide": guide,
                             "criterion": crit, **obs,
                             "overlap_with_labels_movement": overlap["labels"],
                             "overlap_with_teacher_movement": overlap["teacher"],
                             "dense_test_error_labels": trained["labels"][1],
                             "dense_test_error_teacher": trained["teacher"][1]})  # fmt: skip
        return rows


@dataclass(frozen=True)
class LotteryResult:
    """Tickets over seeds: ``tickets[(guide, criterion, keep)]`` -> observable -> Estimate, and
    ``versus_random[...]`` the paired difference against the random sub-network."""

    setup: KernelSetup
    lam: float
    keep: tuple[float, ...]
    tickets: dict[tuple[str, str, float], dict[str, Estimate]]
    versus_random: dict[tuple[str, str, float], dict[str, Estimate]]
    dense: dict[str, Estimate]
    per_seed: tuple[dict, ...]

    def rows(self) -> list[dict]:
        return list(self.per_seed)

    def to_dict(self) -> dict:
        conv = lambda d: {k: e.to_dict() for k, e in d.items()}  # noqa: E731
        return {
            "setup": self.setup.to_dict(),
            "lam": self.lam,
            "keep": list(self.keep),
            "dense_test_error": conv(self.dense),
            "tickets": [{"guide": g, "criterion": c, "keep": p, **conv(v),
                         "versus_random": conv(self.versus_random.get((g, c, p), {}))}
                        for (g, c, p), v in self.tickets.items()],  # fmt: skip
        }

    def table(self) -> str:
        lines = [f"dense network: test error labels only {self.dense['labels']}, "
                 f"with teacher (λ = {self.lam:g}) {self.dense['teacher']}"]  # fmt: skip
        for (g, c, p), v in self.tickets.items():
            vr = self.versus_random.get((g, c, p))
            name = "random" if g == "random" else f"{c} ({g})"
            d = "" if vr is None else (f"   vs random: test {vr['test_error']}, "
                                       f"iterations {vr['iterations']}")  # fmt: skip
            lines.append(f"keep {p:g}  {name:<22} test {str(v['test_error']):<20} theory "
                         f"{str(v['theory_test_error']):<20} iterations "
                         f"{str(v['iterations']):<14}{d}")  # fmt: skip
        return "\n".join(lines)


def lottery(
    setup: KernelSetup,
    *,
    lam: float = 1.0,
    keep: Sequence[float] = (0.05, 0.2),
    workers: int | None = 1,
    callback: Callable[[int], None] | None = None,
) -> LotteryResult:
    """Run the protocol on ``setup.seeds`` replicates (see the module docstring)."""
    from saddle.executor import make_executor

    lam = check_nonnegative("lam", lam)
    keep = tuple(float(p) for p in keep)
    if not keep or any(not 0.0 < p <= 1.0 for p in keep):
        raise ParameterError(f"keep fractions must lie in (0, 1]; got {keep}")
    rows_by_seed = {}
    with make_executor(workers) as ex:
        futs = [ex.submit(run_lottery_replicate, setup, r, lam, keep) for r in range(setup.seeds)]
        for f in futs:
            rows = f.result()
            rows_by_seed[rows[0]["seed_index"]] = rows
            if callback is not None:
                callback(len(rows_by_seed))
    rows = [row for r in range(setup.seeds) for row in rows_by_seed[r]]
    tickets, versus = {}, {}
    keys = sorted({(r["guide"], r["criterion"], r["keep"]) for r in rows},
                  key=lambda k: (k[2], k[0] != "random", k[0], k[1]))  # fmt: skip
    for key in keys:
        sel = [r for r in rows if (r["guide"], r["criterion"], r["keep"]) == key]
        tickets[key] = {o: estimate([r[o] for r in sel]) for o in TICKET_OBSERVABLES}
        if key[0] != "random":
            rand = {r["seed_index"]: r for r in rows
                    if r["guide"] == "random" and r["keep"] == key[2]}  # fmt: skip
            versus[key] = {o: estimate([r[o] - rand[r["seed_index"]][o] for r in sel])
                           for o in TICKET_OBSERVABLES}  # fmt: skip
    firsts = [rows_by_seed[r][0] for r in range(setup.seeds)]
    dense = {"labels": estimate([r["dense_test_error_labels"] for r in firsts]),
             "teacher": estimate([r["dense_test_error_teacher"] for r in firsts])}  # fmt: skip
    return LotteryResult(setup, lam, keep, tickets, versus, dense, tuple(rows))
