"""Losses of the teacher and of the distilled student
(paper Eq. 1-4, App. B.3-B.4; docs/model.md §2).

The cross-entropy of a soft target ``p`` against the output ``sigma(h)`` is exactly

    CE(p, sigma(h)) = -p log sigma(h) - (1 - p) log sigma(-h) = softplus(h) - p h,

(no constant), and every loss here is a weighted sum of such *tempered logistic terms*
``c [softplus(h / T) - t h / T]`` — the form whose proximal map ``saddle.prox`` solves.
A loss is described by its terms: ``(c1, T1, t1, c2, T2, t2)``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from saddle.special import sigmoid, sigmoid_prime, softplus


def smoothed_target(y, smoothing: float):
    """Label-smoothed target ``p = y (1 - eps) + (1 - y) eps`` (App. B.3)."""
    return y * (1.0 - smoothing) + (1.0 - y) * smoothing


def cross_entropy(p, h):
    """``CE(p, sigma(h)) = softplus(h) - p h`` (vectorised numpy version)."""
    h = np.asarray(h, dtype=float)
    return np.logaddexp(0.0, h) - p * h


def kd_term_weight(chi: float, temperature: float, t2_scaling: bool) -> float:
    """Weight of the distillation term: ``chi``, or ``chi T^2`` with Hinton's scaling."""
    return chi * temperature**2 if t2_scaling else chi


@njit(cache=True)
def kd_loss(h, p, h_teacher, chi, temperature, kd_weight):
    """Student loss ``(1 - chi) CE(p, sigma(h)) + kd_weight CE(sigma(h~/T), sigma(h/T))`` (Eq. 3-4).

    ``kd_weight`` is ``chi`` (paper) or ``chi T^2`` (Hinton); see :func:`kd_term_weight`.
    """
    t = sigmoid(h_teacher / temperature)
    return (1.0 - chi) * (softplus(h) - p * h) + kd_weight * (
        softplus(h / temperature) - t * h / temperature
    )


@njit(cache=True)
def kd_loss_cross_derivative(h_teacher, temperature, kd_weight):
    """``c = d^2 L / (dh dh~) = -(kd_weight / T^2) sigma'(h~ / T)`` (docs/saddle_point.md §3)."""
    return -kd_weight * sigmoid_prime(h_teacher / temperature) / (temperature * temperature)


def ce_logistic_terms(p: float) -> tuple:
    """Terms of the plain cross-entropy ``CE(p, sigma(h))``: one term, ``T = 1``."""
    return (1.0, 1.0, p, 0.0, 1.0, 0.0)


def logistic_loss_value(h: float, p: float) -> float:
    """Scalar ``CE(p, sigma(h))`` (pure Python, for reference and tests)."""
    return max(h, 0.0) + math.log1p(math.exp(-abs(h))) - p * h
