"""What several workflows share: the workspace a call works in and the inventory entries of the devices it names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hwnas.errors import InventoryError
from hwnas.workspace import Workspace

__all__ = ["resolve_workspace", "device_configs"]


def resolve_workspace(workspace: Workspace | str | Path | None) -> Workspace:
    """A `Workspace`, a folder, or None ($HWNAS_WORKSPACE, else the current folder)."""
    return workspace if isinstance(workspace, Workspace) else Workspace.find(workspace)


def device_configs(ws: Workspace, devices: list[str]) -> dict[str, Any]:
    """The inventory entries of `devices`, in that order; one line naming the first unknown one otherwise."""
    from hwnas.devices.inventory import load_inventory

    if not devices:
        raise InventoryError("name at least one target device (see `hwnas device list`)")
    inventory = load_inventory(ws)
    unknown = [d for d in devices if d not in inventory]
    if unknown:
        known = ", ".join(sorted(inventory)) or "none"
        raise InventoryError(f"no device {unknown[0]!r} in {ws.devices_dir} (known: {known}); add it with "
                             f"`hwnas device add {unknown[0]} --local|--ssh USER@HOST|--adb SERIAL`")
    return {d: inventory[d] for d in devices}
