"""Stacks of tasks and CPUs, with exception frames, as plain :class:`Stack` facts.

With DWARF we build on drgn's :func:`kernel_stack_trace`, which already
splits a stack into segments at exception/interrupt frames (pt_regs) and
switches to the IRQ/exception stacks on x86-64.  Without DWARF the target's
ORC unwinder (:mod:`kcrash.target.nodebug`) gives the frames.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import drgn
from drgn.helpers.linux.sched import task_cpu

from .model import Frame, Stack

if TYPE_CHECKING:
    from ..target.open import Target


def _module_name(prog: drgn.Program, pc: int) -> str | None:
    try:
        mod = prog.module(pc)
    except LookupError:
        return None
    return None if isinstance(mod, drgn.MainModule) else mod.name


def frame_fact(prog: drgn.Program, frame: drgn.StackFrame, regs: bool = False) -> Frame:
    """Convert one drgn frame; ``regs`` attaches its pt_regs (exception frames)."""
    pc = frame.pc
    # A return address points after the call: look up pc-1 so a call that is
    # the last instruction of a function is attributed to that function.
    lookup_pc = pc - 1 if (pc and not frame.interrupted) else pc
    name = frame.name
    offset = size = None
    try:
        sym = prog.symbol(lookup_pc)
        offset, size = pc - sym.address, sym.size
        if name is None or name.startswith("0x"):
            name = sym.name
    except LookupError:
        pass
    try:
        src_file, line, _col = frame.source()
        source: str | None = f"{src_file}:{line}"
    except (LookupError, ValueError):
        source = None
    try:
        sp = frame.sp
    except LookupError:
        sp = None
    reg_values = None
    if regs:
        reg_values = {}
        for r, v in frame.registers().items():
            reg_values[r] = v
    return Frame(
        function=name,
        offset=offset,
        size=size,
        module=_module_name(prog, lookup_pc),
        address=pc,
        source=source,
        sp=sp,
        inlined=frame.is_inline,
        regs=reg_values,
    )


def task_stack(target: Target, task: drgn.Object) -> Stack:
    """The stack of one task (``struct task_struct *``), innermost frame first."""
    prog = target.prog
    st = Stack(
        pid=task.pid.value_(),
        comm=task.comm.string_().decode("utf-8", "replace"),
        cpu=task_cpu(task),
        task=task.value_(),
    )
    try:
        if target.mode == "dwarf":
            from drgn.helpers.linux.stack import StackKind, kernel_stack_trace

            trace = kernel_stack_trace(task)
            for i, seg in enumerate(trace.segments):
                if seg.kind == StackKind.USER:
                    break
                for j, fr in enumerate(seg.frames):
                    st.frames.append(frame_fact(prog, fr, regs=(i > 0 and j == 0)))
        else:
            trace = target.stack_trace(task)
            for fr in trace:
                st.frames.append(frame_fact(prog, fr, regs=bool(fr.interrupted)))
    except (ValueError, LookupError, drgn.FaultError) as e:
        st.error = str(e).splitlines()[0] if str(e) else type(e).__name__
    return st


def panic_task(prog: drgn.Program) -> drgn.Object | None:
    """The task that panicked (the crashed thread), or None for a live kernel."""
    try:
        return prog.crashed_thread().object
    except (ValueError, LookupError):
        return None
