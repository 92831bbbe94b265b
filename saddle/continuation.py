"""Warm-started continuation of a fixed point along a parameter path.

Generic: the caller supplies ``solve(value, initial) -> result`` where ``result`` exposes a
``state`` (the array to warm-start the next point from) and a ``converged`` flag. Each point
starts from the previous converged state; if that fails, it is retried once from the caller's
default start (``initial=None``) before being reported as not converged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import numpy as np

R = TypeVar("R")


def continuation(
    solve: Callable[[float, np.ndarray | None], R],
    values: Sequence[float],
    *,
    initial: np.ndarray | None = None,
    wrap: Callable[[Iterable], Iterable] | None = None,
) -> list[R]:
    """Solve at each of ``values`` in order, warm-starting from the previous solution.

    Parameters
    ----------
    solve : callable
        ``solve(value, initial_state_or_None)``; returns an object with ``state`` and
        ``converged`` attributes.
    values : sequence of float
        The path, in the order to walk it.
    initial : ndarray, optional
        Warm start for the first point.
    wrap : callable, optional
        Wraps the iteration, e.g. a progress bar.

    Returns
    -------
    list
        One result per value, in order.
    """
    results: list[R] = []
    state = initial
    iterator = wrap(values) if wrap is not None else values
    for value in iterator:
        result = solve(value, state)
        if not result.converged and state is not None:
            retry = solve(value, None)
            if retry.converged:
                result = retry
        if result.converged:
            state = result.state
        results.append(result)
    return results
