"""Recognise a vmcore's container format and read its VMCOREINFO, without drgn.

Why our own reader when libkdumpfile (inside drgn) opens these files: we must
(1) name the format like an operator expects ("kdump-compressed (zlib),
partial"), (2) read the kernel release and build id *before* choosing
debuginfo, and (3) refuse a truncated or foreign file with one clear line
instead of a library error or, worse, a half-working session.  All of this
needs only the headers: a few kilobytes of reads, whatever the dump's size.

Formats handled (x86-64 and other little-endian 64-bit):
- ELF64 core (``/proc/vmcore`` copied, ``makedumpfile -E``, QEMU
  ``dump-guest-memory`` without a format);
- kdump-compressed "KDUMP   " / "DISKDUMP" (makedumpfile ``-c/-l/-p/-z``,
  QEMU ``kdump-zlib``/``kdump-lzo``/``kdump-snappy``), header versions 1–6;
- makedumpfile's flattened format (``-F``, and what QEMU writes for kdump
  formats): a stream of (offset, size) records, big-endian.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field

from ..errors import NotADumpError, TruncatedDumpError
from ..inputs import open_regular
from ..notes import Note

KDUMP_SIGNATURES = (b"KDUMP   ", b"DISKDUMP")
FLAT_SIGNATURE = b"makedumpfile"
FLAT_HEADER_SIZE = 4096

# disk_dump_header.status bits (makedumpfile diskdump_mod.h)
_COMPRESSION_BITS = ((0x1, "zlib"), (0x2, "lzo"), (0x4, "snappy"), (0x20, "zstd"))
_DUMP_DH_COMPRESSED_INCOMPLETE = 0x8


@dataclass
class DumpFile:
    """What the headers of a dump file say."""

    path: str
    container: str  # "elf" | "kdump" | "flattened" | "kcore" | "qmp"
    compression: str | None = None  # zlib/lzo/snappy/zstd for kdump
    dump_level: int | None = None  # makedumpfile -d N (None: unknown/ELF)
    partial: bool = False
    incomplete: bool = False  # makedumpfile ran out of space while writing
    #: the file is cut short but its headers and page table are whole: what is missing
    #: (read as far as it goes, as crash does; reads of the lost pages fail)
    truncated: str | None = None
    machine: str = ""  # utsname.machine in the kdump header ("" or "Unknown" from QEMU)
    block_size: int | None = None  # kdump header's block_size (its page size; None for ELF)
    vmcoreinfo: dict[str, str] = field(default_factory=dict)
    size: int = 0

    @property
    def release(self) -> str | None:
        return self.vmcoreinfo.get("OSRELEASE")

    @property
    def build_id(self) -> str | None:
        bid = self.vmcoreinfo.get("BUILD-ID")
        return bid.lower() if bid else None

    @property
    def description(self) -> str:
        """Human name of the format, as ``kcrash sys`` prints it."""
        if self.container == "elf":
            s = "ELF"
        elif self.container == "kcore":
            s = "live /proc/kcore"
        elif self.container == "qmp":
            s = "live QEMU guest over QMP"
        else:
            s = "kdump-compressed"
            if self.container == "flattened":
                s += " flattened"
            if self.compression:
                s += f" ({self.compression})"
        if self.partial:
            s += ", partial"
        if self.incomplete:
            s += ", INCOMPLETE"
        if self.truncated:
            s += ", TRUNCATED"
        return s


def parse_vmcoreinfo(data: bytes) -> dict[str, str]:
    """Parse the ``KEY=value`` lines of a VMCOREINFO note.

    Keys such as ``SYMBOL(prb)`` and ``OFFSET(printk_info.seq)`` keep their
    parentheses; values are kept as text (hex for symbols, decimal for sizes).
    """
    out: dict[str, str] = {}
    for line in data.split(b"\n"):
        key, sep, value = line.partition(b"=")
        if sep:
            out[key.decode("ascii", "replace")] = value.rstrip(b"\0").decode("ascii", "replace")
    return out


def _read_at(f, offset: int, size: int) -> bytes:  # type: ignore[no-untyped-def]
    f.seek(offset)
    return f.read(size)


def _elf_vmcoreinfo(f) -> tuple[dict[str, str], int]:  # type: ignore[no-untyped-def]
    """Return the VMCOREINFO of an ELF core and the end of its last segment."""
    from elftools.elf.elffile import ELFFile  # ELF cores only: kdump files never need it

    elf = ELFFile(f)
    if elf.header["e_type"] != "ET_CORE":
        raise NotADumpError(f"{f.name}: an ELF file but not a core dump (is it a vmlinux?)")
    info: dict[str, str] = {}
    end = 0
    for seg in elf.iter_segments():
        end = max(end, seg["p_offset"] + seg["p_filesz"])
        if seg["p_type"] != "PT_NOTE":
            continue
        for note in seg.iter_notes():
            if note["n_name"] == "VMCOREINFO":
                desc = note["n_desc"]
                raw = desc.encode("latin-1") if isinstance(desc, str) else bytes(desc)
                info = parse_vmcoreinfo(raw)
    return info, end


def _kdump_header(hdr: bytes, path: str) -> tuple[dict[str, int], str]:
    if len(hdr) < 464:
        raise TruncatedDumpError(f"{path}: truncated kdump header")
    (header_version,) = struct.unpack_from("<i", hdr, 8)
    machine = hdr[12 + 4 * 65 : 12 + 5 * 65].split(b"\0")[0].decode("ascii", "replace")
    fields = struct.unpack_from("<IiiIIIIIIi", hdr, 424)
    names = [
        "status",
        "block_size",
        "sub_hdr_size",
        "bitmap_blocks",
        "max_mapnr",
        "total_ram_blocks",
        "device_blocks",
        "written_blocks",
        "current_cpu",
        "nr_cpus",
    ]
    h = dict(zip(names, fields, strict=True))
    h["header_version"] = header_version
    if not (512 <= h["block_size"] <= 1 << 16) or h["block_size"] & (h["block_size"] - 1):
        raise NotADumpError(f"{path}: kdump header has an invalid block size {h['block_size']}")
    return h, machine


class _FlatReader:
    """Random access to the first records of a flattened dump.

    A flattened file is a sequence of ``(offset, size, data)`` records that,
    applied in order, recreate the kdump-compressed file.  Headers are
    written first, so the small reads we need are satisfied by the first
    records; we stop scanning once every requested range is covered.
    """

    def __init__(self, f, path: str) -> None:  # type: ignore[no-untyped-def]
        self.f = f
        self.path = path
        self.records: list[tuple[int, int, int]] = []  # (offset, size, file_pos)
        self.pos = FLAT_HEADER_SIZE
        self.done = False

    def _next(self) -> bool:
        if self.done:
            return False
        head = _read_at(self.f, self.pos, 16)
        if len(head) < 16:
            raise TruncatedDumpError(
                f"{self.path}: truncated: the flattened stream ends inside a record"
            )
        offset, size = struct.unpack(">qq", head)
        if offset == -1 and size == -1:  # END_FLAG_FLAT_HEADER
            self.done = True
            return False
        if offset < 0 or size < 0:
            raise NotADumpError(f"{self.path}: corrupt flattened record at {self.pos:#x}")
        self.records.append((offset, size, self.pos + 16))
        self.pos += 16 + size
        return True

    def read(self, offset: int, size: int, max_records: int = 65536) -> bytes:
        """Bytes ``[offset, offset+size)`` of the reassembled file (zeros where unwritten).

        Records already seen are applied once; new ones are read only until
        the range is covered (headers come first), so the cost is linear in
        the records scanned, never quadratic.
        """
        buf = bytearray(size)
        covered: list[tuple[int, int]] = []

        def apply(roff: int, rsize: int, fpos: int) -> None:
            lo, hi = max(offset, roff), min(offset + size, roff + rsize)
            if lo < hi:
                buf[lo - offset : hi - offset] = _read_at(self.f, fpos + lo - roff, hi - lo)
                covered.append((lo, hi))

        for rec in self.records:
            apply(*rec)
        scanned = 0
        while _covered_bytes(covered) < size and scanned < max_records and self._next():
            apply(*self.records[-1])
            scanned += 1
        return bytes(buf)


def _covered_bytes(intervals: list[tuple[int, int]]) -> int:
    total, end = 0, None
    for lo, hi in sorted(intervals):
        if end is None or lo >= end:
            total += hi - lo
            end = hi
        elif hi > end:
            total += hi - end
            end = hi
    return total


def _check_kdump_complete(f, h: dict[str, int], size: int, path: str) -> str | None:  # type: ignore[no-untyped-def]
    """Check that the page table is whole; say what is missing when the page data is cut.

    The page-descriptor table follows the header, sub-header and the two
    bitmaps; the number of dumped pages is the popcount of the second bitmap
    (1 bit per page frame, 32 KiB per GiB of RAM: cheap).  A dump whose page
    table is cut is refused (no page can be found); one cut in its page data (a
    full disk, a broken copy) is read as far as it goes, like crash does, and the
    returned sentence says how many pages are lost.
    """
    bs = h["block_size"]
    bitmap_off = bs * (1 + h["sub_hdr_size"])
    half = h["bitmap_blocks"] * bs // 2
    bitmap2 = _read_at(f, bitmap_off + half, half)
    if len(bitmap2) < half:
        raise TruncatedDumpError(f"{path}: truncated: the file ends inside its page bitmap")
    npages = int.from_bytes(bitmap2, "little").bit_count()
    if npages == 0:
        return None
    desc_off = bitmap_off + h["bitmap_blocks"] * bs
    last = _read_at(f, desc_off + (npages - 1) * 24, 24)
    if len(last) < 24:
        raise TruncatedDumpError(
            f"{path}: truncated: {size} bytes, but its page table needs more "
            f"({npages} pages recorded)"
        )

    def end_of(i: int) -> int:
        offset, data_size, _flags, _ = struct.unpack("<qIIQ", _read_at(f, desc_off + i * 24, 24))
        return offset + data_size

    if end_of(npages - 1) <= size:
        return None
    # Page data is written in descriptor order: find the first page past the end.
    lo, hi = 0, npages - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if end_of(mid) > size:
            hi = mid
        else:
            lo = mid + 1
    return Note(
        "dump.truncated_kdump", size=size, end=end_of(npages - 1), missing=npages - lo, total=npages
    )


def has_dump_signature(path: str) -> bool:
    """Whether the file starts like an ELF core, a kdump-compressed or a flattened dump.

    Sixteen bytes, no parsing: cheap and safe enough for a parent process to decide, before
    it spends a time-bounded child on a file, that the file is not a dump at all.
    """
    with open_regular(path, "vmcore") as f:
        magic = f.read(16)
    return (
        magic.startswith(b"\x7fELF")
        or magic[:8] in KDUMP_SIGNATURES
        or magic[:12] == FLAT_SIGNATURE
    )


def inspect(path: str) -> DumpFile:
    """Identify ``path`` and read its VMCOREINFO; raise a one-line error otherwise."""
    if path == "/proc/kcore":
        return DumpFile(path=path, container="kcore")
    if path.startswith("qmp:"):  # a running QEMU guest, read over QMP (live)
        return DumpFile(path=path[4:], container="qmp")
    # A FIFO, socket, device or directory is refused before open() could block.
    f = open_regular(path, "vmcore")
    size = os.fstat(f.fileno()).st_size
    with f:
        magic = f.read(16)
        if size == 0:
            raise NotADumpError(f"{path}: empty file, not a vmcore")
        if magic.startswith(b"\x7fELF"):
            try:
                info, end = _elf_vmcoreinfo(f)
            except NotADumpError:
                raise
            except Exception as e:  # pyelftools raises many types on garbage
                raise NotADumpError(f"{path}: corrupt ELF core ({e})") from None
            truncated = None
            if end > size:  # notes come first: read as far as it goes, like crash
                truncated = Note("dump.truncated_elf", size=size, end=end, missing=end - size)
            return DumpFile(
                path=path, container="elf", vmcoreinfo=info, size=size, truncated=truncated
            )
        if magic[:8] in KDUMP_SIGNATURES:
            hdr = _read_at(f, 0, 4096)
            h, machine = _kdump_header(hdr, path)
            return _kdump_dumpfile(path, size, h, machine, lambda o, n: _read_at(f, o, n), f)
        if magic[:12] == FLAT_SIGNATURE:
            flat = _FlatReader(f, path)
            hdr = flat.read(0, 4096)
            if hdr[:8] not in KDUMP_SIGNATURES:
                raise NotADumpError(f"{path}: flattened file without a kdump header")
            h, machine = _kdump_header(hdr, path)
            tail = _read_at(f, size - 16, 16)
            if struct.unpack(">qq", tail) != (-1, -1):
                raise TruncatedDumpError(f"{path}: truncated: flattened dump has no end marker")
            return _kdump_dumpfile(path, size, h, machine, flat.read, None, container="flattened")
    # Never quote the file's bytes: it may be any file (a planted link to /etc/shadow).
    raise NotADumpError(f"{path}: not a vmcore (no ELF, kdump-compressed or flattened signature)")


def _kdump_dumpfile(  # type: ignore[no-untyped-def]
    path: str, size: int, h: dict[str, int], machine: str, read, f, container: str = "kdump"
) -> DumpFile:
    bs = h["block_size"]
    sub = read(bs, 80)
    dump_level = None
    info: dict[str, str] = {}
    if len(sub) >= 48:
        phys_base, dump_level, _split = struct.unpack_from("<Qii", sub, 0)
        del phys_base
        if h["header_version"] >= 3:
            off, vsize = struct.unpack_from("<QQ", sub, 32)
            if 0 < vsize < 1 << 20 and off < size:
                info = parse_vmcoreinfo(read(off, vsize))
    compression = next((n for bit, n in _COMPRESSION_BITS if h["status"] & bit), None)
    truncated = _check_kdump_complete(f, h, size, path) if f is not None else None
    return DumpFile(
        truncated=truncated,
        path=path,
        container=container,
        compression=compression,
        dump_level=dump_level,
        partial=bool(dump_level and dump_level > 0),
        incomplete=bool(h["status"] & _DUMP_DH_COMPRESSED_INCOMPLETE),
        machine=machine,
        block_size=bs,
        vmcoreinfo=info,
        size=size,
    )
