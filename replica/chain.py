"""Distillation chains: replica-symmetric fixed points of K + 1 stages on the same samples.

Stage 0 is ridge regression with a loss of the table on noisy labels (or the Bayes-optimal
proxy); stage ``k >= 1`` is trained on the same inputs with the loss::

    (1 - chi_k) l_k(y_obs, h) + c_k CE(target_k, sigma(h / T_k)) + lam_k / 2 |w_k|^2,

``target_k = sigma(h*_{k-1} / T_k)`` (soft) or ``1[h*_{k-1} > 0]`` (hard pseudo-label), on the
first ``eta_k N`` coordinates, with a free or fixed bias. The label term ``l_k`` is a row of
the loss table of :mod:`replica.losses` (``Stage.loss``: logistic, square or hinge); the
kernels dispatch on its integer code. The derivation (prior as a recursion
over stages on nested supports; channel over the correlated cavity fields of all stages, each
proximal step shifted by the responses of the earlier ones) is in ``docs/chains.md``; for
``K = 1`` and no label noise it is today's :func:`replica.student.solve_student`.

Stages are solved in order. Stage ``k`` sees the earlier stages only through their order
parameters and their fields on the nodes of the grid of ``z_0..z_{k-1}`` (the independent
Gaussian coordinates of the Cholesky factor of ``Delta Q``), a :class:`_Level` computed once
after each stage is solved: ``(z, h*, f, dh*/d omega, df/d omega)`` per node. The rule in
``z_j`` under each node is split at the root of ``h*_j = 0`` into two half-line Gauss rules
(:mod:`saddle.truncated_gaussian`), so hard targets and training disagreements are integrated
without averaging through their jump; for a hinge stage also at its two kink points, and its
own direction is split at the fields mapped onto the kink (docs/chains.md, "Losses of the
table").
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numba import njit
from scipy.special import ndtr, owens_t

from replica.channel import channel_scratch, own_direction_rule, rule_node, rule_size
from replica.errors import bayes_optimal_error, generalisation_error
from replica.losses import (
    KINKED,
    LOGISTIC,
    LOSS_KINDS,
    label_loss,
    mixture_kink_fields,
    mixture_loss,
    mixture_omega_zero,
    mixture_prox,
)
from replica.params import (
    GaussianMixture,
    ParameterError,
    check_count,
    check_nonnegative,
    check_positive,
    check_unit_interval,
)
from replica.teacher import limited_bias_step, solve_with_continuation
from saddle.fixed_point import (
    STALLED,
    ConvergenceWarning,
    FixedPointResult,
    ReportedSolution,
    solve_fixed_point,
)
from saddle.quadrature import gauss_hermite
from saddle.special import gaussian_cdf, sigmoid, sigmoid_prime
from saddle.truncated_gaussian import piecewise_gauss_rules

TARGETS = ("soft", "hard")
# Re-solves of a stage with a kinked loss on parent rules split at its near-kinks.
KINK_ROUNDS = 2
# Observables whose quadrature error ``solve_chain(..., error_estimate=True)`` estimates.
ESTIMATED = ("eps_g", "m", "q", "b", "train_loss", "train_ce", "train_error_observed",
             "train_error_true", "train_disagreement", "disagreement")  # fmt: skip
BIASES = ("free", "fixed", "inherit")
# A stage's observables (names of replica.observables), before its overlaps Q0, Q1, ...
STAGE_OBSERVABLES = ("eps_g", "m", "q", "b", "V", "train_loss", "train_ce", "train_error",
                     "train_error_observed", "train_error_true", "train_disagreement",
                     "disagreement", "eps_bo")  # fmt: skip
STAGE0_KINDS = ("trained", "bayes")


# ----------------------------------------------------------------------------------------------
# Parameters
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    """One stage of a chain.

    Parameters
    ----------
    eta : float
        Support: the first ``eta N`` coordinates, ``0 < eta <= 1``.
    lam : float
        Ridge strength (summed-loss convention, docs/conventions.md §2).
    chi : float
        Weight of the distillation term (stage 0: must be 0).
    temperature : float
        ``T_k > 0`` of the distillation term.
    target : {"soft", "hard"}
        ``sigma(h_{k-1}/T)`` or the hard pseudo-label ``1[h_{k-1} > 0]``.
    bias : {"free", "fixed", "inherit"}
        Trained bias, fixed to ``bias_value``, or fixed to the previous stage's bias.
    bias_value : float
        The fixed bias (``bias="fixed"``).
    t2_scaling : bool
        Multiply the distillation term by ``T^2`` (Hinton).
    teacher : {"trained", "bayes"}
        Stage 0 only: ridge regression with the loss ``loss`` on the observed labels, or the
        Bayes-optimal proxy (paper Eq. 23-24), not fitted to the samples.
    loss : {"logistic", "square", "hinge"}
        The label term ``l`` of ``(1 - chi) l(y_obs, h)``, a row of the loss table
        (:data:`replica.losses.LOSS_KINDS`); the distillation term is always the tempered
        cross-entropy. Non-logistic losses need ``lam > 0``.
    """

    eta: float = 1.0
    lam: float = 0.1
    chi: float = 0.0
    temperature: float = 1.0
    target: str = "soft"
    bias: str = "free"
    bias_value: float = 0.0
    t2_scaling: bool = False
    teacher: str = "trained"
    loss: str = "logistic"

    def __post_init__(self) -> None:
        object.__setattr__(self, "eta", check_unit_interval("eta", self.eta, open_left=True))
        object.__setattr__(self, "lam", check_nonnegative("lam", self.lam))
        object.__setattr__(self, "chi", check_unit_interval("chi", self.chi))
        object.__setattr__(self, "temperature", check_positive("temperature", self.temperature))
        value = float(self.bias_value)
        if not math.isfinite(value):
            raise ParameterError(f"bias_value must be finite; got {self.bias_value!r}")
        object.__setattr__(self, "bias_value", value)
        object.__setattr__(self, "t2_scaling", bool(self.t2_scaling))
        for name, allowed in (("target", TARGETS), ("bias", BIASES), ("teacher", STAGE0_KINDS),
                              ("loss", tuple(LOSS_KINDS))):  # fmt: skip
            if getattr(self, name) not in allowed:
                value = getattr(self, name)
                raise ParameterError(f"{name} must be one of {allowed}; got {value!r}")

    @property
    def kd_weight(self) -> float:
        """``c_k``: ``chi`` or ``chi T^2`` (Hinton)."""
        return self.chi * self.temperature**2 if self.t2_scaling else self.chi

    @property
    def hard(self) -> bool:
        return self.target == "hard"

    @property
    def kinked(self) -> bool:
        """Whether the stage's loss has a kink (a hinge label term with weight ``1 - chi > 0``)."""
        return self.loss_kind in KINKED and self.chi < 1.0

    @property
    def loss_kind(self) -> int:
        """The loss table's integer code of :attr:`loss` (what the numba kernels dispatch on)."""
        return LOSS_KINDS[self.loss]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ChainParams:
    """A chain: the mixture, the label noise and the list of stages."""

    alpha: float
    rho: float = 0.5
    delta: float = 1.0
    flip: float = 0.0
    stages: tuple[Stage, ...] = (Stage(),)

    def __post_init__(self) -> None:
        mixture = GaussianMixture(self.rho, self.delta)
        object.__setattr__(self, "alpha", check_positive("alpha", self.alpha))
        object.__setattr__(self, "rho", mixture.rho)
        object.__setattr__(self, "delta", mixture.delta)
        flip = check_unit_interval("flip", self.flip)
        if flip >= 0.5:
            raise ParameterError(f"flip must lie in [0, 1/2); got {self.flip!r}")
        object.__setattr__(self, "flip", flip)
        stages = tuple(self.stages)
        if not stages or not all(isinstance(s, Stage) for s in stages):
            raise ParameterError("stages must be a non-empty sequence of Stage")
        first = stages[0]
        if first.chi != 0.0:
            raise ParameterError("stage0.chi must be 0 (stage 0 has no upstream)")
        if first.bias == "inherit":
            raise ParameterError("stage0.bias cannot be 'inherit' (no previous stage)")
        if first.teacher == "bayes" and first.loss != "logistic":
            raise ParameterError("stage0.loss: the Bayes-optimal proxy is not trained on the "
                                 f"samples, it has no loss; got {first.loss!r}")
        for k, stage in enumerate(stages):
            if stage.loss != "logistic" and stage.lam == 0.0 and stage.teacher == "trained":
                raise ParameterError(f"stage{k}.lam must be > 0 for the {stage.loss} loss; "
                                     "got 0.0")
        for k, stage in enumerate(stages[1:], start=1):
            if stage.teacher != "trained":
                raise ParameterError(f"stage{k}.teacher: only stage 0 may be 'bayes'")
            separable = (stage.hard and stage.chi == 1.0 and stage.bias != "fixed"
                         and stage.eta >= stages[k - 1].eta)  # fmt: skip
            if separable and stage.lam == 0.0:
                # Its targets 1[h_{k-1} > 0] are separated by stage k-1 itself (same inputs,
                # support contained in stage k's): the unregularised loss has no minimiser.
                raise ParameterError(
                    f"stage{k}.lam must be > 0 for hard targets with chi = 1 on a support "
                    "containing the previous stage's (the targets are linearly separable)"
                )
        object.__setattr__(self, "stages", stages)

    @property
    def mixture(self) -> GaussianMixture:
        return GaussianMixture(self.rho, self.delta)

    @property
    def configurations(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(s, s_obs, probability)`` of the (true, observed) label pairs with mass > 0."""
        r, e = self.rho, self.flip
        s = np.array([1.0, 1.0, -1.0, -1.0])
        s_obs = np.array([1.0, -1.0, -1.0, 1.0])
        prob = np.array([r * (1 - e), r * e, (1 - r) * (1 - e), (1 - r) * e])
        keep = prob > 0.0
        return s[keep], s_obs[keep], prob[keep]

    def to_dict(self) -> dict:
        return {
            "alpha": self.alpha, "rho": self.rho, "delta": self.delta, "flip": self.flip,
            "stages": [s.to_dict() for s in self.stages],
        }  # fmt: skip


@dataclass(frozen=True)
class ChainQuadrature:
    """Integration rules of a chain solve.

    Attributes
    ----------
    inner0 : int
        Gauss-Hermite nodes in stage 0's own direction ``z_0`` (its own fixed point).
    inner : int
        Gauss-Hermite nodes in stage ``k``'s own direction ``z_k`` (``k >= 1``).
    side : int
        Half-line Gauss nodes on each side of the root of ``h*_j = 0`` in the rule of ``z_j``
        under which later stages are integrated (``2 side`` nodes per direction).
    split : bool
        Split the rules of ``z_j`` at the root (default). Without it, ``outer`` Gauss-Hermite
        nodes (today's student uses 64 in ``z1``; only for soft targets).
    outer : int
        Gauss-Hermite nodes of the unsplit rule.
    side_observables : int
        Gauss nodes per piece in ``z_{k-1}`` for stage ``k``'s training observables, on rules
        split at the root of ``h*_{k-1}`` and at the steep points of ``P(h*_k < 0 | z_<k)``
        (:func:`stage_steep_points`).
    stein : bool
        Compute every cross-conjugate by Stein's lemma (by default only where a hard target
        makes the fields jump; for a check of the forward derivatives).
    pruned_mass : float
        Nodes of a level are dropped, lightest first, as long as their total weight stays
        below this (products of rules have many nodes of negligible weight; the integrands
        are bounded, so the error is below ``pruned_mass`` times their bound).
    """

    inner0: int = 96
    inner: int = 20
    side: int = 12
    split: bool = True
    outer: int = 64
    side_observables: int = 24
    pruned_mass: float = 1e-13
    stein: bool = False

    def refined(self, extra: int = 4) -> ChainQuadrature:
        """A finer set of rules (for error estimates by refinement)."""
        return ChainQuadrature(self.inner0 + 2 * extra, self.inner + extra, self.side + extra,
                               self.split, self.outer + 2 * extra,
                               self.side_observables + 2 * extra, self.pruned_mass,
                               self.stein)  # fmt: skip


# ----------------------------------------------------------------------------------------------
# Channel kernels (numba): one stage, given the fields of the earlier stages on the parent nodes
# ----------------------------------------------------------------------------------------------
#
# A stage's loss is the loss table's mixture (replica.losses) with label term (1 - chi) l_kind
# on the observed label (sign ``so``, CE target ``p_obs``) and distillation term
# kd_weight CE(t, sigma(h/T)); ``kind`` is the table's integer code (numba dispatch, no
# function objects: cache=True holds).


@njit(cache=True)
def _stage_target(k, hard, h_prev, kd_weight, T):
    """Target ``t`` and cross-curvature ``c = d^2 L / (dh dh_prev)`` (0 for hard targets)."""
    if k == 0:
        return 0.0, 0.0
    if hard:
        return (1.0 if h_prev > 0.0 else 0.0), 0.0
    x = h_prev / T
    return sigmoid(x), -kd_weight * sigmoid_prime(x) / (T * T)


@njit(cache=True)
def _parent_centre(k, p, sgn, m, b, Lrow, Vrow, Z, F):
    """``s m + b + sum_l L_kl z_l + sum_j V_kj f_j``: the centre of ``u_k`` given the parent."""
    centre = sgn * m + b
    for j in range(k):
        centre += Lrow[j] * Z[p, j] + Vrow[j] * F[p, j]
    return centre


@njit(cache=True)
def stage_prox(kind, bayes, u, V, so, p_obs, chi, kd_weight, T, t, guess):
    """Stage's proximal point and responses ``(h*, r, g)`` at ``u`` (docs/chains.md, "Channel"):
    ``r = dh*/du`` (0 on a kink), ``g = -df/du = (1 - r)/V`` (:func:`replica.losses.mixture_prox`).
    A stage not fitted to the samples (the Bayes proxy) has ``h* = u``, ``r = 1``, ``g = 0``."""
    if bayes:
        return u, 1.0, 0.0
    h, d, g, _ = mixture_prox(kind, u, V, so, p_obs, 1.0 - chi, kd_weight, T, t, guess)
    return h, 1.0 / d, g


@njit(cache=True)
def stage_zero_field(kind, V, so, p_obs, chi, kd_weight, T, t):
    """``u`` at which ``h*_k = 0``: ``V L_k'(0)`` (every loss of the table is smooth at 0)."""
    return mixture_omega_zero(kind, V, so, p_obs, 1.0 - chi, kd_weight, T, t)


@njit(cache=True)
def _own_rule(kind, bayes, V, so, p_obs, chi, kd_weight, T, t, centre, width, scratch, zi, wi):
    """The rule in the stage's own direction: ``(n, split)`` of
    :func:`replica.channel.own_direction_rule` (split at the fields mapped onto a kink of the
    loss; otherwise the Gauss-Hermite rule ``zi, wi``)."""
    if bayes:
        return 0, False
    return own_direction_rule(kind, V, so, p_obs, 1.0 - chi, kd_weight, T, t, centre, width,
                              scratch, zi[:0], wi[:0], 0.0, 0.0)  # fmt: skip


@njit(cache=True)
def stage_channel_sums(
    k, cfg, wpar, Z, F, DF, h_prev, dh_prev, sign, sign_obs,
    chi, kd_weight, T, hard, kind, m, b, Lrow, V, Vrow, zi, wi, scratch, stein, out,
):  # fmt: skip
    """Gaussian averages of stage ``k``'s channel (docs/chains.md, "Channel").

    ``out`` (length ``4 + 2k``) receives ``E[s f], E[f], E[g], E[f^2]``, then ``E[f f_j]``
    (``j < k``), then ``E[-df/d omega_l]`` (forward derivative, ``stein`` False) or
    ``E[z_l f]`` (Stein's lemma, for chains with hard targets), ``l < k``. ``g = -df/du``
    is the response slope (``a/(1 + aV)`` for a smooth loss, ``1/V`` on a kink).
    """
    out[:] = 0.0
    Lkk = Lrow[k]
    for p in range(wpar.size):
        c = cfg[p]
        sgn = sign[c]
        so = sign_obs[c]
        p_obs = 0.5 * (so + 1.0)
        t, cc = _stage_target(k, hard, h_prev[p], kd_weight, T)
        centre = _parent_centre(k, p, sgn, m, b, Lrow, Vrow, Z, F)
        n, split = _own_rule(kind, False, V, so, p_obs, chi, kd_weight, T, t, centre, Lkk,
                             scratch, zi, wi)  # fmt: skip
        h = centre
        r = 1.0
        u_prev = centre
        for j in range(rule_size(zi, n, split)):
            zj, wj = rule_node(zi, wi, scratch, split, j)
            u = centre + Lkk * zj
            guess = h + (u - u_prev) * r
            h, r, g = stage_prox(kind, False, u, V, so, p_obs, chi, kd_weight, T, t, guess)
            u_prev = u
            f = (h - u) / V
            w = wpar[p] * wj
            out[0] += w * sgn * f
            out[1] += w * f
            out[2] += w * g
            out[3] += w * f * f
            for i in range(k):
                out[4 + i] += w * f * F[p, i]
            for l in range(k):
                if stein:
                    out[4 + k + l] += w * Z[p, l] * f
                else:
                    d = 0.0
                    for i in range(l, k):
                        d += Vrow[i] * DF[p, i, l]
                    out[4 + k + l] += w * (g * d + cc * dh_prev[p, l] * r)
    return out


@njit(cache=True)
def stage_roots(k, cfg, Z, F, h_prev, sign, sign_obs, chi, kd_weight, T, hard, kind,
                m, b, Lrow, V, Vrow, out):  # fmt: skip
    """Root in ``z_k`` of ``h*_k = 0`` under each parent: ``u_k = V L_k'(0)`` (closed form)."""
    for p in range(cfg.size):
        c = cfg[p]
        so = sign_obs[c]
        t, _ = _stage_target(k, hard, h_prev[p], kd_weight, T)
        zero = stage_zero_field(kind, V, so, 0.5 * (so + 1.0), chi, kd_weight, T, t)
        centre = _parent_centre(k, p, sign[c], m, b, Lrow, Vrow, Z, F)
        out[p] = (zero - centre) / Lrow[k]
    return out


@njit(cache=True)
def stage_kink_points(k, cfg, Z, F, h_prev, sign, sign_obs, chi, kd_weight, T, hard, kind,
                      m, b, Lrow, V, Vrow, out):  # fmt: skip
    """Under each parent, the two points in ``z_k`` that bound the fields mapped onto the
    kink of stage ``k``'s loss (``out[p] = (lo, hi)``; NaN for a smooth loss): ``h*_k`` and
    every later field are only continuous there, so the rules in ``z_k`` are split there too."""
    for p in range(cfg.size):
        c = cfg[p]
        so = sign_obs[c]
        t, _ = _stage_target(k, hard, h_prev[p], kd_weight, T)
        lo, hi, kinked = mixture_kink_fields(kind, V, so, 0.5 * (so + 1.0), 1.0 - chi,
                                             kd_weight, T, t)  # fmt: skip
        if not kinked or V <= 0.0:
            out[p, 0] = np.nan
            out[p, 1] = np.nan
            continue
        centre = _parent_centre(k, p, sign[c], m, b, Lrow, Vrow, Z, F)
        out[p, 0] = (lo - centre) / Lrow[k]
        out[p, 1] = (hi - centre) / Lrow[k]
    return out


@njit(cache=True)
def stage_training_sums(
    k, cfg, wpar, Z, F, h_prev, sign, sign_obs, chi, kd_weight, T, hard, kind,
    m, b, Lrow, V, Vrow, bayes, zi, wi, scratch, out,
):  # fmt: skip
    """Training observables of stage ``k``: ``out = (loss, CE vs observed labels, error vs
    observed, error vs true, disagreement with stage k-1)``, all per sample.

    ``h*_k`` is non-decreasing in ``z_k`` and vanishes at :func:`stage_roots`, so the three
    error rates are Gaussian probabilities at that root under each parent.
    """
    out[:] = 0.0
    Lkk = Lrow[k]
    c_label = 1.0 - chi
    for p in range(wpar.size):
        c = cfg[p]
        sgn = sign[c]
        so = sign_obs[c]
        p_obs = 0.5 * (so + 1.0)
        t, _ = _stage_target(k, hard, h_prev[p], kd_weight, T)
        centre = _parent_centre(k, p, sgn, m, b, Lrow, Vrow, Z, F)
        n, split = _own_rule(kind, bayes, V, so, p_obs, chi, kd_weight, T, t, centre, Lkk,
                             scratch, zi, wi)  # fmt: skip
        h = centre
        for j in range(rule_size(zi, n, split)):
            zj, wj = rule_node(zi, wi, scratch, split, j)
            u = centre + Lkk * zj
            h, _, _ = stage_prox(kind, bayes, u, V, so, p_obs, chi, kd_weight, T, t, h)
            w = wpar[p] * wj
            out[0] += w * mixture_loss(kind, h, so, p_obs, c_label, kd_weight, T, t)
            out[1] += w * label_loss(LOGISTIC, h, so, p_obs)
        zero = stage_zero_field(kind, V, so, p_obs, chi, kd_weight, T, t)
        below = gaussian_cdf((zero - centre) / Lkk)  # P(h*_k < 0 | parent)
        out[2] += wpar[p] * (below if so > 0.0 else 1.0 - below)
        out[3] += wpar[p] * (below if sgn > 0.0 else 1.0 - below)
        if k > 0:
            out[4] += wpar[p] * (below if h_prev[p] > 0.0 else 1.0 - below)
    return out


@njit(cache=True)
def stage_children(
    k, cfg, wpar, Z, F, DF, h_prev, dh_prev, sign, sign_obs, chi, kd_weight, T, hard, kind,
    m, b, Lrow, V, Vrow, bayes, zc, wc,
    o_cfg, o_w, o_Z, o_F, o_DF, o_h, o_dh,
):  # fmt: skip
    """Stage ``k``'s fields on the child nodes ``zc[p]`` (weights ``wc[p]``) of every parent.

    Fills the next :class:`_Level`: configuration, weight, ``z_0..z_k``, ``f_0..f_k``,
    ``df_i/d omega_l`` (``i, l <= k``), ``h*_k`` and ``dh*_k/d omega_l``, using the forward
    derivatives of docs/chains.md (exact for soft targets; not used across hard ones; on a
    kink of the loss ``r = 0``: ``h*`` is stuck, ``df/du = -1/V``).
    """
    n_child = zc.shape[1]
    Lkk = Lrow[k]
    du = np.empty(k + 1)
    for p in range(wpar.size):
        c = cfg[p]
        so = sign_obs[c]
        p_obs = 0.5 * (so + 1.0)
        t, cc = _stage_target(k, hard, h_prev[p], kd_weight, T)
        centre = _parent_centre(k, p, sign[c], m, b, Lrow, Vrow, Z, F)
        for l in range(k + 1):
            acc = 1.0 if l == k else 0.0
            for i in range(l, k):
                acc += Vrow[i] * DF[p, i, l]
            du[l] = acc
        h = centre
        for j in range(n_child):
            n = p * n_child + j
            u = centre + Lkk * zc[p, j]
            o_cfg[n] = c
            o_w[n] = wpar[p] * wc[p, j]
            for i in range(k):
                o_Z[n, i] = Z[p, i]
                o_F[n, i] = F[p, i]
                for l in range(i + 1):
                    o_DF[n, i, l] = DF[p, i, l]
            o_Z[n, k] = zc[p, j]
            if bayes:
                o_h[n] = u
                o_F[n, k] = 0.0
                for l in range(k + 1):
                    o_dh[n, l] = 1.0 if l == k else 0.0
                    o_DF[n, k, l] = 0.0
                continue
            h, r, _ = stage_prox(kind, False, u, V, so, p_obs, chi, kd_weight, T, t, h)
            o_h[n] = h
            o_F[n, k] = (h - u) / V
            for l in range(k + 1):
                prev = dh_prev[p, l] if l < k else 0.0
                dh = (du[l] - V * cc * prev) * r
                o_dh[n, l] = dh
                o_DF[n, k, l] = (dh - du[l]) / V


@njit(cache=True)
def _median_gap(z, g, k, sgn, so, p_obs, centre1, Lkk1, t1, chi1, kd1, T1, V1, kind1, bayes1,
                base_k, L_kk1, V_kk1, chi, kd, T, hard, kind, V, which, h_guess):  # fmt: skip
    """``(a field of stage k) - (centre of u_k)`` at ``z_{k-1} = z``; the field is ``V_k L_k'(0)``
    (``which = 0``: stage k's median is below zero where the gap is positive), or the lower
    (1) or upper (2) end of the fields mapped onto the kink of stage k's loss. Returns it and
    stage k-1's ``h*`` (a guess for the next call)."""
    u1 = centre1 + Lkk1 * z
    h1, _, _ = stage_prox(kind1, bayes1, u1, V1, so, p_obs, chi1, kd1, T1, t1, h_guess)
    f1 = 0.0 if bayes1 else (h1 - u1) / V1
    t, _ = _stage_target(k, hard, h1, kd, T)
    if which == 0:
        field = stage_zero_field(kind, V, so, p_obs, chi, kd, T, t)
    else:
        lo, hi, _ = mixture_kink_fields(kind, V, so, p_obs, 1.0 - chi, kd, T, t)
        field = lo if which == 1 else hi
    return field - (base_k + L_kk1 * z + V_kk1 * f1), h1


@njit(cache=True)
def stage_steep_points(
    k, cfg, Z, F, h_gp, sign, sign_obs,
    chi1, kd1, T1, hard1, kind1, m1, b1, Lrow1, V1, Vrow1, bayes1,
    chi, kd, T, hard, kind, m, b, Lrow, V, Vrow, which, roots, out,
):  # fmt: skip
    """Under each node of ``z_0..z_{k-2}`` (``k >= 1``), the point ``z_{k-1}`` on either side of
    the root of ``h*_{k-1} = 0`` where stage k's conditional median ``P(h*_k < 0) = 1/2``
    (NaN where there is none). ``P(h*_k < 0 | z_<k)`` is a steep function of ``z_{k-1}``
    there when the two stages are strongly correlated (``L_kk`` small): the training errors
    and disagreement of stage k are integrated on rules split at these points too.

    With ``which = 1`` or ``2`` (a loss with a kink), the points where the centre of ``u_k``
    crosses the lower or upper end of the fields mapped onto the kink instead: there stage
    k's averages over ``z_k`` have a near-kink of width ``~L_kk / L_k,k-1`` in ``z_{k-1}``.
    """
    cut = 9.0
    for g in range(cfg.size):
        c = cfg[g]
        sgn = sign[c]
        so = sign_obs[c]
        p_obs = 0.5 * (so + 1.0)
        t1, _ = _stage_target(k - 1, hard1, h_gp[g], kd1, T1)
        centre1 = _parent_centre(k - 1, g, sgn, m1, b1, Lrow1, Vrow1, Z, F)
        base_k = sgn * m + b
        for j in range(k - 1):
            base_k += Lrow[j] * Z[g, j] + Vrow[j] * F[g, j]
        a = min(max(roots[g], -cut), cut)
        for side in range(2):
            out[g, side] = np.nan
            lo, hi = (-cut, a) if side == 0 else (a, cut)
            if hi - lo <= 1e-12:
                continue
            eps = 1e-12 * (1.0 + abs(a))
            zl = lo if side == 0 else lo + eps
            zh = hi - eps if side == 0 else hi
            gl, h = _median_gap(zl, g, k, sgn, so, p_obs, centre1, Lrow1[k - 1], t1, chi1, kd1,
                                T1, V1, kind1, bayes1, base_k, Lrow[k - 1], Vrow[k - 1], chi,
                                kd, T, hard, kind, V, which, 0.0)  # fmt: skip
            gh, h = _median_gap(zh, g, k, sgn, so, p_obs, centre1, Lrow1[k - 1], t1, chi1, kd1,
                                T1, V1, kind1, bayes1, base_k, Lrow[k - 1], Vrow[k - 1], chi,
                                kd, T, hard, kind, V, which, h)  # fmt: skip
            if gl * gh > 0.0:
                continue
            for _ in range(60):
                zm = 0.5 * (zl + zh)
                gm, h = _median_gap(zm, g, k, sgn, so, p_obs, centre1, Lrow1[k - 1], t1, chi1,
                                    kd1, T1, V1, kind1, bayes1, base_k, Lrow[k - 1],
                                    Vrow[k - 1], chi, kd, T, hard, kind, V, which,
                                    h)  # fmt: skip
                if gm * gl > 0.0:
                    zl, gl = zm, gm
                else:
                    zh = zm
            out[g, side] = 0.5 * (zl + zh)
    return out


# ----------------------------------------------------------------------------------------------
# Levels (earlier stages' fields on the nodes) and the prior's block recursion
# ----------------------------------------------------------------------------------------------


@dataclass
class _Level:
    """Nodes of ``(configuration, z_0..z_j)`` with stage ``j``'s fields (and its ancestors')."""

    cfg: np.ndarray
    weight: np.ndarray
    Z: np.ndarray
    F: np.ndarray
    DF: np.ndarray
    h: np.ndarray
    dh: np.ndarray

    @property
    def size(self) -> int:
        return self.weight.size


def _significant(weight: np.ndarray, pruned_mass: float) -> np.ndarray:
    """Mask of the nodes kept: the lightest are dropped while their total is <= pruned_mass."""
    order = np.argsort(weight)
    dropped = np.cumsum(weight[order]) <= pruned_mass
    keep = np.ones(weight.size, dtype=bool)
    keep[order[dropped]] = False
    return keep


def _root_level(params: ChainParams) -> _Level:
    """The configurations ``(s, s_obs)`` as the parents of stage 0."""
    _, _, prob = params.configurations
    n = prob.size
    return _Level(np.arange(n), prob.copy(), np.zeros((n, 0)), np.zeros((n, 0)),
                  np.zeros((n, 0, 0)), np.zeros(n), np.zeros((n, 0)))  # fmt: skip


def _blocks(etas: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Widths of the blocks cut by the supports and which stages are active on each."""
    edges = np.unique(np.concatenate([[0.0], np.asarray(etas, float)]))
    widths = np.diff(edges)
    active = np.array([[eta >= hi - 1e-15 for eta in etas] for hi in edges[1:]])
    return widths, active


@dataclass
class _Prior:
    """Block coefficients ``w_k = a_k v + B_k xi`` of the solved stages and ``Cov(xi) = Qhat``."""

    widths: np.ndarray
    active: np.ndarray
    A: np.ndarray
    B: np.ndarray
    C: np.ndarray

    @classmethod
    def empty(cls, etas: Sequence[float]) -> _Prior:
        widths, active = _blocks(etas)
        n = len(etas)
        return cls(widths, active, np.zeros((widths.size, n)), np.zeros((widths.size, n, n)),
                   np.zeros((n, n)))  # fmt: skip

    def stage_rows(self, k: int, mhat: float, Vhat: float, lam: float, Vhat_row: np.ndarray):
        """Block coefficients ``(a_k, B_k)`` of docs/chains.md ("Prior")."""
        D = lam + Vhat
        act = self.active[:, k]
        a = (mhat - self.A[:, :k] @ Vhat_row) / D
        B = -np.einsum("j,bjl->bl", Vhat_row, self.B[:, :k, : k + 1])
        B[:, k] += 1.0
        B /= D
        return np.where(act, a, 0.0), np.where(act[:, None], B, 0.0)

    def overlaps(self, k: int, a: np.ndarray, B: np.ndarray, C_row: np.ndarray):
        """``m_k``, ``Q_kj`` (``j <= k``; the last is ``q_k``) and the block sums of ``B_kj``."""
        C = self.C[: k + 1, : k + 1].copy()
        C[k, :] = C_row
        C[:, k] = C_row
        phi = self.widths
        m = float(phi @ a)
        BC = B @ C  # (blocks, k+1)
        Q = np.empty(k + 1)
        for j in range(k):
            cross = np.einsum("bl,bl->b", BC, self.B[:, j, : k + 1])
            Q[j] = float(phi @ (a * self.A[:, j] + cross))
        Q[k] = float(phi @ (a * a + np.einsum("bl,bl->b", BC, B)))
        return m, Q, phi @ B

    def store(self, k: int, a: np.ndarray, B: np.ndarray, C_row: np.ndarray) -> None:
        self.A[:, k] = a
        self.B[:, k, : k + 1] = B
        self.C[k, : k + 1] = C_row
        self.C[: k + 1, k] = C_row


# ----------------------------------------------------------------------------------------------
# Results
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StageSolution(ReportedSolution):
    """Replica prediction for one stage of a chain.

    Attributes
    ----------
    index : int
    stage : Stage
    eps_g : float
        Test error against the true class (paper Eq. 12).
    m, q, b, V : float
        Overlap with ``v``, squared norm (over N), bias, susceptibility (times delta).
    overlaps : tuple of float
        ``Q_jk = w_j.w_k / N`` with every earlier stage ``j < k``.
    responses : tuple of float
        Cross-susceptibilities ``V_kj`` (the shift of stage k's field per unit force on j).
    mhat, Vhat : float
    Qhat, Vhat_cross : tuple of float
        Conjugates (``Qhat`` over ``j <= k``).
    train_loss, train_ce : float
        Mean stage loss per training sample, mean ``CE(y_obs, sigma(h))``.
    train_error_observed, train_error_true : float
        Training error against the observed and against the true labels.
    train_disagreement, disagreement : float
        Probability that stage k and stage k-1 predict different labels on a training sample,
        and on a fresh sample (NaN for stage 0).
    eps_bo : float
        Bayes-optimal error of a classifier on the stage's support.
    """

    index: int
    stage: Stage
    eps_g: float
    m: float
    q: float
    b: float
    V: float
    overlaps: tuple
    responses: tuple
    mhat: float
    Vhat: float
    Qhat: tuple
    Vhat_cross: tuple
    train_loss: float
    train_ce: float
    train_error_observed: float
    train_error_true: float
    train_disagreement: float
    disagreement: float
    eps_bo: float
    report: FixedPointResult = field(repr=False)

    @property
    def state(self) -> np.ndarray:
        """``(m, q, Q_k<, V, V_k<, b)``: a warm start for the same stage."""
        return np.array([self.m, self.q, *self.overlaps, self.V, *self.responses, self.b])

    @property
    def train_error(self) -> float:
        """Training error against the labels the stage is trained on (the observed ones): the
        schema's ``train_error`` (:mod:`replica.observables`), = ``train_error_observed``."""
        return self.train_error_observed

    def observables(self) -> dict:
        """``{name: value}`` with the names of :mod:`replica.observables` (the overlaps with
        earlier stages as ``Q0, Q1, ...``, as in :mod:`simulations.chains`)."""
        out = {key: getattr(self, key) for key in STAGE_OBSERVABLES}
        out.update({f"Q{j}": v for j, v in enumerate(self.overlaps)})
        return out

    def to_row(self) -> dict:
        """Flat row: ``stage``, the observables, then ``converged``, ``nit``, ``residual``,
        ``status`` (as the teacher's and the student's rows)."""
        return {"stage": self.index, **self.observables(), **self.convergence()}

    def to_dict(self) -> dict:
        """JSON-ready record: the row (:meth:`to_row`), ``message``, the overlaps, responses and
        conjugates as lists, and the stage's ``params``."""
        return {
            **self.to_row(), "message": self.message, "overlaps": list(self.overlaps),
            "responses": list(self.responses), "mhat": self.mhat, "Vhat": self.Vhat,
            "Qhat": list(self.Qhat), "Vhat_cross": list(self.Vhat_cross),
            "params": self.stage.to_dict(),
        }  # fmt: skip


@dataclass(frozen=True)
class ChainSolution:
    """Replica prediction for a whole chain: one :class:`StageSolution` per stage."""

    params: ChainParams
    stages: tuple
    quadrature: ChainQuadrature
    errors: tuple | None = None
    fields: dict | None = field(default=None, repr=False, compare=False)

    @property
    def eps_g_errors(self) -> tuple:
        """Quadrature error estimates of each stage's eps_g (``error_estimate=True``)."""
        return tuple(e["eps_g"] for e in self.errors) if self.errors is not None else ()

    @property
    def converged(self) -> bool:
        """Every stage converged (a bool)."""
        return bool(all(s.converged for s in self.stages))

    @property
    def success(self) -> bool:
        """Alias of :attr:`converged` (``scipy.optimize`` convention)."""
        return self.converged

    @property
    def status(self) -> int:
        """The status of the first stage that did not converge (0 if all did; codes of
        :mod:`saddle.fixed_point`)."""
        return next((s.status for s in self.stages if s.status != 0), 0)

    @property
    def message(self) -> str:
        """``"converged"`` at every stage, or the first failing stage's message."""
        for s in self.stages:
            if s.status != 0:
                return f"stage{s.index}: {s.message}"
        return f"converged at all {len(self.stages)} stages"

    @property
    def nit(self) -> int:
        """Fixed-point map evaluations summed over the stages."""
        return int(sum(s.nit for s in self.stages))

    def __getitem__(self, k: int) -> StageSolution:
        return self.stages[k]

    def __len__(self) -> int:
        return len(self.stages)

    def to_rows(self) -> list[dict]:
        """One flat row per stage (:meth:`StageSolution.to_row`)."""
        return [s.to_row() for s in self.stages]

    def to_dict(self) -> dict:
        """JSON-ready record: ``params``, ``converged``, ``nit``, ``status``, ``message`` and the
        ``stages`` list (:meth:`StageSolution.to_dict`)."""
        out = {"params": self.params.to_dict(), "converged": self.converged, "nit": self.nit,
               "status": self.status, "message": self.message,
               "stages": [s.to_dict() for s in self.stages]}  # fmt: skip
        if self.errors is not None:
            out["quadrature_errors"] = [dict(e) for e in self.errors]
        return out


# ----------------------------------------------------------------------------------------------
# Stage solves
# ----------------------------------------------------------------------------------------------


def _cholesky_row(Lprev: np.ndarray, Qrow: np.ndarray, q: float, delta: float):
    """Row ``k`` of the Cholesky factor of ``Delta Q`` given its first ``k`` rows; None if
    ``Delta Q`` would not be positive definite."""
    k = Qrow.size
    row = np.empty(k + 1)
    for l in range(k):
        row[l] = (delta * Qrow[l] - row[:l] @ Lprev[l, :l]) / Lprev[l, l]
    res = delta * q - row[:k] @ row[:k]
    if not (res > 0.0) or not np.isfinite(res):
        return None
    row[k] = math.sqrt(res)
    return row


def _copy_diagnosis(k: int, Lrow: np.ndarray, q: float, delta: float) -> str:
    """Why stage ``k`` stalled at the boundary ``L_kk -> 0`` (a singular ``Delta Q``): it
    nearly copies the stages before it. When stage ``k-1``'s training disagreement with its
    own targets vanishes (hard targets at chi = 1), stage ``k``'s hard targets are stage
    ``k-1``'s, and with the same ridge stage ``k`` is stage ``k-1`` (docs/chains.md,
    "Numerics")."""
    share = Lrow[k] ** 2 / (delta * q)
    return (f"; stage{k} nearly copies the earlier stages: L_kk^2/(Delta q) = {share:.2g} at "
            "the best point")


def _disagreement(m1, q1, b1, m2, q2, b2, Q12, rho, delta) -> float:
    """P(sign h_1 != sign h_2) on a fresh sample (bivariate Gaussian orthants, Owen's T)."""
    r = Q12 / math.sqrt(q1 * q2)
    r = min(max(r, -1.0), 1.0)
    total = 0.0
    for s, pc in ((1.0, rho), (-1.0, 1.0 - rho)):
        x = (s * m1 + b1) / math.sqrt(delta * q1)
        y = (s * m2 + b2) / math.sqrt(delta * q2)
        both = _orthant(x, y, r)  # P(h_1 > 0, h_2 > 0)
        total += pc * (ndtr(x) + ndtr(y) - 2.0 * both)
    return float(total)


def _orthant(x: float, y: float, r: float) -> float:
    """``P(X < x, Y < y)`` for standard bivariate normals of correlation ``r`` (Owen 1956)."""
    if abs(r) >= 1.0 - 1e-15:
        return float(ndtr(min(x, y))) if r > 0 else float(max(ndtr(x) - ndtr(-y), 0.0))
    s = math.sqrt(1.0 - r * r)

    def term(a: float, c: float) -> float:
        if a == 0.0:
            return 0.25 * math.copysign(1.0, c) if c != 0.0 else 0.0
        return float(owens_t(a, (c - r * a) / (a * s)))

    beta = 0.0 if (x * y > 0.0 or (x * y == 0.0 and x + y >= 0.0)) else 0.5
    value = 0.5 * (ndtr(x) + ndtr(y)) - term(x, y) - term(y, x) - beta
    if x == 0.0 and y == 0.0:
        value = 0.25 + math.asin(r) / (2.0 * math.pi)
    return float(value)


@dataclass
class _Solved:
    """What later stages need of a solved stage (the upstream protocol of issue 11)."""

    m: float
    q: float
    b: float
    V: float
    Lrow: np.ndarray
    Vrow: np.ndarray
    Q: np.ndarray  # Q_kj for j <= k


class _ChainSolver:
    """Solves the stages of ``params`` in order (docs/chains.md, "Numerics")."""

    def __init__(self, params: ChainParams, quad: ChainQuadrature, *, tol: float,
                 damping: float, max_iter: int):  # fmt: skip
        self.params = params
        self.quad = quad
        self.options = dict(tol=tol, damping=damping, max_iter=max_iter)
        self.sign, self.sign_obs, _ = params.configurations
        self.prior = _Prior.empty([s.eta for s in params.stages])
        K1 = len(params.stages)
        self.L = np.zeros((K1, K1))
        self.Qmat = np.zeros((K1, K1))
        self.solved: list[_Solved] = []
        self.level = _root_level(params)
        self._previous: list[tuple] = []  # (parent level, m, b, L row, V, V row, bayes)

    # -- one stage ---------------------------------------------------------------------------

    def _stein(self, k: int) -> bool:
        return self.quad.stein or any(s.hard for s in self.params.stages[1 : k + 1])

    def _kernel_args(self, k: int, stage: Stage):
        lv = self.level
        return (k, lv.cfg, lv.weight, lv.Z, lv.F, lv.DF, lv.h, lv.dh, self.sign, self.sign_obs,
                stage.chi, stage.kd_weight, stage.temperature, stage.hard,
                stage.loss_kind)  # fmt: skip

    def _fixed_bias(self, k: int, stage: Stage) -> float | None:
        if stage.bias == "fixed":
            return stage.bias_value
        if stage.bias == "inherit":
            return self.solved[k - 1].b
        return None

    def _start(self, k: int, stage: Stage) -> np.ndarray:
        """A feasible start ``(m, q, Q_k<, V, V_k<, b)``; for k = 1 today's student start."""
        p = self.params
        if k == 0:
            x = np.array([0.5 * stage.eta, stage.eta, stage.eta, 0.0])
        else:
            prev = self.solved[k - 1]
            ratio = stage.eta / p.stages[k - 1].eta
            Qprev = self.Qmat[k - 1, :k]
            if stage.chi > 0.0 and prev.V > 0.0:
                gamma = 0.9 * min(ratio, 1.0)
                x = np.concatenate([[ratio * prev.m, ratio * prev.q], gamma * Qprev,
                                    [ratio * prev.V], np.zeros(k),
                                    [prev.b * math.sqrt(ratio)]])  # fmt: skip
            else:
                q = stage.eta
                gamma = 0.5 * math.sqrt(q / prev.q)
                x = np.concatenate([[0.5 * stage.eta, q], gamma * Qprev, [1.0], np.zeros(k),
                                    [prev.b * math.sqrt(q / prev.q)]])  # fmt: skip
        fixed = self._fixed_bias(k, stage)
        if fixed is not None:
            x[-1] = fixed
        return x

    def _solve_bayes0(self, stage: Stage) -> StageSolution:
        p = self.params
        eta = stage.eta
        q = eta * (1.0 + p.delta / p.alpha)
        b = p.delta * q / (2.0 * eta) * math.log(p.rho / (1.0 - p.rho))
        fixed = self._fixed_bias(0, stage)
        if fixed is not None:
            b = fixed
        Lrow = np.array([math.sqrt(p.delta * q)])
        self.prior.store(0, np.where(self.prior.active[:, 0], 1.0, 0.0),
                         np.where(self.prior.active[:, 0:1], 1.0, 0.0),
                         np.array([p.delta / p.alpha]))  # fmt: skip
        report = FixedPointResult(np.array([eta, q, 0.0, b]), True, 0, "closed form", 0, 0.0, ())
        return self._finish(0, stage, eta, q, b, 0.0, np.zeros(0), np.zeros(0), Lrow,
                            (math.nan, math.nan, math.nan), np.zeros(0), report, bayes=True)

    def _map(self, k: int, stage: Stage, lam: float):
        """The fixed-point map of stage ``k`` (earlier stages fixed) and its coordinates."""
        p = self.params
        alpha, delta = p.alpha, p.delta
        base = self._kernel_args(k, stage)
        quad = self.quad
        rule = gauss_hermite(quad.inner0 if k == 0 else quad.inner)
        zi, wi = rule.nodes, rule.weights
        stein = self._stein(k)
        out = np.empty(4 + 2 * k)
        scratch = channel_scratch()
        Lprev = self.L[:k, :k]
        fixed_b = self._fixed_bias(k, stage)
        bayes0 = k > 0 and p.stages[0].teacher == "bayes"
        Qprev = self.Qmat[:k, :k]
        Qinv = np.linalg.inv(Qprev) if k else np.zeros((0, 0))

        def conjugates(x, Lrow):
            m, V, b = x[0], x[2 + k], x[-1]
            Vrow = x[3 + k : 3 + 2 * k]
            stage_channel_sums(*base, m, b, Lrow, V, Vrow, zi, wi, scratch, stein, out)
            esf, ef, ea, ef2 = out[:4]
            mhat = alpha * esf
            Qhat_row = alpha * delta * np.append(out[4 : 4 + k], ef2)
            Vhat = alpha * delta * ea
            if stein:
                Lfull = np.vstack([np.hstack([Lprev, np.zeros((k, 1))]), Lrow[None, :]])
                grad = np.empty(k + 1)
                grad[k] = -ea
                for l in range(k - 1, -1, -1):
                    grad[l] = (out[4 + k + l] - Lfull[l + 1 :, l] @ grad[l + 1 :]) / Lfull[l, l]
                Vhat_row = -alpha * delta * grad[:k]
            else:
                Vhat_row = alpha * delta * out[4 + k : 4 + 2 * k].copy()
            return mhat, Qhat_row, Vhat, Vhat_row, ef, ea

        def update(x):
            Lrow = _cholesky_row(Lprev, x[2 : 2 + k], x[1], delta)
            if Lrow is None or not x[2 + k] > 0.0:
                return np.full(x.size, np.nan)
            mhat, Qhat_row, Vhat, Vhat_row, ef, ea = conjugates(x, Lrow)
            a, B = self.prior.stage_rows(k, mhat, Vhat, lam, Vhat_row)
            m_n, Q_n, Bsum = self.prior.overlaps(k, a, B, Qhat_row)
            V_n = delta * Bsum[k]
            Vrow_n = delta * Bsum[:k]
            if bayes0:
                Vrow_n[0] = 0.0  # the proxy feels no force from the samples (f_0 = 0)
            if fixed_b is None:
                b_n = limited_bias_step(x[-1], ef, ea, 1.0 + 2.0 * math.sqrt(delta * x[1]))
            else:
                b_n = fixed_b
            return np.concatenate([[m_n, Q_n[k]], Q_n[:k], [V_n], Vrow_n, [b_n]])

        def to_internal(x):
            Qr = x[2 : 2 + k]
            with np.errstate(invalid="ignore", divide="ignore"):
                res = np.log(x[1] - Qr @ Qinv @ Qr)
                return np.concatenate([[x[0], res], Qr, [np.log(x[2 + k])], x[3 + k :]])

        def from_internal(y):
            Qr = y[2 : 2 + k]
            with np.errstate(over="ignore"):
                q = np.exp(y[1]) + Qr @ Qinv @ Qr
                return np.concatenate([[y[0], q], Qr, [np.exp(y[2 + k])], y[3 + k :]])

        return update, to_internal, from_internal, conjugates

    def solve_stage(self, k: int, initial: np.ndarray | None = None) -> StageSolution:
        p = self.params
        stage = p.stages[k]
        if k == 0 and stage.teacher == "bayes":
            return self._solve_bayes0(stage)

        def iterate(lam, start):
            update, to_i, from_i, _ = self._map(k, stage, lam)
            return solve_fixed_point(update, start, to_internal=to_i, from_internal=from_i,
                                     **self.options)  # fmt: skip

        default = self._start(k, stage)
        report, total = solve_with_continuation(iterate, stage.lam, default, initial)
        if report.converged and k and stage.kinked and self.quad.split:
            report, extra = self._resolve_kinks(k, stage, report, iterate)
            total += extra
        report = dataclasses.replace(report, nit=total)
        x = report.x
        update, _, _, conjugates = self._map(k, stage, stage.lam)
        Lrow = _cholesky_row(self.L[:k, :k], x[2 : 2 + k], x[1], p.delta)
        if Lrow is None:
            raise FloatingPointError(f"stage{k}: the fixed point left the domain")
        mhat, Qhat_row, Vhat, Vhat_row, _, _ = conjugates(x, Lrow)
        a, B = self.prior.stage_rows(k, mhat, Vhat, stage.lam, Vhat_row)
        self.prior.store(k, a, B, Qhat_row)
        m, q, V, b = (float(v) for v in (x[0], x[1], x[2 + k], x[-1]))
        Qrow = x[2 : 2 + k].copy()
        Vrow = x[3 + k : 3 + 2 * k].copy()
        if report.status == STALLED and k:
            report = dataclasses.replace(
                report, message=report.message + _copy_diagnosis(k, Lrow, q, p.delta))
        if not report.converged:
            warnings.warn(f"stage{k} of the chain did not converge: {report.message}",
                          ConvergenceWarning, stacklevel=3)  # fmt: skip
        return self._finish(k, stage, m, q, b, V, Qrow, Vrow, Lrow,
                            (mhat, Vhat, Qhat_row), Vhat_row, report)  # fmt: skip

    def _resolve_kinks(self, k: int, stage: Stage, report: FixedPointResult, iterate):
        """Re-solve a stage whose loss has a kink on parent rules in ``z_{k-1}`` split where,
        at the solution, the centre of ``u_k`` crosses the ends of the fields mapped onto the
        kink (:func:`stage_steep_points`, ``which`` 1 and 2): the average over ``z_k`` has a
        near-kink there, of width ``~L_kk / L_k,k-1``, which the rules split only at the root
        of ``h*_{k-1}`` resolve slowly (docs/chains.md, "Losses of the table"). Warm-started,
        at most :data:`KINK_ROUNDS` times; returns the report and the map evaluations used."""
        total = 0
        for _ in range(KINK_ROUNDS):
            x = report.x
            Lrow = _cholesky_row(self.L[:k, :k], x[2 : 2 + k], x[1], self.params.delta)
            if Lrow is None:
                break
            near = (stage, x[0], x[-1], Lrow, x[2 + k], x[3 + k : 3 + 2 * k])
            self.level = self._children(k - 1, self.params.stages[k - 1], self._previous[k - 1],
                                        self.quad.side, near, (1, 2))  # fmt: skip
            new = iterate(stage.lam, x)
            total += new.nit
            change = float(np.max(np.abs(new.x - x) / np.maximum(1.0, np.abs(new.x))))
            report = new
            if not new.converged or change <= 10.0 * self.options["tol"]:
                break
        return report, total

    def _finish(self, k, stage, m, q, b, V, Qrow, Vrow, Lrow, conj, Vhat_row, report,
                bayes=False) -> StageSolution:  # fmt: skip
        """Training observables, the next level's fields, and the :class:`StageSolution`."""
        p = self.params
        self.L[k, : k + 1] = Lrow
        self.Qmat[k, :k] = Qrow
        self.Qmat[:k, k] = Qrow
        self.Qmat[k, k] = q
        self.solved.append(_Solved(m, q, b, V, Lrow, Vrow, np.append(Qrow, q)))
        rule = gauss_hermite(self.quad.inner0 if k == 0 else self.quad.inner)
        train = np.empty(5)
        lv = self.level
        if k and self.quad.split:
            # The training errors integrate P(h_k < 0 | z_<k) (times 1[h_{k-1} > 0] for the
            # disagreement), steep in z_{k-1} when the two stages are strongly correlated: a
            # rule in z_{k-1} split at the steep points too, for these observables only.
            steep = (stage, m, b, Lrow, V, Vrow)
            lv = self._children(k - 1, self.params.stages[k - 1], self._previous[k - 1],
                                self.quad.side_observables, steep, (0, 1, 2))  # fmt: skip
        stage_training_sums(k, lv.cfg, lv.weight, lv.Z, lv.F, lv.h, self.sign, self.sign_obs,
                            stage.chi, stage.kd_weight, stage.temperature, stage.hard,
                            stage.loss_kind, m, b, Lrow, V, Vrow, bayes, rule.nodes,
                            rule.weights, channel_scratch(), train)  # fmt: skip
        self._previous.append((self.level, m, b, Lrow, V, Vrow, bayes))
        if k + 1 < len(p.stages):
            self.level = self._children(k, stage, self._previous[k], self.quad.side)
        prev = self.solved[k - 1] if k else None
        disagreement = math.nan
        if prev is not None:
            disagreement = _disagreement(prev.m, prev.q, prev.b, m, q, b, Qrow[k - 1],
                                         p.rho, p.delta)  # fmt: skip
        mhat, Vhat, Qhat_row = conj
        return StageSolution(
            k, stage, float(generalisation_error(m, q, b, p.rho, p.delta)), m, q, b, V,
            tuple(float(v) for v in Qrow), tuple(float(v) for v in Vrow),
            float(mhat), float(Vhat), tuple(float(v) for v in np.atleast_1d(Qhat_row)),
            tuple(float(v) for v in Vhat_row), float(train[0]), float(train[1]),
            float(train[2]), float(train[3]), float(train[4]) if k else math.nan, disagreement,
            bayes_optimal_error(p.alpha, p.mixture, eta=stage.eta), report,
        )  # fmt: skip

    def _children(self, k, stage, solved, side, steep=None, features=(0,)) -> _Level:
        """Stage ``k``'s fields on its child nodes under the parents it was solved on; with
        ``steep = (stage k+1, its m, b, L row, V, V row)`` the rules are also split at the
        points ``features`` of stage k+1 (:func:`stage_steep_points`: 0, the steep points of
        its training observables; 1 and 2, the near-kinks of a kinked loss)."""
        lv, m, b, Lrow, V, Vrow, bayes = solved
        P = lv.size
        if self.quad.split:
            roots = np.empty(P)
            stage_roots(k, lv.cfg, lv.Z, lv.F, lv.h, self.sign, self.sign_obs, stage.chi,
                        stage.kd_weight, stage.temperature, stage.hard, stage.loss_kind, m, b,
                        Lrow, V, Vrow, roots)  # fmt: skip
            cuts = roots[:, None]
            if stage.kinked and not bayes:
                # h*_k is only continuous where the loss has its kink: split there too.
                kinks = np.empty((P, 2))
                stage_kink_points(k, lv.cfg, lv.Z, lv.F, lv.h, self.sign, self.sign_obs,
                                  stage.chi, stage.kd_weight, stage.temperature, stage.hard,
                                  stage.loss_kind, m, b, Lrow, V, Vrow, kinks)  # fmt: skip
                cuts = np.concatenate([cuts, kinks], axis=1)
            if steep is not None:
                nxt, m2, b2, L2, V2, Vr2 = steep
                for which in features:
                    if which and not nxt.kinked:
                        continue
                    extra = np.empty((P, 2))
                    stage_steep_points(k + 1, lv.cfg, lv.Z, lv.F, lv.h, self.sign,
                                       self.sign_obs, stage.chi, stage.kd_weight,
                                       stage.temperature, stage.hard, stage.loss_kind, m, b,
                                       Lrow, V, Vrow, bayes, nxt.chi, nxt.kd_weight,
                                       nxt.temperature, nxt.hard, nxt.loss_kind, m2, b2, L2, V2,
                                       Vr2, which, roots, extra)  # fmt: skip
                    cuts = np.concatenate([cuts, extra], axis=1)
            zc, wc = piecewise_gauss_rules(cuts, side)
        else:
            rule = gauss_hermite(self.quad.outer)
            zc = np.broadcast_to(rule.nodes, (P, rule.size)).copy()
            wc = np.broadcast_to(rule.weights, (P, rule.size)).copy()
        n = P * zc.shape[1]
        new = _Level(np.empty(n, np.int64), np.empty(n), np.empty((n, k + 1)),
                     np.empty((n, k + 1)), np.zeros((n, k + 1, k + 1)), np.empty(n),
                     np.empty((n, k + 1)))  # fmt: skip
        stage_children(k, lv.cfg, lv.weight, lv.Z, lv.F, lv.DF, lv.h, lv.dh, self.sign,
                       self.sign_obs, stage.chi, stage.kd_weight, stage.temperature, stage.hard,
                       stage.loss_kind, m, b, Lrow, V, Vrow, bayes, zc, wc, new.cfg, new.weight,
                       new.Z, new.F, new.DF, new.h, new.dh)  # fmt: skip
        keep = _significant(new.weight, self.quad.pruned_mass)
        if not np.all(keep):
            new = _Level(*(getattr(new, f.name)[keep] for f in dataclasses.fields(_Level)))
        return new


def solve_chain(
    alpha: float,
    rho: float = 0.5,
    delta: float = 1.0,
    flip: float = 0.0,
    stages: Sequence[Stage | dict] = (Stage(),),
    *,
    quadrature: ChainQuadrature | None = None,
    initial: Sequence[np.ndarray | None] | None = None,
    tol: float = 1e-10,
    damping: float = 0.6,
    max_iter: int = 5000,
    error_estimate: bool = False,
) -> ChainSolution:
    """Solve a distillation chain stage by stage (docs/chains.md).

    Parameters
    ----------
    alpha, rho, delta : float
        Sample ratio ``M/N``, class balance, noise variance.
    flip : float
        Probability that a training label is flipped, in ``[0, 1/2)``.
    stages : sequence of Stage (or dicts of its fields)
        Stage 0 first.
    quadrature : ChainQuadrature, optional
        Integration rules (default :class:`ChainQuadrature`).
    initial : sequence of arrays, optional
        Warm starts per stage (``solution[k].state``).
    tol, damping, max_iter
        Passed to :func:`saddle.fixed_point.solve_fixed_point`.
    error_estimate : bool
        Re-solve on refined rules (warm-started) and report, per stage, the change of each
        observable of ``ESTIMATED`` as ``errors`` (a tuple of dicts); the refined solution is
        returned.
    """
    stage_list = tuple(s if isinstance(s, Stage) else Stage(**dict(s)) for s in stages)
    params = ChainParams(alpha, rho, delta, flip, stage_list)
    quad = quadrature or ChainQuadrature()
    check_count("quadrature.side", quad.side)
    options = dict(tol=tol, damping=damping, max_iter=max_iter)
    solution = _solve(params, quad, initial, options)
    if not error_estimate:
        return solution
    # A tighter tolerance, so that a warm start already within ``tol`` still moves to the
    # refined rules' fixed point.
    fine_options = dict(options, tol=0.01 * tol)
    fine = _solve(params, quad.refined(), [s.state for s in solution.stages], fine_options)
    errors = tuple(
        {key: abs(getattr(a, key) - getattr(b, key)) for key in ESTIMATED}
        for a, b in zip(solution.stages, fine.stages, strict=True)
    )
    return dataclasses.replace(fine, errors=errors)


def _solve(params, quad, initial, options) -> ChainSolution:
    solver = _ChainSolver(params, quad, **options)
    out = []
    for k in range(len(params.stages)):
        start = None if initial is None else initial[k]
        out.append(solver.solve_stage(k, start))
    K1 = len(out)
    Vmat = np.zeros((K1, K1))
    for k, st in enumerate(out):
        Vmat[k, :k] = st.responses
    fields = {
        "m": np.array([st.m for st in out]), "b": np.array([st.b for st in out]),
        "L": solver.L.copy(), "V": np.array([st.V for st in out]), "Vmat": Vmat,
        "chi": np.array([st.stage.chi for st in out]),
        "kd": np.array([st.stage.kd_weight for st in out]),
        "T": np.array([st.stage.temperature for st in out]),
        "hard": np.array([st.stage.hard for st in out]),
        "kind": np.array([st.stage.loss_kind for st in out], dtype=np.int64),
        "bayes0": params.stages[0].teacher == "bayes",
    }  # fmt: skip
    return ChainSolution(params, tuple(out), quad, fields=fields)


@njit(cache=True)
def _chain_sample_sums(s_c, so_c, m, b, L, V, Vmat, chi, kd, T, hard, kind, bayes0, normals,
                       out):  # fmt: skip
    """Sums over samples of one configuration ``(s_c, so_c)`` of the Rao-Blackwellised
    training indicators: for each stage, ``P(h*_k < 0 | z_<k)`` (closed form) turned into the
    error against the observed label, against the true label and the disagreement with stage
    k-1; ``out[k, i, 0]`` sums, ``out[k, i, 1]`` sums of squares."""
    K1 = m.size
    h = np.empty(K1)
    f = np.empty(K1)
    p_obs = 0.5 * (so_c + 1.0)
    for n in range(normals.shape[0]):
        for k in range(K1):
            centre = s_c * m[k] + b[k]
            for l in range(k):
                centre += L[k, l] * normals[n, l] + Vmat[k, l] * f[l]
            t, _ = _stage_target(k, hard[k], h[k - 1] if k > 0 else 0.0, kd[k], T[k])
            zero = stage_zero_field(kind[k], V[k], so_c, p_obs, chi[k], kd[k], T[k], t)
            below = gaussian_cdf((zero - centre) / L[k, k])
            vals = (below if so_c > 0.0 else 1.0 - below,
                    below if s_c > 0.0 else 1.0 - below,
                    (below if h[k - 1] > 0.0 else 1.0 - below) if k > 0 else 0.0)
            for i in range(3):
                out[k, i, 0] += vals[i]
                out[k, i, 1] += vals[i] * vals[i]
            u = centre + L[k, k] * normals[n, k]
            if k == 0 and bayes0:
                h[k], f[k] = u, 0.0
            else:
                h[k] = stage_prox(kind[k], False, u, V[k], so_c, p_obs, chi[k], kd[k], T[k], t,
                                  u)[0]  # fmt: skip
                f[k] = (h[k] - u) / V[k]
    return out


MC_OBSERVABLES = ("train_error_observed", "train_error_true", "train_disagreement")


def training_observables_mc(solution: ChainSolution, samples: int = 2**20,
                            seed: int = 0) -> tuple:  # fmt: skip
    """The training errors and disagreements of every stage by Monte Carlo over the replica
    theory's own cavity fields, with standard errors (an estimator of the same numbers as the
    quadrature, for stages too correlated with their predecessors for the nested rules:
    docs/chains.md, "Accuracy of the training-set observables").

    Samples are allocated to the label configurations in proportion to their probabilities
    (stratified), the last Gaussian direction of each stage is integrated exactly
    (``P(h*_k < 0 | z_<k)`` in closed form); ``seed`` seeds ``numpy.random.default_rng``.
    Returns one dict per stage, ``{name: (mean, standard error)}``.
    """
    fl = solution.fields
    sign, sign_obs, prob = solution.params.configurations
    K1 = len(solution.stages)
    rng = np.random.default_rng(seed)
    total = np.zeros((K1, 3))
    variance = np.zeros((K1, 3))
    for c in range(prob.size):
        n_c = max(2, int(round(samples * prob[c])))
        sums = np.zeros((K1, 3, 2))
        done = 0
        while done < n_c:
            size = min(2**17, n_c - done)
            _chain_sample_sums(sign[c], sign_obs[c], fl["m"], fl["b"], fl["L"], fl["V"],
                               fl["Vmat"], fl["chi"], fl["kd"], fl["T"], fl["hard"],
                               fl["kind"], fl["bayes0"], rng.standard_normal((size, K1)),
                               sums)  # fmt: skip
            done += size
        mean = sums[:, :, 0] / n_c
        var = np.maximum(sums[:, :, 1] / n_c - mean**2, 0.0) * n_c / (n_c - 1)
        total += prob[c] * mean
        variance += prob[c] ** 2 * var / n_c
    out = []
    for k in range(K1):
        row = {}
        for i, name in enumerate(MC_OBSERVABLES):
            if k == 0 and i == 2:
                continue
            row[name] = (float(total[k, i]), float(math.sqrt(variance[k, i])))
        out.append(row)
    return tuple(out)


# ----------------------------------------------------------------------------------------------
# Optimal hyper-parameters live in replica/chain_optimise.py (imported lazily: it imports this)
# ----------------------------------------------------------------------------------------------

_OPTIMISE = ("OPTIMISABLE", "ChainGradient", "chain_eps_g_and_gradient", "optimise_stage_lams",
             "optimise_stages", "stage_eps_g_and_gradient", "_eps_g_gradient")  # fmt: skip


def __getattr__(name: str):
    if name in _OPTIMISE:
        from replica import chain_optimise

        return getattr(chain_optimise, name)
    raise AttributeError(f"module 'replica.chain' has no attribute {name!r}")
