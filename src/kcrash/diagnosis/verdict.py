"""The result of diagnosis: plain dataclasses, serialisable with ``asdict``.

Every sentence is a :class:`Message` (a catalogue id plus parameters); the
report layer renders it with :func:`kcrash.diagnosis.i18n.render` in the
operator's language.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from kcrash.diagnosis.signature import Signature
from kcrash.model import Frame, OopsEvent


@dataclass
class Message:
    """A sentence of ``report/i18n/rules.<lang>.json``: key + ``{param}`` values."""

    id: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Culprit:
    """The function blamed for the crash."""

    function: str | None  # normalised name (no .isra/.cold suffix)
    module: str  # "vmlinux" for the core kernel
    symbol: str | None = None  # as printed: "foo.isra.0+0x1a/0x40"
    source: str | None = None  # "file:line" when debuginfo gave it
    out_of_tree: bool = False
    unsigned: bool = False
    proprietary: bool = False
    module_taints: str = ""
    reason: str = "first_non_skipped"  # how it was chosen (message id suffix)
    frame_index: int | None = None  # position in Diagnosis.frames


@dataclass
class CodeLine:
    """One disassembled instruction of the ``Code:`` line."""

    offset: int  # bytes from RIP (0 = the faulting instruction)
    bytes: str
    text: str
    faulting: bool = False


@dataclass
class Evidence:
    """Decoded facts backing the verdict."""

    messages: list[Message] = field(default_factory=list)  # one sentence per fact
    taint: str | None = None
    taint_flags: list[dict[str, Any]] = field(default_factory=list)  # letter, bit, id
    page_fault: dict[str, Any] | None = None  # error_code, access, mode, cause
    fault_address: str | None = None
    address_kind: str | None = None  # message id, e.g. "address.null_offset"
    code: list[CodeLine] = field(default_factory=list)
    fault_instruction: str | None = None
    fault_register: dict[str, Any] | None = None  # register, value, disp
    registers: dict[str, str] = field(default_factory=dict)  # "RAX": "0x0"
    header: str | None = None  # the first report line
    panic_message: str | None = None
    oops_number: int | None = None


@dataclass
class Diagnosis:
    """One crash (the primary one, or another report found in the same log)."""

    class_id: str
    title: str
    meaning: Message
    explanation: list[Message]
    next_steps: list[Message]
    culprit: Culprit | None
    evidence: Evidence
    signature: Signature
    frames: list[Frame] = field(default_factory=list)  # the stack the culprit came from
    event: OopsEvent | None = None
    primary: bool = True
    qualifier: str | None = None
    cpu: int | None = None
    pid: int | None = None
    comm: str | None = None
    related: list[str] = field(default_factory=list)  # headers of folded events
    source: str = "log"  # "log" (an event of the kernel log) | "panic_stack" | "none"
    #: the function at RIP/pc (or the exception frame / header function): where the CPU
    #: was; the culprit is the frame blamed, which skips generic infrastructure
    crash_site: Culprit | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
