"""crash for arm64 dumps on this x86-64 host: the oracle of the arm64 kernels (issue 20).

crash reads only its own architecture's dumps unless built for another one: upstream's
`make target=ARM64` on an x86-64 host gives an x86-64 binary (gdb built for an aarch64
target inside) that reads arm64 vmcores natively fast. It is built from Debian's upstream
tarball of trixie's crash 8.0.6 (the same crash the x86 kernels' `ps-trixie` and Debian 13
oracles are; 8.0.2's `ps` is wrong on Debian's 6.1, see README), whose `gdb-10.2.tar.gz` is
inside, so nothing but Debian's archive is needed. With lzo, snappy and zstd, as Debian
builds it. Built once into `<cache>/tools/crash-arm64/` (about 1 GB of build tree while
building, a 60 MB binary kept); the recipe is the source version and the build options.

Rejected: Debian's arm64 `crash` package under qemu-user-static works but its gdb reads a
vmlinux's DWARF instruction by instruction under emulation, minutes per session.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from .apt import Apt
from .util import BuildError, progress, read_json, recipe_hash, rm_rf, run, write_json

SUITE = "trixie"
#: Pinned: the oracle's crash must not move under a built corpus (bump it on purpose).
VERSION = "8.0.6-1"
TARGET = "ARM64"
#: crash's own switches for makedumpfile's compressions (its README: `make lzo` etc.),
#: written where its configure reads them.
CFLAGS_EXTRA = "-DLZO -DSNAPPY -DZSTD"
LDFLAGS_EXTRA = "-llzo2 -lsnappy -lzstd"
#: A cold build of crash and its gdb (gdb 10.2 is most of it), on this 2-core machine
#: (2026-11-30): 52 min at load 6-8 with gdb's default -g; 24 min 34 s (1,474 s) at load 4-5
#: with BUILD_ENV's -O2. The bound leaves room for a slower or busier machine.
BUILD_TIMEOUT = 5400
#: Compiler flags for the build, in the environment of `make` (gdb's configure and crash's
#: Makefile read CFLAGS/CXXFLAGS from there): -O2 without gdb's default -g, which makes
#: most of gdb's compile time (debug info for a million lines of C++) and changes nothing
#: crash does. Not part of the recipe hash: the binary behaves the same, and a cache whose
#: crash was built with -g stays valid (no 50-min rebuild for a flag that changes no output).
BUILD_ENV = {"CFLAGS": "-O2", "CXXFLAGS": "-O2"}
#: Host packages the build needs (.ci/setup installs them).
BUILD_TOOLS = ("make", "gcc", "g++", "bison", "flex")


@dataclass
class CrashArm64:
    """The built crash, and what it is."""

    binary: Path
    version: str
    target: str
    built_in_s: float

    @property
    def crash(self) -> list[str]:
        return [str(self.binary)]

    @property
    def label(self) -> str:
        return f"crash {self.version.split('-')[0]} target={self.target} (Debian {SUITE} source)"


def prepare(cache: Path) -> CrashArm64:
    """Build crash for arm64 dumps, or reuse the cached build.

    The recipe is the source version, the target and crash's own build switches; the
    compiler flags (:data:`BUILD_ENV`) are left out of it on purpose: they change how long
    the compile takes, not what the binary prints, so a crash built before them (with
    gdb's -g) is still this recipe's binary."""
    step = "tools crash-arm64"
    dest = cache / "tools" / "crash-arm64"
    stamp = dest / "tools.json"
    recipe = recipe_hash(VERSION, TARGET, CFLAGS_EXTRA, LDFLAGS_EXTRA)
    old = read_json(stamp)
    binary = dest / "crash"
    if old and old.get("recipe") == recipe and binary.exists():
        return CrashArm64(binary, VERSION, TARGET, old.get("built_in_s", 0.0))
    missing = [t for t in BUILD_TOOLS if shutil.which(t) is None]
    if missing:
        raise BuildError(step, f"missing host tools {missing}: bash .ci/setup host")
    t0 = time.monotonic()
    apt = Apt(cache, SUITE, source=True)
    apt.update()
    src = dest / "src"
    tarball = apt.orig_source("crash", VERSION, src)
    upstream = VERSION.split("-")[0]
    tree = src / f"crash-{upstream}"
    rm_rf(tree)
    run(["tar", "-xf", tarball, "-C", src], step, 300)
    (tree / "CFLAGS.extra").write_text(CFLAGS_EXTRA + "\n")
    (tree / "LDFLAGS.extra").write_text(LDFLAGS_EXTRA + "\n")
    progress(step, f"make target={TARGET} (crash {upstream} and its gdb: long, see BUILD_TIMEOUT)")
    jobs = str(min(2, os.cpu_count() or 1))
    env = {**os.environ, **BUILD_ENV}
    run(
        ["nice", "-n", "10", "make", f"target={TARGET}", "-j", jobs],
        step,
        BUILD_TIMEOUT,
        cwd=tree,
        env=env,
    )
    built = tree / "crash"
    out = run([built, "--version"], step, 60).stdout
    if upstream not in out:
        raise BuildError(step, f"built crash says {out.strip()[:80]!r}, not {upstream}")
    tmp = dest / ".crash.tmp"
    shutil.copy2(built, tmp)
    tmp.replace(binary)
    rm_rf(tree)  # the gdb build tree is about 1 GB
    built_in = round(time.monotonic() - t0, 1)
    write_json(stamp, {"recipe": recipe, "version": VERSION, "target": TARGET,
                       "built_in_s": built_in})  # fmt: skip
    progress(step, f"built in {built_in:.0f}s")
    return CrashArm64(binary, VERSION, TARGET, built_in)
