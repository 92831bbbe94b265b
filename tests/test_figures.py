"""Paper figures: the catalogue, grids and refinement, rendering and sidecars, resume, the demo."""

import csv
import json

import numpy as np
import pytest

from replica.cli import main
from replica.figures import (
    FIGURES,
    FigureSpec,
    Panel,
    Series,
    alpha_grid,
    compute_figure,
    figure_spec,
    make_figure,
    refinement_points,
)
from replica.params import ParameterError
from replica.student import solve_student
from replica.thresholds import thresholds


def test_every_figure_is_registered_and_specified():
    assert sorted(k for k in FIGURES if isinstance(k, int)) == list(range(1, 13))
    layouts = {3: 2, 11: 4}
    for number in (k for k in FIGURES if isinstance(k, int)):
        spec = figure_spec(number, resolution=0.1)
        assert spec.number == number and spec.series and spec.setting
        assert len(spec.panels) == layouts.get(number, 1)
        assert all(s.panel < len(spec.panels) for s in spec.series)
        json.dumps(spec.to_dict())  # the sidecar content serialises
    assert len(figure_spec(5).series[0].values) == 200 + 3  # 200 points plus the thresholds
    assert set(figure_spec(11).thresholds) == {0, 1, 2, 3}
    with pytest.raises(ParameterError, match="figure"):
        figure_spec(13)


def test_paper_settings_of_the_corrected_panels():
    # Fig. 3 bottom at the paper's actual setting, Fig. 4's lam_s, Fig. 11's observables.
    bottom = [s for s in figure_spec(3).series if s.panel == 1]
    assert all(s.fixed["lam_t"] == 0.15 and s.fixed["temperature"] == 2.0 for s in bottom)
    assert not any(s.fixed.get("t2_scaling") for s in bottom)
    kd = next(s for s in figure_spec(4).series if s.name == "kd_bayes_teacher")
    assert kd.fixed["lam_s"] == 0.025
    fig11 = figure_spec(11)
    assert {s.y for s in fig11.series if s.panel == 0} == {"train_loss"}
    assert {s.scale for s in fig11.series if s.panel in (2, 3)} == {0.5}
    assert "1/2" in fig11.caption


@pytest.mark.parametrize("number", sorted(k for k in FIGURES if isinstance(k, int)))
def test_alpha_grids_contain_the_thresholds(number):
    spec = figure_spec(number, resolution=0.1)
    th = thresholds(**spec.threshold_params)
    for s in spec.series:
        if s.vary != "alpha":
            continue
        lo, hi = min(s.values), max(s.values)
        eta = s.fixed.get("eta", 0.5) if s.model != "teacher" else 1.0
        th_s = thresholds(th.rho, th.delta, eta)
        for a in (th_s.alpha_I, th_s.alpha_S, th_s.alpha_S_teacher):
            if lo < a < hi:
                assert a in s.values, (s.name, a)


def test_alpha_grid_adds_exactly_the_thresholds_inside():
    th = thresholds()
    grid = alpha_grid(0.1, 6.0, 10)
    assert len(grid) == 13 and grid == tuple(sorted(grid))
    assert {th.alpha_I, th.alpha_S, th.alpha_S_teacher} <= set(grid)
    assert len(alpha_grid(1.0, 4.0, 4)) == 5  # only alpha_S = 1.80 inside


def test_refinement_converges_to_a_smooth_and_a_cusped_peak():
    for f in (lambda x: 1 - (x - 0.37) ** 2,
              lambda x: 1 - 3 * abs(x - 0.6123)):  # fmt: skip
        x = list(np.linspace(0, 1, 6))
        for _ in range(30):
            new = refinement_points(x, [f(v) for v in x])
            if not new:
                break
            x = sorted(set(x) | set(new))
        assert max(f(v) for v in x) == pytest.approx(1.0, abs=1e-3)
        assert len(x) < 60  # bisection: a handful of points per round
    assert refinement_points([0, 1, 2, 3], [1, 1, 1, 1]) == []  # a plateau is left alone
    assert refinement_points([0, 1, 2, 3], [0, 1, 2, 3]) == []


def test_plotted_double_descent_peaks_are_the_true_peaks(tmp_path):
    # Fig. 5 red and Fig. 11's q at lam_t = 0.1 peak near alpha_I = eta; refined from a coarse
    # grid, the plotted maximum must be within 1e-3 of the true maximum (bounded Brent search:
    # 0.3847226 at alpha = 0.50036, q = 25.0839 at alpha = 0.50095).
    fixed = {"chi": 1.0, "lam_t": 0.1, "lam_s": 1e-5}
    alphas = alpha_grid(0.1, 2.0, 10)
    spec = FigureSpec(5, "test", (Panel("a"), Panel("a", ylog=True)),
                      (Series("eps", "", "student", "alpha", alphas, fixed),
                       Series("q", "", "student", "alpha", alphas, fixed, y="q",
                              panel=1)))  # fmt: skip
    theory, _ = compute_figure(spec, tmp_path)
    assert max(theory["eps"]["eps_g"]) == pytest.approx(0.3847226, abs=1e-3)
    assert max(theory["q"]["q"]) == pytest.approx(25.0839, rel=1e-3)
    again, _ = compute_figure(spec, tmp_path)  # resumed from the journals, rounds included
    assert again["q"]["q"] == theory["q"]["q"]


def test_figure_5_has_thresholds_sidecar_and_resumes_identically(tmp_path):
    paths = make_figure(5, tmp_path, resolution=0.04, refine_rounds=0)
    rows = list(csv.DictReader(open(paths["csv"])))
    th = thresholds()
    marked = {r["series"]: float(r["x"]) for r in rows if r["series"].startswith("threshold:")}
    assert marked == {"threshold:alpha_I": 0.5, "threshold:alpha_S": th.alpha_S,
                      "threshold:alpha_S_teacher": th.alpha_S_teacher}  # fmt: skip
    theory = [r for r in rows if r["series"] in ("unregularised", "teacher_regularised")]
    assert len(theory) == 2 * 11 and all(r["converged"] == "True" for r in theory)
    assert paths["png"].stat().st_size > 20_000
    settings = json.loads(paths["json"].read_text())
    assert settings["setting"]["eta"] == 0.5 and settings["threshold_values"]["alpha_I"] == 0.5
    assert {s["name"]: s["fixed"]["lam_t"] for s in settings["series"]} == {
        "unregularised": 1e-5, "teacher_regularised": 0.1}
    assert "eta = 0.5" in settings["caption_full"]
    first = paths["csv"].read_bytes()
    again = make_figure(5, tmp_path, resolution=0.04, refine_rounds=0)  # resumed
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
    settings = json.loads((tmp_path / "figure2.json").read_text())
    assert settings["simulations"] == {"n": [60], "seeds": [2]}
    assert "N = 60, 2 seeds" in settings["caption_full"]


def test_figure_command_rejects_bad_numbers(capsys, tmp_path):
    assert main(["figure", "13", "--out", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "figure" in err[0]
