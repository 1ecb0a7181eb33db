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
    #: "first" | "access" (sanitizers) | "anchor" (lockups, stalls) | "sleeping" (hung
    #: tasks) | "message" (see :mod:`kcrash.diagnosis.culprit`)
    culprit: str = "first"
    #: extra function-name regexes to skip for this class (the reasoned tables are
    #: CLASS_SKIPS in :mod:`kcrash.diagnosis.culprit`)
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
            # kernel/sched/core.c __schedule_bug() with panic_on_warn
            _NOT_SYNCING + r"(?P<q>scheduling while atomic)",
            # arch/x86/kernel/traps.c exc_double_fault(): die() then panic()
            _NOT_SYNCING + r"(?P<q>Machine halted\.)",
        ),
        trailer=True,
        severity="info",
        next_steps=1,
    ),
    Rule(
        "sanitizer",
        (
            r"BUG: (?P<q>(?:KASAN|KFENCE|KMSAN): [a-z-]+(?: (?:read|write|Read|Write))?)",
            # kernel/kcsan/report.c: "BUG: KCSAN: data-race in f / g", "assert: race in f"
            r"BUG: (?P<q>KCSAN: [a-z-]+(?:: [a-z-]+)?) in ",
            r"(?P<q>UBSAN: [a-z-]+) in ",
            # slub_debug (mm/slub.c): "BUG kmalloc-64 (Not tainted): Poison overwritten"
            r"^BUG [\w.:-]+ \([^)]*\): (?P<q>Poison overwritten|Redzone overwritten|"
            r"Object already free|Freepointer corrupt|Left Redzone overwritten|"
            r"Object padding overwritten|Alignment padding overwritten|Invalid object pointer)",
        ),
        legacy=(
            # UBSAN before 5.7 (lib/ubsan.c ubsan_prologue): "UBSAN: Undefined behaviour in f.c:1"
            r"(?P<q>UBSAN: Undefined behaviour) in ",
            # slub_debug print_track() lines of a report whose "BUG cache" header was lost
            r"^INFO: (?:Freed|Allocated) in \S+ age=\d+",
        ),
        qualifier="q",
        qualifier_in_title=True,
        culprit="access",
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
            # kernel/locking/lockdep.c: the other reports (4.x-6.x "WARNING:"/"BUG:")
            r"(?:WARNING|BUG): (?P<q>\S+-safe -> \S+-unsafe lock order) detected",
            r"(?:WARNING|BUG): (?P<q>held lock freed)!",
            r"(?:WARNING|BUG): \S+ (?P<q>still has locks held)!",
            r"(?:WARNING|BUG): (?P<q>lock held when returning to user space)!",
            r"(?:WARNING|BUG): (?P<q>Invalid wait context)",
            r"(?:WARNING|BUG): (?P<q>Nested lock was not taken)",
            r"(?:WARNING|INFO): (?P<q>suspicious RCU usage)",  # lockdep_rcu_suspicious()
            r"INFO: (?P<q>trying to register non-static key)",
            r"BUG: (?P<q>MAX_(?:STACK_TRACE_ENTRIES|LOCKDEP_\w+) too low)!",
            # kernel/locking/spinlock_debug.c (CONFIG_DEBUG_SPINLOCK) spin_bug()/rwlock_bug()
            r"BUG: (?P<q>(?:spin|rw)lock (?:lockup suspected|recursion|bad magic|already unlocked"
            r"|wrong owner|wrong CPU|cpu recursion))",
        ),
        # < 4.15 ("[ INFO: possible circular locking dependency detected ]")
        legacy=(
            r"^\[ INFO: (?P<q>possible \w+ locking(?: dependency)?) detected",
            r"^\[ INFO: (?P<q>inconsistent lock state) \]",
            r"^\[ INFO: (?P<q>possible irq lock inversion dependency) detected",
            r"^\[ INFO: (?P<q>\S+-safe -> \S+-unsafe lock order) detected",
            r"^\[ INFO: (?P<q>suspicious RCU usage)\. \]",
            r"^\[ BUG: (?P<q>bad unlock balance) detected",
            r"^\[ BUG: (?P<q>held lock freed)! \]",
            r"^\[ BUG: \S+ (?P<q>still has locks held)! \]",
            r"^\[ BUG: (?P<q>lock held when returning to user space)! \]",
            r"^\[ BUG: (?P<q>Invalid wait context) \]",
        ),
        qualifier="q",
        severity="warning",
        culprit="lock",
    ),
    Rule(
        "list-corruption",
        (r"(?P<q>list_(?:add|del)(?:_rcu)?) corruption",),
        qualifier="q",
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
            # kernel/sched/core.c schedule_debug(): the stack's end canary is overwritten
            _NOT_SYNCING + r"corrupted stack end detected inside scheduler",
            # arm64 (arch/arm64/kernel/traps.c panic_bad_stack)
            r"Insufficient stack space to handle exception",
            _NOT_SYNCING + r"kernel stack overflow",
        ),
        skip=(r"handle_stack_overflow", r"exc_double_fault", r"asm_exc_double_fault"),
        # the function that recurses (engine.py), else blamed like a stall: the
        # recursion's entry (culprit.py "overflow")
        culprit="overflow",
    ),
    Rule(
        "double-fault",
        (
            r"PANIC: double fault",
            r"^(?:Oops: )?double fault: [0-9a-f]{4} \[#",
        ),
        # a real "PANIC: double fault" on the RIP (culprit.py "overflow" with double_fault)
        culprit="overflow",
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
            # arch/powerpc/mm/fault.c bad_kernel_fault(), arch/riscv/mm/fault.c
            r"BUG: Unable to handle kernel (?:data|instruction) (?:access|fetch)"
            r"(?: on (?:read|write))? at 0x(?P<addr3>[0-9a-f]+)",
            r"Unable to handle kernel access to user memory",
            # s390 (arch/s390/mm/fault.c)
            r"Unable to handle kernel pointer dereference in virtual kernel address space",
            # arm64 >= 5.x permission faults (arch/arm64/mm/fault.c __do_kernel_fault)
            r"Unable to handle kernel (?:read from unreadable memory|write to read-only memory|"
            r"execute from non-executable memory) at virtual address (?P<addr4>[0-9a-f]+)",
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
            # kernel/workqueue.c wq_watchdog_timer_fn(): a worker pool made no progress
            r"BUG: workqueue lockup - pool",
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
        (
            r"INFO: task (?P<comm>.+):(?P<pid>\d+) blocked (?:in I/O wait )?for more than "
            r"(?P<secs>\d+) seconds",
            # kernel/hung_task.c with a fatal signal pending (Android/ChromeOS backports)
            r"INFO: task (?P<comm>.+):(?P<pid>\d+) can't die for more than (?P<secs>\d+) seconds",
        ),
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
    ),
    Rule(
        "percpu-preemptible",
        (
            # lib/smp_processor_id.c check_preemption_disabled()
            r"BUG: using (?P<q>smp_processor_id\(\)|__this_cpu_\w+\(\)|this_cpu_\w+\(\)) in "
            r"preemptible",
        ),
        qualifier="q",
        severity="warning",
    ),
    Rule(
        "netdev-leak",
        # net/core/dev.c netdev_wait_allrefs(): printed every 10 s while unregistering waits
        (
            r"unregister_netdevice: waiting for (?P<q>\S+) to become free\. "
            r"Usage count = (?P<count>-?\d+)",
        ),
        qualifier="q",
        severity="warning",
        folds=("netdev-leak",),
    ),
    Rule(
        "vfs-refcount",
        (
            # fs/super.c generic_shutdown_super(): inodes still referenced after umount
            r"VFS: (?P<q>Busy inodes after unmount)",
            # fs/open.c filp_close() (3.x-4.x): closing a file nobody holds
            r"VFS: (?P<q>Close: file count is 0)",
        ),
        qualifier="q",
        severity="warning",
    ),
    Rule(
        "memory-leak",
        # mm/kmemleak.c print_unreferenced() (the debugfs file, which test bots print)
        (r"unreferenced object(?: 0x[0-9a-f]+ \(size (?P<size>\d+)\))?",),
        severity="warning",
        folds=("memory-leak",),
    ),
    Rule(
        "bad-page",
        (
            r"BUG: (?P<q>Bad page (?:state|map|cache))",
            r"BUG: (?P<q>Bad rss-counter state)",  # kernel/fork.c check_mm()
        ),
        qualifier="q",
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
    ),
    Rule(
        "init-killed",
        (_NOT_SYNCING + r"Attempted to kill init! exitcode=0x(?P<exit>[0-9a-f]+)",),
        weak=True,
    ),
    Rule(
        "no-rootfs",
        (_NOT_SYNCING + r"VFS: Unable to mount root fs on (?P<dev>.+)",),
    ),
    Rule(
        "warn",
        (
            r"WARNING: CPU: \d+ PID: \d+ at (?P<file>\S+)",
            # 6.19+ __warn(): "WARNING: [cond] f.c:12 at f+0x1/0x2, CPU#0: comm/pid"
            r"WARNING: (?:\[.*\] )?(?P<file>\S+:\d+) at \S+, CPU#\d+",
        ),
        legacy=(
            r"WARNING: at (?P<file>\S+)",
            # arch/x86/kernel/unwind_frame.c: the unwinder found a corrupt stack frame
            r"^WARNING: (?P<file>kernel stack (?:regs|frame pointer)) at ",
        ),
        severity="warning",
    ),
    Rule("panic", (_NOT_SYNCING + r"(?P<msg>.*)$", r"^Kernel panic: (?P<msg>.*)$")),
    # Last resort for an "Oops: ..." or "... [#N]" line that matched nothing above.
    Rule(
        "oops",
        (
            r"^(?:Oops|Internal error): [0-9a-f]{4}",
            r": [0-9a-f]{4} \[#\d+\]",
            # arm64/arm die(): "Internal error: <what>: 96000010 [#1]", "Internal error: : 1b [#1]"
            r"^Internal error: .*: [0-9a-f]{1,8} \[#\d+\]",
            r"^Oops \[#\d+\]",  # riscv die()
            r"^BUG: unable to handle kernel\s*$",  # x86 #PF header cut short
        ),
        next_steps=1,
    ),
)


#: Which classes each trailer (the ``q`` group of the trailer row) points back to
#: (kernel/watchdog.c, kernel/hung_task.c, kernel/panic.c); a trailer not listed
#: points to the last ``[#1]`` oops, else the nearest fatal report above it.
TRAILER_TARGETS: dict[str, tuple[str, ...]] = {
    "softlockup: hung tasks": ("soft-lockup",),
    "hung_task: blocked tasks": ("hung-task",),
    "panic_on_kmsan set": ("sanitizer",),
    "scheduling while atomic": ("atomic-sleep",),
    "Machine halted.": ("double-fault", "stack-overflow"),
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
