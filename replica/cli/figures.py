"""``kd-replica figure N``: reproduce a figure of the paper (theory, thresholds, simulations)."""

from __future__ import annotations

import argparse

from replica.cli.common import (
    CliError,
    Progress,
    add_executor_args,
    add_quiet,
    executor_from_args,
    integer,
    number,
    prepare_kernels,
)
from replica.cli.models import output_dir, warn
from replica.params import check_positive


def register(commands, curve, simulate) -> None:
    p = commands.add_parser(
        "figure",
        help="reproduce paper figure N (1-12), or a chain figure (chain-a .. chain-e): PNG + "
             "CSV, optional simulation points",
        description="Theory curves, Bayes-optimal lines and threshold markers of figure N of "
        "Saglietti & Zdeborova (2021), written to OUT/figureN.png, OUT/figureN.csv and "
        "OUT/figureN.json (the exact setting of every curve, also in the caption). Grids "
        "contain the thresholds and are refined around peaks and kinks. Resumable: re-run "
        "with the same --out to continue an interrupted run.",
    )
    p.add_argument("number", type=figure_id, metavar="N",
                   help="figure number 1-12, or chain-a .. chain-e (docs/chains.md, Findings)")
    add_figure_args(p, out="kd-replica-figures", n=1000, seeds=5)
    p.set_defaults(handler=run)


def figure_id(text: str) -> int | str:
    """An argparse ``type=`` for a figure: a paper number, or a registered string id."""
    from replica.figures import FIGURES, figure_ids

    if text in FIGURES:
        return text
    try:
        return integer("figure", 1)(text)
    except argparse.ArgumentTypeError:
        extra = ", ".join(k for k in figure_ids() if isinstance(k, str))
        raise argparse.ArgumentTypeError(f"figure must be an integer in 1..12 or one of "
                                         f"{extra}; got {text!r}") from None


def add_figure_args(p: argparse.ArgumentParser, *, out: str, n: int, seeds: int,
                    resolution: float = 1.0, optional_simulations: bool = True) -> None:
    """Options of ``figure`` and ``demo`` (``demo`` always simulates: no
    ``--with-simulations``)."""
    p.add_argument("--out", default=out, help=f"output directory (default {out})")
    if optional_simulations:
        p.add_argument("--with-simulations", action="store_true",
                       help="add finite-size simulation points with error bars")
    p.add_argument("--n", type=integer("n", 10), default=n, help=f"simulation N (default {n})")
    p.add_argument("--seeds", type=integer("seeds", 2), default=seeds,
                   help=f"seeds per simulation point (default {seeds})")
    p.add_argument("--seed", type=integer("seed", 0), default=0, help="base seed")
    p.add_argument("--resolution", type=number("resolution", check_positive),
                   default=resolution,
                   help=f"scale of the number of theory points per curve (default {resolution:g})")
    add_executor_args(p, resumable=False, segment=25)
    add_quiet(p)


def run(args: argparse.Namespace) -> int:
    return make(args, args.number)


def make(args: argparse.Namespace, number_: int) -> int:
    from replica.figures import FIGURES, make_figure

    if number_ not in FIGURES:
        raise CliError(f"figure must be an integer in 1..12 or a chain figure id; got {number_}")
    out = output_dir(args.out)
    sims = None
    if args.with_simulations:
        sims = {"n": args.n, "seeds": args.seeds, "seed": args.seed}

    def factory(total: int, desc: str) -> Progress:
        return Progress(total, desc, args.quiet)

    from saddle.checkpoint import CheckpointMismatch

    prepare_kernels(args.quiet)
    with executor_from_args(args) as executor:
        try:
            paths = make_figure(number_, out, resolution=args.resolution, executor=executor,
                                progress_factory=factory, segment=args.segment,
                                simulations=sims)  # fmt: skip
        except CheckpointMismatch as exc:
            raise CliError(f"{exc} (delete {out}/figure{number_}_data to start over)") from None
    failed, diverged = paths.pop("failed"), paths.pop("diverged")
    if failed:
        warn(f"{failed} theory points did not converge (marked x, flagged in the CSV)")
    if diverged:
        warn(f"{diverged} theory points have no finite solution (status 3 in the CSV)")
    names = ", ".join(p.name for p in paths.values())
    print(f"wrote {names} in {out}")
    return 1 if failed else 0
