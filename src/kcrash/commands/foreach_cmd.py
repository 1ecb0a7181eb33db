"""``foreach bt``: kcrash's ``bt`` for every selected task, streamed task by task.

drgn 0.3.0's ``foreach`` selects the tasks (PIDs, names, ``kernel``/``user``/``active``,
a state) and runs a subcommand on them; kcrash keeps all of that and replaces only its
``bt`` subcommand. Why: drgn's printed each task in drgn's layout (inlined calls numbered
as frames) at ~5 ms a task (50 s of CPU on a 10,000-task machine, past 900 s at load 30),
while an operator expects each block to be what ``bt PID`` prints. Here every task's block
is exactly that, printed as soon as it is read, at ~1 ms a task
(:class:`~kcrash.facts.stacks.TaskStacker`); Ctrl-C stops between two tasks. drgn's own
subcommand still serves the options kcrash's ``bt`` does not have (``-f``, ``-F``, ``-d``,
``-V``, ``--drgn``).
"""

from __future__ import annotations

import argparse
from typing import Any

from .. import drgn_private
from ..errors import DebuginfoNotFoundError
from ..facts.stacks import TaskStacker
from ._render import READ_ERRORS, unreadable
from .bt_cmd import format_stack
from .registry import target_of


def _foreach_bt(task_selector: Any, args: argparse.Namespace) -> Any:
    """The ``bt`` subcommand of drgn's ``foreach``: one ``bt PID`` block per task."""
    if args.drgn or args.frame or args.frame_symbolic or args.drgn_style or args.show_variables:
        return _DRGN_BT.func(task_selector, args)
    target = target_of(task_selector.prog)
    lines = args.show_file_line
    if lines and target.mode != "dwarf":
        raise DebuginfoNotFoundError(f"bt -l needs source lines: {target.missing_debuginfo}")
    stacker = TaskStacker(target, source_lines=lines)
    tried: set[str] = set()  # modules whose DWARF -l already asked for
    first = True
    for task in task_selector.tasks():
        try:
            st = stacker.stack(task)
            if lines:  # as bt -l: a module frame's source lines need that module's DWARF
                mods = {f.module for f in st.frames if f.module} - tried
                tried |= mods
                if mods and target.load_module_debuginfo(mods) != sorted(mods):
                    st = stacker.stack(task)
            block = format_stack(st, lines)
        except READ_ERRORS as e:  # a damaged task: said at the end, the others printed
            unreadable(target, f"foreach bt: task {task.value_():x}", e)
            continue
        if not first:
            print()
        print(block, flush=True)  # streamed: the first tasks show while the rest are read
        first = False
    return None


def _install() -> Any:
    """Put :func:`_foreach_bt` in drgn's table of ``foreach`` subcommands (its parser kept:
    the same options are accepted); drgn's entry, returned, serves the rest."""
    table = drgn_private.crash_foreach_subcommands
    drgn_bt = table["bt"]
    if drgn_bt.func.__module__ == __name__:  # this module imported again: drgn's entry
        return drgn_bt.func.__globals__["_DRGN_BT"]
    table["bt"] = drgn_bt._replace(func=_foreach_bt)
    return drgn_bt


_DRGN_BT = _install()
