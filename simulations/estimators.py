"""Exact solvers for the convex teacher and student problems (docs/model.md §2, paper Eq. 1, 3-4).

Every estimator of the package is a linear classifier ``h = X w / sqrt(n_norm) + b`` trained
by minimising a sum of loss terms (the losses of the table :mod:`replica.losses`) plus a ridge
penalty on ``w`` (the bias is not penalised)::

    F(w, b) = sum_mu sum_k L_k(h_mu) + lam/2 |w|^2.

A term is a :class:`LossTerm`, a tempered cross-entropy
``c_k [softplus(h / T_k) - t_{k,mu} h / T_k]`` with ``softplus(h) = log(1 + e^h)``; a
:class:`SquareTerm` ``c (h - s)^2 / 2``; or a :class:`HingeTerm` ``c max(0, 1 - s h)``
(``s = +-1`` the class signs):

* teacher (docs/model.md §2): one label term, e.g. ``LossTerm(1, 1, p)`` with the (smoothed) labels
  ``p`` (:func:`label_terms`);
* student (paper Eq. 3-4, App. B.4): the label term with weight ``1 - chi`` and the
  distillation term ``(chi c_T, T, sigma(h~ / T))``, ``c_T = T^2`` for Hinton's variant and 1
  otherwise (the paper's choice) (:func:`kd_loss_terms`).

The cross-entropy is used without its entropy constant, ``CE(p, sigma(h)) = softplus(h) - p h``
(docs/model.md §2), so a loss value does not vanish at a perfect fit of soft targets.

The hinge is not differentiable at its kink: a fit with hinge terms minimises the smoothed
hinge ``width softplus((1 - s h)/width)`` (within ``width log 2`` of the hinge) along a
decreasing sequence of widths, warm-started, down to :data:`HINGE_WIDTHS` ``[-1]`` = 3e-4, by
Newton's method with exact linear solves (the curvature ``1/width`` on the margin samples
defeats conjugate gradients); the last change of the solution is reported
(``LinearFit.width_change``) to check the limit: the minimiser moves by O(width), so the
error left at the last width is about half the last change (widths in steps of ~3).

The problem is convex (strictly so for ``lam > 0``), so it is solved *exactly*
(docs/numerics.md §6): a truncated Newton method (preconditioned conjugate gradient on
Hessian-vector products, two matrix-vector products with ``X`` each) with an exact line search,
stopped on the gradient norm, never on an iteration budget.  The line search costs O(M) per
trial step because the change of the preactivations along the Newton direction is accumulated
during the conjugate-gradient iterations.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from replica.errors import bayes_optimal_overlaps
from replica.losses import (
    LOSS_KINDS,
    SQUARE,
    kd_targets,
    kd_term_weight,
    mixture_loss_arrays,
    smoothed_hinge_arrays,
)
from replica.params import (
    ParameterError,
    check_count,
    check_nonnegative,
    check_open_unit,
    check_positive,
    check_smoothing,
    check_unit_interval,
)

__all__ = [
    "HINGE_WIDTHS",
    "HingeTerm",
    "LinearFit",
    "LossTerm",
    "SquareTerm",
    "bayes_optimal_teacher",
    "fit_kd_student",
    "fit_linear_classifier",
    "fit_ridge_logistic",
    "kd_loss_terms",
    "label_terms",
    "linear_objective",
    "mean_loss",
    "sigmoid",
    "smooth_labels",
    "softplus",
]


# ----------------------------------------------------------------------------------------------
# Elementary functions and loss terms
# ----------------------------------------------------------------------------------------------


def softplus(h: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Numerically stable ``log(1 + exp(h))``."""
    return np.logaddexp(0.0, h, out=out)


