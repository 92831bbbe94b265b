"""Phase diagrams: grids, derived quantities (optimal lambda, chi, KD gain), CLI output."""

import csv

import numpy as np
import pytest

from replica.cli import main
from replica.phase import PhaseSpec, compute_phase, threshold_lines
from replica.student import solve_student
from replica.sweep import best_direct_ridge
from replica.teacher import solve_teacher


def test_student_diagram_cli_writes_csv_and_heatmap(tmp_path, capsys):
    code = main(["phase", "--x", "alpha", "--y", "lam-t", "--quantity", "student.eps_g",
                 "--nx", "4", "--ny", "3", "--x-range", "1", "4", "--y-range", "0.01", "1",
                 "--lam-s", "1e-3", "--out", str(tmp_path), "--quiet",
                 "--workers", "2"])  # fmt: skip
    assert code == 0
    rows = list(csv.DictReader(open(tmp_path / "phase.csv")))
    assert len(rows) == 12 and len({(r["iy"], r["ix"]) for r in rows}) == 12
    assert np.allclose(sorted({float(r["lam_t"]) for r in rows}), [0.01, 0.1, 1.0])
    assert all(r["converged"] == "True" for r in rows)
    corner = next(r for r in rows if r["iy"] == "1" and r["ix"] == "2")
    direct = solve_student(3.0, lam_t=0.1, lam_s=1e-3)
    assert float(corner["eps_g"]) == pytest.approx(direct.eps_g, abs=1e-8)
    assert (tmp_path / "phase.png").stat().st_size > 10_000


def test_optimal_lambda_and_chi_and_kd_gain():
    lam = PhaseSpec("alpha", "rho", (1.5, 3.0), (0.2, 0.3), "teacher.lam_star")
    diagram = compute_phase(lam)
    assert diagram.spec.model == "teacher" and diagram.grid.shape == (2, 2)
    # the optimum is a minimum of the saddle-point error along lambda
    lam_star = float(diagram.columns["lam"][1])
    best = float(diagram.columns["eps_g"][1])
    for factor in (0.7, 1.4):
        assert solve_teacher(3.0, rho=0.2, lam=lam_star * factor).eps_g >= best - 1e-9

    chi = compute_phase(PhaseSpec("alpha", "lam_s", (4.5,), (0.2, 0.5), "student.chi_star"))
    chi_star = chi.grid[:, 0]
    # Fig. 3: lam_s = 0.2 has an interior optimal chi, lam_s = 0.5 is over-regularised (chi = 0)
    assert 0.05 < chi_star[0] < 0.95 and chi_star[1] == pytest.approx(0.0, abs=1e-3)
    # ... where the distilled student matches the best direct ridge (paper Sec. 5.2)
    assert float(chi.columns["eps_g"][0]) == pytest.approx(best_direct_ridge(4.5)[1], abs=1e-3)

    gain = compute_phase(PhaseSpec("alpha", "lam_t", (4.5,), (0.01, 0.1), "kd_gain",
                                   {"lam_s": 1e-4}))  # fmt: skip
    eps_ridge = best_direct_ridge(4.5)[1]
    assert gain.grid[:, 0] == pytest.approx(np.array(gain.columns["eps_g"]) - eps_ridge, abs=1e-9)
    assert np.all(gain.grid > 0)  # pure distillation never beats the best ridge here


@pytest.mark.parametrize("loss", ["square", "hinge"])
def test_kd_gain_baseline_is_the_best_ridge_student_of_the_same_loss(loss):
    from replica.points import direct_solver
    from replica.sweep import path_tasks, solve_path

    fixed = {"lam_t": 0.1, "lam_s": 1e-2, "chi": 0.5, "temperature": 2.0, "loss": loss}
    (task,) = path_tasks("student", "alpha", [3.0], fixed, extras=("kd_gain",))
    (row,) = solve_path(task)
    lam, eps = row["lam_ridge_best"], row["eps_ridge_best"]
    # the student of this label loss without its teacher (solved directly, not through the
    # chi = 0 equivalence the baseline uses), at the optimum and on both sides of it
    direct = [solve_student(3.0, lam_s=lam * f, chi=0.0, loss=loss).eps_g for f in (1, 1.5)]
    assert direct[0] == pytest.approx(eps, abs=1e-9)
    assert direct[1] > eps and solve_student(3.0, lam_s=lam / 1.5, chi=0.0, loss=loss).eps_g > eps
    assert abs(eps - best_direct_ridge(3.0)[1]) > 1e-3  # not the logistic baseline
    assert row["kd_gain"] == pytest.approx(row["eps_g"] - eps, abs=1e-15)
    # the "direct" model of the curves takes the loss too
    direct_row, _, ok = direct_solver({"loss": loss})({"alpha": 3.0, "lam_s": lam}, None)
    assert ok and direct_row["eps_g"] == pytest.approx(eps, abs=1e-9)


