"""`init_workspace`: a new workspace, with this machine's two local devices already in its inventory, so that
the first `hwnas profile` has something to measure on."""

from __future__ import annotations

from pathlib import Path

from hwnas.workspace import Workspace

__all__ = ["LOCAL_DEVICES", "init_workspace"]

# name -> (runtime, description): this machine, 1 thread, each runtime hwnas exports for
LOCAL_DEVICES = {
    "local-cpu": ("tflite", "this machine: LiteRT (XNNPACK), 1 thread"),
    "local-cpu-ort": ("onnxruntime", "this machine: onnxruntime CPU, 1 thread"),
}


def init_workspace(path: str | Path, local_devices: bool = True) -> tuple[Workspace, list[str]]:
    """Make (or complete) the workspace at `path`: devices/, profiles/, predictors/, runs/, and the local devices
    it lacks. Existing files are never touched. Returns the workspace and the device names it added."""
    from hwnas.devices.inventory import add_device, load_inventory

    ws = Workspace.init(path)
    added = []
    if local_devices:
        known = load_inventory(ws)
        for name, (runtime, description) in LOCAL_DEVICES.items():
            if name not in known:
                add_device(ws, name, transport="local", runtime=runtime, threads=1, description=description)
                added.append(name)
    return ws, added
