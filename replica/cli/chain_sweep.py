"""Sweeps of ``kd-replica chain``: curves (``--vary``), optimised curves (``chain optimise
--vary``) and phase diagrams (``chain phase``), resumable and executor-backed.

With ``--out DIR`` a curve is written to ``DIR/curve.csv`` (journaled as it is computed: re-run
the same command to resume, ``--restart`` to start over) and ``DIR/curve.png``; without it, the
curve is printed (one line per point and stage, or ``--json``). ``chain phase`` writes
``DIR/phase.csv`` and ``DIR/phase.png``. Orchestration: :mod:`replica.chain_sweep`.
"""

from __future__ import annotations

import argparse

import numpy as np

from replica.cli.common import (
    CliError,
    Progress,
    add_executor_args,
    executor_from_args,
    finite,
    integer,
    note_resume,
    number,
    open_journal,
    prepare_kernels,
    print_json,
)

#: Stage columns printed by a curve without ``--out`` (one line per point and stage).
PRINTED = ("eps_g", "m", "q", "b", "train_loss", "train_error_observed", "train_error_true",
           "disagreement", "eps_bo")  # fmt: skip


def add_sweep_args(p: argparse.ArgumentParser) -> None:
    """Options of the chain sweeps (added to ``kd-replica chain``)."""
    g = p.add_argument_group("sweeps: curves (--vary), optimised curves ('chain optimise "
                             "--vary'), phase diagrams ('chain phase')")
    g.add_argument("--start", type=number("start", finite), default=None,
                   help="first value of --vary (instead of --values)")
    g.add_argument("--stop", type=number("stop", finite), default=None,
                   help="last value of --vary (included)")
    g.add_argument("--num", type=integer("num", 1), default=11,
                   help="points from --start to --stop (default 11; K: every integer)")
    g.add_argument("--log", action="store_true", help="geometric spacing of --start..--stop")
    g.add_argument("--out", default=None, metavar="DIR",
                   help="write DIR/curve.csv + curve.png (resumable: re-run to continue) or, "
                        "for 'chain phase', DIR/phase.csv + phase.png")
    g.add_argument("--plot", default=None, metavar="FILE.png",
                   help="also draw the curve or diagram into FILE.png (a curve without --out "
                        "is drawn only there)")
    for axis in ("x", "y"):
        g.add_argument(f"--{axis}", default=None, metavar="KEY",
                       help=f"'chain phase': the {axis} axis (alpha, rho, delta, flip, K or "
                            "stageK.key)")
        g.add_argument(f"--{axis}-values", default=None, metavar="V1,V2,...",
                       help=f"'chain phase': the {axis} values")
        g.add_argument(f"--{axis}-range", nargs=2, type=number(f"{axis}-range", finite),
                       default=None, metavar=("START", "STOP"),
                       help=f"'chain phase': the {axis} range (instead of --{axis}-values)")
        g.add_argument(f"--n{axis}", type=integer(f"n{axis}", 2), default=11,
                       help=f"'chain phase': points in --{axis}-range (default 11)")
        g.add_argument(f"--{axis}-log", action="store_true",
                       help=f"'chain phase': geometric spacing of --{axis}-range")
    g.add_argument("--quantity", default="last.eps_g", metavar="EXPR",
                   help="'chain phase': stageK.NAME or last.NAME, or a sum and difference of "
                        "them, e.g. 'stage0.eps_g - stage1.eps_g' (default last.eps_g)")
    g.add_argument("--optimise", action="store_true",
                   help="'chain phase': stage-wise optimal --over parameters at every point")
    add_executor_args(p)


def check_sweep_options(args: argparse.Namespace) -> None:
    """One-line errors for sweep options given where they mean nothing."""
    phase = args.action == "phase"
    if not phase:
        for name in ("x", "y", "x_values", "y_values", "x_range", "y_range"):
            if getattr(args, name) is not None:
                option = name.replace("_", "-")
                raise CliError(f"{option}: only with 'chain phase'")
        if args.optimise:
            raise CliError("optimise: only with 'chain phase' (curves: 'chain optimise --vary')")
        if args.vary is None and args.out is not None:
            raise CliError("out: needs --vary (a curve) or 'chain phase'")
        if args.vary is None and args.plot is not None:
            raise CliError("plot: needs --vary (a curve) or 'chain phase'")
    elif args.vary is not None:
        raise CliError("vary: 'chain phase' takes --x and --y")
    if args.plot is not None:
        check_plot_path(args.plot)
    if args.vary is None and (args.values is not None or args.start is not None
                              or args.stop is not None):  # fmt: skip
        raise CliError("values: needs --vary KEY")


