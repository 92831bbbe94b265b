"""Numerically stable scalar functions shared by the proximal operators and quadratures.

All are numba-jitted (``cache=True``) scalar functions, callable from Python and from other
jitted code.
"""

from __future__ import annotations

import math

from numba import njit

SQRT2 = math.sqrt(2.0)


@njit(cache=True)
def sigmoid(x: float) -> float:
    """Logistic function ``1 / (1 + exp(-x))`` without overflow."""
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@njit(cache=True)
def sigmoid_prime(x: float) -> float:
    """Derivative ``sigma(x) (1 - sigma(x))``, computed as ``sigma(x) sigma(-x)``."""
    e = math.exp(-abs(x))
    return e / ((1.0 + e) * (1.0 + e))


@njit(cache=True)
def softplus(x: float) -> float:
    """``log(1 + exp(x))`` without overflow or cancellation."""
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


@njit(cache=True)
def gaussian_tail(x: float) -> float:
    """``H(x) = P(Z > x)`` for a standard Gaussian ``Z`` (paper Eq. 12)."""
    return 0.5 * math.erfc(x / SQRT2)


@njit(cache=True)
def gaussian_cdf(x: float) -> float:
    """``Phi(x) = P(Z <= x)`` for a standard Gaussian ``Z``."""
    return 0.5 * math.erfc(-x / SQRT2)
