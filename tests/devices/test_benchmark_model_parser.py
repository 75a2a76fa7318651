"""The benchmark_model parser on verbatim outputs of the real tool (see fixtures/SOURCES.md)."""

from pathlib import Path

import pytest

from hwnas.devices.benchmark_model import BenchmarkOutputError, parse_benchmark_output, parse_op_profile

FIXTURES = Path(__file__).parent / "fixtures"


def read(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_parses_summary_and_timed_run_statistics_with_op_table():
    parsed = parse_benchmark_output(read("mobilenet_v1_riscv_op_profiling.txt"))
    assert parsed["init_us"] == 17187
    assert parsed["first_us"] == 3512391
    assert parsed["inference_avg_us"] == pytest.approx(2.95034e6)
    assert parsed["runs"]["count"] == 50
    assert parsed["runs"]["min"] == 2727568 and parsed["runs"]["std"] == 109798
    assert parsed["warmup"] == {"count": 1, "curr": 3512391}
    ops = parsed["op_profile"]
    assert len(ops) == 31  # the regular runs' Run Order table, not the initialization one
    assert ops[0]["node_type"] == "CONV_2D" and ops[0]["avg_ms"] == pytest.approx(60.957)
    assert ops[-1]["node_type"] == "SOFTMAX" and ops[-1]["name"] == "[MobilenetV1/Predictions/Reshape_1]:30"
    assert ops[10]["pct"] == pytest.approx(9.403)
    assert sum(op["avg_ms"] for op in ops) == pytest.approx(2950.0, rel=0.01)


def test_parses_newer_output_with_info_prefix_and_percentiles():
    parsed = parse_benchmark_output(read("ti_am62x_xnnpack.txt"))
    assert parsed["inference_avg_us"] == 899641
    assert parsed["runs"]["median"] == 899281 and parsed["runs"]["p95"] == 904305
    assert parsed["warmup"]["count"] == 1
    assert parsed["op_profile"] is None


@pytest.mark.parametrize("name, avg_us", [("android_yolov5s_cpu.txt", 249684), ("logcat_prefixed.txt", 145528)])
def test_parses_partial_and_logcat_outputs(name, avg_us):
    parsed = parse_benchmark_output(read(name))
    assert parsed["inference_avg_us"] == avg_us
    assert parsed["runs"]["avg"] == avg_us


def test_output_without_timings_is_an_error():
    with pytest.raises(BenchmarkOutputError):
        parse_benchmark_output("ERROR: Failed to load model x.tflite\nERROR: Benchmarking failed.\n")
    assert parse_op_profile("no table here") is None
