"""Resumable, crash-safe CSV output: an append-only journal of finished rows.

Used to resume interrupted sweeps (docs/numerics.md §5).

A long sweep writes each finished row (or block of rows) to its CSV file as soon as it is
computed, in one ``write`` of whole lines followed by ``fsync``; an interrupted run (Ctrl-C,
``kill``, even ``kill -9``) therefore leaves a valid CSV file whose last line may at worst be
incomplete. Opening the same journal again:

- drops an incomplete last line (and any row that does not parse) by rewriting the file
  atomically (temporary file + ``os.replace``);
- checks that the run description (``meta``, kept beside it in ``NAME.meta.json``) is the same,
  so a different sweep is never mixed into the file (:class:`CheckpointMismatch`);
- reports the keys already done, which the caller skips; a key written twice is kept once;
- renames the columns of a journal written under former column names (``renamed``), and
  refuses (:class:`CheckpointMismatch`, not a half-written file) rows whose columns differ
  from the journal's header, e.g. those of a journal written by another version.

When the sweep completes, :meth:`CsvJournal.finalize` rewrites the file atomically with the
rows sorted by key. Values are stored as their text (floats with ``repr``, which round-trips
exactly), so a resumed run produces the same bytes as an uninterrupted one.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any


class CheckpointMismatch(ValueError):
    """The output already holds the journal of a different run."""


def format_value(value: Any) -> str:
    """Text of a CSV cell: ``repr`` for floats (exact round trip), ``str`` otherwise."""
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        value = value.item()
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    return str(value)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (temporary file in the same directory, fsync,
    ``os.replace``): readers see the old file or the new one, never a mixture.

    The file gets the mode of the file it replaces, or that of a newly created file under the
    process umask (``0666 & ~umask``), not the private ``0600`` of temporary files.
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode & 0o7777
    except OSError:
        mode = 0o666 & ~current_umask()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with _suppress_os_error():
            os.unlink(tmp)
        raise
    return path


def current_umask() -> int:
    """The process umask (read by setting it and restoring it at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class _suppress_os_error:
    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        return exc_type is not None and issubclass(exc_type, OSError)


def _lines(rows: Iterable[Sequence[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in rows:
        writer.writerow(row)
    return buffer.getvalue()


class CsvJournal:
    """An append-only CSV file of finished rows, resumable after an interruption.

    Parameters
    ----------
    path : str or Path
        The CSV file (created with its header on the first append).
    key : sequence of str
        Columns that identify a row (e.g. ``("series", "index")``).
    meta : dict, optional
        JSON-serialisable description of the run; a journal left by a run with another
        description raises :class:`CheckpointMismatch` instead of being mixed in.
    sort_key : callable, optional
        Orders the keys (tuples of cell texts) in :meth:`finalize`; default: numeric where
        the text is a number.
    renamed : mapping of str to str, optional
        Former column names and their current names: a journal whose header has a former
        name (and not the current one) gets its header renamed on opening (the file is
        rewritten atomically). Only for renames that keep the column's meaning and values.

    Attributes
    ----------
    columns : list of str or None
        The header (None until the first row).
    done : set of tuple
        Keys already in the file.
    """

    def __init__(
        self,
        path: str | Path,
        key: Sequence[str],
        meta: dict | None = None,
        *,
        sort_key: Callable[[tuple], Any] | None = None,
        renamed: Mapping[str, str] | None = None,
    ) -> None:
        self.path = Path(path)
        self.key = tuple(key)
        self.renamed = dict(renamed or {})
        self.meta_path = self.path.with_name(self.path.name + ".meta.json")
        self.sort_key = sort_key or _natural_key
        self.columns: list[str] | None = None
        self._rows: dict[tuple, list[str]] = {}
        self.resumed = 0
        meta_text = json.dumps(meta or {}, sort_keys=True, default=str)
        if self.meta_path.exists():
            stored = self.meta_path.read_text()
            if json.loads(stored) != json.loads(meta_text):
                raise CheckpointMismatch(
                    f"out: {self.path.parent} holds the output of a different run "
                    f"({self.meta_path.name} differs); choose another output directory"
                )
        elif self.path.exists():
            raise CheckpointMismatch(
                f"out: {self.path} exists but was not written by a resumable run; "
                "choose another output directory"
            )
        self._load()
        atomic_write_text(self.meta_path, meta_text)

    # -- reading --------------------------------------------------------------------------

    def _load(self) -> None:
        if not self.path.exists():
            return
        with open(self.path, newline="") as fh:
            text = fh.read()
        complete = text[: text.rfind("\n") + 1]  # an interrupted last line is dropped
        reader = csv.reader(io.StringIO(complete))
        header = next(reader, None)
        clean = complete != text
        if header is None:
            self.path.unlink()
            return
        migrated = [self._current_name(c, header) for c in header]
        if migrated != header:
            header, clean = migrated, True
        self.columns = header
        positions = [header.index(k) for k in self.key if k in header]
        if len(positions) != len(self.key):
            raise CheckpointMismatch(f"out: {self.path} lacks the key columns {self.key}")
        for row in reader:
            if len(row) != len(header):
                clean = True
                continue
            key = tuple(row[i] for i in positions)
            if key in self._rows:
                clean = True
                continue
            self._rows[key] = row
        self.resumed = len(self._rows)
        if clean:  # rewrite without the damaged or duplicated lines
            atomic_write_text(self.path, _lines([header, *self._rows.values()]))

    def _current_name(self, column: str, header: list[str]) -> str:
        """The current name of a header's ``column`` (:attr:`renamed`, unless taken)."""
        new = self.renamed.get(column)
        return new if new is not None and new not in header else column

    @property
    def done(self) -> set[tuple]:
        return set(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def key_of(self, row: dict) -> tuple:
        """The key (tuple of cell texts) of a row given as a dictionary."""
        return tuple(format_value(row[k]) for k in self.key)

    def rows(self) -> list[dict[str, str]]:
        """The rows in key order, as dictionaries of cell texts."""
        assert self.columns is not None or not self._rows
        ordered = sorted(self._rows, key=self.sort_key)
        return [dict(zip(self.columns, self._rows[k], strict=True)) for k in ordered]

    # -- writing --------------------------------------------------------------------------

    def append(self, rows: Iterable[dict]) -> int:
        """Append finished rows (dictionaries) durably; rows whose key is done are skipped.

        Returns the number of rows written. The first append of a new journal writes the
        header (the keys of the first row, in order).
        """
        rows = list(rows)
        if not rows:
            return 0
        new_header = self.columns is None
        if new_header:
            self.columns = list(rows[0])
        out = []
        for row in rows:
            if list(row) != self.columns:
                raise CheckpointMismatch(self._columns_message(list(row)))
            key = self.key_of(row)
            if key in self._rows:
                continue
            cells = [format_value(row[c]) for c in self.columns]
            self._rows[key] = cells
            out.append(cells)
        if not out:
            return 0
        text = _lines(([self.columns] if new_header else []) + out)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            data = text.encode()
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
            os.fsync(fd)
        finally:
            os.close(fd)
        return len(out)

    def _columns_message(self, columns: list[str]) -> str:
        """One line saying how ``columns`` differ from the journal's header."""
        old = [c for c in self.columns if c not in columns]
        new = [c for c in columns if c not in self.columns]
        if old or new:
            what = (f"its columns {', '.join(old) or '-'} are now {', '.join(new) or '-'}")
        else:
            what = "its columns are in another order"
        return (f"out: {self.path} was written by another version of this program ({what}); "
                "choose another output directory")

    def finalize(self) -> Path:
        """Rewrite the file atomically with its rows sorted by key."""
        if self.columns is None:
            return self.path
        return atomic_write_text(self.path, _lines([self.columns, *(
            self._rows[k] for k in sorted(self._rows, key=self.sort_key)
        )]))  # fmt: skip


def _natural_key(key: tuple) -> tuple:
    out = []
    for text in key:
        try:
            out.append((0, float(text), ""))
        except ValueError:
            out.append((1, 0.0, text))
    return tuple(out)
