"""Block cutting details (hand-built lines, in addition to the corpus tests)."""

from __future__ import annotations

import pytest

from kcrash.model import LogLine
from kcrash.oops.blocks import events_from_log, start_kind

START_LINES = [
    "BUG: kernel NULL pointer dereference, address: 0000000000000074",
    "BUG: unable to handle page fault for address: ffffc90000123000",
    "BUG: unable to handle kernel NULL pointer dereference at 0000000000000074",
    "watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [sh:113]",
    "WARNING: CPU: 0 PID: 1 at drivers/x.c:3 f+0x1/0x2",
    "INFO: task sh:113 blocked for more than 5 seconds.",
    "rcu: INFO: rcu_preempt self-detected stall on CPU",
    "Oops: 0000 [#1] PREEMPT SMP NOPTI",
    "general protection fault, probably for non-canonical address 0x6b6b6b6b6b6b6b6b: 0000 [#1]",
    "divide error: 0000 [#1] PREEMPT SMP NOPTI",
    "invalid opcode: 0000 [#1] PREEMPT SMP NOPTI",
    "kernel BUG at lib/list_debug.c:62!",
    "list_del corruption. next->prev should be ffff, but was dead4ead00000000. (next=ffff)",
    "PANIC: double fault, error_code: 0x0",
    "Kernel panic - not syncing: Fatal exception",
    "NMI watchdog: Watchdog detected hard LOCKUP on cpu 1",
    "sh invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
    "Out of memory: Killed process 77 (hog) total-vm:1kB",
    "Memory cgroup out of memory: Killed process 77 (hog)",
    "sysrq: Trigger a crash",
    "SysRq : Trigger a crash",
    "UBSAN: array-index-out-of-bounds in drivers/x.c:12:3",
    "Uhhuh. NMI received for unknown reason 3d on CPU 0.",
    "mce: [Hardware Error]: CPU 0: Machine Check Exception: 5 Bank 4: b200000000070f0f",
    "BUG: KASAN: slab-use-after-free in f+0x1/0x2",
    "NMI backtrace for cpu 1",
]


@pytest.mark.parametrize("line", START_LINES)
def test_start_lines(line: str) -> None:
    assert start_kind(line) is not None


@pytest.mark.parametrize(
    "line",
    [
        "kcrash_crash: running 'null-deref' on CPU 1",
        "---[ end Kernel panic - not syncing: Fatal exception ]---",
        "Run /init as init process",
        "",
    ],
)
def test_not_start_lines(line: str) -> None:
    assert start_kind(line) is None


def _log(text: str, caller: str | None = None) -> list[LogLine]:
    return [LogLine(text=t, caller=caller) for t in text.splitlines()]


def test_preamble_joins_its_oops_and_cut_here() -> None:
    log = _log(
        "list_del corruption. next->prev should be ffff, but was dead4ead00000000.\n"
        "------------[ cut here ]------------\n"
        "kernel BUG at lib/list_debug.c:62!\n"
        "invalid opcode: 0000 [#1] PREEMPT SMP NOPTI\n"
        "RIP: 0010:__list_del_entry_valid.cold+0x1/0x2\n"
        "Call Trace:\n <TASK>\n kcrash_list_corruption+0x1/0x2 [kcrash_crash]\n </TASK>\n"
        "unrelated line after the trace\n"
    )
    evs = events_from_log(log)
    assert len(evs) == 1
    ev = evs[0]
    assert ev.header.startswith("list_del corruption") and ev.oops_number == 1
    assert ev.rip is not None and ev.rip.function == "__list_del_entry_valid.cold"
    assert [f.function for f in ev.call_trace] == ["kcrash_list_corruption"]
    assert ev.call_trace[0].context == "task"
    assert "unrelated line after the trace" not in ev.lines


def test_irq_context_and_nested_exception_frame() -> None:
    log = _log(
        "BUG: kernel NULL pointer dereference, address: 0000000000000070\n"
        "Oops: 0002 [#1] PREEMPT SMP NOPTI\n"
        "RIP: 0010:kcrash_timer_fn+0x9/0x20 [kcrash_crash]\n"
        "RSP: 0018:ffffa EFLAGS: 00010246\nRAX: 0000000000000000 RBX: 0000000000000001\n"
        "Call Trace:\n <IRQ>\n call_timer_fn+0x27/0x130\n __run_timers+0x1/0x2\n </IRQ>\n"
        " <TASK>\n asm_sysvec_apic_timer_interrupt+0x16/0x20\n"
        "RIP: 0010:native_safe_halt+0xb/0x10\nRSP: 0018:ffffb EFLAGS: 00000246\n"
        "RAX: 0000000000000001 RBX: 0000000000000002\n default_idle+0xa/0x20\n </TASK>\n"
    )
    ev = events_from_log(log)[0]
    assert ev.registers["RAX"] == 0 and ev.rip.regs["rax"] == 0
    ctx = [(f.function, f.context) for f in ev.call_trace]
    assert ctx[0] == ("call_timer_fn", "irq")
    nested = next(f for f in ev.call_trace if f.function == "native_safe_halt")
    assert nested.context == "task" and nested.regs and nested.regs["rax"] == 1


