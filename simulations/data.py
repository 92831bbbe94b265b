"""Sampling the Gaussian mixture of paper Eq. 10 at finite N (docs/model.md §1)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from replica.params import check_count, check_open_unit, check_positive


@dataclass(frozen=True)
class MixtureSample:
    """A finite-size draw of the mixture.

    Attributes
    ----------
    X : ndarray, shape (M, N)
        Inputs ``x_mu = s_mu v / sqrt(N) + sqrt(delta) z_mu``.
    y : ndarray of int, shape (M,)
        Labels in {0, 1}.
    v : ndarray, shape (N,)
        The cluster direction (normalised to ``|v|^2 = N`` when requested).
    """

    X: np.ndarray
    y: np.ndarray
    v: np.ndarray

    @property
    def signs(self) -> np.ndarray:
        """Labels as signs ``s = 2 y - 1``."""
        return 2.0 * self.y - 1.0


def draw_cluster_direction(
    n_features: int,
    rng: np.random.Generator,
    *,
    normalise: bool = True,
    support: int | None = None,
) -> np.ndarray:
    """Draw ``v ~ N(0, I_N)``; with ``normalise`` rescale it to ``|v|^2 = N`` exactly.

    Normalising removes the O(1/sqrt(N)) fluctuation of ``|v|^2 / N`` that otherwise shifts
    ``m`` coherently across a sweep sharing seeds (docs/numerics.md §6). With
    ``support = k`` (a student trained on the first ``k`` coordinates) the two blocks are
    normalised separately, ``|v[:k]|^2 = k`` and ``|v[k:]|^2 = N - k`` (so still
    ``|v|^2 = N``): the student's own signal ``|v[:k]|^2 / N`` otherwise fluctuates by
    ``sqrt(2/k)`` relative, ~4% at k = 1000, shared by every point simulated with that seed.
    The N -> inf limit is unchanged either way.
    """
    n_features = check_count("n_features", n_features)
    v = rng.standard_normal(n_features)
    if normalise:
        blocks = [slice(0, n_features)]
        if support is not None:
            support = check_count("support", support)
            if support < n_features:
                blocks = [slice(0, support), slice(support, n_features)]
        for block in blocks:
            size = block.stop - block.start
            v[block] *= np.sqrt(size) / np.linalg.norm(v[block])
    return v


def sample_mixture(
    n_features: int,
    n_samples: int,
    rho: float,
    delta: float,
    rng: np.random.Generator,
    *,
    v: np.ndarray | None = None,
    exact_class_counts: bool = True,
    normalise_v: bool = True,
) -> MixtureSample:
    """Sample ``n_samples`` points of the mixture in dimension ``n_features``.

    The mixture of paper Eq. 10 (docs/model.md §1).

    Parameters
    ----------
    n_features, n_samples : int
        N and M.
    rho, delta : float
        Cluster balance and noise variance.
    rng : numpy.random.Generator
        Source of randomness (reproducible).
    v : ndarray, optional
        Cluster direction to reuse (e.g. for a test set); drawn if omitted.
    exact_class_counts : bool
        Use exactly ``round(rho M)`` positive labels (in random order) instead of i.i.d.
        Bernoulli labels: a variance reduction with the same N -> inf limit.
    normalise_v : bool
        Passed to :func:`draw_cluster_direction` when ``v`` is drawn.
    """
    n_features = check_count("n_features", n_features)
    n_samples = check_count("n_samples", n_samples)
    rho = check_open_unit("rho", rho)
    delta = check_positive("delta", delta)
    if v is None:
        v = draw_cluster_direction(n_features, rng, normalise=normalise_v)
    if exact_class_counts:
        y = np.zeros(n_samples, dtype=np.int64)
        y[: int(round(rho * n_samples))] = 1
        rng.shuffle(y)
    else:
        y = (rng.random(n_samples) < rho).astype(np.int64)
    s = 2.0 * y - 1.0
    X = rng.standard_normal((n_samples, n_features))
    X *= np.sqrt(delta)
    X += np.outer(s, v / np.sqrt(n_features))
    return MixtureSample(X=X, y=y, v=v)
