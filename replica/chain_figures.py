"""Figures of the distillation-chain studies (issue 12, item 6), registered in the figure
registry of :mod:`replica.figures` under string ids ``chain-a`` .. ``chain-e``.

Each builder returns a :class:`ChainFigureSpec`; :meth:`ChainFigureSpec.make` computes the
theory with the grid functions of :mod:`replica.chain_studies` (plain warm-started loops),
optionally adds finite-size simulation points (mean +- SE over seeds; gains are paired per seed,
:func:`replica.chain_studies.simulate_chain_points`) and writes ``<id>.png``, ``<id>.csv`` (one
row per plotted theory value), ``<id>.json`` (the setting) and, with simulations,
``<id>_simulations.csv``. ``kd-replica figure chain-a --with-simulations`` runs it.

- ``chain-a``: hard vs soft pseudo-labels with noisy labels, the gain of one distilled stage
  over its teacher against the noise variance Delta: at a fixed ridge (``chi = 1``) and with
  stage-wise optimal hyper-parameters (Takanami et al. 2025, claim (a)).
- ``chain-b``: the same gain against alpha (claim (b): largest at moderate alpha).
- ``chain-c``: the error against the number of stages (claim (c): an interior minimum?).
- ``chain-d``: distilled stages with a free bias or keeping stage 0's, rho != 1/2 (claim (d)).
- ``chain-e``: weak-to-strong, a full-support student taught by a sparse teacher: curves
  against alpha with the noisy- and clean-label baselines, and the gain over
  ``(alpha, eta_0)`` (a coarse grid, zero contour drawn).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from replica.chain import ChainParams
from replica.chain_studies import (
    bias_curve,
    gain_curve,
    self_distillation_chain,
    simulate_chain_points,
    stage_curve,
    weak_to_strong_curve,
    weak_to_strong_phase,
    weak_to_strong_stages,
)
from replica.figures import BLUE, GREY, RED, VIOLET, Panel, figure

COLOURS = {"hard": RED, "soft": BLUE, "soft-T": VIOLET, "free": BLUE, "inherit": RED}
LABELS = {"hard": "hard pseudo-labels", "soft": r"soft, $T=1$",
          "soft-T": r"soft, optimal $T$", "free": "free bias",
          "inherit": "bias kept from stage 0"}  # fmt: skip


@dataclass(frozen=True)
class Trace:
    """A theory curve on a panel."""

    panel: int
    name: str
    label: str
    x: tuple
    y: tuple
    style: dict = field(default_factory=dict)
    converged: tuple = ()


@dataclass(frozen=True)
class Points:
    """Simulation points (mean +- SE over seeds) beside a curve."""

    panel: int
    name: str
    x: tuple
    mean: tuple
    sem: tuple
    style: dict
    n: int
    seeds: int
    theory: tuple = ()


@dataclass(frozen=True)
class Heatmap:
    """A 2-d grid on a panel, ``z[i, j]`` at ``(ys[i], xs[j])``, with its zero contour."""

    panel: int
    name: str
    label: str
    xs: tuple
    ys: tuple
    z: tuple


@dataclass(frozen=True)
class ChainFigureSpec:
    """A chain figure: panels and a ``build(simulations) -> (theory items, points)``."""

    key: str
    caption: str
    panels: tuple
    build: Callable = field(repr=False)
    setting: dict = field(default_factory=dict)
    layout: tuple = (1, 1)
    notes: str = ""

    @property
    def number(self) -> str:
        return self.key

    def to_dict(self) -> dict:
        return {"figure": self.key, "caption": self.caption, "setting": self.setting,
                "notes": self.notes}  # fmt: skip

    def make(self, out: str | Path, *, simulations: dict | None = None, **_ignored) -> dict:
        """Compute and draw into ``out``; returns the written paths and the numbers of
        theory points that did not converge (``failed``) or have none (``diverged``)."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        items, points = self.build(simulations)
        paths = render_chain_figure(self, items, points, out)
        failed = sum(int(not c) for t in items if isinstance(t, Trace) for c in t.converged)
        diverged = sum(int(not np.isfinite(v)) for h in items if isinstance(h, Heatmap)
                       for row in h.z for v in row)  # fmt: skip
        paths["failed"], paths["diverged"] = failed, diverged
        return paths


# ----------------------------------------------------------------------------------------------
# Simulation points
# ----------------------------------------------------------------------------------------------


