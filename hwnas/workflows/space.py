"""Looking at spaces: a registered space with its options, and which space an arch (dict or key) belongs to."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hwnas.errors import InvalidArchError, SpaceError

__all__ = ["make_space", "identify_archs"]


def make_space(name: str, width_mult: float | None = None) -> Any:
    """The registered space `name`; `width_mult` (ofa-mbv3 only) widens it."""
    from hwnas import space as spaces

    options: dict[str, Any] = {}
    if width_mult is not None:
        if name != "ofa-mbv3":
            raise SpaceError("--width-mult applies to ofa-mbv3 only")
        options["width_mult"] = width_mult
    return spaces.create(name, **options)


def identify_archs(items: Sequence[Any], space: str | None = None,
                   width_mult: float | None = None) -> list[tuple[Any, Any]]:
    """(space, validated arch) for each item: in `space` when given, else in the first registered space that
    accepts it; one line listing every space's objection when none does."""
    from hwnas import space as spaces

    if not items:
        raise InvalidArchError("no arch given: the JSON list is empty")
    if space is not None:
        sp = make_space(space, width_mult)
        return [(sp, sp.validate(item)) for item in items]
    candidates = [make_space(name, width_mult if name == "ofa-mbv3" else None) for name in spaces.list_spaces()]
    found = []
    for item in items:
        errors = []
        for sp in candidates:
            try:
                found.append((sp, sp.validate(item)))
                break
            except InvalidArchError as exc:
                errors.append(f"{sp.name}: {exc}")
        else:
            raise InvalidArchError("no space accepts this arch (" + "; ".join(errors) + ")")
    return found
