"""``ps``: crash's process table with two-letter states, ``--json``."""

from __future__ import annotations

import argparse
from typing import Any

from drgn import Program

from ..facts.tasks import task_rows
from ..model import TaskInfo
from ..textsafe import visible
from ._render import JSON_ARG, print_json
from .registry import kcrash_command, target_of


@kcrash_command(description="process status (crash's ps)", arguments=(JSON_ARG,))
def _kcrash_cmd_ps(prog: Program, name: str, args: argparse.Namespace, **kwargs: Any) -> None:
    errors: list[str] = []
    rows = task_rows(prog, errors)
    target_of(prog).unreadable.extend(f"ps: {e}" for e in errors)
    if args.json:
        print_json(rows)
    else:
        print(format_ps(rows))


def format_ps(rows: list[TaskInfo]) -> str:
    """crash's ``ps`` table."""
    out = ["      PID    PPID  CPU       TASK        ST  %MEM      VSZ      RSS  COMM"]
    for r in rows:
        mark = ">" if r.active else " "
        out.append(
            f"{mark}{r.pid:>8} {r.ppid:>7} {r.cpu:>3}  {r.task:016x}  {r.state}  "
            f"{r.mem_percent or 0:>4.1f} {r.vsz_kb or 0:>8} {r.rss_kb or 0:>8}  {visible(r.comm)}"
        )
    return "\n".join(out)
