"""The predictor registry: `register_predictor`, `create_predictor`, `list_predictors`, `load_predictor`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hwnas.errors import PredictorError
from hwnas.predictors.base import Predictor, read_predictor_json, resolve_space
from hwnas.registry import Registry

__all__ = ["PREDICTORS", "register_predictor", "create_predictor", "list_predictors", "load_predictor",
           "predictor_class"]

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
        expected = resolve_space(space).config()
        if data["space"] != expected:
            found = data["space"].get("name") if isinstance(data["space"], dict) else data["space"]
            raise PredictorError(f"predictor file {path} was fitted for space {found!r} with other options than "
                                 f"{expected['name']!r} here; refit it with `hwnas fit --space {expected['name']}`")
    try:
        return Predictor.from_json(data)
    except PredictorError as exc:
        raise PredictorError(f"predictor file {path}: {exc}") from None
