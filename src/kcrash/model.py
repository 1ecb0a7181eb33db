"""Plain fact types shared by every source of evidence.

Why one model: a vmcore (read through drgn) and a pasted console log (read
by :mod:`kcrash.oops.text`) must lead to the *same* verdict and signature for
the same crash.  Both therefore produce these types, and the diagnosis layer
only ever sees these types, never a drgn ``Program`` or raw text.

Everything here is a frozen-ish dataclass of plain values (str, int, float,
lists, dicts) so that it serialises to JSON as-is and can be built by hand in
unit tests in addition to the real-dump tests.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Frame:
    """One stack frame, from an unwinder or from a ``Call Trace:`` line.

    ``module`` is ``None`` for the core kernel (rendered as ``vmlinux``).
    ``reliable`` is False for the ``?`` frames of the kernel's stack dump,
    which are stale return addresses found by scanning, not unwinding.
    """

    function: str | None
    offset: int | None = None
    size: int | None = None
    module: str | None = None
    address: int | None = None
    reliable: bool = True
    source: str | None = None  # "file:line" when debuginfo has it
    sp: int | None = None
    inlined: bool = False
    # Registers of an exception frame (pt_regs) that begins at this frame,
    # e.g. the RIP frame of an oops: {"rip": ..., "rsp": ..., "rax": ...}.
    regs: dict[str, int] | None = None
    # Which stack the frame was printed on in a ``Call Trace:``: "task",
    # "irq", "softirq", "nmi", "exception" (the <IRQ>...</IRQ> markers), or
    # None when unknown.  Lockup and stall culprits skip the interrupt part.
    context: str | None = None
    # Which stack an unwound frame is on ("TASK", "IRQ", "NMI", "EXCEPTION"…,
    # drgn's x86-64 names), None when its stack pointer is unknown: ``bt``
    # prints crash's ``--- <IRQ stack> ---`` where it changes.
    stack: str | None = None
    # arm64: the address of the frame record this function saved (its x29), which
    # crash's arm64 bt prints in brackets; None elsewhere.
    fp: int | None = None

    @property
    def symbol(self) -> str:
        """``func+0x1a/0x40`` as the kernel prints it (or ``?`` when unknown)."""
        if self.function is None:
            return f"{self.address:#x}" if self.address is not None else "?"
        s = self.function
        if self.offset is not None:
            s += f"+{self.offset:#x}"
            if self.size is not None:
                s += f"/{self.size:#x}"
        return s


@dataclass
class Stack:
    """A task's (or CPU's) stack, innermost frame first."""

    frames: list[Frame] = field(default_factory=list)
    pid: int | None = None
    comm: str | None = None
    cpu: int | None = None
    task: int | None = None  # address of struct task_struct
    error: str | None = None  # why unwinding stopped early, if it did
    user_regs: dict[str, int] | None = None  # user-mode registers at kernel entry


@dataclass
class LogLine:
    """One kernel log record."""

    text: str
    timestamp: float | None = None  # seconds since boot
    level: int | None = None
    caller: str | None = None  # "T123" / "C1" printk caller id
    seq: int | None = None
    continued: bool = False  # a 2nd/3rd… line of one multi-line record


@dataclass
class OopsEvent:
    """One report block found in a kernel log: an oops, BUG, WARNING, panic…

    Built by :mod:`kcrash.oops.text` from any log text (console capture,
    ``vmcore-dmesg.txt``, or the log read out of a vmcore).  ``header`` is the
    first line of the block; ``lines`` is the whole block as printed.
    """

    header: str
    lines: list[str] = field(default_factory=list)
    line_index: int = 0  # index of the header in the log it came from
    timestamp: float | None = None
    oops_number: int | None = None  # the N of "[#N]"
    cpu: int | None = None
    pid: int | None = None
    comm: str | None = None
    taint: str | None = None  # "G           OE" style letters as printed
    release: str | None = None  # "6.1.0-28-amd64"
    kernel_version: str | None = None  # "#1 SMP PREEMPT_DYNAMIC Debian ..."
    hardware: str | None = None  # "Hardware name: ..."
    rip: Frame | None = None
    registers: dict[str, int] = field(default_factory=dict)
    code: list[int] | None = None  # bytes of the "Code:" line
    code_ip_index: int | None = None  # index of the <xx> byte in ``code``
    arch: str | None = None  # "arm64" when the block shows it (pc :, pstate:, ESR); else x86-64
    call_trace: list[Frame] = field(default_factory=list)
    modules_linked: list[str] = field(default_factory=list)
    fault_address: int | None = None
    error_code: int | None = None  # #PF error code or the oops's error code
    panic_message: str | None = None  # text after "Kernel panic - not syncing: "
    caller: str | None = None  # printk caller id of the header ("T123"/"C1")


@dataclass
class SystemInfo:
    """The facts of crash's ``sys`` command (see triage-reference §3), as raw values.

    Read from a dump, values are raw (bytes, seconds, a ``ps`` state code);
    read from a pasted crash session they are crash's own words ("1 GB").
    :mod:`kcrash.sys_rows` turns either into crash's text, one row per field.
    """

    kernel: str | None = None  # path of the vmlinux used, or a Note (no vmlinux)
    kernel_tainted: bool = False  # crash marks KERNEL "[TAINTED]"
    dumpfile: str | None = None  # the dump's path
    partial_dump: bool = False  # crash's "[PARTIAL DUMP]" (makedumpfile -d excluded pages)
    truncated_dump: bool = False  # kcrash's "[TRUNCATED]": the file ends before its data
    cpus: int | None = None
    cpus_offline: int = 0
    date: int | str | None = None  # seconds since the epoch (or crash's text)
    uptime: int | str | None = None  # seconds since boot (or crash's text)
    load_average: tuple[float, float, float] | str | None = None  # 1, 5, 15 minutes
    tasks: int | None = None
    nodename: str | None = None
    release: str | None = None
    version: str | None = None
    machine: str | None = None  # "x86_64"
    cpu_mhz: int | None = None  # cpu_khz / 1000 (crash shows it after MACHINE)
    memory: int | str | None = None  # bytes of present memory (or crash's text, "1 GB")
    panic: str | None = None
    pid: int | None = None
    command: str | None = None
    task: int | None = None
    cpu: int | None = None
    state: str | None = None  # the ps state code ("RU"), or crash's "TASK_RUNNING (PANIC)"
    # Not in crash's block but useful everywhere:
    taint: str | None = None
    build_id: str | None = None
    dump_format: str | None = None  # "kdump-compressed (zlib)", "ELF", ...
    #: fields that could not be read (a damaged dump): field -> why; shown as unknown
    unknown: dict[str, str] = field(default_factory=dict)


@dataclass
class TaskInfo:
    """One row of crash's ``ps``."""

    pid: int
    ppid: int
    cpu: int
    task: int
    state: str  # crash's two letters: RU IN UN ZO ID ST TR DE WA PA NE
    comm: str
    active: bool = False  # ">" in crash: the task running on its CPU
    mem_percent: float | None = None
    vsz_kb: int | None = None
    rss_kb: int | None = None


