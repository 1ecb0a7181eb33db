"""Decoders for the numbers of an oops: taint, #PF error code, fault address, Code: bytes.

Pure functions over plain values; every result is data (message ids plus
parameters), never an English sentence, so the report layer can render it in
any language from the catalogues ``report/i18n/rules.<lang>.json``.

Sources of the constants (checked against kernels 5.10 and 6.1):

* taint letters: ``kernel/panic.c`` ``taint_flags[]`` (bit 18 ``N`` is 5.15+);
* #PF bits: ``arch/x86/include/asm/trap_pf.h`` ``enum x86_pf_error_code``;
* poison values: ``include/linux/poison.h`` (``POISON_FREE 0x6b``,
  ``POISON_INUSE 0x5a``, ``POISON_END 0xa5``, ``LIST_POISON1/2`` =
  ``0x100/0x122 + POISON_POINTER_DELTA`` where the delta is
  ``CONFIG_ILLEGAL_POINTER_VALUE`` = ``0xdead000000000000`` on x86-64,
  ``RED_INACTIVE``/``RED_ACTIVE`` slab red zones, ``SLUB_RED_*`` 0xbb/0xcc,
  ``PAGE_POISON 0xaa``).  There is no ``0x6a`` poison in the kernel: a value
  such as ``6a6a6a6a...`` is *not* reported as poison.
* KASAN shadow: ``KASAN_SHADOW_OFFSET`` = ``0xdffffc0000000000`` (x86-64,
  generic KASAN, 4-level paging), shadow = (addr >> 3) + offset.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

PAGE_SIZE = 4096

# bit -> (letter, message id suffix)
TAINT_BITS: tuple[tuple[int, str, str], ...] = (
    (0, "P", "proprietary_module"),
    (1, "F", "forced_module"),
    (2, "S", "cpu_out_of_spec"),
    (3, "R", "forced_rmmod"),
    (4, "M", "machine_check"),
    (5, "B", "bad_page"),
    (6, "U", "user"),
    (7, "D", "died"),
    (8, "A", "overridden_acpi_table"),
    (9, "W", "warn"),
    (10, "C", "crap"),
    (11, "I", "firmware_workaround"),
    (12, "O", "oot_module"),
    (13, "E", "unsigned_module"),
    (14, "L", "softlockup"),
    (15, "K", "livepatch"),
    (16, "X", "aux"),
    (17, "T", "randstruct"),
    (18, "N", "test"),
)
_TAINT_BY_LETTER = {letter: (bit, key) for bit, letter, key in TAINT_BITS}

PF_BITS: tuple[tuple[int, str], ...] = (
    (0, "prot"),
    (1, "write"),
    (2, "user"),
    (3, "rsvd"),
    (4, "instr"),
    (5, "pk"),
    (6, "shstk"),
    (15, "sgx"),
    (31, "rmp"),
)

POISON_POINTER_DELTA = 0xDEAD000000000000
LIST_POISON1 = 0x100 + POISON_POINTER_DELTA
LIST_POISON2 = 0x122 + POISON_POINTER_DELTA
KASAN_SHADOW_OFFSET = 0xDFFFFC0000000000
RED_INACTIVE = 0x09F911029D74E35B
RED_ACTIVE = 0xD84156C5635688C0
# byte value -> kind (a pointer made of this byte repeated)
POISON_BYTES = {
    0x6B: "slab_free",  # POISON_FREE: use after free (slub_debug=P / SLAB debug)
    0x5A: "slab_inuse",  # POISON_INUSE: uninitialised slab memory
    0xA5: "slab_end",  # POISON_END
    0xBB: "slub_red_inactive",
    0xCC: "slub_red_active",
    0xAA: "page_poison",
}


@dataclass
class Fact:
    """One decoded fact: a message id and its parameters."""

    id: str
    params: dict[str, Any] = field(default_factory=dict)


def taint_letters(taint: str | None) -> list[str]:
    """The letters of a printed taint string (``"G     B     OE"`` -> ["B","O","E"])."""
    if not taint:
        return []
    out = []
    for ch in taint:
        if ch in _TAINT_BY_LETTER and ch not in out:
            out.append(ch)
    return out


def decode_taint(taint: str | None) -> list[Fact]:
    """Each taint letter with its bit and meaning (``G`` = no proprietary module)."""
    out = []
    for letter in taint_letters(taint):
        bit, key = _TAINT_BY_LETTER[letter]
        out.append(Fact(f"taint.{key}", {"letter": letter, "bit": bit}))
    return out


def taint_from_mask(mask: int) -> str:
    """A taint bit mask as the kernel prints the letters (``P``/``G`` first)."""
    s = ["P" if mask & 1 else "G"]
    for bit, letter, _ in TAINT_BITS[1:]:
        s.append(letter if mask & (1 << bit) else " ")
    return "".join(s).rstrip()


def decode_pf(error_code: int) -> list[Fact]:
    """The #PF error code as facts: access, mode, cause, extra bits."""
    out = [
        Fact(
            "pf.access.instr"
            if error_code & 0x10
            else ("pf.access.write" if error_code & 2 else "pf.access.read")
        ),
        Fact("pf.mode.user" if error_code & 4 else "pf.mode.kernel"),
    ]
    if not error_code & 1:
        out.append(Fact("pf.cause.not_present"))
    elif error_code & 8:
        out.append(Fact("pf.cause.reserved"))
    elif error_code & 0x20:
        out.append(Fact("pf.cause.pkey"))
    else:
        out.append(Fact("pf.cause.protection"))
    for bit, name in PF_BITS:
        if name in ("shstk", "sgx", "rmp") and error_code & (1 << bit):
            out.append(Fact(f"pf.bit.{name}", {"bit": bit}))
    return out


