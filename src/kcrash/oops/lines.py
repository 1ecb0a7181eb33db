"""Parsers for the individual lines of a kernel report block (x86-64).

Each function takes the text of one record (transport prefix already
stripped, leading blanks allowed) and returns a plain value or ``None``.
Wordings handled, by kernel version:

* RIP line: ``RIP: 0010:func+0x1a/0x40 [mod]`` (>= 4.10); ``RIP: 0010:[<addr>]
  [<addr>] func+0x1a/0x40 [mod]`` (3.x-4.9); ``IP: [<addr>] func+...`` (the
  #PF pre-amble of < 4.17); ``RIP: 0010:0x0`` (jump to NULL).
* Frames: `` func+0x1a/0x40 [mod]``, `` ? func+...`` (unreliable),
  `` [<ffffffff81234567>] func+...`` (< 4.9), ``[mod buildid]`` (>= 5.15 with
  ``CONFIG_STACKTRACE_BUILD_ID``), bare `` 0xffffffffc0123456`` (no symbol).
* arm64 pastes: ``pc : func+0x14/0x30 [mod]`` is taken as the RIP line.
* Registers: the ``__show_regs`` block (``RSP: 0018:... EFLAGS: ...``,
  ``RAX: ... RBX: ... RCX: ...`` ... ``CR2: ... CR3: ... CR4: ...``).
* ``Code:`` with the byte at RIP in ``<xx>`` (``(xx)`` on some arches).
"""

from __future__ import annotations

import re

from kcrash.facts.model import Frame

_SYM = r"(?P<func>[A-Za-z_.$][\w.$]*)\+0x(?P<off>[0-9a-fA-F]+)(?:/0x(?P<size>[0-9a-fA-F]+))?"
_MOD = r"(?:\s+\[(?P<mod>[\w-]+)(?:\s+[0-9a-f]{8,})?\])?"

