"""The SearchSpace contract and the OpSpec: one operator instance with all its shapes."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hwnas.errors import SpaceError

__all__ = ["Arch", "OpSpec", "SearchSpace", "describe_values", "network_config", "MEASUREMENT_KEYS"]


# config keys that say how a space is measured, not which networks it holds: two configs that differ only there
# describe the same archs (a predictor fitted on a profile of some resolutions predicts the others too)
MEASUREMENT_KEYS = ("profiled_resolutions",)


def network_config(config: dict[str, Any]) -> dict[str, Any]:
    """`config` without its measurement-only keys (`MEASUREMENT_KEYS`): what must match for two spaces, and the
    files made for them (predictors, profiles, checkpoints), to describe the same networks."""
    return {k: v for k, v in config.items() if k not in MEASUREMENT_KEYS} if isinstance(config, dict) else config


def describe_values(values: Sequence[int]) -> str:
    """`128-224 in steps of 4` for an evenly spaced run of more than five values, else the list."""
    values = sorted(values)
    steps = {b - a for a, b in zip(values, values[1:])}
    if len(values) > 5 and len(steps) == 1:
        return f"{values[0]}-{values[-1]} in steps of {steps.pop()}"
    return ", ".join(map(str, values))


class Arch:
    """Marker base for a space's frozen architecture dataclass.

    Each has a stable short `key`, `to_dict()` and `from_dict()`; equality and hashing follow `key`.
    """

    key: str

    def to_dict(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError


def _shape(shape: Sequence[int]) -> str:
    return "x".join(str(int(s)) for s in shape)


@dataclass(frozen=True)
class OpSpec:
    """One operator of a network with every shape it needs, so that it can be built and exported alone.

    `input`/`output` are (H, W, C) (or (C,) for a logits layer's output). The `key` follows Once-for-All's
    latency lookup tables, e.g.
    `expanded_conv-input:56x56x24-output:28x28x40-expand:144-kernel:5-stride:2-idskip:0-se:1-hs:0`.
    """

    type: str
    input: tuple[int, ...]
    output: tuple[int, ...]
    expand: int = 0  # middle (expanded) channels of an inverted bottleneck
    kernel: int = 0
    stride: int = 1
    idskip: int = 0
    se: int = 0
    hs: int = 0
    act: str = ""  # activation for plain conv layers: "relu", "h_swish", "" (none)
    bn: int = 1  # plain conv layers: batch norm after the conv
    bias: int = 0  # plain conv layers: conv bias

    @property
    def key(self) -> str:
        parts = [self.type, f"input:{_shape(self.input)}", f"output:{_shape(self.output)}"]
        if self.type == "expanded_conv":
            parts += [
                f"expand:{self.expand}",
                f"kernel:{self.kernel}",
                f"stride:{self.stride}",
                f"idskip:{self.idskip}",
                f"se:{self.se}",
                f"hs:{self.hs}",
            ]
        elif self.type.startswith("nb201_"):
            parts += [f"kernel:{self.kernel}", f"stride:{self.stride}"]
        return "-".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "input": list(self.input),
            "output": list(self.output),
            "expand": self.expand,
            "kernel": self.kernel,
            "stride": self.stride,
            "idskip": self.idskip,
            "se": self.se,
            "hs": self.hs,
            "act": self.act,
            "bn": self.bn,
            "bias": self.bias,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OpSpec:
        values = dict(data)
        values["input"] = tuple(values["input"])
        values["output"] = tuple(values["output"])
        return cls(**values)


class SearchSpace(ABC):
    """What can be searched. Randomness always comes from a passed `np.random.Generator`."""

    name: str

    @abstractmethod
    def config(self) -> dict[str, Any]:
        """`{"name": ..., **options}`: enough for `hwnas.space.from_config` to rebuild this space."""

    @property
    @abstractmethod
    def size(self) -> int:
        """The number of distinct architectures."""

    @abstractmethod
    def validate(self, obj: Any) -> Arch:
        """Turn a dict, string or Arch into this space's Arch, or raise InvalidArchError naming the field."""

    @abstractmethod
    def sample(self, rng: np.random.Generator, n: int = 1) -> list[Arch]: ...

    @abstractmethod
    def mutate(self, arch: Arch, rng: np.random.Generator, prob: float | None = None) -> Arch: ...

    @abstractmethod
    def crossover(self, a: Arch, b: Arch, rng: np.random.Generator) -> Arch: ...

    @abstractmethod
    def encode(self, archs: Iterable[Arch], kind: str = "onehot") -> np.ndarray:
        """Rows of features: "onehot" for predictors, "ordinal" for the integer search encoding."""

    @abstractmethod
    def decode(self, x: np.ndarray) -> list[Arch]:
        """Inverse of the ordinal encoding (rows of ints within `bounds()`)."""

    @abstractmethod
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Inclusive lower and upper bounds of the ordinal encoding."""

    @abstractmethod
    def operators(self, arch: Arch) -> list[OpSpec]:
        """The operators the arch runs, in order (repeats kept: one per layer)."""

    @abstractmethod
    def covering_archs(self) -> Iterable[Arch]:
        """Archs that together run every operator any arch of the space can run (at its profiled resolutions,
        where a space has several: other resolutions are interpolated)."""

    def all_operators(self) -> list[OpSpec]:
        """Every distinct operator any arch of the space can run at its profiled resolutions (by key), in the
        order `covering_archs` runs them: what a profile measures."""
        seen: dict[str, OpSpec] = {}
        for arch in self.covering_archs():
            for op in self.operators(arch):
                seen.setdefault(op.key, op)
        return list(seen.values())

    @abstractmethod
    def op_flops(self, op: OpSpec) -> int:
        """Multiply-accumulates of one operator's convolutions and linear layers."""

    @abstractmethod
    def op_params(self, op: OpSpec) -> int:
        """Learnable parameters of one operator."""

    def flops(self, arch: Arch) -> float:
        """Multiply-accumulates of convolutions and linear layers, in millions (as OFA reports FLOPs)."""
        return sum(self.op_flops(op) for op in self.operators(arch)) / 1e6

    def params(self, arch: Arch) -> float:
        """Learnable parameters of the extracted network, in millions."""
        return sum(self.op_params(op) for op in self.operators(arch)) / 1e6

    def effective(self, arch: Arch) -> Arch:
        """The arch with every choice that cannot change the network's output canonicalised away (the same
        network as far as its output, and a compiled graph's work, go). Predictors learn on it. Default: the
        arch itself, for spaces whose `validate` canonicalises already."""
        return self.validate(arch)

    def surrogate_encoding(self, archs: Sequence[Arch]) -> np.ndarray:
        """Features of each arch for the search's surrogates: by default the "onehot" encoding of its effective
        form (binary, but for numbers such as ofa-mbv3's resolution). A space that knows which choices matter to
        accuracy says so here."""
        return self.encode([self.effective(a) for a in archs], "onehot")

    def descriptors(self, archs: Sequence[Arch]) -> np.ndarray:
        """(n, k) numbers describing each arch's structure (counts, depths) that surrogates use besides FLOPs
        and params, standardised by them. Default: none (k = 0)."""
        return np.zeros((len(archs), 0))

    def minimal_archs(self) -> list[Arch]:
        """The structurally smallest archs: those that run the fewest operators, one per choice that this
        leaves open. Where per-operator overhead rules latency (a GPU at batch 1, a DSP), they are the fastest
        networks, yet FLOPs cannot tell them from larger cells of parameter-free ops and random samples
        almost never draw them; the search's first batch includes them. Default: the lowest choice everywhere
        (the ordinal lower bound), unless its output does not depend on its input."""
        arch = self.decode(self.bounds()[0][None, :])[0]
        check = getattr(self, "is_degenerate", None)
        return [] if check is not None and check(arch) else [arch]

    def resolution(self, arch: Arch) -> int | None:
        """The arch's input resolution in a space with several (OFA's `r`); None where the input size is fixed."""
        return None

    def at_resolution(self, arch: Arch, r: int) -> Arch:
        """The same arch at input resolution `r`, for predictors that interpolate between profiled resolutions."""
        raise SpaceError(f"space {self.name} has a fixed input size")

    def profiled_space(self) -> SearchSpace:
        """The space restricted to what a profile measures (OFA: the profiled resolutions), from which profiling
        draws its reference subnets. Default: the space itself."""
        return self

    def input_shape(self, arch: Arch) -> tuple[int, int, int, int]:
        """NCHW input shape of the arch's network."""
        raise NotImplementedError
