"""Which spinlock a spinning CPU waits for, and which CPU's task holds it (issue 18).

A soft lockup whose stack ends in ``native_queued_spin_lock_slowpath`` is half an answer:
the engineer's next question is who holds the lock. Without ``CONFIG_DEBUG_SPINLOCK`` (every
distribution kernel) a qspinlock is one 32-bit word — locked byte, pending bit, tail of the
MCS queue — with no owner field, so the holder cannot be read; it is *inferred*, as one does
with crash's ``bt -a``:

1. *The lock.* The slow path keeps the lock's address in a register while it spins; the
   timer interrupt that found the lockup saved those registers in a ``pt_regs`` (the spin
   frame's exception registers). With DWARF the frame's ``lock`` argument may be there too;
   otherwise the words of the waiter's stack above its spin frame are the last candidates.
   A candidate is accepted only when the word it points to is a qspinlock taken *and*
   contended: locked byte set and the pending bit or a queue tail (what a spinning waiter
   leaves in it, since v4.2's qspinlock).
2. *The holder.* A spinlock holder cannot sleep (preemption is off): it runs on another CPU,
   in the critical section. Each other CPU's current task is a candidate unless it is idle
   or spins on the same lock; the clues are the lock's address (or that of the heap object
   around it) in its registers or on its stack, a function on its stack whose code refers to
   the lock (``lea kcrash_spin_lock(%rip)``: a static lock), the function that took the lock
   in the waiter's stack, and being the only candidate. Never proved: the answer says which
   clues it rests on and how sure it is.

Names: kallsyms for a static lock (``kcrash_spin_lock``); for a member of a heap object,
with DWARF, the frame variable that points to the object (``&dev->lock``), else the slab
cache (``a kmalloc-64 object``).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import drgn

from ..model import LockFact, Stack
from .locks import _member_path, base_name, lock_name
from .stacks import task_stack

if TYPE_CHECKING:
    from ..target.open import Target

_KERNEL_MIN = 0xFFFF800000000000
#: qspinlock's word (include/asm-generic/qspinlock_types.h, since v4.2): bits 0-7 locked,
#: bit 8 pending, bits 16-17 the tail's MCS node index, bits 18-31 the tail CPU + 1.
_Q_LOCKED_MASK = 0xFF
_Q_PENDING = 1 << 8
_Q_TAIL_CPU_SHIFT = 18

#: The spin_lock() API between a caller and the slow path: the frame after these in the
#: waiter's stack is the function that took the lock (the holder may be in it too).
LOCK_API = frozenset(
    {
        "native_queued_spin_lock_slowpath",
        "queued_spin_lock_slowpath",
        "__pv_queued_spin_lock_slowpath",
        "pv_queued_spin_lock_slowpath",
        "virt_spin_lock",
        "cpu_relax",
        "__raw_spin_lock",
        "__raw_spin_lock_irq",
        "__raw_spin_lock_irqsave",
        "__raw_spin_lock_bh",
        "_raw_spin_lock",
        "_raw_spin_lock_irq",
        "_raw_spin_lock_irqsave",
        "_raw_spin_lock_bh",
        "_raw_spin_lock_nested",
        "_raw_spin_lock_irqsave_nested",
        "do_raw_spin_lock",
        "queued_spin_lock",
        "spin_lock",
        "spin_lock_irq",
        "spin_lock_irqsave",
        "spin_lock_bh",
    }
)
#: Frames of how the other CPUs were stopped for the dump (the crash NMI, the stop IPI),
#: not of what they were doing: the holder's "which is in" starts after them.
STOP_FRAMES = frozenset(
    {
        "crash_nmi_callback",
        "nmi_handle",
        "default_do_nmi",
        "exc_nmi",
        "asm_exc_nmi",
        "end_repeat_nmi",
        "repeat_nmi",
        "stop_this_cpu",
        "native_halt",
        "halt",
        "native_safe_halt",
        "__sysvec_reboot",
        "sysvec_reboot",
        "asm_sysvec_reboot",
        "smp_stop_nmi_callback",
        "__sysvec_call_function",
        "sysvec_call_function",
        "asm_sysvec_call_function",
        "cpu_stopper_thread",
        "crash_setup_regs",
        "__crash_kexec",
        "crash_kexec",
        "machine_kexec",
    }
)
#: The slow path's argument arrives in rdi and is commonly moved to rbx (6.1's
#: native_queued_spin_lock_slowpath: ``mov %rdi,%rbx``): look there first.
_REG_ORDER = {"rdi": 0, "rbx": 1}
_NOT_DATA = frozenset({"rip", "rsp", "rbp", "cs", "ss", "ds", "es", "fs", "gs", "rflags",
                       "eflags", "orig_rax", "fs_base", "gs_base"})  # fmt: skip
_CODE_LIMIT = 0x10000  # a function larger than this is not scanned for lock references


@dataclass
class Candidate:
    """One other CPU's current task and the clues that it holds the lock."""

    cpu: int
    task: drgn.Object
    stack: Stack
    clues: list[str] = field(default_factory=list)


