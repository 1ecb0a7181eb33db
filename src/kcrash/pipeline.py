"""The ``analyze`` pipeline: target -> facts -> diagnosis -> report dict.

Each fact is gathered in its own time-bounded step (:mod:`kcrash.steps`), so a
corrupt structure costs one section of the report, never the report.  Only
what the verdict needs is read: the log, the panic task's stack, the module
list, and — depending on the crash class — other CPUs' stacks (lockups,
stalls), blocked tasks (sysrq, hung tasks) or the memory summary (OOM).
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict
from itertools import islice
from typing import Any

from .errors import NotADumpError
from .model import CrashFacts, IoRequest, Stack
from .notes import Note
from .steps import Steps, time_limit

#: Opening a dump reads headers and indexes debuginfo: seconds normally.
OPEN_SECONDS = 120
#: D-state tasks whose stacks the report shows (the blocked-tasks context of a class).
BLOCKED_SHOWN = 32
BLOCKED_SECONDS = 8.0


def _inspect_or_text(path: str) -> Any:
    """The dump's headers, or None when ``path`` is log text (``-``, not a dump)."""
    if path == "-":
        return None
    from .target.dumpfile import inspect

    try:
        return inspect(path)
    except NotADumpError:
        if _has_dump_signature(path):  # a damaged dump, not a log: say what is wrong with it
            raise
        return None


def _has_dump_signature(path: str) -> bool:
    from .inputs import open_regular
    from .target.dumpfile import FLAT_SIGNATURE, KDUMP_SIGNATURES

    with open_regular(path) as f:
        magic = f.read(16)
    return (
        magic[:8] in KDUMP_SIGNATURES
        or magic.startswith(FLAT_SIGNATURE)
        or (magic[:4] == b"\x7fELF" and magic[4:5] == b"\x02")  # an ELF64 core or vmlinux
    )


def vmcore_facts(target: Any, steps: Steps) -> CrashFacts:
    """Read the facts the diagnosis needs from an opened target."""
    from .facts import log as flog
    from .facts.modules import loaded_modules
    from .facts.stacks import panic_task, task_stack
    from .facts.system import system_info
    from .oops.text import events_from_log

    prog = target.prog
    facts = CrashFacts(source="vmcore", mode=target.mode, lacks=list(target.lacks))

    tail = steps.run("log", lambda: flog.target_log_tail(target))
    facts.log, left_out = tail if tail is not None else ([], 0)
    if left_out:
        facts.lacks.append(Note("lack.log_tail", left=left_out, mb=flog.ANALYZE_LOG_BYTES >> 20))
    facts.events = steps.run("events", lambda: events_from_log(facts.log)) or []
    steps.run("code bytes", lambda: fill_code_from_memory(prog, facts.events))
    steps.run("noreturn callers", lambda: name_noreturn_callers(prog, facts.events))
    if target.mode != "kallsyms":
        facts.system = steps.run("system", lambda: system_info(target, facts.log)) or facts.system
        # Module DWARF only for the modules the crash report involves.
        steps.run(
            "module debuginfo", lambda: target.load_module_debuginfo(_event_modules(facts.events))
        )
        task = steps.run("panic task", lambda: panic_task(prog))
        if task is not None:
            facts.panic_stack = steps.run("panic stack", lambda: task_stack(target, task))
        elif target.mode == "btf":
            # no way to the panic task (no per-CPU data: kallsyms of code only): the
            # crashed CPU's stack from its saved registers, as in the kallsyms mode
            from .facts.stacks import crashed_cpu_stack

            facts.panic_stack = steps.run("panic stack", lambda: crashed_cpu_stack(prog))
        facts.modules = steps.run("modules", lambda: loaded_modules(prog)) or []
    else:
        from .facts.panic import panic_message
        from .facts.stacks import crashed_cpu_stack

        # no task_struct without types: the CPU's registers
        facts.panic_stack = steps.run("panic stack", lambda: crashed_cpu_stack(prog))
        facts.system.release = target.dump.release
        facts.system.panic = panic_message(facts.log)
        facts.system.dumpfile = target.dump.path
        steps.skip("system", Note("step.no_types"))
    return facts