@dataclass
class ModuleInfo:
    """One row of crash's ``mod``, plus what taint says about the module."""

    name: str
    base: int | None = None
    size: int | None = None
    taints: str = ""  # module taint letters, e.g. "OE"
    object_file: str | None = None  # debuginfo path when loaded
    address: int | None = None  # address of its struct module

    @property
    def out_of_tree(self) -> bool:
        return "O" in self.taints

    @property
    def unsigned(self) -> bool:
        return "E" in self.taints

    @property
    def proprietary(self) -> bool:
        return "P" in self.taints


@dataclass
class CrashFacts:
    """Everything the diagnosis layer may look at for one crash.

    ``source`` is ``"vmcore"`` or ``"text"``; ``mode`` says what debuginfo the
    facts were read with (``"dwarf"``, ``"btf"``, ``"kallsyms"``, ``"text"``),
    and ``lacks`` lists, in words, what could not be read and why.
    """

    source: str
    mode: str
    system: SystemInfo = field(default_factory=SystemInfo)
    log: list[LogLine] = field(default_factory=list)
    events: list[OopsEvent] = field(default_factory=list)
    panic_stack: Stack | None = None
    cpu_stacks: list[Stack] = field(default_factory=list)
    blocked_tasks: list[Stack] = field(default_factory=list)
    tasks: list[TaskInfo] = field(default_factory=list)
    modules: list[ModuleInfo] = field(default_factory=list)
    memory: dict[str, Any] = field(default_factory=dict)
    lacks: list[str] = field(default_factory=list)
    #: Fault address and registers that are poison or point into slab objects
    #: (:func:`kcrash.facts.slab.bad_pointers`): cache, object, allocated, tracks.
    bad_pointers: list[dict[str, Any]] = field(default_factory=list)
    #: blocked tasks and the holders of what they wait on (issue 18); None = not read
    waits: list[TaskWait] | None = None
    #: block requests drivers held at the crash (issue 18), read with the waits
    io_requests: list[IoRequest] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LockFact:
    """A lock (or other object a task sleeps on) read from the dump (issue 18).

    ``naming`` says how ``name`` was found: ``symbol`` (kallsyms), ``member`` (a member of
    a global, DWARF), ``symbol+offset`` (the member needs DWARF), ``slab`` (the cache of a
    heap object), ``unknown``. ``found_by``: ``dwarf-argument`` (the wait frame's own
    argument) or ``stack-waiter`` (a stack word proved by the task's waiter on its list).
    """

    kind: str  # mutex, rwsem-write, rwsem-read, semaphore, completion
    address: int
    name: str | None = None
    naming: str = "unknown"
    found_by: str = ""
    state: str | None = None  # locked/unlocked, read-locked/write-locked
    owner_task: int | None = None  # task_struct address of the holder (mutex, rwsem writer)
    readers: int | None = None  # rwsem: how many readers hold it
    last_reader_task: int | None = None  # rwsem: the last reader the kernel recorded (a hint)
    count: int | None = None  # semaphore count / completion done
    error: str | None = None  # why the holder could not be read
    # A spinlock records no holder (a qspinlock without CONFIG_DEBUG_SPINLOCK): the holder
    # is inferred from the other CPUs (facts/spinlocks.py), owner_task then says whom.
    holder_cpu: int | None = None  # the CPU the inferred holder runs on
    holder_clues: list[str] = field(default_factory=list)  # codes, see facts/spinlocks.py
    holder_confidence: str | None = None  # "probable" or "possible" (never proved)
    holder_path: list[str] = field(default_factory=list)  # the holder's innermost frames
    taken_in: str | None = None  # the waiter's function that called spin_lock()
    waiter_cpu: int | None = None  # the CPU that spins on it
    object_offset: int | None = None  # a lock named by its slab cache: where in the object
    #: Since schema 1.3: the heap object the lock lies in, when ``naming`` is ``object``
    #: (``name`` is then lockdep's style, ``&sb->s_umount``): ``kind`` (a ``hang.container.*``
    #: message) and its parameters, ``{"kind": "disk", "name": "nullb0"}``.
    container: dict[str, Any] | None = None
    #: a block device claim (kind ``claim``): the claimer's holder cookie when it is a
    #: function (``disk_scan_partitions``), to find the task running it
    claim_holder: str | None = None


