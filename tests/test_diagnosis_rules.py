"""The rule table over hand-built report text, one sample per class the corpus cannot
produce (hardware errors, lockdep, sanitizers, old kernels' wordings...), plus the
primary-selection rules.  Hand-built IN ADDITION to the real-corpus tests: the
samples follow the printk formats of the cited kernel sources.
"""

from __future__ import annotations

import io
import json
from importlib import resources

import pytest

from kcrash.diagnosis import CLASS_IDS, RULES, diagnose
from kcrash.model import CrashFacts, Frame, Stack, SystemInfo
from kcrash.oops.text import read_text


def _diag(text: str):  # type: ignore[no-untyped-def]
    return diagnose(read_text(io.StringIO(text)).facts)


def _trace(*frames: str) -> str:
    return "Call Trace:\n <TASK>\n" + "\n".join(f" {f}" for f in frames) + "\n </TASK>\n"


SAMPLES = {
    # (text, class, culprit function)
    "pre-5.1 null": (
        "BUG: unable to handle kernel NULL pointer dereference at 0000000000000074\n"
        "IP: [<ffffffffa0012345>] foo_submit+0x15/0x30 [foo]\n"
        "Oops: 0000 [#1] SMP\n"
        "CPU: 0 PID: 12 Comm: sh Tainted: G           O    4.9.0-8-amd64 #1 Debian 4.9.130-2\n"
        "RIP: 0010:[<ffffffffa0012345>]  [<ffffffffa0012345>] foo_submit+0x15/0x30 [foo]\n"
        + "Call Trace:\n [<ffffffff81234567>] foo_write+0x20/0x40 [foo]\n"
        " [<ffffffff81234568>] vfs_write+0xb5/0x1a0\n",
        "null-deref",
        "foo_submit",
    ),
    "pre-5.1 paging": (
        "BUG: unable to handle kernel paging request at ffffc90000123000\n"
        "Oops: 0000 [#1] SMP\nRIP: 0010:bar_read+0x1/0x2 [bar]\n",
        "bad-paging",
        "bar_read",
    ),
    "hard lockup": (
        "NMI watchdog: Watchdog detected hard LOCKUP on cpu 1\n"
        "CPU: 1 PID: 0 Comm: swapper/1 Not tainted 6.1.0-28-amd64 #1 Debian 6.1.119-1\n"
        "RIP: 0010:native_queued_spin_lock_slowpath+0x60/0x1c0\n"
        + _trace("_raw_spin_lock_irqsave+0x39/0x50", "baz_irq+0x10/0x40 [baz]", "do_idle+0x1/0x2")
        + "Kernel panic - not syncing: Hard LOCKUP\n",
        "hard-lockup",
        "baz_irq",
    ),
    "rcu stall": (
        "rcu: INFO: rcu_preempt self-detected stall on CPU\n"
        "rcu: \t0-....: (2099 ticks this GP) idle=4b4c/1/0x4000000000000000\n"
        "\t(t=2100 jiffies g=1 q=2 ncpus=2)\n"
        "NMI backtrace for cpu 0\n"
        "CPU: 0 PID: 7 Comm: sh Not tainted 6.1.0-28-amd64 #1 Debian 6.1.119-1\n"
        "Call Trace:\n <IRQ>\n dump_stack_lvl+0x44/0x5c\n nmi_cpu_backtrace.cold+0x30/0x70\n"
        " rcu_dump_cpu_stacks+0xe0/0x120\n rcu_sched_clock_irq.cold+0x66/0x321\n"
        " update_process_times+0x8c/0xc0\n </IRQ>\n <TASK>\n"
        " asm_sysvec_apic_timer_interrupt+0x16/0x20\n"
        "RIP: 0010:spin_forever+0x4/0x10 [qux]\n"
        "RSP: 0018:ffffb0 EFLAGS: 00000246\n"
        " qux_write+0x20/0x40 [qux]\n vfs_write+0xc7/0x3f0\n do_syscall_64+0x5d/0xb0\n"
        " </TASK>\n",
        "rcu-stall",
        "spin_forever",
    ),
    "machine check": (
        "mce: [Hardware Error]: CPU 0: Machine Check Exception: 5 Bank 4: b200000000070f0f\n"
        "mce: [Hardware Error]: RIP !INEXACT! 10:<ffffffff8103d6c6> {intel_idle+0x56/0xa0}\n"
        "Kernel panic - not syncing: Fatal machine check\n",
        "machine-check",
        None,
    ),
    "nmi": (
        "Uhhuh. NMI received for unknown reason 3d on CPU 0.\n"
        "Do you have a strange power saving mode enabled?\n"
        "Kernel panic - not syncing: NMI: Not continuing\n",
        "nmi",
        None,
    ),
    "no rootfs": (
        'VFS: Cannot open root device "sda1" or unknown-block(0,0): error -6\n'
        "Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)\n"
        "CPU: 0 PID: 1 Comm: swapper/0 Not tainted 6.1.0-28-amd64 #1 Debian 6.1.119-1\n"
        + _trace(
            "dump_stack_lvl+0x44/0x5c",
            "panic+0x118/0x2f4",
            "mount_block_root+0x1/0x2",
            "prepare_namespace+0x1/0x2",
            "kernel_init_freeable+0x1/0x2",
            "kernel_init+0x16/0x130",
            "ret_from_fork+0x22/0x30",
        ),
        "no-rootfs",
        None,
    ),
    "init killed": (
        "Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b\n"
        "CPU: 0 PID: 1 Comm: init Not tainted 6.1.0-28-amd64 #1 Debian 6.1.119-1\n"
        + _trace(
            "dump_stack_lvl+0x44/0x5c",
            "panic+0x118/0x2f4",
            "do_exit.cold+0x15/0xa5",
            "do_group_exit+0x2d/0x90",
            "get_signal+0x8d7/0x8f0",
            "arch_do_signal_or_restart+0x2b/0x230",
            "exit_to_user_mode_prepare+0x1/0x2",
        ),
        "init-killed",
        None,
    ),
    "atomic sleep": (
        "BUG: sleeping function called from invalid context at mm/slab.h:709\n"
        "in_atomic(): 1, irqs_disabled(): 0, non_block: 0, pid: 9, name: sh\n"
        "CPU: 0 PID: 9 Comm: sh Not tainted 6.1.0-28-amd64 #1 Debian 6.1.119-1\n"
        + _trace(
            "dump_stack_lvl+0x44/0x5c",
            "__might_resched.cold+0xd6/0x10f",
            "kmem_cache_alloc_trace+0x1/0x2",
            "quux_lock_and_alloc+0x1/0x2 [quux]",
        ),
        "atomic-sleep",
        "quux_lock_and_alloc",
    ),
    "lockdep": (
        "======================================================\n"
        "WARNING: possible circular locking dependency detected\n"
        "6.1.0 #1 Not tainted\n"
        "------------------------------------------------------\n"
        "sh/9 is trying to acquire lock:\n"
        + _trace(
            "dump_stack_lvl+0x44/0x5c",
            "check_noncircular+0x1/0x2",
            "__lock_acquire+0x1/0x2",
            "lock_acquire+0x1/0x2",
            "mutex_lock_nested+0x1/0x2",
            "ab_ba_path+0x1/0x2 [deadlk]",
        ),
        "lockdep",
        "ab_ba_path",
    ),
    "kasan": (
        "==================================================================\n"
        "BUG: KASAN: slab-use-after-free in frob_item+0x4a/0x60 [frob]\n"
        "Read of size 8 at addr ffff888012345678 by task sh/9\n"
        "CPU: 0 PID: 9 Comm: sh Tainted: G    B      OE      6.1.0 #1\n"
        + _trace(
            "dump_stack_lvl+0x44/0x5c",
            "print_report+0x1/0x2",
            "kasan_report+0x1/0x2",
            "__asan_load8+0x1/0x2",
            "frob_item+0x4a/0x60 [frob]",
            "frob_all+0x1/0x2 [frob]",
        ),
        "sanitizer",
        "frob_item",
    ),
    "bad page": (
        "BUG: Bad page state in process sh  pfn:1234\n"
        "page:00000000abcd refcount:0 mapcount:0 mapping:0000000000000000 index:0x0 pfn:0x1234\n"
        "CPU: 0 PID: 9 Comm: sh Tainted: G    B   6.1.0 #1\n"
        + _trace(
            "dump_stack_lvl+0x44/0x5c",
            "bad_page.cold+0x63/0x94",
            "free_pcp_prepare+0x1/0x2",
            "free_unref_page+0x1/0x2",
            "leaky_release+0x1/0x2 [leaky]",
        ),
        "bad-page",
        "leaky_release",
    ),
    "double fault": (
        "BUG: TASK stack guard page was hit at 000000006b6f2f4c (stack is 0000000021aa1d4c..)\n"
        "stack guard page: 0000 [#1] PREEMPT SMP NOPTI\n"
        "CPU: 0 PID: 9 Comm: sh Not tainted 6.1.0 #1\n"
        "RIP: 0010:recurse+0x10/0x20 [deep]\n",
        "stack-overflow",
        "recurse",
    ),
    "oom kill only": (
        "sh invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0\n"
        "CPU: 0 PID: 9 Comm: sh Not tainted 6.1.0 #1\n"
        + _trace(
            "dump_stack_lvl+0x44/0x5c",
            "dump_header+0x4a/0x211",
            "oom_kill_process.cold+0xb/0x10",
            "out_of_memory+0x1/0x2",
            "__alloc_pages_slowpath.constprop.0+0x1/0x2",
            "__alloc_pages+0x1/0x2",
            "hog_alloc+0x1/0x2 [hog]",
        )
        + "Mem-Info:\nOut of memory: Killed process 77 (hog) total-vm:1kB, anon-rss:1kB\n",
        "oom-kill",
        "hog_alloc",
    ),
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_hand_built_samples(name: str) -> None:
    text, klass, func = SAMPLES[name]
    d = _diag(text)[0]
    assert d.class_id == klass, (name, d.title)
    if func is not None:
        assert d.culprit is not None and d.culprit.function == func, (name, d.culprit)


def test_trailer_points_to_the_first_oops() -> None:
    text = (
        "BUG: kernel NULL pointer dereference, address: 0000000000000010\n"
        "#PF: supervisor write access in kernel mode\n#PF: error_code(0x0002) - not-present page\n"
        "Oops: 0002 [#1] PREEMPT SMP NOPTI\n"
        "CPU: 0 PID: 9 Comm: sh Tainted: G           OE      6.1.0 #1\n"
        "RIP: 0010:first_fn+0x5/0x10 [m]\n"
        + _trace("caller_fn+0x1/0x2 [m]")
        + "---[ end trace 0000000000000000 ]---\n"
        "general protection fault, probably for non-canonical address 0xdead000000000122: "
        "0000 [#2] PREEMPT SMP NOPTI\n"
        "RIP: 0010:second_fn+0x5/0x10 [m]\n"
        + _trace("x+0x1/0x2")
        + "Kernel panic - not syncing: Fatal exception\n"
    )
    ds = _diag(text)
    assert ds[0].class_id == "null-deref" and ds[0].culprit.function == "first_fn"
    assert ds[0].evidence.page_fault["error_code"] == "0x2"
    assert [d.class_id for d in ds[1:]] == ["gpf"]
    assert ds[1].evidence.address_kind == "address.list_poison"


def test_weak_init_panic_yields_to_the_oops() -> None:
    text = (
        "general protection fault: 0000 [#1] SMP\n"
        "CPU: 0 PID: 1 Comm: init Not tainted 6.1.0 #1\nRIP: 0010:bad_fn+0x5/0x10\n"
        + _trace("x_fn+0x1/0x2")
        + "Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b\n"
    )
    assert _diag(text)[0].class_id == "gpf"


def test_panic_string_and_vmcore_stack_without_log() -> None:
    """The vmcore mode with no usable log: crash's PANIC + the unwound panic stack."""
    exc = Frame(
        "kcrash_get_refcount",
        5,
        module="kcrash_crash",
        regs={"rip": 0xFFFFFFFFC0575005, "rdi": 0},
        source="kcrash_crash.c:58",
    )
    facts = CrashFacts(
        source="vmcore",
        mode="dwarf",
        system=SystemInfo(panic="Kernel panic - not syncing: Fatal exception", release="6.1"),
        panic_stack=Stack(
            frames=[
                Frame("machine_kexec"),
                Frame("__crash_kexec"),
                Frame("crash_kexec"),
                Frame("oops_end"),
                Frame("page_fault_oops"),
                Frame("exc_page_fault"),
                Frame("asm_exc_page_fault"),
                exc,
                Frame("kcrash_write", module="kcrash_crash"),
            ]
        ),
    )
    d = diagnose(facts)[0]
    assert d.culprit is not None
    assert (d.culprit.function, d.culprit.module, d.culprit.source) == (
        "kcrash_get_refcount",
        "kcrash_crash",
        "kcrash_crash.c:58",
    )
    assert d.source == "panic_stack"


def test_source_line_enriched_from_vmcore_stack() -> None:
    text = (
        "BUG: kernel NULL pointer dereference, address: 0000000000000074\n"
        "Oops: 0000 [#1] PREEMPT SMP NOPTI\nRIP: 0010:kcrash_get_refcount+0x5/0x10 [kcrash_crash]\n"
        + _trace("kcrash_write+0xf4/0x100 [kcrash_crash]")
    )
    facts = read_text(io.StringIO(text)).facts
    facts.panic_stack = Stack(
        frames=[
            Frame("kcrash_get_refcount", module="kcrash_crash", source="/src/kcrash_crash.c:58")
        ]
    )
    d = diagnose(facts)[0]
    assert d.culprit.source == "/src/kcrash_crash.c:58"


def test_nothing_at_all_is_unknown() -> None:
    d = diagnose(CrashFacts(source="vmcore", mode="kallsyms"))
    assert len(d) == 1 and d[0].class_id == "unknown"


def test_table_and_catalogues_are_complete() -> None:
    assert len({r.id for r in RULES}) == len(RULES)
    required = {
        "null-deref",
        "bad-paging",
        "gpf",
        "bug-on",
        "list-corruption",
        "warn",
        "invalid-opcode",
        "divide-error",
        "double-fault",
        "stack-overflow",
        "memory-leak",
        "stack-protector",
        "soft-lockup",
        "hard-lockup",
        "rcu-stall",
        "hung-task",
        "oom-panic",
        "oom-kill",
        "machine-check",
        "nmi",
        "sysrq",
        "init-killed",
        "no-rootfs",
        "atomic-sleep",
        "lockdep",
        "sanitizer",
        "bad-page",
        "panic",
    }
    assert required <= set(CLASS_IDS)
    cats = {}
    for lang in ("en", "zh"):
        ref = resources.files("kcrash.report").joinpath("i18n", f"rules.{lang}.json")
        cats[lang] = json.loads(ref.read_text(encoding="utf-8"))
    assert set(cats["en"]) == set(cats["zh"])
    for r in RULES:
        for key in (r.meaning_id, r.explanation_id, f"class.{r.id}", *r.next_step_ids):
            assert key in cats["en"], key


def test_trailer_alone_still_names_its_class() -> None:
    """A log cut before the soft-lockup report: the trailer names the class, and the
    interrupted code after the IRQ part of the panic's trace is the culprit."""
    text = (
        "Kernel panic - not syncing: softlockup: hung tasks\n"
        "CPU: 1 PID: 113 Comm: sh Tainted: G           OEL     6.1.0 #1\n"
        "Call Trace:\n <IRQ>\n dump_stack_lvl+0x44/0x5c\n panic+0x118/0x2f4\n"
        " watchdog_timer_fn.cold+0x1/0x2\n __hrtimer_run_queues+0x1/0x2\n </IRQ>\n <TASK>\n"
        " asm_sysvec_apic_timer_interrupt+0x16/0x20\n"
        "RIP: 0010:kcrash_soft_lockup+0x8/0x10 [kcrash_crash]\n"
        "RSP: 0018:ffffa EFLAGS: 00000246\n"
        " kcrash_write+0xf4/0x100 [kcrash_crash]\n do_syscall_64+0x1/0x2\n </TASK>\n"
    )
    d = _diag(text)[0]
    assert d.title == "soft-lockup in kcrash_soft_lockup [kcrash_crash]"


def test_rhel7_3_10_oops_layout() -> None:
    """3.10 (RHEL 7): IP: line, RIP with [<addr>], RHEL's '----' taint field, Code: after
    the call trace, 'RIP  [<..>]' / ' RSP <..>' summary lines."""
    text = (
        "[ 1234.567890] BUG: unable to handle kernel NULL pointer dereference at "
        "0000000000000074\n"
        "[ 1234.567890] IP: [<ffffffffc0123456>] foo_submit+0x15/0x30 [foo]\n"
        "[ 1234.567890] PGD 0 \n"
        "[ 1234.567890] Oops: 0000 [#1] SMP \n"
        "[ 1234.567890] Modules linked in: foo(OE) xfs libcrc32c\n"
        "[ 1234.567890] CPU: 3 PID: 1234 Comm: bash Kdump: loaded Tainted: G           OE  "
        "------------   3.10.0-1160.el7.x86_64 #1\n"
        "[ 1234.567890] Hardware name: Red Hat KVM, BIOS 0.5.1 01/01/2011\n"
        "[ 1234.567890] task: ffff880012345678 ti: ffff880012345000 task.ti: ffff880012345000\n"
        "[ 1234.567890] RIP: 0010:[<ffffffffc0123456>]  [<ffffffffc0123456>] "
        "foo_submit+0x15/0x30 [foo]\n"
        "[ 1234.567890] RSP: 0018:ffff880012347e00  EFLAGS: 00010246\n"
        "[ 1234.567890] RAX: 0000000000000000 RBX: ffff880012345678 RCX: 0000000000000000\n"
        "[ 1234.567890] RDX: 0000000000000000 RSI: 0000000000000000 RDI: 0000000000000000\n"
        "[ 1234.567890] Call Trace:\n"
        "[ 1234.567890]  [<ffffffffc0123567>] foo_write+0x20/0x40 [foo]\n"
        "[ 1234.567890]  [<ffffffff81234567>] vfs_write+0xb5/0x1a0\n"
        "[ 1234.567890]  [<ffffffff81234568>] SyS_write+0x7f/0xf0\n"
        "[ 1234.567890]  [<ffffffff81234569>] system_call_fastpath+0x25/0x2a\n"
        "[ 1234.567890] Code: 55 48 89 e5 <8b> 47 74 5d c3\n"
        "[ 1234.567890] RIP  [<ffffffffc0123456>] foo_submit+0x15/0x30 [foo]\n"
        "[ 1234.567890]  RSP <ffff880012347e00>\n"
        "[ 1234.567890] CR2: 0000000000000074\n"
    )
    t = read_text(io.StringIO(text))
    ev = t.events[0]
    assert ev.release == "3.10.0-1160.el7.x86_64" and ev.taint == "G           OE"
    assert ev.rip is not None and ev.rip.address == 0xFFFFFFFFC0123456
    assert [f.function for f in ev.call_trace][:2] == ["foo_write", "vfs_write"]
    assert ev.code is not None and ev.code[ev.code_ip_index] == 0x8B
    d = diagnose(t.facts)[0]
    assert d.title == "null-deref in foo_submit [foo]"
    assert d.culprit is not None and d.culprit.out_of_tree
    assert d.evidence.fault_register is not None
    assert d.evidence.fault_register["register"] == "rdi"


def test_arm64_paste() -> None:
    text = (
        "Unable to handle kernel NULL pointer dereference at virtual address 0000000000000074\n"
        "Mem abort info:\n  ESR = 0x96000005\n"
        "Internal error: Oops: 96000005 [#1] PREEMPT SMP\n"
        "Modules linked in: foo(O)\n"
        "CPU: 2 PID: 77 Comm: sh Tainted: G           O      6.1.0-28-arm64 #1 Debian 6.1.119-1\n"
        "pc : foo_submit+0x14/0x30 [foo]\n"
        "lr : foo_write+0x20/0x40 [foo]\n"
        "Call trace:\n foo_submit+0x14/0x30 [foo]\n foo_write+0x20/0x40 [foo]\n"
        " vfs_write+0xc8/0x2f0\n"
    )
    d = _diag(text)[0]
    assert d.title == "null-deref in foo_submit [foo]"
    assert d.evidence.address_kind == "address.null_offset"


def test_scheduling_while_atomic_blames_the_caller_of_the_sleep() -> None:
    text = (
        "BUG: scheduling while atomic: sh/113/0x00000002\n"
        "Modules linked in: foo(O)\n"
        "CPU: 0 PID: 113 Comm: sh Tainted: G           O      6.1.0 #1\n"
        + _trace(
            "dump_stack_lvl+0x44/0x5c",
            "__schedule_bug.cold+0x4f/0x5d",
            "__schedule+0x5d3/0x7c0",
            "schedule+0x5a/0xd0",
            "schedule_timeout+0x88/0x140",
            "msleep+0x2d/0x40",
            "foo_poll_locked+0x30/0x60 [foo]",
            "foo_write+0x1/0x2 [foo]",
        )
    )
    d = _diag(text)[0]
    assert d.title == "atomic-sleep in foo_poll_locked [foo]"


def test_every_decoder_fact_has_a_sentence() -> None:
    from kcrash.diagnosis import decode

    ref = resources.files("kcrash.report").joinpath("i18n", "rules.en.json")
    cat = json.loads(ref.read_text(encoding="utf-8"))
    ids = {f"evidence.taint.{key}" for _, _, key in decode.TAINT_BITS}
    for code in range(0, 1 << 7):
        ids.update("evidence." + f.id for f in decode.decode_pf(code | (1 << 6)))
    addrs = [
        0,
        0x74,
        decode.LIST_POISON1,
        decode.RED_ACTIVE,
        0xDEAD000000000400,
        0xDFFFFC0000000001,
        0xDFFFFC1000000000,
        0x8000000000000000,
        0x1000,
        0xFFFFFFFFA0001000,
        0xFFFFFFFF81000000,
        0xFFFFC90000001000,
        0xFFFF888000001000,
    ]
    addrs += [int(f"{b:02x}" * 8, 16) for b in decode.POISON_BYTES]
    for a in addrs:
        f = decode.classify_address(a)
        assert f is not None
        ids.add("evidence." + f.id)
        ids.add("explain." + f.id)
    for kind in ("null_base", "poison_base", "base", "fault_insn", "rip_insn", "effective_address"):
        ids.add(f"evidence.code.{kind}")
    for kind in ("null_base", "poison_base", "base"):
        ids.add(f"explain.code.{kind}")
    ids.update(
        {
            "evidence.pf.summary",
            "evidence.list.bad_pointer",
            "evidence.panic_message",
            "evidence.context.irq",
            "evidence.context.softirq",
            "evidence.context.nmi",
            "next.oot_module",
            "next.module",
            "next.poison",
            "next.null_register",
            "next.died_before",
            "culprit.rip",
            "culprit.first_non_skipped",
            "culprit.first_non_sleeping",
            "culprit.above_anchor",
            "culprit.message",
            "culprit.none",
            "rule.unknown.meaning",
            "rule.unknown.explanation",
            "rule.unknown.next.1",
            "class.unknown",
        }
    )
    missing = sorted(i for i in ids if i not in cat)
    assert not missing, missing


def test_slub_debug_poison_overwritten() -> None:
    text = (
        "=============================================================================\n"
        "BUG kmalloc-64 (Tainted: G    B      O     ): Poison overwritten\n"
        "-----------------------------------------------------------------------------\n"
        "INFO: 0xffff888003a1c710-0xffff888003a1c710 @offset=1808. First byte 0x6c instead "
        "of 0x6b\n"
        "INFO: Allocated in frob_new+0x1/0x2 [frob] age=12 cpu=0 pid=9\n"
        "INFO: Freed in frob_free+0x1/0x2 [frob] age=5 cpu=0 pid=9\n"
        "Object 0xffff888003a1c700: 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b\n"
        "CPU: 0 PID: 9 Comm: sh Tainted: G    B      O      6.1.0 #1\n"
        + _trace(
            "dump_stack_lvl+0x44/0x5c",
            "check_bytes_and_report.cold+0x4f/0x70",
            "check_object+0x1/0x2",
            "alloc_debug_processing+0x1/0x2",
            "___slab_alloc+0x1/0x2",
            "__kmalloc+0x1/0x2",
            "frob_new+0x1/0x2 [frob]",
        )
    )
    d = _diag(text)[0]
    assert d.class_id == "sanitizer" and d.qualifier == "Poison overwritten"
    assert d.title == "sanitizer: Poison overwritten in frob_new [frob]"


def test_stack_overflow_by_recursion() -> None:
    text = (
        "BUG: TASK stack guard page was hit at 00000000a1b2c3d4 (stack is 0000..0000)\n"
        "stack guard page: 0000 [#1] PREEMPT SMP NOPTI\n"
        "RIP: 0010:recurse+0x10/0x20 [deep]\n"
        + _trace(*(["recurse+0x15/0x20 [deep]"] * 6), "deep_write+0x1/0x2 [deep]")
        + "Kernel panic - not syncing: TASK stack guard hit\n"
    )
    d = _diag(text)[0]
    assert d.title == "stack-overflow in recurse [deep]"
    assert any(m.id == "evidence.recursion" and m.params["count"] == 6 for m in d.evidence.messages)
