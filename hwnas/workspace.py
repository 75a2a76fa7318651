"""A workspace is a folder a user owns: devices/*.toml, profiles/<device>/, predictors/, runs/.

`hwnas init DIR` makes an empty one; the repository root is one with shipped examples.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from hwnas.errors import WorkspaceError
from hwnas.files import atomic_write_bytes, atomic_write_text

__all__ = ["Workspace", "atomic_write_text", "atomic_write_bytes"]

SUBDIRS = ("devices", "profiles", "predictors", "runs")


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
        return self.profiles_dir / device

    def predictor_path(self, device: str, space: str, runtime: str) -> Path:
        """Where a device's fitted latency predictor for a space and runtime lives (one JSON file)."""
        return self.predictors_dir / f"{device}-{space}-{runtime}.json"
