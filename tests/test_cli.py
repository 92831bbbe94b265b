"""The kd-replica command line: outputs, files, exit codes, one-line errors."""

import csv
import json
import subprocess
import sys

import pytest

from replica.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_teacher_json_has_the_documented_keys(capsys):
    code, out, _ = run(capsys, "teacher", "--alpha", "3", "--lam", "0.1", "--json")
    data = json.loads(out)
    assert code == 0
    assert set(data) >= {"eps_g", "m", "q", "V", "b", "train_loss", "train_error", "converged",
                         "iterations", "eps_bo"}
    assert data["converged"] is True
    assert data["eps_g"] == pytest.approx(0.154574, abs=1e-6)


def test_teacher_table_is_readable(capsys):
    code, out, _ = run(capsys, "teacher")
    assert code == 0 and "eps_g" in out and "eps_bo" in out


def test_student_json_structure(capsys):
    code, out, _ = run(capsys, "student", "--alpha", "4.5", "--lam-t", "0.1", "--lam-s", "1e-4",
                       "--chi", "1", "--json")
    data = json.loads(out)
    assert code == 0
    assert set(data) == {"params", "teacher", "student", "eps_bo_teacher", "eps_bo_student"}
    for key in ("eps_g", "m", "q", "S", "V", "b", "train_loss", "train_error", "mse_outputs",
                "mse_preactivations", "converged", "iterations"):
        assert key in data["student"]
    assert data["params"]["teacher"] == "ridge"


def test_student_bayes_teacher_and_options(capsys):
    code, out, _ = run(capsys, "student", "--teacher", "bayes", "--temperature", "2",
                       "--t2-scaling", "--smoothing", "0.1", "--json")
    data = json.loads(out)
    assert code == 0 and data["params"]["t2_scaling"] is True
    assert data["teacher"]["V"] == 0.0


def test_curve_teacher_writes_csv_and_png(tmp_path, capsys):
    code, out, _ = run(capsys, "curve", "teacher", "--vary", "alpha", "--start", "0.5", "--stop",
                       "10", "--num", "12", "--out", str(tmp_path), "--quiet")
    assert code == 0
    rows = list(csv.DictReader(open(tmp_path / "curve.csv")))
    assert len(rows) == 12 and float(rows[0]["alpha"]) == 0.5
    assert all(row["converged"] == "True" for row in rows)
    assert float(rows[-1]["eps_g"]) > float(rows[-1]["eps_bo"])
    assert (tmp_path / "curve.png").stat().st_size > 10_000


def test_curve_student_along_chi(tmp_path, capsys):
    code, _, _ = run(capsys, "curve", "student", "--vary", "chi", "--start", "0", "--stop", "1",
                     "--num", "5", "--lam-s", "0.2", "--out", str(tmp_path), "--quiet")
    rows = list(csv.DictReader(open(tmp_path / "curve.csv")))
    assert code == 0 and [float(r["chi"]) for r in rows] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert len({r["teacher_eps_g"] for r in rows}) == 1  # one teacher for the whole curve


