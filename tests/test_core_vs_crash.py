"""kcrash's ``sys``, ``bt``, ``log``, ``ps``, ``mod`` against the real crash, on every corpus dump.

The oracle is crash's own output saved beside each dump by the corpus
builder.  Where crash 8.0.2 is demonstrably wrong on this kernel, the test
asserts the right value and says why:

- ``TASKS`` and ``ps``: crash 8.0.2 finds only a few tasks on Debian's
  6.1.192 ("active task … not found in PID hash": a backport changed
  ``struct pid.numbers[1]`` to ``numbers[]``); crash 8.0.6 (``ps-trixie``)
  is right and is the oracle for both.
- ``PANIC``: crash prints the ``Oops:`` line "(check log for details)"; the
  real cause is the report header before it (our value must contain the
  panic message the scenario provoked).
- ``bt``: crash 8.0.2 adds stale return addresses found by scanning between
  ``do_syscall_64`` and the syscall entry frame (``do_fault``,
  ``handle_mm_fault``…); ORC proves the real caller of ``do_syscall_64`` is
  the entry code.  Every other frame must match, by address.
- ``bt`` of CPU 0's idle task: crash sometimes drops the frames at the bottom
  of its stack (``arch_call_rest_init``, ``start_kernel``): their return
  addresses point into init text that the kernel freed after boot and
  poisoned with 0xcc, so a check against the dump's memory finds no call
  before them. They are real (ORC unwinds them, and vmlinux has the call):
  every frame we show beyond crash's must follow a call in the kernel's code,
  checked in vmlinux for freed init text (issue 12).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
from typing import Any

import pytest
from capstone import CS_ARCH_ARM64, CS_ARCH_X86, CS_MODE_64, CS_MODE_ARM, Cs
from checks import each, is_arm64
from crash_oracle import (
    parse_bt,
    parse_mod,
    parse_ps,
    parse_sys,
    register_blocks,
)

from kcrash.commands import registry
from kcrash.target.open import open_target

_TARGETS: dict[str, Any] = {}


def _target(entry: dict[str, Any]) -> Any:
    if entry["id"] not in _TARGETS:
        _TARGETS[entry["id"]] = open_target(entry["path"], entry["vmlinux"])
    return _TARGETS[entry["id"]]


def _run(entry: dict[str, Any], line: str) -> str:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        registry.run(_target(entry), line)
    return buf.getvalue()


def _oracle(entry: dict[str, Any], cmd: str) -> str:
    with open(entry["oracle"][cmd], encoding="utf-8", errors="replace") as f:
        return f.read()


def _ps_oracle(e: dict[str, Any]) -> str:
    """crash 8.0.6's ``ps``: ``ps-trixie`` (beside crash 8.0.2's x86 oracle; on a kernel
    whose only oracle is crash 8.0.6 — Debian 13, arm64 — the same session's ``ps``).
    Never 8.0.2's ``ps``, which lists two or three tasks on Debian's 6.1."""
    assert "ps-trixie" in e["oracle"], "no crash 8.0.6 ps (ps-trixie): rebuild its oracle"
    return _oracle(e, "ps-trixie")


def _ids(corpus: list[dict[str, Any]]) -> list[str]:
    return [e["id"] for e in corpus]


@pytest.fixture(scope="module", autouse=True)
def _close_targets() -> Any:
    """Drop the opened dumps at the end: each holds file descriptors."""
    yield
    _TARGETS.clear()


@pytest.fixture(scope="module")
def entries(corpus: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in corpus if e.get("oracle")]


def test_every_dump_has_an_oracle(
    entries: list[dict[str, Any]], corpus: list[dict[str, Any]]
) -> None:
    assert len(entries) == len(corpus)


def test_sys_fields_equal_crash(entries: list[dict[str, Any]]) -> None:
    def check(e: dict[str, Any]) -> None:
        ours = parse_sys(_run(e, "sys"))
        crash = parse_sys(_oracle(e, "sys"))
        for key, value in crash.items():
            if key in ("TASKS", "PANIC"):
                continue
            assert ours.get(key) == value, f"{key}: ours {ours.get(key)!r}, crash {value!r}"
        right_tasks = len(parse_ps(_ps_oracle(e)))
        assert int(ours["TASKS"]) == right_tasks
        assert e["expected"]["panic_substring"] in ours["PANIC"], ours["PANIC"]

    each(entries, check)


def test_sys_json_has_the_seed_fields(entries: list[dict[str, Any]]) -> None:
    data = json.loads(_run(entries[0], "sys --json"))
    for key in (
        "kernel dumpfile cpus date uptime load_average tasks nodename release version "
        "machine memory panic pid command task cpu state"
    ).split():
        assert key in data and data[key] is not None, key


def _subsequence(small: list[int | None], big: list[int | None]) -> bool:
    it = iter(big)
    return all(any(x == y for y in it) for x in small)


_CS = Cs(CS_ARCH_X86, CS_MODE_64)
_CS_ARM64 = Cs(CS_ARCH_ARM64, CS_MODE_ARM)
#: arm64 calls: bl, blr and the pointer-authenticating blraa/blraaz/blrab/blrabz.
_ARM64_CALLS = ("bl", "blr", "blraa", "blraaz", "blrab", "blrabz")


#: free_initmem() poisons the freed init sections with this byte (POISON_FREE_INITMEM).
_POISON_FREE_INITMEM = b"\xcc"
_INIT_TEXT: dict[str, tuple[int, int, int, Any]] = {}


def _init_text(target: Any, vmlinux: str) -> tuple[int, int, int, Any]:
    """(start, end, KASLR offset, ELF) of the kernel's init text in this dump: the link-time
    values are read from vmlinux once, the KASLR offset is each boot's own (two dumps of
    one vmlinux from two boots were given the first one's offset)."""
    if vmlinux not in _INIT_TEXT:
        from elftools.elf.elffile import ELFFile

        elf = ELFFile(open(vmlinux, "rb"))  # noqa: SIM115 - kept open for the session
        link = {s.name: s["st_value"] for s in elf.get_section_by_name(".symtab").iter_symbols()
                if s.name in ("_stext", "_sinittext", "_einittext")}  # fmt: skip
        _INIT_TEXT[vmlinux] = (link["_sinittext"], link["_einittext"], link["_stext"], elf)
    start, end, stext, elf = _INIT_TEXT[vmlinux]
    slide = target.prog.symbol("_stext").address - stext
    return start + slide, end + slide, slide, elf


