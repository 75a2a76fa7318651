"""The Predictor base class: a scikit-learn style estimator over a space's archs, saved as versioned JSON."""

from __future__ import annotations

import inspect
import json
import math
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from hwnas import space as spaces
from hwnas.errors import PredictorError
from hwnas.files import atomic_write_text, read_json_file
from hwnas.space import Arch, SearchSpace

__all__ = ["Predictor", "FORMAT", "FORMAT_VERSION", "MAX_LATENCY_MS", "MIN_LATENCY_MS", "check_header",
           "read_predictor_json", "resolve_space", "conformal_halfwidth"]

FORMAT = "hwnas-predictor"
FORMAT_VERSION = 1
MAX_LATENCY_MS = 1e6  # 1000 s: beyond it a value is a damaged file or a wild extrapolation, not a latency
MIN_LATENCY_MS = 1e-6  # the least latency predict returns (a table of zeros, a calibration that went below 0)


CV_SMALL_N = 10  # cross-validation scores: at this many samples the level is the jackknife+ worst case (1 - 2a)


def conformal_halfwidth(scores: np.ndarray, coverage: float, source: str = "held-out") -> float:
    """Split-conformal quantile of sorted nonconformity scores: the ceil((n+1) * coverage)-th smallest, or
    infinity when there are too few scores for that coverage (n < coverage / (1 - coverage)).

    Scores from cross-validation (`source="cross-validation"`) are residuals of models fitted on fewer samples
    and chosen on the same folds, around a model fitted on all of them: their guarantee lies between 1 - 2a
    (jackknife+/CV+, Barber et al. 2021) and 1 - a (a = 1 - coverage), nearer the worst case the fewer the
    samples. So their miscoverage is taken as a * n / (n + 10): half of a at 10 samples, a as n grows; with
    fewer than about 28 such scores a 95% interval is unbounded rather than a claim the data cannot back."""
    if not 0 < coverage < 1:
        raise PredictorError(f"coverage must be between 0 and 1 (e.g. 0.95), got {coverage!r}")
    n = len(scores)
    if source == "cross-validation" and n:
        coverage = 1 - (1 - coverage) * n / (n + CV_SMALL_N)
    k = math.ceil((n + 1) * coverage - 1e-9)
    return float(scores[k - 1]) if 0 < k <= n else math.inf


def resolve_space(space: Any) -> SearchSpace:
    """A SearchSpace from a space object, a registered name, or a `space.config()` dict."""
    if isinstance(space, SearchSpace):
        return space
    if space is None:
        raise PredictorError("this predictor needs a space: pass space='ofa-mbv3' (or a SearchSpace)")
    if isinstance(space, str):
        return spaces.create(space)
    if isinstance(space, dict):
        return spaces.from_config(space)
    raise PredictorError(f"space must be a SearchSpace, a space name or a space config, got {type(space).__name__}")


