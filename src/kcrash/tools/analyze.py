"""``kcrash analyze``: why did the kernel crash? From a vmcore or a log."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from ..report.labels import LANGS
from ..report.render import FORMATS
from . import tool


@tool("analyze", "classify the crash, name the culprit, explain it, give next steps")
def configure(p: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    p.add_argument("input", help="vmcore (any format), or a log file, or - for stdin")
    p.add_argument("vmlinux", nargs="?", help="vmlinux with debuginfo (found if omitted)")
    p.add_argument("--format", "-f", choices=FORMATS, default="text")
    p.add_argument("--lang", choices=LANGS, default=os.environ.get("KCRASH_LANG", "en"))
    p.add_argument("--output", "-o", help="write the report to this file")
    p.add_argument("--debuginfo", action="append", default=[], metavar="DIR")
    p.add_argument("--no-debuginfo", action="store_true", help="ignore DWARF; use BTF+ORC")
    p.add_argument(
        "--fetch-debuginfo",
        action="store_true",
        help="download matching debuginfo (debuginfod / distribution archive) if missing",
    )
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    return run


def run(args: argparse.Namespace) -> int:
    # drgn loads its plugins (its own command sets, third-party finders) at the
    # first set_core_dump: ~0.09 s that analyze never uses.  Respect a user's own setting.
    os.environ.setdefault("DRGN_DISABLE_PLUGINS", "*")
    from ..analyze import analyze_path, render_to_string

    report = analyze_path(
        args.input,
        args.vmlinux,
        lang=args.lang,
        debuginfo_dirs=args.debuginfo,
        no_debuginfo=args.no_debuginfo,
        fetch_debuginfo=args.fetch_debuginfo,
    )
    to_tty = args.output is None and sys.stdout.isatty()
    color = {"always": True, "never": False}.get(
        args.color, to_tty and "NO_COLOR" not in os.environ
    )
    text = render_to_string(report, args.format, color=color)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0
