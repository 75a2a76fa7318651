"""Supernet checkpoints: OFA's published files (with their legacy key names) and our own format
`{"space": space.config(), "state_dict": ..., "meta": {...}}`, always read with `torch.load(weights_only=True)`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from hwnas.errors import CheckpointError, HwnasError, SpaceError, SupernetError
from hwnas.space import OFAMobileNetV3Space, SearchSpace, from_config
from hwnas.supernet.base import FORMAT, FORMAT_VERSION, Supernet
from hwnas.supernet.ofa_mbv3 import OFAMobileNetV3Supernet

__all__ = ["create_supernet", "load_checkpoint", "save_checkpoint", "read_checkpoint", "normalise_ofa_keys",
           "FORMAT", "FORMAT_VERSION"]

_SHOW = 5  # how many keys an error names


def create_supernet(space: SearchSpace, mos_experts: int = 0, router_hidden: int = 16) -> Supernet:
    """A randomly initialised elastic supernet for `space` (ofa-mbv3)."""
    if isinstance(space, OFAMobileNetV3Space):
        return OFAMobileNetV3Supernet(space, mos_experts=mos_experts, router_hidden=router_hidden)
    raise SupernetError(f"no weight-sharing supernet for space {getattr(space, 'name', space)!r}; "
                        "use hwnas.supernet.build_subnet(space, arch) for single networks")


def save_checkpoint(supernet: Supernet, path: str | Path, meta: dict[str, Any] | None = None,
                    extra: dict[str, Any] | None = None) -> None:
    """Atomically write `{"space", "state_dict", "meta"}` (plus `extra` entries, e.g. training state):
    `supernet.save`."""
    supernet.save(path, meta=meta, extra=extra)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The raw checkpoint dict, read safely; a clear CheckpointError when the file is not one."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for bad files
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"cannot read {path} as a PyTorch checkpoint (weights only): {first}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} holds a {type(data).__name__}, not a checkpoint dict")
    return data


def normalise_ofa_keys(state_dict: dict[str, torch.Tensor], model_keys: set[str]) -> dict[str, torch.Tensor]:
    """Map OFA's key spellings onto ours: `mobile_inverted_conv` -> `conv`, and either form of `.bn.`/`.bn.bn.`,
    `conv.weight`/`conv.conv.weight`, `.linear.`/`.linear.linear.`. Keys with no match are kept as they are."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        key = key[len("module."):] if key.startswith("module.") else key
        new = key.replace(".mobile_inverted_conv.", ".conv.")
        if new not in model_keys:
            for a, b in ((".bn.bn.", ".bn."), (".conv.conv.weight", ".conv.weight"), (".linear.linear.", ".linear."),
                         (".linear.", ".linear.linear."), ("bn.", "bn.bn."), ("conv.weight", "conv.conv.weight")):
                if a in new and new.replace(a, b) in model_keys:
                    new = new.replace(a, b)
                    break
        out[new] = value
    return out


def _mismatch(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> tuple[list[str], list[str], list[str]]:
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})" for k, v in expected.items()
              if k in state and tuple(state[k].shape) != tuple(v.shape)]
    return missing, unexpected, shapes


def _describe(missing: list[str], unexpected: list[str], shapes: list[str]) -> str:
    parts = []
    for label, items in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes)):
        if items:
            more = f" (+{len(items) - _SHOW} more)" if len(items) > _SHOW else ""
            parts.append(f"{len(items)} {label}: {', '.join(items[:_SHOW])}{more}")
    return "; ".join(parts)


def _fill(supernet: Supernet, state: dict[str, torch.Tensor], source: str) -> Supernet:
    missing, unexpected, shapes = _mismatch(supernet, state)
    if missing or unexpected or shapes:
        raise CheckpointError(f"{source} does not fit a supernet of {supernet.space!r}: "
                              f"{_describe(missing, unexpected, shapes)}")
    for key, value in supernet.state_dict().items():
        if key not in state:  # only num_batches_tracked may be absent
            state[key] = value
    supernet.load_state_dict(state, strict=True)
    return supernet.eval()


def _ofa_space_candidates(state: dict[str, torch.Tensor]) -> list[OFAMobileNetV3Space]:
    n_classes, in_channels = 1000, 3
    for key, value in state.items():
        if key.endswith("classifier.linear.weight") or key.endswith("classifier.linear.linear.weight"):
            n_classes = int(value.shape[0])
        if key.endswith("first_conv.conv.weight") or key.endswith("first_conv.conv.conv.weight"):
            in_channels = int(value.shape[1])
    return [OFAMobileNetV3Space(width_mult=w, n_classes=n_classes, in_channels=in_channels) for w in (1.0, 1.2)]


def load_checkpoint(path: str | Path, space: SearchSpace | None = None) -> Supernet:
    """Load OFA's published `ofa_mbv3_d234_e346_k357_w1.0`/`_w1.2` files (or a bare OFA state dict) or our own
    checkpoints. Without `space`, OFA files are matched against OFA's w1.0 and w1.2 spaces."""
    data = read_checkpoint(path)
    if "space" in data and "state_dict" in data:
        try:
            stored = from_config(data["space"])
        except HwnasError as exc:
            raise CheckpointError(f"{path}: its space config is not usable: {exc}") from None
        if space is not None and space.config() != stored.config():
            diff = sorted(k for k in set(space.config()) | set(stored.config())
                          if space.config().get(k) != stored.config().get(k))
            raise CheckpointError(f"{path} was trained for another space: {', '.join(diff[:_SHOW])} differ "
                                  f"(checkpoint {stored!r}, asked for {space!r})")
        meta = data.get("meta") or {}
        options = meta.get("supernet", {}) if isinstance(meta, dict) else {}
        supernet = create_supernet(stored, mos_experts=int(options.get("mos_experts", 0)),
                                   router_hidden=int(options.get("router_hidden", 16)))
        supernet.meta = dict(meta) if isinstance(meta, dict) else {}
        state = dict(data["state_dict"])
        return _fill(supernet, state, str(path))
    state = data.get("state_dict", data)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} is neither an hwnas checkpoint nor an OFA one (a dict with 'state_dict' "
                              "mapping names to tensors)")
    candidates = [space] if space is not None else _ofa_space_candidates(state)
    first_error: CheckpointError | None = None
    for candidate in candidates:
        try:
            supernet = create_supernet(candidate)
        except SpaceError as exc:
            raise CheckpointError(f"cannot build a supernet for {candidate!r}: {exc}") from None
        normalised = normalise_ofa_keys(state, set(supernet.state_dict()))
        try:
            supernet = _fill(supernet, normalised, f"OFA checkpoint {path}")
        except CheckpointError as exc:
            first_error = first_error or exc
            continue
        supernet.meta = {"format": "ofa", "source": str(path)}
        return supernet
    assert first_error is not None
    if space is None:
        raise CheckpointError(f"{first_error} (tried OFA's w1.0 and w1.2 spaces; pass the space it was built for)")
    raise first_error
