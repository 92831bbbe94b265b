"""The ``kd-replica kernel`` commands (single run, compare, sweep, lottery): outputs and one-line
errors."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

import replica.cli
from replica.cli import main

SMALL = ["kernel", "--n", "30", "--d", "10", "--width", "256", "--steps", "150",
         "--n-test", "200", "--record-points", "20", "--quiet"]
TINY = ["--n", "30", "--d", "10", "--width", "256", "--steps", "100", "--n-test", "200",
        "--n-privileged", "100", "--seeds", "2", "--workers", "1", "--quiet"]


def run_cli(argv):
    try:
        return main(argv)
    except SystemExit as exc:  # argparse errors
        return exc.code


def test_kernel_is_registered():
    assert "replica.cli.kernel" in replica.cli.COMMAND_MODULES


@pytest.mark.parametrize("teacher", ["privileged", "noisy"])
def test_kernel_command_writes_csv_json_and_plots(tmp_path, capsys, teacher):
    out = tmp_path / "run"
    rc = run_cli(SMALL + ["--teacher", teacher, "--out", str(out)])
    assert rc == 0
    printed = json.loads(capsys.readouterr().out)
    summary = json.loads((out / "summary.json").read_text())
    assert printed == summary
    assert summary["setup"]["teacher"] == teacher
    assert summary["setup"]["init"] == "symmetric"  # the default
    assert summary["theory_final_fixed_point_rms"] < 1e-2
    for name in ["kernel_loss.png", "kernel_test_error.png", "kernel_distance.png"]:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert name in summary["files"]
    with (out / "trajectories.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["step"] == "0" and rows[-1]["step"] == "150"
    for key in ["theory_loss", "network_loss", "theory_test_error", "network_test_error",
                "theory_distance", "network_distance", "deviation_rms"]:
        assert key in rows[0]
    assert float(rows[0]["network_distance"]) == 0.0


def test_symmetric_init_adds_the_linearised_curve(tmp_path, capsys):
    out = tmp_path / "sym"
    rc = run_cli(SMALL + ["--init", "symmetric", "--teacher", "noisy", "--lam", "0",
                          "--no-plots", "--out", str(out)])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert "linearised_final_test_error" in summary
    assert not (out / "kernel_loss.png").exists()
    with (out / "trajectories.csv").open() as fh:
        assert "linearised_test_error" in next(csv.reader(fh))


@pytest.mark.parametrize(
    "extra, name",
    [
        (["--n", "0"], "--n"),
        (["--width", "abc"], "--width"),
        (["--lam", "-1"], "--lam"),
        (["--rho", "1.5"], "--rho"),
        (["--delta", "nan"], "--delta"),
        (["--kappa", "0"], "--kappa"),
        (["--teacher", "oracle"], "--teacher"),
        (["--lr", "10"], "--lr"),
        (["--lr", "-0.1"], "--lr"),
        (["--smooth", "0.5"], "--smooth"),
        (["--smoothing", "-0.1"], "--smoothing"),
        (["--rho", "0"], "--rho"),
        (["--delta", "-2"], "--delta"),
        (["--ridge-lam", "-1"], "--ridge-lam"),
        (["--ridge-lam", "inf"], "--ridge-lam"),
        (["--flip", "2"], "--flip"),
        (["--width", "255"], "--width"),
        (["--teacher", "wide", "--teacher-width", "255"], "--teacher-width"),
        (["--dataset", "imagenet"], "--dataset"),
        (["--dataset", "digits", "--n-privileged", "1700"], "--n-test"),
        (["--steps", "-3"], "--steps"),
    ],
)
def test_bad_input_is_one_line_naming_the_parameter(tmp_path, capsys, extra, name):
    rc = run_cli(SMALL + ["--teacher", "noisy", "--out", str(tmp_path / "x")] + extra)
    assert rc == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert name in lines[0]
    assert "Traceback" not in err


def test_unwritable_output_directory(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc = run_cli(SMALL + ["--teacher", "noisy", "--out", str(blocker / "sub")])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--out" in err[0]


def test_missing_out_end_to_end():
    proc = subprocess.run([sys.executable, "-m", "replica", "kernel", "--n", "10"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "--out" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_random_init_has_no_linearised_curve(tmp_path, capsys):
    out = tmp_path / "rand"
    rc = run_cli(SMALL + ["--init", "random", "--teacher", "noisy", "--no-plots",
                          "--out", str(out)])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert "linearised_final_test_error" not in summary
    assert summary["setup"]["init"] == "random"


def test_compare_command(tmp_path, capsys):
    out = tmp_path / "cmp"
    rc = run_cli(["kernel", "compare", *TINY, "--lam", "2", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    for label in ["lambda = 0 (baseline)", "lambda = 2, equal step",
                  "lambda = 2, equal effective step"]:
        assert label in text
    summary = json.loads((out / "summary.json").read_text())
    assert [r["mode"] for r in summary["runs"]] == ["baseline", "equal step",
                                                    "equal effective step"]
    assert summary["runs"][0]["network"]["test_error"]["n"] == 2
    assert (out / "kernel_spectrum.png").read_bytes()[:4] == b"\x89PNG"
    with (out / "runs.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 * 2 and "network_iterations" in rows[0]


@pytest.mark.parametrize("vary, extra", [("lam", ["--values", "0.5,2"]),
                                         ("teacher-quality", ["--teacher", "noisy",
                                                              "--values", "0,0.3"])])
def test_sweep_command(tmp_path, capsys, vary, extra):
    out = tmp_path / vary
    rc = run_cli(["kernel", "sweep", "--vary", vary, *TINY, *extra, "--no-network",
                  "--out", str(out)])
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    if vary == "lam":
        assert set(summary["curves"]) == {"equal step", "equal effective step"}
        for pts in summary["curves"].values():
            assert [p["lam"] for p in pts] == [0.0, 0.5, 2.0]  # the baseline is always drawn
        assert (out / "kernel_sweep_train_error_vs_capacity.png").exists()
    else:
        assert summary["parameter"] == "flip" and summary["baseline"]["lam"] == 0.0
    assert (out / "kernel_sweep_test_error.png").exists()
    assert (out / "kernel_sweep_iterations.png").exists()


@pytest.mark.parametrize(
    "argv, name",
    [
        (["kernel", "compare", "--seeds", "0"], "--seeds"),
        (["kernel", "compare", "--lam", "x"], "--lam"),
        (["kernel", "sweep", "--vary", "width"], "--vary"),
        (["kernel", "sweep", "--vary", "lam", "--values", "1,a"], "--values"),
        (["kernel", "sweep", "--vary", "lam", "--values", "-1"], "--lam"),
        (["kernel", "lottery", "--keep", "1.5"], "--keep"),
        (["kernel", "compare"], "--out"),
    ],
)
def test_subcommand_errors_are_one_line(tmp_path, capsys, argv, name):
    if "--out" not in argv and name != "--out":
        argv = argv + ["--out", str(tmp_path / "x")]
    rc = run_cli(argv + ["--quiet"])
    assert rc == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert name in lines[0]
    assert "Traceback" not in err


# The kernel model's options that are parameters of the replica model: flag -> (schema name,
# KernelSetup field). Their check, default and help come from replica.params.PARAMETERS.
SCHEMA_OPTIONS = {"--rho": ("rho", "rho"), "--delta": ("delta", "delta"),
                  "--smoothing": ("smoothing", "smooth"), "--ridge-lam": ("lam", "ridge_lam")}


def _kernel_parsers():
    import argparse

    from replica.cli import build_parser

    top = build_parser()
    (commands,) = [a for a in top._actions if isinstance(a, argparse._SubParsersAction)]
    kernel = commands.choices["kernel"]
    (actions,) = [a for a in kernel._actions if isinstance(a, argparse._SubParsersAction)]
    return {"kernel": kernel, **{f"kernel {k}": v for k, v in actions.choices.items()}}


@pytest.mark.parametrize("command", ["kernel", "kernel compare", "kernel sweep", "kernel lottery"])
def test_options_shared_with_the_model_come_from_the_parameter_schema(command):
    from replica.cli.models import format_default
    from replica.kernel_regime.experiments import KernelSetup
    from replica.params import PARAMETERS, ParameterError

    parser = _kernel_parsers()[command]
    by_flag = {s: a for a in parser._actions for s in a.option_strings}
    setup = KernelSetup()
    for flag, (name, field) in SCHEMA_OPTIONS.items():
        schema, action = PARAMETERS[name], by_flag[flag]
        assert action.dest == field
        assert action.default == schema.default == getattr(setup, field)
        assert schema.help in action.help
        assert f"(default {format_default(schema.default)})" in action.help
        for text in ("-1", "0.5", "0", "1", "2.5"):  # the schema's check decides, naming the flag
            try:
                expected = schema.validate(float(text))
            except ParameterError:
                with pytest.raises(Exception, match=flag.lstrip("-")):
                    action.type(text)
                with pytest.raises(ParameterError, match=field):
                    KernelSetup(**{field: float(text)})
            else:
                assert action.type(text) == expected
                assert getattr(KernelSetup(**{field: float(text)}), field) == expected
    assert by_flag["--smooth"] is by_flag["--smoothing"]  # the old spelling is kept
