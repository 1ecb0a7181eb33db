"""No-debuginfo mode on every corpus dump, compared with the DWARF run.

Issue 5's "done when": with the vmlinux hidden, the same tasks, the same
log, the same stacks (frame for frame: the same PCs) and the same release as
drgn with the matching vmlinux; crash's own ``bt`` (the oracle) agrees with
our panic stack; drgn's crash-compatible commands run unchanged; and the
last-resort kallsyms-only mode (no BTF) still gives the log and the
panicking CPU's stack.  The corpus must exist: these tests fail, never skip.
"""

from __future__ import annotations

import contextlib
import glob
import io
import re
from collections.abc import Iterator
from functools import cache
from typing import Any

import drgn
import pytest
from checks import is_arm64, platform
from drgn.helpers.linux.pid import find_task, for_each_task
from drgn.helpers.linux.printk import get_dmesg, get_printk_records

from kcrash.target import nodebug
from kcrash.target.vmcoreinfo_log import read_log

KERNEL_SPACE = 1 << 63


@cache
def _dwarf(path: str, vmlinux: str, modules_dir: str | None, arm64: bool) -> drgn.Program:
    prog = drgn.Program(platform({"arch": "arm64" if arm64 else None}))
    prog.set_core_dump(path)
    kos = glob.glob(f"{modules_dir}/**/*.ko*", recursive=True) if modules_dir else []
    prog.load_debug_info([vmlinux, *kos], default=False)
    return prog


def dwarf(e: dict[str, Any]) -> drgn.Program:
    return _dwarf(e["path"], e["vmlinux"], e.get("modules_debug_dir"), is_arm64(e))


@cache
def _nodebug(
    path: str, release: str | None, use_btf: bool, arm64: bool
) -> tuple[drgn.Program, Any]:
    # QEMU-made dumps leave the architecture empty: give the platform.
    prog = drgn.Program(platform({"arch": "arm64" if arm64 else None}))
    prog.set_core_dump(path)
    setup = nodebug.attach(prog, release, use_btf=use_btf, path=path)
    return prog, setup


@pytest.fixture(scope="module", autouse=True)
def _release_programs() -> Iterator[None]:
    """Drop the opened dumps when the module ends: the DWARF ones hold gigabytes, which the
    next test files of this worker need."""
    yield
    _dwarf.cache_clear()
    _nodebug.cache_clear()
    _target.cache_clear()


def nodebug_prog(e: dict[str, Any], use_btf: bool = True) -> tuple[drgn.Program, Any]:
    """The dump opened without DWARF, once per dump and mode for the module (as ``dwarf``):
    every test here only reads it, and attaching costs about 0.5 s CPU, which ten tests
    over every dump made 5 min."""
    return _nodebug(e["path"], e.get("release"), use_btf, is_arm64(e))


def kernel_pcs(trace: drgn.StackTrace) -> list[int]:
    """PCs of the real (non-inline) frames up to the first user-space one."""
    out = []
    for f in trace:
        if f.is_inline:
            continue
        if f.pc < KERNEL_SPACE:
            break
        out.append(f.pc)
    return out


def names(prog: drgn.Program, pcs: list[int], first_exact: bool = True) -> list[str]:
    out = []
    for i, pc in enumerate(pcs):
        try:
            out.append(prog.symbol(pc if (i == 0 and first_exact) else pc - 1).name)
        except LookupError:
            out.append(hex(pc))
    return out


def test_btf_mode_on_every_dump(corpus: list[dict[str, Any]]) -> None:
    for e in corpus:
        _prog, setup = nodebug_prog(e)
        assert setup.mode == "btf", (e["id"], setup.lacks)
        assert any("no source lines" in s for s in setup.lacks)
        assert any(f"linux-image-{e['release']}-dbg" in s for s in setup.lacks)


def test_release_tasks_and_log_match_dwarf(corpus: list[dict[str, Any]]) -> None:
    for e in corpus:
        d = dwarf(e)
        prog, _ = nodebug_prog(e)
        release = prog["init_uts_ns"].name.release.string_().decode()
        assert release == e["release"], e["id"]
        assert release == d["init_uts_ns"].name.release.string_().decode()

        def tasks(p: drgn.Program) -> list[tuple[int, bytes, int]]:
            return sorted((t.pid.value_(), t.comm.string_(), t.value_()) for t in for_each_task(p))

        assert tasks(prog) == tasks(d), e["id"]
        assert get_dmesg(prog) == get_dmesg(d), e["id"]


