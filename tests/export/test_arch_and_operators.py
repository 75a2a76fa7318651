"""export_arch (whole subnets, random or supernet weights) and export_operators (one model per OpSpec)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hwnas.errors import ExportError, HwnasError
from hwnas.export import (
    arch_folder,
    create_runner,
    export_arch,
    export_operators,
    op_file_name,
    read_sidecar,
)
from hwnas.space import create
from hwnas.supernet import create_supernet


def test_export_arch_with_random_weights_records_the_arch(tmp_path, small_space):
    arch = small_space.sample(np.random.default_rng(1), 1)[0]
    exported = export_arch(small_space, arch.to_dict(), tmp_path, "onnx")
    assert exported.path == arch_folder(tmp_path, arch.key, "onnx", "fp32") / "model.onnx"
    side = read_sidecar(exported.path)
    assert side["arch"] == arch.to_dict() and side["arch_key"] == arch.key
    assert side["space"] == small_space.config() and side["weights"].startswith("random")
    assert side["flops_m"] == pytest.approx(small_space.flops(arch))
    assert side["params_m"] == pytest.approx(small_space.params(arch))
    assert side["input_shape"] == list(small_space.input_shape(arch))


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_export_arch_from_a_supernet_computes_the_supernet(tmp_path, small_space, fmt):
    torch.manual_seed(3)
    supernet = create_supernet(small_space).eval()
    arch = small_space.sample(np.random.default_rng(2), 1)[0]
    exported = export_arch(small_space, arch, tmp_path, fmt, supernet=supernet)
    assert read_sidecar(exported.path)["weights"] == "supernet"
    x = np.random.default_rng(0).standard_normal((2, 3, arch.r, arch.r)).astype(np.float32)
    supernet.set_active(arch)
    with torch.no_grad():
        expected = supernet(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(create_runner(exported.path, fmt).run(x)[0], expected, atol=1e-4)


def test_int8_arch_export_resizes_and_matches_calibration_images(tmp_path, small_space):
    arch = small_space.validate(small_space.sample(np.random.default_rng(4), 1)[0])
    grey = np.random.default_rng(0).uniform(-1, 1, (24, 1, 28, 28)).astype(np.float32)
    exported = export_arch(small_space, arch, tmp_path, "onnx", "int8", calib=grey, validate=False)
    side = read_sidecar(exported.path)
    assert side["precision"] == "int8" and side["calibration_samples"] == 24
    assert create_runner(exported.path, "onnx").run(np.zeros((1, 3, arch.r, arch.r), np.float32))[0].shape == (1, 10)


def test_export_arch_refuses_archs_outside_the_space(tmp_path, small_space):
    outside = {"ks": [3] * 10, "e": [3] * 10, "d": [1] * 5, "r": 224}
    with pytest.raises(HwnasError, match="'r'"):
        export_arch(small_space, outside, tmp_path / "out", "onnx")
    other = create("ofa-mbv3", width_mult=0.5, resolutions=(32,), depth_list=(1,), n_classes=10)
    with pytest.raises(ExportError, match="the supernet is for"):
        export_arch(small_space, small_space.sample(np.random.default_rng(0), 1)[0], tmp_path / "out", "onnx",
                    supernet=create_supernet(other))
    with pytest.raises(ExportError, match="needs calibration data"):
        export_arch(small_space, small_space.sample(np.random.default_rng(0), 1)[0], tmp_path / "out", "onnx",
                    precision="int8")
    assert not (tmp_path / "out").exists()


def test_export_operators_names_files_by_content_and_reuses_them(tmp_path, small_space):
    ops = small_space.all_operators()[:5]
    seen: list[tuple[int, int]] = []
    first = export_operators(small_space, ops + ops[:2], tmp_path, "onnx", jobs=2,
                             progress=lambda ev: seen.append((ev.done, ev.total)))
    assert [e.key for e in first] == [op.key for op in ops]  # order kept, duplicates dropped
    assert [e.path.name for e in first] == [op_file_name(op, "onnx", "fp32") for op in ops]
    assert seen[0] == (0, 5) and seen[-1] == (5, 5) and len(seen) == 6
    for exported in first:
        side = read_sidecar(exported.path)
        assert side["op_key"] == exported.key and side["sha256"] == exported.sha256
        assert side["validation"]["passed"]
    stamps = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    seen.clear()
    again = export_operators(small_space, ops, tmp_path, "onnx", jobs=2,
                             progress=lambda ev: seen.append((ev.done, ev.total)))
    assert [(e.path, e.sha256) for e in again] == [(e.path, e.sha256) for e in first]
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == stamps  # nothing rewritten
    assert seen == [(5, 5)]
    # a damaged file is noticed and exported again
    first[0].path.write_bytes(b"broken")
    repaired = export_operators(small_space, ops[:1], tmp_path, "onnx", jobs=1)
    assert repaired[0].sha256 == first[0].sha256


def test_export_operators_tflite_and_int8_in_worker_processes(tmp_path, small_space):
    ops = [op for op in small_space.all_operators() if op.type == "expanded_conv"][:2]
    tflite = export_operators(small_space, ops, tmp_path / "fp32", "tflite", jobs=2)
    int8 = export_operators(small_space, ops, tmp_path / "int8", "onnx", "int8", jobs=2)
    assert [e.path.suffix for e in tflite] == [".tflite", ".tflite"]
    for exported in int8:
        side = read_sidecar(exported.path)
        assert side["precision"] == "int8" and side["validation"]["passed"]
    names = {e.path.name for e in tflite} | {e.path.name for e in int8}
    assert len(names) == 4  # format and precision are part of the name


def test_a_cached_nchw_tflite_operator_is_exported_again_as_nhwc(tmp_path):
    """TFLite files take NHWC input now; an operator cached before (its sidecar names no layout: NCHW) is not
    reused, so a profile never mixes the two layouts."""
    import json

    from hwnas import space as spaces
    from hwnas.export import export_operators
    from hwnas.export.sidecar import sidecar_path

    sp = spaces.create("ofa-mbv3")
    op = sp.all_operators()[0]
    first = export_operators(sp, [op], tmp_path, "tflite", jobs=1)[0]
    side = sidecar_path(first.path)
    record = json.loads(side.read_text())
    assert record["input_layout"] == "NHWC"
    assert export_operators(sp, [op], tmp_path, "tflite", jobs=1)[0].path.stat().st_mtime_ns == \
        first.path.stat().st_mtime_ns  # current: reused
    del record["input_layout"]  # as written before NHWC became the default
    side.write_text(json.dumps(record))
    again = export_operators(sp, [op], tmp_path, "tflite", jobs=1)[0]
    assert json.loads(sidecar_path(again.path).read_text())["input_layout"] == "NHWC"