def _code_before(target: Any, vmlinux: str, addr: int, n: int) -> bytes | None:
    """The n bytes of kernel code before ``addr``, as the kernel was built.

    Why not always the dump's memory: after boot the kernel frees its init text
    (``free_initmem()``) and poisons it with 0xcc, yet the idle task of CPU 0 still
    holds real return addresses into it at the bottom of its stack
    (``rest_init`` <- ``arch_call_rest_init`` <- ``start_kernel``). Those bytes are
    read from vmlinux; everything else from the dump."""
    lo, hi, slide, elf = _init_text(target, vmlinux)
    if lo <= addr - n and addr <= hi:
        link = addr - n - slide
        for sec in elf.iter_sections():
            start = sec["sh_addr"]
            if sec["sh_type"] == "SHT_PROGBITS" and start <= link < start + sec["sh_size"]:
                data = sec.data()
                return data[link - start : link - start + n]
        return None
    try:
        return target.prog.read(addr - n, n)
    except Exception:
        return None


def _follows_a_call(target: Any, vmlinux: str, addr: int) -> bool:
    """True when the instruction just before ``addr`` is a call: a real return address."""
    if target.dump.vmcoreinfo.get("NUMBER(VA_BITS)"):  # arm64: one 4-byte instruction
        code = _code_before(target, vmlinux, addr, 4)
        insns = list(_CS_ARM64.disasm(code or b"", addr - 4))
        return bool(insns) and insns[0].mnemonic in _ARM64_CALLS
    code = _code_before(target, vmlinux, addr, 8)
    if code is None:
        return False
    for start in range(8):
        insns = list(_CS.disasm(code[start:], addr - 8 + start))
        if insns and insns[-1].address + insns[-1].size == addr and insns[-1].mnemonic == "call":
            return True
    return False


