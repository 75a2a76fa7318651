"""Parse the output of TFLite's `benchmark_model` tool: the timings summary, the timed-runs statistics line
and, with --enable_op_profiling, the per-operator "Run Order" table.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["parse_benchmark_output", "parse_op_profile", "BenchmarkOutputError"]

# log prefixes seen in the wild: "INFO: " (desktop builds), "I tflite  : " (logcat), none (old builds)
_PREFIX = re.compile(r"^(?:[A-Z] [\w.]+\s*:\s|INFO:\s|WARNING:\s)?")
_NUM = r"([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)"
_SUMMARY = re.compile(
    rf"Inference timings in us: Init: {_NUM}, First inference: {_NUM}, Warmup \(avg\): {_NUM}, "
    rf"Inference \(avg\): {_NUM}"
)
_STAT = re.compile(r"(\w+)=" + _NUM)


class BenchmarkOutputError(ValueError):
    """The text holds no benchmark_model timings summary."""


def _strip(line: str) -> str:
    return _PREFIX.sub("", line.rstrip("\r\n"), count=1)


def parse_benchmark_output(text: str) -> dict[str, Any]:
    """Timings in microseconds, as printed: init_us, first_us, warmup_avg_us, inference_avg_us, and `runs`
    (count, first, curr, min, max, avg, std and, in newer builds, p5, median, p95) for the timed runs and
    `warmup` for the warm-up runs. `op_profile` is the per-operator table when present (else None)."""
    lines = [_strip(line) for line in text.splitlines()]
    summary_at = None
    result: dict[str, Any] = {}
    for i, line in enumerate(lines):
        match = _SUMMARY.search(line)
        if match:
            summary_at = i
            init, first, warm, infer = (float(g) for g in match.groups())
            result.update(init_us=init, first_us=first, warmup_avg_us=warm, inference_avg_us=infer)
    if summary_at is None:
        raise BenchmarkOutputError("no 'Inference timings in us' line in benchmark_model output")
    # the tool prints one statistics line for the warm-up runs, then one for the timed runs
    stats = [_stats(line) for line in lines[:summary_at] if line.startswith("count=")]
    result["runs"] = stats[-1] if stats else {"count": 0.0, "avg": result["inference_avg_us"]}
    result["warmup"] = stats[-2] if len(stats) >= 2 else {}
    result["op_profile"] = parse_op_profile(text)
    return result


def _stats(line: str) -> dict[str, float]:
    return {name: float(value) for name, value in _STAT.findall(line)}


_HEADER_NAMES = {
    "node type": "node_type", "start": "start_ms", "first": "first_ms", "avg ms": "avg_ms", "%": "pct",
    "cdf%": "cdf_pct", "mem kb": "mem_kb", "times called": "times_called", "name": "name",
}


def parse_op_profile(text: str) -> list[dict[str, Any]] | None:
    """Rows of the "Run Order" table of the regular (not initialization) runs, or None without profiling."""
    lines = [_strip(line) for line in text.splitlines()]
    try:
        start = next(i for i, line in enumerate(lines) if "Profiling Info for Regular Benchmark Runs" in line)
    except StopIteration:
        return None
    try:
        order = next(i for i in range(start, len(lines)) if "Run Order" in lines[i])
    except StopIteration:
        return None
    header = re.findall(r"\[([^\]]+)\]", lines[order + 1])
    keys = [_HEADER_NAMES.get(h.strip().lower(), re.sub(r"\W+", "_", h.strip().lower())) for h in header]
    rows = []
    for line in lines[order + 2:]:
        if not line.strip() or line.lstrip().startswith("="):
            break
        cells = [c.strip() for c in line.strip().split("\t") if c.strip() != ""]
        if len(cells) < len(keys):
            cells = line.split()
            cells = cells[: len(keys) - 1] + [" ".join(cells[len(keys) - 1:])]
        row: dict[str, Any] = {}
        for key, cell in zip(keys, cells, strict=False):  # short rows: missing cells stay absent
            if key in ("node_type", "name"):
                row[key] = cell
            else:
                try:
                    row[key] = float(cell.rstrip("%"))
                except ValueError:
                    row[key] = cell
        rows.append(row)
    return rows
