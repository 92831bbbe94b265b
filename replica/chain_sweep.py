"""Sweeps of distillation chains: curves, phase diagrams, the number of stages, optimised chains.

Orchestration only: the physics of one chain is :func:`replica.chain.solve_chain` and
:func:`replica.chain.optimise_stages` (docs/chains.md). A sweep is cut into warm-started
segments (:class:`ChainTask`, one unit of work) that run through any executor
(:mod:`saddle.executor`) and are journaled row by row as they finish
(:class:`saddle.checkpoint.CsvJournal`), exactly like the teacher and student sweeps of
:mod:`replica.sweep`: the cut does not depend on the number of workers, so the rows are the same
whatever the executor, and an interrupted run recomputes only its unfinished segments.

What can vary (:func:`parse_variable`):

- the mixture and the label noise, ``alpha``, ``rho``, ``delta``, ``flip``;
- a numeric key of any stage, ``stageK.eta``, ``stageK.lam``, ``stageK.chi``,
  ``stageK.temperature`` (or ``stageK.T``), ``stageK.bias_value`` (a stage with a fixed bias);
- the number of stages ``K`` (stages ``0..K``): the chain given is cut after stage ``K``, or
  its last stage is repeated up to stage ``K``. Stage ``k`` is trained with the earlier stages
  fixed and never sees the later ones, so the ``K``-stage chain is a prefix of the longest one:
  the longest chain is solved once per point and every ``K`` is read off its stages (each
  stage solved exactly once, the earlier stages reused as they are).

Rows are flat (one per point, ready for CSV and pandas): the key columns, ``alpha``, ``rho``,
``delta``, ``flip``, ``K``, the last stage's ``eps_g``, the chain's ``converged`` (a bool: every
stage converged, and with an optimisation every optimiser succeeded or stopped at a stationary
point, :data:`GRADIENT_TOL`), ``nit`` (map evaluations over all stages), ``status`` (the worst
stage's) and ``residual`` (with an optimisation also ``optimiser_success``, scipy's flag for
every stage, and ``optimiser_gradient``, the largest final gradient), then for every stage ``k``
its parameters and observables as ``stage{k}.NAME`` (:data:`STAGE_COLUMNS`) and its overlaps
``stage{k}.Q{j} = Q_jk`` with the earlier stages. Stages beyond ``K`` (number-of-stages sweeps)
are NaN.

A quantity (phase diagrams, :class:`Quantity`) is one such column or a sum and difference of
them, e.g. ``stage1.eps_g`` or ``stage0.eps_g - stage1.eps_g`` (the gain of stage 1 over its
teacher); ``last.NAME`` is the last stage's column.
"""

from __future__ import annotations

import dataclasses
import math
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from replica.chain import OPTIMISABLE, ChainParams, Stage, optimise_stages, solve_chain
from replica.curves import Curve
from replica.params import ParameterError
from replica.tables import rows_to_columns, to_frame
from saddle.results import ValueEquality

MIXTURE = ("alpha", "rho", "delta", "flip")
STAGE_NUMBERS = ("eta", "lam", "chi", "temperature", "bias_value")
ALIASES = {"T": "temperature"}
DEPTH = "K"
#: Observables of each stage in a row (:class:`replica.chain.StageSolution` attributes).
STAGE_OBSERVABLES = ("eps_g", "m", "q", "b", "V", "train_loss", "train_ce",
                     "train_error_observed", "train_error_true", "train_disagreement",
                     "disagreement", "eps_bo")  # fmt: skip
STAGE_REPORT = ("converged", "nit", "residual", "status")
#: Per-stage columns ``stage{k}.NAME`` (then the overlaps ``stage{k}.Q{j}``, ``j < k``).
STAGE_COLUMNS = STAGE_NUMBERS + STAGE_OBSERVABLES + STAGE_REPORT
CHAIN_COLUMNS = MIXTURE + (DEPTH, "eps_g", "converged", "nit", "status", "residual")
DEFAULT_SEGMENT = 8
#: An optimised point counts as converged when every optimiser succeeded or stopped (e.g. a
#: line search that finds no decrease, L-BFGS-B "ABNORMAL") where the gradient of eps_g with
#: respect to the optimised ``(log lam, chi, log T)`` is at most this: a stationary point
#: (eps_g changes by ~1e-8 over a 1 % change of lam there).
GRADIENT_TOL = 1e-6


