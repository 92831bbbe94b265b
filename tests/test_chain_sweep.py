"""Chain sweeps (replica/chain_sweep.py, replica/cli/chain_sweep.py): warm-started curves equal
cold solves, the number-of-stages curve equals separate solves, optimised curves, phase
diagrams and their quantities, resume after an interruption, one-line errors."""

import csv
import math
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from replica.chain import ChainParams, Stage, optimise_stages, solve_chain
from replica.chain_sweep import (
    GRADIENT_TOL,
    STAGE_OBSERVABLES,
    ChainOptimise,
    ChainPhaseSpec,
    Quantity,
    assign,
    chain_curve,
    chain_phase,
    chain_row,
    curve_tasks,
    extend,
    parse_variable,
    run_chain_tasks,
)
from replica.cli import main
from replica.params import ParameterError
from saddle.checkpoint import CsvJournal
from saddle.executor import make_executor
from saddle.results import freeze
from tests.test_executor import _alive, _children  # the process-table probes of the executor tests

HARD = dict(chi=1.0, target="hard")
CHAIN = ChainParams(2.0, 0.5, 1.0, 0.2, (Stage(lam=0.1), Stage(lam=0.1, **HARD)))
SOFT = ChainParams(2.0, 0.3, 1.0, 0.1, (Stage(lam=0.1), Stage(lam=0.2, chi=0.7,
                                                                temperature=1.5)))  # fmt: skip
COMPARED = ("eps_g", "m", "q", "b", "V", "train_loss")


def _assert_rows_match(columns, i, solution, stages=None):
    for k, st in enumerate(solution.stages if stages is None else solution.stages[:stages]):
        for name in COMPARED:
            assert abs(columns[f"stage{k}.{name}"][i] - getattr(st, name)) <= 1e-8, (k, name)
        for j, q in enumerate(st.overlaps):
            assert abs(columns[f"stage{k}.Q{j}"][i] - q) <= 1e-8
        assert columns[f"stage{k}.converged"][i] is True


# ----------------------------------------------------------------------------------------------
# Curves: warm starts along the path give the cold solutions
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("params, vary, values", [
    (CHAIN, "alpha", [1.5, 2.0, 2.5]),
    (CHAIN, "stage1.lam", [0.05, 0.1, 0.2]),
    (SOFT, "flip", [0.0, 0.1, 0.2]),
    (SOFT, "stage1.T", [1.0, 2.0]),
])  # fmt: skip
def test_warm_started_curve_equals_cold_solves(params, vary, values):
    curve = chain_curve(vary, values, params)
    name = parse_variable(vary, params).name
    assert curve.vary == name and curve.columns[name] == values
    assert len(curve) == len(values) and all(curve.columns["converged"])
    assert all(isinstance(n, int) and n > 0 for n in curve.columns["nit"])
    for i, value in enumerate(values):
        cold = assign(params, {name: value})
        solution = solve_chain(cold.alpha, cold.rho, cold.delta, cold.flip, cold.stages)
        _assert_rows_match(curve.columns, i, solution)
        assert curve.columns["eps_g"][i] == curve.columns["stage1.eps_g"][i]
    frame = curve.to_frame()  # flat and table-shaped
    assert frame.shape[0] == len(values) and frame["stages"].nunique() == 1


def test_number_of_stages_curve_equals_separate_solves():
    curve = chain_curve("K", [0, 1, 2], CHAIN)
    assert curve.columns["K"] == [0, 1, 2] and all(curve.columns["converged"])
    for i, depth in enumerate([0, 1, 2]):
        chain = extend(CHAIN, depth)
        assert len(chain.stages) == depth + 1
        if depth == 2:  # the last stage repeated
            assert chain.stages[2] == chain.stages[1]
        separate = solve_chain(chain.alpha, chain.rho, chain.delta, chain.flip, chain.stages)
        _assert_rows_match(curve.columns, i, separate)
        assert curve.columns["eps_g"][i] == curve.columns[f"stage{depth}.eps_g"][i]
        for k in range(depth + 1, 3):  # stages beyond K are absent
            assert math.isnan(curve.columns[f"stage{k}.eps_g"][i])
    assert extend(extend(CHAIN, 2), 1) == CHAIN  # cut after stage K


