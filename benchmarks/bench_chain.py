"""Timings of the distillation-chain theory (prints numbers; not a test).

    python benchmarks/bench_chain.py

For a K = 2 and a K = 3 chain with hard pseudo-labels and label noise (the issue-12 targets:
warm point K = 2 <= 0.5 s, K = 3 <= 5 s at |eps_g error| <= 1e-6):

1. a cold solve (default starts; kernels already compiled by a first call);
2. a warm point: the same chain at alpha * 1.02 started from the cold solution's states
   (what a curve does), median of a few;
3. the quadrature error estimate of eps_g (refined rules, ``error_estimate=True``);
4. stage-wise optimisation of every lam_k of a K = 3 chain at one alpha (target <= 60 s);
5. joint optimisation of every lam_k of a K = 2 chain for the last stage's eps_g
   (``--joint-k3``: also of the K = 3 chain of item 4).

Also chains with square and hinge stages (no target; a hinge stage's own direction is a
composite rule of ~110 nodes split at its kink, against 20 Gauss-Hermite nodes).

Quote the printed ``loadavg`` with the numbers (the machine is shared); the process CPU time
printed beside the wall time is what a quiet machine would take.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from replica.chain import Stage, optimise_stage_lams, solve_chain

HARD = dict(chi=1.0, target="hard")
CHAINS = {
    "K=2 hard, flip 0.2": (2.0, 0.5, 1.0, 0.2, [Stage(lam=0.1)] + [Stage(lam=0.1, **HARD)] * 2),
    "K=3 hard, flip 0.3": (2.0, 0.5, 1.0, 0.3, [Stage(lam=0.1)] + [Stage(lam=0.1, **HARD)] * 3),
    "K=3 soft, flip 0.1": (2.0, 0.3, 1.0, 0.1, [Stage(lam=0.1)]
                           + [Stage(lam=0.1, chi=0.8, temperature=1.5)] * 3),
    # Other rows of the loss table (docs/chains.md, "Losses of the table").
    "K=2 square, hard, flip 0.2": (2.0, 0.3, 1.0, 0.2, [
        Stage(lam=0.1, loss="square"), Stage(lam=0.1, chi=0.5, target="hard", loss="square"),
        Stage(eta=0.6, lam=0.1, chi=0.8, temperature=2.0)]),
    "K=1 hinge, flip 0.1": (2.0, 0.5, 1.0, 0.1, [
        Stage(lam=0.1), Stage(eta=0.6, lam=0.1, chi=0.5, temperature=2.0, loss="hinge")]),
    "K=2 hinge-square-hinge, flip 0.2": (2.0, 0.5, 1.0, 0.2, [
        Stage(lam=0.1, loss="hinge"),
        Stage(eta=0.6, lam=0.1, chi=0.5, target="hard", loss="square"),
        Stage(lam=0.1, chi=0.5, loss="hinge")]),
}  # fmt: skip


def main() -> None:
    solve_chain(2.0, 0.5, 1.0, 0.2, CHAINS["K=2 hard, flip 0.2"][4])  # compile / load caches
    for name, (alpha, rho, delta, flip, stages) in CHAINS.items():
        t0 = time.perf_counter()
        cold = solve_chain(alpha, rho, delta, flip, stages)
        t_cold = time.perf_counter() - t0
        starts = [s.state for s in cold.stages]
        warm = []
        for _ in range(3):
            t0 = time.perf_counter()
            sol = solve_chain(alpha * 1.02, rho, delta, flip, stages, initial=starts)
            warm.append(time.perf_counter() - t0)
        nit = [s.iterations for s in sol.stages]
        t0 = time.perf_counter()
        est = solve_chain(alpha, rho, delta, flip, stages, error_estimate=True,
                          initial=starts)  # fmt: skip
        t_est = time.perf_counter() - t0
        print(f"{name}: cold {t_cold:.2f} s, warm point {np.median(warm):.2f} s "
              f"(iterations {nit}), error estimate {max(est.eps_g_errors):.1e} in {t_est:.1f} s; "
              f"loadavg {os.getloadavg()[0]:.1f}")  # fmt: skip
    stages = [Stage(lam=0.1)] + [Stage(lam=0.1, **HARD)] * 3
    optimise_timed("stage-wise optimal lam, K=3 hard", stages, jointly=False)
    optimise_timed("joint optimal lam, K=2 hard", stages[:3], jointly=True)
    if "--joint-k3" in sys.argv:
        optimise_timed("joint optimal lam, K=3 hard", stages, jointly=True)


def optimise_timed(name: str, stages: list, jointly: bool) -> None:
    load = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    sol, lams, res = optimise_stage_lams(2.0, 0.3, 1.0, 0.2, stages, jointly=jointly)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    nfev = [r.nfev for r in res if r is not None]
    print(f"{name}, flip 0.2, rho 0.3: {wall:.1f} s (cpu {cpu:.1f} s; L-BFGS-B evaluations "
          f"{nfev}; lam {[round(v, 5) for v in lams]}, eps_g "
          f"{[round(s.eps_g, 6) for s in sol.stages]}); loadavg {load:.1f} -> "
          f"{os.getloadavg()[0]:.1f}")  # fmt: skip

if __name__ == "__main__":
    main()
