"""Symbolic layer: RS free entropies, derived saddle-point equations and closed forms (sympy).

- :mod:`~replica.symbolic.symbols`: symbols in the numeric code's conventions, LaTeX names;
- :mod:`~replica.symbolic.expectation`: the disorder average ``E[.]``, integration by parts;
- :mod:`~replica.symbolic.moreau`: Moreau envelopes / proximal responses and their derivatives;
- :mod:`~replica.symbolic.free_entropy`: teacher and student free entropies (paper App. A);
- :mod:`~replica.symbolic.derive`: saddle-point equations by differentiation, LaTeX output;
- :mod:`~replica.symbolic.closed_forms`: square loss, Bayes-optimal error, KD-loss curvatures,
  the ``chi = 0`` equivalence;
- :mod:`~replica.symbolic.chain`: the RS free entropy of a distillation chain (every stage,
  docs/chains.md) and its saddle point; :mod:`~replica.symbolic.chain_check` evaluates it at a
  fixed point of :mod:`replica.chain` with independent numerics.
"""

from replica.symbolic.derive import (
    STUDENT_PRIOR_ARGS,
    TEACHER_PRIOR_ARGS,
    SaddlePoint,
    equations_latex,
    student_saddle_point,
    teacher_conjugates_from_overlaps,
    teacher_saddle_point,
)
from replica.symbolic.expectation import Expectation
from replica.symbolic.free_entropy import (
    paper_student_entropic_terms,
    ridge_entropic_term,
    student_entropic_term,
    student_free_entropy,
    teacher_free_entropy,
)
from replica.symbolic.symbols import latex

__all__ = [
    "STUDENT_PRIOR_ARGS",
    "TEACHER_PRIOR_ARGS",
    "Expectation",
    "SaddlePoint",
    "equations_latex",
    "latex",
    "paper_student_entropic_terms",
    "ridge_entropic_term",
    "student_entropic_term",
    "student_free_entropy",
    "student_saddle_point",
    "teacher_conjugates_from_overlaps",
    "teacher_free_entropy",
    "teacher_saddle_point",
]
