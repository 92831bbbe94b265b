"""``kd-replica kernel``: knowledge transfer in the kernel regime (docs/kernel.md).

* ``kd-replica kernel [options] --out DIR``: one run followed step by step, kernel theory vs a
  finite-width network (``trajectories.csv``, ``outputs.npz``, ``summary.json``, plots).
* ``kd-replica kernel compare``: with and without the teacher -- the lambda = 0 baseline, KD at
  equal step and KD at equal effective step ``lr (1 + lam)``, over seeds (``runs.csv``,
  ``summary.json``, spectral diagnostic plot).
* ``kd-replica kernel sweep --vary lam|teacher-quality``: curves along lambda (both step
  conventions, lambda = 0 included) or along the teacher's quality knob (``sweep.csv``,
  ``summary.json``, plots).
* ``kd-replica kernel lottery``: the lottery-ticket protocol (prune, rewind, retrain).
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
    OneLineParser,
    _jsonable,
    add_quiet,
    integer,
    number,
    print_json,
    progress,
)
from replica.cli.models import add_parameter
from replica.params import (
    PARAMETERS,
    ParameterError,
    check_nonnegative,
    check_positive,
    check_unit_interval,
)

TEACHERS = ("privileged", "wide", "noisy", "ridge", "top-modes", "bottom-modes")


def _learning_rate(text: str):
    """``--lr``: a positive number or ``auto``."""
    if text.strip().lower() == "auto":
        return None
    return number("--lr", check_positive)(text)


def _number_list(name: str, check=None):
    def parse(text: str) -> list[float]:
        out = []
        for part in text.split(","):
            out.append(number(name, check)(part.strip()))
        if not out:
            raise argparse.ArgumentTypeError(f"{name} must be a comma-separated list of numbers")
        return out

    parse.__name__ = name
    return parse


def _add_setup_options(p: argparse.ArgumentParser, *, seeds: int, width: int = 4096) -> None:
    """Options of :class:`replica.kernel_regime.experiments.KernelSetup`."""
    p.add_argument("--dataset", choices=("mixture", "digits"), default="mixture",
                   help="mixture (Eq. 10 on the sphere) or digits (scikit-learn, even vs odd; "
                        "needs the [data] extra) (mixture)")
    p.add_argument("--n", type=integer("--n", 2), default=200, help="training samples (200)")
    p.add_argument("--d", type=integer("--d"), default=50, help="mixture input dimension (50)")
    p.add_argument("--n-test", type=integer("--n-test"), default=None,
                   help="test samples (mixture 2000; digits: all remaining images)")
    p.add_argument("--n-privileged", type=integer("--n-privileged", 0), default=1000,
                   help="privileged points seen only by the teacher (1000)")
    # the mixture's parameters and the label smoothing are the model's (replica.params schema)
    for name in ("rho", "delta"):
        add_parameter(p, name, help=f"mixture: {PARAMETERS[name].help}")
    p.add_argument("--teacher", choices=TEACHERS, default="privileged",
                   help="privileged: NTK regression on the privileged points (default); wide: "
                        "early-stopped wide network on the labels; noisy: flipped labels; ridge: "
                        "ridge-logistic; top-modes / bottom-modes: labels projected on H's top / "
                        "bottom eigenvectors")
    p.add_argument("--teacher-ridge", type=number("--teacher-ridge", check_nonnegative),
                   default=0.0, help="privileged teacher: kernel ridge (0)")
    p.add_argument("--teacher-width", type=integer("--teacher-width", 2), default=8192,
                   help="wide teacher: width (8192)")
    p.add_argument("--teacher-steps", type=integer("--teacher-steps", 0), default=20,
                   help="wide teacher: GD steps on the labels (20)")
    p.add_argument("--flip", type=number("--flip", check_unit_interval), default=0.2,
                   help="noisy teacher: fraction of flipped labels (0.2)")
    add_parameter(p, "smoothing", flags=("--smoothing", "--smooth"), dest="smooth",
                  help=f"noisy teacher: {PARAMETERS['smoothing'].help}")
    add_parameter(p, "lam", flags=("--ridge-lam",), dest="ridge_lam",
                  help=f"ridge teacher: the ridge-logistic teacher's {PARAMETERS['lam'].help}")
    p.add_argument("--teacher-modes", type=integer("--teacher-modes"), default=10,
                   help="top-/bottom-modes teacher: number of eigenvectors (10)")
    p.add_argument("--init", choices=("symmetric", "random"), default="symmetric",
                   help="symmetric: paired neurons, f0 = 0 (default); random: independent "
                        "N(0, kappa^2) neurons, whose initial function persists at test points")
    p.add_argument("--kappa", type=number("--kappa", check_positive), default=1.0,
                   help="initial weight scale (1)")
    p.add_argument("--width", type=integer("--width", 2), default=width,
                   help=f"student width ({width})")
    p.add_argument("--steps", type=integer("--steps", 0), default=300, help="GD steps (300)")
    p.add_argument("--lr", type=_learning_rate, default=None,
                   help="baseline step size, or 'auto' (per seed, see the description) (auto)")
    p.add_argument("--tolerance", type=number("--tolerance", check_positive), default=1e-2,
                   help="RMS distance to u* defining 'converged' (0.01)")
    p.add_argument("--seed", type=integer("--seed", 0), default=0, help="random seed (0)")
    if seeds:
        p.add_argument("--seeds", type=integer("--seeds"), default=seeds,
                       help=f"independent replicates (data, teacher, student) ({seeds})")
        p.add_argument("--diagnostic-step", type=integer("--diagnostic-step", 0), default=None,
                       help="step of the per-eigenmode residual diagnostic (min(10, steps))")
        p.add_argument("--no-network", action="store_true",
                       help="theory only (no finite-width network)")
        p.add_argument("--workers", type=integer("--workers"), default=None,
                       help="worker processes, one seed each (default: all cores)")
    p.add_argument("--out", default=None, metavar="DIR", help="output directory (required)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    add_quiet(p)


def register(commands, curve, simulate) -> None:  # noqa: ARG001 - curve/simulate unused
    """Add the ``kernel`` command and its sub-commands to the top-level sub-parsers."""
    p = commands.add_parser(
        "kernel",
        help="kernel-regime KD: NTK theory vs finite-width ReLU networks (compare, sweep, lottery)",
        description=(
            "Wide two-layer ReLU students trained by full-batch GD on 1/2|u-y|^2 + lam/2|u-t|^2 "
            "(data on the sphere, sign targets) against the kernel-regime prediction (Panahi et "
            "al., arXiv 2003.13438). Without a sub-command: one run followed step by step, "
            "with lr auto = 1/((1+lam) mu_max)."
        ),
    )
    p.add_argument("--lam", type=number("--lam", check_nonnegative), default=1.0,
                   help="teacher weight lambda >= 0 (1)")
    p.add_argument("--record-points", type=integer("--record-points", 2), default=100,
                   help="approximate number of recorded steps (100)")
    _add_setup_options(p, seeds=0)
    p.set_defaults(handler=run_single)
    sub = p.add_subparsers(dest="kernel_action", metavar="ACTION", parser_class=OneLineParser)
    sub.required = False

    c = sub.add_parser(
        "compare", help="with and without the teacher, at equal step and equal effective step",
        description=(
            "Runs per seed: lambda = 0 (baseline) at step lr; lambda = LAM at the same lr "
            "(equal step: effective step lr(1+lam), the trivial speed-up included); lambda = LAM "
            "at lr/(1+lam) (equal effective step). lr auto = 1/((1+LAM) mu_max) per seed."
        ),
    )
    c.add_argument("--lam", type=number("--lam", check_nonnegative), default=1.0,
                   help="teacher weight lambda >= 0 (1)")
    _add_setup_options(c, seeds=5)
    c.set_defaults(handler=run_compare)

    s = sub.add_parser(
        "sweep", help="curves along lambda or the teacher's quality",
        description=(
            "--vary lam: both step conventions (equal effective step: lr(1+lam) = 1/mu_max; "
            "equal step: lr = 1/((1+lam_max) mu_max)), lambda = 0 always included. "
            "--vary teacher-quality: the knob of --teacher (privileged: --n-privileged values, "
            "wide: --teacher-steps, noisy: --flip, ridge: --ridge-lam, *-modes: "
            "--teacher-modes) at fixed --lam, equal effective step, with the lambda = 0 baseline."
        ),
    )
    s.add_argument("--vary", choices=("lam", "teacher-quality"), required=True,
                   help="what to sweep")
    s.add_argument("--values", type=_number_list("--values"), default=None,
                   help="comma-separated values (defaults: lam 0,0.25,0.5,1,2,4,8; quality: per "
                        "teacher)")
    s.add_argument("--lam", type=number("--lam", check_nonnegative), default=1.0,
                   help="teacher weight for --vary teacher-quality (1)")
    _add_setup_options(s, seeds=3)
    s.set_defaults(handler=run_sweep)

    lt = sub.add_parser(
        "lottery", help="lottery tickets: prune by movement / magnitude, rewind, retrain",
        description=(
            "Train the wide student with (lambda = LAM) and without the teacher, keep a "
            "fraction of neurons by movement |w(T) - w(0)| or final norm |w(T)|, rewind them to "
            "w(0), retrain on the labels, and compare with random sub-networks of the same "
            "size and with the kernel theory of each sub-network (its empirical NTK)."
        ),
    )
    lt.add_argument("--lam", type=number("--lam", check_nonnegative), default=1.0,
                    help="teacher weight of the guided training (1)")
    lt.add_argument("--keep", type=_number_list("--keep", _check_fraction), default=None,
                    help="kept fractions of neurons (0.05,0.2)")
    _add_setup_options(lt, seeds=3)
    lt.set_defaults(handler=run_lottery)


def _check_fraction(name: str, value: float) -> float:
    if not 0.0 < value <= 1.0:
        raise ParameterError(f"{name} values must lie in (0, 1]; got {value!r}")
    return value


# ----------------------------------------------------------------------------- helpers
def _flag_error(exc: Exception) -> CliError:
    """Name the command-line flag (``--teacher-width``) rather than the Python field."""
    head, _, rest = str(exc).partition(" ")
    return CliError(f"--{head.replace('_', '-')} {rest}")


def _setup(args, *, seeds: int = 1):
    from replica.kernel_regime.experiments import KernelSetup

    n_test = args.n_test
    try:
        return KernelSetup(
            dataset=args.dataset, n=args.n, d=args.d, n_test=n_test,
            n_privileged=args.n_privileged, rho=args.rho, delta=args.delta,
            teacher=args.teacher, teacher_ridge=args.teacher_ridge,
            teacher_width=args.teacher_width, teacher_steps=args.teacher_steps,
            flip=args.flip, smooth=args.smooth, ridge_lam=args.ridge_lam,
            teacher_modes=args.teacher_modes, init=args.init, kappa=args.kappa,
            width=args.width, steps=args.steps, lr=args.lr, tolerance=args.tolerance,
            diagnostic_step=getattr(args, "diagnostic_step", None),
            seed=args.seed, seeds=getattr(args, "seeds", seeds),
        )  # fmt: skip
    except ParameterError as exc:
        raise _flag_error(exc) from None


def _out_dir(args) -> Path:
    """The output directory, created and checked writable before any computation."""
    from replica.cli.models import output_dir

    if args.out is None:
        raise CliError("--out is required (output directory)")
    try:
        return output_dir(args.out)
    except CliError as exc:  # this command names its flags with their dashes
        raise CliError(f"--{exc}") from None


def _write_rows(path: Path, rows: list[dict]) -> None:
    names: list[str] = []
    for row in rows:
        names += [k for k in row if k not in names]
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=names)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.10g}" if isinstance(v, float) else v)
                             for k, v in row.items()})  # fmt: skip


def _write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(_jsonable(obj), indent=2) + "\n")


def _figure(out: Path, name: str, draw) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    draw(ax)
    fig.tight_layout()
    fig.savefig(out / name, dpi=120)
    plt.close(fig)
    return name


def _run_guarded(fn, *a, **kw):
    """Call ``fn``; map bad input to a one-line error naming the flag."""
    try:
        return fn(*a, **kw)
    except ParameterError as exc:
        raise _flag_error(exc) from None
    except ValueError as exc:  # numerics (e.g. saddle.linear_dynamics) on bad input
        raise CliError(str(exc).splitlines()[0]) from None
    except ImportError as exc:
        raise CliError(f"--teacher {kw.get('teacher', '')} is unavailable: {exc}") from None


def _bar(total: int, desc: str, quiet: bool):
    state = {"bar": None, "last": 0}

    def tick(k: int) -> None:
        if state["bar"] is None:  # created lazily: nothing printed before validation
            state["bar"] = progress(total=total, desc=desc, quiet=quiet)
        state["bar"].update(k - state["last"])
        state["last"] = k

    def close() -> None:
        if state["bar"] is not None:
            state["bar"].close()

    return tick, close


def _workers(args) -> int:
    from saddle.executor import default_workers

    w = args.workers if args.workers is not None else default_workers()
    return max(1, min(w, args.seeds))


def _table(runs, keys=("test_error", "train_error", "capacity", "distance", "iterations")):
    lines = []
    for r in runs:
        lines.append(r.spec.label + (f"   [lr = {r.spec.lr:g}]" if r.spec.lr else ""))
        for k in keys:
            th = r.theory[k]
            net = "-" if r.network is None else str(r.network[k])
            dth = r.theory_change[k]
            dnet = "-" if r.network_change is None else str(r.network_change[k])
            lines.append(f"  {k:<12} theory {str(th):<22} network {net:<22} "
                         f"change vs λ=0: theory {str(dth):<20} network {dnet}")  # fmt: skip
    return "\n".join(lines)


# ----------------------------------------------------------------------------- single run
def _trajectory_plots(out: Path, tr: dict[str, np.ndarray], title: str, summary: dict):
    k = np.maximum(tr["step"].astype(float), 0.5)  # step 0 on a log axis
    specs = [
        ("kernel_loss.png", "training loss  1/2|u-y|² + λ/2|u-t|²",
         [("theory_loss", "kernel theory", "-"), ("network_loss", "network", "o")], "log"),
        ("kernel_test_error.png", "test error",
         [("theory_test_error", "kernel theory", "-"), ("network_test_error", "network", "o"),
          ("linearised_test_error", "linearised Gram (proportional regime)", "--")], "linear"),
        ("kernel_distance.png", "|W(k) − W(0)|_F",
         [("theory_distance", "kernel theory", "-"), ("network_distance", "network", "o")],
         "linear"),
    ]  # fmt: skip
    files = []
    for fname, ylabel, series, yscale in specs:
        def draw(ax, fname=fname, ylabel=ylabel, series=series, yscale=yscale):
            for key, label, style in series:
                if key in tr:
                    if style == "o":
                        ax.plot(k, tr[key], "o", ms=3, mfc="none", label=label)
                    else:
                        ax.plot(k, tr[key], style, lw=1.8, label=label)
            if fname == "kernel_distance.png":
                ax.axhline(summary["capacity"], color="gray", ls=":", lw=1.2,
                           label="capacity sqrt((u*-u0)ᵀH⁻¹(u*-u0))")  # fmt: skip
            if fname == "kernel_test_error.png" and summary.get("teacher_test_error") is not None:
                ax.axhline(summary["teacher_test_error"], color="gray", ls=":", lw=1.2,
                           label="teacher")  # fmt: skip
            ax.set_xscale("log")
            ax.set_yscale(yscale)
            ax.set_xlabel("GD step k (k = 0 drawn at 0.5)")
            ax.set_ylabel(ylabel)
            ax.set_title(title, fontsize=9)
            ax.legend(fontsize=8)

        files.append(_figure(out, fname, draw))
    return files


def run_single(args: argparse.Namespace) -> int:
    """One run followed step by step: CSV, NPZ, JSON and PNG files."""
    from replica.kernel_regime.trajectory import run_trajectory

    setup = _setup(args)
    out = _out_dir(args)
    tick, close = _bar(setup.steps, "GD", args.quiet)
    try:
        res = _run_guarded(run_trajectory, setup, args.lam, record_points=args.record_points,
                           callback=tick)  # fmt: skip
    finally:
        close()
    tr = res.trajectories()
    _write_rows(out / "trajectories.csv",
                [{k: (int(v[i]) if k == "step" else float(v[i])) for k, v in tr.items()}
                 for i in range(tr["step"].size)])  # fmt: skip
    np.savez_compressed(
        out / "outputs.npz",
        step=res.steps,
        theory_train_outputs=res.theory_train_outputs,
        network_train_outputs=res.network.train_outputs,
        u_star=res.theory.u_star,
        teacher=res.replicate.teacher.train_outputs,
    )
    summary = res.summary()
    files = ["trajectories.csv", "outputs.npz", "summary.json"]
    if not args.no_plots:
        title = (f"{setup.dataset} n={setup.n} width={setup.width} λ={args.lam:g} "
                 f"teacher={setup.teacher} init={setup.init}")  # fmt: skip
        files += _trajectory_plots(out, tr, title, summary)
    summary["files"] = files
    _write_json(out / "summary.json", summary)
    print_json(summary)
    return 0 if math.isfinite(summary["max_deviation_rms"]) else 1


# ----------------------------------------------------------------------------- compare
def run_compare(args: argparse.Namespace) -> int:
    """Baseline vs KD at equal step and equal effective step, theory and network over seeds."""
    from replica.kernel_regime.experiments import compare
    from replica.kernel_regime.plots import plot_spectrum

    setup = _setup(args)
    out = _out_dir(args)
    tick, close = _bar(setup.seeds, "seeds", args.quiet)
    try:
        res = _run_guarded(compare, setup, args.lam, network=not args.no_network,
                           workers=_workers(args), callback=tick)  # fmt: skip
    finally:
        close()
    _write_rows(out / "runs.csv", res.rows())
    summary = res.to_dict()
    files = ["runs.csv", "summary.json"]
    if not args.no_plots:
        files.append(_figure(out, "kernel_spectrum.png", lambda ax: plot_spectrum(res, ax)))
    summary["files"] = files
    _write_json(out / "summary.json", summary)
    t = res.teacher
    print(f"teacher: disagrees with the labels on {t['train_disagreement']} of the training "
          f"points; test error {t['test_error']}")  # fmt: skip
    print(_table(res.runs))
    print(f"(mean ± SE over {setup.seeds} seeds; written to {out})")
    return 0


# ----------------------------------------------------------------------------- sweep
def run_sweep(args: argparse.Namespace) -> int:
    """Curves along lambda or along the teacher's quality knob."""
    from replica.kernel_regime.experiments import sweep
    from replica.kernel_regime.plots import plot_sweep, plot_train_error_vs_capacity

    setup = _setup(args)
    out = _out_dir(args)
    tick, close = _bar(setup.seeds, "seeds", args.quiet)
    try:
        res = _run_guarded(sweep, setup, args.vary, args.values, lam=args.lam,
                           network=not args.no_network, workers=_workers(args),
                           callback=tick)  # fmt: skip
    finally:
        close()
    _write_rows(out / "sweep.csv", res.rows())
    summary = res.to_dict()
    files = ["sweep.csv", "summary.json"]
    if not args.no_plots:
        for key in ("test_error", "iterations", "capacity"):
            files.append(_figure(out, f"kernel_sweep_{key}.png",
                                 lambda ax, key=key: plot_sweep(res, key, ax)))  # fmt: skip
        if args.vary == "lam":
            files.append(_figure(out, "kernel_sweep_train_error_vs_capacity.png",
                                 lambda ax: plot_train_error_vs_capacity(res, ax)))  # fmt: skip
    summary["files"] = files
    _write_json(out / "summary.json", summary)
    for mode, pts in res.curves.items():
        print(f"[{mode}]")
        print(_table([p.run for p in pts], keys=("test_error", "capacity", "iterations")))
    if res.baseline is not None:
        print("[baseline]")
        print(_table([res.baseline], keys=("test_error", "capacity", "iterations")))
    print(f"(mean ± SE over {setup.seeds} seeds; written to {out})")
    return 0


# ----------------------------------------------------------------------------- lottery
def run_lottery(args: argparse.Namespace) -> int:
    """The lottery-ticket protocol (see ``replica.kernel_regime.lottery``)."""
    from replica.kernel_regime.lottery import lottery

    setup = _setup(args)
    out = _out_dir(args)
    keep = tuple(args.keep) if args.keep else (0.05, 0.2)
    tick, close = _bar(setup.seeds, "seeds", args.quiet)
    try:
        res = _run_guarded(lottery, setup, lam=args.lam, keep=keep, workers=_workers(args),
                           callback=tick)  # fmt: skip
    finally:
        close()
    _write_rows(out / "tickets.csv", res.rows())
    summary = res.to_dict()
    summary["files"] = ["tickets.csv", "summary.json"]
    _write_json(out / "summary.json", summary)
    print(res.table())
    print(f"(mean ± SE over {setup.seeds} seeds; written to {out})")
    return 0
