"""Phase diagrams: any observable of teacher or student on a 2-D grid of any two parameters.

Each point is a saddle point of docs/saddle_point.md; paths and executors: docs/numerics.md §5.

A diagram is a grid ``x_values x y_values``. Each row of the grid (fixed ``y``) is a path in
``x`` cut into warm-started segments (:func:`replica.sweep.path_tasks`), run through an
executor and journaled to ``phase.csv`` as segments finish (resumable, identical for any
executor: :mod:`saddle.executor`, :mod:`saddle.checkpoint`).

Quantities
----------
- any column of the solution rows: ``student.eps_g``, ``student.q``, ``teacher.eps_g``, ...
- ``student.lam_star`` / ``teacher.lam_star``: the ridge strength minimising ``eps_g`` (bounded
  1-D minimisation over ``log10 lam`` in ``[1e-5, 10]`` of the saddle-point error), with the
  optimal error in ``eps_g``;
- ``student.chi_star``: the mixing ``chi`` in ``[0, 1]`` minimising the student's ``eps_g``;
- ``kd_gain``: ``eps_KD - min_lam eps_ridge``, the student's error minus that of the best
  ridge-regularised student trained on the labels at the same ``(alpha, rho, delta, eta)``,
  label smoothing and label loss (negative where distillation beats every direct ridge; its
  zero contour is drawn).

Threshold lines (:mod:`replica.thresholds`) are overlaid where an axis is ``alpha``:
``alpha_I = eta``, ``alpha_S`` and ``alpha~_S`` as functions of the other axis.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from replica.curves import STUDENT_VARIABLES, TEACHER_VARIABLES
from replica.params import PARAMETERS, ParameterError, axes, default, split_params
from replica.params import label as parameter_label
from replica.student import STUDENT_OBSERVABLES, StudentParams
from replica.sweep import Optimise, PathTask, path_tasks, run_tasks
from replica.tables import rows_to_columns, to_frame
from replica.teacher import TEACHER_OBSERVABLES, TeacherParams
from saddle.fixed_point import REPORT_COLUMNS
from saddle.results import ValueEquality

# Default range of each axis: (start, stop, geometric spacing), from the parameter schema
AXIS_DEFAULTS = {name: (*PARAMETERS[name].axis, PARAMETERS[name].log) for name in axes()}
DERIVED = ("lam_star", "chi_star", "kd_gain")

# Columns of the solution rows (TeacherSolution.to_row / StudentSolution.to_row), known before
# anything is computed so that a misspelt quantity fails at once; tests/test_phase.py checks
# them against solved rows.
TEACHER_COLUMNS = TEACHER_OBSERVABLES + REPORT_COLUMNS
STUDENT_COLUMNS = STUDENT_OBSERVABLES + REPORT_COLUMNS


def row_columns(model: str) -> tuple[str, ...]:
    """Observable columns of a ``"teacher"`` or ``"student"`` row of a diagram."""
    if model == "teacher":
        return TEACHER_COLUMNS
    teacher = tuple(f"teacher_{c}" for c in TEACHER_COLUMNS if c != "eps_bo")
    return STUDENT_COLUMNS + teacher + ("eps_bo_student", "eps_bo_teacher")
LAM_SEARCH = (1e-5, 10.0)


def axis_values(name: str, start: float | None = None, stop: float | None = None,
                num: int = 50, log: bool | None = None) -> np.ndarray:  # fmt: skip
    """Grid values of an axis, with the defaults of :data:`AXIS_DEFAULTS`."""
    name = name.replace("-", "_")
    if name not in AXIS_DEFAULTS:
        raise ParameterError(f"axis must be one of {', '.join(AXIS_DEFAULTS)}; got {name!r}")
    d_start, d_stop, d_log = AXIS_DEFAULTS[name]
    start = d_start if start is None else float(start)
    stop = d_stop if stop is None else float(stop)
    log = d_log if log is None else bool(log)
    if not (math.isfinite(start) and math.isfinite(stop)):
        raise ParameterError(f"{name}: an axis needs finite bounds; got {start!r}, {stop!r}")
    if start == stop:
        raise ParameterError(f"{name}: an axis needs start != stop; got {start!r} twice")
    if num < 2:
        raise ParameterError(f"num must be an integer >= 2; got {num}")
    if log:
        if start <= 0 or stop <= 0:
            raise ParameterError(f"{name}: a logarithmic axis needs positive bounds")
        return np.geomspace(start, stop, num)
    return np.linspace(start, stop, num)


@dataclass(frozen=True, eq=False)
class PhaseSpec(ValueEquality):
    """What to compute.

    Attributes
    ----------
    x, y : str
        Axis parameters (``alpha``, ``lam_t``, ``chi``, ...; ``lam`` for the teacher).
    x_values, y_values : tuple of float
    quantity : str
        ``"student.<column>"``, ``"teacher.<column>"``, ``"student.lam_star"``,
        ``"teacher.lam_star"``, ``"student.chi_star"`` or ``"kd_gain"``.
    fixed : dict
        The other parameters (defaults of :class:`StudentParams` / :class:`TeacherParams`).
    """

    x: str
    y: str
    x_values: tuple
    y_values: tuple
    quantity: str
    fixed: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "x", self.x.replace("-", "_"))
        object.__setattr__(self, "y", self.y.replace("-", "_"))
        object.__setattr__(self, "x_values", tuple(float(v) for v in self.x_values))
        object.__setattr__(self, "y_values", tuple(float(v) for v in self.y_values))
        if self.x == self.y:
            raise ParameterError(f"y must differ from x; got {self.y!r} twice")
        model, _, _ = parse_quantity(self.quantity, self.x, self.y)
        allowed = TEACHER_VARIABLES if model == "teacher" else STUDENT_VARIABLES
        for axis in (self.x, self.y):
            if axis not in allowed:
                which = "x" if axis == self.x else "y"
                raise ParameterError(f"{which} must be one of {', '.join(allowed)} for "
                                     f"{self.quantity}; got {axis!r}")  # fmt: skip
        if "alpha" not in (self.x, self.y) and "alpha" not in self.fixed:
            raise ParameterError("alpha must be given (in fixed) when it is not an axis")
        params_cls = TeacherParams if model == "teacher" else StudentParams
        for xv in (self.x_values[0], self.x_values[-1]):
            for yv in (self.y_values[0], self.y_values[-1]):
                params_cls(**{**self.params_fixed, self.x: xv, self.y: yv})  # validates
        for name, values in ((self.x, self.x_values), (self.y, self.y_values)):
            for v in values:
                params_cls(**{**self.params_fixed, self.x: self.x_values[0],
                              self.y: self.y_values[0], name: v})  # fmt: skip

    @property
    def model(self) -> str:
        return parse_quantity(self.quantity, self.x, self.y)[0]

    @property
    def column(self) -> str:
        """Column of the rows that holds the quantity."""
        return parse_quantity(self.quantity, self.x, self.y)[1]

    @property
    def derived(self) -> str | None:
        return parse_quantity(self.quantity, self.x, self.y)[2]

    @property
    def params_fixed(self) -> dict:
        cls = TeacherParams if self.model == "teacher" else StudentParams
        return split_params(cls, self.fixed)[0]

    def to_dict(self) -> dict:
        return asdict(self)

    def rows_dict(self) -> dict:
        """What the rows of ``phase.csv`` depend on: the spec without the quantity, except
        for the model, the derived search (``lam_star``, ``chi_star``, ``kd_gain``) and its
        column. Two specs with the same ``rows_dict`` share their rows (only the map
        differs), so a diagram of another column re-uses a finished grid."""
        out = self.to_dict()
        out.pop("quantity")
        out.update(model=self.model, derived=self.derived,
                   optimised=self.column if self.derived else None)  # fmt: skip
        return out


def parse_quantity(quantity: str, x: str, y: str) -> tuple[str, str, str | None]:
    """``(model, column, derived)`` of a quantity name (see :class:`PhaseSpec`)."""
    q = quantity.strip()
    if q == "kd_gain":
        return "student", "kd_gain", "kd_gain"
    if "." not in q:
        raise ParameterError(
            "quantity must look like student.eps_g, teacher.eps_g, student.lam_star, "
            f"student.chi_star or kd_gain; got {quantity!r}"
        )
    owner, name = q.split(".", 1)
    if owner not in ("student", "teacher"):
        raise ParameterError(f"quantity must start with student. or teacher.; got {quantity!r}")
    teacher_axes = x in TEACHER_VARIABLES and y in TEACHER_VARIABLES
    if owner == "teacher" and teacher_axes and "lam_t" not in (x, y):
        model = "teacher"
    else:
        model = "student"
    if name == "lam_star":
        column = "lam" if model == "teacher" else ("lam_s" if owner == "student" else None)
        if column is None:
            raise ParameterError("quantity teacher.lam_star needs teacher axes (alpha, rho, "
                                 "delta, smoothing)")  # fmt: skip
        return model, column, "lam_star"
    if name == "chi_star":
        if owner != "student":
            raise ParameterError("quantity chi_star is a student quantity: student.chi_star")
        return "student", "chi", "chi_star"
    if model == "student" and owner == "teacher":
        column = "eps_bo_teacher" if name == "eps_bo" else f"teacher_{name}"
    elif model == "student" and name == "eps_bo":
        column = "eps_bo_student"
    else:
        column = name
    if column not in row_columns(model):
        names = TEACHER_COLUMNS if owner == "teacher" else STUDENT_COLUMNS
        raise ParameterError(f"quantity {quantity!r} is not a {owner} column; use "
                             f"{owner}.<{'|'.join(names)}>, student.lam_star, "
                             "student.chi_star or kd_gain")  # fmt: skip
    return model, column, None


@dataclass(frozen=True, eq=False)
class PhaseDiagram(ValueEquality):
    """A computed diagram: the spec, the grid of the quantity and every row's columns.

    Attributes
    ----------
    spec : PhaseSpec
    grid : ndarray, shape (len(y_values), len(x_values))
        The quantity (NaN where no finite solution exists or a point did not converge).
    columns : dict
        All observables, one entry per grid point (row-major in ``(y, x)``).
    """

    spec: PhaseSpec
    grid: np.ndarray = field(repr=False)
    columns: dict = field(repr=False)

    def to_dict(self) -> dict:
        return {"spec": self.spec.to_dict(), "grid": self.grid.tolist()}

    def to_frame(self):
        """Every grid point's row as a ``pandas.DataFrame`` (pandas imported only here), with
        the mapped quantity (NaN where not converged) in column ``value``."""
        return to_frame({**self.columns, "value": self.grid.ravel().tolist()})


def phase_tasks(spec: PhaseSpec, *, segment: int = 8) -> list[PathTask]:
    """Segments of every grid row (paths in ``x`` at fixed ``y``), keys ``(iy, ix)``."""
    model = spec.model
    fixed = dict(spec.fixed)
    optimise = None
    if spec.derived == "lam_star":
        optimise = Optimise(spec.column, *LAM_SEARCH, log=True)
    elif spec.derived == "chi_star":
        optimise = Optimise("chi", 0.0, 1.0, log=False, xatol=1e-3)
    extras = ("kd_gain",) if spec.derived == "kd_gain" else ()
    tasks: list[PathTask] = []
    for iy, yv in enumerate(spec.y_values):
        tasks += path_tasks(model, spec.x, spec.x_values, {**fixed, spec.y: yv},
                            key={"iy": iy, spec.y: yv}, segment=segment, optimise=optimise,
                            extras=extras, index_name="ix")  # fmt: skip
    return tasks


def compute_phase(
    spec: PhaseSpec, *, executor=None, journal=None, progress=None, segment: int = 8
) -> PhaseDiagram:
    """Compute a diagram (see :func:`replica.sweep.run_tasks` for the keywords)."""
    tasks = phase_tasks(spec, segment=segment)
    rows = run_tasks(tasks, executor=executor, journal=journal, progress=progress)
    rows = sorted(rows, key=lambda r: (int(r["iy"]), int(r["ix"])))
    columns = rows_to_columns(rows)
    nx, ny = len(spec.x_values), len(spec.y_values)
    values = np.array(columns[spec.column], dtype=float)
    ok = np.array([bool(c) for c in columns["converged"]])
    values = np.where(ok, values, np.nan)
    return PhaseDiagram(spec, values.reshape(ny, nx), columns)


# ----------------------------------------------------------------------------------------------
# Thresholds along the axes
# ----------------------------------------------------------------------------------------------

THRESHOLD_STYLE = {
    "alpha_I": ("white", ":", r"$\alpha_I$"),
    "alpha_S": ("white", "--", r"$\alpha_S$"),
    "alpha_S_teacher": ("white", "-.", r"$\tilde\alpha_S$"),
}


def threshold_lines(spec: PhaseSpec, max_points: int = 25) -> dict[str, tuple]:
    """Threshold curves in the plane: ``name -> (xs, ys)`` (empty if no axis is ``alpha``).

    With ``alpha`` on one axis, each threshold is a function of the other axis when that is
    ``rho``, ``delta`` or ``eta`` (computed on at most ``max_points`` values and interpolated),
    and a constant otherwise.
    """
    from replica.thresholds import thresholds

    if "alpha" not in (spec.x, spec.y):
        return {}
    other = spec.y if spec.x == "alpha" else spec.x
    other_values = np.array(spec.y_values if spec.x == "alpha" else spec.x_values)
    base = {name: default(name) for name in ("rho", "delta", "eta")}
    base.update({k: v for k, v in spec.fixed.items() if k in base})
    if spec.model == "teacher":
        base["eta"] = 1.0
    names = ("alpha_S_teacher",) if spec.model == "teacher" else tuple(THRESHOLD_STYLE)
    if other in ("rho", "delta", "eta"):
        idx = np.unique(np.linspace(0, other_values.size - 1, min(max_points, other_values.size))
                        .round().astype(int))  # fmt: skip
        sample = other_values[idx]
        table = [thresholds(**{**base, other: float(v)}) for v in sample]
        lines = {n: (sample, np.array([getattr(t, n) for t in table])) for n in names}
    else:
        t = thresholds(**base)
        lines = {n: (other_values[[0, -1]], np.array([getattr(t, n)] * 2)) for n in names}
    out = {}
    for name, (o, a) in lines.items():
        out[name] = (a, o) if spec.x == "alpha" else (o, a)
    return out


# ----------------------------------------------------------------------------------------------
# Output
# ----------------------------------------------------------------------------------------------

LABELS = {name: parameter_label(name) for name in axes()}  # from the parameter schema

QUANTITY_WORDS = {
    "eps_g": r"test error $\varepsilon_g$", "q": "norm $q$", "m": "overlap $m$",
    "b": "bias $b$", "train_loss": "training loss", "train_error": "training error",
    "lam_star": r"optimal $\lambda$", "chi_star": r"optimal $\chi$",
}  # fmt: skip


def quantity_label(quantity: str) -> str:
    """Words (and mathtext) for a quantity name: ``student.eps_g`` -> 'student test error
    $\\varepsilon_g$'; ``kd_gain`` -> the error of KD minus that of the best ridge."""
    if quantity.strip() == "kd_gain":
        return r"KD gain: $\varepsilon_g$(KD) $-$ $\varepsilon_g$(best ridge, $\chi=0$)"
    owner, _, name = quantity.strip().partition(".")
    return f"{owner} {QUANTITY_WORDS.get(name, name.replace('_', ' '))}"


