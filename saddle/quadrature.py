"""Gaussian averages by Gauss-Hermite quadrature.

``E[g(Z)]`` for ``Z ~ N(0, 1)`` is approximated by ``sum_k w_k g(z_k)`` with the nodes and
weights of the probabilists' Hermite polynomials (weights normalised to sum to one). An
``n``-point rule is exact for polynomials of degree ``2n - 1``; the integrands of the replica
channels are smooth (proximal maps of smooth losses), so ~100 nodes give ~1e-10 accuracy
at moderate field widths. Two-dimensional averages over independent ``(Z1, Z2)`` use the
tensor product of two 1-D rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from numpy.polynomial.hermite_e import hermegauss


@dataclass(frozen=True)
class GaussHermite:
    """A 1-D Gauss-Hermite rule for the standard Gaussian measure.

    Attributes
    ----------
    nodes, weights : ndarray
        ``E[g(Z)] ~= weights @ g(nodes)``; ``weights.sum() == 1``.
    """

    nodes: np.ndarray
    weights: np.ndarray
    estimated_error: float = field(default=0.0, compare=False)

    @property
    def size(self) -> int:
        return self.nodes.size

    def expect(self, values: np.ndarray) -> float:
        """Average of ``values`` (the integrand evaluated at ``nodes``)."""
        return float(self.weights @ values)


# numpy's hermegauss overflows (NaN weights) from 383 nodes on; rules up to this size are exact.
MAX_GAUSS_HERMITE_NODES = 360


@lru_cache(maxsize=16)
def gauss_hermite(n_nodes: int) -> GaussHermite:
    """The ``n_nodes``-point probabilists' Gauss-Hermite rule (cached, read-only arrays).

    Used for every Gaussian average of the saddle point (docs/numerics.md §1).

    ``1 <= n_nodes <= MAX_GAUSS_HERMITE_NODES`` (larger rules lose their weights to overflow).
    """
    if not 1 <= n_nodes <= MAX_GAUSS_HERMITE_NODES:
        raise ValueError(
            f"n_nodes must be in [1, {MAX_GAUSS_HERMITE_NODES}]; got {n_nodes}"
        )
    nodes, weights = hermegauss(n_nodes)
    weights = weights / weights.sum()
    nodes.setflags(write=False)
    weights.setflags(write=False)
    return GaussHermite(nodes=nodes, weights=weights)


# Standard-Gaussian mass beyond |z| = 8.5 is ~1.9e-17: the truncation of composite rules.
GAUSSIAN_CUTOFF = 8.5


@lru_cache(maxsize=8)
def gauss_legendre(order: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the ``order``-point Gauss-Legendre rule on ``[-1, 1]`` (cached)."""
    nodes, weights = np.polynomial.legendre.leggauss(order)
    nodes.setflags(write=False)
    weights.setflags(write=False)
    return nodes, weights


