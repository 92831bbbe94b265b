"""Shared command-line plumbing: one-line errors, typed arguments, output, progress bars."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
from collections.abc import Callable, Iterable

from replica.params import ParameterError


class CliError(Exception):
    """An error to report on one line with exit code 2."""


class OneLineParser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line on stderr and exit code 2 (no usage dump)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"kd-replica: error: {message}\n")
        raise SystemExit(2)


def number(name: str, check: Callable[[str, float], float] | None = None):
    """An argparse ``type=`` that parses a float and applies a range check naming ``name``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number; got {text!r}") from None
        if math.isnan(value):
            raise argparse.ArgumentTypeError(f"{name} must be a number; got {text!r}")
        if check is not None:
            try:
                value = check(name, value)
            except ParameterError as exc:
                raise argparse.ArgumentTypeError(str(exc)) from None
        return value

    parse.__name__ = name
    return parse


def finite(name: str, value: float) -> float:
    """A range check for :func:`number`: any finite number (path ends, axis ranges)."""
    if not math.isfinite(value):
        raise ParameterError(f"{name} must be a finite number; got {value!r}")
    return value


def integer(name: str, minimum: int = 1):
    """An argparse ``type=`` for an integer >= ``minimum`` naming ``name`` in its error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer; got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{name} must be an integer >= {minimum}; got {text}")
        return value

    parse.__name__ = name
    return parse


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def print_json(obj: dict) -> None:
    """Print one JSON object (numpy scalars converted, non-finite floats made JSON-safe)."""
    print(json.dumps(_jsonable(obj), indent=2))


def format_table(rows: Iterable[tuple[str, object]], title: str | None = None) -> str:
    """Render ``(name, value)`` rows as an aligned two-column table."""
    rows = list(rows)
    width = max((len(name) for name, _ in rows), default=0)
    lines = [title, "-" * len(title)] if title else []
    for name, value in rows:
        if isinstance(value, float):
            text = f"{value:.6g}"
        else:
            text = str(value)
        lines.append(f"{name:<{width}}  {text}")
    return "\n".join(lines)


PROGRESS_DELAY = 0.5  # seconds before a progress bar appears


def progress(iterable=None, *, total: int | None = None, desc: str = "", quiet: bool = False):
    """A tqdm progress bar (with ETA) on stderr, or a silent pass-through with ``quiet``."""
    from tqdm.auto import tqdm

    # shown after PROGRESS_DELAY seconds only: a run that has (almost) nothing left to do,
    # e.g. one resumed from finished output, shows no bar at all
    return tqdm(iterable, total=total, desc=desc, disable=quiet, file=sys.stderr, leave=False,
                delay=PROGRESS_DELAY)


def add_quiet(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def add_executor_args(parser: argparse.ArgumentParser, *, resumable: bool = True,
                      segment: int = 8) -> None:
    """``--workers``, ``--scheduler``, ``--segment`` (and ``--restart``) for long commands."""
    parser.add_argument("--workers", type=integer("workers", 1), default=None,
                        help="local worker processes (default: all cores; 1 = serial)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="run on a Dask distributed cluster at ADDRESS "
                             "(needs the [distributed] extra)")
    parser.add_argument("--segment", type=integer("segment", 1), default=segment,
                        help=f"points per warm-started segment (a unit of work; default "
                             f"{segment})")
    if resumable:
        parser.add_argument("--restart", action="store_true",
                            help="discard the output of an earlier run in --out and start over")


SCHEDULER_TIMEOUT = 5.0  # seconds to reach a --scheduler before giving up


def check_scheduler(address: str, timeout: float = SCHEDULER_TIMEOUT) -> None:
    """Fail fast (one line, before anything is computed or created) on a ``--scheduler`` that
    is malformed or cannot be reached within ``timeout`` seconds."""
    import socket

    try:
        from distributed.comm.addressing import parse_address, parse_host_port
    except ImportError:
        raise CliError("scheduler: Dask is not installed "
                       "(pip install 'kd-replica[distributed]')") from None
    try:
        scheme, location = parse_address(address)
        if scheme not in ("tcp", "tls", "ws", "wss"):
            return  # other transports (ucx, inproc): left to Dask
        host, port = parse_host_port(location)
    except (ValueError, TypeError) as exc:
        raise CliError(f"scheduler must be an address like tcp://HOST:8786; got {address!r} "
                       f"({exc})") from None
    if not host:
        raise CliError(f"scheduler must name a host, like tcp://HOST:8786; got {address!r}")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise CliError(f"scheduler: cannot reach {address!r} within {timeout:g} s: "
                       f"{reason}") from None
    _dask_handshake(address, timeout)


def _dask_handshake(address: str, timeout: float) -> None:
    """Connect a Dask client and disconnect: something that is not a Dask scheduler (or one
    that does not answer in time) fails here, not in the middle of a command."""
    from distributed import Client

    try:
        Client(address, timeout=timeout).close()
    except Exception as exc:  # noqa: BLE001 - whatever the peer did, one line
        raise CliError(f"scheduler: no Dask scheduler answers at {address!r} "
                       f"({_first_line(exc)})") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def executor_from_args(args: argparse.Namespace, n_tasks: int | None = None):
    """The executor context manager of ``--workers`` / ``--scheduler`` (no more local workers
    than ``n_tasks``); a scheduler that fails to answer is a one-line error."""
    from saddle.executor import default_workers, make_executor

    scheduler = getattr(args, "scheduler", None)  # checked by main() before the command
    workers = getattr(args, "workers", None)
    if workers is None:
        workers = default_workers()
    if n_tasks is not None:
        workers = max(1, min(workers, n_tasks))
    return _one_line_connection_errors(make_executor(workers, scheduler), scheduler)


@contextlib.contextmanager
def _one_line_connection_errors(executor_manager, scheduler):
    stack = contextlib.ExitStack()
    try:
        executor = stack.enter_context(executor_manager)
    except Exception as exc:  # noqa: BLE001 - a cluster that went away since check_scheduler
        if scheduler is None:
            raise
        raise CliError(f"scheduler: cannot connect to {scheduler!r} "
                       f"({_first_line(exc)})") from None
    with stack:
        yield executor


def open_journal(path, key, meta: dict, restart: bool = False):
    """A :class:`saddle.checkpoint.CsvJournal` at ``path``, or a one-line error if ``path``
    holds another run's output (``restart`` deletes it first). Columns of an earlier version
    renamed since (:data:`replica.tables.FORMER_COLUMNS`) are migrated."""
    from pathlib import Path

    from saddle.checkpoint import CheckpointMismatch, CsvJournal

    path = Path(path)
    if restart:
        for old in (path, path.with_name(path.name + ".meta.json")):
            if old.exists():
                old.unlink()
    from replica.tables import FORMER_COLUMNS

    try:
        return CsvJournal(path, key, meta, renamed=FORMER_COLUMNS)
    except CheckpointMismatch as exc:
        raise CliError(f"{exc} (or pass --restart)") from None


def note_resume(journal, total: int) -> None:
    """Say on stderr how many points an earlier run of this output already finished."""
    if journal.resumed:
        sys.stderr.write(f"kd-replica: resuming: {journal.resumed} of {total} points already "
                         f"in {journal.path}\n")


class Progress:
    """A progress bar counting points, usable as ``run_tasks(progress=...)``.

    ``already`` points were found done by an earlier run (the journal's ``resumed``): the bar
    starts there rather than at 0 %, the first ``already`` points reported (``run_tasks``
    reports the skipped ones first) are absorbed, and a run with nothing left shows no bar.
    """

    def __init__(self, total: int, desc: str, quiet: bool, already: int = 0):
        already = max(0, min(int(already), total))
        self.absorb = already
        self.bar = progress(total=total, desc=desc, quiet=quiet or already >= total)
        if already:
            self.bar.update(already)

    def __call__(self, n: int) -> None:
        absorbed = min(n, self.absorb)
        self.absorb -= absorbed
        if n - absorbed:
            self.bar.update(n - absorbed)

    def close(self) -> None:
        self.bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


COMPILE_NOTICE_AFTER = 1.0  # seconds of kernel preparation before saying so


def prepare_kernels(quiet: bool = False, models: tuple = ("teacher", "student")) -> float:
    """Load the numba kernels of the replica solvers in this process, compiling them on first
    use, before any worker is forked (the workers inherit them instead of each loading or
    compiling its own). Says so on stderr if that takes more than a second, instead of
    sitting silently at a 0 % bar. Returns the seconds it took."""
    import threading
    import time

    from replica.sweep import path_tasks, solve_path

    def notice() -> None:
        sys.stderr.write("kd-replica: preparing the numba kernels (compiled on first use, "
                         "then cached on disk for later runs) ...\n")
        sys.stderr.flush()

    timer = threading.Timer(COMPILE_NOTICE_AFTER, notice)
    timer.daemon = True
    if not quiet:
        timer.start()
    start = time.perf_counter()
    try:
        for model, fixed in (("teacher", {"lam": 0.1}), ("student", {"lam_t": 0.1})):
            if model in models:
                solve_path(path_tasks(model, "alpha", [2.0], fixed)[0])
    finally:
        timer.cancel()
    return time.perf_counter() - start
