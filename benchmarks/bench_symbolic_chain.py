"""The derived K = 2 chain saddle point (replica/symbolic/chain.py) at replica.chain's fixed
points: residual table and timings (docs/chains.md, "Symbolic check: the K = 2 free entropy").

Prints, per chain, the largest |derived map - replica.chain| over the order parameters of
stages 0-2, the largest conjugate difference, our quadrature's refinement estimate, the same
residual at replica.chain's refined rules, the Monte Carlo residual in units of its SE, and the
largest derivative of the free entropy itself (central differences) at the fixed point.

    PYTHONPATH=. python benchmarks/bench_symbolic_chain.py
"""

import time

from replica.chain import ChainQuadrature, solve_chain
from replica.symbolic.chain import chain_saddle_point
from replica.symbolic.chain_check import check_chain, free_entropy_gradient
from tests.test_symbolic_chain import CHAINS


def main() -> None:
    start = time.perf_counter()
    chain_saddle_point([1.0, 1.0, 1.0])
    print(f"derivation of Phi_0..Phi_2 (prior, Stein and curvature forms): "
          f"{time.perf_counter() - start:.1f} s")
    header = ("chain", "max res", "max conj diff", "our refinement", "res (chain refined)",
              "max |res|/SE (MC)", "max |dPhi|", "t quad", "t MC")
    print(" | ".join(header))
    for name, (alpha, rho, delta, flip, stages) in CHAINS.items():
        sol = solve_chain(alpha, rho, delta, flip, stages, tol=1e-12)
        fine = solve_chain(alpha, rho, delta, flip, stages, tol=1e-13,
                           quadrature=ChainQuadrature().refined(8))
        t0 = time.perf_counter()
        check = check_chain(sol)
        t1 = time.perf_counter()
        check_fine = check_chain(fine)
        t2 = time.perf_counter()
        mc = check_chain(sol, "mc", samples=2**16, batches=16, seed=1)
        t3 = time.perf_counter()
        conj = max(abs(check.conjugates[k] - check.chain_conjugates[k]) for k in check.conjugates)
        z = max(mc.residual[k] / mc.error[k] for k in mc.residual)
        grad = max(abs(v) for v in free_entropy_gradient(sol).values())
        print(f"{name} | {check.max_residual():.1e} | {conj:.1e} | {check.max_error():.1e} | "
              f"{check_fine.max_residual():.1e} | {z:.2f} | {grad:.1e} | {t1 - t0:.1f} s | "
              f"{t3 - t2:.1f} s")


if __name__ == "__main__":
    main()