def is_canonical(addr: int) -> bool:
    """x86-64 4-level paging: bits 63..47 all equal."""
    top = addr >> 47
    return top == 0 or top == (1 << 17) - 1


def _repeated_byte(addr: int) -> int | None:
    """The byte a pointer is made of when its high 6 bytes repeat one value."""
    b = (addr >> 56) & 0xFF
    for shift in range(16, 64, 8):
        if (addr >> shift) & 0xFF != b:
            return None
    return b


def is_arm64_kernel_or_user(addr: int) -> bool | None:
    """arm64: True for a kernel address (bits 63..52 set: 48- and 52-bit VA, the top
    byte ignored only for user tags), False for a user one (bits 63..52 clear), None
    for neither (a wild value)."""
    top = addr >> 52
    if top == 0xFFF:
        return True
    if top == 0 or (addr >> 56 and (addr >> 52) & 0xF == 0):  # user, maybe tagged (TBI)
        return False
    return None


def classify_address(addr: int | None, arch: str | None = None) -> Fact | None:
    """What a faulting address most likely is, as a fact with parameters.

    ``arch="arm64"``: the address-space layout of arm64 (kernel addresses from
    0xffff000000000000, 0xfff0000000000000 with 52-bit VA) instead of x86-64's.
    """
    if addr is None:
        return None
    addr &= (1 << 64) - 1
    if addr < PAGE_SIZE:
        if addr == 0:
            return Fact("address.null", {"address": f"{addr:#x}"})
        return Fact("address.null_offset", {"address": f"{addr:#x}", "offset": f"{addr:#x}"})
    if addr in (LIST_POISON1, LIST_POISON2):
        which = "LIST_POISON1" if addr == LIST_POISON1 else "LIST_POISON2"
        return Fact("address.list_poison", {"address": f"{addr:#x}", "poison": which})
    if addr in (RED_INACTIVE, RED_ACTIVE):
        return Fact("address.red_zone", {"address": f"{addr:#x}"})
    b = _repeated_byte(addr)
    if b is not None and b in POISON_BYTES:
        return Fact(
            f"address.poison.{POISON_BYTES[b]}",
            {"address": f"{addr:#x}", "byte": f"{b:#04x}"},
        )
    if (addr & 0xFFFF000000000000) == POISON_POINTER_DELTA and (
        addr - POISON_POINTER_DELTA < PAGE_SIZE
    ):  # the poison constants are small offsets (0x100, 0x122, 0x200, 0x400 ...)
        return Fact(
            "address.pointer_poison",
            {"address": f"{addr:#x}", "offset": f"{addr - POISON_POINTER_DELTA:#x}"},
        )
    if KASAN_SHADOW_OFFSET <= addr < KASAN_SHADOW_OFFSET + (1 << 44):
        start = (addr - KASAN_SHADOW_OFFSET) << 3
        if start < PAGE_SIZE:
            return Fact(
                "address.kasan_null",
                {"address": f"{addr:#x}", "start": f"{start:#x}", "end": f"{start + 7:#x}"},
            )
        return Fact("address.kasan_shadow", {"address": f"{addr:#x}", "start": f"{start:#x}"})
    if arch == "arm64":
        kernel = is_arm64_kernel_or_user(addr)
        if kernel is None:
            return Fact("address.non_canonical", {"address": f"{addr:#x}"})
        return Fact("address.kernel" if kernel else "address.user", {"address": f"{addr:#x}"})
    if not is_canonical(addr):
        return Fact("address.non_canonical", {"address": f"{addr:#x}"})
    if addr < 0x0000800000000000:
        return Fact("address.user", {"address": f"{addr:#x}"})
    if addr >= 0xFFFFFFFF80000000:
        region = "module" if addr >= 0xFFFFFFFFA0000000 else "kernel_text"
        return Fact(f"address.{region}", {"address": f"{addr:#x}"})
    if 0xFFFFC90000000000 <= addr < 0xFFFFE90000000000:
        return Fact("address.vmalloc", {"address": f"{addr:#x}"})
    return Fact("address.kernel", {"address": f"{addr:#x}"})


