"""Timings of the kernel-regime model (prints numbers; not a test).

    python benchmarks/bench_kernel.py [--repeat 3]

1. NTK Gram matrix of n = 2000 mixture points on the sphere (d = 500) and its eigendecomposition.
2. The kernel-theory trajectory u(k) at 1000 steps from that decomposition, and the test outputs
   on 2000 test points at 100 recorded steps.
3. Full-batch GD of the finite network: width 4096, n = 200, d = 50, 1000 steps (no recording
   of test outputs; then again recording 100 steps on 2000 test points).
4. Theory side of a 20-point lambda sweep at n = 500 (d = 100, 2000 test points, privileged
   teacher on 1000 points): the whole ``sweep(..., network=False)`` call, data and Gram included
   (target < 1 s).
5. With ``--examples``: every kernel example of the README, end to end through the CLI
   (``kd-replica kernel compare`` on its defaults: target < 2 min on 2 cores).

The minimum over ``--repeat`` runs is reported (least disturbed by other load on the machine);
the BLAS thread setting in force is printed, since it matters a lot on a shared 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from replica.kernel_regime import kernel_regime, normalise_rows, ntk_gram
from simulations.data import sample_mixture
from simulations.wide_network import TwoLayerReLU, record_schedule, train_distillation


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--examples", action="store_true",
                        help="also time the README's kernel examples (minutes)")
    args = parser.parse_args()
    threads = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")
    print(f"BLAS threads: {threads or 'default'}; cpus: {os.cpu_count()}")

    rng = np.random.default_rng(0)
    big = sample_mixture(500, 2000, 0.2, 1.0, rng)
    test = sample_mixture(500, 2000, 0.2, 1.0, rng, v=big.v)
    Xb, Zb = normalise_rows(big.X), normalise_rows(test.X)
    t_gram = best_of(args.repeat, lambda: ntk_gram(Xb))
    H = ntk_gram(Xb)
    t_eigh = best_of(args.repeat, lambda: np.linalg.eigh(H))
    print(f"NTK Gram n=2000 d=500:            {t_gram:8.3f} s")
    print(f"eigendecomposition n=2000:        {t_eigh:8.3f} s")
    lr = 1.0 / (2.0 * np.linalg.eigvalsh(H)[-1])
    th = kernel_regime(H, big.signs, big.signs, 1.0, lr)
    t_traj = best_of(args.repeat, lambda: th.train_outputs(np.arange(1001)))
    K = ntk_gram(Xb, Zb)
    rec = record_schedule(1000, 100)
    t_test = best_of(args.repeat, lambda: th.test_outputs(K, None, rec))
    print(f"theory u(k), 1001 steps, n=2000:  {t_traj:8.3f} s")
    print(f"theory test outputs {rec.size} steps x 2000: {t_test:8.3f} s")

    small = sample_mixture(50, 200, 0.2, 1.0, rng)
    X = normalise_rows(small.X)
    Z = normalise_rows(sample_mixture(50, 2000, 0.2, 1.0, rng, v=small.v).X)
    s = small.signs
    lr = 1.0 / (2.0 * np.linalg.eigvalsh(ntk_gram(X))[-1])

    def train(record, X_test=None):
        net = TwoLayerReLU.initialise(4096, 50, np.random.default_rng(1))
        train_distillation(net, X, s, s, 1.0, lr, 1000, record=record, X_test=X_test)

    t_train = best_of(args.repeat, lambda: train([1000]))
    rec = record_schedule(1000, 100)
    t_train_rec = best_of(args.repeat, lambda: train(rec, Z))
    print(f"GD width=4096 n=200 d=50, 1000 steps:          {t_train:8.3f} s "
          f"({1e3 * t_train / 1000:.2f} ms/step)")
    print(f"  same + test outputs at {rec.size} steps x 2000:   {t_train_rec:8.3f} s")

    from replica.kernel_regime.experiments import EQUAL_EFFECTIVE_STEP, KernelSetup, sweep

    setup = KernelSetup(n=500, d=100, n_test=2000, n_privileged=1000, seeds=1)
    lams = np.linspace(0.0, 10.0, 20)
    t_sweep = best_of(args.repeat, lambda: sweep(setup, "lam", lams, network=False,
                                                 modes=(EQUAL_EFFECTIVE_STEP,)))
    print(f"theory lam sweep, 20 points, n=500 (all included):  {t_sweep:8.3f} s")
    if args.examples:
        time_examples()
    print(f"load average: {open('/proc/loadavg').read().split()[:3]}")


EXAMPLES = [
    "kernel compare",
    "kernel sweep --vary lam --steps 600",
    "kernel sweep --vary teacher-quality --teacher privileged",
    "kernel sweep --vary teacher-quality --teacher noisy --no-network",
    "kernel compare --dataset digits --n 150 --steps 800 --width 2048 --seeds 4",
    "kernel lottery --keep 0.1,0.5",
    "kernel --lam 1",
]


def time_examples() -> None:
    """Each README example once, through the command line (plots included)."""
    import contextlib
    import io
    import tempfile

    from replica.cli import main

    for ex in EXAMPLES:
        with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
            t0 = time.perf_counter()
            rc = main(ex.split() + ["--out", tmp, "--quiet"])
            dt = time.perf_counter() - t0
        print(f"kd-replica {ex:<58} {dt:7.1f} s (exit {rc})", flush=True)


if __name__ == "__main__":
    main()
