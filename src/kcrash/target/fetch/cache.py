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

import os
from pathlib import Path

from ...errors import DebuginfoMismatchError
from .. import debuginfo_search as di


def cache_dir() -> Path:
    """The cache root, honouring ``XDG_CACHE_HOME`` at call time (tests set it late)."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg) / "kcrash" / "debuginfo"
    return di.CACHE_DIR


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
