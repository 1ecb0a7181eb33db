"""``kcrash analyze``: why did the kernel crash? From a vmcore or a log."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from ..entry import add_target_arguments
from ..inputs import ReadLimits, parse_size
from ..report.labels import LANGS
from ..report.render import FORMATS
from . import tool


@tool("analyze", "classify the crash, name the culprit, explain it, give next steps")
def configure(p: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    p.add_argument("input", nargs="?", help="vmcore (any format), or a log file, or - for stdin")
    p.add_argument("vmlinux", nargs="?", help="vmlinux with debuginfo (found if omitted)")
    p.add_argument("--format", "-f", choices=FORMATS, default="text")
    p.add_argument("--lang", choices=LANGS, default=os.environ.get("KCRASH_LANG", "en"))
    p.add_argument("--output", "-o", help="write the report to this file")
    add_target_arguments(p)
    p.add_argument(
        "--fetch-debuginfo",
        action="store_true",
        help="download matching debuginfo (debuginfod / distribution archive) if missing",
    )
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    lim = ReadLimits()
    g = p.add_argument_group("compressed logs (gzip/xz/bz2/zstd are read up to these bounds)")
    g.add_argument(
        "--max-log-bytes",
        type=parse_size,
        default=lim.max_bytes,
        metavar="SIZE",
        help="decompressed bytes read at most (default: 1G; e.g. 4G)",
    )
    g.add_argument(
        "--max-log-seconds",
        type=float,
        default=lim.max_seconds,
        metavar="S",
        help=f"seconds of decompression at most (default: {lim.max_seconds:g})",
    )
    g.add_argument(
        "--max-log-ratio",
        type=float,
        default=lim.max_ratio,
        metavar="N",
        help=f"stop when the data expands more than N:1 (default: {lim.max_ratio:g}; "
        "real logs are 5-20:1, decompression bombs 1000:1)",
    )
    return run


def run(args: argparse.Namespace) -> int:
    # drgn loads its plugins (its own command sets, third-party finders) at the
    # first set_core_dump: ~0.09 s that analyze never uses.  Respect a user's own setting.
    os.environ.setdefault("DRGN_DISABLE_PLUGINS", "*")
    from ..entry import target_args
    from ..errors import KcrashError
    from ..pipeline import analyze_path
    from ..report.render import write_report

    targs = target_args(args)
    source, vmlinux = args.input, args.vmlinux
    if targs.source() is not None:  # --live/--qemu: the one word given is the vmlinux
        if vmlinux is not None:
            raise KcrashError(f"analyze: unexpected argument: {vmlinux}")
        source, vmlinux = targs.source(), source
    if source is None:
        raise KcrashError("missing VMCORE|LOGFILE|- (or --live)")
    report = analyze_path(
        source,
        vmlinux,
        lang=args.lang,
        debuginfo_dirs=targs.debuginfo,
        no_debuginfo=targs.no_debuginfo,
        fetch_debuginfo=args.fetch_debuginfo,
        limits=ReadLimits(
            max_bytes=args.max_log_bytes,
            max_seconds=args.max_log_seconds,
            max_ratio=args.max_log_ratio,
        ),
    )
    to_tty = args.output is None and sys.stdout.isatty()
    color = {"always": True, "never": False}.get(
        args.color, to_tty and "NO_COLOR" not in os.environ
    )
    if args.output:
        with open(args.output, "wb") as f:
            write_report(report, args.format, f, color=color)
    else:
        write_report(report, args.format, sys.stdout, color=color)
    return 0
