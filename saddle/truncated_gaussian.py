"""Gauss rules for the standard Gaussian measure cut at a point, batched over many cuts.

A function with a jump at ``z = r`` (e.g. a hard pseudo-label ``1[h(z) > 0]`` with ``h``
increasing in ``z``) is integrated to machine precision by splitting the Gaussian average,

    E[g(Z)] = int_{-inf}^{r} g(z) phi(z) dz + int_{r}^{inf} g(z) phi(z) dz,

and integrating each smooth side with the Gauss rule of its own weight (the standard normal
density restricted to the half-line): an ``n``-point rule is exact for polynomials of degree
``2n - 1`` on that side, so the convergence is that of Gauss-Hermite on a smooth function
instead of the ``1/n`` of any rule that averages through the jump.

The rules are built by the discretised Stieltjes procedure (Gautschi, *Orthogonal
Polynomials: Computation and Approximation*, 2004, Sec. 2.2.3): the half-line measure is
discretised by a fine composite Gauss-Legendre rule on ``[r, cutoff]`` (the Gaussian mass
beyond 9 is ~1e-19), the three-term recurrence of its orthonormal polynomials is computed by
Stieltjes' procedure, and the Golub-Welsch eigenproblem of the Jacobi matrix gives nodes and
weights. The recurrence and the eigenproblem are numba loops over the cuts.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numba import njit
from scipy.special import ndtr

TRUNCATION = 9.0
FINE_PANELS = 16
FINE_ORDER = 16


@lru_cache(maxsize=4)
def _unit_panels(panels: int, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Composite Gauss-Legendre nodes and weights on ``[0, 1]``."""
    x, w = np.polynomial.legendre.leggauss(order)
    edges = np.linspace(0.0, 1.0, panels + 1)
    half = 0.5 * np.diff(edges)
    mid = 0.5 * (edges[:-1] + edges[1:])
    nodes = (mid[:, None] + half[:, None] * x[None, :]).ravel()
    weights = (half[:, None] * w[None, :]).ravel()
    return nodes, weights


@njit(cache=True)
def _gauss_from_jacobi(d, e, z0):
    """Eigenvalues of the symmetric tridiagonal matrix (diagonal ``d``, off-diagonal ``e[i]``
    between ``i`` and ``i + 1``, ``e[-1] = 0``) and the first components of its normalised
    eigenvectors, in place (implicit QL with Wilkinson shifts; Golub-Welsch needs only the
    first components, so this costs O(n^2))."""
    n = d.size
    z0[:] = 0.0
    z0[0] = 1.0
    for l in range(n):
        for _ in range(60):
            m = l
            while m < n - 1:
                dd = abs(d[m]) + abs(d[m + 1])
                if abs(e[m]) <= 1e-16 * dd:
                    break
                m += 1
            if m == l:
                break
            g = (d[l + 1] - d[l]) / (2.0 * e[l])
            r = math.hypot(g, 1.0)
            g = d[m] - d[l] + e[l] / (g + (r if g >= 0.0 else -r))
            s = c = 1.0
            p = 0.0
            i = m - 1
            underflow = False
            while i >= l:
                f = s * e[i]
                b = c * e[i]
                r = math.hypot(f, g)
                e[i + 1] = r
                if r == 0.0:
                    d[i + 1] -= p
                    e[m] = 0.0
                    underflow = True
                    break
                s = f / r
                c = g / r
                g = d[i + 1] - p
                r = (d[i] - g) * s + 2.0 * c * b
                p = s * r
                d[i + 1] = g + p
                g = c * r - b
                f = z0[i + 1]
                z0[i + 1] = s * z0[i] + c * f
                z0[i] = c * z0[i] - s * f
                i -= 1
            if underflow:
                continue
            d[l] -= p
            e[l] = g
            e[m] = 0.0


@njit(cache=True)
def _stieltjes_gauss(x, w, n, nodes, weights):
    """Gauss rules of ``n`` points for the discrete measures ``(x[p], w[p])`` (rows ``p``):
    Stieltjes' procedure for the orthonormal recurrence, then Golub-Welsch."""
    size = x.shape[1]
    q = np.empty(size)
    q_prev = np.empty(size)
    r = np.empty(size)
    d = np.empty(n)
    e = np.empty(n)
    z0 = np.empty(n)
    for p in range(x.shape[0]):
        mass = 0.0
        for i in range(size):
            mass += w[p, i]
        if mass <= 0.0:
            mass = 1.0
        for i in range(size):
            q[i] = 1.0 / math.sqrt(mass)
            q_prev[i] = 0.0
        beta = 0.0
        for j in range(n):
            a = 0.0
            for i in range(size):
                a += w[p, i] * x[p, i] * q[i] * q[i]
            d[j] = a
            norm = 0.0
            for i in range(size):
                r[i] = (x[p, i] - a) * q[i] - beta * q_prev[i]
                norm += w[p, i] * r[i] * r[i]
            beta = math.sqrt(norm)
            e[j] = beta if j + 1 < n else 0.0
            for i in range(size):
                q_prev[i] = q[i]
                q[i] = r[i] / beta if beta > 0.0 else 0.0
        _gauss_from_jacobi(d, e, z0)
        order = np.argsort(d)
        for j in range(n):
            nodes[p, j] = d[order[j]]
            weights[p, j] = mass * z0[order[j]] * z0[order[j]]