# ----------------------------------------------------------------------------------------------
# What varies
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variable:
    """A swept parameter: ``name`` (canonical: ``alpha``, ``stage2.lam``, ``K``), the stage it
    belongs to (None for the mixture and ``K``) and its key."""

    name: str
    stage: int | None
    key: str

    @property
    def depth(self) -> bool:
        return self.name == DEPTH


def parse_variable(text: str, params: ChainParams, what: str = "vary") -> Variable:
    """The :class:`Variable` named ``text`` for the chain ``params``; a one-line
    :class:`ParameterError` naming ``what`` (the option) otherwise."""
    name = str(text).strip()
    if name in MIXTURE or name == DEPTH:
        return Variable(name, None, name)
    match = re.fullmatch(r"stage(\d+)\.(\w+)", name)
    if match is None:
        raise ParameterError(f"{what}: expected alpha, rho, delta, flip, K or stageK.KEY "
                             f"(KEY one of {', '.join(STAGE_NUMBERS)}); got {text!r}")
    k, key = int(match.group(1)), ALIASES.get(match.group(2), match.group(2))
    n = len(params.stages)
    if k >= n:
        raise ParameterError(f"{what}: the chain has no stage {k} (stages 0..{n - 1}); got "
                             f"{text!r}")
    if key not in STAGE_NUMBERS:
        raise ParameterError(f"{what}: stage{k}.{match.group(2)} cannot vary (one of "
                             f"{', '.join(STAGE_NUMBERS)})")
    if key == "bias_value" and params.stages[k].bias != "fixed":
        raise ParameterError(f"{what}: stage{k}.bias_value varies only a fixed bias "
                             f"(give stage{k} bias=fixed or bias=VALUE)")
    return Variable(f"stage{k}.{key}", k, key)


def assign(params: ChainParams, values: Mapping[str, float]) -> ChainParams:
    """The chain ``params`` with the parameters ``values`` (canonical names, not ``K``) set;
    errors name the stage and key (``stage1.lam must be >= 0; ...``)."""
    mixture = {k: float(v) for k, v in values.items() if k in MIXTURE}
    stages = list(params.stages)
    for name, value in values.items():
        if name in MIXTURE:
            continue
        variable = parse_variable(name, params)
        try:
            stages[variable.stage] = dataclasses.replace(stages[variable.stage],
                                                         **{variable.key: float(value)})
        except ParameterError as exc:
            raise ParameterError(f"stage{variable.stage}.{exc}") from None
    return dataclasses.replace(params, **mixture, stages=tuple(stages))


def extend(params: ChainParams, depth: int) -> ChainParams:
    """The chain of stages ``0..depth``: ``params`` cut after stage ``depth``, or its last stage
    repeated up to stage ``depth``."""
    depth = check_depth(depth)
    stages = tuple(params.stages)
    if depth + 1 <= len(stages):
        return dataclasses.replace(params, stages=stages[: depth + 1])
    if len(stages) < 2:
        raise ParameterError("K: repeating the last stage needs a chain of at least two "
                             "stages (stage 0 cannot be repeated)")
    return dataclasses.replace(params, stages=stages + (stages[-1],) * (depth + 1 - len(stages)))


def check_depth(value) -> int:
    """A number of stages after stage 0: an integer ``K >= 0``."""
    try:
        depth = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"K must be an integer >= 0; got {value!r}") from None
    if not (math.isfinite(depth) and depth == int(depth) and depth >= 0):
        raise ParameterError(f"K must be an integer >= 0; got {value!r}")
    return int(depth)


# ----------------------------------------------------------------------------------------------
# Quantities: columns and their sums and differences
# ----------------------------------------------------------------------------------------------

_TERM = re.compile(r"\s*([+-]?)\s*(stage\d+|last)\.(\w+)\s*")


