"""Generalisation error of a linear classifier on the mixture, and the Bayes-optimal bound.

Paper Eq. 12 and Sec. 3.2 (docs/model.md §3).
"""

from __future__ import annotations

import math

from numba import njit

from replica.params import GaussianMixture, check_positive, check_unit_interval
from replica.prior import sparse_equivalent_problem
from saddle.special import gaussian_tail


@njit(cache=True)
def generalisation_error(m: float, q: float, b: float, rho: float, delta: float) -> float:
    """Test error of ``sign(w.x/sqrt(N) + b)`` with overlaps ``m``, ``q`` (paper Eq. 12).

    ``eps_g = rho H((m + b)/sqrt(delta q)) + (1 - rho) H((m - b)/sqrt(delta q))``, since the
    test preactivation is ``s m + b + sqrt(delta q) z``.
    """
    width = math.sqrt(delta * q)
    return rho * gaussian_tail((m + b) / width) + (1.0 - rho) * gaussian_tail((m - b) / width)


def bayes_optimal_overlaps(alpha: float, rho: float, delta: float) -> tuple[float, float, float]:
    """``(m, q, b)`` of the Bayes-optimal estimator (paper Eq. 13-14, with erratum).

    ``m = 1``, ``q = 1 + delta/alpha``, ``b = (delta q / 2) log(rho / (1 - rho))``. (Eq. 13 of
    the paper writes ``|w_BO|^2`` where ``q = |w|^2/N`` is meant, as in Eq. 23.)
    """
    q = 1.0 + delta / alpha
    return 1.0, q, 0.5 * delta * q * math.log(rho / (1.0 - rho))


def bayes_optimal_error(
    alpha: float, mixture: GaussianMixture | None = None, *, eta: float = 1.0
) -> float:
    """Bayes-optimal test error of an ``eta``-sparse linear classifier (docs/model.md §3).

    For ``eta < 1`` the problem ``{eta, alpha, delta}`` is equivalent to
    ``{1, alpha/eta, delta/eta}`` (paper Sec. 3.2).
    """
    mixture = mixture or GaussianMixture()
    alpha = check_positive("alpha", alpha)
    eta = check_unit_interval("eta", eta, open_left=True)
    alpha_eff, delta_eff, _ = sparse_equivalent_problem(alpha, mixture.delta, eta)
    m, q, b = bayes_optimal_overlaps(alpha_eff, mixture.rho, delta_eff)
    return generalisation_error(m, q, b, mixture.rho, delta_eff)
