"""Getting a catalogued pretrained supernet into the cache: a resumable HTTP download (standard library only,
HTTP Range), checksum checks, a check that the file loads as the supernet it is named for, and importing a file
downloaded by hand (`--from`)."""

from __future__ import annotations

import http.client
import math
import os
import shutil
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hwnas.errors import CheckpointError, HwnasError, SupernetError
from hwnas.files import atomic_write_text, sha256_file
from hwnas.progress import ProgressFn, emit
from hwnas.supernet.catalog import PretrainedSupernet, get_pretrained, list_pretrained

__all__ = ["CACHE_ENV", "URL_BASE_ENV", "SupernetFile", "cache_dir", "default_path", "checksum_path",
           "recorded_sha256", "download_supernet", "import_supernet", "cached_supernets"]

CACHE_ENV = "HWNAS_CACHE"  # hwnas's cache root; supernets go to its supernets/ folder
URL_BASE_ENV = "HWNAS_SUPERNET_URL_BASE"  # a mirror (or a test's local server) in place of the publisher's URL
STAGE = "download MB"
_CHUNK = 1 << 20
_MB = 1_000_000
_NOT_COMPARED = {"resolutions"}  # the resolutions a supernet is used at are not part of its weights


@dataclass(frozen=True)
class SupernetFile:
    """A pretrained supernet in place. `checksum` says what `sha256` was checked against: `published` (the
    catalogue's), `given` (--sha256), `recorded` (the first download's, kept beside the file) or `new` (first
    seen now, recorded). `action`: downloaded, resumed, cached (already there) or imported (--from)."""

    name: str
    path: Path
    size_bytes: int
    sha256: str
    checksum: str
    action: str
    resumed_at_bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "path": str(self.path)}


def cache_dir() -> Path:
    """`$HWNAS_CACHE/supernets`, else `~/.cache/hwnas/supernets`."""
    root = os.environ.get(CACHE_ENV)
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "hwnas") / "supernets"


def default_path(name: str) -> Path:
    """Where the cache keeps the catalogued supernet `name`."""
    return cache_dir() / get_pretrained(name).filename


def checksum_path(path: Path) -> Path:
    """The recorded sha256 beside a supernet file (`<file>.sha256`, in `sha256sum` format)."""
    return path.with_name(path.name + ".sha256")


def recorded_sha256(path: Path) -> str | None:
    """The sha256 recorded beside `path` by its first download or import (None when there is none)."""
    record = checksum_path(path)
    words = record.read_text(encoding="utf-8", errors="replace").split() if record.is_file() else []
    return words[0].lower() if words and len(words[0]) == 64 else None


def _record(path: Path, digest: str) -> None:
    atomic_write_text(checksum_path(path), f"{digest}  {path.name}\n")


def cached_supernets() -> list[tuple[PretrainedSupernet, Path | None]]:
    """Every catalogued supernet with its cached file (None when not in the cache)."""
    return [(entry, path if (path := cache_dir() / entry.filename).is_file() else None)
            for entry in list_pretrained()]


def download_supernet(name: str, out: str | Path | None = None, url_base: str | None = None,
                      sha256: str | None = None, force: bool = False, timeout_s: float = 30.0,
                      progress: ProgressFn | None = None) -> SupernetFile:
    """Download the catalogued supernet `name` to `out` (default: the cache) unless it is already there and
    intact. The bytes go to `<out>.part` first; a later call continues it with an HTTP Range request when the
    server allows (else starts over). The finished file must match the expected sha256 (given, published, or
    recorded by an earlier download) and load as the supernet `name` stands for; only then is it renamed into
    place and its sha256 recorded beside it. A mismatch deletes the part file. Unreachable servers and HTTP
    errors raise a SupernetError that says where to put the file by hand."""
    entry = get_pretrained(name)
    target = _target(entry, out)
    expected, checksum = _expected(entry, target, sha256, use_recorded=not force)
    if target.is_file() and not force:
        return _check_cached(entry, target, expected, checksum)
    url = entry.url(url_base or os.environ.get(URL_BASE_ENV) or None)
    part = target.with_name(target.name + ".part")
    target.parent.mkdir(parents=True, exist_ok=True)
    resumed_at = _fetch(entry, url, part, target, out, timeout_s, progress)
    digest = _verified(entry, part, expected, checksum, what="the download")
    os.replace(part, target)
    _record(target, digest)
    return SupernetFile(entry.name, target, target.stat().st_size, digest, checksum or "new",
                        "resumed" if resumed_at else "downloaded", resumed_at)


