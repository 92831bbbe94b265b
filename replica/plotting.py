"""Figures of theory curves (matplotlib, non-interactive backend)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from replica.sweep import Curve, as_array  # noqa: E402

LABELS = {
    "alpha": r"$\alpha$", "lam": r"$\lambda$", "lam_t": r"$\tilde\lambda$",
    "lam_s": r"$\lambda$", "chi": r"$\chi$", "temperature": "$T$", "smoothing": r"$\epsilon$",
    "rho": r"$\rho$", "delta": r"$\Delta$", "eta": r"$\eta$",
}  # fmt: skip
LOG_SCALE = {"lam", "lam_t", "lam_s"}


def plot_curve(
    curve: Curve,
    path: str | Path,
    *,
    series: Sequence[tuple[str, str]] = (),
    bounds: Sequence[tuple[str, str]] = (),
    ylabel: str = r"$\varepsilon_g$",
    title: str | None = None,
) -> Path:
    """Plot columns of ``curve`` against the varied parameter and save a PNG.

    Parameters
    ----------
    series : sequence of (column, label)
        Solid curves.
    bounds : sequence of (column, label)
        Dashed reference curves (e.g. Bayes-optimal errors).
    """
    x = as_array(curve, curve.vary)
    fig, ax = plt.subplots(figsize=(5.5, 4.0), constrained_layout=True)
    for column, label in series:
        ax.plot(x, as_array(curve, column), lw=2, label=label)
    for column, label in bounds:
        ax.plot(x, as_array(curve, column), "k--", lw=1.2, label=label)
    if "converged" in curve.columns:
        bad = [i for i, ok in enumerate(curve.columns["converged"]) if not ok]
        if bad:
            ax.plot(x[bad], as_array(curve, series[0][0])[bad], "rx", label="not converged")
    if curve.vary in LOG_SCALE and x.min() > 0:
        ax.set_xscale("log")
    ax.set_xlabel(LABELS.get(curve.vary, curve.vary))
    ax.set_ylabel(ylabel)
    fixed = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                      for k, v in curve.fixed.items())  # fmt: skip
    ax.set_title(title or "\n".join(textwrap.wrap(fixed, 70)), fontsize=8)
    ax.legend(frameon=False)
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
