"""``sys``: crash's system summary, with the real PANIC line and ``--json``."""

from __future__ import annotations

import argparse
from typing import Any

from drgn import Program

from ..facts.log import target_log
from ..facts.system import system_info
from ..model import SystemInfo
from ..sys_rows import CRASH_ROWS, SYS_ROWS
from ..textsafe import visible
from ._render import JSON_ARG, READ_ERRORS, print_json, unreadable
from .registry import kcrash_command, target_of


@kcrash_command(description="system data (crash's sys)", arguments=(JSON_ARG,))
def _kcrash_cmd_sys(prog: Program, name: str, args: argparse.Namespace, **kwargs: Any) -> None:
    target = target_of(prog)
    try:
        log = target_log(target)
    except READ_ERRORS as e:  # PANIC comes from the log: unknown, the rest still printed
        unreadable(target, "log (PANIC is read from it)", e)
        log = []
    info = system_info(target, log)
    target.unreadable += [
        f"sys {k.upper().replace('_', ' ')}: {why}" for k, why in info.unknown.items()
    ]
    if args.json:
        # crash's fields first, in crash's order, then the others of the table
        data = {r.field: r.json_value(info) for r in CRASH_ROWS}
        data.update({r.field: r.json_value(info) for r in SYS_ROWS if not r.label})
        data.update(mode=target.mode, lacks=target.lacks)
        print_json(data)
        return
    print(format_sys(info))


def format_sys(info: SystemInfo) -> str:
    """crash's ``sys`` block: right-aligned labels, one line per field of the table.

    A field a damaged dump could not give reads ``(unknown: why)``; one line per field
    whatever a hostile dump holds (a newline in a comm or the panic string).
    """
    lines = []
    for r in CRASH_ROWS:
        v = r.crash_value(info)
        if v is not None:
            lines.append(f"{r.label:>12}: {visible(v)}")
        elif r.field in info.unknown:
            lines.append(f"{r.label:>12}: (unknown: {visible(info.unknown[r.field])})")
    return "\n".join(lines)