@dataclass(frozen=True)
class Quantity:
    """A column of the chain rows, or a sum and difference of them (phase diagrams).

    ``stage1.eps_g``, ``stage0.eps_g - stage1.eps_g``, ``last.eps_g - stage0.eps_g``; names
    are those of :data:`STAGE_COLUMNS` (and ``Q{j}``); ``last`` is the last stage (stage ``K``).
    """

    text: str
    terms: tuple  # ((sign, stage index or None for last, name), ...)

    @classmethod
    def parse(cls, text: str, n_stages: int) -> Quantity:
        """Parse and check ``text`` against a chain of ``n_stages`` stages (the longest one of
        the sweep); one-line :class:`ParameterError` naming ``quantity`` otherwise."""
        source = str(text)
        terms, position = [], 0
        while position < len(source):
            match = _TERM.match(source, position)
            if match is None or (terms and not match.group(1)) or match.end() == position:
                raise ParameterError(
                    "quantity: expected stageK.NAME or last.NAME terms joined by + or - "
                    f"(e.g. 'stage0.eps_g - stage1.eps_g'); got {text!r}"
                )
            owner, name = match.group(2), match.group(3)
            stage = None if owner == "last" else int(owner[5:])
            if stage is not None and stage >= n_stages:
                raise ParameterError(f"quantity: the chain has no stage {stage} (stages "
                                     f"0..{n_stages - 1}); got {text!r}")
            overlap = re.fullmatch(r"Q(\d+)", name)
            if overlap is not None:
                if stage is None or int(overlap.group(1)) >= stage:
                    raise ParameterError(f"quantity: {owner}.{name} is not an overlap "
                                         "(stageK.Qj = Q_jk needs j < K)")
            elif name not in STAGE_COLUMNS or name == "converged":
                raise ParameterError(f"quantity: {owner}.{name} is not a stage column (one of "
                                     f"{', '.join(c for c in STAGE_COLUMNS if c != 'converged')}"
                                     ", Qj)")  # fmt: skip
            terms.append((-1.0 if match.group(1) == "-" else 1.0, stage, name))
            position = match.end()
        if not terms:
            raise ParameterError("quantity: empty (e.g. stage1.eps_g)")
        return cls(source.strip(), tuple(terms))

    def columns(self, depth: int) -> list[tuple[float, str]]:
        """``(sign, column)`` of each term in a row of ``K = depth``."""
        return [(sign, f"stage{depth if stage is None else stage}.{name}")
                for sign, stage, name in self.terms]  # fmt: skip

    def evaluate(self, columns: Mapping[str, Sequence]) -> np.ndarray:
        """The quantity in every row of ``columns`` (NaN where a term is absent or NaN)."""
        depths = [int(k) for k in columns[DEPTH]]
        out = np.empty(len(depths))
        for i, depth in enumerate(depths):
            total = 0.0
            for sign, column in self.columns(depth):
                value = columns.get(column)
                total += sign * (float(value[i]) if value is not None else math.nan)
            out[i] = total
        return out


