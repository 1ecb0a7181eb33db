"""``bt``: backtraces in crash's layout, with exception frames and ``--json``.

``bt`` shows the panic task, ``bt PID`` another task, ``bt -a`` the active
task of every CPU, ``bt -l`` adds source lines (DWARF mode).  Exception
frames print their registers the way crash does (``[exception RIP: …]``).
"""

from __future__ import annotations

import argparse
from typing import Any

import drgn
from drgn import Program
from drgn.commands import argument
from drgn.helpers.linux.cpumask import for_each_present_cpu
from drgn.helpers.linux.pid import find_task
from drgn.helpers.linux.sched import cpu_curr

from ..errors import KcrashError
from ..facts.stacks import panic_task, task_stack
from ..model import Frame, Stack
from ..textsafe import visible
from ._render import JSON_ARG, print_json, unreadable
from .registry import kcrash_command, target_of

_REG_ROWS = (
    ("rip", "rsp", "rflags"),
    ("rax", "rbx", "rcx"),
    ("rdx", "rsi", "rdi"),
    ("rbp", "r8", "r9"),
    ("r10", "r11", "r12"),
    ("r13", "r14", "r15"),
)


_STACK_NAMES = {"IRQ": "IRQ", "NMI": "NMI exception", "EXCEPTION": "exception"}


def _register_lines(regs: dict[str, int]) -> list[str]:
    out = []
    for row in _REG_ROWS:
        cells = [
            f"{r.upper():>3}: {regs[r]:08x}" if r == "rflags" else f"{r.upper():>3}: {regs[r]:016x}"
            for r in row
            if r in regs
        ]
        if cells:
            out.append("    " + "  ".join(cells))
    tail = []
    if "orig_rax" in regs:
        tail.append(f"ORIG_RAX: {regs['orig_rax']:016x}")
    for r in ("cs", "ss"):
        if r in regs:
            tail.append(f"{r.upper()}: {regs[r]:04x}")
    if tail:
        out.append("    " + "  ".join(tail))
    return out


def _is_arm64_regs(regs: dict[str, int]) -> bool:
    return "pc" in regs and "x29" in regs


def _arm64_register_lines(regs: dict[str, int], name_of: Any, user: bool = False) -> list[str]:
    """An arm64 ``pt_regs`` as crash prints it (arm64_print_exception_frame): PC and LR
    named, SP and PSTATE, X29 down to X0 three a row, ORIG_X0 and SYSCALLNO; a user
    context on one PC/LR/SP line and PSTATE at the end."""
    pc, lr, sp = regs["pc"], regs.get("x30", 0), regs.get("sp", 0)
    if user:
        out = [f"     PC: {pc:016x}   LR: {lr:016x}   SP: {sp:016x}"]
    else:

        def named(addr: int) -> str:
            name = name_of(addr)
            return f"[{visible(name)}]" if name else "[unknown or invalid address]"

        out = [
            f"     PC: {pc:016x}  {named(pc)}",
            f"     LR: {lr:016x}  {named(lr)}",
            f"     SP: {sp:016x}  PSTATE: {regs.get('pstate', 0):08x}",
        ]
    cells = [f"{' ' if i < 10 else ''}X{i}: {regs.get(f'x{i}', 0):016x}" for i in range(29, -1, -1)]
    out.extend("    " + "  ".join(cells[i : i + 3]) for i in range(0, len(cells), 3))
    # Registers from a CPU's NT_PRSTATUS alone (a user_pt_regs) have no orig_x0 and
    # syscallno: the line leaves them out rather than print a value nobody read.
    tail = []
    if "orig_x0" in regs and "syscallno" in regs:
        # An s32 (NO_SYSCALL is -1) that crash reads as the 64-bit word it shares with
        # ``unused2`` (0): -1 prints as ffffffff (crash 8.0.6's oracle, cpu1-page-fault).
        syscallno = regs["syscallno"] & 0xFFFFFFFF
        tail += [f"ORIG_X0: {regs['orig_x0']:016x}", f"SYSCALLNO: {syscallno:x}"]
    if user:
        tail.append(f"PSTATE: {regs.get('pstate', 0):08x}")
    if tail:
        out.append("    " + "  ".join(tail))
    return out


