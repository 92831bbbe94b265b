"""Data sets of the kernel-regime experiments, on the unit sphere, and their random streams.

* ``mixture``: the Gaussian mixture of docs/model.md §1 (``x = s v/sqrt(d) + sqrt(Delta) z``), one
  cluster direction for the training, test and privileged sets, normalised onto the sphere.
* ``digits``: scikit-learn's 8x8 handwritten digits (1797 images, shipped inside the package, no
  download), even (label 1) vs odd (label 0); pixels centred by their mean over all images, then
  each image projected onto the unit sphere.  Needs the optional extra ``kd-replica[data]``.

Every replicate draws from four independent streams spawned from one seed
(:func:`replicate_streams`): ``data`` (which points, the mixture itself), ``teacher`` (its
initialisation, its flipped labels), ``student`` (the student's initialisation) and ``pruning``,
so that the student's initialisation does not change with the teacher kind.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from replica.kernel_regime.gram import normalise_rows
from replica.params import ParameterError, check_count, check_open_unit, check_positive

DATASETS = ("mixture", "digits")
STREAMS = ("data", "teacher", "student", "pruning")
DIGITS_SIZE = 1797


def replicate_streams(seed: int, replicate: int = 0) -> dict[str, np.random.Generator]:
    """Independent generators ``{"data", "teacher", "student", "pruning"}`` for a replicate.

    ``SeedSequence(seed)`` is spawned into one child per replicate (up to ``replicate + 1``), and
    that child into one per role: the streams are statistically independent and each is
    reproducible on its own ("pruning" draws the random sub-networks of the lottery protocol).
    """
    seed = check_count("seed", seed, minimum=0)
    replicate = check_count("replicate", replicate, minimum=0)
    child = np.random.SeedSequence(seed).spawn(replicate + 1)[replicate]
    seqs = child.spawn(len(STREAMS))
    return {name: np.random.default_rng(s) for name, s in zip(STREAMS, seqs, strict=True)}


@dataclass(frozen=True)
class KernelData:
    """Training, test and privileged (teacher-only) points of one replicate.

    Attributes
    ----------
    name : str
        "mixture" or "digits".
    X, X_test, X_privileged : ndarray, shape (., d)
        Inputs on the unit sphere.
    labels, test_labels, privileged_labels : ndarray
        Labels in {0, 1}; the regression targets are the signs ``s = 2y - 1``.
    raw, raw_test : ndarray
        The inputs before the projection (used by the ridge-logistic teacher).
    v : ndarray or None
        Mixture cluster direction (None for digits).
    """

    name: str
    X: np.ndarray
    labels: np.ndarray
    X_test: np.ndarray
    test_labels: np.ndarray
    X_privileged: np.ndarray
    privileged_labels: np.ndarray
    raw: np.ndarray
    raw_test: np.ndarray
    v: np.ndarray | None = None

    @property
    def signs(self) -> np.ndarray:
        return 2.0 * self.labels - 1.0

    @property
    def privileged_signs(self) -> np.ndarray:
        return 2.0 * self.privileged_labels - 1.0

    @property
    def n(self) -> int:
        return int(self.X.shape[0])

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "n": self.n,
            "d": int(self.X.shape[1]),
            "n_test": int(self.X_test.shape[0]),
            "n_privileged": int(self.X_privileged.shape[0]),
            "positive_fraction": float(np.mean(self.labels)),
        }


def mixture_data(
    n: int,
    d: int,
    n_test: int,
    n_privileged: int,
    rho: float,
    delta: float,
    rng: np.random.Generator,
) -> KernelData:
    """Gaussian-mixture data (docs/model.md §1) normalised onto the sphere; one cluster
    direction."""
    from simulations.data import sample_mixture

    n, d, n_test = check_count("n", n), check_count("d", d), check_count("n_test", n_test)
    n_privileged = check_count("n_privileged", n_privileged, minimum=0)
    rho, delta = check_open_unit("rho", rho), check_positive("delta", delta)
    train = sample_mixture(d, n, rho, delta, rng)
    test = sample_mixture(d, n_test, rho, delta, rng, v=train.v)
    priv = sample_mixture(d, max(n_privileged, 1), rho, delta, rng, v=train.v)
    return KernelData(
        "mixture",
        normalise_rows(train.X), train.y.astype(float),
        normalise_rows(test.X), test.y.astype(float),
        normalise_rows(priv.X)[:n_privileged], priv.y[:n_privileged].astype(float),
        train.X, test.X, train.v,
    )  # fmt: skip


def load_digits_even_odd() -> tuple[np.ndarray, np.ndarray]:
    """All 1797 digits as centred pixel vectors (64) and labels 1 = even, 0 = odd."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ParameterError(
            "dataset digits needs scikit-learn: pip install 'kd-replica[data]'"
        ) from None
    digits = load_digits()
    X = digits.data.astype(float)
    X -= X.mean(axis=0)
    return X, (digits.target % 2 == 0).astype(float)


def digits_data(
    n: int, n_test: int | None, n_privileged: int, rng: np.random.Generator
) -> KernelData:
    """Digits even vs odd on the sphere: a random split into training, privileged and test.

    ``n_test=None`` uses every image not in the training or privileged set.
    """
    n = check_count("n", n)
    n_privileged = check_count("n_privileged", n_privileged, minimum=0)
    X, y = load_digits_even_odd()
    rest = DIGITS_SIZE - n - n_privileged
    if n_test is None:
        n_test = rest
    n_test = check_count("n_test", n_test)
    if n_test > rest:
        raise ParameterError(
            f"n_test must be <= {rest} (1797 digits minus n and n_privileged); got {n_test}"
        )
    order = rng.permutation(DIGITS_SIZE)
    tr, pv = order[:n], order[n:n + n_privileged]
    te = order[n + n_privileged:n + n_privileged + n_test]
    Xs = normalise_rows(X)
    return KernelData(
        "digits", Xs[tr], y[tr], Xs[te], y[te], Xs[pv], y[pv], X[tr], X[te], None
    )