# ---------------------------------------------------------------- Code: bytes


@dataclass
class Insn:
    """One disassembled instruction of the ``Code:`` line."""

    offset: int  # relative to the faulting byte (0 = the instruction at RIP)
    bytes: str
    text: str
    faulting: bool = False


@dataclass
class CodeDecode:
    insns: list[Insn]
    fault_insn: str | None = None
    mem_base: str | None = None  # base register of the faulting memory operand
    mem_index: str | None = None
    mem_disp: int | None = None
    mem_scale: int = 1
    access: str | None = None  # "read" / "write" / "rw"


def disassemble_code(
    code: list[int] | None, ip_index: int | None, arch: str | None = None
) -> CodeDecode | None:
    """Disassemble the ``Code:`` bytes with capstone, marking the instruction at RIP.

    The bytes before RIP do not start on an instruction boundary, so like the
    kernel's ``scripts/decodecode`` we try each start offset and keep the
    first one whose decoding lands exactly on the RIP byte.  arm64
    (``arch="arm64"``) has 4-byte instructions: the words before pc are
    instructions as they are.
    """
    if not code or ip_index is None or not (0 <= ip_index < len(code)):
        return None
    try:
        import capstone
    except ImportError:  # pragma: no cover - a dependency of the package
        return None
    arm64 = arch == "arm64"
    if arm64:
        md = capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)
    else:
        md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    md.detail = True
    buf = bytes(code)
    insns: list[Insn] = []
    prefix: list[Any] = []
    if arm64:
        start = ip_index % 4
        prefix = list(md.disasm(buf[start:ip_index], start))
    else:
        prefix = _synced_prefix(md, buf, ip_index)
    tail = list(md.disasm(buf[ip_index:], ip_index))
    out = CodeDecode(insns=insns)
    for i in prefix:
        insns.append(
            Insn(i.address - ip_index, i.bytes.hex(" "), f"{i.mnemonic} {i.op_str}".strip())
        )
    for n, i in enumerate(tail):
        ins = Insn(
            i.address - ip_index,
            i.bytes.hex(" "),
            f"{i.mnemonic} {i.op_str}".strip(),
            faulting=n == 0,
        )
        insns.append(ins)
        if n == 0:
            out.fault_insn = ins.text
            _mem_operand(i, out)
    return out if insns else None


