"""Pick the culprit frame of a crash: the first frame that is not plumbing.

The skip lists are data (function-name regexes per category, in the spirit of
syzkaller's ``pkg/report`` and ABRT/satyr): error reporting and panic,
exception entry, kexec, locking, allocators, ``mem*``/``str*``/uaccess
helpers, list helpers, printk, syscall/interrupt entry and workqueue/timer
plumbing.  Names are compared after stripping compiler suffixes
(``.isra.0``, ``.constprop.0``, ``.cold``, ``.part.0``).

Strategies (``Rule.culprit``):

``first``
    RIP, then the reliable call-trace frames; the first one not skipped.
``anchor``
    lockups and stalls: the interrupt part of the trace (``<IRQ>``, ``<NMI>``
    frames: the watchdog's own code) is dropped; then the first frame that is
    neither skipped nor an *anchor* (``do_syscall_64``, ``process_one_work``,
    ``kthread`` ...); failing that, the frame just above the first anchor.
``sleeping``
    hung tasks: ``first`` with the scheduler/sleep/wait/lock frames skipped.
``message``
    the function named in the report line (``stack-protector: ... in: f``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kcrash.facts.model import Frame
from kcrash.oops.lines import parse_frame

SKIP: dict[str, tuple[str, ...]] = {
    "reporting": (
        r"dump_stack(?:_lvl)?",
        r"__dump_stack",
        r"show_regs\w*",
        r"__show_regs",
        r"show_stack\w*",
        r"show_trace_log_lvl",
        r"(?:v|nmi_)?panic",
        r"__die\w*",
        r"die(?:_addr)?",
        r"oops_(?:begin|end|exit)",
        r"__warn(?:_printk)?",
        r"warn_slowpath_\w+",
        r"report_bug",
        r"handle_bug",
        r"handle_invalid_op",
        r"do_trap",
        r"do_error_trap",
        r"fixup_exception",
        r"__stack_chk_fail",
        r"check_panic_on_warn",
        r"print_oops_end_marker",
        r"bust_spinlocks",
        r"kmsg_dump\w*",
        r"do_int3\w*",
        r"math_error",
        r"page_fault_oops",
        r"kernelmode_fixup_or_oops",
        r"__bad_area\w*",
        r"bad_area\w*",
        r"no_context",
        r"do_user_addr_fault",
        r"do_kern_addr_fault",
        r"handle_page_fault",
        r"spurious_kernel_fault",
        r"__do_page_fault",
        r"do_page_fault",
        # RHEL/CentOS 7 (3.10) and 4.x KVM guests enter #PF through the async-PF
        # and tracing wrappers: async_page_fault -> do_async_page_fault ->
        # trace_do_page_fault -> __do_page_fault
        r"do_async_page_fault",
        r"trace_do_page_fault",
        r"do_general_protection",
        r"do_divide_error",
        r"do_invalid_op",
        r"error_entry",
        r"page_fault",
        r"async_page_fault",
        r"general_protection",
        r"invalid_op",
        r"divide_error",
        r"(?:asm_)?exc_\w+",
        r"(?:__)?sysvec_\w+",
        r"asm_sysvec_\w+",
        r"asm_common_interrupt",
        r"nmi_cpu_backtrace\w*",
        r"nmi_trigger_cpumask_backtrace",
        r"arch_trigger_cpumask_backtrace",
        r"trigger_\w+_backtrace",
        r"rcu_dump_cpu_stacks",
        r"print_cpu_stall\w*",
        r"check_cpu_stall",
        r"rcu_pending",
        r"rcu_sched_clock_irq\w*",
        r"watchdog_timer_fn",
        r"watchdog_overflow_callback",
        r"watchdog_hardlockup_check",
        r"__perf_event_overflow",
        r"check_hung_uninterruptible_tasks",
        r"check_hung_task",
        r"watchdog",
        r"out_of_memory",
        r"oom_kill_process",
        r"dump_header",
        r"check_panic_on_oom",
        r"pvpanic_\w+",
        r"(?:atomic_|raw_|blocking_)?notifier_call_chain",
        r"(?:__)?crash_kexec",
        r"machine_kexec",
        r"crash_setup_regs",
        r"refcount_warn_saturate",
        r"__schedule_bug",
        r"warn_bogus_irq_restore",
        r"lockdep_\w+",
        # KCOV instrumentation (CONFIG_KCOV) runs inside every instrumented function
        r"__sanitizer_cov_\w+",
        r"print_\w+_bug\w*",
    ),
    "locking": (
        r"_raw_spin_\w+",
        r"raw_spin_\w+",
        r"do_raw_spin_\w+",
        r"spin_(?:lock|unlock|trylock)\w*",
        r"native_queued_spin_lock_slowpath",
        r"__pv_queued_spin_lock_slowpath",
        r"queued_\w+_slowpath",
        # paravirt spinlocks (4.x-6.x): the unlock slow path and its callee-save thunks
        r"__pv_queued_spin_unlock\w*",
        r"__raw_callee_save_\w+",
        r"_raw_(?:read|write)_\w+",
        r"__raw_\w+",
        r"lock_acquire\w*",
        r"lock_release",
        r"__lock_acquire",
        r"osq_lock",
        r"rt_mutex\w*",
        r"__rt_mutex\w*",
        r"local_bh_\w+",
        r"__local_bh_\w+",
        r"preempt_count_\w+",
        r"preempt_schedule\w*",
        # the page lock: a BUG in folio_unlock() is its caller unlocking a page it
        # does not hold
        r"folio_unlock",
        r"unlock_page",
    ),
    "allocators": (
        r"__?kmalloc\w*",
        r"kmem_cache_\w+",
        r"__kmem_cache_\w+",
        r"kfree\w*",
        r"kzalloc\w*",
        r"kvmalloc\w*",
        r"kvfree\w*",
        r"__?vmalloc\w*",
        r"vfree\w*",
        r"__alloc_pages\w*",
        r"alloc_pages\w*",
        r"alloc_page\w*",
        r"__get_free_pages",
        r"get_page_from_freelist",
        r"__free_pages\w*",
        r"free_pages\w*",
        r"___slab_alloc",
        r"__slab_alloc\w*",
        r"__slab_free",
        r"slab_\w+",
        r"new_slab",
        r"allocate_slab",
        r"kmalloc_trace",
        r"krealloc\w*",
        r"kmemdup\w*",
        r"__?folio_alloc\w*",
        r"vma_alloc_folio",
        r"try_to_free_pages",
        r"do_try_to_free_pages",
        r"__perform_reclaim",
        r"__alloc_pages_\w+",
        r"warn_alloc",
        r"alloc_pages_current",
        r"alloc_pages_vma",
    ),
    "strings": (
        r"__?mem(?:cpy|set|move|cmp|chr|scan|dup)\w*",
        r"str(?:n?cpy|n?cat|n?cmp|n?casecmp|"
        r"len|nlen|r?chr|str|scpy|lcpy|lcat|sep|spn|cspn|pbrk|im|n?dup)\w*",
        r"__str\w+",
        r"_?copy_(?:from|to)_user\w*",
        r"__copy_\w+",
        r"rep_movs_alternative",
        r"copy_user_\w+",
        r"__?(?:get|put)_user\w*",
        r"fortify_\w+",
        r"__fortify\w*",
        r"v?s?n?printf",
        r"v?scnprintf",
        r"csum_partial\w*",
    ),
    "lists": (
        r"__list_(?:add|del)\w*",
        r"list_(?:add|del)\w*",
        r"__list_\w+_valid\w*",
        r"__hlist_\w+",
        r"hlist_(?:add|del)\w*",
        r"__rb_\w+",
        r"rb_(?:insert|erase)\w*",
    ),
    "printk": (r"_?v?printk\w*", r"vprintk_\w+", r"console_\w+", r"printk_\w+"),
    "entry": (
        r"do_syscall_(?:64|32\w*|x64|x32)",
        r"system_call\w*",  # < 4.2 entry
        r"tracesys\w*",
        r"ret_from_sys_call",
        r"entry_SYSCALL\w*",
        r"entry_INT80\w*",
        r"__do_fast_syscall\w*",
        r"do_fast_syscall\w*",
        r"syscall_\w+",
        r"ret_from_fork\w*",
        r"ret_from_intr",
        r"common_interrupt",
        r"irq_exit\w*",
        r"__irq_exit\w*",
        r"__do_softirq",
        r"do_softirq\w*",
        r"handle_softirqs",
        r"invoke_softirq",
        r"irq_enter\w*",
        r"irqentry_\w+",
        r"exit_to_user_mode\w*",
        r"asm_\w+",
        r"__softirqentry_text_start",
        r"__sysvec_\w+",
        r"handle_irq\w*",
        r"handle_edge_irq",
        r"__handle_irq_event_percpu",
        r"handle_irq_event\w*",
    ),
    "workqueue": (
        r"process_one_work",
        r"process_scheduled_works",
        r"call_timer_fn",
        # timer API: a crash in them is a bad timer passed by the caller
        r"lock_timer_base",
        r"__mod_timer",
        r"mod_timer\w*",
        r"__run_timers\w*",
        r"run_timer_softirq",
        r"expire_timers",
        r"__hrtimer_run_queues",
        r"hrtimer_interrupt",
        r"hrtimer_run_\w+",
        r"tasklet_action\w*",
        r"rcu_do_batch",
        r"rcu_core\w*",
        r"tick_sched_\w+",
        r"update_process_times",
        r"run_ksoftirqd",
        r"smpboot_thread_fn",
    ),
}
SLEEPING: tuple[str, ...] = (
    r"__schedule",
    r"schedule\w*",
    r"io_schedule\w*",
    r"wait_for_completion\w*",
    r"__wait_for_common",
    r"wait_for_common\w*",
    r"do_wait_for_common",
    r"msleep\w*",
    r"usleep_range\w*",
    r"do_nanosleep",
    r"hrtimer_nanosleep",
    r"__wait_event\w*",
    r"wait_event\w*",
    r"prepare_to_wait\w*",
    r"finish_wait",
    r"out_of_line_wait_on_bit\w*",
    r"__?wait_on_bit\w*",
    r"bit_wait\w*",
    r"folio_wait\w*",
    r"__?wait_on_page\w*",
    r"rwsem_down\w*",
    r"__?down_\w+",
    r"down",
    r"__mutex_lock\w*",
    r"mutex_lock\w*",
    r"synchronize_rcu\w*",
    r"__synchronize_srcu",
    r"__?flush_work\w*",
    r"__?flush_workqueue",
    r"rt_mutex_\w+",
    r"__rt_mutex_\w+",
    r"percpu_down_\w+",
    r"__percpu_down_\w+",
    r"jbd2_log_wait_commit",
    r"wait_woken",
)
ANCHORS: tuple[str, ...] = (
    r"do_syscall_64",
    r"do_syscall_x64",
    r"entry_SYSCALL_64\w*",
    r"process_one_work",
    r"worker_thread",
    r"kthread",
    r"ret_from_fork\w*",
    r"do_idle",
    r"cpu_startup_entry",
    r"start_secondary",
    r"secondary_startup_64\w*",
    r"smpboot_thread_fn",
)

_SUFFIX_RE = re.compile(r"\..*$")


def base_name(function: str) -> str:
    """``foo.isra.0`` / ``foo.cold`` / ``foo.constprop.0.cold`` -> ``foo``.

    C identifiers have no dot, so everything after the first dot is a
    compiler-generated clone suffix (as satyr does).
    """
    return _SUFFIX_RE.sub("", function)


def _compile(pats: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(r"^(?:" + "|".join(pats) + r")$")


_SKIP_ALL = _compile(tuple(p for pats in SKIP.values() for p in pats))
_SLEEPING = _compile(SLEEPING)
_ANCHORS = _compile(ANCHORS)
_INTERRUPT_CONTEXTS = ("irq", "nmi", "softirq", "exception")


@dataclass
class Pick:
    """The chosen frame and how it was chosen."""

    frame: Frame
    index: int  # position in the candidate list
    reason: str  # message id suffix: "rip", "first_non_skipped", "above_anchor", ...


def is_skipped(
    function: str | None, extra: re.Pattern[str] | None = None, sleeping: bool = False
) -> bool:
    if function is None:
        return True
    name = base_name(function)
    if not name:  # a local label such as ".slowpath" (paravirt thunks), not a function
        return True
    if _SKIP_ALL.match(name):
        return True
    if sleeping and _SLEEPING.match(name):
        return True
    return bool(extra is not None and extra.match(name))


def candidates(rip: Frame | None, trace: list[Frame]) -> list[Frame]:
    """RIP then the reliable frames (all frames when none is reliable)."""
    frames = [f for f in trace if f.reliable]
    if not frames:
        frames = list(trace)
    out = []
    if rip is not None and rip.function is not None:
        out.append(rip)
    for f in frames:
        if out and f.function == out[-1].function and f.module == out[-1].module and f is not rip:
            if f.regs and not out[-1].regs:
                out[-1] = f
            continue
        out.append(f)
    return out


def pick_culprit(
    strategy: str,
    rip: Frame | None,
    trace: list[Frame],
    extra_skip: tuple[str, ...] = (),
    message_symbol: str | None = None,
) -> Pick | None:
    """Choose the culprit frame according to the rule's strategy."""
    extra = _compile(extra_skip) if extra_skip else None
    if strategy == "message" and message_symbol:
        fr = parse_frame(message_symbol)
        if fr is not None and fr.function:
            return Pick(fr, 0, "message")
    cands = candidates(rip, trace)
    if strategy == "anchor":
        rip_ctx = rip.context if rip is not None else None
        if rip_ctx not in _INTERRUPT_CONTEXTS:
            kept = [f for f in cands if f.context not in _INTERRUPT_CONTEXTS]
            cands = kept or cands
        first_anchor = None
        for i, f in enumerate(cands):
            if f.function and _ANCHORS.match(base_name(f.function)):
                first_anchor = i
                break
        limit = first_anchor if first_anchor is not None else len(cands)
        for i, f in enumerate(cands[:limit]):
            if not is_skipped(f.function, extra):
                return Pick(f, i, "rip" if f is rip else "above_anchor")
        if first_anchor:
            return Pick(cands[first_anchor - 1], first_anchor - 1, "above_anchor")
        return None
    sleeping = strategy == "sleeping"
    reason = "first_non_sleeping" if sleeping else "first_non_skipped"
    for i, f in enumerate(cands):
        if not is_skipped(f.function, extra, sleeping):
            return Pick(f, i, "rip" if f is rip else reason)
    return None
