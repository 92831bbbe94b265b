"""Theory curves along one parameter, as columns ready for CSV or pandas (the Python API).

``teacher_curve("alpha", values, lam=0.1)`` walks the path with warm starts
(:func:`saddle.continuation.continuation`, through :mod:`replica.sweep`) and returns a
:class:`Curve` whose ``columns`` map each observable to a list (one entry per value).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from replica.params import ParameterError, split_params, variables
from replica.student import StudentParams
from replica.tables import columns_of, to_frame, write_columns_csv
from replica.teacher import TeacherParams
from saddle.results import ValueEquality

TEACHER_VARIABLES = variables("teacher")
STUDENT_VARIABLES = variables("student")


@dataclass(frozen=True, eq=False)
class Curve(ValueEquality):
    """A sweep: the varied parameter, the fixed ones, and one column per observable.

    Columns are the rows of the solutions (``TeacherSolution.to_row``,
    ``StudentSolution.to_row``) along the path, named as in :mod:`replica.observables`.
    Curves compare and hash by value.
    """

    model: str
    vary: str
    fixed: dict
    columns: dict = field(repr=False)

    def __len__(self) -> int:
        return len(self.columns[self.vary])

    def to_dict(self) -> dict:
        """Flat and table-shaped: ``model``, ``vary`` and the fixed parameters (scalars), then
        the columns (lists), so that ``pandas.DataFrame(curve.to_dict())`` is the table with
        the constants broadcast."""
        return {"model": self.model, "vary": self.vary, **self.fixed, **self.columns}

    def to_frame(self):
        """The table as a ``pandas.DataFrame`` (pandas imported only here): one row per point,
        the columns of :meth:`to_dict`."""
        return to_frame(self.to_dict())

    def write_csv(self, path: str | Path) -> Path:
        """Write the columns as CSV (header row = observable names)."""
        return write_columns_csv(self.columns, path)


def _check_vary(vary: str, allowed: Sequence[str]) -> str:
    vary = vary.replace("-", "_")
    if vary not in allowed:
        raise ParameterError(f"vary must be one of {', '.join(allowed)}; got {vary!r}")
    return vary


def validate_path(params_class, vary: str, values: Iterable[float], fixed: dict) -> None:
    """Construct ``params_class`` at every value of the path: fail fast, before a long sweep.

    Raises :class:`ParameterError` for an empty path or an invalid value (repeated values are
    fine: the same point repeated)."""
    base, _ = split_params(params_class, fixed)
    values = list(values)
    if not values:
        raise ParameterError("values must hold at least one value of the swept parameter; "
                             "got an empty path")
    if vary != "alpha" and "alpha" not in base:
        raise ParameterError("alpha must be given when it is not varied")
    for value in values:
        params_class(**{**base, vary: float(value)})


def _curve(model: str, params_class, allowed: Sequence[str], vary: str,
           values: Iterable[float], fixed: dict) -> Curve:  # fmt: skip
    """One warm-started path solved in order, in process (:func:`solve_path`, one segment)."""
    vary = _check_vary(vary, allowed)
    values = [float(v) for v in values]
    validate_path(params_class, vary, values, fixed)
    from replica.sweep import (  # (orchestration; imported late: it imports us)
        path_tasks,
        solve_path,
    )

    rows = solve_path(path_tasks(model, vary, values, fixed, segment=max(len(values), 1))[0])
    rows = [{k: v for k, v in row.items() if k != "index"} for row in rows]
    return Curve(model, vary, split_params(params_class, fixed)[0], columns_of(rows))


def teacher_curve(vary: str, values: Iterable[float], **fixed) -> Curve:
    """Teacher fixed points along ``vary`` (one of ``TEACHER_VARIABLES``), warm-started.

    ``fixed`` holds the other :class:`replica.teacher.TeacherParams` fields and solver options
    (``n_nodes``, ``tol``, ...). Columns: the varied parameter followed by
    :meth:`TeacherSolution.to_dict` entries.
    """
    return _curve("teacher", TeacherParams, TEACHER_VARIABLES, vary, values, fixed)


def student_curve(vary: str, values: Iterable[float], **fixed) -> Curve:
    """Student fixed points along ``vary`` (one of ``STUDENT_VARIABLES``), warm-started.

    The teacher is re-solved (warm) only when one of its parameters changes along the path;
    options prefixed ``teacher_`` go to its solver. Columns: the varied parameter, the
    student's observables, the teacher's with prefix ``teacher_``, and the two Bayes-optimal
    bounds.
    """
    return _curve("student", StudentParams, STUDENT_VARIABLES, vary, values, fixed)


def as_array(curve: Curve, name: str) -> np.ndarray:
    """A column as a float array."""
    return np.asarray(curve.columns[name], dtype=float)
