"""Wall-clock and CPU time of the command line as a user runs it (README "Quick start").

Runs ``python -m replica demo`` (paper Fig. 2 with simulation points, built-in defaults) in
fresh output directories:

- ``cold``: an empty numba cache (``NUMBA_CACHE_DIR`` in a temporary directory), i.e. the
  first run after installation, which compiles the kernels;
- ``warm``: the same cache again (every later run);
- with ``--compare-blas``: warm and serial (``--workers 1``), with the CLI's one BLAS thread
  and with ``OPENBLAS_NUM_THREADS`` (and OMP/MKL) set to the number of cores, i.e. threaded
  BLAS as before the CLI pinned it to one thread.

and with ``--tests`` the development test loop ``python -m pytest -m "not slow" -q``.

Every line names the machine (CPU model, usable cores) and the load average before and after,
since the machines this is run on are often shared. CPU time is that of the child processes
(user + system), less sensitive to the load than the wall clock.

    PYTHONPATH=$PWD python benchmarks/bench_cli.py [--repeat 1] [--workers N]
        [--compare-blas] [--tests]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    return f"{model}, {cores} usable cores, {platform.system()} {platform.release()}, " \
           f"Python {platform.python_version()}"


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def timed(command: list[str], env: dict) -> tuple[float, float, int]:
    """``(wall seconds, child CPU seconds, exit code)`` of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)  # fmt: skip
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
    return wall, cpu, proc.returncode


def report(label: str, command: list[str], env: dict, repeat: int = 1) -> None:
    for _ in range(repeat):
        load_before = loadavg()
        wall, cpu, code = timed(command, env)
        print(f"{label:<30} wall {wall:7.1f} s   cpu {cpu:7.1f} s   exit {code}   "
              f"load {load_before} -> {loadavg()}", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="warm runs (default 1)")
    parser.add_argument("--workers", type=int, default=None,
                        help="--workers of the demo (default: its own, all cores)")
    parser.add_argument("--compare-blas", action="store_true",
                        help="also a warm run with threaded BLAS")
    parser.add_argument("--tests", action="store_true",
                        help='also time python -m pytest -m "not slow" -q')
    args = parser.parse_args()

    print(f"machine: {machine()}")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.pop(name, None)
    with tempfile.TemporaryDirectory(prefix="kd-bench-") as tmp:
        env["NUMBA_CACHE_DIR"] = str(Path(tmp) / "numba-cache")
        runs = iter(range(10**6))

        def demo(workers: int | None = args.workers) -> list[str]:
            command = [sys.executable, "-m", "replica", "demo", "--quiet",
                       "--out", str(Path(tmp) / f"demo{next(runs)}")]  # fmt: skip
            if workers is not None:
                command += ["--workers", str(workers)]
            return command

        report("demo, cold numba cache", demo(), env)
        for _ in range(args.repeat):
            report("demo, warm", demo(), env)
        if args.compare_blas:  # serial, where the BLAS threads are the only parallelism
            cores = str(os.cpu_count() or 1)
            threaded = {**env, "OPENBLAS_NUM_THREADS": cores, "OMP_NUM_THREADS": cores,
                        "MKL_NUM_THREADS": cores}  # fmt: skip
            report("demo --workers 1", demo(1), env)
            report(f"demo --workers 1, {cores} BLAS thr.", demo(1), threaded)
    if args.tests:
        test_env = {**os.environ, "PYTHONPATH": str(ROOT)}
        report('pytest -m "not slow"', [sys.executable, "-m", "pytest", "-m", "not slow", "-q",
                                        "-p", "no:cacheprovider"], test_env)  # fmt: skip


if __name__ == "__main__":
    main()
