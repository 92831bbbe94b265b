"""Settings of the whole test session."""

import pytest


@pytest.fixture(autouse=True, scope="session")
def one_blas_thread():
    """One BLAS thread, as the command line and its worker pools use (``replica.cli``).

    The matrices of the tests are small: threaded BLAS only adds thread wake-ups and spinning
    (several times slower on a busy machine), and the results do not depend on it.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a dependency
        yield
        return
    with threadpool_limits(limits=1):
        yield