def name_noreturn_callers(prog: Any, events: list[Any]) -> int:
    """Rename the ``f+0x0/…`` frames of an arm64 ``Call trace:`` after the dump's symbols.

    arm64's dump_backtrace() prints each return address as it is (``%pSb``, v5.x-6.x).
    After a call to a noreturn function that ends its caller (``panic()`` at the end
    of ``sysrq_handle_crash``), the return address is the first byte of the *next*
    function, so the log names that one at offset 0 (``sysrq_reset_seq_param_set+0x0``).
    The caller is the function holding the ``bl`` just before: named from the dump.
    """
    from .target.nodebug import is_arm64

    if not is_arm64(prog):
        return 0
    fixed = 0
    for ev in events:
        for i, fr in enumerate(ev.call_trace):
            if i == 0 or fr.offset != 0 or not fr.function or fr.regs:
                continue
            try:
                start = prog.symbol(fr.function).address
                sym = prog.symbol(start - 4)
            except (LookupError, ValueError):
                continue
            fr.function, fr.offset, fr.size = sym.name, start - sym.address, sym.size
            fixed += 1
    return fixed


def fill_code_from_memory(prog: Any, events: list[Any]) -> int:
    """Give oops events the ``Code:`` bytes the kernel could not print.

    The oops printer reads the 42 bytes before RIP; when they are on an
    unmapped page (module code at the start of its allocation) it prints
    "Unable to access opcode bytes" and the log has no code.  The dump has
    the bytes at RIP itself, so we read from RIP on (the faulting
    instruction first) and mark index 0 as the faulting byte.
    """
    import drgn

    filled = 0
    for ev in events:
        if ev.code or ev.rip is None:
            continue
        rip = ev.rip.address
        if rip is None and ev.rip.function and ev.rip.offset is not None:
            try:  # "RIP: 0010:func+0x5/0x10 [mod]" carries no address: resolve it
                rip = prog.symbol(ev.rip.function).address + ev.rip.offset
            except (LookupError, ValueError):
                continue
        if rip is None:
            continue
        try:
            ev.code = list(prog.read(rip, 32))
        except (drgn.FaultError, ValueError):
            continue
        ev.code_ip_index = 0
        filled += 1
    return filled


def symbolize_text(
    facts: CrashFacts, diags: list[Any], vmlinux: str, dirs: list[str], steps: Steps
) -> None:
    """``--vmlinux`` for a log: source lines like decode_stacktrace.sh."""
    from .target.symbolizer import open_symbolizer

    modules = sorted({f.module for d in diags for f in d.frames if f.module})
    release = next((e.release for e in facts.events if e.release), facts.system.release)
    prog, missing = open_symbolizer(vmlinux, release, modules, dirs)
    if missing:
        facts.lacks.append(Note("lack.module_debug_file", modules=", ".join(missing)))
    steps.run("source lines", lambda: add_sources(prog, diags), seconds=10)


def add_sources(prog: Any, diags: list[Any]) -> None:
    """Source lines for the call traces and culprits the log gave (DWARF only)."""
    from .facts.symbolize import fill_sources

    for d in diags:
        fill_sources(prog, d.frames)
        c = d.culprit
        if c is not None and c.source is None and c.frame_index is not None:
            c.source = d.frames[c.frame_index].source if c.frame_index < len(d.frames) else None


def _event_modules(events: list[Any]) -> set[str]:
    names = set()
    for ev in events:
        for fr in [ev.rip, *ev.call_trace]:
            if fr is not None and fr.module:
                names.add(fr.module)
    return names


