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
SCHEMA_VERSION = "1.1"


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


class Context(TypedDict):
    panic_stack: StackDict | None
    cpu_stacks: list[StackDict]
    blocked_tasks: list[StackDict]
    modules: list[dict[str, Any]]  # ModuleInfo's fields, out_of_tree, unsigned
    memory: dict[str, Any] | None


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
