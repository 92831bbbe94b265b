"""Linear dynamical systems driven by a symmetric positive semi-definite matrix.

The discrete system is

    x(k+1) - x* = (I - step A) (x(k) - x*),      k = 0, 1, 2, ...

and its continuous-time counterpart (gradient flow) is dx/dt = -A (x - x*).  With the
eigendecomposition ``A = Q diag(mu) Q^T`` (computed once) every quantity is diagonal in the
eigenbasis: mode ``i`` of the error ``p = Q^T (x(0) - x*)`` is multiplied by
``(1 - step mu_i)^k`` after ``k`` steps, or by ``exp(-mu_i t)`` after a time ``t``.  Trajectories
at many times therefore cost one matrix product, and per-mode rates and hitting times are closed
forms.

Nothing here knows about learning; ``replica.kernel_regime`` maps the kernel-regime student onto
it.  Generic numerics: this module imports nothing from ``replica`` or ``simulations``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class DynamicsInputError(ValueError):
    """Invalid input to the linear-dynamics solver (a ``ValueError``; the message names it)."""


def check_positive(name: str, value) -> float:
    """``value`` as a float > 0 (finite), else :class:`DynamicsInputError` naming ``name``."""
    x = float(value)
    if not (np.isfinite(x) and x > 0):
        raise DynamicsInputError(f"{name} must be positive and finite; got {value!r}")
    return x


def check_nonnegative(name: str, value) -> float:
    """``value`` as a float >= 0 (finite), else :class:`DynamicsInputError` naming ``name``."""
    x = float(value)
    if not (np.isfinite(x) and x >= 0):
        raise DynamicsInputError(f"{name} must be non-negative and finite; got {value!r}")
    return x

#: Relative tolerance below which a negative eigenvalue is rounding noise (and set to 0).
PSD_RTOL = 1e-10


def symmetric_eigh(A: np.ndarray, *, name: str = "A") -> tuple[np.ndarray, np.ndarray]:
    """Eigendecomposition of a symmetric positive semi-definite matrix.

    Parameters
    ----------
    A : ndarray, shape (n, n)
        Symmetric PSD matrix (symmetrised as ``(A + A^T)/2`` before the decomposition).
    name : str
        Name used in error messages.

    Returns
    -------
    mu : ndarray, shape (n,)
        Eigenvalues in ascending order; negative values within rounding (``PSD_RTOL`` of the
        largest magnitude) are set to 0.
    Q : ndarray, shape (n, n)
        Orthonormal eigenvectors as columns.

    Raises
    ------
    DynamicsInputError
        If ``A`` is not square, not finite, not symmetric or has a clearly negative eigenvalue.
    """
    A = np.asarray(A, dtype=float)
    if A.ndim != 2 or A.shape[0] != A.shape[1] or A.shape[0] == 0:
        raise DynamicsInputError(f"{name} must be a non-empty square matrix; got shape {A.shape}")
    if not np.all(np.isfinite(A)):
        raise DynamicsInputError(f"{name} must be finite")
    scale = max(float(np.max(np.abs(A))), np.finfo(float).tiny)
    if np.max(np.abs(A - A.T)) > 1e-8 * scale:
        raise DynamicsInputError(f"{name} must be symmetric")
    mu, Q = np.linalg.eigh(0.5 * (A + A.T))
    floor = -PSD_RTOL * max(float(np.max(np.abs(mu))), np.finfo(float).tiny) * A.shape[0]
    if mu[0] < floor:
        raise DynamicsInputError(
            f"{name} must be positive semi-definite; smallest eigenvalue {mu[0]:.3g}"
        )
    return np.maximum(mu, 0.0), Q


def _as_steps(steps) -> np.ndarray:
    k = np.atleast_1d(np.asarray(steps))
    if k.size and (not np.all(np.isfinite(k)) or np.any(k < 0) or np.any(k != np.round(k))):
        raise DynamicsInputError("steps must be non-negative integers")
    return k.astype(np.int64)


def _as_times(times) -> np.ndarray:
    t = np.atleast_1d(np.asarray(times, dtype=float))
    if t.size and (not np.all(np.isfinite(t)) or np.any(t < 0)):
        raise DynamicsInputError("times must be non-negative and finite")
    return t


def power_factors(factors: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """``factors[None, :] ** steps[:, None]`` without overflow warnings for unstable modes."""
    with np.errstate(over="ignore"):
        return np.power(factors[None, :], steps[:, None].astype(float))


def cumulative_gain(mu: np.ndarray, step: float, steps: np.ndarray) -> np.ndarray:
    """``g_k(mu) = step * sum_{s<k} (1 - step mu)^s = (1 - (1 - step mu)^k) / mu``.

    Evaluated stably for small ``step * mu`` (``expm1``/``log1p``), with the limit ``k step`` at
    ``mu = 0``.  Returns shape ``(len(steps), len(mu))``.
    """
    x = step * np.asarray(mu, dtype=float)
    k = steps[:, None].astype(float)
    out = np.empty((steps.size, x.size))
    small = x < 0.5
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        # 1 - (1-x)^k = -expm1(k log1p(-x)) is accurate for small x.
        num_small = -np.expm1(k * np.log1p(-x[small]))
        num_large = 1.0 - np.power(1.0 - x[~small], k)
    out[:, small] = num_small
    out[:, ~small] = num_large
    positive = x > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        out[:, positive] = out[:, positive] / np.asarray(mu, dtype=float)[positive]
    out[:, ~positive] = k * step
    return out


@dataclass(frozen=True)
class LinearDynamics:
    """``x(k+1) - x* = (I - step A)(x(k) - x*)`` for a symmetric PSD ``A``, solved spectrally.

    Build it with :meth:`from_matrix`; the eigendecomposition is done once.

    Attributes
    ----------
    eigenvalues : ndarray, shape (n,)
        Eigenvalues ``mu`` of ``A`` (ascending).
    eigenvectors : ndarray, shape (n, n)
        Matching orthonormal eigenvectors ``Q`` (columns).
    fixed_point : ndarray, shape (n,)
        ``x*``.
    initial : ndarray, shape (n,)
        ``x(0)``.
    step : float
        Step size of the discrete iteration (> 0).
    """

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    fixed_point: np.ndarray
    initial: np.ndarray
    step: float

    @classmethod
    def from_matrix(
        cls,
        A: np.ndarray,
        fixed_point: np.ndarray,
        initial: np.ndarray,
        step: float,
        *,
        name: str = "A",
    ) -> LinearDynamics:
        """Decompose ``A`` and validate the shapes of ``x*`` and ``x(0)``."""
        step = check_positive("step", step)
        mu, Q = symmetric_eigh(A, name=name)
        return cls.from_eigh(mu, Q, fixed_point, initial, step)

    @classmethod
    def from_eigh(
        cls,
        eigenvalues: np.ndarray,
        eigenvectors: np.ndarray,
        fixed_point: np.ndarray,
        initial: np.ndarray,
        step: float,
    ) -> LinearDynamics:
        """Build from an existing eigendecomposition (e.g. reused across step sizes)."""
        step = check_positive("step", step)
        n = eigenvectors.shape[0]
        x_star = np.asarray(fixed_point, dtype=float).reshape(-1)
        x0 = np.asarray(initial, dtype=float).reshape(-1)
        if x_star.shape != (n,):
            raise DynamicsInputError(f"fixed_point must have length {n}; got {x_star.shape}")
        if x0.shape != (n,):
            raise DynamicsInputError(f"initial must have length {n}; got {x0.shape}")
        if not (np.all(np.isfinite(x_star)) and np.all(np.isfinite(x0))):
            raise DynamicsInputError("fixed_point and initial must be finite")
        mu = np.asarray(eigenvalues, dtype=float)
        return cls(mu, np.asarray(eigenvectors, dtype=float), x_star, x0, step)

    # ----------------------------------------------------------------- modes and rates
    @property
    def size(self) -> int:
        return int(self.eigenvalues.size)

    @property
    def modes(self) -> np.ndarray:
        """Initial error in the eigenbasis, ``p = Q^T (x(0) - x*)``."""
        return self.eigenvectors.T @ (self.initial - self.fixed_point)

    @property
    def contraction_factors(self) -> np.ndarray:
        """Per-mode multiplier per step, ``1 - step mu_i``."""
        return 1.0 - self.step * self.eigenvalues

    @property
    def rates(self) -> np.ndarray:
        """Per-mode decay rate per step, ``-log|1 - step mu_i|`` (inf if a factor is 0)."""
        with np.errstate(divide="ignore"):
            return -np.log(np.abs(self.contraction_factors))

    @property
    def is_stable(self) -> bool:
        """True if every mode with a non-zero component contracts: ``|1 - step mu| < 1``.

        A mode with ``mu = 0`` never moves; it is stable only if it carries no error.
        """
        p = self.modes
        active = np.abs(p) > 1e-14 * max(1.0, float(np.max(np.abs(p), initial=0.0)))
        return bool(np.all(np.abs(self.contraction_factors[active]) < 1.0))

    @property
    def max_stable_step(self) -> float:
        """Largest step with every positive mode contracting: ``2 / max(mu)``."""
        top = float(self.eigenvalues[-1])
        return 2.0 / top if top > 0 else float("inf")

    # ------------------------------------------------------------------- trajectories
    def error_modes(self, steps) -> np.ndarray:
        """``Q^T (x(k) - x*)`` for every ``k`` in ``steps``; shape ``(len(steps), n)``."""
        k = _as_steps(steps)
        return power_factors(self.contraction_factors, k) * self.modes[None, :]

    def trajectory(self, steps) -> np.ndarray:
        """``x(k)`` for every ``k`` in ``steps``; shape ``(len(steps), n)``."""
        return self.fixed_point[None, :] + self.error_modes(steps) @ self.eigenvectors.T

    def error_norms(self, steps) -> np.ndarray:
        """``|x(k) - x*|_2`` for every ``k`` in ``steps`` (no n-vectors formed)."""
        return np.sqrt(np.sum(self.error_modes(steps) ** 2, axis=1))

    def flow_error_modes(self, times) -> np.ndarray:
        """Gradient flow ``dx/dt = -A (x - x*)`` in the eigenbasis: ``exp(-mu t) p``."""
        t = _as_times(times)
        return np.exp(-np.outer(t, self.eigenvalues)) * self.modes[None, :]

    def flow(self, times) -> np.ndarray:
        """Gradient-flow solution ``x(t) = x* + Q exp(-mu t) p``; shape ``(len(times), n)``.

        ``t = step * k`` is the time reached by ``k`` discrete steps; the discrete trajectory
        tends to the flow as ``step -> 0`` at fixed ``t``.
        """
        return self.fixed_point[None, :] + self.flow_error_modes(times) @ self.eigenvectors.T

    def flow_error_norms(self, times) -> np.ndarray:
        """``|x(t) - x*|_2`` along the gradient flow."""
        return np.sqrt(np.sum(self.flow_error_modes(times) ** 2, axis=1))

    def cumulative_gains(self, steps) -> np.ndarray:
        """``g_k(mu_i) = step sum_{s<k} (1 - step mu_i)^s``; shape ``(len(steps), n)``.

        ``x(k) - x(0) = -Q diag(mu g_k) p``; linear read-outs of the accumulated drive (e.g.
        the parameters of a linearised model) are ``Q diag(g_k) Q^T (x* - x(0))``.
        """
        return cumulative_gain(self.eigenvalues, self.step, _as_steps(steps))

    def flow_cumulative_gains(self, times) -> np.ndarray:
        """Continuous analogue of :meth:`cumulative_gains`: ``(1 - exp(-mu t)) / mu``."""
        t = _as_times(times)
        mu = self.eigenvalues
        out = np.empty((t.size, mu.size))
        pos = mu > 0
        out[:, pos] = -np.expm1(-np.outer(t, mu[pos])) / mu[pos]
        out[:, ~pos] = t[:, None]
        return out

    def apply(self, function, vector: np.ndarray) -> np.ndarray:
        """``Q diag(function(mu)) Q^T vector`` for a scalar function of the eigenvalues."""
        v = np.asarray(vector, dtype=float)
        return self.eigenvectors @ (function(self.eigenvalues) * (self.eigenvectors.T @ v))

    # ------------------------------------------------------------------- hitting times
    def mode_iterations(self, tolerance: float) -> np.ndarray:
        """Steps for each mode alone to fall to ``|p_i| (1 - step mu_i)^k <= tolerance``.

        0 if already below, inf if the mode does not contract.
        """
        tol = check_positive("tolerance", tolerance)
        p = np.abs(self.modes)
        rate = self.rates
        out = np.zeros_like(p)
        need = p > tol
        with np.errstate(divide="ignore", invalid="ignore"):
            k = np.ceil(np.log(p[need] / tol) / rate[need] - 1e-12)
        k = np.where(rate[need] > 0, k, np.inf)
        out[need] = k
        return out

    def iterations_to_reach(self, tolerance: float, *, max_steps: int = 10**9) -> float:
        """Smallest ``k`` with ``|x(k) - x*|_2 <= tolerance`` (inf if never, or past ``max_steps``).

        For a stable system the error is non-increasing in ``k`` (each mode is), so the hitting
        time is found by bracketing with doubling and then bisection on the closed form.
        """
        tol = check_positive("tolerance", tolerance)
        check_nonnegative("max_steps", max_steps)
        if self.error_norms([0])[0] <= tol:
            return 0
        if not self.is_stable:
            return float("inf")
        hi = 1
        while self.error_norms([hi])[0] > tol:
            if hi >= max_steps:
                return float("inf")
            hi = min(2 * hi, int(max_steps))
        lo = hi // 2  # error(lo) > tol (lo = 0 checked above)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.error_norms([mid])[0] <= tol:
                hi = mid
            else:
                lo = mid
        return hi

    def flow_time_to_reach(self, tolerance: float) -> float:
        """Smallest ``t`` with ``|x(t) - x*|_2 <= tolerance`` along the flow (inf if never)."""
        tol = check_positive("tolerance", tolerance)
        err = lambda t: float(self.flow_error_norms([t])[0])  # noqa: E731
        if err(0.0) <= tol:
            return 0.0
        p = self.modes
        floor = float(np.sqrt(np.sum(p[self.eigenvalues <= 0] ** 2)))
        if floor > tol:
            return float("inf")
        hi = 1.0 / max(float(self.eigenvalues[-1]), 1e-300)
        while err(hi) > tol:
            hi *= 2.0
            if hi > 1e300:
                return float("inf")
        lo = 0.0
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            if err(mid) <= tol:
                hi = mid
            else:
                lo = mid
            if hi - lo <= 1e-12 * hi:
                break
        return hi

    def to_dict(self) -> dict:
        """Summary (not the matrices): size, step, spectrum range, stability."""
        return {
            "size": self.size,
            "step": self.step,
            "eigenvalue_min": float(self.eigenvalues[0]),
            "eigenvalue_max": float(self.eigenvalues[-1]),
            "max_stable_step": self.max_stable_step,
            "stable": self.is_stable,
            "initial_error": float(np.linalg.norm(self.initial - self.fixed_point)),
        }
