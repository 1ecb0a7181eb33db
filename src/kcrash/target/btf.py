"""Read the kernel's BTF and serve it to drgn as types and objects.

Why: drgn 0.3.0 has no BTF support (its issue #176), yet every distribution
kernel built with ``CONFIG_DEBUG_INFO_BTF`` (Debian 11+, RHEL 8.2+, Ubuntu
20.10+, Fedora, SUSE 15) carries a complete, deduplicated description of its
types in memory between ``__start_BTF`` and ``__stop_BTF``.  Registering that
as a drgn type finder lets drgn's own helpers run unchanged without the
~1 GB debuginfo package.

Format (``include/uapi/linux/btf.h``; little-endian on x86-64): a 24-byte
header ``magic 0xeb9f, version 1, flags, hdr_len, type_off, type_len,
str_off, str_len`` then a type section of variable-length records (type id
``n`` is the n-th record, id 0 is ``void``) and a NUL-separated string
section.  Kinds and the kernel version that introduced them:

======  ==============  =====================================================
kind    name            since
======  ==============  =====================================================
1-13    INT … FUNC_PROTO  4.18 (BTF itself); ``kind_flag`` bit-field member
                        offsets 5.0; vmlinux BTF (``CONFIG_DEBUG_INFO_BTF``)
                        5.2
14, 15  VAR, DATASEC    5.2 (pahole only emits per-CPU variables, section
                        ``.data..percpu``, until pahole 1.27's global vars)
16      FLOAT           5.13
17      DECL_TAG        5.16 (was BTF_KIND_TAG in 5.15)
18      TYPE_TAG        5.17
19      ENUM64          6.0 (and ENUM ``kind_flag`` = signed values)
======  ==============  =====================================================

Performance: Debian 6.1 BTF has ~100k records in 4.4 MB.  Only one pass is
made eagerly: record offsets (a ``array('I')``) and the name offset of each
record.  Names are looked up by finding the exact NUL-delimited string in
the string section (BTF strings are deduplicated, so it has one offset) and
then that offset among the records' name offsets with ``bytes.find`` (C
speed).  drgn types are built on first use and cached; struct members are
built lazily by drgn (callables in :class:`drgn.TypeMember`).
"""

from __future__ import annotations

import hashlib
import operator
import os
import struct
import sys
from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import accumulate, islice

import drgn
from drgn import Object, Program, Qualifiers, Type, TypeEnumerator, TypeKind, TypeMember

from .kallsyms import cache_path

BTF_MAGIC = 0xEB9F

# Kinds (include/uapi/linux/btf.h).
UNKN = 0
INT = 1
PTR = 2
ARRAY = 3
STRUCT = 4
UNION = 5
ENUM = 6
FWD = 7
TYPEDEF = 8
VOLATILE = 9
CONST = 10
RESTRICT = 11
FUNC = 12
FUNC_PROTO = 13
VAR = 14
DATASEC = 15
FLOAT = 16
DECL_TAG = 17
TYPE_TAG = 18
ENUM64 = 19

KIND_NAMES = [
    "UNKN",
    "INT",
    "PTR",
    "ARRAY",
    "STRUCT",
    "UNION",
    "ENUM",
    "FWD",
    "TYPEDEF",
    "VOLATILE",
    "CONST",
    "RESTRICT",
    "FUNC",
    "FUNC_PROTO",
    "VAR",
    "DATASEC",
    "FLOAT",
    "DECL_TAG",
    "TYPE_TAG",
    "ENUM64",
]

# Record length in 32-bit words: 3 (struct btf_type) + fixed + per_member * vlen.
_FIXED = (0, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0)
_PER_MEMBER = (0, 0, 0, 0, 3, 3, 2, 0, 0, 0, 0, 0, 0, 2, 0, 3, 0, 0, 0, 3)

# INT encoding bits.
INT_SIGNED = 1
INT_CHAR = 2
INT_BOOL = 4

# Which BTF kinds can answer a drgn lookup of a given TypeKind.
_DRGN_KIND_TO_BTF: dict[TypeKind, tuple[int, ...]] = {
    TypeKind.STRUCT: (STRUCT, FWD),
    TypeKind.UNION: (UNION, FWD),
    TypeKind.ENUM: (ENUM, ENUM64),
    TypeKind.TYPEDEF: (TYPEDEF,),
    TypeKind.INT: (INT,),
    TypeKind.BOOL: (INT,),
    TypeKind.FLOAT: (FLOAT,),
}


