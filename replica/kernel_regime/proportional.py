"""Proportional-regime (n, d -> inf, n/d fixed) test error of the kernel student (ours).

For Gaussian-mixture data on the sphere (docs/model.md §1) the NTK Gram linearises to
``H ~ c0 11^T + c1 XX^T + c2 I`` (:func:`replica.kernel_regime.gram.linearised_ntk_gram`, El Karoui
2010 style), the student becomes a linear read-out ``b_k + z . beta_k`` and its test error along
training follows from three scalars.  Checked numerically (tests), not proved.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from replica.kernel_regime.gram import (
    check_sphere,
    linearised_ntk_coefficients,
    linearised_ntk_gram,
    mean_offdiagonal_square,
)
from replica.params import ParameterError, check_open_unit, check_positive
from saddle.linear_dynamics import LinearDynamics


def mixture_readout_error(mean: np.ndarray, bias: np.ndarray, std: np.ndarray, rho: float):
    """Test error of ``sign(b + s m + std g)``, ``g ~ N(0,1)``, label ``s = +1`` w.p. rho.

    ``rho H((m + b)/std) + (1 - rho) H((m - b)/std)`` with ``H(x) = P(N(0,1) > x)``
    (docs/model.md §3, Eq. 12 form).
    """
    rho = check_open_unit("rho", rho)
    mean, bias, std = (np.asarray(a, dtype=float) for a in (mean, bias, std))
    return rho * ndtr(-(mean + bias) / std) + (1.0 - rho) * ndtr(-(mean - bias) / std)


@dataclass(frozen=True)
class ProportionalPrediction:
    """Test error of the kernel student along training from the linearised Gram (ours).

    The linearised student is ``f_k(z) = b_k + z . beta_k`` on unit test inputs; for a mixture
    input ``z = (s v/sqrt(d) + sqrt(Delta) xi)/r`` its output is Gaussian with mean
    ``b_k + s m_k`` and standard deviation ``sigma_k``.

    Attributes
    ----------
    steps : ndarray
        GD steps k.
    overlap : ndarray
        ``m_k = v . beta_k / (sqrt(d) r)``.
    bias : ndarray
        ``b_k``.
    noise_std : ndarray
        ``sigma_k = sqrt(Delta) |beta_k| / r``.
    test_error : ndarray
        ``rho H((m+b)/sigma) + (1-rho) H((m-b)/sigma)``.
    """

    steps: np.ndarray
    overlap: np.ndarray
    bias: np.ndarray
    noise_std: np.ndarray
    test_error: np.ndarray

    def to_dict(self) -> dict:
        return {
            "steps": self.steps.tolist(),
            "overlap": self.overlap.tolist(),
            "bias": self.bias.tolist(),
            "noise_std": self.noise_std.tolist(),
            "test_error": self.test_error.tolist(),
        }


def proportional_test_error(
    X_unit: np.ndarray,
    v: np.ndarray,
    rho: float,
    delta: float,
    u_star: np.ndarray,
    effective_step: float,
    steps,
    *,
    tau2: float | None = None,
) -> ProportionalPrediction:
    """Deterministic test-error curve of the kernel student in the proportional regime (ours).

    Uses the linearised Gram ``K = c0 11^T + c1 XX^T + c2 I`` (:func:`linearised_ntk_gram`),
    zero initial function (symmetric initialisation or kappa -> 0), and the Gaussian law of the
    linearised read-out on a fresh mixture sample (docs/model.md §1).  The curve depends on the
    training set only through three scalars (m_k, b_k, sigma_k), which concentrate as n, d -> inf
    with n/d fixed; no test sample and no network is involved.

    Parameters
    ----------
    X_unit : ndarray, shape (n, d)
        Training inputs on the sphere (normalised mixture samples).
    v : ndarray, shape (d,)
        Cluster direction of the mixture (the raw inputs are ``s v/sqrt(d) + sqrt(Delta) z``).
    rho, delta : float
        Mixture parameters.
    u_star : ndarray, shape (n,)
        Fixed point ``(y + lambda t)/(1 + lambda)``.
    effective_step : float
        ``lr (1 + lambda)``.
    steps : array of int
        GD steps at which to evaluate.
    """
    rho = check_open_unit("rho", rho)
    delta = check_positive("delta", delta)
    X_unit = check_sphere(X_unit, "X_unit")
    n, d = X_unit.shape
    v = np.asarray(v, dtype=float).reshape(-1)
    if v.shape != (d,):
        raise ParameterError(f"v must have length {d}; got {v.shape}")
    if tau2 is None:
        tau2 = mean_offdiagonal_square(X_unit)
    c0, c1, _ = linearised_ntk_coefficients(tau2)
    K = linearised_ntk_gram(X_unit, tau2=tau2)
    dyn = LinearDynamics.from_matrix(K, u_star, np.zeros(n), effective_step, name="H")
    gains = dyn.cumulative_gains(steps)
    coef = (gains * (dyn.eigenvectors.T @ np.asarray(u_star, float))[None, :]) @ dyn.eigenvectors.T
    beta = c1 * coef @ X_unit  # (len(steps), d)
    bias = c0 * coef.sum(axis=1)
    radius = math.sqrt(float(v @ v) / d + delta * d)  # typical raw input norm
    overlap = beta @ v / (math.sqrt(d) * radius)
    noise_std = math.sqrt(delta) * np.linalg.norm(beta, axis=1) / radius
    with np.errstate(divide="ignore", invalid="ignore"):
        err = mixture_readout_error(overlap, bias, noise_std, rho)
    # k = 0: the zero function predicts label 0 everywhere (f > 0 is false): error rho.
    err = np.where(noise_std > 0, err, rho)
    return ProportionalPrediction(
        np.asarray(steps, dtype=np.int64).reshape(-1), overlap, bias, noise_std, err
    )
