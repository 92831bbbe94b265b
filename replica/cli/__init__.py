"""The ``kd-replica`` command line.

Each sub-module registers its commands through ``register(commands, curve, simulate)``:
``commands`` is the top-level sub-parser collection, ``curve`` and ``simulate`` those of the
``kd-replica curve MODEL`` and ``kd-replica simulate MODEL`` groups. A command sets
``handler=function(args) -> int`` as its default.

Exit codes: 0 success, 1 a fixed point that did not converge (reported, not hidden),
2 bad input (one line naming the parameter), 130 interrupted (Ctrl-C), 128 + N terminated by
signal N (``SIGTERM``, ``SIGHUP``): finished points are on disk and worker processes stopped.
"""

from __future__ import annotations

import contextlib
import importlib
import signal
import sys

from replica.cli.common import CliError, OneLineParser, check_scheduler
from replica.params import ParameterError
from saddle.checkpoint import CheckpointMismatch

COMMAND_MODULES = (
    "replica.cli.teacher",
    "replica.cli.student",
    "replica.cli.demo",
    "replica.cli.kernel",
    "replica.cli.thresholds",
    "replica.cli.phase",
    "replica.cli.figures",
    "replica.cli.chain",
)


def package_version() -> str:
    """The installed distribution's version (or, in a source checkout, setup.cfg's)."""
    from importlib import metadata

    try:
        return metadata.version("kd-replica")
    except metadata.PackageNotFoundError:
        import configparser
        from pathlib import Path

        config = configparser.ConfigParser()
        config.read(Path(__file__).resolve().parents[2] / "setup.cfg")
        return config.get("metadata", "version", fallback="unknown")


def build_parser() -> OneLineParser:
    parser = OneLineParser(
        prog="kd-replica",
        description="Replica theory and simulations of solvable knowledge-distillation models.",
    )
    parser.add_argument("--version", action="version", version=f"kd-replica {package_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    commands.required = True
    curve = commands.add_parser("curve", help="a theory curve along one parameter (CSV + PNG)")
    curve_models = curve.add_subparsers(dest="model", metavar="MODEL", parser_class=OneLineParser)
    curve_models.required = True
    simulate = commands.add_parser("simulate", help="finite-size Monte-Carlo with error bars")
    simulate_models = simulate.add_subparsers(
        dest="model", metavar="MODEL", parser_class=OneLineParser
    )
    simulate_models.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(commands, curve_models, simulate_models)
    return parser


class Terminated(KeyboardInterrupt):
    """``SIGTERM`` / ``SIGHUP`` received: unwind like Ctrl-C (workers stopped, files closed)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum, _frame):
    raise Terminated(signum)


@contextlib.contextmanager
def _terminate_cleanly():
    """Turn ``SIGTERM`` and ``SIGHUP`` into :class:`Terminated` while a command runs."""
    previous = {}
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is None:
            continue
        try:
            previous[sig] = signal.signal(sig, _raise_terminated)
        except ValueError:  # not the main thread: leave the handlers alone
            pass
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@contextlib.contextmanager
def single_threaded_blas():
    """One BLAS thread while a command runs, unless the user chose a number
    (``OPENBLAS_NUM_THREADS`` & co.); the previous limits are restored afterwards.

    The matrices here are small (N ~ 10^2..10^3): threaded BLAS spends more time waking and
    spinning its threads than it saves, and oversubscribes the cores next to the worker
    pool (``benchmarks/bench_cli.py``: the demo 3x faster serially; README "Command line").
    """
    import os

    from saddle.executor import blas_thread_limit

    chosen = any(os.environ.get(name) for name in BLAS_THREAD_VARIABLES)
    with blas_thread_limit(None if chosen else 1):
        yield


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``kd-replica`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if getattr(args, "scheduler", None) is not None:
            check_scheduler(args.scheduler)  # before anything is created or computed
        with _terminate_cleanly(), single_threaded_blas():
            return int(args.handler(args) or 0)
    except (ParameterError, CliError) as exc:
        sys.stderr.write(f"kd-replica: error: {exc}\n")
        return 2
    except CheckpointMismatch as exc:  # found while writing (a journal of another version)
        hint = " (or pass --restart)" if hasattr(args, "restart") else ""
        sys.stderr.write(f"kd-replica: error: {exc}{hint}\n")
        return 2
    except Terminated as exc:
        sys.stderr.write(f"kd-replica: terminated by {signal.Signals(exc.signum).name}\n")
        return 128 + exc.signum
    except KeyboardInterrupt:
        sys.stderr.write("kd-replica: interrupted\n")
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. piped into `head`): stop quietly.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
