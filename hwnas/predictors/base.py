"""The Predictor base class: a scikit-learn style estimator over a space's archs, saved as versioned JSON."""

from __future__ import annotations

import inspect
import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from hwnas import space as spaces
from hwnas.errors import PredictorError
from hwnas.files import atomic_write_text, read_json_file
from hwnas.space import Arch, SearchSpace

__all__ = ["Predictor", "FORMAT", "FORMAT_VERSION", "check_header", "read_predictor_json", "resolve_space"]

FORMAT = "hwnas-predictor"
FORMAT_VERSION = 1


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
    def predict(self, archs: Any) -> np.ndarray:
        """Predicted values (ms for latency predictors), one per arch."""

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

    def _fitted(self, n_fit: int) -> Predictor:
        """Where every `fit` on measurements ends: note how many it learnt from, mark fitted, return self."""
        self.n_fit_ = n_fit
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
    def restore(cls, params: dict[str, Any], state: dict[str, Any], meta: dict[str, Any] | None = None) -> Predictor:
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
        obj.fitted_ = True
        return obj


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
