"""The crash classes, as a table of data.

One row per class of ``docs/triage-reference.md`` §1 (the ids are the
contract of ``verdict.class`` in the report).  A row says how to recognise the
class in a report block (``patterns``: current wordings; ``legacy``: the
pre-5.1 ones), how to name it (``qualifier``), where its culprit is
(``culprit``), which extra frames to skip, whether it is only a *trailer* of
an earlier event, and which message ids explain it (``rule.<id>.meaning``,
``rule.<id>.explanation``, ``rule.<id>.next.<n>`` in
``report/i18n/rules.<lang>.json``).

**Adding a class** = one :class:`Rule` row below (in priority order: the
first row whose pattern matches a block wins) + its messages in both
catalogues.  If its first report line is not already a block start for
:mod:`kcrash.oops.blocks` (``BUG:``, ``WARNING:``, ``INFO:``, ``Kernel panic``,
...), add the start line there too.

Wordings: those of the corpus scenarios (null-deref, sysrq, bug-on, panic,
soft-lockup, hung-task, divide-error, list-corruption, warn, gpf, slab
use-after-free, stack-protector, OOM, interrupt context, vmalloc fault) are
tested on real Debian 5.10 and 6.1 output; the others follow the printk
formats of the kernel sources they come from (``arch/x86/mm/fault.c``
``show_fault_oops``, ``arch/x86/kernel/dumpstack.c`` ``__die_header``,
``kernel/watchdog.c``, ``kernel/watchdog_hld.c``, ``kernel/rcu/tree_stall.h``,
``kernel/locking/lockdep.c``, ``mm/kasan/report.c``, ``mm/slub.c``,
``mm/page_alloc.c`` ``bad_page``, ``arch/x86/kernel/cpu/mce/core.c``,
``arch/x86/kernel/nmi.c``, ``kernel/exit.c``, ``init/do_mounts.c``) and are
tested on hand-built samples.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Rule:
    """One crash class."""

    id: str
    patterns: tuple[str, ...]
    legacy: tuple[str, ...] = ()
    #: regex group whose text qualifies the class in the signature (hashed)
    qualifier: str | None = None
    #: show the qualifier in the title ("sanitizer: slab-use-after-free in f")
    qualifier_in_title: bool = False
    #: "first" | "anchor" (lockups, stalls) | "sleeping" (hung tasks) | "message"
    culprit: str = "first"
    #: extra function-name regexes to skip for this class
    skip: tuple[str, ...] = ()
    #: a consequence of an earlier event, never the cause (see TRAILER_TARGETS)
    trailer: bool = False
    #: "fatal" | "warning" | "info" (info events never become the primary)
    severity: str = "fatal"
    #: classes of earlier events that are part of this same crash (folded in)
    folds: tuple[str, ...] = ()
    #: when an oops precedes it, the oops is the cause (init killed by an oops)
    weak: bool = False
    #: number of next-step messages (rule.<id>.next.1 .. next.N)
    next_steps: int = 2
    compiled: tuple[re.Pattern[str], ...] = field(default=(), compare=False, repr=False)

    @property
    def meaning_id(self) -> str:
        return f"rule.{self.id}.meaning"

    @property
    def explanation_id(self) -> str:
        return f"rule.{self.id}.explanation"

    @property
    def next_step_ids(self) -> tuple[str, ...]:
        return tuple(f"rule.{self.id}.next.{i}" for i in range(1, self.next_steps + 1))

    def match(self, text: str) -> re.Match[str] | None:
        for rx in self.compiled:
            m = rx.search(text)
            if m:
                return m
        return None


_NOT_SYNCING = r"Kernel panic - not syncing: "

_ROWS: tuple[Rule, ...] = (
    # --- trailers: what panic() says after another report (kernel/panic.c callers)
    Rule(
        "trailer",
        (
            # >= 6.x s390/arm64 add the reason: "Fatal exception: panic_on_oops"
            # arm64/riscv die(): panic("%s: Fatal exception", "Oops" | "Oops - BUG" | ...)
            _NOT_SYNCING + r"(?:Oops(?: - \w+)?: )?"
            r"(?P<q>Fatal exception(?: in interrupt)?)(?:: panic_on_oops)?\s*$",
            _NOT_SYNCING + r"(?:\w+: )?(?P<q>panic_on_warn set)",  # 6.1: "kernel: panic_on_warn"
            _NOT_SYNCING + r"(?P<q>softlockup: hung tasks)",
            _NOT_SYNCING + r"(?P<q>hung_task: blocked tasks)",
            _NOT_SYNCING + r"(?P<q>panic_on_oops|Aiee, killing interrupt handler!)",
            _NOT_SYNCING + r"(?P<q>panic_on_kmsan set)",  # mm/kmsan/report.c
            # arch/x86/kernel/traps.c exc_double_fault: die() then panic("Machine halted.")
            _NOT_SYNCING + r"(?P<q>Machine halted)\.",
        ),
        trailer=True,
        severity="info",
        next_steps=1,
    ),
    Rule(
        "sanitizer",
        (
            r"BUG: (?P<q>(?:KASAN|KFENCE|KMSAN|KCSAN): [a-z-]+(?: (?:read|write|Read|Write))?)",
            r"(?P<q>UBSAN: [a-z-]+) in ",
            # before 5.7 (lib/ubsan.c ubsan_prologue): "UBSAN: Undefined behaviour in f.c:1:2"
            r"(?P<q>UBSAN: Undefined behaviour) in ",
            # slub_debug (mm/slub.c): "BUG kmalloc-64 (Not tainted): Poison overwritten"
            r"^BUG [\w.:-]+ \([^)]*\): (?P<q>Poison overwritten|Redzone overwritten|"
            r"Object already free|Freepointer corrupt|Left Redzone overwritten|"
            r"Object padding overwritten|Alignment padding overwritten|Invalid object pointer)",
        ),
        qualifier="q",
        qualifier_in_title=True,
        skip=(
            r"kasan_\w+",
            r"__kasan_\w+",
            r"__asan_\w+",
            r"kfence_\w+",
            r"__ubsan_\w+",
            r"ubsan_\w+",
            # lib/ubsan.c's own reporting helpers (< 5.7 names)
            r"handle_(?:overflow|null_ptr_deref|misaligned_access|object_size_mismatch)",
            r"kmsan_\w+",
            r"__msan_\w+",
            r"check_memory_region\w*",
            r"print_address_description\w*",
            r"print_report",
            r"end_report",
            # slub_debug's own checkers
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
        next_steps=2,
    ),
    Rule(
        "lockdep",
        (
            r"WARNING: (?P<q>possible circular locking dependency) detected",
            r"WARNING: (?P<q>possible recursive locking) detected",
            r"WARNING: (?P<q>inconsistent lock state)",
            r"WARNING: (?P<q>possible irq lock inversion dependency) detected",
            r"WARNING: (?P<q>bad unlock balance) detected",
            r"WARNING: (?P<q>suspicious RCU usage)",
        ),
        # < 4.9 (kernel/locking/lockdep.c): the same reports headed in brackets,
        # "[ INFO: possible circular locking dependency detected ]"
        legacy=(
            r"^\[ INFO: (?P<q>possible circular locking dependency|possible recursive locking|"
            r"inconsistent lock state|possible irq lock inversion dependency|bad unlock balance)"
            r"(?: detected)? \]",
            r"^\[ INFO: (?P<q>suspicious RCU usage)\. \]",
        ),
        qualifier="q",
        severity="warning",
        # lockdep's own machinery and the lock primitives it instruments
        skip=(
            r"check_\w+",
            r"validate_chain",
            r"print_\w+",
            r"mark_\w+",
            r"\w+_nested",
            r"mutex_lock\w*",
            r"__mutex_lock\w*",
            r"down_\w+",
            r"__down_\w+",
            r"lock_is_held\w*",
            r"debug_\w+",
            # suspicious RCU usage: the might_sleep() checks that reported it
            r"_*might_sleep",
            r"__might_resched",
            r"__might_fault",
        ),
    ),
    Rule(
        "list-corruption",
        (r"(?P<q>list_(?:add|del)(?:_rcu)?) corruption",),
        qualifier="q",
        skip=(r"__list_\w+", r"list_\w+", r"hlist_\w+", r"__hlist_\w+"),
    ),
    # A kernel stack overflow reaches the guard page below the stack; the
    # #PF then cannot be delivered and becomes a double fault, which the
    # kernel recognises (arch/x86/kernel/traps.c handle_stack_overflow) and
    # names.  Only a double fault *without* that wording is a real one.
    Rule(
        "stack-overflow",
        (
            r"BUG: (?:\w+ )?stack guard page was hit",  # 5.x: "BUG: TASK stack guard page ..."
            r"kernel stack overflow \(double-fault\)",  # 4.x-5.x die() wording
            _NOT_SYNCING + r"\w+ stack guard hit",  # 5.x-6.x handle_stack_overflow()
            r"^(?:Oops: )?stack guard page: [0-9a-f]{4} \[#",
        ),
        skip=(r"handle_stack_overflow", r"exc_double_fault", r"asm_exc_double_fault"),
        culprit="anchor",
    ),
    Rule(
        "double-fault",
        (
            r"PANIC: double fault",
            r"^(?:Oops: )?double fault: [0-9a-f]{4} \[#",
        ),
        skip=(r"handle_stack_overflow", r"exc_double_fault", r"asm_exc_double_fault"),
    ),
    Rule(
        "stack-protector",
        (r"stack-protector: Kernel stack is corrupted in: (?P<sym>\S+(?: \[[\w-]+\])?)",),
        culprit="message",
    ),
    Rule(
        "bug-on",
        (r"kernel BUG at (?P<q>[^\s:]+):(?P<line>\d+)!",),
        legacy=(r"Kernel BUG at (?P<q>[^\s:]+):(?P<line>\d+)",),
        qualifier="q",
    ),
    Rule(
        "null-deref",
        (r"BUG: kernel NULL pointer dereference, address: (?P<addr>[0-9a-f]+)",),
        legacy=(
            # < 4.15 printed a NULL address with %p: "at           (null)"
            r"BUG: unable to handle kernel NULL pointer dereference at\s+"
            r"(?P<addr>[0-9a-f]+|\(null\))",
            # arm64 (arch/arm64/mm/fault.c), for pasted logs of other machines
            r"Unable to handle kernel NULL pointer dereference at virtual address "
            r"(?P<addr2>[0-9a-f]+)",
        ),
    ),
    Rule(
        "bad-paging",
        (
            r"BUG: unable to handle page fault for address: (?P<addr>[0-9a-f]+)",
            r"BUG: kernel tried to execute NX-protected page",
            r"unable to execute userspace code \(SMEP\?\)",
        ),
        legacy=(
            r"BUG: unable to handle kernel paging request at (?P<addr>[0-9a-f]+)",
            r"Unable to handle kernel paging request at virtual address (?P<addr2>[0-9a-f]+)",
            # ppc64 (arch/powerpc/mm/fault.c) and s390 (arch/s390/mm/fault.c)
            r"BUG: Unable to handle kernel (?:data access|instruction fetch)"
            r"(?: on (?:read|write))? at 0x(?P<addr3>[0-9a-f]+)",
            r"Unable to handle kernel pointer dereference in virtual kernel address space",
            # arm64 >= 5.x permission faults (arch/arm64/mm/fault.c __do_kernel_fault)
            r"Unable to handle kernel (?:read from unreadable memory|write to read-only memory|"
            r"execute from non-executable memory|access to user memory outside uaccess routines)"
            r" at virtual address (?P<addr4>[0-9a-f]+)",
        ),
    ),
    Rule(
        "gpf",
        (
            r"general protection fault(?:, probably for non-canonical address 0x(?P<addr>[0-9a-f]+)"
            r"|, maybe for address 0x(?P<addr2>[0-9a-f]+))?: [0-9a-f]{4}",
            r"^(?:Oops: )?stack segment: [0-9a-f]{4} \[#",  # >= 6.10 prefixes "Oops: "
        ),
    ),
    Rule("invalid-opcode", (r"invalid opcode: [0-9a-f]{4} \[#",)),
    Rule("divide-error", (r"divide(?: |_)error: [0-9a-f]{4} \[#",)),
    Rule(
        "soft-lockup",
        (
            r"BUG: soft lockup - CPU#(?P<cpu>\d+) stuck for (?P<secs>\d+)s! "
            r"\[(?P<comm>.+):(?P<pid>\d+)\]",
        ),
        culprit="anchor",
        folds=("soft-lockup",),
    ),
    Rule(
        "hard-lockup",
        (r"Watchdog detected hard LOCKUP on cpu (?P<cpu>\d+)", _NOT_SYNCING + r"Hard LOCKUP"),
        culprit="anchor",
        folds=("hard-lockup",),
    ),
    Rule(
        "rcu-stall",
        (
            r"INFO: rcu_(?:sched|preempt|bh|tasks\w*) (?:self-)?detected (?:expedited )?stalls?",
            r"rcu: INFO: rcu_\w+ (?:self-)?detected (?:expedited )?stall",
        ),
        legacy=(r"INFO: rcu_\w+ detected stalls? on CPU",),
        culprit="anchor",
        folds=("rcu-stall",),
    ),
    Rule(
        "hung-task",
        (r"INFO: task (?P<comm>.+):(?P<pid>\d+) blocked for more than (?P<secs>\d+) seconds",),
        culprit="sleeping",
        folds=("hung-task",),
    ),
    Rule(
        "atomic-sleep",
        (
            r"BUG: (?P<q>scheduling while atomic)",
            r"BUG: (?P<q>sleeping function called from invalid context)",
            r"BUG: (?P<q>workqueue leaked lock or atomic)",
        ),
        qualifier="q",
        severity="warning",
        # the sleeping call itself (schedule, mutex_lock, msleep) is not the bug: its caller is
        culprit="sleeping",
        skip=(
            r"__schedule_bug",
            r"__might_sleep",
            r"___might_sleep",
            r"__might_resched",
            r"__might_fault",
            r"might_fault",
            r"__cant_sleep",
            r"schedule_debug\w*",
        ),
    ),
    Rule(
        "bad-page",
        (r"BUG: (?P<q>Bad page (?:state|map|cache))",),
        qualifier="q",
        skip=(
            r"bad_page",
            r"free_pages_check\w*",
            r"free_page_is_bad\w*",
            r"check_new_page\w*",
            r"print_bad_pte",
            r"free_pcp_prepare",
            r"free_unref_page\w*",
            r"free_pages_prepare",
        ),
    ),
    Rule(
        "oom-panic",
        (
            _NOT_SYNCING + r"Out of memory",
            _NOT_SYNCING + r"System is deadlocked on memory",
        ),
        folds=("oom-kill",),
    ),
    Rule(
        "oom-kill",
        (
            r"Out of memory: Kill(?:ed)? process \d+ \((?P<comm>[^)]*)\)",
            r"Memory cgroup out of memory: Kill(?:ed)? process \d+ \((?P<comm>[^)]*)\)",
            r"(?P<comm>\S+) invoked oom-killer: ",
        ),
        severity="info",
    ),
    # Hardware reported an uncorrectable error: no code is to blame.  x86 MCE
    # (arch/x86/kernel/cpu/mce/core.c) and firmware-first APEI/GHES records
    # (drivers/acpi/apei/ghes.c __ghes_panic: "Fatal hardware error!").
    Rule(
        "machine-check",
        (
            r"Machine Check(?: Exception)?:",
            r"\[Hardware Error\]: (?!Machine check events logged)",  # not corrected errors
            _NOT_SYNCING + r".*[Mm]achine [Cc]heck",
            _NOT_SYNCING + r"Fatal hardware error",
            _NOT_SYNCING + r"Fatal [Mm]achine check",
        ),
        folds=("machine-check",),
        culprit="none",
    ),
    Rule(
        "nmi",
        (
            r"Uhhuh\. NMI received",
            r"NMI: (?:PCI system error|IOCK error)",
            _NOT_SYNCING + r"NMI",
        ),
        folds=("nmi",),
    ),
    Rule(
        "sysrq",
        (
            r"sysrq: Trigger a crash",
            _NOT_SYNCING + r"sysrq triggered crash",
        ),
        legacy=(r"SysRq : Trigger a crash", r"SysRq : Crash"),
        folds=("sysrq",),
        skip=(r"__handle_sysrq", r"write_sysrq_trigger", r"sysrq_handle_\w*reboot"),
    ),
    Rule(
        "init-killed",
        (_NOT_SYNCING + r"Attempted to kill init! exitcode=0x(?P<exit>[0-9a-f]+)",),
        weak=True,
        skip=(
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
    ),
    Rule(
        "no-rootfs",
        (_NOT_SYNCING + r"VFS: Unable to mount root fs on (?P<dev>.+)",),
        skip=(
            r"mount_block_root",
            r"mount_root\w*",
            r"prepare_namespace",
            r"kernel_init\w*",
            r"do_basic_setup",
        ),
    ),
    # kmemleak (mm/kmemleak.c): "unreferenced object 0x... (size 96):" ... "backtrace:"
    Rule(
        "memory-leak",
        (r"^(?P<q>unreferenced object) 0x[0-9a-f]+ \(size \d+\)", r"BUG: memory leak"),
        severity="warning",
        folds=("memory-leak",),
    ),
    Rule(
        "warn",
        (r"WARNING: CPU: \d+ PID: \d+ at (?P<file>\S+)",),
        legacy=(r"WARNING: at (?P<file>\S+)",),
        severity="warning",
    ),
    Rule("panic", (_NOT_SYNCING + r"(?P<msg>.*)$", r"^Kernel panic: (?P<msg>.*)$")),
    # Last resort for an "Oops: ..." or "... [#N]" line that matched nothing above.
    Rule(
        "oops", (r"^(?:Oops|Internal error): [0-9a-f]{4}", r": [0-9a-f]{4} \[#\d+\]"), next_steps=1
    ),
)


#: Which classes each trailer (the ``q`` group of the trailer row) points back to
#: (kernel/watchdog.c, kernel/hung_task.c, kernel/panic.c); a trailer not listed
#: points to the last ``[#1]`` oops, else the nearest fatal report above it.
TRAILER_TARGETS: dict[str, tuple[str, ...]] = {
    "softlockup: hung tasks": ("soft-lockup",),
    "hung_task: blocked tasks": ("hung-task",),
    "panic_on_kmsan set": ("sanitizer",),
    "Machine halted": ("double-fault", "stack-overflow"),
    "panic_on_warn set": (
        "warn",
        "lockdep",
        "sanitizer",
        "atomic-sleep",
        "list-corruption",
        "bad-page",
    ),
}


def _compile(rule: Rule) -> Rule:
    rx = tuple(re.compile(p) for p in rule.patterns + rule.legacy)
    object.__setattr__(rule, "compiled", rx)
    return rule


RULES: tuple[Rule, ...] = tuple(_compile(r) for r in _ROWS)
RULES_BY_ID: dict[str, Rule] = {r.id: r for r in RULES}
#: the class ids a report may carry (``trailer`` is never a verdict; ``unknown``
#: is used when nothing at all could be classified)
CLASS_IDS: tuple[str, ...] = (*tuple(r.id for r in RULES if r.id != "trailer"), "unknown")

HEAD_LINES = 60  # a class is recognised in the first lines of a block, before its stack


def classify_lines(lines: list[str]) -> tuple[Rule, re.Match[str]] | None:
    """The first rule (table order) matching one of the head lines of a block."""
    head: list[str] = []
    for ln in lines[:HEAD_LINES]:
        s = ln.strip()
        if s in ("Call Trace:", "Call trace:"):
            break
        head.append(s)
    for rule in RULES:
        for s in head:
            m = rule.match(s)
            if m:
                return rule, m
    return None
