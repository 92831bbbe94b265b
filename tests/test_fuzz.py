"""Fuzz test of the replica solvers over the whole documented parameter ranges (issue 13).

Every random valid point must come back either converged and sane, or as an explicit
non-convergence with a status (1 iteration budget, 3 no finite solution, 4 quadrature not
resolved), never as an exception. Converged and sane means: finite, ``0 <= eps_g <=
max(rho, 1 - rho)``, ``q > 0``, ``S^2 <= q q~``, never below the Bayes-optimal error of its
support when the teacher was trained on the same samples (a Bayes-optimal *proxy* teacher's
noise is independent of the samples: distilling it can beat the student's own Bayes-optimal
error, see :func:`replica.student.solve_student`), and unchanged to 1e-8 in ``eps_g`` when the
quadrature is refined. Every random invalid input must raise a ``ParameterError`` naming the
parameter.

CI runs a few seeded points; ``KD_REPLICA_FUZZ=N`` runs ``N`` points of each kind (teacher,
student, invalid input) for a long local run, e.g. ``KD_REPLICA_FUZZ=300 pytest tests/test_fuzz.py``
(``KD_REPLICA_FUZZ_SEED`` changes the seed).
"""

from __future__ import annotations

import math
import os
import warnings

import numpy as np
import pytest

from replica.params import ParameterError
from replica.student import MIN_TEMPERATURE, solve_student
from replica.teacher import solve_teacher

LONG = int(os.environ.get("KD_REPLICA_FUZZ", "0"))
SEED = int(os.environ.get("KD_REPLICA_FUZZ_SEED", "2026"))
N_TEACHER = LONG or 24
N_STUDENT = LONG or 6
N_INVALID = LONG or 40
# Refined quadrature: more Gauss-Hermite nodes, each checked against twice as many.
REFINED_TEACHER = dict(n_nodes=160)
REFINED_STUDENT = dict(n_nodes=(128, 96))
EPS_TOL = 1e-8
STATUSES = {0, 1, 3, 4}


def _ridge(rng: np.random.Generator) -> float:
    """A ridge strength: exactly 0 one time in five, else log-uniform in [1e-6, 10]."""
    return 0.0 if rng.random() < 0.2 else float(10 ** rng.uniform(-6, 1))


def _smoothing(rng: np.random.Generator) -> float:
    return 0.0 if rng.random() < 0.5 else float(rng.uniform(0.0, 0.49))


def teacher_point(rng: np.random.Generator) -> dict:
    return dict(
        alpha=float(10 ** rng.uniform(-1.5, 1.5)), rho=float(rng.uniform(0.02, 0.98)),
        delta=float(10 ** rng.uniform(-1.5, 1.3)), lam=_ridge(rng), smoothing=_smoothing(rng),
    )  # fmt: skip


def student_point(rng: np.random.Generator) -> dict:
    u = rng.random()
    chi = 0.0 if u < 0.2 else 1.0 if u < 0.4 else float(rng.uniform(0.0, 1.0))
    return dict(
        alpha=float(10 ** rng.uniform(-1.5, 1.5)), rho=float(rng.uniform(0.02, 0.98)),
        delta=float(10 ** rng.uniform(-1.5, 1.3)),
        eta=1.0 if rng.random() < 0.2 else float(rng.uniform(0.05, 1.0)),
        lam_t=_ridge(rng), lam_s=_ridge(rng), chi=chi,
        temperature=float(10 ** rng.uniform(math.log10(MIN_TEMPERATURE), 1.3)),
        t2_scaling=bool(rng.random() < 0.5), smoothing=_smoothing(rng),
        teacher="bayes" if rng.random() < 0.5 else "ridge",
    )  # fmt: skip


def points(kind, n: int, offset: int) -> list[dict]:
    rng = np.random.default_rng([SEED, offset])
    return [kind(rng) for _ in range(n)]


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def check_teacher(point: dict) -> str:
    """Raise AssertionError if the teacher's answer at ``point`` is not acceptable; returns
    a one-word outcome for statistics."""
    sol = _quiet(solve_teacher, **point)
    assert sol.status in STATUSES, sol.report.message
    if not sol.converged:
        return f"status {sol.status}"
    rho = point["rho"]
    values = (sol.eps_g, sol.m, sol.q, sol.V, sol.b, sol.train_loss, sol.train_error)
    assert all(math.isfinite(v) for v in values)
    assert 0.0 <= sol.eps_g <= max(rho, 1.0 - rho) + 1e-12
    assert sol.q > 0.0 and sol.V > 0.0
    assert sol.eps_g >= sol.eps_bo - 1e-9, (sol.eps_g, sol.eps_bo)
    refined = _quiet(solve_teacher, **point, **REFINED_TEACHER, initial=sol.state)
    assert refined.converged, refined.report.message
    assert abs(refined.eps_g - sol.eps_g) <= EPS_TOL, (sol.eps_g, refined.eps_g)
    return "converged"