def _synced_prefix(md: Any, buf: bytes, ip_index: int) -> list[Any]:
    """Instructions before RIP, starting on a real instruction boundary.

    x86 decodings from different start bytes converge on the true boundaries;
    so decode from each of the first 16 offsets, keep those that land exactly
    on RIP, and start at the earliest boundary that at least two of them share
    and whose instruction looks like ordinary code (``00 00`` decoding as
    ``add [rax], al`` is the usual artefact of a wrong start).
    """
    decodings: dict[int, list[Any]] = {}
    counts: dict[int, int] = {}
    for start in range(0, min(ip_index, 16)):
        got = list(md.disasm(buf[start:ip_index], start))
        if (
            got
            and got[-1].address + got[-1].size == ip_index
            and (sum(i.size for i in got) == ip_index - start)
        ):
            decodings[start] = got
            for i in got:
                counts[i.address] = counts.get(i.address, 0) + 1
    if not decodings:
        return []
    for b in sorted(counts):
        if counts[b] < 2 and len(decodings) > 1:
            continue
        for got in decodings.values():
            idx = next((n for n, i in enumerate(got) if i.address == b), None)
            if idx is not None and not _suspicious(got[idx]):
                return got[idx:]
    return min(decodings.items())[1]


_BYTE_ALU_RE = re.compile(r"^(?:add|sub|or|adc|sbb|and|xor) byte ptr \[[^\]]*\], [a-d][lh]$")
_ODD_MNEMONICS = frozenset(
    "in out ins outs insb insd outsb outsd hlt cli sti iretd retf lcall ljmp enter leave "
    "fwait sahf lahf aas aaa das daa into bound arpl cmc clc stc cld std lods lodsb lodsd "
    "scas scasb scasd stos stosb stosd movs movsb movsd cmps cmpsb cmpsd xlatb".split()
)


def _suspicious(insn: Any) -> int:
    """1 for what a wrong start offset typically decodes to (``00 00`` as
    ``add [rax], al``, odd legacy opcodes, ``(bad)``), 0 for plausible code."""
    text = f"{insn.mnemonic} {insn.op_str}"
    if insn.mnemonic in _ODD_MNEMONICS or "(bad)" in text:
        return 1
    if _BYTE_ALU_RE.match(text):  # "00 xx" pairs: add byte ptr [rsi + 0xdc0], bh
        return 1
    return 1 if any(seg in insn.op_str for seg in ("ds:", "ss:", "es:", "cs:")) else 0


def _mem_operand(insn: Any, out: CodeDecode) -> None:
    """Base/index/displacement of the memory operand of the faulting instruction."""
    try:
        from capstone import CS_AC_READ, CS_AC_WRITE, arm64, x86
    except ImportError:  # pragma: no cover
        return
    try:
        for op in insn.operands:
            if op.type in (x86.X86_OP_MEM, arm64.ARM64_OP_MEM):
                if op.mem.base:
                    out.mem_base = insn.reg_name(op.mem.base)
                if op.mem.index:
                    out.mem_index = insn.reg_name(op.mem.index)
                out.mem_disp = op.mem.disp
                out.mem_scale = op.mem.scale or 1
                acc = getattr(op, "access", 0)
                r, w = bool(acc & CS_AC_READ), bool(acc & CS_AC_WRITE)
                out.access = "rw" if r and w else ("write" if w else ("read" if r else None))
                return
    except Exception:  # capstone detail missing for odd encodings
        return


_REG_ALIASES = {
    "r8": "R08",
    "r9": "R09",
}


def register_value(regs: dict[str, int], name: str | None) -> int | None:
    """Value of a 64-bit register from an oops register dump (any case)."""
    if not name:
        return None
    n = name.lower()
    if n[:1] == "w" and n[1:].isdigit():  # arm64: w3 is the low half of x3
        n = "x" + n[1:]
    # sub-registers of the 64-bit ones (eax -> rax, r8d -> r8)
    if n.startswith("e") and len(n) == 3:
        n = "r" + n[1:]
    n = n.rstrip("dwb") if n.startswith("r") and n[1:].rstrip("dwb").isdigit() else n
    cands = {n.upper(), _REG_ALIASES.get(n, n.upper()), n}
    for c in cands:
        if c in regs:
            return regs[c]
    return None