class BtfError(Exception):
    """The bytes are not BTF this reader understands."""


#: The index cache: ``~/.cache/kcrash/btf1/<sha256 of the type and string sections>.idx``.
#: Bump the directory and ``_IDX_MAGIC`` together when the file's layout changes.
_IDX_KIND = "btf1"
#: then the digest, the record and string counts, the record offsets, their name offsets,
#: the string offsets in the order of the strings, and the SHA-256 of all before it.
_IDX_MAGIC = b"KCBTFIX1"

_Index = tuple[array, array, array]


def _cached_index(digest: bytes, words: memoryview, strs: bytes) -> _Index | None:
    """The indexes saved by an earlier run over the same BTF, or None.

    Why: the eager pass over Debian 6.1's 100k records (~40 ms) and the string
    index of the first name lookup (~50 ms) were re-derived by every analysis
    without debuginfo, the same for every dump of a build.  The string offsets
    are missing (empty) in a file written by a build's first run.  The file's name and
    first bytes are the sections' SHA-256 (``digest``, ~3 ms for 6 MB), so an index
    is only reused for the very bytes it was built from: another build, another
    id, or a dump whose BTF pages were damaged gets its own.  The file is checked
    before use -- magic, sizes, its own checksum, that hash, record offsets
    strictly increasing from 0 with the last record ending the section, string
    offsets inside the section -- so a truncated, corrupt or foreign file is
    ignored (and rebuilt), and a file that passes cannot make a read fall outside
    the sections.  Each lookup's answer is checked against the BTF itself
    (:meth:`Btf.ids_named`, :meth:`Btf._string_offsets`).
    """
    path = cache_path(digest.hex(), _IDX_KIND, ".idx")
    try:
        if path is None or not path.exists():
            return None
        raw = path.read_bytes()
    except OSError:
        return None
    if len(raw) < 48 + 32 or raw[:8] != _IDX_MAGIC:
        return None
    body, check = raw[:-32], raw[-32:]
    count, nstr = struct.unpack_from("<II", body, 40)
    if len(body) != 48 + 8 * count + 4 * nstr or body[8:40] != digest:
        return None
    if hashlib.sha256(body).digest() != check:
        return None
    offsets, names, sorted_strs = array("I"), array("I"), array("I")
    offsets.frombytes(body[48 : 48 + 4 * count])
    names.frombytes(body[48 + 4 * count : 48 + 8 * count])
    sorted_strs.frombytes(body[48 + 8 * count :])
    n = len(words)
    if not offsets or offsets[0] != 0 or offsets[-1] + 3 > n:
        return None
    if not all(map(operator.lt, offsets, islice(offsets, 1, None))):
        return None
    last = words[offsets[-1] + 1]
    kind = (last >> 24) & 0x1F
    if (
        kind >= len(_FIXED)
        or offsets[-1] + 3 + _FIXED[kind] + _PER_MEMBER[kind] * (last & 0xFFFF) != n
    ):
        return None
    if sorted_strs and max(sorted_strs) > len(strs):
        return None
    return offsets, names, sorted_strs


def _sorted_strings(strs: bytes) -> array:
    """Every string's offset, in the order of the strings (equal ones by offset)."""
    parts = strs.split(b"\0")
    offs = list(accumulate(map((1).__add__, map(len, parts)), initial=0))
    order = sorted(range(len(parts)), key=parts.__getitem__)  # stable: equal ones by offset
    return array("I", map(offs.__getitem__, order))


def _store_index(digest: bytes, index: _Index) -> None:
    path = cache_path(digest.hex(), _IDX_KIND, ".idx")
    if path is None:
        return
    offsets, names, sorted_strs = index
    head = _IDX_MAGIC + digest + struct.pack("<II", len(offsets), len(sorted_strs))
    body = head + offsets.tobytes() + names.tobytes() + sorted_strs.tobytes()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")  # one per process (batch --jobs)
        tmp.write_bytes(body + hashlib.sha256(body).digest())
        tmp.replace(path)
    except OSError:
        pass  # a read-only home must not stop the analysis


