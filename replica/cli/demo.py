"""``kd-replica demo``: paper Fig. 2 with simulation points, on small defaults.

A thin wrapper of ``kd-replica figure 2 --with-simulations`` (pure distillation, chi = 1, of an
eta = 0.5 student from ridge teachers with lam_t in {1e-2, 1e-1}, against the student trained
on the labels, rho = 0.2, Delta = 1; lam_s = 1e-5 stands for "unregularised"): N = 500 and 4
seeds per simulation point, half the theory resolution, so it finishes in under a minute on
2 cores (``benchmarks/bench_cli.py``; README "Quick start"). The figure's caption states N
and the seeds; circles are students, open squares their teachers; the legend has both
Bayes-optimal lines (eta = 0.5 student, eta = 1 teacher). Writes figure2.png, figure2.csv,
figure2.json (settings) and figure2_simulations.csv.
"""

from __future__ import annotations

import argparse

from replica.cli.figures import add_figure_args, make


def register(commands, curve, simulate) -> None:
    p = commands.add_parser("demo", help="paper Fig. 2 with simulation points (under a minute)")
    add_figure_args(p, out="kd-replica-demo", n=500, seeds=4, resolution=0.5,
                    optional_simulations=False)
    p.set_defaults(handler=run, with_simulations=True)


def run(args: argparse.Namespace) -> int:
    return make(args, 2)
