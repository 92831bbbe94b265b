"""``kd-replica thresholds``: interpolation and separability thresholds (paper Fig. 5, 11)."""

from __future__ import annotations

import argparse

from replica.cli.common import add_quiet, format_table, integer, print_json, progress
from replica.cli.models import add_mixture, add_parameter


def register(commands, curve, simulate) -> None:
    p = commands.add_parser(
        "thresholds",
        help="student interpolation and student / teacher separability thresholds",
        description="alpha_I = eta (student interpolation of soft targets), alpha_S (student "
        "separability) and alpha~_S (teacher separability), from Gardner's capacity of the "
        "mixture with a bias (exact as N -> inf). --check adds the fraction of linearly "
        "separable samples at finite N (linear programming) around each separability threshold.",
    )
    add_mixture(p)
    add_parameter(p, "eta")
    p.add_argument("--check", action="store_true",
                   help="measure the separable fraction at finite N at 0.8, 1 and 1.2 times "
                        "each separability threshold")
    p.add_argument("--n", type=integer("n", 10), default=100, help="N for --check (default 100)")
    p.add_argument("--trials", type=integer("trials", 1), default=20,
                   help="samples per point for --check (default 20)")
    p.add_argument("--seed", type=integer("seed", 0), default=0, help="base seed for --check")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_quiet(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from replica.thresholds import separable_fraction, thresholds

    result = thresholds(args.rho, args.delta, args.eta)
    data = result.to_dict()
    if args.check:
        factors = (0.8, 1.0, 1.2)
        checks = []
        bar = progress(total=2 * len(factors), desc="LP separability", quiet=args.quiet)
        for name, threshold, eta in (("alpha_S_teacher", result.alpha_S_teacher, 1.0),
                                     ("alpha_S", result.alpha_S, args.eta)):  # fmt: skip
            for factor in factors:
                est = separable_fraction(factor * threshold, args.rho, args.delta, eta=eta,
                                         n=args.n, trials=args.trials, seed=args.seed)  # fmt: skip
                bar.update(1)
                checks.append({"threshold": name, "factor": factor, **est.to_dict()})
        bar.close()
        data["check"] = checks
    if args.json:
        print_json(data)
        return 0
    rows = [("alpha_I", result.alpha_I), ("alpha_S", result.alpha_S),
            ("alpha~_S", result.alpha_S_teacher)]  # fmt: skip
    print(format_table(rows, title=f"thresholds at rho={args.rho:g}, delta={args.delta:g}, "
                                   f"eta={args.eta:g}"))  # fmt: skip
    print(f"method: {result.method}")
    if args.check:
        print()
        print(f"fraction of separable samples, N = {args.n}, {args.trials} samples per point:")
        for c in data["check"]:
            print(f"  {c['threshold']:<16} alpha = {c['factor']:.1f} x = {c['alpha']:.4g}: "
                  f"{c['fraction']:.2f} +- {c['sem']:.2f}")
    return 0
