"""One observable schema, shared by theory and simulation results, and their agreement.

Names
-----
Every observable has one name, the same in the replica solutions
(:class:`replica.teacher.TeacherSolution`, :class:`replica.student.StudentSolution`), in the
finite-size simulations (:class:`simulations.monte_carlo.SimulationResult`), in curve and
phase-diagram columns and in CSV files: :data:`OBSERVABLES`. A student's teacher contributes
its observables with the prefix ``teacher_`` (``teacher_eps_g``) wherever results are flat.

Style
-----
Both kinds of result expose observables as attributes: ``theory.eps_g`` is a float,
``simulation.eps_g`` an :class:`Estimate` ``(mean, sem)``; a student's teacher is
``result.teacher`` in both (``theory.teacher.q``, ``simulation.teacher.q``). Both also give
``observables()``, a flat ``{name: value}`` dict with ``teacher_`` prefixes, which is what
:func:`agreement` compares.

Results (conventions of every result object)
--------------------------------------------
- ``converged`` is a ``bool`` (a simulation: every seed's solver converged); ``success`` is
  its alias, ``nit`` the iteration count (the fixed point's map evaluations; a simulation's
  Newton iterations summed over seeds), ``message`` a readable status;
- ``to_row()``: one flat dict (observables, then ``converged``, ``nit``, ...; a simulation's
  standard errors as ``<name>_sem``): the row of a curve, a phase diagram or a CSV file;
- ``to_dict()``: the JSON-ready record: flat for a result about one model (its row, plus
  ``params``), nested by model for the student, which carries its teacher
  (``{"params", "teacher", "student", ...}``), and ``{params, ..., mean, sem}`` for
  simulations;
- results are immutable and compare and hash by value (:class:`saddle.results.ValueEquality`);
- curves and phase diagrams have ``to_frame()`` (pandas, imported only then).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from replica.params import ParameterError

TEACHER_PREFIX = "teacher_"


@dataclass(frozen=True)
class Observable:
    """One observable: its name, label and meaning, and how theory and simulation meet.

    Attributes
    ----------
    name : str
    label : str
        LaTeX label for plots.
    help : str
        What it is (and the equation that predicts it).
    models : tuple of str
        The models that have it (``"teacher"``, ``"student"``).
    theory : str, optional
        The theory observable that predicts it when the name differs (the empirical error on
        a fresh test set is predicted by Eq. 12, ``eps_g``).
    compare : bool
        A physical prediction to check against simulations (False: solver diagnostics and
        quantities one side does not have).
    """

    name: str
    label: str
    help: str
    models: tuple[str, ...] = ("teacher", "student")
    theory: str | None = None
    compare: bool = True


_OBSERVABLES = (
    Observable("eps_g", r"$\varepsilon_g$", "test error of the sign of h, paper Eq. 12"),
    Observable("eps_g_test", r"$\hat\varepsilon_g$",
               "error on a fresh test set (simulation); predicted by eps_g", theory="eps_g"),
    Observable("m", "$m$", "overlap w.v / N with the cluster direction"),
    Observable("q", "$q$", "self-overlap |w|^2 / N"),
    Observable("S", "$S$", "student-teacher overlap w.w~ / N", models=("student",)),
    Observable("b", "$b$", "bias"),
    Observable("train_loss", r"$\ell_{train}$",
               "mean training loss per sample, no penalty (the student's: its KD loss)"),
    Observable("train_ce", r"$CE_{train}$", "student's mean CE(p, sigma(h)) on the labels",
               models=("student",)),
    Observable("train_error", r"$\varepsilon_{train}$", "training error against the labels"),
    Observable("mse_outputs", "MSE outputs",
               "mean (sigma(h~) - sigma(h))^2 between teacher and student on the training set",
               models=("student",)),
    Observable("mse_preactivations", "MSE preactivations",
               "mean (h~ - h)^2 between teacher and student on the training set",
               models=("student",)),
    Observable("V", "$V$", "susceptibility (times delta), theory only", compare=False),
    Observable("V_S", "$V_S$", "response to the teacher's self-fit, theory only",
               models=("student",), compare=False),
    Observable("eps_bo", r"$\varepsilon_{BO}$", "Bayes-optimal error, Eq. 13-14",
               models=("teacher",), compare=False),
    Observable("grad_norm", r"$|\nabla|$", "final gradient norm of the simulation's solver",
               compare=False),
    Observable("nit", "iterations", "solver iterations (map evaluations; Newton steps)",
               compare=False),
    # A stage of a distillation chain (replica.chain, simulations.chains; docs/chains.md), whose
    # training labels are observed through noise: train_error is against the observed labels.
    Observable("train_error_observed", r"$\varepsilon_{train}^{obs}$",
               "chain stage: training error against the observed (noisy) labels",
               models=("stage",)),
    Observable("train_error_true", r"$\varepsilon_{train}^{true}$",
               "chain stage: training error against the true classes", models=("stage",)),
    Observable("train_disagreement", r"$d_{train}$",
               "chain stage: fraction of training samples labelled differently from the "
               "previous stage", models=("stage",)),
    Observable("disagreement", "$d$",
               "chain stage: probability of a different label from the previous stage on a "
               "fresh sample", models=("stage",)),
)  # fmt: skip
#: Every observable by name.
OBSERVABLES: dict[str, Observable] = {o.name: o for o in _OBSERVABLES}

#: Former names, still accepted where results are looked up by name.
ALIASES = {"iterations": "nit", "n_iter": "nit"}


def compared(model: str, *, teacher: bool = True) -> tuple[str, ...]:
    """The observables of ``model`` that theory and simulation both predict.

    For the student, with ``teacher`` its teacher's too (prefixed ``teacher_``).
    """
    names = tuple(o.name for o in _OBSERVABLES if o.compare and model in o.models)
    if model == "student" and teacher:
        names += tuple(TEACHER_PREFIX + n for n in compared("teacher"))
    return names


def canonical(name: str) -> str:
    """``name`` with a former name replaced (``n_iter`` -> ``nit``, ``teacher_n_iter`` ...)."""
    prefix = TEACHER_PREFIX if name.startswith(TEACHER_PREFIX) else ""
    base = name[len(prefix):]
    return prefix + ALIASES.get(base, base)


def theory_name(name: str) -> str:
    """The theory observable predicting ``name`` (``eps_g_test`` -> ``eps_g``)."""
    prefix = TEACHER_PREFIX if name.startswith(TEACHER_PREFIX) else ""
    base = name[len(prefix):]
    obs = OBSERVABLES.get(base)
    return prefix + (obs.theory if obs is not None and obs.theory else base)


class Estimate(NamedTuple):
    """A simulation's estimate of an observable: mean over seeds and its standard error."""

    mean: float
    sem: float

    def __float__(self) -> float:
        return float(self.mean)


