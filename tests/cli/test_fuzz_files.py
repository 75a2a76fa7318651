"""Hostile files and arguments never get a traceback: generated measurements CSVs, damaged search run folders
(settings.json, evaluated.jsonl, front.json, front.csv, diagnostics.jsonl, hypervolume.json), damaged measurement
stores, numeric arguments given as any string, and broken datasets, each given to the CLI (in process), end with
exit 0 (valid after all) or exit 1 and one line starting `error:`; a command that fails leaves every file it
read byte-identical."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from fuzz_helpers import assert_clean, dumps, examples, json_values, mutate, run_cli
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

from hwnas.cli.app import main
from hwnas.devices.base import Measurement
from hwnas.devices.inventory import add_device
from hwnas.predictors import create_predictor
from hwnas.profiling.store import MeasurementStore, StoredMeasurement
from hwnas.search.runfolder import RunFolder
from hwnas.space import create as create_space
from hwnas.supernet import demo_checkpoint_path, load_checkpoint
from hwnas.workspace import Workspace

RUN_FILES = ("settings.json", "evaluated.jsonl", "front.json", "front.csv", "diagnostics.jsonl", "hypervolume.json")


def fuzz(n: int) -> settings:
    # no shrinking: each example runs a real command, and a shrink of a slow one takes minutes
    return settings(max_examples=examples(n), deadline=None, suppress_health_check=list(HealthCheck), print_blob=True,
                    phases=[Phase.explicit, Phase.reuse, Phase.generate])


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (models/ left out: deploy writes it before it can fail) and its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and "models" not in p.relative_to(folder).parts}


def assert_unchanged_on_failure(code: int, before: dict[str, bytes], folder: Path) -> None:
    if code != 0:
        assert snapshot(folder) == before, "a failed command changed the files it read"


# -- fixtures ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A workspace with this CPU as device `cpu` (local onnxruntime, few runs) and its latency predictor, and a
    finished run folder of a 4-evaluation accelerated search of the demo supernet (front trimmed to one model,
    so a deploy that turns out valid is quick)."""
    root = tmp_path_factory.mktemp("ws")
    ws = Workspace.init(root)
    ckpt = demo_checkpoint_path()
    space = load_checkpoint(ckpt).space
    archs = space.sample(np.random.default_rng(0), 30)
    add_device(ws, "cpu", transport="local", runtime="onnxruntime", threads=1)
    create_predictor("gbm", space=space, min_samples_trees=10, n_estimators=20).fit(
        archs, np.array([0.05 + 0.01 * space.flops(a) for a in archs])).save(
        ws.predictors_dir / "cpu-ofa-mbv3-onnxruntime.json")
    run = root / "run"
    argv = search_argv(root, run, "--evals", "4")
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    folder = RunFolder(run)
    doc = json.loads(folder.front_json.read_text())
    doc["front"] = doc["front"][:1]
    folder.write_front(doc)
    if not folder.diagnostics_path.exists():  # the loop notes its batches only past its initial sample
        folder.diagnostics_path.write_text(json.dumps({"round": 1, "evals": 4, "rank_corr": {"top1": 0.5}}) + "\n")
    return root, run


def search_argv(root: Path, out: Path, *extra: str) -> list[str]:
    return ["search", "--supernet", str(demo_checkpoint_path()), "--data", "mnist5k", "--device", "cpu", "--limit",
            "50", "--algorithm", "accelerated", "--latency-ms", "cpu=1000", "--out", str(out), "-w", str(root),
            *extra]


