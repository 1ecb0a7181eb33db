"""The debuginfo cache: ``CACHE_DIR/<build-id>/vmlinux`` plus module ``.ko`` files.

Why keyed by build id: two builds of one release (a rebuilt package, a
custom kernel with the same ``uname -r``) differ byte for byte, and only the
build id tells them apart; :func:`kcrash.target.debuginfo_search.find` looks at
``CACHE_DIR/<build-id>/vmlinux`` first.  Dumps of kernels older than 5.9
carry no build id in VMCOREINFO, so a ``by-release/<release>`` symlink
points at the build fetched for that release.

Nothing enters the cache unverified: files are written under a temporary
name (``.<build-id>.*.part`` in the cache root, or a staging directory) and
renamed into ``<build-id>/`` only after their build id (or, without one,
their ``Linux version`` banner) matched.  Renames are atomic, so two
fetches of the same build at once cannot leave a half-written vmlinux.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from ...errors import DebuginfoMismatchError
from .. import debuginfo_search as di


def cache_dir() -> Path:
    """The cache root (:func:`kcrash.target.debuginfo_search.cache_root`), read at call time:
    tests and fleet workers set ``KCRASH_DEBUGINFO_CACHE``/``XDG_CACHE_HOME`` late."""
    return di.cache_root()


#: How long a fetch waits for another process fetching the same build before fetching itself.
#: An analysis child is killed by its own time limit long before this, releasing its lock.
FETCH_LOCK_WAIT = 1800.0


@contextlib.contextmanager
def fetch_lock(
    key: str, root: Path | None = None, say: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Hold ``ROOT/.fetch-KEY.lock`` while one build is fetched.

    Why: workers sharing one cache would otherwise download the same 1 GB package or
    debuginfod file at once when a new kernel's first crashes arrive together; the second
    waits here and then finds the first one's result in the cache.  ``flock`` is dropped by
    the kernel when its holder dies, so a killed fetcher never blocks the others; the wait is
    still bounded (:data:`FETCH_LOCK_WAIT`) so a stuck one cannot hang them.
    """
    root = root or cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in key)
    fd = os.open(root / f".fetch-{safe}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + FETCH_LOCK_WAIT
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    if say:
                        say(
                            f"another fetch of {key} still runs after {FETCH_LOCK_WAIT:g} s; "
                            "fetching anyway"
                        )
                    break
                if say and not told:
                    say(f"waiting for another kcrash fetching {key} into {root}")
                    told = True
                time.sleep(0.5)
        yield
    finally:
        os.close(fd)


def gnu_build_id(path: str | os.PathLike[str]) -> str | None:
    """The GNU build id of an ELF file, or None (the owner of the note must be ``GNU``:
    a Debian vmlinux has a ``Xen`` note of the same type 3 before it)."""
    return di.elf_build_id(path)


def cached_vmlinux(
    build_id: str | None, release: str | None, root: Path | None = None
) -> str | None:
    """A verified vmlinux from the cache, by build id, else by release."""
    root = root or cache_dir()
    if build_id:
        path = root / build_id / "vmlinux"
        if path.is_file() and gnu_build_id(path) == build_id:
            return str(path)
    if release and not build_id:
        link = root / "by-release" / release / "vmlinux"
        if link.is_file():
            return os.path.realpath(link)  # the build-id path: what find() and users expect
    return None


def verify(path: str, build_id: str | None, release: str | None, source: str) -> str:
    """Return ``path``'s build id if it is the kernel wanted; else raise one line.

    ``source`` names where the file came from (a URL, a package) so the
    operator sees which server or archive served the wrong file.
    """
    got = gnu_build_id(path)
    if got is None:
        raise DebuginfoMismatchError(f"{source}: served a file that is not an ELF with a build id")
    if build_id is not None and got != build_id:
        raise DebuginfoMismatchError(
            f"{source}: refused: served build id {got}, the dump needs {build_id}"
        )
    if build_id is None and release is not None:
        theirs = di.elf_release(path)
        if theirs != release:
            raise DebuginfoMismatchError(
                f"{source}: refused: served a vmlinux of {theirs or 'unknown release'}, "
                f"the dump needs {release}"
            )
    return got


def entry_dir(build_id: str, root: Path | None = None) -> Path:
    """The directory holding one build's vmlinux and module files (created)."""
    d = (root or cache_dir()) / build_id
    d.mkdir(parents=True, exist_ok=True)
    return d


def install(tmp: str, build_id: str, release: str | None, root: Path | None = None) -> str:
    """Move a verified temporary vmlinux to its cache place; return the final path."""
    root = root or cache_dir()
    final = entry_dir(build_id, root) / "vmlinux"
    os.replace(tmp, final)
    if release:
        link_dir = root / "by-release" / release
        link_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp_link = link_dir.with_name(f".{release}.{os.getpid()}")
        if tmp_link.is_symlink():
            tmp_link.unlink()
        tmp_link.symlink_to(Path("..") / build_id)
        os.replace(tmp_link, link_dir)
    return str(final)
