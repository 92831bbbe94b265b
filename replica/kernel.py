"""Compatibility alias: the kernel-regime model now lives in :mod:`replica.kernel_regime`."""

from replica.kernel_regime import *  # noqa: F403
from replica.kernel_regime import __all__  # noqa: F401
