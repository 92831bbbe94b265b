"""Model parameters: one schema, and their validation (docs/model.md §1).

Every model parameter is described once, in :data:`PARAMETERS` (check, default, LaTeX label,
help text, phase-diagram axis range and scale, command-line flag). Generated from it: the
fields and validation of the parameter dataclasses, the simulations' validation and defaults
(:mod:`simulations.monte_carlo`), the command-line flags (:mod:`replica.cli.models`), the
variables of curves and the axes and labels of phase diagrams and plots.

Every public entry point validates its inputs through the helpers here, so a bad value
produces one :class:`ParameterError` whose message names the parameter, e.g.
``rho must lie in (0, 1); got 1.5``.  The command line turns it into a one-line error
with exit code 2.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from replica.stages import TEACHER_KINDS as _TEACHER_REGISTRY


class ParameterError(ValueError):
    """A model or numerical parameter is outside its valid range."""


def _as_float(name: str, value) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a number; got {value!r}") from None
    if math.isnan(x):
        raise ParameterError(f"{name} must be a number; got nan")
    return x


def check_positive(name: str, value) -> float:
    """Return ``value`` as a float if it is finite and > 0."""
    x = _as_float(name, value)
    if not (0.0 < x < math.inf):
        raise ParameterError(f"{name} must be positive and finite; got {value!r}")
    return x


def check_nonnegative(name: str, value) -> float:
    """Return ``value`` as a float if it is finite and >= 0."""
    x = _as_float(name, value)
    if not (0.0 <= x < math.inf):
        raise ParameterError(f"{name} must be >= 0 and finite; got {value!r}")
    return x


def check_open_unit(name: str, value) -> float:
    """Return ``value`` as a float if 0 < value < 1."""
    x = _as_float(name, value)
    if not (0.0 < x < 1.0):
        raise ParameterError(f"{name} must lie in (0, 1); got {value!r}")
    return x


def check_unit_interval(name: str, value, *, open_left: bool = False) -> float:
    """Return ``value`` as a float if it lies in [0, 1] (or (0, 1] with ``open_left``)."""
    x = _as_float(name, value)
    ok = (0.0 < x <= 1.0) if open_left else (0.0 <= x <= 1.0)
    if not ok:
        interval = "(0, 1]" if open_left else "[0, 1]"
        raise ParameterError(f"{name} must lie in {interval}; got {value!r}")
    return x


def check_smoothing(name: str, value) -> float:
    """Return a label-smoothing strength if 0 <= value < 1/2."""
    x = _as_float(name, value)
    if not (0.0 <= x < 0.5):
        raise ParameterError(f"{name} must lie in [0, 0.5); got {value!r}")
    return x


def check_count(name: str, value, minimum: int = 1) -> int:
    """Return ``value`` as an int if it is an integer >= ``minimum``."""
    try:
        x = int(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be an integer; got {value!r}") from None
    if x != value and not (isinstance(value, str) and str(x) == value.strip()):
        if not (isinstance(value, float) and value.is_integer()):
            raise ParameterError(f"{name} must be an integer; got {value!r}")
    if x < minimum:
        raise ParameterError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return x


def check_flag(name: str, value) -> bool:
    """Return ``value`` if it is a boolean (``True``/``False``, numpy booleans included).

    Strict on purpose: ``bool("no")`` is ``True``, so strings and numbers are refused.
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ParameterError(f"{name} must be True or False; got {value!r}")


def check_choice(choices: tuple[str, ...]) -> Callable[[str, Any], str]:
    """A check accepting exactly one of ``choices``."""

    def check(name: str, value) -> str:
        if not isinstance(value, str) or value not in choices:
            listed = ", ".join(repr(c) for c in choices)
            raise ParameterError(f"{name} must be one of {listed}; got {value!r}")
        return value

    return check


def check_eta(name: str, value) -> float:
    """A fraction of trainable weights, in (0, 1]."""
    return check_unit_interval(name, value, open_left=True)


