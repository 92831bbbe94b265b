"""The physics of one point of a path: solve a model there and turn the solution into a row.

A path (:mod:`replica.sweep`) is a sequence of points solved with warm starts; here is what a
point is for each model:

- ``"teacher"``: :func:`replica.teacher.solve_teacher`;
- ``"student"``: :func:`replica.student.solve_student`, its ridge teacher solved (warm) only
  when one of the teacher's parameters changes along the path;
- ``"direct"``: the student trained on the labels alone (``chi = 0``), through its exact
  equivalence with the teacher problem at ``(alpha/eta, delta/eta, lam_s/eta^2)``;

and, at every point, optionally the minimum of an observable over one parameter
(:func:`minimise`), and the best direct ridge student (:func:`best_direct_ridge`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from replica.errors import bayes_optimal_error
from replica.params import default, split_params
from replica.prior import sparse_equivalent_problem
from replica.stages import teacher_kind
from replica.student import StudentParams, StudentSolution, solve_student
from replica.teacher import TeacherParams, TeacherSolution, solve_teacher

#: ``solve(values: dict, previous_state) -> (row, state, ok)``
PointSolver = Callable[[dict, object], tuple[dict, object, bool]]


def teacher_row(sol: TeacherSolution) -> dict:
    """The row of a teacher point: its observables and convergence report."""
    return sol.to_row()


def student_row(sol: StudentSolution) -> dict:
    """The row of a student point: its observables, its teacher's with prefix ``teacher_``
    and the two Bayes-optimal bounds."""
    return sol.to_row()


def point_solver(model: str, vary: str, fixed: dict) -> PointSolver:
    """``solve(values: dict, previous_state) -> (row, state, ok)`` for one model.

    ``ok`` is True when the point converged or has no finite solution (status 3: nothing to
    retry); ``state`` (None unless converged) warm-starts the next point.
    """
    if model == "teacher":
        base, options = split_params(TeacherParams, fixed)

        def solve_teacher_point(values: dict, previous):
            sol = solve_teacher(**{**base, **values}, initial=previous, warn=False, **options)
            ok = sol.converged
            return teacher_row(sol), (sol.state if ok else None), ok or not sol.finite

        return solve_teacher_point
    if model == "direct":
        return direct_solver(fixed)
    base, options = split_params(StudentParams, fixed)
    teacher_options = {k: options.pop(k) for k in list(options) if k.startswith("teacher_")}
    teacher_kw = {k[len("teacher_"):]: v for k, v in teacher_options.items()}
    cache: dict[tuple, TeacherSolution] = {}

    def solve_student_point(values: dict, previous):
        params = StudentParams(**{**base, **values})
        teacher = None
        kind = teacher_kind(params.teacher)
        if kind.fitted:  # solved once per value of what it depends on (kind.key)
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
        return student_row(sol), state, ok or not sol.finite

    return solve_student_point


DIRECT_VARIABLES = ("alpha", "rho", "delta", "eta", "lam_s", "smoothing")
#: The direct student's parameters: its variables and its (label) loss.
DIRECT_PARAMETERS = (*DIRECT_VARIABLES, "loss")


def direct_solver(fixed: dict) -> PointSolver:
    """The student trained on the labels alone (``chi = 0``), through its exact equivalence
    with the teacher problem at ``(alpha/eta, delta/eta, lam_s/eta^2)``
    (docs/saddle_point.md §7; the same ``m``, ``b`` and ``eps_g``, and ``q = q_teacher / eta``).
    Model name ``"direct"``."""
    base = {name: default(name) for name in DIRECT_PARAMETERS if name != "alpha"}
    base.update({k: v for k, v in fixed.items() if k in DIRECT_PARAMETERS})
    options = {k: v for k, v in fixed.items()
               if k not in DIRECT_PARAMETERS and k not in StudentParams.__dataclass_fields__}

    def solve_direct_point(values: dict, previous):
        p = {**base, **values}
        params = StudentParams(p["alpha"], p["rho"], p["delta"], p["eta"], lam_s=p["lam_s"],
                               chi=0.0, smoothing=p["smoothing"], loss=p["loss"])  # validates
        eta = params.eta
        alpha_eq, delta_eq, lam_eq = sparse_equivalent_problem(params.alpha, params.delta, eta,
                                                               params.lam_s)  # fmt: skip
        sol = solve_teacher(alpha_eq, params.rho, delta_eq, lam_eq, params.smoothing,
                            initial=previous, warn=False, loss=params.loss,
                            **options)  # fmt: skip
        row = teacher_row(sol)
        row.pop("eps_bo", None)
        # (V, mhat, ... stay those of the equivalent teacher problem)
        row.update(q=sol.q / eta,
                   eps_bo_student=bayes_optimal_error(params.alpha, params.mixture, eta=eta))
        ok = sol.converged
        return row, (sol.state if ok else None), ok or not sol.finite

    return solve_direct_point


def minimise(solve: PointSolver, values: dict, previous, spec):
    """Bounded minimisation of ``spec.objective`` over ``spec.parameter`` (Brent, bounded).

    ``spec`` is a :class:`replica.sweep.Optimise`.
    """
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


def best_direct_ridge(alpha: float, rho: float = default("rho"), delta: float = default("delta"),
                      eta: float = default("eta"), smoothing: float = default("smoothing"),
                      loss: str = default("loss"), *, lower: float = 1e-5,
                      upper: float = 10.0) -> tuple[float, float]:  # fmt: skip
    """``(lam*, eps*)``: the student trained on the labels (``chi = 0``) at its best ``lam_s``.

    ``loss`` is the student's label loss (a row of :mod:`replica.losses`): the baseline of a
    distilled student is the same student without its teacher. Uses the exact equivalence of
    the ``chi = 0`` student with the teacher problem of that loss at
    ``(alpha/eta, delta/eta, lam_s/eta^2)`` (docs/saddle_point.md §7), and a bounded search in
    ``log10 lam_s`` over ``[lower, upper]`` (boundaries included).
    """
    from scipy.optimize import minimize_scalar

    state = [None]
    cache: dict[float, float] = {}

    def error(u: float) -> float:
        if u not in cache:
            alpha_eq, delta_eq, lam_eq = sparse_equivalent_problem(alpha, delta, eta, 10.0**u)
            sol = solve_teacher(alpha_eq, rho, delta_eq, lam_eq, smoothing, loss=loss,
                                initial=state[0], warn=False)  # fmt: skip
            if sol.converged:
                state[0] = sol.state
            cache[u] = sol.eps_g if sol.converged else math.inf
        return cache[u]

    lo, hi = math.log10(lower), math.log10(upper)
    res = minimize_scalar(error, bounds=(lo, hi), method="bounded", options={"xatol": 1e-3})
    candidates = [(error(u), u) for u in (lo, hi, float(res.x))]
    eps, u = min(candidates)
    return 10.0**u, eps
