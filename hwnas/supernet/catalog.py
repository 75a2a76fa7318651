"""The pretrained supernets `hwnas supernet download` knows: each name, where its authors publish it, and what
is known about the file (size, checksum, the space it was trained for)."""

from __future__ import annotations

from dataclasses import dataclass

from hwnas.errors import SupernetError

__all__ = ["PretrainedSupernet", "OFA_URL_BASE", "list_pretrained", "get_pretrained"]

# Where Once-for-All's model zoo downloads its supernets from: mit-han-lab/once-for-all, `ofa/model_zoo.py`
# (read at commit 27b50bd16e633fff6a85430c7ebbb56061f3c6d5), `ofa_net(net_id)` sets
# `url_base = "https://raw.githubusercontent.com/han-cai/files/master/ofa/ofa_nets/"` and loads
# `torch.load(download_url(url_base + net_id, ...))["state_dict"]`: the file is named after the net id.
OFA_URL_BASE = "https://raw.githubusercontent.com/han-cai/files/master/ofa/ofa_nets/"
_OFA_SOURCE = "mit-han-lab/once-for-all ofa/model_zoo.py ofa_net()"


@dataclass(frozen=True)
class PretrainedSupernet:
    """One published supernet. `size_bytes` and `sha256` are None where the publisher states none: the first
    complete download then records its sha256 beside the cached file and later uses are checked against it."""

    name: str
    url_base: str
    space: str
    width_mult: float
    description: str
    source: str
    size_bytes: int | None = None
    sha256: str | None = None

    @property
    def filename(self) -> str:
        return self.name

    def url(self, base: str | None = None) -> str:
        """The file's URL under `base` (a mirror, a local server) or under the publisher's own."""
        return (base or self.url_base).rstrip("/") + "/" + self.filename


# model_zoo.py gives no checksum or size for these files and none was found published elsewhere, so none is
# claimed here (the first download records its own sha256).
_CATALOG = {
    entry.name: entry
    for entry in (
        PretrainedSupernet("ofa_mbv3_d234_e346_k357_w1.0", OFA_URL_BASE, "ofa-mbv3", 1.0,
                           "OFA MobileNetV3 supernet, width 1.0, ImageNet (depth 2-4, expand 3/4/6, kernel 3/5/7)",
                           _OFA_SOURCE),
        PretrainedSupernet("ofa_mbv3_d234_e346_k357_w1.2", OFA_URL_BASE, "ofa-mbv3", 1.2,
                           "OFA MobileNetV3 supernet, width 1.2, ImageNet (depth 2-4, expand 3/4/6, kernel 3/5/7)",
                           _OFA_SOURCE),
    )
}


def list_pretrained() -> list[PretrainedSupernet]:
    """Every catalogued supernet, by name."""
    return [_CATALOG[name] for name in sorted(_CATALOG)]


def get_pretrained(name: str) -> PretrainedSupernet:
    """The catalogue entry for `name`; a SupernetError naming the known ones otherwise."""
    if name not in _CATALOG:
        raise SupernetError(f"unknown pretrained supernet {name!r}; choose one of: {', '.join(sorted(_CATALOG))} "
                            "(see `hwnas supernet list`)")
    return _CATALOG[name]
