"""Fixtures: the NAS-Bench-201 table with measured device latency (a known true front), and a workspace for the
`hwnas search` / `hwnas deploy` CLI tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hwnas.cli.app import main
from hwnas.devices.inventory import add_device
from hwnas.predictors import create_predictor
from hwnas.search import Normalization, hypervolume, pareto_mask
from hwnas.search.tabular import Table
from hwnas.supernet import demo_checkpoint_path, load_checkpoint
from hwnas.workspace import Workspace

NB201 = Path(__file__).resolve().parents[3] / "shared" / "data" / "nasbench201"


@pytest.fixture(scope="session")
def nb201_table() -> Table:
    if not (NB201 / "nb201_accuracy.csv").is_file():
        pytest.skip(f"NAS-Bench-201 tables not found at {NB201}")
    table = Table.from_csv([NB201 / "nb201_accuracy.csv", NB201 / "nb201_cifar10_latency_via_help.csv"],
                           key="arch_str", columns=["cifar10_test_acc", "cifar10_raspi4_latency_ms"])
    return table.filter(lambda a: not table.space.is_degenerate(a))


@pytest.fixture(scope="session")
def nb201_problem(nb201_table):
    """(objectives, normalisation over the table, best hypervolume) for top-1 vs Raspberry Pi 4 latency."""
    t = nb201_table
    acc = t.objective("cifar10_test_acc", direction="max", name="top1", missing="worst")
    lat = t.objective("cifar10_raspi4_latency_ms", name="latency_ms[raspi4]", missing="worst")
    a_lo, a_hi = t.bounds("cifar10_test_acc")
    l_lo, l_hi = t.bounds("cifar10_raspi4_latency_ms")
    norm = Normalization((-a_hi, l_lo), (-a_lo, l_hi), (1.0, 1.0))
    F = np.stack([-t.data["cifar10_test_acc"], t.data["cifar10_raspi4_latency_ms"]], axis=1)
    return [acc, lat], norm, hypervolume(F[pareto_mask(F)], norm)


@pytest.fixture
def cli(capsys):
    """Run `hwnas ARGV` in this process: (exit code, stdout, stderr)."""

    def call(argv):
        with pytest.raises(SystemExit) as info:
            main(argv)
        captured = capsys.readouterr()
        return info.value.code or 0, captured.out, captured.err

    return call


@pytest.fixture(scope="session")
def setup(tmp_path_factory):
    """A workspace with this CPU registered twice (`cpu`, `cpu2`: local onnxruntime), a latency predictor for
    each, the shipped demo supernet, and an empty dataset."""
    root = tmp_path_factory.mktemp("ws")
    ws = Workspace.init(root)
    ckpt = demo_checkpoint_path()
    space = load_checkpoint(ckpt).space
    archs = space.sample(np.random.default_rng(0), 30)
    # real predictors; their training targets follow FLOPs (cpu) and params (cpu2), so the two devices differ
    # (these tests check the search, not the predictors)
    targets = {"cpu": [0.05 + 0.01 * space.flops(a) for a in archs],
               "cpu2": [0.5 + 0.3 * space.params(a) for a in archs]}
    for name, ms in targets.items():
        add_device(ws, name, transport="local", runtime="onnxruntime", threads=1)
        create_predictor("gbm", space=space, min_samples_trees=10, n_estimators=50).fit(archs, np.array(ms)).save(
            ws.predictors_dir / f"{name}-ofa-mbv3-onnxruntime.json")
    empty = root / "empty.npz"
    np.savez(empty, x=np.zeros((0, 3, 32, 32), np.float32), y=np.zeros(0, np.int64))
    return ws, ckpt, empty
