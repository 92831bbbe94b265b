"""Kernel-regime theory of knowledge transfer to a very wide two-layer ReLU student
(docs/kernel.md).

Panahi, Rahbar, Bhattacharyya, Dubhashi, Haghir Chehreghani, "Analysis of knowledge transfer in
kernel regime", arXiv 2003.13438 (its v1: "On the unreasonable effectiveness of knowledge
distillation: analysis in the kernel regime").  No replica method is involved: the student::

    f(x) = m^-1/2 sum_r a_r ReLU(w_r . x),   |x| = 1,   a_r = +-1 fixed,

is trained on W by gradient descent on ``1/2 |u - y|^2 + lambda/2 |u - t|^2`` and, as m -> inf,
its training outputs follow a linear system driven by the NTK Gram matrix H.

Modules
-------
gram
    The NTK and its Gram matrices (exact, empirical for a set of neurons, linearised).
dynamics
    The (1 + lambda) dynamics, u*, capacity, hitting times, per-mode residuals.
proportional
    The proportional-regime test-error curve for mixture data (ours).
data
    Mixture and digits data on the sphere; independent random streams per replicate.
teachers
    The teachers and their quality knobs.
experiments
    Theory and finite-width network side by side: ``compare`` and ``sweep``.
lottery
    The lottery-ticket protocol in this model.

The finite network itself is :mod:`simulations.wide_network`.
"""

from replica.kernel_regime.dynamics import (
    KernelRegime,
    capacity_measure,
    distillation_fixed_point,
    distillation_loss,
    kernel_regime,
    kernel_regime_from_eigh,
    spectral_teacher,
)
from replica.kernel_regime.gram import (
    NTK_AT_ONE,
    empirical_ntk_gram,
    linearised_ntk_coefficients,
    linearised_ntk_gram,
    mean_offdiagonal_square,
    normalise_rows,
    ntk_gram,
    ntk_kernel_function,
    relu_covariance_function,
)
from replica.kernel_regime.proportional import (
    ProportionalPrediction,
    mixture_readout_error,
    proportional_test_error,
)

__all__ = [
    "NTK_AT_ONE",
    "KernelRegime",
    "ProportionalPrediction",
    "capacity_measure",
    "distillation_fixed_point",
    "distillation_loss",
    "empirical_ntk_gram",
    "kernel_regime",
    "kernel_regime_from_eigh",
    "linearised_ntk_coefficients",
    "linearised_ntk_gram",
    "mean_offdiagonal_square",
    "mixture_readout_error",
    "normalise_rows",
    "ntk_gram",
    "ntk_kernel_function",
    "proportional_test_error",
    "relu_covariance_function",
    "spectral_teacher",
]