def test_curve_runs_through_a_process_pool_identically():
    tasks = curve_tasks(CHAIN, "alpha", [1.5, 2.0, 2.5, 3.0], segment=2)
    assert len(tasks) == 2
    serial = run_chain_tasks(tasks)
    with make_executor(2) as executor:
        pooled = run_chain_tasks(tasks, executor=executor)
    assert freeze(pooled) == freeze(serial)  # (NaN equal to NaN)


# ----------------------------------------------------------------------------------------------
# Optimised chains along a curve
# ----------------------------------------------------------------------------------------------


def test_optimised_curve_gives_the_stagewise_optimum_at_every_point():
    params = ChainParams(2.0, 0.3, 1.0, 0.2, (Stage(lam=0.1),))
    alphas = [1.5, 2.5]
    curve = chain_curve("alpha", alphas, params, optimise=ChainOptimise(("lam",)))
    assert all(curve.columns["converged"])
    assert all(g <= GRADIENT_TOL or ok for g, ok in zip(curve.columns["optimiser_gradient"],
                                                         curve.columns["optimiser_success"],
                                                         strict=True))  # fmt: skip
    for i, alpha in enumerate(alphas):
        sol, best, _ = optimise_stages(alpha, 0.3, 1.0, 0.2, params.stages)
        assert abs(curve.columns["stage0.eps_g"][i] - sol[0].eps_g) <= 1e-8
        lam = curve.columns["stage0.lam"][i]
        assert abs(math.log(lam / best[0].lam)) < 1e-2  # warm vs cold start of the search
        for factor in (0.9, 1.1):  # a minimum
            other = solve_chain(alpha, 0.3, 1.0, 0.2, [Stage(lam=lam * factor)])
            assert curve.columns["stage0.eps_g"][i] <= other[0].eps_g


def test_an_optimiser_that_stops_away_from_a_stationary_point_is_not_converged():
    from scipy.optimize import OptimizeResult

    sol = solve_chain(2.0, 0.5, 1.0, 0.2, CHAIN.stages)
    row = chain_row(sol, {}, 1, 2, [OptimizeResult(success=True, jac=np.array([0.1])), None])
    assert row["converged"] is True and row["optimiser_gradient"] == 0.1
    for jac, expected in ((0.5 * GRADIENT_TOL, True), (1e-3, False)):  # ABNORMAL line searches
        result = OptimizeResult(success=False, jac=np.array([jac]))
        row = chain_row(sol, {}, 1, 2, [None, result])
        assert row["converged"] is expected and row["optimiser_success"] is False


def test_an_optimised_parameter_cannot_vary():
    with pytest.raises(ParameterError, match="stage1.lam is optimised"):
        curve_tasks(CHAIN, "stage1.lam", [0.1], optimise=ChainOptimise(("lam",)))
    with pytest.raises(ParameterError, match="over: 'eta'"):
        ChainOptimise(("eta",))
    with pytest.raises(ParameterError, match="target: only with jointly"):
        ChainOptimise(("lam",), target=1)
    with pytest.raises(ParameterError, match="jointly: a joint optimum over K stages"):
        curve_tasks(CHAIN, "K", [0, 1], optimise=ChainOptimise(("lam",), jointly=True))
    with pytest.raises(ParameterError, match="target: the chain has stages 0..1"):
        curve_tasks(CHAIN, "alpha", [2.0], optimise=ChainOptimise(jointly=True, target=2))
    joint = ChainOptimise(("lam", "chi"), jointly=True, target=0)
    assert joint.optimised(0, CHAIN.stages[0]) == ("lam",) and joint.optimised(1, Stage()) == ()


# ----------------------------------------------------------------------------------------------
# Phase diagrams and quantities
# ----------------------------------------------------------------------------------------------