def _panel_rule(a: float, b: float, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes on ``[a, b]`` and weights times the standard Gaussian density."""
    x, w = gauss_legendre(order)
    half, mid = 0.5 * (b - a), 0.5 * (b + a)
    z = mid + half * x
    return z, half * w * np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi)


def adaptive_gaussian_rule(
    probe,
    *,
    tol: float = 1e-10,
    order: int = 8,
    initial_panels: int = 8,
    max_panels: int = 48,
    cutoff: float = GAUSSIAN_CUTOFF,
) -> GaussHermite:
    """A composite Gauss-Legendre rule for ``E[g(Z)]``, ``Z ~ N(0, 1)``, adapted to ``probe``.

    Used where Gauss-Hermite rules fail (docs/numerics.md §2).

    Gauss-Hermite rules converge exponentially for smooth integrands but only algebraically
    for an integrand with a kink or a sharp step, e.g. a teacher's trained preactivation
    ``h~*(z)`` at vanishing ridge, which is nearly a hinge when its field ``sqrt(delta q~)`` is
    wide (it stays at the margin, ``h~* ~ log V~``, below a point and follows ``om~`` above).
    This rule starts from ``initial_panels`` equal panels on ``[-cutoff, cutoff]``; the error
    of a panel is estimated as the difference between its ``order``-point estimate of
    ``E[probe]`` and the sum over its two halves. Level by level, every panel whose error
    exceeds its equal share of ``tol`` is bisected (worst first when the budget of
    ``max_panels`` would be exceeded), until the estimated total error is below ``tol``.
    Each level evaluates ``probe`` once on all the new nodes (sorted), so the cost is a few
    vectorised calls; a bisected panel's halves keep the estimates computed for its error.

    Parameters
    ----------
    probe : callable
        ``probe(z)`` for a 1-D increasing array ``z`` returns an array ``(k, z.size)`` of the
        functions whose averages must be resolved (each of order one).
    tol : float
        Target absolute error on each average.
    order : int
        Gauss-Legendre points per panel.
    initial_panels, max_panels : int
        Starting and maximal number of panels.
    cutoff : float
        Truncation of the Gaussian measure (the mass beyond 8.5 is ~2e-17).

    Returns
    -------
    GaussHermite
        Nodes (increasing) and weights (summing to one over the truncated measure) usable
        wherever a Gauss-Hermite rule is, e.g. as the ``z1`` grid of the student's channel.
    """
    x, w = gauss_legendre(order)

    def estimates(edges_a: np.ndarray, edges_b: np.ndarray) -> np.ndarray:
        """``E[probe]`` contributions of each panel ``[a, b]``: array ``(k, n_panels)``."""
        half = 0.5 * (edges_b - edges_a)
        z = (0.5 * (edges_a + edges_b))[:, None] + half[:, None] * x[None, :]
        wz = half[:, None] * w[None, :] * np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi)
        flat = z.ravel()
        order_idx = np.argsort(flat, kind="stable")
        sorted_values = np.atleast_2d(probe(flat[order_idx]))
        values = np.empty_like(sorted_values)
        values[:, order_idx] = sorted_values
        return (values.reshape(values.shape[0], *z.shape) * wz[None]).sum(axis=2)

    def errors(a: np.ndarray, b: np.ndarray, whole: np.ndarray | None = None) -> tuple:
        """Error estimates of the panels ``[a, b]`` and the estimates of their two halves
        (``whole``: the panels' own estimates, when known from their parent's halves)."""
        mid = 0.5 * (a + b)
        n = a.size
        if whole is None:
            parts = estimates(np.concatenate([a, a, mid]), np.concatenate([b, mid, b]))
            whole, parts = parts[:, :n], parts[:, n:]
        else:
            parts = estimates(np.concatenate([a, mid]), np.concatenate([mid, b]))
        left, right = parts[:, :n], parts[:, n:]
        return np.max(np.abs(whole - left - right), axis=0), left, right

    edges = np.linspace(-cutoff, cutoff, initial_panels + 1)
    a, b = edges[:-1].copy(), edges[1:].copy()
    err, left, right = errors(a, b)
    while a.size < max_panels and err.sum() > tol:
        share = tol / a.size
        split = np.flatnonzero(err > share)
        room = max_panels - a.size
        if split.size > room:
            split = split[np.argsort(err[split])[::-1][:room]]
        if split.size == 0:
            split = np.array([int(np.argmax(err))])
        keep = np.ones(a.size, dtype=bool)
        keep[split] = False
        mid = 0.5 * (a[split] + b[split])
        new_a = np.concatenate([a[split], mid])
        new_b = np.concatenate([mid, b[split]])
        # The halves' estimates were computed with their parents' errors: only their own
        # halves are new (each level evaluates the probe on 2 sub-panels per new panel, not 3).
        new_whole = np.concatenate([left[:, split], right[:, split]], axis=1)
        new_err, new_left, new_right = errors(new_a, new_b, new_whole)
        a = np.concatenate([a[keep], new_a])
        b = np.concatenate([b[keep], new_b])
        err = np.concatenate([err[keep], new_err])
        left = np.concatenate([left[:, keep], new_left], axis=1)
        right = np.concatenate([right[:, keep], new_right], axis=1)
    order_idx = np.argsort(a)
    a, b = a[order_idx], b[order_idx]
    rules = [_panel_rule(lo, hi, order) for lo, hi in zip(a, b, strict=True)]
    nodes = np.concatenate([z for z, _ in rules])
    weights = np.concatenate([wz for _, wz in rules])
    weights /= weights.sum()
    nodes.setflags(write=False)
    weights.setflags(write=False)
    return GaussHermite(nodes=nodes, weights=weights, estimated_error=float(err.sum()))


def rule_resolves(probe, n_nodes: int, *, tol: float = 1e-10,
                  coarse: np.ndarray | None = None) -> bool:  # fmt: skip
    """Whether the ``n_nodes`` and ``2 n_nodes`` Gauss-Hermite averages of ``probe`` agree
    within ``tol`` (the check of :func:`resolved_rule`).

    ``coarse``: the values of ``probe`` at the ``n_nodes`` rule's nodes when the caller has
    them already (``probe`` is then called on the finer rule only).
    """
    rule = gauss_hermite(int(n_nodes))
    fine = gauss_hermite(2 * int(n_nodes))
    values = probe(rule.nodes) if coarse is None else coarse
    coarse_avg = np.atleast_2d(values) @ rule.weights
    fine_avg = np.atleast_2d(probe(fine.nodes)) @ fine.weights
    return bool(np.all(np.abs(coarse_avg - fine_avg) <= tol))


def resolved_rule(
    probe, n_nodes: int, *, tol: float = 1e-10, max_panels: int = 48,
    coarse: np.ndarray | None = None,
) -> GaussHermite:  # fmt: skip
    """The ``n_nodes`` Gauss-Hermite rule if it resolves ``probe``, else an adaptive rule.

    "Resolves" means that the averages of ``probe`` under the ``n_nodes`` and ``2 n_nodes``
    rules agree within ``tol`` (one cheap extra evaluation; ``coarse`` as in
    :func:`rule_resolves`). Smooth integrands therefore keep the Gauss-Hermite rule (and
    their results bit for bit), while integrands with a kink get
    :func:`adaptive_gaussian_rule` with the same tolerance.
    """
    if rule_resolves(probe, n_nodes, tol=tol, coarse=coarse):
        return gauss_hermite(int(n_nodes))
    return adaptive_gaussian_rule(probe, tol=tol, max_panels=max_panels)
