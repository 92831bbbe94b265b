"""Tables of results: rows (one dict per point) and columns (one list per observable), CSV.

Orchestration helpers with no physics: used by :mod:`replica.curves`, :mod:`replica.sweep`,
:mod:`replica.phase` and the figures. The resumable journals live in
:mod:`saddle.checkpoint`.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

#: Columns of rows written by earlier versions under another name, with the same values:
#: the solver's count of map evaluations was ``iterations`` before it became ``nit``
#: (``ReportedSolution.iterations`` returned the same ``report.nit``). Journals are migrated
#: on resume (:class:`saddle.checkpoint.CsvJournal`, ``renamed``).
FORMER_COLUMNS: dict[str, str] = {"iterations": "nit", "teacher_iterations": "teacher_nit"}


def write_columns_csv(columns: dict, path: str | Path) -> Path:
    """Write ``{name: list}`` columns as a CSV file with a header row."""
    path = Path(path)
    names = list(columns)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(names)
        for row in zip(*(columns[n] for n in names), strict=True):
            writer.writerow([csv_value(v) for v in row])
    return path


def csv_value(value):
    """A float as its exact ``repr`` (``nan``/``inf`` as text); anything else unchanged."""
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    return value


def columns_of(rows: Sequence[dict]) -> dict[str, list]:
    """``{name: [row[name] for row in rows]}`` (names of the first row), values unchanged."""
    return {key: [row[key] for row in rows] for key in rows[0]}


def rows_to_columns(rows: Sequence[dict]) -> dict[str, list]:
    """Columns of rows, converting cell texts to floats / bools where they parse."""
    if not rows:
        return {}
    columns: dict[str, list] = {name: [] for name in rows[0]}
    for row in rows:
        for name, value in row.items():
            columns[name].append(parse_cell(value))
    return columns


def parse_cell(value):
    """``"True"``/``"False"`` to bool, numbers to float (``"nan"`` included), else unchanged."""
    if not isinstance(value, str):
        return value
    if value in ("True", "False"):
        return value == "True"
    try:
        return float(value)
    except ValueError:
        return value


def to_frame(columns: dict[str, list]):
    """A ``pandas.DataFrame`` of columns (pandas is optional: imported only here)."""
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is in the test extra
        raise ImportError("to_frame() needs pandas: pip install pandas") from None
    return pd.DataFrame(columns)