def add_context(target: Any, facts: CrashFacts, cls: str, steps: Steps) -> None:
    """Class-dependent context: other CPUs, blocked tasks, memory (the class's row
    says which: ``Rule.context`` in :mod:`kcrash.crash_classes`)."""
    from .crash_classes import context_of

    if "memory" in context_of(cls) and (target is None or target.mode == "kallsyms"):
        from .facts.memory import memory_from_log

        # No types to walk: what the kernel's own OOM report printed (lacks says so).
        lines = [ln.text for ln in facts.log]
        facts.memory = steps.run("memory", lambda: memory_from_log(lines)) or {}
    if target is None or target.mode == "kallsyms":
        return
    context = context_of(cls)
    from .facts.stacks import task_stack

    prog = target.prog
    if "cpu-stacks" in context:
        from drgn.helpers.linux.cpumask import for_each_present_cpu
        from drgn.helpers.linux.sched import cpu_curr

        # Present, not online: panic() without kdump stops the other CPUs in
        # stop_this_cpu(), which marks each offline, so a QEMU-captured dump's online
        # mask holds the panicking CPU alone (crash's `bt -a` shows them all).
        def cpus() -> list[Stack]:
            return [task_stack(target, cpu_curr(prog, c)) for c in for_each_present_cpu(prog)]

        facts.cpu_stacks = steps.run("cpu stacks", cpus) or []
    if "blocked-tasks" in context:
        from drgn.helpers.linux.pid import for_each_task

        from .facts.tasks import crash_state

        def blocked() -> list[Stack]:
            # The first BLOCKED_SHOWN D-state tasks only, for at most BLOCKED_SECONDS: each
            # stack is an unwind, and a machine can have thousands of them (the waits step
            # counts them all and says how many it left out).
            hung = (t for t in for_each_task(prog) if crash_state(t) == "UN")
            out: list[Stack] = []
            deadline = time.monotonic() + BLOCKED_SECONDS
            for t in islice(hung, BLOCKED_SHOWN):
                out.append(task_stack(target, t))
                if time.monotonic() > deadline:
                    break
            return out

        facts.blocked_tasks = steps.run("blocked tasks", blocked) or []
    if "waits" in context:
        from .facts.waits import STEP_SECONDS, collect_waits

        scan = steps.run("waits", lambda: collect_waits(target), seconds=STEP_SECONDS)
        if scan is not None:
            facts.waits = scan.waits
            note = scan.note()
            if note is not None:
                facts.lacks.append(note)
            from .facts.io import in_flight_requests, tie_waits

            def requests() -> list[IoRequest]:
                got = in_flight_requests(target)
                tie_waits(prog, facts.waits or [], got)
                return got

            facts.io_requests = steps.run("io requests", requests)
    if "memory" in context:
        from .facts.memory import memory_summary

        lines = [ln.text for ln in facts.log]
        facts.memory = steps.run("memory", lambda: memory_summary(prog, lines)) or {}


def add_bad_pointers(target: Any, facts: CrashFacts, diag: Any, steps: Steps) -> None:
    """The fault address and the fault's registers that are poison or slab objects
    (``kmem ADDR`` for each): needs the slab types, so not in the kallsyms mode."""
    if target is None or facts.panic_stack is None:
        return
    exc = next((f for f in facts.panic_stack.frames if f.regs), None)
    fault = diag.evidence.fault_address
    if exc is None and fault is None:
        return
    if target.mode == "kallsyms":  # struct kmem_cache and struct slab are needed
        steps.skip("slab objects", Note("step.no_types"))
        return
    from .facts.slab import bad_pointers

    addr = int(fault, 16) if isinstance(fault, str) else fault
    regs = exc.regs if exc is not None and exc.regs else {}
    facts.bad_pointers = (
        steps.run("slab objects", lambda: bad_pointers(target.prog, regs, addr), seconds=20) or []
    )


def fault_access(target: Any, facts: CrashFacts, steps: Steps) -> dict[str, Any] | None:
    """The faulting instruction's memory operand, and with DWARF what it names:
    ``dev->queue (struct foo_dev, offset 0x74)``.  Decoding needs only the
    dump's memory, so both modes report the instruction, register and value."""
    if target is None or facts.panic_stack is None:
        return None
    from .facts.access import decode_access, name_access

    st = facts.panic_stack
    exc = next((f for f in st.frames if f.regs), None)
    if exc is None or exc.address is None:
        return None

    def run() -> dict[str, Any] | None:
        acc = decode_access(target.prog, exc.address, exc.regs or {})
        if acc is None or target.mode != "dwarf":  # naming needs variable locations
            return asdict(acc) if acc is not None else None
        task = target.prog.crashed_thread().object
        trace = _regs_trace(target.prog, exc.regs or {}) or target.prog.stack_trace(task)
        # drgn lists the inlined frames at one PC first: try each in turn.
        for fr in trace:
            if fr.pc == exc.address:
                name_access(fr, acc)
                if acc.expression:
                    break
        return asdict(acc)

    return steps.run("fault access", run, seconds=10)


def _regs_trace(prog: Any, regs: dict[str, int]) -> Any:
    """drgn's trace from an arm64 exception's saved registers, or None.

    arm64's entry code has no CFI, so drgn's trace of the panic task reaches the
    faulting function through a frame record only, without the registers its
    variables live in; a ``struct pt_regs`` built from the saved registers
    starts drgn's DWARF unwinder there with all of them.
    """
    if "pc" not in regs or "x29" not in regs:
        return None
    import struct

    import drgn

    try:
        typ = prog.type("struct pt_regs")
        names = [f"x{i}" for i in range(31)] + ["sp", "pc", "pstate"]
        data = struct.pack("<34Q", *(regs.get(n, 0) for n in names))
        data += bytes(max(0, typ.size - len(data)))
        return prog.stack_trace(drgn.Object.from_bytes_(prog, typ, data))
    except (LookupError, ValueError, drgn.FaultError):
        return None