def _crash_found_no_prstatus(e: dict[str, Any]) -> bool:
    """crash 8.0.6 built for ARM64 reads no CPU registers from QEMU's arm64 ELF dump: it
    says "cpu 1: invalid NT_PRSTATUS note (n_type != NT_PRSTATUS)" and "cpu N: cannot find
    NT_PRSTATUS note" for every CPU (QEMU writes more notes per CPU than the NT_PRSTATUS one
    crash expects in turn), so its ``bt`` lists each active task with no frame at all.
    kcrash reads those notes (drgn): its stacks there have no crash counterpart and are
    checked on their own (every return address follows a bl/blr, every register block's PC
    names it)."""
    if not is_arm64(e) or e["format"] != "qemu-elf":
        return False
    # crash prints its warnings on its own output, before the first command's.
    session = os.path.join(os.path.dirname(e["oracle"]["bt"]), "crash.stdout")
    with open(session, encoding="utf-8", errors="replace") as f:
        return "cannot find NT_PRSTATUS note" in f.read()


def _compare_stack(e: dict[str, Any], crash: list[Any], ours: dict[str, Any]) -> None:
    frames = [f for f in ours["frames"] if not f["inlined"]]
    if not crash and _crash_found_no_prstatus(e):
        target = _target(e)
        for f in frames[1:-1]:
            if not f["regs"]:
                assert _follows_a_call(target, e["vmlinux"], f["address"]), f["function"]
        return
    our_exc = [f for f in frames if f["regs"]]
    gave_up = any(f.bogus or f.after_bogus for f in crash)
    # crash's own "possibly bogus exception frame": its registers and name are garbage.
    crash_exc = [f.function for f in crash if f.exception and not f.bogus]
    if is_arm64(e) and frames and frames[0]["regs"] and crash and not crash[0].exception:
        # A CPU that kdump stopped: ipi_cpu_crash_stop() saved the registers its IPI
        # interrupted (arch/arm64/kernel/smp.c). kcrash shows them as that interrupted
        # context, as on x86 (where crash too shows them, the NMI's exception RIP); crash's
        # arm64 bt starts its frame #0 at them without a register block.
        our_exc = our_exc[1:]
    if is_arm64(e) and not crash_exc:
        # crash 8.0.6's arm64 bt prints the user-mode pt_regs at el0t_64_sync but no block
        # for a kernel-mode one (el1h_64_sync: WARN's brk; el1h_64_irq: the soft lockup's
        # timer interrupt), listing the interrupted function as a frame: kcrash's block
        # there (its PC names the frame, test_exception_registers_equal_crash) has no
        # crash counterpart.
        at_el1h = {
            id(frames[i]) for i in range(1, len(frames))
            if (frames[i - 1]["function"] or "").startswith("el1h_64_")
        }  # fmt: skip
        our_exc = [f for f in our_exc if id(f) not in at_el1h]
    if gave_up:
        # crash stops trusting its unwind there; ours goes on (ORC, checked below).
        our_exc = our_exc[: len(crash_exc)]
    assert len(our_exc) == len(crash_exc), ([f["function"] for f in our_exc], crash_exc)
    for o, c in zip(our_exc, crash_exc, strict=True):
        if c == "no symbolic reference":
            assert o["module"] == e["expected"]["culprit_module"], o
        else:
            assert o["function"] == c
    our_addrs = [f["address"] for f in frames if not f["regs"]]
    exc_rips = {f["address"] for f in frames if f["regs"]}
    if is_arm64(e):
        # crash's arm64 bt prints each frame at pc - 4 (the branch-and-link before a return
        # address): back to the return address, except where the CPU was (exact pcs)
        exact = exc_rips | ({frames[0]["address"]} if frames else set())
        for f in crash:
            if not f.exception and f.address is not None and f.address not in exact:
                f.address += 4
    # At a stack switch ("--- <IRQ stack> ---") crash repeats the last frame,
    # and after a "possibly bogus exception frame" it lists the RIP as a frame.
    crash_addrs: list[int | None] = []
    names: list[str] = []
    last_exc: Any = None
    our_slots = {f["sp"] - 8 for f in frames if f["sp"] is not None}
    # Our caller of panic() (noreturn): crash 8.0.6 on 6.12 may take an older return address
    # from a higher slot instead (khungtaskd: `_raw_spin_unlock_irqrestore` above the real
    # `watchdog.cold`); ours, in the lower slot, must follow a call (checked below).
    names_ours = [f["function"] for f in frames]
    panic_caller_sp = (
        frames[names_ours.index("panic") + 1]["sp"]
        if "panic" in names_ours[:-1] and frames[names_ours.index("panic") + 1]["sp"]
        else None
    )
    prev: str | None = None
    for i, f in enumerate(crash):
        after_panic, prev = prev == "panic", f.function
        if f.exception:
            last_exc = f
            continue
        # After an exception crash takes the word at its RSP as the next return
        # address. Unless the interrupted instruction starts its function, that
        # slot holds whatever an earlier call left (crash names it after the
        # exception's own function, or the callee of that call,
        # sched_clock_idle_wakeup_event under stop_this_cpu+107): stale when ORC
        # finds the return address in another slot.
        # A slot *below* the exception's RSP is dead stack: uaf-track's kcrash_uaf_use,
        # reached by a tail call (jmp) from kcrash_uaf_track, faults with RSP at
        # kcrash_memslab_write's return address, and crash reads kcrash_uaf_track's stale one
        # from the word beneath it.
        stale_at_rsp = last_exc is not None and (
            f.function == last_exc.function.split("+")[0]
            or (f.sp == last_exc.rsp and f.sp not in our_slots)
            or (f.sp is not None and last_exc.rsp is not None and f.sp < last_exc.rsp)
            or _in_own_frame(f, last_exc.rsp, our_slots, our_addrs)
        )
        last_exc = None
        # QEMU's ELF dump: crash ignores a stopped CPU's saved registers and
        # starts from a return address found in the same function (stop_this_cpu
        # at +0x4d where the CPU is at +0x6b, the RIP it prints for the same
        # boot's kdump-format dump): our first frame is that saved context.
        scanned_first = (
            i == 0
            and bool(frames)
            and frames[0]["regs"] is not None
            and f.function == frames[0]["function"]
            and f.address != frames[0]["address"]
        )
        stale_panic_caller = (
            after_panic
            and f.address not in our_addrs
            and panic_caller_sp is not None
            and f.sp is not None
            and f.sp > panic_caller_sp
        )
        if (
            f.address in exc_rips
            or f.after_bogus
            or f.bogus
            or stale_at_rsp
            or stale_panic_caller
            or scanned_first
        ):
            continue
        if crash_addrs and crash_addrs[-1] == f.address:
            continue
        crash_addrs.append(f.address)
        names.append(f.function)
    # crash's stale frames sit between do_syscall_64 and the entry frame.
    if "do_syscall_64" in names:
        i = names.index("do_syscall_64")
        stale = crash_addrs[i + 1 : -1]
        crash_addrs = crash_addrs[: i + 1] + crash_addrs[-1:]
        assert not set(stale) & set(our_addrs)
    detail = ([f["function"] for f in frames], [f.function for f in crash])
    assert _subsequence(crash_addrs, our_addrs), detail
    target = _target(e)
    # The outermost frame is an entry point (secondary_startup_64, ret_from_fork):
    # its "return address" is pushed by hand, not by a call.
    for f in frames[1:-1]:
        if f["address"] not in crash_addrs and not f["regs"]:
            assert _follows_a_call(target, e["vmlinux"], f["address"]), (f["function"], detail)


