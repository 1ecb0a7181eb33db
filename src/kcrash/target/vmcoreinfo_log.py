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
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from drgn import Program

from kcrash.model import LogLine

DESC_COMMITTED = 1
DESC_FINALIZED = 2
_ID_MASK = (1 << 62) - 1
_U64 = (1 << 64) - 1


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


@dataclass
class _Ring:
    """Where the lockless ring's parts are, from VMCOREINFO (read once per log read)."""

    prog: Program
    descs: int
    infos: int
    data: int
    count_bits: int
    size_bits: int
    head_id: int
    tail_id: int
    desc_size: int
    info_size: int
    sv_off: int
    begin_off: int
    next_off: int
    seq_off: int
    ts_off: int
    len_off: int
    caller_off: int

    @property
    def ndesc(self) -> int:
        return 1 << self.count_bits

    def record(
        self,
        did: int,
        desc: bytes,
        d: int,
        info: bytes,
        inf: int,
        text: Callable[[int, int, int], bytes | None],
    ) -> LogLine | None:
        """The record of descriptor id `did` (its descriptor at ``desc[d:]``, its info at
        ``info[inf:]``), or None when the descriptor is not (or no longer) that record.
        `text` gives a data block's bytes: ``text(begin, next, text_len)``."""
        state_var = struct.unpack_from("<Q", desc, d + self.sv_off)[0]
        if (state_var & _ID_MASK) != (did & _ID_MASK) or state_var >> 62 not in (
            DESC_COMMITTED,
            DESC_FINALIZED,
        ):
            return None
        begin = struct.unpack_from("<Q", desc, d + self.begin_off)[0]
        nxt = struct.unpack_from("<Q", desc, d + self.next_off)[0]
        text_len = struct.unpack_from("<H", info, inf + self.len_off)[0]
        body = text(begin, nxt, text_len)
        if body is None:
            return None
        caller = struct.unpack_from("<I", info, inf + self.caller_off)[0]
        return LogLine(
            text=body.decode("utf-8", "replace"),
            timestamp=struct.unpack_from("<Q", info, inf + self.ts_off)[0] / 1e9,
            level=info[inf + self.len_off + 3] >> 5,
            caller=(f"C{caller & 0x7FFFFFFF}" if caller & 0x80000000 else f"T{caller}"),
            seq=struct.unpack_from("<Q", info, inf + self.seq_off)[0],
        )

    def entries(self, base: int, size: int, first: int, count: int) -> bytes:
        """`count` array entries of `size` bytes from index `first` of a ring array of
        ``ndesc`` entries at `base`, wrapping at its end (one or two reads)."""
        first &= self.ndesc - 1
        n1 = min(count, self.ndesc - first)
        out = self.prog.read(base + first * size, n1 * size)
        if n1 < count:
            out += self.prog.read(base, (count - n1) * size)
        return out


def _open_ring(prog: Program, vmcoreinfo: str | None) -> _Ring:
    vi = _Info(parse_vmcoreinfo(vmcoreinfo if vmcoreinfo is not None else vmcoreinfo_text(prog)))
    if "SYMBOL(prb)" not in vi.info:
        if "SYMBOL(log_buf)" in vi.info:
            raise VmcoreinfoLogError(
                "this kernel (before 5.10) uses the old printk buffer; "
                "reading it from VMCOREINFO alone is not implemented"
            )
        raise VmcoreinfoLogError("VMCOREINFO has no SYMBOL(prb)")
    prb = prog.read_u64(vi.num("SYMBOL", "prb"))
    counter = vi.off("atomic_long_t.counter")
    desc_ring = prb + vi.off("printk_ringbuffer.desc_ring")
    data_ring = prb + vi.off("printk_ringbuffer.text_data_ring")
    lpos_off = vi.off("prb_desc.text_blk_lpos")
    ring = _Ring(
        prog=prog,
        descs=prog.read_u64(desc_ring + vi.off("prb_desc_ring.descs")),
        infos=prog.read_u64(desc_ring + vi.off("prb_desc_ring.infos")),
        data=prog.read_u64(data_ring + vi.off("prb_data_ring.data")),
        count_bits=prog.read_u32(desc_ring + vi.off("prb_desc_ring.count_bits")),
        size_bits=prog.read_u32(data_ring + vi.off("prb_data_ring.size_bits")),
        head_id=prog.read_u64(desc_ring + vi.off("prb_desc_ring.head_id") + counter),
        tail_id=prog.read_u64(desc_ring + vi.off("prb_desc_ring.tail_id") + counter),
        desc_size=vi.size("prb_desc"),
        info_size=vi.size("printk_info"),
        sv_off=vi.off("prb_desc.state_var") + counter,
        begin_off=lpos_off + vi.off("prb_data_blk_lpos.begin"),
        next_off=lpos_off + vi.off("prb_data_blk_lpos.next"),
        seq_off=vi.off("printk_info.seq"),
        ts_off=vi.off("printk_info.ts_nsec"),
        len_off=vi.off("printk_info.text_len"),
        caller_off=vi.off("printk_info.caller_id"),
    )
    if ring.count_bits > 24 or ring.size_bits > 32:
        raise VmcoreinfoLogError("implausible printk ring buffer sizes")
    return ring