def _kcrash_stack(e: dict[str, Any], dwarf_mode: bool, pid: int | None = None) -> list[Any]:
    """kcrash's own stack facts of a task (the panic task by default) in one mode."""
    from kcrash.facts.stacks import crashed_cpu_stack, panic_task, task_stack

    t = _target(e["path"], e["vmlinux"] if dwarf_mode else None)
    if pid is None:
        task = panic_task(t.prog)
        st = task_stack(t, task) if task is not None else crashed_cpu_stack(t.prog)
    else:
        st = task_stack(t, find_task(t.prog, pid))
    return [f for f in st.frames if not f.inlined]


@cache
def _target(path: str, vmlinux: str | None) -> Any:
    from kcrash.target.open import open_target

    return open_target(path, vmlinux, no_debuginfo=vmlinux is None)


def test_arm64_stacks_match_dwarf(corpus: list[dict[str, Any]]) -> None:
    """arm64 (frame records, no ORC): kcrash's panic stack and every task's stack without
    vmlinux have the same frames (address, function, module) and the same exception
    registers as with DWARF. Without CONFIG_KALLSYMS_ALL (Debian's arm64) the panic
    task is not reachable (no per-CPU data): its CPU's saved registers start the stack."""
    arm = [e for e in corpus if is_arm64(e)]
    assert arm, "the corpus has no arm64 dump"
    for e in arm:
        want = _kcrash_stack(e, True)
        got = _kcrash_stack(e, False)
        key = [(f.address, f.function, f.module, f.regs) for f in got]
        assert key == [(f.address, f.function, f.module, f.regs) for f in want], e["id"]
        assert len(got) >= 5, e["id"]
        if e["expected"]["class"] == "null-deref":  # an oops: its exception frame's registers
            assert any(f.regs for f in got), e["id"]
        d = dwarf(e)
        prog, _ = nodebug_prog(e)
        assert sorted(t.pid.value_() for t in for_each_task(prog)) == sorted(
            t.pid.value_() for t in for_each_task(d)
        ), e["id"]
        for task in list(for_each_task(prog))[:40]:
            pid = task.pid.value_()
            if pid == 0:
                continue
            ours = [(f.address, f.function, f.module) for f in _kcrash_stack(e, False, pid)]
            theirs = [(f.address, f.function, f.module) for f in _kcrash_stack(e, True, pid)]
            assert ours == theirs, (e["id"], pid)


def test_stacks_match_dwarf(corpus: list[dict[str, Any]]) -> None:
    """The panic stack and every task's stack: the same PCs as with DWARF (x86-64, ORC:
    arm64 in test_arm64_stacks_match_dwarf)."""
    for e in corpus:
        if is_arm64(e):
            continue
        d = dwarf(e)
        prog, _ = nodebug_prog(e)
        want = kernel_pcs(d.crashed_thread().stack_trace())
        got = kernel_pcs(nodebug.stack_trace(prog, None))
        assert got == want, (e["id"], names(prog, got), names(prog, want))
        assert len(got) >= 5, e["id"]
        dtasks = {t.pid.value_(): t for t in for_each_task(d)}
        for task in for_each_task(prog):
            pid = task.pid.value_()
            want = kernel_pcs(d.stack_trace(dtasks[pid]))
            got = kernel_pcs(nodebug.stack_trace(prog, task))
            assert got == want, (e["id"], pid, names(prog, got), names(prog, want))


_BT_FRAME = re.compile(r"^\s*#\d+ \[[0-9a-f]+\] (\S+) at [0-9a-f]+")
_BT_EXC = re.compile(r"\[exception RIP: ([^+\]]+)")


def crash_bt_functions(text: str) -> list[str]:
    """Function names of crash's ``bt`` in order, the exception RIP included."""
    out = []
    for line in text.splitlines():
        m = _BT_FRAME.match(line) or _BT_EXC.search(line)
        if m:
            out.append(m.group(1))
    return out