def test_phase_diagram_of_a_gain_equals_separate_solves():
    spec = ChainPhaseSpec("alpha", "stage0.eta", (1.5, 2.5), (0.6, 1.0),
                          "stage0.eps_g - stage1.eps_g", CHAIN)  # fmt: skip
    diagram = chain_phase(spec)
    assert diagram.grid.shape == (2, 2)
    for iy, eta in enumerate(spec.y_values):
        for ix, alpha in enumerate(spec.x_values):
            chain = assign(CHAIN, {"alpha": alpha, "stage0.eta": eta})
            sol = solve_chain(chain.alpha, chain.rho, chain.delta, chain.flip, chain.stages)
            assert abs(diagram.grid[iy, ix] - (sol[0].eps_g - sol[1].eps_g)) <= 1e-8
    frame = diagram.to_frame()
    assert list(frame["value"]) == diagram.grid.ravel().tolist()


def test_phase_diagram_over_the_number_of_stages():
    spec = ChainPhaseSpec("K", "alpha", (0, 1, 2), (1.5, 2.5), "last.eps_g", CHAIN)
    diagram = chain_phase(spec)
    for iy, alpha in enumerate(spec.y_values):
        curve = chain_curve("K", [0, 1, 2], assign(CHAIN, {"alpha": alpha}))
        assert np.allclose(diagram.grid[iy], curve.columns["eps_g"], rtol=0, atol=1e-8)


def test_phase_diagram_of_optimised_chains_equals_the_optimised_curve():
    params = ChainParams(2.0, 0.3, 1.0, 0.2, (Stage(lam=0.1),))
    spec = ChainPhaseSpec("alpha", "flip", (1.5, 2.5), (0.2,), "stage0.eps_g", params,
                          ChainOptimise(("lam",)))  # fmt: skip
    diagram = chain_phase(spec)
    curve = chain_curve("alpha", [1.5, 2.5], params, optimise=ChainOptimise(("lam",)))
    assert all(diagram.columns["converged"])
    assert np.array_equal(diagram.grid[0], curve.columns["stage0.eps_g"])
    assert diagram.columns["stage0.lam"] == curve.columns["stage0.lam"]


def test_quantity_sums_and_differences():
    q = Quantity.parse(" stage0.eps_g-stage1.eps_g + last.q ", 2)
    assert q.columns(1) == [(1.0, "stage0.eps_g"), (-1.0, "stage1.eps_g"), (1.0, "stage1.q")]
    columns = {"K": [1, 0], "stage0.eps_g": [0.3, 0.3], "stage1.eps_g": [0.25, math.nan],
               "stage1.q": [2.0, math.nan], "stage0.q": [1.0, 1.0]}  # fmt: skip
    values = q.evaluate(columns)
    assert values[0] == pytest.approx(0.05 + 2.0) and math.isnan(values[1])
    assert Quantity.parse("-stage2.Q0", 3).terms == ((-1.0, 2, "Q0"),)


@pytest.mark.parametrize("text, message", [
    ("stage0.eps", "stage0.eps is not a stage column"),
    ("stage2.eps_g", "the chain has no stage 2"),
    ("stage0.eps_g stage1.eps_g", "joined by + or -"),
    ("stage0.eps_g -", "joined by + or -"),
    ("eps_g", "expected stageK.NAME"),
    ("stage1.Q1", "not an overlap"),
    ("last.converged", "not a stage column"),
    ("", "quantity: empty"),
])  # fmt: skip
def test_bad_quantities_are_one_line_errors(text, message):
    with pytest.raises(ParameterError, match=re.escape(message)) as info:
        Quantity.parse(text, 2)
    assert str(info.value).startswith("quantity") and "\n" not in str(info.value)


@pytest.mark.parametrize("text, message", [
    ("beta", "vary: expected alpha, rho, delta, flip, K or stageK.KEY"),
    ("stage2.lam", "vary: the chain has no stage 2"),
    ("stage1.target", "vary: stage1.target cannot vary"),
    ("stage1.bias_value", "stage1.bias_value varies only a fixed bias"),
])  # fmt: skip
def test_bad_variables_are_one_line_errors(text, message):
    with pytest.raises(ParameterError, match=re.escape(message)):
        parse_variable(text, CHAIN)


# ----------------------------------------------------------------------------------------------
# Resume after an interruption
# ----------------------------------------------------------------------------------------------


class _Interrupt:
    """A progress callback that presses Ctrl-C after ``after`` points."""

    def __init__(self, after: int):
        self.after, self.seen = after, 0

    def __call__(self, n: int) -> None:
        self.seen += n
        if self.seen >= self.after:
            raise KeyboardInterrupt


