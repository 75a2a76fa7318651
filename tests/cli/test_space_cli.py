"""`hwnas spaces`, `hwnas space sample`, `hwnas space show`, and the one-line error contract."""

import json
import os
import subprocess
import sys

import pytest

from hwnas.cli.app import main

HWNAS = [sys.executable, "-m", "hwnas.cli.app"]


def run(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    captured = capsys.readouterr()
    return info.value.code or 0, captured.out, captured.err


def test_version(capsys):
    code, out, _ = run(["--version"], capsys)
    assert code == 0 and out.startswith("hwnas ")


def test_sample_json_pipes_into_show():
    sample = subprocess.run(HWNAS + ["space", "sample", "ofa-mbv3", "-n", "3", "--json", "--seed", "4"],
                            capture_output=True, text=True, check=True)
    archs = json.loads(sample.stdout)
    assert len(archs) == 3 and set(archs[0]) == {"ks", "e", "d", "r"}
    show = subprocess.run(HWNAS + ["space", "show", "-", "--json"], input=sample.stdout, capture_output=True,
                          text=True, check=True)
    shown = json.loads(show.stdout)
    assert [s["arch"] for s in shown] == archs
    assert all(s["space"] == "ofa-mbv3" and s["flops_m"] > 0 for s in shown)


def test_show_reads_an_ofa_result_file_with_dynast_extras(tmp_path, capsys):
    path = tmp_path / "arch.json"
    path.write_text(json.dumps({"wid": None, "ks": [7, 5, 3, 3] * 5, "e": [6, 4, 3, 3] * 5,
                                "d": [4, 3, 2, 2, 4], "r": [176]}))
    code, out, _ = run(["space", "show", str(path)], capsys)
    assert code == 0
    assert "r176-76543333-765433-7654-7654-76543333" in out.replace("\n", "")


def test_show_of_a_nasbench201_string(capsys):
    code, out, _ = run(["space", "show", "3-3-4-1-3-1", "--json"], capsys)
    assert code == 0 and json.loads(out)[0]["space"] == "nasbench201"


@pytest.mark.parametrize("arg", ['{"ks": [3]}', "not-an-arch", '{"ks": [3, 5,'])
def test_bad_arch_is_one_line_and_exit_1(arg, capsys):
    code, out, err = run(["space", "show", arg], capsys)
    assert code == 1
    assert err.startswith("error: ") and err.count("\n") == 1


def test_debug_env_shows_the_traceback():
    env = dict(os.environ, HWNAS_DEBUG="1")
    proc = subprocess.run(HWNAS + ["space", "show", '{"ks": [3]}'], capture_output=True, text=True, env=env)
    assert proc.returncode == 1 and "Traceback" in proc.stderr


def test_spaces_lists_both(capsys):
    code, out, _ = run(["spaces"], capsys)
    assert code == 0 and "ofa-mbv3" in out and "nasbench201" in out


def test_init_makes_a_workspace_and_refuses_a_file(tmp_path, capsys):
    code, _, _ = run(["init", str(tmp_path / "ws")], capsys)
    assert code == 0
    assert all((tmp_path / "ws" / sub).is_dir() for sub in ("devices", "profiles", "predictors", "runs"))
    (tmp_path / "file").write_text("x")
    code, _, err = run(["init", str(tmp_path / "file")], capsys)
    assert code == 1 and "not a folder" in err and (tmp_path / "file").read_text() == "x"
