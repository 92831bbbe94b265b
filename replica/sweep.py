"""Theory curves along one parameter, as columns ready for CSV or pandas.

Paths, optima and their numerics: docs/numerics.md §5.

``teacher_curve("alpha", values, lam=0.1)`` walks the path with warm starts
(:func:`saddle.continuation.continuation`) and returns a :class:`Curve` whose ``columns`` map
each observable to a list (one entry per value).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from replica.errors import bayes_optimal_error
from replica.params import ParameterError
from replica.prior import sparse_equivalent_problem
from replica.stages import teacher_kind
from replica.student import StudentParams, StudentSolution, solve_student
from replica.teacher import TeacherParams, TeacherSolution, solve_teacher
from saddle.continuation import continuation

TEACHER_VARIABLES = ("alpha", "rho", "delta", "lam", "smoothing")
STUDENT_VARIABLES = (
    "alpha", "rho", "delta", "eta", "lam_t", "lam_s", "chi", "temperature", "smoothing",
)  # fmt: skip


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


def split_params(params_class, fixed: dict) -> tuple[dict, dict]:
    """Split keyword arguments into ``params_class`` fields and the rest (solver options)."""
    fields = params_class.__dataclass_fields__
    base = {k: v for k, v in fixed.items() if k in fields}
    return base, {k: v for k, v in fixed.items() if k not in fields}


def validate_path(params_class, vary: str, values: Iterable[float], fixed: dict) -> None:
    """Construct ``params_class`` at every value of the path: fail fast, before a long sweep.

    Raises :class:`ParameterError` for an empty path or an invalid value (repeated values are
    fine: the same point repeated)."""
    base, _ = split_params(params_class, fixed)
    values = list(values)
    if not values:
        raise ParameterError("values must hold at least one value of the swept parameter; "
                             "got an empty path")
    for value in values:
        params_class(**{**base, vary: float(value)})


def _curve(model: str, params_class, allowed: Sequence[str], vary: str,
           values: Iterable[float], fixed: dict) -> Curve:  # fmt: skip
    """One warm-started path solved in order, in process (:func:`solve_path`, one segment)."""
    vary = _check_vary(vary, allowed)
    values = [float(v) for v in values]
    validate_path(params_class, vary, values, fixed)
    rows = solve_path(path_tasks(model, vary, values, fixed, segment=max(len(values), 1))[0])
    rows = [{k: v for k, v in row.items() if k != "index"} for row in rows]
    return Curve(model, vary, split_params(params_class, fixed)[0], _columns(rows))


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


# ----------------------------------------------------------------------------------------------
# Segmented, resumable sweeps through an executor
# ----------------------------------------------------------------------------------------------
#
# A path (or a row of a phase diagram, or a series of a figure) is cut into segments of fixed
# length (saddle.executor.segments); a segment is one task: its points are solved in order with
# warm starts (saddle.continuation), the first from the default start. The cut does not depend
# on the number of workers, so the results are identical whatever the executor, and a resumed
# run recomputes exactly the unfinished segments.


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


@dataclass(frozen=True)
class PathTask:
    """One segment of a path: points solved in order with warm starts.

    Attributes
    ----------
    model : {"teacher", "student"}
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
        ridge student's error ``eps_ridge_best`` at its optimal ``lam_ridge_best`` and
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


def _teacher_row(sol: TeacherSolution) -> dict:
    return sol.to_dict()


def _student_row(sol: StudentSolution) -> dict:
    row = sol.student_dict()
    row.update({f"teacher_{k}": v for k, v in sol.teacher.to_dict().items() if k != "eps_bo"})
    row.update(eps_bo_student=sol.eps_bo_student, eps_bo_teacher=sol.eps_bo_teacher)
    return row


def _point_solver(model: str, vary: str, fixed: dict):
    """``solve(values: dict, previous_state) -> (row, state, converged)`` for one model."""
    if model == "teacher":
        base, options = split_params(TeacherParams, fixed)

        def solve_teacher_point(values: dict, previous):
            sol = solve_teacher(**{**base, **values}, initial=previous, warn=False, **options)
            ok = sol.converged
            return _teacher_row(sol), (sol.state if ok else None), ok or not sol.finite

        return solve_teacher_point
    if model == "direct":
        return _direct_solver(fixed)
    base, options = split_params(StudentParams, fixed)
    teacher_options = {k: options.pop(k) for k in list(options) if k.startswith("teacher_")}
    teacher_kw = {k[len("teacher_"):]: v for k, v in teacher_options.items()}
    cache: dict[tuple, TeacherSolution] = {}

    def solve_student_point(values: dict, previous):
        params = StudentParams(**{**base, **values})
        teacher = None
        kind = teacher_kind(params.teacher)
        if kind.fitted:
            key = kind.key(params)
            teacher = cache.get(key)
            if teacher is None:
                warm = None if previous is None else previous[0]
                teacher = kind.solve_theory(params, initial=warm, warn=False, **teacher_kw)
                cache.clear()
                cache[key] = teacher
        sol = solve_student(
            **{**base, **values}, teacher_solution=teacher,
            initial=None if previous is None else previous[1], warn=False, **options,
        )  # fmt: skip
        ok = sol.converged and sol.teacher.converged
        state = (sol.teacher.state, sol.state) if ok else None
        return _student_row(sol), state, ok or not sol.finite

    return solve_student_point


DIRECT_VARIABLES = ("alpha", "rho", "delta", "eta", "lam_s", "smoothing")