def _sim_gain(alpha, rho, delta, flip, stages, simulations, *, stage: int = 1,
              reference: int = 0):  # fmt: skip
    """Paired simulated gain ``eps[reference] - eps[stage]``: (mean, sem)."""
    params = ChainParams(alpha, rho, delta, flip, tuple(stages))
    sim = simulate_chain_points(params, n=int(simulations["n"]), seeds=int(simulations["seeds"]),
                                seed=int(simulations.get("seed", 0)), reference=reference)
    return sim.gain[stage], sim.gain_sem[stage], sim


def _points(panel, name, xs, pairs, style, simulations, theory=()) -> Points:
    return Points(panel, name, tuple(float(x) for x in xs), tuple(float(m) for m, _ in pairs),
                  tuple(float(s) for _, s in pairs), style, int(simulations["n"]),
                  int(simulations["seeds"]), tuple(float(t) for t in theory))  # fmt: skip


def _pick(values, count: int) -> list[int]:
    """Indices of ``count`` roughly evenly spaced interior grid points."""
    if len(values) <= count:
        return list(range(len(values)))
    return sorted({int(round(i)) for i in np.linspace(1, len(values) - 2, count)})


# ----------------------------------------------------------------------------------------------
# The figures
# ----------------------------------------------------------------------------------------------

A_SETTING = {"alpha": 2.0, "rho": 0.3, "flip": 0.2}


@figure("chain-a")
def chain_a(n) -> ChainFigureSpec:
    deltas = tuple(float(d) for d in np.geomspace(0.1, 1.5, n(10)))
    panels = (Panel(r"$\Delta$", "gain over the teacher", xlog=True, legend="upper right"),
              Panel(r"$\Delta$", "gain over the teacher", xlog=True, legend="upper right"))

    def build(simulations):
        items, points = [], []
        for panel, lam, variants in ((0, 0.1, ("hard", "soft")),
                                     (1, None, ("hard", "soft", "soft-T"))):  # fmt: skip
            curve = gain_curve(deltas, vary="delta", variants=variants, lam=lam, **A_SETTING)
            for v in variants:
                items.append(Trace(panel, f"gain_{v}_{'fixed' if lam else 'optimal'}",
                                   LABELS[v], curve.x, tuple(curve[f"gain_{v}"]),
                                   {"color": COLOURS[v]}, curve.columns[f"converged_{v}"]))
            if simulations:
                for v in variants[:2]:
                    idx = _pick(deltas, 3)
                    pairs = []
                    for i in idx:
                        stages = _tuned_or_fixed(curve, v, i, lam)
                        g, s, _ = _sim_gain(A_SETTING["alpha"], A_SETTING["rho"], deltas[i],
                                            A_SETTING["flip"], stages, simulations)
                        pairs.append((g, s))
                    points.append(_points(panel, f"gain_{v}", [deltas[i] for i in idx], pairs,
                                          {"color": COLOURS[v]}, simulations,
                                          [curve[f"gain_{v}"][i] for i in idx]))  # fmt: skip
        return items, points

    return ChainFigureSpec(
        "chain-a", "Self-distillation with noisy labels: the gain of one distilled stage over "
        "its teacher, hard vs soft targets; left: lam = 0.1, chi = 1; right: stage-wise optimal "
        "lam, chi (and T)", panels, build, {**A_SETTING, "lam_bounds": [1e-3, 1e2]}, (1, 2))


def _tuned_or_fixed(curve, v, i, lam):
    """The stages of point ``i`` of a :func:`gain_curve` (its optimal ones when tuned)."""
    from replica.chain import Stage
    from replica.chain_studies import variant_stage

    if lam is not None:
        return (Stage(lam=lam), variant_stage(v, lam=lam))
    return (Stage(lam=float(curve["lam0"][i])),
            variant_stage(v, lam=float(curve[f"lam1_{v}"][i]), chi=float(curve[f"chi1_{v}"][i]),
                          temperature=float(curve[f"T1_{v}"][i])))  # fmt: skip


B_SETTING = {"rho": 0.3, "delta": 0.25, "flip": 0.2}


