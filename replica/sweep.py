"""Orchestration of every long run: segmented, resumable sweeps through an executor.

A path (or a row of a phase diagram, or a series of a figure) is cut into segments of fixed
length (:func:`saddle.executor.segments`); a segment is one task, a :class:`PathTask`: its
points are solved in order with warm starts (:func:`saddle.continuation.continuation`), the
first from the default start. The cut does not depend on the number of workers, so the results
are identical whatever the executor, and a resumed run recomputes exactly the unfinished
segments (journals: :class:`saddle.checkpoint.CsvJournal`). Paths, optima and their numerics:
docs/numerics.md §5.

The rest of what this module used to hold lives in modules of one job each, and every name is
still importable from here:

- :mod:`replica.curves`: the Python API of theory curves (:class:`Curve`, :func:`teacher_curve`,
  :func:`student_curve`);
- :mod:`replica.points`: the physics of one point (the row of each model, the ``chi = 0``
  equivalence, :func:`best_direct_ridge`);
- :mod:`replica.tables`: rows, columns and CSV files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from replica.params import PARAMETERS, split_params
from replica.points import best_direct_ridge, minimise, point_solver
from replica.student import StudentParams
from saddle.continuation import continuation
from saddle.results import ValueEquality


@dataclass(frozen=True)
class Optimise:
    """At each point, minimise an observable over one parameter (bounded 1-D search).

    Attributes
    ----------
    parameter : str
        The parameter optimised (e.g. ``"lam"``, ``"lam_s"``, ``"chi"``).
    lower, upper : float
        Search interval.
    log : bool
        Search in ``log10`` of the parameter (for ridge strengths).
    objective : str
        Column minimised (default the test error ``eps_g``).
    xatol : float
        Absolute tolerance of the search (in ``log10`` units when ``log``).
    """

    parameter: str
    lower: float
    upper: float
    log: bool = True
    objective: str = "eps_g"
    xatol: float = 1e-3

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class PathTask(ValueEquality):
    """One segment of a path: points solved in order with warm starts.

    Attributes
    ----------
    model : {"teacher", "student", "direct"}
    vary : str
        The parameter that changes along the path.
    keys : tuple of dict
        Identifying columns of each point's row (e.g. ``{"series": "a", "index": 3}``).
    values : tuple of float
        Values of ``vary``, one per point.
    fixed : dict
        The other model parameters and solver options.
    optimise : Optimise, optional
        Minimise an observable over a parameter at every point instead of solving once.
    extras : tuple of str
        Derived columns added to each row: ``"kd_gain"`` (student only) adds the best direct
        ridge student's error ``eps_ridge_best`` at its optimal ``lam_ridge_best`` (trained on
        the labels alone with the student's own label loss) and
        ``kd_gain = eps_g - eps_ridge_best`` (negative where distillation beats any ridge).
    """

    model: str
    vary: str
    keys: tuple
    values: tuple
    fixed: dict
    optimise: Optimise | None = None
    extras: tuple = ()

    def __len__(self) -> int:
        return len(self.values)


class _Point:
    """A solved point for :func:`saddle.continuation.continuation`: row + warm-start state."""

    def __init__(self, row: dict, state, converged: bool):
        self.row, self.state, self.converged = row, state, converged


def solve_path(task: PathTask) -> list[dict]:
    """Solve one segment (module-level, so process pools and Dask can run it).

    Returns one row per point: the key columns, the varied parameter, then the observables
    (and, with ``optimise``, the optimal value of the optimised parameter in its column).
    """
    solve = point_solver(task.model, task.vary, task.fixed)
    spec = task.optimise

    def solve_value(value: float, previous):
        values = {task.vary: value}
        if spec is None:
            row, state, ok = solve(values, previous)
        else:
            row, state, ok = minimise(solve, values, previous, spec)
        return _Point(row, state, ok)

    parameter = PARAMETERS.get(task.vary)
    geometric = parameter is not None and parameter.geometric
    points = continuation(solve_value, list(task.values), geometric=geometric, predict=True)
    rows = []
    for key, value, point in zip(task.keys, task.values, points, strict=True):
        row = {**key, task.vary: value}
        row.update({k: v for k, v in point.row.items() if k not in row})
        if spec is not None:
            row[spec.parameter] = point.row[spec.parameter]
        if "kd_gain" in task.extras:
            params = StudentParams(**split_params(StudentParams, {**task.fixed,
                                                                   task.vary: value})[0])
            best = best_direct_ridge(params.alpha, params.rho, params.delta, params.eta,
                                     params.smoothing, params.loss)  # fmt: skip
            row.update(eps_ridge_best=best[1], lam_ridge_best=best[0],
                       kd_gain=float(row["eps_g"]) - best[1])  # fmt: skip
        rows.append(row)
    return rows


def path_tasks(
    model: str,
    vary: str,
    values: Sequence[float],
    fixed: dict,
    *,
    key: dict | None = None,
    segment: int = 8,
    optimise: Optimise | None = None,
    extras: tuple = (),
    index_name: str = "index",
) -> list[PathTask]:
    """Cut a path into :class:`PathTask` segments (keys: ``{**key, index_name: i}``)."""
    from saddle.executor import segments

    key = key or {}
    values = [float(v) for v in values]
    indexed = list(enumerate(values))
    return [
        PathTask(model, vary, tuple({**key, index_name: i} for i, _ in seg),
                 tuple(v for _, v in seg), dict(fixed), optimise, tuple(extras))  # fmt: skip
        for seg in segments(indexed, segment)
    ]


def run_tasks(
    tasks: Sequence[PathTask],
    *,
    executor=None,
    journal=None,
    progress=None,
) -> list[dict]:
    """Run segments through ``executor``, journaling rows as each segment finishes.

    Parameters
    ----------
    tasks : sequence of PathTask
    executor : concurrent.futures.Executor, optional
        Default: in-process, serial.
    journal : saddle.checkpoint.CsvJournal, optional
        Finished rows are appended to it at once; segments whose points are all in it already
        are skipped (resume). It is finalised (sorted) at the end.
    progress : callable, optional
        ``progress(n_points)`` after each finished segment (e.g. ``tqdm.update``), including
        once for the points found done at the start.

    Returns
    -------
    list of dict
        Without a journal, the rows (values as computed) in task order; with a journal, its
        rows in key order as cell texts (use :func:`replica.tables.rows_to_columns`).
    """
    from saddle.executor import SerialExecutor, map_unordered

    executor = executor or SerialExecutor()
    pending = list(tasks)
    if journal is not None:
        done = journal.done
        pending = [t for t in tasks if not all(journal.key_of(k) in done for k in t.keys)]
        skipped = sum(len(t) for t in tasks) - sum(len(t) for t in pending)
        if progress is not None and skipped:
            progress(skipped)

    def finished(_index: int, rows: list[dict]) -> None:
        if journal is not None:
            journal.append(rows)
        if progress is not None:
            progress(len(rows))

    results = map_unordered(solve_path, pending, executor=executor, on_result=finished)
    if journal is None:
        return [row for rows in results for row in rows]
    journal.finalize()
    return journal.rows()


# ----------------------------------------------------------------------------------------------
# Former contents, now in their own modules (importable from here as before)
# ----------------------------------------------------------------------------------------------

from replica.curves import (  # noqa: E402, F401
    STUDENT_VARIABLES,
    TEACHER_VARIABLES,
    Curve,
    _check_vary,
    _curve,
    as_array,
    student_curve,
    teacher_curve,
    validate_path,
)
from replica.points import DIRECT_VARIABLES  # noqa: E402, F401
from replica.points import direct_solver as _direct_solver  # noqa: E402, F401
from replica.points import minimise as _minimise  # noqa: E402, F401
from replica.points import point_solver as _point_solver  # noqa: E402, F401
from replica.points import student_row as _student_row  # noqa: E402, F401
from replica.points import teacher_row as _teacher_row  # noqa: E402, F401
from replica.student import StudentSolution, solve_student  # noqa: E402, F401
from replica.tables import columns_of as _columns  # noqa: E402, F401
from replica.tables import csv_value as _csv_value  # noqa: E402, F401
from replica.tables import parse_cell, rows_to_columns, write_columns_csv  # noqa: E402, F401
from replica.teacher import TeacherParams, TeacherSolution, solve_teacher  # noqa: E402, F401