def qspinlock_held(prog: drgn.Program, address: int, contended: bool = True) -> bool:
    """Is the word at ``address`` a qspinlock that is held (and, with ``contended``, has a
    queued or pending waiter)?

    The locked byte is ``_Q_LOCKED_VAL`` (1; 3 is paravirt's ``_Q_SLOW_VAL``), the pending
    byte 0 or 1, the tail CPU a possible one. A waiter in the queue sets the pending bit
    (the first one) or puts its CPU in the tail (the next ones); but in a guest without
    paravirt spinlocks (QEMU/TCG, many clouds) ``virt_spin_lock()`` (since v4.15) spins
    with a plain test-and-set and leaves the word at 1: only the spin frame's own registers
    are trusted with that weaker test. A word that is code (a register holding a return
    address) is no lock, whatever its bytes."""
    if address < _KERNEL_MIN or address & 3:
        return False
    try:
        val = prog.read_u32(address)
    except (drgn.FaultError, ValueError, OverflowError):
        return False
    if val & _Q_LOCKED_MASK not in (1, 3) or (val >> 8) & 0xFF > 1:
        return False
    tail_cpu = val >> _Q_TAIL_CPU_SHIFT
    if tail_cpu > _nr_cpu_ids(prog):
        return False
    if contended and not (val & _Q_PENDING or tail_cpu):
        return False
    try:
        return prog.symbol(address).kind != drgn.SymbolKind.FUNC
    except LookupError:
        return True


def _nr_cpu_ids(prog: drgn.Program) -> int:
    try:
        return int(prog["nr_cpu_ids"].value_())
    except (LookupError, drgn.FaultError):
        return 8192


def _dwarf_argument(target: Target, task: drgn.Object, function: str) -> int | None:
    """``lock`` of the spin frame, when DWARF keeps it at the interrupted pc."""
    if target.mode != "dwarf":
        return None
    try:
        for fr in target.prog.stack_trace(task):
            if base_name(fr.name) == base_name(function):
                val = fr["lock"]
                return None if val.absent_ else val.value_()
    except (KeyError, LookupError, ValueError, drgn.FaultError, drgn.ObjectAbsentError):
        return None
    return None


def _stack_words(prog: drgn.Program, task: drgn.Object, lo: int | None) -> list[int]:
    """The words of the task's stack from ``lo`` (a frame's stack pointer) to its top."""
    try:
        base = task.stack.value_()
        size = prog["THREAD_SIZE"].value_() if "THREAD_SIZE" in prog else 16384
        if lo is None or not base <= lo < base + size:
            lo = base
        lo &= ~7
        data = prog.read(lo, base + size - lo)
    except (drgn.FaultError, LookupError, ValueError, AttributeError):
        return []
    return [int.from_bytes(data[i : i + 8], "little") for i in range(0, len(data) - 7, 8)]


