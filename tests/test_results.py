"""Result objects: one observable schema, agreement(), nit/converged/success, equality and
hashing, to_row()/to_dict()/to_frame() (replica.observables, saddle.results)."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pandas as pd
import pytest

from replica.curves import student_curve, teacher_curve
from replica.observables import (
    OBSERVABLES,
    Estimate,
    agreement,
    canonical,
    compared,
    theory_name,
)
from replica.params import ParameterError
from replica.student import solve_student
from replica.teacher import solve_teacher
from saddle.fixed_point import FixedPointResult
from simulations.monte_carlo import simulate_student, simulate_teacher, simulate_teacher_curve

SMALL = {"n": 100, "n_test": 500}


@pytest.fixture(scope="module")
def teacher_sim():
    return simulate_teacher(3.0, lam=0.1, seeds=4, seed=5, **SMALL)


@pytest.fixture(scope="module")
def student_sim():
    return simulate_student(3.0, lam_s=0.1, seeds=3, seed=5, **SMALL)


def test_observable_names_are_shared_by_theory_and_simulation(teacher_sim, student_sim):
    theory = solve_teacher(3.0, lam=0.1).observables()
    for name in compared("teacher"):
        assert theory_name(name) in theory and name in teacher_sim.mean
    student = solve_student(3.0, lam_s=0.1).observables()
    for name in compared("student"):
        assert theory_name(name) in student and name in student_sim.mean
    assert theory_name("teacher_eps_g_test") == "teacher_eps_g"
    assert canonical("teacher_n_iter") == "teacher_nit" and canonical("iterations") == "nit"
    assert set(OBSERVABLES) >= {"eps_g", "m", "q", "S", "b", "nit"}


def test_observables_are_attributes_on_both_sides(teacher_sim, student_sim):
    assert isinstance(solve_teacher(3.0).eps_g, float)
    assert teacher_sim.eps_g == Estimate(teacher_sim.mean["eps_g"], teacher_sim.sem["eps_g"])
    assert float(teacher_sim.q) == teacher_sim.mean["q"]
    assert student_sim.teacher.q == Estimate(student_sim.mean["teacher_q"],
                                             student_sim.sem["teacher_q"])  # fmt: skip
    assert student_sim.teacher.model == "teacher"
    assert student_sim.teacher.params["lam"] == student_sim.params["lam_t"]
    with pytest.raises(AttributeError):
        teacher_sim.no_such_observable  # noqa: B018
    with pytest.raises(AttributeError):
        teacher_sim.teacher  # noqa: B018


def test_agreement_gives_z_scores_and_catches_a_wrong_prediction(teacher_sim):
    good = agreement(solve_teacher(3.0, lam=0.1), teacher_sim)
    assert [row.name for row in good.rows] == list(compared("teacher"))
    for row in good.rows:
        assert row.z == pytest.approx((row.mean - row.theory) / row.sem)
        assert row.ok == (abs(row.z) <= 3.0)
    assert good["eps_g_test"].theory == solve_teacher(3.0, lam=0.1).eps_g
    wrong = agreement(solve_teacher(3.0, lam=1.0), teacher_sim, ("q", "m"))
    assert not wrong.ok and len(wrong.failures()) == 2
    assert wrong.failures()[0].startswith("q: theory ")
    assert agreement(solve_teacher(3.0, lam=1.0), teacher_sim, ("q",), z_max=1e9).ok
    frame = good.to_frame()
    assert list(frame["name"]) == list(compared("teacher"))
    json.dumps(good.to_dict())


def test_agreement_with_zero_standard_error_compares_at_one_sample():
    sim = simulate_teacher(1.0, lam=1e-3, seeds=2, **SMALL)  # separable: no training error
    assert sim.sem["train_error"] == 0.0 and sim.mean["train_error"] == 0.0
    row = agreement(solve_teacher(1.0, lam=1e-3), sim, ("train_error",))["train_error"]
    assert math.isnan(row.z) and row.tolerance == 1.0 / 100


def test_agreement_of_a_student_includes_its_teacher(student_sim):
    table = agreement(solve_student(3.0, lam_s=0.1), student_sim)
    names = [row.name for row in table.rows]
    assert "S" in names and "teacher_q" in names and "teacher_eps_g_test" in names


def test_a_single_seed_has_undefined_standard_errors():
    sim = simulate_teacher(2.0, seeds=1, **SMALL)
    assert not sim.sem_defined and all(math.isnan(v) for v in sim.sem.values())
    assert simulate_teacher(2.0, seeds=2, **SMALL).sem_defined
    with pytest.raises(ParameterError, match=r"^seeds must be >= 2"):
        agreement(solve_teacher(2.0), sim)


def test_convergence_is_reported_alike_everywhere(teacher_sim, student_sim):
    t = solve_teacher(3.0)
    assert t.success is t.converged is True and isinstance(t.nit, int)
    assert t.nit == t.iterations == t.report.nit and t.message == t.report.message
    s = solve_student(3.0)
    assert s.success is True and s.nit == s.report.nit and "converged" in s.message
    for sim in (teacher_sim, student_sim):
        assert sim.converged is True and sim.success is True and sim.status == 0
        assert all(type(row["converged"]) is bool for row in sim.per_seed)
        assert all(type(row["nit"]) is int for row in sim.per_seed)
        assert sim.nit == sum(row["nit"] for row in sim.per_seed)
        assert "converged" not in sim.mean  # not a mean ...
        assert sim.mean["converged"] is True  # ... but the former name still answers
        assert sim.mean["n_iter"] == sim.mean["nit"]  # former name of nit
    assert student_sim.mean["teacher_converged"] is True
    lazy = solve_teacher(3.0, max_iter=2, warn=False)
    assert lazy.converged is False and lazy.success is False and lazy.status == 1


def test_results_compare_and_hash_by_value(teacher_sim):
    a, b = solve_teacher(3.0, lam=0.2), solve_teacher(3.0, lam=0.2)
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != solve_teacher(3.1, lam=0.2)
    s1, s2 = solve_student(3.0, lam_s=0.1), solve_student(3.0, lam_s=0.1)
    assert s1 == s2 and hash(s1) == hash(s2)
    nan1 = solve_teacher(1.0, lam=0.0, warn=False)  # no finite solution: NaN observables
    nan2 = solve_teacher(1.0, lam=0.0, warn=False)
    assert nan1.status == 3 and nan1 == nan2 and hash(nan1) == hash(nan2)
    x = FixedPointResult(np.array([1.0, np.nan]), True, 0, "ok", 3, 0.0, (1.0,))
    y = FixedPointResult(np.array([1.0, np.nan]), True, 0, "ok", 3, 0.0, (1.0,))
    assert x == y and hash(x) == hash(y)
    assert x != FixedPointResult(np.array([1.0, 2.0]), True, 0, "ok", 3, 0.0, (1.0,))
    again = simulate_teacher(3.0, lam=0.1, seeds=4, seed=5, **SMALL)
    assert again == teacher_sim and hash(again) == hash(teacher_sim)
    assert again != simulate_teacher(3.0, lam=0.1, seeds=4, seed=6, **SMALL)
    c1 = teacher_curve("lam", [0.1, 1.0], alpha=2.0)
    c2 = teacher_curve("lam", [0.1, 1.0], alpha=2.0)
    assert c1 == c2 and hash(c1) == hash(c2)


def test_rows_and_records_follow_one_convention():
    t = solve_teacher(3.0)
    row = t.to_row()
    assert list(row)[:3] == ["eps_g", "m", "q"] and row["nit"] == t.nit and "params" not in row
    assert t.to_dict() == {"params": t.params.to_dict(), **row}
    s = solve_student(4.5, chi=0.5, lam_s=0.2)
    srow = s.to_row()
    assert srow["teacher_eps_g"] == s.teacher.eps_g and srow["nit"] == s.nit
    assert srow["teacher_nit"] == s.teacher.nit
    d = s.to_dict()
    assert d["student"] == s.student_dict() and d["teacher"]["q"] == s.teacher.q
    curve = student_curve("chi", [0.5], alpha=4.5, lam_s=0.2)
    assert {k: v[0] for k, v in curve.columns.items()} == {"chi": 0.5, **srow}
    json.dumps(t.to_dict())
    json.dumps(d, default=float)


def test_curves_and_diagrams_are_data_frames():
    curve = teacher_curve("lam", [1e-2, 0.1, 1.0], alpha=3.0)
    frame = pd.DataFrame(curve.to_dict())
    assert frame.shape[0] == 3 and list(frame["lam"]) == [1e-2, 0.1, 1.0]
    assert set(frame["alpha"]) == {3.0} and set(frame["model"]) == {"teacher"}
    assert curve.to_frame().equals(frame)
    sims = simulate_teacher_curve("lam", [0.1, 1.0], alpha=2.0, seeds=2, **SMALL)
    sframe = sims.to_frame()
    assert list(sframe["lam"]) == [0.1, 1.0] and "eps_g_sem" in sframe
    assert bool(sframe["converged"].all())

    from replica.phase import PhaseSpec, compute_phase

    diagram = compute_phase(PhaseSpec("alpha", "lam", (2.0, 3.0), (0.1, 1.0), "teacher.q"))
    pframe = diagram.to_frame()
    assert pframe.shape[0] == 4 and list(pframe["value"]) == diagram.grid.ravel().tolist()
    assert diagram == compute_phase(diagram.spec) and hash(diagram.spec) == hash(diagram.spec)


def test_to_frame_without_pandas_is_a_one_line_error(monkeypatch):
    curve = teacher_curve("lam", [0.1], alpha=3.0)
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="pip install pandas") as info:
        curve.to_frame()
    assert "\n" not in str(info.value)
