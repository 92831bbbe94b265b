"""Paper figures: specifications, rendering, resume, the demo, and Fig. 5's double descent."""

import csv

import pytest

from replica.cli import main
from replica.figures import FIGURES, figure_spec, make_figure
from replica.params import ParameterError
from replica.student import solve_student
from replica.thresholds import thresholds


def test_every_figure_is_specified():
    layouts = {3: 2, 11: 4}
    for number in FIGURES:
        spec = figure_spec(number, resolution=0.1)
        assert spec.number == number and spec.series
        assert len(spec.panels) == layouts.get(number, 1)
        assert all(s.panel < len(spec.panels) for s in spec.series)
    assert len(figure_spec(5).series[0].values) == 200  # Fig. 5 at full resolution
    assert set(figure_spec(11).thresholds) == {0, 1, 2, 3}
    with pytest.raises(ParameterError, match="figure"):
        figure_spec(13)


@pytest.mark.slow
def test_figure_5_has_thresholds_and_resumes_identically(tmp_path):
    paths = make_figure(5, tmp_path, resolution=0.06)
    rows = list(csv.DictReader(open(paths["csv"])))
    th = thresholds()
    marked = {r["series"]: float(r["x"]) for r in rows if r["series"].startswith("threshold:")}
    assert marked == {"threshold:alpha_I": 0.5, "threshold:alpha_S": th.alpha_S,
                      "threshold:alpha_S_teacher": th.alpha_S_teacher}  # fmt: skip
    theory = [r for r in rows if r["series"] in ("unregularised", "teacher_regularised")]
    assert len(theory) == 2 * 12 and all(r["converged"] == "True" for r in theory)
    assert paths["png"].stat().st_size > 20_000
    first = paths["csv"].read_bytes()
    again = make_figure(5, tmp_path, resolution=0.06)  # everything resumed from the journals
    assert again["csv"].read_bytes() == first


def test_double_descent_peaks_sit_at_the_thresholds():
    # Fig. 5: unregularised teacher and student peak at the student separability threshold,
    # a regularised teacher moves the peak to the interpolation threshold alpha_I = eta.
    th = thresholds()

    def eps(alpha, lam_t):
        return solve_student(alpha, lam_t=lam_t, lam_s=1e-5, chi=1.0).eps_g

    peak = eps(th.alpha_S - 0.03, 1e-5)
    assert peak > eps(th.alpha_S - 0.4, 1e-5) and peak > eps(th.alpha_S + 0.2, 1e-5)
    peak = eps(0.5, 0.1)
    assert peak > eps(0.4, 0.1) and peak > eps(0.6, 0.1) and peak > 0.3


def test_demo_is_figure_2_with_simulations(tmp_path, capsys):
    code = main(["demo", "--out", str(tmp_path), "--n", "60", "--seeds", "2",
                 "--resolution", "0.1", "--quiet", "--workers", "2"])  # fmt: skip
    assert code == 0
    sims = list(csv.DictReader(open(tmp_path / "figure2_simulations.csv")))
    series = {r["series"] for r in sims}
    assert series == {"unregularised", "kd_lam_t_1e-2", "kd_lam_t_1e-1"}
    assert {r["quantity"] for r in sims} == {"eps_g", "teacher_eps_g"}
    assert all(r["n"] == "60" and float(r["sem"]) > 0 for r in sims)
    assert (tmp_path / "figure2.png").stat().st_size > 20_000


def test_figure_command_rejects_bad_numbers(capsys, tmp_path):
    assert main(["figure", "13", "--out", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "figure" in err[0]