@dataclass
class IoRequest:
    """A block request the driver has and has not completed (issue 18), from the disk's
    tags: which device, what, where, since when."""

    address: int  # struct request
    disk: str  # nullb0, sda
    op: str  # READ, WRITE, FLUSH …
    sector: int
    bytes: int
    state: str  # in-flight, idle, complete (MQ_RQ_*)
    age_seconds: float | None = None  # crash time (jiffies) - start (deadline - timeout)
    start_time_ns: int | None = None  # ktime_get_ns() at its allocation (0: not recorded)
    tag: int | None = None
    pages: list[int] = field(default_factory=list)  # struct page addresses of its bios
    bios: list[int] = field(default_factory=list)  # struct bio addresses
    waiters: list[int] = field(default_factory=list)  # task_struct addresses tied to it


@dataclass
class ObjectWait:
    """A page/folio or a flag bit a task sleeps on (issue 18), proved by the wait-queue
    entry on its stack (``wake_page_function``/``wake_bit_function`` with the task)."""

    kind: str  # page, bit
    address: int  # the folio (page) or the word holding the bit
    bit: str  # PG_locked, PG_writeback, BH_Lock, or the number
    found_by: str = "stack-wait-entry"
    flags: list[str] = field(default_factory=list)  # the page's flags that are set
    index: int | None = None  # page cache index (pages of PAGE_SIZE)
    inode: int | None = None  # the mapping's host (inode number)
    device: str | None = None  # the block device it belongs to (nullb0)
    path: str | None = None  # the file, when the inode has a dentry
    fs: str | None = None  # file system type of the inode's super block
    owner: str | None = None  # for a bit: what the word belongs to ("buffer_head")
    block: int | None = None  # for a buffer head: its block number
    page: int | None = None  # for a buffer head: the page its data lies in
    requests: list[int] = field(default_factory=list)  # IoRequest addresses holding it


@dataclass
class TaskWait:
    """What one task waits on, from its stack and the lock's structures (issue 18)."""

    pid: int
    comm: str
    task: int  # address of struct task_struct
    state: str  # crash's two letters (UN, RU, IN…)
    kind: str | None = None  # a kind of facts.locks.WAIT_FRAMES, None: no known wait
    function: str | None = None  # the frame that says so
    frame_index: int | None = None
    lock: LockFact | None = None
    unknown: str | None = None  # why the object could not be found (a code, see locks.py)
    stack: Stack | None = None
    blocked: bool = False  # in D state or spinning on a lock (not only a holder)
    #: Since schema 1.3: the page or bit it sleeps on, and the requests in flight its
    #: wait is tied to (its bio, its page, its buffer).
    object: ObjectWait | None = None
    requests: list[int] = field(default_factory=list)  # IoRequest addresses