def _in_own_frame(f: Any, rsp: int | None, our_slots: Any, our_addrs: Any) -> bool:
    """A crash frame read from the interrupted function's own frame: above the exception's
    RSP but below the slot where ORC found that function's return address (its locals and
    saved registers; slab-leak's QEMU dump: `update_wall_time` at RSP+8 under
    `stop_this_cpu+107`). A return address there is stale, unless it is also ours."""
    if f.sp is None or rsp is None or f.address in our_addrs:
        return False
    above = [s for s in our_slots if s is not None and s > rsp]
    return bool(above) and rsp <= f.sp < min(above)


def test_panic_task_bt_equals_crash(entries: list[dict[str, Any]]) -> None:
    """The same frames as crash, by address, and the same exception RIPs, except
    where crash 8.0.2 demonstrably misses frames:

    - it skips some real frames: a caller of a ``noreturn`` function such as
      ``panic()`` (the caller's frame), ``oops_end.cold`` and the pvpanic
      notifier frames of QEMU captures, which ORC unwinds.  Every frame we
      show in addition must hold a real return address (the instruction
      before it is a ``call``), and every crash frame must be among ours, in
      order;
    - it cannot name RIPs in module code it has no symbols for ("no
      symbolic reference"): ours must then be in the module of the culprit;
    - at a stack switch it repeats the last frame, and after a "possibly bogus
      exception frame" it lists the exception RIP as a frame;
    - for the caller of ``panic()`` (noreturn) crash 8.0.6 on Debian 13's 6.12 can
      take a stale return address from a higher stack slot (hung-task:
      ``_raw_spin_unlock_irqrestore`` where ORC finds ``watchdog.cold``, whose
      return address must follow a call, like every frame of ours crash lacks).
    """

    def check(e: dict[str, Any]) -> None:
        crash = parse_bt(_oracle(e, "bt"))[0]
        _compare_stack(e, crash, json.loads(_run(e, "bt --json")))

    each(entries, check)


