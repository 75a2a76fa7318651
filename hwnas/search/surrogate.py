"""Surrogates for expensive objectives inside the predictor-accelerated loop, refitted on everything
validated so far: bootstrap ensembles whose members the loop samples from (Thompson sampling)."""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from hwnas.space import Arch, SearchSpace

__all__ = ["ArchFeatures", "BootstrapEnsemble", "EncodedRegressor", "ExtraFeature", "OperatorCounts",
           "SelectedByOutOfBag", "SurrogateFactory", "additive_surrogate", "default_surrogate", "latency_surrogate",
           "lookup_surrogate", "loop_surrogate", "ridge_surrogate"]

ExtraFeature = Callable[[Sequence[Arch]], np.ndarray]
"""One more numeric column per arch for a surrogate (say, a model of a related task's predictions)."""


class EncodedRegressor:
    """Fits a scikit-learn-style regressor on `space.encode(archs, encoding)`; `predict(archs) -> ndarray`."""

    def __init__(self, space: SearchSpace, estimator: Any, encoding: str = "onehot"):
        self.space = space
        self.estimator = estimator
        self.encoding = encoding

    def fit(self, archs: Sequence[Arch], y: np.ndarray) -> EncodedRegressor:
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


_Rows = tuple[np.ndarray, np.ndarray]
_ROW_CACHE: weakref.WeakKeyDictionary[SearchSpace, dict[str, _Rows]] = weakref.WeakKeyDictionary()


class ArchFeatures:
    """The space's surrogate encoding of each arch (`space.surrogate_encoding`: by default the one-hot encoding
    of its effective form, where choices that cannot change the output are canonicalised away) plus its
    log-FLOPs, log-params and the space's structure descriptors (`space.descriptors`: on NAS-Bench-201 the
    cell's op counts, depth, paths and whether it is residual), those standardised on the archs of the last
    `fit`. They cost nothing to compute and carry much of what decides both accuracy and latency, which a
    one-hot encoding alone has to learn from many samples. `extra`, if given, maps archs to one more numeric
    column (an `ExtraFeature`, e.g. a `hwnas.search.prior.PriorModel`'s predictions), standardised with the rest."""

    def __init__(self, space: SearchSpace, extra: ExtraFeature | None = None):
        self.space = space
        self.extra = extra
        self._cache = _ROW_CACHE.setdefault(space, {})  # shared by every surrogate of this space object
        self.mean_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None

    def _rows(self, archs: Sequence[Arch]) -> tuple[np.ndarray, np.ndarray]:
        """(encoding, numeric) rows, computed once per arch: the pool the loop predicts on is mostly the same
        archs round after round."""
        missing = [a for a in archs if a.key not in self._cache]
        if missing:
            encoding = self.space.surrogate_encoding(missing)
            extra = self.space.descriptors(missing)
            for a, enc, d in zip(missing, encoding, extra, strict=True):
                e = self.space.effective(a)
                self._cache[a.key] = (enc, np.concatenate(
                    [[np.log1p(self.space.flops(e)), np.log1p(self.space.params(e))], d]))
        rows = [self._cache[a.key] for a in archs]
        numeric = np.array([r[1] for r in rows], dtype=float).reshape(len(archs), -1)
        if self.extra is not None:
            numeric = np.hstack([numeric, np.asarray(self.extra(archs), dtype=float).reshape(-1, 1)])
        return np.array([r[0] for r in rows], dtype=float).reshape(len(archs), -1), numeric

    def fit(self, archs: Sequence[Arch]) -> ArchFeatures:
        numeric = self._rows(archs)[1]
        self.mean_ = numeric.mean(axis=0)
        std = numeric.std(axis=0)
        self.scale_ = np.where(std > 0, std, 1.0)
        return self

    def __call__(self, archs: Sequence[Arch]) -> np.ndarray:
        encoding, numeric = self._rows(archs)
        if self.mean_ is not None:
            numeric = (numeric - self.mean_) / self.scale_
        return np.hstack([encoding, numeric])