def _direct_solver(fixed: dict):
    """The student trained on the labels alone (``chi = 0``), through its exact equivalence
    with the teacher problem at ``(alpha/eta, delta/eta, lam_s/eta^2)``
    (docs/saddle_point.md §7; the same ``m``, ``b`` and ``eps_g``, and ``q = q_teacher / eta``).
    Model name ``"direct"``."""
    base = {"rho": 0.2, "delta": 1.0, "eta": 0.5, "lam_s": 1e-4, "smoothing": 0.0}
    base.update({k: v for k, v in fixed.items() if k in DIRECT_VARIABLES})
    options = {k: v for k, v in fixed.items()
               if k not in DIRECT_VARIABLES and k not in StudentParams.__dataclass_fields__}

    def solve_direct_point(values: dict, previous):
        p = {**base, **values}
        params = StudentParams(p["alpha"], p["rho"], p["delta"], p["eta"], lam_s=p["lam_s"],
                               chi=0.0, smoothing=p["smoothing"])  # validates
        eta = params.eta
        alpha_eq, delta_eq, lam_eq = sparse_equivalent_problem(params.alpha, params.delta, eta,
                                                               params.lam_s)  # fmt: skip
        sol = solve_teacher(alpha_eq, params.rho, delta_eq, lam_eq, params.smoothing,
                            initial=previous, warn=False, loss=params.loss,
                            **options)  # fmt: skip
        row = sol.to_dict()
        row.pop("eps_bo", None)
        # (V, mhat, ... stay those of the equivalent teacher problem)
        row.update(q=sol.q / eta,
                   eps_bo_student=bayes_optimal_error(params.alpha, params.mixture, eta=eta))
        ok = sol.converged
        return row, (sol.state if ok else None), ok or not sol.finite

    return solve_direct_point


def _minimise(solve, values: dict, previous, spec: Optimise):
    """Bounded minimisation of ``spec.objective`` over ``spec.parameter`` (Brent, bounded)."""
    from scipy.optimize import minimize_scalar

    best: dict = {}
    warm = [previous]

    def objective(u: float) -> float:
        x = 10.0**u if spec.log else u
        row, state, ok = solve({**values, spec.parameter: x}, warm[0])
        value = float(row[spec.objective])
        if ok and state is not None:
            warm[0] = state
        if not (ok and math.isfinite(value)):
            value = math.inf
        if not best or value < best["value"]:
            best.update(value=value, row=row, state=state, ok=ok, x=x)
        return value

    lo, hi = (math.log10(spec.lower), math.log10(spec.upper)) if spec.log else (
        spec.lower, spec.upper)  # fmt: skip
    minimize_scalar(objective, bounds=(lo, hi), method="bounded",
                    options={"xatol": spec.xatol})  # fmt: skip
    for edge in (lo, hi):  # the optimum may sit on a boundary (e.g. chi* = 0)
        objective(edge)
    row = {**best["row"], spec.parameter: best["x"]}
    return row, best["state"], best["ok"]


def solve_path(task: PathTask) -> list[dict]:
    """Solve one segment (module-level, so process pools and Dask can run it).

    Returns one row per point: the key columns, the varied parameter, then the observables
    (and, with ``optimise``, the optimal value of the optimised parameter in its column).
    """
    solve = _point_solver(task.model, task.vary, task.fixed)
    spec = task.optimise

    def solve_value(value: float, previous):
        values = {task.vary: value}
        if spec is None:
            row, state, ok = solve(values, previous)
        else:
            row, state, ok = _minimise(solve, values, previous, spec)
        return _Point(row, state, ok)

    geometric = task.vary in ("lam", "lam_t", "lam_s", "temperature")
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
                                     params.smoothing)  # fmt: skip
            row.update(eps_ridge_best=best[1], lam_ridge_best=best[0],
                       kd_gain=float(row["eps_g"]) - best[1])  # fmt: skip
        rows.append(row)
    return rows


def best_direct_ridge(alpha: float, rho: float = 0.2, delta: float = 1.0, eta: float = 0.5,
                      smoothing: float = 0.0, *, lower: float = 1e-5,
                      upper: float = 10.0) -> tuple[float, float]:  # fmt: skip
    """``(lam*, eps*)``: the student trained on the labels (``chi = 0``) at its best ``lam_s``.

    Uses the exact equivalence of the ``chi = 0`` student with the teacher problem at
    ``(alpha/eta, delta/eta, lam_s/eta^2)`` (docs/saddle_point.md §7), and a bounded search in
    ``log10 lam_s`` over ``[lower, upper]`` (boundaries included).
    """
    from scipy.optimize import minimize_scalar

    state = [None]
    cache: dict[float, float] = {}

    def error(u: float) -> float:
        if u not in cache:
            alpha_eq, delta_eq, lam_eq = sparse_equivalent_problem(alpha, delta, eta, 10.0**u)
            sol = solve_teacher(alpha_eq, rho, delta_eq, lam_eq, smoothing, initial=state[0],
                                warn=False)  # fmt: skip
            if sol.converged:
                state[0] = sol.state
            cache[u] = sol.eps_g if sol.converged else math.inf
        return cache[u]

    lo, hi = math.log10(lower), math.log10(upper)
    res = minimize_scalar(error, bounds=(lo, hi), method="bounded", options={"xatol": 1e-3})
    candidates = [(error(u), u) for u in (lo, hi, float(res.x))]
    eps, u = min(candidates)
    return 10.0**u, eps


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
        rows in key order as cell texts (use :func:`rows_to_columns`).
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
