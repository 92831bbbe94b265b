"""The derived chain saddle point (:mod:`replica.symbolic.chain`) evaluated at a fixed point of
:mod:`replica.chain`, with its own numerics.

At a solved chain's order parameters, the channel averages of the derived equations are computed
here, independently of ``replica.chain``'s nested rules and kernels:

- every proximal step by a bracketed Newton iteration on the derivatives of the symbolic stage
  loss (:func:`~replica.symbolic.chain.stage_loss`, lambdified);
- ``method="quadrature"``: product rules, Gauss-Hermite in each stage's own direction and in
  outer directions where the fields are smooth; where a later stage has a hard target, the
  direction ``z_l`` is split at the root of ``h*_l = 0`` (closed form: ``u_l = V_l L_l'(0)``)
  into two Gauss-Legendre pieces on ``[-10, z*]`` and ``[z*, 10]`` with the Gaussian density in
  the integrand; error estimate: the change under refined rules;
- ``method="mc"``: plain Monte Carlo over ``z`` (stratified over the label configurations),
  standard errors from independent batches.

The conjugates are then mapped through the derived prior side to new order parameters: at a
fixed point of ``replica.chain`` the map reproduces them (:func:`check_chain`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np
import sympy as sp

from replica.symbolic import chain as sc
from replica.symbolic.symbols import Delta, alpha

CUTOFF = 10.0  # Gauss-Legendre pieces cover [-CUTOFF, CUTOFF] (Gaussian mass outside: 1.5e-23)


# ----------------------------------------------------------------------------------------------
# Stage losses and proximal steps
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Loss:
    value: object  # L(h, s_obs, h_prev)
    slope: object  # dL/dh (h, s_obs, h_prev)
    curvature: object  # d2L/dh2
    cross: object  # d2L/(dh dh_prev) (0 off the jump of a hard target)
    bound: float  # initial half-width of the bracket (sup |dL/dh| for the logistic loss)


@cache
def stage_numeric_loss(chi: float, kappa: float, T: float, target: str,
                       label_loss: str = "logistic") -> _Loss:  # fmt: skip
    """Lambdified derivatives of :func:`~replica.symbolic.chain.stage_loss`."""
    loss = sc.stage_loss(sp.Float(chi), sp.Float(kappa), sp.Float(T), target, label_loss)
    args = (sc.h, sc.s_obs, sc.h_prev)
    slope = sp.diff(loss, sc.h)
    cross = sp.diff(slope, sc.h_prev).replace(sp.DiracDelta, lambda *_: 0)
    make = lambda e: sp.lambdify(args, e, "numpy")  # noqa: E731
    return _Loss(make(loss), make(slope), make(sp.diff(slope, sc.h)), make(cross),
                 (1 - chi) + kappa / T)  # fmt: skip


def proximal_point(u, V, label, upstream, loss: _Loss, tol: float = 1e-14):
    """``h* = argmin_h (h - u)^2/(2V) + L(h)``: Newton on ``g(h) = h - u + V L'(h)`` (increasing,
    ``g' >= 1``) kept inside a bracket, first ``[u - V B, u + V B]``, widened until it holds the
    root (for the logistic loss ``B = sup |L'|`` and it always does)."""
    lo, hi = u - V * loss.bound, u + V * loss.bound
    for _ in range(60):
        low = lo - u + V * loss.slope(lo, label, upstream) > 0
        high = hi - u + V * loss.slope(hi, label, upstream) < 0
        if not (np.any(low) or np.any(high)):
            break
        width = hi - lo
        lo, hi = np.where(low, lo - width, lo), np.where(high, hi + width, hi)
    x = np.clip(u - V * loss.slope(u, label, upstream), lo, hi)
    for _ in range(200):
        g = x - u + V * loss.slope(x, label, upstream)
        lo = np.where(g < 0, x, lo)
        hi = np.where(g > 0, x, hi)
        step = g / (1.0 + V * loss.curvature(x, label, upstream))
        new = x - step
        outside = (new <= lo) | (new >= hi)
        new = np.where(outside, 0.5 * (lo + hi), new)
        done = np.max(np.abs(new - x)) <= tol * (1.0 + np.max(np.abs(x)))
        x = new
        if done:
            return x
    raise RuntimeError("proximal Newton iteration did not converge")


# ----------------------------------------------------------------------------------------------
# The chain's order parameters as numbers
# ----------------------------------------------------------------------------------------------


def _configurations(rho: float, flip: float):
    s = np.array([1.0, 1.0, -1.0, -1.0])
    so = np.array([1.0, -1.0, -1.0, 1.0])
    prob = np.array([rho * (1 - flip), rho * flip, (1 - rho) * (1 - flip), (1 - rho) * flip])
    keep = prob > 0
    return s[keep], so[keep], prob[keep]


def order_values(solution, K: int | None = None) -> dict:
    """Symbol -> value of the order parameters of stages ``0..K`` of a ``ChainSolution``."""
    K = len(solution.stages) - 1 if K is None else K
    values = {alpha: solution.params.alpha, Delta: solution.params.delta}
    for k in range(K + 1):
        st, stage = sc.stage_symbols(k), solution.stages[k]
        for sym, val in zip(st.order, stage.state, strict=True):
            values[sym] = float(val)
        values[st.lam] = stage.stage.lam
    return values


def chain_conjugates(solution, K: int | None = None) -> dict:
    """Symbol -> the conjugates ``replica.chain`` reports for stages ``0..K``."""
    K = len(solution.stages) - 1 if K is None else K
    out = {}
    for k in range(K + 1):
        st, stage = sc.stage_symbols(k), solution.stages[k]
        out[st.mhat] = stage.mhat
        out[st.Vhat] = stage.Vhat
        for sym, val in zip(st.Qhat, stage.Qhat, strict=True):
            out[sym] = val
        for sym, val in zip(st.Vhatx, stage.Vhat_cross, strict=True):
            out[sym] = val
    return out


@cache
def _cholesky_function(K: int):
    syms = sorted({x for row in sc.cholesky(K) for e in row for x in e.free_symbols}, key=str)
    return syms, sp.lambdify(syms, sc.cholesky(K), "math")


def cholesky_values(values: dict, K: int) -> np.ndarray:
    syms, fn = _cholesky_function(K)
    return np.array(fn(*(values[x] for x in syms)), dtype=float)


# ----------------------------------------------------------------------------------------------
# Nodes and fields
# ----------------------------------------------------------------------------------------------


@dataclass
class Nodes:
    """Integration nodes of ``(configuration, z_0..z_d)`` with the fields of stages ``<= d``."""

    s: np.ndarray
    s_obs: np.ndarray
    weight: np.ndarray
    z: list
    h: list
    f: list
    a: list
    c: list

    def repeat(self, n: int) -> Nodes:
        """Every node ``n`` times (for the children in the next direction)."""
        rep = lambda x: np.repeat(x, n)  # noqa: E731
        return Nodes(rep(self.s), rep(self.s_obs), rep(self.weight), [rep(x) for x in self.z],
                     [rep(x) for x in self.h], [rep(x) for x in self.f],
                     [rep(x) for x in self.a], [rep(x) for x in self.c])  # fmt: skip


class _Chain:
    """Numbers of one chain: order parameters, Cholesky factor and stage losses."""

    def __init__(self, solution):
        p = solution.params
        if p.stages[0].teacher != "trained":
            raise ValueError("the symbolic check covers a trained stage 0 only")
        losses = {getattr(s, "loss", "logistic") for s in p.stages}
        if not losses <= {"logistic", "square"}:
            raise ValueError(f"the symbolic check covers smooth label losses only; got {losses}")
        self.K = len(p.stages) - 1
        self.params = p
        self.values = order_values(solution)
        self.L = cholesky_values(self.values, self.K)
        self.losses = []
        for k, stage in enumerate(p.stages):
            chi, kappa = (0.0, 0.0) if k == 0 else (stage.chi, stage.kd_weight)
            self.losses.append(stage_numeric_loss(chi, kappa, stage.temperature, stage.target,
                                                  getattr(stage, "loss", "logistic")))
        self.hard = [False] + [s.hard for s in p.stages[1:]]

    def centre(self, nodes: Nodes, k: int) -> np.ndarray:
        """``u_k`` without its own direction: ``s m_k + b_k + sum_{l<k} L_kl z_l + V_kj f_j``."""
        st = sc.stage_symbols(k)
        v = self.values
        out = nodes.s * v[st.m] + v[st.b]
        for l in range(k):
            out = out + self.L[k, l] * nodes.z[l] + v[st.Vx[l]] * nodes.f[l]
        return out

    def upstream(self, nodes: Nodes, k: int) -> np.ndarray:
        return nodes.h[k - 1] if k else np.zeros_like(nodes.s)

    def add_stage(self, nodes: Nodes, k: int, zk: np.ndarray) -> None:
        """Stage ``k``'s fields at its own coordinate ``zk`` (appended to ``nodes``)."""
        V = self.values[sc.stage_symbols(k).V]
        u = self.centre(nodes, k) + self.L[k, k] * zk
        loss, up = self.losses[k], self.upstream(nodes, k)
        h = proximal_point(u, V, nodes.s_obs, up, loss)
        nodes.z.append(zk)
        nodes.h.append(h)
        nodes.f.append(-loss.slope(h, nodes.s_obs, up))
        nodes.a.append(loss.curvature(h, nodes.s_obs, up))
        nodes.c.append(np.broadcast_to(loss.cross(h, nodes.s_obs, up), h.shape) * 1.0)

    def root(self, nodes: Nodes, k: int) -> np.ndarray:
        """``z_k`` where ``h*_k = 0``: ``u_k = V_k L_k'(0)`` (``h*`` increases with ``z_k``)."""
        V = self.values[sc.stage_symbols(k).V]
        zero = np.zeros_like(nodes.s)
        slope0 = self.losses[k].slope(zero, nodes.s_obs, self.upstream(nodes, k))
        return (V * slope0 - self.centre(nodes, k)) / self.L[k, k]


def _gauss_hermite(n: int):
    z, w = np.polynomial.hermite_e.hermegauss(n)
    return z, w / w.sum()


def _split_rule(roots: np.ndarray, n: int):
    """Gauss-Legendre on ``[-CUTOFF, z*]`` and ``[z*, CUTOFF]`` per parent, Gaussian weights."""
    x, w = np.polynomial.legendre.leggauss(n)
    r = np.clip(roots, -CUTOFF, CUTOFF)[:, None]
    pieces_z, pieces_w = [], []
    for lo, hi in ((-CUTOFF + 0 * r, r), (r, CUTOFF + 0 * r)):
        half = 0.5 * (hi - lo)
        z = lo + half * (x[None, :] + 1.0)
        pieces_z.append(z)
        pieces_w.append(half * w[None, :] * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi))
    return np.concatenate(pieces_z, axis=1), np.concatenate(pieces_w, axis=1)