def import_supernet(name: str, source: str | Path, out: str | Path | None = None,
                    sha256: str | None = None) -> SupernetFile:
    """Copy a file the user downloaded elsewhere into place (the cache, or `out`) after checking that it loads
    as the supernet `name` and matches the given or published sha256; its sha256 is recorded beside it. The
    source file is left as it is."""
    entry = get_pretrained(name)
    source = Path(source).expanduser()
    if not source.is_file():
        raise SupernetError(f"--from {source}: no such file; pass the path of the downloaded "
                            f"{entry.name} file")
    target = _target(entry, out)
    expected, checksum = _expected(entry, target, sha256, use_recorded=False)
    digest = _verified(entry, source, expected, checksum, what=str(source), delete=False)
    if not (target.exists() and target.resolve() == source.resolve()):
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(target.name + ".part")
        try:
            shutil.copyfile(source, part)
            os.replace(part, target)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
    _record(target, digest)
    return SupernetFile(entry.name, target, target.stat().st_size, digest, checksum or "new", "imported")


def _target(entry: PretrainedSupernet, out: str | Path | None) -> Path:
    target = Path(out).expanduser() if out is not None else cache_dir() / entry.filename
    if target.is_dir():
        raise SupernetError(f"--out {target} is a folder; pass the file path to write, e.g. "
                            f"{target / entry.filename}")
    return target


def _expected(entry: PretrainedSupernet, target: Path, given: str | None,
              use_recorded: bool) -> tuple[str | None, str | None]:
    """The sha256 the file must have and where that comes from (None: unknown, the first download sets it)."""
    if given is not None:
        given = given.strip().lower()
        if len(given) != 64 or any(c not in "0123456789abcdef" for c in given):
            raise SupernetError(f"--sha256 must be 64 hex digits; got {given!r}")
        return given, "given"
    if entry.sha256:
        return entry.sha256, "published"
    recorded = recorded_sha256(target) if use_recorded else None
    return (recorded, "recorded") if recorded else (None, None)


def _check_cached(entry: PretrainedSupernet, target: Path, expected: str | None,
                  checksum: str | None) -> SupernetFile:
    """An existing file: checked against the expected sha256, or (placed by hand, nothing recorded) checked
    that it loads and then recorded."""
    digest = sha256_file(target)
    if expected is not None and digest != expected:
        raise CheckpointError(f"{target} does not match the {checksum} sha256 ({digest[:12]}... != "
                              f"{expected[:12]}...): the file changed or is corrupt; run `hwnas supernet download "
                              f"{entry.name} --force` to fetch it again")
    if expected is None:
        try:
            _check_loads(entry, target, str(target))
        except HwnasError as exc:
            raise CheckpointError(f"{exc}; delete it, or run `hwnas supernet download {entry.name} --force` to "
                                  "fetch it again") from None
        _record(target, digest)
    return SupernetFile(entry.name, target, target.stat().st_size, digest, checksum or "new", "cached")


def _verified(entry: PretrainedSupernet, path: Path, expected: str | None, checksum: str | None, what: str,
              delete: bool = True) -> str:
    """The sha256 of `path` once it matches `expected` and loads as `entry`; otherwise `path` is deleted
    (when `delete`) and a one-line error raised."""
    digest = sha256_file(path)
    if expected is not None and digest != expected:
        if delete:
            path.unlink(missing_ok=True)
        gone = f"; deleted {path}" if delete else "; nothing was copied"
        raise SupernetError(f"checksum mismatch for {entry.name}: {what} has sha256 {digest}, the {checksum} "
                            f"one is {expected}{gone}")
    try:
        _check_loads(entry, path, what)
    except HwnasError:
        if delete:
            path.unlink(missing_ok=True)
        raise
    return digest