# ----------------------------------------------------------------------------------------------
# One segment of a sweep
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainOptimise:
    """At every point, the stage-wise optimal ``over`` parameters, or with ``jointly`` those
    of every stage up to ``target`` (default the last) minimising stage ``target``'s
    ``eps_g`` (:func:`replica.chain.optimise_stages`).

    ``warm``: start each point's search at the previous point's optimum (along a segment)
    instead of at the given stages' values.
    """

    over: tuple = ("lam",)
    jointly: bool = False
    target: int | None = None
    lam_bounds: tuple = (1e-4, 1e2)
    temperature_bounds: tuple = (0.1, 10.0)
    warm: bool = True

    def __post_init__(self) -> None:
        over = tuple(str(n).strip() for n in self.over)
        for name in over:
            if name not in OPTIMISABLE:
                raise ParameterError(f"over: {name!r} is not one of {', '.join(OPTIMISABLE)}")
        if not over:
            raise ParameterError(f"over: name at least one of {', '.join(OPTIMISABLE)}")
        object.__setattr__(self, "over", over)
        object.__setattr__(self, "jointly", bool(self.jointly))
        if self.target is not None:
            if not self.jointly:
                raise ParameterError("target: only with jointly (stage-wise, every stage is "
                                     "optimised)")
            object.__setattr__(self, "target", check_depth(self.target))
        for name in ("lam_bounds", "temperature_bounds"):
            lo, hi = (float(v) for v in getattr(self, name))
            if not (0.0 < lo < hi < math.inf):
                raise ParameterError(f"{name} must be 0 < lower < upper; got {lo!r}, {hi!r}")
            object.__setattr__(self, name, (lo, hi))

    def optimised(self, k: int, stage: Stage) -> tuple[str, ...]:
        """The parameters optimised at stage ``k`` (stage 0: its ridge, unless Bayes)."""
        if self.jointly and self.target is not None and k > self.target:
            return ()
        if k == 0:
            return () if stage.teacher == "bayes" else ("lam",)
        return self.over

    def check(self, params: ChainParams, depth_sweep: bool = False) -> None:
        """One-line errors for a chain this cannot optimise."""
        if self.jointly and depth_sweep:
            raise ParameterError("jointly: a joint optimum over K stages is not a prefix of "
                                 "the longer chain's; sweep K stage-wise or vary another "
                                 "parameter")
        n = len(params.stages)
        if self.target is not None and self.target >= n:
            raise ParameterError(f"target: the chain has stages 0..{n - 1}; got {self.target}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True, eq=False)
class ChainTask(ValueEquality):
    """One segment of a sweep: points solved in order, each warm-started from the previous.

    Attributes
    ----------
    params : ChainParams
        The chain at the segment's fixed values.
    names : tuple of str
        Canonical names of the parameters set at each point (not ``K``).
    points : tuple of tuple of float
        The values of ``names`` at each point.
    point_keys : tuple of dict
        Key columns of each point.
    depths : tuple of int
        Number-of-stages sweeps: one row per ``K`` at each point (stages ``0..K`` of the chain
        extended to ``max(depths)``), its key ``{depth_key: index of K}``. Empty: one row per
        point, the chain as given.
    optimise : ChainOptimise, optional
    options : dict
        Keywords of :func:`replica.chain.solve_chain` (``tol``, ``quadrature``, ...).
    """

    params: ChainParams
    names: tuple
    points: tuple
    point_keys: tuple
    depths: tuple = ()
    depth_key: str = "index"
    optimise: ChainOptimise | None = None
    options: dict = field(default_factory=dict)

    @property
    def keys(self) -> tuple:
        """Key columns of every row (what the journal checks)."""
        if not self.depths:
            return tuple(self.point_keys)
        return tuple({**key, self.depth_key: i} for key in self.point_keys
                     for i in range(len(self.depths)))  # fmt: skip

    def __len__(self) -> int:
        return len(self.keys)

    def chain_at(self, point: Sequence[float]) -> ChainParams:
        params = assign(self.params, dict(zip(self.names, point, strict=True)))
        return extend(params, max(self.depths)) if self.depths else params


def solve_chain_task(task: ChainTask) -> list[dict]:
    """Solve one segment (module-level, so process pools and Dask can run it); one row per
    point (per point and ``K`` for number-of-stages sweeps), see the module docstring.

    Each point starts from the previous point's stage states (``initial`` of
    :func:`replica.chain.solve_chain`); with ``optimise``, its searches start from the previous
    point's optimum (``ChainOptimise.warm``).
    """
    rows: list[dict] = []
    initial = None
    previous_best: tuple | None = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # non-convergence is in the rows (converged, status)
        for key, point in zip(task.point_keys, task.points, strict=True):
            params = task.chain_at(point)
            results = None
            if task.optimise is None:
                solution = solve_chain(params.alpha, params.rho, params.delta, params.flip,
                                       params.stages, initial=initial, **task.options)
            else:
                start = _warm_stages(params.stages, previous_best, task.optimise)
                solution, best, results = optimise_stages(
                    params.alpha, params.rho, params.delta, params.flip, start,
                    over=task.optimise.over, jointly=task.optimise.jointly,
                    target=task.optimise.target, lam_bounds=task.optimise.lam_bounds,
                    temperature_bounds=task.optimise.temperature_bounds,
                    quadrature=task.options.get("quadrature"),
                )  # fmt: skip
                previous_best = best if solution.converged else None
            initial = [st.state if st.converged else None for st in solution.stages]
            width = len(params.stages)
            if not task.depths:
                rows.append(chain_row(solution, key, width - 1, width, results))
                continue
            for i, depth in enumerate(task.depths):
                rows.append(chain_row(solution, {**key, task.depth_key: i}, depth, width,
                                      results))  # fmt: skip
    return rows


def _warm_stages(stages: Sequence[Stage], best: Sequence[Stage] | None,
                 spec: ChainOptimise) -> tuple:  # fmt: skip
    """The stages at which an optimisation starts: the previous point's optimum for the
    optimised parameters (``spec.warm``), the given values otherwise."""
    if best is None or not spec.warm:
        return tuple(stages)
    return tuple(dataclasses.replace(stage, **{n: getattr(best[k], n)
                                               for n in spec.optimised(k, stage)})
                 for k, stage in enumerate(stages))  # fmt: skip


def chain_row(solution, key: Mapping, depth: int, width: int, results=None) -> dict:
    """The flat row of stages ``0..depth`` of ``solution`` (a ChainSolution), with columns for
    ``width`` stages (NaN beyond ``depth``); ``results``: the optimiser results, if any."""
    stages = solution.stages[: depth + 1]
    params = solution.params
    last = stages[-1]
    ok = all(st.converged for st in stages)
    row = dict(key)
    row.update(alpha=params.alpha, rho=params.rho, delta=params.delta, flip=params.flip)
    row[DEPTH] = depth
    row["eps_g"] = last.eps_g
    if results is not None:
        used = [r for r in results[: depth + 1] if r is not None]
        success = all(bool(r.success) for r in used)
        gradient = max((float(np.max(np.abs(r.jac))) for r in used), default=0.0)
        stationary = all(bool(r.success) or float(np.max(np.abs(r.jac))) <= GRADIENT_TOL
                         for r in used)  # fmt: skip
        row["converged"] = ok and stationary
    else:
        row["converged"] = ok
    row["nit"] = int(sum(st.nit for st in stages))
    row["status"] = int(max(st.status for st in stages))
    row["residual"] = float(max(st.residual for st in stages))
    if results is not None:
        row["optimiser_success"] = success
        row["optimiser_gradient"] = gradient
    for k in range(width):
        if k < len(stages):
            st = stages[k]
            values = [getattr(st.stage, n) for n in STAGE_NUMBERS]
            values += [getattr(st, n) for n in STAGE_OBSERVABLES]
            values += [st.converged, int(st.nit), float(st.residual), int(st.status)]
            overlaps = list(st.overlaps)
        else:
            values = [math.nan] * len(STAGE_COLUMNS)
            overlaps = [math.nan] * k
        for name, value in zip(STAGE_COLUMNS, values, strict=True):
            row[f"stage{k}.{name}"] = value
        for j, value in enumerate(overlaps):
            row[f"stage{k}.Q{j}"] = value
    return row


# ----------------------------------------------------------------------------------------------
# Paths and their segments
# ----------------------------------------------------------------------------------------------


def path_values(variable: Variable, values: Sequence[float], what: str = "values") -> list:
    """The values of a path, checked (finite numbers; integers >= 0 for ``K``)."""
    values = list(values)
    if not values:
        raise ParameterError(f"{what}: give at least one value")
    out = []
    for v in values:
        try:
            x = float(v)
        except (TypeError, ValueError):
            raise ParameterError(f"{what}: not a number: {v!r}") from None
        if not math.isfinite(x):
            raise ParameterError(f"{what}: {variable.name} must be finite; got {v!r}")
        out.append(check_depth(x) if variable.depth else x)
    return out


def validate_points(params: ChainParams, names: Sequence[str], points: Sequence[Sequence],
                    depth: int | None = None) -> None:  # fmt: skip
    """Build the chain at every point (fail fast, before a long sweep, with the one-line error
    of the first invalid value)."""
    for point in points:
        chain = assign(params, dict(zip(names, point, strict=True)))
        if depth is not None:
            extend(chain, depth)


def curve_tasks(params: ChainParams, vary: str, values: Sequence[float], *,
                optimise: ChainOptimise | None = None, segment: int = DEFAULT_SEGMENT,
                options: dict | None = None) -> list[ChainTask]:  # fmt: skip
    """Segments of a curve along ``vary`` (keys ``index``); ``vary = "K"``: one task, the
    longest chain solved once (a number-of-stages curve)."""
    from saddle.executor import segments

    variable = parse_variable(vary, params)
    values = path_values(variable, values)
    options = dict(options or {})
    if optimise is not None:
        optimise.check(params, variable.depth)
    if variable.depth:
        extend(params, max(values))  # validates
        return [ChainTask(params, (), ((),), ({},), tuple(values), "index", optimise,
                          options)]  # fmt: skip
    _check_not_optimised(variable, optimise, params)
    validate_points(params, (variable.name,), [(v,) for v in values])
    return [ChainTask(params, (variable.name,), tuple((v,) for _, v in seg),
                      tuple({"index": i} for i, _ in seg), (), "index", optimise, options)
            for seg in segments(list(enumerate(values)), segment)]  # fmt: skip


def _check_not_optimised(variable: Variable, optimise: ChainOptimise | None,
                         params: ChainParams) -> None:  # fmt: skip
    if optimise is None or variable.stage is None:
        return
    stage = params.stages[variable.stage]
    if variable.key in optimise.optimised(variable.stage, stage):
        raise ParameterError(f"vary: {variable.name} is optimised at every point (over "
                             f"{', '.join(optimise.over)}); vary another parameter")


def run_chain_tasks(tasks: Sequence[ChainTask], *, executor=None, journal=None,
                    progress=None) -> list[dict]:  # fmt: skip
    """:func:`replica.sweep.run_tasks` with :func:`solve_chain_task` (journal, progress and
    resume as there)."""
    from replica.sweep import run_tasks

    return run_tasks(tasks, executor=executor, journal=journal, progress=progress,
                     solve=solve_chain_task)  # fmt: skip


def describe(params: ChainParams, skip: Sequence[str] = ()) -> dict:
    """The fixed parameters of a sweep as scalars (for ``Curve.fixed``): the mixture values
    not in ``skip`` and ``stages``, the stages' non-default keys as ``--stage`` texts."""
    out = {name: getattr(params, name) for name in MIXTURE if name not in skip}
    default = Stage()
    texts = []
    for stage in params.stages:
        items = [f"{f.name}={getattr(stage, f.name):g}" if isinstance(getattr(stage, f.name),
                 float) else f"{f.name}={getattr(stage, f.name)}"
                 for f in dataclasses.fields(stage)
                 if getattr(stage, f.name) != getattr(default, f.name)]  # fmt: skip
        texts.append(",".join(items) or "default")
    out["stages"] = "; ".join(texts)
    return out


def chain_curve(vary: str, values: Sequence[float], params: ChainParams, *,
                optimise: ChainOptimise | None = None, executor=None, journal=None,
                progress=None, segment: int = DEFAULT_SEGMENT, **options) -> Curve:  # fmt: skip
    """A chain along one parameter (``alpha``, ``stage2.lam``, ... or the number of stages
    ``K``), warm-started, as a :class:`replica.curves.Curve` (model ``"chain"``, one row per
    value, columns of the module docstring).

    ``optimise``: the stage-wise optimal parameters at every point. ``executor``, ``journal``,
    ``progress``: as in :func:`replica.sweep.run_tasks`; ``options`` go to
    :func:`replica.chain.solve_chain`.
    """
    variable = parse_variable(vary, params)
    tasks = curve_tasks(params, variable.name, values, optimise=optimise, segment=segment,
                        options=options)  # fmt: skip
    rows = run_chain_tasks(tasks, executor=executor, journal=journal, progress=progress)
    rows = sorted(rows, key=lambda r: int(float(r["index"])))
    return Curve("chain", variable.name, describe(params, (variable.name,)),
                 rows_to_columns(rows))  # fmt: skip


def failures(columns: Mapping[str, Sequence]) -> tuple[int, int]:
    """``(not converged, no finite solution)`` counts of the rows (status 3 is an answer: the
    stage is unregularised on separable data)."""
    converged = columns.get("converged", [])
    status = columns.get("status", [0] * len(converged))
    diverged = sum(int(s) == 3 for s in status)
    failed = sum((not bool(ok)) and int(s) != 3 for ok, s in zip(converged, status,
                                                                 strict=True))  # fmt: skip
    return failed, diverged


# ----------------------------------------------------------------------------------------------
# Phase diagrams over two parameters
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ChainPhaseSpec(ValueEquality):
    """A chain diagram: ``quantity`` (a :class:`Quantity` text) on the grid ``x_values x
    y_values`` of two parameters (:func:`parse_variable`; ``K`` allowed on one axis)."""

    x: str
    y: str
    x_values: tuple
    y_values: tuple
    quantity: str
    params: ChainParams
    optimise: ChainOptimise | None = None

    def __post_init__(self) -> None:
        vx = parse_variable(self.x, self.params, "x")
        vy = parse_variable(self.y, self.params, "y")
        if vx.name == vy.name:
            raise ParameterError(f"y must differ from x; got {self.y!r} twice")
        object.__setattr__(self, "x", vx.name)
        object.__setattr__(self, "y", vy.name)
        object.__setattr__(self, "x_values", tuple(path_values(vx, self.x_values, "x-values")))
        object.__setattr__(self, "y_values", tuple(path_values(vy, self.y_values, "y-values")))
        for variable in (vx, vy):
            _check_not_optimised(variable, self.optimise, self.params)
        if self.optimise is not None:
            self.optimise.check(self.params, vx.depth or vy.depth)
        names = tuple(v.name for v in (vx, vy) if not v.depth)
        grid = [(xv, yv) for yv in self.y_values for xv in self.x_values]
        depth = None
        if vx.depth or vy.depth:
            depth = int(max(self.x_values if vx.depth else self.y_values))
            grid = [(yv,) if vx.depth else (xv,) for xv, yv in grid]
        validate_points(self.params, names, grid, depth)
        n_stages = len(self.params.stages) if depth is None else depth + 1
        Quantity.parse(self.quantity, n_stages)

    @property
    def depth_axis(self) -> str | None:
        """``"x"`` or ``"y"`` if an axis is the number of stages ``K``."""
        return "x" if self.x == DEPTH else ("y" if self.y == DEPTH else None)

    @property
    def n_stages(self) -> int:
        axis = self.depth_axis
        if axis is None:
            return len(self.params.stages)
        return int(max(getattr(self, f"{axis}_values"))) + 1

    def to_dict(self) -> dict:
        return {"x": self.x, "y": self.y, "x_values": list(self.x_values),
                "y_values": list(self.y_values), "quantity": self.quantity,
                "params": self.params.to_dict(),
                "optimise": None if self.optimise is None else self.optimise.to_dict()}

    def rows_dict(self) -> dict:
        """What the rows depend on (everything but the quantity): a diagram of another
        quantity re-uses a finished grid."""
        out = self.to_dict()
        out.pop("quantity")
        return out


def phase_tasks(spec: ChainPhaseSpec, *, segment: int = DEFAULT_SEGMENT,
                options: dict | None = None) -> list[ChainTask]:  # fmt: skip
    """Segments of the diagram, keys ``(iy, ix)``: paths in ``x`` at fixed ``y``; with ``K`` on
    an axis, paths along the other axis, each point solved once for every ``K``."""
    from saddle.executor import segments

    options = dict(options or {})
    axis = spec.depth_axis
    tasks: list[ChainTask] = []
    if axis is None:
        for iy, yv in enumerate(spec.y_values):
            for seg in segments(list(enumerate(spec.x_values)), segment):
                tasks.append(ChainTask(
                    spec.params, (spec.x, spec.y), tuple((xv, yv) for _, xv in seg),
                    tuple({"iy": iy, "ix": ix} for ix, _ in seg), (), "index", spec.optimise,
                    options))  # fmt: skip
        return tasks
    other, other_key, depth_key = (("y", "iy", "ix") if axis == "x" else ("x", "ix", "iy"))
    name = getattr(spec, other)
    depths = tuple(int(v) for v in getattr(spec, f"{axis}_values"))
    for seg in segments(list(enumerate(getattr(spec, f"{other}_values"))), segment):
        tasks.append(ChainTask(spec.params, (name,), tuple((v,) for _, v in seg),
                               tuple({other_key: i} for i, _ in seg), depths, depth_key,
                               spec.optimise, options))  # fmt: skip
    return tasks


@dataclass(frozen=True, eq=False)
class ChainPhaseDiagram(ValueEquality):
    """A computed chain diagram: the spec, the grid of the quantity (NaN where a point did not
    converge or the quantity is absent), shape ``(len(y_values), len(x_values))``, and every
    row's columns (row-major in ``(y, x)``)."""

    spec: ChainPhaseSpec
    grid: np.ndarray = field(repr=False)
    columns: dict = field(repr=False)

    def to_dict(self) -> dict:
        return {"spec": self.spec.to_dict(), "grid": self.grid.tolist()}

    def to_frame(self):
        """Every grid point's row as a ``pandas.DataFrame``, the quantity in ``value``."""
        return to_frame({**self.columns, "value": self.grid.ravel().tolist()})


def diagram_from_rows(spec: ChainPhaseSpec, rows: Sequence[Mapping]) -> ChainPhaseDiagram:
    """The diagram of ``spec.quantity`` from finished rows (any quantity of the same grid)."""
    rows = sorted(rows, key=lambda r: (int(float(r["iy"])), int(float(r["ix"]))))
    columns = rows_to_columns(rows)
    quantity = Quantity.parse(spec.quantity, spec.n_stages)
    values = quantity.evaluate(columns)
    ok = np.array([bool(c) for c in columns["converged"]])
    values = np.where(ok, values, np.nan)
    return ChainPhaseDiagram(spec, values.reshape(len(spec.y_values), len(spec.x_values)),
                             columns)  # fmt: skip


def chain_phase(spec: ChainPhaseSpec, *, executor=None, journal=None, progress=None,
                segment: int = DEFAULT_SEGMENT, **options) -> ChainPhaseDiagram:  # fmt: skip
    """Compute a chain diagram (keywords as in :func:`chain_curve`)."""
    tasks = phase_tasks(spec, segment=segment, options=options)
    rows = run_chain_tasks(tasks, executor=executor, journal=journal, progress=progress)
    return diagram_from_rows(spec, rows)


# ----------------------------------------------------------------------------------------------
# Figures
# ----------------------------------------------------------------------------------------------


def axis_label(name: str) -> str:
    from replica.params import label

    return "number of stages after stage 0, $K$" if name == DEPTH else label(name)


def plot_chain_curve(curve: Curve, path: str | Path) -> Path:
    """Each stage's ``eps_g`` along the curve (for ``K``: the last stage's), with each stage's
    Bayes-optimal error dashed, as a PNG (:func:`replica.plotting.plot_curve`)."""
    from replica.plotting import plot_curve

    if curve.vary == DEPTH:
        series = [("eps_g", "last stage")]
        bounds = []
    else:
        n = sum(1 for c in curve.columns if re.fullmatch(r"stage\d+\.eps_g", c))
        series = [(f"stage{k}.eps_g", f"stage {k}") for k in range(n)]
        bounds, etas = [], set()
        for k in range(n):  # one dashed line per support (eps_bo depends on eta only)
            eta = curve.columns[f"stage{k}.eta"][0]
            if eta not in etas:
                etas.add(eta)
                bounds.append((f"stage{k}.eps_bo", f"Bayes-optimal, eta = {eta:g}"))
    return plot_curve(curve, path, series=series, bounds=bounds)


def plot_chain_phase(diagram: ChainPhaseDiagram, path: str | Path, *, levels: int = 10) -> Path:
    """Heatmap of the quantity with contour lines (and its zero contour when it changes sign,
    e.g. the gain of a stage over its teacher), as a PNG."""
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from replica.params import PARAMETERS

    spec = diagram.spec
    x, y, z = np.array(spec.x_values), np.array(spec.y_values), diagram.grid
    finite = z[np.isfinite(z)]
    signed = finite.size and finite.min() < 0.0 < finite.max()
    fig, ax = plt.subplots(figsize=(6.4, 4.8), constrained_layout=True)
    vmax = float(np.max(np.abs(finite))) if signed else None
    mesh = ax.pcolormesh(x, y, z, shading="nearest", cmap="RdBu_r" if signed else "viridis",
                         vmin=-vmax if signed else None, vmax=vmax)  # fmt: skip
    fig.colorbar(mesh, ax=ax, label=spec.quantity)
    if finite.size and np.ptp(finite) > 0 and min(x.size, y.size) >= 2:
        masked = np.ma.masked_invalid(z)
        cs = ax.contour(x, y, masked, levels=levels, colors="k", linewidths=0.6, alpha=0.7)
        ax.clabel(cs, fontsize=8, fmt="%.3g")
        if signed:
            ax.contour(x, y, masked, levels=[0.0], colors="k", linewidths=2.0)
    for axis, name in (("x", spec.x), ("y", spec.y)):
        key = name.split(".")[-1]
        values = x if axis == "x" else y
        if key in PARAMETERS and PARAMETERS[key].log and values.min() > 0:
            getattr(ax, f"set_{axis}scale")("log")
    ax.set_xlabel(axis_label(spec.x))
    ax.set_ylabel(axis_label(spec.y))
    fixed = describe(spec.params, (spec.x, spec.y))
    title = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}: {v}"
                      for k, v in fixed.items())  # fmt: skip
    ax.set_title("\n".join(textwrap.wrap(title, 90)), fontsize=8)
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