_COUNT_CACHE: weakref.WeakKeyDictionary[SearchSpace, dict[str, dict[str, int]]] = weakref.WeakKeyDictionary()


class OperatorCounts:
    """How many times an arch's effective form runs each operator (`space.operators`: the entries of a
    device's latency table), one column per operator seen at `fit`. A linear model on these is a latency lookup
    table whose entries are fitted from whole-network measurements, as nn-Meter's kernel sums are: latency is
    close to additive over the operators a network runs, and a model with a handful of such terms learns it
    from a few dozen measurements where one over every choice of every position needs hundreds."""

    def __init__(self, space: SearchSpace):
        self.space = space
        self._cache = _COUNT_CACHE.setdefault(space, {})
        self.columns_: dict[str, int] = {}

    def _counts(self, archs: Sequence[Arch]) -> list[dict[str, int]]:
        for a in archs:
            if a.key not in self._cache:
                counts: dict[str, int] = {}
                for op in self.space.operators(self.space.effective(a)):
                    counts[op.key] = counts.get(op.key, 0) + 1
                self._cache[a.key] = counts
        return [self._cache[a.key] for a in archs]

    def fit(self, archs: Sequence[Arch]) -> OperatorCounts:
        seen = sorted({k for c in self._counts(archs) for k in c})
        self.columns_ = {k: i for i, k in enumerate(seen)}
        return self

    def __call__(self, archs: Sequence[Arch]) -> np.ndarray:
        """Operators not seen at `fit` have no column: the model has no estimate of their cost to add."""
        X = np.zeros((len(archs), len(self.columns_)))
        for i, counts in enumerate(self._counts(archs)):
            for k, n in counts.items():
                j = self.columns_.get(k)
                if j is not None:
                    X[i, j] = n
        return X


