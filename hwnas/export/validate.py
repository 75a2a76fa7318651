"""One validator for every format: run the written file and the PyTorch model on the same inputs and compare.

In the manner of optimum's exporters: every output's shape and values are checked, all mismatches are
collected, and a ValidationError reports the largest difference.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from hwnas.errors import ValidationError
from hwnas.export.config import ExportConfig
from hwnas.export.runners import Runner

__all__ = ["ValidationResult", "torch_outputs", "validate_export"]


@dataclass
class ValidationResult:
    """What the validator found. `passed` is False only when raising was turned off."""

    passed: bool
    format: str
    precision: str
    runtime: str
    n_inputs: int
    atol: float | None
    max_abs_diff: float
    mean_abs_diff: float
    max_rel_diff: float
    nrmse: float
    top1_agreement: float | None = None
    min_top1_agreement: float | None = None
    max_nrmse: float | None = None
    rtol: float | None = None
    mismatches: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def torch_outputs(model: torch.nn.Module, inputs: np.ndarray) -> list[np.ndarray]:
    """The model's outputs on `inputs`, flattened to a list of float32 arrays (tuples, lists, dicts)."""
    with torch.no_grad():
        out = model(torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32)))
    return [t.detach().cpu().numpy().astype(np.float32) for t in _flatten(out)]


def _flatten(out: Any) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        return [t for key in out for t in _flatten(out[key])]
    if isinstance(out, (list, tuple)):
        return [t for item in out for t in _flatten(item)]
    raise ValidationError(f"the model returned {type(out).__name__}; export needs tensors (or tuples/dicts of them)")


def validate_export(
    model: torch.nn.Module,
    runner: Runner,
    inputs: np.ndarray,
    precision: str = "fp32",
    config: ExportConfig | None = None,
    label: str = "model",
    raise_on_error: bool = True,
) -> ValidationResult:
    """Compare `runner`'s outputs with `model`'s on `inputs` (N, ...); raise ValidationError on any mismatch."""
    config = config or ExportConfig()
    expected = torch_outputs(model, inputs)
    actual = runner.run(inputs)
    mismatches: list[str] = []
    worst = (0.0, "")  # (difference, which output)
    max_abs = mean_abs = max_rel = nrmse = 0.0
    top1: float | None = None
    fp16_atol = 0.0  # the largest absolute tolerance the fp16 check applied
    if len(actual) != len(expected):
        mismatches.append(f"{len(actual)} outputs, PyTorch has {len(expected)}")
    for k, (ref, got) in enumerate(zip(expected, actual, strict=False)):
        name = f"output {k}"
        if tuple(ref.shape) != tuple(got.shape):
            mismatches.append(f"{name} has shape {tuple(got.shape)}, PyTorch {tuple(ref.shape)}")
            continue
        diff = np.abs(ref.astype(np.float64) - got.astype(np.float64))
        if not np.all(np.isfinite(got)):
            mismatches.append(f"{name} holds NaN or infinity")
            continue
        d_max = float(diff.max()) if diff.size else 0.0
        scale = float(np.abs(ref).max()) if ref.size else 0.0
        rel = d_max / scale if scale > 0 else d_max
        spread = float(ref.std()) if ref.size else 0.0
        rms = float(np.sqrt(np.mean(diff**2))) if diff.size else 0.0
        out_nrmse = rms / spread if spread > 0 else rms
        max_abs, max_rel, nrmse = max(max_abs, d_max), max(max_rel, rel), max(nrmse, out_nrmse)
        mean_abs = max(mean_abs, float(diff.mean()) if diff.size else 0.0)
        if d_max > worst[0]:
            worst = (d_max, name)
        if precision == "fp32":
            if d_max > config.atol:
                mismatches.append(f"{name} max abs diff {d_max:.3g} > atol {config.atol:g} "
                                  f"({int((diff > config.atol).sum())} of {diff.size} values)")
        elif precision == "fp16":
            tolerance = config.fp16_rtol * scale
            fp16_atol = max(fp16_atol, tolerance)
            if d_max > tolerance:
                mismatches.append(f"{name} max abs diff {d_max:.3g} > fp16 tolerance {tolerance:.3g} "
                                  f"({config.fp16_rtol:g} of the largest PyTorch output, {scale:.3g})")
            if k == 0 and ref.ndim == 2 and ref.shape[1] > 1:
                top1 = float(np.mean(ref.argmax(1) == got.argmax(1)))
        else:
            if out_nrmse > config.int8_max_nrmse:
                mismatches.append(f"{name} RMS difference is {out_nrmse:.2f} of the output's standard deviation "
                                  f"(> int8 tolerance {config.int8_max_nrmse:g}; max abs diff {d_max:.3g})")
            if k == 0 and ref.ndim == 2 and ref.shape[1] > 1:
                top1 = float(np.mean(ref.argmax(1) == got.argmax(1)))
                if top1 < config.int8_min_top1_agreement:
                    mismatches.append(f"{name} top-1 agrees with PyTorch on {top1:.1%} of {ref.shape[0]} inputs "
                                      f"(< {config.int8_min_top1_agreement:.0%})")
    result = ValidationResult(
        passed=not mismatches,
        format=runner.format,
        precision=precision,
        runtime=runner.runtime,
        n_inputs=int(inputs.shape[0]),
        atol={"fp32": config.atol, "fp16": fp16_atol}.get(precision),
        max_abs_diff=max_abs,
        mean_abs_diff=mean_abs,
        max_rel_diff=max_rel,
        nrmse=nrmse,
        top1_agreement=top1,
        min_top1_agreement=config.int8_min_top1_agreement if precision == "int8" else None,
        max_nrmse=config.int8_max_nrmse if precision == "int8" else None,
        rtol=config.fp16_rtol if precision == "fp16" else None,
        mismatches=mismatches,
    )
    if mismatches and raise_on_error:
        largest = f"largest difference {worst[0]:.3g} in {worst[1]}" if worst[1] else "outputs differ in shape"
        others = ""
        if len(mismatches) > 1:
            others = f"; {len(mismatches) - 1} more mismatch(es): " + "; ".join(mismatches[1:])
        raise ValidationError(
            f"{runner.format} {precision} export of {label} does not match PyTorch ({largest}): {mismatches[0]}"
            f"{others}. Export with --no-validate to keep it anyway, or loosen the tolerance in ExportConfig"
        )
    return result
