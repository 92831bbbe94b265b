"""``--loss`` / ``--teacher-loss`` on the command line: the loss table's rows in every command."""

import csv
import json

import pytest

from replica.cli import main
from replica.student import solve_student
from replica.teacher import solve_teacher


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("loss", ["square", "hinge"])
def test_teacher_loss_flag_reproduces_the_api(capsys, loss):
    code, out, _ = run(capsys, "teacher", "--alpha", "2", "--lam", "0.3", "--loss", loss, "--json")
    assert code == 0
    data = json.loads(out)
    sol = solve_teacher(2.0, lam=0.3, loss=loss)
    for key in ("eps_g", "m", "q", "V", "b", "train_loss", "train_error"):
        assert data[key] == getattr(sol, key)


def test_student_loss_flags_reproduce_the_api(capsys):
    argv = ("student", "--alpha", "2", "--lam-s", "0.1", "--chi", "0.5", "--loss", "hinge",
            "--teacher-loss", "square", "--json")  # fmt: skip
    code, out, _ = run(capsys, *argv)
    assert code == 0
    data = json.loads(out)
    assert data["params"]["loss"] == "hinge" and data["params"]["teacher_loss"] == "square"
    sol = solve_student(2.0, lam_s=0.1, chi=0.5, loss="hinge", teacher_loss="square")
    assert data["student"]["eps_g"] == sol.eps_g
    assert data["teacher"]["q"] == sol.teacher.q


@pytest.mark.parametrize("argv, name", [
    (("teacher", "--loss", "huber"), "--loss"),
    (("student", "--teacher-loss", "huber"), "--teacher-loss"),
    (("teacher", "--loss", "hinge", "--lam", "0"), "lam"),
])  # fmt: skip
def test_bad_loss_is_a_one_line_error(capsys, argv, name):
    with pytest.raises(SystemExit) as exc:
        code = main(list(argv))
        raise SystemExit(code)
    out, err = capsys.readouterr()
    assert exc.value.code == 2
    assert len(err.strip().splitlines()) == 1 and name.lstrip("-") in err


def test_simulate_and_curve_take_the_loss(capsys, tmp_path):
    code, out, _ = run(capsys, "simulate", "teacher", "--alpha", "2", "--loss", "square",
                       "--n", "60", "--seeds", "2", "--json", "--quiet")
    assert code == 0 and json.loads(out)["params"]["loss"] == "square"
    code, _, _ = run(capsys, "curve", "student", "--vary", "alpha", "--start", "1", "--stop", "2",
                     "--num", "3", "--loss", "square", "--teacher-loss", "hinge", "--lam-s",
                     "0.1", "--chi", "0.5", "--out", str(tmp_path), "--workers", "1", "--quiet")
    assert code == 0
    with open(tmp_path / "curve.csv") as fh:
        rows = list(csv.DictReader(fh))
    expected = solve_student(1.5, lam_s=0.1, chi=0.5, loss="square", teacher_loss="hinge")
    assert float(rows[1]["eps_g"]) == pytest.approx(expected.eps_g, rel=1e-8)


def test_phase_diagram_takes_the_losses(capsys, tmp_path):
    code, _, _ = run(capsys, "phase", "--x", "alpha", "--y", "chi", "--x-range", "1", "3",
                     "--nx", "2", "--y-range", "0", "1", "--ny", "2", "--loss", "hinge",
                     "--teacher-loss", "square", "--lam-s", "0.1", "--out", str(tmp_path),
                     "--workers", "1", "--quiet")  # fmt: skip
    assert code == 0
    with open(tmp_path / "phase.csv") as fh:
        rows = list(csv.DictReader(fh))
    row = next(r for r in rows if float(r["alpha"]) == 3.0 and float(r["chi"]) == 0.0)
    expected = solve_student(3.0, lam_s=0.1, chi=0.0, loss="hinge", teacher_loss="square")
    assert float(row["eps_g"]) == pytest.approx(expected.eps_g, rel=1e-8)