def sigmoid(h: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Numerically stable logistic function ``1 / (1 + exp(-h))``."""
    return expit(h, out=out)


def smooth_labels(y: np.ndarray, smoothing: float = 0.0) -> np.ndarray:
    """Soft targets ``p = y (1 - eps) + (1 - y) eps`` of label smoothing
    (docs/model.md §2, App. B.3).

    Parameters
    ----------
    y : array of {0, 1}
        Hard labels.
    smoothing : float
        ``eps`` in [0, 1/2); ``eps = 0`` returns the labels as floats.
    """
    eps = check_smoothing("smoothing", smoothing)
    y = np.asarray(y, dtype=float)
    return y * (1.0 - eps) + (1.0 - y) * eps


def _as_vector(name: str, value, length: int | None = None) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    if arr.ndim != 1:
        raise ParameterError(f"{name} must be a one-dimensional array; got shape {arr.shape}")
    if length is not None and arr.shape[0] != length:
        raise ParameterError(f"{name} must have length {length}; got {arr.shape[0]}")
    if not np.all(np.isfinite(arr)):
        raise ParameterError(f"{name} must be finite")
    return arr


@dataclass(frozen=True)
class LossTerm:
    """One tempered cross-entropy term ``weight * [softplus(h/T) - targets * h/T]``.

    Attributes
    ----------
    weight : float
        Non-negative prefactor ``c_k`` (a zero weight drops the term).
    temperature : float
        ``T_k > 0``.
    targets : ndarray, shape (M,)
        Soft targets ``t_{k, mu}`` in [0, 1].
    """

    weight: float
    temperature: float
    targets: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "weight", check_nonnegative("weight", self.weight))
        object.__setattr__(self, "temperature", check_positive("temperature", self.temperature))
        targets = _as_vector("targets", self.targets)
        if targets.size and (targets.min() < 0.0 or targets.max() > 1.0):
            raise ParameterError("targets must lie in [0, 1]")
        object.__setattr__(self, "targets", targets)

    def per_sample(self, h: np.ndarray) -> np.ndarray:
        """The term's loss on each sample, for preactivations ``h``."""
        z = h / self.temperature
        return self.weight * (softplus(z) - self.targets * z)


def _signs(name: str, value) -> np.ndarray:
    signs = _as_vector(name, value)
    if not np.all(np.abs(signs) == 1.0):
        raise ParameterError(f"{name} must be class signs +1 or -1")
    return signs


@dataclass(frozen=True)
class SquareTerm:
    """The square loss ``weight (h - s)^2 / 2`` on class signs ``s`` (:mod:`replica.losses`)."""

    weight: float
    signs: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "weight", check_nonnegative("weight", self.weight))
        object.__setattr__(self, "signs", _signs("signs", self.signs))

    @property
    def targets(self) -> np.ndarray:
        return self.signs

    def per_sample(self, h: np.ndarray) -> np.ndarray:
        return self.weight * 0.5 * (h - self.signs) ** 2

    def accumulate(self, h: np.ndarray, r: np.ndarray, a: np.ndarray, value: bool) -> float:
        """Add ``dL/dh`` to ``r``, ``d2L/dh2`` to ``a`` (the loss table's square row); return
        the summed value if ``value`` (else 0)."""
        s = self.signs  # (the soft-target and distillation arrays are unused by this row)
        return mixture_loss_arrays(SQUARE, h, s, s, self.weight, 0.0, 1.0, s, value, r, a)


@dataclass(frozen=True)
class HingeTerm:
    """The hinge ``weight max(0, 1 - s h)`` on class signs ``s`` (:mod:`replica.losses`).

    ``width > 0`` is its smoothed form ``weight width softplus((1 - s h)/width)``, the one the
    solver minimises (module docstring); :meth:`per_sample` is the exact hinge.
    """

    weight: float
    signs: np.ndarray
    width: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "weight", check_nonnegative("weight", self.weight))
        object.__setattr__(self, "signs", _signs("signs", self.signs))
        object.__setattr__(self, "width", check_nonnegative("width", self.width))

    @property
    def targets(self) -> np.ndarray:
        return self.signs

    def per_sample(self, h: np.ndarray) -> np.ndarray:
        return self.weight * np.maximum(0.0, 1.0 - self.signs * h)

    def accumulate(self, h: np.ndarray, r: np.ndarray, a: np.ndarray, value: bool) -> float:
        """As :meth:`SquareTerm.accumulate`, for the smoothed hinge of width ``width > 0``."""
        return smoothed_hinge_arrays(h, self.signs, self.weight, self.width, value, r, a)


def mean_loss(terms: Sequence, h: np.ndarray) -> float:
    """Mean over samples of ``sum_k`` of the terms' losses (no penalty)."""
    return float(sum(term.per_sample(h) for term in terms).mean())


def label_terms(loss: str, y: np.ndarray, targets: np.ndarray, weight: float = 1.0) -> list:
    """The label term of a loss of :data:`replica.losses.LOSS_KINDS` on labels ``y`` in {0, 1}.

    ``"logistic"``: ``weight CE(p, sigma(h))`` with the soft targets ``p = targets``;
    ``"square"``: ``weight (h - s)^2 / 2``; ``"hinge"``: ``weight max(0, 1 - s h)``,
    ``s = 2 y - 1``.  A zero weight gives no term.
    """
    if loss not in LOSS_KINDS:
        raise ParameterError(f"loss must be one of {sorted(LOSS_KINDS)}; got {loss!r}")
    if weight == 0.0:
        return []
    if loss == "logistic":
        return [LossTerm(weight, 1.0, targets)]
    signs = 2.0 * np.asarray(y, dtype=float) - 1.0
    return [SquareTerm(weight, signs) if loss == "square" else HingeTerm(weight, signs)]


