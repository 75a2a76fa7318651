"""`hwnas supernet download` against a real HTTP server on 127.0.0.1 (started here, with HTTP Range support)
serving a checkpoint in OFA's published layout (`{"state_dict": ...}` of a width-1.0 supernet): downloads load,
interrupted ones resume with a Range request, checksum mismatches leave nothing, an unreachable server gets one
line naming where to put the file by hand, and `--from` imports. Nothing here reaches beyond 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

from hwnas.cli.app import main
from hwnas.space import OFAMobileNetV3Space
from hwnas.supernet import create_supernet, demo_checkpoint_path, load_checkpoint
from hwnas.supernet.download import URL_BASE_ENV, download_supernet

NAME = "ofa_mbv3_d234_e346_k357_w1.0"


@pytest.fixture(scope="module")
def ofa_bytes() -> bytes:
    """A checkpoint as OFA publishes it (a dict with `state_dict`) for the w1.0 space; fp16 keeps it ~15 MB."""
    torch.manual_seed(0)
    state = create_supernet(OFAMobileNetV3Space(width_mult=1.0)).state_dict()
    buffer = io.BytesIO()
    torch.save({"state_dict": {k: v.half() if v.is_floating_point() else v for k, v in state.items()}}, buffer)
    return buffer.getvalue()


class FileServer:
    """A ThreadingHTTPServer on 127.0.0.1 serving `files` (URL path -> bytes), honouring `Range: bytes=N-`
    (unless `ranges` is False), recording each request's headers, and closing the connection after `cut_at`
    bytes of the file once when that is set."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.requests: list[dict[str, str]] = []
        self.ranges = True
        self.cut_at: int | None = None
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/ofa_nets/"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                server.requests.append({k.lower(): v for k, v in self.headers.items()})
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                start, wanted = 0, self.headers.get("Range")
                if wanted and server.ranges:
                    start = int(wanted.removeprefix("bytes=").removesuffix("-"))
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes" if server.ranges else "none")
                self.end_headers()
                if server.cut_at is not None:
                    body, server.cut_at = body[: server.cut_at - start], None
                    self.close_connection = True
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        return Handler


@pytest.fixture()
def server(ofa_bytes, monkeypatch, tmp_path):
    for proxy in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(proxy, raising=False)
    monkeypatch.setenv("HWNAS_CACHE", str(tmp_path / "cache"))
    srv = FileServer({f"/ofa_nets/{NAME}": ofa_bytes})
    srv.thread.start()
    monkeypatch.setenv(URL_BASE_ENV, srv.base)
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def run(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(["supernet", *args])
    captured = capsys.readouterr()
    return info.value.code, captured.out, captured.err


def errors(err: str) -> list[str]:
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.startswith("error: ")]


def test_download_completes_and_loads(server, ofa_bytes, tmp_path, capsys):
    code, out, err = run(capsys, "download", NAME)
    assert code == 0, err
    path = tmp_path / "cache" / "supernets" / NAME
    assert out.strip().splitlines()[-1] == str(path)
    assert path.read_bytes() == ofa_bytes
    digest = hashlib.sha256(ofa_bytes).hexdigest()
    assert (tmp_path / "cache" / "supernets" / f"{NAME}.sha256").read_text().split() == [digest, NAME]
    assert not list(path.parent.glob("*.part"))
    assert "download MB: 16/16 (100%)" in err and "recorded now" in err
    assert load_checkpoint(path).space.config()["width_mult"] == 1.0
    assert len(server.requests) == 1 and "range" not in server.requests[0]

    code, out, err = run(capsys, "download", NAME)  # already there: checked against the recorded sha256
    assert code == 0 and "already there" in err and "matches the one recorded" in err
    assert len(server.requests) == 1
    code, out, _ = run(capsys, "list")
    assert code == 0 and NAME in out and "yes" in out and "recorded" in out


