"""Name the struct member a faulting instruction touched: ``dev->queue``.

For a NULL or poisoned pointer dereference the operator wants to know *which
pointer* was bad.  We decode the faulting instruction at RIP (capstone, from
the dump's memory), take its memory operand's base register and displacement,
then look, among the faulting frame's DWARF variables, for a pointer to a
struct whose value equals that register; the member at the displacement is
the one accessed.  Needs DWARF (variable locations); returns None otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import drgn
from capstone import CS_ARCH_ARM64, CS_ARCH_X86, CS_MODE_64, CS_MODE_ARM, Cs
from capstone.arm64 import ARM64_OP_MEM
from capstone.x86 import X86_OP_MEM

_CS = Cs(CS_ARCH_X86, CS_MODE_64)
_CS.detail = True
_CS_ARM64 = Cs(CS_ARCH_ARM64, CS_MODE_ARM)
_CS_ARM64.detail = True


@dataclass
class MemoryAccess:
    """The memory operand of the faulting instruction, and what it names."""

    instruction: str  # "mov eax, dword ptr [rbx + 0x74]"
    base_register: str | None  # "rbx"
    displacement: int
    base_value: int | None = None
    expression: str | None = None  # "dev->queue"
    struct: str | None = None  # "struct foo_dev"
    member: str | None = None  # "queue"
    member_offset: int | None = None


def decode_access(prog: drgn.Program, rip: int, regs: dict[str, int]) -> MemoryAccess | None:
    """Decode the instruction at ``rip``; None when it has no memory operand."""
    try:
        code = prog.read(rip, 16)
    except drgn.FaultError:
        return None
    arm64 = prog.platform is not None and prog.platform.arch == drgn.Architecture.AARCH64
    md, mem = (_CS_ARM64, ARM64_OP_MEM) if arm64 else (_CS, X86_OP_MEM)
    for insn in md.disasm(code, rip, 1):
        for op in insn.operands:
            if op.type != mem:
                continue
            base = insn.reg_name(op.mem.base) if op.mem.base else None
            acc = MemoryAccess(
                instruction=f"{insn.mnemonic} {insn.op_str}".strip(),
                base_register=base,
                displacement=op.mem.disp,
            )
            if base:
                acc.base_value = regs.get(_full_register(base))
            return acc
    return None


def _full_register(name: str) -> str:
    """``ebx`` -> ``rbx``, ``r8d`` -> ``r8``, arm64 ``w3`` -> ``x3`` (drgn names the
    64-bit registers)."""
    if name[:1] == "w" and name[1:].isdigit():
        return "x" + name[1:]
    if name.startswith("e") and len(name) == 3:
        return "r" + name[1:]
    for suffix in ("d", "w", "b"):
        if name.startswith("r") and name[1:-1].isdigit() and name.endswith(suffix):
            return name[:-1]
    return name


def name_access(frame: drgn.StackFrame, acc: MemoryAccess) -> MemoryAccess:
    """Fill ``expression``/``struct``/``member`` from the frame's variables."""
    if acc.base_value is None:
        return acc
    try:
        names = frame.locals()
    except Exception:
        return acc
    for var in names:
        try:
            obj = frame[var]
        except Exception:
            continue
        if obj.absent_:
            continue
        typ = obj.type_
        while typ.kind == drgn.TypeKind.TYPEDEF:
            typ = typ.type
        if typ.kind != drgn.TypeKind.POINTER:
            continue
        target = typ.type
        while target.kind == drgn.TypeKind.TYPEDEF:
            target = target.type
        if target.kind not in (drgn.TypeKind.STRUCT, drgn.TypeKind.UNION):
            continue
        try:
            if obj.value_() != acc.base_value:
                continue
        except Exception:
            continue
        member = _member_at(target, acc.displacement)
        if member is None:
            continue
        acc.struct = target.type_name()
        acc.member = member
        acc.member_offset = acc.displacement
        acc.expression = f"{var}->{member}"
        return acc
    return acc


def _member_at(typ: drgn.Type, offset: int) -> str | None:
    """The (possibly nested) member name at byte ``offset`` of a struct/union."""
    from drgn.helpers.common.type import member_at_offset

    try:
        s = member_at_offset(typ, offset)
    except (ValueError, LookupError):
        return None
    if not s or s.startswith("<"):
        return None
    # member_at_offset appends "+N" when the offset is inside a member.
    return s
