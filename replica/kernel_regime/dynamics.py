"""Kernel-regime dynamics of knowledge distillation (Panahi, Rahbar et al., arXiv 2003.13438).

The student ``f(x) = m^-1/2 sum_r a_r ReLU(w_r . x)`` is trained on W by gradient descent with step
``lr`` on ``L = 1/2 |u - y|^2 + lambda/2 |u - t|^2`` (``u = f(X)``, ``t`` the teacher's outputs on
the training inputs).  Since ``dL/du = (1 + lambda)(u - u*)`` with

    u* = (y + lambda t) / (1 + lambda),

in the kernel regime (m -> inf) the training outputs follow

    u(k+1) - u* = (I - lr (1 + lambda) H)(u(k) - u*),

solved spectrally by :class:`saddle.linear_dynamics.LinearDynamics`.  Paper: the linear system,
u*, the per-mode rates ``(1 - lr (1 + lambda) mu_i)^k`` and the capacity bound
``|W(k) - W(0)|_F <~ sqrt((u* - u0)^T H^-1 (u* - u0))``.  Ours (standard NTK algebra): the exact
distance trajectory, the test-output trajectory, exact hitting times, per-mode residual energies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from replica.params import ParameterError, check_nonnegative, check_positive
from saddle.linear_dynamics import LinearDynamics, symmetric_eigh


def distillation_fixed_point(y: np.ndarray, t: np.ndarray, lam: float) -> np.ndarray:
    """Fixed point ``u* = (y + lambda t) / (1 + lambda)`` of the KD gradient descent
    (docs/kernel.md).

    The unique minimiser over u of ``1/2 |u - y|^2 + lambda/2 |u - t|^2``: the student
    interpolates between the data and the teacher (the paper's main theorem).
    """
    lam = check_nonnegative("lam", lam)
    y = np.asarray(y, dtype=float)
    t = np.asarray(t, dtype=float)
    if y.shape != t.shape:
        raise ParameterError(f"t must have the shape of y {y.shape}; got {t.shape}")
    return (y + lam * t) / (1.0 + lam)


def distillation_loss(u: np.ndarray, y: np.ndarray, t: np.ndarray, lam: float) -> np.ndarray:
    """``L = 1/2 |u - y|^2 + lambda/2 |u - t|^2`` along the last axis of ``u``."""
    u = np.asarray(u, dtype=float)
    return 0.5 * np.sum((u - y) ** 2, axis=-1) + 0.5 * lam * np.sum((u - t) ** 2, axis=-1)


def capacity_measure(H: np.ndarray, u_star: np.ndarray, u0: np.ndarray) -> float:
    """``sqrt((u* - u0)^T H^-1 (u* - u0))`` (the paper's capacity measure, docs/kernel.md).

    In the kernel regime it is the limit of ``|W(k) - W(0)|_F`` as k -> inf (see
    :meth:`KernelRegime.distance`).  Inf if ``u* - u0`` has a component in H's null space.
    """
    mu, Q = symmetric_eigh(H, name="H")
    p = Q.T @ (np.asarray(u_star, float) - np.asarray(u0, float))
    return _capacity_from_modes(mu, p)


def _capacity_from_modes(mu: np.ndarray, p: np.ndarray) -> float:
    null = mu <= 1e-14 * max(float(mu[-1]), 1e-300)
    if np.any(np.abs(p[null]) > 1e-12 * max(1.0, float(np.max(np.abs(p))))):
        return float("inf")
    return float(np.sqrt(np.sum(p[~null] ** 2 / mu[~null])))


def spectral_teacher(H: np.ndarray, y: np.ndarray, n_modes: int, *, end: str = "top") -> np.ndarray:
    """A teacher aligned with H: the projection of ``y`` on H's ``n_modes`` top (or bottom)
    eigenvectors.

    The paper's claim is that a teacher in the top eigenspace speeds the student up; the bottom
    eigenspace is the control (``end="bottom"``).
    """
    mu, Q = symmetric_eigh(H, name="H")
    if not 1 <= n_modes <= mu.size:
        raise ParameterError(f"n_modes must lie in [1, {mu.size}]; got {n_modes}")
    if end not in ("top", "bottom"):
        raise ParameterError(f"end must be 'top' or 'bottom'; got {end!r}")
    P = Q[:, -n_modes:] if end == "top" else Q[:, :n_modes]
    return P @ (P.T @ np.asarray(y, dtype=float))


# ------------------------------------------------------------------------------ trajectories
@dataclass(frozen=True)
class KernelRegime:
    """Kernel-regime prediction for one KD problem; build with :func:`kernel_regime`.

    Attributes
    ----------
    dynamics : LinearDynamics
        ``u(k+1) - u* = (I - eta H)(u(k) - u*)`` with ``eta = lr (1 + lambda)``.
    y, t : ndarray, shape (n,)
        Targets and teacher outputs on the training inputs.
    lam, lr : float
        Teacher weight lambda and step size.
    """

    dynamics: LinearDynamics
    y: np.ndarray
    t: np.ndarray
    lam: float
    lr: float

    # ----------------------------------------------------------- basic quantities
    @property
    def u_star(self) -> np.ndarray:
        return self.dynamics.fixed_point

    @property
    def u0(self) -> np.ndarray:
        return self.dynamics.initial

    @property
    def effective_step(self) -> float:
        """``eta = lr (1 + lambda)``."""
        return self.dynamics.step

    @property
    def eigenvalues(self) -> np.ndarray:
        return self.dynamics.eigenvalues

    @property
    def mode_rates(self) -> np.ndarray:
        """Per-eigendirection decay rate per step, ``-log|1 - lr (1 + lambda) mu_i|``."""
        return self.dynamics.rates

    @property
    def drive_modes(self) -> np.ndarray:
        """``Q^T (u* - u0)``: what the student still has to learn, per eigendirection."""
        return -self.dynamics.modes

    # ----------------------------------------------------------- training outputs
    def train_outputs(self, steps) -> np.ndarray:
        """``u(k)`` for gradient descent; shape ``(len(steps), n)``."""
        return self.dynamics.trajectory(steps)

    def flow_outputs(self, times) -> np.ndarray:
        """Gradient flow ``du/dt = -(1 + lambda) H (u - u*)``; ``t = lr k`` matches GD step k."""
        return self.dynamics.flow((1.0 + self.lam) * np.atleast_1d(np.asarray(times, float)))

    def train_loss(self, steps) -> np.ndarray:
        """``L(u(k))`` along GD."""
        return distillation_loss(self.train_outputs(steps), self.y, self.t, self.lam)

    def fixed_point_error(self, steps) -> np.ndarray:
        """RMS distance to the fixed point, ``|u(k) - u*| / sqrt(n)``."""
        return self.dynamics.error_norms(steps) / math.sqrt(self.dynamics.size)

    def iterations_to_reach(self, rms_tolerance: float) -> float:
        """Smallest integer k with ``|u(k) - u*| / sqrt(n) <= rms_tolerance`` (inf if never).

        Exact: bisection on the closed-form error, which is non-increasing in k when stable.
        """
        tol = check_positive("rms_tolerance", rms_tolerance)
        return self.dynamics.iterations_to_reach(tol * math.sqrt(self.dynamics.size))

    def residual_energy(self, steps) -> np.ndarray:
        """Per-eigenmode residual energy ``(q_i . (u(k) - u*))^2 = p_i^2 (1 - eta mu_i)^(2k)``.

        The spectral diagnostic of the paper's convergence theorem: mode i of H decays at its
        own rate; shape ``(len(steps), n)``, modes in ascending order of ``mu_i``.
        """
        return self.dynamics.error_modes(steps) ** 2

    # ----------------------------------------------------------- test outputs
    def test_outputs(self, K_test: np.ndarray, f0_test: np.ndarray | None, steps) -> np.ndarray:
        """``f_k(z) = f_0(z) + k(z, X) Q diag(g_k) Q^T (u* - u0)``; shape ``(len(steps), n_test)``.

        Parameters
        ----------
        K_test : ndarray, shape (n_test, n)
            Cross kernel :func:`ntk_gram` ``(X, Z)``.
        f0_test : ndarray, shape (n_test,), optional
            Initial function on the test inputs (zero if omitted, e.g. symmetric initialisation).
        """
        K_test = np.asarray(K_test, dtype=float)
        gains = self.dynamics.cumulative_gains(steps)
        coef = (gains * self.drive_modes[None, :]) @ self.dynamics.eigenvectors.T
        out = coef @ K_test.T
        if f0_test is not None:
            out += np.asarray(f0_test, dtype=float)[None, :]
        return out

    # ----------------------------------------------------------- parameter distance
    def distance(self, steps) -> np.ndarray:
        """Kernel-regime ``|W(k) - W(0)|_F = sqrt(sum_i mu_i g_k(mu_i)^2 p_i^2)`` (ours).

        W(k) - W(0) = J^T c_k with J the (fixed) Jacobian, J J^T = H, and
        c_k = Q diag(g_k) Q^T (u* - u0) the accumulated (1 + lambda)-weighted residuals.
        """
        gains = self.dynamics.cumulative_gains(steps)
        return np.sqrt(np.sum(self.eigenvalues * (gains * self.drive_modes) ** 2, axis=1))

    def flow_distance(self, times) -> np.ndarray:
        """Gradient-flow analogue of :meth:`distance` at time ``t = lr k``."""
        tau = (1.0 + self.lam) * np.atleast_1d(np.asarray(times, float))
        gains = self.dynamics.flow_cumulative_gains(tau)
        return np.sqrt(np.sum(self.eigenvalues * (gains * self.drive_modes) ** 2, axis=1))

    def capacity(self) -> float:
        """``sqrt((u* - u0)^T H^-1 (u* - u0))``, the k -> inf limit of :meth:`distance`."""
        return _capacity_from_modes(self.eigenvalues, self.drive_modes)

    def to_dict(self) -> dict:
        """Scalar summary: sizes, step, spectrum, stability, capacity."""
        d = self.dynamics.to_dict()
        d.update(
            {
                "lam": self.lam,
                "lr": self.lr,
                "effective_step": self.effective_step,
                "capacity": self.capacity(),
            }
        )
        return d


def kernel_regime(
    H: np.ndarray,
    y: np.ndarray,
    t: np.ndarray,
    lam: float,
    lr: float,
    u0: np.ndarray | None = None,
    *,
    require_stable: bool = True,
) -> KernelRegime:
    """Kernel-regime model of KD gradient descent (docs/kernel.md).

    Parameters
    ----------
    H : ndarray, shape (n, n)
        NTK Gram matrix (:func:`ntk_gram`) or its linearisation.
    y, t : ndarray, shape (n,)
        Targets and teacher outputs on the training inputs.
    lam : float
        Weight of the teacher term, lambda >= 0.
    lr : float
        Gradient-descent step size > 0.
    u0 : ndarray, shape (n,), optional
        Initial outputs f_0(X) (zero if omitted: kappa -> 0 or symmetric initialisation).
    require_stable : bool
        Raise if ``lr (1 + lambda) mu_max >= 2`` (GD would diverge).
    """
    mu, Q = symmetric_eigh(H, name="H")
    return kernel_regime_from_eigh(mu, Q, y, t, lam, lr, u0, require_stable=require_stable)


def kernel_regime_from_eigh(
    mu: np.ndarray,
    Q: np.ndarray,
    y: np.ndarray,
    t: np.ndarray,
    lam: float,
    lr: float,
    u0: np.ndarray | None = None,
    *,
    require_stable: bool = True,
) -> KernelRegime:
    """:func:`kernel_regime` from an existing eigendecomposition ``H = Q diag(mu) Q^T``.

    A sweep over lambda, the step or the teacher reuses one decomposition (O(n^2) per point).
    """
    lam = check_nonnegative("lam", lam)
    lr = check_positive("lr", lr)
    y = np.asarray(y, dtype=float).reshape(-1)
    t = np.asarray(t, dtype=float).reshape(-1)
    u_star = distillation_fixed_point(y, t, lam)
    if u0 is None:
        u0 = np.zeros_like(y)
    if require_stable and lr * (1.0 + lam) * mu[-1] >= 2.0:
        limit = 2.0 / ((1.0 + lam) * mu[-1])
        raise ParameterError(f"lr must be < 2 / ((1 + lam) mu_max) = {limit:.4g}; got {lr:g}")
    dyn = LinearDynamics.from_eigh(mu, Q, u_star, u0, lr * (1.0 + lam))
    return KernelRegime(dyn, y, t, lam, lr)