def test_callers_keep_their_own_blocks() -> None:
    log = [
        LogLine("BUG: kernel NULL pointer dereference, address: 0000000000000008", caller="T5"),
        LogLine("WARNING: CPU: 1 PID: 0 at a.c:1 w+0x1/0x2", caller="C1"),
        LogLine("Oops: 0000 [#1] SMP", caller="T5"),
        LogLine("Call Trace:", caller="C1"),
        LogLine(" w_caller+0x1/0x2", caller="C1"),
        LogLine("Call Trace:", caller="T5"),
        LogLine(" t_caller+0x1/0x2", caller="T5"),
    ]
    evs = events_from_log(log)
    by_caller = {e.caller: e for e in evs}
    assert by_caller["T5"].oops_number == 1
    assert [f.function for f in by_caller["T5"].call_trace] == ["t_caller"]
    assert [f.function for f in by_caller["C1"].call_trace] == ["w_caller"]


def test_interleaved_lines_inside_a_trace_are_tolerated_and_trimmed() -> None:
    log = _log(
        "Oops: 0000 [#1] SMP\n"
        "RIP: 0010:f+0x1/0x2 [m]\n"
        "Call Trace:\n"
        " a+0x1/0x2 [m]\n"
        "udhcpc: sending discover\n"
        " b+0x1/0x2\n"
        "user line 1\nuser line 2\nuser line 3\nuser line 4\n"
        " c+0x1/0x2\n"
    )
    evs = events_from_log(log)
    assert [f.function for f in evs[0].call_trace] == ["a", "b"]
    assert evs[0].lines[-1].strip() == "b+0x1/0x2"


def test_kasan_allocation_and_free_stacks_are_not_the_call_trace() -> None:
    log = _log(
        "==================================================================\n"
        "BUG: KASAN: slab-use-after-free in frob_item+0x4a/0x60 [frob]\n"
        "Read of size 8 at addr ffff888012345678 by task sh/9\n"
        "CPU: 0 PID: 9 Comm: sh Tainted: G    B      OE      6.1.0 #1\n"
        "Call Trace:\n <TASK>\n dump_stack_lvl+0x44/0x5c\n kasan_report+0x1/0x2\n"
        " frob_item+0x4a/0x60 [frob]\n frob_all+0x1/0x2 [frob]\n </TASK>\n"
        "\n"
        "Allocated by task 9:\n kasan_save_stack+0x1/0x2\n frob_new+0x1/0x2 [frob]\n"
        "\n"
        "Freed by task 9:\n kasan_save_stack+0x1/0x2\n frob_free+0x1/0x2 [frob]\n"
    )
    ev = events_from_log(log)[0]
    names = [f.function for f in ev.call_trace]
    assert names == ["dump_stack_lvl", "kasan_report", "frob_item", "frob_all"]


def test_sysrq_w_task_dumps_become_blocked_tasks() -> None:
    import io

    from kcrash.oops.text import read_text

    text = (
        "[  50.1] sysrq: Show Blocked State\n"
        "[  50.1] task:sh              state:D stack:0     pid:113   ppid:1      flags:0x00000002\n"
        "[  50.1] Call Trace:\n[  50.1]  <TASK>\n[  50.1]  __schedule+0x34d/0xa00\n"
        "[  50.1]  schedule+0x5a/0xd0\n[  50.1]  foo_wait+0x1d/0x30 [foo]\n[  50.1]  </TASK>\n"
        "[  50.1] task:kworker/0:1     state:D stack:0     pid:20    ppid:2      flags:0x00004000\n"
        "[  50.1] Call Trace:\n[  50.1]  <TASK>\n[  50.1]  __schedule+0x34d/0xa00\n"
        "[  50.1]  io_schedule+0x46/0x70\n[  50.1]  bar_flush+0x1/0x2 [bar]\n[  50.1]  </TASK>\n"
        "[  51.0] sysrq: Trigger a crash\n"
        "[  51.0] Kernel panic - not syncing: sysrq triggered crash\n"
        "[  51.0] CPU: 0 PID: 166 Comm: sh Not tainted 6.1.0 #1\n"
        "[  51.0] Call Trace:\n[  51.0]  <TASK>\n[  51.0]  dump_stack_lvl+0x44/0x5c\n"
        "[  51.0]  panic+0x118/0x2f4\n[  51.0]  sysrq_handle_crash+0x16/0x20\n[  51.0]  </TASK>\n"
    )
    facts = read_text(io.StringIO(text)).facts
    assert [(s.pid, s.comm) for s in facts.blocked_tasks] == [(113, "sh"), (20, "kworker/0:1")]
    assert [f.function for f in facts.blocked_tasks[1].frames][-1] == "bar_flush"
    from kcrash.diagnosis import diagnose

    assert diagnose(facts)[0].title == "sysrq in sysrq_handle_crash"
