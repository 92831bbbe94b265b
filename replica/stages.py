"""The teacher protocol: what a stage of distillation needs from the stage that teaches it.

A student sees its teacher only through (paper App. A.2-A.3):

- the teacher's order parameters ``(m~, q~, V~, b~)``: overlap with the cluster direction,
  self-overlap, susceptibility (``V~ = 0`` for a stage *not fitted* to the training samples,
  e.g. the Bayes-optimal proxy) and bias; the teacher's cavity field on a training sample is
  ``om~ = s m~ + b~ + sqrt(delta q~) z``;
- its fields on the quadrature nodes ``z`` of that cavity field (:class:`NodeFields`): the
  trained preactivation ``h~*``, the response ``f~ = (h~* - om~)/V~``, and the derivatives
  ``r~ = dh~*/d om~`` and ``g~ = -df~/d om~`` (``h~* = om~``, ``f~ = g~ = 0``, ``r~ = 1`` when
  ``V~ = 0``).

Every stage implements :class:`Stage` — the ridge teacher of any loss
(:class:`replica.teacher.TeacherSolution`), the Bayes-optimal proxy (a ``TeacherSolution``
with ``V = 0``) and a solved student (:class:`replica.student.StudentSolution`, whose fields
live on the grid of its two Gaussian directions) — so that a chain of distillation is a list
of stages.

:data:`TEACHER_KINDS` is the one registry of teacher kinds, shared by the theory
(:func:`replica.student.solve_student`), the simulations (:mod:`simulations.monte_carlo`),
the sweeps and the command line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class NodeFields:
    """A stage's fields on training samples at the nodes of its cavity field.

    What a stage needs from its teacher: docs/saddle_point.md §3 (paper App. A.2).

    Arrays of shape ``(2, n)`` (class ``y = 1, 0``; node), or ``(2, n1, n2)`` for a student.

    Attributes
    ----------
    h : trained preactivation ``h*``
    f : response ``(h* - omega) / V`` (0 for a stage not fitted to the samples)
    r : ``dh*/d omega`` (in [0, 1]; 0 on a kink of the loss)
    g : ``-df/d omega = (1 - r) / V`` (``L''(h*) r`` for a smooth loss)
    """

    h: np.ndarray
    f: np.ndarray
    r: np.ndarray
    g: np.ndarray

    def __iter__(self):
        """``h, f, r, g = fields`` (the order of the channel functions' arguments)."""
        return iter((self.h, self.f, self.r, self.g))


@runtime_checkable
class Stage(Protocol):
    """What a stage offers the stage it teaches (module docstring).

    Equations: docs/saddle_point.md §2-6 (paper App. A.1-A.3).
    """

    m: float
    q: float
    V: float
    b: float

    def node_fields(self, *z: np.ndarray) -> NodeFields: ...


@dataclass(frozen=True)
class TeacherKind:
    """A kind of teacher a student can be distilled from.

    Attributes
    ----------
    name : str
        Registry key (``StudentParams.teacher``, ``--teacher`` on the command line).
    help : str
        One line for help texts.
    parameters : tuple of str
        The student-problem parameters (besides ``alpha, rho, delta``) the teacher depends
        on: the cache key of a solved teacher along a sweep.
    fitted : bool
        Whether the teacher is fitted to the student's training samples (``V~ > 0``).
    """

    name: str
    help: str
    parameters: tuple[str, ...]
    fitted: bool
    _theory: Callable | None = None

    def solve_theory(self, params, *, warn: bool = True, **options):
        """The teacher's :class:`Stage` for a :class:`replica.student.StudentParams`."""
        return self._theory(params, warn=warn, **options)

    def key(self, params) -> tuple:
        """What the teacher depends on (its cache key along a sweep)."""
        return (self.name, params.alpha, params.rho, params.delta,
                *(getattr(params, name) for name in self.parameters))  # fmt: skip


def _ridge_theory(params, *, warn: bool = True, **options):
    from replica.params import teacher_values
    from replica.teacher import solve_teacher

    # (the teacher's ridge is lam_t in the student problem: teacher_values maps it to lam)
    return solve_teacher(**teacher_values(params), loss=params.teacher_loss, warn=warn,
                         **options)  # fmt: skip


def _bayes_theory(params, *, warn: bool = True, **options):
    from replica.student import bayes_teacher_solution

    return bayes_teacher_solution(params.alpha, params.rho, params.delta)


TEACHER_KINDS: dict[str, TeacherKind] = {
    kind.name: kind
    for kind in (
        TeacherKind("ridge", "ridge-regularised teacher trained on the labels (any loss)",
                    ("lam_t", "smoothing", "teacher_loss"), True, _ridge_theory),
        TeacherKind("bayes", "Bayes-optimal proxy teacher (paper Eq. 23-24), not fitted",
                    (), False, _bayes_theory),
    )
}  # fmt: skip


def teacher_kind(name: str) -> TeacherKind:
    """The registered :class:`TeacherKind` called ``name`` (``KeyError`` if none)."""
    return TEACHER_KINDS[name]
