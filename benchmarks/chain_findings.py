"""The findings of docs/chains.md ("Findings"), recomputed: theory tables for claims (a)-(e) of
issue 12 and finite-size simulations beside them (mean +- SE; gains paired per seed).

    PYTHONPATH=. python benchmarks/chain_findings.py [--n 400 --seeds 32] [--quick]

Prints every number quoted in the Findings section, the |z| of every simulation against the
theory, and the wall and CPU time (quote ``cat /proc/loadavg`` beside it). ``--quick`` uses
coarser grids and fewer settings (a few minutes on a shared machine).
"""

from __future__ import annotations

import argparse
import itertools
import time
import warnings

import numpy as np

from replica.chain import ChainParams, ChainQuadrature
from replica.chain_studies import (
    bias_curve,
    gain_curve,
    self_distillation_chain,
    self_distillation_point,
    simulate_chain_points,
    stage_curve,
    weak_to_strong_curve,
    weak_to_strong_phase,
    weak_to_strong_stages,
)

Z: list[float] = []


def show(what: str, theory: float, sim, k: int, gain: bool) -> None:
    mean = sim.gain[k] if gain else sim.eps_g[k]
    sem = sim.gain_sem[k] if gain else sim.sem[k]
    z = (mean - theory) / sem
    Z.append(z)
    print(f"  {what:44s} theory {theory:+.4f}  sim {mean:+.4f} +- {sem:.4f}  z {z:+.2f}")


def claim_a(args) -> None:
    print("(a) one distilled stage, alpha = 2: gain = eps0 - eps1 (fixed: lam 0.1, chi 1; "
          "tuned: stage-wise optimal lam, chi (soft-T: and T))")
    rhos = (0.3, 0.5)
    deltas = (0.25, 1.0) if args.quick else (0.25, 0.5, 1.0)
    flips = (0.2,) if args.quick else (0.1, 0.2, 0.3)
    for rho, delta, flip in itertools.product(rhos, deltas, flips):
        line = [f"rho {rho} Delta {delta:<4} flip {flip}:"]
        tuned = {}
        for v in ("hard", "soft"):
            p = self_distillation_point(2.0, rho, delta, flip, v, lam=0.1)
            line.append(f"fixed {v} {p['gain']:+.4f}")
        for v in ("hard", "soft", "soft-T"):
            tuned[v] = p = self_distillation_point(2.0, rho, delta, flip, v, lam=None)
            temp = f", T {p['T1']:.2g}" if v == "soft-T" else ""
            line.append(f"tuned {v} {p['gain']:+.4f} (lam1 {p['lam1']:.3g}, chi {p['chi1']:.2f}"
                        f"{temp})")
        line.append(f"eps0* {tuned['hard']['eps0']:.4f} at lam0 {tuned['hard']['lam0']:.3g}; "
                    f"hard > 2 soft: {tuned['hard']['gain'] > 2 * tuned['soft']['gain']}")
        print("  " + "; ".join(line), flush=True)
        if flip == 0.2 and delta in (0.25, 1.0):
            for v in ("hard", "soft"):
                p = tuned[v]
                sim = simulate_chain_points(ChainParams(2.0, rho, delta, flip, p["stages"]),
                                            n=args.n, seeds=args.seeds, seed=11)
                show(f"tuned {v}, rho {rho}, Delta {delta}: gain", p["gain"], sim, 1, True)


