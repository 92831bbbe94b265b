"""The one parameter schema (replica.params.PARAMETERS) and everything generated from it."""

from __future__ import annotations

import inspect
import math

import pytest

from replica.cli import build_parser
from replica.params import (
    MODEL_PARAMETERS,
    PARAMETERS,
    ParameterError,
    axes,
    default,
    defaults,
    resolve_params,
    teacher_values,
    variables,
)
from replica.student import StudentParams, solve_student
from replica.teacher import TeacherParams, solve_teacher


def test_every_default_passes_its_own_check():
    for p in PARAMETERS.values():
        if p.default is not None:
            assert p.validate(p.default) == p.default
        if p.axis is not None:
            lo, hi = p.axis
            assert p.validate(lo) == lo and p.validate(hi) == hi and lo < hi
            assert not p.log or lo > 0


@pytest.mark.parametrize("cls, model", [(TeacherParams, "teacher"), (StudentParams, "student")])
def test_parameter_classes_take_names_and_defaults_from_the_schema(cls, model):
    fields = cls.__dataclass_fields__
    for name in MODEL_PARAMETERS[model]:
        assert name in fields
        if PARAMETERS[name].default is not None:
            assert fields[name].default == default(name)


@pytest.mark.parametrize(
    "function, model",
    [("replica.teacher.solve_teacher", "teacher"), ("replica.student.solve_student", "student"),
     ("simulations.monte_carlo.simulate_teacher", "teacher"),
     ("simulations.monte_carlo.simulate_student", "student")],
)  # fmt: skip
def test_solver_and_simulation_signatures_use_the_schema_defaults(function, model):
    import importlib

    module, name = function.rsplit(".", 1)
    signature = inspect.signature(getattr(importlib.import_module(module), name))
    assert list(signature.parameters)[: len(MODEL_PARAMETERS[model])] == list(
        MODEL_PARAMETERS[model]
    )
    for name, value in defaults(model).items():
        assert signature.parameters[name].default == value


def test_simulations_validate_and_default_through_the_schema():
    from simulations import monte_carlo

    assert monte_carlo._STUDENT_DEFAULTS == defaults("student")
    assert monte_carlo._TEACHER_DEFAULTS == defaults("teacher")
    for name, check in monte_carlo._CHECKS.items():
        assert check is PARAMETERS[name].check


def _subparser(parser, *path):
    for name in path:
        action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
        parser = action.choices[name]
    return parser


@pytest.mark.parametrize("path, model", [(("teacher",), "teacher"), (("student",), "student"),
                                         (("curve", "teacher"), "teacher"),
                                         (("curve", "student"), "student"),
                                         (("simulate", "teacher"), "teacher"),
                                         (("simulate", "student"), "student"),
                                         (("phase",), "student")])  # fmt: skip
def test_cli_flags_are_generated_from_the_schema(path, model):
    parser = _subparser(build_parser(), *path)
    options = {opt: a for a in parser._actions for opt in a.option_strings}
    for name in MODEL_PARAMETERS[model]:
        p = PARAMETERS[name]
        action = options[p.flag]
        if p.default is not None:
            assert action.default == p.default
        if p.choices is not None:
            assert tuple(action.choices) == p.choices
        assert p.help in action.help
    if path[0] == "curve":
        assert tuple(options["--vary"].choices) == tuple(
            PARAMETERS[n].cli_name for n in variables(model)
        )
    if path[0] == "phase":
        assert tuple(options["--x"].choices) == tuple(PARAMETERS[n].cli_name for n in axes())


def test_cli_names_the_flag_in_its_one_line_error(capsys):
    from replica.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["student", "--lam-s", "-1"])
    assert exc.value.code == 2
    assert "lam-s must be >= 0" in capsys.readouterr().err


def test_axes_labels_and_spacing_come_from_the_schema():
    from replica import phase, plotting

    assert phase.LABELS == plotting.LABELS  # one label per parameter (lam_s disagreed)
    assert phase.LABELS["lam_s"] == PARAMETERS["lam_s"].label
    for name, (start, stop, log) in phase.AXIS_DEFAULTS.items():
        assert (start, stop) == PARAMETERS[name].axis and log == PARAMETERS[name].log
    values = phase.axis_values("lam_t", num=3)
    assert values[0] == pytest.approx(1e-3) and values[1] == pytest.approx(10 ** -1.5)