def is_subsequence(small: list[str], big: list[str]) -> bool:
    it = iter(big)
    return all(any(x == y for y in it) for x in small)


def test_panic_stack_agrees_with_crash_oracle(corpus: list[dict[str, Any]]) -> None:
    """Our panic stack agrees with crash's ``bt``: the functions both show come
    in the same order, crash's exception RIP and the culprit are ours too.

    crash adds frames we do not (kexec frames before the exception, stale
    return addresses it cannot tell from real ones) and, on QEMU-made dumps,
    starts at ``panic`` where the saved registers are deeper (pvpanic).
    """
    for e in corpus:
        with open(e["oracle"]["bt"]) as f:
            text = f.read()
        crash = crash_bt_functions(text)
        if is_arm64(e):
            _arm64_agrees_with_crash(e, text, crash)
            continue
        prog, _ = nodebug_prog(e)
        ours = names(prog, kernel_pcs(nodebug.stack_trace(prog, None)))
        common = [fn for fn in ours if fn in crash]
        # At least 5 frames in common; all of crash's when its stack is shorter (khungtaskd's
        # panic on a QEMU dump: panic, watchdog, kthread, ret_from_fork).
        enough = min(5, len(crash))
        assert len(common) >= enough and is_subsequence(common, crash), (e["id"], ours, crash)
        exc = _BT_EXC.search(text)
        # crash 8.0 misreads the IRQ-stack exception frame of a soft lockup
        # ("no symbolic reference ... possibly bogus exception frame").
        if exc and "possibly bogus" not in text:
            assert exc.group(1) in ours, (e["id"], exc.group(1), ours)
            # ... and its registers are an exception frame of ours, as in crash.
            rip = int(re.search(r"RIP: ([0-9a-f]+)", text[exc.end() :]).group(1), 16)
            frames = nodebug.exception_frames(prog)
            assert any(regs and regs["rip"] == rip for _pc, _sp, regs in frames), e["id"]
        culprit = e.get("expected", {}).get("culprit_function")
        if culprit and culprit in crash:  # a hung task's culprit is elsewhere
            assert culprit in ours, (e["id"], culprit, ours)


#: crash's arm64 exception frame: "     PC: ffff800000e20024  [kcrash_get_refcount+36]".
_ARM64_PC = re.compile(r"^\s+PC: ([0-9a-f]{16})  \[([^+\]]+)", re.M)


def _arm64_agrees_with_crash(e: dict[str, Any], text: str, crash: list[str]) -> None:
    """arm64: our panic stack without vmlinux has crash's frames in order (at least 5 in
    common) and every exception PC crash prints is an exception frame of ours."""
    frames = _kcrash_stack(e, False)
    ours = [f.function for f in frames if f.address and f.address >> 63]
    common = [fn for fn in ours if fn in crash]
    enough = min(5, len(crash))
    assert len(common) >= enough and is_subsequence(common, crash), (e["id"], ours, crash)
    for m in _ARM64_PC.finditer(text):
        pc = int(m.group(1), 16)
        if pc >> 63:
            assert any(f.regs and f.regs.get("pc") == pc for f in frames), (e["id"], m.group(2))
    culprit = e.get("expected", {}).get("culprit_function")
    if culprit and culprit in crash:
        assert culprit in ours, (e["id"], culprit, ours)


def test_modules_match_dwarf(corpus: list[dict[str, Any]]) -> None:
    for e in corpus:
        d = dwarf(e)
        prog, _ = nodebug_prog(e)

        def mods(p: drgn.Program) -> list[tuple[str, Any]]:
            return sorted((m.name, m.address_ranges) for m in p.modules() if m.name != "kernel")

        if is_arm64(e) and not mods(prog):
            # arm64 without CONFIG_KALLSYMS_ALL: the list is found from a module frame on a
            # CPU's stack; a dump with none (sysrq) has no module list without vmlinux
            assert e["expected"]["culprit_module"] == "vmlinux", e["id"]
            continue
        assert mods(prog) == mods(d), e["id"]
        # Module frames are named from the modules' own kallsyms.
        culprit = e.get("expected", {}).get("culprit_module")
        if culprit and culprit != "vmlinux":
            assert any(m.name == culprit for m in prog.modules()), (e["id"], culprit)


