"""The crash classes, as a table of data.

One row per class of ``docs/triage-reference.md`` §1 (the ids are the
contract of ``verdict.class`` in the report).  A row holds *all* of a class's
behaviour: how to recognise it in a report block (``patterns``: current
wordings; ``legacy``: the pre-5.1 ones), where its block starts in a log
(``starts``, read by :mod:`kcrash.oops.blocks`), how to name it
(``qualifier``), where its culprit is (``culprit``, ``skip``,
``skip_tables``), what evidence the engine reads (``evidence``), what context
``analyze`` adds from a dump (``context``), which panic() trailers follow it
(``trailed_by``; the trailers themselves are :data:`TRAILERS`) and which of
its own panic lines only follow its report (``panic_after``), and which
message ids explain it (``rule.<id>.meaning``, ``rule.<id>.explanation``,
``rule.<id>.next.<n>``, ``class.<id>`` in ``report/i18n/rules.<lang>.json``).
No other module lists class ids (``tests/test_diagnosis_table.py`` checks it).

**Adding a class** = one :class:`Rule` row below (in priority order: the
first row whose pattern matches a block wins) + its messages in both
catalogues + a sample of real log text in ``tests/data/oops/`` (with its
source) and its row in ``tests/test_oops_wordings.py``.  The table is data
only (no kcrash imports), so the oops parser and ``facts/panic.py`` read it
too.

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
    #: "first" | "access" (sanitizers) | "anchor" (lockups, stalls) | "sleeping" (the
    #: caller of the sleeping call) | "waits" ("sleeping", but what a hung task waits
    #: in first) | "lock" | "message" | "overflow" | "recursion" ("overflow", unless one
    #: function fills the stack) | "none" (hardware: no code to blame); see
    #: :mod:`kcrash.diagnosis.culprit`
    culprit: str = "first"
    #: extra function-name regexes to skip for this class
    skip: tuple[str, ...] = ()
    #: named, reasoned skip tables of :data:`kcrash.diagnosis.culprit.CLASS_SKIPS`
    skip_tables: tuple[str, ...] = ()
    #: what the engine reads from the block as evidence (:data:`EVIDENCE` says each)
    evidence: tuple[str, ...] = ()
    #: what else of a dump the report of this class shows (:data:`CONTEXT` says each)
    context: tuple[str, ...] = ()
    #: wordings of :data:`TRAILERS` that follow this class's report; with the report
    #: lost, a trailer stands for the *last* row naming it (the most generic class)
    trailed_by: tuple[str, ...] = ()
    #: this class's own panic() messages printed *after* its report (after
    #: "Kernel panic - not syncing: "): the report, not that line, is what to read
    panic_after: tuple[str, ...] = ()
    #: block starts (kind, regex) a first report line of this class needs in
    #: :mod:`kcrash.oops.blocks` beyond the generic ``BUG:``/``WARNING:``/``INFO:``/
    #: ``Kernel panic`` ones: "pre" = preamble of the oops that follows, "start" = a
    #: report of its own, "aside" = a line another task prints amid a stack dump
    starts: tuple[tuple[str, str], ...] = ()
    #: a consequence of an earlier event, never the cause (the row built from TRAILERS)
    trailer: bool = False
    #: "fatal" | "warning" | "info" (info events never become the primary)
    severity: str = "fatal"
    #: classes of earlier events that are part of this same crash (folded in)
    folds: tuple[str, ...] = ()
    #: when an oops precedes it, the oops is the cause (init killed by an oops)
    weak: bool = False
    #: number of next-step messages (rule.<id>.next.1 .. next.N)
    next_steps: int = 2
    #: next steps (1-based) that the wait-for graph answers when it tells a cycle or a
    #: chain ("find what it waits for and who holds it"): left out of the report then
    answered_by_waits: tuple[int, ...] = ()
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


@dataclass(frozen=True)
class Trailer:
    """A panic() message printed only after another report, which is the cause.

    ``pattern`` matches the message after ``Kernel panic - not syncing: `` and
    its ``q`` group is ``wording``; ``key`` picks ``explain.trailer.<key>`` (why
    the report became a panic).  The classes it follows name it in their row's
    ``trailed_by``; a trailer no row names points to the last ``[#1]`` oops,
    else the nearest fatal report above it.
    """

    wording: str
    pattern: str
    key: str = "other"


#: The trailers (kernel/panic.c and its callers), one row each with its source.
TRAILERS: tuple[Trailer, ...] = (
    # oops_end() (arch/x86/kernel/dumpstack.c) with panic_on_oops; arm64/riscv die():
    # panic("%s: Fatal exception", "Oops" | "Oops - BUG" | ...); >= 6.x s390/arm64
    # add the reason: "Fatal exception: panic_on_oops"
    Trailer(
        "Fatal exception",
        r"(?:Oops(?: - \w+)?: )?(?P<q>Fatal exception)(?:: panic_on_oops)?\s*$",
        "fatal_exception",
    ),
    Trailer(
        "Fatal exception in interrupt",
        r"(?:Oops(?: - \w+)?: )?(?P<q>Fatal exception in interrupt)(?:: panic_on_oops)?\s*$",
        "fatal_exception_in_interrupt",
    ),
    # kernel/panic.c check_panic_on_warn(); 6.1: "kernel: panic_on_warn set ..."
    Trailer("panic_on_warn set", r"(?:\w+: )?(?P<q>panic_on_warn set)", "panic_on_warn"),
    # kernel/watchdog.c watchdog_timer_fn() with softlockup_panic
    Trailer("softlockup: hung tasks", r"(?P<q>softlockup: hung tasks)", "softlockup_panic"),
    # kernel/hung_task.c check_hung_uninterruptible_tasks() with hung_task_panic
    Trailer("hung_task: blocked tasks", r"(?P<q>hung_task: blocked tasks)", "hung_task_panic"),
    # older oops_end()/die() wordings
    Trailer("panic_on_oops", r"(?P<q>panic_on_oops)"),
    Trailer("Aiee, killing interrupt handler!", r"(?P<q>Aiee, killing interrupt handler!)"),
    # mm/kmsan/report.c with panic_on_kmsan
    Trailer("panic_on_kmsan set", r"(?P<q>panic_on_kmsan set)"),
    # kernel/sched/core.c __schedule_bug() with panic_on_warn
    Trailer("scheduling while atomic", r"(?P<q>scheduling while atomic)"),
    # arch/x86/kernel/traps.c exc_double_fault(): die() then panic()
    Trailer("Machine halted.", r"(?P<q>Machine halted\.)"),
)
TRAILERS_BY_WORDING: dict[str, Trailer] = {t.wording: t for t in TRAILERS}

#: What each ``evidence`` name of a row makes the engine read from the block.
EVIDENCE: dict[str, str] = {
    "page-fault": "the #PF error code bits (arch/x86/mm/fault.c; any block with a #PF: line"
    " gets them too)",
    "fault-address": "what the faulting address is: NULL page, user, poison, non-canonical...",
    "fault-instruction": "RIP is the faulting instruction: its text, memory operand and the"
    " register holding the bad address (not just where a CPU was)",
    "operand-address": "#GP has no CR2: the operand address computed from the registers",
    "list-pointer": "the corrupted pointer lib/list_debug.c names",
    "hardware": "the MCE / APEI-GHES records of the chain (severity, section, bank)",
}

#: What each ``context`` name of a row makes ``analyze`` read from a dump.
CONTEXT: dict[str, str] = {
    "cpu-stacks": "every online CPU's stack (lockups, stalls, NMIs: the CPUs that spin)",
    "blocked-tasks": "the stacks of D-state tasks (what hung tasks wait for)",
    "memory": "the memory summary (OOM)",
    "waits": "what each blocked task waits on, who holds it, the wait-for graph (issue 18)",
}

#: evidence of the exception classes whose RIP faulted on an address
_FAULT = ("fault-address", "fault-instruction")

_ROWS: tuple[Rule, ...] = (
    # --- trailers: what panic() says after another report (TRAILERS)
    Rule(
        "trailer",
        tuple(_NOT_SYNCING + t.pattern for t in TRAILERS),
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
        skip_tables=("slub-checks", "crypto"),
        starts=(
            ("pre", r"^\s*(?:\w+: )?BUG: KASAN: |^\s*BUG: KFENCE: |^\s*BUG: KMSAN: "),
            # slub_debug (mm/slub.c slab_bug): "BUG kmalloc-64 (Tainted: G B): Poison overwritten"
            ("start", r"^\s*BUG [\w.:-]+ \([^)]*\): \S"),
            ("start", r"^\s*UBSAN: "),
            ("start", r"^\s*INFO: (?:Freed|Allocated) in \S+ age="),  # slub_debug track
        ),
        trailed_by=("panic_on_warn set", "panic_on_kmsan set"),
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
        skip_tables=("lock-validator",),
        starts=(
            # < 4.9 lockdep headers in brackets: "[ INFO: possible circular locking ... ]"
            ("start", r"^\s*\[ INFO: (?:possible|inconsistent|suspicious|bad unlock)"),
            ("start", r"^\s*(?:\w+: )?possible (?:circular|recursive) locking"),
            # lockdep < 4.15: "[ INFO: ... ]", "[ BUG: ... ]"
            ("start", r"^\s*\[ (?:INFO|BUG): "),
            ("start", r"^\s*INFO: suspicious RCU usage"),
        ),
        trailed_by=("panic_on_warn set",),
    ),
    Rule(
        "list-corruption",
        (r"(?P<q>list_(?:add|del)(?:_rcu)?) corruption",),
        qualifier="q",
        evidence=("fault-instruction", "list-pointer"),
        skip_tables=("list-helpers",),
        starts=(("pre", r"^\s*list_(?:add|del)(?:_rcu)? corruption"),),
        trailed_by=("panic_on_warn set",),
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
        # the function that recurses (engine.py), else blamed like a stall: the
        # recursion's entry (culprit.py "overflow")
        culprit="recursion",
        starts=(("pre", r"^\s*BUG: \S+ stack guard page was hit|^\s*BUG: stack guard page"),),
        skip_tables=("stack-guard",),
        trailed_by=("Machine halted.",),
    ),
    Rule(
        "double-fault",
        (
            r"PANIC: double fault",
            r"^(?:Oops: )?double fault: [0-9a-f]{4} \[#",
        ),
        # a real "PANIC: double fault" on the RIP (culprit.py "overflow" with double_fault)
        culprit="overflow",
        starts=(("pre", r"^\s*PANIC: double fault"),),
        evidence=_FAULT,
        skip_tables=("stack-guard",),
        trailed_by=("Machine halted.",),
    ),
    Rule(
        "stack-protector",
        (r"stack-protector: Kernel stack is corrupted in: (?P<sym>\S+(?: \[[\w-]+\])?)",),
        starts=(("start", r"^\s*stack-protector: "),),
        culprit="message",
    ),
    Rule(
        "bug-on",
        (r"kernel BUG at (?P<q>[^\s:]+):(?P<line>\d+)!",),
        legacy=(r"Kernel BUG at (?P<q>[^\s:]+):(?P<line>\d+)",),
        qualifier="q",
        evidence=("fault-instruction",),
        # arm64 die() with panic_on_oops after "kernel BUG at"
        panic_after=(r"Oops - BUG",),
        starts=(
            ("pre", r"^\s*kernel BUG at \S+"),
            ("pre", r"^\s*(?:Kernel BUG at|BUG: failure at) "),
            ("start", r"^\s*Kernel BUG "),
        ),
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
        evidence=("page-fault", *_FAULT),
        starts=(
            ("pre", r"^\s*BUG: kernel NULL pointer dereference"),  # >= 5.1
            # arm64 (arch/arm64/mm/fault.c)
            ("pre", r"^\s*Unable to handle kernel (?:NULL pointer dereference|paging request)"),
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
        evidence=("page-fault", *_FAULT),
        starts=(
            ("pre", r"^\s*BUG: unable to handle "),  # page fault for / kernel paging
            ("pre", r"^\s*BUG: kernel tried to |kernel tried to execute NX-protected"),
            ("pre", r"unable to execute userspace code \(SMEP\?\)"),
            ("pre", r"^\s*Unable to handle kernel .{4,60} at virtual address "),  # arm64
            # ppc64 "BUG: Unable to handle kernel data access at 0x..." then "Oops: ... [#1]";
            # s390 "Unable to handle kernel pointer dereference in virtual kernel address space"
            ("pre", r"^\s*BUG: Unable to handle kernel (?:data access|instruction fetch)"),
            ("pre", r"^\s*Unable to handle kernel pointer dereference in virtual kernel"),
            ("start", r"^\s*Unable to handle kernel access to user memory"),  # riscv
        ),
    ),
    Rule(
        "gpf",
        (
            r"general protection fault(?:, probably for non-canonical address 0x(?P<addr>[0-9a-f]+)"
            r"|, maybe for address 0x(?P<addr2>[0-9a-f]+))?: [0-9a-f]{4}",
            r"^(?:Oops: )?stack segment: [0-9a-f]{4} \[#",  # >= 6.10 prefixes "Oops: "
        ),
        evidence=(*_FAULT, "operand-address"),
    ),
    Rule("invalid-opcode", (r"invalid opcode: [0-9a-f]{4} \[#",), evidence=("fault-instruction",)),
    Rule(
        "divide-error", (r"divide(?: |_)error: [0-9a-f]{4} \[#",), evidence=("fault-instruction",)
    ),
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
        context=("cpu-stacks", "waits"),
        answered_by_waits=(2,),  # find the lock holder in the other CPUs' stacks
        trailed_by=("softlockup: hung tasks",),
    ),
    Rule(
        "hard-lockup",
        (r"Watchdog detected hard LOCKUP on cpu (?P<cpu>\d+)", _NOT_SYNCING + r"Hard LOCKUP"),
        culprit="anchor",
        folds=("hard-lockup",),
        context=("cpu-stacks", "waits"),
        # kernel/watchdog_hld.c / kernel/watchdog.c with hardlockup_panic
        panic_after=(r"Hard LOCKUP", r"hardlockup: \S+"),
        # 3.x panic()s with the report's own wording: still the preamble
        starts=(("pre", r"Watchdog detected hard LOCKUP on cpu"),),
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
        context=("cpu-stacks", "waits"),
        panic_after=(r"RCU Stall",),  # kernel/rcu/tree_stall.h with panic_on_rcu_stall
        starts=(("pre", r"^\s*(?:\w+: )?INFO: rcu_\w+ (?:self-)?detected|^\s*rcu: INFO: "),),
    ),
    Rule(
        "hung-task",
        (
            r"INFO: task (?P<comm>.+):(?P<pid>\d+) blocked (?:in I/O wait )?for more than "
            r"(?P<secs>\d+) seconds",
            # kernel/hung_task.c with a fatal signal pending (Android/ChromeOS backports)
            r"INFO: task (?P<comm>.+):(?P<pid>\d+) can't die for more than (?P<secs>\d+) seconds",
        ),
        culprit="waits",
        folds=("hung-task",),
        context=("blocked-tasks", "waits"),
        answered_by_waits=(1, 2),  # find what it waits for; look for the lock's owner
        trailed_by=("hung_task: blocked tasks",),
        starts=(("start", r"^\s*(?:\w+: )?INFO: task \S.* (?:blocked .*for more than|can't die)"),),
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
        skip_tables=("sleep-checks",),
        trailed_by=("panic_on_warn set", "scheduling while atomic"),
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
        # printed every 10 s by another task: an "aside" that never cuts a stack dump in two
        starts=(("aside", r"^\s*unregister_netdevice: waiting for \S+ to become free"),),
    ),
    Rule(
        "vfs-refcount",
        (
            # fs/super.c generic_shutdown_super(): inodes still referenced after umount
            r"VFS: (?P<q>Busy inodes after unmount)",
            # fs/open.c filp_close() (3.x-4.x): closing a file nobody holds
            r"VFS: (?P<q>Close: file count is 0)",
        ),
        starts=(("start", r"^\s*VFS: (?:Busy inodes after unmount|Close: file count is 0)"),),
        qualifier="q",
        severity="warning",
    ),
    Rule(
        "memory-leak",
        # mm/kmemleak.c print_unreferenced() (the debugfs file, which test bots print)
        (r"unreferenced object(?: 0x[0-9a-f]+ \(size (?P<size>\d+)\))?",),
        severity="warning",
        folds=("memory-leak",),
        skip_tables=("alloc-wrappers",),
        # printed with or without "BUG: memory leak" first
        starts=(("pre", r"^\s*BUG: memory leak\s*$|^\s*unreferenced object\b"),),
    ),
    Rule(
        "bad-page",
        (
            r"BUG: (?P<q>Bad page (?:state|map|cache))",
            r"BUG: (?P<q>Bad rss-counter state)",  # kernel/fork.c check_mm()
        ),
        qualifier="q",
        skip_tables=("page-checks",),
        trailed_by=("panic_on_warn set",),
    ),
    Rule(
        "oom-panic",
        (
            _NOT_SYNCING + r"Out of memory",
            _NOT_SYNCING + r"System is deadlocked on memory",
        ),
        folds=("oom-kill",),
        context=("memory",),
    ),
    Rule(
        "oom-kill",
        (
            r"Out of memory: Kill(?:ed)? process \d+ \((?P<comm>[^)]*)\)",
            r"Memory cgroup out of memory: Kill(?:ed)? process \d+ \((?P<comm>[^)]*)\)",
            r"(?P<comm>\S+) invoked oom-killer: ",
        ),
        severity="info",
        context=("memory",),
        starts=(
            ("start", r" invoked oom-killer: "),
            (
                "start",
                r"^\s*(?:Memory cgroup )?[Oo]ut of memory(?: \(oom_kill_allocating_task\))?: ",
            ),
        ),
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
        evidence=("hardware",),
        panic_after=(r"Fatal machine check",),  # arch/x86/kernel/cpu/mce/severity.c
        # an APEI/GHES record is many "[Hardware Error]:" lines: its first line opens the block
        starts=(
            (
                "start",
                r"\[Hardware Error\]: (?:Hardware error from|CPU \d+: Machine Check)"
                r"|^\s*(?:mce: )?Machine [Cc]heck",
            ),
        ),
    ),
    Rule(
        "nmi",
        (
            r"Uhhuh\. NMI received",
            r"NMI: (?:PCI system error|IOCK error)",
            _NOT_SYNCING + r"NMI",
        ),
        folds=("nmi",),
        context=("cpu-stacks", "waits"),
        starts=(("start", r"Uhhuh\. NMI received|^\s*NMI: (?:PCI system error|IOCK error)"),),
    ),
    Rule(
        "sysrq",
        (
            r"sysrq: Trigger a crash",
            _NOT_SYNCING + r"sysrq triggered crash",
        ),
        legacy=(r"SysRq : Trigger a crash", r"SysRq : Crash"),
        folds=("sysrq",),
        context=("cpu-stacks", "blocked-tasks", "waits"),
        skip_tables=("sysrq-dispatch",),
        starts=(("start", r"^\s*(?:sysrq|SysRq) ?: "),),
    ),
    Rule(
        "init-killed",
        (_NOT_SYNCING + r"Attempted to kill init! exitcode=0x(?P<exit>[0-9a-f]+)",),
        weak=True,
        skip_tables=("exit-path",),
        starts=(("start", r"^\s*Attempted to kill init!"),),
    ),
    Rule(
        "no-rootfs",
        (_NOT_SYNCING + r"VFS: Unable to mount root fs on (?P<dev>.+)",),
        skip_tables=("root-mount",),
        starts=(("start", r"VFS: Unable to mount root fs"),),
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
        evidence=("fault-instruction",),
        trailed_by=("panic_on_warn set",),
    ),
    Rule(
        "panic",
        (_NOT_SYNCING + r"(?P<msg>.*)$", r"^Kernel panic: (?P<msg>.*)$"),
        # kernel/exit.c do_exit(): an oops killed the idle task
        panic_after=(r"Attempted to kill the idle task!",),
        starts=(("start", r"^\s*Kernel panic: "),),
    ),
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
        evidence=_FAULT,
        starts=(
            ("start", r"^\s*Oops \[#\d+\]"),  # riscv die()
            ("start", r"^\s*(?:Bad mode in |Internal error: )"),  # arm
        ),
        next_steps=1,
    ),
)


def _compile(rule: Rule) -> Rule:
    rx = tuple(re.compile(p) for p in rule.patterns + rule.legacy)
    object.__setattr__(rule, "compiled", rx)
    return rule


RULES: tuple[Rule, ...] = tuple(_compile(r) for r in _ROWS)
RULES_BY_ID: dict[str, Rule] = {r.id: r for r in RULES}
#: the class ids a report may carry (``trailer`` is never a verdict; ``unknown``
#: is used when nothing at all could be classified)
CLASS_IDS: tuple[str, ...] = (*tuple(r.id for r in RULES if r.id != "trailer"), "unknown")

#: Which classes each trailer wording points back to, in table order (from the
#: rows' ``trailed_by``); the last is the one a trailer stands for when the
#: report itself is lost (``panic_on_warn set`` -> ``warn``).
TRAILER_TARGETS: dict[str, tuple[str, ...]] = {
    t.wording: tuple(r.id for r in RULES if t.wording in r.trailed_by) for t in TRAILERS
}
#: The block starts of every row, in table order (kind, compiled regex), for
#: :mod:`kcrash.oops.blocks`, which puts its generic starts after them.
BLOCK_STARTS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(rx)) for r in RULES for kind, rx in r.starts
)
#: A bare ``[#N]`` oops line of a stack with an exception frame, and a trailer no
#: class claims, fall back on these rows.
OOPS_CLASS = "oops"
PANIC_CLASS = "panic"


def _unnamed(pattern: str) -> str:
    return re.sub(r"\(\?P<\w+>", "(?:", pattern)


#: A panic() message (after "Kernel panic - not syncing: ") that only follows the
#: report printed before it: the trailers and every row's ``panic_after``.
PANIC_AFTER_REPORT_RE = re.compile(
    "^(?:"
    + "|".join(
        _unnamed(p)
        for p in (*(t.pattern for t in TRAILERS), *(p for r in RULES for p in r.panic_after))
    )
    + ")"
)


def has_evidence(rule: Rule | None, kind: str) -> bool:
    """Whether ``rule``'s row asks for evidence ``kind`` (:data:`EVIDENCE`)."""
    return rule is not None and kind in rule.evidence


def context_of(class_id: str) -> tuple[str, ...]:
    """The context (:data:`CONTEXT`) a report of ``class_id`` shows."""
    rule = RULES_BY_ID.get(class_id)
    return rule.context if rule is not None else ()


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