def interval_gauss_rules(
    lo: np.ndarray, hi: np.ndarray, n: int, *, cutoff: float = TRUNCATION
) -> tuple[np.ndarray, np.ndarray]:
    """``n``-point Gauss rules for ``phi(z) dz`` on ``[lo[p], hi[p]]`` (clipped to
    ``[-cutoff, cutoff]``), for every ``p``.

    Returns ``(nodes, weights)`` of shape ``(len(lo), n)``, nodes increasing, weights summing to
    the interval's Gaussian mass. An interval with no mass has zero weights (its nodes are then
    meaningless but finite).
    """
    lo = np.clip(np.asarray(lo, dtype=float).ravel(), -cutoff, cutoff)
    hi = np.clip(np.asarray(hi, dtype=float).ravel(), -cutoff, cutoff)
    length = np.maximum(hi - lo, 0.0)
    # Enough fine points that the discrete measure integrates polynomials of degree 2n - 1.
    u, wu = _unit_panels(max(FINE_PANELS, (n + 1) // 2), FINE_ORDER)
    x = lo[:, None] + length[:, None] * u[None, :]
    w = length[:, None] * wu[None, :] * np.exp(-0.5 * x * x) / np.sqrt(2.0 * np.pi)
    empty = length <= 1e-12
    if np.any(empty):  # nothing of the measure: a harmless placeholder measure
        x[empty] = lo[empty, None] + u
        w[empty] = wu
    nodes = np.empty((lo.size, n))
    weights = np.empty((lo.size, n))
    _stieltjes_gauss(x, w, n, nodes, weights)
    # Exact masses (the discretisation is exact to ~1e-16 relative, but say it once).
    mass = np.where(empty, 0.0, ndtr(hi) - ndtr(lo))
    total = weights.sum(axis=1)
    weights *= (mass / np.where(total > 0.0, total, 1.0))[:, None]
    return nodes, weights


def half_line_gauss_rules(
    cuts: np.ndarray, n: int, side: str, *, cutoff: float = TRUNCATION
) -> tuple[np.ndarray, np.ndarray]:
    """``n``-point Gauss rules for ``phi(z) dz`` on ``[r, inf)`` (``side="right"``) or
    ``(-inf, r]`` (``side="left"``), for every cut ``r`` in ``cuts`` (truncated at ``cutoff``,
    beyond which the Gaussian mass is ~1e-19). Shapes as :func:`interval_gauss_rules`.
    """
    cuts = np.asarray(cuts, dtype=float).ravel()
    edge = np.full(cuts.size, cutoff)
    if side == "left":
        return interval_gauss_rules(-edge, cuts, n, cutoff=cutoff)
    if side != "right":
        raise ValueError(f"side must be 'left' or 'right'; got {side!r}")
    return interval_gauss_rules(cuts, edge, n, cutoff=cutoff)


def split_gauss_rules(cuts: np.ndarray, n_side: int) -> tuple[np.ndarray, np.ndarray]:
    """Rules for ``E[g(Z)]``, ``Z ~ N(0, 1)``, split at each cut: ``n_side`` Gauss points on
    each side. Returns ``(nodes, weights)`` of shape ``(len(cuts), 2 n_side)``, nodes
    increasing (left side first), weights summing to one per row.
    """
    cuts = np.asarray(cuts, dtype=float).ravel()
    return piecewise_gauss_rules(cuts[:, None], n_side)


def piecewise_gauss_rules(cuts: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Rules for ``E[g(Z)]`` split at several cuts per row: ``cuts`` of shape ``(P, c)``
    (any order; NaN for none), ``n`` Gauss points on each of the ``c + 1`` pieces. Returns
    ``(nodes, weights)`` of shape ``(P, (c + 1) n)``, nodes non-decreasing.
    """
    cuts = np.sort(np.atleast_2d(np.asarray(cuts, dtype=float)), axis=1)
    P, c = cuts.shape
    # A missing cut (NaN, sorted last) becomes the upper truncation: an empty last piece.
    cuts = np.where(np.isnan(cuts), TRUNCATION, cuts)
    edges = np.concatenate([np.full((P, 1), -TRUNCATION), cuts, np.full((P, 1), TRUNCATION)],
                           axis=1)  # fmt: skip
    pieces = [interval_gauss_rules(edges[:, i], edges[:, i + 1], n) for i in range(c + 1)]
    return (np.concatenate([z for z, _ in pieces], axis=1),
            np.concatenate([w for _, w in pieces], axis=1))  # fmt: skip
