"""Small helpers shared by the device tests."""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
from pathlib import Path


def own_runner_pids(run_dir: str, role: str = "run") -> list[int]:
    """PIDs of runner processes (role 'run' or 'worker') serving the run folder `run_dir` (started by us)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in argv if a]
        if len(args) >= 3 and args[-2] == role and args[-1].startswith(run_dir) and "runner" in " ".join(args):
            pids.append(int(entry))
    return pids


def kill(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def round_counts(results: Path) -> Counter:
    """(index, round) -> how many times the runner recorded it."""
    counts: Counter = Counter()
    for line in results.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("type") == "round":
            counts[(record["index"], record["round"])] += 1
    return counts