def check_plot_path(path: str) -> None:
    """``--plot FILE.png``: a PNG in a directory that exists (checked before any work)."""
    from pathlib import Path

    target = Path(path)
    if target.suffix.lower() != ".png":
        raise CliError(f"plot: expected a .png file name; got {path!r}")
    if not target.parent.is_dir():
        raise CliError(f"plot: no directory {str(target.parent)!r} for {path!r}")


def chain_params(args: argparse.Namespace, stages: list):
    from replica.chain import ChainParams

    return ChainParams(args.alpha, args.rho, args.delta, args.flip, tuple(stages))


def parse_list(text: str, what: str) -> list[float]:
    out = []
    for part in text.split(","):
        try:
            out.append(float(part))
        except ValueError:
            raise CliError(f"{what}: not a number: {part.strip()!r}") from None
    return out


def spaced(variable, start: float, stop: float, num: int, log: bool, what: str) -> list:
    """``num`` values from ``start`` to ``stop`` (every integer for ``K``)."""
    if variable.depth:
        lo, hi = sorted((start, stop))
        values = list(range(int(np.ceil(lo)), int(np.floor(hi)) + 1))
        return values[::-1] if start > stop else values
    if log:
        if start <= 0 or stop <= 0:
            raise CliError(f"{what}: a geometric spacing needs positive bounds")
        return list(np.geomspace(start, stop, num))
    return list(np.linspace(start, stop, num))


def curve_values(args: argparse.Namespace, variable) -> list:
    if args.values is not None:
        if args.start is not None or args.stop is not None:
            raise CliError("values: give --values or --start/--stop, not both")
        return parse_list(args.values, "values")
    if args.start is None or args.stop is None:
        raise CliError("values: --vary needs --values V1,V2,... or --start and --stop")
    return spaced(variable, args.start, args.stop, args.num, args.log, "start")


def optimise_spec(args: argparse.Namespace):
    from replica.chain_sweep import ChainOptimise

    return ChainOptimise(tuple(filter(None, (n.strip() for n in args.over.split(",")))),
                         jointly=args.jointly, target=args.target)


def run_curve(args: argparse.Namespace, stages: list, optimise: bool = False) -> int:
    """``chain --vary KEY ...`` and ``chain optimise --vary KEY ...``."""
    from replica.chain_sweep import curve_tasks, parse_variable

    params = chain_params(args, stages)
    variable = parse_variable(args.vary, params)
    values = curve_values(args, variable)
    spec = optimise_spec(args) if optimise else None
    tasks = curve_tasks(params, variable.name, values, optimise=spec, segment=args.segment)
    if args.out is None:
        return print_curve(args, params, variable, tasks, len(values))
    return write_curve(args, params, variable, values, spec, tasks)


def _run(args, tasks, total: int, desc: str, journal=None) -> list[dict]:
    from replica.chain_sweep import run_chain_tasks

    already = 0 if journal is None else journal.resumed
    if already < total:
        prepare_kernels(args.quiet, models=("chain",))
    with executor_from_args(args, len(tasks)) as executor, \
            Progress(total, desc, args.quiet, already) as bar:
        return run_chain_tasks(tasks, executor=executor, journal=journal, progress=bar)


def print_curve(args, params, variable, tasks, total: int) -> int:
    from replica.chain_sweep import DEPTH, describe, plot_chain_curve
    from replica.curves import Curve
    from replica.tables import rows_to_columns

    rows = _run(args, tasks, total, f"chain along {variable.name}")
    rows = sorted(rows, key=lambda r: int(r["index"]))
    curve = Curve("chain", variable.name, describe(params, (variable.name,)),
                  rows_to_columns(rows))  # fmt: skip
    if args.plot is not None:
        plot_chain_curve(curve, args.plot)
    if args.json:
        print_json(curve.to_dict())
    else:
        print(",".join([variable.name, "stage", *PRINTED, "converged"]))
        for row in rows:
            for k in range(int(row[DEPTH]) + 1):
                cells = [row[variable.name], k, *(row[f"stage{k}.{c}"] for c in PRINTED),
                         int(bool(row[f"stage{k}.converged"]))]  # fmt: skip
                print(",".join(f"{v:.10g}" if isinstance(v, float) else str(v) for v in cells))
    failed = report(curve.columns, total, "the output")
    return 1 if failed else 0


