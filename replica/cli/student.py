"""``kd-replica student``, ``kd-replica curve student``, ``kd-replica simulate student``."""

from __future__ import annotations

import argparse
import warnings

from replica.cli.common import (
    add_executor_args,
    add_quiet,
    format_table,
    prepare_kernels,
    print_json,
)
from replica.cli.models import (
    add_path_args,
    add_student_params,
    student_kwargs,
    warn,
)
from replica.cli.teacher import (
    add_simulation_args,
    run_curve_command,
    run_simulation_command,
    with_aliases,
)
from replica.params import variables

VARIABLES = variables("student")  # from the parameter schema


def register(commands, curve, simulate) -> None:
    p = commands.add_parser("student", help="replica fixed point of the distilled student")
    add_student_params(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=run_point)

    c = curve.add_parser("student", help="student theory curve along one parameter")
    add_student_params(c)
    add_path_args(c, VARIABLES)
    add_executor_args(c)
    add_quiet(c)
    c.set_defaults(handler=run_curve)

    s = simulate.add_parser("student", help="finite-size simulation of teacher and student")
    add_student_params(s)
    add_simulation_args(s, n=1000, seeds=8)
    s.set_defaults(handler=run_simulation)


def run_point(args: argparse.Namespace) -> int:
    from replica.student import solve_student

    prepare_kernels(models=("student",))  # says so if compiling takes a while
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sol = solve_student(**student_kwargs(args))
    data = sol.to_dict()
    if args.json:
        print_json({**data, "teacher": with_aliases(data["teacher"]),
                    "student": with_aliases(data["student"])})  # fmt: skip
    else:
        print(format_table(data["teacher"].items(), title=f"teacher ({args.teacher})"))
        print()
        print(format_table(data["student"].items(), title="distilled student (replica)"))
        print()
        print(format_table([("eps_bo_teacher", sol.eps_bo_teacher),
                            ("eps_bo_student", sol.eps_bo_student)], title="Bayes-optimal"))
    if not (sol.converged and sol.teacher.converged):
        warn(f"fixed point did not converge (student: {sol.report.message}, "
             f"residual {sol.residual:.2g})")  # fmt: skip
        return 1
    return 0


def run_curve(args: argparse.Namespace) -> int:
    from replica.student import StudentParams

    return run_curve_command(
        args, "student", student_kwargs(args), StudentParams,
        series=[("eps_g", "student"), ("teacher_eps_g", "teacher")],
        bounds=[("eps_bo_student", "student Bayes-optimal")],
    )  # fmt: skip


def run_simulation(args: argparse.Namespace) -> int:
    from simulations.monte_carlo import simulate_student

    return run_simulation_command(simulate_student, student_kwargs(args), args,
                                  f"distilled student ({args.teacher} teacher)")  # fmt: skip
