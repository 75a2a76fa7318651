"""Surrogates for expensive objectives inside the predictor-accelerated loop: a regressor on the space's
one-hot encoding, refitted on everything validated so far."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from hwnas.space import Arch, SearchSpace

__all__ = ["EncodedRegressor", "SurrogateFactory", "default_surrogate"]


class EncodedRegressor:
    """Fits a scikit-learn-style regressor on `space.encode(archs, encoding)`; `predict(archs) -> ndarray`."""

    def __init__(self, space: SearchSpace, estimator: Any, encoding: str = "onehot"):
        self.space = space
        self.estimator = estimator
        self.encoding = encoding

    def fit(self, archs: Sequence[Arch], y: np.ndarray) -> EncodedRegressor:
        import warnings

        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():  # a kernel bound reached on a few samples is expected, not news
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.estimator.fit(self.space.encode(archs, self.encoding), np.asarray(y, dtype=float))
        return self

    def predict(self, archs: Sequence[Arch], return_std: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        X = self.space.encode(archs, self.encoding)
        if return_std:
            mean, std = self.estimator.predict(X, return_std=True)
            return np.asarray(mean, dtype=float).reshape(-1), np.asarray(std, dtype=float).reshape(-1)
        return np.asarray(self.estimator.predict(X), dtype=float).reshape(-1)

    @property
    def has_std(self) -> bool:
        import inspect

        return "return_std" in inspect.signature(self.estimator.predict).parameters


class _RidgeForestBlend:
    """Mean of a ridge regression (good at additive effects such as latency) and extra trees (interactions,
    such as accuracy); robust with the 10s to 100s of samples the loop has."""

    def __init__(self, seed: int = 0, n_estimators: int = 200):
        self.seed = seed
        self.n_estimators = n_estimators

    def fit(self, X: np.ndarray, y: np.ndarray) -> _RidgeForestBlend:
        from sklearn.ensemble import ExtraTreesRegressor
        from sklearn.linear_model import RidgeCV

        self.ridge_ = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(X, y)
        self.trees_ = ExtraTreesRegressor(n_estimators=self.n_estimators, min_samples_leaf=1,
                                          random_state=self.seed, n_jobs=1).fit(X, y)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return 0.5 * (self.ridge_.predict(X) + self.trees_.predict(X))


def gaussian_process(space: SearchSpace, objective: str, seed: int) -> EncodedRegressor:
    """A Gaussian process (RBF + noise on the one-hot encoding): predictions with an uncertainty, which the
    loop turns into optimism about archs unlike those validated."""
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    kernel = ConstantKernel(1.0, (1e-3, 1e3)) * RBF(2.0, (0.1, 100.0)) + WhiteKernel(1e-2, (1e-6, 1.0))
    return EncodedRegressor(space, GaussianProcessRegressor(kernel, normalize_y=True, random_state=seed,
                                                            n_restarts_optimizer=0))


SurrogateFactory = Callable[[SearchSpace, str, int], Any]


def default_surrogate(space: SearchSpace, objective: str, seed: int) -> EncodedRegressor:
    """The loop's default surrogate for one expensive objective."""
    from sklearn.linear_model import RidgeCV

    return EncodedRegressor(space, RidgeCV(alphas=np.logspace(-3, 3, 13)))
