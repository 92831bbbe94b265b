"""RS zero-temperature free entropy of a distillation chain, and its saddle point (sympy).

The chain of docs/chains.md: stages ``k = 0..K`` trained one after the other on the same
samples, stage ``k`` on the first ``eta_k N`` coordinates with the loss
``L_k(h; y_obs, h*_{k-1})`` (any target: soft, hard) and ridge ``lam_k``. The replica
computation takes the zero-temperature limits in stage order, so stage ``k`` has its own free
entropy ``Phi_k``, a function of its order parameters and conjugates with the earlier stages'
held fixed (the student's of paper Eq. 98 is ``Phi_1``)::

    Phi_k = -m^_k m_k - (Q^_kk V_k/Delta - V^_k q_k)/2 - sum_{j<k} (Q^_jk V_kj/Delta - V^_kj Q_jk)
            + sum_b phi_b g_b(k)                                          (entropic, prior)
            - alpha E[ M_{V_k}[L_k(.; y_obs, h*_{k-1})](u_k) ]           (energetic, channel)

- ``g_b(k) = E_xi max_w [-(lam_k + V^_k) w^2/2 + (m^_k + xi_k - sum_{j<k} V^_kj w*_j) w]`` on
  every block ``b`` (width ``phi_b``) of the supports where stage ``k`` is active (gauge
  ``v = 1``), ``w*_j`` the earlier stages' maximisers there, ``Cov(xi_j, xi_l) = Q^_jl``;
- the cavity fields ``omega_j = s m_j + b_j + sum_{l<=j} L_jl z_l`` with ``L`` the Cholesky
  factor of ``Delta Q`` (the distribution of ``omega`` depends on ``Q`` only, so this is one
  exact parameterisation of it), ``u_k = omega_k + sum_{j<k} V_kj f_j``, the proximal points
  ``h*_j = u_j + V_j f_j`` and responses ``f_j`` of the earlier stages, taken in stage order;
- ``E`` is over the class ``s``, the observed label ``s_obs`` and ``z_0..z_k``.

Stationarity (:func:`chain_saddle_point`): the conjugates of stage ``k`` give its order
parameters (prior side, a linear solve); its order parameters give its conjugates as averages
(channel side). The derivative of the energetic term is taken *pathwise* in ``z``: stage ``k``'s
parameters enter only ``u_k``, in which its Moreau envelope is smooth for any target, so the
channel side comes out in *Stein form*, e.g. ``V^_kj = -alpha sum_l dL_kl/dQ_jk E[z_l f_k]``,
exact also for hard targets (whose ``f_k`` jumps across ``h*_{k-1} = 0``). Gaussian
integration by parts of it gives the *curvature form* ``-alpha Delta E[df_k/d omega_j]`` of
docs/chains.md, valid for smooth (soft) targets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import sympy as sp

from replica.symbolic.expectation import LinearAverage
from replica.symbolic.symbols import Delta, alpha

MAX_STAGES = 4  # symbols are made for stages 0..3 (K <= 3)

# Disorder: true class sign, observed label sign, the independent Gaussians z_0..z_K.
s, s_obs = sp.symbols("s s_obs", real=True)
Z = sp.symbols(f"z_0:{MAX_STAGES}", real=True)
# Channel quantities of stage k at its proximal point: response f_k = -L_k'(h*_k), curvature
# a_k = L_k''(h*_k), cross derivative c_k = d2 L_k / (dh dh_{k-1}).
F = sp.symbols(f"f_0:{MAX_STAGES}", real=True)
A = sp.symbols(f"a_0:{MAX_STAGES}", real=True)
C = sp.symbols(f"c_0:{MAX_STAGES}", real=True)
h, h_prev = sp.symbols("h h_prev", real=True)

RANDOM = frozenset({s, s_obs, *Z, *F, *A, *C})


# ----------------------------------------------------------------------------------------------
# Order parameters and conjugates
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StageSymbols:
    """Order parameters and conjugates of stage ``k`` (docs/chains.md, "Structure").

    ``Q[j] = Q_jk`` and ``Vx[j] = V_kj`` (``j < k``); ``Qhat[j] = Q^_jk`` (``j <= k``, the last is
    ``Q^_kk``) and ``Vhatx[j] = V^_kj`` (``j < k``).
    """

    k: int
    m: sp.Symbol
    q: sp.Symbol
    b: sp.Symbol
    V: sp.Symbol
    Q: tuple
    Vx: tuple
    mhat: sp.Symbol
    Qhat: tuple
    Vhat: sp.Symbol
    Vhatx: tuple
    lam: sp.Symbol

    @property
    def order(self) -> tuple:
        """``(m, q, Q_0k.., V, V_k0.., b)``: the order of ``StageSolution.state``."""
        return (self.m, self.q, *self.Q, self.V, *self.Vx, self.b)

    @property
    def conjugates(self) -> tuple:
        return (self.mhat, *self.Qhat, self.Vhat, *self.Vhatx)


@cache
def stage_symbols(k: int) -> StageSymbols:
    """The symbols of stage ``k`` (``m_k``, ``Q_jk``, ``V_kj``, ``mhat_k``, ``Qhat_jk``, ...)."""
    if not 0 <= k < MAX_STAGES:
        raise ValueError(f"stage index must lie in [0, {MAX_STAGES}); got {k}")
    real = dict(real=True)
    pos = dict(positive=True)
    return StageSymbols(
        k=k,
        m=sp.Symbol(f"m_{k}", **real),
        q=sp.Symbol(f"q_{k}", **pos),
        b=sp.Symbol(f"b_{k}", **real),
        V=sp.Symbol(f"V_{k}", **pos),
        Q=tuple(sp.Symbol(f"Q_{j}{k}", **real) for j in range(k)),
        Vx=tuple(sp.Symbol(f"V_{k}{j}", **real) for j in range(k)),
        mhat=sp.Symbol(f"mhat_{k}", **real),
        Qhat=tuple(sp.Symbol(f"Qhat_{j}{k}", **real) for j in range(k))
        + (sp.Symbol(f"Qhat_{k}{k}", **pos),),
        Vhat=sp.Symbol(f"Vhat_{k}", **pos),
        Vhatx=tuple(sp.Symbol(f"Vhat_{k}{j}", **real) for j in range(k)),
        lam=sp.Symbol(f"lam_{k}", nonnegative=True),
    )


def overlap(j: int, k: int) -> sp.Symbol:
    """``Q_jk`` (``q_k`` on the diagonal)."""
    j, k = min(j, k), max(j, k)
    return stage_symbols(k).q if j == k else stage_symbols(k).Q[j]


def noise_covariance(j: int, k: int) -> sp.Symbol:
    """``Q^_jk = Cov(xi_j, xi_k)``."""
    j, k = min(j, k), max(j, k)
    return stage_symbols(k).Qhat[j]


# ----------------------------------------------------------------------------------------------
# Averages
# ----------------------------------------------------------------------------------------------


class ChainAverage(LinearAverage):
    """``E[X]`` over ``s, s_obs, z_0..z_K`` (linear; commutes with parameter derivatives).

    As :class:`replica.symbolic.expectation.Expectation`, with the observed label ``s_obs`` and
    the chain's Gaussians among the random symbols.
    """

    random_symbols = RANDOM


def _is_random(expr: sp.Expr) -> bool:
    return bool(expr.free_symbols & RANDOM)


def linearise(expr: sp.Expr) -> sp.Expr:
    """Expand every integrand (function applications frozen) and split the averages."""

    def rule(e):
        frozen = {app: sp.Dummy() for app in e.args[0].atoms(sp.Function)}
        thawed = {d: app for app, d in frozen.items()}
        return ChainAverage(sp.expand(e.args[0].xreplace(frozen)).xreplace(thawed))

    return expr.replace(lambda e: isinstance(e, ChainAverage), rule)


def gaussian_quadratic_average(expr: sp.Expr, xis: Sequence[sp.Symbol], cov) -> sp.Expr:
    """Exact ``E[expr]`` of a polynomial of degree <= 2 in zero-mean Gaussians ``xis`` with
    ``E[xi_i xi_j] = cov(i, j)``: ``expr(0) + sum_ij d2expr/dxi_i dxi_j cov(i, j) / 2`` (no
    expansion, so that nested rational coefficients stay compact)."""
    at_zero = {x: 0 for x in xis}
    total = expr.subs(at_zero)
    for i, x in enumerate(xis):
        slope = sp.diff(expr, x)
        for j, y in enumerate(xis):
            curvature = sp.diff(slope, y)
            if sp.diff(curvature, x) != 0 or sp.diff(curvature, y) != 0:
                raise ValueError("expected a polynomial of degree <= 2")
            total += curvature.subs(at_zero) * cov(i, j) / 2
    return total


# ----------------------------------------------------------------------------------------------
# Stage losses, responses and Moreau envelopes (abstract; derivatives by the envelope theorem)
# ----------------------------------------------------------------------------------------------


class StageCurvature(sp.Function):
    """``a_k = d2 L_k/dh2 (h; s_obs, h_prev)``; arguments ``(k, h, s_obs, h_prev)``."""

    nargs = 4


class StageCross(sp.Function):
    """``c_k = d2 L_k/(dh dh_prev)``; arguments ``(k, h, s_obs, h_prev)``."""

    nargs = 4


class StageTargetSlope(sp.Function):
    """``dL_k/dh_prev`` (the envelope's derivative in the upstream pre-activation)."""

    nargs = 4


class StageResponse(sp.Function):
    """``f_k(u, V, s_obs, h_prev) = (h* - u)/V``, ``h* = argmin_h (h - u)^2/(2V) + L_k(h)``.

    Arguments ``(k, u, V, s_obs, h_prev)``. From ``h* - u + V L_k'(h*) = 0``:
    ``df/du = -a/(1 + V a)``, ``df/dV = -a f/(1 + V a)``, ``df/dh_prev = -c/(1 + V a)``
    (:mod:`replica.symbolic.moreau`).
    """

    nargs = 5

    def proximal_point(self) -> sp.Expr:
        return self.args[1] + self.args[2] * self

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        k, _, V, label, upstream = self.args
        h_star = self.proximal_point()
        curvature = StageCurvature(k, h_star, label, upstream)
        response = 1 / (1 + V * curvature)
        if argindex == 2:
            return -curvature * response
        if argindex == 3:
            return -curvature * self * response
        if argindex == 5:
            return -StageCross(k, h_star, label, upstream) * response
        raise sp.ArgumentIndexError(self, argindex)


class StageMoreau(sp.Function):
    """``M_k(u, V, s_obs, h_prev) = min_h (h - u)^2/(2V) + L_k(h; s_obs, h_prev)``."""

    nargs = 5

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        f_star = StageResponse(*self.args)
        if argindex == 2:
            return -f_star
        if argindex == 3:
            return -(f_star**2) / 2
        if argindex == 5:
            k, _, _, label, upstream = self.args
            return StageTargetSlope(k, f_star.proximal_point(), label, upstream)
        raise sp.ArgumentIndexError(self, argindex)


def to_channel_symbols(expr: sp.Expr) -> sp.Expr:
    """``StageResponse(k, ..) -> f_k``, ``StageCurvature(k, ..) -> a_k``, ``StageCross -> c_k``."""
    expr = expr.replace(StageCurvature, lambda k, *_: A[int(k)])
    expr = expr.replace(StageCross, lambda k, *_: C[int(k)])
    return expr.replace(StageResponse, lambda k, *_: F[int(k)])


def stage_loss(chi, kappa, T, target: str = "soft", label_loss: str = "logistic") -> sp.Expr:
    """``L_k(h; s_obs, h_prev) = (1 - chi) l(y_obs, h) + kappa CE(t, sigma(h/T))``,
    ``t = sigma(h_prev/T)`` (soft) or ``1[h_prev > 0]`` (hard), ``y_obs = (1 + s_obs)/2``, ``l``
    the logistic or square row of the loss table (:func:`replica.losses.symbolic_label_loss`;
    docs/chains.md, "The model"). Stage 0: ``chi = kappa = 0``."""
    from replica.losses import symbolic_label_loss

    if target not in ("soft", "hard"):
        raise ValueError(f"target must be 'soft' or 'hard'; got {target!r}")
    if label_loss not in ("logistic", "square"):
        raise ValueError(f"label_loss must be 'logistic' or 'square' (smooth); got {label_loss!r}")
    t = 1 / (1 + sp.exp(-h_prev / T)) if target == "soft" else sp.Heaviside(h_prev)
    label = symbolic_label_loss(label_loss, h, s_obs, (1 + s_obs) / 2)
    return (1 - chi) * label + kappa * (sp.log(1 + sp.exp(h / T)) - t * h / T)


# ----------------------------------------------------------------------------------------------
# Fields: Cholesky factor, cavity fields, proximal steps in stage order
# ----------------------------------------------------------------------------------------------


@cache
def cholesky(K: int) -> tuple:
    """Lower-triangular ``L`` with ``L L^T = Delta Q`` for stages ``0..K`` (row ``j`` depends on
    the overlaps of stages ``<= j`` only)."""
    L = [[sp.Integer(0)] * (K + 1) for _ in range(K + 1)]
    for k in range(K + 1):
        for l in range(k):
            acc = Delta * overlap(l, k) - sum(L[k][i] * L[l][i] for i in range(l))
            L[k][l] = acc / L[l][l]
        L[k][k] = sp.sqrt(Delta * stage_symbols(k).q - sum(L[k][l] ** 2 for l in range(k)))
    return tuple(tuple(row) for row in L)


@cache
def chain_fields(K: int) -> tuple:
    """Per stage ``(omega_k, u_k, f_k, h*_k)`` as expressions in ``s, s_obs, z_0..z_k``."""
    L = cholesky(K)
    out = []
    upstream = sp.Integer(0)
    responses = []
    for k in range(K + 1):
        st = stage_symbols(k)
        omega = s * st.m + st.b + sum(L[k][l] * Z[l] for l in range(k + 1))
        u = omega + sum(st.Vx[j] * responses[j] for j in range(k))
        f = StageResponse(k, u, st.V, s_obs, upstream)
        h_star = f.proximal_point()
        out.append((omega, u, f, h_star))
        responses.append(f)
        upstream = h_star
    return tuple(out)


# ----------------------------------------------------------------------------------------------
# Supports and the entropic term
# ----------------------------------------------------------------------------------------------


def support_blocks(etas: Sequence, order: Sequence[int] | None = None) -> tuple:
    """Blocks ``(width, active stages)`` cut out of ``[0, 1]`` by the supports ``eta_k``.

    ``order`` lists the stages by increasing ``eta`` (needed when the ``eta`` are symbols;
    numbers are sorted). Blocks of zero width are dropped.
    """
    etas = [sp.sympify(e) for e in etas]
    if order is None:
        order = sorted(range(len(etas)), key=lambda i: float(etas[i]))
    edges = [sp.Integer(0)] + [etas[i] for i in order]
    blocks = []
    for i in range(len(order)):
        width = sp.simplify(edges[i + 1] - edges[i])
        if width.is_number and width == 0:
            continue
        blocks.append((width, frozenset(order[i:])))
    return tuple(blocks)


def block_weights(k: int, active: frozenset) -> tuple:
    """Per-coordinate maximisers ``w*_0..w*_k`` on a block (``v = 1``), as expressions in the
    cavity noises ``xi_0..xi_k``, and the stage-``k`` maximum (None if ``k`` is inactive).

    Stage ``j`` maximises ``-(lam_j + V^_j) w^2/2 + (m^_j + xi_j - sum_{i<j} V^_ji w*_i) w``
    with the earlier weights fixed (docs/chains.md, "Prior")."""
    xi = sp.symbols(f"xi_0:{k + 1}", real=True)
    w = sp.Dummy("w")
    weights = []
    value = None
    for j in range(k + 1):
        if j not in active:
            weights.append(sp.Integer(0))
            continue
        st = stage_symbols(j)
        field = st.mhat + xi[j] - sum(st.Vhatx[i] * weights[i] for i in range(j))
        objective = -(st.lam + st.Vhat) * w**2 / 2 + field * w
        (w_star,) = sp.solve(sp.diff(objective, w), w)  # concave: the stationary point
        top = objective.subs(w, w_star)
        weights.append(w_star)
        if j == k:
            value = top
    return xi, tuple(weights), value


def entropic_term(k: int, blocks: Sequence) -> sp.Expr:
    """``sum_b phi_b E_xi max_w [...]`` of stage ``k`` (exact Gaussian average)."""
    total = sp.Integer(0)
    for width, active in blocks:
        if k not in active:
            continue
        xi, _, value = block_weights(k, active)
        total += width * gaussian_quadratic_average(value, xi, noise_covariance)
    return total


def interaction_term(k: int) -> sp.Expr:
    """``-m^_k m_k - (Q^_kk V_k/Delta - V^_k q_k)/2 - sum_j (Q^_jk V_kj/Delta - V^_kj Q_jk)``."""
    st = stage_symbols(k)
    out = -st.mhat * st.m - (st.Qhat[k] * st.V / Delta - st.Vhat * st.q) / 2
    for j in range(k):
        out -= st.Qhat[j] * st.Vx[j] / Delta - st.Vhatx[j] * st.Q[j]
    return out


def energetic_term(k: int) -> sp.Expr:
    """``-E[M_{V_k}[L_k(.; s_obs, h*_{k-1})](u_k)]`` (paper Eq. 49-50, 93-97 for k = 0, 1)."""
    _, u, f, _ = chain_fields(k)[k]
    st = stage_symbols(k)
    return -ChainAverage(StageMoreau(k, u, st.V, s_obs, f.args[4]))


def chain_free_entropy(k: int, blocks: Sequence) -> sp.Expr:
    """``Phi_k``: the RS zero-temperature free entropy of stage ``k`` (module docstring)."""
    return interaction_term(k) + entropic_term(k, blocks) + alpha * energetic_term(k)


# ----------------------------------------------------------------------------------------------
# Saddle point
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StageSaddlePoint:
    """Stationarity conditions of ``Phi_k``.

    Attributes
    ----------
    prior : dict
        Order parameter of stage ``k`` -> expression in the conjugates of stages ``<= k``.
    channel : dict
        Conjugate of stage ``k`` -> expression with :class:`ChainAverage` atoms (Stein form:
        integrands ``s f_k``, ``f_k^2``, ``f_j f_k``, ``z_l f_k``; exact for any target).
    curvature : dict
        The same after Gaussian integration by parts (``z_l f_k -> df_k/dz_l``; smooth targets).
    bias : sympy expression
        Integrand of ``dPhi_k/db_k = alpha E[bias] = 0``.
    """

    k: int
    free_entropy: sp.Expr
    prior: dict
    channel: dict
    curvature: dict
    bias: sp.Expr


def _solve_linear(eq: sp.Expr, x: sp.Symbol) -> sp.Expr:
    """The root of ``eq``, affine in ``x`` (checked)."""
    slope = sp.diff(eq, x)
    if slope.has(x):
        raise ValueError(f"equation not linear in {x}")
    return -eq.subs(x, 0) / slope


def _prior_side(phi: sp.Expr, st: StageSymbols) -> dict:
    """``dPhi_k/d(conjugate) = 0``: each is linear in one order parameter of stage ``k``."""
    out = {}
    for conjugate in st.conjugates:
        eq = sp.diff(phi, conjugate)
        (unknown,) = [x for x in st.order if eq.has(x)]
        out[unknown] = _solve_linear(eq, unknown)
    return {x: out[x] for x in st.order if x in out}


def _channel_side(phi: sp.Expr, st: StageSymbols) -> dict:
    out = {}
    for x in st.order:
        if x == st.b:
            continue
        eq = linearise(to_channel_symbols(linearise(sp.diff(phi, x))))
        (conjugate,) = [c for c in st.conjugates if eq.has(c)]
        out[conjugate] = linearise(sp.expand(_solve_linear(eq, conjugate)))
    return out


def integrate_by_parts(expr: sp.Expr, k: int) -> sp.Expr:
    """``E[z_l f_k] -> E[d f_k/d z_l]`` (Stein's lemma), ``f_k`` the composite field of
    :func:`chain_fields`, in channel symbols."""
    fields = chain_fields(k)
    f_k = fields[k][2]

    def rule(e: ChainAverage) -> sp.Expr:
        integrand = e.args[0]
        for l in range(k + 1):
            if integrand == Z[l] * F[k]:
                return ChainAverage(to_channel_symbols(sp.diff(f_k, Z[l])))
        return e

    return linearise(expr.replace(lambda e: isinstance(e, ChainAverage), rule))


def block_widths(n: int) -> tuple:
    """Symbols ``phi_0..phi_{n-1}`` for the widths of the support blocks."""
    return sp.symbols(f"phi_0:{n}", nonnegative=True)


def support_structure(etas: Sequence[float]) -> tuple[tuple, tuple]:
    """Numeric block widths and the symbolic blocks ``(phi_b, active stages)`` of ``etas``."""
    blocks = support_blocks([sp.Float(e) for e in etas])
    widths = tuple(float(w) for w, _ in blocks)
    return widths, tuple(zip(block_widths(len(blocks)), (a for _, a in blocks), strict=True))


@cache
def stage_prior(k: int, blocks: tuple) -> dict:
    """Prior side of stage ``k``: its order parameters from ``dPhi_k/d(conjugates) = 0``."""
    phi = interaction_term(k) + entropic_term(k, blocks)
    return _prior_side(phi, stage_symbols(k))


@cache
def stage_channel(k: int) -> tuple[dict, sp.Expr]:
    """Channel side of stage ``k`` in Stein form and the bias integrand (any supports)."""
    st = stage_symbols(k)
    phi = interaction_term(k) + alpha * energetic_term(k)
    bias = to_channel_symbols(linearise(sp.diff(phi, st.b)) / alpha)
    bias = bias.args[0] if isinstance(bias, ChainAverage) else bias
    return _channel_side(phi, st), bias


@cache
def stage_channel_curvature(k: int) -> dict:
    """:func:`stage_channel` after Gaussian integration by parts (smooth targets)."""
    return {c: integrate_by_parts(v, k) for c, v in stage_channel(k)[0].items()}


def stage_saddle_point(k: int, blocks: tuple, curvature: bool = True) -> StageSaddlePoint:
    """All stationarity conditions of ``Phi_k`` on the blocks ``blocks``."""
    channel, bias = stage_channel(k)
    return StageSaddlePoint(
        k,
        chain_free_entropy(k, blocks),
        stage_prior(k, blocks),
        channel,
        stage_channel_curvature(k) if curvature else {},
        bias,
    )


def chain_saddle_point(etas: Sequence, order: Sequence[int] | None = None,
                       curvature: bool = True) -> tuple:  # fmt: skip
    """The stationarity conditions of ``Phi_0..Phi_K`` for supports ``etas`` (cached)."""
    blocks = support_blocks(etas, order)
    return tuple(stage_saddle_point(k, blocks, curvature) for k in range(len(etas)))


# ----------------------------------------------------------------------------------------------
# K = 1, no label noise: today's teacher and student (paper Eq. 51, 98)
# ----------------------------------------------------------------------------------------------


def _student_dictionary() -> dict:
    """Our stage-0/1 symbols -> :mod:`replica.symbolic.symbols` (teacher ``_t``, student)."""
    from replica.symbolic import symbols as sy

    s0, s1 = stage_symbols(0), stage_symbols(1)
    return {
        Z[0]: sy.z1, Z[1]: sy.z2, s_obs: sy.s, s: sy.s,
        s0.m: sy.m_t, s0.q: sy.q_t, s0.b: sy.b_t, s0.V: sy.V_t, s0.lam: sy.lam_t,
        s0.mhat: sy.mhat_t, s0.Qhat[0]: sy.Qhat_t, s0.Vhat: sy.Vhat_t,
        s1.m: sy.m, s1.q: sy.q, s1.b: sy.b, s1.V: sy.V, s1.Q[0]: sy.S, s1.Vx[0]: sy.V_S,
        s1.lam: sy.lam, s1.mhat: sy.mhat, s1.Qhat[1]: sy.Qhat, s1.Qhat[0]: sy.Qhat_x,
        s1.Vhat: sy.Vhat, s1.Vhatx[0]: sy.Vhat_x,
    }  # fmt: skip


def _to_package(expr: sp.Expr) -> sp.Expr:
    """Rewrite a stage-0/1 expression in the package's teacher/student symbols and functions
    (``s_obs = s``: no label noise)."""
    from replica.symbolic.expectation import Expectation
    from replica.symbolic.moreau import StudentMoreau, TeacherMoreau, TeacherResponse

    def moreau(k, u, V, label, upstream):
        return TeacherMoreau(u, V) if int(k) == 0 else StudentMoreau(u, V, upstream)

    expr = expr.replace(StageResponse, lambda k, u, V, *_: TeacherResponse(u, V))
    expr = expr.replace(StageMoreau, moreau)
    expr = expr.replace(ChainAverage, Expectation)
    return expr.xreplace(_student_dictionary())


def _envelope_residuals(ours: sp.Expr, theirs: sp.Expr) -> tuple[list, sp.Expr]:
    """Pair the Moreau envelopes of the two expressions by class, return the differences of
    their arguments and ``ours - theirs`` with the package's envelopes replaced by ours."""
    from replica.symbolic.moreau import StudentMoreau, TeacherMoreau

    residuals, swap = [], {}
    for cls in (TeacherMoreau, StudentMoreau):
        mine, pkg = list(ours.atoms(cls)), list(theirs.atoms(cls))
        if len(mine) != len(pkg) or len(mine) > 1:
            raise ValueError(f"expected one {cls.__name__} on each side")
        for a, b in zip(mine, pkg, strict=True):
            residuals += [x - y for x, y in zip(a.args, b.args, strict=True)]
            swap[b] = a
    return residuals, ours - theirs.xreplace(swap)


def student_reduction() -> dict:
    """Residuals (each simplifies to 0): ``Phi_0, Phi_1`` of a chain with ``eta_0 = 1``,
    ``eta_1 = eta`` and no label noise are the package's teacher and student free entropies
    (:func:`replica.symbolic.free_entropy.teacher_free_entropy`, ``student_free_entropy``)."""
    from replica.symbolic import symbols as sy
    from replica.symbolic.free_entropy import student_free_entropy, teacher_free_entropy

    blocks = support_blocks([sp.Integer(1), sy.eta], order=(1, 0))
    out = {}
    for k, theirs in ((0, teacher_free_entropy()), (1, student_free_entropy())):
        ours = _to_package(chain_free_entropy(k, blocks))
        arguments, difference = _envelope_residuals(ours, theirs)
        for i, r in enumerate(arguments):
            out[f"Phi_{k}: envelope argument {i}"] = r
        out[f"Phi_{k} - package"] = difference
    return out


__all__ = [
    "ChainAverage",
    "StageMoreau",
    "StageResponse",
    "StageSaddlePoint",
    "StageSymbols",
    "chain_fields",
    "chain_free_entropy",
    "chain_saddle_point",
    "cholesky",
    "energetic_term",
    "entropic_term",
    "integrate_by_parts",
    "interaction_term",
    "stage_channel",
    "stage_channel_curvature",
    "stage_loss",
    "stage_prior",
    "stage_saddle_point",
    "stage_symbols",
    "student_reduction",
    "support_blocks",
    "support_structure",
    "to_channel_symbols",
]