def copy_run(tiny, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("run") / "run"
    shutil.copytree(tiny[1], target, ignore=shutil.ignore_patterns("models"))
    return target


# -- damaging a run folder ----------------------------------------------------------------------------------------

texts = st.one_of(st.text(max_size=30), st.binary(max_size=30).map(lambda b: b.decode("latin-1")),
                  st.just("[" * 30000), st.just("\x00\xff"))


def damage_json(path: Path, data) -> None:
    """Replace one field (depth 1 to 3) of a JSON document, or the whole text."""
    if data.draw(st.integers(0, 9)) == 0:
        raw = data.draw(st.one_of(texts.map(lambda t: t.encode("utf-8", "surrogatepass")),
                                  st.binary(max_size=40)))
        path.write_bytes(raw)
        return
    doc = json.loads(path.read_text())
    if isinstance(doc, dict) and data.draw(st.booleans()):
        inner = [k for k, v in doc.items() if isinstance(v, (dict, list)) and v]
        if inner:  # one level deeper: a front row, a normalisation list
            key = data.draw(st.sampled_from(inner))
            value = doc[key]
            if isinstance(value, list):
                i = data.draw(st.integers(0, len(value) - 1))
                if isinstance(value[i], dict) and value[i]:
                    value[i] = mutate(value[i], data)
                else:
                    value[i] = data.draw(json_values)
            else:
                doc[key] = mutate(value, data)
            path.write_text(dumps(doc))
            return
    path.write_text(dumps(mutate(doc, data)))


def damage_jsonl(path: Path, data) -> None:
    """Damage one line of a JSON-lines file: a field replaced or removed, any JSON value, or any text."""
    lines = path.read_text().splitlines() if path.exists() else []
    i = data.draw(st.integers(0, len(lines)))
    how = data.draw(st.sampled_from(["field", "value", "text"]))
    if how == "field" and i < len(lines):
        new = dumps(mutate(json.loads(lines[i]), data))
    elif how == "value":
        new = dumps(data.draw(json_values))
    else:
        new = data.draw(texts)
    if i < len(lines) and data.draw(st.booleans()):
        lines[i] = new
    else:
        lines.insert(i, new)  # also in the middle: only a torn *last* line is skipped
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8", "surrogatepass"))


def damage_csv(path: Path, data) -> None:
    lines = path.read_text().splitlines()
    i = data.draw(st.integers(0, len(lines) - 1))
    lines[i] = data.draw(st.one_of(texts, st.lists(texts, max_size=12).map(",".join)))
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8", "surrogatepass"))


def damage(run: Path, name: str, data) -> None:
    path = run / name
    if name.endswith(".jsonl"):
        damage_jsonl(path, data)
    elif name.endswith(".csv"):
        damage_csv(path, data)
    else:
        damage_json(path, data)


@fuzz(60)
@given(data=st.data(), name=st.sampled_from(RUN_FILES))
def test_resuming_a_damaged_run_folder_is_refused_in_one_line(data, name, capsys, tiny, tmp_path_factory):
    run = copy_run(tiny, tmp_path_factory)
    damage(run, name, data)
    before = snapshot(run)
    code, out, err = run_cli(search_argv(tiny[0], run, "--evals", "4"), capsys)
    assert_clean(code, out, err)
    assert_unchanged_on_failure(code, before, run)


def test_resuming_a_run_whose_evaluated_line_lost_a_value_is_refused_in_one_line(capsys, tiny, tmp_path_factory):
    run = copy_run(tiny, tmp_path_factory)
    path = run / "evaluated.jsonl"
    lines = path.read_text().splitlines()
    first = json.loads(lines[0])
    del first["values"]["latency_ms[cpu]"]  # found by the fuzzer above: the resume crashed with a KeyError
    path.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    before = snapshot(run)
    code, out, err = run_cli(search_argv(tiny[0], run, "--evals", "4"), capsys)
    assert_clean(code, out, err)
    assert code == 1 and f"the line of {first['key']} has no 'latency_ms[cpu]' value" in err
    assert snapshot(run) == before


@fuzz(60)
@given(data=st.data(), name=st.sampled_from(("settings.json", "evaluated.jsonl")), option=st.sampled_from(
    ("--reuse", "--prior")))
def test_a_damaged_run_folder_to_reuse_or_learn_from_is_refused_in_one_line(data, name, option, capsys, tiny,
                                                                            tmp_path_factory):
    run = copy_run(tiny, tmp_path_factory)
    damage(run, name, data)
    before = snapshot(run)
    # resuming the tiny run with another --reuse/--prior stops right after reading RUN: cheap either way
    code, out, err = run_cli(search_argv(tiny[0], copy_run(tiny, tmp_path_factory), "--evals", "4", option,
                                         str(run)), capsys)
    assert_clean(code, out, err)
    assert snapshot(run) == before  # read, never written


@pytest.mark.parametrize("name, key, value, says", [
    ("hypervolume.json", "normalization", {"lower": [], "upper": [0.0, 1.0]}, "normalization.lower has 0 values"),
    ("front.json", "constraints", [{}], "field constraints.0.objective"),
    ("settings.json", "budget_margin", True, "field budget_margin"),
])
def test_deploying_a_run_folder_the_fuzzer_broke_is_refused_in_one_line(name, key, value, says, capsys, tiny,
                                                                        tmp_path_factory):
    """Cases the fuzzer below found, where the report crashed after measuring."""
    run = copy_run(tiny, tmp_path_factory)
    doc = json.loads((run / name).read_text())
    doc[key] = value
    (run / name).write_text(json.dumps(doc))
    before = snapshot(run)
    code, out, err = run_cli(["deploy", str(run), "--device", "cpu", "--format", "onnx", "-w", str(tiny[0])], capsys)
    assert_clean(code, out, err)
    assert code == 1 and says in err, err
    assert snapshot(run) == before


@fuzz(15)
@given(data=st.data(), name=st.sampled_from(("settings.json", "front.json", "diagnostics.jsonl", "evaluated.jsonl",
                                             "hypervolume.json")))
def test_deploying_a_damaged_run_folder_is_refused_in_one_line(data, name, capsys, tiny, tmp_path_factory):
    run = copy_run(tiny, tmp_path_factory)
    damage(run, name, data)
    before = snapshot(run)
    code, out, err = run_cli(["deploy", str(run), "--device", "cpu", "--format", "onnx", "-w", str(tiny[0])], capsys)
    assert_clean(code, out, err)
    assert_unchanged_on_failure(code, before, run)  # e.g. front.csv is not rewritten by a deploy that fails


@fuzz(25)
@given(data=st.data(), name=st.sampled_from(("front.json", "front.csv")))
def test_exporting_a_damaged_front_is_refused_in_one_line(data, name, capsys, tiny, tmp_path_factory):
    run = copy_run(tiny, tmp_path_factory)
    damage(run, name, data)
    before = snapshot(run)
    code, out, err = run_cli(["export", str(run / name), "--space", "ofa-mbv3", "--out", str(run / "models"),
                              "--format", "onnx", "--no-validate", "-j", "1"], capsys)
    assert_clean(code, out, err)
    assert snapshot(run) == before


# -- measurements CSV -----------------------------------------------------------------------------------------------

OFA = create_space("ofa-mbv3")
GOOD_ARCHS = [json.dumps(a.to_dict()) for a in OFA.sample(np.random.default_rng(1), 8)]
cells = st.one_of(st.sampled_from(GOOD_ARCHS), st.sampled_from(GOOD_ARCHS).map(lambda a: a.replace("7", "9")),
                  st.sampled_from(GOOD_ARCHS).map(lambda a: a.replace('"', "'")), json_values.map(dumps), texts,
                  st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers(-5, 10**6).map(str),
                  st.just("{'ks': " * 5000))


@fuzz(150)
@given(header=st.lists(st.one_of(st.sampled_from(["arch", "latency_ms", "config", "latency", "Latency (ms)"]), texts),
                       max_size=4),
       rows=st.lists(st.lists(cells, max_size=4), max_size=8), good=st.integers(0, 8))
def test_any_measurements_csv_is_refused_in_one_line(header, rows, good, capsys, tiny, tmp_path_factory):
    import csv
    import io

    folder = tmp_path_factory.mktemp("csv")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows([[a, f"{1 + i / 10}"] for i, a in enumerate(GOOD_ARCHS[:good])] + rows)
    path = folder / "m.csv"
    path.write_bytes(buffer.getvalue().encode("utf-8", "surrogatepass"))
    before = snapshot(folder)
    code, out, err = run_cli(["fit", "cpu", "--measurements", str(path), "--space", "ofa-mbv3", "--out",
                              str(folder / "p.json"), "-w", str(tiny[0])], capsys)
    assert_clean(code, out, err)
    assert_unchanged_on_failure(code, before, folder)


# -- the measurement store -------------------------------------------------------------------------------------------


def _store_lines() -> list[str]:
    lines = []
    for i, kind in enumerate(("op", "arch", "check")):
        m = Measurement(model_sha256="ab" * 32, key=f"k{i}", device="cpu", runtime="onnxruntime",
                        runtime_version="1.0", threads=1, warmup=2, runs=5, median_ms=1.5, mean_ms=1.6, std_ms=0.1,
                        min_ms=1.4, p90_ms=1.8, n=5, timestamp=1.7e9 + i)
        rec = StoredMeasurement(kind, f"k{i}", "ofa-mbv3", "fp32", m, role="reference" if kind != "op" else "",
                                session="s1" if kind == "check" else "")
        lines.append(json.dumps(rec.to_dict(), sort_keys=True))
    return lines


STORE_LINES = _store_lines()


@fuzz(200)
@given(data=st.data())
def test_a_damaged_measurement_store_is_exported_or_refused_in_one_line(data, capsys, tmp_path_factory):
    root = tmp_path_factory.mktemp("ws")
    ws = Workspace.init(root)
    add_device(ws, "cpu", transport="local", runtime="onnxruntime", threads=1)
    store = MeasurementStore.for_device(ws, "cpu")
    store.path.parent.mkdir(parents=True, exist_ok=True)
    store.path.write_text("\n".join(STORE_LINES) + "\n")
    damage_jsonl(store.path, data)
    before = snapshot(store.path.parent)
    target = root / "out.csv"
    code, out, err = run_cli(["profile", "cpu", "--export-csv", str(target), "-w", str(root)], capsys)
    assert_clean(code, out, err)
    assert snapshot(store.path.parent) == before
    if code == 0:
        assert target.read_text().startswith("kind,role,key")


# -- numeric arguments ------------------------------------------------------------------------------------------------

numbers = st.one_of(st.integers(-10**30, 10**30).map(str), st.floats(allow_nan=True, allow_infinity=True).map(str),
                    st.sampled_from(["nan", "-nan", "inf", "-inf", "1e309", "0x10", "1_000", " 3", "3 ", "", "-0",
                                     "0.0", "1,2", "١٢", "+5", "1e-320", "3.", ".5"]), texts)


@fuzz(80)
# --seed left out: with it the full suite once hung here (not reproduced alone); SeedOpt is bounded to 0..2^32-1
@given(option=st.sampled_from(["--evals", "--limit", "--latency-ms", "--budget-coverage", "--workers"]),
       value=numbers, device=st.sampled_from(["cpu", "", "cpu2", "=", "cpu=1"]))
def test_any_number_given_to_search_is_refused_in_one_line(option, value, device, capsys, tiny, tmp_path_factory):
    if option == "--latency-ms":
        value = f"{device}={value}" if device != "cpu=1" else value
    if option == "--evals":  # a valid larger budget would go on searching: keep it to the 4 already spent
        try:  # float, not int: the CLI takes "7195475759977439.0" as an integer (that example searched for 30+ minutes)
            assume(not float(value) > 4)
        except ValueError:
            pass
    run = copy_run(tiny, tmp_path_factory)
    before = snapshot(run)
    argv = search_argv(tiny[0], run, "--evals", "4")
    argv += [option, value]
    code, out, err = run_cli(argv, capsys)
    assert_clean(code, out, err)
    assert_unchanged_on_failure(code, before, run)


@fuzz(150)
@given(width=numbers, resolutions=st.one_of(numbers, st.lists(numbers, max_size=4).map(",".join)),
       n=numbers, command=st.sampled_from(["show", "sample", "train"]))
def test_any_number_given_to_a_space_is_refused_in_one_line(width, resolutions, n, command, capsys, tmp_path_factory):
    if command == "show":
        argv = ["space", "show", "ofa-mbv3", "--width-mult", width]
    elif command == "sample":
        argv = ["space", "sample", "-n", n, "--width-mult", width, "--json"]
        try:
            assume(int(n) <= 20)
        except ValueError:
            pass
    else:  # the space is checked before the (missing) data is read
        folder = tmp_path_factory.mktemp("train")
        argv = ["train", "--out", str(folder / "s.pt"), "--data", str(folder / "none.npz"), "--width-mult", width,
                "--resolutions", resolutions, "--epochs", n]
    code, out, err = run_cli(argv, capsys)
    assert_clean(code, out, err)


# -- datasets ----------------------------------------------------------------------------------------------------------

arrays = st.one_of(
    st.tuples(st.integers(0, 5), st.integers(0, 5)).map(lambda s: np.zeros(s, np.uint8)),
    st.tuples(st.integers(0, 4), st.integers(1, 3), st.integers(1, 6), st.integers(1, 6)).map(
        lambda s: np.full(s, 0.5, np.float32)),
    st.tuples(st.integers(0, 4), st.integers(1, 6), st.integers(1, 6)).map(lambda s: np.full(s, 200, np.uint8)),
    st.lists(st.integers(-3, 2**40), max_size=5).map(lambda v: np.array(v, np.int64)),
    st.lists(st.floats(allow_nan=True), max_size=5).map(lambda v: np.array(v, np.float64)),
    st.lists(st.text(max_size=3), max_size=4).map(lambda v: np.array(v, dtype="U3")),
    st.just(np.array([1 + 2j, 3j])), st.just(np.zeros((2, 1, 1, 1, 1))), st.just(np.array(3)),
    st.just(np.array([True, False])), st.just(np.full((3, 1, 4, 4), np.nan, np.float32)),
)


@fuzz(80)
@given(kind=st.sampled_from(["npz", "npz", "bytes", "folder"]), x=arrays, y=arrays,
       names=st.lists(st.sampled_from(["x", "y", "val_index", "z"]), min_size=0, max_size=3, unique=True),
       raw=st.binary(max_size=64), files=st.lists(st.tuples(st.sampled_from(["a", "b", ".h"]),
                                                             st.sampled_from(["1.png", "2.jpg", "t.txt"]),
                                                             st.binary(max_size=40)), max_size=4))
def test_a_broken_dataset_is_refused_in_one_line(kind, x, y, names, raw, files, capsys, tiny, tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    if kind == "npz":
        path = folder / "d.npz"
        arrays_ = {"x": x, "y": y, "val_index": y, "z": x}
        np.savez(path, **{k: arrays_[k] for k in names})
    elif kind == "bytes":
        path = folder / "d.npz"
        path.write_bytes(raw if not raw.startswith(b"PK") else raw)
        if raw[:1] == b"\x00":  # a zip holding a broken .npy member
            with zipfile.ZipFile(path, "w") as archive:
                archive.writestr("x.npy", raw)
                archive.writestr("y.npy", b"\x93NUMPY" + raw)
    else:
        path = folder / "images"
        path.mkdir()
        for label, name, content in files:
            (path / label).mkdir(exist_ok=True)
            (path / label / name).write_bytes(content)
    before = snapshot(folder)
    out_dir = tmp_path_factory.mktemp("run") / "run"
    argv = ["search", "--supernet", str(demo_checkpoint_path()), "--data", str(path), "--device", "cpu", "--evals",
            "1", "--algorithm", "random", "--limit", "8", "--out", str(out_dir), "-w", str(tiny[0])]
    code, out, err = run_cli(argv, capsys)
    assert_clean(code, out, err)
    assert snapshot(folder) == before


def search_on_dataset(path: Path, capsys, tiny, tmp_path) -> tuple[int, str, str]:
    argv = ["search", "--supernet", str(demo_checkpoint_path()), "--data", str(path), "--device", "cpu", "--evals",
            "1", "--algorithm", "random", "--limit", "8", "--out", str(tmp_path / "run"), "-w", str(tiny[0])]
    code, out, err = run_cli(argv, capsys)
    assert_clean(code, out, err)
    return code, out, err


def test_a_dataset_whose_labels_are_one_number_is_refused_in_one_line(capsys, tiny, tmp_path):
    """Found by the fuzzer above: 'y' saved as a 0-d array crashed the loader with a TypeError."""
    path = tmp_path / "d.npz"
    np.savez(path, x=np.full((1, 4, 5), 200, np.uint8), y=np.array(3))
    code, _, err = search_on_dataset(path, capsys, tiny, tmp_path)
    assert code == 1 and "'y' N labels" in err and "y ()" in err, err


def test_a_dataset_whose_labels_are_text_is_refused_in_one_line(capsys, tiny, tmp_path):
    """Found by the fuzzer above: text labels crashed the error message itself (numpy has no min() of strings)."""
    path = tmp_path / "d.npz"
    np.savez(path, x=np.full((1, 1, 4, 5), 200, np.uint8), y=np.array(["£\\ð"]))
    code, _, err = search_on_dataset(path, capsys, tiny, tmp_path)
    assert code == 1 and "'y' must be one integer label" in err and "<U3 (1,)" in err, err