# powerpc show_stack(): "[c000000049a87a10] [c0000000005f7dc8] exit_aio+0x188/0x2a0" (SP, LR)
FRAME_RE = re.compile(
    r"^\s*(?:\[<(?P<addr>[0-9a-f]+)>\]\s*|\[[0-9a-f]{8,16}\] \[[0-9a-f]{8,16}\]\s+)?(?P<q>\?\s+)?"
    r"(?:" + _SYM + _MOD + r"|(?P<bare>0x[0-9a-f]{6,16}))"
    r"(?P<rest>\s.*)?$"
)
# arm (32-bit) __show_regs(): "PC is at memset+0x30/0xa8"
RIP_RE = re.compile(
    r"^\s*(?:R?IP:|pc :|PC is at)\s*(?:(?P<cs>[0-9a-f]{4}):)?\s*(?:\[<(?P<addr>[0-9a-f]+)>\]\s*)*"
    r"(?:" + _SYM + _MOD + r"|(?P<bare>0x[0-9a-f]+))"
)
REG_LINE_RE = re.compile(
    r"^\s*(?:RAX|RBX|RCX|RDX|RSI|RDI|RBP|RSP|R0[89]|R1[0-5]|FS|CS|CR2|DR[0-7]|PKRU|"
    r"EAX|EBX|ECX|EDX|ESI|EDI|EBP|ESP|DS|ES|EFLAGS|ORIG_RAX):"
)
_REG_PAIR_RE = re.compile(
    r"(?P<name>[A-Za-z][A-Za-z0-9_]*):\s*(?:(?P<seg>[0-9a-f]{4}):)?(?P<val>[0-9a-f]{4,16})\b"
)
CODE_RE = re.compile(r"^\s*Code:\s*(?P<body>.*)$")
CONTEXT_RE = re.compile(r"^\s*<(?P<end>/?)(?P<name>IRQ|TASK|NMI|SOFTIRQ|EOI|EOE|#?[A-Z]{2,3})>\s*$")
# kmemleak: "backtrace:" (< 6.7), "backtrace (crc 5d0b5d3c):" (>= 6.7)
CALL_TRACE_RE = re.compile(
    r"^\s*(?:Call Trace|Call trace|Backtrace|backtrace(?: \(crc [0-9a-f]+\))?):\s*$"
)
END_TRACE_RE = re.compile(r"^\s*---\[ end trace")
END_PANIC_RE = re.compile(r"^\s*---\[ end Kernel panic - not syncing: ?(?P<msg>.*?)\s*\]---")
PANIC_RE = re.compile(r"Kernel panic - not syncing: ?(?P<msg>.*?)\s*$")
DIE_RE = re.compile(r"^\s*(?P<what>\S.*?): (?P<err>[0-9a-f]{4,8}) \[#(?P<n>\d+)\]")
CPU_RE = re.compile(
    r"^\s*CPU: (?P<cpu>\d+) (?:UID: \d+ )?PID: (?P<pid>\d+) Comm: (?P<comm>.+?) "
    r"(?:Kdump: loaded )?(?:Not tainted|Tainted: (?P<taint>[A-Z ]+?))\s+(?:-+\s+)?"
    r"(?P<release>\d\S*)(?: (?P<version>#.*))?$"
)
# Hung-task reports print taint and release on their own line (5.x, 6.x).
TAINT_LINE_RE = re.compile(
    r"^\s*(?:Not tainted|Tainted: (?P<taint>[A-Z ]+?))\s+(?:-+\s+)?(?P<release>\d\S*)"
    r"(?: (?P<version>#.*))?$"
)
HARDWARE_RE = re.compile(r"^\s*Hardware name: (?P<hw>.*)$")
MODULES_RE = re.compile(r"^\s*Modules linked in:(?P<mods>.*)$")
FAULT_ADDR_RES = (
    # >= 5.1 (show_fault_oops)
    re.compile(r"BUG: kernel NULL pointer dereference, address: (?:0x)?(?P<a>[0-9a-f]+)"),
    re.compile(r"BUG: unable to handle page fault for address: (?:0x)?(?P<a>[0-9a-f]+)"),
    # < 5.1
    re.compile(r"BUG: unable to handle kernel NULL pointer dereference at (?:0x)?(?P<a>[0-9a-f]+)"),
    re.compile(r"BUG: unable to handle kernel paging request at (?:0x)?(?P<a>[0-9a-f]+)"),
    # GPF with a decoded address (>= 5.5)
    re.compile(r"general protection fault, probably for non-canonical address 0x(?P<a>[0-9a-f]+)"),
    re.compile(r"general protection fault, maybe for address 0x(?P<a>[0-9a-f]+)"),
    # other architectures' wording, kept for pasted logs
    re.compile(r"Unable to handle kernel .* at virtual address (?:0x)?(?P<a>[0-9a-f]+)"),
)
PF_ERROR_RE = re.compile(r"#PF: error_code\(0x(?P<e>[0-9a-f]+)\)")
SOFTLOCKUP_RE = re.compile(r"CPU#(?P<cpu>\d+) stuck for \d+s! \[(?P<comm>.+):(?P<pid>\d+)\]")
HUNG_RE = re.compile(
    r"INFO: task (?P<comm>.+):(?P<pid>\d+) (?:blocked (?:in I/O wait )?for more than|can't die)"
)
WARN_RE = re.compile(r"WARNING: CPU: (?P<cpu>\d+) PID: (?P<pid>\d+) at ")
BY_TASK_RE = re.compile(r" by task (?P<comm>.+)/(?P<pid>\d+)\s*$")
NMI_BT_RE = re.compile(r"NMI backtrace for cpu (?P<cpu>\d+)")
# sched_show_task() (5.x, 6.x): "task:sh   state:D stack:0  pid:113  ppid:1  flags:0x0"
TASK_LINE_RE = re.compile(r"^\s*task:(?P<comm>.+?)\s+state:(?P<state>\S)\b.*?\bpid:\s*(?P<pid>\d+)")


