"""Command-line arguments of the teacher and student models, shared by their commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from replica.cli.common import CliError, finite, integer, number
from replica.params import (
    check_nonnegative,
    check_open_unit,
    check_positive,
    check_smoothing,
    check_unit_interval,
)


def _eta(name, value):
    return check_unit_interval(name, value, open_left=True)


def add_mixture(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rho", type=number("rho", check_open_unit), default=0.2,
                        help="fraction of the positive cluster, in (0, 1) (default 0.2)")
    parser.add_argument("--delta", type=number("delta", check_positive), default=1.0,
                        help="noise variance Delta > 0 (default 1)")


def add_teacher_params(parser: argparse.ArgumentParser, *, alpha: float = 3.0) -> None:
    parser.add_argument("--alpha", type=number("alpha", check_positive), default=alpha,
                        help=f"sample ratio M/N > 0 (default {alpha:g})")
    add_mixture(parser)
    parser.add_argument("--lam", type=number("lam", check_nonnegative), default=0.1,
                        help="ridge strength lambda >= 0 (default 0.1)")
    parser.add_argument("--smoothing", type=number("smoothing", check_smoothing), default=0.0,
                        help="label smoothing eps in [0, 0.5) (default 0)")
    add_loss(parser, "--loss", "the teacher's loss")


def add_loss(parser: argparse.ArgumentParser, flag: str, what: str) -> None:
    """A ``--loss``-style choice among the rows of the loss table (:mod:`replica.losses`)."""
    from replica.losses import LOSS_KINDS

    parser.add_argument(flag, choices=tuple(LOSS_KINDS), default="logistic",
                        help=f"{what}: cross-entropy with soft targets (the paper's), square "
                             "(h - s)^2/2 or hinge max(0, 1 - s h) (default logistic)")


def add_student_params(parser: argparse.ArgumentParser, *, alpha: float = 4.5) -> None:
    parser.add_argument("--alpha", type=number("alpha", check_positive), default=alpha,
                        help=f"sample ratio M/N > 0 (default {alpha:g})")
    add_mixture(parser)
    parser.add_argument("--eta", type=number("eta", _eta), default=0.5,
                        help="fraction of trainable student weights, in (0, 1] (default 0.5)")
    parser.add_argument("--lam-t", type=number("lam-t", check_nonnegative), default=0.1,
                        help="teacher ridge strength (default 0.1)")
    parser.add_argument("--lam-s", type=number("lam-s", check_nonnegative), default=1e-4,
                        help="student ridge strength (default 1e-4)")
    parser.add_argument("--chi", type=number("chi", check_unit_interval), default=1.0,
                        help="weight of the distillation term, in [0, 1] (default 1)")
    parser.add_argument("--temperature", type=number("temperature", check_positive),
                        default=1.0, help="distillation temperature T > 0 (default 1)")
    parser.add_argument("--t2-scaling", action="store_true",
                        help="multiply the distillation term by T^2 (Hinton); off in the paper")
    parser.add_argument("--smoothing", type=number("smoothing", check_smoothing), default=0.0,
                        help="label smoothing eps in [0, 0.5) (default 0)")
    from replica.stages import TEACHER_KINDS

    kinds = "; ".join(f"{k.name}: {k.help}" for k in TEACHER_KINDS.values())
    parser.add_argument("--teacher", choices=tuple(TEACHER_KINDS), default="ridge",
                        help=f"teacher kind ({kinds}; default ridge)")
    add_loss(parser, "--loss", "the student's label term (1 - chi) l(y, h); the "
                               "distillation term stays the tempered cross-entropy")
    add_loss(parser, "--teacher-loss", "the ridge teacher's loss")


def teacher_kwargs(args: argparse.Namespace) -> dict:
    return {k: getattr(args, k) for k in ("alpha", "rho", "delta", "lam", "smoothing", "loss")}


def student_kwargs(args: argparse.Namespace) -> dict:
    names = ("alpha", "rho", "delta", "eta", "lam_t", "lam_s", "chi", "temperature",
             "t2_scaling", "smoothing", "teacher", "loss", "teacher_loss")  # fmt: skip
    return {k: getattr(args, k) for k in names}


def add_path_args(parser: argparse.ArgumentParser, variables: tuple[str, ...]) -> None:
    choices = [v.replace("_", "-") for v in variables]
    parser.add_argument("--vary", required=True, choices=choices, help="parameter to sweep")
    parser.add_argument("--start", type=number("start", finite), required=True,
                        help="first value of the swept parameter (the path may go down)")
    parser.add_argument("--stop", type=number("stop", finite), required=True,
                        help="last value of the swept parameter (included; equal to --start "
                             "repeats one point)")
    parser.add_argument("--num", type=integer("num", 2), default=60, help="points (default 60)")
    parser.add_argument("--log", action="store_true", help="geometric spacing")
    parser.add_argument("--out", required=True, help="output directory (created)")


def path_values(args: argparse.Namespace) -> np.ndarray:
    if args.log:
        if args.start <= 0 or args.stop <= 0:
            raise CliError("--log needs positive --start and --stop")
        return np.geomspace(args.start, args.stop, args.num)
    return np.linspace(args.start, args.stop, args.num)


def output_dir(path: str) -> Path:
    """Create the output directory (with its parents) and check that files can be written in
    it, before any computation: a one-line ``out`` error otherwise."""
    import tempfile

    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"out: cannot create directory {path!r}: {exc.strerror}") from None
    try:  # the permission bits do not tell (root, read-only mounts, ACLs): try it
        with tempfile.TemporaryFile(dir=out, prefix=".kd-replica-probe"):
            pass
    except OSError as exc:
        raise CliError(f"out: cannot write in directory {path!r}: {exc.strerror}") from None
    return out


def warn(message: str) -> None:
    sys.stderr.write(f"kd-replica: warning: {message}\n")
