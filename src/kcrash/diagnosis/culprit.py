"""Crash site and culprit: where the CPU was, and which frame to blame.

The **crash site** is the function at RIP / ``pc`` (or, when the log has no
RIP line, the exception frame inside the call trace, or the function the
report header names: ``WARNING: ... at f.c:12 f+0x1/0x2``, ``BUG: KASAN: ...
in f+0x1/0x2``).  The **culprit** is the frame an engineer would blame: the
crash site unless it is generic infrastructure that only did what its caller
asked (a ``memcpy`` handed a bad pointer, a ``refcount_inc`` that saw a
freed object, the WARN plumbing), then the first caller that is not.

The tables below say what is infrastructure.  Each row is one function-name
regex (matched against the whole name, after compiler suffixes such as
``.isra.0``/``.cold`` are stripped) and *why* it is never the culprit.  They
are our own; syzkaller's ``pkg/report/linux.go`` and satyr's
``koops_stacktrace.c`` were read to learn which names matter.

How each class picks (``Rule.culprit`` in :mod:`kcrash.crash_classes`):

``first``
    the crash site, then its callers; the first frame that is not skipped.
``access``
    sanitizers (KASAN, KFENCE, KMSAN, UBSAN...): the access site named in the
    header, then its callers, skipping as ``first`` does.
``anchor``
    soft/hard lockups and RCU stalls: the interrupt part of the trace (the
    watchdog's own code) is dropped.  The CPU was sampled at a random point of
    a loop that may span several functions, so the frame just above the first
    *anchor* (syscall entry, VFS dispatch, workqueue/timer dispatch...) names
    the loop stably.  A module's frame inside the loop wins over that (driver
    code loops far more often than the core that called it).
``sleeping``
    sleeping in atomic context: ``first`` with scheduling, sleeping, waiting and
    reclaim frames skipped too (the caller of the sleeping call).
``waits``
    hung tasks: ``sleeping``, but a wait that names what the task waits for
    (``HUNG_ANCHORS``) wins (what the task waited *in*, not how it waits).
``lock``
    lockdep: the functions of the ``at: f+0x1/0x2`` lines that say where the
    offending lock is taken (after ``is trying to acquire lock:``, ``takes:``,
    ...), then the stack, skipping as ``first`` does.
``overflow``
    stack overflows (guard page hit, corrupted stack end): like ``anchor`` —
    the overflowing recursion is sampled at a random depth, the frame above the
    first anchor names it; a real ``PANIC: double fault`` is blamed like ``first``.
``recursion``
    ``overflow``, unless one function fills the stack: that function (the
    engine's choice).
``none``
    hardware errors: no code is blamed.
``message``
    the function named in the report line (``stack-protector: ... in: f``).

Whatever the class, when a crash happens inside a core helper called from a
module (a driver, a filesystem), the helper is the crash site and the
module's frame the culprit: the helper is infrastructure in these tables.
A RIP inside a retpoline thunk (a call through a corrupt function pointer)
blames the caller; a crash in interrupt context is blamed within the
interrupt's frames first; a stack that is infrastructure all the way down is
blamed on its first frame that is not reporting or exception plumbing rather
than on nothing.  Hung tasks waiting for ``rtnl_lock``, an RCU grace period or
``netdev_run_todo`` name that wait (``HUNG_ANCHORS``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from kcrash.crash_classes import RULES
from kcrash.model import Frame
from kcrash.oops.lines import parse_frame


@dataclass(frozen=True)
class Skip:
    """One row of a skip table: a function-name regex and why it is not blamed."""

    pattern: str
    why: str


def _rows(why: str, *patterns: str) -> tuple[Skip, ...]:
    """Several names sharing one reason (one row each)."""
    return tuple(Skip(p, why) for p in patterns)


#: Generic infrastructure, skipped for every class.  Category -> rows.
INFRASTRUCTURE: dict[str, tuple[Skip, ...]] = {
    "reporting": (
        *_rows(
            "prints the report itself (stack dump, registers), called by every report",
            r"(?:__)?dump_stack(?:_lvl)?",
            r"show_regs\w*",
            r"__show_regs",
            r"show_stack\w*",
            r"show_trace_log_lvl",
            r"dump_backtrace\w*",
            r"unwind_backtrace",
            r"walk_stackframe",
            r"arch_stack_walk",
            r"stack_trace_save\w*",
            r"stack_trace_consume_entry",
            r"print_tainted",
            r"print_oops_end_marker",
            r"print_modules",
            r"print_hex_dump\w*",
            r"hex_dump_to_buffer",
        ),
        *_rows(
            "linker section markers an unwinder resolved a bad address to: not functions",
            r"_stext",
            r"_etext",
            r"__(?:rela_dyn|bss|init|data|sched_text|irqentry_text|entry_text|kprobes_text|"
            r"per_cpu)_(?:start|end)",
        ),
        *_rows(
            "panic and die: what the kernel does after deciding to stop",
            r"(?:__)?(?:v|nmi_)?panic(?:_saved_regs|_smp_self_stop)?",
            r"__die\w*",
            r"die(?:_addr|_kernel_fault)?",
            r"oops_(?:begin|end|exit|enter)",
            r"bust_spinlocks",
            r"kmsg_dump\w*",
            r"check_panic_on_warn",
            r"make_task_dead",
            r"(?:__)?crash_kexec",
            r"machine_kexec",
            r"crash_setup_regs",
            r"pvpanic_\w+",
            r"(?:atomic_|raw_|blocking_)?notifier_call_chain",
            r"notify_die",
        ),
        *_rows(
            "WARN()/BUG() plumbing: turns the ud2/brk of WARN_ON and BUG_ON into a report",
            r"__warn(?:_printk)?",
            r"warn_slowpath_\w+",
            r"report_bug\w*",
            r"handle_bug",
            r"fixup_bug",
            r"handle_invalid_op",
            r"do_trap\w*",
            r"do_error_trap",
            r"do_invalid_op",
            r"invalid_op",
            r"(?:asm_)?exc_invalid_op",
            r"bug_handler",
            r"call_break_hook",
            r"brk_handler",
            r"do_debug_exception",
            r"el1_dbg",
            r"__stack_chk_fail",
            r"__fortify_report",
            r"fortify_panic",
            r"__ubsan_handle_\w+",
            r"handle_(?:\w+_)?overflow",
            r"ubsan_\w+",
            r"__ubsan_\w+",
        ),
        *_rows(
            "detectors that found the bug, not the code that has it (watchdogs, lockup and"
            " stall reporters, OOM reporter)",
            r"nmi_cpu_backtrace\w*",
            r"nmi_trigger_cpumask_backtrace",
            r"arch_trigger_cpumask_backtrace",
            r"trigger_\w+_backtrace",
            r"rcu_dump_cpu_stacks",
            r"print_cpu_stall\w*",
            r"print_other_cpu_stall",
            r"check_cpu_stall",
            r"rcu_pending",
            r"rcu_sched_clock_irq\w*",
            r"rcu_check_callbacks",
            r"tick_periodic",
            r"arch_timer_handler_\w+",
            r"dump_cpu_task",
            r"sched_show_task",
            r"tick_handle_periodic",
            r"watchdog_timer_fn",
            r"watchdog_overflow_callback",
            r"watchdog_hardlockup_check",
            r"watchdog",
            r"__perf_event_overflow",
            r"check_hung_uninterruptible_tasks",
            r"check_hung_task",
            r"out_of_memory",
            r"oom_kill_process",
            r"dump_header",
            r"check_panic_on_oom",
            r"__schedule_bug",
            r"warn_bogus_irq_restore",
            r"warn_alloc\w*",
        ),
    ),
    "fault-entry": (
        *_rows(
            "x86 page-fault path: runs because of the faulting access, which is in the frame"
            " above (RHEL 7 / 3.10: async_page_fault -> do_async_page_fault ->"
            " trace_do_page_fault -> __do_page_fault -> bad_area_nosemaphore -> no_context)",
            r"(?:async_)?page_fault",
            r"do_async_page_fault",
            r"trace_do_page_fault",
            r"(?:__)?do_page_fault",
            r"__bad_area\w*",
            r"bad_area\w*",
            r"no_context",
            r"do_user_addr_fault",
            r"do_kern_addr_fault",
            r"handle_page_fault",
            r"spurious_kernel_fault",
            r"page_fault_oops",
            r"kernelmode_fixup_or_oops",
            r"fixup_exception",
            r"(?:asm_)?exc_page_fault",
        ),
        *_rows(
            "x86 exception entry for #GP, #DE, #DF, int3 and the other traps",
            r"(?:asm_)?exc_\w+",
            r"do_general_protection",
            r"general_protection",
            r"do_divide_error",
            r"divide_error",
            r"do_int3\w*",
            r"math_error",
            r"error_entry",
            r"do_double_fault",
            r"handle_stack_overflow",
        ),
        *_rows(
            "arm64/arm exception entry: the faulting access is in the interrupted frame",
            r"do_mem_abort",
            r"do_(?:kernel|translation|page|bad_area|tag_check|alignment)_fault",
            r"__do_kernel_fault",
            r"el1_(?:abort|da|ia|sync\w*|pc|undef|inv|dbg)",
            r"el1h_64_sync\w*",
            r"el1_sync_handler",
            r"__dabt_svc",
            r"__pabt_svc",
            r"do_DataAbort",
            r"do_PrefetchAbort",
            r"do_undefinstr",
            r"do_sea",
            r"arm64_notify_die",
        ),
        *_rows(
            "powerpc and s390 exception entry",
            r"program_check_\w+",
            r"bad_page_fault",
            r"__bad_page_fault",
            r"do_(?:hash_)?page_fault\w*",
            r"data_access_common\w*",
            r"pgm_check_handler",
            r"do_report_trap",
            r"do_exception",
        ),
    ),
    "sanitizers": (
        *_rows(
            "sanitizer runtime: checks the access and prints the report",
            r"(?:__)?kasan_\w+",
            r"__asan_\w+",
            r"__hwasan_\w+",
            r"(?:__)?kmsan_\w+",
            r"__msan_\w+",
            r"(?:__)?kcsan_\w+",
            r"__tsan_\w+",
            r"(?:__)?kfence_\w+",
            r"check_memory_region\w*",
            r"memory_is_poisoned\w*",
            r"print_address_description\w*",
            r"print_report",
            r"end_report",
            r"report_\w+_(?:read|write|access)",
            r"check_heap_object",
            r"usercopy_\w+",
            r"__check_heap_object",
            r"__check_object_size",
            r"check_object_size",
            r"usercopy_abort",
            r"kmemleak_\w+",
            r"read_word_at_a_time",
            r"(?:__)?(?:read|write)_once_\w*nocheck",
        ),
        *_rows(
            "coverage instrumentation (kcov) compiled into every function of a fuzzing kernel",
            r"__sanitizer_cov_\w+",
            r"write_comp_data",
            r"check_kcov_mode",
        ),
    ),
    "debug-checks": (
        *_rows(
            "debug checks that report the caller's mistake (might_sleep, lockdep, debugobjects,"
            " list debugging, preemption checks)",
            r"(?:__)?might_(?:sleep|fault|resched)\w*",
            r"___might_sleep",
            r"__cant_sleep",
            r"schedule_debug\w*",
            r"lockdep_\w+",
            r"__lockdep_\w+",
            r"(?:__)?debug_object\w*",
            r"\w+_is_static_object",
            r"\w+_fixup_(?:init|activate|free|assert_init)",
            r"debug_check_no_\w+",
            r"debug_print_object",
            r"debug_locks_off",
            r"check_preemption_disabled",
            r"debug_smp_processor_id",
            r"__this_cpu_preempt_check",
            r"__list_(?:add|del)_valid\w*",
            r"__list_\w+_report",
            r"list_\w+_corruption_report\w*",
            r"refcount_warn_saturate",
            r"lock_is_held\w*",
            r"(?:trace|lockdep)_(?:hard|soft)irqs?_\w+",
            r"trace_hardirqs_\w+",
        ),
    ),
    "locking": (
        *_rows(
            "spinlocks and rwlocks: a crash or a stall inside them is the caller's lock",
            r"_raw_spin_\w+",
            r"raw_spin_\w+",
            r"do_raw_spin_\w+",
            r"spin_(?:lock|unlock|trylock)\w*",
            r"native_queued_spin_lock_slowpath",
            r"__pv_queued_spin_lock_slowpath",
            r"queued_\w+_slowpath",
            # paravirt unlock slow path (4.x-6.x KVM guests); its "__raw_callee_save_"
            # thunk is matched by __raw_\w+ below
            r"__pv_queued_spin_unlock\w*",
            r"_raw_(?:read|write)_\w+",
            r"do_raw_(?:read|write)_\w+",
            r"(?:read|write)_(?:lock|unlock|trylock)\w*",
            r"__raw_\w+",
            r"arch_spin_\w+",
            r"\w+_(?:read|write)_(?:un)?lock(?:_\w+)?",  # a subsystem's own lock wrapper
            r"spin_dump",
            r"spin_bug",
            r"rwlock_bug",
        ),
        *_rows(
            "lockdep hooks of every lock operation",
            r"lock_acquire\w*",
            r"lock_release",
            r"__lock_acquire",
            r"__lock_release",
            r"lock_acquired",
            r"lock_contended",
            r"mark_lock\w*",
            r"(?:re)?acquire_held_locks|mark_held_locks",
            r"register_lock_class",
            r"look_up_lock_class",
            r"lock_class\w*",
            r"hlock_class",
            r"lock_downgrade",
            r"check_flags",
            r"find_held_lock",
            r"validate_chain",
            r"check_prev\w*",
            r"check_noncircular",
            r"print_usage_bug",
            r"print_unlock_imbalance_bug",
        ),
        *_rows(
            "sleeping locks (mutex, rwsem, rt_mutex, semaphore): the lock taker is blamed",
            r"(?:__)?mutex_(?:lock|unlock|trylock)\w*",
            r"mutex_\w+",
            r"(?:__)?rt_mutex\w*",
            r"(?:__)?down_(?:read|write)\w*",
            r"down",
            r"down_(?:interruptible|killable|timeout|trylock)",
            r"(?:__)?up_(?:read|write)\w*",
            r"up",
            r"rwsem_\w+",
            r"__rwsem_\w+",
            r"percpu_(?:down|up)_\w+",
            r"__percpu_(?:down|up)_\w+",
            r"osq_(?:lock|unlock)",
            r"call_rwsem_\w+",
            r"__down\w*",
            r"ldsem_(?:down|up)_\w+",
            r"owner_on_cpu",
            r"(?:__)?lock_sock\w*",
            r"release_sock",
            r"(?:__)?lock_page\w*",
            r"unlock_page",
            r"folio_(?:lock|unlock)\w*",
            r"__folio_lock\w*",
        ),
        *_rows(
            "bottom-half and preemption control",
            r"(?:__)?local_bh_\w+",
            r"preempt_count_\w+",
            r"preempt_schedule\w*",
            r"(?:__)?rcu_read_(?:lock|unlock)\w*",
        ),
    ),
    "atomics": (
        *_rows(
            "atomic operations, bit operations and reference counts: they only report (or"
            " trip over) the state the caller left",
            r"(?:arch_)?atomic(?:64|_long)?_\w+",
            r"(?:__)?(?:set|clear|change|test)_bit\w*",
            r"test_and_(?:set|clear|change)_bit\w*",
            r"refcount_\w+",
            r"_atomic_\w+",
            r"__refcount_\w+",
            r"kref_\w+",
            r"ref_tracker_\w+",
            r"percpu_ref_\w+",
        ),
    ),
    "allocators": (
        *_rows(
            "slab, page and vmalloc allocators: a crash inside them is a corruption made"
            " elsewhere, a WARN inside them is the caller's bad size or flags",
            r"_*kmalloc\w*",
            r"kmalloc_\w+",
            r"(?:__)?kmem_cache_\w+",
            r"kmem_cache_\w+",
            r"(?:__)?kfree\w*",
            r"kv?free_\w+",
            r"kzalloc\w*",
            r"kcalloc\w*",
            r"(?:__)?kvmalloc\w*",
            r"kvzalloc\w*",
            r"kvfree\w*",
            r"(?:__)?vmalloc\w*",
            r"vzalloc\w*",
            r"vfree\w*",
            r"__vunmap",
            r"vunmap",
            r"(?:__)?alloc_pages\w*",
            r"alloc_pages\w*",
            r"alloc_page\w*",
            r"__get_free_pages",
            r"get_zeroed_page",
            r"get_page_from_freelist",
            r"(?:__)?free_pages\w*",
            r"free_pages\w*",
            r"free_unref_page\w*",
            r"(?:__)?free_page\w*",
            r"___slab_alloc",
            r"__slab_alloc\w*",
            r"__slab_free",
            r"slab_\w+",
            r"slob_\w+",
            r"new_slab",
            r"allocate_slab",
            r"setup_object\w*",
            r"krealloc\w*",
            r"(?:__)?krealloc\w*",
            r"kmemdup\w*",
            r"kstrn?dup\w*",
            r"(?:__)?folio_alloc\w*",
            r"vma_alloc_folio\w*",
            r"alloc_pages_current",
            r"alloc_pages_vma",
            r"__alloc_frozen_pages\w*",
            r"mempool_\w+",
            r"(?:__)?alloc_skb\w*",
            r"kfree_skb\w*",
            r"__kfree_skb",
            r"consume_skb",
            r"skb_release_\w+",
            r"pcpu_alloc",
            r"put_cpu_partial",
            r"unfreeze_partials\w*",
            r"(?:__)?memcg_slab_\w+",
            r"\w*slab_(?:post|pre)_alloc_hook",
            r"(?:__)?memcg_kmem_\w+",
            r"__alloc_percpu\w*",
        ),
    ),
    "strings": (
        *_rows(
            "memory and string primitives: the caller handed them the bad pointer or length",
            r"(?:__)?mem(?:cpy|set|move|cmp|chr|scan|dup)\w*",
            r"mem(?:cpy|set|move)_\w+",
            r"(?:__)?memcpy\w*",
            r"str(?:n?cpy|n?cat|n?cmp|n?casecmp|len|nlen|r?chr|n?str|scpy|lcpy|lcat|sep|spn|"
            r"cspn|pbrk|im|n?dup|nchr)\w*",
            r"__str\w+",
            r"sized_strscpy",
            r"fortify_\w+",
            r"__fortify\w*",
            r"v?s?n?printf",
            r"v?scnprintf",
            r"k?v?asprintf",
            r"format_decode",
            r"string\w*",
            r"\w+_string",  # vsprintf's per-format helpers: hex_string, ip4_string...
            r"pointer",
            r"number",
            r"csum_partial\w*",
            r"crc\d+\w*",
            r"crc_itu_t",
            r"(?:__)?bitmap_\w+",
            r"find_(?:first|next|last)_\w*bit\w*",
            r"_find_(?:first|next|last)_\w*bit\w*",
        ),
        *_rows(
            "user-space copies (uaccess): the caller passed the bad buffer or size",
            r"_?copy_(?:from|to)_user\w*",
            r"__copy_\w+",
            r"raw_copy_\w+",
            r"rep_movs_alternative",
            r"copy_user_\w+",
            r"(?:__)?(?:get|put)_user\w*",
            r"_?copy_(?:to|from)_iter\w*",
            r"copy_page_(?:to|from)_iter\w*",
            r"copy_folio_to_iter",
            r"strncpy_from_user",
            r"strnlen_user",
            r"__arch_copy_\w+",
            r"__arch_clear_user",
            r"clear_user\w*",
            r"memdup_user\w*",
            r"vmemdup_user",
            r"simple_copy_to_iter",
            r"_copy_\w+",
        ),
    ),
    "containers": (
        *_rows(
            "list, hash-list, rbtree, radix-tree/xarray, IDR and rhashtable helpers: they"
            " follow the pointers their caller stored",
            r"(?:__)?list_(?:add|del|replace|move|splice|cut)\w*",
            r"list_(?:add|del|replace|move|splice|cut|lru)\w*",
            r"(?:__)?hlist_\w+",
            r"hlist_\w+",
            r"__rb_\w+",
            r"rb_\w+",
            r"(?:__)?radix_tree_\w+",
            r"radix_tree_\w+",
            r"xas_\w+",
            r"(?:__)?xa_\w+",
            r"xa_\w+",
            r"idr_\w+",
            r"ida_\w+",
            r"(?:__)?rhashtable_\w+",
            r"rhashtable_\w+",
            r"klist_\w+",
            r"llist_\w+",
        ),
    ),
    "timers-workqueues": (
        *_rows(
            "timer and workqueue API: arming, cancelling and flushing others' callbacks",
            r"(?:__)?del_timer\w*",
            r"del_timer\w*",
            r"(?:__)?timer_delete\w*",
            r"timer_delete\w*",
            r"(?:__)?try_to_del_timer\w*",
            r"try_to_del_timer_sync",
            r"(?:__)?mod_timer\w*",
            r"add_timer\w*",
            r"lock_timer_base",
            r"hrtimer_(?:start|cancel|try_to_cancel)\w*",
            r"__hrtimer_start\w*",
            r"sk_(?:stop|reset)_timer\w*",
            r"(?:__)?flush_work\w*",
            r"flush_delayed_work",
            r"(?:__)?flush_workqueue",
            r"drain_workqueue",
            r"destroy_workqueue",
            r"(?:__)?cancel_work\w*",
            r"cancel_delayed_work\w*",
            r"__cancel_work_timer",
            r"try_to_grab_pending",
            r"(?:__)?queue_work\w*",
            r"queue_work\w*",
            r"(?:__)?queue_delayed_work\w*",
            r"queue_delayed_work\w*",
            r"mod_delayed_work\w*",
            r"insert_work",
            r"kthread_stop\w*",
            r"kthread_(?:park|unpark)",
            r"(?:__)?call_rcu\w*",
            r"init_timer_key",
            r"(?:__)?init_work\w*",
            r"cleanup_srcu_struct\w*",
            r"kfree_call_rcu",
        ),
    ),
    "device-core": (
        *_rows(
            "kobject, sysfs, kernfs and device-model core: register/unregister on behalf of"
            " the driver that called them",
            r"(?:__)?kobject_\w+",
            r"add_uevent_var",
            r"get_device_parent",
            r"device_(?:add|del|register|unregister|destroy|release|remove_file|create_file|"
            r"for_each_child|initialize)\w*",
            r"__device_\w+",
            r"put_device",
            r"get_device",
            r"devres_release_all",
            r"release_nodes",
            r"sysfs_\w+",
            r"dpm_sysfs_\w+",
            r"device_pm_remove",
            r"kernfs_(?:activate|deactivate|put|get|drain|break_active_protection)\w*",
            r"driver_(?:register|unregister|attach|detach)\w*",
            r"bus_(?:add|remove|probe)_\w+",
            r"really_probe",
            r"driver_bound",
            r"bus_for_each_(?:drv|dev)",
            r"bus_probe_device",
            r"device_initial_probe",
            r"(?:__)?driver_probe_device",
            r"driver_probe_device",
            r"(?:__)?device_attach\w*",
            r"device_(?:driver_)?(?:attach|detach)\w*",
            r"debugfs_\w+",
            r"proc_(?:create|remove|register|mkdir)\w*",
            r"remove_proc_\w+",
            r"tty_(?:un)?register_device\w*",
            r"hwrng_unregister",
            r"i2c_del_adapter",
            r"(?:__)?unregister_client",
        ),
    ),
    "subsystem-cores": (
        *_rows(
            "socket-buffer helpers: they BUG or WARN when their caller asks for more than the"
            " buffer holds",
            r"skb_(?:put|push|pull|panic|over_panic|under_panic|copy_bits|store_bits)\w*",
            r"__skb_(?:put|push|pull)\w*",
            r"pskb_expand_head",
            r"skb_checksum_help",
        ),
        *_rows(
            "USB core transfer API: a WARN in it is the driver's bad URB or pipe",
            r"usb_(?:submit|kill|poison|unlink|free|alloc)_urb",
            r"usb_kill_anchored_urbs",
            r"usb_(?:control|bulk|interrupt)_msg\w*",
            r"usb_start_wait_urb",
            r"usb_hcd_submit_urb",
        ),
        *_rows(
            "USB core enumeration: it probes the driver, whose code runs above it",
            r"usb_new_device",
            r"hub_event",
            r"hub_port_connect\w*",
            r"usb_set_configuration",
            r"usb_probe_(?:interface|device)",
            r"usb_generic_driver_probe",
            r"generic_probe",
        ),
        *_rows(
            "network-device core: (un)registers on behalf of the driver",
            r"rollback_registered\w*",
            r"unregister_netdevice\w*",
            r"unregister_netdev",
            r"register_netdevice",
            r"free_netdev",
            r"netdev_run_todo",
        ),
        *_rows(
            "inode and dentry reference helpers: they trip over the caller's counts",
            r"iput\w*",
            r"ihold",
            r"(?:fast_)?dput",
            r"drop_nlink",
            r"clear_nlink",
            r"mark_buffer_dirty",
            r"truncate_inode_pages\w*",
            r"find_lock_entries",
            r"umount_check",
        ),
        *_rows(
            "assertion and sanity-check helpers of their own subsystem",
            r"assertfail",
            r"__\w+_panic",
            r"(?:__)?seqprop_assert",
            r"__folio_rmap_sanity_checks",
            r"__phys_addr\w*",
            r"__virt_to_phys\w*",
            r"__check_\w+",
        ),
        *_rows(
            "MMIO and port I/O accessors: the driver chose the address",
            r"logic_(?:in|out)\w*",
            r"(?:__raw_)?(?:read|write)[bwlq](?:_relaxed)?",
            r"io(?:read|write)\d+\w*",
        ),
        *_rows(
            "retpoline thunks and tracepoint probes: compiler and tracing glue",
            r"__x86_indirect_thunk_\w+",
            r"__x86_return_thunk",
            r"perf_trace_\w+",
            r"trace_event_raw_event_\w+",
            r"__traceiter_\w+",
        ),
    ),
    "printk": (
        *_rows(
            "printk and the consoles: printing a message is never the bug",
            r"_?v?printk\w*",
            r"dev_vprintk\w*",
            r"vprintk_\w+",
            r"printk_\w+",
            r"console_(?:unlock|lock|trylock|flush\w*|emit\w*|conditional_schedule|callback)",
            r"call_console_\w+",
            r"dev_(?:printk|emerg|alert|crit|err|warn|notice|info|dbg)\w*",
            r"_dev_(?:emerg|alert|crit|err|warn|notice|info)\w*",
            r"__dev_printk",
            r"netdev_(?:printk|err|warn|info)\w*",
            r"va_format",
        ),
    ),
    "scheduler": (
        *_rows(
            "scheduler and wait/wake primitives: how a task sleeps or wakes another, not why",
            r"__schedule",
            r"schedule(?:_timeout|_preempt_disabled|_hrtimeout\w*|_idle)?\w*",
            r"io_schedule\w*",
            r"context_switch",
            r"__switch_to\w*",
            r"finish_task_switch\w*",
            r"try_to_wake_up",
            r"wake_up_\w+",
            r"(?:__)?wake_up\w*",
            r"complete(?:_all)?",
            r"wait_for_completion\w*",
            r"(?:__)?wait_for_common\w*",
            r"do_wait_for_common",
            r"prepare_to_wait\w*",
            r"finish_wait",
            r"autoremove_wake_function",
            r"default_wake_function",
            r"(?:__)?wait_event\w*",
            r"wait_woken",
            r"out_of_line_wait_on_bit\w*",
            r"(?:__)?wait_on_bit\w*",
            r"bit_wait\w*",
            r"folio_wait\w*",
            r"(?:__)?wait_on_page\w*",
            r"msleep\w*",
            r"usleep_range\w*",
            r"do_nanosleep",
            r"hrtimer_nanosleep",
            r"(?:__)?cond_resched\w*",
            r"_cond_resched",
            r"smp_call_function\w*",
            r"on_each_cpu\w*",
            r"stop_(?:one_cpu|machine)\w*",
        ),
        *_rows(
            "busy-wait delays (udelay/mdelay/ndelay): the caller chose to spin there",
            r"delay_(?:tsc|loop|halt\w*)",
            r"__(?:const_)?[umn]?delay",
            r"cpu_relax",
        ),
    ),
    "reclaim": (
        *_rows(
            "memory reclaim and compaction: the allocation that triggered it is the story",
            r"try_to_free_pages",
            r"try_to_free_mem_cgroup_pages",
            r"do_try_to_free_pages",
            r"__perform_reclaim",
            r"__alloc_pages_direct_\w+",
            r"shrink_\w+",
            r"kswapd\w*",
            r"balance_pgdat",
            r"try_to_compact_pages",
            r"compact_\w+",
            r"mem_cgroup_(?:charge|try_charge|handle_over_high)\w*",
            r"try_charge\w*",
        ),
    ),
    "entry": (
        *_rows(
            "system-call entry and syscall wrappers' dispatch (the syscall's own function is kept)",
            r"do_syscall_(?:64|32\w*|x64|x32)",
            r"system_call\w*",  # < 4.2 entry
            r"tracesys\w*",
            r"ret_from_sys_call",
            r"entry_SYSCALL\w*",
            r"entry_SYSENTER\w*",
            r"entry_INT80\w*",
            r"__do_fast_syscall\w*",
            r"do_fast_syscall\w*",
            r"sysenter_dispatch",
            r"syscall_\w+",
            r"invoke_syscall",
            r"el0_svc\w*",
            r"el0t_64_sync\w*",
            r"do_el0_svc",
            r"ret_fast_syscall",
            r"exit_to_user_mode\w*",
            r"(?:__)?x64_sys_call",
        ),
        *_rows(
            "interrupt, softirq and kernel-thread entry: how the CPU got here",
            r"ret_from_fork\w*",
            r"ret_from_intr",
            r"common_interrupt",
            r"irq_exit\w*",
            r"(?:entering|exiting)_irq",
            r"__irq_exit\w*",
            r"__do_softirq",
            r"do_softirq\w*",
            r"handle_softirqs",
            r"invoke_softirq",
            r"irq_enter\w*",
            r"irqentry_\w+",
            r"asm_\w+",
            r"__softirqentry_text_start",
            r"__sysvec_\w+",
            r"(?:__)?sysvec_\w+",
            r"\w*apic_timer_interrupt\w*",
            r"handle_irq\w*",
            r"handle_edge_irq",
            r"handle_fasteoi_irq",
            r"__handle_irq_event_percpu",
            r"handle_irq_event\w*",
            r"generic_handle_\w+",
            r"gic_handle_irq",
            r"(?:__)?handle_domain_irq",
            r"handle_percpu_devid_irq",
            r"__irq_(?:svc|usr)",
            r"el1_irq",
            r"el1h_64_irq\w*",
            # arm64 >= 5.14: el1h_64_irq -> el1h_64_irq_handler -> el1_interrupt ->
            # __el1_irq -> do_interrupt_handler -> call_on_irq_stack; el0t_64_irq from user
            r"el1_interrupt",
            r"__el1_irq",
            r"el0t_64_irq\w*",
            r"el0_interrupt",
            r"__el0_irq_handler_common",
            r"call_on_irq_stack",
            r"do_interrupt_handler",
            r"kthread",
            r"worker_thread",
            r"rescuer_thread",
        ),
        *_rows(
            "the idle loop: a CPU interrupted while idle did nothing wrong",
            r"native_safe_halt",
            r"(?:default|arch_cpu|acpi)_idle\w*",
            r"acpi_idle_\w+",
            r"cpuidle_enter\w*",
            r"(?:do|cpu)_idle",
            r"cpu_do_idle",  # arm64: the wfi of arch_cpu_idle
            r"cpu_startup_entry",
            r"start_secondary",
            r"secondary_startup_64\w*",
            r"rest_init",
            r"x86_64_start_\w+",
        ),
        *_rows(
            "dispatchers of deferred work: they only call the callback",
            r"process_one_work",
            r"process_scheduled_works",
            r"call_timer_fn",
            r"__run_timers\w*",
            r"run_timer_softirq",
            r"expire_timers",
            r"__hrtimer_run_queues",
            r"hrtimer_interrupt",
            r"hrtimer_run_\w+",
            r"__run_hrtimer",
            r"tasklet_action\w*",
            r"rcu_do_batch",
            r"rcu_core\w*",
            r"tick_sched_\w+",
            r"update_process_times",
            r"run_ksoftirqd",
            r"smpboot_thread_fn",
            r"task_work_run",
        ),
    ),
}

#: Extra skip tables, by name; a class's row (``Rule.skip_tables`` in
#: :mod:`kcrash.crash_classes`) says which apply to it, where its own reporting
#: functions differ.
CLASS_SKIPS: dict[str, tuple[Skip, ...]] = {
    "slub-checks": _rows(
        "slub_debug's consistency checkers: they report the corruption, the caller of the"
        " free/alloc is the story",
        r"check_bytes_and_report",
        r"check_object",
        r"check_slab",
        r"on_freelist",
        r"\w*_debug_processing",
        r"object_err",
        r"slab_err",
        r"slab_bug",
        r"print_trailer",
        r"slab_fix",
        r"free_consistency_checks",
    ),
    "crypto": _rows(
        "crypto primitives: uninitialised or bad data only passes through them, the caller"
        " supplied it (KMSAN reports land in them)",
        r"\w+_(?:en|de)crypt(?:_\w+)?",
        r"(?:crypto|cipher|drbg|rng)_\w+",
    ),
    "lock-validator": _rows(
        "lockdep's own machinery and the lock primitives it instruments: the lock taker is blamed",
        r"check_\w+",
        r"validate_chain",
        r"print_\w+",
        r"mark_\w+",
        r"\w+_nested",
        r"debug_\w+",
        r"lock_\w+",
        r"rcu_read_lock_\w+",
        r"rcu_dereference\w*",
    ),
    "list-helpers": _rows(
        "lib/list_debug.c and the list helpers it checks: the list's owner is blamed",
        r"__list_\w+",
        r"list_\w+",
        r"hlist_\w+",
        r"__hlist_\w+",
    ),
    "stack-guard": _rows(
        "the double-fault and stack-guard handlers report the overflow",
        r"handle_stack_overflow",
        r"exc_double_fault",
        r"asm_exc_double_fault",
        r"double_fault",
        r"(?:panic|handle)_bad_stack",
        r"__schedule_bug",
        r"schedule_debug\w*",
    ),
    "page-checks": _rows(
        "the page allocator's sanity checks: they report a page someone else damaged",
        r"bad_page",
        r"free_pages_check\w*",
        r"free_page_is_bad\w*",
        r"check_new_page\w*",
        r"print_bad_pte",
        r"free_pcp_prepare",
        r"free_pages_prepare",
        r"free_unref_\w+",
        r"(?:__)?put_page\w*",
        r"put_page\w*",
        r"release_pages",
        r"(?:__)?folio_put\w*",
        r"folios_put\w*",
        r"check_mm",
        r"(?:__)?folio_batch_\w+",
        r"(?:__)?pagevec_\w+",
        r"lru_add_drain\w*",
        r"page_frag_free",
        r"(?:__)?page_pool_\w+",
        r"skb_release_\w+",
        r"\w*skb\w*_(?:drop|free)\w*",
        r"(?:__)?folio_add_lru\w*",
        r"(?:__)?netif_receive_skb\w*",
        r"xdp_return_\w+",
        r"__mmput",
        r"mmput",
    ),
    "sleep-checks": _rows(
        "the might_sleep()/smp_processor_id() checkers and the sleeping call itself: its"
        " caller held the lock or disabled preemption",
        r"__schedule_bug",
        r"dump_stack\w*",
        r"__might_\w+",
        r"___might_sleep",
        r"might_fault",
        r"__cant_sleep",
        r"check_preemption_disabled",
        r"debug_smp_processor_id",
        r"__this_cpu_preempt_check",
    ),
    "sysrq-dispatch": _rows(
        "the sysrq dispatch: the handler it calls is the crash",
        r"__handle_sysrq",
        r"write_sysrq_trigger",
        r"sysrq_handle_\w*reboot",
    ),
    "exit-path": _rows(
        "the exit path of the dying init: the signal or exit that killed it is elsewhere",
        r"do_exit",
        r"do_group_exit",
        r"__x64_sys_exit_group",
        r"__do_sys_exit_group",
        r"get_signal",
        r"arch_do_signal_or_restart",
        r"do_signal",
        r"exit_to_user_mode_loop",
        r"make_task_dead",
    ),
    "root-mount": _rows(
        "the boot code that tries to mount the root file system",
        r"mount_block_root",
        r"mount_root\w*",
        r"prepare_namespace",
        r"kernel_init\w*",
        r"do_basic_setup",
    ),
    "alloc-wrappers": _rows(
        "allocation wrappers between kmemleak's hook and the allocating code",
        r"\w*alloc\w*",
        r"create_object\w*",
        r"kmemdup\w*",
        r"kstrdup\w*",
        r"\w*printf\w*",
        r"(?:__)?list_lru_init\w*",
        r"pcpu_\w+",
        r"idr_get\w*",
    ),
}

#: Hung tasks: what the task waits *in*, not how it waits (added to INFRASTRUCTURE).
SLEEPING: tuple[Skip, ...] = (
    *_rows(
        "sleeping, waiting and completion primitives of a blocked task",
        r"synchronize_(?:rcu|srcu|sched|net)\w*",
        r"__synchronize_srcu",
        r"rcu_barrier\w*",
        r"wait_rcu_gp",
        r"jbd2_log_wait_commit",
        r"(?:__)?filemap_fdatawait\w*",
        r"filemap_write_and_wait\w*",
        r"do_read_cache_\w+",
        r"tty_ldisc_lock\w*",
        r"tty_ldisc_ref_wait",
        r"(?:__)?filemap_get_folio\w*",
        r"io_schedule\w*",
        r"\w*wait_for_\w+",
        r"wait_\w+",
        r"\w*_wait_\w+",
        r"(?:__)?lock_\w+",
    ),
)

#: Hung tasks that wait for one of these well-known global locks or grace periods are
#: blamed on it (the holder is elsewhere, and the waiter changes from report to report).
HUNG_ANCHORS: tuple[Skip, ...] = (
    Skip(r"rtnl_lock\w*", "waits for the networking RTNL mutex: whoever holds it is stuck"),
    Skip(
        r"synchronize_(?:rcu|srcu|sched|net)\w*",
        "waits for an RCU grace period: a CPU that does not pass a quiescent state stalls it",
    ),
    Skip(
        r"netdev_run_todo|netdev_wait_allrefs\w*",
        "waits for every reference to a network device to be dropped: a leaked dev_hold()"
        " elsewhere keeps it",
    ),
)

#: Lockups and stalls: the frame just above the first of these names the loop.
ANCHORS: tuple[Skip, ...] = (
    *_rows(
        "system-call and kernel-thread entry",
        r"do_syscall_\w+",
        r"do_fast_syscall_\w+",
        r"sysenter_dispatch",
        r"tracesys_phase2",
        r"entry_SYSCALL_64\w*",
        r"el0_svc_handler",
        r"invoke_syscall",
        r"ret_fast_syscall",
        r"kthread",
        r"ret_from_fork\w*",
        r"smpboot_thread_fn",
        r"worker_thread",
        r"do_idle",
        r"cpu_startup_entry",
        r"start_secondary",
        r"secondary_startup_64\w*",
    ),
    *_rows(
        "dispatchers of deferred work: the callback above them is the loop",
        r"process_one_work",
        r"call_timer_fn",
        r"(?:__)?run_timers\w*",
        r"run_timer_softirq",
        r"hrtimer_run_\w+",
        r"__run_hrtimer",
        r"run_ksoftirqd",
        r"do_softirq\w*",
        r"__do_softirq",
        r"handle_softirqs",
        r"netif_receive_skb\w*",
        r"__netif_receive_skb\w*",
        r"task_work_run",
    ),
    *_rows(
        "VFS, ioctl and mmap dispatch: the file's own operation above them is the loop",
        r"(?:__)?vfs_(?:read|write|readv|writev|iter_read|iter_write|ioctl|open)",
        r"do_vfs_ioctl",
        r"do_iter_(?:read|write|readv_writev)",
        r"do_loop_readv_writev",
        r"call_(?:read|write)_iter",
        r"new_sync_(?:read|write)",
        r"(?:ksys|(?:compat_)?(?:SyS|sys)|__(?:x64|ia32|arm64|se|do)_(?:compat_)?sys)_ioctl",
        r"\w*compat_ioctl\w*",
        r"(?:compat_)?blkdev_(?:driver_)?ioctl",
        r"call_mmap",
        r"mmap_region",
        r"do_mmap",
        r"do_dentry_open",
        r"proc_reg_(?:read|write|read_iter|write_iter|unlocked_ioctl|compat_ioctl)",
        r"kernfs_fop_(?:read|write)\w*",
        r"__do_fault",
        r"(?:__)?do_page_fault",
        r"page_fault",
        r"(?:__|____)?fput",
        r"exit_to_usermode\w*",
        r"tasklet_(?:hi_)?action\w*",
    ),
    *_rows(
        "socket and netlink dispatch: the protocol's own operation above them is the loop",
        r"(?:__)?sock_(?:sendmsg|recvmsg)\w*",
        r"(?:__)?sock_release",
        r"sock_(?:write|read)_iter",
        r"(?:compat_)?sock_(?:do_)?ioctl",
        r"sock_mmap",
        r"sock_common_setsockopt",
        r"(?:kernel_)?(?:setsockopt|listen|accept)",
        r"sk_common_release",
        r"nfnetlink_rcv_msg",
        r"rtnetlink_rcv_msg",
        r"netlink_dump",
    ),
)

#: Lockups and stalls inside one of these are blamed on it: the CPU waits for others.
STALL_NAMED: tuple[Skip, ...] = (
    Skip(
        r"smp_call_function\w*",
        "the CPU waits for other CPUs to run its cross-CPU call: the stall is that wait",
    ),
)

_SUFFIX_RE = re.compile(r"\..*$")


def base_name(function: str) -> str:
    """``foo.isra.0`` / ``foo.cold`` / ``foo.constprop.0.cold`` -> ``foo``.

    C identifiers have no dot, so everything after the first dot is a
    compiler-generated clone suffix (as satyr does).
    """
    return _SUFFIX_RE.sub("", function)


class _Alternation:
    """The rows of a skip table as one anchored alternation, compiled at its first use.

    Why lazily: the per-class tables and their big alternations took ~0.04 s to
    compile at import, and one analysis matches against only its own class's table
    (and, for most classes, never the sleeping or hung-task anchors).  Rows that are
    plain names (no regex syntax: ``re.escape`` leaves them alone; ~half of them)
    go to a set instead: the compile is proportional to the pattern's size, and
    ``^(?:name)$`` matches exactly ``name`` (or ``name`` and a final newline, as
    ``$`` allows)."""

    __slots__ = ("_names", "_pattern", "_rx")

    def __init__(self, pats: tuple[str, ...] | list[str]) -> None:
        self._names = frozenset(p for p in pats if re.escape(p) == p)
        rest = [p for p in pats if p not in self._names]
        self._pattern = r"^(?:" + "|".join(rest) + r")$" if rest else None
        self._rx: re.Pattern[str] | None = None

    def match(self, name: str) -> bool:
        if name in self._names or (name.endswith("\n") and name[:-1] in self._names):
            return True
        if self._pattern is None:
            return False
        if self._rx is None:
            self._rx = re.compile(self._pattern)
        return self._rx.match(name) is not None


def _compile(pats: tuple[str, ...] | list[str]) -> _Alternation | None:
    return _Alternation(pats) if pats else None


def compile_all() -> None:
    """Compile every skip table now (a batch's fork server: once for all its children)."""
    for alt in (_SKIP_ALL, _HARD, _LOCKING, _SLEEPING, _HUNG_ANCHORS, _ANCHORS, _STALL_NAMED):
        if alt is not None:
            alt.match("")
    for alt in _CLASS_SKIP.values():
        if alt is not None:
            alt.match("")


def _patterns(rows: tuple[Skip, ...]) -> tuple[str, ...]:
    return tuple(r.pattern for r in rows)


_SKIP_ALL = _compile([r.pattern for rows in INFRASTRUCTURE.values() for r in rows])
#: never blamed, even when every frame of a stack is infrastructure
_HARD = _compile(
    [
        r.pattern
        for cat in ("reporting", "fault-entry", "sanitizers", "debug-checks")
        for r in INFRASTRUCTURE[cat]
    ]
    + [r"__x86_indirect_thunk_\w+", r"__x86_return_thunk"]
)
_LOCKING = _compile([r.pattern for r in INFRASTRUCTURE["locking"]])
_THUNK = re.compile(r"^__x86_indirect_thunk_\w+$|^__x86_indirect_call_thunk_\w+$")
_CLASS_ROWS: dict[str, tuple[Skip, ...]] = {
    r.id: tuple(row for name in r.skip_tables for row in CLASS_SKIPS[name])
    for r in RULES
    if r.skip_tables
}
_CLASS_SKIP = {cid: _compile(_patterns(rows)) for cid, rows in _CLASS_ROWS.items()}
_SLEEPING = _compile(_patterns(SLEEPING))
_HUNG_ANCHORS = _compile(_patterns(HUNG_ANCHORS))
_ANCHORS = _compile(_patterns(ANCHORS + STALL_NAMED))
_STALL_NAMED = _compile(_patterns(STALL_NAMED))
_INTERRUPT_CONTEXTS = ("irq", "nmi", "softirq", "exception")


def skip_reason(function: str, class_id: str | None = None) -> str | None:
    """Why ``function`` is never blamed (the row's reason), or None when it may be."""
    name = base_name(function)
    tables = [*INFRASTRUCTURE.values()]
    if class_id in _CLASS_ROWS:
        tables.append(_CLASS_ROWS[class_id])
    for rows in tables:
        for r in rows:
            if re.fullmatch(r.pattern, name):
                return r.why
    return None


@dataclass
class Pick:
    """The chosen frame and how it was chosen."""

    frame: Frame
    index: int  # position in the candidate list
    reason: str  # message id suffix: "rip", "first_non_skipped", "above_anchor", ...


@dataclass
class Blame:
    """Crash site and culprit of one report."""

    site: Frame | None
    culprit: Pick | None


def is_skipped(
    function: str | None,
    extra: re.Pattern[str] | None = None,
    sleeping: bool = False,
    class_id: str | None = None,
) -> bool:
    """True when ``function`` is infrastructure (for this class)."""
    if function is None:
        return True
    name = base_name(function)
    if not name:  # a bare local label (".slowpath" of a paravirt thunk), not a function
        return True
    if _SKIP_ALL is not None and _SKIP_ALL.match(name):
        return True
    cls = _CLASS_SKIP.get(class_id or "")
    if cls is not None and cls.match(name):
        return True
    if sleeping and _SLEEPING is not None and _SLEEPING.match(name):
        return True
    return bool(extra is not None and extra.match(name))


def _dedup(frames: list[Frame]) -> list[Frame]:
    """Consecutive frames of the same function collapse (a RIP repeated in the trace)."""
    out: list[Frame] = []
    for f in frames:
        if out and f.function == out[-1].function and f.module == out[-1].module:
            if f.regs and not out[-1].regs:
                out[-1] = f
            continue
        out.append(f)
    return out


def _reliable(trace: list[Frame]) -> list[Frame]:
    frames = [f for f in trace if f.reliable]
    return frames or list(trace)


def crash_site(
    rip: Frame | None,
    trace: list[Frame],
    header_symbol: str | None = None,
    prefer_header: bool = False,
    interrupted: bool = False,
) -> tuple[Frame | None, list[Frame]]:
    """The crash site and the frames from it outward (callers), innermost first.

    * a RIP/pc line of the report: the site; the trace is its callers;
    * else the first kernel exception frame inside the trace (``RIP:`` printed
      within the ``Call Trace:`` after ``invalid_op``/``asm_exc_*``: a WARN or
      BUG of 4.x-5.x with ``panic_on_warn``): the frames printed before it are
      the reporting path, dropped;
    * else the function the header names (``WARNING: ... at f.c:1 f+0x1/0x2``,
      ``BUG: KASAN: ... in f+0x1/0x2``), looked up in the trace: again the
      frames before it are the reporting path;
    * else no site; the trace as it is.

    ``prefer_header``: sanitizers name the access site in their header; a RIP in
    the same block belongs to another report (a GPF that followed).
    ``interrupted``: lockups and stalls: a register dump after an interrupt entry
    is the code the watchdog interrupted, the site (for other classes it is only
    what an interrupt happened to find running).
    """
    frames = _reliable(trace)
    header = _header_in_trace(header_symbol, trace) if header_symbol else None
    if prefer_header and header is not None:
        hf, i = header
        if i is not None:
            return trace[i], _reliable(trace[i + 1 :])
        # not in the stack: inlined into the RIP's function (memcmp in find_uprobe)
        return hf, ([rip] if rip is not None and rip.function else []) + frames
    if rip is not None and rip.function is not None:
        return rip, frames
    for i, f in enumerate(trace):
        if f.regs is not None and f.function and i > 0:
            before = next((g for g in reversed(trace[:i]) if g.reliable and g.function), None)
            # an exception frame (after invalid_op, asm_exc_*): the report's own RIP; after
            # an interrupt entry it is only the code the interrupt found running
            if interrupted or (
                before is not None
                and before.function is not None
                and _HARD is not None
                and _HARD.match(base_name(before.function))
            ):
                return f, _reliable(trace[i + 1 :])
    if header is not None:
        hf, i = header
        return (trace[i], _reliable(trace[i + 1 :])) if i is not None else (hf, frames)
    return None, frames


def _header_in_trace(header_symbol: str, trace: list[Frame]) -> tuple[Frame, int | None] | None:
    """The function a report's header names, and where the trace has it (None: nowhere)."""
    hf = parse_frame(header_symbol)
    if hf is None or not hf.function:
        return None
    want = base_name(hf.function)
    i = next((i for i, f in enumerate(trace) if f.function and base_name(f.function) == want), None)
    return hf, i


def candidates(site: Frame | None, frames: list[Frame]) -> list[Frame]:
    """The site then its callers, consecutive duplicates collapsed."""
    return _dedup(([site] if site is not None and site.function else []) + list(frames))


def _first(
    cands: list[Frame],
    site: Frame | None,
    extra: re.Pattern[str] | None,
    class_id: str | None,
    reason: str,
    sleeping: bool = False,
) -> Pick | None:
    for i, f in enumerate(cands):
        if not is_skipped(f.function, extra, sleeping, class_id):
            return Pick(f, i, "rip" if f is site else reason)
    return None


def _anchor(
    cands: list[Frame], site: Frame | None, extra: re.Pattern[str] | None, class_id: str | None
) -> Pick | None:
    site_ctx = site.context if site is not None else None
    if site_ctx not in _INTERRUPT_CONTEXTS:
        kept = [f for f in cands if f.context not in _INTERRUPT_CONTEXTS]
        cands = kept or cands
    first_anchor = next(
        (
            i
            for i, f in enumerate(cands)
            if f.function and _ANCHORS is not None and _ANCHORS.match(base_name(f.function))
        ),
        None,
    )
    if first_anchor is not None:
        f = cands[first_anchor]
        if f.function and _STALL_NAMED is not None and _STALL_NAMED.match(base_name(f.function)):
            return Pick(f, first_anchor, "waits_for")
    inner = cands if first_anchor is None else cands[:first_anchor]
    for i, f in enumerate(inner):  # a module's code inside the loop
        if f.module and not is_skipped(f.function, extra, class_id=class_id):
            return Pick(f, i, "rip" if f is site else "module_in_loop")
    if first_anchor is not None:
        for i in range(first_anchor - 1, -1, -1):
            f = cands[i]
            if not is_skipped(f.function, extra, class_id=class_id):
                return Pick(f, i, "above_anchor")
        # everything inside the loop is infrastructure: the first caller that is not
        outer = [
            f
            for f in cands[first_anchor:]
            if not (f.function and _ANCHORS is not None and _ANCHORS.match(base_name(f.function)))
        ]
        return _first(outer, site, extra, class_id, "first_non_skipped")
    return _first(cands, site, extra, class_id, "first_non_skipped")


def _sleeping(
    cands: list[Frame],
    site: Frame | None,
    extra: re.Pattern[str] | None,
    class_id: str | None,
    waits: bool = False,
) -> Pick | None:
    """The caller of the sleeping call; with ``waits`` (a hung task), first what the
    task waits in (HUNG_ANCHORS)."""
    for i, f in enumerate(cands):
        if (
            waits
            and f.function
            and _HUNG_ANCHORS is not None
            and _HUNG_ANCHORS.match(base_name(f.function))
        ):
            return Pick(f, i, "waits_for")
        if not is_skipped(f.function, extra, True, class_id):
            return Pick(f, i, "first_non_sleeping")

    # only sleeping and entry frames (a task that scheduled on its way back to user
    # space): the first frame that is neither reporting nor scheduling
    def sleeping_or_scheduler(name: str) -> bool:
        return bool(_SLEEPING is not None and _SLEEPING.match(name)) or any(
            re.fullmatch(r.pattern, name) for r in INFRASTRUCTURE["scheduler"]
        )

    return _last_resort(cands, class_id, sleeping_or_scheduler, lambda f: "first_non_sleeping")


def _last_resort(
    cands: list[Frame],
    class_id: str | None,
    also_skip: Callable[[str], bool],
    reason: Callable[[Frame], str],
) -> Pick | None:
    """When every frame is infrastructure: the first that is not pure reporting or
    exception plumbing, nor in the class's own skip list, nor ``also_skip`` — a culprit
    the report can name rather than none."""
    cls = _CLASS_SKIP.get(class_id or "")
    for i, f in enumerate(cands):
        name = base_name(f.function) if f.function else None
        if not name or _HARD is None or _HARD.match(name):
            continue
        if (cls is not None and cls.match(name)) or also_skip(name):
            continue
        return Pick(f, i, reason(f))
    return None


def blame(
    strategy: str,
    rip: Frame | None,
    trace: list[Frame],
    *,
    class_id: str | None = None,
    extra_skip: tuple[str, ...] = (),
    message_symbol: str | None = None,
    header_symbol: str | None = None,
    lead: list[Frame] | None = None,
    double_fault: bool = False,
) -> Blame:
    """Crash site and culprit of a report, according to the class's strategy.

    ``lead``: frames the report names before its stack (lockdep's ``at:`` lines),
    tried first by the ``lock`` strategy.
    """
    extra = _compile(extra_skip)
    site, frames = crash_site(
        rip,
        trace,
        header_symbol,
        prefer_header=strategy == "access",
        interrupted=strategy in ("anchor", "overflow"),
    )
    if strategy == "message" and message_symbol:
        fr = parse_frame(message_symbol)
        if fr is not None and fr.function:
            return Blame(site or fr, Pick(fr, 0, "message"))
    cands = candidates(site, frames)
    if strategy == "overflow":
        strategy = "first" if double_fault else "anchor"
    if strategy == "lock" and lead:
        for i, f in enumerate(lead):
            if not is_skipped(f.function, extra, class_id=class_id):
                return Blame(site, Pick(f, i, "lock_site"))
    if strategy == "anchor":
        return _with_site(Blame(site, _anchor(cands, site, extra, class_id)), cands)
    if strategy in ("sleeping", "waits"):
        pick = _sleeping(cands, site, extra, class_id, strategy == "waits")
        return _with_site(Blame(site, pick), cands)
    reason = "access_site" if strategy == "access" else "first_non_skipped"
    if (
        site is not None
        and site.function
        and _THUNK.match(base_name(site.function))
        and len(cands) > 1
        and cands[1].function
    ):
        # RIP in a retpoline thunk: a call through a corrupt function pointer; the
        # function that made the call is the only code the report can name
        return _with_site(Blame(site, Pick(cands[1], 1, "indirect_call")), cands)
    if len(cands) > 1 and cands[0] is site and cands[1].context in ("irq", "softirq", "nmi"):
        # the site ran in interrupt context: blame within the interrupt's own frames
        # before crossing into the task the interrupt happened to find running
        irq = [cands[0]] + [
            f for f in cands[1:] if f.context in ("irq", "softirq", "nmi", "exception")
        ]
        pick = _first(irq, site, extra, class_id, reason)
        if pick is not None:
            return _with_site(Blame(site, pick), cands)
    pick = _first(cands, site, extra, class_id, reason)
    if pick is None:
        # every frame is infrastructure (a bad function pointer called from a timer
        # dispatcher, a fault in the idle loop): blame the first frame that is not
        # pure reporting or exception plumbing rather than nothing
        pick = _last_resort(
            cands,
            class_id,
            lambda name: bool(_LOCKING is not None and _LOCKING.match(name)),
            lambda f: "rip" if f is site else "first_non_skipped",
        )
    if pick is not None and strategy == "access" and pick.frame is site:
        pick.reason = "access_site"
    return _with_site(Blame(site, pick), cands)


def _with_site(b: Blame, cands: list[Frame]) -> Blame:
    """No RIP, exception frame or header function (a panic() or a hung task's stack):
    the crash site is the innermost frame that is not reporting or exception plumbing,
    i.e. the function that called panic()/BUG() or that was sleeping."""
    if b.site is None:
        b.site = next(
            (
                f
                for f in cands
                if f.function and _HARD is not None and not _HARD.match(base_name(f.function))
            ),
            None,
        )
    return b
