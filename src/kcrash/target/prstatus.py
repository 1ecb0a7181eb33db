"""The CPUs' saved registers (NT_PRSTATUS notes) straight from the dump file.

Why: drgn exposes a CPU's registers only through a *thread*, and finding the
kernel's threads needs types (``init_task``, ``runqueues``).  With neither
DWARF nor BTF (issue 5's last-resort mode) we still want the crashed CPU's
stack, so we read the notes ourselves:

* ELF vmcores (kdump ``/proc/vmcore`` copies, QEMU ``elf``): ``PT_NOTE``;
* kdump-compressed (makedumpfile ``-c/-l/-p``, QEMU ``kdump-*``) and the
  flattened variant: ``offset_note``/``size_note`` of the sub-header
  (``struct kdump_sub_header``, header version 4+).

``struct elf_prstatus`` on x86-64 and arm64 has ``pr_pid`` at byte 32 and
``pr_reg`` at byte 112: on x86-64 ``struct user_regs_struct`` (r15 … gs, 27
longs), on arm64 ``struct user_pt_regs`` (x0-x30, sp, pc, pstate: 34 longs);
kdump writes one per online CPU in CPU order, QEMU one per vCPU.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

NT_PRSTATUS = 1
USER_REGS = (
    *("r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx"),
    *("rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "rflags", "rsp", "ss", "fs_base"),
    *("gs_base", "ds", "es", "fs", "gs"),
)
#: pr_reg of each architecture, by ``uname -m``.
PR_REG: dict[str, tuple[str, ...]] = {
    "x86_64": USER_REGS,
    "aarch64": (*(f"x{i}" for i in range(31)), "sp", "pc", "pstate"),
}
_PR_PID = 32
_PR_REG = 112


@dataclass
class CpuRegisters:
    """One NT_PRSTATUS note: its index (CPU order), pid field and registers."""

    index: int
    pid: int
    regs: dict[str, int]


def parse_notes(data: bytes) -> list[tuple[bytes, int, bytes]]:
    """``(name, type, desc)`` of each ELF note in a notes blob (4-byte aligned)."""
    out = []
    pos = 0
    while pos + 12 <= len(data):
        namesz, descsz, ntype = struct.unpack_from("<III", data, pos)
        pos += 12
        name = data[pos : pos + namesz].rstrip(b"\0")
        pos += (namesz + 3) & ~3
        desc = data[pos : pos + descsz]
        pos += (descsz + 3) & ~3
        if namesz == 0 and descsz == 0 and ntype == 0:
            break
        out.append((name, ntype, desc))
    return out


def prstatus_from_notes(data: bytes, machine: str = "x86_64") -> list[CpuRegisters]:
    """The NT_PRSTATUS notes of a notes blob, in order."""
    names = PR_REG[machine]
    out = []
    for name, ntype, desc in parse_notes(data):
        if ntype != NT_PRSTATUS or name != b"CORE" or len(desc) < _PR_REG + 8 * len(names):
            continue
        pid = struct.unpack_from("<i", desc, _PR_PID)[0]
        vals = struct.unpack_from(f"<{len(names)}Q", desc, _PR_REG)
        out.append(CpuRegisters(len(out), pid, dict(zip(names, vals, strict=True))))
    return out


def read_prstatus(path: str, machine: str = "x86_64") -> list[CpuRegisters]:
    """Every CPU's saved registers from a vmcore file (ELF, kdump, flattened)."""
    return prstatus_from_notes(read_notes(path), machine)


def read_notes(path: str) -> bytes:
    """The dump's ELF notes blob (PRSTATUS, VMCOREINFO …), or b"" if none."""
    from . import dumpfile

    with open(path, "rb") as f:
        magic = f.read(16)
        if magic.startswith(b"\x7fELF"):
            return _elf_notes(f)
        if magic[:8] in dumpfile.KDUMP_SIGNATURES:

            def read(o: int, n: int) -> bytes:
                f.seek(o)
                return f.read(n)

            return _kdump_notes(read)
        if magic[:12] == dumpfile.FLAT_SIGNATURE:
            flat = dumpfile._FlatReader(f, path)
            return _kdump_notes(flat.read)
    return b""


def vmcoreinfo_of_notes(notes: bytes) -> bytes | None:
    """The VMCOREINFO note's text, if the notes carry one."""
    for name, _ntype, desc in parse_notes(notes):
        if name == b"VMCOREINFO":
            return desc.rstrip(b"\0")
    return None


def _elf_notes(f) -> bytes:  # type: ignore[no-untyped-def]
    f.seek(0)
    hdr = f.read(64)
    (phoff,) = struct.unpack_from("<Q", hdr, 32)
    phentsize, phnum = struct.unpack_from("<HH", hdr, 54)
    out = b""
    for i in range(phnum):
        f.seek(phoff + i * phentsize)
        ph = f.read(phentsize)
        p_type, _flags, p_offset, _va, _pa, p_filesz = struct.unpack_from("<IIQQQQ", ph, 0)
        if p_type == 4:  # PT_NOTE
            f.seek(p_offset)
            out += f.read(p_filesz)
    return out


def _kdump_notes(read) -> bytes:  # type: ignore[no-untyped-def]
    hdr = read(0, 464)
    (header_version,) = struct.unpack_from("<i", hdr, 8)
    (block_size,) = struct.unpack_from("<i", hdr, 428)
    if header_version < 4 or not 512 <= block_size <= 1 << 16:
        return b""
    sub = read(block_size, 64)
    off, size = struct.unpack_from("<QQ", sub, 48)
    if not 0 < size < 16 << 20:
        return b""
    return read(off, size)
