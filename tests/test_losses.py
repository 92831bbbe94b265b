"""Contract tests of the loss table (replica.losses), parametrised over every row.

Each loss, as a teacher's (label term alone) and as a KD student's mixture (label term plus
the tempered cross-entropy against a teacher's output), must have: a proximal map that solves
its stationarity condition (a subgradient inclusion on a kink), derivatives ``dh*/d omega``,
``dh*/dt`` and ``g = -df/d omega`` that match finite differences, a Moreau envelope whose
derivative is ``-f``, the field of ``h* = 0`` and the kink interval right, and values and
slopes equal to its sympy form.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp

from replica.losses import (
    HINGE,
    KINKED,
    LOSS_KINDS,
    hinge_slopes,
    kd_curvature,
    kd_loss,
    kd_loss_cross_derivative,
    kd_target,
    kd_target_slope,
    mixture_derivatives,
    mixture_kink_fields,
    mixture_loss,
    mixture_loss_arrays,
    mixture_omega_zero,
    mixture_prox,
    smoothed_hinge,
    symbolic_mixture_loss,
)
from replica.symbolic.closed_forms import response_form_identities

# (c, k, T, t): label term alone (a teacher), and a KD mixture.
MIXTURES = {"teacher": (1.0, 0.0, 1.0, 0.0), "kd": (0.6, 0.8, 2.0, 0.3)}
CASES = [(name, mix) for name in LOSS_KINDS for mix in MIXTURES]


def _points(seed: int, n: int = 200):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield (rng.normal() * 4, 10 ** rng.uniform(-2, 2), rng.choice([-1.0, 1.0]),
               rng.uniform(0.0, 1.0))  # fmt: skip


def _prox(kind, mix, omega, V, s, p):
    c, k, T, t = MIXTURES[mix]
    return mixture_prox(kind, omega, V, s, p, c, k, T, t, omega)


def _on_kink(kind, mix, omega, V, s, p, margin=0.0):
    c, k, T, t = MIXTURES[mix]
    lo, hi, kinked = mixture_kink_fields(kind, V, s, p, c, k, T, t)
    return kinked and lo - margin <= omega <= hi + margin


@pytest.mark.parametrize("name, mix", CASES)
def test_prox_solves_its_stationarity_condition(name, mix):
    kind = LOSS_KINDS[name]
    c, k, T, t = MIXTURES[mix]
    for omega, V, s, p in _points(1):
        h, d, g, _ = _prox(kind, mix, omega, V, s, p)
        if _on_kink(kind, mix, omega, V, s, p):
            # h* = s and (omega - h*)/V in the subdifferential [L'(s-), L'(s+)]
            assert h == s and d == math.inf
            left, right = hinge_slopes(s)
            slope = mixture_derivatives(kind, s, s, p, 0.0, k, T, t)[0]
            sub = (omega - h) / V
            assert c * left + slope - 1e-12 <= sub <= c * right + slope + 1e-12
        else:
            grad = mixture_derivatives(kind, h, s, p, c, k, T, t)[0]
            assert abs(h - omega + V * grad) <= 1e-10 * (1 + abs(omega) + V)


@pytest.mark.parametrize("name, mix", CASES)
def test_prox_derivatives_match_finite_differences(name, mix):
    kind = LOSS_KINDS[name]
    c, k, T, t = MIXTURES[mix]
    eps = 1e-6
    checked = 0
    for omega, V, s, p in _points(2, 100):
        if _on_kink(kind, mix, omega, V, s, p, margin=10 * eps * (1 + V)):
            continue  # the derivatives jump at the ends of the kink interval
        h, d, g, dh_dt = _prox(kind, mix, omega, V, s, p)
        hp = _prox(kind, mix, omega + eps, V, s, p)[0]
        hm = _prox(kind, mix, omega - eps, V, s, p)[0]
        r_fd = (hp - hm) / (2 * eps)
        assert 1.0 / d == pytest.approx(r_fd, rel=1e-5, abs=1e-6)
        # g = -df/d omega with f = (h* - omega)/V, i.e. g V = 1 - dh*/d omega
        assert g * V == pytest.approx(1.0 - r_fd, rel=1e-5, abs=1e-6)
        if k > 0.0 and not (kind in KINKED and d == math.inf):
            tp = mixture_prox(kind, omega, V, s, p, c, k, T, t + eps, h)[0]
            tm = mixture_prox(kind, omega, V, s, p, c, k, T, t - eps, h)[0]
            assert dh_dt == pytest.approx((tp - tm) / (2 * eps), rel=1e-5, abs=1e-6)
        checked += 1
    assert checked > 50


@pytest.mark.parametrize("name, mix", CASES)
def test_envelope_derivative_is_minus_the_response(name, mix):
    kind = LOSS_KINDS[name]
    c, k, T, t = MIXTURES[mix]

    def envelope(omega, V, s, p):
        h = _prox(kind, mix, omega, V, s, p)[0]
        return (h - omega) ** 2 / (2 * V) + mixture_loss(kind, h, s, p, c, k, T, t)

    eps = 1e-5
    for omega, V, s, p in _points(3, 100):
        h = _prox(kind, mix, omega, V, s, p)[0]
        f = (h - omega) / V
        fd = (envelope(omega + eps, V, s, p) - envelope(omega - eps, V, s, p)) / (2 * eps)
        assert fd == pytest.approx(-f, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("name, mix", CASES)
def test_field_of_zero_preactivation_and_kink_interval(name, mix):
    kind = LOSS_KINDS[name]
    c, k, T, t = MIXTURES[mix]
    for _, V, s, p in _points(4, 50):
        omega0 = mixture_omega_zero(kind, V, s, p, c, k, T, t)
        assert _prox(kind, mix, omega0, V, s, p)[0] == pytest.approx(0.0, abs=1e-9 * (1 + V))
        lo, hi, kinked = mixture_kink_fields(kind, V, s, p, c, k, T, t)
        assert kinked == (kind in KINKED)
        if kinked:
            assert hi - lo == pytest.approx(V * c)
            for omega in np.linspace(lo, hi, 5):
                assert _prox(kind, mix, omega, V, s, p)[0] == s
            assert _prox(kind, mix, lo - 1e-3, V, s, p)[0] < s < _prox(kind, mix, hi + 1e-3,
                                                                           V, s, p)[0]


@pytest.mark.parametrize("name, mix", CASES)
def test_loss_matches_its_symbolic_form(name, mix):
    kind = LOSS_KINDS[name]
    c, k, T, t = MIXTURES[mix]
    h, s, p = sp.symbols("h s p", real=True)
    expr = symbolic_mixture_loss(name, h, s, p, c, k, T, t)
    value = sp.lambdify((h, s, p), expr, "math")
    slope = sp.lambdify((h, s, p), sp.diff(expr, h), "math")
    second = sp.diff(expr, h, 2).replace(sp.DiracDelta, lambda *_: 0)  # (away from a kink)
    curvature = sp.lambdify((h, s, p), second, "math")
    for hv, _, sv, pv in _points(5, 100):
        if kind == HINGE and abs(1 - sv * hv) < 1e-6:
            continue
        g, a = mixture_derivatives(kind, hv, sv, pv, c, k, T, t)
        assert mixture_loss(kind, hv, sv, pv, c, k, T, t) == pytest.approx(
            value(hv, sv, pv), rel=1e-12, abs=1e-12
        )
        assert g == pytest.approx(float(slope(hv, sv, pv)), rel=1e-11, abs=1e-12)
        assert a == pytest.approx(float(curvature(hv, sv, pv)), rel=1e-11, abs=1e-12)


@pytest.mark.parametrize("name", list(LOSS_KINDS))
def test_array_version_sums_the_scalar_table(name):
    kind = LOSS_KINDS[name]
    rng = np.random.default_rng(6)
    h = rng.normal(size=50) * 3
    s = rng.choice([-1.0, 1.0], size=50)
    p, t = rng.uniform(size=50), rng.uniform(size=50)
    r, a = np.zeros(50), np.zeros(50)
    total = mixture_loss_arrays(kind, h, s, p, 0.6, 0.8, 2.0, t, True, r, a)
    scalar = [mixture_loss(kind, *x, 0.6, 0.8, 2.0, ti) for *x, ti in zip(h, s, p, t, strict=True)]
    assert total == pytest.approx(sum(scalar), rel=1e-13)
    for i in range(50):
        assert (r[i], a[i]) == pytest.approx(
            mixture_derivatives(kind, h[i], s[i], p[i], 0.6, 0.8, 2.0, t[i]), rel=1e-13
        )


def test_kd_wrappers_and_cross_derivative():
    rng = np.random.default_rng(7)
    eps = 1e-6
    for _ in range(50):
        h, h_t = rng.normal(size=2) * 3
        p, chi = rng.uniform(size=2)
        T = rng.uniform(0.3, 4.0)
        kappa = chi * T * T
        t = kd_target(h_t, T)
        assert kd_loss(h, p, h_t, chi, T, kappa) == mixture_loss(
            LOSS_KINDS["logistic"], h, 1.0, p, 1 - chi, kappa, T, t
        )
        assert kd_curvature(h, chi, kappa, T) == pytest.approx(
            mixture_derivatives(0, h, 1.0, p, 1 - chi, kappa, T, t)[1], rel=1e-14
        )
        # d^2 L/(dh dh~) by differentiating the slope in the teacher's preactivation
        up = mixture_derivatives(0, h, 1.0, p, 1 - chi, kappa, T, kd_target(h_t + eps, T))[0]
        dn = mixture_derivatives(0, h, 1.0, p, 1 - chi, kappa, T, kd_target(h_t - eps, T))[0]
        assert kd_loss_cross_derivative(h_t, T, kappa) == pytest.approx(
            (up - dn) / (2 * eps), rel=1e-6, abs=1e-9
        )
        assert kd_target_slope(h_t, T) == pytest.approx(
            (kd_target(h_t + eps, T) - kd_target(h_t - eps, T)) / (2 * eps), rel=1e-6
        )


def test_smoothed_hinge_tends_to_the_hinge():
    for h in np.linspace(-3, 3, 61):
        for s in (-1.0, 1.0):
            exact = max(0.0, 1 - s * h)
            for width in (1e-1, 1e-3):
                value = smoothed_hinge(h, s, width)[0]
                assert exact - 1e-15 * (1 + exact) <= value <= exact + width * math.log(2) + 1e-15


def test_response_forms_equal_curvature_forms_for_smooth_losses():
    for name, residual in response_form_identities().items():
        assert sp.simplify(residual) == 0, name