# arm (32-bit) dump_backtrace_entry(): "[<80b10c70>] (memset) from [<8062eec8>] (f+0x1/0x2 [m])":
# the frame is the caller, after "from" (the callee is the line before, or the PC)
ARM_FRAME_RE = re.compile(
    r"^\s*\[<[0-9a-f]+>\] \((?P<callee>[\w.]+)\) from \[<(?P<addr>[0-9a-f]+)>\] \("
    + _SYM
    + _MOD
    + r"\)"
)


def parse_frame(text: str, context: str | None = None) -> Frame | None:
    """One ``Call Trace:`` line, or ``None`` when it is not a frame."""
    a = ARM_FRAME_RE.match(text) if "from [<" in text else None
    if a:
        return Frame(
            function=a.group("func"),
            offset=int(a.group("off"), 16),
            size=int(a.group("size"), 16) if a.group("size") else None,
            module=a.group("mod"),
            address=int(a.group("addr"), 16),
            context=context,
        )
    m = FRAME_RE.match(text)
    if not m:
        return None
    addr = int(m.group("addr"), 16) if m.group("addr") else None
    reliable = m.group("q") is None
    if m.group("bare"):
        return Frame(
            function=None, address=int(m.group("bare"), 16), reliable=reliable, context=context
        )
    return Frame(
        function=m.group("func"),
        offset=int(m.group("off"), 16),
        size=int(m.group("size"), 16) if m.group("size") else None,
        module=m.group("mod"),
        address=addr,
        reliable=reliable,
        context=context,
    )


def parse_rip(text: str) -> tuple[str | None, Frame] | None:
    """``RIP: 0010:func+0x1a/0x40 [mod]`` -> (code segment, frame)."""
    m = RIP_RE.match(text)
    if not m:
        return None
    addr = int(m.group("addr"), 16) if m.group("addr") else None
    if m.group("bare"):
        return m.group("cs"), Frame(function=None, address=int(m.group("bare"), 16))
    return m.group("cs"), Frame(
        function=m.group("func"),
        offset=int(m.group("off"), 16),
        size=int(m.group("size"), 16) if m.group("size") else None,
        module=m.group("mod"),
        address=addr,
    )


def is_user_segment(cs: str | None) -> bool:
    """0033 (64-bit) and 0023 (32-bit compat) are user code segments."""
    return cs in ("0033", "0023", "002b")


def parse_registers(text: str) -> dict[str, int]:
    """Every ``NAME: value`` pair of one register line, names upper-cased.

    ``RSP: 0018:ffff...`` also yields ``SS`` from its segment part;
    ``FS:  base(sel)`` keeps the base.
    """
    out: dict[str, int] = {}
    for m in _REG_PAIR_RE.finditer(text):
        name = m.group("name").upper()
        try:
            out[name] = int(m.group("val"), 16)
        except ValueError:
            continue
        if m.group("seg") and name in ("RSP", "ESP"):
            out["SS"] = int(m.group("seg"), 16)
    return out


def parse_code(text: str) -> tuple[list[int], int | None] | None:
    """``Code: 48 89 <8b> 47`` -> (bytes, index of the byte at RIP)."""
    m = CODE_RE.match(text)
    if not m:
        return None
    out: list[int] = []
    ip: int | None = None
    for tok in m.group("body").split():
        marked = len(tok) == 4 and tok[0] in "<(" and tok[3] in ">)"
        hexpart = tok[1:3] if marked else tok
        if len(hexpart) != 2:
            return None
        try:
            out.append(int(hexpart, 16))
        except ValueError:
            return None
        if marked and ip is None:
            ip = len(out) - 1
    return (out, ip) if out else None


def parse_modules(text: str) -> list[str] | None:
    """``Modules linked in: a(OE) b [last unloaded: c]`` -> ["a(OE)", "b"]."""
    m = MODULES_RE.match(text)
    if not m:
        return None
    body = re.sub(r"\[last unloaded: [^\]]*\]", "", m.group("mods"))
    return [tok for tok in body.split() if re.fullmatch(r"[\w-]+(?:\([A-Z_]+\))?", tok)]
