"""A workspace is a folder a user owns: devices/*.toml, profiles/<device>/, predictors/, runs/.

`hwnas init DIR` makes an empty one; the repository root is one with shipped examples.
"""

from __future__ import annotations

import functools
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hwnas.errors import WorkspaceError

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

    @property
    def devices_dir(self) -> Path:
        return self.root / "devices"

    @property
    def profiles_dir(self) -> Path:
        return self.root / "profiles"

    @property
    def predictors_dir(self) -> Path:
        return self.root / "predictors"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    def profile_dir(self, device: str) -> Path:
        return self.profiles_dir / device


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, fsync it, then rename: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; shared profiles need ordinary permissions
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@functools.lru_cache(maxsize=1)
def _umask() -> int:
    """The process umask, read once (reading it means setting it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
