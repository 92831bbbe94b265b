"""Timings of the scale-out targets (prints numbers; not a test).

    python benchmarks/bench_phase.py [--workers 2]

1. A 50 x 50 student phase diagram of ``eps_g`` over ``(alpha, lam_t)``, alpha in [0.2, 6]
   and lam_t in [1e-3, 1] (geometric), pure distillation with lam_s = 1e-4 (target: < 60 s on
   2 cores).
2. Figure 5 theory (double descent: lam_t = 1e-5 and 1e-1 with lam_s = 1e-5, 200 alpha points
   each in [0.1, 6]) (target: < 10 s).
3. Teacher and student solves at vanishing ridge that used to be slow or to fail.

The numba kernels are compiled (or loaded from the cache) before timing; the machine load is
printed, since these figures scale with the free cores.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--n", type=int, default=50, help="grid points per axis")
    args = parser.parse_args()

    import numpy as np

    from replica.figures import compute_figure, figure_spec
    from replica.phase import PhaseSpec, axis_values, compute_phase
    from replica.student import solve_student
    from replica.teacher import solve_teacher
    from saddle.executor import make_executor

    warnings.simplefilter("ignore")
    solve_student(4.5, lam_t=1e-5, lam_s=1e-5)  # compile / load the kernels
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; "
          f"{args.workers} workers")  # fmt: skip

    spec = PhaseSpec("alpha", "lam_t", tuple(axis_values("alpha", 0.2, 6.0, args.n)),
                     tuple(axis_values("lam_t", 1e-3, 1.0, args.n)), "student.eps_g",
                     {"lam_s": 1e-4, "chi": 1.0})  # fmt: skip
    with make_executor(args.workers) as executor:
        t0 = time.perf_counter()
        diagram = compute_phase(spec, executor=executor)
        elapsed = time.perf_counter() - t0
    ok = np.isfinite(diagram.grid).sum()
    print(f"{args.n} x {args.n} student phase diagram (alpha, lam_t): {elapsed:.1f} s "
          f"({ok} of {diagram.grid.size} points converged)")  # fmt: skip

    fig5 = figure_spec(5)
    with tempfile.TemporaryDirectory() as out, make_executor(args.workers) as executor:
        t0 = time.perf_counter()
        theory, _ = compute_figure(fig5, out, executor=executor)
        elapsed = time.perf_counter() - t0
    points = sum(len(c["alpha"]) for c in theory.values())
    good = sum(sum(bool(v) for v in c["converged"]) for c in theory.values())
    print(f"Figure 5 theory (2 curves x 200 alpha points): {elapsed:.1f} s "
          f"({good} of {points} converged)")  # fmt: skip

    for alpha in (0.5, 3.0, 4.8):
        t0 = time.perf_counter()
        t = solve_teacher(alpha, lam=1e-5)
        dt = time.perf_counter() - t0
        print(f"teacher alpha={alpha} lam=1e-5: {dt * 1e3:.1f} ms, {t.iterations} iterations, "
              f"converged={t.converged}, {t.quadrature.size} nodes")  # fmt: skip
    for alpha in (1.0, 3.0, 4.5):
        t = solve_teacher(alpha, lam=1e-5)
        t0 = time.perf_counter()
        s = solve_student(alpha, lam_t=1e-5, lam_s=1e-5, teacher_solution=t)
        dt = time.perf_counter() - t0
        print(f"student alpha={alpha} lam_t=lam_s=1e-5 (cold): {dt * 1e3:.0f} ms, "
              f"{s.iterations} iterations, converged={s.converged}, "
              f"{s.quadrature.size} z1 nodes")  # fmt: skip
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
