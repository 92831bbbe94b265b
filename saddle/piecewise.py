"""Gaussian averages of piecewise-smooth integrands: composite rules split at known kinks.

A Gauss-Hermite rule converges exponentially for a smooth integrand but only algebraically
across a kink (e.g. the proximal map of a hinge loss, flat on an interval of fields). When
the kinks are known, ``E[g(Z)]``, ``Z ~ N(0, 1)``, is computed exactly enough by splitting
``[-cutoff, cutoff]`` at them and using Gauss-Legendre panels (weights times the Gaussian
density) that never straddle a kink. The mass beyond ``|z| = 8.5`` is ~2e-17.

:func:`split_gaussian_rule` is numba-jitted and fills caller-owned arrays (no allocation),
so it can be called once per node of an outer average.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numba import njit

SPLIT_ORDER = 10  # Gauss-Legendre points per panel
SPLIT_PANEL = 2.0  # longest panel, in units of the standard deviation
SPLIT_CUTOFF = 8.5
# Rules graded towards near-kinks (:func:`graded_gaussian_rule`): largest panel, most panels.
GRADED_MAX_PANEL = 1.0
GRADED_MAX_PANELS = 480
GRADED_MIN_WIDTH = 1e-9
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def split_rule_capacity(n_breaks: int, order: int = SPLIT_ORDER, panel: float = SPLIT_PANEL,
                        cutoff: float = SPLIT_CUTOFF) -> int:  # fmt: skip
    """Room needed by :func:`split_gaussian_rule` for ``n_breaks`` breakpoints."""
    return order * (int(math.ceil(2.0 * cutoff / panel)) + n_breaks + 1)


@lru_cache(maxsize=8)
def legendre_rule(order: int = SPLIT_ORDER) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on ``[-1, 1]`` (cached, read-only)."""
    nodes, weights = np.polynomial.legendre.leggauss(order)
    nodes.setflags(write=False)
    weights.setflags(write=False)
    return nodes, weights


@njit(cache=True)
def split_gaussian_rule(breaks, n_breaks, x, w, panel, cutoff, z_out, w_out):
    """Nodes and weights of ``E[g(Z)]`` on ``[-cutoff, cutoff]`` split at ``breaks``.

    Used where a loss has a kink (docs/numerics.md §2).

    Parameters
    ----------
    breaks : array
        Breakpoints in ``z`` (any order; the first ``n_breaks`` are used; those outside
        ``(-cutoff, cutoff)`` are ignored). Sorted in place.
    x, w : array
        Gauss-Legendre rule on ``[-1, 1]``.
    panel : float
        Longest panel; each piece between breakpoints is cut into equal panels.
    z_out, w_out : array
        Output, of length at least :func:`split_rule_capacity`.

    Returns
    -------
    int
        The number ``n`` of nodes written; ``z_out[:n]`` is increasing.
    """
    bs = breaks[:n_breaks]
    bs.sort()
    n = 0
    a = -cutoff
    for piece in range(n_breaks + 1):
        b = cutoff if piece == n_breaks else min(max(bs[piece], -cutoff), cutoff)
        if b > a:
            n_panels = max(1, int(math.ceil((b - a) / panel)))
            width = (b - a) / n_panels
            half = 0.5 * width
            for j in range(n_panels):
                mid = a + (j + 0.5) * width
                for i in range(x.size):
                    z = mid + half * x[i]
                    z_out[n] = z
                    w_out[n] = half * w[i] * math.exp(-0.5 * z * z) * _INV_SQRT_2PI
                    n += 1
            a = b
    return n


@njit(cache=True)
def graded_gaussian_rule(kink_lo, kink_mid, kink_hi, width, gx, gw, z_out, w_out):
    """A composite Gauss-Legendre rule for ``E[g(Z)]`` graded towards three near-kinks of ``g``.

    Panels on ``[-8.5, 8.5]`` shrink geometrically towards the kinks ``kink_lo, kink_mid,
    kink_hi`` (in units of ``Z``), down to ``width`` (the kinks' own width): a panel ahead of
    a kink at distance ``d`` has length ``d / 2``, one behind it length ``d``, so that the
    nearest singularity of ``g`` is at least three half-lengths from each panel's centre and
    ``len(gx)`` Gauss-Legendre points per panel converge like ``(3 + sqrt 8)^(-2 len(gx))``.
    Panels are at most ``GRADED_MAX_PANEL`` long. Fills ``z_out``, ``w_out`` (weights times
    the Gaussian density, normalised) and returns the number of nodes.
    """
    order = gx.size
    # Kinks narrower than this (in units of Z) are resolved well enough by a panel this wide
    # (the error of a smoothed kink is ~ its slope jump times the panel's mass squared); the
    # floor also keeps every panel wide enough to move x in floating point.
    width = max(width, GRADED_MIN_WIDTH)
    x = -SPLIT_CUTOFF
    n = 0
    total = 0.0
    for panel in range(GRADED_MAX_PANELS):
        if x >= SPLIT_CUTOFF:
            break
        # Distance to the next kink ahead and to the last kink behind.
        ahead = np.inf
        behind = np.inf
        for k in (kink_lo, kink_mid, kink_hi):
            if k > x:
                ahead = min(ahead, k - x)
            else:
                behind = min(behind, x - k)
        size = min(GRADED_MAX_PANEL, max(width, 0.5 * ahead), max(width, behind))
        if panel == GRADED_MAX_PANELS - 1:  # out of panels (not reached for widths >= 1e-9)
            size = SPLIT_CUTOFF - x
        size = min(size, SPLIT_CUTOFF - x)
        half = 0.5 * size
        mid = x + half
        for i in range(order):
            z = mid + half * gx[i]
            w = half * gw[i] * math.exp(-0.5 * z * z)
            z_out[n] = z
            w_out[n] = w
            total += w
            n += 1
        x += size
    for i in range(n):
        w_out[i] /= total
    return n
