"""Teacher theory: formulas, closed forms, convergence and the paper's qualitative checks."""

import math

import numpy as np
import pytest

from replica.errors import bayes_optimal_error, generalisation_error
from replica.params import GaussianMixture, ParameterError
from replica.teacher import TeacherParams, solve_teacher
from saddle.special import gaussian_tail

# docs/model.md §3.3 (computed there from the closed form).
BO_TABLE = [
    (1.0, 0.15814, 0.18616, 0.23975),
    (3.0, 0.13302, 0.17211, 0.19324),
    (4.5, 0.12691, 0.16824, 0.18286),
    (10.0, 0.11923, 0.16314, 0.17018),
]


@pytest.mark.parametrize("alpha, teacher, student, balanced", BO_TABLE)
def test_bayes_optimal_errors_match_spec_table(alpha, teacher, student, balanced):
    assert bayes_optimal_error(alpha, GaussianMixture(0.2, 1.0)) == pytest.approx(teacher, abs=6e-6)
    assert bayes_optimal_error(alpha, GaussianMixture(0.2, 1.0), eta=0.5) == pytest.approx(
        student, abs=6e-6
    )
    assert bayes_optimal_error(alpha, GaussianMixture(0.5, 1.0)) == pytest.approx(
        balanced, abs=6e-6
    )


def test_generalisation_error_is_a_gaussian_probability():
    rng = np.random.default_rng(1)
    m, q, b, rho, delta = 1.2, 2.5, -0.7, 0.3, 0.8
    s = np.where(rng.random(400_000) < rho, 1.0, -1.0)
    h = s * m + b + math.sqrt(delta * q) * rng.standard_normal(s.size)
    empirical = np.mean(s * h < 0)
    assert generalisation_error(m, q, b, rho, delta) == pytest.approx(empirical, abs=3e-3)
    assert gaussian_tail(0.0) == 0.5


def test_teacher_converges_to_tolerance_across_the_grid():
    for alpha in (0.5, 1.5, 3.0, 6.0, 10.0):
        for lam in (1e-3, 1e-2, 0.1, 1.0):
            sol = solve_teacher(alpha, lam=lam)
            assert sol.converged and sol.residual <= 1e-10, (alpha, lam, sol.report.message)
            assert sol.q >= sol.m**2 and sol.V > 0  # Cauchy-Schwarz, |v|^2 = N


def test_teacher_error_never_beats_bayes_optimal():
    for rho in (0.2, 0.5):
        for alpha in (0.5, 1.0, 2.0, 4.0, 8.0):
            for lam in (1e-3, 1e-2, 0.1, 1.0, 10.0):
                sol = solve_teacher(alpha, rho=rho, lam=lam)
                assert sol.eps_g >= sol.eps_bo - 1e-12


def test_balanced_teacher_approaches_bayes_optimal_as_lambda_grows():
    gaps = [solve_teacher(3.0, rho=0.5, lam=lam) for lam in (0.1, 1.0, 10.0, 100.0)]
    gaps = [s.eps_g - s.eps_bo for s in gaps]
    assert all(a > b for a, b in zip(gaps, gaps[1:], strict=False))
    assert gaps[-1] < 1e-5


def test_best_lambda_is_of_order_one_tenth_at_alpha_3():
    # Paper Fig. 6 (same lambda convention as ours, App. A.1 Eq. 46): among its grid
    # lambda = 0.1 is best and larger values hurt; our continuous optimum is ~0.22.
    grid = (1e-5, 1e-3, 1e-2, 1e-1, 1.0)
    errors = [solve_teacher(3.0, lam=lam).eps_g for lam in grid]
    assert int(np.argmin(errors)) == 3
    fine = np.geomspace(0.01, 2.0, 40)
    best = fine[np.argmin([solve_teacher(3.0, lam=lam).eps_g for lam in fine])]
    assert 0.05 < best < 0.5


