"""Fill an :class:`OopsEvent` from the records of one report block.

The block has two parts (x86-64, every kernel since 3.x):

* the *head*: the report line(s), ``#PF:`` decode, ``Oops: ... [#N]``,
  ``Modules linked in:``, ``CPU: ... Comm: ... Tainted: ...``,
  ``Hardware name:``, ``RIP:``, ``Code:`` and the register dump;
* the *call trace*: frames, ``<IRQ>``/``</IRQ>``/``<TASK>`` markers, and the
  register dumps of nested exception frames (e.g. the idle loop an interrupt
  hit), which become frames carrying ``regs``;

followed, after ``---[ end trace ...]---``, by an "executive summary" that
repeats RIP, Code and registers (used only when the head lacked them).
"""

from __future__ import annotations

import contextlib
import re

from kcrash.model import Frame, LogLine, OopsEvent
from kcrash.oops import lines as L

_LONE_CR2_RE = re.compile(r"^\s*CR2: ([0-9a-f]{8,16})\s*$")

_AUX_STACK_RE = re.compile(
    r"^(?:Allocated by task|Freed by task|Last potentially related work creation|"
    r"Uninit was (?:stored to memory at|created at)|Local variable .* created at|"
    r"Second to last potentially related|The buggy address|allocated by task|freed by task|"
    r"kfence-#\d+|Uninit was (?:created|stored)|Local variable|Reported by Kernel Concurrency)"
)

# kernel/rcu/tree_stall.h rcu_check_gp_kthread_starvation(): the grace-period kthread's
# stack, printed inside a stall report before the stalled CPU's NMI backtrace; it is the
# victim's view, never the stalled code
_GP_KTHREAD_RE = re.compile(r"RCU grace-period kthread stack dump:")

# reports whose first stack has no "Call Trace:" line (mm/kmsan/report.c, kernel/kcsan/report.c)
_HEADLESS_STACK_RE = re.compile(r"BUG: (?:KMSAN|KCSAN): ")
_AFTER_TRACE_RIP_RE = re.compile(r"^\s*EIP: \[<[0-9a-f]+>\] .* SS:ESP ")

_CONTEXTS = {
    "IRQ": "irq",
    "SOFTIRQ": "softirq",
    "NMI": "nmi",
    "TASK": "task",
}


#: Lines only arm64's oops printer writes (arch/arm64/mm/fault.c mem_abort_decode,
#: arch/arm64/kernel/process.c __show_regs, 4.x-6.x): the ``Code:`` words and the
#: registers are then arm64's.
_ARM64_LINE_RE = re.compile(r"^(?:pc : |lr : |pstate: |ESR = 0x|Mem abort info:|x29: )")


