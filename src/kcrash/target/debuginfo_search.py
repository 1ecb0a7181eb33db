"""Find the vmlinux (and module debug files) that match a dump.

Why not just drgn's standard finder: we must say *where we looked* when
nothing is found, refuse a wrong vmlinux with both build ids in one line,
search the user's ``--debuginfo`` directories and ``KCRASH_DEBUGINFO_PATH``,
and fall back to the no-debuginfo mode instead of failing.  Matching is by
GNU build id when the dump's VMCOREINFO has one (``BUILD-ID=``, kernels
≥ 5.9) and by release otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from elftools.elf.elffile import ELFFile

from ..errors import DebuginfoMismatchError, KcrashError
from ..inputs import require_regular

#: Where distributions install kernel debuginfo, ``{r}`` = release.
#: Debian/Ubuntu (-dbg/-dbgsym), RHEL/CentOS/Fedora (kernel-debuginfo),
#: SUSE (kernel-default-debuginfo), and plain /boot builds.
STANDARD_VMLINUX_PATHS = (
    "/usr/lib/debug/boot/vmlinux-{r}",
    "/usr/lib/debug/lib/modules/{r}/vmlinux",
    "/usr/lib/debug/boot/vmlinux-{r}.debug",
    "/boot/vmlinux-{r}",
    "/lib/modules/{r}/build/vmlinux",
)

#: Relative names tried inside each user-given debuginfo directory.
RELATIVE_VMLINUX_PATHS = (
    "vmlinux-{r}",
    "{r}/vmlinux",
    "boot/vmlinux-{r}",
    "lib/modules/{r}/vmlinux",
    "usr/lib/debug/boot/vmlinux-{r}",
    "usr/lib/debug/lib/modules/{r}/vmlinux",
    "vmlinux",
)

CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "kcrash" / "debuginfo"


def cache_root() -> Path:
    """The debuginfo cache, read at call time: ``KCRASH_DEBUGINFO_CACHE`` (a fleet's workers
    point it at one shared directory, so a build id is fetched once for all of them), else
    ``$XDG_CACHE_HOME/kcrash/debuginfo``, else ``~/.cache/kcrash/debuginfo``."""
    shared = os.environ.get("KCRASH_DEBUGINFO_CACHE")
    if shared:
        return Path(shared)
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg) / "kcrash" / "debuginfo"
    return CACHE_DIR


def elf_build_id(path: str | os.PathLike[str]) -> str | None:
    """The GNU build id of an ELF file (hex), reading only its section headers."""
    try:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            for sec in elf.iter_sections():
                if sec.header["sh_type"] != "SHT_NOTE":
                    continue
                for note in sec.iter_notes():
                    # Match the owner too: vmlinux's .notes also holds Xen notes
                    # whose type numbers collide with NT_GNU_BUILD_ID.
                    if note["n_name"] == "GNU" and note["n_type"] == "NT_GNU_BUILD_ID":
                        return str(note["n_desc"]).lower()
    except (OSError, Exception):  # pyelftools raises assorted errors on garbage
        return None
    return None


def elf_release(path: str | os.PathLike[str]) -> str | None:
    """Best-effort kernel release of a vmlinux, for error messages only.

    Reads the ``Linux version R (`` banner from ``.rodata`` without loading
    the file: we read in chunks until it is found (it sits early in .rodata).
    """
    try:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            sec = elf.get_section_by_name(".rodata")
            if sec is None:
                return None
            f.seek(sec["sh_offset"])
            remaining = min(sec["sh_size"], 64 << 20)
            tail = b""
            while remaining > 0:
                chunk = tail + f.read(min(1 << 20, remaining))
                remaining -= 1 << 20
                i = chunk.find(b"Linux version ")
                if i >= 0 and chunk.find(b" ", i + 14) > 0:
                    return chunk[i + 14 : chunk.find(b" ", i + 14)].decode("ascii", "replace")
                tail = chunk[-64:]
    except Exception:
        return None
    return None


@dataclass
class DebugInfo:
    """The debuginfo chosen for a dump."""

    vmlinux: str
    module_dirs: list[str]


def search_dirs(extra: Iterable[str] = ()) -> list[str]:
    """User directories to search: ``--debuginfo`` first, then the env path."""
    dirs = list(extra)
    env = os.environ.get("KCRASH_DEBUGINFO_PATH", "")
    dirs += [d for d in env.split(":") if d]
    return dirs


def _candidates(release: str | None, build_id: str | None, dirs: list[str]) -> Iterator[str]:
    if build_id:
        yield str(cache_root() / build_id / "vmlinux")
        for d in [*dirs, "/usr/lib/debug"]:
            yield os.path.join(d, ".build-id", build_id[:2], build_id[2:] + ".debug")
    if release:
        for d in dirs:
            for rel in RELATIVE_VMLINUX_PATHS:
                yield os.path.join(d, rel.format(r=release))
        for p in STANDARD_VMLINUX_PATHS:
            yield p.format(r=release)


def module_dirs_for(vmlinux: str, release: str | None, dirs: list[str]) -> list[str]:
    """Directories that may hold the modules' debug ``.ko`` files.

    Debian puts them in ``/usr/lib/debug/lib/modules/R``, RHEL in the same
    place; a user's unpacked package or our corpus keeps them near vmlinux.
    """
    out = [os.path.dirname(os.path.abspath(vmlinux))]
    if release:
        out += [os.path.join(d, "lib/modules", release) for d in dirs]
        out += [f"/usr/lib/debug/lib/modules/{release}", f"/lib/modules/{release}"]
    out += dirs
    seen: list[str] = []
    for d in out:
        if os.path.isdir(d) and d not in seen:
            seen.append(d)
    return seen


def find(
    release: str | None, build_id: str | None, dirs: list[str]
) -> tuple[DebugInfo | None, list[str]]:
    """Find a vmlinux matching the dump; return it and the places looked at."""
    looked: list[str] = []
    for path in _candidates(release, build_id, dirs):
        if path in looked:
            continue
        looked.append(path)
        if not os.path.isfile(path):
            continue
        if build_id is not None:
            bid = elf_build_id(path)
            if bid != build_id:
                continue  # another build of the same release: keep looking
        return DebugInfo(path, module_dirs_for(path, release, dirs)), looked
    return None, looked


def check_given(
    vmlinux: str, release: str | None, build_id: str | None, dirs: list[str]
) -> DebugInfo:
    """Validate a vmlinux the user named; refuse a wrong one in one line."""
    require_regular(vmlinux, "vmlinux")  # a FIFO would block the ELF reader
    bid = elf_build_id(vmlinux)
    if bid is None:
        raise KcrashError(f"{vmlinux}: not an ELF file with a build id; is it a vmlinux?")
    if build_id is not None and bid != build_id:
        theirs = elf_release(vmlinux) or "unknown release"
        raise DebuginfoMismatchError(
            f"{vmlinux} does not match the dump: dump is {release or '?'} build id {build_id}, "
            f"vmlinux is {theirs} build id {bid}"
        )
    return DebugInfo(vmlinux, module_dirs_for(vmlinux, release, dirs))