# ----------------------------------------------------------------------------------------------
# The parameter schema
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parameter:
    """Everything the package knows about one model parameter, in one place.

    The parameter dataclasses (:class:`replica.teacher.TeacherParams`,
    :class:`replica.student.StudentParams`), the simulations' validation and defaults, the
    command-line flags, the sweep and phase-diagram axes and the plot labels are all generated
    from these records (see :data:`PARAMETERS`).

    Attributes
    ----------
    name : str
        Python name (keyword of the solvers, column of the tables).
    check : callable
        ``check(name, value) -> value``: validates and normalises, raising a
        :class:`ParameterError` that names the parameter.
    default : object
        Default value (``None``: required).
    label : str
        LaTeX label for plot axes.
    help : str
        One-line description for ``--help`` (the default is appended).
    axis : (float, float), optional
        Default range of a phase-diagram axis (``None``: not a numeric axis).
    log : bool
        Default axis spacing is geometric (and plot axes logarithmic).
    geometric : bool
        Warm-started paths along it predict the next point in ``log`` (ridge strengths, T).
    choices : tuple of str, optional
        The allowed values of a categorical parameter.
    """

    name: str
    check: Callable[[str, Any], Any] = field(repr=False)
    default: Any
    label: str
    help: str
    axis: tuple[float, float] | None = None
    log: bool = False
    geometric: bool = False
    choices: tuple[str, ...] | None = None

    @property
    def kind(self) -> str:
        """``"flag"``, ``"choice"`` or ``"number"``."""
        if self.check is check_flag:
            return "flag"
        return "choice" if self.choices is not None else "number"

    @property
    def cli_name(self) -> str:
        """The name on the command line (``lam_t`` -> ``lam-t``)."""
        return self.name.replace("_", "-")

    @property
    def flag(self) -> str:
        return f"--{self.cli_name}"

    def validate(self, value, name: str | None = None):
        """``value`` validated (the error names ``name``, default :attr:`name`)."""
        return self.check(name or self.name, value)


# The teacher kinds are those of the one registry (replica.stages.TEACHER_KINDS)
TEACHER_KINDS = tuple(_TEACHER_REGISTRY)
LOSS_NAMES = ("logistic", "square", "hinge")  # the names of replica.losses.LOSS_KINDS

_PARAMETERS = (
    Parameter("alpha", check_positive, None, r"$\alpha$", "sample ratio M/N > 0",
              axis=(0.2, 6.0)),
    Parameter("lam", check_nonnegative, 0.1, r"$\lambda$", "ridge strength lambda >= 0",
              axis=(1e-3, 1.0), log=True, geometric=True),
    Parameter("lam_t", check_nonnegative, 0.1, r"$\tilde\lambda$", "teacher ridge strength",
              axis=(1e-3, 1.0), log=True, geometric=True),
    # (the paper's notation: the student's ridge is lambda, the teacher's lambda~)
    Parameter("lam_s", check_nonnegative, 1e-4, r"$\lambda$", "student ridge strength",
              axis=(1e-4, 1.0), log=True, geometric=True),
    Parameter("chi", check_unit_interval, 1.0, r"$\chi$",
              "weight of the distillation term, in [0, 1]", axis=(0.0, 1.0)),
    Parameter("temperature", check_positive, 1.0, "$T$", "distillation temperature T > 0",
              axis=(0.5, 10.0), log=True, geometric=True),
    Parameter("smoothing", check_smoothing, 0.0, r"$\epsilon$",
              "label smoothing eps in [0, 0.5)", axis=(0.0, 0.45)),
    Parameter("eta", check_eta, 0.5, r"$\eta$",
              "fraction of trainable student weights, in (0, 1]", axis=(0.1, 1.0)),
    Parameter("rho", check_open_unit, 0.2, r"$\rho$",
              "fraction of the positive cluster, in (0, 1)", axis=(0.05, 0.5)),
    Parameter("delta", check_positive, 1.0, r"$\Delta$", "noise variance Delta > 0",
              axis=(0.25, 4.0), log=True),
    Parameter("t2_scaling", check_flag, False, "$T^2$ scaling",
              "multiply the distillation term by T^2 (Hinton); off in the paper"),
    Parameter("teacher", check_choice(TEACHER_KINDS), "ridge", "teacher",
              "teacher kind (" + "; ".join(f"{k.name}: {k.help}"
                                           for k in _TEACHER_REGISTRY.values()) + ")",
              choices=TEACHER_KINDS),
    # The losses: rows of replica.losses.LOSS_KINDS (tests check that the two lists agree)
    Parameter("loss", check_choice(LOSS_NAMES), "logistic", "loss",
              "the model's label loss: cross-entropy with soft targets (the paper's), square "
              "(h - s)^2/2 or hinge max(0, 1 - s h); for a student, its label term "
              "(1 - chi) l(y, h) (the distillation term stays the tempered cross-entropy)",
              choices=LOSS_NAMES),
    Parameter("teacher_loss", check_choice(LOSS_NAMES), "logistic", "teacher loss",
              "the ridge teacher's loss (choices as for --loss)", choices=LOSS_NAMES),
)
#: Every model parameter by name.
PARAMETERS: dict[str, Parameter] = {p.name: p for p in _PARAMETERS}

