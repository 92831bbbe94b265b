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
weights. Everything is vectorised over the cuts (one batched ``eigh``).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
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


def _stieltjes_gauss(x: np.ndarray, w: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss rules of ``n`` points for the discrete measures ``(x[p], w[p])`` (rows ``p``)."""
    mass = w.sum(axis=1)
    safe = np.where(mass > 0.0, mass, 1.0)
    q_prev = np.zeros_like(x)
    q = np.ones_like(x) / np.sqrt(safe)[:, None]
    alpha = np.empty((x.shape[0], n))
    beta = np.zeros((x.shape[0], n))
    for j in range(n):
        alpha[:, j] = np.einsum("pi,pi->p", w * q, x * q)
        r = (x - alpha[:, j : j + 1]) * q - (beta[:, j : j + 1] * q_prev if j else 0.0)
        if j + 1 < n:
            norm = np.sqrt(np.einsum("pi,pi->p", w, r * r))
            beta[:, j + 1] = norm
            q_prev, q = q, r / np.where(norm > 0.0, norm, 1.0)[:, None]
    jacobi = np.zeros((x.shape[0], n, n))
    idx = np.arange(n)
    jacobi[:, idx, idx] = alpha
    jacobi[:, idx[1:], idx[:-1]] = beta[:, 1:]
    jacobi[:, idx[:-1], idx[1:]] = beta[:, 1:]
    nodes, vectors = np.linalg.eigh(jacobi)
    weights = mass[:, None] * vectors[:, 0, :] ** 2
    return nodes, weights


def half_line_gauss_rules(
    cuts: np.ndarray, n: int, side: str, *, cutoff: float = TRUNCATION
) -> tuple[np.ndarray, np.ndarray]:
    """``n``-point Gauss rules for ``phi(z) dz`` on ``[r, inf)`` (``side="right"``) or
    ``(-inf, r]`` (``side="left"``), for every cut ``r`` in ``cuts``.

    Returns ``(nodes, weights)`` of shape ``(len(cuts), n)``, nodes increasing; the weights sum
    to the side's Gaussian mass (``1 - Phi(r)`` or ``Phi(r)``). A side with no mass inside the
    truncation has zero weights (its nodes are then meaningless but finite).
    """
    cuts = np.asarray(cuts, dtype=float).ravel()
    if side == "left":
        nodes, weights = half_line_gauss_rules(-cuts, n, "right", cutoff=cutoff)
        return -nodes[:, ::-1], weights[:, ::-1]
    if side != "right":
        raise ValueError(f"side must be 'left' or 'right'; got {side!r}")
    lo = np.clip(cuts, -cutoff, cutoff)
    length = cutoff - lo
    # Enough fine points that the discrete measure integrates polynomials of degree 2n - 1.
    u, wu = _unit_panels(max(FINE_PANELS, (n + 1) // 2), FINE_ORDER)
    x = lo[:, None] + length[:, None] * u[None, :]
    w = length[:, None] * wu[None, :] * np.exp(-0.5 * x * x) / np.sqrt(2.0 * np.pi)
    empty = length <= 1e-12
    if np.any(empty):  # nothing left of the measure: a harmless placeholder measure
        x[empty] = cutoff + u
        w[empty] = wu
    nodes, weights = _stieltjes_gauss(x, w, n)
    # Exact masses (the discretisation is exact to ~1e-16 relative, but say it once).
    mass = np.where(empty, 0.0, ndtr(-lo) - ndtr(-cutoff))
    total = weights.sum(axis=1)
    weights *= (mass / np.where(total > 0.0, total, 1.0))[:, None]
    return nodes, weights


def split_gauss_rules(cuts: np.ndarray, n_side: int) -> tuple[np.ndarray, np.ndarray]:
    """Rules for ``E[g(Z)]``, ``Z ~ N(0, 1)``, split at each cut: ``n_side`` Gauss points on
    each side. Returns ``(nodes, weights)`` of shape ``(len(cuts), 2 n_side)``, nodes
    increasing (left side first), weights summing to one per row.
    """
    left_z, left_w = half_line_gauss_rules(cuts, n_side, "left")
    right_z, right_w = half_line_gauss_rules(cuts, n_side, "right")
    return np.concatenate([left_z, right_z], axis=1), np.concatenate([left_w, right_w], axis=1)
