"""Theory vs simulation agreement table (markdown), for the points of the test suite.

    python benchmarks/agreement_table.py [--n 4000] [--seeds 10] [--seed 7]

Prints, for every teacher and student point of tests/test_theory_vs_simulation.py, the replica
prediction, the simulation mean +- standard error, and the z-score of each observable.
"""

from __future__ import annotations

import argparse
import time
import warnings

from replica.observables import agreement
from replica.student import solve_student
from replica.teacher import solve_teacher
from simulations.monte_carlo import simulate_student, simulate_teacher

TEACHER_POINTS = [(a, lam) for a in (1.5, 3.0, 6.0) for lam in (1e-2, 0.1, 1.0)]
STUDENT_POINTS = {
    "KD a=3 lt=1e-2": dict(alpha=3.0, lam_t=1e-2),
    "KD a=3 lt=0.1": dict(alpha=3.0, lam_t=0.1),
    "KD a=6 lt=1e-2": dict(alpha=6.0, lam_t=1e-2),
    "KD a=6 lt=0.1": dict(alpha=6.0, lam_t=0.1),
    "chi=0.5 ls=0.2": dict(alpha=4.5, lam_t=0.1, chi=0.5, lam_s=0.2),
    "BO teacher": dict(alpha=4.5, teacher="bayes"),
    "T=2": dict(alpha=4.5, lam_t=0.1, temperature=2.0),
    "eps=0.2": dict(alpha=4.5, lam_t=0.1, smoothing=0.2),
}
DEFAULTS = dict(rho=0.2, delta=1.0, eta=0.5, lam_s=1e-4, chi=1.0)


def cell(row) -> str:
    """``theory / mean(sem) z`` of one :class:`replica.observables.AgreementRow`."""
    return f"{row.theory:.4f} / {row.mean:.4f}({row.sem:.4f}) z={row.z:+.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    run = dict(n=args.n, seeds=args.seeds, seed=args.seed, n_test=20_000)
    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    keys = ("eps_g", "m", "q", "b", "train_loss", "train_error")
    print(f"### Teacher, rho=0.2, delta=1 (theory / simulation(sem), N={args.n}, "
          f"{args.seeds} seeds)\n")  # fmt: skip
    print("| alpha | lam | " + " | ".join(keys) + " |")
    print("|---|---|" + "---|" * len(keys))
    for alpha, lam in TEACHER_POINTS:
        table = agreement(solve_teacher(alpha, lam=lam), simulate_teacher(alpha, lam=lam, **run),
                          keys)  # fmt: skip
        cells = [cell(row) for row in table.rows]
        print(f"| {alpha} | {lam} | " + " | ".join(cells) + " |", flush=True)
    keys = ("eps_g", "eps_g_test", "m", "q", "S", "b", "train_loss", "train_error",
            "mse_outputs", "mse_preactivations")  # fmt: skip
    print(f"\n### Student, eta=0.5, lam_s=1e-4, chi=1 unless stated (N={args.n}, "
          f"{args.seeds} seeds)\n")  # fmt: skip
    print("| point | " + " | ".join(keys) + " |")
    print("|---|" + "---|" * len(keys))
    for label, point in STUDENT_POINTS.items():
        params = {**DEFAULTS, **point}
        table = agreement(solve_student(**params), simulate_student(**params, **run), keys)
        cells = [cell(row) for row in table.rows]
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)
    print(f"\n(total {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
