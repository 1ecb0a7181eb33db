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
* arm64 registers (``__show_regs``, arch/arm64/kernel/process.c): ``sp : ffff...``,
  ``x29: ffff... x28: ...`` three a row, one-digit names padded (``x9 : ...``).
* ``Code:`` with the byte at RIP in ``<xx>`` (``(xx)`` on some arches); arm64 and
  other fixed-width ISAs print 32-bit words, the faulting one in parentheses:
  ``Code: 7100707f 54000081 f9401c00 (b9400403)`` (arch/arm64/kernel/traps.c
  dump_kernel_instr, 4.x-6.x).
"""

from __future__ import annotations

import re

from kcrash.model import Frame

_SYM = r"(?P<func>[A-Za-z_.$][\w.$]*)\+0x(?P<off>[0-9a-fA-F]+)(?:/0x(?P<size>[0-9a-fA-F]+))?"
_MOD = r"(?:\s+\[(?P<mod>[\w-]+)(?:\s+[0-9a-f]{8,})?\])?"

# One frame line.  Besides x86's `` [<addr>] ? f+0x1/0x2 [mod]``:
# ppc64 ``[c0000000fff3fa20] [c00000000030a060] f+0x7b0/0x13a0`` (stack pointer,
# then address), s390 ``([<addr>] f+0x194/0x1a0)`` (an unreliable caller in
# parentheses), and arm64's 6.x tags after the offset (`` f+0x18/0x24 (C)``:
# C = pc of the frame record, P = the exception's pc, L = its lr).
FRAME_RE = re.compile(
    r"^\s*(?P<paren>\()?(?:\[(?P<sp>[0-9a-f]{8,16})\]\s+(?=\[[0-9a-f]))?"
    r"(?:\[<?(?P<addr>[0-9a-f]+)>?\]\s*)?(?P<q>\?\s+)?"
    r"(?:" + _SYM + _MOD + r"|(?P<bare>0x[0-9a-f]{6,16}))"
    r"(?P<rest>\s.*|\))?$"
)
# Where the CPU was (the crash site), by architecture and era:
#   x86-64 ``RIP: 0010:f+0x1a/0x40 [mod]`` (>= 4.10), ``RIP: 0010:[<addr>]  [<addr>] f+...``
#   (3.x-4.9), ``IP: [<addr>] f+...`` (#PF preamble < 4.17), ``RIP: 0010:0x0``;
#   NULL in 3.x-4.x: ``IP: [<          (null)>]           (null)``;
#   i386 ``EIP: f+0x3/0x5 [mod]`` (>= 4.x), ``EIP is at f+...`` and, after the trace,
#   ``EIP: [<f8e40765>] f+0x3/0x5 [mod] SS:ESP 0068:...`` (< 4.x);
#   arm64 ``pc : f+0x24/0xa0`` (>= 4.x), ``PC is at f+0x184/0x2b0`` (arm64 3.x, 32-bit arm);
#   ppc64 ``NIP [c00000000022d79c] f+0x1ac/0x5f0``;
#   s390 ``Krnl PSW : 0704d00180000000 0000021761df6538 (f+0x198/0x1a0)``.
RIP_RE = re.compile(
    r"^\s*(?:R?IP:|EIP:|EIP is at|pc :|PC is at|NIP|Krnl PSW :(?: [0-9a-f]{16}){2} \(?)\s*"
    r"(?:(?P<cs>[0-9a-f]{4}):)?\s*(?:\[<?(?P<addr>[0-9a-f]+|\s*\(null\))>?\]\s*)*"
    r"(?:" + _SYM + _MOD + r"|(?P<bare>0x[0-9a-f]+)|(?P<null>\(null\)))"
)
REG_LINE_RE = re.compile(
    r"^\s*(?:RAX|RBX|RCX|RDX|RSI|RDI|RBP|RSP|R0[89]|R1[0-5]|FS|CS|CR2|DR[0-7]|PKRU|"
    r"EAX|EBX|ECX|EDX|ESI|EDI|EBP|ESP|DS|ES|EFLAGS|ORIG_RAX):"
    r"|^\s*(?:x\d{1,2} ?|sp ):"  # arm64
)
_REG_PAIR_RE = re.compile(
    r"(?P<name>[A-Za-z][A-Za-z0-9_]*) ?:\s*(?:(?P<seg>[0-9a-f]{4}):)?(?P<val>[0-9a-f]{4,16})\b"
)
CODE_RE = re.compile(r"^\s*Code:\s*(?P<body>.*)$")
CONTEXT_RE = re.compile(r"^\s*<(?P<end>/?)(?P<name>IRQ|TASK|NMI|SOFTIRQ|EOI|EOE|#?[A-Z]{2,3})>\s*$")
# The start of the stack dump.  kmemleak prints "backtrace:" (">= 6.6: backtrace (crc 1a2b):");
# KCSAN has no "Call Trace:" - its first access line ("read to 0x... of 8 bytes by task 1 on
# cpu 0:") heads the stack of the racing access.
CALL_TRACE_RE = re.compile(
    r"^\s*(?:Call Trace|Call trace|Backtrace|backtrace(?: \(crc [0-9a-f]+\))?):\s*$"
    r"|^\s*(?:race at unknown origin, with )?(?:read|write)(?:-write)?(?: \(marked\))? to "
    r"0x[0-9a-f]+ of \d+ bytes by (?:task \d+|interrupt) on cpu \d+:\s*$"
)
END_TRACE_RE = re.compile(r"^\s*---\[ end trace")
END_PANIC_RE = re.compile(r"^\s*---\[ end Kernel panic - not syncing: ?(?P<msg>.*?)\s*\]---")
PANIC_RE = re.compile(r"Kernel panic - not syncing: ?(?P<msg>.*?)\s*$")
# ``<what>: <error> [#N]``: x86 4 hex digits, arm64 8 (ESR, < 5.x) or 16 (>= 6.x),
# s390 ``monitor event: 0040 ilc:2 [#1]``, ppc ``Oops: Kernel access of bad area, sig: 11 [#1]``.
DIE_RE = re.compile(
    r"^\s*(?P<what>\S.*?): (?:(?P<err>[0-9a-f]{4,16})(?: ilc:\d)?|sig: \d+) ?\[#(?P<n>\d+)\]"
)
# RHEL/CentOS put vendor dash groups (and flags) between taint and release:
# ``Tainted: G  OE  ------------ T 3.10.0-1160.el7.x86_64`` (RHEL 7),
# ``--------- -  - 4.18.0-305.el8.x86_64`` (RHEL 8).
_VENDOR_DASHES = r"(?:-+(?:\s+[A-Z])?\s+)*"
CPU_RE = re.compile(
    r"^\s*CPU: (?P<cpu>\d+) (?:UID: \d+ )?PID: (?P<pid>\d+) Comm: (?P<comm>.+?) "
    r"(?:Kdump: loaded )?(?:Not tainted|Tainted: (?P<taint>[A-Z ]+?))\s+"
    + _VENDOR_DASHES
    + r"(?P<release>\d\S*)(?: (?P<version>#.*))?$"
)
# Before 3.x (RHEL 6's 2.6.32, i386 2.6.3x): "Pid: 3062, comm: modprobe Not tainted 2.6.33 #7 ..."
OLD_PID_RE = re.compile(
    r"^\s*Pid: (?P<pid>\d+), comm: (?P<comm>.+?) (?:Not tainted|Tainted: (?P<taint>[A-Z ]+?))\s+"
    + _VENDOR_DASHES
    + r"(?P<release>\d\S*)(?: (?P<version>#\S+))?"
)
# Hung-task reports print taint and release on their own line (5.x, 6.x).
TAINT_LINE_RE = re.compile(
    r"^\s*(?:Not tainted|Tainted: (?P<taint>[A-Z ]+?))\s+" + _VENDOR_DASHES + r"(?P<release>\d\S*)"
    r"(?: (?P<version>#.*))?$"
)
HARDWARE_RE = re.compile(r"^\s*Hardware name: (?P<hw>.*)$")
MODULES_RE = re.compile(r"^\s*Modules linked in:(?P<mods>.*)$")
FAULT_ADDR_RES = (
    # >= 5.1 (show_fault_oops)
    re.compile(r"BUG: kernel NULL pointer dereference, address: (?:0x)?(?P<a>[0-9a-f]+)"),
    re.compile(r"BUG: unable to handle page fault for address: (?:0x)?(?P<a>[0-9a-f]+)"),
    # < 5.1
    # < 4.15 printed a NULL address with %p: "at           (null)"
    re.compile(
        r"BUG: unable to handle kernel NULL pointer dereference at\s+"
        r"(?:0x)?(?P<a>[0-9a-f]+|\(null\))"
    ),
    re.compile(r"BUG: unable to handle kernel paging request at (?:0x)?(?P<a>[0-9a-f]+)"),
    # GPF with a decoded address (>= 5.5)
    re.compile(r"general protection fault, probably for non-canonical address 0x(?P<a>[0-9a-f]+)"),
    re.compile(r"general protection fault, maybe for address 0x(?P<a>[0-9a-f]+)"),
    # other architectures' wording, kept for pasted logs
    re.compile(r"Unable to handle kernel .* at virtual address (?:0x)?(?P<a>[0-9a-f]+)"),
    # ppc64: "BUG: Unable to handle kernel data access at 0x8000000041a25f20"
    re.compile(
        r"Unable to handle kernel (?:data access|instruction fetch).* at 0x(?P<a>[0-9a-f]+)"
    ),
    # s390: "Failing address: 000000000133b000 TEID: ..."
    re.compile(r"^\s*Failing address: (?P<a>[0-9a-f]+)"),
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
    rest = m.group("rest") or ""
    # "? f" (x86), "(f)" (s390) and "f (unreliable)" (ppc) are guesses from the stack
    reliable = m.group("q") is None and m.group("paren") is None and "(unreliable)" not in rest
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
    raw = m.group("addr")
    addr = int(raw, 16) if raw and "null" not in raw else None
    if m.group("null"):  # a call through a NULL function pointer (3.x-4.x wording)
        return m.group("cs"), Frame(function=None, address=0)
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
    """``Code: 48 89 <8b> 47`` -> (bytes, index of the byte at RIP).

    A line of 32-bit words (``Code: f9401c00 (b9400403)``, arm64) gives their bytes
    in memory order (little-endian), the index of the marked word's first byte.
    """
    m = CODE_RE.match(text)
    if not m:
        return None
    toks = m.group("body").split()
    width = 8 if toks and all(len(t.strip("<>()")) == 8 for t in toks) else 2
    out: list[int] = []
    ip: int | None = None
    for tok in toks:
        marked = len(tok) == width + 2 and tok[0] in "<(" and tok[-1] in ">)"
        hexpart = tok[1:-1] if marked else tok
        if len(hexpart) != width:
            return None
        try:
            value = int(hexpart, 16)
        except ValueError:
            return None
        if marked and ip is None:
            ip = len(out)
        out.extend(value.to_bytes(width // 2, "little"))
    return (out, ip) if out else None


def code_is_words(text: str) -> bool:
    """Whether a ``Code:`` line is made of 32-bit words (arm64, riscv, ppc)."""
    m = CODE_RE.match(text)
    return bool(m) and all(len(t.strip("<>()")) == 8 for t in m.group("body").split())


def parse_modules(text: str) -> list[str] | None:
    """``Modules linked in: a(OE) b [last unloaded: c]`` -> ["a(OE)", "b"]."""
    m = MODULES_RE.match(text)
    if not m:
        return None
    body = re.sub(r"\[last unloaded: [^\]]*\]", "", m.group("mods"))
    return [tok for tok in body.split() if re.fullmatch(r"[\w-]+(?:\([A-Z_]+\))?", tok)]