def spin_lock_address(
    target: Target, task: drgn.Object, stack: Stack, index: int
) -> tuple[int, str] | None:
    """The lock the task spins on (its spin frame is ``stack.frames[index]``) and how it was
    found: ``dwarf-argument``, ``spin-register`` (the registers the interrupt saved in the
    spin frame) or ``spin-stack`` (a word of the stack above it)."""
    prog = target.prog
    frame = stack.frames[index]
    arg = _dwarf_argument(target, task, frame.function or "")
    if arg is not None and qspinlock_held(prog, arg, contended=False):
        return arg, "dwarf-argument"
    spin_regs = [fr.regs for fr in stack.frames[: index + 1] if fr.regs]
    # First a register pointing at a contended lock, then (virt_spin_lock) the argument's
    # registers pointing at a held one.
    for contended, names in ((True, None), (False, ("rdi", "rbx"))):
        for regs in spin_regs:
            for reg in sorted(regs, key=lambda r: (_REG_ORDER.get(r, 99), r)):
                if reg in _NOT_DATA or (names is not None and reg not in names):
                    continue
                if qspinlock_held(prog, regs[reg], contended):
                    return regs[reg], "spin-register"
    for w in _stack_words(prog, task, frame.sp):
        if qspinlock_held(prog, w):
            return w, "spin-stack"
    return None


def _taken_in(stack: Stack, index: int) -> str | None:
    """The waiter's function that called spin_lock(): the first frame past the lock API."""
    for fr in stack.frames[index + 1 :]:
        if fr.function and base_name(fr.function) not in LOCK_API:
            return fr.function
    return None


def _heap_object(prog: drgn.Program, address: int) -> int | None:
    """The start of the slab object around ``address``, when it is one."""
    try:
        from drgn.helpers.linux.slab import slab_object_info

        info = slab_object_info(prog, address)
    except (LookupError, ValueError, drgn.FaultError, AttributeError, TypeError):
        return None
    if info is None or not info.allocated:
        return None
    return int(info.address)


def _refers_to(prog: drgn.Program, function_address: int, address: int) -> bool:
    """Does the code of the function at ``function_address`` name ``address``?

    x86-64 kernel code reaches a global in one of two ways: RIP-relative (``lea
    kcrash_spin_lock(%rip)``: a disp32 relative to the instruction's end, the
    displacement's end when no immediate follows) or, in the kernel code model of modules
    and vmlinux (the top 2 GB), a sign-extended absolute imm32/disp32 (``mov
    $kcrash_spin_lock,%rdi``). Any 4 bytes of the function that say either count."""
    try:
        sym = prog.symbol(function_address)
        size = min(sym.size or 0, _CODE_LIMIT)
        code = prog.read(sym.address, size) if size else b""
    except (LookupError, drgn.FaultError, ValueError):
        return False
    absolute = address - (1 << 64) if address >= 1 << 63 else address
    for i in range(len(code) - 3):
        disp = int.from_bytes(code[i : i + 4], "little", signed=True)
        if disp == absolute or sym.address + i + 4 + disp == address:
            return True
    return False


def _registers(target: Target, task: drgn.Object, stack: Stack) -> list[dict[str, int]]:
    """Every register set known for a running task: its CPU's saved registers (the first
    frame of the unwind) and those of each exception frame on its stack."""
    out = [fr.regs for fr in stack.frames if fr.regs]
    try:
        first = next(iter(target.stack_trace(task)))
        out.insert(0, dict(first.registers()))
    except (StopIteration, LookupError, ValueError, drgn.FaultError):
        pass
    return out


