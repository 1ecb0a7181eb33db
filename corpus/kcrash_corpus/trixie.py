"""crash 8.0.6 from Debian 13 (trixie), run on the host without installing it.

Debian 12's crash (8.0.2) lists only two tasks in ``ps`` on Debian 6.1 kernels (a backport
turned ``struct pid.numbers[1]`` into ``numbers[]``); trixie's 8.0.6 gets ``ps`` right. It is
unpacked with its libraries under the cache and run through trixie's own dynamic loader, so
the machine is not changed. (Trixie's makedumpfile was tried for snappy/zstd and dropped:
see reencode.py.)
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from .apt import Apt
from .util import progress, read_json, recipe_hash, rm_rf, run, write_json

SUITE = "trixie"
PACKAGES = ("crash",)
#: Not needed to run crash (its gdb is built in).
SKIP_PREFIXES = (
    "perl",
    "libperl",
    "binutils",
    "libbinutils",
    "libctf",
    "libgprofng",
    "libsframe",
    "libjansson",
    "libdb5",
    "libgdbm",
)


@dataclass
class TrixieTools:
    """How to run trixie's binaries through trixie's loader."""

    root: Path
    versions: dict[str, str]

    def _prefix(self) -> list[str]:
        libdirs = [self.root / "usr/lib/x86_64-linux-gnu", self.root / "lib/x86_64-linux-gnu"]
        loader = self.root / "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
        return [str(loader), "--library-path", ":".join(str(d) for d in libdirs)]

    @property
    def crash(self) -> list[str]:
        return [*self._prefix(), str(self.root / "usr/bin/crash")]


def prepare(cache: Path) -> TrixieTools:
    """Download and unpack trixie's crash with its libraries."""
    step = "tools trixie"
    apt = Apt(cache, SUITE)
    apt.update()
    versions = {p: apt.version(p) for p in PACKAGES}
    dest = cache / "tools" / SUITE
    stamp = dest / "tools.json"
    recipe = recipe_hash(versions)
    old = read_json(stamp)
    if old and old.get("recipe") == recipe:
        return TrixieTools(dest, versions)
    progress(step, f"unpacking crash {versions['crash']}")
    rm_rf(dest)
    dest.mkdir(parents=True)
    names = [n for n in apt.recursive_depends(list(PACKAGES)) if not n.startswith(SKIP_PREFIXES)]
    debs = apt.download(names)
    for deb in debs.values():
        run(["dpkg-deb", "-x", deb, dest], step, 120)
    tools = TrixieTools(dest, versions)
    run([*tools.crash, "--version"], step, 60)
    write_json(stamp, {"recipe": recipe, "versions": versions})
    shutil.rmtree(apt.debs, ignore_errors=True)
    return tools
