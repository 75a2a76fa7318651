"""The Device contract: a context manager that fingerprints a target and benchmarks models on it.

Profiling, deploy and the CLI code against these types only; transports (local, ssh, adb) implement them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hwnas.files import sha256_file

__all__ = ["BenchmarkModel", "BenchmarkSettings", "Measurement", "Device", "sha256_file"]

RUNTIMES = ("tflite", "onnxruntime", "torch")


@dataclass(frozen=True)
class BenchmarkModel:
    """One model file to measure. `key` is the op or arch key the measurement is filed under."""

    path: Path
    key: str
    sha256: str = ""
    input_shapes: tuple[tuple[int, ...], ...] | None = None  # needed only by the torch runtime (TorchScript)

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        if not self.sha256:
            object.__setattr__(self, "sha256", sha256_file(self.path))


@dataclass(frozen=True)
class BenchmarkSettings:
    """How to measure: warm-up runs, then `runs` timed runs (or at least `min_seconds`), over `rounds`
    interleaved rounds of the whole batch."""

    runtime: str = "tflite"
    threads: int = 1
    warmup: int = 10
    runs: int = 50
    min_seconds: float = 0.0
    rounds: int = 3
    timeout_per_model_s: float = 120.0
    pin_cores: tuple[int, ...] | None = None
    use_gpu: bool = False
    timeout_per_batch_s: float | None = None  # None: no limit for the whole batch
    op_profiling: bool = False  # adb benchmark_model: also parse the per-operator table
    fresh_session: bool = False  # load each model anew for every round (its memory placement is then sampled too)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Measurement:
    """One model's latency on one device. Every field holding milliseconds ends in `_ms`."""

    model_sha256: str
    key: str
    device: str
    runtime: str
    runtime_version: str
    threads: int
    warmup: int
    runs: int
    median_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    p90_ms: float
    n: int
    state_before: dict[str, Any] = field(default_factory=dict)
    state_after: dict[str, Any] = field(default_factory=dict)
    timestamp: float = 0.0
    status: str = "ok"  # "ok" or "failed"
    error: str | None = None
    wall_ms: float | None = None  # wall time the transport spent on this model, for overhead figures
    run_total_ms: float | None = None  # time inside the runtime for this model (warm-up + timed runs, all rounds)
    op_profile: list[dict[str, Any]] | None = None  # per-operator rows (adb benchmark_model with op_profiling)
    sessions: int | None = None  # how many times the model was loaded for its rounds (None: not reported)
    round_medians_ms: list[float] | None = None  # the median of each round's samples, in round order (as measured)
    round_levels: list[float] | None = None  # each round's level across its batch, divided out of the statistics
    raw_median_ms: float | None = None  # the median before dividing by the round levels

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Measurement:
        names = cls.__dataclass_fields__.keys()
        return cls(**{k: v for k, v in data.items() if k in names})

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class Device(ABC):
    """A target device. Use as a context manager: `with open_device(...) as dev: dev.benchmark(...)`."""

    name: str

    def default_settings(self) -> BenchmarkSettings:
        """How this device measures unless told otherwise: its inventory entry's settings, else the defaults."""
        config = getattr(self, "config", None)
        return config.settings() if config is not None and hasattr(config, "settings") else BenchmarkSettings()

    def __enter__(self) -> Device:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> None:  # noqa: B027 - optional hook
        """Open the link to the device."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Close the link and clean up temporary files on the device."""

    @abstractmethod
    def info(self) -> dict[str, Any]:
        """A fingerprint: CPU model, cores, ABI, OS, Python, runtimes and versions, governor, thermal zones."""

    @abstractmethod
    def benchmark(
        self, models: Sequence[BenchmarkModel], settings: BenchmarkSettings
    ) -> Iterator[Measurement]:
        """Push what the device lacks (by sha256), run the on-device runner, yield one Measurement per
        model as soon as it is known (failed models too, with status 'failed')."""
