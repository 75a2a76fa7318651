"""A workspace is a folder a user owns: devices/*.toml, profiles/<device>/, predictors/, runs/.

`hwnas init DIR` makes an empty one; the repository root is one with shipped examples.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from hwnas.errors import WorkspaceError
from hwnas.files import atomic_write_bytes, atomic_write_text

__all__ = ["Workspace", "atomic_write_text", "atomic_write_bytes", "check_name", "NAME_RE"]

SUBDIRS = ("devices", "profiles", "predictors", "runs")
# every name that becomes part of a workspace path (device, space, runtime): no separators, no leading dot or dash
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_name(name: str, what: str = "device name") -> str:
    """`name`, checked against NAME_RE: a name can never lead a path out of the workspace."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise WorkspaceError(f"bad {what} {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a "
                             "letter or digit")
    return name


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def find(cls, root: str | Path | None = None) -> Workspace:
        """The workspace at `root`, else $HWNAS_WORKSPACE, else the current directory."""
        chosen = root or os.environ.get("HWNAS_WORKSPACE") or os.getcwd()
        path = Path(chosen).expanduser().resolve()
        if not path.is_dir():
            raise WorkspaceError(f"workspace {path} is not a folder; create it with `hwnas init {path}`")
        return cls(path)

    @classmethod
    def init(cls, root: str | Path) -> Workspace:
        path = Path(root).expanduser().resolve()
        if path.exists() and not path.is_dir():
            raise WorkspaceError(f"{path} exists and is not a folder; choose another path")
        for sub in SUBDIRS:
            (path / sub).mkdir(parents=True, exist_ok=True)
        return cls(path)

    devices_dir = property(lambda self: self.root / "devices", doc="devices/*.toml: the inventory")
    profiles_dir = property(lambda self: self.root / "profiles", doc="profiles/<device>/: measured tables")
    predictors_dir = property(lambda self: self.root / "predictors", doc="predictors/*.json: fitted predictors")
    runs_dir = property(lambda self: self.root / "runs", doc="runs/<id>/: search run folders")

    def profile_dir(self, device: str) -> Path:
        """profiles/<device>/: the device's measurement store and profiles (the name checked first)."""
        return self.profiles_dir / check_name(device, "device name")

    def predictor_path(self, device: str, space: str, runtime: str) -> Path:
        """Where a device's fitted latency predictor for a space and runtime lives (one JSON file)."""
        parts = (check_name(device, "device name"), check_name(space, "space name"), check_name(runtime, "runtime"))
        return self.predictors_dir / ("-".join(parts) + ".json")
