"""The report as types: one TypedDict per object of ``docs/report-schema.json``.

Why TypedDicts and not dataclasses: the report *is* its JSON (``kcrash analyze -f json``,
batch's ``<name>.json``, a server's answer), every renderer reads the same dict, and a
TypedDict gives type checkers and readers the shape without changing one byte of it.
``tests/test_report_model.py`` checks that these keys and the schema's stay the same.

Consumers that summarise a report (``batch``, a dashboard) use the accessors below
instead of re-deriving fields by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

#: ``schema_version`` of the reports this code writes (docs/report-schema.json).
SCHEMA_VERSION = "1.3"


class Tool(TypedDict):
    name: str
    version: str


class InputInfo(TypedDict, total=False):
    path: str
    kind: Literal["vmcore", "text"]
    format: str
    mode: Literal["dwarf", "btf", "kallsyms", "text"]
    vmlinux: str | None
    lacks: list[str]


class FrameDict(TypedDict):
    """A frame of :class:`kcrash.model.Frame` as the report writes it (no registers)."""

    function: str | None
    offset: int | None
    size: int | None
    module: str | None
    address: int | None
    reliable: bool
    source: str | None
    sp: int | None
    inlined: bool
    context: str | None
    stack: str | None
    exception: bool  # an exception/interrupt frame starts here
    symbol: str | None
    fp: int | None  # arm64: the frame record this function saved (its x29); None elsewhere


class StackDict(TypedDict):
    pid: int | None
    comm: str | None
    cpu: int | None
    task: int | None
    error: str | None
    frames: list[FrameDict]


class CrashSite(TypedDict):
    function: str | None
    module: str | None
    symbol: str | None
    source: str | None


class CulpritDict(CrashSite):
    out_of_tree: bool
    unsigned: bool
    proprietary: bool
    reason: str


#: The functional form: ``class`` is a Python keyword but the JSON's key.
Verdict = TypedDict(
    "Verdict",
    {
        "class": str,  # the crash class id ("null-deref", "unknown")
        "class_name": str,
        "title": str | None,
        "summary": str | None,
        "crash_site": CrashSite | None,
        "culprit": CulpritDict | None,
        "cpu": int | None,
        "pid": int | None,
        "comm": str | None,
        "source": str | None,
    },
    total=False,  # a report without a verdict ("unknown") has only the first six
)


class SignatureDict(TypedDict, total=False):
    scheme: str
    id: str | None
    title: str | None
    attributes: dict[str, Any]
    key: list[str]


class DecodedLine(TypedDict):
    label: str | None
    text: str


class Evidence(TypedDict, total=False):
    header: str | None
    panic_message: str | None
    oops_number: int | None
    taint: str | None
    taint_flags: Any
    page_fault: Any
    fault_address: str | None
    address_kind: str | None
    fault_instruction: str | None
    fault_register: str | None
    access: dict[str, Any] | None
    decoded: list[DecodedLine]
    code: list[str]
    registers: dict[str, int]
    call_trace: list[FrameDict]
    related: list[Any]


class SlabCacheRow(TypedDict, total=False):
    """One line of crash's ``kmem -s`` (kcrash.facts.slab.cache_rows); sizes in kB."""

    name: str
    object_size: int | None  # None when read from the log's "Unreclaimable slab info"
    size: int
    allocated: int | None
    total: int
    slabs: int
    slab_kb: int
    total_kb: int


class LeakSuspect(TypedDict):
    """The cache kcrash.facts.memory.LEAK_RULE names (one cache far above the rest)."""

    cache: str
    total_kb: int
    objects: int | None  # None when read from the log alone
    object_size: int | None
    ram_percent: float
    times_next: float | None
    next_cache: str | None


class OomReport(TypedDict, total=False):
    """What the kernel's OOM report in the log says (kcrash.facts.memory.oom_report)."""

    constraint: str
    memcg: str
    memcg_usage_kb: int
    memcg_limit_kb: int
    invoked_by: str
    gfp_mask: str
    victim: dict[str, Any]  # comm, pid
    unreclaimable_slab: list[dict[str, Any]]  # name, used_kb, total_kb
    pages_ram: int
    pages_reserved: int


class Memory(TypedDict, total=False):
    """Since schema 1.2: what ate the memory (OOM classes), sizes in kB; a figure the
    kernel or the input lacks is absent and named in ``lacks``."""

    total_kb: int
    free_kb: int
    anon_kb: int
    file_kb: int
    shmem_kb: int
    slab_reclaimable_kb: int
    slab_unreclaimable_kb: int
    kernel_stack_kb: int
    pagetables_kb: int
    hugetlb_kb: int
    hugetlb_free_kb: int
    other_kb: int
    top_tasks: list[dict[str, Any]]  # pid, comm, rss_kb
    slab_caches: list[SlabCacheRow]
    slab_cache_count: int
    leak_suspect: LeakSuspect | None
    oom: OomReport
    lacks: list[str]


class Context(TypedDict):
    panic_stack: StackDict | None
    cpu_stacks: list[StackDict]
    blocked_tasks: list[StackDict]
    modules: list[dict[str, Any]]  # ModuleInfo's fields, out_of_tree, unsigned
    memory: Memory | None


class TrackFrame(TypedDict, total=False):
    address: int
    function: str | None
    module: str | None
    offset: int | None
    size: int


class Track(TypedDict):
    """A SLUB ``struct track`` (slub_debug=U): who allocated or freed an object, and when."""

    caller: TrackFrame
    pid: int
    cpu: int
    jiffies_ago: int
    stack: list[TrackFrame]


class Tracks(TypedDict):
    alloc: Track | None
    free: Track | None


