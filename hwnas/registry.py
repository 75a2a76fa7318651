"""A small name -> factory registry, shared by spaces, supernets, predictors and transports."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from hwnas.errors import HwnasError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to factories. `register` is a decorator; `create(name, **kwargs)` builds one.

    Keyword arguments that are None do not override a factory's defaults.
    """

    def __init__(self, kind: str, error: type[HwnasError] = HwnasError):
        self.kind = kind
        self.error = error
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._factories[name] = factory
            return factory

        return decorator

    def names(self) -> list[str]:
        return sorted(self._factories)

    def get(self, name: str) -> Callable[..., T]:
        if not isinstance(name, str) or name not in self._factories:
            raise self.error(f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}")
        return self._factories[name]

    def create(self, name: str, **kwargs) -> T:
        factory = self.get(name)
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        try:
            return factory(**kwargs)
        except (TypeError, ValueError, OverflowError) as exc:  # a wrong type or an unusable value of an option
            raise self.error(f"bad options for {self.kind} {name!r}: {exc}") from exc
