"""``kd-replica demo``: paper Fig. 2 — inheriting the regularisation — theory and simulations.

Pure distillation (chi = 1) of an eta = 0.5 sparse student from ridge teachers with
lam_t in {1e-2, 1e-1}, against the student trained directly on the labels, at rho = 0.2,
delta = 1. Student ridge 1e-4 stands for the paper's "unregularised".
"""

from __future__ import annotations

import argparse

import numpy as np

from replica.cli.common import add_quiet, integer, progress
from replica.cli.models import output_dir

LAM_S = 1e-4
SERIES = (  # label, colour, student parameters
    ("unregularised (labels)", "grey", {"chi": 0.0, "lam_t": 0.1}),
    (r"KD, $\tilde\lambda=10^{-2}$", "tab:blue", {"chi": 1.0, "lam_t": 1e-2}),
    (r"KD, $\tilde\lambda=10^{-1}$", "tab:red", {"chi": 1.0, "lam_t": 1e-1}),
)


def register(commands, curve, simulate) -> None:
    p = commands.add_parser("demo", help="paper Fig. 2 with simulation points (a few minutes)")
    p.add_argument("--out", default="kd-replica-demo", help="output directory")
    p.add_argument("--n", type=integer("n", 50), default=500, help="simulation dimension N")
    p.add_argument("--seeds", type=integer("seeds", 2), default=4, help="seeds per point")
    p.add_argument("--points", type=integer("points", 2), default=5,
                   help="simulated alpha values per curve")
    add_quiet(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from replica.errors import bayes_optimal_error
    from replica.sweep import student_curve, write_columns_csv
    from simulations.monte_carlo import simulate_student

    out = output_dir(args.out)
    alphas = np.linspace(2.0, 10.0, 60)
    sim_alphas = np.linspace(2.0, 10.0, args.points)
    fig, ax = plt.subplots(figsize=(6.0, 4.5), constrained_layout=True)
    theory_rows: dict[str, list] = {}
    sim_rows: dict[str, list] = {}
    bar = progress(total=len(SERIES) * (1 + len(sim_alphas)), desc="demo", quiet=args.quiet)
    for label, colour, params in SERIES:
        curve = student_curve("alpha", alphas, lam_s=LAM_S, **params)
        bar.update(1)
        ax.plot(alphas, curve.columns["eps_g"], color=colour, lw=2, label=label)
        if params["chi"] > 0:
            ax.plot(alphas, curve.columns["teacher_eps_g"], color=colour, ls="--", lw=1)
        for key, values in curve.columns.items():
            theory_rows.setdefault(key, []).extend(values)
        theory_rows.setdefault("series", []).extend([label] * len(alphas))
        means, sems = [], []
        for alpha in sim_alphas:
            sim = simulate_student(float(alpha), lam_s=LAM_S, n=args.n, seeds=args.seeds,
                                   **params)  # fmt: skip
            bar.update(1)
            means.append(sim.mean["eps_g_test"])
            sems.append(sim.sem["eps_g_test"])
            row = {"series": label, "alpha": float(alpha), **params, "n": args.n,
                   "seeds": args.seeds}  # fmt: skip
            for key in ("eps_g", "eps_g_test", "teacher_eps_g", "q", "m"):
                row[key], row[f"{key}_sem"] = sim.mean[key], sim.sem[key]
            for key, value in row.items():
                sim_rows.setdefault(key, []).append(value)
        ax.errorbar(sim_alphas, means, yerr=sems, fmt="o", color=colour, ms=4, capsize=2)
    bar.close()
    ax.plot(alphas, [bayes_optimal_error(a, eta=0.5) for a in alphas], "k-", lw=1,
            label="Bayes-optimal (student, teacher)")  # fmt: skip
    ax.plot(alphas, [bayes_optimal_error(a) for a in alphas], "k-", lw=1)
    ax.set_xlabel(r"$\alpha$")
    ax.set_ylabel(r"test error $\varepsilon_g$")
    ax.set_title(r"Fig. 2: pure distillation, $\rho=0.2$, $\Delta=1$, $\eta=0.5$"
                 f"\n(dashed: teachers; points: N={args.n}, {args.seeds} seeds, test-set error)",
                 fontsize=9)  # fmt: skip
    ax.legend(frameon=False, fontsize=8)
    fig.savefig(out / "figure2.png", dpi=130)
    plt.close(fig)
    write_columns_csv(theory_rows, out / "figure2_theory.csv")
    write_columns_csv(sim_rows, out / "figure2_simulations.csv")
    print(f"wrote {out / 'figure2.png'}, figure2_theory.csv and figure2_simulations.csv")
    return 0
