"""Debian/Ubuntu: get a kernel's debug package with the user's own apt.

Why ``apt-get download`` and not a URL of our own: the user's apt already
knows their mirrors, proxies, authentication and pinned suites; it
downloads without installing (no root needed for the package database, no
633 MB left in ``/usr/lib/debug``).  We then read the ``.deb`` ourselves: an
``ar`` archive whose ``data.tar.*`` we stream, stopping as soon as
``vmlinux`` (and any module asked for) has passed — in Debian's -dbg
package ``boot/vmlinux-R`` comes first, so this takes seconds instead of
a full pass over 858 MB of xz.

Package names: Debian ``linux-image-R-dbg`` (main archive); Ubuntu
``linux-image-unsigned-R-dbgsym`` or ``linux-image-R-dbgsym`` (the
``ddebs`` archive, which the user must have in their sources).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

from ...errors import KcrashError
from . import cache
from . import progress as _progress
from .distro import is_ubuntu_release


def package_names(release: str) -> list[str]:
    """Debug package names to try for ``release``, most likely first."""
    if is_ubuntu_release(release):
        return [f"linux-image-unsigned-{release}-dbgsym", f"linux-image-{release}-dbgsym"]
    return [f"linux-image-{release}-dbg"]


#: apt's words for "no such package in your sources".
_UNKNOWN_PACKAGE = ("Unable to locate package", "has no installation candidate", "no candidate")


def apt_available() -> bool:
    return shutil.which("apt-get") is not None


def _apt_download(pkg: str, workdir: str, say: Callable[[str], None], progress: bool) -> str | None:
    """``apt-get download pkg`` in ``workdir``; the .deb's path, or None if unknown to apt.

    On a terminal apt shows its own progress and the URL it fetches (its
    stdout goes to our stderr); otherwise we print the URL from its ``Get:`` line.
    """
    say(f"apt-get download {pkg} (from your apt sources)")
    live = progress and sys.stderr.isatty()
    try:
        proc = subprocess.run(
            ["apt-get", "download", pkg],
            cwd=workdir,
            stdout=sys.stderr if live else subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            timeout=3600,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise KcrashError(f"apt-get download {pkg}: {e}") from None
    for line in (proc.stdout or "").splitlines():
        if line.startswith("Get:"):  # "Get:1 http://mirror suite/main amd64 pkg amd64 ver [size]"
            size = line.rsplit("[", 1)[-1].rstrip("]")
            say(f"apt fetched {' '.join(line.split()[1:3])} ({size})")
    debs = [f for f in os.listdir(workdir) if f.endswith(".deb")]
    if proc.returncode != 0 or not debs:
        err = (proc.stderr or proc.stdout or "").strip().splitlines()
        last = err[-1] if err else f"exit status {proc.returncode}"
        if any(m in (proc.stderr or "") for m in _UNKNOWN_PACKAGE):
            return None
        raise KcrashError(f"apt-get download {pkg}: {last}")
    return os.path.join(workdir, debs[0])


class _Counting:
    """A read-only file wrapper that reports bytes read (for the unpack progress bar)."""

    def __init__(self, f: BinaryIO, advance: Callable[[int], None]) -> None:
        self.f, self.advance = f, advance

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.advance(len(data))
        return data


def _data_member(f: BinaryIO, path: str) -> int:
    """Position ``f`` at the start of the .deb's ``data.tar.*`` member; return its size."""
    if f.read(8) != b"!<arch>\n":
        raise KcrashError(f"{path}: not a .deb (no ar signature)")
    while True:
        head = f.read(60)
        if len(head) < 60:
            raise KcrashError(f"{path}: no data.tar member")
        name = head[:16].decode("ascii", "replace").strip().rstrip("/")
        size = int(head[48:58].decode("ascii").strip())
        if name.startswith("data.tar"):
            return size
        f.seek(size + (size & 1), os.SEEK_CUR)


def extract(
    deb: str,
    release: str,
    dest: Path,
    modules: Iterable[str] = (),
    all_modules: bool = False,
    progress: bool = False,
    want_vmlinux: bool = True,
) -> tuple[str | None, list[str]]:
    """Extract vmlinux (and the named module debug files) from ``deb`` into ``dest``.

    Returns ``(vmlinux path or None, module paths)``.  Modules are matched by
    name (``ext4`` or ``ext4.ko``; ``-``/``_`` alike, as the kernel does) and
    keep their ``kernel/…`` path under ``dest``, where drgn's module walk finds
    them.  Streaming stops once everything asked for has been seen.
    """
    wanted = {_norm(m) for m in modules}
    vmlinux_names = {
        f"usr/lib/debug/boot/vmlinux-{release}",
        f"usr/lib/debug/lib/modules/{release}/vmlinux",
    }
    mod_prefix = f"usr/lib/debug/lib/modules/{release}/"
    vmlinux: str | None = None
    got_modules: list[str] = []
    with open(deb, "rb") as raw:
        size = _data_member(raw, deb)
        show = _progress.wanted(progress, size)
        with (
            _progress.bar("unpacking", size, show) as advance,
            tarfile.open(fileobj=_Counting(raw, advance), mode="r|*") as tf,  # type: ignore[call-overload]
        ):
            for m in tf:
                name = m.name.lstrip("./")
                if not m.isfile():
                    continue
                if want_vmlinux and vmlinux is None and name in vmlinux_names:
                    vmlinux = str(dest / ".vmlinux.part")
                    _save(tf, m, vmlinux)
                elif name.startswith(mod_prefix) and name.endswith((".ko", ".ko.debug")):
                    base = _norm(os.path.basename(name))
                    if all_modules or base in wanted:
                        out = dest / name[len(mod_prefix) :]
                        out.parent.mkdir(parents=True, exist_ok=True)
                        _save(tf, m, str(out))
                        got_modules.append(str(out))
                        wanted.discard(base)
                if (vmlinux is not None or not want_vmlinux) and not wanted and not all_modules:
                    break
    return vmlinux, got_modules