def _root_nodes(chain: _Chain) -> Nodes:
    s, so, prob = _configurations(chain.params.rho, chain.params.flip)
    return Nodes(s, so, prob, [], [], [], [], [])


def quadrature_levels(chain: _Chain, inner: int, outer: int, side: int,
                      inner0: int = 96) -> list:  # fmt: skip
    """``levels[k]``: the nodes of stage ``k``'s channel average (stages ``0..k`` filled).

    Stage ``k``'s own direction: ``inner`` Gauss-Hermite nodes (``inner0`` for stage 0).
    Outer direction ``z_l`` (shared by the later stages): split at the root of ``h*_l = 0``
    with ``side`` Gauss-Legendre nodes per piece if stage ``l + 1`` has a hard target, else
    ``outer`` Gauss-Hermite nodes."""
    levels = []
    parents = _root_nodes(chain)
    for k in range(chain.K + 1):
        zi, wi = _gauss_hermite(inner0 if k == 0 else inner)
        own = parents.repeat(zi.size)
        own.weight = own.weight * np.tile(wi, parents.weight.size)
        chain.add_stage(own, k, np.tile(zi, parents.weight.size))
        levels.append(own)
        if k == chain.K:
            break
        if chain.hard[k + 1]:
            roots = chain.root(parents, k)
            zc, wc = _split_rule(roots, side)
        else:
            zo, wo = _gauss_hermite(outer)
            zc = np.broadcast_to(zo, (parents.weight.size, outer))
            wc = np.broadcast_to(wo, (parents.weight.size, outer))
        n = zc.shape[1]
        children = parents.repeat(n)
        children.weight = children.weight * wc.ravel()
        chain.add_stage(children, k, zc.ravel().copy())
        parents = children
    return levels


