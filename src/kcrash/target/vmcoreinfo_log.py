"""Read the kernel log with nothing but VMCOREINFO (no DWARF, no BTF).

Why: the last-resort mode of issue 5.  Since 5.10 the kernel exports the
layout of its lockless printk ring buffer in VMCOREINFO
(``log_buf_vmcoreinfo_setup()`` in ``kernel/printk/printk.c``): the address
``SYMBOL(prb)``, ``SIZE(...)`` of ``printk_ringbuffer``, ``prb_desc_ring``,
``prb_desc``, ``prb_data_blk_lpos``, ``printk_info``, ``prb_data_ring`` and
``OFFSET(...)`` of the members the reader needs — exactly what
``vmcore-dmesg`` and ``makedumpfile --dump-dmesg`` use.  The reader below
follows ``kernel/printk/printk_ringbuffer.c`` (``desc_read``, ``get_data``):

* descriptor ids run from ``desc_ring.tail_id`` to ``head_id``; a
  descriptor's ``state_var`` holds its id in the low bits and its state in
  the top two (``desc_committed`` = 1, ``desc_finalized`` = 2 are readable);
* its ``text_blk_lpos`` (``begin``, ``next``) locates a data block whose
  first word is the id again and whose text follows; a block that wraps
  is stored from the ring's start.

Kernels: 5.10 – 6.x (the lockless buffer).  The ``printk_info`` byte
after ``facility`` (``flags:5, level:3``) is not in VMCOREINFO; its place
(``text_len`` + 3) has not moved since 5.10, so the level is read there.
Before 5.10 (``struct printk_log`` records) this module reports that it
cannot read the log.
"""

from __future__ import annotations

import re
import struct

from drgn import Program

from kcrash.model import LogLine

DESC_COMMITTED = 1
DESC_FINALIZED = 2
_ID_MASK = (1 << 62) - 1


class VmcoreinfoLogError(Exception):
    """VMCOREINFO lacks what the reader needs (e.g. a pre-5.10 kernel)."""


