"""Shared command-line plumbing: one-line errors, typed arguments, output, progress bars."""

from __future__ import annotations

import argparse
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


def progress(iterable=None, *, total: int | None = None, desc: str = "", quiet: bool = False):
    """A tqdm progress bar (with ETA) on stderr, or a silent pass-through with ``quiet``."""
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, disable=quiet, file=sys.stderr, leave=False)


def add_quiet(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