def monte_carlo_levels(chain: _Chain, samples: int, rng: np.random.Generator) -> list:
    """``levels[k]`` for Monte Carlo: the same ``samples`` draws of ``z`` for every stage."""
    root = _root_nodes(chain)
    counts = np.maximum(2, np.round(samples * root.weight)).astype(int)
    idx = np.repeat(np.arange(root.weight.size), counts)
    nodes = Nodes(root.s[idx], root.s_obs[idx], (root.weight / counts)[idx], [], [], [], [], [])
    for k in range(chain.K + 1):
        chain.add_stage(nodes, k, rng.standard_normal(idx.size))
    return [nodes] * (chain.K + 1)


# ----------------------------------------------------------------------------------------------
# Derived equations, lambdified
# ----------------------------------------------------------------------------------------------


def _channel_arguments(k: int) -> tuple:
    return (sc.s, sc.s_obs, *sc.Z[: k + 1], *sc.F[: k + 1], *sc.A[: k + 1], *sc.C[: k + 1])


@cache
def _channel_functions(k: int, form: str):
    """Per conjugate of stage ``k``: ``(parameter symbols, coefficient function, integrands)``."""
    if form == "stein":
        equations, bias = sc.stage_channel(k)
    else:
        equations, bias = sc.stage_channel_curvature(k), sc.stage_channel(k)[1]
    atoms = sorted({a for e in equations.values() for a in e.atoms(sc.ChainAverage)}, key=str)
    placeholders = sp.symbols(f"E_0:{len(atoms)}")
    rename = dict(zip(atoms, placeholders, strict=True))
    params = sorted({x for e in equations.values() for x in e.free_symbols} - sc.RANDOM, key=str)
    params += sorted({x for a in atoms for x in a.free_symbols} - sc.RANDOM - set(params),
                     key=str)  # fmt: skip
    cargs = _channel_arguments(k)
    integrands = [sp.lambdify((*cargs, *params), a.args[0], "numpy") for a in atoms]
    bias_fn = sp.lambdify((*cargs, *params), bias, "numpy")
    coefficients = {
        c: sp.lambdify((*placeholders, *params), e.xreplace(rename), "math")
        for c, e in equations.items()
    }
    return params, coefficients, integrands, bias_fn


