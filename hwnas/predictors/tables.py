"""Reading operator latency tables: hwnas profile JSON files, OFA's published YAML tables, plain dicts.

A table maps an operator key (OFA style, see `OpSpec.key`) to its latency in ms.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from hwnas.errors import PredictorError

__all__ = ["read_table", "table_from_mapping", "read_ofa_yaml", "PROFILE_FORMAT", "MAX_ENTRY_MS"]

PROFILE_FORMAT = "hwnas-profile"
MAX_ENTRY_MS = 1e6  # no operator takes 1000 s: a larger entry is a damaged file


def _value_ms(key: str, value: Any, source: str) -> float:
    if isinstance(value, Mapping):
        for field in ("median_ms", "mean_ms", "mean", "latency_ms"):
            if field in value:
                value = value[field]
                break
        else:
            raise PredictorError(f"{source}: entry {key!r} has no median_ms/mean_ms/mean field")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0 \
            or value > MAX_ENTRY_MS:
        raise PredictorError(f"{source}: entry {key!r} is {value!r}, not a latency in ms (0..{MAX_ENTRY_MS:g})")
    return float(value)


def table_from_mapping(data: Mapping[str, Any], source: str = "the table") -> dict[str, float]:
    """{op key: ms} from {key: ms} or {key: {median_ms|mean_ms|mean: ms, ...}}."""
    if not isinstance(data, Mapping) or not data:
        raise PredictorError(f"{source} holds no operator latencies")
    return {str(k): _value_ms(str(k), v, source) for k, v in data.items()}


def read_ofa_yaml(path: str | Path) -> dict[str, float]:
    """One of OFA's published tables (`{key: {count, mean, std}}`, mean in ms), via yaml.safe_load."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise PredictorError(f"latency table {path} is not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, Mapping):
        raise PredictorError(f"latency table {path} is not a mapping of operator keys to {{count, mean, std}}")
    return table_from_mapping(data, f"latency table {path}")


def read_table(source: Any, runtime: str | None = None, precision: str | None = None,
               space_name: str | None = None) -> dict[str, float]:
    """A table from a dict, a profile JSON file, an OFA YAML file, or a list of such files (merged)."""
    if isinstance(source, Mapping):
        if source.get("format") == PROFILE_FORMAT:
            return _from_profile(source, "the profile", runtime, precision, space_name)
        return table_from_mapping(source)
    if isinstance(source, (list, tuple)):
        merged: dict[str, float] = {}
        for item in source:
            merged.update(read_table(item, runtime, precision, space_name))
        return merged
    path = Path(source)
    if not path.is_file():
        raise PredictorError(f"latency table {path} does not exist; run `hwnas profile` first")
    if path.suffix in (".yaml", ".yml"):
        return read_ofa_yaml(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PredictorError(f"latency table {path} is corrupt or truncated ({exc}); re-run `hwnas profile`") \
            from None
    if isinstance(data, Mapping) and data.get("format") == PROFILE_FORMAT:
        return _from_profile(data, str(path), runtime, precision, space_name)
    return table_from_mapping(data, f"latency table {path}")


def _from_profile(data: Mapping[str, Any], source: str, runtime: str | None, precision: str | None,
                  space_name: str | None) -> dict[str, float]:
    for field, wanted in (("runtime", runtime), ("precision", precision)):
        if wanted is not None and data.get(field) != wanted:
            raise PredictorError(f"{source} is a {data.get(field)} profile, not {wanted}; "
                                 f"profile the device for {wanted}")
    found_space = (data.get("space") or {}).get("name") if isinstance(data.get("space"), Mapping) else None
    if space_name is not None and found_space != space_name:
        raise PredictorError(f"{source} profiles space {found_space!r}, not {space_name!r}")
    return table_from_mapping(data.get("operators") or {}, source)