def parse_vmcoreinfo(text: str) -> dict[str, str]:
    """``KEY=value`` lines of VMCOREINFO as a dict (keys like ``OFFSET(a.b)``)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key] = value
    return out


def vmcoreinfo_text(prog: Program) -> str:
    """VMCOREINFO as text; drgn exposes it without any debuginfo."""
    return prog["VMCOREINFO"].string_().decode("ascii", "replace")


class _Info:
    def __init__(self, info: dict[str, str]) -> None:
        self.info = info

    def num(self, kind: str, name: str) -> int:
        key = f"{kind}({name})"
        if key not in self.info:
            raise VmcoreinfoLogError(f"VMCOREINFO has no {key}")
        v = self.info[key]
        return int(v, 16) if kind == "SYMBOL" else int(v)

    def off(self, name: str) -> int:
        return self.num("OFFSET", name)

    def size(self, name: str) -> int:
        return self.num("SIZE", name)


def read_log(prog: Program, vmcoreinfo: str | None = None) -> list[LogLine]:
    """Every readable record of the printk ring buffer, oldest first."""
    vi = _Info(parse_vmcoreinfo(vmcoreinfo if vmcoreinfo is not None else vmcoreinfo_text(prog)))
    if "SYMBOL(prb)" not in vi.info:
        if "SYMBOL(log_buf)" in vi.info:
            raise VmcoreinfoLogError(
                "this kernel (before 5.10) uses the old printk buffer; "
                "reading it from VMCOREINFO alone is not implemented"
            )
        raise VmcoreinfoLogError("VMCOREINFO has no SYMBOL(prb)")

    def u64(addr: int) -> int:
        return prog.read_u64(addr)

    def u32(addr: int) -> int:
        return prog.read_u32(addr)

    prb = u64(vi.num("SYMBOL", "prb"))
    counter = vi.off("atomic_long_t.counter")
    desc_ring = prb + vi.off("printk_ringbuffer.desc_ring")
    data_ring = prb + vi.off("printk_ringbuffer.text_data_ring")

    count_bits = u32(desc_ring + vi.off("prb_desc_ring.count_bits"))
    descs = u64(desc_ring + vi.off("prb_desc_ring.descs"))
    infos = u64(desc_ring + vi.off("prb_desc_ring.infos"))
    head_id = u64(desc_ring + vi.off("prb_desc_ring.head_id") + counter)
    tail_id = u64(desc_ring + vi.off("prb_desc_ring.tail_id") + counter)

    size_bits = u32(data_ring + vi.off("prb_data_ring.size_bits"))
    data = u64(data_ring + vi.off("prb_data_ring.data"))

    if count_bits > 24 or size_bits > 32:
        raise VmcoreinfoLogError("implausible printk ring buffer sizes")
    ndesc = 1 << count_bits
    data_size = 1 << size_bits
    desc_size = vi.size("prb_desc")
    info_size = vi.size("printk_info")
    sv_off = vi.off("prb_desc.state_var") + counter
    lpos_off = vi.off("prb_desc.text_blk_lpos")
    begin_off = lpos_off + vi.off("prb_data_blk_lpos.begin")
    next_off = lpos_off + vi.off("prb_data_blk_lpos.next")
    seq_off = vi.off("printk_info.seq")
    ts_off = vi.off("printk_info.ts_nsec")
    len_off = vi.off("printk_info.text_len")
    caller_off = vi.off("printk_info.caller_id")

    # Three bulk reads (a few hundred kB) instead of thousands of small ones.
    desc_bytes = prog.read(descs, ndesc * desc_size)
    info_bytes = prog.read(infos, ndesc * info_size)
    text_bytes = prog.read(data, data_size)

    lines: list[LogLine] = []
    mask = ndesc - 1
    did = tail_id
    for _ in range(ndesc + 1):
        i = did & mask
        d = i * desc_size
        state_var = struct.unpack_from("<Q", desc_bytes, d + sv_off)[0]
        state = state_var >> 62
        if (state_var & _ID_MASK) == (did & _ID_MASK) and state in (DESC_COMMITTED, DESC_FINALIZED):
            begin = struct.unpack_from("<Q", desc_bytes, d + begin_off)[0]
            nxt = struct.unpack_from("<Q", desc_bytes, d + next_off)[0]
            inf = i * info_size
            text_len = struct.unpack_from("<H", info_bytes, inf + len_off)[0]
            text = _block_text(text_bytes, size_bits, begin, nxt, text_len)
            if text is not None:
                seq = struct.unpack_from("<Q", info_bytes, inf + seq_off)[0]
                ts = struct.unpack_from("<Q", info_bytes, inf + ts_off)[0]
                caller = struct.unpack_from("<I", info_bytes, inf + caller_off)[0]
                level = info_bytes[inf + len_off + 3] >> 5
                lines.append(
                    LogLine(
                        text=text.decode("utf-8", "replace"),
                        timestamp=ts / 1e9,
                        level=level,
                        caller=(f"C{caller & 0x7FFFFFFF}" if caller & 0x80000000 else f"T{caller}"),
                        seq=seq,
                    )
                )
        if (did & _ID_MASK) == (head_id & _ID_MASK):
            break
        did = (did + 1) & _ID_MASK
    lines.sort(key=lambda ln: ln.seq if ln.seq is not None else 0)
    return lines


def _block_text(ring: bytes, size_bits: int, begin: int, nxt: int, text_len: int) -> bytes | None:
    """The text of a data block (``get_data()`` of printk_ringbuffer.c)."""
    if begin & 1 and nxt & 1:
        return b""  # data-less record (FAILED_LPOS / NO_LPOS)
    size = 1 << size_bits
    if (begin >> size_bits) == (nxt >> size_bits) and begin < nxt:
        start = begin & (size - 1)
        length = nxt - begin
    elif ((begin + size) >> size_bits) == (nxt >> size_bits):
        start = 0
        length = nxt & (size - 1)
    else:
        return None
    if length < 8:
        return None
    text = ring[start + 8 : start + length]
    return text[: min(text_len, len(text))]


_RELEASE = re.compile(r"^OSRELEASE=(.*)$", re.M)


def osrelease(prog: Program) -> str | None:
    """``OSRELEASE`` of VMCOREINFO (the running kernel's release)."""
    m = _RELEASE.search(vmcoreinfo_text(prog))
    return m.group(1) if m else None