#: The parameters of each model, in signature order.
MODEL_PARAMETERS: dict[str, tuple[str, ...]] = {
    "teacher": ("alpha", "rho", "delta", "lam", "smoothing", "loss"),
    "student": ("alpha", "rho", "delta", "eta", "lam_t", "lam_s", "chi", "temperature",
                "t2_scaling", "smoothing", "teacher", "loss", "teacher_loss"),
}  # fmt: skip

#: The one place where the teacher's parameters are named from the student's side: the
#: teacher's ridge is ``lam`` in the teacher problem and ``lam_t`` in the student problem.
STUDENT_TO_TEACHER: dict[str, str] = {
    "alpha": "alpha", "rho": "rho", "delta": "delta", "lam_t": "lam", "smoothing": "smoothing",
}  # fmt: skip


def default(name: str):
    """The schema default of parameter ``name``."""
    return PARAMETERS[name].default


def defaults(model: str, *, required: bool = False) -> dict[str, Any]:
    """``{name: default}`` of ``model``'s parameters (without the required ``alpha``)."""
    params = (PARAMETERS[n] for n in MODEL_PARAMETERS[model])
    return {p.name: p.default for p in params if required or p.default is not None}


def validate(name: str, value):
    """``value`` of parameter ``name`` validated (:class:`ParameterError` naming it)."""
    return PARAMETERS[name].validate(value)


def variables(model: str) -> tuple[str, ...]:
    """The numeric parameters of ``model``: what a curve or a phase-diagram axis can vary."""
    return tuple(n for n in MODEL_PARAMETERS[model] if PARAMETERS[n].axis is not None)


def axes() -> tuple[str, ...]:
    """Every parameter that can be a phase-diagram axis."""
    return tuple(n for n, p in PARAMETERS.items() if p.axis is not None)


def label(name: str) -> str:
    """LaTeX label of a parameter (its name when it is not one)."""
    p = PARAMETERS.get(name)
    return p.label if p is not None else name


def teacher_values(student: Mapping[str, Any] | Any) -> dict[str, Any]:
    """The teacher problem's parameters inside a student's (``lam_t`` -> ``lam``, ...).

    ``student`` is a mapping or an object with the student's attributes.
    """
    get = student.get if isinstance(student, Mapping) else lambda k: getattr(student, k)
    return {teacher: get(name) for name, teacher in STUDENT_TO_TEACHER.items()}


def validate_fields(obj) -> None:
    """Validate and normalise, in place, the schema fields of a frozen parameter dataclass.

    Fields the schema does not know are left to the class.
    """
    for f in fields(obj):
        if f.name in PARAMETERS:
            object.__setattr__(obj, f.name, PARAMETERS[f.name].validate(getattr(obj, f.name)))