def kd_loss_terms(
    targets: np.ndarray,
    teacher_preactivations: np.ndarray,
    chi: float,
    temperature: float = 1.0,
    t2_scaling: bool = False,
    *,
    loss: str = "logistic",
    labels: np.ndarray | None = None,
) -> tuple:
    """The terms of the distillation loss (paper Eq. 3-4, docs/model.md §2; :mod:`replica.losses`).

    ``l_KD = (1 - chi) l(y, h) + chi c_T CE(sigma(h~/T), sigma(h/T))`` with ``c_T = T^2`` if
    ``t2_scaling`` (Hinton's variant) else 1, where ``l`` is the label loss ``loss``
    (:func:`label_terms`; the soft targets ``targets`` for the logistic loss, the ``labels``
    for the others).  Terms of zero weight are left out.
    """
    chi = check_unit_interval("chi", chi)
    temperature = check_positive("temperature", temperature)
    targets = _as_vector("targets", targets)
    h_teacher = _as_vector("teacher_preactivations", teacher_preactivations, targets.shape[0])
    if loss != "logistic" and labels is None:
        raise ParameterError(f"labels are needed for the {loss} loss")
    terms = label_terms(loss, labels if labels is not None else targets, targets, 1.0 - chi)
    if chi > 0.0:
        weight = kd_term_weight(chi, temperature, t2_scaling)
        terms.append(LossTerm(weight, temperature, kd_targets(h_teacher, temperature)))
    return tuple(terms)


# ----------------------------------------------------------------------------------------------
# The objective, its gradient and Hessian-vector products
# ----------------------------------------------------------------------------------------------


