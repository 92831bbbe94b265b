"""Every curve of ``kd-replica figure N`` against the paper's own vertices.

The paper's figures are vector graphics; ``tests/data/paper_figures/extract.py`` read the
vertices of every curve from the PDF's drawing commands, calibrated each axis on its tick
labels, and named the curves after the series of :mod:`replica.figures` by colour and dash
(``figureN.json``: page, panel, calibration and residual, legend, vertices). Here each curve is
solved with the figure's own settings (:func:`replica.figures.curve_at`) at the x of >= 5 of
its vertices, spread along the curve, and compared with the paper's y:

- errors (``eps_g``, the teachers' errors, the Bayes-optimal and reference lines): absolute
  tolerance ``2e-4``;
- norms, losses and MSEs (Fig. 11): relative tolerance 1%, plus twice the panel's y reading
  precision (calibration residual plus half a grid step: ~6e-5 on the linear loss axis, which
  dominates for losses ~1e-3).

The x of a vertex is read to ``dx``, the x calibration residual plus half the step of the
coordinate grid gnuplot wrote on (0.039 pt; together ~1.5e-3 on a 0-10 alpha axis); so
the tolerance at a vertex grows by ``|dy/dx| dx`` (the steeper one-sided slope of the paper's
own vertices, so a kink is not averaged away), and a
vertex is usable only where that reading term is smaller than the tolerance itself:
near-vertical stretches (a double descent's flanks) test the x calibration, not the theory.
Vertices on the frame are gnuplot's clipping points, not data, and are never used (except
the y of horizontal reference lines).

Paper-side deviations are :data:`EXCLUDED`: named x ranges of a curve where the paper's own
curve is off (measured deviation recorded there); they are checked to still deviate, so an
exclusion that stops being needed fails loudly.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from replica.figures import curve_at, figure_spec

DATA = Path(__file__).parent / "data" / "paper_figures"
ERROR_TOL = 2e-4
RELATIVE_TOL = 0.01
VERTICES = 6  # per curve (>= 5)

# Curves whose y is not an error: relative tolerance.
RELATIVE = ("train_loss", "q_", "mse_")


def load_paper_figure(number: int) -> dict:
    """The extracted record of paper figure ``number``."""
    return json.loads((DATA / f"figure{number}.json").read_text())


def paper_curves(number: int) -> dict[str, dict]:
    """``name -> {"x", "y", "panel", "x_residual", "y_residual", "hline"}`` of a figure's named
    curves, components merged, clipping vertices dropped."""
    record = load_paper_figure(number)
    out: dict[str, dict] = {}
    for k, panel in enumerate(record["panels"]):
        xcal, ycal = panel["x_axis"], panel["y_axis"]
        for curve in panel["curves"]:
            name = curve["name"]
            if name is None:
                continue
            entry = out.setdefault(name, {"x": [], "y": [], "panel": k, "log_x":
                                          xcal["scale"] == "log", "log_y": ycal["scale"] == "log",
                                          "x_residual": xcal["reading"],
                                          "y_residual": ycal["reading"]})  # fmt: skip
            vertices = curve["vertices"]
            hline = len(vertices) == 2 and vertices[0][1] == vertices[1][1]
            entry["hline"] = hline
            for x, y, on_frame in vertices:
                if hline or not on_frame:
                    entry["x"].append(x)
                    entry["y"].append(y)
        for marker in panel["markers"]:
            if "name" in marker:  # Fig. 9's theory dots
                entry = out.setdefault(marker["name"], {"x": [], "y": [], "panel": k,
                                       "log_x": False, "log_y": False,
                                       "x_residual": xcal["reading"],
                                       "y_residual": ycal["reading"], "hline": False})
                entry["x"].append(marker["x"])
                entry["y"].append(marker["y"])
    for entry in out.values():  # sorted; a vertex shared by two components once
        x, where = np.unique(np.asarray(entry["x"]), return_inverse=True)
        y = np.zeros(x.size)
        np.add.at(y, where, entry["y"])
        entry["x"], entry["y"] = x, y / np.bincount(where)
    return out


def tolerance(name: str, y: np.ndarray, y_residual: float) -> np.ndarray:
    """Allowed ``|ours - paper|`` at the paper's values ``y``."""
    if any(name.startswith(prefix) for prefix in RELATIVE):
        return RELATIVE_TOL * np.abs(y) + 2.0 * y_residual
    return np.full_like(y, ERROR_TOL)


