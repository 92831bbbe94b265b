"""Teachers of the kernel-regime experiments, each with one knob that sets its quality.

A teacher is what the student sees: its outputs ``t`` on the training inputs (and, to measure its
own quality, on the test inputs), on the scale of the sign targets ``s = 2y - 1``.  Each kind is
drawn from the replicate's ``teacher`` stream only.

========== ==================================================================== ===============
kind       what                                                                 quality knob
========== ==================================================================== ===============
privileged infinitely wide network trained to convergence on a disjoint set of  n_privileged
           points: NTK regression ``k(x, X_p)(H_p + r I)^-1 s_p`` (r =
           ``teacher_ridge``), the kernel-regime limit of a wide teacher
wide       a finite wide network trained on the student's own labels, stopped   teacher_steps
           early after ``teacher_steps`` GD steps
noisy      the training signs with a fraction ``flip`` flipped (no test output)  flip
ridge      ridge-logistic regression on the raw inputs, ``t = tanh(h/2)``       ridge_lam
top-modes  projection of the signs on H's ``teacher_modes`` top eigenvectors    teacher_modes
bottom-    ... on the bottom eigenvectors (the control of the alignment claim)  teacher_modes
modes
========== ==================================================================== ===============
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from replica.kernel_regime.data import KernelData
from replica.kernel_regime.dynamics import spectral_teacher
from replica.kernel_regime.gram import ntk_gram
from replica.params import (
    ParameterError,
    check_count,
    check_nonnegative,
    check_smoothing,
    check_unit_interval,
    default,
)

TEACHER_KINDS = ("privileged", "wide", "noisy", "ridge", "top-modes", "bottom-modes")
#: The parameter that sets each teacher's quality (varied by ``sweep --vary teacher-quality``).
QUALITY_KNOB = {
    "privileged": "n_privileged",
    "wide": "teacher_steps",
    "noisy": "flip",
    "ridge": "ridge_lam",
    "top-modes": "teacher_modes",
    "bottom-modes": "teacher_modes",
}


@dataclass(frozen=True)
class Teacher:
    """Teacher outputs on the training (and test) inputs.

    Attributes
    ----------
    kind : str
    train_outputs : ndarray, shape (n,)
        ``t``, on the sign scale.
    test_outputs : ndarray or None
        Its outputs on the test inputs (None when the teacher is not a function of the input).
    details : dict
        Construction parameters.
    """

    kind: str
    train_outputs: np.ndarray
    test_outputs: np.ndarray | None
    details: dict = field(default_factory=dict)

    def train_disagreement(self, labels: np.ndarray) -> float:
        """Fraction of training points where ``sign(t)`` differs from the label."""
        return float(np.mean((self.train_outputs > 0) != (np.asarray(labels) == 1)))

    def test_error(self, test_labels: np.ndarray) -> float | None:
        if self.test_outputs is None:
            return None
        return float(np.mean((self.test_outputs > 0) != (np.asarray(test_labels) == 1)))

    def to_dict(self) -> dict:
        return {"kind": self.kind, **self.details}


def privileged_teacher(data: KernelData, *, n_privileged: int, ridge: float = 0.0) -> Teacher:
    """NTK regression on the first ``n_privileged`` privileged points (disjoint from the training
    set): ``t(x) = k(x, X_p) (H_p + ridge I)^-1 s_p``.

    This is the kernel-regime limit of a wide network with f_0 = 0 trained to convergence on the
    privileged data (a teacher that has seen data the student has not).
    """
    n_privileged = check_count("n_privileged", n_privileged)
    ridge = check_nonnegative("teacher_ridge", ridge)
    if n_privileged > data.X_privileged.shape[0]:
        raise ParameterError(
            f"n_privileged must be <= {data.X_privileged.shape[0]} (the privileged pool); "
            f"got {n_privileged}"
        )
    Xp = data.X_privileged[:n_privileged]
    Hp = ntk_gram(Xp)
    Hp[np.diag_indices_from(Hp)] += ridge
    coef = np.linalg.solve(Hp, data.privileged_signs[:n_privileged])
    details = {"n_privileged": n_privileged, "teacher_ridge": ridge}
    return Teacher(
        "privileged", ntk_gram(Xp, data.X) @ coef, ntk_gram(Xp, data.X_test) @ coef, details
    )


def wide_teacher(
    data: KernelData,
    rng: np.random.Generator,
    *,
    width: int,
    steps: int,
    kappa: float = 1.0,
    init: str = "symmetric",
) -> Teacher:
    """A finite wide network trained on the training signs (lambda = 0) for ``steps`` GD steps at
    ``lr = 1/mu_max(H)``, stopped early: its training outputs differ from the labels."""
    from simulations.wide_network import TwoLayerReLU, train_distillation

    steps = check_count("teacher_steps", steps, minimum=0)
    mu_max = float(np.linalg.eigvalsh(ntk_gram(data.X))[-1])
    net = TwoLayerReLU.initialise(width, data.X.shape[1], rng, kappa=kappa, init=init)
    s = data.signs
    train_distillation(net, data.X, s, s, 0.0, 1.0 / mu_max, steps, record=[steps])
    details = {"teacher_width": width, "teacher_steps": steps, "kappa": kappa, "init": init}
    return Teacher("wide", net.outputs(data.X), net.outputs(data.X_test), details)


def noisy_teacher(
    data: KernelData, rng: np.random.Generator, *, flip: float, smooth: float = 0.0
) -> Teacher:
    """The training signs with exactly ``round(flip n)`` of them flipped, at random, then shrunk
    by ``1 - 2 smooth`` (label smoothing)."""
    flip = check_unit_interval("flip", flip)
    smooth = check_smoothing("smooth", smooth)
    t = data.signs.copy()
    idx = rng.choice(t.size, size=int(round(flip * t.size)), replace=False)
    t[idx] *= -1.0
    return Teacher("noisy", (1.0 - 2.0 * smooth) * t, None, {"flip": flip, "smooth": smooth})


def ridge_teacher(data: KernelData, *, ridge_lam: float) -> Teacher:
    """Ridge-logistic regression (docs/model.md §2) on the raw inputs, mapped to the sign scale
    ``t = 2 sigma(h) - 1 = tanh(h/2)``."""
    from simulations.estimators import fit_ridge_logistic

    ridge_lam = check_nonnegative("ridge_lam", ridge_lam)
    fit = fit_ridge_logistic(data.raw, data.labels, ridge_lam)
    scale = math.sqrt(data.raw.shape[1])
    h = data.raw @ fit.w / scale + fit.b
    h_test = data.raw_test @ fit.w / scale + fit.b
    details = {"ridge_lam": ridge_lam, "converged": bool(fit.converged)}
    return Teacher("ridge", np.tanh(h / 2.0), np.tanh(h_test / 2.0), details)


def mode_teacher(data: KernelData, H: np.ndarray, *, modes: int, end: str) -> Teacher:
    """Projection of the signs on ``modes`` top or bottom eigenvectors of H (no test outputs)."""
    modes = check_count("teacher_modes", modes)
    t = spectral_teacher(H, data.signs, min(modes, data.n), end=end)
    return Teacher(f"{end}-modes", t, None, {"teacher_modes": modes})


def build_teacher(
    kind: str,
    data: KernelData,
    rng: np.random.Generator,
    H: np.ndarray,
    *,
    n_privileged: int = 1000,
    teacher_ridge: float = 0.0,
    teacher_width: int = 8192,
    teacher_steps: int = 20,
    flip: float = 0.2,
    smooth: float = default("smoothing"),
    ridge_lam: float = default("lam"),
    teacher_modes: int = 10,
    kappa: float = 1.0,
    init: str = "symmetric",
) -> Teacher:
    """The teacher ``kind`` (one of :data:`TEACHER_KINDS`) for ``data``."""
    if kind == "privileged":
        return privileged_teacher(data, n_privileged=n_privileged, ridge=teacher_ridge)
    if kind == "wide":
        return wide_teacher(
            data, rng, width=teacher_width, steps=teacher_steps, kappa=kappa, init=init
        )
    if kind == "noisy":
        return noisy_teacher(data, rng, flip=flip, smooth=smooth)
    if kind == "ridge":
        return ridge_teacher(data, ridge_lam=ridge_lam)
    if kind in ("top-modes", "bottom-modes"):
        return mode_teacher(data, H, modes=teacher_modes, end=kind.split("-")[0])
    raise ParameterError(f"teacher must be one of {TEACHER_KINDS}; got {kind!r}")
