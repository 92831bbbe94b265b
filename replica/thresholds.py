"""Interpolation and separability thresholds of teacher and student
(docs/thresholds.md, paper Sec. 6, App. C).

Three thresholds organise the double descent of paper Fig. 5 and 11 (``lam -> 0``):

- ``alpha_I = eta``: the student's **interpolation threshold** for soft targets. Below it the
  student's ``eta N`` weights can fit any real targets ``h_mu`` on the ``M = alpha N`` samples
  (``M < eta N`` linear equations), so with soft teacher outputs it reproduces them exactly and
  its minimum-norm interpolant's norm diverges as ``alpha -> eta`` (a ridgeless-regression peak).
- ``alpha~_S``: the teacher's **separability threshold**. For ``alpha < alpha~_S`` the labelled
  sample is linearly separable (with a bias): the unregularised logistic teacher has no finite
  minimiser, its norm diverges along the max-margin direction and its outputs on the training
  set become the hard labels.
- ``alpha_S``: the student's separability threshold, the same question for the student's
  ``eta N`` coordinates. By the equivalence ``{eta, alpha, delta} ~ {1, alpha/eta, delta/eta}``
  (paper Sec. 3.2) it is ``alpha_S = eta alpha~_S(rho, delta/eta)``.

How they are computed
---------------------
Not by extrapolating the saddle point to ``lam -> 0``, but from the exact condition it reduces
to: Gardner's capacity for the mixture with a bias, obtained with Gordon's comparison
inequality. Write a classifier as ``w = m v + w_perp`` (``|v|^2 = N``, ``q = |w|^2/N``,
``r^2 = q - m^2``). On sample ``mu`` the margin is ``s (w.x/sqrt(N) + b) = m + s b +
sqrt(delta) (m s g_mu + s w_perp.z_mu/sqrt(N))`` with ``g_mu = v.z_mu/sqrt(N)``. Gordon's theorem
says that ``w_perp`` with ``|w_perp|^2 = r^2 N`` making every margin positive exists (as
``N -> inf``) iff ``delta r^2 >= alpha E[(-(m + s b) - sqrt(delta q) zeta)_+^2]``. The condition is
homogeneous, so set ``q = 1``; the sample is separable iff ``alpha < alpha~_S`` with

    alpha~_S(rho, delta) = max_{0 <= m < 1, b}  (1 - m^2) / G(m, b),
    G(m, b) = sum_s P(s) [(1 + k_s^2) H(k_s) - k_s phi(k_s)],   k_s = (m + s b) / sqrt(delta),

(``E[(zeta - k)_+^2] = (1 + k^2) H(k) - k phi(k)``). For ``m = b = 0`` this is Cover's capacity 2;
the mean and the bias raise it. The maximiser ``(m, b)`` is the direction of the max-margin
classifier at the threshold, i.e. of the ``lam -> 0`` limit of the ridge teacher, whose norm
diverges for ``alpha < alpha~_S`` (checked in the tests against the saddle point: ``q`` grows
without bound as ``lam -> 0`` below, and stays finite above).

Finite-size check: :func:`separable_fraction` draws samples and decides separability exactly by
linear-programming feasibility (``scipy.optimize.linprog``); the fraction of separable samples
crosses 1/2 near the threshold, with a width ``O(N^{-1/2})``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
from scipy.optimize import minimize
from scipy.special import erfc

from replica.params import (
    GaussianMixture,
    check_count,
    check_open_unit,
    check_positive,
    check_unit_interval,
    default,
)
from replica.prior import sparse_equivalent_problem

SQRT2 = math.sqrt(2.0)


def _tail_second_moment(k: np.ndarray) -> np.ndarray:
    """``E[(zeta - k)_+^2] = (1 + k^2) H(k) - k phi(k)`` for ``zeta ~ N(0, 1)``."""
    tail = 0.5 * erfc(k / SQRT2)
    density = np.exp(-0.5 * k * k) / math.sqrt(2.0 * math.pi)
    return (1.0 + k * k) * tail - k * density


def gardner_ratio(m: float, b: float, rho: float, delta: float) -> float:
    """``(1 - m^2) / G(m, b)``: the largest ``alpha`` at which direction ``(m, b)`` separates.

    Parameters
    ----------
    m : float
        Overlap of the (unit-``q``) classifier with the cluster direction, in [0, 1).
    b : float
        Bias (in units of ``sqrt(q)``).
    rho, delta : float
        Mixture parameters.
    """
    ks = np.array([(m + b) / math.sqrt(delta), (m - b) / math.sqrt(delta)])
    weights = np.array([rho, 1.0 - rho])
    return float((1.0 - m * m) / (weights @ _tail_second_moment(ks)))


@lru_cache(maxsize=256)
def _teacher_threshold(rho: float, delta: float) -> tuple[float, float, float]:
    """``(alpha~_S, m*, b*)`` maximising :func:`gardner_ratio` over ``m = sin(theta)``, ``b``."""

    def objective(x: np.ndarray) -> float:
        m = math.sin(float(x[0]))
        return -math.log(gardner_ratio(m, float(x[1]), rho, delta))

    best = None
    b_prior = 0.5 * delta * math.log(rho / (1.0 - rho))  # Bayes-optimal bias scale
    for theta0 in (0.2, 0.6, 1.0):
        for b0 in (0.0, 0.5 * b_prior, b_prior):
            res = minimize(objective, np.array([theta0, b0]), method="Nelder-Mead",
                           options={"xatol": 1e-12, "fatol": 1e-14, "maxiter": 4000})  # fmt: skip
            if best is None or res.fun < best.fun:
                best = res
    theta, b = float(best.x[0]), float(best.x[1])
    m = math.sin(theta)
    if m < 0.0:  # (-m, -b) is the mirror direction: never better, but keep m >= 0
        m, b = -m, -b
    return math.exp(-best.fun), m, b


def teacher_separability_threshold(rho: float = default("rho"),
                                   delta: float = default("delta")) -> float:  # fmt: skip
    """``alpha~_S(rho, delta)``: the labelled mixture is separable iff ``alpha < alpha~_S``.

    Gardner's capacity with a bias (module docstring). The paper reads ``~4.75`` off its Fig. 5
    at ``rho = 0.2, delta = 1``.
    """
    mixture = GaussianMixture(rho, delta)
    return _teacher_threshold(mixture.rho, mixture.delta)[0]


def student_separability_threshold(rho: float = default("rho"), delta: float = default("delta"),
                                   eta: float = default("eta")) -> float:  # fmt: skip
    """``alpha_S = eta alpha~_S(rho, delta / eta)``: the student's sample is separable below it.

    The student sees the teacher's inputs restricted to ``eta N`` coordinates; paper Sec. 3.2's
    equivalence ``{eta, alpha, delta} ~ {1, alpha/eta, delta/eta}`` maps its separability to the
    teacher's. The paper reads ``~1.75`` off Fig. 5 at ``rho = 0.2, delta = 1, eta = 0.5``.
    """
    mixture = GaussianMixture(rho, delta)
    eta = check_unit_interval("eta", eta, open_left=True)
    _, delta_eff, _ = sparse_equivalent_problem(1.0, mixture.delta, eta)
    return eta * _teacher_threshold(mixture.rho, delta_eff)[0]


def interpolation_threshold(eta: float = default("eta")) -> float:
    """``alpha_I = eta``: below it the student interpolates any soft targets exactly."""
    return check_unit_interval("eta", eta, open_left=True)


@dataclass(frozen=True)
class Thresholds:
    """The three thresholds at ``(rho, delta, eta)`` and the max-margin directions.

    Attributes
    ----------
    rho, delta, eta : float
        Parameters.
    alpha_I : float
        Student interpolation threshold (soft targets), ``eta``.
    alpha_S : float
        Student separability threshold.
    alpha_S_teacher : float
        Teacher separability threshold ``alpha~_S``.
    teacher_m, teacher_b : float
        Direction ``(m, b)`` (at ``q = 1``) of the teacher's max-margin classifier at
        ``alpha~_S``; its test error is ``teacher_eps_g``.
    student_m, student_b, student_eps_g : float
        The same for the student (overlaps over the full ``N``, ``q = eta`` normalisation
        mapped back from the equivalent teacher problem).
    method : str
        How they were computed.
    """

    rho: float
    delta: float
    eta: float
    alpha_I: float
    alpha_S: float
    alpha_S_teacher: float
    teacher_m: float
    teacher_b: float
    teacher_eps_g: float
    student_m: float
    student_b: float
    student_eps_g: float
    method: str = "Gardner capacity with a bias (Gordon's comparison), exact as N -> inf"

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.to_dict())


def thresholds(rho: float = default("rho"), delta: float = default("delta"),
               eta: float = default("eta")) -> Thresholds:  # fmt: skip
    """All thresholds at ``(rho, delta, eta)`` (module docstring for the method).

    Examples
    --------
    >>> t = thresholds(0.2, 1.0, 0.5)
    >>> round(t.alpha_I, 3), round(t.alpha_S, 2), round(t.alpha_S_teacher, 2)  # doctest: +SKIP
    """
    from replica.errors import generalisation_error

    mixture = GaussianMixture(rho, delta)
    eta = check_unit_interval("eta", eta, open_left=True)
    a_t, m_t, b_t = _teacher_threshold(mixture.rho, mixture.delta)
    _, delta_eff, _ = sparse_equivalent_problem(1.0, mixture.delta, eta)
    a_s, m_e, b_e = _teacher_threshold(mixture.rho, delta_eff)
    # Equivalent problem {1, alpha/eta, delta/eta} has q = 1; map back: x' = x sqrt(N/N'),
    # eps_g is invariant, and in the student's own normalisation q = eta, m = sqrt(eta) m'.
    return Thresholds(
        rho=mixture.rho, delta=mixture.delta, eta=eta,
        alpha_I=eta, alpha_S=eta * a_s, alpha_S_teacher=a_t,
        teacher_m=m_t, teacher_b=b_t,
        teacher_eps_g=float(generalisation_error(m_t, 1.0, b_t, mixture.rho, mixture.delta)),
        student_m=math.sqrt(eta) * m_e, student_b=math.sqrt(eta) * b_e,
        student_eps_g=float(generalisation_error(m_e, 1.0, b_e, mixture.rho, delta_eff)),
    )  # fmt: skip


# ----------------------------------------------------------------------------------------------
# When does a problem have no finite solution?
# ----------------------------------------------------------------------------------------------


def teacher_has_finite_solution(alpha: float, rho: float, delta: float, lam: float,
                                smoothing: float = 0.0) -> tuple[bool, str]:  # fmt: skip
    """Whether the ridge logistic teacher has a finite minimiser, and why not.

    With ``lam > 0`` it always has. With ``lam = 0`` and hard labels (``smoothing = 0``) it has
    none when the sample is separable (``alpha < alpha~_S``); with soft labels and ``lam = 0``
    the per-sample optimum is finite but for ``alpha < 1`` the sample can be interpolated, so
    the minimiser is not unique (the ``lam -> 0+`` limit selects the minimum-norm one).
    """
    if lam > 0.0:
        return True, ""
    if smoothing == 0.0:
        threshold = teacher_separability_threshold(rho, delta)
        if alpha < threshold:
            return False, (f"lam = 0 and the sample is linearly separable "
                           f"(alpha < alpha~_S = {threshold:.4g})")  # fmt: skip
        return True, ""
    if alpha < 1.0:
        return False, "lam = 0 and the soft labels can be interpolated (alpha < 1): not unique"
    return True, ""


def student_has_finite_solution(
    alpha: float, rho: float, delta: float, eta: float, lam_s: float, chi: float, smoothing: float
) -> tuple[bool, str]:
    """Whether the student's problem (teacher given) has a unique finite minimiser.

    With ``lam_s = 0`` its per-sample loss has a finite optimum unless its targets are the hard
    labels (``chi = 0`` and no smoothing), in which case it diverges on a separable sample
    (``alpha < alpha_S``); with soft targets (any ``chi > 0``: the teacher's outputs lie in
    (0, 1)) the minimiser is not unique below the interpolation threshold ``alpha_I = eta``.
    A ridge teacher without a finite solution is checked separately.
    """
    if lam_s > 0.0:
        return True, ""
    if chi == 0.0 and smoothing == 0.0:
        threshold = student_separability_threshold(rho, delta, eta)
        if alpha < threshold:
            return False, (f"lam_s = 0 and the student's sample is linearly separable "
                           f"(alpha < alpha_S = {threshold:.4g})")  # fmt: skip
        return True, ""
    if alpha < eta:
        return False, ("lam_s = 0 and the student interpolates its soft targets "
                       f"(alpha < alpha_I = {eta:g}): not unique")  # fmt: skip
    return True, ""


# ----------------------------------------------------------------------------------------------
# Finite-size check: exact separability by linear programming
# ----------------------------------------------------------------------------------------------


def max_margin_lp(X: np.ndarray, y: np.ndarray) -> float:
    """Largest margin ``t`` with ``s_mu (x_mu.w + b) >= t`` over ``|w_i| <= 1`` (a linear program).

    Bounded, always feasible (``w = 0``, ``t <= 0``), so HiGHS returns a clean optimum; the
    sample is linearly separable iff ``t > 0``.
    """
    from scipy.optimize import linprog

    X = np.asarray(X, dtype=float)
    s = 2.0 * np.asarray(y, dtype=float) - 1.0
    n_samples, n_features = X.shape
    # variables (w, b, t): maximise t subject to -s (X w + b) + t <= 0
    A = np.hstack([-s[:, None] * X, -s[:, None], np.ones((n_samples, 1))])
    cost = np.zeros(n_features + 2)
    cost[-1] = -1.0
    bounds = [(-1.0, 1.0)] * n_features + [(None, None), (None, 1.0)]
    res = linprog(cost, A_ub=A, b_ub=np.zeros(n_samples), bounds=bounds, method="highs")
    if res.status != 0:
        raise RuntimeError(f"separability LP failed: {res.message}")
    return float(-res.fun)


def is_linearly_separable(X: np.ndarray, y: np.ndarray, *, tol: float = 1e-9) -> bool:
    """Exact test: is there ``(w, b)`` with ``s_mu (x_mu.w + b) > 0`` for every sample?

    Decided by the max-margin linear program :func:`max_margin_lp` (margin ``> tol``).
    """
    return max_margin_lp(X, y) > tol


@dataclass(frozen=True)
class SeparabilityEstimate:
    """Fraction of separable samples at finite ``N`` (``trials`` independent draws).

    Attributes
    ----------
    alpha, rho, delta, eta : float
        Parameters (``eta < 1``: only the first ``round(eta N)`` coordinates are used).
    n, trials, seed : int
        Dimension, number of draws, base seed.
    fraction, sem : float
        Fraction of separable draws and its binomial standard error.
    """

    alpha: float
    rho: float
    delta: float
    eta: float
    n: int
    trials: int
    seed: int
    fraction: float
    sem: float

    def to_dict(self) -> dict:
        return asdict(self)


def separable_fraction(
    alpha: float,
    rho: float = default("rho"),
    delta: float = default("delta"),
    *,
    eta: float = 1.0,
    n: int = 100,
    trials: int = 40,
    seed: int = 0,
) -> SeparabilityEstimate:
    """Fraction of mixture samples of size ``M = round(alpha N)`` that are linearly separable.

    Samples follow paper Eq. 10 (:func:`simulations.data.sample_mixture`, exact class counts,
    ``|v|^2 = N``); with ``eta < 1`` only the first ``round(eta N)`` coordinates are kept (the
    student's view of the teacher's inputs). Draw ``k`` uses ``SeedSequence([seed, k])``.
    """
    from simulations.data import sample_mixture

    alpha = check_positive("alpha", alpha)
    rho = check_open_unit("rho", rho)
    delta = check_positive("delta", delta)
    eta = check_unit_interval("eta", eta, open_left=True)
    n = check_count("n", n, minimum=2)
    trials = check_count("trials", trials)
    seed = check_count("seed", seed, minimum=0)
    n_samples = max(1, round(alpha * n))
    k = max(1, round(eta * n))
    hits = 0
    for trial in range(trials):
        rng = np.random.default_rng(np.random.SeedSequence([seed, trial]))
        sample = sample_mixture(n, n_samples, rho, delta, rng)
        hits += is_linearly_separable(sample.X[:, :k], sample.y)
    fraction = hits / trials
    sem = math.sqrt(max(fraction * (1.0 - fraction), 0.25 / trials) / trials)
    return SeparabilityEstimate(alpha, rho, delta, eta, n, trials, seed, fraction, sem)