def _check_loads(entry: PretrainedSupernet, path: Path, what: str) -> None:
    """`path` loads (weights only) as a supernet of the space `entry` stands for."""
    from hwnas.space import create
    from hwnas.supernet.checkpoint import load_checkpoint

    try:
        supernet = load_checkpoint(path)
    except HwnasError as exc:
        raise CheckpointError(f"{what} is not a usable {entry.name} checkpoint: {exc}") from None
    space = supernet.space
    config = space.config()
    want = create(entry.space, width_mult=entry.width_mult, n_classes=config.get("n_classes"),
                  in_channels=config.get("in_channels")).config()
    differ = sorted(k for k in set(config) | set(want) if k not in _NOT_COMPARED and config.get(k) != want.get(k))
    if differ:
        raise CheckpointError(f"{what} holds a supernet of {space!r}, not {entry.name} (differs in "
                              f"{', '.join(differ)})")


def _fetch(entry: PretrainedSupernet, url: str, part: Path, target: Path, out: str | Path | None,
           timeout_s: float, progress: ProgressFn | None) -> int:
    """Bring `part` to the whole file from `url`; returns the byte offset it resumed at (0: from the start)."""
    start = part.stat().st_size if part.is_file() else 0
    try:
        response = _open(url, start, timeout_s)
    except urllib.error.HTTPError as exc:
        if start and exc.code == 416 and exc.headers.get("Content-Range", "") == f"bytes */{start}":
            return start  # the part is already the whole file
        if start and exc.code == 416:  # the part is longer than this file: start over
            part.unlink()
            start = 0
            response = _open_or_explain(entry, url, 0, timeout_s, target, out)
        else:
            raise _unreachable(entry, url, _reason(exc), target, out) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        raise _unreachable(entry, url, _reason(exc), target, out) from None
    with response:
        if start and not (response.status == 206 and _range_start(response) == start):
            start = 0  # the server ignored the Range request: it sends the whole file
        length = response.headers.get("Content-Length")
        total = start + int(length) if length and length.isdigit() else None
        total_mb = math.ceil(total / _MB) if total else 0
        got = start
        emit(progress, STAGE, got // _MB, total_mb, skipped=got // _MB)
        with open(part, "ab" if start else "wb") as handle:
            while True:
                try:
                    block = response.read(_CHUNK)
                except (OSError, http.client.HTTPException) as exc:
                    handle.flush()
                    raise _interrupted(entry, got, total, _reason(exc)) from None
                if not block:
                    break
                handle.write(block)
                got += len(block)
                emit(progress, STAGE, got // _MB if total is None or got < total else total_mb, total_mb,
                     skipped=start // _MB)
    if total is not None and got < total:
        raise _interrupted(entry, got, total, "the connection closed early")
    return start


def _open(url: str, start: int, timeout_s: float) -> Any:
    from hwnas import __version__

    headers = {"User-Agent": f"hwnas/{__version__}", "Accept-Encoding": "identity"}
    if start:
        headers["Range"] = f"bytes={start}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout_s)  # noqa: S310


def _open_or_explain(entry: PretrainedSupernet, url: str, start: int, timeout_s: float, target: Path,
                     out: str | Path | None) -> Any:
    try:
        return _open(url, start, timeout_s)
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        raise _unreachable(entry, url, _reason(exc), target, out) from None


def _range_start(response: Any) -> int | None:
    """The first byte of a 206 answer, from `Content-Range: bytes START-END/TOTAL`."""
    value = response.headers.get("Content-Range", "")
    try:
        return int(value.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def _reason(exc: BaseException) -> str:
    """A short reason for a failed request: `HTTP 404 Not Found`, `Connection refused`, ..."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        if not isinstance(exc.reason, BaseException):
            return " ".join(str(exc.reason).split())
        exc = exc.reason
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())


def _unreachable(entry: PretrainedSupernet, url: str, reason: str, target: Path,
                 out: str | Path | None) -> SupernetError:
    where = f" --out {target}" if out is not None else ""
    return SupernetError(f"cannot download {entry.name} from {url} ({reason}); download it by hand and put it at "
                         f"{target}, or import it with `hwnas supernet download {entry.name}{where} --from FILE`")


def _interrupted(entry: PretrainedSupernet, got: int, total: int | None, reason: str) -> SupernetError:
    of = f" of {total / _MB:.1f}" if total else ""
    return SupernetError(f"download of {entry.name} stopped at {got / _MB:.1f}{of} MB ({reason}); run the same "
                         "command again to resume from there")
