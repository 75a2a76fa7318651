"""Search spaces: architectures, sampling, mutation, crossover, encodings, operators, FLOPs and params.

numpy only: nothing here imports torch. `create("ofa-mbv3", width_mult=1.2)`, `list_spaces()`.
"""

from __future__ import annotations

from typing import Any

from hwnas.errors import SpaceError
from hwnas.registry import Registry
from hwnas.space.base import Arch, OpSpec, SearchSpace, network_config
from hwnas.space.nasbench201 import NasBench201Space, NB201Arch
from hwnas.space.ofa_mbv3 import OFAArch, OFAMobileNetV3Space

__all__ = [
    "Arch",
    "OpSpec",
    "SearchSpace",
    "OFAArch",
    "OFAMobileNetV3Space",
    "NB201Arch",
    "NasBench201Space",
    "create",
    "from_config",
    "list_spaces",
    "network_config",
    "register_space",
]

SPACES: Registry[SearchSpace] = Registry("search space", SpaceError)
register_space = SPACES.register
SPACES.register("ofa-mbv3")(OFAMobileNetV3Space)
SPACES.register("nasbench201")(NasBench201Space)


def list_spaces() -> list[str]:
    return SPACES.names()


def create(name: str, **options: Any) -> SearchSpace:
    """Build a registered space by name; options that are None keep the space's defaults."""
    return SPACES.create(name, **options)


def from_config(config: dict[str, Any]) -> SearchSpace:
    """Rebuild a space from `space.config()` (as stored in checkpoints, profiles and runs)."""
    if not isinstance(config, dict) or "name" not in config:
        raise SpaceError("a space config must be a dict with a 'name' field, as written by space.config()")
    options = {k: v for k, v in config.items() if k != "name"}
    return create(config["name"], **options)
