"""Behaviour check for refactors: record the observables at varied points, compare two records.

    python benchmarks/reference_points.py record before.json    # on the old code
    python benchmarks/reference_points.py record after.json     # on the new code
    python benchmarks/reference_points.py compare before.json after.json

``record`` solves 7 teacher points and 20 student points (logistic, square and hinge losses,
ridge and Bayes teachers, chi in {0, 0.5, 1}, small ridges, the issue-13 point) and writes every
observable, ``nit``, ``status`` and the rule sizes. ``compare`` prints each value that moved by
more than 1e-12 (relative to ``max(1, |value|)``), every change of ``nit``, ``status`` or rule
size, and the largest differences. (Not a test: a refactor that keeps the numbers should show
differences at the level of the fixed-point tolerance 1e-10 at most; see docs/numerics.md §4.)
"""

from __future__ import annotations

import json
import math
import sys
import time
import warnings

ISSUE_POINT = dict(
    alpha=2.5976593765033114, rho=0.14700489545284876, delta=8.487331795879992,
    eta=0.8665000394776872, lam_t=0.12845240292423638, lam_s=0.0001472178625139652,
    chi=0.8566535690171937, temperature=0.7581888128626729, teacher="bayes",
)  # fmt: skip
TEACHER_POINTS = (
    dict(alpha=3.0, lam=0.1),
    dict(alpha=0.5, lam=1e-5),
    dict(alpha=4.8, lam=1e-5),
    dict(alpha=2.0, lam=0.01, loss="square"),
    dict(alpha=2.0, lam=0.1, loss="hinge"),
    dict(alpha=1.5, rho=0.35, delta=0.5, lam=1e-3, smoothing=0.1),
    dict(alpha=6.0, lam=0.0),
)
STUDENT_POINTS = (
    dict(alpha=4.5),
    dict(alpha=4.5, chi=0.0),
    dict(alpha=4.5, chi=0.5),
    dict(alpha=2.0, chi=0.5, temperature=2.0, t2_scaling=True),
    dict(alpha=3.0, chi=1.0, lam_t=1e-5, lam_s=1e-5),
    dict(alpha=1.0, lam_t=1e-5, lam_s=1e-5),
    dict(alpha=4.5, lam_t=1e-5, lam_s=1e-5),
    dict(alpha=2.0, teacher="bayes", chi=0.5),
    dict(alpha=2.0, teacher="bayes", chi=1.0, lam_s=1e-6),
    dict(alpha=3.0, loss="square", chi=0.5, lam_s=0.01),
    dict(alpha=3.0, loss="hinge", chi=0.5, lam_s=0.01),
    dict(alpha=3.0, loss="hinge", chi=0.5, lam_s=1e-5),
    dict(alpha=3.0, loss="hinge", chi=0.0, lam_s=1e-3),
    dict(alpha=2.0, teacher_loss="hinge", chi=1.0),
    dict(alpha=2.0, teacher_loss="square", chi=0.5, lam_s=1e-3),
    dict(alpha=1.2, eta=0.8, rho=0.35, chi=0.7, temperature=0.3, lam_s=1e-3),
    dict(alpha=0.8, eta=0.3, chi=1.0, temperature=3.0, lam_s=1e-5, lam_t=1e-3),
    dict(alpha=3.0, smoothing=0.1, chi=0.5, lam_s=0.0),
    ISSUE_POINT,
    dict(alpha=2.2, rho=0.3, delta=6.0, eta=0.9, lam_t=0.01, lam_s=3e-6, chi=0.3,
         temperature=1.5, teacher="ridge"),
)  # fmt: skip


def record(path: str) -> None:
    from replica.student import STUDENT_OBSERVABLES, solve_student
    from replica.teacher import TEACHER_OBSERVABLES, solve_teacher

    warnings.simplefilter("ignore")
    out = {"teacher": [], "student": []}
    for model, solve, points, names in (
        ("teacher", solve_teacher, TEACHER_POINTS, TEACHER_OBSERVABLES),
        ("student", solve_student, STUDENT_POINTS, STUDENT_OBSERVABLES),
    ):
        for point in points:
            t0 = time.perf_counter()
            sol = solve(**point)
            elapsed = time.perf_counter() - t0
            rules = [sol.quadrature.size, getattr(sol, "quadrature_z2", sol.quadrature).size]
            out[model].append({"point": point, "values": {k: float(getattr(sol, k)) for k in names},
                               "nit": sol.nit, "status": sol.status, "rules": rules,
                               "seconds": elapsed})  # fmt: skip
            print(f"{model} {point}: nit {sol.nit}, status {sol.status}, {elapsed:.2f} s")
    with open(path, "w") as fh:
        json.dump(out, fh, indent=1)


def compare(path_a: str, path_b: str) -> None:
    with open(path_a) as fh:
        a = json.load(fh)
    with open(path_b) as fh:
        b = json.load(fh)
    worst_abs = worst_rel = 0.0
    for model in ("teacher", "student"):
        for x, y in zip(a[model], b[model], strict=True):
            if x["point"] != y["point"]:
                raise SystemExit("the records are of different points")
            for key, u in x["values"].items():
                v = y["values"][key]
                if math.isnan(u) and math.isnan(v):
                    continue
                rel = abs(u - v) / max(1.0, abs(u))
                worst_abs, worst_rel = max(worst_abs, abs(u - v)), max(worst_rel, rel)
                if rel > 1e-12:
                    print(f"{model} {x['point']} {key}: {u!r} -> {v!r} (relative {rel:.1e})")
            for key in ("nit", "status", "rules"):
                if x[key] != y[key]:
                    print(f"{model} {x['point']} {key}: {x[key]} -> {y[key]}")
    print(f"largest difference {worst_abs:.2e}; largest relative to max(1, |x|) {worst_rel:.2e}")


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "record":
        record(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        compare(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit(__doc__.split("\n\n")[1])


if __name__ == "__main__":
    main()