def report(columns, total: int, where: str) -> int:
    """Warn about points that did not converge (returned) or have no finite solution."""
    from replica.chain_sweep import failures
    from replica.cli.models import warn

    failed, diverged = failures(columns)
    if failed:
        warn(f"{failed} of {total} points did not converge (converged = False in {where})")
    if diverged:
        warn(f"{diverged} of {total} points have no finite solution (status 3 in {where})")
    return failed


def write_curve(args, params, variable, values, spec, tasks) -> int:
    from replica.chain_sweep import describe, plot_chain_curve
    from replica.cli.models import output_dir
    from replica.curves import Curve
    from replica.tables import rows_to_columns

    out = output_dir(args.out)
    meta = {"command": "chain curve", "params": params.to_dict(), "vary": variable.name,
            "values": [repr(float(v)) for v in values], "segment": args.segment,
            "optimise": None if spec is None else spec.to_dict()}  # fmt: skip
    journal = open_journal(out / "curve.csv", ("index",), meta, args.restart)
    note_resume(journal, len(values))
    desc = f"{'optimised ' if spec else ''}chain along {variable.name}"
    rows = _run(args, tasks, len(values), desc, journal)
    curve = Curve("chain", variable.name, describe(params, (variable.name,)),
                  rows_to_columns(rows))  # fmt: skip
    for figure in (out / "curve.png", args.plot):
        if figure is not None:
            plot_chain_curve(curve, figure)
    failed = report(curve.columns, len(values), "curve.csv")
    print(f"wrote {out / 'curve.csv'} and {out / 'curve.png'}")
    return 1 if failed else 0


def axis_values(args: argparse.Namespace, axis: str, variable) -> list:
    given = getattr(args, f"{axis}_values")
    rng = getattr(args, f"{axis}_range")
    if given is not None and rng is not None:
        raise CliError(f"{axis}-values: give --{axis}-values or --{axis}-range, not both")
    if given is not None:
        return parse_list(given, f"{axis}-values")
    if rng is None:
        raise CliError(f"{axis}-range: 'chain phase' needs --{axis}-values or --{axis}-range")
    if rng[0] == rng[1]:
        raise CliError(f"{axis}-range must have START != STOP; got {rng[0]:g} twice")
    return spaced(variable, rng[0], rng[1], getattr(args, f"n{axis}"),
                  getattr(args, f"{axis}_log"), f"{axis}-range")  # fmt: skip


def run_phase(args: argparse.Namespace, stages: list) -> int:
    """``chain phase --x KEY --y KEY --quantity EXPR --out DIR``."""
    from replica.chain_sweep import (
        ChainPhaseSpec,
        diagram_from_rows,
        parse_variable,
        phase_tasks,
        plot_chain_phase,
    )
    from replica.cli.models import output_dir

    params = chain_params(args, stages)
    for axis in ("x", "y"):
        if getattr(args, axis) is None:
            raise CliError(f"{axis}: 'chain phase' needs --x KEY and --y KEY")
    vx, vy = parse_variable(args.x, params, "x"), parse_variable(args.y, params, "y")
    spec = ChainPhaseSpec(vx.name, vy.name, axis_values(args, "x", vx),
                          axis_values(args, "y", vy), args.quantity, params,
                          optimise_spec(args) if args.optimise else None)  # fmt: skip
    if args.out is None:
        raise CliError("out: 'chain phase' needs --out DIR")
    out = output_dir(args.out)
    tasks = phase_tasks(spec, segment=args.segment)
    meta = {"command": "chain phase", "rows": spec.rows_dict(), "segment": args.segment}
    journal = open_journal(out / "phase.csv", ("iy", "ix"), meta, args.restart)
    total = len(spec.x_values) * len(spec.y_values)
    note_resume(journal, total)
    rows = _run(args, tasks, total, "chain phase diagram", journal)
    diagram = diagram_from_rows(spec, rows)
    for figure in (out / "phase.png", args.plot):
        if figure is not None:
            plot_chain_phase(diagram, figure)
    failed = report(diagram.columns, total, "phase.csv")
    print(f"wrote {out / 'phase.csv'} and {out / 'phase.png'}")
    return 1 if failed else 0
