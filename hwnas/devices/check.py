"""What a device lacks to be measured with its inventory settings, each with the exact command that fixes it."""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from typing import Any

from hwnas.devices.inventory import DeviceConfig

__all__ = ["Problem", "find_problems", "PIP_PACKAGES"]

PIP_PACKAGES = {"tflite": "ai-edge-litert", "onnxruntime": "onnxruntime", "torch": "torch", "numpy": "numpy"}


@dataclass(frozen=True)
class Problem:
    what: str
    fix: str
    blocking: bool = True


def _on_device(config: DeviceConfig, argv: list[str]) -> str:
    """A command line that runs argv on the device, as the user would type it."""
    if config.transport == "ssh":
        target = f"{config.user}@{config.host}" if config.user else str(config.host)
        port = ["-p", str(config.port)] if config.port else []
        return shlex.join(["ssh", *port, target, shlex.join(argv)])
    if config.transport == "adb":
        return shlex.join([config.adb, "-s", str(config.serial), "shell", shlex.join(argv)])
    return shlex.join(argv)


def _pip(config: DeviceConfig, info: dict[str, Any], package: str) -> str:
    python = config.python or (sys.executable if config.transport == "local" else "python3")
    argv = [python, "-m", "pip", "install"] + (["--user"] if config.transport != "local" else []) + [package]
    return _on_device(config, argv)


def find_problems(config: DeviceConfig, info: dict[str, Any]) -> list[Problem]:
    """Problems found in a device's fingerprint (from Device.info()); empty when it is ready."""
    problems: list[Problem] = []
    runtimes = info.get("runtimes") or {}
    runtime = config.runtime
    if config.transport == "adb" and info.get("mode") == "none":
        problems.append(Problem(
            f"nothing on the phone can run {runtime} models (no benchmark_model named, no Python with {runtime})",
            shlex.join(["hwnas", "device", "add", config.name, "--adb", str(config.serial), "--runtime", runtime,
                        "--benchmark-model", "PATH/TO/benchmark_model", "--force"]),
        ))
        return problems
    if config.transport == "adb" and info.get("mode") == "benchmark_model":
        return problems
    if not info.get("numpy"):
        problems.append(Problem("numpy is missing on the device", _pip(config, info, "numpy")))
    if not runtimes.get(runtime):
        package = PIP_PACKAGES[runtime]
        if runtime == "onnxruntime" and config.gpu:
            package = "onnxruntime-gpu"
        problems.append(Problem(f"runtime {runtime} is missing on the device", _pip(config, info, package)))
    if config.gpu and runtime == "onnxruntime" and runtimes.get("onnxruntime"):
        providers = runtimes.get("onnxruntime_providers") or []
        if not any(p in providers for p in ("CUDAExecutionProvider", "TensorrtExecutionProvider")):
            problems.append(Problem("gpu = true but onnxruntime has no CUDA/TensorRT provider",
                                    _pip(config, info, "onnxruntime-gpu")))
    if config.gpu and runtime == "torch" and not info.get("nvidia_gpu"):
        problems.append(Problem("gpu = true but no NVIDIA GPU driver is visible on the device",
                                _on_device(config, ["nvidia-smi"])))
    governor = info.get("governor")
    if governor and governor not in ("performance", "userspace"):
        problems.append(Problem(
            f"CPU governor is {governor!r}: latencies drift with frequency scaling (advice, not required)",
            _on_device(config, ["sudo", "cpupower", "frequency-set", "-g", "performance"]), blocking=False,
        ))
    return problems