class SlabObject(TypedDict, total=False):
    """crash's ``kmem ADDR`` of a slab address (kcrash.facts.slab.object_info)."""

    address: int
    cache: str
    cache_address: int
    object: int
    offset: int
    object_size: int
    allocated: bool | None
    tracks: Tracks | None
    lacks: list[str]


class BadPointer(TypedDict):
    """Since schema 1.2: a fault address or register that is poison or points into a
    slab object."""

    where: str  # "fault_address" or a register name
    value: int
    poison: dict[str, Any] | None  # name, kind
    slab: SlabObject | None


class StepDict(TypedDict):
    name: str
    status: Literal["ok", "skipped", "failed", "timeout"]
    seconds: float
    reason: str | None


class OtherReport(TypedDict, total=False):
    verdict: Verdict
    signature: SignatureDict
    explanation: list[str]
    next_steps: list[str]
    evidence: Evidence
    position: Literal["before", "after"] | None


#: crash's sys fields and the others, keys and order of :data:`kcrash.sys_rows.SYS_ROWS`,
#: plus ``unknown`` (field -> why a damaged dump could not give it).
SystemDict = dict[str, Any]


class HangLock(TypedDict, total=False):
    kind: str
    address: int
    name: str | None
    naming: str
    found_by: str
    state: str | None
    holder: Any
    readers: int | None
    last_reader: Any
    container: str | None  # since 1.3
    # Since 1.3: a spinlock's holder, inferred from the other CPUs (facts/spinlocks.py).
    holder_cpu: int | None
    holder_confidence: Literal["probable", "possible"] | None
    holder_clues: list[str]
    holder_path: list[str]
    taken_in: str | None
    waiter_cpu: int | None
    object_offset: int | None


class WaitObject(TypedDict, total=False):
    """Since schema 1.3: the page/folio or flag bit a task sleeps on."""

    kind: str
    address: int
    bit: str
    found_by: str
    flags: list[str]
    index: int | None
    inode: int | None
    device: str | None
    path: str | None
    fs: str | None
    owner: str | None
    block: int | None
    requests: list[int]


class IoRequestDict(TypedDict, total=False):
    """Since schema 1.3: a block request a driver held at the crash."""

    address: int
    disk: str
    op: str
    sector: int
    bytes: int
    state: str
    age_seconds: float | None
    start_time_ns: int | None
    tag: int | None
    waiters: list[dict[str, Any]]


class HangSpin(TypedDict):
    """Since 1.3: one CPU spinning on a spinlock and the task inferred to hold it."""

    cpu: int | None
    pid: int
    comm: str
    lock: dict[str, Any]  # address, name, naming
    function: str | None  # the spinning task's function that called spin_lock()
    holder: dict[str, Any] | None  # pid, comm, cpu
    holder_path: list[str]
    confidence: Literal["probable", "possible"] | None
    clues: list[str]
    sentence: str
    how: str | None
    next_step: str | None


class HangTask(TypedDict, total=False):
    pid: int
    comm: str
    state: str
    blocked: bool
    wait: str | None
    function: str | None
    lock: HangLock | None
    unknown: str | None
    holds: list[dict[str, Any]]
    stack: list[str]
    object: WaitObject | None  # since 1.3
    requests: list[int]  # since 1.3


class Hang(TypedDict):
    """Since schema 1.2 (issue 18): the wait-for graph; null when the class does not read it."""

    deadlock: bool
    cycles: list[list[int]]
    chain: list[int]
    root: int | None
    blocked: int
    summary: str | None
    story: str | None
    tasks: list[HangTask]
    undetermined: list[str]
    requests: list[IoRequestDict]  # since 1.3
    io: list[str]  # since 1.3
    spinlocks: list[HangSpin]  # since 1.3


class Report(TypedDict):
    schema_version: str
    tool: Tool
    lang: str
    input: InputInfo
    verdict: Verdict
    signature: SignatureDict
    explanation: list[str]
    next_steps: list[str]
    evidence: Evidence
    system: SystemDict
    context: Context
    steps: list[StepDict]
    other_reports: list[OtherReport]
    objects: list[BadPointer] | None
    hang: Hang | None


# ---------------------------------------------------------------- accessors


def culprit_text(report: Report) -> str | None:
    """``func [module]`` of the culprit (``func`` alone in vmlinux), or None."""
    c = (report.get("verdict") or {}).get("culprit")
    if not isinstance(c, dict):
        return None
    fn, mod = c.get("function"), c.get("module")
    return f"{fn} [{mod}]" if fn and mod and mod != "vmlinux" else fn


def degraded_steps(report: Report) -> list[str]:
    """What the analysis could not do: failed or timed-out steps with their reasons, in
    the report's language (a summary speaks the reports' language)."""
    from .labels import labels

    said = labels(report.get("lang") or "en")
    return [
        f"{said.get('step.' + s['name'], s['name'])}: {said.get('status_' + s['status'])}"
        + (f" ({s['reason']})" if s.get("reason") else "")
        for s in report.get("steps") or []
        if isinstance(s, dict) and s.get("status") in ("failed", "timeout")
    ]


@dataclass
class Summary:
    """The few fields a list of reports shows per dump (batch's summary, a dashboard row)."""

    signature: str | None
    title: str | None
    crash_class: str | None
    culprit: str | None
    mode: str | None
    degraded: list[str] = field(default_factory=list)


def summary(report: Report) -> Summary:
    verdict = report.get("verdict") or {}
    sig = report.get("signature") or {}
    return Summary(
        signature=sig.get("id"),
        title=sig.get("title") or verdict.get("title"),
        crash_class=verdict.get("class"),
        culprit=culprit_text(report),
        mode=(report.get("input") or {}).get("mode"),
        degraded=degraded_steps(report),
    )