def resolve_params(cls, first, given: Mapping[str, Any], params=None):
    """The parameters of a ``solve_*`` call: a ``cls`` instance, or ``cls(first, **given)``.

    ``solve_teacher(TeacherParams(3.0))``, ``solve_teacher(params=p)`` and
    ``solve_teacher(3.0, lam=0.1)`` are the three spellings. With a parameter object, the model
    keywords must keep their defaults (a keyword that contradicts the object is refused rather
    than silently ignored).
    """
    if isinstance(first, cls):
        if params is not None:
            raise ParameterError("params given twice (positionally and as params=)")
        params = first
    if params is None:
        return cls(first, **given)
    if not isinstance(params, cls):
        raise ParameterError(f"params must be a {cls.__name__}; got {type(params).__name__}")
    if first is not None and first is not params:
        raise ParameterError("alpha: give either params or the model keywords, not both")
    defaults_ = {f.name: f.default for f in fields(cls)}
    for name, value in given.items():
        if value != defaults_.get(name, value):
            raise ParameterError(f"{name}: give either params or the model keywords, not both")
    return params


# ----------------------------------------------------------------------------------------------
# Solver options
# ----------------------------------------------------------------------------------------------


def check_solver_options(*, tol, damping, max_iter) -> dict[str, Any]:
    """Validated options of the fixed-point iteration (``saddle.fixed_point.solve_fixed_point``).

    ``tol`` must be positive and finite, ``damping`` (the step ``beta`` of
    ``x + beta (F(x) - x)``) in ``(0, 1]``, ``max_iter`` an integer >= 1. A zero damping or a
    negative tolerance would otherwise run silently to ``max_iter``.
    """
    return {
        "tol": check_positive("tol", tol),
        "damping": check_unit_interval("damping", damping, open_left=True),
        "max_iter": check_count("max_iter", max_iter),
    }


# ----------------------------------------------------------------------------------------------
# Parameter objects
# ----------------------------------------------------------------------------------------------

# Largest Gauss-Hermite rule a solver may be asked for: its accuracy is checked against the rule
# with twice the nodes, and numpy's rules lose their weights to overflow from 383 nodes on.
MAX_RULE_NODES = 180


def check_rule_nodes(name: str, value) -> int:
    """Return a number of quadrature nodes: an integer in ``[2, MAX_RULE_NODES]``."""
    x = check_count(name, value, minimum=2)
    if x > MAX_RULE_NODES:
        raise ParameterError(f"{name} must be an integer <= {MAX_RULE_NODES}; got {value!r}")
    return x


@dataclass(frozen=True)
class GaussianMixture:
    """Unbalanced two-cluster Gaussian mixture of paper Eq. 10 (docs/model.md §1).

    ``x = s v / sqrt(N) + sqrt(delta) z`` with label ``y = 1`` (``s = +1``) with probability
    ``rho`` and ``y = 0`` (``s = -1``) otherwise.

    Parameters
    ----------
    rho : float
        Fraction of the positive cluster, in (0, 1).
    delta : float
        Noise variance Delta > 0.
    """

    rho: float = default("rho")
    delta: float = default("delta")

    def __post_init__(self) -> None:
        validate_fields(self)

    def to_dict(self) -> dict:
        return asdict(self)


class MixtureParamsMixin:
    """Shared derived quantities of parameter dataclasses with ``rho``, ``delta``, ``smoothing``."""

    rho: float
    delta: float
    smoothing: float

    @property
    def mixture(self) -> GaussianMixture:
        return GaussianMixture(self.rho, self.delta)

    @property
    def targets(self) -> tuple[float, float]:
        """Soft targets ``(p for y = 1, p for y = 0)`` after label smoothing (App. B.3)."""
        return 1.0 - self.smoothing, self.smoothing


def split_params(params_class, fixed: Mapping[str, Any]) -> tuple[dict, dict]:
    """Split keyword arguments into ``params_class`` fields and the rest (solver options)."""
    names = {f.name for f in fields(params_class)}
    base = {k: v for k, v in fixed.items() if k in names}
    return base, {k: v for k, v in fixed.items() if k not in names}
