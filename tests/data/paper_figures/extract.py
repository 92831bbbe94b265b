"""Read the curves of the figures of Saglietti & Zdeborova (2021) from the PDF's vector drawings.

Usage::

    python tests/data/paper_figures/extract.py PATH/TO/saglietti-zdeborova-2021.pdf [OUTDIR]

Writes ``figureN.json`` (and ``figureN.csv``, one row per vertex) into ``OUTDIR`` (default: the
directory of this script). These files are the test data of ``tests/test_paper_figures.py``;
the PDF itself is never committed and the tests never read it.

Requires PyMuPDF (``pip install pymupdf``), a development-only dependency: the package and its
tests do not import it.

How the numbers are obtained
----------------------------
The figures are gnuplot vector graphics. On each figure page:

1. **Panels** are the stroked rectangles (``qu`` items) of the frame width; their corners give
   the plotting area in PDF points.
2. **Axis calibration**: the tick marks are short black axis-aligned segments with one end on
   the frame; the major ticks (the longest ones) are matched to the nearest numeric tick label
   (a text word outside the frame, ``1e-5``-style labels included). A least-squares line
   ``value = a + b * position`` (``log10(value)`` on log axes) through the matched pairs is the
   calibration; its largest residual is stored (``residual``, in axis units / decades), with
   the coordinate grid gnuplot wrote on (``quantum_pt``, seen in the alternating tick spacings)
   and the resulting reading precision of any vertex (``reading``: the residual of the
   calibration plus half a grid step of the vertex, in axis units / decades).
3. **Curves** are the stroked line segments inside the frame, grouped by style (colour, dash
   pattern, width) and chained into connected polylines. Components of fewer than three
   vertices that are short and horizontal are legend samples and are dropped; error bars
   (vertical segments with caps) are not chained into curves because they are components of
   at most three short segments. Each vertex is mapped through the calibration. Vertices on
   the frame (``on_frame``) are where gnuplot clipped the line, not data points.
4. **Markers** (simulation points, Fig. 9's dots) are the small closed shapes; their centres
   are stored in data units with their colour.
5. **Identification**: :data:`CURVES` names the curves of each panel by their style (hex
   colour, dashed or not); the names are those of the series of ``replica.figures``.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from collections import defaultdict
from itertools import pairwise
from pathlib import Path

import pymupdf

# page -> figure
PAGES = {6: 1, 10: 2, 12: 3, 13: 4, 15: 5, 23: 6, 33: 7, 34: 8, 35: 9, 36: 10, 37: 11, 38: 12}

# Identification of the curves, from the legends (each panel's ``legend`` in the JSON pairs a
# style with its legend text) and the captions: figure -> panel -> (hex colour, dashed, width or
# None, component or None) -> name. ``name`` is "SERIES" or "SERIES:COLUMN" of a
# replica.figures series, or "line:NAME" of one of its reference lines. A width separates two
# styles of one colour; a component index selects one polyline of a style with several.
K, GREY, RED, BLUE, VIOLET = "#000000", "#bfbfbf", "#ff0000", "#0000ff", "#ee82ee"
CURVES: dict[int, dict[int, dict[tuple, str]]] = {
    1: {0: {(K, False, None, None): "line:bo", (RED, False, None, None): "optimal_lambda"}},
    2: {0: {(K, False, None, None): "line:bo", (K, True, None, None): "line:bo_teacher",
            (GREY, False, None, None): "unregularised",
            (BLUE, False, None, None): "kd_lam_t_1e-2",
            (BLUE, True, None, None): "kd_lam_t_1e-2:teacher_eps_g",
            (RED, False, None, None): "kd_lam_t_1e-1",
            (RED, True, None, None): "kd_lam_t_1e-1:teacher_eps_g"}},
    3: {0: {(K, False, None, 0): "line:bo_alpha_1.5", (K, False, None, 1): "line:bo_alpha_4.5",
            (RED, False, None, None): "kd_alpha_1.5", (BLUE, False, None, None): "kd_alpha_4.5",
            (RED, True, 0.439, None): "direct_alpha_1.5",
            (BLUE, True, 0.439, None): "direct_alpha_4.5",
            (RED, True, 0.293, None): "line:best_direct_alpha_1.5",
            (BLUE, True, 0.293, None): "line:best_direct_alpha_4.5"},
        1: {(K, False, None, None): "line:bo", (RED, True, None, None): "line:best_direct",
            ("#ffd700", False, None, None): "chi_lam_s_0.1",
            ("#ffa100", False, None, None): "chi_lam_s_0.2",
            (RED, False, None, None): "chi_lam_s_0.5"}},
    4: {0: {(K, False, None, None): "line:bo", (GREY, False, None, None): "unregularised",
            (RED, False, None, None): "optimal_l2", (BLUE, False, None, None): "kd_bayes_teacher"}},
    5: {0: {(K, False, None, None): "line:bo", (BLUE, False, None, None): "unregularised",
            (RED, False, None, None): "teacher_regularised"}},
    6: {0: {(K, True, None, None): "line:bo", (K, False, None, None): "lam_1e-05",
            ("#4f2bfa", False, None, None): "lam_0.001",
            ("#9f57f4", False, None, None): "lam_0.01",
            (VIOLET, False, None, None): "lam_0.1", (RED, False, None, None): "lam_1"}},
    7: {0: {(K, True, None, None): "line:bo", (K, False, None, None): "kd_lam_t_1e-5",
            ("#ed82ed", False, None, None): "kd_lam_t_0.1",
            (VIOLET, True, None, None): "direct_lam_0.1",
            (RED, False, None, None): "kd_lam_t_1", (RED, True, None, None): "direct_lam_1"}},
    8: {0: {(K, True, None, None): "line:bo", (RED, False, None, None): "chi_0.2",
            ("#ffa0a0", False, None, None): "chi_0.6", ("#d090ef", False, None, None): "chi_0.8",
            (BLUE, False, None, None): "chi_1"}},
    9: {0: {(RED, False, None, None): "labels_alpha_1.5",
            ("#800080", False, None, None): "labels_alpha_4.5",
            (BLUE, False, None, None): "labels_alpha_7.5"}},
    10: {0: {(K, True, None, None): "line:bo", (RED, False, None, None): "T_1",
             ("#f54e8f", False, None, None): "T_2", ("#8f4ef5", False, None, None): "T_5",
             (BLUE, False, None, None): "T_10"}},
    11: {k: {(K, False, None, None): f"{col}_lam_t_1e-05",
             (VIOLET, False, None, None): f"{col}_lam_t_0.1",
             (RED, False, None, None): f"{col}_lam_t_1"}
         for k, col in enumerate(("train_loss", "q", "mse_outputs", "mse_preactivations"))},
    12: {0: {(K, True, None, None): "line:bo", (GREY, True, None, None): "line:bo_teacher",
             (BLUE, False, None, None): "lam_t_1e-05", (VIOLET, False, None, None): "lam_t_0.01",
             (RED, False, None, None): "lam_t_1",
             (BLUE, True, None, None): "lam_t_1e-05:teacher_eps_g",
             (VIOLET, True, None, None): "lam_t_0.01:teacher_eps_g",
             (RED, True, None, None): "lam_t_1:teacher_eps_g"}},
}  # fmt: skip
# Fig. 9's black dots (open markers): the distilled students, split by alpha on eps_g.
FIG9_DOTS = ((0.2, "kd_alpha_1.5"), (0.176, "kd_alpha_4.5"), (0.0, "kd_alpha_7.5"))


def curve_name(figure: int, panel: int, curve: dict) -> str | None:
    """The name :data:`CURVES` gives an extracted curve (None: not a theory curve)."""
    for (colour, dashed, width, component), name in CURVES.get(figure, {}).get(panel,
                                                                               {}).items():
        if colour == curve["colour"] and dashed == curve["dashed"] \
                and (width is None or abs(width - curve["width"]) < 1e-3) \
                and (component is None or component == curve["component"]):  # fmt: skip
            return name
    return None


def _hex(colour) -> str:
    if colour is None:
        return "none"
    return "#" + "".join(f"{round(255 * c):02x}" for c in colour)


def _parse_number(text: str) -> float | None:
    text = text.replace("\u2212", "-").strip()
    try:
        return float(text)
    except ValueError:
        return None


def _segments(drawing) -> list[tuple[tuple, tuple]]:
    out = []
    for item in drawing["items"]:
        if item[0] == "l":
            out.append(((item[1].x, item[1].y), (item[2].x, item[2].y)))
    return out


def find_panels(drawings) -> list[pymupdf.Rect]:
    """Frames: the widest-stroked rectangles drawn with quad items."""
    frames = [d for d in drawings if d["type"] == "s" and d["items"]
              and all(i[0] == "qu" for i in d["items"]) and d["rect"].width > 80]  # fmt: skip
    if not frames:
        return []
    width = max(d["width"] for d in frames)
    rects = []
    for d in frames:
        if abs(d["width"] - width) > 1e-3:
            continue
        r = d["rect"]
        if not any(abs(r.x0 - s.x0) < 0.5 and abs(r.y0 - s.y0) < 0.5 for s in rects):
            rects.append(r)
    return sorted(rects, key=lambda r: (round(r.y0 / 20), r.x0))


def _ticks(drawings, frame: pymupdf.Rect, axis: str) -> list[tuple[float, float]]:
    """(position, length) of the black tick marks on the left (y) or bottom (x) edge."""
    eps = 0.05
    ticks = []
    for d in drawings:
        if d["type"] != "s" or d["color"] != (0.0, 0.0, 0.0):
            continue
        for (x0, y0), (x1, y1) in _segments(d):
            if axis == "y" and abs(y0 - y1) < 1e-3 and 0 < abs(x1 - x0) < 12:
                if min(abs(x0 - frame.x0), abs(x1 - frame.x0)) < eps:
                    ticks.append((y0, abs(x1 - x0)))
            if axis == "x" and abs(x0 - x1) < 1e-3 and 0 < abs(y1 - y0) < 12:
                if min(abs(y0 - frame.y1), abs(y1 - frame.y1)) < eps:
                    ticks.append((x0, abs(y1 - y0)))
    return ticks


def _labels(words, frame: pymupdf.Rect, axis: str) -> list[tuple[float, float]]:
    """(centre position, value) of the numeric tick labels of an axis."""
    out = []
    for x0, y0, x1, y1, text, *_ in words:
        value = _parse_number(text)
        if value is None:
            continue
        if axis == "y" and x1 <= frame.x0 + 0.5 and x1 > frame.x0 - 35 \
                and frame.y0 - 6 < (y0 + y1) / 2 < frame.y1 + 6:  # fmt: skip
            out.append(((y0 + y1) / 2, value))
        if axis == "x" and y0 >= frame.y1 - 0.5 and y0 < frame.y1 + 14 \
                and frame.x0 - 12 < (x0 + x1) / 2 < frame.x1 + 12:  # fmt: skip
            out.append(((x0 + x1) / 2, value))
    return out


def calibrate(drawings, words, frame: pymupdf.Rect, axis: str) -> dict:
    """Least-squares map from PDF coordinate to data value for one axis."""
    ticks = _ticks(drawings, frame, axis)
    longest = max(length for _, length in ticks)
    major = sorted({round(p, 3) for p, length in ticks if length > 0.8 * longest})
    labels = _labels(words, frame, axis)
    pairs = []
    for centre, value in labels:
        pos = min(major, key=lambda p: abs(p - centre))
        if abs(pos - centre) < 3.0:
            pairs.append((pos, value))
    values = [v for _, v in pairs]
    log = all(v > 0 for v in values) and len(values) > 2 and \
        max(values) / min(values) > 50  # fmt: skip
    pos = [p for p, _ in pairs]
    val = [math.log10(v) if log else v for v in values]
    n = len(pos)
    mp, mv = sum(pos) / n, sum(val) / n
    b = sum((p - mp) * (v - mv) for p, v in zip(pos, val, strict=True)) / \
        sum((p - mp) ** 2 for p in pos)  # fmt: skip
    a = mv - b * mp
    residual = max(abs(a + b * p - v) for p, v in zip(pos, val, strict=True))
    # gnuplot writes coordinates on a grid (0.039 pt in most figures): the alternating tick
    # spacings reveal its step; half a step is how far a vertex may sit from its true place,
    # on top of the calibration's own error.
    spacing = [round(q - p, 4) for p, q in pairwise(sorted(pos))]
    steps = [abs(round(t - s, 4)) for s, t in pairwise(spacing) if abs(t - s) > 1e-3]
    quantum = min(steps) if steps else 0.0
    reading = residual + 0.5 * quantum * abs(b)
    return {"scale": "log" if log else "linear", "a": a, "b": b, "ticks": pairs,
            "residual": residual, "quantum_pt": quantum, "reading": reading}  # fmt: skip


def to_data(cal: dict, position: float) -> float:
    """Data value at a PDF coordinate (8 significant digits: far below the calibration error)."""
    value = cal["a"] + cal["b"] * position
    value = 10.0**value if cal["scale"] == "log" else value
    return float(f"{value:.8g}")


def _components(segments: list) -> list[list[tuple]]:
    """Connected polylines of a set of segments (endpoints joined within 1e-3 pt)."""
    parent: dict = {}

    def key(p):
        return (round(p[0], 2), round(p[1], 2))

    def find(k):
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for a, b in segments:
        ka, kb = key(a), key(b)
        parent.setdefault(ka, ka)
        parent.setdefault(kb, kb)
        parent[find(ka)] = find(kb)
    groups = defaultdict(set)
    for a, b in segments:
        groups[find(key(a))].update((key(a), key(b)))
    return [sorted(g) for g in groups.values()]


def _is_marker(d) -> bool:
    r = d["rect"]
    return r.width < 4.0 and r.height < 4.0 and any(i[0] in ("c", "qu", "re") for i in d["items"]) \
        or (d["type"] == "f" and r.width < 4.0 and r.height < 4.0)  # fmt: skip


def _legend_text(words, x_sample: float, y_sample: float) -> str:
    """The words ending within 15 pt left of a legend sample, on its line."""
    line = [w for w in words if abs((w[1] + w[3]) / 2 - y_sample) < 3.0
            and x_sample - 60 < w[2] <= x_sample + 0.5]  # fmt: skip
    return " ".join(w[4] for w in sorted(line, key=lambda w: w[0]))


def extract_panel(drawings, words, frame: pymupdf.Rect) -> dict:
    xcal = calibrate(drawings, words, frame, "x")
    ycal = calibrate(drawings, words, frame, "y")
    inside = frame + (-1.5, -0.3, 1.5, 0.3)  # reference lines overshoot the frame by ~1.4 pt
    styles = defaultdict(list)
    markers = []
    for d in drawings:
        r = d["rect"]  # may be degenerate (a horizontal line): compare corners
        if not (inside.x0 <= r.x0 and r.x1 <= inside.x1 and inside.y0 <= r.y0
                and r.y1 <= inside.y1):
            continue
        if _is_marker(d):
            c = d["rect"].tl + (d["rect"].br - d["rect"].tl) * 0.5
            colour = d.get("fill") if d["type"] in ("f", "fs") else d["color"]
            markers.append({"colour": _hex(colour), "filled": d["type"] in ("f", "fs"),
                            "x": to_data(xcal, c.x), "y": to_data(ycal, c.y)})  # fmt: skip
            continue
        if d["type"] != "s":
            continue
        segs = _segments(d)
        if not segs:
            continue
        dashed = d["dashes"] not in (None, "[] 0")
        styles[(_hex(d["color"]), dashed, round(d["width"], 3), d["dashes"])] += segs
    curves, legend = [], []
    for (colour, dashed, width, dashes), segs in styles.items():
        comps = []
        for comp in _components(segs):
            xs = [p[0] for p in comp]
            ys = [p[1] for p in comp]
            span_x, span_y = max(xs) - min(xs), max(ys) - min(ys)
            if len(comp) <= 2 and span_y < 1e-2 and span_x < 0.5 * frame.width:
                if span_x > 10:  # legend sample: the text on its left names it
                    text = _legend_text(words, min(xs), ys[0])
                    if text:
                        legend.append({"colour": colour, "dashed": dashed, "width": width,
                                       "text": text})  # fmt: skip
                continue  # legend sample or error-bar cap
            if len(comp) <= 6 and span_x < 4.0:
                continue  # error bar, tick mark
            comps.append(comp)
        comps.sort(key=lambda c: (min(p[0] for p in c), min(p[1] for p in c)))
        for k, comp in enumerate(comps):
            vertices = []
            for px, py in sorted(comp):
                on_frame = min(abs(px - frame.x0), abs(px - frame.x1), abs(py - frame.y0),
                               abs(py - frame.y1)) < 0.02  # fmt: skip
                vertices.append([to_data(xcal, px), to_data(ycal, py), on_frame])
            curves.append({"colour": colour, "dashed": dashed, "dashes": dashes, "width": width,
                           "component": k, "vertices": vertices})  # fmt: skip
    return {"frame": [frame.x0, frame.y0, frame.x1, frame.y1], "x_axis": xcal, "y_axis": ycal,
            "legend": legend, "curves": curves, "markers": markers}  # fmt: skip


def extract(pdf: str | Path, out: str | Path) -> list[Path]:
    doc = pymupdf.open(str(pdf))
    out = Path(out)
    written = []
    for page_number, figure in PAGES.items():
        page = doc[page_number - 1]
        drawings = page.get_drawings()
        words = page.get_text("words")
        panels = [extract_panel(drawings, words, frame) for frame in find_panels(drawings)]
        for k, panel in enumerate(panels):
            for curve in panel["curves"]:
                curve["name"] = curve_name(figure, k, curve)
            if figure == 9:
                for marker in panel["markers"]:
                    if marker["colour"] == K and not marker["filled"]:
                        marker["name"] = next(n for y0, n in FIG9_DOTS if marker["y"] > y0)
        record = {"figure": figure, "page": page_number, "source":
                  "Saglietti & Zdeborova (2021), PMLR 145 (MSML), arXiv:2108.12006; PDF page "
                  f"{page_number}", "panels": panels}  # fmt: skip
        path = out / f"figure{figure}.json"
        text = json.dumps(record, separators=(",", ":"))
        path.write_text(text.replace('{"colour"', '\n{"colour"') + "\n")  # a curve per line
        written.append(path)
        with open(out / f"figure{figure}.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(("figure", "page", "panel", "name", "colour", "dashed", "width",
                             "component", "x", "y", "on_frame"))  # fmt: skip
            for k, panel in enumerate(panels):
                for c in panel["curves"]:
                    for x, y, on_frame in c["vertices"]:
                        writer.writerow((figure, page_number, k, c["name"], c["colour"],
                                         c["dashed"],
                                         c["width"], c["component"], repr(x), repr(y),
                                         on_frame))  # fmt: skip
    return written


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: extract.py PAPER.pdf [OUTDIR]")
    target = sys.argv[2] if len(sys.argv) > 2 else Path(__file__).parent
    for p in extract(sys.argv[1], target):
        print(p)