def _run(prog: drgn.Program, cmd: str) -> str:
    from drgn.commands._crash import CRASH_COMMAND_NAMESPACE

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        CRASH_COMMAND_NAMESPACE.run(prog, cmd)
    return buf.getvalue()


def test_drgn_crash_commands_run_unchanged(corpus: list[dict[str, Any]]) -> None:
    """drgn's crash-compatible ``log`` and ``ps`` print exactly what they print
    with DWARF; ``sys`` differs only in the KERNEL line; ``bt`` only by the
    inline frames DWARF adds. x86-64 only: on Debian's arm64 kernels (no
    CONFIG_KALLSYMS_ALL) the per-CPU data drgn's ``ps`` and ``sys`` read are not found
    without vmlinux; kcrash's own commands are compared in test_nodebug_commands.py."""
    for e in [x for x in corpus if not is_arm64(x)][:2]:
        d = dwarf(e)
        prog, _ = nodebug_prog(e)
        for cmd in ("log", "ps"):
            assert _run(prog, cmd) == _run(d, cmd), (e["id"], cmd)
        ours = [ln for ln in _run(prog, "sys").splitlines() if "KERNEL:" not in ln]
        theirs = [ln for ln in _run(d, "sys").splitlines() if "KERNEL:" not in ln]
        assert ours == theirs, e["id"]
        bt = _run(prog, "bt")
        assert "(inline)" not in bt
        for line in _run(d, "bt").splitlines():
            m = re.search(r"\] (\S+) at ([0-9a-f]+)", line)
            if m:
                assert m.group(2) in bt, (e["id"], line)


def test_vmcoreinfo_log_matches_printk_records(corpus: list[dict[str, Any]]) -> None:
    for e in corpus:
        if e["scenario"] == "log-full":
            # Checked against crash's `log` line for line below instead: drgn 0.3.0 misreads
            # its one data block that wraps the ring (it returns the block's 8-byte id word
            # as text, https://github.com/osandov/drgn/pull/635), and its helper takes
            # ~30 s over the ring's 650,000 records.
            continue
        d = dwarf(e)
        prog, _ = nodebug_prog(e, use_btf=False)
        want = [
            (r.seq, r.text.decode("utf-8", "replace"), r.timestamp, r.level)
            for r in get_printk_records(d)
        ]
        got = [
            (ln.seq, ln.text, round((ln.timestamp or 0) * 1e9), ln.level) for ln in read_log(prog)
        ]
        assert len(got) > 100, e["id"]
        assert got == want, e["id"]
        # The facts' shape (one entry per line, later lines "continued").
        from kcrash.facts.log import log_lines

        assert nodebug.log_lines(prog) == log_lines(d), e["id"]


def test_full_log_keeps_the_record_that_wraps(corpus: list[dict[str, Any]]) -> None:
    """A ring that filled has one data block across the end of its first lap, with its
    positions across 2**64 (they start at -size): read as crash reads it, in every mode."""
    entries = [e for e in corpus if e["scenario"] == "log-full"]
    assert entries, "the corpus has no log-full dump (build 'deb12/log-full/*')"
    for e in entries:
        prog, _ = nodebug_prog(e, use_btf=False)
        ours = [ln.text for ln in nodebug.log_lines(prog)]
        crash, width = [], 0
        with open(e["oracle"]["log"], encoding="utf-8", errors="replace") as f:
            for ln in f:
                ln = ln.rstrip("\n")
                if ln.startswith("["):  # "[   45.619498] text"
                    width = ln.index("] ") + 2
                crash.append(ln[width:])  # a record's later lines: indented as deep
        assert len(ours) == len(crash), e["id"]
        assert ours == crash, e["id"]