def test_bt_a_equals_crash(entries: list[dict[str, Any]]) -> None:
    """Every present CPU's active task on every dump, with the same rules as the panic
    task (kdump captures show the NMI path of the stopped CPUs; QEMU captures the
    reboot IPI that stopped them, where crash reads a "possibly bogus exception
    frame" and ORC goes on)."""

    def check(e: dict[str, Any]) -> None:
        crash_tasks = parse_bt(_oracle(e, "bt -a"))
        ours = json.loads(_run(e, "bt -a --json"))
        assert [(t["pid"], t["cpu"]) for t in ours] == _task_ids(_oracle(e, "bt -a"))
        assert len(ours) == len(crash_tasks)
        for crash, mine in zip(crash_tasks, ours, strict=True):
            _compare_stack(e, crash, mine)

    each(entries, check)


def _task_ids(text: str) -> list[tuple[int, int]]:
    """(PID, CPU) of each task block of a crash ``bt`` text."""
    return [
        (int(m.group(1)), int(m.group(2)))
        for m in re.finditer(r"^PID: (\d+)\s+TASK: \S+\s+CPU: (\d+)", text, re.M)
    ]


def _crash_gave_up(name: str) -> bool:
    return name.startswith("(bogus)") or "no symbolic reference" in name


def _register_oracle(e: dict[str, Any], entries: list[dict[str, Any]]) -> str:
    """crash's ``bt -a`` to compare registers with.

    crash 8.0.2 does not take a stopped CPU's registers from the NT_PRSTATUS
    notes of QEMU's ELF dump: it starts that CPU's stack from a return address
    found by scanning, so it prints no register block where the CPU was
    interrupted.  The same boot's QEMU kdump-format dump holds the same memory
    and CPU state, and there crash prints them: that is the oracle for both.
    """
    if e["format"] == "qemu-elf" and not is_arm64(e):
        twin = [x for x in entries if x["boot"] == e["boot"] and x["format"] == "qemu-kdump"]
        if twin:
            return _oracle(twin[0], "bt -a")
    return _oracle(e, "bt -a")


#: __KERNEL_CS/__KERNEL_DS and __USER_CS/__USER_DS (arch/x86/include/asm/segment.h);
#: SS is 0 after some kernel entries.
_SEGMENTS = {"CS": {0x10, 0x33}, "SS": {0x18, 0x2B, 0}}


