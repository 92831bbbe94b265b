"""Executors: identical results whatever the executor (serial, process pool, Dask cluster)."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from replica.sweep import path_tasks, run_tasks
from saddle.executor import SerialExecutor, make_executor, map_unordered, segments


def _square(x):
    return x * x


def _fail(x):
    raise ValueError(f"bad {x}")


def test_segments_do_not_depend_on_workers():
    assert segments(list(range(7)), 3) == [[0, 1, 2], [3, 4, 5], [6]]
    assert segments([], 3) == []


def test_serial_executor_and_map_order():
    seen = []
    out = map_unordered(_square, [3, 1, 2], executor=SerialExecutor(),
                        on_result=lambda i, r: seen.append((i, r)))  # fmt: skip
    assert out == [9, 1, 4] and sorted(seen) == [(0, 9), (1, 1), (2, 4)]
    with pytest.raises(ValueError, match="bad 1"):
        map_unordered(_fail, [1], executor=SerialExecutor())


def test_process_pool_map():
    with make_executor(2) as executor:
        assert map_unordered(_square, list(range(6)), executor=executor) == [0, 1, 4, 9, 16, 25]


def _curve_tasks():
    # A student curve through the interpolation peak, cut into segments of 2 points.
    return path_tasks("student", "alpha", np.linspace(0.3, 1.2, 6),
                      {"lam_t": 0.1, "lam_s": 1e-3, "chi": 1.0}, segment=2)  # fmt: skip


def test_results_identical_whatever_the_executor():
    serial = run_tasks(_curve_tasks())
    with make_executor(2) as executor:
        pooled = run_tasks(_curve_tasks(), executor=executor)
    assert pooled == serial  # bit for bit
    assert all(row["converged"] for row in serial)
    assert [row["index"] for row in serial] == list(range(6))


def test_dask_local_cluster_gives_the_same_results():
    distributed = pytest.importorskip("distributed")
    serial = run_tasks(_curve_tasks())
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:  # fmt: skip
        # by address, as `--scheduler ADDRESS` does
        with make_executor(scheduler=cluster.scheduler_address) as executor:
            on_dask = run_tasks(_curve_tasks(), executor=executor)
        with distributed.Client(cluster) as client, make_executor(scheduler=client) as executor:
            again = run_tasks(_curve_tasks()[:1], executor=executor)
    assert on_dask == serial
    assert again == serial[:2]


# -- no worker outlives its parent, whatever signal kills it -----------------------------------


def _children(pid: int) -> set[int]:
    """Live (not zombie) processes whose parent is ``pid``, from /proc."""
    out = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        state, ppid = stat.rpartition(")")[2].split()[:2]
        if int(ppid) == pid and state != "Z":
            out.add(int(entry))
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc to read the process table")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_no_worker_outlives_a_killed_multiworker_run(sig, tmp_path):
    # A real two-worker curve (slow points: vanishing ridges through the separability peak),
    # output captured through pipes as `$(...)` or CI would.
    command = [sys.executable, "-m", "replica", "curve", "student", "--vary", "alpha",
               "--start", "1.0", "--stop", "5.0", "--num", "30", "--lam-t", "1e-5",
               "--lam-s", "1e-5", "--segment", "1", "--workers", "2",
               "--out", str(tmp_path / "run")]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        workers: set[int] = set()
        while time.monotonic() < deadline and proc.poll() is None and len(workers) < 2:
            workers = _children(proc.pid)
            time.sleep(0.05)
        assert len(workers) == 2, "the run should have started two workers"
        time.sleep(0.3)  # workers busy in a task
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=10)  # the pipes reach EOF: no writer is left
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
            time.sleep(0.05)
        assert not [pid for pid in workers if _alive(pid)]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode == (130 if sig == signal.SIGINT else 128 + sig)
        assert err.decode().strip().splitlines()[-1] in ("kd-replica: interrupted",
                                                         "kd-replica: terminated by SIGTERM")


WATCHED_CHILD = """
import os, sys, threading, time
from saddle.executor import _watch_parent
parent = os.getpid()
child = os.fork()
if child == 0:  # the portable fallback alone (no prctl): a thread watching the parent pid
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    time.sleep(60)
    os._exit(0)
print(child, flush=True)
time.sleep(60)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_parent_watchdog_alone_ends_an_orphaned_worker():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", WATCHED_CHILD], stdout=subprocess.PIPE,
                            env=env, text=True)  # fmt: skip
    try:
        child = int(proc.stdout.readline())
        assert _alive(child)
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _alive(child):
            time.sleep(0.05)
        assert not _alive(child)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)  # EOF: the orphan held the pipe until it exited


# -- paths with repeated values, empty paths ----------------------------------------------------


def test_repeated_values_give_the_same_point_repeated():
    from replica.sweep import teacher_curve

    curve = teacher_curve("alpha", [2.0, 2.0, 2.0])
    single = teacher_curve("alpha", [2.0])
    assert curve.columns["eps_g"] == single.columns["eps_g"] * 3
    assert all(curve.columns["converged"])
    around = teacher_curve("alpha", [1.0, 2.0, 2.0, 3.0])  # the predictor skips the repeat
    assert around.columns["eps_g"][1] == around.columns["eps_g"][2]
    assert all(around.columns["converged"])


def test_an_empty_path_is_a_parameter_error():
    from replica.params import ParameterError
    from replica.sweep import student_curve, teacher_curve

    for curve in (teacher_curve, student_curve):
        with pytest.raises(ParameterError, match="values"):
            curve("alpha", [])


def _blas_threads(_=None) -> int:
    from threadpoolctl import threadpool_info

    return max((i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"),
               default=1)  # fmt: skip


def test_pool_workers_and_cli_commands_use_one_blas_thread(monkeypatch, capsys):
    pytest.importorskip("threadpoolctl")
    with make_executor(2) as executor:
        assert map_unordered(_blas_threads, [0, 1], executor=executor) == [1, 1]
    import replica.cli.teacher
    from replica.cli import main

    seen = []
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    monkeypatch.setattr(replica.cli.teacher, "run_point", lambda args: seen.append(_blas_threads()))
    before = _blas_threads()
    assert main(["teacher"]) == 0
    assert seen == [1] and _blas_threads() == before  # restored after the command
