"""Debug files for the modules a dump had loaded: find locally, else fetch (when asked).

Why per module and by build id: a dump's modules are whatever was loaded at
the crash — in-tree modules from the distribution, out-of-tree ones from
anywhere — and each carries its own GNU build id (drgn reads it from the
module's notes in memory).  debuginfod serves each by that id; Debian's
``-dbg`` package holds the in-tree ones, found by name.  Every file is
checked against the module's build id before it is kept.  Files land in the
vmlinux's cache directory (``CACHE_DIR/<vmlinux-build-id>/``), which
:func:`kcrash.target.debuginfo_search.module_dirs_for` hands to drgn's module walk.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from . import cache, deb, debuginfod
from .distro import release_family


def norm(name: str) -> str:
    """Module name as the kernel spells it: ``aesni-intel.ko`` -> ``aesni_intel``."""
    base = os.path.basename(name)
    for suffix in (".xz", ".zst", ".gz", ".debug", ".ko"):
        base = base.removesuffix(suffix)
    return base.replace("-", "_")


def loaded_modules(dump_path: str, vmlinux: str) -> dict[str, str | None]:
    """``name -> build id`` of every module loaded in the dump (drgn, with vmlinux's DWARF).

    Only vmlinux is loaded: the module list needs ``struct module`` from it.
    """
    import contextlib

    import drgn

    from ..dumpfile import inspect

    dump = inspect(dump_path)
    if dump.container in ("kdump", "flattened") and not dump.machine:
        # QEMU's kdump writer leaves the architecture empty (see target.open)
        flags = drgn.PlatformFlags.IS_64_BIT | drgn.PlatformFlags.IS_LITTLE_ENDIAN
        prog = drgn.Program(drgn.Platform(drgn.Architecture.X86_64, flags))
    else:
        prog = drgn.Program()
    prog.set_core_dump(dump_path)
    with contextlib.suppress(drgn.MissingDebugInfoError):
        prog.load_debug_info([vmlinux])
    out: dict[str, str | None] = {}
    for module, _new in prog.loaded_modules():
        if isinstance(module, drgn.RelocatableModule):  # loadable modules (not vmlinux)
            bid = module.build_id
            out[module.name] = bid.hex() if bid else None
    return out


def _local(dirs: Iterable[Path], wanted: Mapping[str, str | None]) -> dict[str, str]:
    """Module debug files under ``dirs`` whose name (and build id, when known) match."""
    found: dict[str, str] = {}
    for d in dirs:
        for top, _subdirs, files in os.walk(d):
            for f in files:
                if not f.endswith((".ko", ".ko.debug")):
                    continue
                name = norm(f)
                if name not in wanted or name in found:
                    continue
                path = os.path.join(top, f)
                want = wanted[name]
                if want is None or cache.gnu_build_id(path) == want:
                    found[name] = path
    return found


def fetch_module_debuginfo(
    release: str | None,
    build_id: str | None,
    modules: Mapping[str, str | None],
    *,
    allow_network: bool,
    progress: bool = True,
    say: Callable[[str], None],
    cache_root: Path | None = None,
    debuginfod_urls: list[str] | None = None,
    local_dirs: Iterable[str] = (),
) -> dict[str, str]:
    """Debug files for ``modules`` (name -> build id or None): ``name -> path``.

    ``build_id``/``release`` are the kernel's: they name the cache directory
    (the vmlinux is fetched first by :func:`kcrash.target.fetch.fetch_debuginfo`).
    Modules that no source has (out-of-tree modules without a debuginfod
    server) are simply absent from the result.
    """
    wanted = {norm(n): b for n, b in modules.items()}
    root = cache_root or cache.cache_dir()
    if build_id:
        entry = root / build_id
    elif release and (root / "by-release" / release).exists():
        entry = Path(os.path.realpath(root / "by-release" / release))
    else:
        return {}
    dirs = [entry, *map(Path, local_dirs)]
    if release:
        dirs.append(Path(f"/usr/lib/debug/lib/modules/{release}"))
    found = _local([d for d in dirs if d.is_dir()], wanted)
    missing = {n: b for n, b in wanted.items() if n not in found}
    if not missing or not allow_network:
        return found
    servers = debuginfod.server_urls() if debuginfod_urls is None else debuginfod_urls
    for name, bid in list(missing.items()):
        if not bid or not servers:
            continue
        got = debuginfod.fetch_verified(
            bid, None, servers=servers, progress=progress, say=say, tmp_dir=entry
        )
        if got is None:
            continue
        dest = entry / "debuginfod" / f"{name}.ko"
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(got[0], dest)
        found[name] = str(dest)
        del missing[name]
    if missing and release and release_family(release) == "debian":
        entry.mkdir(parents=True, exist_ok=True)
        deb.fetch_modules(release, entry, missing, say=say, progress=progress)
        found.update(_local([entry], missing))
    return found
