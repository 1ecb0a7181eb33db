"""The BTF reader against real BTF (the corpus kernels' vmlinux ``.BTF``, the
same bytes the dumps carry in memory) compared with DWARF, plus hand-built
blobs for the kinds Debian 6.1 does not use (DECL_TAG, TYPE_TAG, split BTF,
pre-6.0 signed enums)."""

from __future__ import annotations

import re
import struct
from collections import Counter
from functools import cache
from typing import Any

import drgn
import pytest
from checks import platform as entry_platform
from elftools.elf.elffile import ELFFile

from kcrash.target import btf as B
from kcrash.target.btf import Btf, BtfError, BtfTypes

# -- real BTF ------------------------------------------------------------


@cache
def _vmlinux_btf(vmlinux: str) -> bytes:
    with open(vmlinux, "rb") as f:
        sec = ELFFile(f).get_section_by_name(".BTF")
        assert sec is not None, f"{vmlinux} has no .BTF section"
        return sec.data()


def _kernels(corpus: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """One corpus entry per kernel."""
    out: dict[str, dict[str, Any]] = {}
    for e in corpus:
        out.setdefault(e["kernel"], e)
    return out


def _dwarf_prog(vmlinux: str) -> drgn.Program:
    prog = drgn.Program(drgn.host_platform)
    mod = prog.extra_module("vmlinux", create=True)
    mod.try_file(vmlinux, force=True)
    return prog


def _btf_prog(blob: bytes, platform: Any = None) -> tuple[drgn.Program, BtfTypes]:
    prog = drgn.Program(platform or drgn.host_platform)
    types = BtfTypes(prog, Btf(blob))
    prog.register_type_finder("btf", types.find_type, enable_index=0)
    return prog, types


def _describe(t: drgn.Type) -> list[Any]:
    out: list[Any] = [t.type_name()]
    u = t.unaliased()
    if t.is_complete() and u.kind != drgn.TypeKind.FUNCTION:
        out.append(drgn.sizeof(t))
    if u.kind in (drgn.TypeKind.STRUCT, drgn.TypeKind.UNION) and u.is_complete():
        out.append(
            [(m.name, m.bit_offset, m.bit_field_size, m.type.type_name()) for m in u.members]
        )
    if u.kind == drgn.TypeKind.ENUM and u.is_complete():
        out.append([(e.name, e.value) for e in u.enumerators])
        out.append(u.type.is_signed)
    return out


def _normalise(desc: list[Any]) -> str:
    """What BTF cannot say: ``x[0]`` vs ``x[]``, and pahole flattens
    multi-dimensional arrays (``[4][2][5]`` is one ``[40]``)."""
    s = re.sub(r"\[0\]", "[]", str(desc))
    return re.sub(r"(\[\d+\])+", "[N]", s)


def test_btf_types_match_dwarf(corpus: list[dict[str, Any]]) -> None:
    """Every named struct/union/enum/typedef: same size, members, offsets,
    bit-fields, member type names and enumerator values as DWARF."""
    for kernel, e in _kernels(corpus).items():
        blob = _vmlinux_btf(e["vmlinux"])
        _bprog, types = _btf_prog(blob)
        dprog = _dwarf_prog(e["vmlinux"])
        btf = types.btf
        names = Counter(
            (r.kind, r.name) for r in btf.records() if r.name and r.kind in (4, 5, 6, 8, 19)
        )
        compared = 0
        diffs = []
        for r in btf.records():
            if not r.name or r.kind not in (B.STRUCT, B.UNION, B.ENUM, B.TYPEDEF, B.ENUM64):
                continue
            if names[(r.kind, r.name)] > 1:
                continue  # two different types share the name: either may win
            kw = {B.STRUCT: "struct ", B.UNION: "union ", B.TYPEDEF: ""}.get(r.kind, "enum ")
            try:
                want = dprog.type(kw + r.name)
            except LookupError:
                continue
            compared += 1
            a, b = _normalise(_describe(want)), _normalise(_describe(types.type(r.id)))
            if a != b:
                diffs.append((kw + r.name, a[:300], b[:300]))
        assert compared > 5000, f"{kernel}: only {compared} types compared"
        # Accepted differences, few and never in core types: same-named
        # different types that DWARF and BTF pick differently ('struct slot'
        # of two hotplug drivers), and on pre-6.0 BTF the enums it cannot
        # describe (no signedness; 64-bit values truncated by old pahole).
        assert len(diffs) <= 40, f"{kernel}: {len(diffs)} differences, e.g. {diffs[:3]}"
        core = {
            "struct task_struct",
            "struct mm_struct",
            "struct module",
            "struct printk_ringbuffer",
            "struct printk_info",
            "struct rq",
            "struct pid",
            "struct uts_namespace",
            "enum pid_type",
            "struct inactive_task_frame",
            "struct pt_regs",
        }
        assert not [d for d in diffs if d[0] in core], (kernel, diffs)


def test_btf_in_dump_equals_vmlinux_section(corpus: list[dict[str, Any]]) -> None:
    """The BTF read from the dump's memory is the vmlinux's .BTF, byte for byte."""
    from kcrash.target import nodebug

    for kernel, e in _kernels(corpus).items():
        prog = drgn.Program(entry_platform(e))
        prog.set_core_dump(e["path"])
        setup = nodebug.attach(prog, e["release"], path=e["path"])
        assert setup.mode == "btf", (kernel, setup.lacks)
        assert nodebug.read_btf_blob(prog) == _vmlinux_btf(e["vmlinux"])


def test_btf_sizeof_offsetof_task_struct(corpus: list[dict[str, Any]]) -> None:
    for kernel, e in _kernels(corpus).items():
        bprog, _ = _btf_prog(_vmlinux_btf(e["vmlinux"]))
        dprog = _dwarf_prog(e["vmlinux"])
        for prog_type in ("struct task_struct", "struct pid", "struct module", "struct rq"):
            assert drgn.sizeof(bprog.type(prog_type)) == drgn.sizeof(dprog.type(prog_type))
        for member in ("pid", "comm", "tasks", "stack", "thread", "mm", "__state"):
            try:
                want = drgn.offsetof(dprog.type("struct task_struct"), member)
            except LookupError:
                continue  # __state is 'state' before 5.14
            assert drgn.offsetof(bprog.type("struct task_struct"), member) == want, (
                kernel,
                member,
            )


def _constants_finder(types: BtfTypes) -> Any:
    def find(
        prog: drgn.Program, name: str, flags: drgn.FindObjectFlags, filename: str | None
    ) -> drgn.Object | None:
        return types.constant(name) if flags & drgn.FindObjectFlags.CONSTANT else None

    return find


def test_globals_table_matches_dwarf(corpus: list[dict[str, Any]]) -> None:
    """Each table entry that holds for the kernel has DWARF's type and size
    (an incomplete array where DWARF knows the length is accepted)."""
    from kcrash.target import globals as kglobals

    for kernel, e in _kernels(corpus).items():
        version = kglobals.parse_version(e["release"])
        # The entry's platform: a table entry may depend on the architecture (hstates).
        bprog, types = _btf_prog(_vmlinux_btf(e["vmlinux"]), entry_platform(e))

        bprog.register_object_finder("consts", _constants_finder(types), enable_index=0)
        dprog = _dwarf_prog(e["vmlinux"])
        checked = 0
        for g in (*kglobals.GLOBALS, *kglobals.PERCPU):
            if not g.holds_for(version) or not g.holds_on(bprog):
                continue
            try:
                want = dprog.object(g.name).type_
            except LookupError:
                continue  # compiled out in this configuration
            got = kglobals.global_type(bprog, g.name, version)
            assert got is not None, g.name
            checked += 1
            if not got.is_complete() and got.unaliased_kind() == drgn.TypeKind.ARRAY:
                assert got.type.type_name() == want.type.type_name(), g.name
                continue
            assert (got.type_name(), drgn.sizeof(got)) == (
                want.type_name(),
                drgn.sizeof(want),
            ), (kernel, g.name)
        assert checked > 50, (kernel, checked)


def test_btf_index_is_fast(corpus: list[dict[str, Any]]) -> None:
    """The one eager pass (reported, generous bound): ~20 ms for 100k types."""
    import time

    for e in _kernels(corpus).values():
        blob = _vmlinux_btf(e["vmlinux"])
        t = time.perf_counter()
        b = Btf(blob)
        elapsed = time.perf_counter() - t
        assert b.count > 50_000
        assert elapsed < 0.5


# -- the index cache (~/.cache/kcrash/btf1) -----------------------------

_CACHE_NAMES = ("task_struct", "list_head", "pt_regs", "init_task", "jiffies", "no_such_name_x")


def _lookups(b: Btf) -> list[Any]:
    return [(n, b.ids_named(n), b.find(n, (B.STRUCT, B.FWD))) for n in _CACHE_NAMES]


def _idx_files(root: Any) -> list[Any]:
    return sorted((root / "kcrash" / "btf1").glob("*.idx"))


def test_btf_index_cache_is_reused_and_answers_alike(
    corpus: list[dict[str, Any]], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """First run saves the record index, the second adds the sorted strings, the third
    reads both; every run answers as the uncached reader does (real Debian BTF)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    blob = _vmlinux_btf(next(iter(_kernels(corpus).values()))["vmlinux"])
    want = _lookups(Btf(blob))
    assert _idx_files(tmp_path) == []  # the default reader writes nothing
    sizes = []
    for _ in range(3):
        b = Btf(blob, cache=True)
        assert _lookups(b) == want
        (f,) = _idx_files(tmp_path)
        sizes.append(f.stat().st_size)
    assert sizes[0] < sizes[1] == sizes[2]  # strings added once, then only read
    assert b._str_sorted is not None
    ref = Btf(blob)
    assert b._offsets == ref._offsets and b._name_offs == ref._name_offs


def _corruptions(raw: bytes) -> dict[str, bytes]:
    """Bad versions of a valid cache file, by what is wrong with them."""
    import hashlib

    body = raw[:-32]
    offs_at = 48
    swapped = bytearray(body)  # offsets 1 and 2 swapped, checksum recomputed (forged)
    swapped[offs_at + 4 : offs_at + 12] = (
        body[offs_at + 8 : offs_at + 12] + body[offs_at + 4 : offs_at + 8]
    )
    return {
        "empty": b"",
        "truncated": raw[: len(raw) // 2],
        "garbage": b"\xff" * len(raw),
        "one bit flipped": raw[:100] + bytes([raw[100] ^ 1]) + raw[101:],
        "other magic": b"KCBTFIX0" + raw[8:],
        "forged, offsets out of order": bytes(swapped) + hashlib.sha256(swapped).digest(),
    }


def test_btf_index_cache_bad_file_is_ignored_and_rebuilt(
    corpus: list[dict[str, Any]], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    blob = _vmlinux_btf(next(iter(_kernels(corpus).values()))["vmlinux"])
    want = _lookups(Btf(blob))
    Btf(blob, cache=True)
    Btf(blob, cache=True)  # now with the strings
    (f,) = _idx_files(tmp_path)
    good = f.read_bytes()
    for why, bad in _corruptions(good).items():
        f.write_bytes(bad)
        b = Btf(blob, cache=True)
        assert b._str_sorted is None, why  # not trusted: indexed afresh
        assert _lookups(b) == want, why
        assert f.read_bytes() != bad, why  # and rewritten
        f.write_bytes(good)
    f.chmod(0o000)  # unreadable (as root this may still read: either way no crash)
    try:
        assert _lookups(Btf(blob, cache=True)) == want
    finally:
        f.chmod(0o644)


def test_btf_index_cache_is_per_btf(
    corpus: list[dict[str, Any]], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another kernel's BTF (another build id) never takes this one's index, not even
    from a file renamed to its name."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    blob = _vmlinux_btf(next(iter(_kernels(corpus).values()))["vmlinux"])
    Btf(blob, cache=True)
    Btf(blob, cache=True)
    other = _sample()  # a different BTF
    (f,) = _idx_files(tmp_path)
    b = Btf(other, cache=True)
    assert b.count == Btf(other).count and b._str_sorted is None
    files = _idx_files(tmp_path)
    assert len(files) == 2
    (mine,) = [g for g in files if g != f]
    mine.write_bytes(f.read_bytes())  # the big kernel's index under the small one's name
    b = Btf(other, cache=True)
    assert b.count == Btf(other).count and b._str_sorted is None
    assert b.find("pair", (B.STRUCT,)) == 4


# -- hand-built BTF ------------------------------------------------------


class _Builder:
    """Tiny BTF writer for the unit tests."""

    def __init__(self, str_base: int = 0) -> None:
        self.strs = bytearray(b"\0") if not str_base else bytearray()
        self.str_base = str_base
        self.types = bytearray()

    def s(self, name: str) -> int:
        if not name:
            return 0
        off = self.str_base + len(self.strs)
        self.strs += name.encode() + b"\0"
        return off

    def rec(self, name: str, kind: int, vlen: int, st: int, kflag: bool = False) -> None:
        info = (kind << 24) | vlen | (1 << 31 if kflag else 0)
        self.types += struct.pack("<III", self.s(name), info, st)

    def words(self, *ws: int) -> None:
        self.types += struct.pack(f"<{len(ws)}I", *ws)

    def blob(self) -> bytes:
        hdr = struct.pack(
            "<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(self.types), len(self.types), len(self.strs)
        )
        return hdr + bytes(self.types) + bytes(self.strs)


def _sample() -> bytes:
    b = _Builder()
    b.rec("int", B.INT, 0, 4)  # 1
    b.words((B.INT_SIGNED << 24) | 32)
    b.rec("", B.PTR, 0, 1)  # 2: int *
    b.rec("", B.TYPE_TAG, 0, 1)  # 3: __user-ish tag over int
    b.rec("pair", B.STRUCT, 3, 8, kflag=True)  # 4
    b.words(b.s("a"), 1, 0)
    b.words(b.s("flag"), 1, (1 << 24) | 32)  # bit-field of 1 bit at bit 32
    b.words(b.s("rest"), 1, (31 << 24) | 33)
    b.rec("old_enum", B.ENUM, 2, 4)  # 5: pre-6.0, unflagged, signed by value
    b.words(b.s("OLD_NEG"), 0xFFFFFFFF)
    b.words(b.s("OLD_ONE"), 1)
    b.rec("tagged", B.DECL_TAG, 0, 4)  # 6
    b.words(0xFFFFFFFF)
    b.rec("pair_t", B.TYPEDEF, 0, 4)  # 7
    b.rec("", B.ARRAY, 0, 0)  # 8: int[3]
    b.words(1, 1, 3)
    b.rec("fwd", B.FWD, 0, 0, kflag=True)  # 9: union fwd
    b.rec("", B.FUNC_PROTO, 2, 1)  # 10: int (int, ...)
    b.words(b.s("x"), 1)
    b.words(0, 0)
    b.rec("f", B.FUNC, 1, 10)  # 11
    return b.blob()


def test_handbuilt_kinds() -> None:
    prog, types = _btf_prog(_sample())
    pair = prog.type("struct pair")
    assert drgn.sizeof(pair) == 8
    flag = pair.member("flag")
    assert (flag.bit_offset, flag.bit_field_size) == (32, 1)
    assert pair.member("rest").bit_field_size == 31
    assert prog.type("pair_t").type.type_name() == "struct pair"
    enum = prog.type("enum old_enum")
    assert [(e.name, e.value) for e in enum.enumerators] == [("OLD_NEG", -1), ("OLD_ONE", 1)]
    assert enum.type.is_signed
    assert types.constant("OLD_NEG").value_() == -1
    assert types.type(3).type_name() == "int"  # TYPE_TAG is transparent
    assert types.type(8).length == 3
    assert prog.type("union fwd").is_complete() is False
    fn = types.func_type("f")
    assert fn is not None and fn.is_variadic and fn.parameters[0].name == "x"


def test_handbuilt_split_btf() -> None:
    """Module BTF (5.11+) continues the base's ids and string offsets."""
    base = Btf(_sample())
    b = _Builder(str_base=len(base._strs))
    b.rec("modthing", B.STRUCT, 1, 4)  # id base.count
    b.words(b.s("v"), 1, 0)  # member of base type 'int' (id 1)
    split = Btf(b.blob(), base=base)
    tid = split.find("modthing", (B.STRUCT,))
    assert tid == base.count
    assert split.find("pair", (B.STRUCT,)) == 4
    prog = drgn.Program(drgn.host_platform)
    t = BtfTypes(prog, split).type(tid)
    assert t.member("v").type.type_name() == "int"


def test_enum_kind_flag_means_signed_since_6_0() -> None:
    b = _Builder()
    b.rec("e64", B.ENUM64, 1, 8, kflag=True)
    b.words(b.s("BIG"), 0xFFFFFFFF, 0xFFFFFFFF)
    b.rec("u", B.ENUM, 1, 4)  # unflagged in a new-style blob: unsigned
    b.words(b.s("U_MAX"), 0xFFFFFFFF)
    prog, types = _btf_prog(b.blob())
    assert types.btf.enum_flag_is_signedness
    assert prog.type("enum e64").enumerators[0].value == -1
    assert prog.type("enum u").enumerators[0].value == 0xFFFFFFFF


@pytest.mark.parametrize(
    "blob",
    [b"", b"\x9f\xeb" + b"\0" * 30, struct.pack("<HBBI", 0xEB9F, 2, 0, 24) + b"\0" * 16],
)
def test_bad_blobs(blob: bytes) -> None:
    with pytest.raises(BtfError):
        Btf(blob)