def test_interrupted_curve_resumes_to_the_same_bytes(tmp_path):
    values = [1.5, 2.0, 2.5]
    meta = {"run": "test"}
    reference = tmp_path / "reference.csv"
    chain_curve("alpha", values, CHAIN, segment=1, journal=CsvJournal(reference, ("index",), meta))
    path = tmp_path / "curve.csv"
    with pytest.raises(KeyboardInterrupt):
        chain_curve("alpha", values, CHAIN, segment=1, journal=CsvJournal(path, ("index",), meta),
                    progress=_Interrupt(1))  # fmt: skip
    journal = CsvJournal(path, ("index",), meta)
    assert journal.resumed == 1
    counted = []
    curve = chain_curve("alpha", values, CHAIN, segment=1, journal=journal,
                        progress=counted.append)  # fmt: skip
    assert counted[0] == 1 and sum(counted) == 3  # the finished point is not recomputed
    assert path.read_bytes() == reference.read_bytes()
    assert curve.columns["converged"] == [True] * 3


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------

STAGES = ["--flip", "0.2", "--stage", "lam=0.1", "--stage", "lam=0.1,chi=1,target=hard"]


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_cli_curve_out_resumes_and_plots(tmp_path, capsys):
    out = tmp_path / "run"

    def command(num):
        return ["chain", *STAGES, "--vary", "alpha", "--start", "1.5", "--stop", "2.5", "--num",
                num, "--segment", "1", "--workers", "1", "--quiet", "--out", str(out)]

    argv = command("3")
    assert main(argv) == 0
    rows = _rows(out / "curve.csv")
    assert [float(r["alpha"]) for r in rows] == [1.5, 2.0, 2.5]
    assert all(r["converged"] == "True" for r in rows)
    assert (out / "curve.png").stat().st_size > 10_000
    first = (out / "curve.csv").read_bytes()
    capsys.readouterr()
    assert main(argv) == 0  # nothing left to do
    assert "resuming: 3 of 3 points" in capsys.readouterr().err
    assert (out / "curve.csv").read_bytes() == first
    assert main(command("4")) == 2  # another run
    err = capsys.readouterr().err.strip()
    assert "different run" in err and "--restart" in err and "\n" not in err


def test_cli_number_of_stages_and_phase(tmp_path, capsys):
    figure = tmp_path / "depth.png"
    assert main(["chain", *STAGES, "--vary", "K", "--start", "0", "--stop", "2", "--json",
                 "--quiet", "--plot", str(figure)]) == 0  # fmt: skip
    assert figure.stat().st_size > 10_000
    import json

    data = json.loads(capsys.readouterr().out)
    assert data["K"] == [0, 1, 2] and data["vary"] == "K"
    out = tmp_path / "phase"
    argv = ["chain", "phase", *STAGES, "--x", "alpha", "--x-values", "1.5,2.5", "--y",
            "stage0.eta", "--y-values", "0.6,1", "--workers", "1", "--quiet", "--out",
            str(out)]  # fmt: skip
    assert main([*argv, "--quantity", "stage0.eps_g - stage1.eps_g"]) == 0
    rows = _rows(out / "phase.csv")
    assert [(r["iy"], r["ix"]) for r in rows] == [("0", "0"), ("0", "1"), ("1", "0"), ("1", "1")]
    assert (out / "phase.png").exists()
    # another quantity re-uses the finished grid
    assert main([*argv, "--quantity", "stage1.q"]) == 0
    assert "resuming: 4 of 4 points" in capsys.readouterr().err


def test_cli_non_converged_points_exit_1(tmp_path, capsys, monkeypatch):
    import replica.chain_sweep as module

    def few_iterations(*args, **kwargs):
        return solve_chain(*args, **{**kwargs, "max_iter": 2})

    monkeypatch.setattr(module, "solve_chain", few_iterations)
    argv = ["chain", *STAGES, "--vary", "alpha", "--values", "1.5,2", "--workers", "1",
            "--quiet", "--out", str(tmp_path / "run")]  # fmt: skip
    assert main(argv) == 1
    assert "2 of 2 points did not converge" in capsys.readouterr().err
    assert all(r["converged"] == "False" for r in _rows(tmp_path / "run" / "curve.csv"))


