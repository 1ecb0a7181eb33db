"""Re-encode a real kdump-compressed (zlib) dump into snappy or zstd page compression.

Why not a newer makedumpfile: Debian 12's makedumpfile has neither compression, and running
trixie's 1.7.6 over the same boot's ELF dump loses pages: the ELF (``-E -d 31``) leaves
zero-filled ranges as file holes, which makedumpfile reading an ELF input then treats as
absent, so tasks' stacks come out "page excluded". Re-encoding the zlib dump instead keeps the
exact same headers, VMCOREINFO, notes and bitmaps (so the same pages are present) and only
changes each page's compression, as makedumpfile ``-p`` / ``-z`` would have written it
(raw snappy block; one zstd frame; a page stored uncompressed when compression does not
shrink it).

Format: makedumpfile's ``diskdump_mod.h`` (disk_dump_header, kdump_sub_header, two bitmaps,
then one 24-byte ``page_desc`` per page set in the second bitmap, then page data).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path

REENCODER_VERSION = "1"
SIGNATURE = b"KDUMP   "
STATUS_OFFSET = 424  # disk_dump_header.status on 64-bit (after utsname and timeval)
COMPRESSED_ZLIB, COMPRESSED_LZO, COMPRESSED_SNAPPY, COMPRESSED_ZSTD = 0x1, 0x2, 0x4, 0x20
ALL_COMPRESSIONS = COMPRESSED_ZLIB | COMPRESSED_LZO | COMPRESSED_SNAPPY | COMPRESSED_ZSTD
PAGE_DESC = struct.Struct("<QIIQ")  # offset, size, flags, page_flags


def _compressor(kind: str) -> tuple[int, Callable[[bytes], bytes]]:
    if kind == "snappy":
        import snappy

        return COMPRESSED_SNAPPY, snappy.compress
    if kind == "zstd":
        import zstandard

        # makedumpfile uses ZSTD_compressCCtx at level 1: one frame per page.
        return COMPRESSED_ZSTD, zstandard.ZstdCompressor(level=1).compress
    raise ValueError(f"unsupported compression {kind}")


def reencode(src: Path, dest: Path, kind: str) -> None:
    """Write `dest`: `src` (kdump-compressed, zlib pages) with pages in `kind` compression."""
    flag, compress = _compressor(kind)
    with src.open("rb") as fh:
        data = fh.read()
    if data[:8] != SIGNATURE:
        raise ValueError(f"{src} is not a kdump-compressed file (flattened dumps are not)")
    status, block_size, sub_hdr_size, bitmap_blocks = struct.unpack_from(
        "<IiiI", data, STATUS_OFFSET
    )
    if status & ALL_COMPRESSIONS != COMPRESSED_ZLIB:
        raise ValueError(f"{src}: page compression flags {status:#x}, expected zlib only")
    # kdump_sub_header: eraseinfo would live after the page data; ours have none.
    sub = block_size
    size_eraseinfo = struct.unpack_from("<Q", data, sub + 72)[0]
    if size_eraseinfo:
        raise ValueError(f"{src}: eraseinfo present, not supported")
    bitmap_off = (1 + sub_hdr_size) * block_size
    half = bitmap_blocks * block_size // 2
    bitmap2 = data[bitmap_off + half : bitmap_off + 2 * half]
    npages = sum(bin(b).count("1") for b in bitmap2)
    desc_off = bitmap_off + bitmap_blocks * block_size
    data_off = desc_off + npages * PAGE_DESC.size

    header = bytearray(data[:desc_off])
    struct.pack_into("<I", header, STATUS_OFFSET, (status & ~ALL_COMPRESSIONS) | flag)
    descs = bytearray()
    body = bytearray()
    done: dict[int, tuple[int, int, int]] = {}  # old offset -> new (offset, size, flags)
    for i in range(npages):
        off, size, flags, page_flags = PAGE_DESC.unpack_from(data, desc_off + i * PAGE_DESC.size)
        if off not in done:
            raw = data[off : off + size]
            page = zlib.decompress(raw) if flags & COMPRESSED_ZLIB else raw
            packed = compress(page)
            if len(packed) < len(page):
                done[off] = (data_off + len(body), len(packed), flag)
                body += packed
            else:
                done[off] = (data_off + len(body), len(page), 0)
                body += page
        new_off, new_size, new_flags = done[off]
        descs += PAGE_DESC.pack(new_off, new_size, new_flags, page_flags)
    tmp = dest.with_name(dest.name + ".part")
    with tmp.open("wb") as out:
        out.write(header)
        out.write(descs)
        out.write(body)
    tmp.replace(dest)
