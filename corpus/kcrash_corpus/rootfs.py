"""A small Debian 12 root file system for live tests: Python and kcrash's dependencies.

``tests/test_live_guest.py`` boots the corpus kernel, mounts this tree over virtio-9p and runs
kcrash ``--live`` (``/proc/kcore``) in it, beside crash on the same running kernel. Built once
and cached like the rest of the corpus:

* Debian 12's ``python3`` with the packages it depends on, unpacked with ``dpkg-deb -x``
  (nothing configured or installed: the interpreter and its standard library need no
  maintainer script), from the same private apt configuration as the kernels;
* kcrash's runtime dependencies (``[project] dependencies`` of ``pyproject.toml``: drgn,
  capstone, rich …) as binary wheels from PyPI, installed with ``pip --target`` for that
  Python's version and ABI into ``/opt/kcrash/site``.

kcrash itself is not copied in: the test shares the tree under test read-only (``/mnt/src``),
so a cached root file system never runs stale kcrash code. About 60 MB of packages and 70 MB
of wheels; measured cost in the README's CI budget.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Any

from .apt import Apt
from .util import BuildError, progress, read_json, recipe_hash, rm_rf, run, write_json

SUITE = "bookworm"
#: python3; the C++ runtime capstone's wheel links against (not bundled in it); and what
#: crash runs on a live kernel: `/usr/bin/strings` on the vmlinux through popen() (/bin/sh)
#: to match its banner with /proc/version (without them: "vmlinux and /proc/version do not
#: match!").
PACKAGES = ("python3", "libstdc++6", "dash", "binutils")
#: Dependencies of python3 that running it does not need (package tools, perl, dbm modules).
SKIP_PREFIXES = (
    "dpkg",
    "tar",
    "install-info",
    "perl",
    "libperl",
    "libdb5",
    "libgdbm",
    "mailcap",
    "debianutils",
)
#: Mount points the guest's job fills (proc, sys, dev, a tmpfs; corpus kernel, kcrash's
#: source, trixie's crash and the output share over 9p).
MOUNT_POINTS = ("proc", "sys", "dev", "tmp", "mnt/kernel", "mnt/src", "mnt/crash", "mnt/out")
#: Where pip puts kcrash's dependencies inside the tree (on the guest's PYTHONPATH).
SITE = "opt/kcrash/site"
#: Wheels for the glibc of Debian 12 (2.36): every manylinux tag up to it.
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64")
#: What kcrash imports from those wheels, checked with the tree's own interpreter.
IMPORTS = "import drgn, capstone, rich, jinja2, prompt_toolkit, elftools"
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def requirements() -> list[str]:
    """kcrash's runtime dependencies, as ``pyproject.toml`` declares them (one list)."""
    try:
        import tomllib  # Python 3.11+ (Debian 12's is 3.11)
    except ImportError as exc:
        raise BuildError("live rootfs", f"reading {PYPROJECT} needs Python 3.11+") from exc
    try:
        data = tomllib.loads(PYPROJECT.read_text())
        return list(data["project"]["dependencies"])
    except (OSError, KeyError, ValueError) as exc:
        raise BuildError(
            "live rootfs", f"cannot read dependencies from {PYPROJECT}: {exc}"
        ) from exc


def _python_version(deb_version: str) -> str:
    """``3.11.2-1+b1`` -> ``3.11`` (pip's --python-version)."""
    m = re.match(r"(\d+)\.(\d+)", deb_version)
    if not m:
        raise BuildError("live rootfs", f"unexpected python3 version {deb_version}")
    return f"{m.group(1)}.{m.group(2)}"


def prepare(cache: Path) -> dict[str, Any]:
    """Build (or reuse) ``<cache>/live/rootfs``; returns its manifest record."""
    step = "live rootfs"
    apt = Apt(cache, SUITE)
    apt.update()
    names = [n for n in apt.recursive_depends(list(PACKAGES)) if not n.startswith(SKIP_PREFIXES)]
    versions = apt.candidates(names)
    reqs = requirements()
    pyver = _python_version(versions["python3"])
    recipe = recipe_hash(SUITE, versions, reqs, PLATFORMS, sorted(MOUNT_POINTS))
    dest = cache / "live" / "rootfs"
    stamp = cache / "live" / "rootfs.json"
    old = read_json(stamp)
    if old and old.get("recipe") == recipe and (dest / "usr/bin/python3").exists():
        progress(step, "cached")
        return dict(old)
    t0 = time.monotonic()
    progress(
        step, f"unpacking {len(names)} Debian {SUITE} packages (python3 {versions['python3']})"
    )
    tmp = dest.with_name(".rootfs.tmp")
    rm_rf(tmp)
    tmp.mkdir(parents=True)
    for deb in apt.download(versions).values():
        run(["dpkg-deb", "-x", deb, tmp], step, 120)
    for d in MOUNT_POINTS:
        (tmp / d).mkdir(parents=True, exist_ok=True)
    # dash's postinst makes /bin/sh (dpkg-deb -x runs no maintainer script).
    if not (tmp / "bin/sh").exists():
        (tmp / "bin/sh").symlink_to("dash")
    progress(step, f"pip install --target {SITE}: {' '.join(reqs)}")
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    pip += ["--no-cache-dir", "--only-binary=:all:", "--implementation", "cp"]
    pip += ["--python-version", pyver, "--abi", f"cp{pyver.replace('.', '')}"]
    for plat in PLATFORMS:
        pip += ["--platform", plat]
    run([*pip, "--target", tmp / SITE, *reqs], step, 900)
    wheels = sorted(p.name.removesuffix(".dist-info") for p in (tmp / SITE).glob("*.dist-info"))
    # The tree's own interpreter must start and import every wheel (one for the wrong ABI or
    # glibc would fail here, at build time, not in a test).
    check = run(
        [tmp / "lib64/ld-linux-x86-64.so.2", "--library-path",
         f"{tmp}/usr/lib/x86_64-linux-gnu:{tmp}/lib/x86_64-linux-gnu",
         tmp / f"usr/bin/python{pyver}", "-S", "-c",
         f"import sys; sys.path[:0] = ['{tmp / SITE}']; {IMPORTS}; print(drgn.__version__)"],
        step, 120, env={"PYTHONHOME": f"{tmp}/usr", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    rm_rf(dest)
    tmp.replace(dest)
    record = {
        "recipe": recipe,
        "root": str(dest),
        "suite": SUITE,
        "python": versions["python3"],
        "site": f"/{SITE}",
        "packages": versions,
        "wheels": wheels,
        "drgn": check.stdout.strip(),
        "size": sum(p.stat().st_size for p in dest.rglob("*") if p.is_file()),
        "built_in_s": round(time.monotonic() - t0, 1),
    }
    write_json(stamp, record)
    progress(step, f"built in {record['built_in_s']} s, {record['size'] / 1e6:.0f} MB")
    return record
