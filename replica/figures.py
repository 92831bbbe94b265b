"""The twelve figures of Saglietti & Zdeborová (2021): theory curves, Bayes-optimal lines,
thresholds and (optionally) simulation points, as PNG, CSV and a JSON settings sidecar.

The catalogue is a registry: one small function per figure, registered with ``@figure(N)``,
returns the figure's :class:`FigureSpec` (panels, *series* -- a theory curve along one
parameter -- cheap closed-form reference :class:`Line` s and threshold markers) and nothing
else. Computing and drawing are separate steps: :func:`compute_figure` runs the series through
:mod:`replica.sweep`'s warm-started segments (journaled in ``DIR/figureN_data/``, so re-running
with the same output directory resumes), refines the grid adaptively around peaks and cusps
(:func:`refinement_points`), and :func:`render_figure` writes ``figureN.png``, ``figureN.csv``
(long format: one row per plotted point), ``figureN.json`` (the exact setting of every curve)
and, with simulations, ``figureN_simulations.csv``.

Every curve was compared with the paper's vector graphics (``tests/test_paper_figures.py``,
data in ``tests/data/paper_figures/``). Settings and conventions:

- ``lam`` follows paper Eq. 1 (summed loss + ``lam/2 |w|^2``), in every figure.
- "Unregularised" is ``lam = 1e-5`` as in the captions of Fig. 5, 11, 12.
- The student trained on the labels alone (``chi = 0``: Fig. 2 grey, Fig. 3 dotted, Fig. 4
  grey and red, Fig. 7 dotted, Fig. 9 lines) is computed through its exact equivalence with
  the teacher problem at ``(alpha/eta, delta/eta, lam/eta^2)`` (model ``"direct"``).
- Fig. 3 bottom: the paper computed it at ``lam_t = 0.15, T = 2`` (the setting of Fig. 8), not
  at the caption's ``lam_t = 0.1, T = 1``; its 63 vertices are reproduced to < 1e-5 only so.
- Fig. 4: the distilled student of the Bayes-optimal teacher has ``lam_s = 0.025``.
- Fig. 11 top left is the KD training loss (``train_loss``, paper Eq. 4 per sample), not the
  cross-entropy against the labels; the bottom panels are the paper's MSEs, which carry a
  factor 1/2: half of the mean squared teacher-student distances ``mse_outputs`` and
  ``mse_preactivations``.
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
from replica.tables import FORMER_COLUMNS

UNREG = 1e-5
FIGURE_SEGMENT = 25
BLUE, RED, GREY, VIOLET = "tab:blue", "tab:red", "0.6", "violet"
THRESHOLD_NAMES = {"alpha_I": r"$\alpha_I$", "alpha_S": r"$\alpha_S$",
                   "alpha_S_teacher": r"$\tilde\alpha_S$"}  # fmt: skip


@dataclass(frozen=True)
class Series:
    """A theory curve of a figure.

    Attributes
    ----------
    name : str
        Identifier (file and CSV key).
    label : str
        Legend entry ('' for none), in the paper's notation (mathtext).
    model : {"teacher", "student", "direct"}
    vary : str
        Parameter along the x axis.
    values : tuple of float
        Its initial values (:func:`compute_figure` adds refinement points).
    fixed : dict
        Other parameters.
    y : str
        Plotted column.
    scale : float
        Factor applied to ``y`` (and to the ``extra`` columns) before plotting (Fig. 11's MSEs
        carry the paper's factor 1/2).
    style : dict
        Matplotlib keywords (colour, line style, marker).
    panel : int
        Panel index.
    optimise : Optimise, optional
        Minimise ``eps_g`` over a parameter at each point.
    sim_values : tuple of float
        x values of the simulation points (empty: none for this series).
    extra : tuple of (column, style, label)
        More columns of the same rows to plot (e.g. the teacher's error, dotted).
    refine : bool
        Refine the grid around interior extrema and kinks (:func:`refinement_points`).
    """

    name: str
    label: str
    model: str
    vary: str
    values: tuple
    fixed: dict
    y: str = "eps_g"
    scale: float = 1.0
    style: dict = field(default_factory=dict)
    panel: int = 0
    optimise: Optimise | None = None
    sim_values: tuple = ()
    extra: tuple = ()
    refine: bool = True

    def to_dict(self) -> dict:
        return {"name": self.name, "label": self.label, "model": self.model, "vary": self.vary,
                "fixed": self.fixed, "y": self.y, "scale": self.scale, "panel": self.panel,
                "optimise": None if self.optimise is None else self.optimise.to_dict(),
                "extra": [column for column, *_ in self.extra],
                "sim_values": list(self.sim_values)}  # fmt: skip


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

    name: str
    label: str
    xs: tuple
    ys: tuple
    style: dict
    panel: int = 0
    setting: dict = field(default_factory=dict)
    at: Callable[[float], float] | None = field(default=None, repr=False, compare=False)

    def value(self, x: float) -> float:
        """The line's exact value at ``x`` (not an interpolation of ``xs``)."""
        if self.at is None:
            return float(np.interp(x, self.xs, self.ys))
        return float(self.at(x))


@dataclass(frozen=True)
class FigureSpec:
    """A paper figure: panels, theory series, reference lines and threshold markers.

    ``thresholds`` maps a panel to the threshold names drawn there as vertical lines
    (:class:`replica.thresholds.Thresholds` attributes) with the ``(rho, delta, eta)`` of
    ``threshold_params``. ``setting`` is the parameters common to the figure and ``notes``
    what differs from the paper's caption (both go into the caption and the JSON sidecar).
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
    setting: dict = field(default_factory=dict)
    notes: str = ""

    def to_dict(self) -> dict:
        return {"number": self.number, "caption": self.caption, "setting": self.setting,
                "notes": self.notes, "series": [s.to_dict() for s in self.series],
                "thresholds": {str(k): list(v) for k, v in self.thresholds.items()},
                "threshold_params": self.threshold_params}  # fmt: skip


# ----------------------------------------------------------------------------------------------
# The catalogue: one function per figure
# ----------------------------------------------------------------------------------------------

FIGURES: dict[int | str, Callable[[Callable[[int], int]], FigureSpec]] = {}


def figure(number: int | str):
    """Register ``builder(points) -> FigureSpec`` as paper figure ``number``.

    ``points(k)`` scales a default number of theory points ``k`` by the resolution. String
    ids (``"chain-a"``, ...) register figures beyond the paper's (:mod:`replica.chain_figures`);
    their builders return a spec with its own ``make(out, simulations=...)``.
    """

    def register(builder):
        FIGURES[number] = builder
        return builder

    return register


def paper_figures() -> tuple:
    """The numbers of the paper's figures (1-12) among the registered ones."""
    return tuple(sorted(k for k in FIGURES if isinstance(k, int)))


def figure_ids() -> tuple:
    """The registered figures: the paper's numbers 1-12, then the string ids."""
    return paper_figures() + tuple(sorted(k for k in FIGURES if isinstance(k, str)))


def figure_spec(number: int | str, *, resolution: float = 1.0) -> FigureSpec:
    """The :class:`FigureSpec` of paper figure ``number`` (1-12), or the spec of a registered
    string id (``chain-a`` .. ``chain-e``, :mod:`replica.chain_figures`).

    ``resolution`` scales the number of theory points of every curve (1: the defaults, e.g.
    200 alpha points in Fig. 5; smaller for quick looks and tests).
    """
    if number not in FIGURES:
        extra = ", ".join(k for k in figure_ids() if isinstance(k, str))
        raise ParameterError(f"figure must be an integer in 1..12 or one of {extra}; "
                             f"got {number!r}")  # fmt: skip
    return FIGURES[number](lambda k: max(8, int(round(k * resolution))))


def alpha_grid(start: float, stop: float, num: int, *, rho: float = 0.2, delta: float = 1.0,
               eta: float = 0.5) -> tuple:  # fmt: skip
    """``num`` evenly spaced ``alpha`` in ``[start, stop]`` plus the thresholds inside it.

    The thresholds ``alpha_I = eta``, ``alpha_S`` and ``alpha~_S``
    (:func:`replica.thresholds.thresholds`) are where the unregularised curves peak or have a
    kink; having them on the grid puts the cusp on the plot (refinement does the rest).
    """
    from replica.thresholds import thresholds

    th = thresholds(rho, delta, eta)
    marks = [th.alpha_I, th.alpha_S, th.alpha_S_teacher]
    values = set(float(v) for v in np.linspace(start, stop, num))
    values.update(float(a) for a in marks if start < a < stop)
    return tuple(sorted(values))


def _linspace(start: float, stop: float, num: int) -> tuple:
    return tuple(float(v) for v in np.linspace(start, stop, num))


def _bo_line(name: str, alphas, label: str, *, eta: float = 1.0, rho: float = 0.2,
             style=None, panel: int = 0) -> Line:  # fmt: skip
    mixture = GaussianMixture(rho, 1.0)

    def at(alpha: float) -> float:
        return bayes_optimal_error(alpha, mixture, eta=eta)

    ys = tuple(at(a) for a in alphas)
    return Line(name, label, tuple(alphas), ys, style or {"color": "k", "lw": 1.2}, panel,
                {"kind": "bayes_optimal_error", "rho": rho, "delta": 1.0, "eta": eta}, at)


def _hline(name: str, x0: float, x1: float, y: float, label: str, style: dict,
           panel: int = 0, setting: dict | None = None) -> Line:  # fmt: skip
    return Line(name, label, (x0, x1), (y, y), style, panel, setting or {}, lambda _x: y)


def _rho_line(x0: float, x1: float, rho: float = 0.2) -> Line:
    return _hline("rho", x0, x1, rho, "", {"color": GREY, "ls": "--", "lw": 0.6},
                  setting={"kind": "trivial error rho"})  # fmt: skip


SIMS_ALPHA = (1.5, 3.0, 4.5, 6.0, 7.5, 9.0)
BO_STUDENT = r"BO ($\eta=0.5$)"
BO_TEACHER = r"BO ($\eta=1$)"


@figure(1)
def figure_1(n) -> FigureSpec:
    alphas = alpha_grid(0.1, 10.0, n(100), eta=1.0)  # a teacher: its own thresholds
    return FigureSpec(
        1, "Optimally regularised logistic regression vs the Bayes-optimal error",
        (Panel(r"$\alpha$", xlim=(0, 10), ylim=(0.11, 0.2)),),
        (Series("optimal_lambda", r"optimal $\lambda$", "teacher", "alpha", alphas, {},
                style={"color": RED}, optimise=Optimise("lam", 1e-4, 10.0),
                sim_values=SIMS_ALPHA),),
        lambda: [_bo_line("bo", alphas, "BO")],
        setting={"rho": 0.2, "delta": 1.0, "lam": "argmin eps_g over [1e-4, 10]"},
    )  # fmt: skip


@figure(2)
def figure_2(n) -> FigureSpec:
    alphas = alpha_grid(2.0, 10.0, n(81))
    sims = (3.0, 4.5, 6.0, 7.5, 9.0)
    kd = {"chi": 1.0, "lam_s": UNREG}
    series = [Series("unregularised", "unregularized", "direct", "alpha", alphas,
                     {"lam_s": UNREG}, style={"color": GREY}, sim_values=sims)]
    for lam_t, tag, tex, colour in ((1e-2, "1e-2", "10^{-2}", BLUE),
                                    (0.1, "1e-1", "10^{-1}", RED)):  # fmt: skip
        series.append(Series(
            f"kd_lam_t_{tag}", rf"$\tilde\lambda={tex}$", "student", "alpha", alphas,
            {**kd, "lam_t": lam_t}, style={"color": colour}, sim_values=sims,
            extra=(("teacher_eps_g", {"color": colour, "ls": ":"},
                    rf"teacher $\tilde\lambda={tex}$"),)))  # fmt: skip
    return FigureSpec(
        2, "Pure distillation (chi = 1) from ridge teachers (dotted: the teachers)",
        (Panel(r"$\alpha$", xlim=(2, 10), ylim=(0.1, 0.26)),), tuple(series),
        lambda: [_bo_line("bo", alphas, BO_STUDENT, eta=0.5),
                 _bo_line("bo_teacher", alphas, BO_TEACHER,
                          style={"color": "k", "ls": ":", "lw": 1.2})],
        setting={"rho": 0.2, "delta": 1.0, "eta": 0.5, "chi": 1.0, "lam_s": UNREG,
                 "temperature": 1.0},
    )  # fmt: skip


@figure(3)
def figure_3(n) -> FigureSpec:
    from replica.sweep import best_direct_ridge

    lams = tuple(float(v) for v in np.geomspace(1e-5, 10.0, n(61)))
    chis = _linspace(0.0, 1.0, n(41))
    series = []
    lam_sims = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
    for alpha, colour in ((1.5, RED), (4.5, BLUE)):
        series.append(Series(f"kd_alpha_{alpha}", rf"$\alpha={alpha}$", "student", "lam_t",
                             lams, {"alpha": alpha, "chi": 1.0, "lam_s": UNREG},
                             style={"color": colour}, sim_values=lam_sims))  # fmt: skip
        series.append(Series(f"direct_alpha_{alpha}", "", "direct", "lam_s", lams,
                             {"alpha": alpha}, style={"color": colour, "ls": ":"},
                             sim_values=lam_sims))  # fmt: skip
    bottom = {"alpha": 4.5, "lam_t": 0.15, "temperature": 2.0}
    for lam_s, colour in ((0.1, "gold"), (0.2, "orange"), (0.5, RED)):
        series.append(Series(f"chi_lam_s_{lam_s}",
                             rf"$\tilde\lambda=0.15,\ T=2,\ \lambda={lam_s}$", "student", "chi",
                             chis, {**bottom, "lam_s": lam_s}, style={"color": colour},
                             panel=1, sim_values=(0.1, 0.3, 0.5, 0.7, 0.9)))  # fmt: skip

    def lines() -> list[Line]:
        out = []
        for alpha, colour in ((1.5, RED), (4.5, BLUE)):
            lam, best = best_direct_ridge(alpha)
            out.append(_hline(f"best_direct_alpha_{alpha}", 1e-5, 10.0, best, "",
                              {"color": colour, "ls": "--", "lw": 1},
                              setting={"kind": "best direct ridge", "alpha": alpha,
                                       "lam_s": lam}))  # fmt: skip
            out.append(_hline(f"bo_alpha_{alpha}", 1e-5, 10.0,
                              bayes_optimal_error(alpha, eta=0.5),
                              BO_STUDENT if alpha == 1.5 else "", {"color": "k", "lw": 1.2},
                              setting={"kind": "bayes_optimal_error", "alpha": alpha,
                                       "eta": 0.5}))  # fmt: skip
        lam, best = best_direct_ridge(4.5)
        out.append(_hline("best_direct", 0.0, 1.0, best, r"best $\lambda$ at $\chi=0$",
                          {"color": RED, "ls": "--", "lw": 1}, 1,
                          {"kind": "best direct ridge", "alpha": 4.5, "lam_s": lam}))
        out.append(_hline("bo", 0.0, 1.0, bayes_optimal_error(4.5, eta=0.5), BO_STUDENT,
                          {"color": "k", "lw": 1.2}, 1,
                          {"kind": "bayes_optimal_error", "alpha": 4.5, "eta": 0.5}))
        return out

    return FigureSpec(
        3, "Top: KD (chi = 1, full, lam_t on the axis, T = 1) vs direct ridge (chi = 0, "
           "dotted, lam_s on the axis); dashed: best direct ridge. Bottom: tuning chi at "
           "alpha = 4.5 with lam_t = 0.15, T = 2",
        (Panel(r"$\tilde\lambda$ (full), $\lambda$ (dotted)", xlim=(1e-5, 10),
               ylim=(0.16, 0.3), xlog=True),
         Panel(r"$\chi$", xlim=(0, 1), ylim=(0.165, 0.2), legend="upper left")),
        tuple(series), lines, layout=(2, 1),
        setting={"rho": 0.2, "delta": 1.0, "eta": 0.5, "top": {"temperature": 1.0,
                 "lam_s": UNREG}, "bottom": bottom},
        notes="bottom panel at lam_t = 0.15, T = 2 (no T^2 factor), the setting the paper "
              "used (its caption says lam_t = 0.1, T = 1)",
    )  # fmt: skip


@figure(4)
def figure_4(n) -> FigureSpec:
    alphas = alpha_grid(2.0, 10.0, n(81))
    sims = (2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0)
    return FigureSpec(
        4, "Distilling the Bayes-optimal proxy teacher (chi = 1, lam_s = 0.025)",
        (Panel(r"$\alpha$", xlim=(2, 10), ylim=(0.16, 0.21)),),
        (Series("unregularised", "unregularized", "direct", "alpha", alphas,
                {"lam_s": UNREG}, style={"color": GREY}),
         Series("optimal_l2", r"optimal $L_2$ regularization", "direct", "alpha", alphas,
                {}, style={"color": RED}, optimise=Optimise("lam_s", 1e-4, 10.0)),
         Series("kd_bayes_teacher", "KD with optimal teacher", "student", "alpha", alphas,
                {"teacher": "bayes", "chi": 1.0, "lam_s": 0.025}, style={"color": BLUE},
                sim_values=sims)),
        lambda: [_bo_line("bo", alphas, BO_STUDENT, eta=0.5)],
        setting={"rho": 0.2, "delta": 1.0, "eta": 0.5},
        notes="lam_s = 0.025 (= 0.1 eta^2) reproduces the paper's blue curve",
    )  # fmt: skip


@figure(5)
def figure_5(n) -> FigureSpec:
    alphas = alpha_grid(0.1, 6.0, n(200))
    sims = (0.5, 1.0, 1.5, 2.5, 3.5, 4.5, 5.5)
    return FigureSpec(
        5, "Double descent in pure distillation (chi = 1)",
        (Panel(r"$\alpha$", xlim=(0, 6), ylim=(0.15, 0.42)),),
        (Series("unregularised", r"$\tilde\lambda=10^{-5},\ \lambda=10^{-5}$", "student",
                "alpha", alphas, {"lam_t": UNREG, "lam_s": UNREG, "chi": 1.0},
                style={"color": BLUE}, sim_values=sims),
         Series("teacher_regularised", r"$\tilde\lambda=10^{-1},\ \lambda=10^{-5}$", "student",
                "alpha", alphas, {"lam_t": 0.1, "lam_s": UNREG, "chi": 1.0},
                style={"color": RED}, sim_values=sims)),
        lambda: [_bo_line("bo", alphas, BO_STUDENT, eta=0.5), _rho_line(0.0, 6.0)],
        thresholds={0: ("alpha_I", "alpha_S", "alpha_S_teacher")},
        setting={"rho": 0.2, "delta": 1.0, "eta": 0.5, "chi": 1.0, "temperature": 1.0},
    )  # fmt: skip


@figure(6)
def figure_6(n) -> FigureSpec:
    alphas = alpha_grid(0.1, 10.0, n(100), eta=1.0)  # teachers: their own thresholds
    colours = ("k", BLUE, "tab:purple", VIOLET, RED)
    series = tuple(
        Series(f"lam_{lam:g}", rf"$\lambda={tex}$", "teacher", "alpha", alphas,
               {"lam": lam}, style={"color": c}, sim_values=SIMS_ALPHA)
        for lam, tex, c in zip((1e-5, 1e-3, 1e-2, 1e-1, 1.0),
                               ("10^{-5}", "10^{-3}", "10^{-2}", "10^{-1}", "1"), colours,
                               strict=True)
    )  # fmt: skip
    return FigureSpec(
        6, "Ridge logistic regression (the teacher) at several lambda",
        (Panel(r"$\alpha$", xlim=(0, 10), ylim=(0.11, 0.21)),), series,
        lambda: [_bo_line("bo", alphas, "BO", style={"color": "k", "ls": ":", "lw": 1.2}),
                 _rho_line(0.0, 10.0)],
        setting={"rho": 0.2, "delta": 1.0},
    )  # fmt: skip


@figure(7)
def figure_7(n) -> FigureSpec:
    alphas = alpha_grid(0.1, 10.0, n(100))
    kd = {"chi": 1.0, "lam_s": UNREG}
    return FigureSpec(
        7, "Pure distillation (full) vs ridge students on the labels (dotted)",
        (Panel(r"$\alpha$", xlim=(0, 10), ylim=(0.16, 0.26)),),
        (Series("kd_lam_t_1e-5", r"$\tilde\lambda=10^{-5}$", "student", "alpha", alphas,
                {**kd, "lam_t": UNREG}, style={"color": "k"}, sim_values=SIMS_ALPHA),
         Series("kd_lam_t_0.1", r"$\tilde\lambda=0.1$", "student", "alpha", alphas,
                {**kd, "lam_t": 0.1}, style={"color": VIOLET}, sim_values=SIMS_ALPHA),
         Series("direct_lam_0.1", r"$\lambda=0.1$", "direct", "alpha", alphas,
                {"lam_s": 0.1}, style={"color": VIOLET, "ls": ":"}, sim_values=SIMS_ALPHA),
         Series("kd_lam_t_1", r"$\tilde\lambda=1$", "student", "alpha", alphas,
                {**kd, "lam_t": 1.0}, style={"color": RED}, sim_values=SIMS_ALPHA),
         Series("direct_lam_1", r"$\lambda=1$", "direct", "alpha", alphas,
                {"lam_s": 1.0}, style={"color": RED, "ls": ":"}, sim_values=SIMS_ALPHA)),
        lambda: [_bo_line("bo", alphas, BO_STUDENT, eta=0.5,
                          style={"color": "k", "ls": "--"}), _rho_line(0.0, 10.0)],
        setting={"rho": 0.2, "delta": 1.0, "eta": 0.5, "temperature": 1.0},
    )  # fmt: skip


@figure(8)
def figure_8(n) -> FigureSpec:
    alphas = alpha_grid(0.1, 10.0, n(100))
    colours = (RED, "hotpink", "mediumpurple", BLUE)
    setting = {"lam_t": 0.15, "lam_s": 0.1, "temperature": 2.0}
    series = tuple(
        Series(f"chi_{chi:g}", rf"$\chi={chi:g}$", "student", "alpha", alphas,
               {"chi": chi, **setting}, style={"color": c}, sim_values=SIMS_ALPHA)
        for chi, c in zip((0.2, 0.6, 0.8, 1.0), colours, strict=True)
    )  # fmt: skip
    return FigureSpec(
        8, "Mixing parameter chi: lam_t = 0.15, lam_s = 0.1, T = 2",
        (Panel(r"$\alpha$", xlim=(0, 10), ylim=(0.16, 0.21)),), series,
        lambda: [_bo_line("bo", alphas, BO_STUDENT, eta=0.5,
                          style={"color": "k", "ls": ":"}), _rho_line(0.0, 10.0)],
        setting={"rho": 0.2, "delta": 1.0, "eta": 0.5, **setting},
    )  # fmt: skip


@figure(9)
def figure_9(n) -> FigureSpec:
    eps = _linspace(0.01, 0.48, n(48))
    dots = _linspace(0.025, 0.475, max(4, n(19)))
    series = []
    for alpha, colour in ((1.5, RED), (4.5, "purple"), (7.5, BLUE)):
        series.append(Series(f"labels_alpha_{alpha}", rf"$\alpha={alpha}$", "direct",
                             "smoothing", eps, {"alpha": alpha, "lam_s": UNREG},
                             style={"color": colour}))  # fmt: skip
        series.append(Series(f"kd_alpha_{alpha}", "KD" if alpha == 7.5 else "", "student",
                             "smoothing", dots,
                             {"alpha": alpha, "chi": 1.0, "lam_t": UNREG, "lam_s": UNREG},
                             style={"color": "k", "ls": "none", "marker": "o", "ms": 3,
                                    "mfc": "none"},
                             sim_values=(0.05, 0.1, 0.2, 0.35), refine=False))  # fmt: skip
    return FigureSpec(
        9, "Label smoothing: student on smoothed labels (lines) vs pure distillation from a "
           "teacher trained on them (dots)",
        (Panel(r"$\epsilon$", xlim=(0, 0.5), ylim=(0.16, 0.28)),), tuple(series),
        lambda: [_rho_line(0.0, 0.5)],
        setting={"rho": 0.2, "delta": 1.0, "eta": 0.5, "lam": UNREG, "lam_t": UNREG,
                 "lam_s": UNREG, "chi (dots)": 1.0},
    )  # fmt: skip


@figure(10)
def figure_10(n) -> FigureSpec:
    alphas = alpha_grid(0.02, 2.0, n(100))
    colours = (RED, "hotpink", "mediumpurple", BLUE)
    series = tuple(
        Series(f"T_{T:g}", f"$T={T:g}$", "student", "alpha", alphas,
               {"chi": 1.0, "lam_t": 0.15, "lam_s": UNREG, "temperature": T},
               style={"color": c}, sim_values=(0.4, 0.8, 1.2, 1.6))
        for T, c in zip((1.0, 2.0, 5.0, 10.0), colours, strict=True)
    )  # fmt: skip
    return FigureSpec(
        10, "Distillation temperature at small alpha: chi = 1, lam_t = 0.15, lam_s = 1e-5",
        (Panel(r"$\alpha$", xlim=(0, 2), ylim=(0.15, 0.4)),), series,
        lambda: [_bo_line("bo", alphas, BO_STUDENT, eta=0.5,
                          style={"color": "k", "ls": ":"}), _rho_line(0.0, 2.0)],
        setting={"rho": 0.2, "delta": 1.0, "eta": 0.5, "chi": 1.0, "lam_t": 0.15,
                 "lam_s": UNREG},
    )  # fmt: skip


@figure(11)
def figure_11(n) -> FigureSpec:
    alphas = alpha_grid(0.1, 6.0, n(120))
    sims = (0.5, 1.5, 2.5, 3.5, 4.5, 5.5)
    panels = (
        Panel(r"$\alpha$", "KD training loss", xlim=(0, 6), ylim=(0, 0.5),
              legend="lower right"),
        Panel(r"$\alpha$", "$q$", xlim=(0, 6), ylim=(0.01, 1e4), ylog=True),
        Panel(r"$\alpha$", r"$\mathrm{MSE}_\sigma$ (outputs, $\frac{1}{2}$ mean sq.)",
              xlim=(0, 6), ylim=(1e-11, 0.1), ylog=True, legend="lower right"),
        Panel(r"$\alpha$", r"MSE (preactivations, $\frac{1}{2}$ mean sq.)", xlim=(0, 6),
              ylim=(1e-10, 1e5), ylog=True, legend="lower right"),
    )  # fmt: skip
    series = []
    for lam_t, tex, colour in ((UNREG, "10^{-5}", "k"), (0.1, "10^{-1}", VIOLET),
                               (1.0, "1", RED)):  # fmt: skip
        for panel, (column, scale) in enumerate((("train_loss", 1.0), ("q", 1.0),
                                                 ("mse_outputs", 0.5),
                                                 ("mse_preactivations", 0.5))):  # fmt: skip
            series.append(Series(
                f"{column}_lam_t_{lam_t:g}", rf"$\tilde\lambda={tex}$", "student",
                "alpha", alphas, {"chi": 1.0, "lam_t": lam_t, "lam_s": UNREG}, y=column,
                scale=scale, style={"color": colour}, panel=panel,
                sim_values=sims))  # fmt: skip
    names = ("alpha_I", "alpha_S", "alpha_S_teacher")
    return FigureSpec(
        11, "Training observables of the distilled student (chi = 1, lam_s = 1e-5): KD "
            "training loss, norm q, and the paper's MSEs (1/2 of the mean squared "
            "teacher-student distance of outputs and of preactivations)",
        panels, tuple(series), thresholds={p: names for p in range(4)}, layout=(2, 2),
        setting={"rho": 0.2, "delta": 1.0, "eta": 0.5, "chi": 1.0, "lam_s": UNREG,
                 "temperature": 1.0},
        notes="top left is train_loss (the KD loss), not train_ce; bottom panels are "
              "mse/2 (the paper's MSE carries a factor 1/2)",
    )  # fmt: skip


@figure(12)
def figure_12(n) -> FigureSpec:
    alphas = alpha_grid(0.1, 10.0, n(100), rho=0.5)
    series = tuple(
        Series(f"lam_t_{lam_t:g}", rf"$\tilde\lambda={tex}$", "student", "alpha", alphas,
               {"rho": 0.5, "chi": 1.0, "lam_t": lam_t, "lam_s": UNREG}, style={"color": c},
               sim_values=SIMS_ALPHA,
               extra=(("teacher_eps_g", {"color": c, "ls": ":"}, ""),))
        for lam_t, tex, c in zip((UNREG, 1e-2, 1.0), ("10^{-5}", "10^{-2}", "1"),
                                 (BLUE, VIOLET, RED), strict=True)
    )  # fmt: skip
    return FigureSpec(
        12, "Balanced clusters rho = 0.5: students (full), teachers (dotted), chi = 1, "
            "lam_s = 1e-5",
        (Panel(r"$\alpha$", xlim=(0, 10), ylim=(0.15, 0.5)),), series,
        lambda: [_bo_line("bo", alphas, BO_STUDENT, eta=0.5, rho=0.5,
                          style={"color": "k", "ls": "--"}),
                 _bo_line("bo_teacher", alphas, BO_TEACHER, rho=0.5,
                          style={"color": GREY, "ls": "--"})],
        threshold_params={"rho": 0.5, "delta": 1.0, "eta": 0.5},
        setting={"rho": 0.5, "delta": 1.0, "eta": 0.5, "chi": 1.0, "lam_s": UNREG,
                 "temperature": 1.0},
    )  # fmt: skip


def curve_at(spec: FigureSpec, name: str, xs: Sequence[float]) -> np.ndarray:
    """The plotted values of curve ``name`` of ``spec`` at abscissae ``xs`` (in order).

    ``name`` is a series name, ``"SERIES:COLUMN"`` for one of its ``extra`` columns, or
    ``"line:NAME"`` for a reference line. A series is solved as one warm-started path through
    ``xs`` exactly as :func:`compute_figure` would (same solver, parameters and scale); this is
    how the curves are compared with the paper's vertices without computing the whole grid.
    NaN where the solver did not converge.
    """
    from replica.sweep import solve_path

    if name.startswith("line:"):
        line = next(ln for ln in spec.lines() if ln.name == name[5:])
        return np.array([line.value(float(x)) for x in xs])
    series_name, _, column = name.partition(":")
    s = next(s for s in spec.series if s.name == series_name)
    unique, where = np.unique(np.asarray(xs, dtype=float), return_inverse=True)
    (task,) = path_tasks(s.model, s.vary, tuple(float(x) for x in unique), s.fixed,
                         segment=unique.size, optimise=s.optimise)  # fmt: skip
    columns = rows_to_columns(solve_path(task))
    return _plotted(s, columns, column or None)[where]


# ----------------------------------------------------------------------------------------------
# Adaptive refinement
# ----------------------------------------------------------------------------------------------


def refinement_points(x: Sequence[float], y: Sequence[float], *, log: bool = False,
                      xlog: bool = False, min_step: float = 1e-4) -> list[float]:  # fmt: skip
    """New abscissae that resolve the interior extrema and kinks of a sampled curve.

    Around every interior local maximum or minimum of ``y`` (a peak of a double descent, an
    optimal ``chi``) and every kink (a slope change larger than the slopes themselves, e.g.
    at a separability threshold) the midpoints of the two neighbouring intervals are returned,
    unless an interval is already shorter than ``min_step`` times the range of ``x``. Repeated
    until it returns nothing, this bisection brackets a smooth maximum ever more tightly, so
    the plotted maximum converges to the true one (quadratically in the bracket width).

    Parameters
    ----------
    x, y : sequence of float
        Sorted abscissae and finite values (non-finite values are ignored).
    log, xlog : bool
        Judge the shape of ``log10 y``, bisect in ``log10 x`` (log-scale axes).
    min_step : float
        Smallest interval, relative to ``max(x) - min(x)``.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(y) & (y > 0 if log else True)
    x, y = x[ok], y[ok]
    if x.size < 3:
        return []
    if log:
        y = np.log10(y)
    if xlog:
        x = np.log10(x)
    span = x[-1] - x[0]
    scale = max(np.ptp(y), 1e-300)
    new: set[float] = set()
    dy = np.diff(y)
    slope = dy / np.diff(x)
    for i in range(1, x.size - 1):
        left, right = dy[i - 1], dy[i]
        extremum = left * right < 0 and min(abs(left), abs(right)) > 1e-9 * scale
        kink = abs(slope[i] - slope[i - 1]) > 4.0 * max(abs(slope[i]), abs(slope[i - 1])) \
            and max(abs(left), abs(right)) > 1e-4 * scale  # fmt: skip
        if not (extremum or kink):
            continue
        for a, b in ((x[i - 1], x[i]), (x[i], x[i + 1])):
            if b - a > min_step * span:
                mid = 0.5 * (a + b)
                new.add(float(10.0**mid if xlog else mid))
    return sorted(new)


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
    names = [series.y] + [column for column, *_ in series.extra]
    return tuple(n for n in names)


# ----------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------


def shared_computations(spec: FigureSpec) -> list[list[Series]]:
    """The series grouped by what they compute (model, path, parameters, optimisation).

    Series that differ only in the plotted column (Fig. 11: ``train_loss``, ``q`` and the MSEs
    of one student) are one computation, journaled under the first one's name.
    """
    import json

    groups: dict[str, list[Series]] = {}
    for s in spec.series:
        key = json.dumps([s.model, s.vary, [repr(v) for v in s.values], s.fixed,
                          None if s.optimise is None else s.optimise.to_dict()],
                         sort_keys=True, default=str)  # fmt: skip
        groups.setdefault(key, []).append(s)
    return list(groups.values())


def compute_figure(
    spec: FigureSpec,
    out: str | Path,
    *,
    executor=None,
    progress_factory=None,
    segment: int = FIGURE_SEGMENT,
    simulations: dict | None = None,
    refine_rounds: int = 12,
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
    refine_rounds : int
        At most this many rounds of :func:`refinement_points` per series (0: none).

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
    groups = shared_computations(spec)
    for group in groups:
        s = group[0]
        tasks = path_tasks(s.model, s.vary, s.values, s.fixed, segment=segment,
                           optimise=s.optimise)  # fmt: skip
        meta = {"figure": spec.number, "series": s.name, "model": s.model, "vary": s.vary,
                "values": [repr(v) for v in s.values], "fixed": s.fixed,
                "optimise": None if s.optimise is None else s.optimise.to_dict(),
                "segment": segment}  # fmt: skip
        jobs.append((s, tasks, CsvJournal(data / f"{s.name}.csv", ("index",), meta,
                                          renamed=FORMER_COLUMNS)))
    total = sum(len(group[0].values) for group in groups)
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
    for group, (_, _, journal) in zip(groups, jobs, strict=True):
        journal.finalize()
        columns = rows_to_columns(journal.rows())
        for s in group:
            theory[s.name] = columns
    theory = refine_figure(spec, theory, data, executor=executor, segment=segment,
                           rounds=refine_rounds)  # fmt: skip
    sims: list[dict] = []
    if simulations:
        tasks = []
        for group in groups:
            s = group[0]
            observables = tuple(dict.fromkeys(n for m in group for n in _sim_observables(m)))
            model_params = [_simulation_params(s, float(x), theory[s.name]) for x in s.sim_values]
            for i, (x, (model, params)) in enumerate(zip(s.sim_values, model_params,
                                                          strict=True)):  # fmt: skip
                tasks.append(SimulationTask(s.name, i, model, params, float(x),
                                            observables, int(simulations["n"]),
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
        members = {group[0].name: group for group in groups}
        for row in journal.rows():  # one row per member series that plots the quantity
            row = {k: _cell(v) for k, v in row.items()}
            for s in members[row["series"]]:
                if row["quantity"] in _sim_observables(s):
                    sims.append({**row, "series": s.name})
    return theory, sims


def _merge_columns(a: dict, b: dict, vary: str) -> dict:
    """Rows of two column dicts, sorted by ``vary`` (refinement points join the curve)."""
    keys = [k for k in a if k in b]
    rows = [{k: a[k][i] for k in keys} for i in range(len(a[vary]))]
    rows += [{k: b[k][i] for k in keys} for i in range(len(b[vary]))]
    rows.sort(key=lambda r: float(r[vary]))
    return {k: [r[k] for r in rows] for k in keys}


def _plotted(series: Series, columns: dict, column: str | None = None) -> np.ndarray:
    """The plotted values of ``column`` (default ``series.y``): scaled, NaN where unconverged."""
    y = np.asarray(columns[column or series.y], dtype=float) * series.scale
    ok = np.array([bool(c) for c in columns["converged"]])
    return np.where(ok, y, np.nan)


def refine_figure(spec: FigureSpec, theory: dict, data: Path, *, executor=None,
                  segment: int = FIGURE_SEGMENT, rounds: int = 12) -> dict:  # fmt: skip
    """Add :func:`refinement_points` to every refinable computation, round by round (the
    points needed by any of the series sharing it, :func:`shared_computations`).

    Round ``k`` of computation ``NAME`` is journaled in ``data/NAME_refine{k}.csv``: its points are
    a deterministic function of the previous rounds, so an interrupted run resumes. The new
    points of a round are solved as one warm-started path (they come in close pairs).
    """
    from replica.sweep import solve_path
    from saddle.checkpoint import CsvJournal
    from saddle.executor import SerialExecutor, map_unordered

    executor = executor or SerialExecutor()
    theory = dict(theory)
    groups = {g[0].name: g for g in shared_computations(spec)
              if g[0].optimise is None and any(s.refine for s in g)}  # fmt: skip
    for k in range(rounds):
        pending, owner, journals = [], [], {}
        for group in groups.values():
            s = group[0]
            cols = theory[s.name]
            x = np.asarray(cols[s.vary], dtype=float)
            new = []
            for member in group:
                panel = spec.panels[member.panel]
                for column in (member.y, *(c for c, *_ in member.extra)):
                    new += refinement_points(x, _plotted(member, cols, column), log=panel.ylog,
                                             xlog=panel.xlog)  # fmt: skip
            new = sorted(set(new) - set(x.tolist()))
            if not new:
                continue
            meta = {"figure": spec.number, "series": s.name, "round": k,
                    "values": [repr(v) for v in new], "fixed": s.fixed}  # fmt: skip
            journal = CsvJournal(data / f"{s.name}_refine{k}.csv", ("index",), meta,
                                 renamed=FORMER_COLUMNS)
            journals[s.name] = journal
            tasks = path_tasks(s.model, s.vary, tuple(new), s.fixed, segment=segment)
            done = journal.done
            todo = [t for t in tasks if not all(journal.key_of(key) in done for key in t.keys)]
            pending += todo
            owner += [s.name] * len(todo)
        if not journals:
            break

        def finished(i: int, rows: list[dict], journals=journals, owner=owner) -> None:
            journals[owner[i]].append(rows)

        map_unordered(solve_path, pending, executor=executor, on_result=finished)
        for name, journal in journals.items():
            journal.finalize()
            merged = _merge_columns(theory[name], rows_to_columns(journal.rows()),
                                    groups[name][0].vary)  # fmt: skip
            for member in groups[name]:
                theory[member.name] = merged
    return theory


def _cell(value):
    from replica.sweep import parse_cell

    return parse_cell(value)


def figure_caption(spec: FigureSpec, sims: Sequence[dict]) -> str:
    """The caption written on the figure: title, setting, notes, simulation size."""
    setting = ", ".join(f"{k} = {_fmt(v)}" for k, v in spec.setting.items()
                        if not isinstance(v, dict))  # fmt: skip
    text = f"Fig. {spec.number}: {spec.caption}."
    if setting:
        text += f" Setting: {setting}."
    if spec.notes:
        text += f" Note: {spec.notes}."
    if sims:
        n = sorted({int(r["n"]) for r in sims})
        seeds = sorted({int(r["seeds"]) for r in sims})
        teachers = any(str(r["quantity"]).startswith("teacher_") for r in sims)
        text += (f" Points: simulations at N = {', '.join(map(str, n))}, "
                 f"{', '.join(map(str, seeds))} seeds each, mean +- SE"
                 + (" (circles: students, squares: teachers)." if teachers else "."))  # fmt: skip
    return text


def _fmt(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def figure_settings(spec: FigureSpec, theory: dict, sims: Sequence[dict]) -> dict:
    """The JSON sidecar: the exact setting of every curve, line and threshold of the figure."""
    from replica.thresholds import thresholds

    out = spec.to_dict()
    out["caption_full"] = figure_caption(spec, sims)
    for entry in out["series"]:
        cols = theory.get(entry["name"])
        if cols is not None:
            entry["points"] = len(cols[entry["vary"]])
    out["lines"] = [{"name": line.name, "label": line.label, "panel": line.panel,
                     "setting": line.setting} for line in spec.lines()]  # fmt: skip
    if spec.thresholds:
        th = thresholds(**spec.threshold_params)
        out["threshold_values"] = {name: getattr(th, name) for name in THRESHOLD_NAMES}
    if sims:
        out["simulations"] = {"n": sorted({int(r["n"]) for r in sims}),
                              "seeds": sorted({int(r["seeds"]) for r in sims})}  # fmt: skip
    return out


def render_figure(spec: FigureSpec, theory: dict, sims: Sequence[dict], out: str | Path) -> dict:
    """Draw ``figureN.png``; write ``figureN.csv``, ``figureN.json`` (settings) and, with
    simulations, ``figureN_simulations.csv``."""
    import json
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    from saddle.checkpoint import _lines as csv_lines
    from saddle.checkpoint import atomic_write_text

    out = Path(out)
    rows_, cols = spec.layout
    width = 5.6 * cols
    fig, axes = plt.subplots(rows_, cols, figsize=(width, 4.2 * rows_ + 0.5),
                             layout="constrained", squeeze=False)  # fmt: skip
    fig.get_layout_engine().set(w_pad=0.2, h_pad=0.08)  # room for edge tick labels (10^1)
    axes = axes.ravel()
    csv_rows = [("panel", "series", "label", "x_name", "x", "quantity", "value", "converged",
                 "status")]  # fmt: skip
    for s in spec.series:
        cols_ = theory[s.name]
        x = np.asarray(cols_[s.vary], dtype=float)
        ok = np.array([bool(c) for c in cols_["converged"]])
        status = np.asarray(cols_.get("status", [0] * x.size), dtype=float)
        ax = axes[s.panel]
        for column, style, label in [(s.y, s.style, s.label), *s.extra]:
            y = np.asarray(cols_[column], dtype=float) * s.scale
            shown = np.where(ok, y, np.nan)
            kw = {"lw": 1.6, **style}
            ax.plot(x, shown, label=label or None, **kw)
            bad = ~ok & (status != 3)
            if bad.any():
                ax.plot(x[bad], y[bad], "x", color=kw.get("color", "k"), ms=5)
            quantity = column if s.scale == 1.0 else f"{s.scale:g}*{column}"
            for xi, yi, oki, st in zip(x, y, ok, status, strict=True):
                csv_rows.append((s.panel, s.name, label, s.vary, repr(float(xi)), quantity,
                                 repr(float(yi)), bool(oki), int(st)))  # fmt: skip
    for line in spec.lines():
        ax = axes[line.panel]
        ax.plot(line.xs, line.ys, label=line.label or None, **{"lw": 1.2, **line.style})
        for xi, yi in zip(line.xs, line.ys, strict=True):
            csv_rows.append((line.panel, f"line:{line.name}", line.label, "x",
                             repr(float(xi)), "eps_g", repr(float(yi)), True, 0))  # fmt: skip
    if spec.thresholds:
        from replica.thresholds import thresholds

        th = thresholds(**spec.threshold_params)
        for panel, which in spec.thresholds.items():
            ax = axes[panel]
            for name in which:
                value = getattr(th, name)
                ax.axvline(value, color="0.45", ls="--", lw=0.8, zorder=0.5)
                ax.text(value, 1.01, THRESHOLD_NAMES[name], transform=ax.get_xaxis_transform(),
                        ha="center", va="bottom", fontsize=9)  # fmt: skip
                csv_rows.append((panel, f"threshold:{name}", THRESHOLD_NAMES[name], "alpha",
                                 repr(float(value)), "threshold", "nan", True, 0))  # fmt: skip
    sim_rows = [("panel", "series", "label", "x_name", "x", "quantity", "mean", "sem", "n",
                 "seeds")]  # fmt: skip
    by_name = {s.name: s for s in spec.series}
    sim_panels: dict[int, set] = {}
    sim_extent: dict[int, list] = {}
    for row in sims:
        s = by_name.get(row["series"])
        if s is None:
            continue
        column = row["quantity"]
        style = s.style if column == s.y else {c: st for c, st, *_ in s.extra}[column]
        teacher = column.startswith("teacher_")
        colour = style.get("color", "k")
        axes[s.panel].errorbar([row["x"]], [row["mean"] * s.scale], yerr=[row["sem"] * s.scale],
                               fmt="s" if teacher else "o", color=colour, ms=3.5, capsize=2,
                               lw=1, mfc="white" if teacher else colour)  # fmt: skip
        sim_panels.setdefault(s.panel, set()).add(teacher)
        sim_extent.setdefault(s.panel, []).append(
            ((row["mean"] - row["sem"]) * s.scale, (row["mean"] + row["sem"]) * s.scale))
        sim_rows.append((s.panel, s.name, s.label, s.vary, repr(float(row["x"])), column,
                         repr(float(row["mean"]) * s.scale), repr(float(row["sem"]) * s.scale),
                         int(row["n"]), int(row["seeds"])))  # fmt: skip
    for k, panel in enumerate(spec.panels):
        ax = axes[k]
        if panel.xlog:
            ax.set_xscale("log")
        if panel.ylog:
            ax.set_yscale("log")
        if panel.xlim:
            ax.set_xlim(*panel.xlim)
        if panel.ylim:
            lo, hi = panel.ylim
            if k in sim_extent and not panel.ylog:  # never clip a simulation point
                span = hi - lo
                lo = min(lo, min(a for a, _ in sim_extent[k]) - 0.02 * span)
                hi = max(hi, max(b for _, b in sim_extent[k]) + 0.02 * span)
            ax.set_ylim(lo, hi)
        ax.set_xlabel(panel.xlabel)
        ax.set_ylabel(panel.ylabel)
        handles, labels = ax.get_legend_handles_labels()
        for teacher in sorted(sim_panels.get(k, ())):
            handles.append(Line2D([], [], color="0.3", ls="none", marker="s" if teacher else "o",
                                  ms=4, mfc="white" if teacher else "0.3"))
            labels.append("simulation, teacher" if teacher else "simulation, student")
        if handles:
            legend = ax.legend(handles, labels, fontsize=8, loc=panel.legend, framealpha=1.0,
                               edgecolor="none")  # fmt: skip
            legend.set_zorder(5)
    caption = figure_caption(spec, sims)
    fig.suptitle("\n".join(textwrap.wrap(caption, int(16 * width))), fontsize=8.5)
    png = out / f"figure{spec.number}.png"
    fig.savefig(png, dpi=130)
    plt.close(fig)
    paths = {"png": png}
    paths["csv"] = atomic_write_text(out / f"figure{spec.number}.csv", csv_lines(csv_rows))
    settings = figure_settings(spec, theory, sims)
    paths["json"] = atomic_write_text(out / f"figure{spec.number}.json",
                                      json.dumps(settings, indent=1, default=str) + "\n")
    if sims:
        paths["simulations"] = atomic_write_text(out / f"figure{spec.number}_simulations.csv",
                                                 csv_lines(sim_rows))  # fmt: skip
    return paths


def make_figure(number: int, out: str | Path, *, resolution: float = 1.0, executor=None,
                progress_factory=None, segment: int = FIGURE_SEGMENT,
                simulations: dict | None = None, refine_rounds: int = 12) -> dict:  # fmt: skip
    """Compute (:func:`compute_figure`) and draw (:func:`render_figure`) paper figure
    ``number`` into ``out``.

    Returns the written paths (``png``, ``csv``, ``json``, ``simulations``) and the numbers of
    theory points that did not converge (``failed``) or have no finite solution (``diverged``).
    """
    spec = figure_spec(number, resolution=resolution)
    if not isinstance(spec, FigureSpec):  # a figure beyond the paper's computes itself
        return spec.make(out, simulations=simulations, executor=executor,
                         progress_factory=progress_factory)  # fmt: skip
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    theory, sims = compute_figure(spec, out, executor=executor,
                                  progress_factory=progress_factory, segment=segment,
                                  simulations=simulations,
                                  refine_rounds=refine_rounds)  # fmt: skip
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


# The chain figures register themselves under string ids (imported last: they use ``figure``).
import replica.chain_figures  # noqa: E402, F401
