"""``kcrash shell VMCORE [VMLINUX]`` (also plain ``kcrash VMCORE [VMLINUX]``).

The crash-style session of :mod:`kcrash.shell`.  Target options are the
same as for every dump command (``--debuginfo DIR``, ``--no-debuginfo``,
``--live``) and are handed to :func:`kcrash.cli.open_from_args` unchanged,
so the shell opens a dump exactly as ``kcrash sys VMCORE`` does.  crash's
argument order (``VMLINUX VMCORE``) is accepted as well.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from . import tool


@tool("shell", "interactive crash-style session on a dump; py for Python")
def configure(p: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    p.add_argument(
        "files",
        nargs="*",
        metavar="VMCORE [VMLINUX]",
        help="the dump, and its vmlinux if not found automatically",
    )
    p.add_argument(
        "-c",
        dest="commands",
        action="append",
        metavar="'CMD; CMD'",
        help="run these commands (';'-separated; -c may repeat), then exit",
    )
    p.add_argument(
        "-i",
        dest="script",
        metavar="FILE",
        help="run the commands in FILE (one a line), then the prompt "
        "(as crash -i; end FILE with q to exit)",
    )
    p.add_argument(
        "--debuginfo",
        action="append",
        default=[],
        metavar="DIR",
        help="also search DIR for vmlinux and module debug files",
    )
    p.add_argument(
        "--no-debuginfo",
        action="store_true",
        help="ignore DWARF; use BTF + kallsyms + ORC from the dump",
    )
    p.add_argument("--live", action="store_true", help="the running kernel (/proc/kcore)")
    return run


def run(args: argparse.Namespace) -> int:
    from ..cli import open_from_args
    from ..shell import run_session

    argv = _crash_order(list(args.files))
    for d in args.debuginfo:
        argv += ["--debuginfo", d]
    if args.no_debuginfo:
        argv.append("--no-debuginfo")
    if args.live:
        argv.append("--live")
    target, rest = open_from_args(argv)
    if rest:
        from ..errors import KcrashError

        raise KcrashError(f"shell: unexpected argument(s): {' '.join(rest)}")
    return run_session(target, commands=args.commands, script=args.script)


def _crash_order(files: list[str]) -> list[str]:
    """Accept crash's ``VMLINUX VMCORE`` order too: muscle memory from ``crash``."""
    from ..cli import _looks_like_elf

    if len(files) == 2 and _looks_like_elf(files[0]) and not _looks_like_elf(files[1]):
        return [files[1], files[0]]
    return files