def analyze_path(
    path: str,
    vmlinux: str | None = None,
    *,
    lang: str = "en",
    debuginfo_dirs: list[str] | None = None,
    no_debuginfo: bool = False,
    fetch_debuginfo: bool = False,
    limits: Any = None,
) -> dict[str, Any]:
    """Analyze a vmcore or a log file (``-`` = stdin) into a report dict.

    ``limits`` (:class:`kcrash.inputs.ReadLimits`) bound a compressed log.
    """
    from .diagnosis import diagnose
    from .report.build import build_report

    steps = Steps()
    dump = _inspect_or_text(path)
    if dump is None:
        from .oops.text import read_path

        text = read_path(path, limits)  # "-" is stdin; gzip/xz/bz2/zstd logs are streamed
        facts = text.facts
        steps.records.append(_record("read text", 0.0))
        diags = steps.run("diagnose", lambda: diagnose(facts)) or []
        if diags:
            add_context(None, facts, diags[0].class_id, steps)
        if vmlinux is not None and diags:
            symbolize_text(facts, diags, vmlinux, debuginfo_dirs or [], steps)
        info = _input_info(path, facts, None)
        info["format"] = text.format
        info["vmlinux"] = vmlinux
        if not facts.lacks:
            facts.lacks.append(Note("lack.log_only"))
        info["lacks"] = list(facts.lacks)
        return build_report(facts, diags, steps, lang=lang, input_info=info)

    from .target.open import open_target

    if fetch_debuginfo and vmlinux is None and not no_debuginfo:
        from .target.fetch import fetch_debuginfo as fetch

        got = steps.run(
            "fetch debuginfo",
            lambda: fetch(dump.release, dump.build_id, allow_network=True, progress=True),
            seconds=900,
        )
        if got:
            steps.run(
                "fetch module debuginfo",
                lambda: _fetch_modules(path, got, dump.release, dump.build_id),
                seconds=900,
            )
        vmlinux = got or vmlinux

    t0 = time.perf_counter()
    with time_limit(OPEN_SECONDS, f"opening {path}"):
        target = open_target(
            path, vmlinux, debuginfo_dirs=debuginfo_dirs, no_debuginfo=no_debuginfo, dump=dump
        )
    steps.records.append(_record("open", time.perf_counter() - t0))
    return analyze_target(target, lang=lang, steps=steps)


def _fetch_modules(path: str, vmlinux: str, release: str | None, build_id: str | None) -> int:
    """Module debug files for the modules loaded in the dump, next to the vmlinux."""
    from .target.fetch.module_debuginfo import fetch_module_debuginfo, loaded_modules

    def say(msg: str) -> None:
        print(f"kcrash: {msg}", file=sys.stderr)

    mods = loaded_modules(path, vmlinux)
    got = fetch_module_debuginfo(release, build_id, mods, allow_network=True, say=say)
    return len(got)


def analyze_target(target: Any, *, lang: str = "en", steps: Steps | None = None) -> dict[str, Any]:
    """Analyze an already opened target (the shell's ``analyze`` uses this)."""
    from .diagnosis import diagnose
    from .report.build import build_report

    steps = steps or Steps()
    facts = vmcore_facts(target, steps)
    diags = steps.run("diagnose", lambda: diagnose(facts)) or []
    if diags:
        add_context(target, facts, diags[0].class_id, steps)
        add_bad_pointers(target, facts, diags[0], steps)
    access = fault_access(target, facts, steps) if diags else None
    if diags and target.mode == "dwarf":
        steps.run("source lines", lambda: add_sources(target.prog, diags), seconds=10)
    return build_report(
        facts,
        diags,
        steps,
        lang=lang,
        input_info=_input_info(target.dump.path, facts, target),
        access=access,
    )


def _record(name: str, seconds: float) -> Any:
    from .steps import StepRecord

    return StepRecord(name, "ok", seconds)


def _input_info(path: str, facts: CrashFacts, target: Any) -> dict[str, Any]:
    return {
        "path": path,
        "kind": facts.source,
        "format": target.dump.description if target is not None else "text",
        "mode": facts.mode,
        "vmlinux": getattr(target, "vmlinux", None),
        "lacks": list(facts.lacks),
    }


def render_to_string(report: dict[str, Any], fmt: str, color: bool | None = None) -> str:
    """The report in a text format (tests and scripts; tools use ``write_report``)."""
    from .report.render import render_text

    return render_text(report, fmt, color=color)


__all__ = ["analyze_path", "analyze_target", "render_to_string"]
