"""Every command in README.md is run by a test: here, in a copy of the repository's shipped workspace, or by a
named test elsewhere (COVERED_ELSEWHERE, for the slow ones). A README command that nothing runs fails here."""

from __future__ import annotations

import ast
import glob
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SHIPPED = ("devices", "profiles", "predictors")  # the repository root's workspace with its examples


class Expect(NamedTuple):
    """What a README command run here must show: substrings of its output and files (globs) it leaves."""

    output: tuple[str, ...] = ()
    files: tuple[str, ...] = ()


# README command (whitespace normalised, comment dropped) -> the test that runs it, as "path::function".
COVERED_ELSEWHERE = {
    # installs the environment, then execs `hwnas demo`; the demo itself is run by the test below, and
    # test_fresh_machine_scripts_install_then_run checks what the script runs
    "./scripts/demo": "tests/search/test_demo.py::test_demo_quick_runs_end_to_end",
    # runs the whole suite (which includes this file)
    "./scripts/test": "tests/test_readme.py::test_fresh_machine_scripts_install_then_run",
    # the full demo takes minutes; the same job in its quick plan runs end to end there
    "hwnas demo": "tests/search/test_demo.py::test_demo_quick_runs_end_to_end",
    # the download, from a real HTTP server on loopback standing in for OFA's (HWNAS_SUPERNET_URL_BASE): tests
    # never reach outside this machine
    "hwnas supernet download ofa_mbv3_d234_e346_k357_w1.0":
        "tests/supernet/test_download.py::test_download_completes_and_loads",
}

# Every other README command runs here, in README order, and must exit 0 and show this.
EXPECT = {
    "hwnas spaces": Expect(("ofa-mbv3", "nasbench201")),
    "hwnas space sample ofa-mbv3 -n 3 --json > archs.json": Expect(files=("archs.json",)),
    "hwnas space show archs.json": Expect(("ofa-mbv3 r", "MMACs", "expanded_conv-input:")),
    "hwnas device list": Expect(("local-cpu-ort", "onnxruntime", "tflite")),
    "hwnas device add cpu --local --runtime onnxruntime": Expect(files=("devices/cpu.toml",)),
    "hwnas device check cpu": Expect(("cpu is ready",)),
    "hwnas profile cpu --archs archs.json --measure-archs archs.json --reference 0 --calibration 0":
        Expect(("3 whole subnets",), ("profiles/cpu/ofa-mbv3-onnxruntime-fp32.json",)),
    "hwnas fit cpu --predictor lut": Expect(("lut for cpu",), ("predictors/cpu-ofa-mbv3-onnxruntime.json",)),
    "hwnas predict cpu archs.json": Expect(("predicted latency (ms)", "r")),
    "hwnas predict local-cpu-ort archs.json": Expect(("lut-calibrated", "predicted latency (ms)")),
    "hwnas predictor eval local-cpu-ort --compare": Expect(("Spearman", "lut-calibrated", "gbm")),
    "hwnas export archs.json --space ofa-mbv3 --format onnx --out models/":
        Expect(("random weights", "max diff"), ("models/r*/onnx-fp32/model.onnx", "models/r*/onnx-fp32/model.json")),
    "hwnas export r32-3354-335476-5354-7373-7673 --supernet hwnas/assets/demo_mbv3_mnist.pt --format onnx --int8 "
    "--calib mnist5k --out models/":
        Expect(("top-1 agree",), ("models/r32-3354-335476-5354-7373-7673/onnx-int8/model.onnx",)),
    "hwnas bench models/r32-3354-335476-5354-7373-7673/onnx-int8/model.onnx --device cpu --runs 10":
        Expect(("measured on cpu", "median ms")),
    "hwnas demo --quick --out hwnas-demo":
        Expect(("Everything is in",), ("hwnas-demo/predictors/local-cpu-ort-ofa-mbv3-onnxruntime.json",)),
    "hwnas search -w hwnas-demo --supernet hwnas/assets/demo_mbv3_mnist.pt --data mnist5k --device local-cpu-ort "
    "--latency-ms local-cpu-ort=1 --evals 6 --limit 100 --out hwnas-demo/runs/tour":
        Expect(("front:",), ("hwnas-demo/runs/tour/front.json", "hwnas-demo/runs/tour/report.html",
                             "hwnas-demo/runs/tour/evaluated.jsonl")),
    "hwnas deploy hwnas-demo/runs/tour -w hwnas-demo --device local-cpu-ort --format onnx":
        Expect(("models in hwnas-demo/runs/tour/models",), ("hwnas-demo/runs/tour/models/*/onnx-fp32/model.onnx",)),
    "hwnas optimize -w hwnas-demo --device local-cpu-ort --supernet hwnas/assets/demo_mbv3_mnist.pt "
    "--max-latency 1 --evals 6 --limit 100 --max-models 2 --format onnx":
        Expect(("reusing", "budget 1 ms", "Everything is in"), ("hwnas-demo/runs/optimize-local-cpu-ort/front.json",
                                                                 "hwnas-demo/runs/optimize-local-cpu-ort/report.html")),
    "hwnas supernet list": Expect(("ofa_mbv3_d234_e346_k357_w1.0", "ofa_mbv3_d234_e346_k357_w1.2")),
    # Ray: run in a network namespace of their own when root (see `_isolated`), so nothing binds beyond loopback
    "hwnas profile local-cpu local-cpu-ort --ray --no-operators --measure-archs archs.json --reference 0 "
    "--calibration 0":
        Expect(("local-cpu: wrote", "local-cpu-ort: wrote", "3 whole subnets"),
               ("profiles/local-cpu/ofa-mbv3-tflite-fp32.json",)),
    "hwnas search -w hwnas-demo --supernet hwnas/assets/demo_mbv3_mnist.pt --data mnist5k --device local-cpu-ort "
    "--evals 6 --limit 100 --ray --workers 2 --out hwnas-demo/runs/ray":
        Expect(("front:",), ("hwnas-demo/runs/ray/front.json", "hwnas-demo/runs/ray/evaluated.jsonl")),
}


