"""One training run followed step by step: kernel theory vs the finite network.

The single-run view behind ``kd-replica kernel`` (no sub-command): for replicate 0 of a
:class:`~replica.kernel_regime.experiments.KernelSetup`, the training loss, the distance to u*,
train and test errors and ``|W(k) - W(0)|_F`` at recorded steps, for the theory (built with the
network's own initial outputs u0) and the network; with the symmetric initialisation on the
mixture, the proportional-regime test-error curve too.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from replica.kernel_regime.dynamics import KernelRegime, kernel_regime_from_eigh
from replica.kernel_regime.experiments import (
    ZERO_OUTPUT,
    KernelSetup,
    Replicate,
    prepare_replicate,
)
from replica.kernel_regime.proportional import ProportionalPrediction, proportional_test_error
from replica.params import check_count, check_nonnegative, check_positive


@dataclass(frozen=True)
class KernelTrajectory:
    """Theory and network along one run (replicate 0 of the setup).

    Attributes
    ----------
    setup : KernelSetup
    lam, lr : float
        Teacher weight and step used.
    replicate : Replicate
        Data, teacher, H's eigendecomposition and the student's initialisation.
    theory : KernelRegime
    network : simulations.wide_network.NetworkTrajectory
    steps : ndarray
        Recorded steps (shared).
    theory_train_outputs, theory_test_outputs, theory_distance : ndarray
        Kernel-regime predictions at the recorded steps.
    proportional : ProportionalPrediction or None
        Linearised-Gram test-error curve (mixture with symmetric init only: it assumes f_0 = 0).
    """

    setup: KernelSetup
    lam: float
    lr: float
    replicate: Replicate
    theory: KernelRegime
    network: object
    steps: np.ndarray
    theory_train_outputs: np.ndarray
    theory_test_outputs: np.ndarray
    theory_distance: np.ndarray
    proportional: ProportionalPrediction | None

    @staticmethod
    def _error(outputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return np.mean((outputs > ZERO_OUTPUT) != (labels == 1), axis=-1)

    def trajectories(self) -> dict[str, np.ndarray]:
        """Per recorded step: loss, RMS distance to u*, train/test error, ``|W - W0|``
        (both)."""
        th, net, data = self.theory, self.network, self.replicate.data
        n = th.u_star.size
        rms = lambda u: np.linalg.norm(u - th.u_star, axis=1) / math.sqrt(n)  # noqa: E731
        out = {
            "step": self.steps,
            "theory_loss": th.train_loss(self.steps),
            "network_loss": net.loss,
            "theory_fixed_point_rms": rms(self.theory_train_outputs),
            "network_fixed_point_rms": rms(net.train_outputs),
            "deviation_rms": np.linalg.norm(net.train_outputs - self.theory_train_outputs, axis=1)
            / math.sqrt(n),
            "theory_train_error": self._error(self.theory_train_outputs, data.labels),
            "network_train_error": self._error(net.train_outputs, data.labels),
            "theory_test_error": self._error(self.theory_test_outputs, data.test_labels),
            "network_test_error": self._error(net.test_outputs, data.test_labels),
            "theory_distance": self.theory_distance,
            "network_distance": net.distance,
        }
        if self.proportional is not None:
            out["linearised_test_error"] = self.proportional.test_error
        return out

    def summary(self) -> dict:
        """JSON-ready summary of the run (scalars only)."""
        tr = self.trajectories()
        th, rep, tol = self.theory, self.replicate, self.setup.tolerance
        out = {
            "setup": self.setup.to_dict(),
            "lam": self.lam,
            "lr": self.lr,
            "effective_step": th.effective_step,
            "H_eigenvalue_min": float(th.eigenvalues[0]),
            "H_eigenvalue_max": float(th.eigenvalues[-1]),
            "teacher": rep.teacher.to_dict(),
            "teacher_train_disagreement": rep.teacher.train_disagreement(rep.data.labels),
            "teacher_test_error": rep.teacher.test_error(rep.data.test_labels),
            "capacity": th.capacity(),
            "final_step": int(self.steps[-1]),
            "theory_final_distance": float(tr["theory_distance"][-1]),
            "network_final_distance": float(tr["network_distance"][-1]),
            "max_deviation_rms": float(np.max(tr["deviation_rms"])),
            "theory_final_fixed_point_rms": float(tr["theory_fixed_point_rms"][-1]),
            "network_final_fixed_point_rms": float(tr["network_fixed_point_rms"][-1]),
            "tolerance": tol,
            "theory_iterations_to_tolerance": th.iterations_to_reach(tol),
            "network_iterations_to_tolerance": self.network.iterations_to_reach(tol),
            "theory_final_test_error": float(tr["theory_test_error"][-1]),
            "network_final_test_error": float(tr["network_test_error"][-1]),
            "theory_final_train_error": float(tr["theory_train_error"][-1]),
            "network_final_train_error": float(tr["network_train_error"][-1]),
        }
        if self.proportional is not None:
            out["linearised_final_test_error"] = float(self.proportional.test_error[-1])
        return out

    def to_dict(self) -> dict:
        return self.summary()


def run_trajectory(
    setup: KernelSetup,
    lam: float = 1.0,
    *,
    record_points: int = 100,
    callback: Callable[[int], None] | None = None,
) -> KernelTrajectory:
    """Train the network of replicate 0 and evaluate the kernel theory at the recorded steps.

    ``setup.lr`` None uses ``1 / ((1 + lam) mu_max)`` (the largest step without oscillation).
    """
    from simulations.wide_network import TwoLayerReLU, record_schedule, train_distillation

    lam = check_nonnegative("lam", lam)
    record_points = check_count("record_points", record_points, minimum=2)
    rep = prepare_replicate(setup, 0, network=True)
    lr = 1.0 / ((1.0 + lam) * rep.mu_max) if setup.lr is None else check_positive("lr", setup.lr)
    data, t = rep.data, rep.teacher.train_outputs
    theory = kernel_regime_from_eigh(
        rep.eigenvalues, rep.eigenvectors, data.signs, t, lam, lr, rep.u0
    )  # raises if lr is unstable
    record = record_schedule(setup.steps, record_points)
    net = TwoLayerReLU(rep.W0, rep.a)
    traj = train_distillation(
        net, data.X, data.signs, t, lam, lr, setup.steps, record=record, X_test=data.X_test,
        callback=callback,
    )  # fmt: skip
    prop = None
    if setup.init == "symmetric" and data.v is not None:
        prop = proportional_test_error(
            data.X, data.v, setup.rho, setup.delta, theory.u_star, theory.effective_step, record
        )
    return KernelTrajectory(
        setup, lam, lr, rep, theory, traj, record,
        theory.train_outputs(record),
        theory.test_outputs(rep.K_test, rep.f0_test, record),
        theory.distance(record),
        prop,
    )  # fmt: skip