def plot_phase(diagram: PhaseDiagram, path: str | Path, *, levels: int = 10) -> Path:
    """Heatmap of the quantity with contour lines, threshold lines and (for ``kd_gain``)
    the zero contour; saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spec = diagram.spec
    x, y, z = np.array(spec.x_values), np.array(spec.y_values), diagram.grid
    fig, ax = plt.subplots(figsize=(6.4, 4.8), constrained_layout=True)
    finite = z[np.isfinite(z)]
    cmap = "RdBu_r" if spec.derived == "kd_gain" else "viridis"
    vmin = vmax = None
    if spec.derived == "kd_gain" and finite.size:
        vmax = float(np.max(np.abs(finite))) or 1.0
        vmin = -vmax
    mesh = ax.pcolormesh(x, y, z, shading="nearest", cmap=cmap, vmin=vmin, vmax=vmax)
    fig.colorbar(mesh, ax=ax, label=quantity_label(spec.quantity))
    if finite.size and np.ptp(finite) > 0 and min(x.size, y.size) >= 2:
        masked = np.ma.masked_invalid(z)
        cs = ax.contour(x, y, masked, levels=levels, colors="k", linewidths=0.6, alpha=0.7)
        labels = ax.clabel(cs, fontsize=8, fmt="%.3g", inline_spacing=3)
        for text in labels:  # readable on dark and light colours alike
            text.set_bbox({"boxstyle": "round,pad=0.12", "facecolor": "white",
                           "edgecolor": "none", "alpha": 0.75})
        if spec.derived == "kd_gain" and finite.min() < 0 < finite.max():
            ax.contour(x, y, masked, levels=[0.0], colors="k", linewidths=2.0)
            ax.plot([], [], "k-", lw=2, label="KD = best ridge")
    for name, (xs, ys) in threshold_lines(spec).items():
        colour, style, label = THRESHOLD_STYLE[name]
        ax.plot(xs, ys, color=colour, ls=style, lw=1.5, label=label)
    for axis, name in (("x", spec.x), ("y", spec.y)):
        if AXIS_DEFAULTS.get(name, (0, 0, False))[2]:
            values = x if axis == "x" else y
            if values.min() > 0:
                getattr(ax, f"set_{axis}scale")("log")
    ax.set_xlim(x.min(), x.max())
    ax.set_ylim(y.min(), y.max())
    ax.set_xlabel(LABELS.get(spec.x, spec.x))
    ax.set_ylabel(LABELS.get(spec.y, spec.y))
    fixed = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                      for k, v in spec.fixed.items())  # fmt: skip
    import textwrap

    title = f"{quantity_label(spec.quantity)}   ({fixed})"
    ax.set_title("\n".join(textwrap.wrap(title, 90)), fontsize=8)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="best", framealpha=0.6)
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