def claim_b(args) -> None:
    alphas = np.geomspace(0.25, 16.0, 9 if args.quick else 17)
    for rho, delta in ((0.3, 0.25), (0.5, 1.0)):
        for lam in (0.1, None) if not args.quick else (0.1,):
            curve = gain_curve(alphas, rho=rho, delta=delta, flip=0.2, lam=lam)
            for v in ("hard", "soft"):
                g = curve[f"gain_{v}"]
                best = int(np.argmax(g))
                print(f"(b) rho {rho} Delta {delta} {'tuned' if lam is None else 'lam 0.1'} {v}: "
                      f"gain {np.round(g, 4).tolist()}; max {g[best]:.4f} at alpha "
                      f"{alphas[best]:.3g} (interior: {0 < best < len(alphas) - 1})", flush=True)
    for i in (2, 6):
        for v in ("hard", "soft"):
            stages = self_distillation_chain(1, v, lam=0.1)
            curve = gain_curve([alphas[i]], rho=0.3, delta=0.25, flip=0.2, lam=0.1, variants=(v,))
            sim = simulate_chain_points(ChainParams(alphas[i], 0.3, 0.25, 0.2, stages), n=args.n,
                                        seeds=args.seeds, seed=12)
            show(f"alpha {alphas[i]:.3g} lam 0.1 {v}: gain", curve[f"gain_{v}"][0], sim, 1, True)


def claim_c(args) -> None:
    quad = ChainQuadrature(inner=12, side=8)
    settings = [(0.1, 1.0), (0.3, 1.0)] if args.quick else \
        list(itertools.product((0.1, 0.2, 0.3), (0.1, 1.0)))  # fmt: skip
    for flip, lam in settings:
        curve = stage_curve(2.0, rho=0.5, delta=1.0, flip=flip, K=3, lam=lam, quadrature=quad)
        text = "; ".join(f"{v} {np.round(curve[f'eps_{v}'], 4).tolist()} best "
                         f"{int(curve[f'best_{v}'][0])}" for v in ("hard", "soft"))
        print(f"(c) alpha 2 rho 0.5 Delta 1 flip {flip} lam {lam}: {text}", flush=True)
        if (flip, lam) == (0.1, 1.0):
            for v in ("hard", "soft"):
                sim = simulate_chain_points(
                    ChainParams(2.0, 0.5, 1.0, flip, self_distillation_chain(3, v, lam=lam)),
                    n=args.n, seeds=args.seeds, seed=13, reference=1)
                eps = curve[f"eps_{v}"]
                show(f"flip {flip} lam {lam} {v}: eps1 - eps2", eps[1] - eps[2], sim, 2, True)
                show(f"flip {flip} lam {lam} {v}: eps1 - eps3", eps[1] - eps[3], sim, 3, True)


def claim_d(args) -> None:
    alphas = (1.0, 2.0, 4.0)
    for rho, delta, flip in itertools.product((0.3, 0.15), (0.25, 1.0), (0.1, 0.3)):
        curve = bias_curve(alphas, rho=rho, delta=delta, flip=flip, K=2, lam=0.1)
        print(f"(d) rho {rho} Delta {delta} flip {flip}: gain of stage 2 at alpha {alphas}: "
              f"free {np.round(curve['gain_free'], 4).tolist()}, kept "
              f"{np.round(curve['gain_inherit'], 4).tolist()}", flush=True)
        if args.quick:
            break
    for bias in ("free", "inherit"):  # the collapse of a free-bias hard stage at lam = 1
        stages = self_distillation_chain(1, "hard", lam=1.0, bias=bias)
        curve = bias_curve([2.0], rho=0.3, delta=0.25, flip=0.1, K=1, lam=1.0, biases=(bias,))
        sim = simulate_chain_points(ChainParams(2.0, 0.3, 0.25, 0.1, stages), n=args.n,
                                    seeds=args.seeds, seed=14)
        print(f"(d) rho 0.3 Delta 0.25 flip 0.1 lam 1, one hard stage, {bias} bias: eps_g "
              f"{curve['eps0'][0]:.4f} -> {curve[f'eps1_{bias}'][0]:.4f}")
        if sim.sem[1] > 0:
            show(f"lam 1 {bias}: stage-1 eps_g", curve[f"eps1_{bias}"][0], sim, 1, False)
        else:
            print(f"  simulation: every seed at eps_g = {sim.eps_g[1]:.4f} (SE 0)")


