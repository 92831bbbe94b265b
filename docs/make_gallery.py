"""Regenerate the figure gallery of the documentation from the package's own figure code.

Runs :func:`replica.figures.make_figure` (theory curves, Bayes-optimal lines, thresholds; no
simulations) for the paper's twelve figures and writes

- ``docs/_static/gallery/figureN.png``: the rendered figure, and ``figureN.json`` its
  settings sidecar (every curve, line and threshold, with the points computed);
- ``docs/gallery.md``: the gallery page, with each figure's caption and the exact setting of
  every plotted curve, read from its :class:`replica.figures.FigureSpec`.

Usage, from the repository root (a few minutes on two cores)::

    python docs/make_gallery.py [--resolution 1] [--workers 2] [--figures 1 2 ...]

The PNGs are committed, so the documentation build itself computes nothing. Re-run this script
whenever :mod:`replica.figures` changes. Intermediate files (CSV journals) go to a temporary
directory and are discarded.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
GALLERY = DOCS / "_static" / "gallery"
PAGE = DOCS / "gallery.md"

HEADER = """\
# Gallery: the paper's twelve figures

The figures of Saglietti & Zdeborová (2021) as this package computes them (theory only; pass
`--with-simulations` to `kd-replica figure N` to add finite-size points). Each image is
produced by `kd-replica figure N` (the function {func}`replica.figures.make_figure`) and
collected by `docs/make_gallery.py`, which also wrote this page from the figures'
specifications ({func}`replica.figures.figure_spec`): the settings below are the ones the code
used, not a transcription. Unless listed, parameters take their defaults: `rho = 0.2`,
`delta = 1`, `eta = 0.5`, `T = 1`, no label smoothing, a ridge teacher, and "unregularised"
means `lam = 1e-5`. The known differences from the published figures are listed in
{doc}`errata`.

Regenerate with `python docs/make_gallery.py` (resolution {resolution:g}).

"""


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_fmt(v)}" for k, v in value.items()) + "}"
    return str(value)


def _setting(series) -> str:
    """One table row describing the setting of a theory series."""
    xs = series.values
    span = f"{_fmt(min(xs))} .. {_fmt(max(xs))} ({len(xs)} initial points)"
    fixed = ", ".join(f"`{k} = {_fmt(v)}`" for k, v in sorted(series.fixed.items())) or "-"
    plotted = [series.y] + [column for column, *_ in series.extra]
    scale = getattr(series, "scale", 1.0)
    plotted_text = ", ".join(f"`{c}`" for c in plotted)
    if scale != 1.0:
        plotted_text += f" (times {_fmt(scale)})"
    opt = ""
    if series.optimise is not None:
        o = series.optimise
        opt = f"; minimised over `{o.parameter}` in [{_fmt(o.lower)}, {_fmt(o.upper)}]"
    label = series.label.replace("|", "\\|") if series.label else "-"
    return (f"| `{series.name}` | {label} | {series.model} | `{series.vary}`: {span} "
            f"| {fixed}{opt} | {plotted_text} |")


def _section(spec, image: str) -> str:
    """The gallery section of a figure, from its specification alone (no computation)."""
    lines = [f"## Figure {spec.number}", "", spec.caption + "."]
    setting = getattr(spec, "setting", {})
    if setting:
        lines += ["", "Setting: " + ", ".join(f"`{k} = {_fmt(v)}`" for k, v in setting.items())
                  + "."]
    notes = getattr(spec, "notes", "")
    if notes:
        lines += ["", f"Differs from the paper's caption: {notes}."]
    lines += ["", f"![Figure {spec.number}](_static/gallery/{image})", "",
              "| series | legend | model | varied | fixed | plotted |",
              "|---|---|---|---|---|---|"]
    lines += [_setting(s) for s in spec.series]
    if spec.thresholds:
        names = sorted({n for names in spec.thresholds.values() for n in names})
        params = ", ".join(f"`{k} = {_fmt(v)}`" for k, v in spec.threshold_params.items())
        lines += ["", f"Threshold markers: {', '.join(f'`{n}`' for n in names)} at {params}."]
    return "\n".join(lines) + "\n"


def _computed(sidecar: Path) -> str:
    """Points actually computed (initial grid plus adaptive refinement), from the JSON sidecar."""
    if not sidecar.is_file():
        return ""
    data = json.loads(sidecar.read_text(encoding="utf-8"))
    counts = [f"`{s['name']}` {s['points']}" for s in data.get("series", []) if "points" in s]
    if not counts:
        return ""
    return ("\nComputed theory points (with refinement): " + ", ".join(counts)
            + f". Full settings: `_static/gallery/{sidecar.name}`.\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=float, default=1.0,
                        help="scale of the number of theory points (1: the figures' defaults)")
    parser.add_argument("--workers", type=int, default=None, help="local worker processes")
    parser.add_argument("--figures", type=int, nargs="*", default=None,
                        help="figure numbers to (re)compute (default: all twelve)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from replica.figures import figure_spec, make_figure, paper_figures
    from saddle.executor import make_executor

    GALLERY.mkdir(parents=True, exist_ok=True)
    todo = paper_figures() if args.figures is None else tuple(args.figures)
    with tempfile.TemporaryDirectory() as tmp, make_executor(args.workers) as executor:
        for number in todo:
            start = time.perf_counter()
            paths = make_figure(number, Path(tmp) / f"figure{number}",
                                resolution=args.resolution, executor=executor)
            shutil.copyfile(paths["png"], GALLERY / f"figure{number}.png")
            if "json" in paths:
                shutil.copyfile(paths["json"], GALLERY / f"figure{number}.json")
            print(f"figure {number}: {time.perf_counter() - start:.0f} s, "
                  f"{paths['failed']} not converged, {paths['diverged']} without solution",
                  flush=True)
    sections = [HEADER.replace("{resolution:g}", f"{args.resolution:g}")]
    for number in paper_figures():
        sections.append(_section(figure_spec(number, resolution=args.resolution),
                                 f"figure{number}.png")
                        + _computed(GALLERY / f"figure{number}.json"))
    PAGE.write_text("\n".join(sections))
    print(f"wrote {PAGE.relative_to(ROOT)} and {len(todo)} images in "
          f"{GALLERY.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