def test_threshold_lines_follow_the_parameters():
    spec = PhaseSpec("alpha", "delta", (1.0, 2.0), (0.5, 1.0, 2.0), "student.eps_g")
    lines = threshold_lines(spec)
    assert set(lines) == {"alpha_I", "alpha_S", "alpha_S_teacher"}
    xs, ys = lines["alpha_S_teacher"]
    assert list(ys) == [0.5, 1.0, 2.0] and xs[0] > xs[1] > xs[2]  # noisier: less separable
    assert threshold_lines(PhaseSpec("chi", "lam_s", (0.0, 1.0), (0.1, 1.0), "student.eps_g",
                                     {"alpha": 4.5})) == {}  # fmt: skip


@pytest.mark.parametrize(
    "argv, name",
    [
        (["--x", "alpha", "--y", "alpha"], "y"),
        (["--x", "alpha", "--y", "chi", "--quantity", "bogus"], "quantity"),
        (["--x", "alpha", "--y", "chi", "--x-range", "-1", "2"], "alpha"),
        (["--x", "alpha", "--y", "lam", "--quantity", "student.eps_g"], "y"),
        (["--x", "alpha", "--y", "chi", "--nx", "1"], "nx"),
        (["--x", "alpha", "--y", "chi", "--quantity", "student.foo"], "quantity"),
        (["--x", "alpha", "--y", "rho", "--quantity", "teacher.foo"], "quantity"),
        (["--x", "alpha", "--y", "chi", "--quantity", "teacher.foo"], "quantity"),
    ],
)
def test_bad_phase_input_is_one_line(argv, name, tmp_path, capsys, monkeypatch):
    import replica.sweep

    def must_not_run(*args, **kwargs):
        raise AssertionError("computed before validating the input")

    monkeypatch.setattr(replica.sweep, "solve_path", must_not_run)
    try:
        code = main(["phase", *argv, "--out", str(tmp_path / "x"), "--quiet"])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and name in err[0] and "Traceback" not in err[0]
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("model", ["teacher", "student"])
def test_quantity_columns_are_those_of_the_solved_rows(model):
    from replica.phase import row_columns
    from replica.sweep import path_tasks, solve_path

    fixed = {"lam": 0.1} if model == "teacher" else {"lam_t": 0.1, "lam_s": 1e-3}
    (row,) = solve_path(path_tasks(model, "alpha", [2.0], fixed)[0])
    assert set(row) - {"index", "alpha"} == set(row_columns(model))


def test_another_quantity_reuses_the_finished_grid(tmp_path, capsys, monkeypatch):
    import replica.sweep

    base = ["phase", "--x", "alpha", "--y", "rho", "--nx", "2", "--ny", "2", "--x-range", "1",
            "3", "--y-range", "0.2", "0.3", "--out", str(tmp_path), "--quiet", "--workers", "1"]
    assert main([*base, "--quantity", "teacher.eps_g"]) == 0
    first = (tmp_path / "phase.csv").read_bytes()
    capsys.readouterr()

    def must_not_run(*args, **kwargs):
        raise AssertionError("recomputed a finished grid")

    monkeypatch.setattr(replica.sweep, "solve_path", must_not_run)
    assert main([*base, "--quantity", "teacher.q"]) == 0
    assert "resuming: 4 of 4 points" in capsys.readouterr().err
    assert (tmp_path / "phase.csv").read_bytes() == first
    # an optimum changes the rows: refused, not mixed in
    assert main([*base, "--quantity", "teacher.lam_star"]) == 2


def test_degenerate_or_infinite_axes_are_parameter_errors():
    from replica.params import ParameterError
    from replica.phase import axis_values

    for start, stop in ((2.0, 2.0), (1.0, float("inf")), (float("nan"), 1.0)):
        with pytest.raises(ParameterError, match="alpha"):
            axis_values("alpha", start, stop, 3)