def _clues(
    target: Target,
    cand: Candidate,
    task: drgn.Object,
    lock: int,
    heap: int | None,
    taken_in: str | None,
) -> list[str]:
    """What on that CPU points at the lock: the clue codes the report puts into words."""
    prog = target.prog
    wanted = {lock: "lock", **({heap: "object"} if heap is not None else {})}
    clues: list[str] = []
    for regs in _registers(target, task, cand.stack):
        for reg, val in sorted(regs.items()):
            what = wanted.get(val)
            if what and reg not in ("rip", "rsp") and f"register-{what}:{reg}" not in clues:
                clues.append(f"register-{what}:{reg}")
    task_frames = [f for f in cand.stack.frames if (f.stack or "TASK") == "TASK" and f.sp]
    lo = min((f.sp for f in task_frames if f.sp), default=None)
    words = set(_stack_words(prog, task, lo))
    for addr, what in wanted.items():
        if addr in words:
            clues.append(f"stack-{what}")
    static = heap is None and _is_symbol(prog, lock)
    for fr in task_frames:
        name = base_name(fr.function)
        if not name or name in LOCK_API or name in STOP_FRAMES or fr.address is None:
            continue
        if taken_in and name == base_name(taken_in) and f"same-function:{name}" not in clues:
            clues.append(f"same-function:{name}")
        pc = fr.address if fr.regs else fr.address - 1  # a return address: the call
        if static and f"code:{name}" not in clues and _refers_to(prog, pc, lock):
            clues.append(f"code:{name}")
    return clues


def _is_symbol(prog: drgn.Program, address: int) -> bool:
    try:
        prog.symbol(address)
    except LookupError:
        return False
    return True


def holder_path(stack: Stack, frames: int = 4) -> list[str]:
    """The holder's innermost frames of its own work (after the frames of how its CPU was
    stopped for the dump): ``delay_tsc``, ``kcrash_poll_ready``, ``kcrash_spin_holder``."""
    out: list[str] = []
    for fr in stack.frames:
        name = base_name(fr.function)
        if not name or name in STOP_FRAMES or name.startswith(("asm_", "sysvec_", "__sysvec")):
            continue
        if (fr.stack or "TASK") != "TASK" or fr.inlined:
            continue
        out.append(fr.function or name)
        if len(out) == frames:
            break
    return out


def find_holder(
    target: Target,
    lock: int,
    waiter_cpu: int | None,
    taken_in: str | None,
) -> tuple[Candidate | None, list[Candidate]]:
    """The other CPU whose task most probably holds ``lock``, and every candidate looked at."""
    from drgn.helpers.linux.cpumask import for_each_present_cpu
    from drgn.helpers.linux.sched import cpu_curr

    from .locks import wait_frame

    prog = target.prog
    heap = None if _is_symbol(prog, lock) else _heap_object(prog, lock)
    cands: list[Candidate] = []
    # Present, not online: a CPU stopped by panic() without kdump (stop_this_cpu()) is
    # marked offline, and that is the holder's CPU in a QEMU-captured dump.
    for cpu in for_each_present_cpu(prog):
        if cpu == waiter_cpu:
            continue
        try:
            task = cpu_curr(prog, cpu)
            pid = task.pid.value_()
        except (LookupError, drgn.FaultError, ValueError):
            continue
        stack = task_stack(target, task)
        found = wait_frame(stack)
        if found is not None and found[1].kind == "spinlock":
            other = spin_lock_address(target, task, stack, found[0])
            if other is not None and other[0] == lock:
                continue  # another waiter of the same lock
        cand = Candidate(cpu, task, stack)
        cand.clues = _clues(target, cand, task, lock, heap, taken_in)
        if pid == 0 and not cand.clues:
            continue  # an idle CPU with nothing that points at the lock
        cands.append(cand)
    if len(cands) == 1:
        cands[0].clues.append("only-cpu")
    ranked = sorted(cands, key=lambda c: -len(c.clues))
    if not ranked or not ranked[0].clues:
        return None, cands
    if len(ranked) > 1 and len(ranked[1].clues) == len(ranked[0].clues):
        return None, cands  # two CPUs point at it as much: not decided
    return ranked[0], cands


