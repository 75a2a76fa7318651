"""Once-for-All's MobileNetV3 space (Cai et al., ICLR 2020): elastic depth, width (expand ratio),
kernel size and resolution over a fixed MobileNetV3 skeleton.

Archs read and write OFA's own dict, `{"ks": [20], "e": [20], "d": [5], "r": 224}`, so results from
OFA, DyNAS-T or HELP load as they are. Widths, resolutions and the choice lists are options, so small
demo supernets use the same code.

Resolutions: an arch may use any of `resolutions` (by default OFA's 128-224 in steps of 4, the set its
networks are used at); profiling measures the operators of `profiled_resolutions` only (by default the five
160-224 in steps of 16), and predictors interpolate between those (`hwnas.predictors.features`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hwnas.errors import InvalidArchError, SpaceError
from hwnas.space.base import Arch, OpSpec, SearchSpace, describe_values

__all__ = ["OFAArch", "OFAMobileNetV3Space", "make_divisible", "op_flops", "op_params", "OFA_RESOLUTIONS",
           "DEFAULT_PROFILED_RESOLUTIONS"]

# Per block group: the first block, then the five elastic stages (as OFA's OFAMobileNetV3).
STAGE_STRIDES = (1, 2, 2, 2, 1, 2)
STAGE_ACTS = ("relu", "relu", "relu", "h_swish", "h_swish", "h_swish")
STAGE_SE = (False, False, True, False, True, True)
DEFAULT_BASE_WIDTHS = (16, 16, 24, 40, 80, 112, 160, 960, 1280)
SE_REDUCTION = 4
CHANNEL_DIVISIBLE = 8
OFA_RESOLUTIONS = tuple(range(128, 225, 4))  # every resolution OFA's networks are used at (HELP's set)
DEFAULT_PROFILED_RESOLUTIONS = (160, 176, 192, 208, 224)  # OFA's latency tables; profiles measure these


def make_divisible(value: float, divisor: int = CHANNEL_DIVISIBLE, min_value: int | None = None) -> int:
    """Round a channel count to a multiple of `divisor` without losing more than 10% (as MobileNet/OFA)."""
    min_value = divisor if min_value is None else min_value
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return new_value


def _conv_out(size: int, stride: int) -> int:
    return (size + 1) // 2 if stride == 2 else size


@dataclass(frozen=True, eq=False)
class OFAArch(Arch):
    """One subnet: kernel size and expand ratio per block slot, depth per stage, input resolution.

    Slots past a stage's depth are stored as the smallest choice and do not affect `key` or equality.
    """

    ks: tuple[int, ...]
    e: tuple[int, ...]
    d: tuple[int, ...]
    r: int

    @property
    def key(self) -> str:
        max_depth = len(self.ks) // len(self.d)
        stages = []
        for stage, depth in enumerate(self.d):
            slots = range(stage * max_depth, stage * max_depth + depth)
            stages.append("".join(f"{self.ks[i]}{self.e[i]}" for i in slots))
        return f"r{self.r}-" + "-".join(stages)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OFAArch) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def to_dict(self) -> dict[str, Any]:
        return {"ks": list(self.ks), "e": list(self.e), "d": list(self.d), "r": self.r}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OFAArch:
        return cls(ks=tuple(data["ks"]), e=tuple(data["e"]), d=tuple(data["d"]), r=int(data["r"]))

    def __repr__(self) -> str:
        return f"OFAArch({self.key})"


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


class OFAMobileNetV3Space(SearchSpace):
    """The OFA MobileNetV3 space. Defaults are OFA's `ofa_mbv3_d234_e346_k357_w1.0`.

    `resolutions` are the input sizes an arch may use (sampling, mutation and the search explore all of them);
    `profiled_resolutions`, a subset, are those whose operators a profile measures (`all_operators`,
    `covering_archs`, the reference subnets). Unset, it is 160-224 in steps of 16 where the space has all five,
    else every resolution; `config()` records it only when it differs from that default.
    """

    name = "ofa-mbv3"

    def __init__(
        self,
        width_mult: float = 1.0,
        resolutions: Sequence[int] = OFA_RESOLUTIONS,
        ks_list: Sequence[int] = (3, 5, 7),
        expand_list: Sequence[int] = (3, 4, 6),
        depth_list: Sequence[int] = (2, 3, 4),
        base_widths: Sequence[int] = DEFAULT_BASE_WIDTHS,
        n_classes: int = 1000,
        in_channels: int = 3,
        profiled_resolutions: Sequence[int] | None = None,
    ):
        self.width_mult = float(width_mult)
        self.resolutions = tuple(sorted(int(r) for r in resolutions))
        self.profiled_resolutions = (tuple(sorted(int(r) for r in profiled_resolutions))
                                     if profiled_resolutions is not None else self._default_profiled())
        self.ks_list = tuple(sorted(int(k) for k in ks_list))
        self.expand_list = tuple(sorted(int(e) for e in expand_list))
        self.depth_list = tuple(sorted(int(d) for d in depth_list))
        self.base_widths = tuple(int(w) for w in base_widths)
        self.n_classes = int(n_classes)
        self.in_channels = int(in_channels)
        self._check_options()
        self.n_stages = len(STAGE_STRIDES) - 1
        self.max_depth = max(self.depth_list)
        self.n_slots = self.n_stages * self.max_depth
        widths = [make_divisible(w * self.width_mult) for w in self.base_widths[:-2]]
        self.first_conv_width = widths[0]
        self.first_block_width = widths[1]
        self.stage_widths = tuple(widths[2:])
        self.final_expand_width = make_divisible(self.base_widths[-2] * self.width_mult)
        self.last_channel = make_divisible(self.base_widths[-1] * self.width_mult)

    def _check_options(self) -> None:
        if not 0 < self.width_mult <= 4:  # also refuses NaN
            raise SpaceError(f"width_mult must be a number in (0, 4], got {self.width_mult}")
        if not 1 <= self.n_classes <= 1_000_000 or not 1 <= self.in_channels <= 64:
            raise SpaceError(f"n_classes must be 1-1000000 and in_channels 1-64, got {self.n_classes} and "
                             f"{self.in_channels}")
        if any(not 1 <= w <= 100_000 for w in self.base_widths):
            raise SpaceError(f"base_widths must be positive channel counts, got {list(self.base_widths)}")
        if len(self.base_widths) != 9:
            raise SpaceError(f"base_widths needs 9 entries (first conv, first block, 5 stages, final expand, "
                             f"feature mix), got {len(self.base_widths)}")
        for name, values in (("resolutions", self.resolutions), ("ks_list", self.ks_list),
                             ("expand_list", self.expand_list), ("depth_list", self.depth_list)):
            if not values or len(set(values)) != len(values) or min(values) < 1 or max(values) > 4096:
                raise SpaceError(f"{name} must be distinct positive integers (at most 4096), got {list(values)}")
        extra = sorted(set(self.profiled_resolutions) - set(self.resolutions))
        if not self.profiled_resolutions or len(set(self.profiled_resolutions)) != len(self.profiled_resolutions):
            raise SpaceError(f"profiled_resolutions must be distinct resolutions of the space, got "
                             f"{list(self.profiled_resolutions)}")
        if extra:
            raise SpaceError(f"profiled_resolutions {extra} are not in the space's resolutions "
                             f"({describe_values(self.resolutions)})")
        if any(k % 2 == 0 or k > 9 for k in self.ks_list):
            raise SpaceError(f"ks_list must hold odd kernel sizes up to 9, got {list(self.ks_list)}")
        if max(self.expand_list) > 9:
            raise SpaceError(f"expand_list values must be at most 9, got {list(self.expand_list)}")

    def _default_profiled(self) -> tuple[int, ...]:
        if set(DEFAULT_PROFILED_RESOLUTIONS) <= set(self.resolutions):
            return DEFAULT_PROFILED_RESOLUTIONS
        return self.resolutions

    def config(self) -> dict[str, Any]:
        extra = {}
        if self.profiled_resolutions != self._default_profiled():
            extra["profiled_resolutions"] = list(self.profiled_resolutions)
        return {
            "name": self.name,
            "width_mult": self.width_mult,
            "resolutions": list(self.resolutions),
            "ks_list": list(self.ks_list),
            "expand_list": list(self.expand_list),
            "depth_list": list(self.depth_list),
            "base_widths": list(self.base_widths),
            "n_classes": self.n_classes,
            "in_channels": self.in_channels,
            **extra,
        }

    def __repr__(self) -> str:
        return (f"OFAMobileNetV3Space(width_mult={self.width_mult}, resolutions={describe_values(self.resolutions)}, "
                f"profiled_resolutions={list(self.profiled_resolutions)})")

    def profiled_space(self) -> OFAMobileNetV3Space:
        """This space restricted to its profiled resolutions (archs drawn from it run only profiled operators)."""
        if self.profiled_resolutions == self.resolutions:
            return self
        options = {k: v for k, v in self.config().items() if k not in ("name", "profiled_resolutions")}
        return OFAMobileNetV3Space(**{**options, "resolutions": self.profiled_resolutions})

    def with_profiled_resolutions(self, resolutions: Sequence[int]) -> OFAMobileNetV3Space:
        """This space with another profiled subset (`hwnas profile --resolutions`); SpaceError outside the space."""
        options = {k: v for k, v in self.config().items() if k != "name"}
        return OFAMobileNetV3Space(**{**options, "profiled_resolutions": sorted({int(r) for r in resolutions})})

    def resolution(self, arch: Any) -> int:
        return self.validate(arch).r

    def at_resolution(self, arch: Any, r: int) -> OFAArch:
        """The same blocks at input resolution `r` (any positive size: predictors look up profiled ones)."""
        arch = arch if isinstance(arch, OFAArch) else self.validate(arch)
        return OFAArch(arch.ks, arch.e, arch.d, int(r))

    # ------------------------------------------------------------------ archs
    @property
    def size(self) -> int:
        per_block = len(self.ks_list) * len(self.expand_list)
        per_stage = sum(per_block**d for d in self.depth_list)
        return per_stage**self.n_stages * len(self.resolutions)

    def size_per_resolution(self) -> int:
        return self.size // len(self.resolutions)

    def make(self, ks: Sequence[int], e: Sequence[int], d: Sequence[int], r: int) -> OFAArch:
        """An arch with inactive slots set to the smallest choice (its canonical form)."""
        ks, e = list(ks), list(e)
        for stage, depth in enumerate(d):
            for i in range(stage * self.max_depth + depth, (stage + 1) * self.max_depth):
                ks[i], e[i] = self.ks_list[0], self.expand_list[0]
        return OFAArch(tuple(int(k) for k in ks), tuple(int(x) for x in e), tuple(int(x) for x in d), int(r))

    def validate(self, obj: Any) -> OFAArch:
        if isinstance(obj, OFAArch):
            obj = obj.to_dict()
        elif isinstance(obj, str):
            obj = self._parse_text(obj)
        if not isinstance(obj, dict):
            raise InvalidArchError(
                f"an ofa-mbv3 arch must be a dict like {{\"ks\": [...], \"e\": [...], \"d\": [...], \"r\": 224}} "
                f"or an arch key, got {type(obj).__name__}"
            )
        data = dict(obj)
        if "wid" in data:
            if data.pop("wid") is not None:
                raise InvalidArchError("arch field 'wid' must be null: this space has no elastic width list")
        if "image_size" in data:
            if "r" in data:
                raise InvalidArchError("arch has both 'r' and 'image_size'; keep one")
            data["r"] = data.pop("image_size")
        missing = [k for k in ("ks", "e", "d", "r") if k not in data]
        if missing:
            raise InvalidArchError(f"arch is missing field(s) {', '.join(map(repr, missing))}; "
                                   f"an ofa-mbv3 arch needs 'ks', 'e', 'd' and 'r'")
        unknown = sorted(str(k) for k in data if k not in ("ks", "e", "d", "r"))
        if unknown:
            raise InvalidArchError(f"arch has unknown field(s) {', '.join(map(repr, unknown))}; "
                                   f"allowed: 'ks', 'e', 'd', 'r' (or 'image_size'), 'wid'")
        r = data["r"]
        if isinstance(r, (list, tuple)):
            if len(r) != 1:
                raise InvalidArchError(f"arch field 'r' must be one resolution, got a list of {len(r)}")
            r = r[0]
        d = self._int_list("d", data["d"], self.n_stages, self.depth_list)
        ks = self._int_list("ks", data["ks"], self.n_slots, self.ks_list, d)
        e = self._int_list("e", data["e"], self.n_slots, self.expand_list, d)
        if not _is_int(r) or int(r) not in self.resolutions:
            raise InvalidArchError(f"arch field 'r' is {_short(r)}; allowed values: "
                                   f"{describe_values(self.resolutions)}")
        return self.make(ks, e, d, int(r))

    def _int_list(self, name: str, values: Any, length: int, allowed: Sequence[int],
                  depths: Sequence[int] | None = None) -> list[int]:
        if not isinstance(values, (list, tuple)):
            raise InvalidArchError(f"arch field {name!r} must be a list of {length} integers, "
                                   f"got {type(values).__name__}")
        if len(values) != length:
            raise InvalidArchError(f"arch field {name!r} must have {length} entries, got {len(values)}")
        out = []
        for i, value in enumerate(values):
            active = depths is None or (i % self.max_depth) < depths[i // self.max_depth]
            if not _is_int(value) or (active and int(value) not in allowed):
                raise InvalidArchError(f"arch field {name!r}[{i}] is {_short(value)}; allowed values: "
                                       f"{', '.join(map(str, allowed))}")
            out.append(int(value) if int(value) in allowed else allowed[0])
        return out

    def _parse_text(self, text: str) -> Any:
        text = text.strip()
        if text.startswith("{"):
            try:
                return json.loads(text)
            except json.JSONDecodeError as exc:
                raise InvalidArchError(f"arch text is not valid JSON: {exc.msg} at char {exc.pos}") from None
        return self._parse_key(text)

    def _parse_key(self, key: str) -> dict[str, Any]:
        parts = key.split("-")
        hint = "an arch key looks like 'r224-3436-5757-...' (r<resolution>, then per stage <kernel><expand> digits)"
        if len(parts) != self.n_stages + 1 or not parts[0].startswith("r") or not parts[0][1:].isdigit():
            raise InvalidArchError(f"cannot read arch key {_short(key)}: {hint}")
        ks = [self.ks_list[0]] * self.n_slots
        e = [self.expand_list[0]] * self.n_slots
        d = []
        for stage, part in enumerate(parts[1:]):
            if not part.isdigit() or len(part) % 2:
                raise InvalidArchError(f"cannot read stage {stage + 1} of arch key {_short(key)}: {hint}")
            d.append(len(part) // 2)
            if d[-1] > self.max_depth:
                raise InvalidArchError(f"stage {stage + 1} of arch key {_short(key)} has {d[-1]} blocks; "
                                       f"allowed depths: {', '.join(map(str, self.depth_list))}")
            for j in range(d[-1]):
                ks[stage * self.max_depth + j] = int(part[2 * j])
                e[stage * self.max_depth + j] = int(part[2 * j + 1])
        return {"ks": ks, "e": e, "d": d, "r": int(parts[0][1:])}

    def sample(self, rng: np.random.Generator, n: int = 1) -> list[OFAArch]:
        archs = []
        for _ in range(n):
            d = rng.choice(self.depth_list, self.n_stages)
            ks = rng.choice(self.ks_list, self.n_slots)
            e = rng.choice(self.expand_list, self.n_slots)
            archs.append(self.make(ks, e, d, rng.choice(self.resolutions)))
        return archs

    def mutate(self, arch: OFAArch, rng: np.random.Generator, prob: float | None = None) -> OFAArch:
        """Resample each gene with probability `prob` (default 0.1); always changes at least one gene."""
        arch = self.validate(arch)
        prob = 0.1 if prob is None else prob
        for _ in range(100):
            ks, e, d, r = list(arch.ks), list(arch.e), list(arch.d), arch.r
            if rng.random() < prob:
                r = int(rng.choice(self.resolutions))
            for stage in range(self.n_stages):
                if rng.random() < prob:
                    d[stage] = int(rng.choice(self.depth_list))
            for i in range(self.n_slots):
                # newly activated slots get fresh random values, not the canonical filler
                if i % self.max_depth >= arch.d[i // self.max_depth] or rng.random() < prob:
                    ks[i] = int(rng.choice(self.ks_list))
                if i % self.max_depth >= arch.d[i // self.max_depth] or rng.random() < prob:
                    e[i] = int(rng.choice(self.expand_list))
            child = self.make(ks, e, d, r)
            if child != arch or self.size == 1:
                return child
        return child

    def crossover(self, a: OFAArch, b: OFAArch, rng: np.random.Generator) -> OFAArch:
        """Uniform crossover: each gene from either parent."""
        a, b = self.validate(a), self.validate(b)
        pick = lambda x, y: x if rng.random() < 0.5 else y  # noqa: E731
        return self.make(
            [pick(x, y) for x, y in zip(a.ks, b.ks)],
            [pick(x, y) for x, y in zip(a.e, b.e)],
            [pick(x, y) for x, y in zip(a.d, b.d)],
            pick(a.r, b.r),
        )

    # --------------------------------------------------------------- encodings
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        upper = ([len(self.resolutions) - 1] + [len(self.depth_list) - 1] * self.n_stages
                 + [len(self.ks_list) - 1] * self.n_slots + [len(self.expand_list) - 1] * self.n_slots)
        return np.zeros(len(upper), dtype=int), np.array(upper, dtype=int)

    def encode(self, archs: Iterable[Any], kind: str = "onehot") -> np.ndarray:
        """"ordinal": indices into the choice lists (resolution first). "onehot": the resolution as two numbers
        (r / max r and its square), then one-hot depth per stage and (kernel, expand) per active slot."""
        archs = [self.validate(a) for a in archs]
        if kind == "ordinal":
            rows = [[self.resolutions.index(a.r)] + [self.depth_list.index(x) for x in a.d]
                    + [self.ks_list.index(x) for x in a.ks] + [self.expand_list.index(x) for x in a.e]
                    for a in archs]
            return np.array(rows, dtype=int).reshape(len(archs), -1)
        if kind != "onehot":
            raise SpaceError(f"unknown encoding {kind!r}; choose 'onehot' or 'ordinal'")
        width = 2 + self.n_stages * len(self.depth_list) + self.n_slots * (len(self.ks_list) + len(self.expand_list))
        out = np.zeros((len(archs), width), dtype=np.float32)
        top = float(max(self.resolutions))
        for row, a in enumerate(archs):
            # resolution as numbers (r and r^2 scaled to the largest), not one column per resolution: models then
            # carry what they learn to resolutions they saw no sample of
            out[row, 0], out[row, 1] = a.r / top, (a.r / top) ** 2
            col = 2
            for x in a.d:
                out[row, col + self.depth_list.index(x)] = 1
                col += len(self.depth_list)
            for i in range(self.n_slots):
                active = i % self.max_depth < a.d[i // self.max_depth]
                if active:
                    out[row, col + self.ks_list.index(a.ks[i])] = 1
                    out[row, col + len(self.ks_list) + self.expand_list.index(a.e[i])] = 1
                col += len(self.ks_list) + len(self.expand_list)
        return out

    def decode(self, x: np.ndarray) -> list[OFAArch]:
        x = np.atleast_2d(np.asarray(x)).astype(int)
        lower, upper = self.bounds()
        if x.shape[1] != len(upper) or (x < lower).any() or (x > upper).any():
            raise InvalidArchError(f"ordinal encoding must have {len(upper)} columns within bounds()")
        s = self.n_stages
        return [
            self.make(
                [self.ks_list[i] for i in row[1 + s:1 + s + self.n_slots]],
                [self.expand_list[i] for i in row[1 + s + self.n_slots:]],
                [self.depth_list[i] for i in row[1:1 + s]],
                self.resolutions[row[0]],
            )
            for row in x
        ]

    # ----------------------------------------------------------- the network
    def input_shape(self, arch: Any) -> tuple[int, int, int, int]:
        arch = self.validate(arch)
        return (1, self.in_channels, arch.r, arch.r)

    def blocks(self, arch: OFAArch) -> list[dict[str, Any]]:
        """The active elastic blocks in order: stage, slot, in/out/mid channels, kernel, stride, act, se."""
        blocks = []
        in_c = self.first_block_width
        for stage in range(self.n_stages):
            out_c = self.stage_widths[stage]
            for j in range(arch.d[stage]):
                slot = stage * self.max_depth + j
                stride = STAGE_STRIDES[stage + 1] if j == 0 else 1
                blocks.append({
                    "stage": stage, "slot": slot, "index": j, "in": in_c, "out": out_c,
                    "mid": make_divisible(round(in_c * arch.e[slot])), "kernel": arch.ks[slot],
                    "stride": stride, "act": STAGE_ACTS[stage + 1], "se": STAGE_SE[stage + 1],
                    "idskip": stride == 1 and in_c == out_c,
                })
                in_c = out_c
        return blocks

    def operators(self, arch: Any) -> list[OpSpec]:
        arch = self.validate(arch)
        size = arch.r
        ops = []
        out = _conv_out(size, 2)
        c0, c1 = self.first_conv_width, self.first_block_width
        ops.append(OpSpec("Conv", (size, size, self.in_channels), (out, out, c0), kernel=3, stride=2,
                          act="h_swish"))
        size = out
        ops.append(OpSpec("expanded_conv", (size, size, c0), (size, size, c1), expand=c0, kernel=3,
                          stride=STAGE_STRIDES[0], idskip=int(c0 == c1), se=int(STAGE_SE[0]),
                          hs=int(STAGE_ACTS[0] == "h_swish")))
        for b in self.blocks(arch):
            out = _conv_out(size, b["stride"])
            ops.append(OpSpec("expanded_conv", (size, size, b["in"]), (out, out, b["out"]), expand=b["mid"],
                              kernel=b["kernel"], stride=b["stride"], idskip=int(b["idskip"]),
                              se=int(b["se"]), hs=int(b["act"] == "h_swish")))
            size = out
        c_last = self.stage_widths[-1]
        ops.append(OpSpec("Conv_1", (size, size, c_last), (size, size, self.final_expand_width), kernel=1,
                          act="h_swish"))
        ops.append(OpSpec("AvgPool2D", (size, size, self.final_expand_width), (1, 1, self.final_expand_width)))
        ops.append(OpSpec("Conv_2", (1, 1, self.final_expand_width), (1, 1, self.last_channel), kernel=1,
                          act="h_swish", bn=0))
        ops.append(OpSpec("Logits", (1, 1, self.last_channel), (self.n_classes,)))
        return ops

    def covering_archs(self) -> list[OFAArch]:
        """The deepest arch of each profiled resolution and uniform (k, e): together they run each stage's first
        and later blocks with every (k, e) at every profiled resolution (the operators a profile measures; the
        other resolutions are interpolated between them)."""
        big = self.max_depth
        return [self.make([k] * self.n_slots, [e] * self.n_slots, [big] * self.n_stages, r)
                for r in self.profiled_resolutions for k in self.ks_list for e in self.expand_list]

    def op_flops(self, op: OpSpec) -> int:
        return op_flops(op)

    def op_params(self, op: OpSpec) -> int:
        return op_params(op)


def op_flops(op: OpSpec) -> int:
    """Multiply-accumulates of an operator's convolutions and linear layers (OFA's FLOPs convention)."""
    h_in, w_in = op.input[0], op.input[1] if len(op.input) > 1 else 1
    h_out, w_out = (op.output[0], op.output[1]) if len(op.output) == 3 else (1, 1)
    c_in, c_out = op.input[-1], op.output[-1]
    if op.type == "expanded_conv":
        mid = op.expand
        total = mid * op.kernel * op.kernel * h_out * w_out + mid * c_out * h_out * w_out
        if mid != c_in:  # an expand ratio of 1 has no inverted bottleneck
            total += c_in * mid * h_in * w_in
        if op.se:
            total += 2 * mid * make_divisible(mid // SE_REDUCTION)
        return total
    if op.type in ("Conv", "Conv_1", "Conv_2"):
        return c_in * c_out * op.kernel * op.kernel * h_out * w_out
    if op.type == "Logits":
        return c_in * c_out
    return 0


def op_params(op: OpSpec) -> int:
    """Learnable parameters of an operator (conv/linear weights and biases, batch-norm scale and shift)."""
    c_in, c_out = op.input[-1], op.output[-1]
    if op.type == "expanded_conv":
        mid = op.expand
        total = mid * op.kernel * op.kernel + 2 * mid + mid * c_out + 2 * c_out
        if mid != c_in:
            total += c_in * mid + 2 * mid
        if op.se:
            se_mid = make_divisible(mid // SE_REDUCTION)
            total += mid * se_mid + se_mid + se_mid * mid + mid
        return total
    if op.type in ("Conv", "Conv_1", "Conv_2"):
        return c_in * c_out * op.kernel * op.kernel + (2 * c_out if op.bn else 0) + (c_out if op.bias else 0)
    if op.type == "Logits":
        return c_in * c_out + c_out
    return 0


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
