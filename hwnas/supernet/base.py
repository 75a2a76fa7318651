"""The abstract weight-sharing supernet: a space, an active arch, subnet extraction, and saving in our
checkpoint format `{"space": space.config(), "state_dict": ..., "meta": {...}}` (read back by `checkpoint`)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hwnas.errors import InvalidArchError, SupernetError
from hwnas.files import atomic_write_bytes

__all__ = ["Supernet", "FORMAT", "FORMAT_VERSION"]

FORMAT = "hwnas-supernet"
FORMAT_VERSION = 1


class Supernet(nn.Module):
    """Base of weight-sharing supernets: a space, an active arch, extraction and saving."""

    space: Any
    options: dict[str, Any]

    def validate(self, arch: Any) -> Any:
        try:
            return self.space.validate(arch)
        except InvalidArchError as exc:
            raise SupernetError(f"arch is outside this supernet's space ({self.space!r}): {exc}") from None

    def set_active(self, arch: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def extract(self, arch: Any) -> nn.Module:  # pragma: no cover - abstract
        raise NotImplementedError

    def save(self, path: str | Path, meta: dict[str, Any] | None = None, extra: dict[str, Any] | None = None) -> None:
        """Atomically write `{"space", "state_dict", "meta"}` (plus `extra` entries, e.g. training state)."""
        payload: dict[str, Any] = {
            "space": self.space.config(),
            "state_dict": {k: v.detach().contiguous().clone() for k, v in self.state_dict().items()},
            "meta": {"format": FORMAT, "version": FORMAT_VERSION, "supernet": dict(self.options), **(meta or {})},
        }
        if extra:
            payload.update(extra)
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        atomic_write_bytes(Path(path), buffer.getvalue())
