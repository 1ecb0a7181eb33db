"""The kernel log, read out of the dump.

drgn's :func:`~drgn.helpers.linux.printk.get_printk_records` handles every
printk format (the ≤3.4 ring, 3.5–5.9 ``printk_log`` records and the ≥5.10
lockless ``prb``); we only convert its records to :class:`LogLine`.  In the
kallsyms-only mode (no types at all) the no-debuginfo layer supplies records
decoded with VMCOREINFO's offsets instead.
"""

from __future__ import annotations

from typing import Any

import drgn
from drgn.helpers.linux.printk import get_printk_records

from ..model import LogLine


def log_lines(prog: drgn.Program) -> list[LogLine]:
    """Every record of the printk buffer, oldest first."""
    out = []
    for r in get_printk_records(prog):
        caller = None
        if r.caller_tid is not None:
            caller = f"T{r.caller_tid}"
        elif r.caller_cpu is not None:
            caller = f"C{r.caller_cpu}"
        text = r.text.decode("utf-8", "replace")
        ts = r.timestamp / 1e9
        # A record may hold several lines (continuations, multi-line pr_*).
        for i, part in enumerate(text.split("\n")):
            out.append(LogLine(part, ts, r.level, caller, r.seq, continued=i > 0))
    return out


def target_log(target: Any) -> list[LogLine]:
    """The log of an opened target, whatever its mode.

    With types (DWARF or BTF) drgn's printk helpers read it; with neither,
    the no-debuginfo layer decodes the buffer from VMCOREINFO's offsets, as
    ``vmcore-dmesg`` does.
    """
    if target.mode == "kallsyms":
        from ..target import nodebug

        return nodebug.log_lines(target.prog)
    return log_lines(target.prog)
