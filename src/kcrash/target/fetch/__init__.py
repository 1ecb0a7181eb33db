"""Get the exact debuginfo for a dump: local first, then (only if asked) the network.

Order, and why:

1. our cache (``CACHE_DIR/<build-id>/vmlinux``) and the local places of
   :mod:`kcrash.target.debuginfo_search` — free, and no byte leaves the machine;
2. with ``allow_network`` only: debuginfod servers of ``DEBUGINFOD_URLS``, by
   build id — the one protocol that answers "this exact build" on every
   distribution that runs a server;
3. the distribution archive of the release's family: on Debian/Ubuntu the
   ``-dbg``/``-dbgsym`` package through the user's apt; for RHEL/Fedora and
   SUSE we print the package and the command (installing needs root and a
   debuginfo repository we must not enable behind the user's back).

Module debug files follow the same order per module (by the module's own
build id on debuginfod, by name in Debian's package):
:func:`fetch_module_debuginfo`, with the list from :func:`loaded_modules`.

Every downloaded file is verified (build id, or the release banner for
pre-5.9 dumps without one) before it enters the cache; a wrong one is
refused with :class:`~kcrash.errors.DebuginfoMismatchError`.  Every URL or
package fetched is printed (``say``, default: stderr) before the download.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from ...errors import KcrashError
from .. import debuginfo_search as di
from . import cache, deb, debuginfod, rpm
from .distro import FAMILY_NAMES, release_family
from .module_debuginfo import fetch_module_debuginfo, loaded_modules

__all__ = ["fetch_debuginfo", "fetch_module_debuginfo", "find_local", "loaded_modules", "plan"]

Say = Callable[[str], None]


def _stderr(msg: str) -> None:
    print(f"kcrash: {msg}", file=sys.stderr, flush=True)


def find_local(
    release: str | None, build_id: str | None, dirs: Iterable[str] = (), root: Path | None = None
) -> str | None:
    """A local vmlinux matching the build id (or the release when there is none):
    our cache (``root`` or :func:`cache.cache_dir`, read at call time), then the
    places of :func:`kcrash.target.debuginfo_search.find`."""
    hit = cache.cached_vmlinux(build_id, release, root)
    if hit:
        return hit
    found, _looked = di.find(release, build_id, di.search_dirs(dirs))
    return found.vmlinux if found is not None else None


def plan(release: str | None, build_id: str | None) -> list[str]:
    """What a fetch would contact, one line each (printed when fetching was not allowed)."""
    out: list[str] = []
    if build_id:
        out += [
            f"debuginfod: {debuginfod.debuginfo_url(u, build_id)}" for u in debuginfod.server_urls()
        ]
    fam = release_family(release) if release else None
    if fam == "debian":
        pkgs = " or ".join(deb.package_names(release or ""))
        out.append(f"apt-get download {pkgs} (your apt sources)")
    elif fam == "rhel":
        out.append(f"{FAMILY_NAMES['rhel']}: {rpm.rhel_commands(release or '')[0]}")
    elif fam == "suse":
        out.append(f"{FAMILY_NAMES['suse']}: {rpm.suse_commands(release or '')[1]}")
    return out


def fetch_debuginfo(
    release: str | None,
    build_id: str | None,
    *,
    allow_network: bool,
    progress: bool = True,
    modules: Iterable[str] = (),
    all_modules: bool = False,
    say: Say | None = None,
    cache_root: Path | None = None,
    debuginfod_urls: list[str] | None = None,
) -> str | None:
    """Path of a verified vmlinux for ``release``/``build_id``, or None.

    Nothing leaves the machine unless ``allow_network``.  ``modules`` names
    module debug files to extract too (Debian path; they land next to the
    vmlinux, where :func:`kcrash.target.debuginfo_search.module_dirs_for` looks).
    Raises :class:`DebuginfoMismatchError` when a server or package serves
    another build, :class:`KcrashError` when a server or apt fails.
    """
    if not release and not build_id:
        raise KcrashError("need a kernel release or a build id to look for debuginfo")
    say = say or _stderr
    build_id = build_id.lower() if build_id else None
    local = find_local(release, build_id, root=cache_root)
    if local:
        return local
    if not allow_network:
        return None
    with cache.fetch_lock(build_id or f"release-{release}", cache_root, say):
        # Another process may have fetched it while this one waited for the lock.
        local = find_local(release, build_id, root=cache_root)
        if local:
            say(f"found in the cache, fetched by another kcrash: {local}")
            return local
        return _fetch_remote(
            release,
            build_id,
            progress=progress,
            modules=modules,
            all_modules=all_modules,
            say=say,
            cache_root=cache_root,
            debuginfod_urls=debuginfod_urls,
        )


def _fetch_remote(
    release: str | None,
    build_id: str | None,
    *,
    progress: bool,
    modules: Iterable[str],
    all_modules: bool,
    say: Say,
    cache_root: Path | None,
    debuginfod_urls: list[str] | None,
) -> str | None:
    """debuginfod, then the distribution archive (the order of the module docstring)."""
    servers = debuginfod.server_urls() if debuginfod_urls is None else debuginfod_urls
    if build_id and servers:
        path = debuginfod.fetch(
            build_id, release, servers=servers, progress=progress, say=say, root=cache_root
        )
        if path:
            return path
    elif not build_id and servers:
        say("debuginfod needs a build id; this dump has none (kernel < 5.9)")
    fam = release_family(release) if release else None
    if fam == "debian" and release:
        if not deb.apt_available():
            say(f"{deb.package_names(release)[0]} is a Debian/Ubuntu package; no apt-get here")
            return None
        return deb.fetch(
            release,
            build_id,
            say=say,
            modules=modules,
            all_modules=all_modules,
            root=cache_root,
            progress=progress,
        )
    if fam in ("rhel", "suse") and release:
        cmds = rpm.rhel_commands(release) if fam == "rhel" else rpm.suse_commands(release)
        pkg = rpm.rhel_package(release) if fam == "rhel" else rpm.suse_package(release)[0]
        say(f"{FAMILY_NAMES[fam]} kernel: install {pkg} (needs its debuginfo repository):")
        for c in cmds:
            say(f"  {c}")
        return None
    if not servers:
        say("no DEBUGINFOD_URLS set and the release's distribution is unknown")
    return None
