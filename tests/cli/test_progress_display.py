"""Long commands report progress when stdout is not a terminal (nohup, CI, `| tee`): a log line at each stage's
start and end, and at most every LOG_EVERY_S in between, on stderr."""

from __future__ import annotations

import io

from rich.console import Console

from hwnas.cli import _common
from hwnas.progress import ProgressEvent


def test_without_a_terminal_progress_is_logged_in_lines(monkeypatch):
    buffer = io.StringIO()
    monkeypatch.setattr(_common, "console", Console(file=buffer, force_terminal=False, width=200))
    clock = iter([0.0, 1.0, 2.0, 15.0, 16.0, 20.0, 21.0])
    monkeypatch.setattr(_common.time, "monotonic", lambda: next(clock))
    with _common.progress_display() as progress:
        progress(ProgressEvent("search", 0, 4))   # t=0: the stage starts -> a line
        progress(ProgressEvent("search", 1, 4))   # t=1: too soon -> nothing
        progress(ProgressEvent("search", 2, 4))   # t=2: too soon -> nothing
        progress(ProgressEvent("search", 3, 4))   # t=15: 15 s since the last line -> a line
        progress(ProgressEvent("search", 4, 4))   # t=16: done -> a line
        progress(ProgressEvent("search", 4, 4))   # t=20: done again -> nothing
        progress(ProgressEvent("export", 1, 2))   # t=21: another stage starts -> a line
    lines = buffer.getvalue().splitlines()
    assert lines == ["search: 0/4 (0%) after 0 s", "search: 3/4 (75%) after 15 s", "search: 4/4 (100%) after 16 s",
                     "export: 1/2 (50%) after 0 s"]


def test_disabled_display_prints_nothing(monkeypatch):
    buffer = io.StringIO()
    monkeypatch.setattr(_common, "console", Console(file=buffer, force_terminal=False))
    with _common.progress_display(disable=True) as progress:
        progress(ProgressEvent("export", 1, 1))
    assert buffer.getvalue() == ""
