"""``kd-replica teacher``, ``kd-replica curve teacher``, ``kd-replica simulate teacher``."""

from __future__ import annotations

import argparse
import warnings

from replica.cli.common import (
    Progress,
    add_executor_args,
    add_quiet,
    executor_from_args,
    format_table,
    integer,
    note_resume,
    open_journal,
    prepare_kernels,
    print_json,
)
from replica.cli.models import (
    add_path_args,
    add_teacher_params,
    output_dir,
    path_values,
    teacher_kwargs,
    warn,
)
from replica.params import variables

JSON_KEYS = ("eps_g", "m", "q", "V", "b", "train_loss", "train_error", "converged", "nit",
             "residual", "eps_bo")  # fmt: skip
# Former names kept in --json output, for scripts that read them: {old: new}
JSON_ALIASES = {"iterations": "nit"}


def with_aliases(record: dict) -> dict:
    """``record`` plus the former names of its keys (:data:`JSON_ALIASES`)."""
    return {**record, **{old: record[new] for old, new in JSON_ALIASES.items() if new in record}}


def register(commands, curve, simulate) -> None:
    p = commands.add_parser("teacher", help="replica fixed point of the ridge logistic teacher")
    add_teacher_params(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=run_point)

    c = curve.add_parser("teacher", help="teacher theory curve along one parameter")
    add_teacher_params(c)
    add_path_args(c, variables("teacher"))
    add_executor_args(c)
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

    prepare_kernels(models=("teacher",))  # says so if compiling takes a while
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sol = solve_teacher(**teacher_kwargs(args))
    data = sol.to_dict()
    if args.json:
        print_json(with_aliases({k: data[k] for k in JSON_KEYS}))
    else:
        rows = [(k, data[k]) for k in JSON_KEYS]
        print(format_table(rows, title=f"ridge {args.loss} teacher (replica, N -> inf)"))
    if not sol.converged:
        warn(f"fixed point did not converge ({sol.report.message}, residual {sol.residual:.2g})")
        return 1
    return 0


def run_curve(args: argparse.Namespace) -> int:
    from replica.teacher import TeacherParams

    return run_curve_command(
        args, "teacher", teacher_kwargs(args), TeacherParams,
        series=[("eps_g", f"ridge {args.loss} teacher")], bounds=[("eps_bo", "Bayes-optimal")],
    )  # fmt: skip


def run_curve_command(
    args: argparse.Namespace, model: str, fixed: dict, params_class, *, series, bounds
) -> int:
    """``kd-replica curve MODEL``: a resumable, executor-backed sweep written as CSV + PNG."""
    from replica.curves import Curve, validate_path
    from replica.plotting import plot_curve
    from replica.sweep import path_tasks, run_tasks
    from replica.tables import rows_to_columns

    values = path_values(args)
    vary = args.vary.replace("-", "_")
    fixed = {k: v for k, v in fixed.items() if k != vary}
    validate_path(params_class, vary, values, fixed)
    out = output_dir(args.out)
    tasks = path_tasks(model, vary, values, fixed, segment=args.segment)
    meta = {"command": f"curve {model}", "vary": vary,
            "values": [repr(float(v)) for v in values], "fixed": fixed,
            "segment": args.segment}  # fmt: skip
    journal = open_journal(out / "curve.csv", ("index",), meta, args.restart)
    note_resume(journal, len(values))
    if journal.resumed < len(values):
        prepare_kernels(args.quiet)
    with executor_from_args(args, len(tasks)) as executor, \
            Progress(len(values), f"{model} curve", args.quiet, journal.resumed) as bar:
        rows = run_tasks(tasks, executor=executor, journal=journal, progress=bar)
    curve = Curve(model, vary, fixed, rows_to_columns(rows))
    plot_curve(curve, out / "curve.png", series=series, bounds=bounds)
    failed = report_failures(curve)
    print(f"wrote {out / 'curve.csv'} and {out / 'curve.png'}")
    return 1 if failed else 0


def report_failures(curve) -> int:
    """Warn about points that did not converge or have no finite solution; returns the number
    that did not converge (exit code 1 if any: status 3, no finite solution, is an answer)."""
    status = curve.columns.get("status", [])
    diverged = sum(s == 3 for s in status)
    failed = sum((not ok) for ok, s in zip(curve.columns["converged"], status or
                                             [0] * len(curve), strict=True) if s != 3)  # fmt: skip
    if failed:
        warn(f"{failed} of {len(curve)} points did not converge (flagged in curve.csv)")
    if diverged:
        warn(f"{diverged} of {len(curve)} points have no finite solution "
             "(status 3 in curve.csv: unregularised on separable data)")  # fmt: skip
    return failed


def run_simulation(args: argparse.Namespace) -> int:
    from simulations.monte_carlo import simulate_teacher

    return run_simulation_command(simulate_teacher, teacher_kwargs(args), args,
                                  f"ridge {args.loss} teacher")  # fmt: skip


def run_simulation_command(simulate, kwargs: dict, args: argparse.Namespace, title: str) -> int:
    """Run ``simulate(**kwargs, n, seeds, seed)``, print it, and return the exit code as for a
    theory point: 1 (with a one-line warning instead of Python's per-seed warnings) when some
    seed did not converge or has no finite minimiser (status 1 or 3), else 0."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # reported below, on one line
        result = simulate(**kwargs, n=args.n, seeds=args.seeds, seed=args.seed,
                          progress=not args.quiet)  # fmt: skip
    print_simulation(result, args.json, title)
    if result.status == 0:
        return 0
    warn(f"simulation status {result.status}: {result.message}")
    return 1


def print_simulation(result, as_json: bool, title: str) -> None:
    if as_json:
        data = result.to_dict()
        data.pop("per_seed", None)
        print_json(data)
        return
    rows = [(k, f"{result.mean[k]:.6g} +- {result.sem[k]:.2g}") for k in result.mean]
    from simulations.monte_carlo import FLAGS

    rows += [(k, v) for k, v in result.to_row().items() if k in FLAGS]  # "every seed" booleans
    print(format_table(rows, title=f"{title}: N = {result.n}, {result.seeds} seeds "
                                   "(mean +- standard error)"))  # fmt: skip
