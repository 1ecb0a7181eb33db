"""Is an uploaded vmcore whole?  Checked at upload time so a cut-off dump gets a 4xx.

The server answers a submission at once (202) and analyzes later, so a dump truncated in
transit or by a full /var/crash must be caught before it is accepted, from its container
headers alone: no kernel knowledge, no drgn, a few reads.  One row per container format;
each check compares the file size with where the headers say the data ends.

Formats (from makedumpfile's diskdump_mod.h and IMPLEMENTATION, and the ELF gABI):

========================  ============================  ========================================
container                 magic                         where the data ends
========================  ============================  ========================================
ELF core (/proc/vmcore)   ``\\x7fELF``, e_type ET_CORE    max(p_offset + p_filesz) over PT_LOAD
kdump-compressed          ``KDUMP   `` / ``DISKDUMP``     offset + size of the last page
                                                        descriptor (after the two bitmaps)
makedumpfile flattened    ``makedumpfile``              a record stream ending in an end marker
========================  ============================  ========================================
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

ET_CORE = 4
PT_LOAD = 1
PN_XNUM = 0xFFFF
#: makedumpfile's flattened format: a 4 KiB header, then (offset, size) big-endian records.
FLAT_SIGNATURE = b"makedumpfile\0\0\0\0"
FLAT_HEADER_SIZE = 4096
FLAT_END = (-1, -1)
#: disk_dump_header.utsname: six fields of 65 bytes after signature and header_version.
UTS_LEN = 65
#: Architectures whose disk_dump_header has a 32-bit struct timeval (4-byte alignment).
ARCH32 = ("i386", "i486", "i586", "i686", "arm", "armv7l", "mips", "ppc")
#: struct page_desc: offset (8), size (4), flags (4), page_flags (8).
PAGE_DESC = struct.Struct("<qIIQ")


def looks_like_vmcore(head: bytes) -> bool:
    if head[:4] == b"\x7fELF" and len(head) >= 18:
        order = "<" if head[5] == 1 else ">"
        return struct.unpack_from(order + "H", head, 16)[0] == ET_CORE
    return head[:8] in (b"KDUMP   ", b"DISKDUMP") or head[:16] == FLAT_SIGNATURE


def _read(f: BinaryIO, off: int, n: int) -> bytes:
    f.seek(off)
    return f.read(n)


def _elf_end(f: BinaryIO) -> int:
    ident = _read(f, 0, 64)
    if len(ident) < 52:
        raise ValueError("the ELF header is cut off")
    is64 = ident[4] == 2
    o = "<" if ident[5] == 1 else ">"
    if is64:
        (phoff,) = struct.unpack_from(o + "Q", ident, 0x20)
        (shoff,) = struct.unpack_from(o + "Q", ident, 0x28)
        phentsize, phnum = struct.unpack_from(o + "HH", ident, 0x36)
        ph = struct.Struct(o + "IIQQQQQQ")  # type flags offset vaddr paddr filesz memsz align
        off_i, filesz_i = 2, 5
    else:
        (phoff,) = struct.unpack_from(o + "I", ident, 0x1C)
        (shoff,) = struct.unpack_from(o + "I", ident, 0x20)
        phentsize, phnum = struct.unpack_from(o + "HH", ident, 0x2A)
        ph = struct.Struct(o + "IIIIIIII")  # type offset vaddr paddr filesz memsz flags align
        off_i, filesz_i = 1, 4
    if phnum == PN_XNUM:
        # Since Linux v4.x vmcores of many-node hosts: the count lives in section 0's sh_info.
        sh = _read(f, shoff + (44 if is64 else 28), 4)
        if len(sh) < 4:
            raise ValueError("the ELF section header holding the segment count is cut off")
        (phnum,) = struct.unpack(o + "I", sh)
    if phentsize != ph.size:
        raise ValueError(f"ELF program header entries of {phentsize} bytes, not {ph.size}")
    table = _read(f, phoff, phnum * ph.size)
    if len(table) < phnum * ph.size:
        raise ValueError("the ELF program headers are cut off")
    end = phoff + phnum * ph.size
    for i in range(phnum):
        fields = ph.unpack_from(table, i * ph.size)
        if fields[0] == PT_LOAD:
            end = max(end, fields[off_i] + fields[filesz_i])
    return end


def _kdump_end(f: BinaryIO) -> int:
    hdr = _read(f, 0, 512)
    if len(hdr) < 460:
        raise ValueError("the kdump header is cut off")
    machine = hdr[12 + 4 * UTS_LEN : 12 + 5 * UTS_LEN].split(b"\0", 1)[0].decode("ascii", "replace")
    # After utsname (ends at 402): struct timeval, 16 bytes aligned to 8 on 64-bit, 8 on 32-bit.
    after_tv = 404 + 8 if machine in ARCH32 else 408 + 16
    _status, block_size, sub_hdr_size, bitmap_blocks = struct.unpack_from("<IiiI", hdr, after_tv)
    if block_size <= 0 or block_size & (block_size - 1) or sub_hdr_size < 0:
        raise ValueError(f"implausible kdump header (block size {block_size})")
    bitmap_off = (1 + sub_hdr_size) * block_size
    bitmap_len = bitmap_blocks * block_size
    half = bitmap_len // 2
    # The second bitmap marks the pages that were written; each has one page descriptor.
    npages = 0
    pos = bitmap_off + half
    left = half
    while left > 0:
        chunk = _read(f, pos, min(left, 1 << 20))
        if not chunk:
            raise ValueError("the file ends inside its page bitmap")
        npages += int.from_bytes(chunk, "little").bit_count()
        pos += len(chunk)
        left -= len(chunk)
    desc_off = bitmap_off + bitmap_len
    if npages == 0:
        return desc_off
    last = _read(f, desc_off + (npages - 1) * PAGE_DESC.size, PAGE_DESC.size)
    if len(last) < PAGE_DESC.size:
        raise ValueError(f"the file ends inside its table of {npages} page descriptors")
    offset, size, _flags, _pf = PAGE_DESC.unpack(last)
    return offset + size


def _flat_problem(f: BinaryIO, size: int) -> str | None:
    pos = FLAT_HEADER_SIZE
    rec = struct.Struct(">qq")
    while True:
        head = _read(f, pos, rec.size)
        if len(head) < rec.size:
            return f"the flattened stream has no end marker (file ends at {size} bytes)"
        off, n = rec.unpack(head)
        if (off, n) == FLAT_END:
            return None
        if n < 0 or off < 0:
            return f"a flattened record at byte {pos} has a negative offset or size"
        pos += rec.size + n
        if pos > size:
            return f"the flattened stream ends inside a record ({size} bytes)"


def dump_problem(path: str | Path) -> str | None:
    """One line saying why this dump is not whole, or None when its data is all there."""
    p = Path(path)
    size = p.stat().st_size
    with open(p, "rb") as f:
        head = f.read(16)
        try:
            if head[:16] == FLAT_SIGNATURE:
                return _flat_problem(f, size)
            end = _elf_end(f) if head[:4] == b"\x7fELF" else _kdump_end(f)
        except (ValueError, struct.error) as e:
            return f"truncated or damaged: {e}"
    if end > size:
        return f"truncated: {size} bytes, but its headers describe data up to byte {end}"
    return None