def _average(fn, nodes: Nodes, k: int, params: list) -> float:
    args = (nodes.s, nodes.s_obs, *nodes.z[: k + 1], *nodes.f[: k + 1], *nodes.a[: k + 1],
            *nodes.c[: k + 1], *params)  # fmt: skip
    return float(np.sum(nodes.weight * np.broadcast_to(fn(*args), nodes.weight.shape)))


def channel_conjugates(chain: _Chain, levels: list, form: str = "stein") -> tuple[dict, list]:
    """Every stage's conjugates from the derived channel side, and its ``E[f_k]``."""
    out, bias = {}, []
    for k in range(chain.K + 1):
        params, coefficients, integrands, bias_fn = _channel_functions(k, form)
        pv = [chain.values[x] for x in params]
        averages = [_average(fn, levels[k], k, pv) for fn in integrands]
        for c, fn in coefficients.items():
            out[c] = float(fn(*averages, *pv))
        bias.append(_average(bias_fn, levels[k], k, pv))
    return out, bias


@cache
def _prior_functions(k: int, blocks: tuple):
    equations = sc.stage_prior(k, blocks)
    params = sorted({x for e in equations.values() for x in e.free_symbols}, key=str)
    return params, {x: sp.lambdify(params, e, "math") for x, e in equations.items()}


