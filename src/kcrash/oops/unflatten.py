"""Put back the line breaks of kernel text whose newlines became spaces.

Why: an oops or a crash session copied out of a web page, a ticket or a chat
often arrives as one long line (the blog post kcrash grew from shows its
CentOS 7 ``crash`` session that way).  Every parser downstream is line
based, so a line that holds several records is cut before each place where
a kernel record or a ``crash`` output line starts.

The boundaries are a table (:data:`BOUNDARIES`), one row per kind of line,
each with the kernel or crash source that prints it.  A line is only cut
when it looks collapsed: long, and holding at least :data:`MIN_MARKS`
boundaries - a normal record never does (a ``Code:`` line has no boundary
inside, a frame line has one at most).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from kcrash.sys_rows import CRASH_ROWS

#: sys labels that also begin bt headers and oops lines ("PID: 1  TASK: …", "CPU: 1 PID:")
_AMBIGUOUS = frozenset({"PID", "COMMAND", "TASK", "CPU"})

MIN_LEN = 160  # shorter lines are left alone
MIN_MARKS = 3  # boundaries a collapsed line holds at least

_SYM = r"[A-Za-z_.$][\w.$]*\+0x[0-9a-f]+/0x[0-9a-f]+"

#: (what, always cut?, regex of where a new line starts).  "Always" rows are
#: line starts that never occur inside a line; the others are not cut where
#: the text before them says they continue it (:data:`_NO_CUT_BEFORE`).
BOUNDARIES: tuple[tuple[str, bool, str], ...] = (
    # printk timestamp (kernel/printk/printk.c print_time), with optional caller id
    ("dmesg timestamp", True, r"(?:<\d>)?\[\s*\d{1,10}\.\d{6}\](?:\[\s*[TC]\d+\])?"),
    # crash's prompt, bt header and frames (crash: main.c, task.c, x86_64.c)
    ("crash prompt", True, r"crash(?:64)?> "),
    ("bt header", True, r"PID: \d+\s+TASK: [0-9a-f]{8,16}\s+CPU: \d+\s+COMMAND: \""),
    ("bt frame", True, r"#\d+ \[[0-9a-f]{8,16}\] \S+ at [0-9a-f]{8,16}"),
    ("bt exception", True, r"\[exception RIP: "),
    ("bt regs", False, r"(?:RIP|RAX|RDX|RBP|R10|R13|ORIG_RAX): [0-9a-f]{16} "),
    # crash sys (kernel.c display_sys_stats): one key a line
    (
        "sys field",
        False,
        # (PID, COMMAND, TASK and CPU also begin bt and oops lines: the next row)
        "(?:"
        + "|".join(re.escape(str(r.label)) for r in CRASH_ROWS if r.label not in _AMBIGUOUS)
        + "): ",
    ),
    (
        "sys pid/command/task/cpu",
        False,
        r"(?:PID: \d+ +(?=COMMAND: )|COMMAND: \"|TASK: [0-9a-f]{16} +\[THREAD|"
        r"CPU: \d+ +(?=STATE: ))",
    ),
    # oops lines (arch/x86/kernel/dumpstack.c, process_64.c, arch/x86/mm/fault.c)
    (
        "oops line",
        False,
        r"(?:BUG: |Oops: |IP: |RIP: [0-9a-f]{4}:|Code: |RSP: [0-9a-f]{4}:|"
        r"RAX: |RDX: |RBP: |R10: |R13: |FS:  |CS:  |"
        r"CR2: |DR[03]: |Call Trace:|Modules linked in:|Hardware name: |Kernel panic - |"
        r"---\[ end |PGD |#PF: |CPU: \d+ (?:UID: \d+ )?PID: |Stack:)",
    ),
    # a frame of a call trace: "[<addr>] ? f+0x1/0x2" (< 4.9) or " ? f+0x1/0x2 [mod]"
    ("frame", False, r"\[<[0-9a-f]{8,16}>\] |(?:\? )?" + _SYM + r"(?= |$)"),
)
_CUT_RE = re.compile(
    "|".join(
        f"(?P<{'a' if always else 'c'}{i}>{rx})" for i, (_, always, rx) in enumerate(BOUNDARIES)
    )
)
# the text before a conditional boundary that it continues: "RIP: 0010:" + frame,
# "[<addr>] ?" + frame, sys "PANIC: \"BUG: ...", bt header "CPU: 1   COMMAND:"
_NO_CUT_BEFORE = re.compile(
    r"(?:RIP: [0-9a-f]{4}:|IP:|>\] ?\??|\] \?|PANIC: \"|PC is at|LR is at|:) ?$"
    # a line that so far holds only its timestamp
    r"|^\s*(?:<\d>)?\[\s*\d{1,10}\.\d{6}\](?:\[\s*[TC]\d+\])?\s*$"
)
# bt's header "PID: 1  TASK: ...  CPU: 1   COMMAND: ..." stays one line
_BT_HEADER_SO_FAR = re.compile(r"CPU: \d+ +$")


def _continues(before: str, after: str) -> bool:
    """Does the text ``after`` a conditional boundary continue the line ``before`` it?"""
    if _NO_CUT_BEFORE.search(before):
        return True
    return after.startswith("COMMAND: ") and bool(_BT_HEADER_SO_FAR.search(before))


# cheap pre-filter: a collapsed paste has many "] " (timestamps, frames), "+0x" and ": "
_QUICK_RE = re.compile(r"\] |\+0x|: ")


def split_collapsed(line: str) -> Iterator[str]:
    """The records of ``line``; the line itself when it does not look collapsed."""
    if len(line) < MIN_LEN or len(_QUICK_RE.findall(line)) < 2 * MIN_MARKS:
        yield line
        return
    cuts = [(m.start(), (m.lastgroup or "c").startswith("a")) for m in _CUT_RE.finditer(line)]
    if len(cuts) < MIN_MARKS:
        yield line
        return
    start = 0
    for pos, always in cuts:
        if pos <= start:
            continue
        if not always and _continues(line[start:pos], line[pos : pos + 9]):
            continue
        piece = line[start:pos].rstrip()
        if piece.strip():
            yield _indent(piece)
        start = pos
    rest = line[start:].rstrip()
    if rest.strip():
        yield _indent(rest)


_SYS_KEY_RE = re.compile("^(?:" + "|".join(re.escape(str(r.label)) for r in CRASH_ROWS) + "): ")


def _indent(piece: str) -> str:
    """crash right-aligns ``sys`` keys, so a sys line starts with blanks: give them back
    (the crash-session reader tells sys output from log text by them)."""
    if not _SYS_KEY_RE.match(piece):
        return piece
    # "PID: 1  TASK: ..." is bt's header and "CPU: 1 PID: ..." an oops line, not sys
    if re.match(r"PID: \d+\s+TASK:|CPU: \d+ (?:UID: \d+ )?PID:", piece):
        return piece
    return "  " + piece
