"""Timings of the finite-size simulations (a script, not a test).

Run ``python benchmarks/bench_simulation.py``.  Prints one line per case: the wall time in
seconds and the solver's work (Newton iterations, Hessian-vector products).  Targets: one
teacher seed at N = 2000, alpha = 3, lam = 0.1 in < 2 s including sampling, the exact fit
itself well under 1 s.

The solver is bound by matrix-vector products with X (memory bandwidth).  On a shared or busy
machine multi-threaded OpenBLAS can be several times slower than ``OPENBLAS_NUM_THREADS=1``;
the header prints the setting.
"""

from __future__ import annotations

import os
import time

import numpy as np

from simulations.data import sample_mixture
from simulations.estimators import fit_kd_student, fit_ridge_logistic
from simulations.monte_carlo import (
    simulate_student,
    simulate_student_curve,
    simulate_teacher,
    simulate_teacher_curve,
)


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    value = function(*args, **kwargs)
    return value, time.perf_counter() - start


def report(label: str, seconds: float, detail: str = "") -> None:
    print(f"{label:58s} {seconds:8.3f} s  {detail}")


def bench_fits(n: int = 2000, alpha: float = 3.0) -> None:
    """Sampling and the bare solvers at N = 2000, M = 6000."""
    rng = np.random.default_rng(0)
    sample, seconds = timed(sample_mixture, n, round(alpha * n), 0.2, 1.0, rng)
    report(f"sample_mixture N={n} M={round(alpha * n)}", seconds)
    for lam in (0.1, 1e-5):
        fit, seconds = timed(fit_ridge_logistic, sample.X, sample.y, lam)
        detail = f"iter={fit.n_iter} hessp={fit.n_hessp} grad_norm={fit.grad_norm:.1e}"
        report(f"teacher fit lam={lam:g}", seconds, detail)
        teacher = fit
    for lam_s in (1e-4, 1e-5):
        fit, seconds = timed(
            fit_kd_student,
            sample.X[:, : n // 2],
            sample.y,
            teacher.preactivations,
            lam_s,
            1.0,
            n_norm=n,
        )
        detail = f"iter={fit.n_iter} hessp={fit.n_hessp} grad_norm={fit.grad_norm:.1e}"
        report(f"student fit eta=0.5 chi=1 lam_s={lam_s:g} (teacher lam=1e-5)", seconds, detail)


def bench_seeds(n: int = 2000) -> None:
    """One seed of each driver, including sampling and the test set."""
    result, seconds = timed(simulate_teacher, 3.0, lam=0.1, n=n, seeds=1)
    report(f"simulate_teacher N={n} alpha=3 lam=0.1, 1 seed", seconds, _work(result))
    result, seconds = timed(
        simulate_student, 3.0, eta=0.5, chi=1.0, lam_t=0.1, lam_s=1e-4, n=n, seeds=1
    )
    report(f"simulate_student N={n} alpha=3 eta=0.5 chi=1 lam_s=1e-4", seconds, _work(result))


def bench_sweeps(n: int = 1000) -> None:
    """Ten-value warm-started alpha sweeps, one seed."""
    alphas = list(np.linspace(0.5, 5.0, 10))
    curve, seconds = timed(simulate_teacher_curve, "alpha", alphas, lam=0.1, n=n, seeds=1)
    report(f"teacher alpha sweep N={n}, 10 values, lam=0.1", seconds, _work_curve(curve))
    curve, seconds = timed(simulate_teacher_curve, "alpha", alphas, lam=1e-5, n=n, seeds=1)
    report(f"teacher alpha sweep N={n}, 10 values, lam=1e-5", seconds, _work_curve(curve))
    curve, seconds = timed(simulate_student_curve, "alpha", alphas, lam_s=1e-4, n=n, seeds=1)
    report(f"student alpha sweep N={n}, 10 values, lam_s=1e-4", seconds, _work_curve(curve))


def bench_blas_threads(n: int = 1000) -> None:
    """The API's ``blas_threads`` (default 1) against the process's own BLAS threads (None)."""
    for threads in (1, None):
        result, seconds = timed(simulate_student, 3.0, lam_s=1e-4, n=n, seeds=2,
                                blas_threads=threads)  # fmt: skip
        report(f"simulate_student N={n} alpha=3, 2 seeds, blas_threads={threads}", seconds,
               _work(result))  # fmt: skip


def _work(result) -> str:
    return f"iter={result.mean['n_iter']:.0f} converged={result.mean['converged']:.0f}"


def _work_curve(curve) -> str:
    iterations = sum(point.mean["n_iter"] for point in curve)
    converged = all(point.mean["converged"] == 1.0 for point in curve)
    return f"total iter={iterations:.0f} all converged={converged}"


def main() -> None:
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "unset")
    print(f"OPENBLAS_NUM_THREADS={threads} cpus={os.cpu_count()} load={os.getloadavg()[0]:.2f}")
    bench_fits()
    bench_seeds()
    bench_sweeps()
    bench_blas_threads()


if __name__ == "__main__":
    main()
