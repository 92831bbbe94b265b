"""Command-line arguments of the teacher and student models, shared by their commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from replica.cli.common import CliError, finite, integer, number
from replica.params import MODEL_PARAMETERS, PARAMETERS, check_eta

_eta = check_eta  # (kept for importers)
_SCHEMA = object()  # "the schema's default"


def format_default(value) -> str:
    """A default as ``--help`` shows it: ``0.1``, ``1``, ``1e-4``, ``ridge``."""
    if isinstance(value, float):
        if value != 0 and abs(value) < 1e-3:
            return f"{value:.0e}".replace("e-0", "e-")
        return f"{value:g}"
    return str(value)


def add_parameter(parser: argparse.ArgumentParser, name: str, *, default=_SCHEMA,
                  help: str | None = None, flags: tuple[str, ...] | None = None,
                  dest: str | None = None) -> None:  # fmt: skip
    """The flag of model parameter ``name``, generated from its schema entry
    (:data:`replica.params.PARAMETERS`): name, check, default and help text.

    ``flags`` replace the schema's spelling (``--ridge-lam`` for the kernel model's ridge
    teacher, whose ``--lam`` is another parameter; aliases kept for old spellings) and
    ``dest`` is the attribute the value is stored in (default: from the first flag).
    """
    p = PARAMETERS[name]
    value = p.default if default is _SCHEMA else default
    text = p.help if help is None else help
    flags = (p.flag,) if flags is None else flags
    extra = {} if dest is None else {"dest": dest}
    if p.kind == "flag":
        parser.add_argument(*flags, action="store_true", default=bool(value), help=text, **extra)
    elif p.kind == "choice":
        parser.add_argument(*flags, choices=p.choices, default=value,
                            help=f"{text} (default {format_default(value)})", **extra)  # fmt: skip
    else:
        parser.add_argument(*flags, type=number(flags[0].lstrip("-"), p.check), default=value,
                            help=f"{text} (default {format_default(value)})", **extra)  # fmt: skip


def add_model_params(parser: argparse.ArgumentParser, model: str, *, alpha: float,
                     exclude: tuple[str, ...] = ()) -> None:  # fmt: skip
    """Flags of every parameter of ``model`` (``"teacher"`` or ``"student"``), in order."""
    for name in MODEL_PARAMETERS[model]:
        if name not in exclude:
            add_parameter(parser, name, default=alpha if name == "alpha" else _SCHEMA)


def model_kwargs(args: argparse.Namespace, model: str) -> dict:
    """The parameters of ``model`` from parsed flags, as solver keywords."""
    return {k: getattr(args, k) for k in MODEL_PARAMETERS[model]}


def add_mixture(parser: argparse.ArgumentParser) -> None:
    add_parameter(parser, "rho")
    add_parameter(parser, "delta")


def add_teacher_params(parser: argparse.ArgumentParser, *, alpha: float = 3.0) -> None:
    add_model_params(parser, "teacher", alpha=alpha)


def add_student_params(parser: argparse.ArgumentParser, *, alpha: float = 4.5) -> None:
    add_model_params(parser, "student", alpha=alpha)


def teacher_kwargs(args: argparse.Namespace) -> dict:
    return model_kwargs(args, "teacher")


def student_kwargs(args: argparse.Namespace) -> dict:
    return model_kwargs(args, "student")


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
