"""The one schema of a profile file, checked on load (pydantic): types, finite positive latencies, every
measured subnet with its key and arch. Unknown fields are kept (a newer hwnas may add some)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hwnas.errors import ProfilingError

__all__ = ["check_profile"]

LatencyMs = Annotated[float, Field(strict=True, gt=0, lt=1e7, allow_inf_nan=False)]
SpreadMs = Annotated[float, Field(strict=True, ge=0, lt=1e7, allow_inf_nan=False)]
Count = Annotated[int, Field(strict=True, ge=1)]
Name = Annotated[str, Field(strict=True, min_length=1, max_length=200)]


class _Stats(BaseModel):
    model_config = ConfigDict(extra="allow")

    median_ms: LatencyMs
    mean_ms: LatencyMs | None = None
    min_ms: LatencyMs | None = None
    p90_ms: LatencyMs | None = None
    std_ms: SpreadMs | None = None
    n: Count | None = None


class _Subnet(_Stats):
    key: Name
    arch: dict[str, Any] | Name


Percent = Annotated[float, Field(strict=False, ge=0, lt=1e9, allow_inf_nan=False)]
Ratio = Annotated[float, Field(strict=False, gt=0, lt=1e6, allow_inf_nan=False)]


class _Level(BaseModel):
    """A level read on `n` reference subnets as the median ratio of two batches (`drift.batch_level`)."""

    model_config = ConfigDict(extra="allow")

    n: Count
    level: Ratio


class _Again(_Level):
    """A session's reference subnets measured again against the profile's batch, and how far one strays."""

    spread_pct: Percent


class _SessionLevel(_Level):
    """A session's level against the references measured again, with its band of three standard errors."""

    band_pct: Percent


class _Session(BaseModel):
    """A profiling session's summary (`drift.session_summaries`): what `fit` and deploy's check read."""

    model_config = ConfigDict(extra="allow")

    id: Name
    checks: dict[str, dict[str, LatencyMs]] = {}
    drift_pct: Percent | None = None
    threshold_pct: Percent | None = None
    check_threshold_pct: Percent | None = None
    noise_pct: Percent | None = None
    drifted: Annotated[bool, Field(strict=True)] | None = None
    again: _Again | None = None


class _Levels(BaseModel):
    """Each session's level against the references measured again (`drift.reference_levels`)."""

    model_config = ConfigDict(extra="allow")

    spread_pct: Percent
    floor_pct: Percent
    sessions: dict[str, _SessionLevel]


class _Profile(BaseModel):
    model_config = ConfigDict(extra="allow")

    device: Name
    space: dict[str, Any]
    runtime: Name
    precision: Name
    threads: Count | None = None
    operators: dict[str, _Stats]
    missing_operators: list[str] = []
    reference: list[_Subnet] = []
    calibration: list[_Subnet] = []
    extra: list[_Subnet] = []
    reference_again: list[_Subnet] = []
    sessions: list[_Session] = []
    reference_levels: _Levels | None = None


def check_profile(data: dict[str, Any], path: str | Path) -> None:
    """A ProfilingError on one line naming the file, the first bad field and what it must be."""
    try:
        _Profile.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "the document"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ProfilingError(f"profile {path}: {where}: {error['msg']}{more}; re-run `hwnas profile` to rebuild it "
                             "from the measurement store") from None
    if not isinstance(data["space"].get("name"), str):
        raise ProfilingError(f"profile {path}: space.name is missing; re-run `hwnas profile`")
