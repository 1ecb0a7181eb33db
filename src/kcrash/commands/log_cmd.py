"""``log``: the kernel log like crash's, ``-T`` for wall-clock times, ``--json``."""

from __future__ import annotations

import argparse
from typing import Any

from drgn import Program
from drgn.commands import argument

from ..facts.log import format_crash_log, target_log
from ._render import JSON_ARG, print_json
from .registry import kcrash_command, target_of


@kcrash_command(
    description="kernel message buffer (crash's log)",
    arguments=(
        argument("-T", dest="wall", action="store_true", help="wall-clock timestamps"),
        JSON_ARG,
    ),
)
def _kcrash_cmd_log(prog: Program, name: str, args: argparse.Namespace, **kwargs: Any) -> None:
    lines = target_log(target_of(prog))
    if args.json:
        print_json(lines)
        return
    base = None
    if args.wall:
        from drgn.helpers.linux.timekeeping import ktime_get_real_seconds

        last = lines[-1].timestamp if lines and lines[-1].timestamp else 0.0
        base = ktime_get_real_seconds(prog).value_() - last
    print(format_crash_log(lines, base))
