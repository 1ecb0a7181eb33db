"""The last crashes' kernel log from pstore (``/sys/fs/pstore``), for hosts without kdump.

What the kernel writes (fs/pstore/platform.c, ``pstore_dump()``): on an oops or panic,
kmsg_dump hands the log to the pstore backend from the END backwards, in records of the
backend's size; each record starts with one header line ``<Reason>#<count> Part<n>`` —
``Part1`` holds the newest lines, ``Part2`` the lines before them, and so on; ``count``
numbers the dumps of one boot (an ``Oops#1`` followed by ``Panic#2``).  The pstore filesystem
shows each record as ``dmesg-<backend>-<id>``: ``ramoops`` (reserved RAM), ``efi`` /
``efi_pstore`` (EFI variables; renamed in v5.19), ``erst`` (ACPI ERST), ``pstore-blk``.  A
record the kernel could not decompress keeps a ``.enc.z`` suffix.

On systemd hosts ``systemd-pstore.service`` moves the records at boot into
``/var/lib/systemd/pstore`` (raw ``dmesg-*`` files, EFI ones in ``<time>/<id>/``
subdirectories), so both places are searched.

Records of different crashes are told apart by time (a boot's records are written within one
kmsg_dump call, seconds apart; another crash is another boot) and by a repeated
``Reason#count Partn``.  Each crash's text is its dumps in ``count`` order, each dump's parts
from the highest number (oldest lines) to ``Part1``, without the header lines.
"""

from __future__ import annotations

import os
import re
import zlib
from dataclasses import dataclass, field

DEFAULT_DIRS = ("/sys/fs/pstore", "/var/lib/systemd/pstore")
HEADER = re.compile(rb"^(?P<reason>[A-Za-z]+)#(?P<count>\d+) Part(?P<part>\d+)\r?\n")
#: Records of one crash are written within one kmsg_dump pass; a larger gap is another crash.
SAME_CRASH_SECONDS = 120.0
#: One record is at most a few hundred KiB (ramoops record_size, EFI variable size); a huge
#: file in the directory is not a pstore record.
MAX_RECORD_BYTES = 4 << 20


class PstoreError(Exception):
    """A record that cannot be read; the message names the file."""


@dataclass(frozen=True)
class Record:
    path: str
    backend: str
    reason: str
    count: int
    part: int
    mtime: float
    body: bytes


@dataclass
class PstoreCrash:
    """The records of one crash and its reassembled log text."""

    records: list[Record] = field(default_factory=list)

    @property
    def mtime(self) -> float:
        return max(r.mtime for r in self.records)

    @property
    def reasons(self) -> list[str]:
        return sorted({f"{r.reason}#{r.count}" for r in self.records}, key=_dump_order)

    def text(self) -> bytes:
        dumps: dict[tuple[int, str], list[Record]] = {}
        for r in self.records:
            dumps.setdefault((r.count, r.reason), []).append(r)
        out = []
        for key in sorted(dumps):
            for r in sorted(dumps[key], key=lambda r: -r.part):
                body = r.body if r.body.endswith(b"\n") else r.body + b"\n"
                out.append(body)
        return b"".join(out)


def _dump_order(s: str) -> int:
    return int(s.split("#", 1)[1])


def _name_backend(name: str) -> str | None:
    """``dmesg-<backend>-<id>[.enc.z]`` → backend; None for console-, ftrace-, pmsg- records."""
    m = re.fullmatch(r"dmesg-(?P<backend>[A-Za-z0-9_-]+?)-(?P<id>\d+)(?:\.enc\.z)?", name)
    return m.group("backend") if m else None


def _decompress(raw: bytes, path: str) -> bytes:
    """``.enc.z``: pstore compressed it (deflate: zlib since v6.5; older kernels could also
    use lzo, lz4 or zstd, which we cannot read here) and could not decompress it at boot."""
    for wbits in (zlib.MAX_WBITS, -zlib.MAX_WBITS, 16 + zlib.MAX_WBITS):
        try:
            d = zlib.decompressobj(wbits)
            out = d.decompress(raw, MAX_RECORD_BYTES * 8)
            if out:
                return out
        except zlib.error:
            continue
    raise PstoreError(f"{path}: compressed record in a format other than deflate; skipped")


def read_record(path: str) -> Record | None:
    """One ``dmesg-*`` file → :class:`Record`; None when it is no dmesg record at all."""
    name = os.path.basename(path)
    backend = _name_backend(name)
    if backend is None:
        return None
    st = os.stat(path)
    if st.st_size > MAX_RECORD_BYTES:
        raise PstoreError(f"{path}: {st.st_size} bytes is too large for a pstore record")
    with open(path, "rb") as f:
        raw = f.read(MAX_RECORD_BYTES + 1)
    if name.endswith(".enc.z"):
        raw = _decompress(raw, path)
    m = HEADER.match(raw)
    if m is None:
        raise PstoreError(f"{path}: no 'Reason#N PartN' header (not a kmsg_dump record)")
    return Record(
        path,
        backend,
        m.group("reason").decode(),
        int(m.group("count")),
        int(m.group("part")),
        st.st_mtime,
        raw[m.end() :],
    )


def find_records(
    dirs: tuple[str, ...] | list[str] = DEFAULT_DIRS,
) -> tuple[list[Record], list[str]]:
    """Every dmesg record under ``dirs`` (recursively: systemd-pstore's subdirectories), and
    one line per record that could not be read."""
    records, problems = [], []
    for top in dirs:
        if not os.path.isdir(top):
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames.sort()
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                if os.path.islink(path) or not os.path.isfile(path):
                    continue
                try:
                    rec = read_record(path)
                except (OSError, PstoreError) as e:
                    problems.append(str(e))
                    continue
                if rec is not None:
                    records.append(rec)
    return records, problems


def group_crashes(records: list[Record]) -> list[PstoreCrash]:
    """Records → crashes, oldest first (see the module docstring for the rule)."""
    crashes: list[PstoreCrash] = []
    seen: set[tuple[str, int, int]] = set()
    for r in sorted(records, key=lambda r: (r.mtime, r.count, r.part)):
        key = (r.reason, r.count, r.part)
        cur = crashes[-1] if crashes else None
        if cur is None or r.mtime - cur.mtime > SAME_CRASH_SECONDS or key in seen:
            cur = PstoreCrash()
            crashes.append(cur)
            seen = set()
        cur.records.append(r)
        seen.add(key)
    return crashes
