"""Kernel-regime theory of knowledge transfer to a very wide two-layer ReLU student (SPEC §6).

Model (Panahi, Rahbar, Bhattacharyya, Dubhashi, Haghir Chehreghani, "Analysis of knowledge
transfer in kernel regime", arXiv 2003.13438; v1 was titled "On the unreasonable effectiveness of
knowledge distillation: analysis in the kernel regime").  The student is::

    f(x) = (1/sqrt(m)) sum_r a_r ReLU(w_r . x),  |x| = 1,  a_r = +-1 fixed,
    w_r(0) ~ N(0, kappa^2 I),

trained on W only by gradient descent with step ``lr`` on::

    L(W) = 1/2 |u - y|^2 + lambda/2 |u - t|^2,    u = f(X),  t = teacher outputs on X.

Because dL/du = (1 + lambda)(u - u*), with the fixed point u* = (y + lambda t)/(1 + lambda), in the
kernel regime (m -> inf) the training outputs obey the linear system::

    u(k+1) - u* = (I - lr (1 + lambda) H)(u(k) - u*),   H_ij = x_i.x_j (pi - arccos x_i.x_j)/(2 pi),

which :mod:`saddle.linear_dynamics` solves spectrally.

What is proved where (cited by content: theorem numbering differs between the arXiv versions)
------------------------------------------------------------------------------------------------
* Paper (main convergence theorem, kernel regime, Du et al. style over-parameterisation): the
  student's training outputs follow the linear system above up to terms vanishing with the width;
  hence they converge to u*, the student interpolates between data and teacher, and the error along
  eigenvector i of H decays as (1 - lr (1 + lambda) mu_i)^k.
* Paper (capacity / generalisation statement): ``|W(k) - W(0)|_F`` stays bounded by (approximately)
  sqrt((u* - u0)^T H^-1 (u* - u0)); a teacher whose outputs lie in the top eigenspace of H lowers
  this measure and the number of iterations needed, which improves a Rademacher-type bound.
* Ours (standard NTK algebra, not in the paper): the exact kernel-regime distance *trajectory*
  ``|W(k) - W(0)|_F^2 = sum_i mu_i g_k(mu_i)^2 p_i^2`` with g_k(mu) = (1 - (1 - eta mu)^k)/mu,
  eta = lr (1 + lambda), p = Q^T (u* - u0); it increases to the capacity measure when
  eta mu_max <= 1 (and can overshoot it by up to a factor 2 in the oscillating regime
  1 < eta mu < 2).
* Ours: test-prediction trajectory f_k(x) = f_0(x) + k(x, X) Q diag(g_k) Q^T (u* - u0) (standard
  kernel-GD algebra), the gradient-flow limit, hitting times in closed form.
* Ours: the proportional-regime (n, d -> inf, n/d fixed) linearisation of H for mixture data on the
  sphere (El Karoui 2010 style): H ~ c0 11^T + c1 XX^T + c2 I with c1 = 1/4, c0 = tau^2/(2 pi),
  c2 = 1/2 - 1/4 - c0, tau^2 = mean off-diagonal (x_i.x_j)^2 (~ 1/d), and the resulting test error
  along training from three scalars (:func:`proportional_test_error`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from replica.params import (
    ParameterError,
    check_nonnegative,
    check_open_unit,
    check_positive,
)
from saddle.linear_dynamics import LinearDynamics, symmetric_eigh

# Taylor data of the NTK kernel function k(rho) = rho (pi - arccos rho) / (2 pi) at rho = 0:
# k(rho) = rho/4 + rho^2/(2 pi) + rho^4/(12 pi) + O(rho^6)  (no odd terms beyond the linear one).
NTK_AT_ONE = 0.5
NTK_SLOPE_AT_ZERO = 0.25
NTK_HALF_CURVATURE_AT_ZERO = 1.0 / (2.0 * math.pi)


# ------------------------------------------------------------------------------ inputs
def normalise_rows(X: np.ndarray) -> np.ndarray:
    """Project each row of ``X`` onto the unit sphere (the model's input domain, SPEC §6)."""
    X = np.asarray(X, dtype=float)
    if X.ndim != 2:
        raise ParameterError(f"X must be a 2-D array; got shape {X.shape}")
    norms = np.linalg.norm(X, axis=1)
    if np.any(norms == 0) or not np.all(np.isfinite(norms)):
        raise ParameterError("X must have finite, non-zero rows to be normalised")
    return X / norms[:, None]


def _check_sphere(X: np.ndarray, name: str) -> np.ndarray:
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ParameterError(f"{name} must be a non-empty 2-D array; got shape {X.shape}")
    norms = np.linalg.norm(X, axis=1)
    if not np.allclose(norms, 1.0, rtol=0, atol=1e-8):
        raise ParameterError(f"{name} rows must lie on the unit sphere (use normalise_rows)")
    return X


# ------------------------------------------------------------------------------ kernels
def ntk_kernel_function(cosine) -> np.ndarray:
    """NTK of the two-layer ReLU student between unit inputs with ``x.x' = cosine``.

    ``k(rho) = rho (pi - arccos rho) / (2 pi) = E_w[ x.x' 1{w.x > 0} 1{w.x' > 0} ]`` for
    ``w ~ N(0, kappa^2 I)`` (independent of kappa) -- the H^infinity of SPEC §6 / the paper's
    kernel-regime Gram matrix.  ``k(1) = 1/2``, ``k(0) = 0``.
    """
    rho = np.clip(np.asarray(cosine, dtype=float), -1.0, 1.0)
    return rho * (np.pi - np.arccos(rho)) / (2.0 * np.pi)


def relu_covariance_function(cosine) -> np.ndarray:
    """``E_w[ReLU(w.x) ReLU(w.x')]``, ``w ~ N(0, I)``, unit inputs (arc-cosine kernel, order 1).

    ``(sqrt(1 - rho^2) + (pi - arccos rho) rho) / (2 pi)``; ``kappa^2`` times it is the covariance
    of the student's initial function f_0 (a Gaussian process as m -> inf).  Ours, standard.
    """
    rho = np.clip(np.asarray(cosine, dtype=float), -1.0, 1.0)
    return (np.sqrt(1.0 - rho**2) + (np.pi - np.arccos(rho)) * rho) / (2.0 * np.pi)


def ntk_gram(X: np.ndarray, Z: np.ndarray | None = None) -> np.ndarray:
    """NTK Gram matrix ``H_ij = k(x_i . x_j)`` (SPEC §6), or the cross kernel ``k(z_a . x_j)``.

    Parameters
    ----------
    X : ndarray, shape (n, d)
        Training inputs on the unit sphere.
    Z : ndarray, shape (n_test, d), optional
        Test inputs on the unit sphere; if given, returns ``k(Z, X)`` of shape ``(n_test, n)``.
    """
    X = _check_sphere(X, "X")
    if Z is None:
        H = ntk_kernel_function(X @ X.T)
        np.fill_diagonal(H, NTK_AT_ONE)
        return H
    Z = _check_sphere(Z, "Z")
    if Z.shape[1] != X.shape[1]:
        raise ParameterError(f"Z must have {X.shape[1]} columns; got {Z.shape[1]}")
    return ntk_kernel_function(Z @ X.T)


# ------------------------------------------------------------------------------ the KD problem
def distillation_fixed_point(y: np.ndarray, t: np.ndarray, lam: float) -> np.ndarray:
    """Fixed point ``u* = (y + lambda t) / (1 + lambda)`` of the KD gradient descent (SPEC §6).

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
    """``sqrt((u* - u0)^T H^-1 (u* - u0))`` (the paper's capacity measure, SPEC §6).

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


def spectral_teacher(H: np.ndarray, y: np.ndarray, n_top: int) -> np.ndarray:
    """A teacher aligned with H: the projection of ``y`` on H's top ``n_top`` eigenvectors.

    Used to test the paper's claim that such a teacher speeds the student up.
    """
    mu, Q = symmetric_eigh(H, name="H")
    if not 1 <= n_top <= mu.size:
        raise ParameterError(f"n_top must lie in [1, {mu.size}]; got {n_top}")
    top = Q[:, -n_top:]
    return top @ (top.T @ np.asarray(y, dtype=float))


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
        """Smallest k with ``|u(k) - u*| / sqrt(n) <= rms_tolerance`` (inf if never)."""
        tol = check_positive("rms_tolerance", rms_tolerance)
        return self.dynamics.iterations_to_reach(tol * math.sqrt(self.dynamics.size))

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
    """Kernel-regime model of KD gradient descent (SPEC §6).

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
    lam = check_nonnegative("lam", lam)
    lr = check_positive("lr", lr)
    y = np.asarray(y, dtype=float).reshape(-1)
    t = np.asarray(t, dtype=float).reshape(-1)
    u_star = distillation_fixed_point(y, t, lam)
    if u0 is None:
        u0 = np.zeros_like(y)
    dyn = LinearDynamics.from_matrix(H, u_star, u0, lr * (1.0 + lam), name="H")
    if require_stable and lr * (1.0 + lam) * dyn.eigenvalues[-1] >= 2.0:
        limit = 2.0 / ((1.0 + lam) * dyn.eigenvalues[-1])
        raise ParameterError(f"lr must be < 2 / ((1 + lam) mu_max) = {limit:.4g}; got {lr:g}")
    return KernelRegime(dyn, y, t, lam, lr)


# ------------------------------------------------------------------------------ proportional regime
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

    Off the diagonal, ``x_i.x_j = O(d^-1/2)``: Taylor-expand k to second order and replace the
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
    X = _check_sphere(X, "X")
    if tau2 is None:
        tau2 = mean_offdiagonal_square(X)
    c0, c1, c2 = linearised_ntk_coefficients(tau2)
    if Z is None:
        H = c0 + c1 * (X @ X.T)
        H[np.diag_indices_from(H)] += c2
        return H
    Z = _check_sphere(Z, "Z")
    return c0 + c1 * (Z @ X.T)


def mixture_readout_error(mean: np.ndarray, bias: np.ndarray, std: np.ndarray, rho: float):
    """Test error of ``sign(b + s m + std g)``, ``g ~ N(0,1)``, label ``s = +1`` w.p. rho.

    ``rho H((m + b)/std) + (1 - rho) H((m - b)/std)`` with ``H(x) = P(N(0,1) > x)`` (SPEC §3,
    Eq. 12 form).
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
    linearised read-out on a fresh mixture sample (SPEC §1).  The curve depends on the training
    set only through three scalars (m_k, b_k, sigma_k), which concentrate as n, d -> inf with
    n/d fixed; no test sample and no network is involved.

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
    X_unit = _check_sphere(X_unit, "X_unit")
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
