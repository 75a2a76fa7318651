"""The predictor registry: `register_predictor`, `create_predictor`, `list_predictors`, and reading saved
predictors back by name (`load_predictor`, `predictor_from_json`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hwnas.errors import PredictorError
from hwnas.predictors.base import FORMAT, Predictor, check_header, read_predictor_json, resolve_space
from hwnas.registry import Registry

__all__ = ["PREDICTORS", "register_predictor", "create_predictor", "list_predictors", "load_predictor",
           "predictor_class", "predictor_from_json"]

PREDICTORS: Registry[Predictor] = Registry("predictor", PredictorError)


def register_predictor(name: str) -> Callable[[type[Predictor]], type[Predictor]]:
    """Class decorator: register a Predictor subclass under `name` (also sets its `name`)."""

    def decorator(cls: type[Predictor]) -> type[Predictor]:
        cls.name = name
        PREDICTORS.register(name)(cls)
        return cls

    return decorator


def predictor_class(name: str) -> type[Predictor]:
    return PREDICTORS.get(name)  # type: ignore[return-value]


def list_predictors() -> list[str]:
    return PREDICTORS.names()


def create_predictor(name: str, space: Any = None, **options: Any) -> Predictor:
    """An unfitted predictor by name; options that are None keep its defaults."""
    return PREDICTORS.create(name, space=space, **options)


def load_predictor(path: str | Path, space: Any = None) -> Predictor:
    """Read a predictor JSON file. With `space`, a file fitted for another space is a PredictorError."""
    data = read_predictor_json(path)
    if space is not None:
        from hwnas.space import network_config

        expected = resolve_space(space).config()
        if network_config(data["space"]) != network_config(expected):
            found = data["space"].get("name") if isinstance(data["space"], dict) else data["space"]
            raise PredictorError(f"predictor file {path} was fitted for space {found!r} with other options than "
                                 f"{expected['name']!r} here; refit it with `hwnas fit --space {expected['name']}`")
    try:
        return predictor_from_json(data)
    except PredictorError as exc:
        raise PredictorError(f"predictor file {path}: {exc}") from None


def predictor_from_json(data: dict[str, Any]) -> Predictor:
    """A fitted predictor from `Predictor.to_json()` output: its class found by the registered name it was saved
    under; nested predictors (a few-shot predictor's base) are rebuilt the same way."""
    check_header(data, "the predictor data")
    klass = predictor_class(data["predictor"])
    for part in ("params", "state", "meta", "bounds", "conformal"):
        if data.get(part) is not None and not isinstance(data[part], dict):
            raise PredictorError(f"the predictor's {part!r} must be a JSON object, got {type(data[part]).__name__}; "
                                 "refit it with `hwnas fit`")
    params = dict(data.get("params") or {})
    params["space"] = data["space"]
    for key, value in list(params.items()):
        if isinstance(value, dict) and value.get("format") == FORMAT:
            params[key] = predictor_from_json(value)
        elif isinstance(value, list) and value and all(isinstance(v, dict) and v.get("format") == FORMAT
                                                       for v in value):
            params[key] = [predictor_from_json(v) for v in value]
    return klass.restore(params, data.get("state") or {}, data.get("meta"), data.get("bounds"), data.get("conformal"))
