"""Warm-started continuation of a fixed point along a parameter path.

Generic: the caller supplies ``solve(value, initial) -> result`` where ``result`` exposes a
``state`` (the array to warm-start the next point from) and a ``converged`` flag. Each point
starts from the previous converged state; if that fails, it is retried once from the caller's
default start (``initial=None``); if that fails too, the step from the last converged value is
refined: the path is walked to the value in 2, 4, ... (up to ``2**refine``) sub-steps, each
warm-started from the previous (near a singularity the solution moves fast and a full step
leaves the basin of the warm start). Only then is the point reported as not converged.
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
    refine: int = 3,
    geometric: bool = False,
    predict: bool = False,
) -> list[R]:
    """Solve at each of ``values`` in order, warm-starting from the previous solution.

    Used along every theory curve (docs/numerics.md §5).

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
    refine : int
        Levels of step refinement (sub-steps ``2, 4, ..., 2**refine``) tried when a point
        fails both warm and cold; 0 disables it.
    geometric : bool
        Interpolate sub-steps geometrically (for positive values spanning decades).
    predict : bool
        Start each point from the secant extrapolation of the last two converged states
        (:func:`extrapolate`; fewer iterations along smooth paths), falling back to the last
        state itself when that fails.

    Returns
    -------
    list
        One result per value, in order. A value repeated right after its converged solution
        (``[2, 2, 2]``) gets that same result again, not a re-solve.
    """
    results: list[R] = []
    state = initial
    last_value: float | None = None
    last_result: R | None = None  # the result at last_value (converged)
    before: tuple | None = None  # (value, state) of the converged point before last
    iterator = wrap(values) if wrap is not None else values
    for value in iterator:
        if last_result is not None and value == last_value:
            results.append(last_result)
            continue
        guess = state
        if (predict and before is not None and last_value is not None and state is not None
                and last_value != before[0]):  # fmt: skip
            guess = extrapolate(before[1], state, (value - last_value) / (last_value - before[0]))
        result = solve(value, guess)
        if not result.converged and guess is not state:
            result = solve(value, state)
        if not result.converged and state is not None:
            retry = solve(value, None)
            if retry.converged:
                result = retry
            elif last_value is not None and refine > 0:
                refined = _refined_step(solve, last_value, value, state, refine, geometric)
                if refined is not None:
                    result = refined
        if result.converged:
            if result.state is not None and state is not None and last_value is not None:
                before = (last_value, state)
            else:
                before = None
            state = result.state
            last_value = value
            last_result = result
        results.append(result)
    return results


def extrapolate(previous, current, ratio: float):
    """Secant predictor ``current + ratio (current - previous)`` of a state.

    States may be arrays or tuples of arrays (handled element-wise). Components positive in
    both states are extrapolated geometrically (in ``log``), so they stay positive; a
    prediction that is not finite falls back to ``current``.
    """
    if isinstance(current, tuple):
        return tuple(extrapolate(p, c, ratio) for p, c in zip(previous, current, strict=True))
    prev = np.asarray(previous, dtype=float)
    cur = np.asarray(current, dtype=float)
    if prev.shape != cur.shape or not np.isfinite(ratio):
        return current
    ratio = float(np.clip(ratio, -2.0, 2.0))
    positive = (prev > 0) & (cur > 0)
    with np.errstate(all="ignore"):
        linear = cur + ratio * (cur - prev)
        geometric = cur * (cur / np.where(positive, prev, 1.0)) ** ratio
    out = np.where(positive, geometric, linear)
    return out if np.all(np.isfinite(out)) else current


def _refined_step(solve, start: float, stop: float, state, levels: int, geometric: bool):
    """Walk from ``start`` (solved, ``state``) to ``stop`` in 2, 4, ... sub-steps."""
    for level in range(1, levels + 1):
        n = 2**level
        if geometric and start > 0 and stop > 0:
            path = np.geomspace(start, stop, n + 1)[1:]
        else:
            path = np.linspace(start, stop, n + 1)[1:]
        path[-1] = stop
        current = state
        result = None
        for value in path:
            result = solve(float(value), current)
            if not result.converged:
                break
            current = result.state
        if result is not None and result.converged:
            return result
    return None
