"""Interpolation and separability thresholds: closed form, saddle point, and finite-N LP checks."""

import json
import math
import warnings

import pytest

from replica.cli import main
from replica.student import solve_student
from replica.teacher import solve_teacher
from replica.thresholds import (
    gardner_ratio,
    is_linearly_separable,
    separable_fraction,
    student_separability_threshold,
    teacher_separability_threshold,
    thresholds,
)


def test_cover_capacity_is_recovered_without_signal():
    # Delta -> inf at rho = 1/2: random labels, capacity 2 (Cover); the bias does not help.
    assert teacher_separability_threshold(0.5, 1e8) == pytest.approx(2.0, abs=1e-3)
    assert gardner_ratio(0.0, 0.0, 0.5, 1.0) == pytest.approx(2.0, abs=1e-12)


def test_paper_values_and_student_equivalence():
    th = thresholds(0.2, 1.0, 0.5)
    assert th.alpha_I == 0.5
    # The paper reads ~1.75 and ~4.75 off its Fig. 5: we agree within the reading accuracy.
    assert th.alpha_S == pytest.approx(1.75, rel=0.04)
    assert th.alpha_S_teacher == pytest.approx(4.75, rel=0.04)
    assert th.alpha_S == pytest.approx(0.5 * teacher_separability_threshold(0.2, 2.0), rel=1e-9)
    assert th.alpha_S == student_separability_threshold(0.2, 1.0, 0.5)
    assert th.alpha_I < th.alpha_S < th.alpha_S_teacher
    # Balanced clusters (Fig. 12 has kinks at ~1.4 and ~3.7): no bias at the threshold.
    balanced = thresholds(0.5, 1.0, 0.5)
    assert balanced.alpha_S == pytest.approx(1.37, abs=0.02)
    assert balanced.alpha_S_teacher == pytest.approx(3.70, abs=0.02)
    assert abs(balanced.teacher_b) < 1e-6
    assert set(th.to_dict()) >= {"alpha_I", "alpha_S", "alpha_S_teacher", "method"}


def test_saddle_point_norm_diverges_below_the_threshold_only():
    # The lam -> 0 limit of the replica teacher: q grows without bound on separable data and
    # converges above alpha~_S, where the unregularised problem has a finite solution.
    threshold = teacher_separability_threshold(0.2, 1.0)
    below = [solve_teacher(0.9 * threshold, lam=lam).q for lam in (1e-4, 1e-5, 1e-6)]
    above = [solve_teacher(1.1 * threshold, lam=lam).q for lam in (1e-4, 1e-5, 1e-6)]
    assert below[2] > 2.0 * below[1] > 4.0 * below[0]
    assert above[2] == pytest.approx(above[1], rel=0.02)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        flagged = solve_teacher(0.9 * threshold, lam=0.0)
    finite = solve_teacher(1.1 * threshold, lam=0.0)
    assert flagged.status == 3 and not flagged.finite and not flagged.converged
    assert math.isnan(flagged.eps_g) and "separable" in flagged.report.message
    assert finite.converged and finite.q == pytest.approx(above[2], rel=1e-3)


def test_distilled_student_norm_diverges_below_its_separability_threshold():
    # An unregularised teacher passes on the hard labels below alpha~_S, so the unregularised
    # student's norm blows up below its own threshold alpha_S and stays finite above it.
    alpha_s = student_separability_threshold(0.2, 1.0, 0.5)
    q = {}
    for factor in (0.9, 1.15):
        q[factor] = [solve_student(factor * alpha_s, lam_t=1e-6, lam_s=lam_s, chi=1.0).q
                     for lam_s in (1e-4, 1e-6)]  # fmt: skip
    assert q[0.9][1] > 3.0 * q[0.9][0]
    assert q[1.15][1] == pytest.approx(q[1.15][0], rel=0.05)


def test_no_finite_solution_is_flagged_not_returned():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        separable = solve_student(1.0, lam_s=0.0, chi=0.0)
        interpolating = solve_student(0.3, lam_t=0.1, lam_s=0.0, chi=1.0)
        no_teacher = solve_student(2.0, lam_t=0.0, lam_s=1e-3)
    for sol in (separable, interpolating, no_teacher):
        assert sol.status == 3 and not sol.finite and math.isnan(sol.eps_g)
        assert sol.student_dict()["status"] == 3
    assert solve_student(3.0, lam_s=0.0, chi=0.0).converged  # not separable: finite


def test_linear_programming_separability_on_tiny_cases():
    import numpy as np

    X = np.array([[1.0, 0.0], [2.0, 1.0], [-1.0, 0.5], [-2.0, -1.0]])
    assert is_linearly_separable(X, np.array([1, 1, 0, 0]))
    X = np.array([[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    assert not is_linearly_separable(X, np.array([1, 1, 0, 0]))  # XOR


@pytest.mark.slow
@pytest.mark.parametrize("eta", [1.0, 0.5], ids=["teacher", "student"])
def test_separable_fraction_crosses_one_half_near_the_threshold(eta):
    # Exact separability (LP) of finite samples, N = 100: separable well below the threshold,
    # not separable well above, and a fraction near 1/2 at it (finite-size width ~ N^-1/2).
    threshold = 4.849 if eta == 1.0 else 1.8036
    assert threshold == pytest.approx(
        teacher_separability_threshold() if eta == 1.0 else student_separability_threshold(),
        abs=1e-3,
    )
    fractions = {
        f: separable_fraction(f * threshold, 0.2, 1.0, eta=eta, n=100, trials=12, seed=7).fraction
        for f in (0.8, 1.0, 1.2)
    }
    assert fractions[0.8] >= 0.75 >= 0.25 >= fractions[1.2]
    # Linear interpolation of the crossing of 1/2 between the measured points.
    f = [0.8, 1.0, 1.2]
    y = [fractions[k] for k in f]
    k = 0 if y[1] < 0.5 else 1
    crossing = f[k] + (f[k + 1] - f[k]) * (y[k] - 0.5) / (y[k] - y[k + 1])
    assert crossing == pytest.approx(1.0, abs=0.15)


def test_thresholds_command(capsys):
    assert main(["thresholds", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["alpha_I"] == 0.5 and data["alpha_S"] == pytest.approx(1.8036, abs=1e-3)
    assert main(["thresholds", "--rho", "0.5"]) == 0
    assert "alpha~_S" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["thresholds", "--eta", "0"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "eta" in err[0]
