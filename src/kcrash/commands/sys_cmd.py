"""``sys``: crash's system summary, with the real PANIC line and ``--json``."""

from __future__ import annotations

import argparse
from typing import Any

from drgn import Program

from ..facts.log import target_log
from ..facts.system import format_sys, system_info
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
        data = info.crash_fields()
        data.update(
            cpus_offline=info.cpus_offline,
            taint=info.taint,
            build_id=info.build_id,
            dump_format=info.dump_format,
            mode=target.mode,
            lacks=target.lacks,
        )
        print_json(data)
        return
    print(format_sys(info))