def test_square_loss_reproduces_ridge_regression_closed_form():
    # Ridge regression on labels s = +-1 with a free bias. The replica equations are linear;
    # V solves the Marchenko-Pastur quadratic lam V^2 + (lam + (alpha - 1) delta) V - delta = 0,
    # and with k = 4 alpha rho (1 - rho) / ((1 + V) D), D = lam + alpha delta / (1 + V):
    # m = k / (1 + k), b = (2 rho - 1)(1 - m),
    # q (1 - alpha delta^2 / ((1+V)^2 D^2)) = m^2 + 4 alpha delta rho (1-rho)(1-m)^2/((1+V)^2 D^2).
    points = [(3.0, 0.2, 1.0, 0.1), (0.7, 0.35, 0.5, 0.3), (5.0, 0.5, 2.0, 1.0)]
    for alpha, rho, delta, lam in points:
        sol = solve_teacher(alpha, rho, delta, lam, loss="square")
        B = lam + (alpha - 1.0) * delta
        V = (-B + math.sqrt(B * B + 4.0 * lam * delta)) / (2.0 * lam)
        D = lam + alpha * delta / (1.0 + V)
        k = 4.0 * alpha * rho * (1.0 - rho) / ((1.0 + V) * D)
        m = k / (1.0 + k)
        g = 1.0 / ((1.0 + V) * D) ** 2
        q = (m * m + 4.0 * alpha * delta * rho * (1 - rho) * (1 - m) ** 2 * g) / (
            1.0 - alpha * delta**2 * g
        )
        assert sol.V == pytest.approx(V, rel=1e-9)
        assert sol.m == pytest.approx(m, rel=1e-9)
        assert sol.b == pytest.approx((2 * rho - 1) * (1 - m), abs=1e-9)
        assert sol.q == pytest.approx(q, rel=1e-9)


def test_label_smoothing_shrinks_the_teacher():
    plain = solve_teacher(3.0, lam=1e-2)
    smooth = solve_teacher(3.0, lam=1e-2, smoothing=0.2)
    assert smooth.converged and smooth.q < plain.q


def test_warm_start_gives_the_same_fixed_point():
    cold = solve_teacher(3.0, lam=0.1)
    warm = solve_teacher(3.1, lam=0.1, initial=cold.state)
    again = solve_teacher(3.1, lam=0.1)
    assert warm.iterations <= again.iterations
    assert warm.eps_g == pytest.approx(again.eps_g, abs=1e-10)


def test_result_dictionary_and_validation():
    sol = solve_teacher(3.0)
    d = sol.to_dict()
    for key in ("eps_g", "m", "q", "V", "b", "train_loss", "train_error", "converged",
                "nit", "residual", "eps_bo"):
        assert key in d
    assert 0.0 < sol.train_error < sol.eps_g
    with pytest.raises(ParameterError, match="rho"):
        TeacherParams(3.0, rho=1.5)
    with pytest.raises(ParameterError, match="alpha"):
        solve_teacher(-1.0)
    with pytest.raises(ParameterError, match="lam"):
        solve_teacher(1.0, lam=-0.1)
    with pytest.raises(ParameterError, match="smoothing"):
        solve_teacher(1.0, smoothing=0.5)
    with pytest.raises(ParameterError, match="delta"):
        solve_teacher(1.0, delta=0.0)


def test_non_convergence_is_reported_with_a_warning():
    from saddle.fixed_point import ConvergenceWarning

    with pytest.warns(ConvergenceWarning):
        sol = solve_teacher(3.0, lam=0.1, max_iter=3)
    assert not sol.converged and sol.report.status == 1


@pytest.mark.parametrize("alpha, loss, lam, options", [
    (0.3, "logistic", 1e-5, {"max_iter": 40}),
    (3.0, "square", 1e-5, {"max_iter": 10}),
    (1.0, "hinge", 1e-3, {"max_iter": 30}),
    # a warm start that fails within the budget (it converges after ~1075 evaluations)
    (0.3, "hinge", 1e-10, {"initial": [5.0, 80.0, 0.01, 3.0], "max_iter": 500}),
])  # fmt: skip
def test_failed_solve_falls_back_on_the_shared_continuation(monkeypatch, alpha, loss, lam,
                                                            options):  # fmt: skip
    # The solve from the given start fails; the continuation in lam from the cold start
    # (replica.teacher.solve_with_continuation, as for the student and the chain stages)
    # reaches the same fixed point, and nit counts the map evaluations of every solve.
    import replica.teacher as teacher

    solves = []
    iterate = teacher._iterate_teacher

    def recorded(params, rule, initial, **kw):
        solves.append((params.lam, iterate(params, rule, initial, **kw)))
        return solves[-1][1]

    monkeypatch.setattr(teacher, "_iterate_teacher", recorded)
    sol = solve_teacher(alpha, lam=lam, loss=loss, warn=False, **options)
    assert not solves[0][1].converged and solves[0][0] == lam
    path = teacher.homotopy_path(lam)
    assert [s[0] for s in solves[1:len(path) + 1]] == path  # then every step of the path
    assert sol.converged and sol.nit == sum(report.nit for _, report in solves)
    reference = solve_teacher(alpha, lam=lam, loss=loss)
    for name in ("eps_g", "m", "q", "V", "b"):
        assert getattr(sol, name) == pytest.approx(getattr(reference, name), rel=1e-8, abs=1e-12)