class _LinearObjective:
    """``F(w, b)`` of the module docstring for a fixed design ``X``.

    Parameter vectors are ``theta = (w, b)`` of length ``N + 1``.  The methods work on the
    preactivations ``h`` so that a line search along a direction with known ``dh`` is O(M).
    """

    def __init__(self, X: np.ndarray, terms: Sequence[LossTerm], lam: float, n_norm: float):
        self.X = X
        self.terms = tuple(term for term in terms if term.weight > 0.0)
        self.lam = lam
        self.n_norm = n_norm
        self.scale = 1.0 / math.sqrt(n_norm)
        n_samples = X.shape[0]
        # Work buffers, reused by every evaluation (the hot path of the line search).
        self._z = np.empty(n_samples)
        self._s = np.empty(n_samples)
        self._r = np.empty(n_samples)
        self._a = np.empty(n_samples)

    def preactivations(self, theta: np.ndarray) -> np.ndarray:
        h = self.X @ theta[:-1]
        h *= self.scale
        h += theta[-1]
        return h

    def loss_derivatives(
        self, h: np.ndarray, *, value: bool = False
    ) -> tuple[float, np.ndarray, np.ndarray]:
        """Summed loss (if ``value``), ``r = dl/dh`` and ``a = d2l/dh2`` on every sample.

        The returned ``r`` and ``a`` are internal buffers, overwritten by the next call.
        """
        z, s, r, a = self._z, self._s, self._r, self._a
        r.fill(0.0)
        a.fill(0.0)
        total = 0.0
        for term in self.terms:
            if not isinstance(term, LossTerm):
                total += term.accumulate(h, r, a, value)
                continue
            inv_t = 1.0 / term.temperature
            np.multiply(h, inv_t, out=z)
            if value:
                total += term.weight * float(softplus(z, out=s).sum() - term.targets @ z)
            sigmoid(z, out=s)
            c1 = term.weight * inv_t
            r += c1 * (s - term.targets)
            s *= 1.0 - s
            a += (c1 * inv_t) * s
        return total, r, a

    def value(self, theta: np.ndarray, h: np.ndarray) -> float:
        total, _, _ = self.loss_derivatives(h, value=True)
        w = theta[:-1]
        return total + 0.5 * self.lam * float(w @ w)

    def gradient(self, theta: np.ndarray, r: np.ndarray) -> np.ndarray:
        """Gradient of ``F`` given ``r = dl/dh`` at ``theta``."""
        grad = np.empty_like(theta)
        grad[:-1] = self.X.T @ r
        grad[:-1] *= self.scale
        grad[:-1] += self.lam * theta[:-1]
        grad[-1] = r.sum()
        return grad

    def hessp(self, d: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Hessian-vector product ``H d`` (curvatures ``a``) and the direction's ``dh``."""
        dh = self.preactivations(d)  # change of h per unit step along d
        u = a * dh
        out = np.empty_like(d)
        out[:-1] = self.X.T @ u
        out[:-1] *= self.scale
        out[:-1] += self.lam * d[:-1]
        out[-1] = u.sum()
        return out, dh

    def preconditioner(self, a: np.ndarray, col_sq: np.ndarray) -> np.ndarray:
        """Diagonal approximation of the Hessian, ``sum_mu a_mu X_mu,i^2 / n_norm + lam``.

        Uses ``mean(a) * sum_mu X_mu,i^2`` for the weighted column norms; the bias entry is
        exact (``sum a``).  It mainly fixes the O(M) scale of the unpenalised bias.
        """
        a_sum = max(float(a.sum()), 1e-300)
        diag = np.empty(col_sq.shape[0] + 1)
        np.multiply(col_sq, a_sum / (a.shape[0] * self.n_norm), out=diag[:-1])
        diag[:-1] += self.lam
        diag[-1] = a_sum
        np.maximum(diag, 1e-300, out=diag)
        return diag

    def grad_norm(self, grad: np.ndarray) -> float:
        """``max |dF/dtheta| / n_norm``: the stopping criterion (objective divided by N)."""
        return float(np.abs(grad).max()) / self.n_norm


def _check_design(X, name: str = "X", *, check_finite: bool = True) -> np.ndarray:
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
        raise ParameterError(f"{name} must be a non-empty two-dimensional array; got {X.shape}")
    if check_finite and not math.isfinite(float(X.sum())):
        raise ParameterError(f"{name} must be finite")
    return X


def _check_terms(terms: Sequence, n_samples: int) -> tuple:
    terms = tuple(terms)
    kinds = (LossTerm, SquareTerm, HingeTerm)
    if not terms or not all(isinstance(term, kinds) for term in terms):
        raise ParameterError("terms must be a non-empty sequence of LossTerm, SquareTerm or "
                             "HingeTerm")  # fmt: skip
    for term in terms:
        if term.targets.shape[0] != n_samples:
            raise ParameterError(
                f"targets must have length {n_samples} (the rows of X); got {term.targets.shape[0]}"
            )
    return terms


def linear_objective(
    X: np.ndarray,
    terms: Sequence[LossTerm],
    lam: float,
    w: np.ndarray,
    b: float,
    *,
    n_norm: float | None = None,
) -> tuple[float, np.ndarray, float]:
    """Value and gradient ``(F, dF/dw, dF/db)`` of the objective in the module docstring.

    Not used by the solver's inner loop (which works on preactivations); provided for checks.
    """
    X = _check_design(X)
    terms = _check_terms(terms, X.shape[0])
    lam = check_nonnegative("lam", lam)
    n_norm = check_positive("n_norm", X.shape[1] if n_norm is None else n_norm)
    objective = _LinearObjective(X, terms, lam, n_norm)
    theta = np.append(_as_vector("w", w, X.shape[1]), float(b))
    h = objective.preactivations(theta)
    value = objective.value(theta, h)
    _, r, _ = objective.loss_derivatives(h)
    grad = objective.gradient(theta, r)
    return value, grad[:-1], float(grad[-1])


# ----------------------------------------------------------------------------------------------
# Truncated Newton solver
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinearFit:
    """Result of :func:`fit_linear_classifier`.

    Attributes
    ----------
    w : ndarray, shape (N,)
        Weights.
    b : float
        Bias.
    n_iter : int
        Newton iterations.
    grad_norm : float
        ``max |grad F| / n_norm`` at the returned point (F the summed objective).
    converged : bool
        ``grad_norm <= gtol``.
    preactivations : ndarray, shape (M,)
        ``h = X w / sqrt(n_norm) + b`` on the training inputs (recomputed from ``w, b``).
    n_hessp : int
        Hessian-vector products used (each costs two products with ``X``).
    width_change : float
        For hinge terms: ``max |theta(width) - theta(previous width)| / max(1, max |theta|)``
        over ``theta = (w, b)`` at the last two widths of :data:`HINGE_WIDTHS` (nan otherwise),
        the check that the smoothed fits have reached the hinge's limit.
    finite : bool
        False when the problem has no finite unique minimiser (``lam = 0`` on linearly
        separable data with hard targets, where the norm grows without bound, or with fewer
        samples than weights, where the minimisers form an affine space); ``converged`` is
        then False too, and ``reason`` says why.
    reason : str
        Why there is no finite unique minimiser ("" otherwise).
    """

    w: np.ndarray
    b: float
    n_iter: int
    grad_norm: float
    converged: bool
    preactivations: np.ndarray
    n_hessp: int = 0
    width_change: float = math.nan
    finite: bool = True
    reason: str = ""

    @property
    def nit(self) -> int:
        """Alias of ``n_iter``: the package's one name for iteration counts."""
        return self.n_iter


def _conjugate_gradient(objective, grad, a, col_sq, tol, max_cg):
    """Solve ``H p = -grad`` by preconditioned CG up to ``|residual|_2 <= tol``.

    Returns the direction ``p``, its ``dh`` (accumulated, no extra product with ``X``) and the
    number of Hessian-vector products.
    """
    precond = objective.preconditioner(a, col_sq)
    p = np.zeros_like(grad)
    dh = np.zeros(objective.X.shape[0])
    res = -grad
    z = res / precond
    d = z.copy()
    rz = float(res @ z)
    n_hessp = 0
    for _ in range(max_cg):
        hd, d_dh = objective.hessp(d, a)
        n_hessp += 1
        curvature = float(d @ hd)
        if curvature <= 1e-300 * float(d @ d):
            if n_hessp == 1:  # no usable curvature: preconditioned steepest descent
                p, dh = d, d_dh
            break
        step = rz / curvature
        p += step * d
        dh += step * d_dh
        res -= step * hd
        if np.linalg.norm(res) <= tol:
            break
        np.divide(res, precond, out=z)
        rz_new = float(res @ z)
        d *= rz_new / rz
        d += z
        rz = rz_new
    return p, dh, n_hessp


def _line_search(objective, theta, h, p, dh, slope0, max_steps=60):
    """Exact (safeguarded Newton) minimisation of ``phi(t) = F(theta + t p)`` over ``t > 0``.

    ``phi`` is convex; ``slope0 = phi'(0) < 0``.  Each trial costs O(M) since
    ``h(t) = h + t dh``.  Returns the step once ``|phi'(t)| <= 0.1 |phi'(0)|``.
    """
    lam = objective.lam
    w_p = float(theta[:-1] @ p[:-1])
    p_p = float(p[:-1] @ p[:-1])
    dh2 = dh * dh
    h_t = np.empty_like(h)
    lo, hi, t = 0.0, math.inf, 1.0
    for _ in range(max_steps):
        np.multiply(dh, t, out=h_t)
        h_t += h
        _, r, a = objective.loss_derivatives(h_t)
        slope = float(r @ dh) + lam * (w_p + t * p_p)
        if abs(slope) <= 0.1 * abs(slope0):
            return t
        if slope < 0.0:
            lo = t
        else:
            hi = t
        curvature = float(a @ dh2) + lam * p_p
        t_new = t - slope / curvature if curvature > 0.0 else math.nan
        if not lo < t_new < hi:
            t_new = 0.5 * (lo + hi) if math.isfinite(hi) else 4.0 * max(t, lo)
        if math.isfinite(hi) and hi - lo <= 1e-14 * hi:
            break
        t = t_new
    return lo if lo > 0.0 else t


def _solve(objective, theta, gtol, max_iter, max_cg):
    """Truncated Newton iterations from ``theta``; returns a :class:`LinearFit`.

    Between iterations ``h`` is updated as ``h + t dh`` (saving a product with ``X``); it is
    recomputed from ``(w, b)`` before convergence is declared and before returning, so the
    reported gradient norm and preactivations are exact.
    """
    col_sq = np.einsum("ij,ij->j", objective.X, objective.X)
    n_hessp = n_iter = 0
    grad0_norm = None
    h = objective.preactivations(theta)
    exact = True
    while True:
        _, r, a = objective.loss_derivatives(h)
        grad = objective.gradient(theta, r)
        gnorm = objective.grad_norm(grad)
        done = gnorm <= gtol or n_iter >= max_iter or not math.isfinite(gnorm)
        if done and not exact:
            h, exact = objective.preactivations(theta), True
            continue
        if done:
            break
        # Inexact Newton: relative forcing term min(0.5, sqrt(|g|/|g0|)) (superlinear), but
        # no more accuracy than needed to reach gtol (the CG residual predicts the new gradient).
        g2 = float(np.linalg.norm(grad))
        grad0_norm = grad0_norm or g2
        cg_tol = max(min(0.5, math.sqrt(g2 / grad0_norm)) * g2, 0.1 * gtol * objective.n_norm)
        p, dh, used = _conjugate_gradient(objective, grad, a, col_sq, cg_tol, max_cg)
        n_hessp += used
        slope0 = float(grad @ p)
        t = _line_search(objective, theta, h, p, dh, slope0) if slope0 < 0.0 else 0.0
        new_theta = theta + t * p
        if not np.any(new_theta != theta):  # no descent left at floating-point precision
            if exact:
                break
            h, exact = objective.preactivations(theta), True
            continue
        theta = new_theta
        h += t * dh
        exact = False
        n_iter += 1
    return LinearFit(
        w=theta[:-1].copy(),
        b=float(theta[-1]),
        n_iter=n_iter,
        grad_norm=gnorm,
        converged=bool(gnorm <= gtol),
        preactivations=h,
        n_hessp=n_hessp,
    )


def fit_linear_classifier(
    X: np.ndarray,
    terms: Sequence[LossTerm],
    lam: float,
    *,
    n_norm: float | None = None,
    w0: np.ndarray | None = None,
    b0: float = 0.0,
    gtol: float = 1e-9,
    max_iter: int = 200,
    max_cg: int = 1000,
    cold_start_if_better: bool = False,
    hinge_widths: Sequence[float] = (),
    warn: bool = True,
) -> LinearFit:
    """Minimise ``F(w, b)`` of the module docstring exactly.

    Parameters
    ----------
    X : ndarray, shape (M, N)
        Inputs (a column slice ``X_full[:, :k]`` works without copying).
    terms : sequence of LossTerm
        The loss terms; their targets have length M.
    lam : float
        Ridge strength ``lam >= 0`` on ``w`` (summed-loss convention, docs/conventions.md §2).
    n_norm : float, optional
        ``h = X w / sqrt(n_norm) + b``; defaults to N = ``X.shape[1]``.
    w0, b0 : optional
        Starting point (warm start); ``w0 = 0`` by default.
    gtol : float
        Stop when ``max |grad F| / n_norm <= gtol`` (gradient of the objective divided by N, over
        ``w`` and ``b``).
    max_iter : int
        Cap on Newton iterations; reaching it returns ``converged=False``.
    max_cg : int
        Cap on conjugate-gradient iterations per Newton step.
    cold_start_if_better : bool
        Start from ``(0, 0)`` instead of ``(w0, b0)`` when the objective is lower there.  A
        warm start from a fit to *other* samples (e.g. the previous point of an ``alpha``
        sweep) at small ``lam`` has huge losses on the new samples its large weights
        misclassify, and Newton's method then needs more work than from scratch.
    hinge_widths : sequence of float
        Widths of the smoothed hinge walked down for hinge terms (default
        :data:`HINGE_WIDTHS`; module docstring).
    warn : bool
        Emit a RuntimeWarning when there is no finite unique minimiser (see below).

    Returns
    -------
    LinearFit

    Notes
    -----
    Cost: each Newton iteration costs its CG iterations (two products with ``X`` each) plus
    one gradient.  At ``lam = 0.1`` a fit takes ~7 Newton iterations and ~30 Hessian-vector
    products (N = 2000, M = 6000: ~0.2 s).  Small ``lam`` (e.g. 1e-5) converges too, to the same
    ``gtol``: Newton's method is affine invariant, and the ``lam``-only directions (``M < N``)
    are resolved by CG at once; but on (nearly) separable data the weights are large, the
    curvature ``sigma'(h)`` is tiny on most samples and CG needs many iterations: ~15-20 Newton
    iterations and a few hundred Hessian-vector products, up to ~2000 next to the
    separability threshold (alpha ~ 4.5 for the teacher with rho = 0.2).

    With ``lam = 0`` on linearly separable data (hard targets) no minimiser exists: the
    iterates diverge (the norm grows without bound along the max-margin direction) until the
    gradient underflows below ``gtol``. This is detected exactly, by the returned weights
    classifying every hard target correctly (which proves separability), and reported as
    ``finite=False``, ``converged=False``. With ``lam = 0`` and at most as many samples as
    weights (``M <= N``; soft targets can then be fitted exactly) the minimiser is not unique:
    reported the same way (the fit from ``w = 0`` is the minimum-norm one).
    """
    X = _check_design(X)
    terms = _check_terms(terms, X.shape[0])
    lam = check_nonnegative("lam", lam)
    n_norm = check_positive("n_norm", X.shape[1] if n_norm is None else n_norm)
    gtol = check_positive("gtol", gtol)
    max_iter = check_count("max_iter", max_iter, minimum=0)
    max_cg = check_count("max_cg", max_cg)
    theta = np.zeros(X.shape[1] + 1)
    if w0 is not None:
        theta[:-1] = _as_vector("w0", w0, X.shape[1])
    theta[-1] = float(b0)
    if not math.isfinite(theta[-1]):
        raise ParameterError(f"b0 must be finite; got {b0!r}")
    if any(isinstance(term, HingeTerm) for term in terms):
        return _fit_hinge_limit(X, terms, lam, n_norm, theta, gtol, max_iter, max_cg,
                                cold_start_if_better and w0 is not None,
                                tuple(hinge_widths) or HINGE_WIDTHS)  # fmt: skip
    objective = _LinearObjective(X, terms, lam, n_norm)
    if cold_start_if_better and w0 is not None:
        cold = np.zeros_like(theta)
        if objective.value(cold, np.zeros(X.shape[0])) < objective.value(
            theta, objective.preactivations(theta)
        ):
            theta = cold
    fit = _solve(objective, theta, gtol, max_iter, max_cg)
    reason = ""
    if lam == 0.0 and _separates_hard_targets(terms, fit.preactivations):
        reason = ("lam = 0 on linearly separable data with hard targets: no minimiser exists; "
                  "the returned weights are where the gradient fell below gtol, not a solution")
    elif lam == 0.0 and X.shape[0] <= X.shape[1]:
        reason = (f"lam = 0 with {X.shape[0]} samples for {X.shape[1]} weights: the minimiser "
                  "is not unique (the returned one has the minimum norm from w0 = 0)")
    if reason:
        if warn:
            warnings.warn(reason, RuntimeWarning, stacklevel=2)
        fit = dataclasses.replace(fit, converged=False, finite=False, reason=reason)
    return fit


# Gradient tolerance of the smoothed-hinge fits before the last width.
INTERMEDIATE_GTOL = 1e-6
# Widths of the smoothed hinge, walked down with warm starts (module docstring).
HINGE_WIDTHS = (0.3, 0.1, 0.03, 0.01, 3e-3, 1e-3, 3e-4)


def _fit_hinge_limit(X, terms, lam, n_norm, theta, gtol, max_iter, max_cg, cold_if_better,
                     widths):  # fmt: skip
    """Minimise with every hinge term smoothed, along :data:`HINGE_WIDTHS` (warm-started)."""
    if lam == 0.0:
        raise ParameterError("lam must be > 0 for the hinge loss; got 0.0")
    n_iter = n_hessp = 0
    previous = None
    fit = None
    for k, width in enumerate(widths):
        smoothed = [HingeTerm(t.weight, t.signs, width) if isinstance(t, HingeTerm) else t
                    for t in terms]  # fmt: skip
        objective = _LinearObjective(X, smoothed, lam, n_norm)
        if k == 0 and cold_if_better:
            cold = np.zeros_like(theta)
            if objective.value(cold, np.zeros(X.shape[0])) < objective.value(
                theta, objective.preactivations(theta)
            ):
                theta = cold
        # The fits at the larger widths only warm-start the next: a looser tolerance will do.
        tol = gtol if k == len(widths) - 1 else max(gtol, INTERMEDIATE_GTOL)
        if X.shape[1] <= DENSE_MAX_DIMENSION:
            fit = _solve_dense(objective, theta, tol, max_iter)
        else:
            fit = _solve(objective, theta, tol, max_iter, max_cg)
        n_iter += fit.n_iter
        n_hessp += fit.n_hessp
        previous, theta = theta, np.append(fit.w, fit.b)
        if not fit.converged:
            break
    change = float(np.max(np.abs(theta - previous)) / max(1.0, float(np.max(np.abs(theta)))))
    return LinearFit(fit.w, fit.b, n_iter, fit.grad_norm, fit.converged, fit.preactivations,
                     n_hessp, change)  # fmt: skip


def _solve_dense(objective, theta, gtol, max_iter):
    """Newton's method with exact (dense Cholesky) solves; for the ill-conditioned smoothed
    hinge, whose curvature ``1/width`` on the margin samples defeats conjugate gradients.

    Costs ``M N^2`` per iteration (the Hessian); used for ``N <= DENSE_MAX_DIMENSION``.
    """
    X, scale = objective.X, objective.scale
    n_iter = 0
    h = objective.preactivations(theta)
    while True:
        _, r, a = objective.loss_derivatives(h)
        grad = objective.gradient(theta, r)
        gnorm = objective.grad_norm(grad)
        if gnorm <= gtol or n_iter >= max_iter or not math.isfinite(gnorm):
            break
        k = X.shape[1]
        H = np.empty((k + 1, k + 1))
        H[:k, :k] = (X.T * (a * scale * scale)) @ X
        H[np.diag_indices(k)] += objective.lam
        H[:k, k] = H[k, :k] = (X.T @ a) * scale
        H[k, k] = max(float(a.sum()), 1e-300)
        try:
            p = -np.linalg.solve(H, grad)
        except np.linalg.LinAlgError:
            break
        dh = objective.preactivations(np.append(p[:-1], 0.0)) + p[-1]
        slope0 = float(grad @ p)
        t = _line_search(objective, theta, h, p, dh, slope0) if slope0 < 0.0 else 0.0
        if t == 0.0:
            break
        theta = theta + t * p
        h = objective.preactivations(theta)
        n_iter += 1
    return LinearFit(theta[:-1].copy(), float(theta[-1]), n_iter, gnorm, bool(gnorm <= gtol), h,
                     n_iter)  # fmt: skip


# Largest dimension for which hinge fits use dense Newton solves (:func:`_solve_dense`).
DENSE_MAX_DIMENSION = 2000


def _separates_hard_targets(terms: Sequence[LossTerm], h: np.ndarray) -> bool:
    """True if every term has 0/1 targets and ``h`` classifies all of them correctly."""
    for term in terms:
        if not isinstance(term, LossTerm):
            return False
        t = term.targets
        if term.weight > 0.0 and not (
            np.all((t == 0.0) | (t == 1.0)) and np.all((h > 0) == (t == 1.0))
        ):
            return False
    return True


def fit_ridge_logistic(X: np.ndarray, targets: np.ndarray, lam: float, **kw) -> LinearFit:
    """Ridge logistic regression with soft targets: the teacher of docs/model.md §2.

    Minimises ``sum_mu CE(p_mu, sigma(h_mu)) + lam/2 |w|^2``; keyword arguments go to
    :func:`fit_linear_classifier`.
    """
    return fit_linear_classifier(X, [LossTerm(1.0, 1.0, targets)], lam, **kw)


def fit_kd_student(
    X_support: np.ndarray,
    targets: np.ndarray,
    teacher_preactivations: np.ndarray,
    lam_s: float,
    chi: float,
    temperature: float = 1.0,
    t2_scaling: bool = False,
    *,
    n_norm: float,
    loss: str = "logistic",
    labels: np.ndarray | None = None,
    **kw,
) -> LinearFit:
    """The distilled student of paper Eq. 3-4 (docs/model.md §2).

    Minimises ``sum_mu l_KD(h_mu) + lam_s/2 |w|^2`` (see :func:`kd_loss_terms`) with
    ``h = X_support w / sqrt(n_norm) + b``.

    Parameters
    ----------
    X_support : ndarray, shape (M, k)
        The first ``k = round(eta N)`` input coordinates (the student's support).
    targets : ndarray, shape (M,)
        Soft labels ``p`` of the label term.
    teacher_preactivations : ndarray, shape (M,)
        The trained teacher's ``h~`` on the same training samples.
    lam_s, chi, temperature, t2_scaling
        Student ridge, distillation weight, temperature and Hinton's ``T^2`` factor.
    n_norm : float
        The FULL dimension N: the student's preactivation is ``w.x / sqrt(N)``, not
        ``/ sqrt(eta N)`` (docs/conventions.md §1).
    loss, labels
        The label term's loss and the hard labels ``y`` (needed for ``"square"``, ``"hinge"``);
        see :func:`kd_loss_terms`.
    **kw
        Passed to :func:`fit_linear_classifier` (``w0``, ``b0``, ``gtol``, ...).
    """
    X_support = _check_design(
        X_support, "X_support", check_finite=False
    )  # fully checked by the fit
    n_norm = check_positive("n_norm", n_norm)
    if X_support.shape[1] > n_norm:
        raise ParameterError(
            f"n_norm must be the full dimension (>= {X_support.shape[1]} support columns); "
            f"got {n_norm!r}"
        )
    lam_s = check_nonnegative("lam_s", lam_s)
    terms = kd_loss_terms(targets, teacher_preactivations, chi, temperature, t2_scaling,
                          loss=loss, labels=labels)  # fmt: skip
    return fit_linear_classifier(X_support, terms, lam_s, n_norm=n_norm, **kw)


# ----------------------------------------------------------------------------------------------
# Bayes-optimal proxy teacher
# ----------------------------------------------------------------------------------------------


def bayes_optimal_teacher(
    v: np.ndarray, alpha: float, rho: float, delta: float, rng: np.random.Generator
) -> tuple[np.ndarray, float]:
    """The Bayes-optimal proxy teacher of paper Sec. 5.3, Eq. 23-24 (docs/model.md §2).

    ``w~ = v + sqrt(Delta / alpha) g`` with ``g ~ N(0, I_N)`` drawn from ``rng`` (independent of
    the data, so the teacher has no self-fit term) and bias
    ``b~ = (Delta (1 + Delta/alpha) / 2) log(rho / (1 - rho))``, from
    :func:`replica.errors.bayes_optimal_overlaps` (paper Eq. 112 misprints ``1 - Delta/alpha``;
    docs/errata.md §2).  Its order parameters are ``m~ = 1``, ``q~ = 1 + Delta/alpha`` for
    ``|v|^2 = N``, up to O(1/sqrt(N)) fluctuations of ``g``.
    """
    v = _as_vector("v", v)
    alpha = check_positive("alpha", alpha)
    rho = check_open_unit("rho", rho)
    delta = check_positive("delta", delta)
    _, _, b = bayes_optimal_overlaps(alpha, rho, delta)
    w = v + math.sqrt(delta / alpha) * rng.standard_normal(v.shape[0])
    return w, b