def x_reading(entry: dict) -> np.ndarray:
    """``|dy/dx| dx``: how far y moves within the x reading precision, at every vertex."""
    x, y = entry["x"], entry["y"]
    if entry["hline"] or x.size < 3:
        return np.zeros(x.size)
    u = np.log10(x) if entry["log_x"] else x
    v = np.log10(y) if entry["log_y"] else y
    slope = np.abs(np.diff(v) / np.diff(u))
    steeper = np.maximum(np.r_[slope[0], slope], np.r_[slope, slope[-1]])
    sensitivity = steeper * entry["x_residual"]
    if entry["log_y"]:  # d(log10 y) -> dy
        sensitivity = sensitivity * np.log(10.0) * np.abs(y)
    return sensitivity


def usable(entry: dict, name: str) -> np.ndarray:
    """Vertices whose y does not hinge on the reading of x (see the module docstring)."""
    return x_reading(entry) < tolerance(name, entry["y"], entry["y_residual"])


# (figure, curve) -> (x range, x of the largest deviation, the deviation measured there at
# every vertex of the range, why). Checked below to be real: at that x the deviation still
# exceeds the tolerance, and is the one recorded (to 10%).
ALPHA_S, ALPHA_S_TEACHER = 1.8035591, 4.8490377  # rho = 0.2 (replica.thresholds)
ALPHA_S_05, ALPHA_S_TEACHER_05 = 1.3664419, 3.7000335  # rho = 0.5
EXCLUDED: dict[tuple[int, str], tuple[tuple[float, float], float, float, str]] = {
    (7, "kd_lam_t_1e-5"): (
        (0.0, ALPHA_S), 0.5511, 4.09e-3,
        "paper-side: below alpha_S the paper's curve is up to 4.1e-3 below ours, while the "
        "paper's own Fig. 5 blue curve (the same setting: lam_t = lam_s = 1e-5, chi = 1) "
        "agrees with ours to 5e-5 on [0.3, 1.75]; above alpha_S it agrees to 1.2e-4"),
    (12, "lam_t_1e-05"): (
        (0.0, ALPHA_S_05), 0.5005, 3.25e-3,
        "paper-side: the lam_t = 1e-5 student below alpha_S (rho = 0.5), the regime of Fig. 7's "
        "deviation; agreement to 1.2e-4 above it"),
    (12, "lam_t_1e-05:teacher_eps_g"): (
        (2.7, ALPHA_S_TEACHER_05), 3.3005, 3.95e-4,
        "the unregularised teacher just below its separability threshold alpha~_S = 3.700 "
        "(rho = 0.5): up to 4.0e-4, the regime of Fig. 6's lam = 1e-5 deviation"),
    (6, "lam_1e-05"): (
        (3.5, ALPHA_S_TEACHER), 4.7004, 4.94e-4,
        "the unregularised teacher just below alpha~_S = 4.849: up to 4.9e-4 (lam = 1e-3 stays "
        "within 1.4e-4, lam >= 1e-2 within 2e-5); ours is unchanged (to 1e-15) when the "
        "quadrature nodes are doubled or the fixed-point tolerance tightened"),
    (11, "train_loss_lam_t_1e-05"): (
        (1.45, ALPHA_S), 1.6001, 3.49e-2,
        "unresolved: the KD training loss of the lam_t = 1e-5 student just below alpha_S, "
        "where it rises steeply from 0.004 to 0.12, is 2.5e-4 (3.5%) above the paper's at "
        "alpha = 1.60, just beyond what the x reading explains; 1.50 and 1.70 are within it, q "
        "and eps_g agree there, and the loss agrees to 6e-5 for alpha < 1.45"),
}


def select(entry: dict, name: str, exclude=None, k: int = VERTICES) -> np.ndarray:
    """Indices of ``k`` usable vertices spread along the curve (its maximum among them)."""
    ok = usable(entry, name)
    if exclude is not None:
        lo, hi = exclude
        ok &= ~((entry["x"] >= lo) & (entry["x"] <= hi))
    idx = np.flatnonzero(ok)
    if entry["hline"]:
        return idx[:1]
    chosen = set(idx[np.linspace(0, idx.size - 1, min(k, idx.size)).round().astype(int)])
    chosen.add(int(idx[np.argmax(entry["y"][idx])]))
    return np.array(sorted(chosen))