def read_log(prog: Program, vmcoreinfo: str | None = None) -> list[LogLine]:
    """Every readable record of the printk ring buffer, oldest first."""
    ring = _open_ring(prog, vmcoreinfo)
    ndesc = ring.ndesc
    # Three bulk reads (a few hundred kB) instead of thousands of small ones.
    desc_bytes = prog.read(ring.descs, ndesc * ring.desc_size)
    info_bytes = prog.read(ring.infos, ndesc * ring.info_size)
    text_bytes = prog.read(ring.data, 1 << ring.size_bits)

    def text(begin: int, nxt: int, text_len: int) -> bytes | None:
        return _block_text(text_bytes, ring.size_bits, begin, nxt, text_len)

    lines: list[LogLine] = []
    mask = ndesc - 1
    did = ring.tail_id
    for _ in range(ndesc + 1):
        i = did & mask
        rec = ring.record(did, desc_bytes, i * ring.desc_size, info_bytes, i * ring.info_size, text)
        if rec is not None:
            lines.append(rec)
        if (did & _ID_MASK) == (ring.head_id & _ID_MASK):
            break
        did = (did + 1) & _ID_MASK
    lines.sort(key=lambda ln: ln.seq if ln.seq is not None else 0)
    return lines


#: Descriptors read per step of :func:`read_log_tail` (two small reads each).
_TAIL_CHUNK = 1024


def read_log_tail(
    prog: Program, max_bytes: int, vmcoreinfo: str | None = None
) -> tuple[list[LogLine], int]:
    """The newest records of the ring whose text adds up to at most `max_bytes` (at least
    the newest one), oldest first, and how many older descriptors were left unread.

    Why: a crash report is at the log's end, but ``log_buf_len=`` may make the ring up to
    2 GB (a 32 MB one holds ~650,000 records: 12-25 s to decode whole in Python at load,
    past analyze's step limit). This walks back from ``head_id`` and reads only the
    descriptors, infos and data blocks of what it keeps, so its cost follows `max_bytes`,
    not the ring's size."""
    ring = _open_ring(prog, vmcoreinfo)
    size = 1 << ring.size_bits
    # Ids from tail_id to head_id are the ring's records (ring.ndesc at most).
    total = min(((ring.head_id - ring.tail_id) & _ID_MASK) + 1, ring.ndesc)

    def text(begin: int, nxt: int, text_len: int) -> bytes | None:
        if begin & 1 and nxt & 1:
            return b""  # data-less record (FAILED_LPOS / NO_LPOS)
        span = _block_span(ring.size_bits, begin, nxt)
        if span is None or span[1] < 8 or span[0] + span[1] > size:
            return None
        start, length = span
        return prog.read(ring.data + start + 8, min(text_len, length - 8))

    newest_first: list[LogLine] = []
    used = read = 0
    full = False
    while read < total and not full:
        count = min(_TAIL_CHUNK, total - read)
        first = (ring.head_id - read - count + 1) & _ID_MASK
        desc = ring.entries(ring.descs, ring.desc_size, first, count)
        info = ring.entries(ring.infos, ring.info_size, first, count)
        for k in range(count - 1, -1, -1):
            rec = ring.record(
                (first + k) & _ID_MASK, desc, k * ring.desc_size, info, k * ring.info_size, text
            )
            if rec is not None and newest_first and used + len(rec.text) + 1 > max_bytes:
                full = True
                break
            read += 1
            if rec is not None:
                newest_first.append(rec)
                used += len(rec.text) + 1
    newest_first.sort(key=lambda ln: ln.seq if ln.seq is not None else 0)
    return newest_first, total - read


def _block_span(size_bits: int, begin: int, nxt: int) -> tuple[int, int] | None:
    """(offset in the data ring, length) of a data block, its id word included, or None
    when the positions are not a block (``get_data()`` of printk_ringbuffer.c)."""
    size = 1 << size_bits
    if (begin >> size_bits) == (nxt >> size_bits) and begin < nxt:
        return begin & (size - 1), nxt - begin
    # Unsigned long arithmetic, as the kernel's DATA_WRAPS(begin + DATA_SIZE): the positions
    # start at -DATA_SIZE (BLK0_LPOS), so the block that straddles the end of the ring's
    # first lap has begin near 2**64 and next past 0; without the modulo it was lost.
    if (((begin + size) & _U64) >> size_bits) == (nxt >> size_bits):
        return 0, nxt & (size - 1)  # wrapped: the block is stored from the ring's start
    return None


def _block_text(ring: bytes, size_bits: int, begin: int, nxt: int, text_len: int) -> bytes | None:
    """The text of a data block (``get_data()`` of printk_ringbuffer.c)."""
    if begin & 1 and nxt & 1:
        return b""  # data-less record (FAILED_LPOS / NO_LPOS)
    span = _block_span(size_bits, begin, nxt)
    if span is None:
        return None
    start, length = span
    if length < 8:
        return None
    text = ring[start + 8 : start + length]
    return text[: min(text_len, len(text))]


def split_records(records: Iterable[LogLine]) -> list[LogLine]:
    """One entry per line: a multi-line record gives several, the later ones ``continued``."""
    out: list[LogLine] = []
    for rec in records:
        for i, part in enumerate(rec.text.split("\n")):
            out.append(
                LogLine(part, rec.timestamp, rec.level, rec.caller, rec.seq, continued=i > 0)
            )
    return out


_RELEASE = re.compile(r"^OSRELEASE=(.*)$", re.M)


def osrelease(prog: Program) -> str | None:
    """``OSRELEASE`` of VMCOREINFO (the running kernel's release)."""
    m = _RELEASE.search(vmcoreinfo_text(prog))
    return m.group(1) if m else None
