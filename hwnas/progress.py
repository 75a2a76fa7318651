"""The one progress event every long job reports (profile, export, search, deploy): the library calls a
`ProgressFn` with it; the CLI draws bars (or log lines when not on a terminal)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ProgressEvent", "ProgressFn", "emit"]


@dataclass(frozen=True)
class ProgressEvent:
    """`done` of `total` items of `stage` are finished; `skipped` of them were done before (resumed work, not
    part of the rate); `key` names the item just finished, when there is one."""

    stage: str
    done: int
    total: int
    key: str = ""
    skipped: int = 0


ProgressFn = Callable[[ProgressEvent], None]


def emit(progress: ProgressFn | None, stage: str, done: int, total: int, key: str = "", skipped: int = 0) -> None:
    """Call `progress` (when given) with one event."""
    if progress is not None:
        progress(ProgressEvent(stage, done, total, key, skipped))
