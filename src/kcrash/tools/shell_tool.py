"""``kcrash shell VMCORE [VMLINUX]`` (also plain ``kcrash VMCORE [VMLINUX]``).

The crash-style session of :mod:`kcrash.shell`.  Target options are the
same as for every dump command (:data:`kcrash.entry.TARGET_OPTIONS`), and
:func:`kcrash.entry.open_from_words` opens the dump exactly as ``kcrash sys
VMCORE`` does.  crash's argument order (``VMLINUX VMCORE``) is accepted as well.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from ..entry import add_target_arguments
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
    add_target_arguments(p)
    return run


def run(args: argparse.Namespace) -> int:
    from ..entry import crash_order, open_from_words, target_args
    from ..shell import run_session

    target, rest = open_from_words(target_args(args), crash_order(list(args.files)))
    if rest:
        from ..errors import KcrashError

        raise KcrashError(f"shell: unexpected argument(s): {' '.join(rest)}")
    return run_session(target, commands=args.commands, script=args.script)