def _isolated(command: str) -> list[str]:
    """The argv that runs `command` with bash; a Ray command (which starts servers listening on every
    interface) in a new network namespace holding only loopback, when root can make one."""
    argv = ["bash", "-o", "pipefail", "-c", command]
    if "--ray" in command.split() and os.geteuid() == 0 and shutil.which("unshare") and shutil.which("ip"):
        return ["unshare", "--net", "bash", "-c", 'ip link set lo up && exec "$@"', "isolated", *argv]
    return argv


def _strip_comment(line: str) -> str:
    """The line without a shell comment (a '#' starting a word outside quotes)."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def readme_commands(text: str) -> list[str]:
    """The commands of the ```bash blocks, in order: continuation lines joined, comments dropped, whitespace
    normalised."""
    commands = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M):
        joined = re.sub(r"\\\n", " ", block)
        for line in joined.splitlines():
            command = " ".join(_strip_comment(line).split())
            if command:
                commands.append(command)
    return commands


COMMANDS = readme_commands(README.read_text())


def test_every_readme_command_is_run_here_or_covered_elsewhere():
    missing = [c for c in COMMANDS if c not in COVERED_ELSEWHERE and c not in EXPECT]
    assert not missing, ("README commands that no test runs; add each to EXPECT (run here) or to "
                         f"COVERED_ELSEWHERE (a test that runs it): {missing}")
    stale = [c for c in [*COVERED_ELSEWHERE, *EXPECT] if c not in COMMANDS]
    assert not stale, f"entries for commands no longer in README.md: {stale}"
    assert COMMANDS[:2] == ["./scripts/demo", "./scripts/test"], "the two fresh-machine commands come first"


@pytest.mark.parametrize("command", sorted(COVERED_ELSEWHERE))
def test_covered_elsewhere_names_a_test_that_exists(command):
    path, _, name = COVERED_ELSEWHERE[command].partition("::")
    source = ROOT / path
    assert source.is_file(), f"{command!r}: {path} does not exist"
    functions = {node.name for node in ast.walk(ast.parse(source.read_text()))
                 if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    assert name.startswith("test_") and name in functions, f"{command!r}: no test {name} in {path}"


def test_fresh_machine_scripts_install_then_run():
    """What `./scripts/demo` and `./scripts/test` run: the install, then the demo or the whole suite."""
    for script, runs in (("demo", 'exec hwnas demo "$@"'), ("test", "exec python -m pytest")):
        path = ROOT / "scripts" / script
        assert os.access(path, os.X_OK), f"scripts/{script} is not executable"
        lines = [line.strip() for line in path.read_text().splitlines()]
        install = next(i for i, line in enumerate(lines) if line.startswith("scripts/install"))
        assert any(line.startswith(runs) for line in lines[install + 1:]), f"scripts/{script} does not {runs}"


def test_readme_is_a_short_manual_whose_links_stay_in_the_repository():
    text = README.read_text()
    assert len(text.splitlines()) <= 200
    for target in re.findall(r"\]\(([^)#\s]+)", text):
        if re.match(r"[a-z]+://", target):
            continue
        resolved = (ROOT / target).resolve()
        assert resolved.is_relative_to(ROOT), f"README links outside the repository: {target}"
        assert resolved.exists(), f"README links a missing file: {target}"


@pytest.fixture
def shipped_workspace(tmp_path) -> Path:
    """A copy of the repository root's workspace (devices/, profiles/, predictors/), with the shipped demo
    supernet at its repository path, so README commands run as from the root without writing into it."""
    for name in SHIPPED:
        shutil.copytree(ROOT / name, tmp_path / name)
    (tmp_path / "runs").mkdir()
    (tmp_path / "hwnas").mkdir()
    (tmp_path / "hwnas" / "assets").symlink_to(ROOT / "hwnas" / "assets")
    return tmp_path


@pytest.mark.slow
def test_readme_commands_run_in_order_in_the_shipped_workspace(shipped_workspace):
    bin_dir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if k not in ("HWNAS_WORKSPACE", "HWNAS_DEBUG")}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", COLUMNS="200", NO_COLOR="1")
    assert shutil.which("hwnas", path=env["PATH"]), f"no hwnas command in {bin_dir}"
    for command in COMMANDS:
        if command in COVERED_ELSEWHERE:
            continue
        proc = subprocess.run(_isolated(command), cwd=shipped_workspace, env=env,
                              capture_output=True, text=True, timeout=600)
        shown = proc.stdout + proc.stderr
        assert proc.returncode == 0, f"`{command}` exited {proc.returncode}:\n{shown[-3000:]}"
        expect = EXPECT[command]
        for part in expect.output:
            assert part in shown, f"`{command}` did not print {part!r}:\n{shown[-3000:]}"
        for pattern in expect.files:
            assert glob.glob(str(shipped_workspace / pattern)), f"`{command}` left no {pattern}"