def test_kallsyms_only_mode(corpus: list[dict[str, Any]]) -> None:
    """Neither DWARF nor BTF: the mode says so, and the panicking CPU's stack
    (ORC over the in-memory tables from its NT_PRSTATUS registers) has the
    DWARF run's PCs; module frames are addresses (no module symbols)."""
    for e in corpus:
        d = dwarf(e)
        prog, setup = nodebug_prog(e, use_btf=False)
        assert setup.mode == "kallsyms", e["id"]
        assert any("no types" in s for s in setup.lacks)
        frames = nodebug.exception_frames(prog)
        got = [pc for pc, _sp, _regs in frames if pc >= KERNEL_SPACE]
        if is_arm64(e):
            # frame records from the panic CPU's NT_PRSTATUS, as kcrash unwinds with DWARF
            # (a module's leaf function has no symbol here, so its caller, found from lr
            # only by comparing functions, may be missing: only such frames)
            full = [f for f in _kcrash_stack(e, True) if f.address >> 63]
            want = [f.address for f in full]
            assert is_subsequence(got, want), (e["id"], names(d, got), names(d, want))
            missing = [f for f in full if f.address not in got]
            assert all(f.module and f.module != "vmlinux" for f in missing), missing
            if e["expected"]["class"] != "hung-task":  # khungtaskd: a kernel thread panics
                # a task that entered the kernel by a system call: its user-mode pt_regs
                assert any(regs and not regs["pc"] >> 63 for _pc, _sp, regs in frames), e["id"]
            continue
        want = kernel_pcs(d.crashed_thread().stack_trace())
        assert got == want, (e["id"], names(d, got), names(d, want))
        # The user-mode pt_regs at a system call entry is an exception frame.
        if any(f.pc < KERNEL_SPACE for f in d.crashed_thread().stack_trace()):
            assert any(regs and regs["rip"] < KERNEL_SPACE for _pc, _sp, regs in frames)
        trace = nodebug.stack_trace(prog)
        assert [f.pc for f in trace][: len(want)] == want


def test_kallsyms_found_without_vmcoreinfo_help(
    corpus: list[dict[str, Any]], tmp_path: Any, monkeypatch: Any
) -> None:
    """Kernels before 6.0 do not export the kallsyms tables in VMCOREINFO;
    the scan of the image must find the very tables VMCOREINFO names (an
    empty cache, so the scan runs), and the build-id cache then finds them. x86-64's
    layout (the relative base is ``_stext``): the arm64 kernels here are 6.x, whose
    VMCOREINFO locates the tables."""
    from kcrash.target import kallsyms

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    seen = set()
    for e in corpus:
        if e["kernel"] in seen or is_arm64(e):
            continue
        seen.add(e["kernel"])
        prog = drgn.Program(drgn.host_platform)
        prog.set_core_dump(e["path"])
        info = prog["VMCOREINFO"].string_().decode()
        found = kallsyms.locate_tables(prog, info)
        assert found is not None, e["id"]
        got = sorted((s.name, s.address) for s in found(prog, None, None, False))
        if kallsyms.has_builtin_kallsyms(info):
            ref = kallsyms.load_core(prog)
            assert got == sorted((s.name, s.address) for s in ref(prog, None, None, False))
        want = dwarf(e).symbol("init_task").address
        assert dict(got)["init_task"] == want, e["id"]
        assert list((tmp_path / "kcrash" / "kallsyms").glob("*.json")), "not cached"
        again = kallsyms.locate_tables(prog, info)
        assert again is not None
        assert sorted((s.name, s.address) for s in again(prog, None, None, False)) == got


def test_module_private_types_from_module_btf(corpus: list[dict[str, Any]]) -> None:
    """Types defined only in modules come from the modules' BTF (5.11+: through ``btf_idr``,
    or, on Debian's arm64 whose kallsyms lacks that data symbol, through each module's
    ``/sys/kernel/btf/<module>`` node) and match the module's DWARF."""
    from kcrash.target.globals import parse_version

    seen = set()
    arches: set[bool] = set()
    for e in corpus:
        if e["kernel"] in seen or e.get("capture") != "kdump":
            continue
        seen.add(e["kernel"])
        if (parse_version(e["release"]) or (0, 0)) < (5, 11):
            continue
        d = dwarf(e)
        prog, _ = nodebug_prog(e)
        checked = 0
        for name in ("struct p9_client", "struct vring_virtqueue", "struct fw_cfg_sysfs_entry"):
            try:
                want = d.type(name)
            except LookupError:
                continue
            got = prog.type(name)
            assert drgn.sizeof(got) == drgn.sizeof(want), (e["id"], name)
            assert [(m.name, m.bit_offset) for m in got.members] == [
                (m.name, m.bit_offset) for m in want.members
            ], (e["id"], name)
            checked += 1
        assert checked >= 2, e["id"]
        arches.add(is_arm64(e))
    assert arches == {True, False}, "module BTF was not checked on both x86-64 and arm64"