def _norm(name: str) -> str:
    for suffix in (".debug", ".ko"):
        name = name.removesuffix(suffix)
    return name.replace("-", "_")


def _save(tf: tarfile.TarFile, member: tarfile.TarInfo, path: str) -> None:
    src = tf.extractfile(member)
    if src is None:
        return
    with src, open(path, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)


def _workdir() -> tempfile.TemporaryDirectory[str]:
    """A temporary directory apt's unprivileged ``_apt`` user may write into.

    As root, apt downloads as ``_apt`` and warns ("Download is performed
    unsandboxed") when the directory is root's private one.
    """
    tmp = tempfile.TemporaryDirectory(prefix="kcrash-deb-")
    if os.geteuid() == 0:
        with contextlib.suppress(KeyError, OSError):
            os.chown(tmp.name, pwd.getpwnam("_apt").pw_uid, 0)
    return tmp


#: Packages downloaded by this process: release -> (package, .deb path).  The
#: temporary directories live until the process exits, so fetching vmlinux
#: and then, once the dump's module list is known, its modules costs one
#: download (858 MB for Debian 12), not two.
_DOWNLOADED: dict[str, tuple[str, str]] = {}
_WORKDIRS: list[tempfile.TemporaryDirectory[str]] = []


def download(release: str, say: Callable[[str], None], progress: bool) -> tuple[str, str] | None:
    """The release's debug package as ``(name, .deb path)``, downloaded once per process."""
    if release in _DOWNLOADED and os.path.isfile(_DOWNLOADED[release][1]):
        return _DOWNLOADED[release]
    work = _workdir()
    _WORKDIRS.append(work)  # removed by TemporaryDirectory's finalizer at exit
    for pkg in package_names(release):
        deb = _apt_download(pkg, work.name, say, progress)
        if deb is not None:
            _DOWNLOADED[release] = (pkg, deb)
            return pkg, deb
        say(f"apt does not know {pkg} (add the suite that built {release} to your sources)")
    return None


def fetch(
    release: str,
    build_id: str | None,
    *,
    say: Callable[[str], None],
    modules: Iterable[str] = (),
    all_modules: bool = False,
    root: Path | None = None,
    progress: bool = True,
) -> str | None:
    """Download the release's debug package, extract, verify, cache; the vmlinux path or None.

    The vmlinux is verified (build id, else release) before anything is
    kept; module files go to the same build's cache directory.
    """
    if not apt_available():
        return None
    got = download(release, say, progress)
    if got is None:
        return None
    pkg, deb = got
    say(f"extracting vmlinux from {os.path.basename(deb)}")
    staging = Path(tempfile.mkdtemp(prefix=".staging.", dir=_ensure(root)))
    try:
        vmlinux, mods = extract(deb, release, staging, modules, all_modules, progress)
        if vmlinux is None:
            raise KcrashError(f"{pkg}: the package holds no vmlinux for {release}")
        bid = cache.verify(vmlinux, build_id, release, pkg)
        entry = cache.entry_dir(bid, root)
        for mod in mods:
            rel = os.path.relpath(mod, staging)
            (entry / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(mod, entry / rel)
        path = cache.install(vmlinux, bid, release, root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    say(f"verified build id {bid} -> {path}")
    return path


def fetch_modules(
    release: str,
    entry: Path,
    names: Iterable[str],
    *,
    say: Callable[[str], None],
    progress: bool = True,
) -> list[str]:
    """Extract the named modules' debug files into a build's cache directory ``entry``.

    Reuses this process's download of the package when there was one.  The
    caller verifies build ids (it knows them from the dump).
    """
    names = list(names)
    if not names or not apt_available():
        return []
    got = download(release, say, progress)
    if got is None:
        return []
    say(f"extracting {len(names)} module debug file(s) from {os.path.basename(got[1])}")
    staging = Path(tempfile.mkdtemp(prefix=".staging.", dir=entry))
    out: list[str] = []
    try:
        _, mods = extract(got[1], release, staging, names, progress=progress, want_vmlinux=False)
        for mod in mods:
            dest = entry / os.path.relpath(mod, staging)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(mod, dest)
            out.append(str(dest))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def _ensure(root: Path | None) -> Path:
    r = root or cache.cache_dir()
    r.mkdir(parents=True, exist_ok=True)
    return r
