"""Model parameters and their validation (docs/model.md §1).

Every public entry point validates its inputs through the helpers here, so a bad value
produces one :class:`ParameterError` whose message names the parameter, e.g.
``rho must lie in (0, 1); got 1.5``.  The command line turns it into a one-line error
with exit code 2.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


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

    rho: float = 0.2
    delta: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "rho", check_open_unit("rho", self.rho))
        object.__setattr__(self, "delta", check_positive("delta", self.delta))

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
