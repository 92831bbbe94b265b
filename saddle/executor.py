"""Executors for sweeps and Monte-Carlo grids, and a deterministic segmented map.

Used for long theory sweeps and simulations (docs/numerics.md §5).

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
import signal
import sys
import threading
import time
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
    kernels) and ``spawn`` elsewhere. On Linux the kernel kills a worker when the *thread*
    that started it exits: use the pool from the thread that entered this context. On exit
    from an interrupted run (any exception, ``KeyboardInterrupt`` included) pending tasks are
    cancelled and the workers are terminated at once. Workers never outlive the process that
    created the pool, whatever kills it (even ``SIGKILL``, which cannot be caught): see
    :func:`_worker_initializer`.
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
    pool = ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context(method),
                               initializer=_worker_initializer, initargs=(os.getpid(),))
    try:
        yield pool
    except BaseException:
        terminate_pool(pool)
        raise
    else:
        pool.shutdown(wait=True)


def terminate_pool(pool: ProcessPoolExecutor, timeout: float = 5.0) -> None:
    """Cancel the pending tasks of ``pool`` and terminate its workers now (not after their
    current task, as ``shutdown(wait=False)`` alone would)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        with contextlib.suppress(Exception):
            process.terminate()
    deadline = time.monotonic() + timeout
    for process in processes:
        with contextlib.suppress(Exception):
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join(1.0)


# -- workers that die with their parent ---------------------------------------------------------

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
WATCHDOG_PERIOD = 0.25  # seconds between two checks of the parent's pid


def _worker_initializer(parent_pid: int) -> None:
    """Run in each pool worker at start: make sure it cannot outlive ``parent_pid``.

    - Linux: ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` asks the kernel to kill the worker when its
      parent dies, by any signal (``SIGKILL`` of the parent included);
    - everywhere: a daemon thread that exits the worker as soon as its parent pid changes
      (the worker was re-parented), the portable fallback;
    - ``SIGINT`` is ignored (the parent coordinates Ctrl-C and terminates the workers) and
      ``SIGTERM`` restored to its default (exit at once);
    - standard input and output point to ``/dev/null``: results travel through the pool's
      own pipes, and a worker must neither read the parent's terminal nor write into a pipe
      that captures the parent's output (standard error is kept for tracebacks);
    - BLAS uses one thread per worker (the pool is the parallelism: threaded BLAS in every
      worker oversubscribes the cores; ``benchmarks/bench_cli.py`` measures the difference).
    """
    # the signals first: a pool terminated while this worker starts (the parent stopped on an
    # error) must end it silently, not through a SIGTERM handler inherited from the parent
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    limit_blas_threads(1)
    if sys.platform.startswith("linux"):
        _set_parent_death_signal(signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before the line above took effect
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="kd-replica-watchdog",
                     daemon=True).start()  # fmt: skip
    _detach_stdin_stdout()


@contextlib.contextmanager
def blas_thread_limit(n: int | None = 1) -> Iterator[None]:
    """Context manager: at most ``n`` BLAS threads inside (threadpoolctl), the previous limits
    restored on exit (also on an exception); ``n = None`` leaves them as they are.

    Small dense problems (N ~ 10^2..10^3) run several times slower with threaded BLAS on a
    shared machine: the threads spin and wake more than they compute.
    """
    if n is None:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a dependency, but never fatal
        yield
        return
    with threadpool_limits(limits=int(n), user_api="blas"):
        yield


def limit_blas_threads(n: int = 1) -> bool:
    """Limit the BLAS/OpenMP thread pools of this process to ``n`` threads (threadpoolctl);
    False if that is not possible."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a dependency, but never fatal
        return False
    threadpool_limits(limits=int(n))
    return True


def _set_parent_death_signal(signum: int) -> bool:
    """``prctl(PR_SET_PDEATHSIG, signum)`` on Linux; False where unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0
    except (OSError, AttributeError):  # pragma: no cover - exotic libc
        return False


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(WATCHDOG_PERIOD)
        if os.getppid() != parent_pid:
            os._exit(1)


def _detach_stdin_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_RDWR)
    except OSError:  # pragma: no cover
        return
    for fd in (0, 1):
        with contextlib.suppress(OSError):
            os.dup2(devnull, fd)
    os.close(devnull)


@contextlib.contextmanager
def _dask_executor(scheduler: Any, timeout: float = 10.0) -> Iterator[Executor]:
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - depends on the optional extra
        raise ImportError(
            "a Dask scheduler needs the optional dependency: pip install 'kd-replica[distributed]'"
        ) from None
    own = not isinstance(scheduler, Client)
    client = Client(scheduler, timeout=timeout) if own else scheduler
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
