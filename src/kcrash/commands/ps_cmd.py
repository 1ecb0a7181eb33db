"""``ps``: crash's process table with two-letter states, ``--json``."""

from __future__ import annotations

import argparse
from typing import Any

from drgn import Program

from ..facts.tasks import format_ps, task_rows
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
