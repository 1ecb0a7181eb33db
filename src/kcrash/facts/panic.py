"""The real panic message: crash's PANIC field, done right.

crash (and drgn's ``panic_message``) report the ``Kernel panic - not syncing:
Fatal exception`` line, which is only a trailer: the cause is the oops or
event printed before it.  Rule: take the last ``Kernel panic - not syncing:``
message; when it only follows a report (the crash-class table's trailers and
its rows' ``panic_after``: kernel/panic.c, oops_end(), watchdog and hung-task
code, 4.x–6.x), the cause
is the header of the first report block (``[#1]`` oops, BUG, WARNING, …)
before it, as found by the oops-text parser that also reads console logs.
"""

from __future__ import annotations

import re

from ..crash_classes import PANIC_AFTER_REPORT_RE
from ..model import LogLine
from ..oops.lines import END_PANIC_RE

_PANIC_RE = re.compile(r"Kernel panic - not syncing: ?(.*)")


def _panic_line(text: str) -> tuple[str, str]:
    """``(line from "Kernel panic" on, message)`` of a panic line.

    panic() ends with ``---[ end Kernel panic - not syncing: MSG ]---`` (since
    v4.5) when no kdump kernel takes over: the last line of a QEMU capture
    (arm64 ``virt`` has no pvpanic stop before it). Its message is MSG, without
    the closing ``]---``.
    """
    end = END_PANIC_RE.match(text)
    if end:
        msg = end.group("msg").strip()
        return f"Kernel panic - not syncing: {msg}", msg
    msg = _PANIC_RE.search(text).group(1).strip()  # type: ignore[union-attr]
    return text[text.index("Kernel panic") :].strip(), msg


def panic_message(log: list[LogLine]) -> str | None:
    """The line an operator should read first, or None if the log shows no crash.

    In a kdump capture with ``panic_on_oops`` the dump is taken from
    ``oops_end()`` before ``panic()`` prints anything, so there may be no
    ``Kernel panic`` line at all: the first report block is then the cause.
    """
    panic_idx = None
    for i in range(len(log) - 1, -1, -1):
        if _PANIC_RE.search(log[i].text):
            panic_idx = i
            break
    if panic_idx is not None:
        line, msg = _panic_line(log[panic_idx].text)
        if not PANIC_AFTER_REPORT_RE.match(msg):
            return line
    before = log[:panic_idx] if panic_idx is not None else log
    from ..oops.text import events_from_log  # the log parser, also used for console logs

    events = [e for e in events_from_log(before) if not _PANIC_RE.search(e.header)]
    if events:
        first = next((e for e in events if e.oops_number == 1), events[0])
        return first.header.strip()
    if panic_idx is not None:
        return _panic_line(log[panic_idx].text)[0]
    return None
