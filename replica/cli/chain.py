"""``kd-replica chain``: distillation chains (replica theory, or ``chain simulate`` at finite N).

A chain is given as repeated ``--stage key=value,...`` options (stage 0 first) or as a TOML
file with one ``[[stage]]`` table per stage, e.g.::

    kd-replica chain --alpha 2 --rho 0.5 --delta 1 --flip 0.2 --stage lam=0.1 \\
        --stage lam=0.1,chi=1,target=hard --stage lam=0.1,chi=1,target=hard --json

Keys: ``eta``, ``loss`` (the label term: logistic|square|hinge, a row of the loss table
:mod:`replica.losses`), ``lam``, ``chi``, ``temperature`` (or ``T``), ``target``
(soft|hard), ``bias`` (free|fixed|inherit, or a number: fixed to that value), ``bias_value``,
``t2_scaling`` (0|1), ``teacher`` (trained|bayes, stage 0). Errors name the stage and the key.
A curve along one parameter: ``--vary stage1.lam --values 0.01,0.1,1`` (CSV, or ``--json``);
the stages of one solve are also the curve over the number of stages. ``chain optimise``: the
best ``lam`` (``--over lam,chi,temperature``) of each stage given the earlier ones, or with
``--jointly`` of every stage at once for the ``eps_g`` of the last (``--target K``) stage
(gradients through the fixed points, replica/chain_optimise.py).
"""

from __future__ import annotations

import argparse
import math

from replica.cli.common import CliError, add_quiet, format_table, integer, number, print_json
from replica.params import ParameterError, check_open_unit, check_positive

KEYS = ("eta", "loss", "lam", "chi", "temperature", "T", "target", "bias", "bias_value",
        "t2_scaling", "teacher")  # fmt: skip