def prior_map(chain: _Chain, conjugates: dict) -> dict:
    """Order parameters of every stage from the derived prior side at ``conjugates``."""
    widths, blocks = sc.support_structure([s.eta for s in chain.params.stages])
    values = dict(chain.values)
    values.update(conjugates)
    values.update({phi: w for (phi, _), w in zip(blocks, widths, strict=True)})
    out = {}
    for k in range(chain.K + 1):
        params, fns = _prior_functions(k, blocks)
        pv = [values[x] for x in params]
        out.update({x: float(fn(*pv)) for x, fn in fns.items()})
    return out


# ----------------------------------------------------------------------------------------------
# The check
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainCheck:
    """The derived saddle-point map evaluated at a ``replica.chain`` fixed point.

    Attributes
    ----------
    method : str
    order : dict
        Name -> ``replica.chain``'s order parameter (``m_1``, ``Q_01``, ``V_21``, ...).
    mapped : dict
        Name -> the derived prior side at the independently computed conjugates.
    error : dict
        Name -> numerical error of ``mapped``: change under refined rules (quadrature) or the
        standard error over batches (Monte Carlo).
    conjugates, chain_conjugates : dict
        Ours and ``replica.chain``'s (``mhat_1``, ``Qhat_01``, ``Vhat_10``, ...).
    bias : tuple
        ``E[f_k]`` per stage (0 at a free bias's fixed point), and its error.
    """

    method: str
    order: dict
    mapped: dict
    error: dict
    conjugates: dict
    chain_conjugates: dict
    bias: tuple
    bias_error: tuple
    free_bias: tuple

    @property
    def residual(self) -> dict:
        return {k: abs(self.mapped[k] - self.order[k]) for k in self.mapped}

    def max_residual(self) -> float:
        return max(self.residual.values())

    def max_error(self) -> float:
        return max(self.error.values())

    def to_dict(self) -> dict:
        return {"method": self.method, "order": self.order, "mapped": self.mapped,
                "error": self.error, "conjugates": self.conjugates,
                "chain_conjugates": self.chain_conjugates, "bias": list(self.bias),
                "bias_error": list(self.bias_error)}  # fmt: skip


def _evaluate(chain: _Chain, levels: list, form: str):
    conj, bias = channel_conjugates(chain, levels, form)
    return prior_map(chain, conj), conj, np.array(bias)


def check_chain(solution, method: str = "quadrature", *, inner: int = 24, outer: int = 32,
                side: int = 40, refine: int = 8, samples: int = 2**18, batches: int = 16,
                seed: int = 0, form: str = "stein") -> ChainCheck:  # fmt: skip
    """Evaluate the derived saddle point at ``solution``'s order parameters (module docstring).

    ``form`` is ``"stein"`` (the channel side as derived, any target) or ``"curvature"``
    (after integration by parts; soft targets only).
    """
    chain = _Chain(solution)
    if form == "curvature" and any(chain.hard):
        raise ValueError("the curvature form needs smooth (soft) targets")
    if method == "quadrature":
        mapped, conj, bias = _evaluate(chain, quadrature_levels(chain, inner, outer, side), form)
        finer = quadrature_levels(chain, inner + refine, outer + refine, side + refine)
        mapped_f, _, bias_f = _evaluate(chain, finer, form)
        error = {k: abs(mapped_f[k] - mapped[k]) for k in mapped}
        bias_error = np.abs(bias_f - bias)
    elif method == "mc":
        rng = np.random.default_rng(seed)
        runs = [_evaluate(chain, monte_carlo_levels(chain, samples, rng), form)
                for _ in range(batches)]  # fmt: skip
        keys = list(runs[0][0])
        table = np.array([[r[0][k] for k in keys] for r in runs])
        mapped = dict(zip(keys, table.mean(axis=0), strict=True))
        error = dict(zip(keys, table.std(axis=0, ddof=1) / math.sqrt(batches), strict=True))
        conj = {k: float(np.mean([r[1][k] for r in runs])) for k in runs[0][1]}
        biases = np.array([r[2] for r in runs])
        bias, bias_error = biases.mean(axis=0), biases.std(axis=0, ddof=1) / math.sqrt(batches)
    else:
        raise ValueError(f"method must be 'quadrature' or 'mc'; got {method!r}")
    names = {x: str(x) for x in mapped}
    order = {names[x]: chain.values[x] for x in mapped}
    free = tuple(s.bias == "free" for s in solution.params.stages)
    return ChainCheck(
        method,
        order,
        {names[x]: float(v) for x, v in mapped.items()},
        {names[x]: float(v) for x, v in error.items()},
        {str(x): v for x, v in conj.items()},
        {str(x): v for x, v in chain_conjugates(solution).items()},
        tuple(float(b) for b in bias),
        tuple(float(b) for b in bias_error),
        free,
    )