def fault_register(
    decode: CodeDecode | None,
    regs: dict[str, int],
    fault_address: int | None,
    arch: str | None = None,
) -> Fact | None:
    """Which register was the NULL / poisoned base of the faulting access."""
    if decode is None or decode.mem_base is None:
        return None
    base = decode.mem_base
    val = register_value(regs, base)
    if val is None or base in ("rip", "rsp", "rbp", "sp", "x29", "fp"):
        return None
    disp = decode.mem_disp or 0
    params = {
        "register": base,
        "value": f"{val:#x}",
        "disp": f"{disp:#x}" if disp >= 0 else f"-{-disp:#x}",
        "instruction": decode.fault_insn or "",
    }
    if val == 0:
        return Fact("code.null_base", params)
    kind = classify_address(val, arch)
    if kind is not None and kind.id.startswith(
        ("address.poison", "address.list_poison", "address.pointer_poison", "address.non_canonical")
    ):
        params["kind"] = kind.id
        return Fact("code.poison_base", params)
    return Fact("code.base", params)


def effective_address(decode: CodeDecode | None, regs: dict[str, int]) -> int | None:
    """The address the faulting instruction accessed: base + index*scale + disp.

    Why: a #GP has no CR2, and the kernel's own guess (``maybe for address``,
    5.5+) mis-decodes some encodings (e.g. ``movabs rax, [moffs64]``); the
    disassembly and the register dump give the exact operand.
    """
    if decode is None or (decode.mem_disp is None and decode.mem_base is None):
        return None
    total = 0
    for reg, mult in ((decode.mem_base, 1), (decode.mem_index, decode.mem_scale)):
        if reg is None:
            continue
        if reg in ("rip", "eip"):
            return None
        val = register_value(regs, reg)
        if val is None:
            return None
        total += val * mult
    total += decode.mem_disp or 0
    return total & ((1 << 64) - 1)


# --- hardware error records (APEI/GHES CPER, x86 MCE) --------------------------
#
# drivers/firmware/efi/cper.c prints a memory error section as
#   "{1}[Hardware Error]:   physical_address: 0x00000046fe735000"
#   "{1}[Hardware Error]:   node: 2 card: 0 module: 0 rank: 0 bank: 1 device: 0 row: ..."
#   "{1}[Hardware Error]:   DIMM location: CPU 1 DIMM 4"
# and drivers/acpi/apei/ghes.c heads it with "event severity: fatal" and
# "section_type: memory error" / "PCIe error"; arch/x86/kernel/cpu/mce/core.c
# prints "Machine Check Exception: 5 Bank 4: b200000000070f0f" and
# "[Hardware Error]: ... ADDR 17fe30000".  Table: (field, regex on one line).
_HW_FIELDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("severity", re.compile(r"\[Hardware Error\]: event severity: (\w+)")),
    ("section", re.compile(r"\[Hardware Error\]:\s+section_type: (.+?)\s*$")),
    ("address", re.compile(r"\[Hardware Error\]:\s+physical_address: (0x[0-9a-f]+)")),
    ("location", re.compile(r"\[Hardware Error\]:\s+(node: ?\d+.*?)\s*$")),
    ("dimm", re.compile(r"\[Hardware Error\]:\s+DIMM location: (.+?)\s*$")),
    ("fru", re.compile(r"\[Hardware Error\]:\s+fru_text: (.+?)\s*$")),
    ("device", re.compile(r"\[Hardware Error\]:\s+device_id: ([0-9a-f:.]+)")),
    ("ids", re.compile(r"\[Hardware Error\]:\s+vendor_id: (0x[0-9a-f]+, device_id: 0x[0-9a-f]+)")),
    ("mce", re.compile(r"(Machine Check Exception: .+?|CPU \d+: Machine Check: .+?)\s*$")),
    ("mce_addr", re.compile(r"\[Hardware Error\]: .*\bADDR ([0-9a-f]+)")),
)


