"""The neural tangent kernel of the two-layer ReLU student and its Gram matrices (docs/kernel.md).

For unit inputs with ``x . x' = rho`` and ``w ~ N(0, kappa^2 I)``:

* NTK (the paper's kernel-regime Gram ``H^infinity``):
  ``k(rho) = E_w[x.x' 1{w.x > 0} 1{w.x' > 0}] = rho (pi - arccos rho) / (2 pi)``, independent of
  kappa; ``k(1) = 1/2``.
* Covariance of the initial function (arc-cosine kernel of order 1, times kappa^2):
  ``E_w[ReLU(w.x) ReLU(w.x')] / kappa^2 = (sqrt(1 - rho^2) + (pi - arccos rho) rho) / (2 pi)``.
* The Gram of a *finite* set of neurons (the pruned network of the lottery-ticket protocol) is the
  empirical NTK ``(1/|S|) (X X^T) * (A_S A_S^T)`` with ``A_S`` the activation pattern of the kept
  neurons: :func:`empirical_ntk_gram`.
"""

from __future__ import annotations

import math

import numpy as np

from replica.params import ParameterError, check_nonnegative

# Taylor data of k(rho) at rho = 0: k(rho) = rho/4 + rho^2/(2 pi) + rho^4/(12 pi) + O(rho^6).
NTK_AT_ONE = 0.5
NTK_SLOPE_AT_ZERO = 0.25
NTK_HALF_CURVATURE_AT_ZERO = 1.0 / (2.0 * math.pi)


def normalise_rows(X: np.ndarray) -> np.ndarray:
    """Project each row of ``X`` onto the unit sphere (the model's input domain, docs/kernel.md)."""
    X = np.asarray(X, dtype=float)
    if X.ndim != 2:
        raise ParameterError(f"X must be a 2-D array; got shape {X.shape}")
    norms = np.linalg.norm(X, axis=1)
    if np.any(norms == 0) or not np.all(np.isfinite(norms)):
        raise ParameterError("X must have finite, non-zero rows to be normalised")
    return X / norms[:, None]


def check_sphere(X: np.ndarray, name: str) -> np.ndarray:
    """``X`` as a float array whose rows lie on the unit sphere (else ParameterError)."""
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ParameterError(f"{name} must be a non-empty 2-D array; got shape {X.shape}")
    norms = np.linalg.norm(X, axis=1)
    if not np.allclose(norms, 1.0, rtol=0, atol=1e-8):
        raise ParameterError(f"{name} rows must lie on the unit sphere (use normalise_rows)")
    return X


def ntk_kernel_function(cosine) -> np.ndarray:
    """``k(rho) = rho (pi - arccos rho) / (2 pi)``, the NTK between unit inputs (docs/kernel.md)."""
    rho = np.clip(np.asarray(cosine, dtype=float), -1.0, 1.0)
    return rho * (np.pi - np.arccos(rho)) / (2.0 * np.pi)


def relu_covariance_function(cosine) -> np.ndarray:
    """``E_w[ReLU(w.x) ReLU(w.x')]`` for ``w ~ N(0, I)`` and unit inputs (ours, standard).

    ``kappa^2`` times it is the covariance of the student's initial function f_0 (a Gaussian
    process as m -> inf) under the "random" initialisation.
    """
    rho = np.clip(np.asarray(cosine, dtype=float), -1.0, 1.0)
    return (np.sqrt(1.0 - rho**2) + (np.pi - np.arccos(rho)) * rho) / (2.0 * np.pi)


def ntk_gram(X: np.ndarray, Z: np.ndarray | None = None) -> np.ndarray:
    """NTK Gram matrix ``H_ij = k(x_i . x_j)`` (docs/kernel.md), or the cross kernel
    ``k(z_a . x_j)``.

    Parameters
    ----------
    X : ndarray, shape (n, d)
        Training inputs on the unit sphere.
    Z : ndarray, shape (n_test, d), optional
        Test inputs on the unit sphere; if given, returns ``k(Z, X)`` of shape ``(n_test, n)``.
    """
    X = check_sphere(X, "X")
    if Z is None:
        H = ntk_kernel_function(X @ X.T)
        np.fill_diagonal(H, NTK_AT_ONE)
        return H
    Z = check_sphere(Z, "Z")
    if Z.shape[1] != X.shape[1]:
        raise ParameterError(f"Z must have {X.shape[1]} columns; got {Z.shape[1]}")
    return ntk_kernel_function(Z @ X.T)


def empirical_ntk_gram(W: np.ndarray, X: np.ndarray, Z: np.ndarray | None = None) -> np.ndarray:
    """Finite-width NTK of neurons ``W`` (rows): ``(1/m) (Z X^T) * (1{Z W^T > 0} 1{X W^T > 0}^T)``.

    The gradient of ``f(x) = m^-1/2 sum_r a_r ReLU(w_r . x)`` with respect to ``w_r`` is
    ``m^-1/2 a_r 1{w_r.x > 0} x``; with ``a_r^2 = 1`` the tangent kernel does not depend on the
    output signs.  As m -> inf it tends to :func:`ntk_gram`.
    """
    W = np.asarray(W, dtype=float)
    ax = (X @ W.T > 0).astype(float)
    az = ax if Z is None else (Z @ W.T > 0).astype(float)
    Zm = X if Z is None else Z
    return (Zm @ X.T) * (az @ ax.T) / W.shape[0]


# ------------------------------------------------------------------------------ linearisation
def mean_offdiagonal_square(X: np.ndarray) -> float:
    """``tau^2 = mean_{i != j} (x_i . x_j)^2`` (~ 1/d for isotropic noise on the sphere)."""
    X = np.asarray(X, dtype=float)
    n = X.shape[0]
    if n < 2:
        raise ParameterError("X must have at least 2 rows")
    G = X @ X.T
    return float((np.sum(G**2) - np.sum(np.diag(G) ** 2)) / (n * (n - 1)))


def linearised_ntk_coefficients(tau2: float) -> tuple[float, float, float]:
    """``(c0, c1, c2)`` of ``H ~ c0 11^T + c1 XX^T + c2 I`` in the proportional regime (ours).

    Off the diagonal ``x_i.x_j = O(d^-1/2)``: Taylor-expand k to second order and replace the
    squares by their mean tau^2 (the fluctuating remainder has vanishing operator norm, as do the
    O(rho^4) terms); on the diagonal k(1) = 1/2 is restored by the identity term.
    """
    tau2 = check_nonnegative("tau2", tau2)
    c0 = NTK_HALF_CURVATURE_AT_ZERO * tau2
    c1 = NTK_SLOPE_AT_ZERO
    c2 = NTK_AT_ONE - c1 - c0
    return c0, c1, c2


def linearised_ntk_gram(
    X: np.ndarray, Z: np.ndarray | None = None, *, tau2: float | None = None
) -> np.ndarray:
    """Linearised NTK Gram ``c0 11^T + c1 XX^T + c2 I`` (or the cross kernel ``c0 + c1 ZX^T``)."""
    X = check_sphere(X, "X")
    if tau2 is None:
        tau2 = mean_offdiagonal_square(X)
    c0, c1, c2 = linearised_ntk_coefficients(tau2)
    if Z is None:
        H = c0 + c1 * (X @ X.T)
        H[np.diag_indices_from(H)] += c2
        return H
    Z = check_sphere(Z, "Z")
    return c0 + c1 * (Z @ X.T)
