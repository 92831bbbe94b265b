"""Figures of the kernel-regime experiments (matplotlib, imported lazily).

Theory: lines (mean over seeds, shaded +-1 SE); network: markers with +-1 SE error bars.
Each function takes a result of :mod:`replica.kernel_regime.experiments` and an Axes.
"""

from __future__ import annotations

import numpy as np

from replica.kernel_regime.experiments import Comparison, Sweep

LABELS = {
    "test_error": "test error",
    "train_error": "training error (vs labels)",
    "capacity": "capacity  sqrt((u*-u0)ᵀH⁻¹(u*-u0))",
    "distance": "|W(T) − W(0)|_F",
    "iterations": "iterations to tolerance",
}
MODE_COLOURS = {"equal step": "C0", "equal effective step": "C1", "baseline": "k"}


def _series(points, side: str, key: str):
    mean, se = [], []
    for p in points:
        est = getattr(p.run, side)
        e = None if est is None else est[key]
        mean.append(np.nan if e is None else e.mean)
        se.append(np.nan if e is None else e.se)
    return np.array(mean), np.array(se)


def plot_sweep(sweep: Sweep, key: str, ax, *, logx: bool | None = None) -> None:
    """``key`` (test_error, iterations, ...) along the swept parameter, every step mode."""
    x0 = np.array(sweep.values, dtype=float)
    for mode, pts in sweep.curves.items():
        x = np.array([p.value for p in pts], dtype=float)
        c = MODE_COLOURS.get(mode, None)
        m, s = _series(pts, "theory", key)
        ax.plot(x, m, "-", color=c, lw=1.8, label=f"theory, {mode}")
        ax.fill_between(x, m - s, m + s, color=c, alpha=0.15, lw=0)
        if pts[0].run.network is not None:
            mn, sn = _series(pts, "network", key)
            ax.errorbar(x, mn, yerr=sn, fmt="o", color=c, mfc="none", ms=5, capsize=2,
                        label=f"network, {mode}")  # fmt: skip
    if sweep.baseline is not None:
        b = sweep.baseline.theory[key]
        ax.axhline(b.mean, color="k", ls="--", lw=1.2, label="λ = 0 baseline (theory)")
        if sweep.baseline.network is not None:
            bn = sweep.baseline.network[key]
            ax.axhspan(bn.mean - bn.se, bn.mean + bn.se, color="k", alpha=0.1, lw=0,
                       label="λ = 0 baseline (network ± SE)")  # fmt: skip
        if key == "test_error":
            q = [p.teacher["test_error"].mean for p in next(iter(sweep.curves.values()))]
            if np.all(np.isfinite(q)):
                ax.plot(x0, q, ":", color="gray", lw=1.5, label="teacher")
    if logx is None:
        logx = sweep.vary == "teacher-quality" and np.all(x0 > 0) and x0.max() / x0.min() > 20
    if logx:
        ax.set_xscale("log")
    elif sweep.vary == "lam" and np.max(x0) > 10 * np.min(x0[x0 > 0], initial=np.inf):
        ax.set_xscale("symlog", linthresh=min(x0[x0 > 0], default=1.0))
    ax.set_xlabel("λ" if sweep.vary == "lam" else sweep.parameter)
    ax.set_ylabel(LABELS.get(key, key))
    ax.legend(fontsize=7)


def plot_train_error_vs_capacity(sweep: Sweep, ax) -> None:
    """Training error against the capacity measure, parametrised by lambda (the trade-off)."""
    for mode, pts in sweep.curves.items():
        c = MODE_COLOURS.get(mode, None)
        cap, _ = _series(pts, "theory", "capacity")
        tr, trs = _series(pts, "theory", "train_error")
        ax.plot(cap, tr, "-", color=c, lw=1.5, label=f"theory, {mode}")
        if pts[0].run.network is not None:
            dn, _ = _series(pts, "network", "distance")
            trn, trns = _series(pts, "network", "train_error")
            ax.errorbar(dn, trn, yerr=trns, fmt="o", color=c, mfc="none", ms=5, capsize=2,
                        label=f"network |W(T)−W(0)|, {mode}")  # fmt: skip
        for p, x, y in zip(pts, cap, tr, strict=True):
            ax.annotate(f"{p.value:g}", (x, y), fontsize=6, xytext=(3, 3),
                        textcoords="offset points")  # fmt: skip
    ax.set_xlabel(LABELS["capacity"])
    ax.set_ylabel(LABELS["train_error"])
    ax.legend(fontsize=7)


def plot_spectrum(comparison: Comparison, ax) -> None:
    """Residual energy per eigenmode of H at the diagnostic step vs mu_i (first replicate)."""
    mu = comparison.spectrum["eigenvalues"]
    for i, run in enumerate(comparison.runs):
        c = f"C{i}"
        th = comparison.spectrum[f"theory:{run.spec.label}"]
        ax.plot(mu, np.maximum(th, 1e-300), "-", color=c, lw=1.2, label=f"theory, {run.spec.label}")
        key = f"network:{run.spec.label}"
        if key in comparison.spectrum:
            ax.plot(mu, comparison.spectrum[key], ".", color=c, ms=3, alpha=0.6,
                    label=f"network, {run.spec.label}")  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("eigenvalue μ_i of H")
    ax.set_ylabel(f"(q_i·(u(k) − u*))² at k = {comparison.setup.diagnostic_step}")
    ax.legend(fontsize=7)
