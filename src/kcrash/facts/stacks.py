"""Stacks of tasks and CPUs, with exception frames, as plain :class:`Stack` facts.

With DWARF we build on drgn's :func:`kernel_stack_trace`, which already
splits a stack into segments at exception/interrupt frames (pt_regs) and
switches to the IRQ/exception stacks on x86-64.  Without DWARF the target's
ORC unwinder (:mod:`kcrash.target.nodebug`) gives the frames.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import drgn
from drgn.helpers.linux.sched import task_cpu

from ..model import Frame, Stack
from ..target import fpunwind, nodebug
from ..target.frame_labels import frame_label

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
        sym_name, sym_addr, size = frame_label(prog, lookup_pc)
        offset = pc - sym_addr
        # crash names a frame by its ELF symbol (``__handle_sysrq.cold``), and
        # an address in assembly code by the label before it, as kallsyms does;
        # DWARF names inlined frames, which have no symbol of their own.
        if name is None or name.startswith("0x") or not frame.is_inline:
            name = sym_name
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


def _is_user(pc: int) -> bool:
    """A user-space address: bit 63 clear (x86-64 kernel addresses start at
    0xffff800000000000, arm64's at 0xffff000000000000 or, 52-bit, 0xfff0000000000000)."""
    return not pc >> 63


#: Functions of the kdump path whose return slot starts the panic path.
KEXEC_ENTRY_FUNCTIONS = ("machine_kexec",)
#: Where the other CPUs stop in a kdump: the crash NMI handler never returns.
NMI_ENTRY_FUNCTIONS = ("crash_nmi_callback",)
_KEXEC_SCAN_BYTES = 4096


def kexec_path_trace(
    prog: drgn.Program, task: drgn.Object, unwind: Unwind | None = None
) -> Any | None:
    """The path that took the dump, unwound from below the saved registers.

    Why: in a kdump vmcore each CPU's PRSTATUS note holds the registers of
    the *interrupted* context: the oops registers on the panic CPU
    (``crash_kexec(regs)``), ``__crash_kexec``'s after ``panic()``, and on the
    other CPUs the context the crash NMI interrupted.  So drgn's unwinder
    starts at the faulting function, in ``__crash_kexec`` or in the idle
    loop, while the frames that led to the dump (``machine_kexec`` ←
    ``__crash_kexec`` ← ``oops_end`` …, or ``crash_nmi_callback`` ←
    ``exc_nmi`` on the NMI stack) are still in memory, and crash shows them.
    We find the entry function's return slot — just below the first frame
    for the panic CPU, anywhere on the CPU's NMI stack for the others — and
    unwind from there with ORC; the result must reach the first frame drgn
    found (same stack pointer, same function), otherwise it is not used.
    x86-64 kernels with kexec (``crash_nmi_callback`` since 2.6.19).

    ``unwind`` unwinds from a candidate slot; by default drgn's unwinder (the
    result is then a :class:`drgn.StackTrace`).
    """
    unwind = unwind or _drgn_unwind(prog)
    try:
        first = prog.stack_trace(task)[0]
        if first.name in KEXEC_ENTRY_FUNCTIONS or first.name in NMI_ENTRY_FUNCTIONS:
            return None
        exc_sp, exc_pc = first.sp, first.pc
    except (ValueError, LookupError, AttributeError, drgn.FaultError):
        return None
    # machine_kexec's frame lies just below the first frame, on whichever
    # stack the panic ran (task, IRQ or exception stack): scan 4 KiB below.
    regions = [(exc_sp - _KEXEC_SCAN_BYTES, exc_sp, KEXEC_ENTRY_FUNCTIONS)]
    nmi = _nmi_stack(prog, task)
    if nmi is not None:
        regions.append((nmi[0], nmi[1], NMI_ENTRY_FUNCTIONS))
    try:  # an NMI that interrupted user mode runs on the task's own stack
        base = task.stack.value_()
        regions.append((base, base + prog["THREAD_SIZE"].value_(), NMI_ENTRY_FUNCTIONS))
    except (LookupError, AttributeError, drgn.FaultError):
        pass
    for lo, hi, funcs in regions:
        trace = _unwind_from_slot(prog, lo, hi, funcs, exc_sp, exc_pc, unwind)
        if trace is not None:
            return trace
    return None


#: (ip, sp) of a return slot -> (the trace, its frames' (pc, sp)), or None.
Unwind = Callable[[int, int], "tuple[Any, list[tuple[int, int]]] | None"]


def _drgn_unwind(prog: drgn.Program) -> Unwind:
    def unwind(ip: int, sp: int) -> tuple[Any, list[tuple[int, int]]] | None:
        regs = drgn.Object(prog, "struct pt_regs", value={"ip": ip, "sp": sp})
        try:
            trace = prog.stack_trace(regs)
            return trace, [(f.pc, f.sp) for f in trace]
        except (ValueError, LookupError, drgn.FaultError):
            return None

    return unwind


def _unwind_from_slot(
    prog: drgn.Program,
    lo: int,
    hi: int,
    funcs: tuple[str, ...],
    exc_sp: int,
    exc_pc: int,
    unwind: Unwind,
) -> Any | None:
    try:
        data = prog.read(lo, hi - lo)
        ranges = []
        for name in funcs:
            sym = prog.symbol(name)
            ranges.append((sym.address, sym.address + sym.size))
    except (LookupError, drgn.FaultError, ValueError):
        return None
    for off in range(len(data) - 8, -1, -8):
        word = int.from_bytes(data[off : off + 8], "little")
        if not any(a < word < b for a, b in ranges):
            continue
        got = unwind(word, lo + off + 8)
        if got is None:
            continue
        trace, frames = got
        if any(sp == exc_sp and _same_function(prog, pc, exc_pc) for pc, sp in frames[1:]):
            return trace
    return None


def _stack_ranges(prog: drgn.Program, task: drgn.Object) -> list[tuple[int, int, str]]:
    """(start, end, kind) of the CPU's exception/NMI/IRQ stacks (drgn's x86-64 table)."""
    try:
        from .. import drgn_private

        return [
            (lo, hi, kind.name)
            for lo, hi, kind in drgn_private.x86_64_stack_ranges(task, task_cpu(task))
            if kind.name != "USER"
        ]
    except Exception:  # other architectures, or kernels drgn's table does not know
        return []


def _nmi_stack(prog: drgn.Program, task: drgn.Object) -> tuple[int, int] | None:
    for lo, hi, kind in _stack_ranges(prog, task):
        if kind == "NMI":
            return lo, hi
    return None


def _same_function(prog: drgn.Program, a: int, b: int) -> bool:
    if a == b:
        return True
    try:
        return prog.symbol(a).address == prog.symbol(b).address
    except LookupError:
        return False


#: Functions in which the dumping CPU saved its registers: a first frame in
#: one of them is not an exception frame, so it gets no register block.
PANIC_PATH_FUNCTIONS = frozenset(
    (
        "__crash_kexec",
        "crash_kexec",
        "machine_kexec",
        "panic",
        "crash_nmi_callback",
        "pvpanic_send_event",
        "native_machine_crash_shutdown",
        "crash_setup_regs",
    )
)


#: arm64's exception vector table (``vectors``, v3.7+): a CPU stopped by QEMU while it
#: enters an exception (the panic loop's timer IRQ) has its pc there.
ARM64_VECTOR_TABLES = frozenset(("vectors",))


def _in_panic_path(name: str | None) -> bool:
    """Where a dumping CPU stopped: kexec/panic code, or QEMU's pvpanic device."""
    return bool(name) and (name in PANIC_PATH_FUNCTIONS or name.startswith("pvpanic"))


def stack_from_trace(
    prog: drgn.Program,
    trace: drgn.StackTrace,
    synthetic_first: bool,
    ranges: list[tuple[int, int, str]] | None = None,
) -> Stack:
    """Cut a drgn trace into :class:`Frame` facts; exception frames carry their regs.

    ``synthetic_first``: the first frame's "interrupted" flag comes from the
    registers we built (not a real exception), so it gets no register block.
    """
    st = Stack()
    frames = list(trace)
    first_pc = frames[0].pc if frames else None
    prev: drgn.StackFrame | None = None
    for fr in frames:
        if _is_user(fr.pc):
            if fr.interrupted:
                st.user_regs = _with_orig_ax(prog, prev, dict(fr.registers()))
            break
        exc = fr.interrupted and not (
            fr.pc == first_pc and (synthetic_first or _in_panic_path(fr.name))
        )
        # drgn marks every inline frame sharing an interrupted PC as interrupted:
        # only the outermost one (the real frame) carries the register block.
        if exc and fr.is_inline:
            exc = False
        fact = frame_fact(prog, fr, regs=exc)
        if exc and fact.regs is not None:
            fact.regs = _with_orig_ax(prog, prev, fact.regs)
        if ranges is not None and fact.sp is not None:
            # <= hi: a frame whose CFA is the stack's top (hardirq_stack_ptr
            # points 8 bytes below the end) is still on that stack.
            fact.stack = next((k for lo, hi, k in ranges if lo <= fact.sp <= hi), "TASK")
        st.frames.append(fact)
        if not fr.is_inline:
            # The entry code's frame (its pt_regs holds orig_ax), not an inline frame
            # of the interrupted function (cpu_relax() in a spin loop) that sits between.
            prev = fr
    return st


def _orc_unwind(prog: drgn.Program) -> Unwind:
    from ..target import nodebug

    def unwind(ip: int, sp: int) -> tuple[Any, list[tuple[int, int]]] | None:
        try:
            frames = nodebug.unwind_registers(prog, {"rip": ip, "rsp": sp, "rbp": 0}, False)
        except (LookupError, ValueError, drgn.FaultError):
            return None
        return frames, [(f.pc, f.sp) for f in frames]

    return unwind


def stack_from_unwound(
    prog: drgn.Program,
    frames: list[Any],
    ranges: list[tuple[int, int, str]],
    confirmed: bool = False,
) -> Stack:
    """:func:`stack_from_trace` for the frames of kcrash's own ORC unwinder
    (:class:`kcrash.target.orc.UnwoundFrame`): the same facts, from the pc,
    stack pointer and ``pt_regs`` of each frame (no inline frames: no DWARF).
    ``confirmed``: the unwind was checked end to end (it reached the frame
    the CPU's saved registers give), so a step found by scanning is reliable."""
    st = Stack()
    for fr in frames:
        if _is_user(fr.pc):
            if fr.regs is not None:
                st.user_regs = dict(fr.regs)
            break
        lookup_pc = fr.pc if fr.interrupted else fr.pc - 1
        fact = Frame(
            function=None,
            module=_module_name(prog, lookup_pc),
            address=fr.pc,
            sp=fr.sp,
            reliable=fr.reliable or confirmed,
            regs=dict(fr.regs) if fr.regs is not None and fr.interrupted else None,
            fp=fr.bp if nodebug.is_arm64(prog) else None,
        )
        try:
            name, addr, fact.size = frame_label(prog, lookup_pc)
            fact.function, fact.offset = name, fr.pc - addr
        except LookupError:
            pass
        fact.stack = next((k for lo, hi, k in ranges if lo <= fr.sp <= hi), "TASK")
        st.frames.append(fact)
    return st


def _with_orig_ax(
    prog: drgn.Program, entry: drgn.StackFrame | None, regs: dict[str, int]
) -> dict[str, int]:
    """Add ``orig_rax`` (crash prints it) from the pt_regs the entry code saved.

    drgn's unwinder gives the registers of an exception frame but not
    ``orig_ax``, which lives only in the ``struct pt_regs`` that the entry
    code (``asm_exc_*``, ``entry_SYSCALL_64``) pushed at its stack pointer.
    We read it there, and only when that struct's ``ip``/``sp`` are the
    frame's, so a wrong guess adds nothing.
    """
    if entry is None or "rip" not in regs:
        return regs
    try:
        pt = drgn.Object(prog, "struct pt_regs", address=entry.sp)
        if pt.ip.value_() == regs["rip"] and pt.sp.value_() == regs.get("rsp"):
            regs = {**regs, "orig_rax": pt.orig_ax.value_()}
    except (LookupError, drgn.FaultError, AttributeError, ValueError):
        pass
    return regs


def task_stack(target: Target, task: drgn.Object) -> Stack:
    """The stack of one task (``struct task_struct *``), innermost frame first."""
    prog = target.prog
    try:
        ranges = _stack_ranges(prog, task)
        if nodebug.is_arm64(prog):
            return _with_task(arm64_task_stack(target, task), task)
        if not _on_cpu(task):
            # A task off every CPU was switched out by schedule(): the kdump path runs on
            # CPUs only, so its stack holds no path to look for (the scan of its 16 KiB for
            # crash_nmi_callback cost 0.1 s per sleeping task of a hung machine).
            return _with_task(stack_from_trace(prog, target.stack_trace(task), False, ranges), task)
        if target.mode == "btf":
            # Without DWARF CFI, drgn's unwinder cannot cross the kdump path's
            # functions that objtool leaves without ORC (__crash_kexec is
            # STACK_FRAME_NON_STANDARD): it falls back to frame pointers and
            # drops panic(). kcrash's ORC unwinder resumes at the next return
            # address there, as crash does.
            frames = kexec_path_trace(prog, task, _orc_unwind(prog))
            if frames is not None:  # it reached drgn's first frame: every step holds
                st = stack_from_unwound(prog, frames, ranges, confirmed=True)
                return _with_task(st, task)
        trace = kexec_path_trace(prog, task) if target.mode == "dwarf" else None
        synthetic = trace is not None
        if trace is None:
            trace = target.stack_trace(task)
        st = stack_from_trace(prog, trace, synthetic, ranges)
    except (ValueError, LookupError, drgn.FaultError) as e:
        st = Stack(error=str(e).splitlines()[0] if str(e) else type(e).__name__)
    return _with_task(st, task)


#: Why a stack shows no frame when the unwinder raised nothing.
NO_FRAMES = "no kernel frame on the stack when it was read"


def _on_cpu(task: drgn.Object) -> bool:
    """Was ``task`` on a CPU at the crash (``on_cpu``; true when it cannot be read)?"""
    try:
        return bool(task.on_cpu.value_())
    except (LookupError, AttributeError, drgn.FaultError):
        return True


def crashed_cpu_stack(prog: drgn.Program) -> Stack:
    """The panicking CPU's stack from its saved registers (NT_PRSTATUS), for a dump whose
    panic task cannot be found (no types, or no per-CPU data): on arm64 with every
    exception frame's registers (frame records), elsewhere the PCs of the ORC unwind."""
    if nodebug.is_arm64(prog):
        st = stack_from_unwound(prog, nodebug.crashed_cpu_frames(prog), [], confirmed=True)
        _drop_dump_path_regs(st)
        return st
    return stack_from_trace(prog, nodebug.stack_trace(prog, None), False)


def _drop_dump_path_regs(st: Stack) -> None:
    """No register block for a first frame where the dumping CPU saved its registers
    (``__crash_kexec`` …) or, in QEMU's capture, where the CPU was entering the vector
    table: neither is an exception frame of the stack (arm64)."""
    if st.frames and (
        _in_panic_path(st.frames[0].function) or st.frames[0].function in ARM64_VECTOR_TABLES
    ):
        st.frames[0].regs = None


def arm64_task_stack(target: Target, task: drgn.Object) -> Stack:
    """An arm64 task's stack: frame records from drgn's first frame, through every
    exception frame (its ``pt_regs``) and IRQ-stack switch (:mod:`kcrash.target.fpunwind`).

    With DWARF, drgn's frames are the same where the code has CFI, but the entry
    code has none: drgn then falls back to frame records without the ``pt_regs``
    registers, so the frame records are the stack in every mode, and DWARF adds
    the source lines and inlined calls of each frame (:func:`_with_dwarf_lines`).
    """
    prog = target.prog
    try:
        first = target.stack_trace(task)[0]
    except LookupError:
        # Without per-CPU data (no vmlinux and no CONFIG_KALLSYMS_ALL: no `crash_notes`)
        # drgn cannot start a running task; kdump's own NT_PRSTATUS note of its CPU names
        # it (pr_pid is the CPU's current task, crash_save_cpu()), as crash matches them.
        regs = _prstatus_of(prog, task)
        if regs is None:
            raise
        st = stack_from_unwound(prog, nodebug.unwind_registers(prog, regs), [], confirmed=True)
        _drop_dump_path_regs(st)
        _with_arm64_syscall_regs(prog, task, st)
        return st
    regs = nodebug.frame_registers(first)
    frames = nodebug.unwind_registers(prog, regs, first.interrupted)
    st = stack_from_unwound(prog, frames, [], confirmed=True)
    if st.frames and frames[0].regs is not None and not first.interrupted:
        st.frames[0].regs = None
    _drop_dump_path_regs(st)
    _with_arm64_syscall_regs(prog, task, st)
    if target.mode == "dwarf":
        _with_dwarf_lines(prog, st)
    return st


def _with_arm64_syscall_regs(prog: drgn.Program, task: drgn.Object, st: Stack) -> None:
    """Add ``orig_x0`` and ``syscallno`` (crash prints both) to user registers taken from
    a CPU's saved state (NT_PRSTATUS: a task stopped in user mode has no kernel frame).

    ``pr_reg`` is a ``user_pt_regs`` (x0-pstate) only; the rest lives in the ``pt_regs``
    the entry code saved at the top of the task's stack (``task_pt_regs()``: the stop IPI
    taken in EL0 saved it there, ``syscallno`` set to NO_SYSCALL).  Taken only when that
    ``pt_regs`` has the same pc and sp, so a wrong guess adds nothing.
    """
    regs = st.user_regs
    if not regs or "orig_x0" in regs or "pc" not in regs:
        return
    try:
        top = task.stack.value_() + fpunwind.THREAD_SIZE
        saved = nodebug.fp_unwinder(prog).pt_regs(top - drgn.sizeof(prog.type("struct pt_regs")))
    except (LookupError, AttributeError, ValueError, drgn.FaultError):
        return
    if (saved["pc"], saved["sp"]) == (regs["pc"], regs.get("sp")):
        st.user_regs = {**regs, "orig_x0": saved["orig_x0"], "syscallno": saved["syscallno"]}


def _prstatus_of(prog: drgn.Program, task: drgn.Object) -> dict[str, int] | None:
    """The registers of the one NT_PRSTATUS note whose pid is ``task``'s (not the idle
    tasks': every idle CPU's note says pid 0)."""
    pid = task.pid.value_()
    notes = [r for r in nodebug.cpu_prstatus(prog) if r.pid == pid] if pid else []
    return notes[0].regs if len(notes) == 1 else None


def _with_dwarf_lines(prog: drgn.Program, st: Stack) -> None:
    """Source lines and inlined calls of each frame from DWARF, as drgn's own
    frames carry them (``bt -l``, the culprit's file:line): an inlined call is a
    frame of its own before the real one, marked ``inlined``."""
    out: list[Frame] = []
    for fr in st.frames:
        if fr.address is None:
            out.append(fr)
            continue
        pc = fr.address if fr.regs is not None else fr.address - 1
        try:
            locs = list(prog.source_location(pc))
        except (LookupError, ValueError):
            out.append(fr)
            continue
        for loc in locs[:-1]:
            out.append(
                Frame(
                    function=str(loc).split(" at ", 1)[0],  # drgn 0.3.0: no .name
                    module=fr.module,
                    address=fr.address,
                    source=f"{loc.filename}:{loc.line}",
                    sp=fr.sp,
                    inlined=True,
                    stack=fr.stack,
                )
            )
        if locs:
            fr.source = f"{locs[-1].filename}:{locs[-1].line}"
        out.append(fr)
    st.frames = out


def _with_task(st: Stack, task: drgn.Object) -> Stack:
    if not st.frames and st.error is None and not st.user_regs:
        # Seen live: a CPU's current task switched out between the runqueue read and the
        # stack read (rcu_preempt), and its stack gave no kernel frame.  Say so, never an
        # empty block.
        st.error = NO_FRAMES
    st.pid = task.pid.value_()
    st.comm = task.comm.string_().decode("utf-8", "replace")
    st.cpu = task_cpu(task)
    st.task = task.value_()
    return st


def panic_task(prog: drgn.Program) -> drgn.Object | None:
    """The task that panicked (the crashed thread), or None for a live kernel."""
    try:
        return prog.crashed_thread().object
    except (ValueError, LookupError):
        return None


#: Sleeping tasks a DWARF target unwinds itself before it hands the rest to its BTF twin
#: (:meth:`kcrash.target.open.Target.btf_twin`): opening the twin costs about what 100-150
#: DWARF unwinds do, so a small machine never pays for it.
TWIN_AFTER = 64


class TaskStacker:
    """:func:`task_stack` for many tasks (``foreach bt``), at ~1 ms a task instead of ~6.

    With DWARF, a task that was off every CPU is unwound through the target's BTF twin
    once more than `twin_after` of them were asked for: the same drgn unwinder over the
    same ORC tables, without the inline frames DWARF adds (4.5 ms of drgn's 6 per task).
    Its stack prints as ``bt PID`` prints it (the frames, their stack slots, symbols,
    modules and registers are the same; ``tests/test_scale_corpus.py`` compares them);
    ``source_lines`` keeps every task on the DWARF path (``-l`` prints inline frames). A
    task on a CPU always takes :func:`task_stack`'s own path (the kdump NMI and kexec
    frames). ``unwound`` counts the tasks per path, so that a test can bound the slow one.
    """

    def __init__(
        self, target: Target, *, source_lines: bool = False, twin_after: int = TWIN_AFTER
    ) -> None:
        self.target = target
        self.source_lines = source_lines
        self.twin_after = twin_after
        self.unwound = {"dwarf": 0, "twin": 0, "own": 0}

    def stack(self, task: drgn.Object) -> Stack:
        """The stack of one task of the target's program."""
        target = self.target
        if target.mode != "dwarf":
            self.unwound["own"] += 1
            return task_stack(target, task)
        twin = None
        if not self.source_lines and not _on_cpu(task) and self.unwound["dwarf"] >= self.twin_after:
            twin = target.btf_twin()
        if twin is None:
            self.unwound["dwarf"] += 1
            return task_stack(target, task)
        self.unwound["twin"] += 1
        return task_stack(twin, drgn.Object(twin.prog, "struct task_struct *", value=task.value_()))
