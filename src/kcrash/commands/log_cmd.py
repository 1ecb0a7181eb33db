"""``log``: the kernel log like crash's, ``-T`` for wall-clock times, ``--json``."""

from __future__ import annotations

import argparse
from typing import Any

from drgn import Program
from drgn.commands import argument

from ..facts.log import target_log
from ..model import LogLine
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


def format_crash_log(lines: list[LogLine], wall_clock_base: float | None = None) -> str:
    """Render like crash's ``log``: ``[    1.234567] text`` per line.

    With ``wall_clock_base`` (boot time as a Unix timestamp) the prefix is a
    wall-clock time, as crash's ``log -T`` prints it.
    """
    import time

    rows = []
    for ln in lines:
        if ln.timestamp is None:
            rows.append(ln.text)
        elif ln.continued:  # crash indents a record's later lines under its text
            rows.append(" " * (15 if wall_clock_base is None else 27) + ln.text)
        elif wall_clock_base is not None:
            t = time.localtime(wall_clock_base + ln.timestamp)
            rows.append(f"[{time.strftime('%a %b %e %T %Y', t)}] {ln.text}")
        else:
            # crash truncates to microseconds (it does not round).
            ns = round(ln.timestamp * 1e9)
            rows.append(f"[{ns // 10**9:5d}.{ns % 10**9 // 1000:06d}] {ln.text}")
    return "\n".join(rows)
