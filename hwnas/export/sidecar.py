"""The sidecar JSON written beside every exported model (what it is, how it was made, how it validated).

Later tools add fields (measured latency) with `update_sidecar`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from hwnas.errors import ExportError
from hwnas.export.config import SUFFIXES
from hwnas.files import read_json_file
from hwnas.workspace import atomic_write_text

__all__ = ["SIDECAR_NAME", "sidecar_path", "read_sidecar", "write_sidecar", "update_sidecar"]

SIDECAR_NAME = "model.json"


def sidecar_path(path: str | Path) -> Path:
    """The sidecar of a model: `<folder>/model.json` for a folder, `<stem>.json` beside a model file."""
    path = Path(path)
    if path.suffix == ".json":
        return path
    if path.suffix in SUFFIXES.values():
        return path.with_suffix(".json")
    return path / SIDECAR_NAME


def read_sidecar(path: str | Path) -> dict[str, Any]:
    target = sidecar_path(path)
    data = read_json_file(target, ExportError, "sidecar", "export the model with hwnas.export first",
                          "re-export the model")
    if not isinstance(data, dict):
        raise ExportError(f"sidecar {target} must hold a JSON object; re-export the model")
    return data


def write_sidecar(path: str | Path, data: dict[str, Any]) -> Path:
    target = sidecar_path(path)
    atomic_write_text(target, json.dumps(data, indent=2, sort_keys=False, default=_jsonable) + "\n")
    try:
        os.chmod(target, 0o644)  # atomic_write_* creates private temp files
    except OSError:
        pass
    return target


def update_sidecar(path: str | Path, **fields: Any) -> dict[str, Any]:
    """Add or replace top-level fields of a model's sidecar (atomically); returns the new content.

    A field whose value is a dict is merged into an existing dict of the same name
    (`update_sidecar(p, latency_ms={"pixel7/tflite": 4.2})` keeps other devices' entries).
    """
    data = read_sidecar(path)
    for key, value in fields.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    write_sidecar(path, data)
    return data


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "to_dict"):
        return value.to_dict()
    raise TypeError(f"cannot write {type(value).__name__} to a sidecar")
