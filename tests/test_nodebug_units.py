"""Unit tests of the no-debuginfo pieces over hand-built data, in addition to
the real-dump tests of ``test_nodebug_corpus.py``: ORC entry layouts of each
kernel era, the unwinder's rules on a synthetic stack, the stack-scan call
check, NT_PRSTATUS notes, the printk ring-buffer block reader, the globals
table's version ranges."""

from __future__ import annotations

import struct

from kcrash.target import globals as kglobals
from kcrash.target.orc import (
    PT_REGS,
    REG_BP,
    REG_PREV_SP,
    REG_SP,
    REG_SP_INDIRECT,
    REG_UNDEFINED,
    TYPE_CALL,
    TYPE_END_OF_STACK,
    TYPE_REGS,
    TYPE_REGS_PARTIAL,
    TYPE_UNDEFINED,
    OrcTable,
    OrcUnwinder,
    _after_call,
    decode_entry,
    orc_version,
)
from kcrash.target.prstatus import USER_REGS, prstatus_from_notes
from kcrash.target.vmcoreinfo_log import _block_text, parse_vmcoreinfo


def _entry(sp_off: int, bp_off: int, flags: int) -> bytes:
    return struct.pack("<hhH", sp_off, bp_off, flags)


def test_orc_version_by_release() -> None:
    assert orc_version("5.10.0-46-amd64") == 1
    assert orc_version("6.1.0-56-amd64") == 1
    assert orc_version("6.3.1") == 2
    assert orc_version("6.4.0") == 3
    assert orc_version("6.12.5-amd64") == 3


def test_decode_v1_types_and_end() -> None:
    # sp_reg:4 bp_reg:4 type:2 end:1 (4.14 - 6.2)
    call = decode_entry(_entry(8, 0, REG_SP | (REG_UNDEFINED << 4)), 1)
    assert (call.type, call.sp_reg, call.sp_offset, call.signal) == (TYPE_CALL, REG_SP, 8, False)
    regs = decode_entry(_entry(0, 0, REG_SP | (1 << 8)), 1)
    assert regs.type == TYPE_REGS and regs.signal
    partial = decode_entry(_entry(0, 0, REG_SP | (2 << 8)), 1)
    assert partial.type == TYPE_REGS_PARTIAL
    assert decode_entry(_entry(0, 0, 0x400), 1).type == TYPE_END_OF_STACK
    assert decode_entry(_entry(0, 0, 0), 1).type == TYPE_UNDEFINED
    bp = decode_entry(_entry(16, -16, REG_BP | (REG_PREV_SP << 4)), 1)
    assert (bp.sp_reg, bp.bp_reg, bp.bp_offset) == (REG_BP, REG_PREV_SP, -16)


def test_decode_v2_and_v3() -> None:
    # 6.3: type:2 signal:1 end:1
    assert decode_entry(_entry(0, 0, 0x800), 2).type == TYPE_END_OF_STACK
    assert decode_entry(_entry(8, 0, REG_SP | 0x400), 2).signal
    # 6.4+: type:3 with UNDEFINED/END_OF_STACK/CALL/REGS/REGS_PARTIAL, signal bit 11
    assert decode_entry(_entry(8, 0, REG_SP | (TYPE_CALL << 8)), 3).type == TYPE_CALL
    assert decode_entry(_entry(0, 0, TYPE_END_OF_STACK << 8), 3).type == TYPE_END_OF_STACK
    assert decode_entry(_entry(0, 0, REG_SP | (TYPE_REGS << 8) | 0x800), 3).signal


class _Memory:
    """A sparse little-endian memory for the unwinder."""

    def __init__(self) -> None:
        self.blocks: dict[int, bytes] = {}

    def put(self, addr: int, data: bytes) -> None:
        self.blocks[addr] = data

    def read(self, addr: int, n: int) -> bytes:
        for base, data in self.blocks.items():
            if base <= addr and addr + n <= base + len(data):
                return data[addr - base : addr - base + n]
        raise ValueError(f"unmapped {addr:#x}")

    def u64(self, addr: int) -> int:
        return struct.unpack("<Q", self.read(addr, 8))[0]


TEXT = 0xFFFFFFFF81000000
STACK = 0xFFFFC90000010000
IP_TABLE = 0xFFFFFFFF82000000
ENTRIES = 0xFFFFFFFF82100000


def _table(mem: _Memory, starts_and_entries: list[tuple[int, bytes]]) -> OrcTable:
    ips = b"".join(
        struct.pack("<i", start - (IP_TABLE + 4 * i))
        for i, (start, _) in enumerate(starts_and_entries)
    )
    mem.put(IP_TABLE, ips)
    mem.put(ENTRIES, b"".join(e for _, e in starts_and_entries))
    return OrcTable(mem.read, IP_TABLE, ENTRIES, len(starts_and_entries), 1)