def test_interrupted_download_resumes_with_a_range_request(server, ofa_bytes, tmp_path, capsys):
    half = len(ofa_bytes) // 2
    server.cut_at = half
    code, _, err = run(capsys, "download", NAME, "--out", str(tmp_path / "net.pt"))
    assert code == 1
    [line] = errors(err)
    assert "stopped at" in line and "run the same command again to resume" in line
    part = tmp_path / "net.pt.part"
    assert part.stat().st_size == half and not (tmp_path / "net.pt").exists()

    code, out, err = run(capsys, "download", NAME, "--out", str(tmp_path / "net.pt"), "--json")
    assert code == 0, err
    assert server.requests[-1]["range"] == f"bytes={half}-"
    assert (tmp_path / "net.pt").read_bytes() == ofa_bytes and not part.exists()
    assert '"action": "resumed"' in out and f'"resumed_at_bytes": {half}' in out


def test_a_server_without_ranges_starts_over(server, ofa_bytes, tmp_path):
    server.ranges = False
    target = tmp_path / "net.pt"
    target.with_name("net.pt.part").write_bytes(b"x" * 1000)  # not even a prefix of the file
    result = download_supernet(NAME, out=target)
    assert server.requests[-1]["range"] == "bytes=1000-"  # asked, got a 200 with the whole file
    assert result.action == "downloaded" and target.read_bytes() == ofa_bytes


def test_checksum_mismatch_leaves_nothing_and_says_so_in_one_line(server, tmp_path, capsys):
    code, _, err = run(capsys, "download", NAME, "--sha256", "0" * 64)
    assert code == 1
    [line] = errors(err)
    assert "checksum mismatch" in line and "deleted" in line
    assert not (tmp_path / "cache" / "supernets").exists() or not any((tmp_path / "cache" / "supernets").iterdir())


def test_a_changed_cached_file_fails_its_recorded_checksum(server, tmp_path, capsys):
    assert run(capsys, "download", NAME)[0] == 0
    path = tmp_path / "cache" / "supernets" / NAME
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    code, _, err = run(capsys, "download", NAME)
    assert code == 1
    [line] = errors(err)
    assert "does not match the recorded sha256" in line and "--force" in line

    code, _, err = run(capsys, "download", NAME, "--force")
    assert code == 0, err


def test_a_file_that_is_not_the_supernet_is_refused(server, tmp_path, capsys):
    server.files[f"/ofa_nets/{NAME}"] = b"<html>not here</html>"
    code, _, err = run(capsys, "download", NAME)
    assert code == 1
    [line] = errors(err)
    assert "is not a usable" in line and NAME in line
    assert not list((tmp_path / "cache" / "supernets").glob(f"{NAME}*"))


def test_server_down_says_where_to_put_the_file(server, tmp_path, capsys, monkeypatch):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv(URL_BASE_ENV, f"http://127.0.0.1:{port}/ofa_nets")
    code, out, err = run(capsys, "download", NAME)
    assert code == 1 and out == ""
    assert err.count("\n") == 1
    [line] = errors(err)
    path = tmp_path / "cache" / "supernets" / NAME
    assert f"http://127.0.0.1:{port}/ofa_nets/{NAME}" in line and f"put it at {path}," in line
    assert f"hwnas supernet download {NAME} --from FILE" in line


def test_http_error_is_one_line(server, capsys):
    code, _, err = run(capsys, "download", NAME, "--url-base", server.base + "missing/")
    assert code == 1
    [line] = errors(err)
    assert "HTTP 404" in line and "--from FILE" in line


def test_from_file_imports_after_checking_it_loads(server, ofa_bytes, tmp_path, capsys):
    source = tmp_path / "downloads" / NAME
    source.parent.mkdir()
    source.write_bytes(ofa_bytes)
    code, out, err = run(capsys, "download", NAME, "--from", str(source))
    assert code == 0, err
    path = tmp_path / "cache" / "supernets" / NAME
    assert out.strip() == str(path) and path.read_bytes() == ofa_bytes and source.read_bytes() == ofa_bytes
    assert server.requests == []

    other = tmp_path / "cache" / "supernets" / "ofa_mbv3_d234_e346_k357_w1.2"
    code, _, err = run(capsys, "download", "ofa_mbv3_d234_e346_k357_w1.2", "--from", str(demo_checkpoint_path()))
    assert code == 1
    [line] = errors(err)
    assert "not ofa_mbv3_d234_e346_k357_w1.2" in line and not other.exists()