# ----------------------------------------------------------------------------------------------
# The free entropy itself: its gradient at the fixed point, by central differences
# ----------------------------------------------------------------------------------------------


@cache
def _free_entropy_analytic(k: int, blocks: tuple):
    """Interaction and entropic terms of ``Phi_k``, lambdified (all their symbols)."""
    expr = sc.interaction_term(k) + sc.entropic_term(k, blocks)
    params = sorted(expr.free_symbols, key=str)
    return params, sp.lambdify(params, expr, "math")


def envelope_average(chain: _Chain, nodes: Nodes, k: int) -> float:
    """``E[M_k(u_k)]`` with ``M = L_k(h*) + (h* - u)^2/(2 V_k)`` on stage ``k``'s nodes."""
    V = chain.values[sc.stage_symbols(k).V]
    u = chain.centre(nodes, k) + chain.L[k, k] * nodes.z[k]
    loss, up = chain.losses[k], chain.upstream(nodes, k)
    h = proximal_point(u, V, nodes.s_obs, up, loss)
    envelope = loss.value(h, nodes.s_obs, up) + (h - u) ** 2 / (2.0 * V)
    return float(np.sum(nodes.weight * envelope))


def free_entropy(chain: _Chain, nodes: Nodes, k: int, values: dict,
                 energetic: bool = True) -> float:  # fmt: skip
    """``Phi_k`` (:func:`replica.symbolic.chain.chain_free_entropy`) at ``values`` (order
    parameters, conjugates), its average on the fixed nodes ``nodes`` of stage ``k``; with
    ``energetic=False`` only the interaction and entropic terms."""
    import copy

    widths, blocks = sc.support_structure([s.eta for s in chain.params.stages])
    point = dict(values)
    point.update({phi: w for (phi, _), w in zip(blocks, widths, strict=True)})
    params, analytic = _free_entropy_analytic(k, blocks)
    value = analytic(*(point[x] for x in params))
    if not energetic:
        return value
    trial = copy.copy(chain)
    trial.values = point
    trial.L = cholesky_values(point, chain.K)
    return value - point[alpha] * envelope_average(trial, nodes, k)


def free_entropy_gradient(solution, *, inner: int = 24, outer: int = 32, side: int = 40,
                          step: float = 1e-5) -> dict:  # fmt: skip
    """``dPhi_k/dx`` for every order parameter and conjugate ``x`` of every stage ``k``, at
    ``replica.chain``'s fixed point (its order parameters and its conjugates), by central
    differences of :func:`free_entropy` on fixed nodes. Stage ``k``'s variables move only
    ``u_k`` and the analytic terms, so the nodes (split at the earlier stages' roots) need not
    move. Zero at a saddle point; a fixed bias is not a variable."""
    chain = _Chain(solution)
    levels = quadrature_levels(chain, inner, outer, side)
    base = dict(chain.values)
    base.update(chain_conjugates(solution))
    out = {}
    for k in range(chain.K + 1):
        st = sc.stage_symbols(k)
        variables = [x for x in st.order if x != st.b or solution.params.stages[k].bias == "free"]
        for x in (*variables, *st.conjugates):
            h = step * max(1.0, abs(base[x]))
            up, down = dict(base), dict(base)
            up[x] += h
            down[x] -= h
            moves_u = x in variables  # the conjugates are absent from the energetic term
            value = (free_entropy(chain, levels[k], k, up, moves_u)
                     - free_entropy(chain, levels[k], k, down, moves_u)) / (2.0 * h)
            out[f"dPhi_{k}/d{x}"] = value
    return out


__all__ = ["ChainCheck", "check_chain", "free_entropy", "free_entropy_gradient",
           "proximal_point", "stage_numeric_loss"]