def compare(number: int, name: str, entry: dict, idx: np.ndarray) -> tuple[float, float, float]:
    """``(max |ours - paper| / tolerance, max |ours - paper|, its x)`` at vertices ``idx``."""
    spec = figure_spec(number)
    xs = entry["x"][idx]
    ys = entry["y"][idx]
    if entry["hline"]:
        xs = np.array([0.5 * (xs[0] + entry["x"][-1])])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = curve_at(spec, name, xs)
    dev = np.abs(ours - ys)
    allowed = tolerance(name, ys, entry["y_residual"])
    if not entry["hline"]:
        allowed = allowed + x_reading(entry)[idx]
    ratio = dev / allowed
    worst = int(np.nanargmax(ratio)) if np.isfinite(ratio).any() else 0
    return float(np.max(ratio)), float(dev[worst]), float(xs[worst])


SLOW = (11,)  # > 3 s on a quiet machine


def _figure_cases():
    for number in range(1, 13):
        marks = [pytest.mark.slow] if number in SLOW else []
        yield pytest.param(number, marks=marks, id=f"figure{number}")


@pytest.mark.parametrize("number", list(_figure_cases()))
def test_figure_matches_the_paper(number):
    curves = paper_curves(number)
    spec = figure_spec(number, resolution=0.1)
    expected = {s.name for s in spec.series} | {f"line:{ln.name}" for ln in spec.lines()}
    expected |= {f"{s.name}:{c}" for s in spec.series for c, *_ in s.extra}
    assert set(curves) <= expected, set(curves) - expected  # every paper curve is ours
    failures = []
    for name, entry in curves.items():
        exclusion = EXCLUDED.get((number, name))
        idx = select(entry, name, exclusion[0] if exclusion else None)
        assert idx.size >= (1 if entry["hline"] else 5), (name, idx.size)
        ratio, dev, x = compare(number, name, entry, idx)
        if not ratio <= 1.0:
            failures.append(f"{name}: |ours - paper| = {dev:.2e} at x = {x:g}")
    assert not failures, failures


@pytest.mark.parametrize("case", sorted(EXCLUDED), ids=lambda c: f"figure{c[0]}-{c[1]}")
def test_paper_side_deviations_are_real(case):
    number, name = case
    _, x, recorded, _ = EXCLUDED[case]
    entry = paper_curves(number)[name]
    i = int(np.argmin(np.abs(entry["x"] - x)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (ours,) = curve_at(figure_spec(number), name, entry["x"][i : i + 1])
    dev = abs(ours - entry["y"][i])
    relative = any(name.startswith(prefix) for prefix in RELATIVE)
    measured = dev / abs(entry["y"][i]) if relative else dev
    allowed = tolerance(name, entry["y"][i : i + 1], entry["y_residual"])[0] + x_reading(entry)[i]
    assert dev > allowed
    assert measured == pytest.approx(recorded, rel=0.1)


def test_figure_9_first_point_is_a_paper_side_deviation():
    # Fig. 9 starts at eps = 0.01, on the frame (so the comparison above drops it). There the
    # paper's alpha = 1.5 line is 6.2e-3 below ours, while its alpha = 4.5 and 7.5 lines, and
    # its alpha = 1.5 line from eps = 0.02 on, agree with ours to 5e-5.
    record = load_paper_figure(9)["panels"][0]
    first = {c["name"]: c["vertices"][0] for c in record["curves"]
             if c["name"] and c["component"] == 0}  # fmt: skip
    spec = figure_spec(9)
    deviations = {}
    for name, (x, y, on_frame) in first.items():
        assert on_frame and x == pytest.approx(0.01, abs=1e-5)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            deviations[name] = abs(curve_at(spec, name, [x])[0] - y)
    assert deviations["labels_alpha_1.5"] == pytest.approx(6.2e-3, rel=0.05)
    assert deviations["labels_alpha_4.5"] < ERROR_TOL and deviations["labels_alpha_7.5"] < ERROR_TOL
