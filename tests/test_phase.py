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
    ],
)
def test_bad_phase_input_is_one_line(argv, name, tmp_path, capsys):
    try:
        code = main(["phase", *argv, "--out", str(tmp_path / "x"), "--quiet"])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and name in err[0] and "Traceback" not in err[0]
