"""The symbolic K = 2 chain free entropy (replica/symbolic/chain.py) against the package's student
free entropy (K = 1) and against the numeric chain solver (replica/chain.py)."""

import numpy as np
import pytest
import sympy as sp

from replica.chain import Stage, _Prior, solve_chain
from replica.symbolic import chain as sc
from replica.symbolic import symbols as sy
from replica.symbolic.chain_check import check_chain, free_entropy_gradient
from replica.symbolic.derive import student_saddle_point
from replica.symbolic.expectation import single_expectation

# ---------------------------------------------------------------------------------------------
# Symbolic: the derived equations
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_k1_no_noise_free_entropy_is_the_package_student():
    for name, residual in sc.student_reduction().items():
        assert sp.simplify(residual) == 0, name


def test_channel_stein_form_of_the_diagonal_conjugates():
    """dPhi_k/dq_k, dV_k, dm_k: V^_k = -alpha Delta E[z_k f_k]/L_kk, Q^_kk = alpha Delta E[f_k^2],
    m^_k = alpha E[s f_k], Q^_jk = alpha Delta E[f_j f_k]; the bias condition is E[f_k] = 0."""
    L = sc.cholesky(2)
    for k in range(3):
        st = sc.stage_symbols(k)
        channel, bias = sc.stage_channel(k)
        E = sc.ChainAverage
        expected = {
            st.mhat: sy.alpha * E(sc.s * sc.F[k]),
            st.Vhat: -sy.alpha * sy.Delta * E(sc.Z[k] * sc.F[k]) / L[k][k],
            **{st.Qhat[j]: sy.alpha * sy.Delta * E(sc.F[j] * sc.F[k]) for j in range(k + 1)},
        }
        for conjugate, value in expected.items():
            assert sp.simplify(channel[conjugate] - value) == 0, conjugate
        assert bias == sc.F[k]


def test_k1_curvature_form_is_the_package_student_channel():
    """After integration by parts, the derived stage-1 conjugates are the student's of
    replica/symbolic/derive.py (forward-derivative form of V^x)."""
    package = student_saddle_point().channel
    rename = {sc.F[0]: sy.f_t, sc.F[1]: sy.f, sc.A[0]: sy.a_t, sc.A[1]: sy.a, sc.C[1]: sy.c}
    st = sc.stage_symbols(1)
    pairs = {st.mhat: sy.mhat, st.Vhat: sy.Vhat, st.Qhat[1]: sy.Qhat, st.Qhat[0]: sy.Qhat_x,
             st.Vhatx[0]: sy.Vhat_x}  # fmt: skip
    for ours, theirs in pairs.items():
        mine = sc._to_package(sc.stage_channel_curvature(1)[ours]).xreplace(rename)
        difference = single_expectation(sp.expand(mine)) - single_expectation(package[theirs])
        assert sp.simplify(difference) == 0, ours


def test_prior_side_is_the_numeric_block_recursion():
    """The derived prior side of stages 0, 1, 2 on non-nested supports equals the block
    recursion of replica.chain._Prior at random conjugates."""
    etas = [0.6, 1.0, 0.4]
    widths, blocks = sc.support_structure(etas)
    rng = np.random.default_rng(3)
    prior = _Prior.empty(etas)
    delta = 0.8
    values = {sy.Delta: delta, **{phi: w for (phi, _), w in zip(blocks, widths, strict=True)}}
    A = rng.standard_normal((3, 3))
    Qhat = A @ A.T + 3 * np.eye(3)
    for k in range(3):
        st = sc.stage_symbols(k)
        mhat, Vhat, lam = rng.uniform(0.2, 1.5), rng.uniform(0.3, 2.0), rng.uniform(0.05, 0.5)
        Vx = rng.uniform(-0.7, 0.7, k)
        values.update({st.mhat: mhat, st.Vhat: Vhat, st.lam: lam})
        values.update({st.Qhat[j]: Qhat[j, k] for j in range(k + 1)})
        values.update({st.Vhatx[j]: Vx[j] for j in range(k)})
        a, B = prior.stage_rows(k, mhat, Vhat, lam, Vx)
        m, Q, Bsum = prior.overlaps(k, a, B, Qhat[k, : k + 1])
        prior.store(k, a, B, Qhat[k, : k + 1])
        derived = {x: float(e.xreplace(values)) for x, e in sc.stage_prior(k, blocks).items()}
        numeric = {st.m: m, st.q: Q[k], st.V: delta * Bsum[k]}
        numeric.update({st.Q[j]: Q[j] for j in range(k)})
        numeric.update({st.Vx[j]: delta * Bsum[j] for j in range(k)})
        for x, value in numeric.items():
            assert derived[x] == pytest.approx(value, rel=1e-12, abs=1e-14), x