def claim_e(args) -> None:
    alphas = np.geomspace(0.25, 16.0, 9 if args.quick else 17)
    curve = weak_to_strong_curve(alphas, eta0=0.3, rho=0.5, delta=1.0, flip=0.2, lam=0.1)
    for name in ("eps_teacher", "eps_hard", "eps_soft", "eps_noisy", "eps_clean",
                 "recovered_hard", "recovered_soft"):
        print(f"(e) eta0 0.3 {name}: {np.round(curve[name], 4).tolist()}")
    n_grid = 8 if args.quick else 12
    phase = weak_to_strong_phase(np.geomspace(0.25, 16.0, n_grid), np.linspace(0.1, 0.95, n_grid),
                                 rho=0.5, delta=1.0, flip=0.2, lam=0.1)
    gain = phase["gain"]
    over = phase["eps_noisy"] - phase["eps_student"]
    print(f"(e) phase {n_grid}x{n_grid}: gain over teacher min {np.nanmin(gain):.4f} max "
          f"{np.nanmax(gain):.4f}; beats teacher at {int((gain > 0).sum())}/{gain.size}; beats "
          f"the noisy-label full model at {int((over > 0).sum())}/{gain.size} (max margin "
          f"{np.nanmax(over):+.4f}); recovered max {np.nanmax(phase['recovered']):.3f}")
    for eta0, row in zip(phase.ys, over, strict=True):
        wins = [f"{a:.3g}" for a, o in zip(phase.xs, row, strict=True) if o > 0]
        print(f"    eta0 {eta0:.3f}: beats the noisy-label full model at alpha {wins or 'none'}")
    for i in (2, 8) if not args.quick else (2,):
        for v in ("hard", "soft"):
            params = ChainParams(alphas[i], 0.5, 1.0, 0.2, weak_to_strong_stages(0.3, v))
            sim = simulate_chain_points(params, n=args.n, seeds=args.seeds, seed=15)
            show(f"w2s alpha {alphas[i]:.3g} {v}: gain", curve[f"gain_{v}"][i], sim, 1, True)


def claim_f(args) -> None:
    """The finite-size caveat of (a): tuned hard stages at rho = 1/2 sit at lam = 100."""
    from replica.chain import Stage, solve_chain

    for bias in ("free", "inherit"):
        stages = (Stage(lam=100.0), Stage(lam=100.0, chi=0.76, target="hard", bias=bias))
        sol = solve_chain(2.0, 0.5, 1.0, 0.2, stages)
        for n in (300, 1200):
            sim = simulate_chain_points(ChainParams(2.0, 0.5, 1.0, 0.2, stages), n=n, seeds=16,
                                        seed=5)  # fmt: skip
            gain = sol[0].eps_g - sol[1].eps_g
            print(f"(f) lam 100, chi 0.76, hard, {bias} bias, N = {n}: theory gain {gain:+.4f}, "
                  f"simulated {sim.gain[1]:+.4f} +- {sim.gain_sem[1]:.4f} (deviation "
                  f"{sim.gain[1] - gain:+.4f})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--seeds", type=int, default=32)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--claims", default="abcdef")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    start, cpu = time.perf_counter(), time.process_time()
    for claim in args.claims:
        t = time.perf_counter()
        {"a": claim_a, "b": claim_b, "c": claim_c, "d": claim_d, "e": claim_e,
         "f": claim_f}[claim](args)
        print(f"[claim {claim}: {time.perf_counter() - t:.0f} s wall]", flush=True)
    if Z:
        print(f"{len(Z)} simulation comparisons at N = {args.n}, {args.seeds} seeds: max |z| = "
              f"{max(abs(z) for z in Z):.2f}")
    print(f"total {time.perf_counter() - start:.0f} s wall, {time.process_time() - cpu:.0f} s CPU")


if __name__ == "__main__":
    main()