def test_our_orc_unwinder_agrees_with_drgn(corpus: list[dict[str, Any]]) -> None:
    """kcrash.target.orc (used without BTF and for the stacks drgn gets
    wrong) gives the same PCs as drgn's unwinder for every task, through
    module code (ORC from ``struct module``) and exception frames. x86-64 (ORC); arm64's
    frame records in test_fp_unwinder_agrees_with_drgn_dwarf."""
    seen = set()
    for e in corpus:
        key = (e["kernel"], e["scenario"])
        if key in seen or is_arm64(e):
            continue
        seen.add(key)
        prog, _ = nodebug_prog(e)
        for task in for_each_task(prog):
            trace = nodebug.stack_trace(prog, task)
            want = kernel_pcs(trace)
            first = prog.stack_trace(task)[0]
            frames = nodebug.unwind_registers(prog, first.registers(), first.interrupted)
            got = [f.pc for f in frames if f.pc >= KERNEL_SPACE]
            assert got == want, (e["id"], task.pid.value_(), names(prog, got), names(prog, want))


def test_fp_unwinder_agrees_with_drgn_dwarf(corpus: list[dict[str, Any]]) -> None:
    """arm64: kcrash.target.fpunwind, from a sleeping task's saved context (drgn's
    first frame), gives the PCs drgn's DWARF (CFI) unwinder gives, without vmlinux:
    frame records and PAC-stripped return addresses (QEMU -cpu max signs them)."""
    arm = [e for e in corpus if is_arm64(e)]
    assert arm, "the corpus has no arm64 dump"
    for e in arm:
        d = dwarf(e)
        prog, _ = nodebug_prog(e)
        checked = 0
        for task in for_each_task(prog):
            pid = task.pid.value_()
            if pid == 0 or task.on_cpu.value_():
                continue
            first = prog.stack_trace(task)[0]
            frames = nodebug.unwind_registers(
                prog, nodebug.frame_registers(first), first.interrupted
            )
            got = [f.pc for f in frames if f.pc >= KERNEL_SPACE]
            want = kernel_pcs(d.stack_trace(find_task(d, pid)))
            assert got == want, (e["id"], pid, names(prog, got), names(d, want))
            checked += 1
        assert checked >= 10, e["id"]


def test_arm64_return_addresses_carry_pac_and_are_stripped(corpus: list[dict[str, Any]]) -> None:
    """QEMU -cpu max signs return addresses (FEAT_PAuth, CONFIG_ARM64_PTR_AUTH_KERNEL): the lr
    saved in the panic CPU's frame records has a PAC in bits 63..48 (VMCOREINFO's
    KERNELPACMASK); stripped, it is the frame's pc and kallsyms names it."""
    import struct

    from kcrash.target.fpunwind import strip_pac

    arm = [e for e in corpus if is_arm64(e)]
    assert arm, "the corpus has no arm64 dump"
    for e in arm:
        prog, _ = nodebug_prog(e)
        mask = nodebug.fp_unwinder(prog).mask
        assert mask == 0xFFFF000000000000, hex(mask)  # 48-bit VA
        frames = nodebug.crashed_cpu_frames(prog)
        pcs = {f.pc for f in frames}
        signed = 0
        for f in frames:
            if not (f.bp and f.bp >> 63):
                continue
            _fp, lr = struct.unpack("<QQ", prog.read(f.bp, 16))
            if lr and lr & mask != mask:
                signed += 1
                assert strip_pac(lr, mask) in pcs, (e["id"], hex(lr))
                prog.symbol(strip_pac(lr, mask) - 1)  # named by kallsyms
        # every frame record's lr but the outermost (ret_from_fork's, or the one at the
        # entry from user mode); a kernel thread's stack (khungtaskd) has only 4
        assert signed >= min(5, len(frames) - 1), (e["id"], signed)
