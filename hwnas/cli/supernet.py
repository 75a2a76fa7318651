"""`hwnas supernet download NAME`, `hwnas supernet list`: get OFA's published pretrained supernets into the cache
(calls `hwnas.supernet.download`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Column, Table

from hwnas.cli._common import JsonOpt, out, plain, print_json, progress_display

group = typer.Typer(help="Get pretrained supernets (OFA's published ones).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="supernet")


@group.command("download")
def download(
    name: Annotated[str, typer.Argument(help="Catalogue name (see `hwnas supernet list`), e.g. "
                                             "ofa_mbv3_d234_e346_k357_w1.0.")],
    out_path: Annotated[Path | None, typer.Option("--out", "-o", help="File to write (default: the cache, "
                                                  "$HWNAS_CACHE/supernets or ~/.cache/hwnas/supernets).")] = None,
    from_file: Annotated[Path | None, typer.Option("--from", help="Import this file (downloaded elsewhere) instead "
                                                   "of downloading; it is checked, then copied.")] = None,
    url_base: Annotated[str | None, typer.Option("--url-base", metavar="URL", help="Download from this base URL "
                                                 "(a mirror) instead of the publisher's; also "
                                                 "$HWNAS_SUPERNET_URL_BASE.")] = None,
    sha256: Annotated[str | None, typer.Option("--sha256", metavar="HEX", help="Require this sha256 (by default: "
                                               "the published one, else the one recorded at the first "
                                               "download).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Download again even if the file is there.")] = False,
    timeout_s: Annotated[float, typer.Option("--timeout", min=1.0, help="Seconds to wait for the server.")] = 30.0,
    as_json: JsonOpt = False,
) -> None:
    """Download a pretrained supernet (resumable; checked by sha256 and by loading it) and print its path."""
    from hwnas.supernet.download import download_supernet, import_supernet

    if from_file is not None:
        result = import_supernet(name, from_file, out=out_path, sha256=sha256)
    else:
        with progress_display() as progress:
            result = download_supernet(name, out=out_path, url_base=url_base, sha256=sha256, force=force,
                                       timeout_s=timeout_s, progress=progress)
    if as_json:
        print_json(result.to_dict())
        return
    how = {"downloaded": "downloaded", "resumed": f"downloaded (resumed at {result.resumed_at_bytes} bytes)",
           "cached": "already there", "imported": "imported"}[result.action]
    check = {"new": "recorded now, no published checksum", "recorded": "matches the one recorded at the first "
             "download", "published": "matches the published one", "given": "matches --sha256"}[result.checksum]
    plain(f"{result.name}: {how}, {result.size_bytes / 1e6:.1f} MB, sha256 {result.sha256} ({check}); use it with "
          f"--supernet {result.path}")
    out.print(str(result.path), soft_wrap=True, markup=False, highlight=False)


@group.command("list")
def list_supernets(as_json: JsonOpt = False) -> None:
    """The pretrained supernets that can be downloaded, and which are in the cache."""
    from hwnas.supernet.download import cache_dir, cached_supernets, recorded_sha256

    rows = cached_supernets()
    if as_json:
        print_json([{"name": entry.name, "space": entry.space, "width_mult": entry.width_mult, "url": entry.url(),
                     "sha256": entry.sha256, "size_bytes": entry.size_bytes,
                     "cached": str(path) if path else None,
                     "recorded_sha256": recorded_sha256(path) if path else None}
                    for entry, path in rows])
        return
    width = max(len(entry.name) for entry, _ in rows)
    table = Table(Column("name", no_wrap=True, min_width=width), "space", "width", "cached", "sha256",
                  title=f"cache: {cache_dir()}")
    for entry, path in rows:
        recorded = recorded_sha256(path) if path else None
        checksum = ("published" if entry.sha256 else f"recorded {recorded[:12]}..." if recorded
                    else "none published")
        table.add_row(entry.name, entry.space, f"{entry.width_mult}", "yes" if path else "-", checksum)
    out.print(table)

