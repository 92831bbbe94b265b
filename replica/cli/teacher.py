"""``kd-replica teacher``, ``kd-replica curve teacher``, ``kd-replica simulate teacher``."""

from __future__ import annotations

import argparse
import warnings

from replica.cli.common import add_quiet, format_table, integer, print_json, progress
from replica.cli.models import (
    add_path_args,
    add_teacher_params,
    output_dir,
    path_values,
    teacher_kwargs,
    warn,
)

JSON_KEYS = ("eps_g", "m", "q", "V", "b", "train_loss", "train_error", "converged",
             "iterations", "residual", "eps_bo")  # fmt: skip


def register(commands, curve, simulate) -> None:
    p = commands.add_parser("teacher", help="replica fixed point of the ridge logistic teacher")
    add_teacher_params(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=run_point)

    c = curve.add_parser("teacher", help="teacher theory curve along one parameter")
    add_teacher_params(c)
    add_path_args(c, ("alpha", "rho", "delta", "lam", "smoothing"))
    add_quiet(c)
    c.set_defaults(handler=run_curve)

    s = simulate.add_parser("teacher", help="finite-size simulation of the teacher")
    add_teacher_params(s)
    add_simulation_args(s, n=1000, seeds=8)
    s.set_defaults(handler=run_simulation)


def add_simulation_args(parser: argparse.ArgumentParser, *, n: int, seeds: int) -> None:
    parser.add_argument("--n", type=integer("n", 2), default=n, help=f"dimension N (default {n})")
    parser.add_argument("--seeds", type=integer("seeds", 2), default=seeds,
                        help=f"independent samples (default {seeds})")
    parser.add_argument("--seed", type=integer("seed", 0), default=0, help="base seed")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    add_quiet(parser)


def run_point(args: argparse.Namespace) -> int:
    from replica.teacher import solve_teacher

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sol = solve_teacher(**teacher_kwargs(args))
    data = sol.to_dict()
    if args.json:
        print_json({k: data[k] for k in JSON_KEYS})
    else:
        rows = [(k, data[k]) for k in JSON_KEYS]
        print(format_table(rows, title="ridge logistic teacher (replica, N -> inf)"))
    if not sol.converged:
        warn(f"fixed point did not converge ({sol.report.message}, residual {sol.residual:.2g})")
        return 1
    return 0


def run_curve(args: argparse.Namespace) -> int:
    from replica.plotting import plot_curve
    from replica.sweep import teacher_curve

    values = path_values(args)
    out = output_dir(args.out)
    fixed = teacher_kwargs(args)
    vary = args.vary.replace("-", "_")
    fixed.pop(vary)
    curve = teacher_curve(
        vary, values, wrap=lambda it: progress(it, total=len(values), desc="teacher curve",
                                               quiet=args.quiet), **fixed,
    )  # fmt: skip
    curve.write_csv(out / "curve.csv")
    plot_curve(curve, out / "curve.png", series=[("eps_g", "ridge logistic teacher")],
               bounds=[("eps_bo", "Bayes-optimal")])  # fmt: skip
    failed = sum(not ok for ok in curve.columns["converged"])
    if failed:
        warn(f"{failed} of {len(curve)} points did not converge (flagged in curve.csv)")
    print(f"wrote {out / 'curve.csv'} and {out / 'curve.png'}")
    return 0


def run_simulation(args: argparse.Namespace) -> int:
    from simulations.monte_carlo import simulate_teacher

    result = simulate_teacher(
        **teacher_kwargs(args), n=args.n, seeds=args.seeds, seed=args.seed,
        progress=not args.quiet,
    )  # fmt: skip
    print_simulation(result, args.json, "ridge logistic teacher")
    return 0


def print_simulation(result, as_json: bool, title: str) -> None:
    if as_json:
        data = result.to_dict()
        data.pop("per_seed", None)
        print_json(data)
        return
    rows = [(k, f"{result.mean[k]:.6g} +- {result.sem[k]:.2g}") for k in result.mean]
    print(format_table(rows, title=f"{title}: N = {result.n}, {result.seeds} seeds "
                                   "(mean +- standard error)"))  # fmt: skip
