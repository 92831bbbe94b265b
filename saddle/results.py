"""Value semantics for frozen result dataclasses that hold arrays, dicts or NaNs.

A frozen dataclass compares and hashes the tuple of its fields; with a numpy array inside,
``==`` raises ("truth value of an array is ambiguous") and ``hash`` fails (arrays, dicts and
lists are unhashable). :class:`ValueEquality` compares and hashes a *frozen* copy of the fields
instead (:func:`freeze`): arrays and lists become tuples, dicts sorted tuples of items, and NaN
a sentinel equal to itself, so that two results computed the same way are equal, and equal
results hash alike. Fields declared with ``compare=False`` are ignored, as in dataclasses.

Use it with ``@dataclass(frozen=True, eq=False)`` (so the dataclass does not generate its own
``__eq__``/``__hash__`` over the raw fields).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import fields, is_dataclass

import numpy as np


class _NaN:
    """The frozen form of a NaN: equal to itself (unlike ``float("nan")``)."""

    def __eq__(self, other) -> bool:
        return isinstance(other, _NaN)

    def __hash__(self) -> int:
        return hash("nan")

    def __repr__(self) -> str:
        return "nan"


NAN = _NaN()


def freeze(value):
    """A hashable value equal to the frozen form of every value equal to ``value``.

    Arrays, lists and tuples become tuples (recursively), mappings sorted tuples of
    ``(key, value)``, sets frozensets, NaN :data:`NAN`; dataclasses with value semantics stay
    as they are (they hash through their own frozen fields).
    """
    if isinstance(value, float | np.floating):
        return NAN if math.isnan(value) else float(value)
    if isinstance(value, np.ndarray):
        return ("ndarray", value.shape, tuple(freeze(v) for v in value.ravel().tolist()))
    if isinstance(value, np.generic):
        return freeze(value.item())
    if isinstance(value, Mapping):
        return tuple(sorted(((k, freeze(v)) for k, v in value.items()), key=lambda kv: repr(kv[0])))
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    if isinstance(value, set | frozenset):
        return frozenset(freeze(v) for v in value)
    return value


class ValueEquality:
    """Mixin: ``==`` and ``hash`` over the frozen compared fields of a dataclass."""

    def _frozen_fields(self) -> tuple:
        assert is_dataclass(self)
        return tuple(freeze(getattr(self, f.name)) for f in fields(self) if f.compare)

    def __eq__(self, other) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._frozen_fields() == other._frozen_fields()

    def __hash__(self) -> int:
        return hash((self.__class__.__name__, self._frozen_fields()))