def check_student(point: dict) -> str:
    """As :func:`check_teacher`, for the distilled student."""
    sol = _quiet(solve_student, **point)
    assert sol.status in STATUSES, sol.report.message
    if not sol.converged:
        return f"status {sol.status}"
    rho = point["rho"]
    values = (sol.eps_g, sol.m, sol.q, sol.V, sol.b, sol.train_loss, sol.train_error)
    assert all(math.isfinite(v) for v in values)
    assert 0.0 <= sol.eps_g <= max(rho, 1.0 - rho) + 1e-12
    assert sol.q > 0.0 and sol.V > 0.0
    if math.isfinite(sol.S):  # NaN only at chi = 0 with a teacher without finite solution
        assert sol.S**2 <= sol.q * sol.teacher.q * (1.0 + 1e-9)
    else:
        assert point["chi"] == 0.0 and not sol.teacher.finite
    trained_on_the_samples = point["teacher"] == "ridge" or point["chi"] == 0.0
    if trained_on_the_samples:
        assert sol.eps_g >= sol.eps_bo_student - 1e-9, (sol.eps_g, sol.eps_bo_student)
    refined = _quiet(solve_student, **point, **REFINED_STUDENT, initial=sol.state)
    assert refined.converged, refined.report.message
    assert abs(refined.eps_g - sol.eps_g) <= EPS_TOL, (sol.eps_g, refined.eps_g)
    return "converged"


@pytest.mark.parametrize("point", points(teacher_point, N_TEACHER, 0), ids=lambda p: "")
def test_random_valid_teacher_point(point):
    check_teacher(point)


@pytest.mark.slow
@pytest.mark.parametrize("point", points(student_point, N_STUDENT, 1), ids=lambda p: "")
def test_random_valid_student_point(point):
    check_student(point)


# Invalid values per parameter (name -> values), for the teacher and the student.
INVALID = {
    "alpha": [0.0, -1.0, math.nan, math.inf, "many", None],
    "rho": [0.0, 1.0, 1.5, -0.1, math.nan],
    "delta": [0.0, -2.0, math.inf, math.nan],
    "lam": [-1e-3, math.nan, math.inf],
    "lam_t": [-1e-3, math.nan, math.inf],
    "lam_s": [-1.0, math.nan, math.inf],
    "smoothing": [0.5, -0.1, 1.0, math.nan],
    "eta": [0.0, 1.5, -0.5, math.nan],
    "chi": [-0.1, 1.1, math.nan],
    "temperature": [0.0, -1.0, MIN_TEMPERATURE / 10, math.inf, math.nan],
    "teacher": ["foo", "Bayes", None],
    "n_nodes": [0, 1, 500, 2.5],
}
TEACHER_NAMES = ("alpha", "rho", "delta", "lam", "smoothing", "n_nodes")
STUDENT_NAMES = ("alpha", "rho", "delta", "eta", "lam_t", "lam_s", "chi", "temperature",
                 "smoothing", "teacher", "n_nodes")  # fmt: skip


def invalid_point(rng: np.random.Generator) -> tuple[str, dict, str]:
    """``(model, kwargs, name)``: a valid point with one parameter made invalid."""
    if rng.random() < 0.5:
        model, names, kwargs = "teacher", TEACHER_NAMES, teacher_point(rng)
    else:
        model, names, kwargs = "student", STUDENT_NAMES, student_point(rng)
    name = names[rng.integers(len(names))]
    values = INVALID[name]
    value = values[rng.integers(len(values))]
    if name == "n_nodes" and model == "student":
        value = (64, value) if rng.random() < 0.5 else (value, 24)
    kwargs[name] = value
    return model, kwargs, name


@pytest.mark.parametrize("case", points(invalid_point, N_INVALID, 2), ids=lambda c: c[2])
def test_random_invalid_input_names_the_parameter(case):
    model, kwargs, name = case
    solve = solve_teacher if model == "teacher" else solve_student
    with pytest.raises(ParameterError) as info:
        _quiet(solve, **kwargs)
    assert str(info.value).startswith(name), (name, str(info.value))