def fill_event(records: list[LogLine], index: int) -> OopsEvent:
    """Parse one block; never raises on odd input (fields stay ``None``)."""
    head = records[0]
    ev = OopsEvent(
        header=head.text.strip(),
        lines=[r.text for r in records],
        line_index=index,
        timestamp=head.timestamp,
        caller=head.caller,
    )
    section = "head"  # head -> trace -> summary
    context: str | None = None
    ctx_stack: list[str | None] = []
    nested: Frame | None = None  # exception frame inside the trace collecting regs
    nested_user = False
    summary_regs: dict[str, int] = {}
    summary_rip: Frame | None = None
    summary_code: tuple[list[int], int | None] | None = None

    for rec in records:
        t = rec.text
        s = t.strip()
        if not s:
            continue
        _head_facts(ev, s)
        if ev.arch is None and _ARM64_LINE_RE.match(s):
            ev.arch = "arm64"
        if _GP_KTHREAD_RE.search(s) and section in ("head", "trace"):
            section = "gp-kthread"
            continue
        if section == "gp-kthread":
            if L.NMI_BT_RE.search(s):
                section = "head"  # the stalled CPU's own backtrace follows
            continue
        if L.END_TRACE_RE.match(s):
            section = "summary"
            continue
        if L.CALL_TRACE_RE.match(s):
            if section == "head":
                section = "trace"
            elif section == "summary":
                section = "trace2"  # a second dump after the summary: ignore it
            context = None
            continue
        if section == "head":
            rip = L.parse_rip(s)
            if rip is not None:
                if ev.rip is None and not L.is_user_segment(rip[0]):
                    ev.rip = rip[1]
                continue
            if L.REG_LINE_RE.match(s):
                for k, v in L.parse_registers(s).items():
                    ev.registers.setdefault(k, v)
                continue
            code = L.parse_code(s)
            if code is not None and ev.code is None:
                ev.code, ev.code_ip_index = code
                continue
            if _HEADLESS_STACK_RE.search(head.text) and t[:1] in (" ", "\t"):
                # KMSAN/KCSAN print the stack right after the header, with no "Call Trace:"
                fr = L.parse_frame(s)
                if fr is not None and fr.function and fr.size is not None:
                    section = "trace"
                    ev.call_trace.append(fr)
            continue
        if section == "trace" and _AUX_STACK_RE.match(s):
            # KASAN/KFENCE/kmemleak print more stacks after the faulting one
            # (allocation, free, aux): they are not the crashing call chain
            section = "aux"
            continue
        if section == "trace":
            cm = L.CONTEXT_RE.match(s)
            if cm:
                name = cm.group("name")
                if cm.group("end") or name in ("EOI", "EOE"):
                    context = ctx_stack.pop() if ctx_stack else None
                else:
                    ctx_stack.append(context)
                    context = _CONTEXTS.get(name, "exception")
                nested = None
                continue
            if _AFTER_TRACE_RIP_RE.match(s):
                # i386 < 4.x repeats "EIP: [<addr>] f SS:ESP ..." after the trace: a
                # summary of the crash site, not a nested exception frame
                section = "summary"
                continue
            rip = L.parse_rip(s)
            if rip is not None:
                nested_user = L.is_user_segment(rip[0])
                if nested_user:
                    nested = None
                else:
                    nested = rip[1]
                    nested.regs = {}
                    nested.context = context
                    ev.call_trace.append(nested)
                continue
            if L.CODE_RE.match(s) and nested is None and not nested_user and ev.code is None:
                # kernels before 4.9 print the Code: line after the call trace
                code = L.parse_code(s)
                if code is not None:
                    ev.code, ev.code_ip_index = code
                continue
            if L.REG_LINE_RE.match(s) or L.CODE_RE.match(s):
                if nested is not None and nested.regs is not None:
                    for k, v in L.parse_registers(s).items():
                        nested.regs.setdefault(k.lower(), v)
                continue
            fr = L.parse_frame(s, context)
            if fr is not None:
                nested = None
                if not ev.call_trace and "from [<" in s:
                    # arm: the first line's callee is the PC's function, or (PC 0x0, a
                    # call through a NULL pointer) the function that made the call
                    a = L.ARM_FRAME_RE.match(s)
                    pc_fn = ev.rip.function if ev.rip is not None else None
                    if a and a.group("callee") != pc_fn:
                        ev.call_trace.append(Frame(function=a.group("callee"), context=context))
                ev.call_trace.append(fr)
            continue
        if section == "summary":
            rip = L.parse_rip(s)
            if rip is not None:
                if summary_rip is None and not L.is_user_segment(rip[0]):
                    summary_rip = rip[1]
                continue
            if L.REG_LINE_RE.match(s):
                for k, v in L.parse_registers(s).items():
                    summary_regs.setdefault(k, v)
                continue
            code = L.parse_code(s)
            if code is not None and summary_code is None:
                summary_code = code

    if ev.rip is None and summary_rip is not None:
        ev.rip = summary_rip
    if not ev.registers and summary_regs:
        ev.registers = summary_regs
    if ev.code is None and summary_code is not None:
        ev.code, ev.code_ip_index = summary_code
    if ev.rip is not None and ev.registers:
        ev.rip.regs = {k.lower(): v for k, v in ev.registers.items()}
    if ev.rip is not None and ev.rip.function is None and ev.rip.address == 0 and ev.call_trace:
        # A call through a NULL function pointer: RIP is 0 and the word at RSP is
        # the return address into the caller, which the unwinder prints as the
        # first, "?"-marked frame (3.x-4.x frame-pointer unwinder).  That frame is
        # where the call happened, not a stale guess.
        first = ev.call_trace[0]
        if not first.reliable and first.function:
            first.reliable = True

    if ev.fault_address is None and _is_page_fault(ev):
        # the lone "CR2: ..." line __die() prints holds the faulting address; the
        # register dump's CR2 may already be overwritten by the failed read of
        # the Code: bytes ("Unable to access opcode bytes at ...")
        lone = [int(m.group(1), 16) for ln in ev.lines if (m := _LONE_CR2_RE.match(ln))]
        if lone:
            ev.fault_address = lone[0]
        elif "CR2" in ev.registers:
            ev.fault_address = ev.registers["CR2"]
    return ev