@pytest.mark.parametrize(
    "argv, name",
    [
        (["teacher", "--rho", "1.5"], "rho"),
        (["teacher", "--rho", "0"], "rho"),
        (["teacher", "--alpha", "0"], "alpha"),
        (["teacher", "--alpha", "abc"], "alpha"),
        (["teacher", "--delta", "-1"], "delta"),
        (["teacher", "--lam", "-0.1"], "lam"),
        (["teacher", "--smoothing", "0.5"], "smoothing"),
        (["student", "--eta", "0"], "eta"),
        (["student", "--chi", "2"], "chi"),
        (["student", "--temperature", "0"], "temperature"),
        (["student", "--teacher", "oracle"], "teacher"),
        (["curve", "teacher", "--vary", "alpha", "--start", "-1", "--stop", "2", "--num", "3",
          "--out", "x"], "alpha"),
    ],
)
def test_bad_input_is_one_line_with_exit_code_2(argv, name, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    _, err = capsys.readouterr()
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and name in lines[0] and "Traceback" not in err


def test_console_script_errors_without_traceback():
    proc = subprocess.run([sys.executable, "-m", "replica", "teacher", "--rho", "nan"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "rho" in proc.stderr


def test_non_convergence_exits_with_code_1(capsys, monkeypatch):
    import replica.teacher

    original = replica.teacher.solve_teacher

    def starved(*args, **kwargs):
        return original(*args, **{**kwargs, "max_iter": 2})

    monkeypatch.setattr(replica.teacher, "solve_teacher", starved)
    code, out, err = run(capsys, "teacher", "--json")
    assert code == 1 and json.loads(out)["converged"] is False
    assert "did not converge" in err


def _one_line_error(capsys, argv, name):
    """Run ``main(argv)``: exit code 2 and one stderr line naming ``name``, no traceback."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and name in lines[0] and "Traceback" not in err, err
    return lines[0]


def _unwritable_dir(tmp_path):
    """An existing directory no file can be created in (``chmod 500``; for root, who ignores
    permission bits, the read-only ``/sys``), or skip."""
    import os
    import tempfile

    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    for candidate in (locked, "/sys"):
        try:
            with tempfile.TemporaryFile(dir=candidate):
                pass
        except OSError:
            return str(candidate)
    os.chmod(locked, 0o700)
    pytest.skip("no unwritable directory available")


UNWRITABLE_OUT = [
    ["curve", "teacher", "--vary", "alpha", "--start", "1", "--stop", "2", "--num", "3"],
    ["phase", "--x", "alpha", "--y", "chi", "--nx", "2", "--ny", "2"],
    ["figure", "2"],
    ["demo"],
    ["kernel", "--n", "20", "--d", "5", "--width", "16", "--steps", "2"],
]


@pytest.mark.parametrize("argv", UNWRITABLE_OUT, ids=lambda a: a[0])
def test_unwritable_out_is_one_line_before_any_work(argv, tmp_path, capsys, monkeypatch):
    import replica.figures  # noqa: F401 - imported before the patch, which must not leak
    import replica.kernel_regime.trajectory
    import replica.phase  # noqa: F401
    import replica.sweep

    def must_not_run(*args, **kwargs):
        raise AssertionError("computed before checking --out")

    monkeypatch.setattr(replica.sweep, "solve_path", must_not_run)
    monkeypatch.setattr(replica.kernel_regime.trajectory, "run_trajectory", must_not_run)
    out = _unwritable_dir(tmp_path)
    line = _one_line_error(capsys, [*argv, "--out", out, "--quiet", "--workers", "1"]
                           if argv[0] != "kernel" else [*argv, "--out", out], "out")
    assert "cannot write" in line
    (tmp_path / "locked").chmod(0o700)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("address", ["notanaddress", "tcp://host:abc", "tcp://:8786",
                                     "unreachable"])
def test_bad_scheduler_is_one_line_and_creates_nothing(address, tmp_path, capsys):
    pytest.importorskip("distributed")
    if address == "unreachable":
        address = f"tcp://127.0.0.1:{_free_port()}"  # nobody listens: refused at once
    out = tmp_path / "never"
    for argv in (["curve", "teacher", "--vary", "alpha", "--start", "1", "--stop", "2"],
                 ["phase", "--x", "alpha", "--y", "chi", "--nx", "2", "--ny", "2"],
                 ["figure", "2"]):  # fmt: skip
        _one_line_error(capsys, [*argv, "--out", str(out), "--scheduler", address], "scheduler")
    assert not out.exists()


def test_a_live_scheduler_passes_the_check(tmp_path, capsys):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:  # fmt: skip
        code = main(["curve", "teacher", "--vary", "alpha", "--start", "1", "--stop", "2",
                     "--num", "2", "--out", str(tmp_path), "--quiet",
                     "--scheduler", cluster.scheduler_address])  # fmt: skip
    assert code == 0, capsys.readouterr().err


def _starve_solvers(monkeypatch):
    """Every fixed point of the sweeps stops after 2 iterations: none converges."""
    import replica.points  # the physics of a sweep's points (formerly in replica.sweep)

    for name in ("solve_teacher", "solve_student"):
        original = getattr(replica.points, name)

        def starved(*args, _original=original, **kwargs):
            return _original(*args, **{**kwargs, "max_iter": 2})

        monkeypatch.setattr(replica.points, name, starved)


@pytest.mark.parametrize("argv", [
    ["curve", "teacher", "--vary", "alpha", "--start", "1", "--stop", "2", "--num", "2"],
    ["phase", "--x", "alpha", "--y", "lam", "--quantity", "teacher.eps_g", "--nx", "2",
     "--ny", "2"],
    ["figure", "1", "--resolution", "0.05"],
], ids=lambda a: a[0])  # fmt: skip
def test_non_convergence_of_sweeps_exits_with_code_1(argv, tmp_path, capsys, monkeypatch):
    _starve_solvers(monkeypatch)
    code = main([*argv, "--out", str(tmp_path), "--quiet", "--workers", "1"])
    err = capsys.readouterr().err
    assert code == 1 and "did not converge" in err, err


def test_a_path_from_a_value_to_itself_repeats_the_point(tmp_path, capsys):
    code, _, err = run(capsys, "curve", "teacher", "--vary", "alpha", "--start", "2", "--stop",
                       "2", "--num", "3", "--out", str(tmp_path), "--quiet", "--workers", "1")
    rows = list(csv.DictReader(open(tmp_path / "curve.csv")))
    assert code == 0, err
    assert len(rows) == 3 and len({(r["alpha"], r["eps_g"]) for r in rows}) == 1


@pytest.mark.parametrize("argv, name", [
    (["curve", "teacher", "--vary", "alpha", "--start", "1", "--stop", "inf"], "stop"),
    (["curve", "teacher", "--vary", "alpha", "--start", "-inf", "--stop", "1"], "start"),
    (["phase", "--x", "alpha", "--y", "chi", "--x-range", "1", "inf"], "x-range"),
    (["phase", "--x", "alpha", "--y", "chi", "--y-range", "nan", "1"], "y-range"),
    (["phase", "--x", "alpha", "--y", "chi", "--x-range", "2", "2"], "x-range"),
])  # fmt: skip
def test_non_finite_and_empty_ranges_are_one_line(argv, name, tmp_path, capsys):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy RuntimeWarning on the way
        _one_line_error(capsys, [*argv, "--out", str(tmp_path / "o")], name)
    assert not (tmp_path / "o").exists()


def _all_parsers(parser=None, name="kd-replica"):
    import argparse

    from replica.cli import build_parser

    parser = parser or build_parser()
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _all_parsers(sub, f"{name} {sub_name}")


def test_every_option_has_help_and_states_its_true_default():
    import re

    checked = 0
    for command, parser in _all_parsers():
        for action in parser._actions:
            if not action.option_strings or action.dest == "help":
                continue
            assert action.help, f"{command} {action.option_strings[0]} has no help"
            stated = re.search(r"\(default:? ([-+.\w]+)\)", action.help)
            if stated and isinstance(action.default, int | float) and not isinstance(
                    action.default, bool):  # fmt: skip
                assert float(stated.group(1)) == action.default, (command, action.dest)
                checked += 1
    assert checked > 30


def test_version_and_demo_help(capsys):
    for argv in (["--version"], ["demo", "--help"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("kd-replica 0.")
    assert "(default 0.5)" in out and "--with-simulations" not in out


def test_a_fully_resumed_run_shows_no_stale_bar(tmp_path, capsys, monkeypatch):
    import replica.cli.common

    monkeypatch.setattr(replica.cli.common, "PROGRESS_DELAY", 0.0)  # every bar shows at once
    argv = ["curve", "teacher", "--vary", "alpha", "--start", "1", "--stop", "2", "--num", "3",
            "--out", str(tmp_path), "--workers", "1"]  # fmt: skip
    assert main(argv) == 0
    assert "teacher curve" in capsys.readouterr().err  # a bar while computing
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "resuming: 3 of 3 points" in err
    assert "teacher curve" not in err and "0%" not in err


def test_kernel_preparation_says_so_when_it_takes_time(capsys, monkeypatch):
    import time

    import replica.cli.common
    import replica.sweep

    monkeypatch.setattr(replica.cli.common, "COMPILE_NOTICE_AFTER", 0.05)
    monkeypatch.setattr(replica.sweep, "solve_path", lambda task: time.sleep(0.3))
    replica.cli.common.prepare_kernels()
    assert "preparing the numba kernels" in capsys.readouterr().err
    replica.cli.common.prepare_kernels(quiet=True)
    assert capsys.readouterr().err == ""


def test_simulate_without_finite_minimiser_exits_1_with_one_warning_line(capsys):
    # lam = 0 at alpha = 1 < alpha~_S: every sample is separable, the norm grows without bound.
    code, out, err = run(capsys, "simulate", "teacher", "--lam", "0", "--alpha", "1",
                         "--n", "60", "--seeds", "2", "--quiet")  # fmt: skip
    assert code == 1
    assert "finite       False" in out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kd-replica: warning: simulation status 3")
    code, _, err = run(capsys, "simulate", "teacher", "--lam", "0.1", "--alpha", "3",
                       "--n", "60", "--seeds", "2", "--quiet")  # fmt: skip
    assert code == 0 and err == ""