@pytest.mark.parametrize("argv, message", [
    (["--vary", "beta", "--values", "1"], "vary: expected alpha"),
    (["--vary", "stage3.lam", "--values", "1"], "vary: the chain has no stage 3"),
    (["--vary", "stage1.lam", "--values", "0.1,x"], "values: not a number"),
    (["--vary", "stage1.lam", "--values", "0.1,-1"], "stage1.lam must be >= 0"),
    (["--vary", "alpha"], "values: --vary needs --values"),
    (["--vary", "K", "--values", "0,1.5"], "K must be an integer >= 0"),
    (["--vary", "alpha", "--values", "1", "--start", "1", "--stop", "2"], "not both"),
    (["--values", "1,2"], "values: needs --vary"),
    (["--out", "somewhere"], "out: needs --vary"),
    (["--x", "alpha"], "x: only with 'chain phase'"),
    (["--vary", "alpha", "--values", "1", "--plot", "curve.pdf"], "plot: expected a .png"),
    (["--vary", "alpha", "--values", "1", "--plot", "somewhere/c.png"], "plot: no directory"),
    (["phase", "--x", "alpha", "--x-values", "1,2", "--y", "stage0.eta", "--y-values", "1,2",
      "--out", "somewhere"], "stage0.eta must lie in (0, 1]"),
    (["phase", "--x", "alpha", "--x-values", "1,2", "--y", "K", "--y-range", "0", "2",
      "--quantity", "stage3.eps_g", "--out", "somewhere"], "quantity: the chain has no stage 3"),
    (["phase", "--x", "alpha", "--x-values", "1,2", "--out", "somewhere"], "y: 'chain phase'"),
    (["phase", "--x", "alpha", "--x-values", "1,2", "--y", "flip", "--y-values", "0,0.1"],
     "out: 'chain phase' needs --out"),
    (["optimise", "--vary", "stage1.lam", "--values", "0.1"], "stage1.lam is optimised"),
    (["optimise", "--vary", "alpha", "--values", "1", "--over", "eta"], "over: 'eta'"),
])  # fmt: skip
def test_cli_sweep_errors_are_one_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["chain", *STAGES, *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err, err
    assert not (tmp_path / "somewhere").exists()  # nothing created before the error


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc to read the process table")
def test_ctrl_c_of_a_two_worker_chain_curve_loses_nothing(tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "replica", "chain", *STAGES, "--vary", "alpha", "--start",
               "1", "--stop", "3", "--num", "12", "--segment", "1", "--workers", "2",
               "--out", str(out)]  # fmt: skip
    path = out / "curve.csv"
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        workers: set[int] = set()
        while time.monotonic() < deadline and proc.poll() is None:
            workers |= _children(proc.pid)
            if path.exists() and len(path.read_text().splitlines()) >= 3:
                proc.send_signal(signal.SIGINT)
                break
            time.sleep(0.02)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130 and err.strip().splitlines()[-1] == "kd-replica: interrupted"
    assert len(workers) == 2
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.05)
    assert not [pid for pid in workers if _alive(pid)]  # no stray worker
    partial = _rows(path)
    assert 2 <= len(partial) < 12
    done = subprocess.run(command + ["--quiet"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"resuming: {len(partial)} of 12 points" in done.stderr
    final = _rows(path)
    assert [int(r["index"]) for r in final] == list(range(12))
    for row in partial:
        assert final[int(row["index"])] == row
    reference = tmp_path / "reference"
    assert main(["chain", *STAGES, "--vary", "alpha", "--start", "1", "--stop", "3", "--num",
                 "12", "--segment", "1", "--workers", "1", "--quiet", "--out",
                 str(reference)]) == 0  # fmt: skip
    assert path.read_bytes() == (reference / "curve.csv").read_bytes()


def test_stage_observables_are_solution_attributes():
    sol = solve_chain(2.0, 0.5, 1.0, 0.2, CHAIN.stages)
    for name in STAGE_OBSERVABLES:
        assert isinstance(getattr(sol[1], name), float)