def test_exception_registers_equal_crash(entries: list[dict[str, Any]]) -> None:
    """The register block of every exception frame of every CPU's active task, ORIG_RAX
    included, as crash prints it, on every dump.

    crash's blocks where it gave up ("no symbolic reference", "possibly bogus
    exception frame") hold registers it read from the wrong place (RSP 0, CS
    ffffffffffcab756): skipped, and each block of ours that crash has no right
    counterpart for must be a real saved context: kernel or user segment
    selectors, and a RIP that names the block.
    """

    def check(e: dict[str, Any]) -> None:
        ours_tasks = register_blocks(_run(e, "bt -a"))
        crash_tasks = register_blocks(_register_oracle(e, entries))
        assert len(ours_tasks) == len(crash_tasks)
        target = _target(e)
        for ours, crash in zip(ours_tasks, crash_tasks, strict=True):
            right = [b for b in crash if not _crash_gave_up(b[0])]
            assert _subsequence(right, ours), (ours, crash)  # type: ignore[arg-type]
            gave_up = len(right) < len(crash) or (not crash and _crash_found_no_prstatus(e))
            extra = [b for b in ours if b not in right]
            if is_arm64(e) and ours and extra[:1] == ours[:1]:
                # A stopped CPU's own registers (see _compare_stack): crash's arm64 bt
                # starts from them without printing them; checked below as ours alone.
                gave_up = gave_up or extra == ours[:1]
            assert not extra or gave_up, extra
            for name, lines in extra:
                regs = dict(
                    (k, int(v, 16))
                    for ln in lines
                    for k, v in re.findall(r"([A-Z0-9_]+): ([0-9a-f]+)", ln)
                )
                if not is_arm64(e):  # arm64 has no segment selectors
                    for seg, allowed in _SEGMENTS.items():
                        assert regs[seg] in allowed, (name, seg, hex(regs[seg]))
                if not name.startswith("user regs"):
                    func = name.split("+")[0]
                    pc = regs["PC"] if is_arm64(e) else regs["RIP"]
                    assert target.prog.symbol(pc).name == func, (name, pc)

    each(entries, check)


def test_log_lines_equal_crash(entries: list[dict[str, Any]]) -> None:
    def check(e: dict[str, Any]) -> None:
        ours = _run(e, "log").splitlines()
        crash = _oracle(e, "log").splitlines()
        assert ours == crash

    each(entries, check)


def test_ps_rows_equal_crash_8_0_6(entries: list[dict[str, Any]]) -> None:
    """Every column of every row, %MEM, VSZ and RSS included (%MEM as printed)."""
    keys = ("pid", "ppid", "cpu", "task", "state", "%mem", "vsz", "rss", "comm", "active")

    def check(e: dict[str, Any]) -> None:
        ours = parse_ps(_run(e, "ps"))
        crash = parse_ps(_ps_oracle(e))
        assert [tuple(r[k] for k in keys) for r in ours] == [
            tuple(r[k] for k in keys) for r in crash
        ]

    each(entries, check)


def test_mod_equals_crash(entries: list[dict[str, Any]]) -> None:
    def check(e: dict[str, Any]) -> None:
        assert parse_mod(_run(e, "mod")) == parse_mod(_oracle(e, "mod"))

    each(entries, check)


def test_log_wall_clock_times(entries: list[dict[str, Any]]) -> None:
    """``log -T``: the last record's wall-clock time is the crash time (sys DATE)."""
    import datetime

    e = entries[0]
    last = _run(e, "log -T").splitlines()[-1]
    stamp = last[1 : last.index("]")]
    when = datetime.datetime.strptime(stamp, "%a %b %d %H:%M:%S %Y")
    date = parse_sys(_run(e, "sys"))["DATE"]
    crash_time = datetime.datetime.strptime(date, "%a %b %d %H:%M:%S %Z %Y")
    assert abs((when - crash_time).total_seconds()) <= 2, (stamp, date)
