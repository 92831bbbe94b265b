"""The twelve figures of Saglietti & Zdeborová (2021): theory curves, Bayes-optimal lines,
thresholds and (optionally) simulation points, as PNG and CSV.

Each figure is a :class:`FigureSpec`: panels, and *series* (a theory curve along one parameter,
computed through :mod:`replica.sweep`'s warm-started, resumable segments) plus cheap reference
lines (Bayes-optimal errors, best direct ridge, trivial error ``rho``) and threshold markers.
:func:`render_figure` runs the series through an executor, journals every finished segment in
``DIR/figureN_data/`` (re-running with the same output directory resumes), and writes
``figureN.png``, ``figureN.csv`` (long format: one row per plotted point) and, with
simulations, ``figureN_simulations.csv``.

Conventions and choices (SPEC §2b, §5)
--------------------------------------
- ``lam`` follows paper Eq. 1 (summed loss + ``lam/2 |w|^2``). Fig. 3 and 6 were checked to use
  it (Fig. 3's "properly regularised" ``lam_s = 0.2`` has an interior optimal ``chi`` matching
  the best direct ridge, Fig. 6's ``lam = 0.1`` is near-optimal for the teacher as the text
  says); Fig. 1's optimal-``lam`` curve, Fig. 2's teacher curves (``eps ~ 0.154`` at
  ``alpha = 3``, ``lam = 0.1``) and Fig. 12's ``rho = 0.5`` kinks at the thresholds match the
  paper with no conversion either, so none is applied anywhere.
- "Unregularised" is ``lam = 1e-5`` as in the captions of Fig. 5, 11, 12.
- The student trained on the labels alone (``chi = 0``: Fig. 2 grey, Fig. 3 dashed, Fig. 4
  grey and red, Fig. 7 dotted, Fig. 9 lines) is computed through its exact equivalence with
  the teacher problem at ``(alpha/eta, delta/eta, lam/eta^2)`` (model ``"direct"``).
- Fig. 4's distilled student uses ``lam_s = 0.05`` (SPEC §5 erratum: not reproduced with
  ``lam_s -> 0``); Fig. 8 uses ``lam_t = 0.15``, ``lam_s = 0.1``, ``T = 2`` (caption).
- Simulation points show the Eq. 12 error of the trained weights (measured ``m``, ``q``, ``b``:
  no test-set noise), mean +- standard error over seeds, for the plotted observable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from replica.errors import bayes_optimal_error
from replica.params import GaussianMixture, ParameterError
from replica.sweep import Optimise, path_tasks, rows_to_columns

UNREG = 1e-5
FIGURES = tuple(range(1, 13))
FIGURE_SEGMENT = 25


@dataclass(frozen=True)
class Series:
    """A theory curve of a figure.

    Attributes
    ----------
    name : str
        Identifier (file and CSV key).
    label : str
        Legend entry ('' for none).
    model : {"teacher", "student", "direct"}
    vary : str
        Parameter along the x axis.
    values : tuple of float
        Its values.
    fixed : dict
        Other parameters.
    y : str
        Plotted column.
    style : dict
        Matplotlib keywords (colour, line style, marker).
    panel : int
        Panel index.
    optimise : Optimise, optional
        Minimise ``eps_g`` over a parameter at each point.
    sim_values : tuple of float
        x values of the simulation points (empty: none for this series).
    extra : tuple of (column, style)
        More columns of the same rows to plot (e.g. the teacher's error, dashed).
    """

    name: str
    label: str
    model: str
    vary: str
    values: tuple
    fixed: dict
    y: str = "eps_g"
    style: dict = field(default_factory=dict)
    panel: int = 0
    optimise: Optimise | None = None
    sim_values: tuple = ()
    extra: tuple = ()


@dataclass(frozen=True)
class Panel:
    """Axes of one panel."""

    xlabel: str
    ylabel: str = r"$\varepsilon_g$"
    xlim: tuple | None = None
    ylim: tuple | None = None
    xlog: bool = False
    ylog: bool = False
    legend: str = "upper right"


@dataclass(frozen=True)
class Line:
    """A reference line computed in closed form: ``(xs, ys)`` on a panel."""

    label: str
    xs: tuple
    ys: tuple
    style: dict
    panel: int = 0


@dataclass(frozen=True)
class FigureSpec:
    """A paper figure: panels, theory series, reference lines and threshold markers.

    ``thresholds`` maps a panel to the threshold names drawn there as vertical lines
    (:class:`replica.thresholds.Thresholds` attributes) with the ``(rho, delta, eta)`` of
    ``threshold_params``.
    """

    number: int
    caption: str
    panels: tuple
    series: tuple
    lines: Callable[[], list[Line]] = field(repr=False, default=lambda: [])
    thresholds: dict = field(default_factory=dict)
    threshold_params: dict = field(default_factory=lambda: {"rho": 0.2, "delta": 1.0,
                                                            "eta": 0.5})  # fmt: skip
    layout: tuple = (1, 1)

    def to_dict(self) -> dict:
        return {"number": self.number, "caption": self.caption,
                "series": [s.name for s in self.series]}  # fmt: skip


# ----------------------------------------------------------------------------------------------
# The figures
# ----------------------------------------------------------------------------------------------


def _alphas(start: float, stop: float, num: int) -> tuple:
    return tuple(float(v) for v in np.linspace(start, stop, num))


def _bo_line(alphas, label: str, *, eta: float = 1.0, rho: float = 0.2, style=None,
             panel: int = 0) -> Line:  # fmt: skip
    mixture = GaussianMixture(rho, 1.0)
    ys = tuple(bayes_optimal_error(a, mixture, eta=eta) for a in alphas)
    return Line(label, tuple(alphas), ys, style or {"color": "k", "lw": 1.2}, panel)


def _hline(x0: float, x1: float, y: float, label: str, style: dict, panel: int = 0) -> Line:
    return Line(label, (x0, x1), (y, y), style, panel)


def _points(scale: float) -> int:
    return max(8, int(round(scale)))


def figure_spec(number: int, *, resolution: float = 1.0) -> FigureSpec:
    """The :class:`FigureSpec` of paper figure ``number`` (1-12).

    ``resolution`` scales the number of theory points of every curve (1: the defaults, e.g.
    200 alpha points in Fig. 5; smaller for quick looks and tests).
    """
    if number not in FIGURES:
        raise ParameterError(f"figure must be an integer in 1..12; got {number!r}")
    n = lambda k: _points(k * resolution)  # noqa: E731
    blue, red, grey = "tab:blue", "tab:red", "0.6"
    sims_alpha = (1.5, 3.0, 4.5, 6.0, 7.5, 9.0)
    if number == 1:
        alphas = _alphas(0.1, 10.0, n(100))
        return FigureSpec(
            1, "Optimally regularised logistic regression vs the Bayes-optimal bound "
               "(rho = 0.2, Delta = 1)",
            (Panel(r"$\alpha$", xlim=(0, 10), ylim=(0.11, 0.2)),),
            (Series("optimal_lambda", r"optimal $\lambda$", "teacher", "alpha", alphas, {},
                    style={"color": red}, optimise=Optimise("lam", 1e-4, 10.0),
                    sim_values=sims_alpha),),
            lambda: [_bo_line(alphas, "BO")],
        )  # fmt: skip
    if number == 2:
        alphas = _alphas(2.0, 10.0, n(81))
        sims = (3.0, 4.5, 6.0, 7.5, 9.0)
        kd = {"chi": 1.0, "lam_s": UNREG}
        return FigureSpec(
            2, "Pure distillation (chi = 1) from ridge teachers (dotted: teachers), eta = 0.5",
            (Panel(r"$\alpha$", xlim=(2, 10), ylim=(0.1, 0.26)),),
            (Series("unregularised", "unregularized", "direct", "alpha", alphas,
                    {"lam_s": UNREG}, style={"color": grey}, sim_values=sims),
             Series("kd_lam_t_1e-2", r"$\tilde\lambda$=1e-2", "student", "alpha", alphas,
                    {**kd, "lam_t": 1e-2}, style={"color": blue}, sim_values=sims,
                    extra=(("teacher_eps_g", {"color": blue, "ls": ":"}),)),
             Series("kd_lam_t_1e-1", r"$\tilde\lambda$=1e-1", "student", "alpha", alphas,
                    {**kd, "lam_t": 0.1}, style={"color": red}, sim_values=sims,
                    extra=(("teacher_eps_g", {"color": red, "ls": ":"}),))),
            lambda: [_bo_line(alphas, "BO", eta=0.5),
                     _bo_line(alphas, "", style={"color": "k", "ls": ":", "lw": 1.2})],
        )  # fmt: skip
    if number == 3:
        from replica.sweep import best_direct_ridge

        lams = tuple(float(v) for v in np.geomspace(1e-5, 10.0, n(61)))
        chis = _alphas(0.0, 1.0, n(41))
        series = []
        for alpha, colour in ((1.5, red), (4.5, blue)):
            series.append(Series(f"kd_alpha_{alpha}", rf"$\alpha$={alpha}", "student", "lam_t",
                                 lams, {"alpha": alpha, "chi": 1.0, "lam_s": UNREG},
                                 style={"color": colour},
                                 sim_values=(1e-4, 1e-3, 1e-2, 1e-1, 1.0)))  # fmt: skip
            series.append(Series(f"direct_alpha_{alpha}", "", "direct", "lam_s", lams,
                                 {"alpha": alpha}, style={"color": colour, "ls": ":"},
                                 sim_values=(1e-4, 1e-3, 1e-2, 1e-1, 1.0)))  # fmt: skip
        for lam_s, colour in ((0.1, "gold"), (0.2, "orange"), (0.5, red)):
            series.append(Series(f"chi_lam_s_{lam_s}", rf"$\tilde\lambda$=0.1, $\lambda$={lam_s}",
                                 "student", "chi", chis,
                                 {"alpha": 4.5, "lam_t": 0.1, "lam_s": lam_s},
                                 style={"color": colour}, panel=1,
                                 sim_values=(0.1, 0.3, 0.5, 0.7, 0.9)))  # fmt: skip

        def lines() -> list[Line]:
            out = []
            for alpha, colour in ((1.5, red), (4.5, blue)):
                best = best_direct_ridge(alpha)[1]
                out.append(_hline(1e-5, 10.0, best, "", {"color": colour, "ls": "--", "lw": 1}))
                bo = bayes_optimal_error(alpha, eta=0.5)
                out.append(_hline(1e-5, 10.0, bo, "BO" if alpha == 1.5 else "",
                                  {"color": "k", "lw": 1.2}))  # fmt: skip
            best = best_direct_ridge(4.5)[1]
            out.append(_hline(0.0, 1.0, best, "", {"color": red, "ls": "--", "lw": 1}, 1))
            out.append(_hline(0.0, 1.0, bayes_optimal_error(4.5, eta=0.5), "BO",
                              {"color": "k", "lw": 1.2}, 1))  # fmt: skip
            return out

        return FigureSpec(
            3, "Top: KD (chi = 1, full) vs direct ridge (chi = 0, dotted) against lambda; "
               "dashed: best direct ridge. Bottom: tuning chi at alpha = 4.5",
            (Panel(r"$\lambda$", xlim=(1e-5, 10), ylim=(0.16, 0.3), xlog=True),
             Panel(r"$\chi$", xlim=(0, 1), ylim=(0.165, 0.2), legend="upper left")),
            tuple(series), lines, layout=(2, 1),
        )  # fmt: skip
    if number == 4:
        alphas = _alphas(2.0, 10.0, n(81))
        sims = (2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0)
        return FigureSpec(
            4, "Distilling the Bayes-optimal proxy teacher (lam_s = 0.05), eta = 0.5",
            (Panel(r"$\alpha$", xlim=(2, 10), ylim=(0.16, 0.21)),),
            (Series("unregularised", "unregularized", "direct", "alpha", alphas,
                    {"lam_s": UNREG}, style={"color": grey}),
             Series("optimal_l2", r"optimal L$_2$ regularization", "direct", "alpha", alphas,
                    {}, style={"color": red}, optimise=Optimise("lam_s", 1e-4, 10.0)),
             Series("kd_bayes_teacher", "KD with optimal teacher", "student", "alpha", alphas,
                    {"teacher": "bayes", "chi": 1.0, "lam_s": 0.05}, style={"color": blue},
                    sim_values=sims)),
            lambda: [_bo_line(alphas, "BO", eta=0.5)],
        )  # fmt: skip
    if number == 5:
        alphas = _alphas(0.1, 6.0, n(200))
        sims = (0.5, 1.0, 1.5, 2.5, 3.5, 4.5, 5.5)
        return FigureSpec(
            5, "Double descent in pure distillation (chi = 1), eta = 0.5",
            (Panel(r"$\alpha$", xlim=(0, 6), ylim=(0.15, 0.4)),),
            (Series("unregularised", r"$\tilde\lambda$=1e-5, $\lambda$=1e-5", "student",
                    "alpha", alphas, {"lam_t": UNREG, "lam_s": UNREG, "chi": 1.0},
                    style={"color": blue}, sim_values=sims),
             Series("teacher_regularised", r"$\tilde\lambda$=1e-1, $\lambda$=1e-5", "student",
                    "alpha", alphas, {"lam_t": 0.1, "lam_s": UNREG, "chi": 1.0},
                    style={"color": red}, sim_values=sims)),
            lambda: [_bo_line(alphas, "BO", eta=0.5)],
            thresholds={0: ("alpha_I", "alpha_S", "alpha_S_teacher")},
        )  # fmt: skip
    if number == 6:
        alphas = _alphas(0.1, 10.0, n(100))
        colours = ("k", "tab:blue", "tab:purple", "violet", red)
        series = tuple(
            Series(f"lam_{lam:g}", rf"$\lambda$={lam:g}", "teacher", "alpha", alphas,
                   {"lam": lam}, style={"color": c}, sim_values=(1.5, 3.0, 4.5, 6.0, 7.5, 9.0))
            for lam, c in zip((1e-5, 1e-3, 1e-2, 1e-1, 1.0), colours, strict=True)
        )  # fmt: skip
        return FigureSpec(
            6, "Ridge logistic regression (the teacher) at several lambda (rho = 0.2, Delta = 1)",
            (Panel(r"$\alpha$", xlim=(0, 10), ylim=(0.11, 0.21)),), series,
            lambda: [_bo_line(alphas, "BO", style={"color": "k", "ls": ":", "lw": 1.2})],
        )  # fmt: skip
    if number == 7:
        alphas = _alphas(0.1, 10.0, n(100))
        sims = (1.5, 3.0, 4.5, 6.0, 7.5, 9.0)
        kd = {"chi": 1.0, "lam_s": UNREG}
        return FigureSpec(
            7, "Pure distillation (full) vs ridge students on the labels (dotted), eta = 0.5",
            (Panel(r"$\alpha$", xlim=(0, 10), ylim=(0.16, 0.26)),),
            (Series("kd_lam_t_1e-5", r"$\tilde\lambda$=1e-5", "student", "alpha", alphas,
                    {**kd, "lam_t": UNREG}, style={"color": "k"}, sim_values=sims),
             Series("kd_lam_t_0.1", r"$\tilde\lambda$=0.1", "student", "alpha", alphas,
                    {**kd, "lam_t": 0.1}, style={"color": "violet"}, sim_values=sims),
             Series("direct_lam_0.1", r"$\lambda$=0.1", "direct", "alpha", alphas,
                    {"lam_s": 0.1}, style={"color": "violet", "ls": ":"}, sim_values=sims),
             Series("kd_lam_t_1", r"$\tilde\lambda$=1.", "student", "alpha", alphas,
                    {**kd, "lam_t": 1.0}, style={"color": red}, sim_values=sims),
             Series("direct_lam_1", r"$\lambda$=1.", "direct", "alpha", alphas,
                    {"lam_s": 1.0}, style={"color": red, "ls": ":"}, sim_values=sims)),
            lambda: [_bo_line(alphas, "BO", eta=0.5, style={"color": grey, "ls": "--"})],
        )  # fmt: skip
    if number == 8:
        alphas = _alphas(0.1, 10.0, n(100))
        colours = (red, "hotpink", "violet", blue)
        series = tuple(
            Series(f"chi_{chi:g}", rf"$\chi$={chi:g}", "student", "alpha", alphas,
                   {"chi": chi, "lam_t": 0.15, "lam_s": 0.1, "temperature": 2.0},
                   style={"color": c}, sim_values=(1.5, 3.0, 4.5, 6.0, 7.5, 9.0))
            for chi, c in zip((0.2, 0.6, 0.8, 1.0), colours, strict=True)
        )  # fmt: skip
        return FigureSpec(
            8, "Mixing parameter chi: lam_t = 0.15, lam_s = 0.1, T = 2, eta = 0.5",
            (Panel(r"$\alpha$", xlim=(0, 10), ylim=(0.16, 0.21)),), series,
            lambda: [_bo_line(alphas, "BO", eta=0.5, style={"color": "k", "ls": ":"})],
        )  # fmt: skip
    if number == 9:
        eps = _alphas(0.01, 0.48, n(48))
        dots = _alphas(0.025, 0.475, max(4, n(19)))
        series = []
        for alpha, colour in ((1.5, red), (4.5, "purple"), (7.5, blue)):
            series.append(Series(f"labels_alpha_{alpha}", rf"$\alpha$={alpha}", "direct",
                                 "smoothing", eps, {"alpha": alpha, "lam_s": UNREG},
                                 style={"color": colour}))  # fmt: skip
            series.append(Series(f"kd_alpha_{alpha}", "", "student", "smoothing", dots,
                                 {"alpha": alpha, "chi": 1.0, "lam_t": UNREG, "lam_s": UNREG},
                                 style={"color": "k", "ls": "none", "marker": "o", "ms": 3},
                                 sim_values=(0.05, 0.1, 0.2, 0.35)))  # fmt: skip
        return FigureSpec(
            9, "Label smoothing: student on smoothed labels (lines) vs pure distillation from a "
               "teacher trained on them (dots), lam = 1e-5",
            (Panel(r"$\epsilon$", xlim=(0, 0.5), ylim=(0.16, 0.28)),), tuple(series),
            lambda: [_hline(0.0, 0.5, 0.2, "", {"color": grey, "ls": "--", "lw": 1})],
        )  # fmt: skip
    if number == 10:
        alphas = _alphas(0.02, 2.0, n(100))
        colours = (red, "hotpink", "mediumpurple", blue)
        series = tuple(
            Series(f"T_{T:g}", f"T={T:g}", "student", "alpha", alphas,
                   {"chi": 1.0, "lam_t": 0.15, "lam_s": UNREG, "temperature": T},
                   style={"color": c}, sim_values=(0.4, 0.8, 1.2, 1.6))
            for T, c in zip((1.0, 2.0, 5.0, 10.0), colours, strict=True)
        )  # fmt: skip
        return FigureSpec(
            10, "Distillation temperature at small alpha: chi = 1, lam_t = 0.15, eta = 0.5",
            (Panel(r"$\alpha$", xlim=(0, 2), ylim=(0.15, 0.4)),), series,
            lambda: [_bo_line(alphas, "BO", eta=0.5, style={"color": "k", "ls": ":"})],
        )  # fmt: skip
    if number == 11:
        alphas = _alphas(0.1, 6.0, n(120))
        sims = (0.5, 1.5, 2.5, 3.5, 4.5, 5.5)
        panels = (
            Panel(r"$\alpha$", "CE", xlim=(0, 6), ylim=(0, 0.5), legend="lower right"),
            Panel(r"$\alpha$", "q", xlim=(0, 6), ylim=(0.01, 1e4), ylog=True),
            Panel(r"$\alpha$", r"MSE$_\sigma$", xlim=(0, 6), ylim=(1e-11, 0.1), ylog=True,
                  legend="lower right"),
            Panel(r"$\alpha$", "MSE", xlim=(0, 6), ylim=(1e-10, 1e5), ylog=True,
                  legend="lower right"),
        )  # fmt: skip
        series = []
        for lam_t, colour in ((UNREG, "k"), (0.1, "violet"), (1.0, red)):
            for panel, column in enumerate(("train_ce", "q", "mse_outputs",
                                            "mse_preactivations")):  # fmt: skip
                series.append(Series(
                    f"{column}_lam_t_{lam_t:g}", rf"$\tilde\lambda$={lam_t:g}", "student",
                    "alpha", alphas, {"chi": 1.0, "lam_t": lam_t, "lam_s": UNREG}, y=column,
                    style={"color": colour}, panel=panel, sim_values=sims))  # fmt: skip
        names = ("alpha_I", "alpha_S", "alpha_S_teacher")
        return FigureSpec(
            11, "Training observables of the distilled student (chi = 1, lam_s = 1e-5)",
            panels, tuple(series), thresholds={p: names for p in range(4)}, layout=(2, 2),
        )  # fmt: skip
    alphas = _alphas(0.1, 10.0, n(100))
    colours = (blue, "violet", red)
    series = tuple(
        Series(f"lam_t_{lam_t:g}", rf"$\tilde\lambda$={lam_t:g}", "student", "alpha", alphas,
               {"rho": 0.5, "chi": 1.0, "lam_t": lam_t, "lam_s": UNREG}, style={"color": c},
               sim_values=(1.5, 3.0, 4.5, 6.0, 7.5, 9.0),
               extra=(("teacher_eps_g", {"color": c, "ls": ":"}),))
        for lam_t, c in zip((UNREG, 1e-2, 1.0), colours, strict=True)
    )  # fmt: skip
    return FigureSpec(
        12, "Balanced clusters rho = 0.5: students (full), teachers (dotted), chi = 1",
        (Panel(r"$\alpha$", xlim=(0, 10), ylim=(0.15, 0.5)),), series,
        lambda: [_bo_line(alphas, "BO", eta=0.5, rho=0.5, style={"color": "k", "ls": "--"}),
                 _bo_line(alphas, "", rho=0.5, style={"color": "k", "ls": ":"})],
        threshold_params={"rho": 0.5, "delta": 1.0, "eta": 0.5},
    )  # fmt: skip


# ----------------------------------------------------------------------------------------------
# Simulations
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SimulationTask:
    """One simulation point of a series (module-level work unit for an executor)."""

    series: str
    index: int
    model: str
    params: dict
    x: float
    observables: tuple
    n: int
    seeds: int
    seed: int

    def to_dict(self) -> dict:
        return asdict(self)


def simulate_point(task: SimulationTask) -> list[dict]:
    """Run one simulation point; rows ``(series, index, x, quantity, mean, sem, n, seeds)``."""
    import warnings

    from simulations.monte_carlo import simulate_student, simulate_teacher

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if task.model == "teacher":
            res = simulate_teacher(**task.params, n=task.n, seeds=task.seeds, seed=task.seed,
                                   n_test=0)  # fmt: skip
        else:
            res = simulate_student(**task.params, n=task.n, seeds=task.seeds, seed=task.seed,
                                   n_test=0)  # fmt: skip
    rows = []
    for k, name in enumerate(task.observables):
        rows.append({"series": task.series, "index": task.index, "k": k, "x": task.x,
                     "quantity": name, "mean": res.mean[name], "sem": res.sem[name],
                     "n": task.n, "seeds": task.seeds})  # fmt: skip
    return rows


def _simulation_params(series: Series, x: float, theory: dict) -> tuple[str, dict]:
    """Model and parameters of the simulation of ``series`` at ``x``."""
    fixed = {**series.fixed, series.vary: x}
    if series.optimise is not None:  # use the theory's optimal parameter, interpolated
        xs = np.asarray(theory[series.vary], dtype=float)
        opt = np.asarray(theory[series.optimise.parameter], dtype=float)
        ok = np.isfinite(opt)
        if series.optimise.log:
            fixed[series.optimise.parameter] = float(10 ** np.interp(x, xs[ok], np.log10(opt[ok])))
        else:
            fixed[series.optimise.parameter] = float(np.interp(x, xs[ok], opt[ok]))
    if series.model == "teacher":
        keys = ("alpha", "rho", "delta", "lam", "smoothing")
        return "teacher", {k: v for k, v in fixed.items() if k in keys}
    if series.model == "direct":
        keys = ("alpha", "rho", "delta", "eta", "lam_s", "smoothing")
        return "student", {**{k: v for k, v in fixed.items() if k in keys}, "chi": 0.0}
    return "student", fixed


def _sim_observables(series: Series) -> tuple:
    names = [series.y] + [column for column, _ in series.extra]
    return tuple(n for n in names)


# ----------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------


def compute_figure(
    spec: FigureSpec,
    out: str | Path,
    *,
    executor=None,
    progress_factory=None,
    segment: int = FIGURE_SEGMENT,
    simulations: dict | None = None,
) -> tuple[dict, list[dict]]:
    """Theory (and simulation) data of a figure, journaled under ``out/figureN_data``.

    Parameters
    ----------
    spec : FigureSpec
    out : path
        Output directory.
    executor : concurrent.futures.Executor, optional
    progress_factory : callable, optional
        ``progress_factory(total, desc)`` returning a progress callable with ``close()``.
    segment : int
        Points per warm-started segment (default 25: a figure has a few long curves, and each
        segment's cold start costs ~5-10 warm points at vanishing ridge).
    simulations : dict, optional
        ``{"n": N, "seeds": S, "seed": s}`` to add simulation points.

    Returns
    -------
    theory : dict
        ``series name -> columns``.
    sims : list of dict
        Simulation rows.
    """
    from saddle.checkpoint import CsvJournal

    data = Path(out) / f"figure{spec.number}_data"
    data.mkdir(parents=True, exist_ok=True)
    jobs = []
    for s in spec.series:
        tasks = path_tasks(s.model, s.vary, s.values, s.fixed, segment=segment,
                           optimise=s.optimise)  # fmt: skip
        meta = {"figure": spec.number, "series": s.name, "model": s.model, "vary": s.vary,
                "values": [repr(v) for v in s.values], "fixed": s.fixed,
                "optimise": None if s.optimise is None else s.optimise.to_dict(),
                "segment": segment}  # fmt: skip
        jobs.append((s, tasks, CsvJournal(data / f"{s.name}.csv", ("index",), meta)))
    total = sum(len(s.values) for s in spec.series)
    bar = progress_factory(total, f"figure {spec.number}") if progress_factory else None
    theory = {}
    try:
        # All segments of all series in one pool: journal rows into their own series' file.
        from replica.sweep import solve_path
        from saddle.executor import SerialExecutor, map_unordered

        executor = executor or SerialExecutor()
        pending, owner = [], []
        for k, (_, tasks, journal) in enumerate(jobs):
            done = journal.done
            todo = [t for t in tasks if not all(journal.key_of(key) in done for key in t.keys)]
            if bar is not None:
                bar(sum(len(t) for t in tasks) - sum(len(t) for t in todo))
            pending += todo
            owner += [k] * len(todo)

        def finished(i: int, rows: list[dict]) -> None:
            jobs[owner[i]][2].append(rows)
            if bar is not None:
                bar(len(rows))

        map_unordered(solve_path, pending, executor=executor, on_result=finished)
    finally:
        if bar is not None:
            bar.close()
    for s, _, journal in jobs:
        journal.finalize()
        theory[s.name] = rows_to_columns(journal.rows())
    sims: list[dict] = []
    if simulations:
        tasks = []
        for s in spec.series:
            model_params = [_simulation_params(s, float(x), theory[s.name]) for x in s.sim_values]
            for i, (x, (model, params)) in enumerate(zip(s.sim_values, model_params,
                                                          strict=True)):  # fmt: skip
                tasks.append(SimulationTask(s.name, i, model, params, float(x),
                                            _sim_observables(s), int(simulations["n"]),
                                            int(simulations["seeds"]),
                                            int(simulations.get("seed", 0))))  # fmt: skip
        meta = {"figure": spec.number, "tasks": [t.to_dict() for t in tasks]}
        journal = CsvJournal(data / "simulations.csv", ("series", "index", "k"), meta)
        done = journal.done
        todo = [t for t in tasks if (t.series, str(t.index), "0") not in done]
        bar = progress_factory(len(tasks), f"figure {spec.number} simulations") \
            if progress_factory else None  # fmt: skip
        try:
            if bar is not None:
                bar(len(tasks) - len(todo))

            def sim_done(_i: int, rows: list[dict]) -> None:
                journal.append(rows)
                if bar is not None:
                    bar(1)

            from saddle.executor import SerialExecutor, map_unordered

            map_unordered(simulate_point, todo, executor=executor or SerialExecutor(),
                          on_result=sim_done)  # fmt: skip
        finally:
            if bar is not None:
                bar.close()
        journal.finalize()
        sims = [{k: _cell(v) for k, v in row.items()} for row in journal.rows()]
    return theory, sims


def _cell(value):
    from replica.sweep import parse_cell

    return parse_cell(value)


def render_figure(spec: FigureSpec, theory: dict, sims: Sequence[dict], out: str | Path) -> dict:
    """Draw ``figureN.png`` and write ``figureN.csv`` (and ``figureN_simulations.csv``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from saddle.checkpoint import _lines as csv_lines
    from saddle.checkpoint import atomic_write_text

    out = Path(out)
    rows_, cols = spec.layout
    fig, axes = plt.subplots(rows_, cols, figsize=(5.6 * cols, 4.2 * rows_),
                             constrained_layout=True, squeeze=False)  # fmt: skip
    axes = axes.ravel()
    csv_rows = [("panel", "series", "label", "x_name", "x", "quantity", "value", "converged",
                 "status")]  # fmt: skip
    for s in spec.series:
        cols_ = theory[s.name]
        x = np.asarray(cols_[s.vary], dtype=float)
        ok = np.array([bool(c) for c in cols_["converged"]])
        status = np.asarray(cols_.get("status", [0] * x.size), dtype=float)
        ax = axes[s.panel]
        for column, style, label in [(s.y, s.style, s.label),
                                     *((c, st, "") for c, st in s.extra)]:  # fmt: skip
            y = np.asarray(cols_[column], dtype=float)
            shown = np.where(ok, y, np.nan)
            kw = {"lw": 1.6, **style}
            ax.plot(x, shown, label=label or None, **kw)
            bad = ~ok & (status != 3)
            if bad.any():
                ax.plot(x[bad], y[bad], "x", color=kw.get("color", "k"), ms=5)
            for xi, yi, oki, st in zip(x, y, ok, status, strict=True):
                csv_rows.append((s.panel, s.name, label, s.vary, repr(float(xi)), column,
                                 repr(float(yi)), bool(oki), int(st)))  # fmt: skip
    for line in spec.lines():
        ax = axes[line.panel]
        ax.plot(line.xs, line.ys, label=line.label or None, **{"lw": 1.2, **line.style})
        for xi, yi in zip(line.xs, line.ys, strict=True):
            csv_rows.append((line.panel, f"line:{line.label or 'reference'}", line.label, "x",
                             repr(float(xi)), "eps_g", repr(float(yi)), True, 0))  # fmt: skip
    if spec.thresholds:
        from replica.thresholds import thresholds

        th = thresholds(**spec.threshold_params)
        names = {"alpha_I": r"$\alpha_I$", "alpha_S": r"$\alpha_S$",
                 "alpha_S_teacher": r"$\tilde\alpha_S$"}  # fmt: skip
        for panel, which in spec.thresholds.items():
            ax = axes[panel]
            for name in which:
                value = getattr(th, name)
                ax.axvline(value, color="k", ls="--", lw=1.0)
                ax.text(value, 1.01, names[name], transform=ax.get_xaxis_transform(),
                        ha="center", va="bottom", fontsize=9)  # fmt: skip
                csv_rows.append((panel, f"threshold:{name}", names[name], "alpha",
                                 repr(float(value)), "threshold", "nan", True, 0))  # fmt: skip
    sim_rows = [("panel", "series", "label", "x_name", "x", "quantity", "mean", "sem", "n",
                 "seeds")]  # fmt: skip
    by_name = {s.name: s for s in spec.series}
    for row in sims:
        s = by_name.get(row["series"])
        if s is None:
            continue
        column = row["quantity"]
        style = s.style if column == s.y else dict(s.extra)[column]
        colour = style.get("color", "k")
        axes[s.panel].errorbar([row["x"]], [row["mean"]], yerr=[row["sem"]], fmt="o",
                               color=colour, ms=3.5, capsize=2, lw=1)  # fmt: skip
        sim_rows.append((s.panel, s.name, s.label, s.vary, repr(float(row["x"])), column,
                         repr(float(row["mean"])), repr(float(row["sem"])), int(row["n"]),
                         int(row["seeds"])))  # fmt: skip
    for k, panel in enumerate(spec.panels):
        ax = axes[k]
        if panel.xlog:
            ax.set_xscale("log")
        if panel.ylog:
            ax.set_yscale("log")
        if panel.xlim:
            ax.set_xlim(*panel.xlim)
        if panel.ylim:
            ax.set_ylim(*panel.ylim)
        ax.set_xlabel(panel.xlabel)
        ax.set_ylabel(panel.ylabel)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(frameon=False, fontsize=8, loc=panel.legend)
    fig.suptitle(f"Fig. {spec.number}: {spec.caption}", fontsize=9)
    png = out / f"figure{spec.number}.png"
    fig.savefig(png, dpi=130)
    plt.close(fig)
    paths = {"png": png}
    paths["csv"] = atomic_write_text(out / f"figure{spec.number}.csv", csv_lines(csv_rows))
    if sims:
        paths["simulations"] = atomic_write_text(out / f"figure{spec.number}_simulations.csv",
                                                 csv_lines(sim_rows))  # fmt: skip
    return paths


def make_figure(number: int, out: str | Path, *, resolution: float = 1.0, executor=None,
                progress_factory=None, segment: int = FIGURE_SEGMENT,
                simulations: dict | None = None) -> dict:  # fmt: skip
    """Compute and draw paper figure ``number`` into ``out``.

    Returns the written paths (``png``, ``csv``, ``simulations``) and the numbers of theory
    points that did not converge (``failed``) or have no finite solution (``diverged``).
    """
    spec = figure_spec(number, resolution=resolution)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    theory, sims = compute_figure(spec, out, executor=executor,
                                  progress_factory=progress_factory, segment=segment,
                                  simulations=simulations)  # fmt: skip
    paths = render_figure(spec, theory, sims, out)
    paths["failed"], paths["diverged"] = failures(theory)
    return paths


def failures(theory: dict) -> tuple[int, int]:
    """``(not converged, no finite solution)`` counts over all series."""
    failed = diverged = 0
    for cols in theory.values():
        for ok, st in zip(cols["converged"], cols.get("status", [0] * len(cols["converged"])),
                          strict=True):  # fmt: skip
            if st == 3:
                diverged += 1
            elif not ok:
                failed += 1
    return failed, diverged
