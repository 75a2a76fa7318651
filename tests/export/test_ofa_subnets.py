"""Done-when: 20 random ofa-mbv3 subnets (w1.0, r=160 and r=224, random weights) export to ONNX and TFLite fp32
and pass validation at atol 1e-4. TFLite conversion of a full subnet takes ~15-25 s, so this is slow."""

from __future__ import annotations

import numpy as np
import pytest

from hwnas.export import create_runner, export_archs, read_sidecar
from hwnas.space import create


@pytest.mark.slow
def test_twenty_random_ofa_subnets_export_and_validate_in_both_formats(tmp_path):
    space = create("ofa-mbv3", width_mult=1.0)
    rng = np.random.default_rng(2024)
    archs = []
    for r in (160, 224):
        for arch in space.sample(rng, 10):
            archs.append(space.make(arch.ks, arch.e, arch.d, r))
    assert len({a.key for a in archs}) == 20
    results = export_archs(space, archs, tmp_path, ("onnx", "tflite"), jobs=2)
    assert len(results) == 40
    for exported in results:
        v = exported.validation
        assert v["passed"] and v["atol"] == 1e-4 and v["max_abs_diff"] <= 1e-4, exported.path
        side = read_sidecar(exported.path)
        assert side["input_shape"][2] in (160, 224) and side["arch"]["r"] == side["input_shape"][2]
    # spot-check one pair on a fresh input outside the validator: both files agree with each other
    onnx, tflite = results[0], results[1]
    x = np.random.default_rng(1).standard_normal((1, *onnx.input_shape[1:])).astype(np.float32)
    a, b = create_runner(onnx.path, "onnx").run(x)[0], create_runner(tflite.path, "tflite").run(x)[0]
    assert a.shape == b.shape == (1, 1000)
    np.testing.assert_allclose(a, b, atol=1e-4)