@figure("chain-b")
def chain_b(n) -> ChainFigureSpec:
    alphas = tuple(float(a) for a in np.geomspace(0.25, 16.0, n(13)))
    panels = (Panel(r"$\alpha$", "gain over the teacher", xlog=True),
              Panel(r"$\alpha$", "gain over the teacher", xlog=True))

    def build(simulations):
        items, points = [], []
        for panel, lam in ((0, 0.1), (1, None)):
            curve = gain_curve(alphas, vary="alpha", variants=("hard", "soft"), lam=lam,
                               **B_SETTING)  # fmt: skip
            for v in ("hard", "soft"):
                items.append(Trace(panel, f"gain_{v}_{'fixed' if lam else 'optimal'}",
                                   LABELS[v], curve.x, tuple(curve[f"gain_{v}"]),
                                   {"color": COLOURS[v]}, curve.columns[f"converged_{v}"]))
                if simulations:
                    idx = _pick(alphas, 3)
                    pairs = [_sim_gain(alphas[i], B_SETTING["rho"], B_SETTING["delta"],
                                       B_SETTING["flip"], _tuned_or_fixed(curve, v, i, lam),
                                       simulations)[:2] for i in idx]  # fmt: skip
                    points.append(_points(panel, f"gain_{v}", [alphas[i] for i in idx], pairs,
                                          {"color": COLOURS[v]}, simulations,
                                          [curve[f"gain_{v}"][i] for i in idx]))  # fmt: skip
        return items, points

    return ChainFigureSpec(
        "chain-b", "The gain of one distilled stage over its teacher against alpha; left: "
        "lam = 0.1, chi = 1; right: stage-wise optimal lam and chi", panels, build,
        B_SETTING, (1, 2))


C_SETTINGS = ({"alpha": 2.0, "rho": 0.5, "delta": 1.0, "flip": 0.1, "lam": 1.0},
              {"alpha": 2.0, "rho": 0.5, "delta": 1.0, "flip": 0.3, "lam": 1.0})


@figure("chain-c")
def chain_c(n) -> ChainFigureSpec:
    K = 3
    panels = tuple(Panel("stage $k$", r"$\varepsilon_g$", legend="upper right")
                   for _ in C_SETTINGS)  # fmt: skip

    def build(simulations):
        items, points = [], []
        for panel, setting in enumerate(C_SETTINGS):
            curve = stage_curve(K=K, variants=("hard", "soft"), **setting)
            for v in ("hard", "soft"):
                items.append(Trace(panel, f"eps_{v}_{panel}", LABELS[v], curve.x,
                                   tuple(curve[f"eps_{v}"]),
                                   {"color": COLOURS[v], "marker": "."},
                                   curve.columns[f"converged_{v}"]))  # fmt: skip
                if simulations:
                    stages = self_distillation_chain(K, v, lam=setting["lam"])
                    params = ChainParams(setting["alpha"], setting["rho"], setting["delta"],
                                         setting["flip"], stages)  # fmt: skip
                    sim = simulate_chain_points(params, n=int(simulations["n"]),
                                                seeds=int(simulations["seeds"]),
                                                seed=int(simulations.get("seed", 0)))
                    points.append(_points(panel, f"eps_{v}", curve.x,
                                          list(zip(sim.eps_g, sim.sem, strict=True)),
                                          {"color": COLOURS[v]}, simulations,
                                          curve[f"eps_{v}"]))  # fmt: skip
        return items, points

    return ChainFigureSpec(
        "chain-c", "Test error of stages 0..3 of pure self-distillation chains (chi = 1, "
        "lam = 1 at every stage, alpha = 2, rho = 0.5, Delta = 1); left flip = 0.1, right "
        "flip = 0.3", panels, build,
        {"settings": list(C_SETTINGS)}, (1, 2))


D_SETTING = {"rho": 0.3, "flip": 0.2, "lam": 0.1, "K": 2}
D_DELTAS = (0.25, 1.0)


@figure("chain-d")
def chain_d(n) -> ChainFigureSpec:
    alphas = tuple(float(a) for a in np.geomspace(0.5, 8.0, n(9)))
    panels = tuple(Panel(r"$\alpha$", rf"gain of stage 2 over stage 0 ($\Delta={d:g}$)",
                         xlog=True) for d in D_DELTAS)  # fmt: skip

    def build(simulations):
        items, points = [], []
        for panel, delta in enumerate(D_DELTAS):
            curve = bias_curve(alphas, delta=delta, **D_SETTING)
            for bias in ("free", "inherit"):
                items.append(Trace(panel, f"gain_{bias}_{panel}", LABELS[bias], curve.x,
                                   tuple(curve[f"gain_{bias}"]), {"color": COLOURS[bias]},
                                   curve.columns[f"converged_{bias}"]))  # fmt: skip
                if not simulations:
                    continue
                idx = _pick(alphas, 3)
                pairs = []
                for i in idx:
                    stages = self_distillation_chain(D_SETTING["K"], "hard",
                                                     lam=D_SETTING["lam"], bias=bias)
                    g, s, _ = _sim_gain(alphas[i], D_SETTING["rho"], delta, D_SETTING["flip"],
                                        stages, simulations, stage=D_SETTING["K"])
                    pairs.append((g, s))
                points.append(_points(panel, f"gain_{bias}", [alphas[i] for i in idx], pairs,
                                      {"color": COLOURS[bias]}, simulations,
                                      [curve[f"gain_{bias}"][i] for i in idx]))  # fmt: skip
        return items, points

    return ChainFigureSpec(
        "chain-d", "Imbalanced classes (rho = 0.3): two hard self-distillation stages with a "
        "free bias or keeping stage 0's bias (lam = 0.1, chi = 1); left Delta = 0.25, right "
        "Delta = 1", panels, build, D_SETTING, (1, 2))