def test_the_teachers_ridge_is_lam_for_the_teacher_and_lam_t_for_the_student():
    student = StudentParams(3.0, lam_t=0.05, smoothing=0.1)
    assert teacher_values(student) == {"alpha": 3.0, "rho": 0.2, "delta": 1.0, "lam": 0.05,
                                       "smoothing": 0.1}  # fmt: skip
    assert TeacherParams(**teacher_values(student)).lam == 0.05
    s = solve_student(params=StudentParams(3.0, lam_t=0.05, lam_s=0.1))
    t = solve_teacher(3.0, lam=0.05)
    assert s.teacher.eps_g == t.eps_g and s.teacher.params == t.params


def test_solvers_accept_a_parameter_object_as_well_as_keywords():
    by_keywords = solve_teacher(2.0, lam=0.3, smoothing=0.1)
    assert solve_teacher(TeacherParams(2.0, lam=0.3, smoothing=0.1)) == by_keywords
    assert solve_teacher(params=TeacherParams(2.0, lam=0.3, smoothing=0.1)) == by_keywords
    kw = dict(alpha=2.0, lam_t=0.3, lam_s=0.1, chi=0.5)
    assert solve_student(StudentParams(**kw)).eps_g == solve_student(**kw).eps_g
    with pytest.raises(ParameterError, match=r"^lam\b.*not both"):
        solve_teacher(TeacherParams(2.0), lam=0.5)
    with pytest.raises(ParameterError, match=r"^chi\b"):
        solve_student(params=StudentParams(2.0), chi=0.5)
    with pytest.raises(ParameterError, match=r"^params\b"):
        resolve_params(TeacherParams, None, {}, StudentParams(2.0))


@pytest.mark.parametrize("value", ["no", "yes", 1, 0, 1.0, None])
def test_booleans_are_validated_strictly(value):
    with pytest.raises(ParameterError, match=r"^t2_scaling must be True or False"):
        StudentParams(3.0, t2_scaling=value)
    with pytest.raises(ParameterError, match=r"^t2_scaling\b"):
        solve_student(3.0, t2_scaling=value)


def test_numpy_booleans_are_booleans():
    import numpy as np

    assert StudentParams(3.0, t2_scaling=np.bool_(True)).t2_scaling is True


@pytest.mark.parametrize(
    "options, name",
    [({"damping": 5}, "damping"), ({"damping": 0}, "damping"), ({"damping": -0.5}, "damping"),
     ({"damping": math.nan}, "damping"), ({"tol": -1}, "tol"), ({"tol": 0}, "tol"),
     ({"tol": math.inf}, "tol"), ({"max_iter": 0}, "max_iter"), ({"max_iter": 2.5}, "max_iter")],
)  # fmt: skip
def test_solver_options_are_validated(options, name):
    for solve in (solve_teacher, solve_student):
        with pytest.raises(ParameterError, match=rf"^{name}\b") as info:
            solve(3.0, **options)
        assert "\n" not in str(info.value)


def test_full_damping_is_a_valid_option():
    assert solve_teacher(3.0, damping=1.0).eps_g == pytest.approx(solve_teacher(3.0).eps_g,
                                                                  abs=1e-9)  # fmt: skip


def test_sweep_module_keeps_every_former_name():
    import replica.sweep as sweep
    from replica import curves, points, tables

    assert sweep.teacher_curve is curves.teacher_curve and sweep.Curve is curves.Curve
    assert sweep.best_direct_ridge is points.best_direct_ridge
    assert sweep.rows_to_columns is tables.rows_to_columns
    for name in ("STUDENT_VARIABLES", "TEACHER_VARIABLES", "DIRECT_VARIABLES", "Optimise",
                 "as_array", "parse_cell", "path_tasks", "solve_path", "split_params",
                 "student_curve", "validate_path", "write_columns_csv"):  # fmt: skip
        assert hasattr(sweep, name)
    assert sweep.STUDENT_VARIABLES == variables("student")


def test_path_continuation_is_geometric_exactly_for_the_schemas_geometric_parameters():
    assert {n for n, p in PARAMETERS.items() if p.geometric} == {"lam", "lam_t", "lam_s",
                                                                 "temperature"}  # fmt: skip


def test_the_schemas_kinds_are_the_registries():
    from replica.losses import LOSS_KINDS
    from replica.stages import TEACHER_KINDS

    assert PARAMETERS["teacher"].choices == tuple(TEACHER_KINDS)
    assert set(PARAMETERS["loss"].choices) == set(LOSS_KINDS)
    assert set(PARAMETERS["teacher_loss"].choices) == set(LOSS_KINDS)
    with pytest.raises(ParameterError, match=r"^loss must be one of"):
        TeacherParams(2.0, loss="cubic")
    with pytest.raises(ParameterError, match=r"^teacher_loss must be one of"):
        StudentParams(2.0, teacher_loss="cubic")
