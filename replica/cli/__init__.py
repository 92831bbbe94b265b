"""The ``kd-replica`` command line.

Each sub-module registers its commands through ``register(commands, curve, simulate)``:
``commands`` is the top-level sub-parser collection, ``curve`` and ``simulate`` those of the
``kd-replica curve MODEL`` and ``kd-replica simulate MODEL`` groups. A command sets
``handler=function(args) -> int`` as its default.

Exit codes: 0 success, 1 a fixed point that did not converge (reported, not hidden),
2 bad input (one line naming the parameter).
"""

from __future__ import annotations

import importlib
import sys

from replica.cli.common import CliError, OneLineParser
from replica.params import ParameterError

COMMAND_MODULES = (
    "replica.cli.teacher",
    "replica.cli.student",
    "replica.cli.demo",
    "replica.cli.kernel",
    "replica.cli.thresholds",
    "replica.cli.phase",
    "replica.cli.figures",
    "replica.cli.chain",
)


def build_parser() -> OneLineParser:
    parser = OneLineParser(
        prog="kd-replica",
        description="Replica theory and simulations of solvable knowledge-distillation models.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    commands.required = True
    curve = commands.add_parser("curve", help="a theory curve along one parameter (CSV + PNG)")
    curve_models = curve.add_subparsers(dest="model", metavar="MODEL", parser_class=OneLineParser)
    curve_models.required = True
    simulate = commands.add_parser("simulate", help="finite-size Monte-Carlo with error bars")
    simulate_models = simulate.add_subparsers(
        dest="model", metavar="MODEL", parser_class=OneLineParser
    )
    simulate_models.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(commands, curve_models, simulate_models)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``kd-replica`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except (ParameterError, CliError) as exc:
        sys.stderr.write(f"kd-replica: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("kd-replica: interrupted\n")
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. piped into `head`): stop quietly.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