E_SETTING = {"rho": 0.5, "delta": 1.0, "flip": 0.2, "lam": 0.1}


@figure("chain-e")
def chain_e(n) -> ChainFigureSpec:
    alphas = tuple(float(a) for a in np.geomspace(0.25, 16.0, n(13)))
    grid_a = tuple(float(a) for a in np.geomspace(0.25, 16.0, n(12)))
    grid_e = tuple(float(e) for e in np.linspace(0.1, 0.95, n(12)))
    panels = (Panel(r"$\alpha$", r"$\varepsilon_g$", xlog=True),
              Panel(r"$\alpha$", r"$\eta_0$", xlog=True),
              Panel(r"$\alpha$", r"$\eta_0$", xlog=True))

    def build(simulations):
        items, points = [], []
        curve = weak_to_strong_curve(alphas, eta0=0.3, **E_SETTING)
        for name, label, style in (
                ("eps_teacher", r"sparse teacher ($\eta_0=0.3$)", {"color": GREY}),
                ("eps_hard", "student, hard", {"color": RED}),
                ("eps_soft", r"student, soft $T=1$", {"color": BLUE}),
                ("eps_noisy", "full model on the noisy labels", {"color": "k", "ls": ":"}),
                ("eps_clean", "full model on clean labels", {"color": "k", "ls": "--"})):
            conv = curve.columns.get("converged_hard", ())
            items.append(Trace(0, name, label, curve.x, tuple(curve[name]), style, conv))
        if simulations:
            idx = _pick(alphas, 3)
            for v in ("hard", "soft"):
                pairs = []
                for i in idx:
                    params = ChainParams(alphas[i], E_SETTING["rho"], E_SETTING["delta"],
                                         E_SETTING["flip"],
                                         weak_to_strong_stages(0.3, v, lam=E_SETTING["lam"]))
                    sim = simulate_chain_points(params, n=int(simulations["n"]),
                                                seeds=int(simulations["seeds"]),
                                                seed=int(simulations.get("seed", 0)))
                    pairs.append((sim.eps_g[1], sim.sem[1]))
                points.append(_points(0, f"eps_{v}", [alphas[i] for i in idx], pairs,
                                      {"color": COLOURS[v]}, simulations,
                                      [curve[f"eps_{v}"][i] for i in idx]))  # fmt: skip
        phase = weak_to_strong_phase(grid_a, grid_e, variant="hard", **E_SETTING)
        items.append(Heatmap(1, "gain_hard", "gain of the student over its teacher",
                             phase.xs, phase.ys, tuple(map(tuple, phase["gain"]))))
        over_noisy = phase["eps_noisy"] - phase["eps_student"]
        items.append(Heatmap(2, "gain_over_noisy_hard",
                             "gain over the full model on the noisy labels", phase.xs, phase.ys,
                             tuple(map(tuple, over_noisy))))  # fmt: skip
        return items, points

    return ChainFigureSpec(
        "chain-e", "Weak-to-strong: a full-support student (eta = 1, chi = 1) taught by a "
        "sparse teacher trained on noisy labels; left eta_0 = 0.3; middle the hard student's "
        "gain over its teacher on a coarse (alpha, eta_0) grid, right its gain over the full "
        "model trained on the noisy labels (white: zero contour)", panels, build, E_SETTING,
        (1, 3))


# ----------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------


