"""The kernel log, read out of the dump.

A lockless ring (5.10+) is decoded from VMCOREINFO's offsets
(:mod:`kcrash.target.vmcoreinfo_log`, every mode); drgn's
:func:`~drgn.helpers.linux.printk.get_printk_records` reads the older formats (the ≤3.4
ring, 3.5–5.9 ``printk_log`` records), and we only convert its records to
:class:`LogLine`.  ``analyze`` reads the log's end only (:func:`target_log_tail`).
"""

from __future__ import annotations

from typing import Any

import drgn
from drgn.helpers.linux.printk import get_printk_records

from ..model import LogLine
from ..target.vmcoreinfo_log import split_records

#: How much of the log's end ``analyze`` reads from a dump. The crash reports are at the
#: end; 2 MB holds every default-sized ring whole (Debian's 128 KB, RHEL's 1 MB, and the
#: 4 KB per CPU the kernel adds up to 512 CPUs) and keeps a ``log_buf_len=`` ring of up to
#: 2 GB from costing analyze seconds per MB (`kcrash log` still prints it all).
ANALYZE_LOG_BYTES = 2 << 20


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


def target_log_tail(target: Any, max_bytes: int = ANALYZE_LOG_BYTES) -> tuple[list[LogLine], int]:
    """The end of the log, at most about `max_bytes` of text in whole records, and how many
    older records were left out.

    A lockless ring (5.10+, in VMCOREINFO) is read backwards from its newest record, so the
    cost follows `max_bytes`, not the ring (the same records in every mode: the VMCOREINFO
    reader matches drgn's printk helpers record for record). An older ring is read whole
    by drgn, then cut the same way, so that the verdict sees the same tail either way.
    """
    from ..target.vmcoreinfo_log import VmcoreinfoLogError, read_log_tail

    try:
        records, left = read_log_tail(target.prog, max_bytes)
    except (VmcoreinfoLogError, LookupError, drgn.FaultError):
        pass
    else:
        return split_records(records), left
    lines = target_log(target)
    used, start = 0, len(lines)
    while start > 0 and (used + len(lines[start - 1].text) + 1 <= max_bytes or not used):
        used += len(lines[start - 1].text) + 1
        start -= 1
    while 0 < start < len(lines) and lines[start].continued:  # whole records only
        start += 1
    return lines[start:], len({ln.seq for ln in lines[:start] if not ln.continued})


def target_log(target: Any) -> list[LogLine]:
    """The log of an opened target, whatever its mode.

    A lockless ring (5.10+) is decoded from VMCOREINFO's offsets in every mode, as
    ``vmcore-dmesg`` does: it needs no types, reads the ring in three bulk reads (2-3x
    faster than drgn's helper on a 32 MB ring), and reads a data block that wraps the ring
    right, where drgn 0.3.0's ``get_printk_records`` returns its id word as text and cuts
    its end (https://github.com/osandov/drgn/pull/635). An older ring is read by drgn's
    printk helpers (they need types).
    """
    from ..target import nodebug
    from ..target.vmcoreinfo_log import VmcoreinfoLogError

    try:
        return nodebug.log_lines(target.prog)
    except (VmcoreinfoLogError, LookupError, drgn.FaultError):
        if target.mode == "kallsyms":
            raise
    return log_lines(target.prog)
