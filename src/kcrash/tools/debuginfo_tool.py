"""``kcrash debuginfo``: find (or, when asked, fetch) the exact vmlinux for a dump.

Why a tool of its own: "which debuginfo does this dump need, and where is
it" is the first question of every analysis, asked before and apart from
it (on another machine, in a pipeline).  It prints the vmlinux path on
stdout, so ``kcrash bt VMCORE "$(kcrash debuginfo VMCORE)"`` works; every
message goes to stderr.  Without ``--fetch`` nothing leaves the machine:
we say what would be contacted instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from ..errors import KcrashError
from ..textsafe import visible
from . import tool


@tool("debuginfo", "find or fetch (--fetch) the vmlinux matching a dump, by build id")
def configure(p: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    p.add_argument("vmcore", nargs="?", help="the dump (its VMCOREINFO gives release and build id)")
    p.add_argument("--release", help="kernel release (uname -r) instead of, or besides, a dump")
    p.add_argument("--build-id", help="GNU build id of the kernel (hex)")
    p.add_argument(
        "--fetch",
        action="store_true",
        help="allow the network: debuginfod (DEBUGINFOD_URLS), then the distribution archive",
    )
    p.add_argument(
        "--module",
        action="append",
        default=[],
        metavar="NAME",
        help="also extract this module's debug file (Debian/Ubuntu packages; repeatable)",
    )
    p.add_argument("--all-modules", action="store_true", help="extract every module's debug file")
    p.add_argument(
        "--with-modules",
        action="store_true",
        help="also get the debug files of the modules loaded in VMCORE (by their build ids)",
    )
    p.add_argument(
        "--debuginfo", action="append", default=[], metavar="DIR", help="also search DIR locally"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return run


def run(args: argparse.Namespace) -> int:
    from ..target.fetch import fetch_debuginfo, find_local, plan

    release, build_id = args.release, args.build_id
    if args.vmcore:
        from ..target.dumpfile import inspect

        dump = inspect(args.vmcore)
        release = release or dump.release
        build_id = build_id or dump.build_id
    if not release and not build_id:
        raise KcrashError("give a VMCORE, --release R or --build-id ID")
    if args.with_modules and not args.vmcore:
        raise KcrashError("--with-modules needs the VMCORE (its module list)")
    # release and build id are the dump's text: shown, never emitted raw (kcrash.textsafe)
    who = visible(f"{release or 'unknown release'} (build id {build_id or 'unknown'})")
    if not args.fetch:
        path = find_local(release, build_id, args.debuginfo)
        if path:
            if args.with_modules:
                _modules(args, release, build_id, path)
            print(path)
            return 0
        print(f"kcrash: no local vmlinux for {who}", file=sys.stderr)
        where = plan(release, build_id)
        if where:
            print("kcrash: with --fetch, kcrash would try:", file=sys.stderr)
            for line in where:
                print(f"  {visible(line)}", file=sys.stderr)
        return 1
    path = fetch_debuginfo(
        release,
        build_id,
        allow_network=True,
        progress=not args.no_progress,
        modules=args.module,
        all_modules=args.all_modules,
    )
    if path is None:
        print(f"kcrash: no vmlinux found for {who}", file=sys.stderr)
        return 1
    if args.with_modules:
        _modules(args, release, build_id, path)
    print(path)
    return 0


def _modules(
    args: argparse.Namespace, release: str | None, build_id: str | None, vmlinux: str
) -> None:
    """Find (or fetch, with ``--fetch``) the debug files of the dump's loaded modules."""
    from ..target.fetch import cache, fetch_module_debuginfo, loaded_modules

    mods = loaded_modules(args.vmcore, vmlinux)
    found = fetch_module_debuginfo(
        release,
        build_id or cache.gnu_build_id(vmlinux),
        mods,
        allow_network=args.fetch,
        progress=not args.no_progress,
        say=lambda m: print(f"kcrash: {visible(m)}", file=sys.stderr),
        local_dirs=args.debuginfo,
    )
    missing = sorted(set(mods) - set(found))
    print(f"kcrash: module debug files: {len(found)} of {len(mods)}", file=sys.stderr)
    if missing:
        print(f"kcrash: no debug file for: {visible(', '.join(missing))}", file=sys.stderr)