def render_chain_figure(spec: ChainFigureSpec, items, points, out: Path) -> dict:
    """Draw ``<id>.png``; write ``<id>.csv``, ``<id>.json`` and ``<id>_simulations.csv``."""
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from saddle.checkpoint import _lines as csv_lines
    from saddle.checkpoint import atomic_write_text

    rows_, cols = spec.layout
    width = 5.6 * cols
    fig, axes = plt.subplots(rows_, cols, figsize=(width, 4.2 * rows_ + 0.5),
                             layout="constrained", squeeze=False)  # fmt: skip
    axes = axes.ravel()
    csv_rows = [("panel", "series", "label", "x", "y", "value", "converged")]
    for item in items:
        ax = axes[item.panel]
        if isinstance(item, Heatmap):
            z = np.asarray(item.z, dtype=float)
            mesh = ax.pcolormesh(item.xs, item.ys, z, shading="nearest", cmap="viridis")
            fig.colorbar(mesh, ax=ax, label=item.label)
            if np.nanmin(z) < 0.0 < np.nanmax(z):
                ax.contour(item.xs, item.ys, z, levels=[0.0], colors="w", linewidths=1.2)
            for i, y in enumerate(item.ys):
                for j, x in enumerate(item.xs):
                    csv_rows.append((item.panel, item.name, item.label, repr(float(x)),
                                     repr(float(y)), repr(float(z[i, j])),
                                     bool(np.isfinite(z[i, j]))))  # fmt: skip
            continue
        y = np.asarray(item.y, dtype=float)
        ok = np.asarray(item.converged, dtype=bool) if item.converged else np.ones(y.size, bool)
        ax.plot(item.x, np.where(ok, y, np.nan), label=item.label or None,
                **{"lw": 1.6, **item.style})  # fmt: skip
        for xi, yi, oki in zip(item.x, y, ok, strict=True):
            csv_rows.append((item.panel, item.name, item.label, repr(float(xi)), "",
                             repr(float(yi)), bool(oki)))  # fmt: skip
    sim_rows = [("panel", "series", "x", "mean", "sem", "theory", "n", "seeds")]
    for p in points:
        axes[p.panel].errorbar(p.x, p.mean, yerr=p.sem, fmt="o", color=p.style.get("color", "k"),
                               ms=3.5, capsize=2, lw=1)  # fmt: skip
        for k, (x, m, s) in enumerate(zip(p.x, p.mean, p.sem, strict=True)):
            theory = p.theory[k] if p.theory else float("nan")
            sim_rows.append((p.panel, p.name, repr(x), repr(m), repr(s), repr(float(theory)),
                             p.n, p.seeds))  # fmt: skip
    for k, panel in enumerate(spec.panels):
        ax = axes[k]
        if panel.xlog:
            ax.set_xscale("log")
        ax.set_xlabel(panel.xlabel)
        ax.set_ylabel(panel.ylabel)
        if panel.xlabel.startswith("stage"):
            from matplotlib.ticker import MaxNLocator

            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if any(isinstance(i, Trace) and i.panel == k for i in items):
            if "gain" in panel.ylabel:
                ax.axhline(0.0, color="0.8", lw=0.6, zorder=0)
            ax.legend(fontsize=8, loc=panel.legend, framealpha=1.0, edgecolor="none")
    caption = chain_caption(spec, points)
    fig.suptitle("\n".join(textwrap.wrap(caption, int(16 * width))), fontsize=8.5)
    png = out / f"{spec.key}.png"
    fig.savefig(png, dpi=130)
    plt.close(fig)
    paths = {"png": png,
             "csv": atomic_write_text(out / f"{spec.key}.csv", csv_lines(csv_rows))}
    settings = {**spec.to_dict(), "caption_full": caption}
    if points:
        settings["simulations"] = {"n": sorted({p.n for p in points}),
                                   "seeds": sorted({p.seeds for p in points})}  # fmt: skip
        paths["simulations"] = atomic_write_text(out / f"{spec.key}_simulations.csv",
                                                 csv_lines(sim_rows))  # fmt: skip
    paths["json"] = atomic_write_text(out / f"{spec.key}.json",
                                      json.dumps(settings, indent=1, default=str) + "\n")
    return paths


def chain_caption(spec: ChainFigureSpec, points) -> str:
    """Title, setting and simulation size of a chain figure."""
    setting = ", ".join(f"{k} = {v:g}" if isinstance(v, float) else f"{k} = {v}"
                        for k, v in spec.setting.items() if not isinstance(v, (list, dict)))
    text = f"Fig. {spec.key}: {spec.caption}."
    if setting:
        text += f" Setting: {setting}."
    if points:
        n = sorted({p.n for p in points})
        seeds = sorted({p.seeds for p in points})
        text += (f" Points: simulations at N = {', '.join(map(str, n))}, "
                 f"{', '.join(map(str, seeds))} seeds each, mean +- SE (gains paired per seed).")
    return text

