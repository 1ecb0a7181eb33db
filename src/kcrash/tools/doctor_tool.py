"""``kcrash doctor [--json] [--root DIR]``: is this host ready to capture a crash dump?

Exit status 0 when ready (no ✗), 1 when not: scripts and configuration
management can gate on it.  Thin: the checks live in :mod:`kcrash.doctor`.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

from ..errors import KcrashError
from . import tool


@tool("doctor", "is this host ready to capture a crash dump? (checklist with fixes)")
def configure(p: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    p.add_argument("--json", action="store_true", help="machine-readable result")
    p.add_argument(
        "--root",
        default="/",
        metavar="DIR",
        help="read /proc, /sys and /etc under DIR (an image, or a copied tree)",
    )
    p.add_argument(
        "--distro",
        choices=("rhel", "debian", "suse"),
        help="fix commands for this family (default: from DIR/etc/os-release)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="why and fix for every check")
    return run


def run(args: argparse.Namespace) -> int:
    from ..doctor import render_text
    from ..doctor import run as run_checks

    if not os.path.isdir(args.root):
        raise KcrashError(f"{args.root}: no such directory")
    report = run_checks(args.root, args.distro)
    print(report.to_json() if args.json else render_text(report, verbose=args.verbose))
    return 0 if report.ready else 1
