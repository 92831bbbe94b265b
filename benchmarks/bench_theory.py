"""Timings of the replica solvers (prints numbers; not a test).

    python benchmarks/bench_theory.py

1. JIT compile time of the numba kernels in a fresh process with an empty cache directory,
   then a second process on the same cache: it must compile nothing (``cache=True``); the
   numbers of cache misses (compilations) and hits are read from the dispatchers' stats.
2. One warm teacher fixed point (kernels compiled, default start), median of many.
3. A 100-point teacher alpha curve with warm starts.
4. One warm student fixed point (teacher already solved) and a 100-point student alpha curve.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np

PROBE = textwrap.dedent(
    """
    import time, sys
    t0 = time.perf_counter()
    from replica.student import solve_student
    solve_student(4.5)
    elapsed = time.perf_counter() - t0
    import numba.core.registry  # noqa
    from numba.core.dispatcher import Dispatcher
    import gc
    hits = misses = 0
    for obj in gc.get_objects():
        if isinstance(obj, Dispatcher) and obj.__module__.split(".")[0] in ("replica", "saddle"):
            hits += sum(obj.stats.cache_hits.values())
            misses += sum(obj.stats.cache_misses.values())
    print(f"{elapsed:.2f} {misses} {hits}")
    """
)


def fresh_process(cache_dir: str) -> tuple[float, int, int]:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                         check=True).stdout.split()  # fmt: skip
    return float(out[0]), int(out[1]), int(out[2])


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    with tempfile.TemporaryDirectory() as cache:
        first = fresh_process(cache)
        second = fresh_process(cache)
    print(f"first process (empty cache): {first[0]:.2f} s to the first student solve, "
          f"{first[1]} kernels compiled")  # fmt: skip
    print(f"second process (same cache): {second[0]:.2f} s, {second[1]} kernels compiled, "
          f"{second[2]} loaded from cache")  # fmt: skip

    from replica.student import solve_student
    from replica.sweep import student_curve, teacher_curve
    from replica.teacher import solve_teacher

    solve_student(4.5)  # compile / load
    t_teacher = median_time(lambda: solve_teacher(3.0, lam=0.1), 200)
    sol = solve_teacher(3.0, lam=0.1)
    print(f"warm teacher fixed point (alpha=3, lam=0.1): {t_teacher * 1e3:.3f} ms "
          f"({sol.iterations} iterations, residual {sol.residual:.1e})")  # fmt: skip
    alphas = np.linspace(0.5, 10.0, 100)
    t_curve = median_time(lambda: teacher_curve("alpha", alphas, lam=0.1), 5)
    print(f"100-point teacher alpha curve [0.5, 10], lam=0.1: {t_curve:.3f} s")
    teacher = solve_teacher(4.5, lam=0.1)
    t_student = median_time(lambda: solve_student(4.5, teacher_solution=teacher), 30)
    st = solve_student(4.5, teacher_solution=teacher)
    print(f"warm student fixed point (alpha=4.5, teacher solved): {t_student * 1e3:.1f} ms "
          f"({st.iterations} iterations)")  # fmt: skip
    t_scurve = median_time(lambda: student_curve("alpha", alphas), 3)
    print(f"100-point student alpha curve [0.5, 10] (teacher re-solved at each point): "
          f"{t_scurve:.2f} s")  # fmt: skip


if __name__ == "__main__":
    main()