def format_stack(st: Stack, source_lines: bool = False, name_of: Any = None) -> str:
    """One task's backtrace as crash prints it.

    Like crash: inlined calls are not numbered frames (they are shown with
    ``-l`` as source lines of their frame), each frame's address in brackets
    is the stack slot holding its return address, and an exception frame is
    printed as ``[exception RIP: func+off]`` with its registers.
    """
    comm = visible(st.comm)
    out = [f'PID: {st.pid:<8} TASK: {st.task or 0:x}  CPU: {st.cpu:<4} COMMAND: "{comm}"']
    n = 0
    pending_inline: list[Frame] = []
    prev_stack: str | None = None
    for fr in st.frames:
        if fr.inlined:
            pending_inline.append(fr)
            continue
        # Leaving an IRQ/NMI/exception stack: crash prints a separator line.
        switch = prev_stack not in (None, "TASK") and fr.stack != prev_stack
        sep = f"--- <{_STACK_NAMES.get(prev_stack or '', 'exception')} stack> ---"
        prev_stack = fr.stack
        if fr.regs is not None and _is_arm64_regs(fr.regs):
            # arm64: crash prints the saved registers after the entry vector's
            # frame (el1h_64_sync …), then the interrupted function as a frame.
            out.extend(_arm64_register_lines(fr.regs, name_of or (lambda a: None)))
        if fr.regs is not None and not _is_arm64_regs(fr.regs):
            out.append(f"    [exception RIP: {visible(_crash_symbol(fr))}]")
            out.extend(_register_lines(fr.regs))
            if switch:
                out.append(sep)
        else:
            if switch:
                out.append(sep)
            mod = f" [{visible(fr.module)}]" if fr.module else ""
            sp = f"{fr.sp - 8:016x}" if fr.sp is not None else "?" * 16
            address = fr.address or 0
            if fr.fp is not None:
                # arm64, as crash prints it: the frame record's address, and for a return
                # address the branch-and-link before it (pc - 4)
                sp = f"{fr.fp:016x}"
                # (the first frame and an exception's pc are where the CPU was: exact)
                address -= 0 if fr.regs is not None or n == 0 else 4
            name = visible(fr.function or "??")
            out.append(f"{'#' + str(n):>3} [{sp}] {name} at {address:x}{mod}")
            n += 1
        if source_lines:
            for f in [*pending_inline, fr]:
                if f.source:
                    file, _, line = f.source.rpartition(":")
                    where = f" (inlined {f.function})" if f.inlined else ""
                    out.append(f"    {file}: {line}{where}")
        pending_inline = []
    if st.user_regs and _is_arm64_regs(st.user_regs):
        out.extend(_arm64_register_lines(st.user_regs, name_of, user=True))
    elif st.user_regs:
        out.extend(_register_lines(st.user_regs))
    if st.error:
        out.append(f"    (unwinding stopped: {st.error})")
    return "\n".join(out)


def _print_crashed_cpu(prog: Program, as_json: bool) -> None:
    """The panicking CPU's stack from its saved registers when its task is unreachable
    (no vmlinux and no per-CPU data): frames only, under a header that says so."""
    from ..facts.stacks import crashed_cpu_stack

    try:
        st = crashed_cpu_stack(prog)
    except (ValueError, LookupError, drgn.FaultError):
        return
    if as_json:
        print_json(st)
        return
    st.comm, st.pid, st.cpu, st.task = "", 0, 0, 0
    lines = format_stack(st, False, _symbol_namer(prog)).splitlines()[1:]
    print("\n".join(["PANIC CPU (saved registers; its task is not reachable):", *lines]))


def _symbol_namer(prog: Program) -> Any:
    """``func+off`` (decimal) of a kernel text address, as crash names PC and LR."""

    def name_of(addr: int) -> str | None:
        try:
            sym = prog.symbol(addr)
        except LookupError:
            return None
        off = addr - sym.address
        return f"{sym.name}+{off}" if off else sym.name

    return name_of


def _crash_symbol(fr: Frame) -> str:
    """``func+off`` in decimal, as crash prints the exception RIP."""
    if fr.function is None:
        return f"{fr.address or 0:x}"
    return f"{fr.function}+{fr.offset}" if fr.offset is not None else fr.function


@kcrash_command(
    description="backtrace (crash's bt)",
    arguments=(
        argument("-a", dest="all_cpus", action="store_true", help="active task of every CPU"),
        argument("-l", dest="lines", action="store_true", help="show source file and line"),
        argument("pid", nargs="*", type=int, help="task PID(s); default: the panic task"),
        JSON_ARG,
    ),
)
def _kcrash_cmd_bt(prog: Program, name: str, args: argparse.Namespace, **kwargs: Any) -> None:
    target = target_of(prog)
    if args.lines and target.mode != "dwarf":
        from ..errors import DebuginfoNotFoundError

        raise DebuginfoNotFoundError(f"bt -l needs source lines: {target.missing_debuginfo}")
    tasks: list[drgn.Object] = []
    if args.all_cpus:
        # Present, not online: panic() stops the other CPUs (stop_this_cpu()
        # marks them offline) before QEMU takes its dump, yet their last task
        # is what crash's bt -a shows, and what a lockup needs.
        tasks = [cpu_curr(prog, cpu) for cpu in for_each_present_cpu(prog)]
    elif args.pid:
        for pid in args.pid:
            t = find_task(prog, pid)
            if not t:
                raise KcrashError(f"bt: no task with PID {pid}")
            tasks.append(t)
    else:
        # `set PID` in the shell stores the context task where drgn's crash
        # commands keep it; without one, the panic task, as in crash.
        t = prog.config.get("crash_context") or panic_task(prog)
        if t is None and target.dump.container in ("kcore", "qmp"):
            raise KcrashError("bt: a running kernel has no panic task; give a PID or -a")
        if t is None:  # a dump always has one: its CPU state notes are damaged
            try:
                prog.crashed_thread()
                why: BaseException = ValueError("no crashed thread")
            except Exception as e:
                why = e
            unreadable(target, "bt: the panic task (give a PID or -a)", why)
            if target.mode != "dwarf":
                _print_crashed_cpu(prog, args.json)
            return
        tasks = [t]
    stacks = [task_stack(target, t) for t in tasks]
    if args.lines:  # source lines of module frames need those modules' DWARF
        mods = {f.module for st in stacks for f in st.frames if f.module}
        if target.load_module_debuginfo(mods) != sorted(mods):
            stacks = [task_stack(target, t) for t in tasks]
    if args.json:
        print_json(stacks if len(stacks) > 1 or args.all_cpus else stacks[0])
        return
    namer = _symbol_namer(prog)
    print("\n\n".join(format_stack(s, args.lines, namer) for s in stacks))
