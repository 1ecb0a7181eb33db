"""``sys``: crash's system summary, with the real PANIC line and ``--json``."""

from __future__ import annotations

import argparse
from typing import Any

from drgn import Program

from ..facts.log import ANALYZE_LOG_BYTES, target_log_tail
from ..facts.system import system_info
from ..model import SystemInfo
from ..notes import Note
from ..sys_rows import CRASH_ROWS, SYS_ROWS
from ..textsafe import visible
from ._render import JSON_ARG, READ_ERRORS, print_json, unreadable
from .registry import kcrash_command, target_of


@kcrash_command(description="system data (crash's sys)", arguments=(JSON_ARG,))
def _kcrash_cmd_sys(prog: Program, name: str, args: argparse.Namespace, **kwargs: Any) -> None:
    target = target_of(prog)
    # PANIC (and HZ when nothing else tells it) come from the log's end: read its last
    # ANALYZE_LOG_BYTES backwards from the ring's head, as analyze does, so that a
    # log_buf_len=32M ring (650,000 records) costs what a default one does, not 12-30 s.
    left_out = 0
    try:
        log, left_out = target_log_tail(target)
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
        lacks = list(target.lacks)
        if left_out:  # said here only: the target's lacks outlive this command in a session
            lacks.append(Note("lack.log_tail", left=left_out, mb=ANALYZE_LOG_BYTES >> 20))
        data.update(mode=target.mode, lacks=lacks)
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
