"""The ``kd-replica kernel`` command: outputs and one-line errors."""

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


def run_cli(argv):
    try:
        return main(argv)
    except SystemExit as exc:  # argparse errors
        return exc.code


def test_kernel_is_registered():
    assert "replica.cli.kernel" in replica.cli.COMMAND_MODULES


@pytest.mark.parametrize("teacher", ["wide", "noisy"])
def test_kernel_command_writes_csv_json_and_plots(tmp_path, capsys, teacher):
    out = tmp_path / "run"
    rc = run_cli(SMALL + ["--teacher", teacher, "--out", str(out)])
    assert rc == 0
    printed = json.loads(capsys.readouterr().out)
    summary = json.loads((out / "summary.json").read_text())
    assert printed == summary
    assert summary["config"]["teacher"] == teacher
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
        (["--flip", "2"], "--flip"),
        (["--init", "symmetric", "--width", "255"], "--width"),
        (["--init", "symmetric", "--teacher-width", "255"], "--teacher-width"),
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