class Predictor(ABC):
    """A latency (or accuracy) predictor for one search space.

    scikit-learn conventions: `__init__` only stores its arguments; `fit(archs, y)` sets `_`-suffixed
    state and returns self; `predict(archs) -> np.ndarray` is vectorised. `archs` may be Arch objects,
    arch dicts, arch keys, or a 2-D integer array in the space's ordinal encoding.
    """

    name: ClassVar[str] = ""
    target: ClassVar[str] = "latency_ms"

    # ------------------------------------------------------------ sklearn API
    @classmethod
    def _get_param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [p.name for p in signature.parameters.values() if p.name != "self" and p.kind != p.VAR_KEYWORD]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params: Any) -> Predictor:
        valid = self._get_param_names()
        for key, value in params.items():
            if key not in valid:
                raise PredictorError(f"{self.name} has no parameter {key!r}; parameters: {', '.join(valid)}")
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={_short_repr(v)}" for k, v in self.get_params().items() if v is not None)
        return f"{type(self).__name__}({args})"

    @abstractmethod
    def fit(self, archs: Any, y: Any = None) -> Predictor:
        """Learn from archs and their measured values (ms); returns self."""

    @abstractmethod
    def _predict(self, archs: Any) -> np.ndarray:
        """The model's raw predictions; `predict` checks them."""

    def predict(self, archs: Any) -> np.ndarray:
        """Predicted values (ms for latency predictors), one per arch: finite, and for latency within
        [floor, MAX_LATENCY_MS] (below the floor is raised to it; beyond the maximum is a PredictorError)."""
        values = np.asarray(self._predict(archs), dtype=float).reshape(-1)
        bad = ~np.isfinite(values)
        if self.target == "latency_ms":
            bad |= values > MAX_LATENCY_MS
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise PredictorError(f"{self.name} predicted {values[i]!r} for arch #{i} ({int(bad.sum())} of "
                                 f"{values.size} not a latency in ms); the predictor file is damaged or the arch is "
                                 "far outside what it was fitted on: refit it with `hwnas fit`")
        if self.target == "latency_ms":
            values = np.maximum(values, self.__dict__.get("floor_ms_") or MIN_LATENCY_MS)
        return values

    def predict_interval(self, archs: Any, coverage: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """(lo, hi) split-conformal prediction intervals in ms: with probability `coverage` a new measurement
        falls inside, if it behaves like the held-out measurements the predictor was calibrated on (its
        cross-validation residuals at fit time, or `conformalize(archs, ms)`). `hi` is inf when there were
        too few of them for this coverage (for 95%: 19 held-out residuals, about 28 cross-validation ones)."""
        return self.interval_from(self.predict(archs), coverage)

    def interval_from(self, predicted: np.ndarray, coverage: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """`predict_interval` for predictions already made."""
        q = self.interval_halfwidth(coverage)
        predicted = np.asarray(predicted, dtype=float)
        if self.target == "latency_ms":
            return predicted * math.exp(-q), predicted * math.exp(q) if math.isfinite(q) else np.full_like(
                predicted, math.inf)
        return predicted - q, predicted + q

    def interval_halfwidth(self, coverage: float = 0.95) -> float:
        """The conformal quantile: for latency a log ratio (interval = pred * exp(+-q)), else absolute."""
        conformal = self.__dict__.get("conformal_")
        if not conformal:
            raise PredictorError(f"this {self.name} predictor has no calibration for intervals; refit it with this "
                                 "hwnas, or call conformalize(archs, measured_ms) with held-out measurements")
        return conformal_halfwidth(np.asarray(conformal["scores"], dtype=float), coverage,
                                   str(conformal.get("source", "held-out")))

    def conformalize(self, archs: Any, y: Any, source: str = "held-out") -> Predictor:
        """Calibrate the intervals on measurements the predictor was not fitted on (split conformal)."""
        self._check_fitted()
        archs = self._archs(archs)
        y = self._targets(y, len(archs), positive=self.target == "latency_ms")
        self._set_conformal(y, self.predict(archs), source)
        return self

    def _set_conformal(self, y: np.ndarray, predicted: np.ndarray, source: str) -> None:
        """Store the sorted nonconformity scores of out-of-sample predictions (|log ratio| for latency)."""
        y, predicted = np.asarray(y, dtype=float), np.asarray(predicted, dtype=float)
        if self.target == "latency_ms":
            scores = np.abs(np.log(y / np.maximum(predicted, MIN_LATENCY_MS)))
        else:
            scores = np.abs(y - predicted)
        self.conformal_ = {"source": source, "n": int(len(scores)),
                           "scores": [float(f"{v:.6g}") for v in np.sort(scores)]}

    def components(self, archs: Any) -> np.ndarray:
        """Per-stage parts of the prediction, shape (n, k), summing to `predict`. Default: one column."""
        return self.predict(archs)[:, None]

    # ------------------------------------------------------------- helpers
    @property
    def space_(self) -> SearchSpace:
        cached = self.__dict__.get("_space_cache")
        if cached is None or cached[0] is not self.space:
            cached = (self.space, resolve_space(self.space))
            self.__dict__["_space_cache"] = cached
        return cached[1]

    def _archs(self, archs: Any) -> list[Arch]:
        """Validate archs against this predictor's space (InvalidArchError names the bad field)."""
        sp = self.space_
        if isinstance(archs, np.ndarray) and archs.dtype.kind in "iu" and archs.ndim == 2:
            return sp.decode(archs)
        if isinstance(archs, (Arch, dict, str)):
            archs = [archs]
        try:
            items = list(archs)
        except TypeError:
            raise PredictorError(f"archs must be a list of archs, got {type(archs).__name__}") from None
        return [sp.validate(a) for a in items]

    @staticmethod
    def _targets(y: Any, n: int, positive: bool = True) -> np.ndarray:
        if y is None:
            raise PredictorError("fit needs measured values y, one per arch")
        values = np.asarray(y, dtype=float).reshape(-1)
        if values.shape[0] != n:
            raise PredictorError(f"fit got {n} archs but {values.shape[0]} values; give one value per arch")
        if n == 0:
            raise PredictorError("fit needs at least one measured arch")
        if not np.all(np.isfinite(values)):
            raise PredictorError("fit got a value that is NaN or infinite; drop failed measurements first")
        if positive and np.any(values <= 0):
            raise PredictorError("fit got a latency <= 0 ms; latencies must be positive")
        return values

    def _check_fitted(self) -> None:
        if not self.__dict__.get("fitted_", False):
            raise PredictorError(f"this {self.name} predictor is not fitted yet; call fit() first")

    def _fitted_archs(self, archs: Any) -> list[Arch]:
        """Where every prediction starts: a PredictorError unless fitted, then the validated archs."""
        self._check_fitted()
        return self._archs(archs)

    def _fitted(self, n_fit: int, y: np.ndarray | None = None) -> Predictor:
        """Where every `fit` on measurements ends: note how many it learnt from, mark fitted, return self.
        With the measured latencies `y`, predictions are floored at a fifth of the fastest one."""
        self.n_fit_ = n_fit
        if y is not None and self.target == "latency_ms" and len(y):
            self.floor_ms_ = float(0.2 * np.min(y))
        self.fitted_ = True
        return self

    # ---------------------------------------------------------------- JSON
    def _params_json(self) -> dict[str, Any]:
        params = {}
        for key, value in self.get_params().items():
            if key == "space":
                value = self.space_.config()
            elif isinstance(value, Predictor):
                value = value.to_json()
            elif isinstance(value, Path):
                value = str(value)
            params[key] = value
        return params

    @abstractmethod
    def _state_json(self) -> dict[str, Any]:
        """Learned state as JSON-able values."""

    @abstractmethod
    def _load_state(self, state: dict[str, Any]) -> None:
        """Restore learned state written by `_state_json`."""

    def to_json(self) -> dict[str, Any]:
        self._check_fitted()
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "predictor": self.name,
            "target": self.target,
            "space": self.space_.config(),
            "params": self._params_json(),
            "meta": dict(self.__dict__.get("meta_", {})),
            "state": self._state_json(),
            "bounds": {"floor_ms": self.__dict__.get("floor_ms_")},
            "conformal": self.__dict__.get("conformal_"),
        }

    def save(self, path: str | Path, meta: dict[str, Any] | None = None) -> Path:
        """Write the fitted predictor as JSON, atomically. Refuses to replace a file of a newer format."""
        path = Path(path)
        if meta is not None:
            self.meta_ = {**self.__dict__.get("meta_", {}), **meta}
        if path.exists():
            _refuse_newer(path)
        text = json.dumps(self.to_json(), indent=1, sort_keys=False)
        atomic_write_text(path, text + "\n")
        return path

    @classmethod
    def restore(cls, params: dict[str, Any], state: dict[str, Any], meta: dict[str, Any] | None = None,
                bounds: dict[str, Any] | None = None, conformal: dict[str, Any] | None = None) -> Predictor:
        """A fitted predictor of this class from saved `params` (nested predictors already built) and `state`;
        `hwnas.predictors.registry.predictor_from_json` finds the class by name and calls this."""
        unknown = set(params) - set(cls._get_param_names())
        if unknown:
            raise PredictorError(f"predictor file has unknown parameter(s) {sorted(unknown)} for {cls.name}")
        obj = cls(**params)
        try:
            obj._load_state(state)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise PredictorError(f"predictor state is malformed ({type(exc).__name__}: {exc}); refit it") from None
        obj.meta_ = dict(meta or {})
        floor = (bounds or {}).get("floor_ms")
        if floor is not None:
            obj.floor_ms_ = _checked_number(floor, "bounds.floor_ms", positive=True)
        if conformal is not None:
            obj.conformal_ = _checked_conformal(conformal)
        obj.fitted_ = True
        return obj


def _checked_number(value: Any, field: str, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or abs(value) > MAX_LATENCY_MS or (positive and value <= 0):
        raise PredictorError(f"{field} is {value!r}, not a {'positive ' if positive else ''}finite number "
                             f"below {MAX_LATENCY_MS:g}; refit it with `hwnas fit`")
    return float(value)


def _checked_count(value: Any, field: str, minimum: int = 0, maximum: int = 1_000_000) -> int:
    """A saved count (stages, columns, samples): an integer in [minimum, maximum], else a PredictorError."""
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise PredictorError(f"{field} is {value!r}, not a whole number from {minimum} to {maximum}; refit it with "
                             "`hwnas fit`")
    return value


def _checked_conformal(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict) or not isinstance(data.get("scores"), list):
        raise PredictorError("conformal is not {source, n, scores: [...]}; refit it with `hwnas fit`")
    scores = [_checked_number(v, f"conformal.scores[{i}]") for i, v in enumerate(data["scores"])]
    if any(v < 0 for v in scores) or scores != sorted(scores):
        raise PredictorError("conformal.scores must be sorted and >= 0; refit it with `hwnas fit`")
    return {"source": str(data.get("source", "")), "n": len(scores), "scores": scores}


def check_header(data: Any, source: str) -> None:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise PredictorError(f"{source} is not an hwnas predictor file (no 'format': '{FORMAT}')")
    version = data.get("format_version")
    if not isinstance(version, int):
        raise PredictorError(f"{source} has no integer format_version; it is damaged; refit it with `hwnas fit`")
    if version > FORMAT_VERSION:
        raise PredictorError(f"{source} has predictor format {version}, newer than this hwnas understands "
                             f"({FORMAT_VERSION}); upgrade hwnas or refit the predictor")
    for key in ("predictor", "space"):
        if key not in data:
            raise PredictorError(f"{source} lacks the {key!r} field; it is damaged; refit it with `hwnas fit`")


def read_predictor_json(path: str | Path) -> dict[str, Any]:
    data = read_json_file(path, PredictorError, "predictor file", "fit one with `hwnas fit`",
                          "refit it with `hwnas fit`")
    check_header(data, f"predictor file {path}")
    return data


def _refuse_newer(path: Path) -> None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return  # an unreadable old file is replaced
    version = data.get("format_version") if isinstance(data, dict) else None
    if isinstance(version, int) and version > FORMAT_VERSION:
        raise PredictorError(f"{path} holds predictor format {version}, newer than this hwnas ({FORMAT_VERSION}); "
                             "not overwriting it: upgrade hwnas or save elsewhere")


def _short_repr(value: Any) -> str:
    if isinstance(value, SearchSpace):
        return repr(value.name)
    if isinstance(value, dict):
        return f"<dict of {len(value)}>"
    text = repr(value)
    return text if len(text) < 60 else text[:57] + "..."