def decode_hardware_error(lines: list[str]) -> list[Fact]:
    """What an APEI/GHES or MCE record says failed, and where (the first record)."""
    got: dict[str, str] = {}
    for ln in lines:
        for key, rx in _HW_FIELDS:
            if key not in got:
                m = rx.search(ln)
                if m:
                    got[key] = m.group(1).strip()
    out: list[Fact] = []
    if "section" in got or "severity" in got:
        out.append(
            Fact(
                "hw.source",
                {"severity": got.get("severity", ""), "section": got.get("section", "error")},
            )
        )
    where = [v for v in (got.get("dimm"), got.get("location"), got.get("fru")) if v]
    if where:
        out.append(Fact("hw.memory", {"location": "; ".join(where)}))
    addr = got.get("address") or (f"0x{got['mce_addr']}" if "mce_addr" in got else None)
    if addr:
        out.append(Fact("hw.physical_address", {"address": addr}))
    if "device" in got:
        out.append(Fact("hw.pcie", {"device": got["device"], "ids": got.get("ids", "")}))
    if "mce" in got:
        out.append(Fact("hw.mce", {"detail": got["mce"]}))
    return out


# --- arm64 ESR_EL1 (the "Oops: 96000004" of "Internal error: Oops: ...") -------
#
# arch/arm64/include/asm/esr.h: EC = ESR[31:26], IL = ESR[25], ISS = ESR[24:0];
# for data/instruction aborts ISS holds WnR (bit 6, data aborts only), S1PTW
# (bit 7), CM (bit 8) and the fault status code DFSC/IFSC (bits 5:0).
# arm64 prints the ESR with 8 hex digits before 5.x-6.x and 16 since.
ESR_EC: dict[int, str] = {
    0x00: "unknown",
    0x01: "wfx",
    0x07: "fp_access",
    0x0E: "illegal_state",
    0x15: "svc64",
    0x18: "sys64",
    0x20: "iabt_lower",
    0x21: "iabt_current",
    0x22: "pc_alignment",
    0x24: "dabt_lower",
    0x25: "dabt_current",
    0x26: "sp_alignment",
    0x2C: "fp_exception",
    0x2F: "serror",
    0x30: "breakpoint_lower",
    0x31: "breakpoint_current",
    0x32: "step_lower",
    0x33: "step_current",
    0x34: "watchpoint_lower",
    0x35: "watchpoint_current",
    0x3C: "brk64",
}
_ABORT_ECS = (0x20, 0x21, 0x24, 0x25)
# fault status code -> kind (the level is the low two bits for the first four kinds)
ESR_FSC: tuple[tuple[int, int, str], ...] = (
    (0x00, 0x3C, "address_size"),
    (0x04, 0x3C, "translation"),
    (0x08, 0x3C, "access_flag"),
    (0x0C, 0x3C, "permission"),
    (0x10, 0x3F, "external"),
    (0x11, 0x3F, "tag_check"),
    (0x14, 0x3C, "external_walk"),
    (0x21, 0x3F, "alignment"),
    (0x30, 0x3F, "tlb_conflict"),
)


def decode_esr(esr: int) -> list[Fact]:
    """Exception class, fault status (and level) and access direction of an arm64 ESR."""
    ec = (esr >> 26) & 0x3F
    out = [
        Fact(
            "esr.summary",
            {"esr": f"{esr:#010x}", "ec": f"{ec:#04x}", "kind": ESR_EC.get(ec, "other")},
        )
    ]
    if ec not in _ABORT_ECS:
        return out
    fsc = esr & 0x3F
    for value, mask, kind in ESR_FSC:
        if fsc & mask == value:
            params: dict[str, Any] = {"fsc": f"{fsc:#04x}", "kind": kind}
            if mask == 0x3C:
                params["level"] = fsc & 3
            out.append(Fact("esr.fsc." + ("level" if mask == 0x3C else "plain"), params))
            break
    if ec in (0x24, 0x25):
        out.append(Fact("esr.write" if esr & (1 << 6) else "esr.read", {}))
    return out