#: find_holder's answers per open target (by id; an entry goes with its target): when 64
#: CPUs spin on one lock, the other CPUs' stacks are weighed once, not 64 times.
_HOLDERS: dict[int, dict[tuple[int, str | None], tuple[Candidate | None, list[Candidate]]]] = {}


def _holder_cache(
    target: Target,
) -> dict[tuple[int, str | None], tuple[Candidate | None, list[Candidate]]]:
    key = id(target)
    cache = _HOLDERS.get(key)
    if cache is None:
        cache = _HOLDERS[key] = {}
        weakref.finalize(target, _HOLDERS.pop, key, None)
    return cache


def confidence(clues: list[str]) -> str:
    """``probable``: something on that CPU points at the lock and nobody else can hold it;
    ``possible``: one of the two only. (Without an owner field, never ``certain``.)"""
    pointing = any(c != "only-cpu" for c in clues)
    return "probable" if pointing and "only-cpu" in clues else "possible"


def heap_member_name(target: Target, task: drgn.Object, address: int) -> str | None:
    """``&dev->lock``: a pointer variable of one of the task's frames (DWARF) whose object
    holds ``address`` at a ``spinlock_t`` member."""
    if target.mode != "dwarf":
        return None
    prog = target.prog
    try:
        want = prog.type("struct spinlock")
        trace = prog.stack_trace(task)
    except (LookupError, ValueError, drgn.FaultError):
        return None
    for fr in trace:
        try:
            names = fr.locals()
        except (LookupError, ValueError):
            continue
        for name in names:
            try:
                var = fr[name]
                if var.absent_ or var.type_.kind != drgn.TypeKind.POINTER:
                    continue
                pointee = var.type_.type
                base = var.value_()
                size = drgn.sizeof(pointee)
            except (LookupError, ValueError, TypeError, drgn.FaultError, drgn.ObjectAbsentError):
                continue
            if base < _KERNEL_MIN or not base <= address < base + size:
                continue
            path = _member_path(pointee, address - base, want)
            if path:
                return f"&{name}->{path}"
    return None


def spin_fact(target: Target, task: drgn.Object, stack: Stack, index: int) -> LockFact | str:
    """The spinlock a spinning task waits for, with its inferred holder; or why not (a code
    of :class:`kcrash.model.TaskWait` ``unknown``)."""
    found = spin_lock_address(target, task, stack, index)
    if found is None:
        return "spin-not-found"
    address, how = found
    name, naming = lock_name(target, address, "struct spinlock")
    if naming in ("slab", "unknown"):
        member = heap_member_name(target, task, address)
        if member:
            name, naming = member, "variable"
    fact = LockFact(
        kind="spinlock", address=address, name=name, naming=naming, found_by=how, state="locked"
    )
    fact.waiter_cpu = stack.cpu
    if naming == "slab":
        start = _heap_object(target.prog, address)
        fact.object_offset = address - start if start is not None else None
    fact.taken_in = _taken_in(stack, index)
    try:
        # Every waiter of one lock is excluded as such: the answer does not depend on which
        # of them asks (its own CPU is one of the waiters').
        cache = _holder_cache(target)
        if (address, fact.taken_in) not in cache:
            cache[address, fact.taken_in] = find_holder(target, address, stack.cpu, fact.taken_in)
        holder, _cands = cache[address, fact.taken_in]
    except (LookupError, drgn.FaultError, ValueError, AttributeError) as e:
        fact.error = str(e).splitlines()[0] if str(e) else type(e).__name__
        return fact
    if holder is not None:
        fact.owner_task = holder.task.value_()
        fact.holder_cpu = holder.cpu
        fact.holder_clues = holder.clues
        fact.holder_confidence = confidence(holder.clues)
        fact.holder_path = holder_path(holder.stack)
        if fact.naming in ("slab", "unknown"):
            member = heap_member_name(target, holder.task, address)
            if member:
                fact.name, fact.naming = member, "variable"
                fact.object_offset = None
    return fact
