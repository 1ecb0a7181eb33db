"""Cut a kernel log into report blocks, one per oops / BUG / WARNING / panic ...

Why a streaming state machine: the same code reads the log of a vmcore (a
list) and a 100 MB console file (a stream), so it consumes one record at a
time and keeps only the open blocks (capped) and the finished events.

How a block is delimited (x86-64, kernels 3.10-6.x):

* it starts at a *start* line (:data:`START_RES`), i.e. the first line the
  kernel prints for a report: ``BUG: ...``, ``WARNING: ...``, ``Oops: ...``,
  ``Kernel panic - not syncing: ...``, ``INFO: task ... blocked``, ...;
* some start lines are a *preamble* of the oops that follows
  (``BUG: kernel NULL pointer dereference`` then ``#PF:`` lines then
  ``Oops: 0002 [#1]``; ``list_del corruption`` then ``kernel BUG at`` then
  ``invalid opcode``; ``rcu: INFO: ... stall`` then ``NMI backtrace``): the
  later start line joins the open block instead of opening a new one;
* it ends at the next start line, at ``---[ end Kernel panic ...]---``, after
  ``---[ end trace ... ]---`` and its register summary, or at the first line
  after the call trace that is not part of a stack dump;
* with printk caller ids (``[T123]``/``[C1]``) every caller has its own open
  block, so reports printed concurrently by several CPUs do not mix.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from kcrash.crash_classes import BLOCK_STARTS
from kcrash.model import LogLine, OopsEvent
from kcrash.oops import lines as L

MAX_BLOCK_LINES = 1500
MAX_HEAD_NOISE = 80  # unrecognised lines tolerated before the call trace
MAX_TRACE_NOISE = 3  # ... and inside it (interleaved console output)
#: Report blocks kept: the first half (the [#1] chain) and the latest half (the reports that
#: led to the panic). Keeping only the latest one lost the oops of a log whose sysrq reports
#: (log-full: 1,555 "sysrq: Show State/Memory" before its NULL dereference) filled the cap:
#: the panic line replaced it, and the verdict was "panic: Fatal exception".
MAX_EVENTS = 400
MAX_AUX_BLOCKS = 256  # NMI backtraces and sysrq task dumps
CONTINUATION_WINDOW = 40  # lines after a preamble in which its oops may follow

# Start lines.  A kind: "pre" = preamble of an oops; "die" = the oops line
# itself ("<what>: <error> [#N]"); "start" = a report of its own; "aside" = a
# line printed amid another report.  The first matching row gives the kind: the
# oops line, then each crash class's own starts (``Rule.starts`` of the class
# table, :mod:`kcrash.crash_classes`), then the generic report starts.
START_RES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("die", L.DIE_RE),
    *BLOCK_STARTS,
    ("start", L.PANIC_RE),
    ("start", re.compile(r"^\s*(?:[\w ]+: )?BUG: ")),  # soft lockup, scheduling while atomic,...
    ("start", re.compile(r"^\s*WARNING: ")),
    # other INFO: reports (not "INFO: lockdep is turned off" or slub_debug's INFO: lines)
    ("start", re.compile(r"^\s*(?:\w+: )?INFO: (?:.* detected stalls?|possible |trying to )")),
    ("nmi", L.NMI_BT_RE),
    # one task of a sysrq-w / sysrq-t dump (or of a stall's "Task dump for CPU")
    ("task", L.TASK_LINE_RE),
)

# Lines that belong to a stack dump (after "Call Trace:") without being frames.
_TRACE_OK_RE = re.compile(
    r"^\s*(?:Code:|RIP:|IP:|RSP |Modules linked in:|CR2:|---\[ end trace|Kernel Offset:|"
    r"Dumping ftrace buffer|\(ftrace buffer empty\)|irq event stamp|hardirqs last|"
    r"softirqs last|Call Trace:|Call trace:|Stack:|Workqueue:|CPU: \d|Hardware name:|"
    r"task:|Tainted:|Not tainted|---\[ end Kernel panic|</?#?\w+>|\.\.\.|Lost \d+ message|"
    r"\*\* \d+ printk messages dropped)"
)
# Lines of the head (before the call trace) that are structural, not noise.
_HEAD_OK_RE = re.compile(
    r"^\s*(?:---\[ end|#PF:|PGD |P4D |PUD |PMD |PTE |Oops|CPU: |Hardware name:|RIP:|IP:|Code:|"
    r"Modules linked in:|Workqueue:|task:|Tainted:|Not tainted|\"echo 0|Read of size|"
    r"Write of size|Call Trace:|Stack:|in_atomic|preempt_count|INFO: |Redzone |Object |Padding |"
    r"Preemption disabled|RCU nest depth|irq event|hardirqs|softirqs|Kernel Offset|"
    r"------------\[ cut here \]|invalid opcode|general protection|divide error|stack segment|"
    r"double fault|KASAN: |\t|rcu:|\(detected by|\(t=|NMI backtrace|Sending NMI|"
    r"Showing busy|Mem-Info|Node \d|Tasks state|\[\s*pid\s*\]|oom-kill:|"
    r"(?:mce: )?(?:\{\d+\})?\[Hardware Error\]|unreferenced object|Krnl |NIP |LR |Mem abort|"
    r"Data abort|ESR |Faulting instruction|pc :|lr :|sp :|pstate:)"
)


_STALL_RE = re.compile(r"stall|LOCKUP")
_GP_DUMP_RE = re.compile(r"RCU grace-period kthread stack dump:")
# The body of lockdep and RCU-lockdep reports (kernel/locking/lockdep.c): lock chains,
# held-lock lists, the unsafe scenario; long (100+ lines) before "stack backtrace:".
_LOCKDEP_OK_RE = re.compile(
    r"^\s*(?:-{6,}|\(|#\d+:|-> #\d+|\S+/\d+ (?:\[\S+\] )?is |but |which lock|the existing|"
    r"other info|Possible (?:unsafe|interrupt)|CPU0|-{4}|lock\(|unlock\(|<Interrupt>|"
    r"\*\*\* DEADLOCK|stack backtrace:|\d+ locks? held by|no locks held by|"
    r"\w+-(?:safe|unsafe|irq)|to a \w+-|rcu_scheduler_active|RCU used illegally|"
    r"lockdep_|the shortest|and interrupts could create|.* at: |\[<[0-9a-f]+>\] )"
)

# Cheap pre-filter: a word every start line contains (checked before ~30 regexes,
# since nearly all lines of a log are not report lines).
_HINT_RE = re.compile(
    r"BUG|WARNING|INFO:|Oops|panic|corruption|PANIC|Unable|\[#\d|oom|[Oo]ut of memory|"
    r"sysrq|SysRq|UBSAN|NMI|Hardware Error|[Mm]achine [Cc]heck|Attempted to kill|VFS: Unable|"
    r"stack-protector|locking|Bad mode|Internal error|LOCKUP|NX-protected|SMEP|double fault|"
    r"task:|unreferenced object|VFS: |unregister_netdevice"
)


def start_kind(text: str) -> str | None:
    """The kind of start line ``text`` is, or ``None``."""
    if not text or len(text) > 2000 or not _HINT_RE.search(text):
        return None
    if L.END_PANIC_RE.match(text):
        return None
    for kind, rx in START_RES:
        if rx.search(text):
            return kind
    return None


@dataclass
class _Block:
    kind: str
    start_index: int
    caller: str | None
    records: list[LogLine] = field(default_factory=list)
    has_die: bool = False
    in_trace: bool = False
    trace_frames: int = 0
    ended_trace: bool = False
    noise: int = 0
    nmi_joined: bool = False

    def add(self, line: LogLine) -> None:
        if len(self.records) < MAX_BLOCK_LINES:
            self.records.append(line)


def _tolerate(block: _Block, limit: int) -> bool:
    """Count one more unrecognised line; False (block ends) past ``limit``.

    ``block.noise`` stays the number of such lines *appended* at the tail, which
    :meth:`BlockScanner._close` trims.
    """
    if block.noise >= limit:
        return False
    block.noise += 1
    return True


class BlockScanner:
    """Feed log records one at a time; collect finished blocks as events."""

    def __init__(self) -> None:
        self._open: dict[str | None, _Block] = {}
        self._count = 0
        self.events: list[OopsEvent] = []
        self._latest: deque[OopsEvent] = deque(maxlen=MAX_EVENTS - MAX_EVENTS // 2)
        self.dropped_events = 0
        self._aux = 0

    def feed(self, line: LogLine, index: int) -> None:
        """Consume one record; ``index`` is its position in the whole log."""
        text = line.text
        caller = line.caller
        kind = start_kind(text)
        key = caller
        block = self._open.get(key)
        if kind == "aside":
            if block is not None and block.in_trace:
                return
            kind = "start"
        if block is None and caller is not None and kind is None:
            # continuation lines printed by the CPU whose caller id a block did not
            # record (interrupt context switches T<pid> to C<cpu>) go nowhere.
            block = None
        if kind is not None:
            if block is not None and self._joins(block, kind, text):
                block.add(line)
                if kind == "die":
                    block.has_die = True
                if kind == "nmi":
                    block.in_trace = False
                return
            if block is not None:
                self._close(key)
            nb = _Block(kind=kind, start_index=index, caller=caller)
            nb.has_die = kind == "die"
            nb.add(line)
            self._open[key] = nb
            if kind == "start" and L.END_PANIC_RE.search(text):
                self._close(key)
            return
        if block is None:
            return
        if line.timestamp is None and block.records[0].timestamp is not None and text.strip():
            # a console with printk timestamps: a line without one is not the kernel's
            # (user space writing to the same serial console, e.g. a fuzzer's program
            # log); it neither continues nor ends the report
            return
        if not self._continues(block, text):
            self._close(key)
            return
        block.add(line)
        if L.END_PANIC_RE.match(text):
            self._close(key)

    def _joins(self, block: _Block, kind: str, text: str) -> bool:
        """Does a new start line continue ``block`` (a preamble and its oops)?"""
        if block.kind == "pre" and _STALL_RE.search(block.records[0].text):
            # a stall report: the grace-period kthread's task line and stack
            # (kernel/rcu/tree_stall.h), then the first CPU backtrace it asked for
            if kind == "task" and _GP_DUMP_RE.search(block.records[-1].text):
                return True
            if kind == "nmi" and not block.nmi_joined and len(block.records) < 200:
                block.nmi_joined = True
                block.in_trace = False
                return True
        if block.in_trace or (
            block.kind != "pre" and not (kind == "task" and block.kind == "start")
        ):
            return False
        if len(block.records) > CONTINUATION_WINDOW:
            return False
        header = block.records[0].text
        if kind == "die":
            return not block.has_die
        if kind == "nmi":
            block.nmi_joined = bool(_STALL_RE.search(header))
            return block.nmi_joined
        if kind == "task":  # the hung task's own sched_show_task() line
            return "blocked for more than" in header or "blocked in I/O wait" in header
        if kind == "pre":
            # list_del corruption -> kernel BUG at lib/list_debug.c; NX -> BUG: unable
            return not block.has_die and not re.search(r"KASAN|KFENCE|rcu|LOCKUP", text)
        return False

    def _continues(self, block: _Block, text: str) -> bool:
        """Is ``text`` (not a start line) still part of ``block``?"""
        if L.END_TRACE_RE.match(text):
            block.ended_trace = True
            block.noise = 0
            block.in_trace = False
            return True
        if block.ended_trace:
            # the "executive summary" re-prints RIP, Code and registers
            return bool(
                L.RIP_RE.match(text)
                or L.CODE_RE.match(text)
                or L.REG_LINE_RE.match(text)
                or re.match(r"^\s*(?:Kernel Offset:|---\[ end Kernel panic|note: )", text)
            )
        if re.match(r"^\s*(?:crash> |-{12}\[ cut here \]-{12})", text):
            return block.kind == "pre" and not block.has_die and "cut here" in text
        if L.CALL_TRACE_RE.match(text):
            block.in_trace = True
            block.noise = 0
            return True
        if block.in_trace:
            if L.FRAME_RE.match(text) or L.ARM_FRAME_RE.match(text):
                block.trace_frames += 1
                block.noise = 0
                return True
            if _TRACE_OK_RE.match(text) or L.REG_LINE_RE.match(text):
                block.noise = 0
                return True
            # a console interleaves other CPUs' and user space's lines: tolerate a
            # few inside a stack dump (trailing ones are dropped when it closes)
            return _tolerate(block, MAX_TRACE_NOISE)
        if (
            _HEAD_OK_RE.match(text)
            or _LOCKDEP_OK_RE.match(text)
            or (L.FRAME_RE.match(text) and "/0x" in text)  # KMSAN/KCSAN: no "Call Trace:"
            or L.REG_LINE_RE.match(text)
            or L.CPU_RE.match(text)
            or L.TAINT_LINE_RE.match(text)
        ):
            block.noise = 0
            return True
        return _tolerate(block, MAX_HEAD_NOISE)

    def _close(self, key: str | None) -> None:
        block = self._open.pop(key, None)
        if block is None:
            return
        # drop trailing noise lines (head or stack dump)
        recs = block.records
        if block.noise and not block.ended_trace:
            recs = recs[: max(1, len(recs) - block.noise)]
        if block.kind in ("task", "nmi"):
            # auxiliary stacks (sysrq-t can print thousands): capped on their own
            # so they never push the crash reports out
            if self._aux >= MAX_AUX_BLOCKS:
                self.dropped_events += 1
                return
            self._aux += 1
        ev = build_event(recs, block.start_index)
        if len(self.events) < MAX_EVENTS // 2:
            self.events.append(ev)
            return
        if len(self._latest) == self._latest.maxlen:
            self.dropped_events += 1
        self._latest.append(ev)

    def finish(self) -> list[OopsEvent]:
        """Close every open block; the events in log order."""
        for key in list(self._open):
            self._close(key)
        self.events.extend(self._latest)
        self._latest.clear()
        self.events.sort(key=lambda e: e.line_index)
        return self.events


def events_from_log(log: Iterable[LogLine]) -> list[OopsEvent]:
    """Every report block of a kernel log, in log order.

    ``log`` holds records already stripped of their transport prefix (the
    output of :func:`kcrash.oops.formats.parse_line`, or the records drgn
    reads out of a vmcore's printk buffer).
    """
    scanner = BlockScanner()
    for i, line in enumerate(log):
        scanner.feed(line, i)
    return scanner.finish()


def build_event(records: list[LogLine], index: int) -> OopsEvent:
    """Fill an :class:`OopsEvent` from the records of one block."""
    from kcrash.oops.event import fill_event  # local: keeps this module about cutting

    return fill_event(records, index)
