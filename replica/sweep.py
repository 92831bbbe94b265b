"""Theory curves along one parameter, as columns ready for CSV or pandas.

``teacher_curve("alpha", values, lam=0.1)`` walks the path with warm starts
(:func:`saddle.continuation.continuation`) and returns a :class:`Curve` whose ``columns`` map
each observable to a list (one entry per value).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from replica.params import ParameterError
from replica.student import StudentParams, StudentSolution, solve_student
from replica.teacher import TeacherParams, TeacherSolution, solve_teacher
from saddle.continuation import continuation

TEACHER_VARIABLES = ("alpha", "rho", "delta", "lam", "smoothing")
STUDENT_VARIABLES = (
    "alpha", "rho", "delta", "eta", "lam_t", "lam_s", "chi", "temperature", "smoothing",
)  # fmt: skip
# Parameters the ridge teacher depends on (a student sweep in any other re-uses one teacher).
TEACHER_SIDE = {"alpha", "rho", "delta", "lam_t", "smoothing"}


@dataclass(frozen=True)
class Curve:
    """A sweep: the varied parameter, the fixed ones, and one column per observable."""

    model: str
    vary: str
    fixed: dict
    columns: dict = field(repr=False)

    def __len__(self) -> int:
        return len(self.columns[self.vary])

    def to_dict(self) -> dict:
        return {"model": self.model, "vary": self.vary, "fixed": self.fixed, **self.columns}

    def write_csv(self, path: str | Path) -> Path:
        """Write the columns as CSV (header row = observable names)."""
        return write_columns_csv(self.columns, path)


def write_columns_csv(columns: dict, path: str | Path) -> Path:
    """Write ``{name: list}`` columns as a CSV file with a header row."""
    path = Path(path)
    names = list(columns)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(names)
        for row in zip(*(columns[n] for n in names), strict=True):
            writer.writerow([_csv_value(v) for v in row])
    return path


def _csv_value(value):
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    return value


def _columns(rows: list[dict]) -> dict:
    return {key: [row[key] for row in rows] for key in rows[0]}


def _check_vary(vary: str, allowed: Sequence[str]) -> str:
    vary = vary.replace("-", "_")
    if vary not in allowed:
        raise ParameterError(f"vary must be one of {', '.join(allowed)}; got {vary!r}")
    return vary


def teacher_curve(
    vary: str,
    values: Iterable[float],
    *,
    wrap: Callable[[Iterable], Iterable] | None = None,
    **fixed,
) -> Curve:
    """Teacher fixed points along ``vary`` (one of ``TEACHER_VARIABLES``), warm-started.

    ``fixed`` holds the other :class:`replica.teacher.TeacherParams` fields and solver options
    (``n_nodes``, ``tol``, ...). Columns: the varied parameter followed by
    :meth:`TeacherSolution.to_dict` entries.
    """
    vary = _check_vary(vary, TEACHER_VARIABLES)
    values = [float(v) for v in values]
    base = {k: v for k, v in fixed.items() if k in TeacherParams.__dataclass_fields__}
    options = {k: v for k, v in fixed.items() if k not in base}
    for value in values:  # fail fast, before a long sweep starts
        TeacherParams(**{**base, vary: value})

    def solve(value: float, initial) -> TeacherSolution:
        args = {**base, vary: value}
        return solve_teacher(**args, initial=initial, warn=False, **options)

    results = continuation(solve, values, wrap=wrap)
    rows = [{vary: v, **r.to_dict()} for v, r in zip(values, results, strict=True)]
    return Curve("teacher", vary, base, _columns(rows))


@dataclass(frozen=True)
class _StudentState:
    """Warm-start state of a student sweep: both fixed points."""

    solution: StudentSolution

    @property
    def converged(self) -> bool:
        return self.solution.converged and self.solution.teacher.converged

    @property
    def state(self):
        return self.solution


def student_curve(
    vary: str,
    values: Iterable[float],
    *,
    wrap: Callable[[Iterable], Iterable] | None = None,
    **fixed,
) -> Curve:
    """Student fixed points along ``vary`` (one of ``STUDENT_VARIABLES``), warm-started.

    The teacher is re-solved (warm) only when ``vary`` is one of its parameters; otherwise one
    teacher solution serves the whole curve. Columns: the varied parameter, the student's
    observables, the teacher's with prefix ``teacher_``, and the two Bayes-optimal bounds.
    """
    vary = _check_vary(vary, STUDENT_VARIABLES)
    values = [float(v) for v in values]
    base = {k: v for k, v in fixed.items() if k in StudentParams.__dataclass_fields__}
    options = {k: v for k, v in fixed.items() if k not in base}
    for value in values:  # fail fast, before a long sweep starts
        StudentParams(**{**base, vary: value})
    teacher_fixed = vary not in TEACHER_SIDE and base.get("teacher", "ridge") == "ridge"
    shared_teacher = None
    if teacher_fixed:
        p = StudentParams(**{**base, vary: values[0]} if values else base)
        shared_teacher = solve_teacher(
            p.alpha, p.rho, p.delta, p.lam_t, p.smoothing, warn=False,
            n_nodes=options.get("n_nodes_teacher", 96),
        )  # fmt: skip
    options.pop("n_nodes_teacher", None)

    def solve(value: float, previous: StudentSolution | None) -> _StudentState:
        args = {**base, vary: value}
        params = StudentParams(**args)
        teacher = shared_teacher
        if teacher is None and params.teacher == "ridge":
            teacher = solve_teacher(
                params.alpha, params.rho, params.delta, params.lam_t, params.smoothing,
                initial=None if previous is None else previous.teacher.state, warn=False,
            )  # fmt: skip
        sol = solve_student(
            **args, teacher_solution=teacher,
            initial=None if previous is None else previous.state, warn=False, **options,
        )  # fmt: skip
        return _StudentState(sol)

    results = continuation(solve, values, wrap=wrap)
    rows = []
    for value, wrapped in zip(values, results, strict=True):
        sol = wrapped.solution
        row = {vary: value, **sol.student_dict()}
        row.update({f"teacher_{k}": v for k, v in sol.teacher.to_dict().items() if k != "eps_bo"})
        row.update(eps_bo_student=sol.eps_bo_student, eps_bo_teacher=sol.eps_bo_teacher)
        rows.append(row)
    return Curve("student", vary, base, _columns(rows))


def as_array(curve: Curve, name: str) -> np.ndarray:
    """A column as a float array."""
    return np.asarray(curve.columns[name], dtype=float)