@dataclass(frozen=True)
class BtfRecord:
    """One decoded ``struct btf_type`` header (plus its id)."""

    id: int
    name: str
    kind: int
    kind_flag: bool
    vlen: int
    size_or_type: int


class Btf:
    """A parsed BTF blob: the kernel's (base) or a module's (split, on a base).

    Split BTF (``CONFIG_DEBUG_INFO_BTF_MODULES``, 5.11+) numbers its types
    after the base's last id and its string offsets after the base's string
    section; :meth:`record` and :meth:`string` follow that rule.
    """

    def __init__(self, data: bytes, base: Btf | None = None, *, cache: bool = False) -> None:
        if len(data) < 24:
            raise BtfError("BTF blob shorter than its header")
        magic, version, _flags, hdr_len = struct.unpack_from("<HBBI", data, 0)
        if magic != BTF_MAGIC:
            if magic == 0x9FEB:
                raise BtfError("big-endian BTF is not supported")
            raise BtfError(f"bad BTF magic {magic:#x}")
        if version != 1:
            raise BtfError(f"unknown BTF version {version}")
        type_off, type_len, str_off, str_len = struct.unpack_from("<IIII", data, 8)
        if hdr_len + max(type_off + type_len, str_off + str_len) > len(data):
            raise BtfError("BTF sections extend past the blob")
        if sys.byteorder != "little":
            raise BtfError("BTF reading needs a little-endian host")
        self.base = base
        tstart = hdr_len + type_off
        self._types = bytes(data[tstart : tstart + type_len])
        self._strs = bytes(data[hdr_len + str_off : hdr_len + str_off + str_len])
        self._words = memoryview(self._types).cast("I")
        self._first_id = base.count if base is not None else 1
        self._str_base = len(base._strs) if base is not None else 0
        # The sorted string offsets (cache=True only): lookups by bisection, no dict.
        self._str_sorted: array | None = None
        if cache and base is None:
            h = hashlib.sha256(self._types)
            h.update(self._strs)
            digest = h.digest()
            index = _cached_index(digest, self._words, self._strs)
            if index is None:
                # First run of this BTF: only the record index is saved (~5 ms more);
                # names are looked up through the dict, as without a cache.
                index = (*self._index(), array("I"))
                _store_index(digest, index)
            elif not index[2]:
                # Second run: sorting the strings costs ~45 ms more than the dict it
                # replaces, once; every later run skips both (~80 ms).
                index = (index[0], index[1], _sorted_strings(self._strs))
                _store_index(digest, index)
            self._offsets, self._name_offs, sorted_strs = index
            self._str_sorted = sorted_strs or None
        else:
            self._offsets, self._name_offs = self._index()
        self.count = self._first_id + len(self._offsets)
        self._name_bytes = self._name_offs.tobytes()
        self._name_cache: dict[str, list[int]] = {}
        self._new_enums: bool | None = None
        self._str_index: dict[bytes, int] | None = None

    # -- the one eager pass ------------------------------------------------

    def _index(self) -> tuple[array, array]:
        """Word offset and name offset of every record, in id order."""
        w = self._words
        n = len(w)
        offsets = array("I")
        names = array("I")
        add_off = offsets.append
        add_name = names.append
        fixed = _FIXED
        per = _PER_MEMBER
        pos = 0
        try:
            while pos < n:
                add_off(pos)
                add_name(w[pos])
                info = w[pos + 1]
                kind = (info >> 24) & 0x1F
                pos += 3 + fixed[kind] + per[kind] * (info & 0xFFFF)
        except IndexError as e:
            raise BtfError(f"unknown BTF kind at word {pos}") from e
        if pos != n:
            raise BtfError("BTF type section ends inside a record")
        return offsets, names

    @property
    def enum_flag_is_signedness(self) -> bool:
        """Whether ENUM ``kind_flag`` means "signed" (6.0+ BTF, pahole 1.24+).

        Before ENUM64 (6.0), ``btf_enum.val`` was an ``__s32`` and the flag
        unused; since, the flag marks signed enums and unflagged values are
        unsigned.  A blob that uses ENUM64 or flags any ENUM is of the new
        kind.
        """
        if self._new_enums is None:
            if self.base is not None:
                self._new_enums = self.base.enum_flag_is_signedness
            else:
                w = self._words
                new = False
                for pos in self._offsets:
                    info = w[pos + 1]
                    kind = (info >> 24) & 0x1F
                    if kind == ENUM64 or (kind == ENUM and info >> 31):
                        new = True
                        break
                self._new_enums = new
        return self._new_enums

    # -- raw access --------------------------------------------------------

    def _owner(self, tid: int) -> tuple[Btf, int]:
        if tid < self._first_id:
            if self.base is None:
                raise KeyError(tid)
            return self.base._owner(tid)
        i = tid - self._first_id
        if i >= len(self._offsets):
            raise KeyError(tid)
        return self, i

    def string(self, off: int) -> str:
        """The string at ``off`` of the (base + own) string section."""
        if off < self._str_base:
            assert self.base is not None
            return self.base.string(off)
        off -= self._str_base
        end = self._strs.index(b"\0", off)
        return self._strs[off:end].decode("utf-8", "replace")

    def record(self, tid: int) -> BtfRecord:
        """The header of type ``tid``."""
        owner, i = self._owner(tid)
        w = owner._words
        pos = owner._offsets[i]
        info = w[pos + 1]
        return BtfRecord(
            id=tid,
            name=owner.string(w[pos]) if w[pos] else "",
            kind=(info >> 24) & 0x1F,
            kind_flag=bool(info >> 31),
            vlen=info & 0xFFFF,
            size_or_type=w[pos + 2],
        )

    def _raw(self, tid: int) -> tuple[memoryview, int, int, int, int]:
        """(words, pos, kind, vlen, size_or_type) of a record, for builders."""
        owner, i = self._owner(tid)
        w = owner._words
        pos = owner._offsets[i]
        info = w[pos + 1]
        return w, pos, (info >> 24) & 0x1F, info & 0xFFFF, w[pos + 2]

    def _kind_flag(self, tid: int) -> bool:
        owner, i = self._owner(tid)
        return bool(owner._words[owner._offsets[i] + 1] >> 31)

    def __len__(self) -> int:
        return self.count

    def records(self) -> Iterator[BtfRecord]:
        """Every record of this blob (not of its base), in id order."""
        for i in range(len(self._offsets)):
            yield self.record(self._first_id + i)

    # -- lookup by name ----------------------------------------------------

    def _string_offsets(self, name: str) -> list[int]:
        """The offset of ``name`` as a whole string (in base and own sections)."""
        out: list[int] = []
        if self.base is not None:
            out.extend(self.base._string_offsets(name))
        if self._str_sorted is not None:
            off = self._sorted_lookup(name.encode())
        else:
            if self._str_index is None:
                self._str_index = self._build_string_index()
            off = self._str_index.get(name.encode())
        if off is not None:
            out.append(off)
        return out

    def _string_at(self, off: int) -> bytes:
        end = self._strs.find(b"\0", off)
        return self._strs[off : end if end >= 0 else None]

    def _sorted_lookup(self, key: bytes) -> int | None:
        """The offset of string ``key`` by bisection of the sorted offsets; the last
        of equal strings, as the dict of :meth:`_build_string_index` keeps.  The
        answer is read back from the section, so a wrong index can only miss."""
        assert self._str_sorted is not None
        i = bisect_right(self._str_sorted, key, key=self._string_at) - 1
        if i < 0:
            return None
        off = self._str_sorted[i]
        if (off and self._strs[off - 1]) or self._string_at(off) != key:
            return None
        return off

    def _build_string_index(self) -> dict[bytes, int]:
        """String -> offset for the whole section, built on the first lookup.

        ~25 ms for Debian 6.1's 100k strings, cheaper than the 0.6 ms scan
        each lookup of a late or missing name costs (an analysis makes ~70).
        pahole/libbpf deduplicate BTF strings, so each has one offset.
        """
        parts = self._strs.split(b"\0")
        # Each string starts one past the previous one's NUL: len + 1, summed (C speed).
        offsets = accumulate(map((1).__add__, map(len, parts)), initial=self._str_base)
        return dict(zip(parts, offsets, strict=False))  # C speed; names are unique

    def ids_named(self, name: str) -> list[int]:
        """Ids of all records (types, VARs, FUNCs, DATASECs) called ``name``."""
        cached = self._name_cache.get(name)
        if cached is not None:
            return cached
        ids: list[int] = []
        if self.base is not None:
            ids.extend(self.base.ids_named(name))
        hay = self._name_bytes
        for off in self._string_offsets(name):
            needle = struct.pack("<I", off)
            j = hay.find(needle)
            while j >= 0:
                # The record's own name, not only the index's (which may come from a cache).
                if j % 4 == 0 and self._words[self._offsets[j // 4]] == off:
                    ids.append(self._first_id + j // 4)
                j = hay.find(needle, j + 1)
        ids.sort()
        self._name_cache[name] = ids
        return ids

    def find(self, name: str, kinds: tuple[int, ...]) -> int | None:
        """First id called ``name`` of one of ``kinds``; complete beats FWD."""
        fwd = None
        for tid in self.ids_named(name):
            _, _, kind, vlen, _ = self._raw(tid)
            if kind in kinds:
                if kind == FWD or (kind in (ENUM, ENUM64) and vlen == 0):
                    fwd = fwd if fwd is not None else tid
                    continue
                return tid
        return fwd

    def enumerator(self, name: str) -> tuple[int, int] | None:
        """(enum type id, value) of the enumerator constant ``name``."""
        for owner in self._chain():
            for off in owner._string_offsets(name):
                if off < owner._str_base:
                    continue  # found again, below, by the base itself
                needle = struct.pack("<I", off)
                hay = owner._types
                j = hay.find(needle)
                while j >= 0:
                    if j % 4 == 0:
                        hit = owner._enumerator_at(j // 4, off)
                        if hit is not None:
                            return hit
                    j = hay.find(needle, j + 1)
        return None

    def _chain(self) -> list[Btf]:
        chain: list[Btf] = []
        b: Btf | None = self
        while b is not None:
            chain.append(b)
            b = b.base
        return chain[::-1]

    def _enumerator_at(self, word: int, name_off: int) -> tuple[int, int] | None:
        i = bisect_right(self._offsets, word) - 1
        if i < 0:
            return None
        tid = self._first_id + i
        w, pos, kind, vlen, _ = self._raw(tid)
        if kind == ENUM:
            rel = word - pos - 3
            if rel >= 0 and rel % 2 == 0 and rel // 2 < vlen and w[word] == name_off:
                val = w[word + 1]
                if self.enum_flag_is_signedness:
                    signed = self._kind_flag(tid)
                else:
                    signed = _old_enum_is_signed(w, pos, vlen)
                if signed and val >= 1 << 31:
                    val -= 1 << 32
                return tid, val
        elif kind == ENUM64:
            rel = word - pos - 3
            if rel >= 0 and rel % 3 == 0 and rel // 3 < vlen and w[word] == name_off:
                val = w[word + 1] | (w[word + 2] << 32)
                if self._kind_flag(tid) and val >= 1 << 63:
                    val -= 1 << 64
                return tid, val
        return None

    # -- structured access used by the finders and tests -------------------

    def members(self, tid: int) -> list[tuple[str | None, int, int, int | None]]:
        """(name, member type id, bit offset, bit-field size) of a struct/union."""
        w, pos, kind, vlen, _ = self._raw(tid)
        if kind not in (STRUCT, UNION):
            raise ValueError(f"type {tid} is not a struct or union")
        kflag = self._kind_flag(tid)
        out: list[tuple[str | None, int, int, int | None]] = []
        p = pos + 3
        for _ in range(vlen):
            name_off, mtype, moff = w[p], w[p + 1], w[p + 2]
            p += 3
            if kflag:
                bits = moff >> 24
                bit_off = moff & 0xFFFFFF
                out.append(
                    (self.string(name_off) if name_off else None, mtype, bit_off, bits or None)
                )
            else:
                out.append((self.string(name_off) if name_off else None, mtype, moff, None))
        return out

    def resolve(self, tid: int) -> int:
        """Skip typedefs, qualifiers and type tags."""
        while tid:
            _, _, kind, _, st = self._raw(tid)
            if kind in (TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG):
                tid = st
            else:
                break
        return tid

    def size_of(self, tid: int) -> int:
        """sizeof() of a type id, as BTF records it."""
        tid = self.resolve(tid)
        w, pos, kind, _, st = self._raw(tid)
        if kind in (INT, STRUCT, UNION, ENUM, ENUM64, FLOAT, DATASEC):
            return st
        if kind == PTR:
            return 8
        if kind == ARRAY:
            return w[pos + 5] * self.size_of(w[pos + 3])
        raise ValueError(f"type {tid} ({KIND_NAMES[kind]}) has no size")


def _old_enum_is_signed(w: memoryview, pos: int, vlen: int) -> bool:
    """Whether a pre-6.0 (unflagged) 32-bit ENUM holds negative values.

    Old BTF stored the low 32 bits with no sign.  Compared with DWARF on
    Debian 5.10: an enum with a small negative (``RPM_INVALID = -1``,
    ``NF_IP_PRI_RAW = -300``) or ``INT_MIN`` (``__NETDEV_TX_MIN``) is
    signed; one whose high values are large constants (hashes, masks) is
    not.  ``0xffffffff`` alone stays ambiguous and is taken as -1.
    """
    for k in range(vlen):
        v = w[pos + 4 + 2 * k]
        if v >= (1 << 32) - 4096 or v == 1 << 31:
            return True
    return False


def _int_name(size: int, signed: bool) -> str:
    names = {1: "char", 2: "short", 4: "int", 8: "long"}
    base = names.get(size, "long")
    return base if signed else "unsigned " + base


class BtfTypes:
    """Builds (and caches) drgn types of one program from a :class:`Btf`."""

    def __init__(self, prog: Program, btf: Btf, base_types: BtfTypes | None = None) -> None:
        self.prog = prog
        self.btf = btf
        # For a module's split BTF: the base's types come from the base's
        # builder, so a module struct's "struct list_head" is vmlinux's.
        self.base_types = base_types
        self._cache: dict[int, Type] = {}
        self._void = prog.void_type()

    def type(self, tid: int) -> Type:
        """The drgn type of BTF id ``tid`` (0 is void)."""
        if self.base_types is not None and tid < self.btf._first_id:
            return self.base_types.type(tid)
        t = self._cache.get(tid)
        if t is None:
            t = self._build(tid)
            self._cache[tid] = t
        return t

    def _lazy(self, tid: int) -> Callable[[], Type]:
        return lambda: self.type(tid)

    def _build(self, tid: int) -> Type:
        if tid == 0:
            return self._void
        btf = self.btf
        prog = self.prog
        w, pos, kind, vlen, st = btf._raw(tid)
        name_off = w[pos]
        name = btf.string(name_off) if name_off else None
        kflag = btf._kind_flag(tid)
        if kind == INT:
            enc = w[pos + 3]
            encoding = (enc >> 24) & 0xF
            if encoding & INT_BOOL:
                return prog.bool_type(name or "_Bool", st)
            signed = bool(encoding & INT_SIGNED)
            return prog.int_type(name or _int_name(st, signed), st, signed)
        if kind == PTR:
            return prog.pointer_type(self.type(st))
        if kind == ARRAY:
            elem, _index, nelems = w[pos + 3], w[pos + 4], w[pos + 5]
            # BTF cannot tell "x[0]" from "x[]": both are nelems 0.  DWARF
            # (and so drgn with vmlinux) gives flexible arrays no length.
            return prog.array_type(self.type(elem), nelems if nelems else None)
        if kind in (STRUCT, UNION):
            members = []
            p = pos + 3
            for _ in range(vlen):
                m_name_off, mtype, moff = w[p], w[p + 1], w[p + 2]
                p += 3
                m_name = btf.string(m_name_off) if m_name_off else None
                if kflag:
                    bits, bit_off = moff >> 24, moff & 0xFFFFFF
                else:
                    bits, bit_off = 0, moff
                if bits:
                    members.append(TypeMember(self._lazy_bitfield(mtype, bits), m_name, bit_off))
                else:
                    members.append(TypeMember(self._lazy(mtype), m_name, bit_off))
            make = prog.struct_type if kind == STRUCT else prog.union_type
            return make(name, st, members)
        if kind in (ENUM, ENUM64):
            if vlen == 0:
                return prog.enum_type(name)
            values = self._enum_values(w, pos, kind, vlen, kflag)
            signed = any(v < 0 for _, v in values) or (kflag and self.btf.enum_flag_is_signedness)
            compat = prog.int_type(_int_name(st, signed), st, signed)
            return prog.enum_type(name, compat, [TypeEnumerator(n, v) for n, v in values])
        if kind == FWD:
            # pahole leaves a FWD where dedup could not merge a definition;
            # use the complete type of that name when there is one.
            if name:
                full = btf.find(name, (UNION,) if kflag else (STRUCT,))
                if full is not None and btf._raw(full)[2] != FWD:
                    return self.type(full)
            return prog.union_type(name) if kflag else prog.struct_type(name)
        if kind == TYPEDEF:
            return prog.typedef_type(name or "", self.type(st))
        if kind in (VOLATILE, CONST, RESTRICT):
            q = {
                VOLATILE: Qualifiers.VOLATILE,
                CONST: Qualifiers.CONST,
                RESTRICT: Qualifiers.RESTRICT,
            }[kind]
            inner = self.type(st)
            return inner.qualified(inner.qualifiers | q)
        if kind in (TYPE_TAG, DECL_TAG, VAR):
            return self.type(st)
        if kind == FUNC:
            return self.type(st)
        if kind == FUNC_PROTO:
            params = []
            variadic = False
            p = pos + 3
            for k in range(vlen):
                p_name_off, ptype = w[p], w[p + 1]
                p += 2
                if k == vlen - 1 and p_name_off == 0 and ptype == 0:
                    variadic = True
                    break
                params.append(
                    drgn.TypeParameter(
                        self._lazy(ptype), btf.string(p_name_off) if p_name_off else None
                    )
                )
            return prog.function_type(self.type(st), params, variadic)
        if kind == FLOAT:
            return prog.float_type(name or "double", st)
        raise BtfError(f"cannot build a drgn type from BTF kind {kind} (id {tid})")

    def _lazy_bitfield(self, tid: int, bits: int) -> Callable[[], Object]:
        return lambda: Object(self.prog, self.type(tid), bit_field_size=bits)

    def _enum_values(
        self, w: memoryview, pos: int, kind: int, vlen: int, kflag: bool
    ) -> list[tuple[str, int]]:
        btf = self.btf
        out = []
        p = pos + 3
        if kind == ENUM:
            if self.btf.enum_flag_is_signedness:
                signed = kflag
            else:
                signed = _old_enum_is_signed(w, pos, vlen)
            for _ in range(vlen):
                v = w[p + 1]
                if signed and v >= 1 << 31:
                    v -= 1 << 32
                out.append((btf.string(w[p]), v))
                p += 2
        else:
            for _ in range(vlen):
                v = w[p + 1] | (w[p + 2] << 32)
                if kflag and v >= 1 << 63:
                    v -= 1 << 64
                out.append((btf.string(w[p]), v))
                p += 3
        return out

    # -- the drgn finder ---------------------------------------------------

    def find_type(
        self, prog: Program, kinds: drgn.TypeKindSet, name: str, filename: str | None
    ) -> Type | None:
        """drgn type finder: ``(prog, kinds, name, filename) -> Type | None``."""
        if filename is not None:
            return None
        btf_kinds: tuple[int, ...] = ()
        for k in kinds:
            btf_kinds += _DRGN_KIND_TO_BTF.get(k, ())
        if not btf_kinds:
            return None
        tid = self.btf.find(name, btf_kinds)
        if tid is None:
            return None
        _, _, kind, _, _ = self.btf._raw(tid)
        if kind == FWD:
            # A FWD answers STRUCT or UNION per its kind_flag only.
            want = TypeKind.UNION if self.btf._kind_flag(tid) else TypeKind.STRUCT
            if want not in kinds:
                return None
        elif kind == INT:
            t = self.type(tid)
            return t if t.kind in kinds else None
        return self.type(tid)

    def var_type(self, name: str) -> Type | None:
        """Type of a VAR (per-CPU variable, or any global with pahole 1.27+)."""
        for tid in self.btf.ids_named(name):
            _, _, kind, _, st = self.btf._raw(tid)
            if kind == VAR:
                return self.type(st)
        return None

    def func_type(self, name: str) -> Type | None:
        """Function type of a FUNC record (every non-inlined kernel function)."""
        for tid in self.btf.ids_named(name):
            _, _, kind, _, st = self.btf._raw(tid)
            if kind == FUNC:
                return self.type(st)
        return None

    def constant(self, name: str) -> Object | None:
        """An enumerator as a drgn constant object of its enum type."""
        hit = self.btf.enumerator(name)
        if hit is None:
            return None
        tid, value = hit
        return Object(self.prog, self.type(tid), value)