def register(commands, curve, simulate) -> None:
    p = commands.add_parser(
        "chain",
        help="a distillation chain: self-distillation, multi-stage compression, weak-to-strong",
        description="Replica theory (default) or finite-size simulation ('chain simulate') of "
        "a chain of stages trained on the same samples with noisy labels (docs/chains.md).",
    )
    p.add_argument("action", nargs="?", choices=("solve", "simulate", "optimise"),
                   default="solve",
                   help="solve the replica theory (default), simulate at finite N, or optimise "
                        "each stage's lam given the earlier stages (or all jointly)")
    p.add_argument("--alpha", type=number("alpha", check_positive), default=2.0,
                   help="sample ratio M/N > 0 (default 2)")
    p.add_argument("--rho", type=number("rho", check_open_unit), default=0.5,
                   help="fraction of the positive cluster, in (0, 1) (default 0.5)")
    p.add_argument("--delta", type=number("delta", check_positive), default=1.0,
                   help="noise variance Delta > 0 (default 1)")
    p.add_argument("--flip", type=number("flip"), default=0.0,
                   help="probability that a training label is flipped, in [0, 1/2) (default 0)")
    p.add_argument("--stage", action="append", default=None, metavar="KEY=VALUE,...",
                   help="one stage (repeat; stage 0 first), e.g. lam=0.1,chi=1,target=hard; "
                        "keys: " + ", ".join(KEYS) + " (loss: logistic, square or hinge)")
    p.add_argument("--stages-file", default=None, metavar="TOML",
                   help="a TOML file with one [[stage]] table per stage")
    p.add_argument("--n", type=integer("n", 10), default=1000,
                   help="N for 'simulate' (default 1000)")
    p.add_argument("--seeds", type=integer("seeds", 2), default=24,
                   help="seeds for 'simulate' (default 24)")
    p.add_argument("--seed", type=integer("seed", 0), default=0,
                   help="base seed for 'simulate' (default 0)")
    p.add_argument("--vary", default=None, metavar="KEY",
                   help="a curve along KEY: alpha, rho, delta, flip or stageK.key "
                        "(e.g. stage2.lam); needs --values")
    p.add_argument("--values", default=None, metavar="V1,V2,...",
                   help="the values of --vary (solved in this order, warm-started)")
    p.add_argument("--over", default="lam", metavar="NAMES",
                   help="for 'optimise': the stage parameters to optimise, among lam, chi, "
                        "temperature (comma-separated; default lam)")
    p.add_argument("--jointly", action="store_true",
                   help="for 'optimise': minimise the target stage's eps_g over the parameters "
                        "of every stage up to it at once (default: stage by stage)")
    p.add_argument("--target", type=integer("target", 0), default=None, metavar="K",
                   help="for 'optimise --jointly': the stage whose eps_g is minimised "
                        "(default the last)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_quiet(p)
    p.set_defaults(handler=run)


def _value(key: str, text: str):
    if key in ("target", "teacher", "loss"):
        return text
    if key == "bias":
        try:
            return float(text)
        except ValueError:
            return text
    if key == "t2_scaling":
        if text.lower() not in ("0", "1", "true", "false"):
            raise ValueError("must be 0 or 1")
        return text.lower() in ("1", "true")
    value = float(text)
    if math.isnan(value):
        raise ValueError("must be a number")
    return value


def stage_from_mapping(index: int, items: dict):
    """A :class:`replica.chain.Stage` from ``key -> value``; errors name ``stage{index}.key``."""
    from replica.chain import Stage

    kwargs = {}
    for key, value in items.items():
        if key not in KEYS:
            raise CliError(f"stage{index}.{key}: unknown key (one of {', '.join(KEYS)})")
        if key == "T":
            key = "temperature"
        if key == "bias" and not isinstance(value, str):
            kwargs["bias_value"] = float(value)
            value = "fixed"
        kwargs[key] = value
    try:
        return Stage(**kwargs)
    except (ParameterError, TypeError, ValueError) as exc:
        raise CliError(f"stage{index}.{exc}") from None


def parse_stage(index: int, text: str):
    items = {}
    for part in filter(None, (s.strip() for s in text.split(","))):
        key, sep, raw = part.partition("=")
        key = key.strip()
        if not sep:
            raise CliError(f"stage{index}.{key}: expected key=value")
        if key not in KEYS:
            raise CliError(f"stage{index}.{key}: unknown key (one of {', '.join(KEYS)})")
        try:
            items[key] = _value(key, raw.strip())
        except ValueError:
            raise CliError(f"stage{index}.{key}: bad value {raw.strip()!r}") from None
    return stage_from_mapping(index, items)


def stages_from_args(args: argparse.Namespace) -> list:
    if args.stages_file is not None and args.stage:
        raise CliError("stage: give --stage options or --stages-file, not both")
    if args.stages_file is not None:
        import tomllib

        try:
            with open(args.stages_file, "rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            name = args.stages_file
            raise CliError(f"stages-file: cannot read {name!r}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise CliError(f"stages-file: not valid TOML: {exc}") from None
        tables = data.get("stage")
        if not isinstance(tables, list) or not tables:
            raise CliError("stages-file: expected one [[stage]] table per stage")
        return [stage_from_mapping(k, dict(t)) for k, t in enumerate(tables)]
    texts = args.stage or ["lam=0.1"]
    return [parse_stage(k, text) for k, text in enumerate(texts)]


CURVE_COLUMNS = ("eps_g", "m", "q", "b", "train_loss", "train_error_observed",
                 "train_error_true", "disagreement", "eps_bo")  # fmt: skip


def run_curve(args: argparse.Namespace, stages: list) -> int:
    """``--vary KEY --values ...``: one chain solve per value, warm-started, as CSV or JSON."""
    import dataclasses

    from replica.chain import ChainParams, solve_chain
    from replica.cli.common import progress

    if args.values is None:
        raise CliError("values: --vary needs --values V1,V2,...")
    key = args.vary
    mixture_keys = ("alpha", "rho", "delta", "flip")
    index = None
    if key not in mixture_keys:
        head, dot, name = key.partition(".")
        if not (head.startswith("stage") and head[5:].isdigit() and dot):
            raise CliError(f"vary: expected alpha, rho, delta, flip or stageK.key; got {key!r}")
        index = int(head[5:])
        if index >= len(stages):
            raise CliError(f"vary: the chain has no stage {index} (stages 0..{len(stages) - 1})")
    values = []
    for text in args.values.split(","):
        try:
            values.append(float(text))
        except ValueError:
            raise CliError(f"values: not a number: {text!r}") from None
    base = {"alpha": args.alpha, "rho": args.rho, "delta": args.delta, "flip": args.flip}
    points = []  # validated before anything is solved
    for value in values:
        point = dict(base)
        chain = list(stages)
        if index is None:
            point[key] = value
        else:
            old = chain[index]
            items = {f.name: getattr(old, f.name) for f in dataclasses.fields(old)}
            items[name] = value
            chain[index] = stage_from_mapping(index, items)
        ChainParams(point["alpha"], point["rho"], point["delta"], point["flip"], tuple(chain))
        points.append((value, point, chain))
    rows, solutions, initial = [], [], None
    for value, point, chain in progress(points, desc=f"chain along {key}", quiet=args.quiet):
        sol = solve_chain(point["alpha"], point["rho"], point["delta"], point["flip"], chain,
                          initial=initial)  # fmt: skip
        initial = [st.state for st in sol.stages] if sol.converged else None
        solutions.append(sol)
        for st in sol.stages:
            rows.append([value, st.index, *(getattr(st, c) for c in CURVE_COLUMNS),
                         int(st.converged)])  # fmt: skip
    if args.json:
        print_json({"vary": key, "values": values, "points": [s.to_dict() for s in solutions]})
    else:
        print(",".join([key, "stage", *CURVE_COLUMNS, "converged"]))
        for row in rows:
            print(",".join(f"{v:.10g}" if isinstance(v, float) else str(v) for v in row))
    return 0 if all(s.converged for s in solutions) else 1


def run_optimise(args: argparse.Namespace, stages: list) -> int:
    """``chain optimise``: the best lam_k of each stage given the earlier ones."""
    from replica.chain import OPTIMISABLE, optimise_stages

    if args.vary is not None:
        raise CliError("vary: not available with 'optimise'")
    over = tuple(filter(None, (n.strip() for n in args.over.split(","))))
    for name in over:
        if name not in OPTIMISABLE:
            raise CliError(f"over: {name!r} is not one of {', '.join(OPTIMISABLE)}")
    target = args.target
    if target is not None and not args.jointly:
        raise CliError("target: only with --jointly (stage-wise, every stage is optimised)")
    if target is not None and target >= len(stages):
        raise CliError(f"target: the chain has stages 0..{len(stages) - 1}; got {target}")
    if args.jointly:
        target = len(stages) - 1 if target is None else target
    from replica.cli.common import progress

    bar = progress(desc="chain optimise (evaluations)", quiet=args.quiet)

    def tick(stage: int, eps: float) -> None:
        bar.update(1)
        bar.set_postfix_str(f"stage{stage}.eps_g={eps:.6f}", refresh=False)

    try:
        solution, best, results = optimise_stages(args.alpha, args.rho, args.delta, args.flip,
                                                  stages, over=over, jointly=args.jointly,
                                                  target=target, callback=tick)  # fmt: skip
    finally:
        bar.close()
    if args.json:
        data = solution.to_dict()
        data["jointly"] = bool(args.jointly)
        data["target"] = target
        data["optimal_lam"] = [s.lam for s in best]
        data["optimal"] = [{n: getattr(s, n) for n in OPTIMISABLE} for s in best]
        data["optimiser_success"] = [None if r is None else bool(r.success) for r in results]
        print_json(data)
    else:
        rows = []
        for st, opt in zip(solution.stages, best, strict=True):
            rows += [(f"stage{st.index}.{n}", getattr(opt, n)) for n in OPTIMISABLE]
            rows.append((f"stage{st.index}.eps_g", st.eps_g))
        kind = (f"joint optimum of stage{target}.eps_g" if args.jointly
                else "stage-wise optimum")  # fmt: skip
        print(format_table(rows, title=f"{kind} over {', '.join(over)}"))
    ok = solution.converged and all(r is None or r.success for r in results)
    return 0 if ok else 1


def run(args: argparse.Namespace) -> int:
    from replica.chain import ChainParams, solve_chain

    stages = stages_from_args(args)
    if args.action != "optimise" and (args.jointly or args.target is not None):
        name = "jointly" if args.jointly else "target"
        raise CliError(f"{name}: only with 'chain optimise'")
    if args.action == "optimise":
        return run_optimise(args, stages)
    if args.vary is not None:
        if args.action == "simulate":
            raise CliError("vary: curves are theory only ('chain --vary ...')")
        return run_curve(args, stages)
    params = ChainParams(args.alpha, args.rho, args.delta, args.flip, tuple(stages))
    if args.action == "simulate":
        from replica.cli.models import warn
        from simulations.chains import simulate_chain

        sim = simulate_chain(params, n=args.n, seeds=args.seeds, seed=args.seed,
                             progress=not args.quiet)  # fmt: skip
        if args.json:
            print_json(sim.to_dict())
        else:
            for k, (mean, sem) in enumerate(zip(sim.mean, sim.sem, strict=True)):
                rows = [(key, f"{mean[key]:.6g} +- {sem[key]:.2g}") for key in mean]
                print(format_table(rows, title=f"stage {k} (N={args.n}, {args.seeds} seeds)"))
        if sim.converged:
            return 0
        warn(f"simulation status {sim.status}: {sim.message}")  # as for teacher/student
        return 1
    solution = solve_chain(params.alpha, params.rho, params.delta, params.flip, stages)
    if args.json:
        print_json(solution.to_dict())
    else:
        for st in solution.stages:
            rows = [(key, getattr(st, key)) for key in
                    ("eps_g", "m", "q", "b", "train_loss", "train_error_observed",
                     "train_error_true", "train_disagreement", "disagreement", "eps_bo")]
            rows += [(f"Q_{j}{st.index}", v) for j, v in enumerate(st.overlaps)]
            rows.append(("converged", st.converged))
            print(format_table(rows, title=f"stage {st.index}"))
    return 0 if solution.converged else 1