# ----------------------------------------------------------------------------------------------
# Agreement of theory and simulation
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgreementRow:
    """One observable: prediction, simulation mean +- sem, z-score and the verdict.

    ``z = (mean - theory) / sem`` (NaN when ``sem = 0``). ``ok`` is ``|mean - theory| <=
    z_max sem``, or, for ``sem = 0`` (every seed gave the same value, e.g. zero training error
    on separable data), ``|mean - theory| <= resolution`` (one training sample, ``1/M``).
    """

    name: str
    theory: float
    mean: float
    sem: float
    z: float
    tolerance: float
    ok: bool

    def describe(self) -> str:
        return (f"{self.name}: theory {self.theory:.6g}, simulation {self.mean:.6g} "
                f"+- {self.sem:.2g}")


@dataclass(frozen=True)
class Agreement:
    """z-scores of a simulation against its theory, one :class:`AgreementRow` per observable."""

    rows: tuple[AgreementRow, ...]
    z_max: float
    resolution: float

    @property
    def ok(self) -> bool:
        """Every observable within tolerance."""
        return all(row.ok for row in self.rows)

    def failures(self) -> list[str]:
        """One line per observable out of tolerance."""
        return [row.describe() for row in self.rows if not row.ok]

    def __getitem__(self, name: str) -> AgreementRow:
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(name)

    @property
    def z(self) -> dict[str, float]:
        return {row.name: row.z for row in self.rows}

    def to_dict(self) -> dict[str, Any]:
        return {"z_max": self.z_max, "resolution": self.resolution,
                "rows": [row.__dict__.copy() for row in self.rows]}  # fmt: skip

    def to_frame(self):
        from replica.tables import to_frame

        return to_frame({name: [getattr(r, name) for r in self.rows]
                         for name in AgreementRow.__dataclass_fields__})  # fmt: skip


def agreement(theory, simulation, observables: Iterable[str] | None = None, *,
              z_max: float = 3.0) -> Agreement:  # fmt: skip
    """Compare a replica prediction with a finite-size simulation, observable by observable.

    Parameters
    ----------
    theory : TeacherSolution or StudentSolution (anything with ``observables()``)
    simulation : SimulationResult
        At the same parameters, with ``seeds >= 2`` (standard errors are undefined otherwise).
    observables : iterable of str, optional
        Names as in :data:`OBSERVABLES` (``teacher_`` prefix for a student's teacher); default
        :func:`compared` for the simulation's model.
    z_max : float
        Tolerance in standard errors.

    Returns
    -------
    Agreement
        With ``ok``, ``failures()``, per-observable z-scores.
    """
    if not simulation.sem_defined:
        raise ParameterError(f"seeds must be >= 2 for standard errors; got {simulation.seeds}")
    names = tuple(compared(simulation.model) if observables is None else observables)
    predicted = theory.observables()
    measured = simulation.observables()
    n_samples = round(simulation.params["alpha"] * simulation.n)
    resolution = 1.0 / n_samples
    rows = []
    for name in names:
        key = theory_name(name)
        if key not in predicted:
            raise ParameterError(f"observables: the theory has no {key!r} (for {name!r})")
        if name not in measured:
            raise ParameterError(f"observables: the simulation has no {name!r}")
        value = float(predicted[key])
        mean, sem = measured[name]
        tolerance = z_max * sem if sem > 0 else resolution
        z = (mean - value) / sem if sem > 0 else math.nan
        rows.append(AgreementRow(name, value, mean, sem, z, tolerance,
                                 bool(abs(mean - value) <= tolerance)))  # fmt: skip
    return Agreement(tuple(rows), z_max, resolution)


def prefixed(values: Mapping[str, Any], prefix: str = TEACHER_PREFIX) -> dict[str, Any]:
    """``{prefix + name: value}``."""
    return {prefix + k: v for k, v in values.items()}
