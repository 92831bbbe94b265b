"""Executors: identical results whatever the executor (serial, process pool, Dask cluster)."""

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
