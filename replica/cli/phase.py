"""``kd-replica phase``: a 2-D phase diagram of any quantity over any two parameters."""

from __future__ import annotations

import argparse

from replica.cli.common import (
    CliError,
    Progress,
    add_executor_args,
    add_quiet,
    executor_from_args,
    finite,
    integer,
    note_resume,
    number,
    open_journal,
    prepare_kernels,
)
from replica.cli.models import add_student_params, output_dir, student_kwargs
from replica.params import check_nonnegative

AXES = ("alpha", "lam", "lam-t", "lam-s", "chi", "temperature", "smoothing", "eta", "rho",
        "delta")  # fmt: skip


def register(commands, curve, simulate) -> None:
    p = commands.add_parser(
        "phase",
        help="phase diagram of a quantity over two parameters (CSV + heatmap PNG)",
        description="Compute QUANTITY on an NX x NY grid of two parameters: CSV (resumable: "
        "re-run with the same --out to continue) and a heatmap with contour lines and the "
        "interpolation / separability thresholds. QUANTITY: student.<column> or "
        "teacher.<column> (eps_g, q, m, train_loss, ...), student.lam_star / teacher.lam_star "
        "(optimal ridge), student.chi_star (optimal mixing), kd_gain (eps_KD - min_lam "
        "eps_ridge).",
    )
    p.add_argument("--x", required=True, choices=AXES, help="parameter on the horizontal axis")
    p.add_argument("--y", required=True, choices=AXES, help="parameter on the vertical axis")
    p.add_argument("--quantity", default="student.eps_g", help="what to map (default "
                   "student.eps_g)")  # fmt: skip
    for axis in ("x", "y"):
        p.add_argument(f"--{axis}-range", nargs=2, type=number(f"{axis}-range", finite),
                       default=None,
                       metavar=("START", "STOP"), help=f"{axis} range (default per parameter)")
        p.add_argument(f"--n{axis}", type=integer(f"n{axis}", 2), default=50,
                       help=f"grid points along {axis} (default 50)")
        p.add_argument(f"--{axis}-log", default=None, action=argparse.BooleanOptionalAction,
                       help=f"geometric spacing along {axis} (default: ridges and T)")
    add_student_params(p)
    p.add_argument("--lam", type=number("lam", check_nonnegative), default=0.1,
                   help="teacher ridge for teacher.* diagrams over teacher axes (default 0.1)")
    p.add_argument("--out", required=True, help="output directory (created)")
    add_executor_args(p)
    add_quiet(p)
    p.set_defaults(handler=run)


def build_spec(args: argparse.Namespace):
    from replica.phase import PhaseSpec, axis_values, parse_quantity

    x, y = args.x.replace("-", "_"), args.y.replace("-", "_")
    if x == y:
        raise CliError(f"y must differ from x; got {args.y!r} twice")
    model, _, _ = parse_quantity(args.quantity, x, y)
    values = {}
    for axis, name in (("x", x), ("y", y)):
        rng = getattr(args, f"{axis}_range")
        start, stop = (None, None) if rng is None else rng
        if rng is not None and start == stop:
            raise CliError(f"{axis}-range must have START != STOP (a diagram needs an "
                           f"interval); got {start:g} {stop:g}")
        values[axis] = axis_values(name, start, stop, getattr(args, f"n{axis}"),
                                   getattr(args, f"{axis}_log"))  # fmt: skip
    if model == "teacher":
        fixed = {"alpha": args.alpha, "rho": args.rho, "delta": args.delta, "lam": args.lam,
                 "smoothing": args.smoothing, "loss": args.teacher_loss}  # fmt: skip
    else:
        fixed = student_kwargs(args)
    for name in (x, y):
        fixed.pop(name, None)
    return PhaseSpec(x, y, tuple(values["x"]), tuple(values["y"]), args.quantity, fixed)


def run(args: argparse.Namespace) -> int:
    from replica.cli.models import warn
    from replica.phase import compute_phase, phase_tasks, plot_phase

    spec = build_spec(args)
    out = output_dir(args.out)
    tasks = phase_tasks(spec, segment=args.segment)
    # the rows do not depend on which of their columns is mapped: --quantity student.q after
    # a student.eps_g run re-uses its grid (only phase.png is redrawn)
    meta = {"command": "phase", "rows": spec.rows_dict(), "segment": args.segment}
    journal = open_journal(out / "phase.csv", ("iy", "ix"), meta, args.restart)
    total = len(spec.x_values) * len(spec.y_values)
    note_resume(journal, total)
    if journal.resumed < total:
        prepare_kernels(args.quiet)
    with executor_from_args(args, len(tasks)) as executor, \
            Progress(total, "phase diagram", args.quiet, journal.resumed) as bar:
        diagram = compute_phase(spec, executor=executor, journal=journal, progress=bar,
                                segment=args.segment)  # fmt: skip
    plot_phase(diagram, out / "phase.png")
    status = diagram.columns.get("status", [])
    diverged = sum(s == 3 for s in status)
    failed = sum((not ok) and s != 3 for ok, s in zip(diagram.columns["converged"], status,
                                                        strict=True))  # fmt: skip
    if failed:
        warn(f"{failed} of {total} points did not converge (NaN in the map, flagged in CSV)")
    if diverged:
        warn(f"{diverged} of {total} points have no finite solution (status 3 in phase.csv)")
    print(f"wrote {out / 'phase.csv'} and {out / 'phase.png'}")
    return 1 if failed else 0
