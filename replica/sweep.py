"""Compatibility module: the sweep machinery now lives in four modules of one job each.

- :mod:`replica.curves`: the Python API of theory curves (:class:`Curve`, :func:`teacher_curve`,
  :func:`student_curve`);
- :mod:`replica.tasks`: orchestration (segments, executors, journals: :class:`PathTask`,
  :func:`path_tasks`, :func:`solve_path`, :func:`run_tasks`);
- :mod:`replica.points`: the physics of one point (:func:`best_direct_ridge`, the row of each
  model, the ``chi = 0`` equivalence);
- :mod:`replica.tables`: rows, columns and CSV files.

Every name importable from here before the split still is.
"""

from replica.curves import (  # noqa: F401
    STUDENT_VARIABLES,
    TEACHER_VARIABLES,
    Curve,
    _check_vary,
    _curve,
    as_array,
    student_curve,
    teacher_curve,
    validate_path,
)
from replica.params import split_params  # noqa: F401
from replica.points import (  # noqa: F401
    DIRECT_VARIABLES,
    best_direct_ridge,
)
from replica.points import direct_solver as _direct_solver  # noqa: F401
from replica.points import minimise as _minimise  # noqa: F401
from replica.points import point_solver as _point_solver  # noqa: F401
from replica.points import student_row as _student_row  # noqa: F401
from replica.points import teacher_row as _teacher_row  # noqa: F401
from replica.tables import columns_of as _columns  # noqa: F401
from replica.tables import csv_value as _csv_value  # noqa: F401
from replica.tables import parse_cell, rows_to_columns, write_columns_csv  # noqa: F401
from replica.tasks import Optimise, PathTask, _Point, path_tasks, run_tasks, solve_path  # noqa: F401
