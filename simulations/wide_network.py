"""The finite-width two-layer ReLU student of docs/kernel.md and its full-batch GD training.

``f(x) = (1/sqrt(m)) sum_r a_r ReLU(w_r . x)`` with ``a_r = +-1`` fixed and only ``W`` trained on
``L(W) = 1/2 |u - y|^2 + lambda/2 |u - t|^2`` (``u = f(X)``).  The gradient is

    dL/dw_r = (1/sqrt(m)) a_r sum_i [(u_i - y_i) + lambda (u_i - t_i)] 1{w_r . x_i > 0} x_i,

computed for all neurons at once with two matrix products per step into preallocated buffers.

The kernel-regime theory of this network, its teachers and the experiments that put the two side
by side live in :mod:`replica.kernel_regime`; this module is only the finite network.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from replica.params import ParameterError, check_count, check_nonnegative, check_positive

#: "symmetric": paired neurons of opposite output sign, f_0 = 0 exactly; "random": independent
#: neurons, f_0 a Gaussian process of variance kappa^2 (its noise never decays at test points).
INIT_SCHEMES = ("symmetric", "random")


# ----------------------------------------------------------------------------- the network
class TwoLayerReLU:
    """Two-layer ReLU network with fixed output signs (mutable: ``W`` is trained in place).

    Parameters
    ----------
    W : ndarray, shape (m, d)
        First-layer weights (copied).
    a : ndarray, shape (m,)
        Output weights in {-1, +1} (fixed).
    """

    def __init__(self, W: np.ndarray, a: np.ndarray) -> None:
        self.W = np.array(W, dtype=float)
        self.a = np.asarray(a, dtype=float).copy()
        if self.W.ndim != 2 or self.a.shape != (self.W.shape[0],):
            raise ParameterError(f"W (m, d) and a (m,) shapes disagree: {W.shape}, {a.shape}")
        self.W0 = self.W.copy()

    @classmethod
    def initialise(
        cls,
        width: int,
        n_features: int,
        rng: np.random.Generator,
        *,
        kappa: float = 1.0,
        init: str = "symmetric",
    ) -> TwoLayerReLU:
        """``w_r ~ N(0, kappa^2 I)``, ``a_r`` uniform in {-1, +1} (docs/kernel.md).

        ``init="symmetric"`` draws m/2 neurons and pairs each with a copy of opposite output
        sign, so ``f_0 = 0`` exactly while every neuron keeps the same marginal law (m even).
        """
        width = check_count("width", width)
        n_features = check_count("n_features", n_features)
        kappa = check_positive("kappa", kappa)
        if init not in INIT_SCHEMES:
            raise ParameterError(f"init must be one of {INIT_SCHEMES}; got {init!r}")
        if init == "random":
            W = kappa * rng.standard_normal((width, n_features))
            a = rng.choice([-1.0, 1.0], size=width)
        else:
            if width % 2:
                raise ParameterError(f"width must be even for symmetric init; got {width}")
            half = width // 2
            Wh = kappa * rng.standard_normal((half, n_features))
            ah = rng.choice([-1.0, 1.0], size=half)
            W = np.concatenate([Wh, Wh])
            a = np.concatenate([ah, -ah])
        return cls(W, a)

    @property
    def width(self) -> int:
        return int(self.W.shape[0])

    def outputs(self, X: np.ndarray) -> np.ndarray:
        """``f(X)``, shape ``(n,)``."""
        return np.maximum(X @ self.W.T, 0.0) @ self.a / math.sqrt(self.width)

    def empirical_ntk(self, X: np.ndarray, Z: np.ndarray | None = None) -> np.ndarray:
        """Finite-width NTK at the current weights, ``(1/m) (Z X^T) * (1{ZW^T>0} 1{XW^T>0}^T)``."""
        Z = X if Z is None else Z
        ax = (X @ self.W.T > 0).astype(float)
        az = ax if Z is X else (Z @ self.W.T > 0).astype(float)
        return (Z @ X.T) * (az @ ax.T) / self.width

    def distance_from_init(self) -> float:
        """``|W - W(0)|_F``."""
        return float(np.linalg.norm(self.W - self.W0))

    def movement(self) -> np.ndarray:
        """Per-neuron movement ``|w_r - w_r(0)|``, shape ``(m,)``."""
        return np.linalg.norm(self.W - self.W0, axis=1)

    def subnetwork(self, keep: np.ndarray, *, rewind: bool = True) -> TwoLayerReLU:
        """The network of the neurons ``keep`` (indices), normalised by its own width.

        ``rewind=True`` restores the kept neurons to their initial weights (the lottery-ticket
        protocol); the sub-network's output is ``|S|^-1/2 sum_{r in S} a_r ReLU(w_r . x)``, so its
        tangent kernel is the empirical NTK of the kept neurons.
        """
        keep = np.asarray(keep, dtype=np.int64)
        if keep.ndim != 1 or keep.size == 0 or np.unique(keep).size != keep.size:
            raise ParameterError("keep must be a non-empty list of distinct neuron indices")
        if keep.min() < 0 or keep.max() >= self.width:
            raise ParameterError(f"keep indices must lie in [0, {self.width})")
        W = self.W0[keep] if rewind else self.W[keep]
        return TwoLayerReLU(W, self.a[keep])


@dataclass(frozen=True)
class NetworkTrajectory:
    """Recorded full-batch GD run of the finite network.

    Attributes
    ----------
    steps : ndarray, shape (K,)
        Recorded GD steps (outputs *before* the update of that step; the last is after ``steps``).
    train_outputs : ndarray, shape (K, n)
        ``u(k)``.
    test_outputs : ndarray, shape (K, n_test) or None
        Outputs on the test inputs.
    distance : ndarray, shape (K,)
        ``|W(k) - W(0)|_F``.
    loss : ndarray, shape (K,)
        ``1/2 |u - y|^2 + lambda/2 |u - t|^2``.
    fixed_point_rms : ndarray, shape (steps + 1,)
        ``|u(k) - u*| / sqrt(n)`` at *every* step k = 0..steps, with
        ``u* = (y + lambda t)/(1 + lambda)``; hitting times read from it are exact
        (:meth:`iterations_to_reach`).
    """

    steps: np.ndarray
    train_outputs: np.ndarray
    test_outputs: np.ndarray | None
    distance: np.ndarray
    loss: np.ndarray
    fixed_point_rms: np.ndarray

    def iterations_to_reach(self, rms_tolerance: float) -> float:
        """First step k with ``|u(k) - u*| / sqrt(n) <= rms_tolerance`` (inf if not reached).

        Exact: read from the error at every step, not from the recorded schedule.
        """
        tol = check_positive("rms_tolerance", rms_tolerance)
        hit = np.flatnonzero(self.fixed_point_rms <= tol)
        return int(hit[0]) if hit.size else float("inf")

    def to_dict(self) -> dict:
        return {
            "steps": self.steps.tolist(),
            "distance": self.distance.tolist(),
            "loss": self.loss.tolist(),
        }


def record_schedule(steps: int, n_points: int = 200) -> np.ndarray:
    """Up to ~``n_points`` recording steps in [0, steps]: every step early, geometric later."""
    steps = check_count("steps", steps, minimum=0)
    n_points = check_count("n_points", n_points, minimum=2)
    if steps + 1 <= n_points:
        return np.arange(steps + 1)
    grid = np.unique(np.round(np.geomspace(1, steps, n_points)).astype(np.int64))
    dense = np.arange(min(n_points // 4, steps) + 1)
    return np.unique(np.concatenate([dense, grid, [steps]]))


def train_distillation(
    net: TwoLayerReLU,
    X: np.ndarray,
    y: np.ndarray,
    t: np.ndarray,
    lam: float,
    lr: float,
    steps: int,
    *,
    record: Sequence[int] | None = None,
    X_test: np.ndarray | None = None,
    callback: Callable[[int], None] | None = None,
    test_record: Sequence[int] | None = None,
) -> NetworkTrajectory:
    """Full-batch GD on ``1/2 |u - y|^2 + lambda/2 |u - t|^2`` (trains ``net.W`` in place).

    Parameters
    ----------
    net : TwoLayerReLU
        The student (its current ``W`` is the starting point; ``net.W0`` the reference for the
        distance).
    X : ndarray, shape (n, d)
        Training inputs (on the unit sphere for the kernel model).
    y, t : ndarray, shape (n,)
        Targets and teacher outputs.
    lam, lr : float
        Teacher weight lambda >= 0 and step size > 0.
    steps : int
        Number of GD steps.
    record : sequence of int, optional
        Steps at which to record (default :func:`record_schedule`).
    X_test : ndarray, optional
        Test inputs whose outputs are recorded too.
    test_record : sequence of int, optional
        Recorded steps at which the test outputs are computed (default: every recorded step;
        rows of the other recorded steps are NaN).  Test outputs cost ``n_test / n`` times a
        training step.
    callback : callable, optional
        Called with the step index after each update (progress bars).
    """
    lam = check_nonnegative("lam", lam)
    lr = check_positive("lr", lr)
    steps = check_count("steps", steps, minimum=0)
    X = np.ascontiguousarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    t = np.asarray(t, dtype=float)
    n, d = X.shape
    if net.W.shape[1] != d:
        raise ParameterError(f"X must have {net.W.shape[1]} columns; got {d}")
    rec = record_schedule(steps) if record is None else np.unique(np.asarray(record, np.int64))
    if rec.size == 0 or rec[0] < 0 or rec[-1] > steps:
        raise ParameterError(f"record steps must lie in [0, {steps}]")
    m = net.width
    a_scaled = net.a / math.sqrt(m)
    # preallocated work buffers
    Z = np.empty((n, m))
    active = np.empty((n, m), dtype=bool)
    G = np.empty((n, m))
    grad = np.empty((m, d))
    out_u = np.empty((rec.size, n))
    out_test = None
    if X_test is not None:
        X_test = np.ascontiguousarray(X_test, dtype=float)
        out_test = np.full((rec.size, X_test.shape[0]), np.nan)
        Z_test = np.empty((X_test.shape[0], m))
        want_test = np.isin(rec, rec if test_record is None else np.asarray(test_record))
    out_dist = np.empty(rec.size)
    fp_rms = np.empty(steps + 1)
    u_star = (y + lam * t) / (1.0 + lam)
    u = np.empty(n)
    diff = np.empty(n)
    r_idx = 0
    W = net.W
    for k in range(steps + 1):
        np.matmul(X, W.T, out=Z)
        np.greater(Z, 0.0, out=active)
        np.maximum(Z, 0.0, out=Z)
        np.matmul(Z, a_scaled, out=u)
        np.subtract(u, u_star, out=diff)
        fp_rms[k] = math.sqrt(float(diff @ diff) / n)
        if r_idx < rec.size and rec[r_idx] == k:
            out_u[r_idx] = u
            out_dist[r_idx] = np.linalg.norm(W - net.W0)
            if out_test is not None and want_test[r_idx]:
                np.matmul(X_test, W.T, out=Z_test)
                np.maximum(Z_test, 0.0, out=Z_test)
                np.matmul(Z_test, a_scaled, out=out_test[r_idx])
            r_idx += 1
        if k == steps:
            break
        diff *= 1.0 + lam  # dL/du = (u - y) + lambda (u - t) = (1 + lambda)(u - u*)
        np.multiply(active, diff[:, None], out=G)
        np.matmul(G.T, X, out=grad)
        grad *= (lr * a_scaled)[:, None]
        W -= grad
        if callback is not None:
            callback(k + 1)
    loss = 0.5 * np.sum((out_u - y) ** 2, axis=1) + 0.5 * lam * np.sum((out_u - t) ** 2, axis=1)
    return NetworkTrajectory(rec, out_u, out_test, out_dist, loss, fp_rms)
