"""The kd-replica command line: outputs, files, exit codes, one-line errors."""

import csv
import json
import subprocess
import sys

import pytest

from replica.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_teacher_json_has_the_documented_keys(capsys):
    code, out, _ = run(capsys, "teacher", "--alpha", "3", "--lam", "0.1", "--json")
    data = json.loads(out)
    assert code == 0
    assert set(data) >= {"eps_g", "m", "q", "V", "b", "train_loss", "train_error", "converged",
                         "iterations", "eps_bo"}
    assert data["converged"] is True
    assert data["eps_g"] == pytest.approx(0.154574, abs=1e-6)


def test_teacher_table_is_readable(capsys):
    code, out, _ = run(capsys, "teacher")
    assert code == 0 and "eps_g" in out and "eps_bo" in out


def test_student_json_structure(capsys):
    code, out, _ = run(capsys, "student", "--alpha", "4.5", "--lam-t", "0.1", "--lam-s", "1e-4",
                       "--chi", "1", "--json")
    data = json.loads(out)
    assert code == 0
    assert set(data) == {"params", "teacher", "student", "eps_bo_teacher", "eps_bo_student"}
    for key in ("eps_g", "m", "q", "S", "V", "b", "train_loss", "train_error", "mse_outputs",
                "mse_preactivations", "converged", "iterations"):
        assert key in data["student"]
    assert data["params"]["teacher"] == "ridge"


def test_student_bayes_teacher_and_options(capsys):
    code, out, _ = run(capsys, "student", "--teacher", "bayes", "--temperature", "2",
                       "--t2-scaling", "--smoothing", "0.1", "--json")
    data = json.loads(out)
    assert code == 0 and data["params"]["t2_scaling"] is True
    assert data["teacher"]["V"] == 0.0


def test_curve_teacher_writes_csv_and_png(tmp_path, capsys):
    code, out, _ = run(capsys, "curve", "teacher", "--vary", "alpha", "--start", "0.5", "--stop",
                       "10", "--num", "12", "--out", str(tmp_path), "--quiet")
    assert code == 0
    rows = list(csv.DictReader(open(tmp_path / "curve.csv")))
    assert len(rows) == 12 and float(rows[0]["alpha"]) == 0.5
    assert all(row["converged"] == "True" for row in rows)
    assert float(rows[-1]["eps_g"]) > float(rows[-1]["eps_bo"])
    assert (tmp_path / "curve.png").stat().st_size > 10_000


def test_curve_student_along_chi(tmp_path, capsys):
    code, _, _ = run(capsys, "curve", "student", "--vary", "chi", "--start", "0", "--stop", "1",
                     "--num", "5", "--lam-s", "0.2", "--out", str(tmp_path), "--quiet")
    rows = list(csv.DictReader(open(tmp_path / "curve.csv")))
    assert code == 0 and [float(r["chi"]) for r in rows] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert len({r["teacher_eps_g"] for r in rows}) == 1  # one teacher for the whole curve


@pytest.mark.parametrize(
    "argv, name",
    [
        (["teacher", "--rho", "1.5"], "rho"),
        (["teacher", "--rho", "0"], "rho"),
        (["teacher", "--alpha", "0"], "alpha"),
        (["teacher", "--alpha", "abc"], "alpha"),
        (["teacher", "--delta", "-1"], "delta"),
        (["teacher", "--lam", "-0.1"], "lam"),
        (["teacher", "--smoothing", "0.5"], "smoothing"),
        (["student", "--eta", "0"], "eta"),
        (["student", "--chi", "2"], "chi"),
        (["student", "--temperature", "0"], "temperature"),
        (["student", "--teacher", "oracle"], "teacher"),
        (["curve", "teacher", "--vary", "alpha", "--start", "-1", "--stop", "2", "--num", "3",
          "--out", "x"], "alpha"),
    ],
)
def test_bad_input_is_one_line_with_exit_code_2(argv, name, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    _, err = capsys.readouterr()
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and name in lines[0] and "Traceback" not in err


def test_console_script_errors_without_traceback():
    proc = subprocess.run([sys.executable, "-m", "replica", "teacher", "--rho", "nan"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "rho" in proc.stderr


def test_non_convergence_exits_with_code_1(capsys, monkeypatch):
    import replica.teacher

    original = replica.teacher.solve_teacher

    def starved(*args, **kwargs):
        return original(*args, **{**kwargs, "max_iter": 2})

    monkeypatch.setattr(replica.teacher, "solve_teacher", starved)
    code, out, err = run(capsys, "teacher", "--json")
    assert code == 1 and json.loads(out)["converged"] is False
    assert "did not converge" in err
