"""Executors for sweeps and Monte-Carlo grids, and a deterministic segmented map.

Generic (knows nothing about the physics). Every long computation of the package is a set of
independent *tasks* (a warm-started segment of a path, or one simulation seed) handed to a
``concurrent.futures.Executor``:

- :class:`SerialExecutor`: in-process, one task after the other (``workers = 1``);
- a local process pool (``workers >= 2``, the default on the command line);
- a Dask distributed cluster (``scheduler = "tcp://host:8786"`` or a ``distributed.Client``),
  through the client's ``concurrent.futures`` interface (optional extra ``[distributed]``).

Determinism: a path is cut into segments of a fixed length (:func:`segments`) that does not
depend on the number of workers; each segment starts from the same deterministic state and is
walked with warm starts inside. Results are therefore identical whatever the executor, the
worker count and the order in which segments finish (and whether a run was interrupted and
resumed, :mod:`saddle.checkpoint`).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_SEGMENT = 8


class SerialExecutor(Executor):
    """An executor that runs each task immediately in the calling process.

    ``submit`` returns an already completed future (the exception, if any, is stored in it).
    """

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - stored in the future, like a pool does
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            future.set_exception(exc)
        return future


def default_workers() -> int:
    """Number of usable cores (``os.sched_getaffinity`` where available)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS / Windows
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def make_executor(
    workers: int | None = None, scheduler: Any = None
) -> Iterator[Executor]:
    """A context manager yielding an executor, shut down (or disconnected) on exit.

    Parameters
    ----------
    workers : int, optional
        Number of local worker processes; ``1`` runs serially in-process; ``None`` uses every
        core. Ignored when ``scheduler`` is given.
    scheduler : str or distributed.Client, optional
        Address of a Dask scheduler (``"tcp://127.0.0.1:8786"``) or an existing Dask client;
        tasks then run on that cluster's workers (which must be able to import kd-replica).

    Notes
    -----
    Local pools use the ``fork`` start method on Linux (workers inherit the compiled numba
    kernels) and ``spawn`` elsewhere. On exit from an interrupted run the pool is shut down
    without waiting and pending tasks are cancelled.
    """
    if scheduler is not None:
        with _dask_executor(scheduler) as executor:
            yield executor
        return
    n = default_workers() if workers is None else int(workers)
    if n <= 1:
        yield SerialExecutor()
        return
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    pool = ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context(method))
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    else:
        pool.shutdown(wait=True)


@contextlib.contextmanager
def _dask_executor(scheduler: Any) -> Iterator[Executor]:
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - depends on the optional extra
        raise ImportError(
            "a Dask scheduler needs the optional dependency: pip install 'kd-replica[distributed]'"
        ) from None
    own = not isinstance(scheduler, Client)
    client = Client(scheduler) if own else scheduler
    try:
        yield client.get_executor()
    finally:
        if own:
            client.close()


def segments(items: Sequence[T], size: int = DEFAULT_SEGMENT) -> list[list[T]]:
    """Cut ``items`` into consecutive segments of ``size`` (the last may be shorter).

    The cut depends only on ``len(items)`` and ``size``, never on the number of workers.
    """
    size = max(1, int(size))
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def map_unordered(
    fn: Callable[[T], R],
    tasks: Iterable[T],
    *,
    executor: Executor,
    on_result: Callable[[int, R], None] | None = None,
) -> list[R]:
    """Run ``fn`` on every task through ``executor``; results in task order.

    ``on_result(index, result)`` is called in the calling process as each task finishes (in
    completion order), e.g. to write it to disk at once. If the caller is interrupted
    (``KeyboardInterrupt``) pending tasks are cancelled before the exception propagates.
    """
    tasks = list(tasks)
    results: list[Any] = [None] * len(tasks)
    if isinstance(executor, SerialExecutor):
        # In-process: finish (and report) each task before starting the next.
        for index, task in enumerate(tasks):
            results[index] = executor.submit(fn, task).result()
            if on_result is not None:
                on_result(index, results[index])
        return results
    futures = {executor.submit(fn, task): i for i, task in enumerate(tasks)}
    try:
        for future in as_completed(futures):
            index = futures[future]
            result = future.result()
            results[index] = result
            if on_result is not None:
                on_result(index, result)
    except BaseException:
        for future in futures:
            future.cancel()
        raise
    return results