def test_unwinder_call_frames_then_pt_regs_to_user() -> None:
    """f0 (sp-based CALL) -> f1 (bp-based CALL, saved bp) -> entry (REGS: a
    full pt_regs to user mode)."""
    mem = _Memory()
    table = _table(
        mem,
        [
            (TEXT + 0x000, _entry(16, 0, REG_SP)),  # f0: one push + ret addr
            (TEXT + 0x100, _entry(16, -16, REG_BP | (REG_PREV_SP << 4))),  # f1
            (TEXT + 0x200, _entry(0, 0, REG_SP | (1 << 8))),  # entry: pt_regs at sp
            (TEXT + 0x300, _entry(0, 0, 0x400)),  # end
        ],
    )
    sp0 = STACK + 0x100
    regs_at = STACK + 0x300
    stack = bytearray(0x400)

    def put(addr: int, val: int) -> None:
        struct.pack_into("<Q", stack, addr - STACK, val)

    put(sp0 + 8, TEXT + 0x120)  # f0: cfa = sp + 16, returns into f1
    bp_f1 = regs_at - 16  # f1: cfa = bp + 16 (== the pt_regs of the entry)
    put(regs_at - 8, TEXT + 0x210)  # f1 returns into the entry code
    put(regs_at - 16, 0x5151)  # ... and saved its caller's bp at cfa - 16
    user = dict.fromkeys(PT_REGS, 0)
    user.update(rip=0x401000, rsp=0x7FFF0000, cs=0x33, rbp=0x55)
    struct.pack_into("<21Q", stack, regs_at - STACK, *(user[r] for r in PT_REGS))
    mem.put(STACK, bytes(stack))
    unwinder = OrcUnwinder(mem.u64, mem.read, [table])
    out = unwinder.unwind({"rip": TEXT + 0x10, "rsp": sp0, "rbp": bp_f1})
    pcs = [f.pc for f in out.frames]
    assert pcs == [TEXT + 0x10, TEXT + 0x120, TEXT + 0x210, 0x401000], [hex(p) for p in pcs]
    assert out.end == "user mode" and out.complete
    assert out.frames[-1].regs is not None and out.frames[-1].regs["cs"] == 0x33
    assert out.frames[2].bp == 0x5151  # PREV_SP rule restored the caller's bp


def test_unwinder_sp_indirect_switches_stacks() -> None:
    """An IRQ-stack frame whose CFA is *(sp) (the previous stack pointer)."""
    mem = _Memory()
    table = _table(
        mem,
        [
            (TEXT + 0x000, _entry(0, 0, REG_SP_INDIRECT)),  # on the IRQ stack
            (TEXT + 0x100, _entry(0, 0, 0x400)),  # end
        ],
    )
    irq_sp = STACK + 0x800
    task_sp = STACK + 0x100
    mem.put(irq_sp, struct.pack("<Q", task_sp + 8))  # saved previous sp (cfa)
    mem.put(task_sp, struct.pack("<QQ", TEXT + 0x110, 0))  # ret addr at cfa - 8
    out = OrcUnwinder(mem.u64, mem.read, [table]).unwind({"rip": TEXT + 8, "rsp": irq_sp})
    assert [f.pc for f in out.frames] == [TEXT + 8, TEXT + 0x110]
    assert out.frames[1].sp == task_sp + 8


def test_after_call() -> None:
    assert _after_call(bytes([0x90, 0x90, 0xE8, 1, 2, 3, 4]))  # call rel32
    assert _after_call(bytes([0, 0, 0, 0, 0, 0xFF, 0xD0]))  # call *%rax
    assert _after_call(bytes([0, 0, 0, 0, 0xFF, 0x50, 0x08]))  # call *8(%rax)
    assert not _after_call(bytes([0x90, 0xC3, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC]))


def test_prstatus_notes() -> None:
    regs = list(range(100, 127))
    desc = bytearray(336)
    struct.pack_into("<i", desc, 32, 1234)
    struct.pack_into("<27Q", desc, 112, *regs)
    note = struct.pack("<III", 5, len(desc), 1) + b"CORE\0\0\0\0" + bytes(desc)
    other = struct.pack("<III", 5, 4, 7) + b"QEMU\0\0\0\0" + b"abcd"
    cpus = prstatus_from_notes(note + other + note)
    assert [c.index for c in cpus] == [0, 1]
    assert cpus[0].pid == 1234
    assert cpus[1].regs["rip"] == regs[USER_REGS.index("rip")]


def test_printk_block_text() -> None:
    size_bits = 12  # a 4 KiB data ring
    ring = bytearray(4096)
    struct.pack_into("<Q", ring, 100, 7)  # block id
    ring[108:113] = b"hello"
    assert _block_text(bytes(ring), size_bits, 100, 120, 5) == b"hello"
    # A block that wraps is stored from the ring's start.
    struct.pack_into("<Q", ring, 0, 8)
    ring[8:13] = b"wraps"
    begin = 4096 - 16
    assert _block_text(bytes(ring), size_bits, begin, 4096 + 16, 5) == b"wraps"
    assert _block_text(bytes(ring), size_bits, 1, 1, 0) == b""  # data-less
    assert parse_vmcoreinfo("A=1\nOFFSET(x.y)=8\n") == {"A": "1", "OFFSET(x.y)": "8"}


def test_globals_versions() -> None:
    assert kglobals.lookup("prb", (5, 10)) is not None
    assert kglobals.lookup("prb", (5, 4)) is None
    assert kglobals.lookup("log_first_idx", (5, 4)) is not None
    assert kglobals.lookup("irq_desc_tree", (6, 1)) is not None
    assert kglobals.lookup("irq_desc_tree", (6, 6)) is None
    assert kglobals.lookup("sparse_irqs", (6, 6)) is not None
    assert kglobals.lookup("current_task", (6, 1)) is not None
    assert kglobals.lookup("current_task", (6, 8)) is None
    assert kglobals.parse_version("5.10.0-46-amd64") == (5, 10)