def _is_page_fault(ev: OopsEvent) -> bool:
    return any(ln.lstrip().startswith("#PF:") for ln in ev.lines[:20]) or (
        "unable to handle" in ev.header or "NULL pointer" in ev.header
    )


def _head_facts(ev: OopsEvent, s: str) -> None:
    """Facts that may appear on any line of the block; the first one wins."""
    if ev.oops_number is None:
        m = L.DIE_RE.match(s)
        if m:
            ev.oops_number = int(m.group("n"))
            if ev.error_code is None:
                ev.error_code = int(m.group("err"), 16)
    m = L.PF_ERROR_RE.search(s)
    if m:
        ev.error_code = int(m.group("e"), 16)
        return
    if ev.fault_address is None:
        for rx in L.FAULT_ADDR_RES:
            m = rx.search(s)
            if m:
                a = m.group("a")
                with contextlib.suppress(ValueError):
                    ev.fault_address = 0 if a == "(null)" else int(a, 16)
                return
    if ev.cpu is None or ev.release is None:
        m = L.CPU_RE.match(s)
        if m:
            ev.cpu = ev.cpu if ev.cpu is not None else int(m.group("cpu"))
            ev.pid = ev.pid if ev.pid is not None else int(m.group("pid"))
            ev.comm = ev.comm or m.group("comm")
            _taint(ev, m.group("taint"), m.group("release"), m.group("version"))
            return
    if ev.pid is None and ev.release is None:
        m = L.OLD_PID_RE.match(s)
        if m:
            ev.pid, ev.comm = int(m.group("pid")), m.group("comm")
            _taint(ev, m.group("taint"), m.group("release"), m.group("version"))
            return
    if ev.release is None:
        m = L.TAINT_LINE_RE.match(s)
        if m:
            _taint(ev, m.group("taint"), m.group("release"), m.group("version"))
            return
    if ev.hardware is None:
        m = L.HARDWARE_RE.match(s)
        if m:
            ev.hardware = m.group("hw").strip()
            return
    if not ev.modules_linked:
        mods = L.parse_modules(s)
        if mods is not None:
            ev.modules_linked = mods
            return
    if ev.panic_message is None:
        m = L.PANIC_RE.search(s)
        if m and not s.startswith("---[ end"):
            ev.panic_message = m.group("msg").strip()
            return
        m = L.END_PANIC_RE.match(s)
        if m:
            ev.panic_message = m.group("msg").strip()
            return
    if ev.pid is None:
        for rx in (L.SOFTLOCKUP_RE, L.HUNG_RE, L.WARN_RE, L.BY_TASK_RE):
            m = rx.search(s)
            if m:
                gd = m.groupdict()
                ev.pid = int(gd["pid"])
                if gd.get("comm"):
                    ev.comm = gd["comm"]
                if gd.get("cpu") is not None:
                    ev.cpu = int(gd["cpu"])
                return
    if ev.pid is None:
        m = L.TASK_LINE_RE.match(s)
        if m:
            ev.pid = int(m.group("pid"))
            ev.comm = ev.comm or m.group("comm").strip()
            return
    if ev.cpu is None:
        m = L.NMI_BT_RE.search(s)
        if m:
            ev.cpu = int(m.group("cpu"))


def _taint(ev: OopsEvent, taint: str | None, release: str | None, version: str | None) -> None:
    if ev.release is None:
        ev.taint = taint.rstrip() if taint else "G"  # "Not tainted"
        ev.release = release
        ev.kernel_version = version.strip() if version else None