# ---------------------------------------------------------------------------------------------
# Numeric: the derived map at replica.chain's fixed points
# ---------------------------------------------------------------------------------------------

CHAINS = {
    "soft, flip 0.2": (2.0, 0.3, 1.0, 0.2, [
        Stage(lam=0.1), Stage(lam=0.1, chi=0.7, temperature=2.0), Stage(lam=0.2, chi=1.0)]),
    "hard, flip 0.2": (2.0, 0.3, 1.0, 0.2, [
        Stage(lam=0.1), Stage(lam=0.1, chi=1.0, target="hard"),
        Stage(lam=0.1, chi=0.6, target="hard")]),
    "weak-to-strong, flip 0.1": (2.0, 0.5, 1.0, 0.1, [
        Stage(eta=0.3, lam=0.1), Stage(eta=1.0, lam=0.1, chi=0.8, target="hard"),
        Stage(eta=1.0, lam=0.1, chi=0.5, temperature=2.0)]),
    "non-nested supports, fixed bias": (1.5, 0.4, 0.8, 0.0, [
        Stage(eta=0.6, lam=0.2), Stage(eta=1.0, lam=0.1, chi=0.5, temperature=1.5),
        Stage(eta=0.4, lam=0.3, chi=0.8, target="hard", bias="fixed", bias_value=0.1)]),
    "square label loss, flip 0.2": (2.0, 0.4, 1.0, 0.2, [
        Stage(lam=0.5, loss="square"), Stage(lam=0.1, chi=0.6, temperature=1.5, loss="square"),
        Stage(lam=0.1, chi=0.7, temperature=2.0)]),
}  # fmt: skip
RULES = dict(inner=20, outer=24, side=24, refine=4)


def _solve(name):
    alpha, rho, delta, flip, stages = CHAINS[name]
    solution = solve_chain(alpha, rho, delta, flip, stages, tol=1e-12)
    assert solution.converged
    return solution


def _assert_fixed_point(check, tol):
    for name, residual in check.residual.items():
        assert residual <= tol, (name, residual, check.error[name])
    for k, free in enumerate(check.free_bias):
        if free:
            assert abs(check.bias[k]) <= tol, k
    for name, value in check.chain_conjugates.items():
        assert abs(check.conjugates[name] - value) <= tol, name


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CHAINS))
def test_derived_map_reproduces_the_chain_fixed_point(name):
    """At replica.chain's fixed point the derived prior(channel(.)) map, with our own
    quadrature, returns the same order parameters, and our conjugates are replica.chain's, to
    1e-6 (both sides' quadrature errors are below that: our refinement changes <= 3e-7 with
    these rules, the measured residuals <= 7e-8)."""
    check = check_chain(_solve(name), **RULES)
    assert check.max_error() <= 1e-6
    _assert_fixed_point(check, 1e-6)


@pytest.mark.slow
def test_curvature_form_agrees_for_soft_targets():
    check = check_chain(_solve("soft, flip 0.2"), form="curvature", **RULES)
    _assert_fixed_point(check, 1e-6)


@pytest.mark.slow
def test_derived_map_by_monte_carlo_hard_targets():
    """The Stein form by plain Monte Carlo (no splitting at the jumps of the hard targets):
    every order parameter within 3.5 SE (16 batches; 15 correlated comparisons)."""
    check = check_chain(_solve("hard, flip 0.2"), "mc", samples=2**15, batches=16, seed=11)
    for name, residual in check.residual.items():
        assert residual <= 3.5 * check.error[name], (name, residual, check.error[name])


@pytest.mark.slow
@pytest.mark.parametrize("name, rules", [
    ("soft, flip 0.2", dict(inner=20, outer=20)),
    ("non-nested supports, fixed bias", dict(inner=20, outer=24, side=32)),
])  # fmt: skip
def test_free_entropy_is_stationary_at_the_chain_fixed_point(name, rules):
    """The free entropy itself (not the derived equations): central differences of Phi_k in
    each of its 16 variables (15 with a fixed bias), evaluated numerically on fixed nodes at
    replica.chain's order parameters and conjugates, vanish (measured <= 1e-8 on the default
    rules, <= 1.1e-7 on these)."""
    gradient = free_entropy_gradient(_solve(name), **rules)
    for variable, value in gradient.items():
        assert abs(value) <= 1e-6, (variable, value)
