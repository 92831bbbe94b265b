"""kd-replica: the physics of solvable knowledge-distillation models.

Public API (imported lazily, so the command line starts fast)::

    solve_teacher, solve_student, bayes_optimal_error, generalisation_error,
    teacher_curve, student_curve, GaussianMixture, TeacherParams, StudentParams,
    ParameterError, agreement
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "solve_teacher": "replica.teacher",
    "TeacherParams": "replica.teacher",
    "TeacherSolution": "replica.teacher",
    "solve_student": "replica.student",
    "StudentParams": "replica.student",
    "StudentSolution": "replica.student",
    "bayes_optimal_error": "replica.errors",
    "generalisation_error": "replica.errors",
    "teacher_curve": "replica.curves",
    "student_curve": "replica.curves",
    "GaussianMixture": "replica.params",
    "ParameterError": "replica.params",
    "agreement": "replica.observables",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'replica' has no attribute {name!r}")


def __dir__():
    return __all__