class BootstrapEnsemble:
    """Members on `ArchFeatures`, each fitted on a bootstrap resample of the validated archs: a ridge
    regression (the penalty chosen once by cross-validation on all of them), `trees` extra trees, or the mean
    of both. With `additive`, the ridge is on `OperatorCounts` instead (a fitted lookup table) and the trees,
    on `ArchFeatures`, fit what it leaves: each member predicts their sum. Targets are Yeo-Johnson transformed
    unless `power_transform=False`. The members' spread is the uncertainty: the loop draws one member per pick
    (Thompson sampling), so it tries archs the members disagree on as well as those they agree are good.
    With `extra_feature` (say, a fitted `hwnas.search.prior.PriorModel`'s `predict`), its value is one more
    feature."""

    has_std = True

    def __init__(self, space: SearchSpace, n_members: int = 16, seed: int = 0, trees: int = 0, ridge: bool = True,
                 power_transform: bool = True, additive: bool = False, extra_feature: ExtraFeature | None = None):
        if not (ridge or trees):
            raise ValueError("a member needs a ridge regression or trees (trees > 0)")
        if additive and not ridge:
            raise ValueError("an additive ensemble needs its ridge regression (the fitted lookup table)")
        self.features = ArchFeatures(space, extra=extra_feature)
        self.counts = OperatorCounts(space) if additive else None
        self.n_members = n_members
        self.trees = trees
        self.ridge = ridge
        self.power_transform = power_transform
        self.seed = seed

    def fit(self, archs: Sequence[Arch], y: np.ndarray, noise_std: np.ndarray | None = None) -> BootstrapEnsemble:
        """Fit the members; `noise_std`, where known, is each value's measurement standard deviation (from
        repeated measurements; NaN where unknown), a floor under the noise estimated from out-of-bag errors."""
        from sklearn.ensemble import ExtraTreesRegressor
        from sklearn.linear_model import Ridge, RidgeCV

        X = self.features.fit(archs)(archs)
        X_ridge = self.counts.fit(archs)(archs) if self.counts is not None else X
        y = np.asarray(y, dtype=float)
        self.target_ = None
        if self.power_transform and np.ptp(y) > 0:
            # Yeo-Johnson towards a Gaussian target (as HEBO does): a long tail of failed archs in top-1 or of
            # slow ones in latency no longer dominates the squared error that ridge and the trees minimise
            from sklearn.preprocessing import PowerTransformer

            self.target_ = PowerTransformer(method="yeo-johnson").fit(y[:, None])
            self.y_range_ = (float(y.min()), float(y.max()))
            y = self.target_.transform(y[:, None]).ravel()
            self.t_range_ = (float(y.min()), float(y.max()))
        alpha = float(RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(X_ridge, y).alpha_) if self.ridge else 0.0
        rng = np.random.default_rng(self.seed)
        self.members_ = []
        bags = []
        for _ in range(self.n_members):
            idx = rng.integers(0, len(y), len(y))
            bags.append(idx)
            ridge = Ridge(alpha=alpha).fit(X_ridge[idx], y[idx]) if self.ridge else None
            trees = None
            if self.trees:
                target = y[idx] - ridge.predict(X_ridge[idx]) if self.counts is not None else y[idx]
                trees = ExtraTreesRegressor(n_estimators=self.trees, random_state=int(rng.integers(1 << 31)),
                                            n_jobs=1).fit(X[idx], target)
            self.members_.append((ridge, trees))
        self.noise_t_ = self._noise(X, X_ridge, y, bags, noise_std)
        return self

    def _noise(self, X: np.ndarray, X_ridge: np.ndarray, y: np.ndarray, bags: list[np.ndarray],
               noise_std: np.ndarray | None) -> float:
        """The measurement noise's standard deviation in the (transformed) target's units: the out-of-bag
        error of the members' mean that their spread does not explain (the rest is noise no model of the
        arch can predict), at least the median of the given per-value `noise_std`. Keeps each value's
        out-of-bag prediction, in the objective's units, as `oob_` (NaN where every member saw it)."""
        n = len(y)
        P = self._predict_transformed(X, X_ridge)
        oob = np.ones((len(bags), n), dtype=bool)
        for m, idx in enumerate(bags):
            oob[m, idx] = False
        counts = oob.sum(axis=0)
        have = counts > 0
        noise = 0.0
        self.oob_ = np.full(n, np.nan)  # each value's out-of-bag prediction, in the objective's units
        if have.any():
            mean_oob = np.where(oob, P, 0.0).sum(axis=0)[have] / counts[have]
            self.oob_[have] = self._untransform(mean_oob[None, :])[0] if self.target_ is not None else mean_oob
        if have.sum() >= 3:
            resid2 = float(np.mean((y[have] - mean_oob) ** 2))
            spread2 = float(np.mean(P[:, have].var(axis=0)))
            noise = float(np.sqrt(max(resid2 - spread2, 0.0)))
        if noise_std is not None:
            given = np.asarray(noise_std, dtype=float)
            if np.isfinite(given).any():
                slope = self._slope(y) if self.target_ is not None else np.ones(n)
                noise = max(noise, float(np.nanmedian(given * slope)))
        return noise

    def _slope(self, y_t: np.ndarray) -> np.ndarray:
        """d(transformed)/d(value) at each transformed value, numerically."""
        lo = self._untransform((y_t - 1e-3)[None, :])[0]
        hi = self._untransform((y_t + 1e-3)[None, :])[0]
        return 2e-3 / np.maximum(np.abs(hi - lo), 1e-12)

    def _predict_transformed(self, X: np.ndarray, X_ridge: np.ndarray) -> np.ndarray:
        rows = []
        for ridge, trees in self.members_:
            if self.counts is not None:  # the lookup table plus the trees' correction
                rows.append(ridge.predict(X_ridge) + (trees.predict(X) if trees is not None else 0.0))
            else:
                rows.append(np.mean([m.predict(X) for m in (ridge, trees) if m is not None], axis=0))
        return np.stack(rows)

    def predict_members(self, archs: Sequence[Arch]) -> np.ndarray:
        """(n_members, n) predictions, one row per member."""
        X = self.features(archs)
        P = self._predict_transformed(X, self.counts(archs) if self.counts is not None else X)
        return self._untransform(P) if self.target_ is not None else P

    def _untransform(self, P: np.ndarray) -> np.ndarray:
        """Back to the objective's units. Predictions may reach one standard deviation past the values seen;
        where the inverse transform has no value that far out, the nearest value seen stands in."""
        lo, hi = self.t_range_
        Z = np.clip(P, lo - 1.0, hi + 1.0)
        with np.errstate(invalid="ignore", over="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # sklearn warns of the NaNs handled below
            Y = self.target_.inverse_transform(Z.reshape(-1, 1)).reshape(P.shape)
        bad = ~np.isfinite(Y)
        Y[bad] = np.where(Z[bad] > (lo + hi) / 2, self.y_range_[1], self.y_range_[0])
        return Y

    def predict(self, archs: Sequence[Arch], return_std: bool = False,
                noise: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """The members' mean; with `return_std` also their spread, or with `noise` the predictive standard
        deviation of a measurement: the spread and the measurement noise together (`noise_std_`), so a
        noisy objective is never predicted more confidently than it can be measured."""
        P = self.predict_members(archs)
        if not return_std:
            return P.mean(axis=0)
        if not noise or not self.noise_t_:
            return P.mean(axis=0), P.std(axis=0)
        X = self.features(archs)
        T = self._predict_transformed(X, self.counts(archs) if self.counts is not None else X)
        mean_t = T.mean(axis=0)
        total = np.sqrt(T.var(axis=0) + self.noise_t_ ** 2)
        if self.target_ is None:
            return P.mean(axis=0), total
        ends = self._untransform(np.stack([mean_t - total, mean_t + total]))
        return P.mean(axis=0), np.abs(ends[1] - ends[0]) / 2

    def noise_std_at(self, values: np.ndarray) -> np.ndarray:
        """The estimated measurement noise's standard deviation, in the objective's units, at `values`."""
        values = np.asarray(values, dtype=float)
        if self.target_ is None:
            return np.full(values.shape, self.noise_t_)
        t = self.target_.transform(values.reshape(-1, 1)).ravel()
        ends = self._untransform(np.stack([t - self.noise_t_, t + self.noise_t_]))
        return (np.abs(ends[1] - ends[0]) / 2).reshape(values.shape)


class SelectedByOutOfBag:
    """Of several `BootstrapEnsemble`s fitted on the same archs, the one whose out-of-bag predictions erred
    least (mean absolute relative error where every value is positive, else mean absolute error): model
    capacity chosen on the samples at hand, at the cost of fitting each. `chosen_` is its index, `chosen_name`
    its name in `names`."""

    has_std = True

    def __init__(self, candidates: Sequence[BootstrapEnsemble], names: Sequence[str] = ()):
        self.candidates = list(candidates)
        self.names = list(names) or [f"model {i}" for i in range(len(self.candidates))]

    @property
    def chosen_name(self) -> str:
        return self.names[self.chosen_]

    def fit(self, archs: Sequence[Arch], y: np.ndarray, noise_std: np.ndarray | None = None) -> SelectedByOutOfBag:
        y = np.asarray(y, dtype=float)
        for c in self.candidates:
            c.fit(archs, y, noise_std=noise_std)
        P = np.stack([c.oob_ for c in self.candidates])
        both = np.all(np.isfinite(P), axis=0)
        if both.sum() < 3:
            self.chosen_ = 0
        else:
            err = np.abs(P[:, both] - y[both])
            if np.all(y[both] > 0):
                err = err / y[both]
            self.chosen_ = int(np.argmin(err.mean(axis=1)))
        return self

    @property
    def model_(self) -> BootstrapEnsemble:
        return self.candidates[self.chosen_]

    @property
    def noise_t_(self) -> float:
        return self.model_.noise_t_

    def predict_members(self, archs: Sequence[Arch]) -> np.ndarray:
        return self.model_.predict_members(archs)

    def predict(self, archs: Sequence[Arch], return_std: bool = False,
                noise: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        return self.model_.predict(archs, return_std=return_std, noise=noise)

    def noise_std_at(self, values: np.ndarray) -> np.ndarray:
        return self.model_.noise_std_at(values)


SurrogateFactory = Callable[[SearchSpace, str, int], Any]


def default_surrogate(space: SearchSpace, objective: str, seed: int,
                      extra_feature: ExtraFeature | None = None) -> BootstrapEnsemble:
    """The loop's default surrogate for one expensive objective: 12 bootstrap members, each the mean of a
    ridge regression (additive effects) and 25 extra trees (interactions, which decide which archs are the
    most accurate). On NAS-Bench-201 the trees find the most accurate archs where ridge alone does not.
    It serves latency too: `additive_surrogate` predicts latency better from few archs, but in the loop it did
    not reach 99% of the NAS-Bench-201 hypervolume in fewer evaluations on both devices (see the README).
    `extra_feature` adds one more feature (`hwnas.search.prior.prior_surrogate` adds a prior's prediction)."""
    return BootstrapEnsemble(space, n_members=12, seed=seed, trees=25, extra_feature=extra_feature)


def additive_surrogate(space: SearchSpace, objective: str, seed: int) -> BootstrapEnsemble:
    """For latency: 12 bootstrap members, each a lookup table fitted on `OperatorCounts` plus 25 extra trees on
    `ArchFeatures` for what the table misses, on the untransformed target (a transform would undo the sum).
    From 20 NAS-Bench-201 archs it predicts Raspberry Pi 4 and Pixel 3 latency to 7% at the median, where
    `default_surrogate` is off by 10% and 13%; its trees add the members' disagreement the loop explores with."""
    return BootstrapEnsemble(space, n_members=12, seed=seed, trees=25, power_transform=False, additive=True)


def lookup_surrogate(space: SearchSpace, objective: str, seed: int) -> BootstrapEnsemble:
    """For latency: 12 bootstrap members, each a lookup table fitted on `OperatorCounts` alone (no trees, no
    transform): few terms, so measurement noise moves it least."""
    return BootstrapEnsemble(space, n_members=12, seed=seed, power_transform=False, additive=True)


def latency_surrogate(space: SearchSpace, objective: str, seed: int) -> SelectedByOutOfBag:
    """For a measured latency: `default_surrogate` or `lookup_surrogate`, whichever predicted the validated
    archs better out of bag at this fit. On a device whose every measurement carries 15% noise (NAS-Bench-201's
    Pi 4 latency times lognormal(0.15)), a lookup table fitted on 60 archs is off the noise-free latency of the
    most accurate archs by 3.7% at the median, the default's trees by 7%: they fit the noise."""
    return SelectedByOutOfBag([default_surrogate(space, objective, seed), lookup_surrogate(space, objective, seed)],
                              ("ensemble", "lookup table"))


def loop_surrogate(space: SearchSpace, objective: str, seed: int) -> BootstrapEnsemble | SelectedByOutOfBag:
    """The accelerated loop's surrogate: `latency_surrogate` for a latency (an objective named `latency...`,
    as hwnas names them), `default_surrogate` for the rest."""
    if objective.startswith("latency"):
        return latency_surrogate(space, objective, seed)
    return default_surrogate(space, objective, seed)


def ridge_surrogate(space: SearchSpace, objective: str, seed: int) -> BootstrapEnsemble:
    """Bootstrap ridge members only: several times faster to fit, weaker at ranking the best archs."""
    return BootstrapEnsemble(space, n_members=12, seed=seed)

