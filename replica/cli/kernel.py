"""``kd-replica kernel``: kernel-regime theory vs a finite-width network (SPEC §6).

Writes to ``--out DIR``: ``trajectories.csv`` (per recorded step, theory and network),
``outputs.npz`` (the training outputs u(k) of both), ``summary.json`` (also printed), and the PNG
plots ``kernel_loss.png``, ``kernel_test_error.png``, ``kernel_distance.png``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path

import numpy as np

from replica.cli.common import (
    CliError,
    _jsonable,
    add_quiet,
    integer,
    number,
    print_json,
    progress,
)
from replica.params import (
    ParameterError,
    check_nonnegative,
    check_open_unit,
    check_positive,
    check_smoothing,
    check_unit_interval,
)


def _learning_rate(text: str):
    """``--lr``: a positive number or ``auto``."""
    if text.strip().lower() == "auto":
        return None
    return number("--lr", check_positive)(text)


def register(commands, curve, simulate) -> None:  # noqa: ARG001 - curve/simulate unused
    """Add the ``kernel`` command to the top-level sub-parsers."""
    p = commands.add_parser(
        "kernel",
        help="kernel-regime KD: NTK theory vs a finite-width ReLU network (CSV + PNG + JSON)",
        description=(
            "Train a wide two-layer ReLU student by full-batch GD on 1/2|u-y|^2 + lam/2|u-t|^2 "
            "(Gaussian-mixture data on the sphere, sign targets) and compare with the "
            "kernel-regime prediction (Panahi et al., arXiv 2003.13438)."
        ),
    )
    p.add_argument("--n", type=integer("--n", 2), default=200, help="training samples (200)")
    p.add_argument("--d", type=integer("--d"), default=50, help="input dimension (50)")
    p.add_argument("--width", type=integer("--width", 2), default=4096, help="student width (4096)")
    p.add_argument("--lam", type=number("--lam", check_nonnegative), default=1.0,
                   help="teacher weight lambda >= 0 (1)")
    p.add_argument("--teacher", choices=("wide", "ridge", "noisy"), default="wide",
                   help="wide: wider early-stopped network; ridge: ridge-logistic; "
                        "noisy: corrupted/smoothed labels (wide)")
    p.add_argument("--steps", type=integer("--steps", 0), default=1000, help="GD steps (1000)")
    p.add_argument("--lr", type=_learning_rate, default=None,
                   help="step size, or 'auto' = 1/((1+lam) mu_max(H)) (auto)")
    p.add_argument("--seed", type=integer("--seed", 0), default=0, help="random seed (0)")
    p.add_argument("--kappa", type=number("--kappa", check_positive), default=1.0,
                   help="initial weight scale (1)")
    p.add_argument("--init", choices=("random", "symmetric"), default="random",
                   help="random (paper) or symmetric (f_0 = 0; enables the linearised curve)")
    p.add_argument("--rho", type=number("--rho", check_open_unit), default=0.2,
                   help="fraction of the positive cluster (0.2)")
    p.add_argument("--delta", type=number("--delta", check_positive), default=1.0,
                   help="noise variance Delta (1)")
    p.add_argument("--n-test", type=integer("--n-test"), default=2000, help="test samples (2000)")
    p.add_argument("--teacher-width", type=integer("--teacher-width", 2), default=None,
                   help="wide teacher: width (4 x --width)")
    p.add_argument("--teacher-steps", type=integer("--teacher-steps", 0), default=None,
                   help="wide teacher: GD steps on the labels (steps // 20)")
    p.add_argument("--ridge-lam", type=number("--ridge-lam", check_nonnegative), default=0.1,
                   help="ridge teacher: ridge strength (0.1)")
    p.add_argument("--flip", type=number("--flip", check_unit_interval), default=0.1,
                   help="noisy teacher: fraction of flipped labels (0.1)")
    p.add_argument("--smooth", type=number("--smooth", check_smoothing), default=0.0,
                   help="noisy teacher: label smoothing in [0, 0.5) (0)")
    p.add_argument("--tolerance", type=number("--tolerance", check_positive), default=1e-2,
                   help="RMS distance to u* defining 'converged' (0.01)")
    p.add_argument("--record-points", type=integer("--record-points", 2), default=100,
                   help="approximate number of recorded steps (100)")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    add_quiet(p)
    p.set_defaults(handler=run)


def _config(args):
    from simulations.wide_network import KernelExperimentConfig

    try:
        return KernelExperimentConfig(
            n=args.n, d=args.d, width=args.width, lam=args.lam, teacher=args.teacher,
            steps=args.steps, lr=args.lr, seed=args.seed, kappa=args.kappa, rho=args.rho,
            delta=args.delta, n_test=args.n_test, init=args.init,
            teacher_width=args.teacher_width, teacher_steps=args.teacher_steps,
            ridge_lam=args.ridge_lam, flip=args.flip, smooth=args.smooth,
            record_points=args.record_points, tolerance=args.tolerance,
        )
    except ParameterError as exc:
        raise _flag_error(exc) from None


def _flag_error(exc: Exception) -> CliError:
    """Name the command-line flag (``--teacher-width``) rather than the Python field."""
    head, _, rest = str(exc).partition(" ")
    return CliError(f"--{head.replace('_', '-')} {rest}")


def _write_csv(path: Path, columns: dict[str, np.ndarray]) -> None:
    names = list(columns)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(names)
        for row in zip(*(columns[k] for k in names), strict=True):
            writer.writerow([int(v) if k == "step" else f"{float(v):.10g}"
                             for k, v in zip(names, row, strict=True)])


def _plots(out: Path, tr: dict[str, np.ndarray], title: str, summary: dict) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = tr["step"].astype(float)
    kk = np.maximum(k, 0.5)  # show step 0 on a log axis
    files = []
    specs = [
        ("kernel_loss.png", "training loss  1/2|u-y|² + λ/2|u-t|²",
         [("theory_loss", "kernel theory", "-"), ("network_loss", "network", "o")], "log"),
        ("kernel_test_error.png", "test error",
         [("theory_test_error", "kernel theory", "-"), ("network_test_error", "network", "o"),
          ("linearised_test_error", "linearised Gram (proportional regime)", "--")], "linear"),
        ("kernel_distance.png", "|W(k) − W(0)|_F",
         [("theory_distance", "kernel theory", "-"), ("network_distance", "network", "o")],
         "linear"),
    ]
    for fname, ylabel, series, yscale in specs:
        fig, ax = plt.subplots(figsize=(6, 4))
        for key, label, style in series:
            if key not in tr:
                continue
            if style == "o":
                ax.plot(kk, tr[key], "o", ms=3, mfc="none", label=label)
            else:
                ax.plot(kk, tr[key], style, lw=1.8, label=label)
        if fname == "kernel_distance.png":
            ax.axhline(summary["capacity"], color="gray", ls=":", lw=1.2,
                       label="capacity sqrt((u*-u0)ᵀH⁻¹(u*-u0))")
        if fname == "kernel_test_error.png" and summary.get("teacher_test_error") is not None:
            ax.axhline(summary["teacher_test_error"], color="gray", ls=":", lw=1.2,
                       label="teacher")
        ax.set_xscale("log")
        ax.set_yscale(yscale)
        ax.set_xlabel("GD step k (k = 0 drawn at 0.5)")
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / fname, dpi=120)
        plt.close(fig)
        files.append(fname)
    return files


def run(args: argparse.Namespace) -> int:
    """Run the experiment and write CSV, NPZ, JSON and PNG files; returns the exit code."""
    from replica.cli.models import output_dir
    from simulations.wide_network import run_kernel_experiment

    config = _config(args)
    try:
        out = output_dir(args.out)
    except CliError as exc:  # this command names its flags with their dashes
        raise CliError(f"--{exc}") from None
    state = {"bar": None, "last": 0}

    def tick(k: int) -> None:
        # created lazily: nothing is printed before the input has been validated
        if state["bar"] is None:
            state["bar"] = progress(total=config.steps, desc="GD", quiet=args.quiet)
        state["bar"].update(k - state["last"])
        state["last"] = k

    try:
        experiment = run_kernel_experiment(config, callback=tick)
    except ParameterError as exc:
        raise _flag_error(exc) from None
    except ImportError as exc:
        raise CliError(f"--teacher {config.teacher} is unavailable: {exc}") from None
    finally:
        if state["bar"] is not None:
            state["bar"].close()
    tr = experiment.trajectories()
    _write_csv(out / "trajectories.csv", tr)
    np.savez_compressed(
        out / "outputs.npz",
        step=experiment.steps,
        theory_train_outputs=experiment.theory_train_outputs,
        network_train_outputs=experiment.network.train_outputs,
        u_star=experiment.theory.u_star,
        teacher=experiment.teacher.train_outputs,
    )
    summary = experiment.summary()
    files = ["trajectories.csv", "outputs.npz", "summary.json"]
    if not args.no_plots:
        title = (f"n={config.n} d={config.d} width={config.width} λ={config.lam:g} "
                 f"teacher={config.teacher} init={config.init}")
        files += _plots(out, tr, title, summary)
    summary["files"] = files
    (out / "summary.json").write_text(json.dumps(_jsonable(summary), indent=2) + "\n")
    print_json(summary)
    if not math.isfinite(summary["max_deviation_rms"]):
        return 1
    return 0
