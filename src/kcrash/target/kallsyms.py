"""Kernel symbols from the dump itself (kallsyms), core kernel and modules.

Why: the symbol table is in every kernel's memory (``CONFIG_KALLSYMS``).
drgn 0.3.0 already decodes it (:mod:`drgn.helpers.linux.kallsyms`): the core
kernel's compressed tables located through VMCOREINFO (``SYMBOL(kallsyms_names)``
… exported since 6.0 by commit f09bddbd8661 "vmcoreinfo: add
kallsyms_num_syms symbol", and in backports), and each module's ELF
``symtab``/``strtab`` through ``struct module`` (which needs types: BTF).

Here: call those, and say plainly what is missing when the kernel is older
than the VMCOREINFO export (Debian 11's 5.10 lacks it).
"""

from __future__ import annotations

import json
import logging
import os
import struct
from collections.abc import Iterator
from pathlib import Path

from drgn import Object, Program, SymbolIndex

log = logging.getLogger(__name__)

REQUIRED_VMCOREINFO = (
    "kallsyms_names",
    "kallsyms_token_table",
    "kallsyms_token_index",
    "kallsyms_num_syms",
)


def vmcoreinfo_symbols(vmcoreinfo: str) -> dict[str, int]:
    """``SYMBOL(name)=hex`` entries of VMCOREINFO."""
    out: dict[str, int] = {}
    for line in vmcoreinfo.splitlines():
        if line.startswith("SYMBOL(") and ")=" in line:
            name, _, value = line[7:].partition(")=")
            try:
                out[name] = int(value, 16)
            except ValueError:
                continue
    return out


def has_builtin_kallsyms(vmcoreinfo: str) -> bool:
    """Whether VMCOREINFO locates the core kernel's kallsyms tables (6.0+)."""
    syms = vmcoreinfo_symbols(vmcoreinfo)
    return all(s in syms for s in REQUIRED_VMCOREINFO) and (
        "kallsyms_offsets" in syms or "kallsyms_addresses" in syms
    )


def load_core(prog: Program) -> SymbolIndex:
    """The core kernel's symbols (drgn's decoder over the in-memory tables).

    The tables are located through VMCOREINFO (6.0+), else found by
    :func:`locate_tables` (older kernels, e.g. Debian 11's 5.10).  Raises
    LookupError when neither works.
    """
    from drgn.helpers.linux.kallsyms import load_vmlinux_kallsyms

    vmcoreinfo = prog["VMCOREINFO"].string_().decode("ascii", "replace")
    if has_builtin_kallsyms(vmcoreinfo):
        return load_vmlinux_kallsyms(prog)
    found = locate_tables(prog, vmcoreinfo)
    if found is None:
        raise LookupError(
            "VMCOREINFO does not locate kallsyms (kernel before 6.0 without the "
            "'vmcoreinfo: add kallsyms_num_syms symbol' backport) and the tables "
            "were not found in the kernel image"
        )
    return found


# "0" … "9" are single-character tokens at their ASCII codes in
# kallsyms_token_table (digits occur in symbol names, so scripts/kallsyms.c
# keeps them as themselves): 20 bytes that find the table.
_DIGIT_TOKENS = b"".join(bytes([c, 0]) for c in range(0x30, 0x3A))
_SEARCH_SPAN = 96 << 20


def locate_tables(prog: Program, vmcoreinfo: str) -> SymbolIndex | None:
    """Find the kallsyms tables in the kernel image without VMCOREINFO help.

    Why: before 6.0 (f09bddbd8661) VMCOREINFO does not export them, yet
    they are in memory.  The layout written by ``scripts/kallsyms.c`` with
    ``CONFIG_KALLSYMS_BASE_RELATIVE`` (x86-64 since 4.6, unchanged up to
    6.1) is, 8-byte aligned each: ``kallsyms_offsets`` (s32 × N),
    ``kallsyms_relative_base`` (u64), ``kallsyms_num_syms`` (u32 N),
    ``kallsyms_names``, ``kallsyms_markers``, ``kallsyms_token_table`` (256
    NUL-terminated tokens), ``kallsyms_token_index`` (u16 × 256). Later
    kernels (Debian 13's 6.12) write ``kallsyms_num_syms``, ``kallsyms_names``,
    ``kallsyms_markers``, the token table and index, then ``kallsyms_offsets``
    and ``kallsyms_relative_base`` *above* the token index: both orders are
    tried.

    1. find the digit tokens ("0\\0" … "9\\0") in the image (below
       ``init_uts_ns``, 4 MiB reads), walk back 48 tokens to the table's
       start and check that the token index after the table agrees;
    2. ``kallsyms_relative_base`` is the u64 ``_text`` (== ``_stext`` on
       x86-64) below the token table; N follows it, names 8 bytes later,
       offsets end right below it;
    3. decode with drgn's own decoder and accept the result only if
       ``init_uts_ns`` and ``_stext`` land where VMCOREINFO says.

    The places found are cached by build id (``~/.cache/kcrash/kallsyms``).
    """
    syms = vmcoreinfo_symbols(vmcoreinfo)
    stext = syms.get("_stext")
    uts = syms.get("init_uts_ns")
    if stext is None or uts is None:
        return None
    build_id = next((ln[9:] for ln in vmcoreinfo.splitlines() if ln.startswith("BUILD-ID=")), None)
    cached = cache_load(build_id, stext)
    if cached is not None:
        index = _decode(prog, cached, stext, uts)
        if index is not None:
            return index
    for hit in _digit_token_hits(prog, stext, uts):
        for tables in _tables_at_digit_tokens(prog, hit, stext):
            index = _decode(prog, tables, stext, uts)
            if index is not None:
                cache_store(build_id, stext, tables)
                return index
    return None


def _decode(prog: Program, tables: dict[str, int], stext: int, uts: int) -> SymbolIndex | None:
    """drgn's decoder over candidate tables, kept only if ``init_uts_ns`` lands
    where VMCOREINFO says."""
    from .. import drgn_private

    try:
        index = drgn_private.load_builtin_kallsyms(
            prog,
            tables["names"],
            tables["token_table"],
            tables["token_index"],
            tables["num_syms"],
            tables["offsets"],
            tables["relative_base"],
            0,
            stext,
        )
    except Exception:
        return None
    found = {s.name: s.address for s in index(prog, "init_uts_ns", None, False)}
    return index if found.get("init_uts_ns") == uts else None


def _cache_path(build_id: str | None, kind: str) -> Path | None:
    if not build_id or not all(c in "0123456789abcdef" for c in build_id):
        return None
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "kcrash" / kind / f"{build_id}.json"


def cache_load(build_id: str | None, stext: int, kind: str = "kallsyms") -> dict[str, int] | None:
    """Addresses found before for this build (relative to ``_stext``, so
    they hold under any KASLR offset): skips the ~0.2 s scan.  ``kind`` names
    what they are (a directory of ``~/.cache/kcrash``)."""
    path = _cache_path(build_id, kind)
    try:
        if path is None or not path.exists():
            return None
        rel = json.loads(path.read_text())
        return {k: stext + int(v) for k, v in rel.items()}
    except (OSError, ValueError, TypeError, AttributeError):
        return None


def cache_store(
    build_id: str | None, stext: int, tables: dict[str, int], kind: str = "kallsyms"
) -> None:
    path = _cache_path(build_id, kind)
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # One temp name per process: two analyses of the same build (``batch --jobs``, test
        # workers) would otherwise write into each other's half-written file.
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps({k: v - stext for k, v in tables.items()}))
        tmp.replace(path)
    except OSError:
        pass  # a read-only home must not stop the analysis


def _read_sparse(prog: Program, addr: int, size: int) -> bytes:
    """Read a range, zero-filling pages the dump left out.

    makedumpfile ``-d 1`` and up drop zero-filled pages, even inside the
    kernel image; one missing page must not hide the rest of a 4 MiB read.
    """
    try:
        return prog.read(addr, size)
    except Exception:
        pass
    out = bytearray()
    pos = addr
    end = addr + size
    while pos < end:
        n = min(end, (pos | 4095) + 1) - pos
        try:
            out += prog.read(pos, n)
        except Exception:
            out += bytes(n)
        pos += n
    return bytes(out)


def _digit_token_hits(prog: Program, stext: int, data: int):  # type: ignore[no-untyped-def]
    """Addresses of "0\\0…9\\0" in the image, from ``data`` (``init_uts_ns``,
    in .data, just above .rodata where the tables are) downwards, 4 MiB at
    a time: on Debian 6.1 the first chunk or two hold the token table."""
    chunk = 4 << 20
    end = min(data, stext + _SEARCH_SPAN)
    while end > stext:
        start = max(stext, end - chunk)
        buf = _read_sparse(prog, start, end - start + len(_DIGIT_TOKENS))
        i = buf.rfind(_DIGIT_TOKENS)
        while i >= 0:
            yield start + i
            i = buf.rfind(_DIGIT_TOKENS, 0, i)
        end = start


def _tables_at_digit_tokens(prog: Program, hit: int, stext: int) -> list[dict[str, int]]:
    """Candidate table addresses around a "0\\0…9\\0" hit (both layouts), maybe none."""
    try:
        before = prog.read(hit - 4096, 4096)
    except Exception:
        return []
    # Walk back over tokens 0x2f … 0x00 (each NUL-terminated, non-empty).
    p = len(before)
    for _ in range(0x30):
        q = before.rfind(b"\0", 0, p - 1)
        if q < 0:
            return []
        p = q + 1
    token_table = hit - (len(before) - p)
    if token_table % 4:
        return []
    try:
        tokens = prog.read(token_table, 8192)
    except Exception:
        return []
    offs = []
    pos = 0
    for _ in range(256):
        offs.append(pos)
        end = tokens.find(b"\0", pos)
        if end <= pos:
            return []
        pos = end + 1
    token_index = token_table + ((pos + 7) & ~7)
    try:
        index = struct.unpack("<256H", prog.read(token_index, 512))
    except Exception:
        return []
    if list(index) != offs:
        return []
    out = []
    # Up to 6.1: kallsyms_relative_base, the u64 _stext below the token table
    # (offsets and names of ~100k symbols take ~1.6 MB: look 2 MB down, then 8).
    for window in (2 << 20, 8 << 20):
        found = _relative_base_below(prog, token_table, window, stext)
        if found is not None:
            base, _n, offsets = found
            out.append(
                {
                    "names": base + 16,
                    "token_table": token_table,
                    "token_index": token_index,
                    "num_syms": base + 8,
                    "offsets": offsets,
                    "relative_base": base,
                }
            )
            break
    out.extend(_tables_above_token_index(prog, token_table, token_index, stext))
    return out


def _tables_above_token_index(
    prog: Program, token_table: int, token_index: int, stext: int
) -> list[dict[str, int]]:
    """The later layout (6.12): ``kallsyms_offsets`` right after the token index (s32 × N),
    then ``kallsyms_relative_base`` (u64 ``_stext``) 8-aligned; ``kallsyms_num_syms`` (N)
    8-aligned somewhere below the token table, ``kallsyms_names`` 8 bytes after it."""
    offsets = (token_index + 512 + 7) & ~7
    window = 8 << 20
    above = _read_sparse(prog, offsets, window)
    below = _read_sparse(prog, token_table - window, window)
    needle = struct.pack("<Q", stext)
    out = []
    i = above.find(needle, 4000)  # at least 1000 symbols
    while i >= 0 and len(out) < 4:
        if i % 8 == 0:
            for n in (i // 4, i // 4 - 1):
                if not 1000 < n < 2_000_000 or (4 * n + 7) & ~7 != i:
                    continue
                j = below.rfind(struct.pack("<I", n))
                while j >= 0 and (token_table - window + j) % 8:
                    j = below.rfind(struct.pack("<I", n), 0, j)
                if j >= 0:
                    num_syms = token_table - window + j
                    out.append(
                        {
                            "names": num_syms + 8,
                            "token_table": token_table,
                            "token_index": token_index,
                            "num_syms": num_syms,
                            "offsets": offsets,
                            "relative_base": offsets + i,
                        }
                    )
        i = above.find(needle, i + 1)
    return out


def _relative_base_below(
    prog: Program, token_table: int, window: int, stext: int
) -> tuple[int, int, int] | None:
    below = _read_sparse(prog, token_table - window, window)
    start = token_table - window
    needle = struct.pack("<Q", stext)
    i = below.rfind(needle)
    while i >= 0:
        if (start + i) % 8 == 0 and i + 16 < len(below):
            n = struct.unpack_from("<I", below, i + 8)[0]
            base = start + i
            offsets = base - ((4 * n + 7) & ~7)
            if 1000 < n < 2_000_000 and offsets >= start:
                return base, n, offsets
        i = below.rfind(needle, 0, i)
    return None


def load_modules(prog: Program) -> SymbolIndex:
    """Symbols of every loaded module, from their in-memory ELF symtab.

    Needs ``struct module`` (BTF) and the ``modules`` list head.
    """
    from drgn.helpers.linux.kallsyms import load_module_kallsyms

    check_module_list(prog)
    return load_module_kallsyms(prog)


#: More modules than any kernel loads (the list of a damaged dump may never end).
MAX_MODULES = 65536


def modules(prog: Program) -> Iterator[Object]:
    """drgn's ``for_each_module``, bounded: raise ValueError when the list loops.

    drgn's helper follows the list until it is back at its head: in a damaged
    dump whose list loops elsewhere it never returns (``kcrash mod``, ``bt`` and
    every open in BTF mode hung).  kcrash walks the module list only through this.
    """
    from drgn.helpers.linux.module import for_each_module

    seen: set[int] = set()
    for mod in for_each_module(prog):
        addr = mod.value_()
        if addr in seen or len(seen) >= MAX_MODULES:
            raise ValueError(f"the module list loops back to {addr:#x} (damaged dump)")
        seen.add(addr)
        yield mod


def check_module_list(prog: Program) -> int:
    """Walk the module list once (before drgn's helpers, which walk it unbounded)."""
    return sum(1 for _ in modules(prog))


def symbolize(prog: Program, pc: int, return_address: bool = False) -> tuple[str | None, int, int]:
    """``(name, offset, size)`` of a code address, as ``func+off/size``.

    ``return_address`` looks up ``pc - 1`` so that a call which is the last
    instruction of a function is attributed to that function.
    """
    try:
        sym = prog.symbol(pc - 1 if return_address else pc)
    except LookupError:
        return None, 0, 0
    return sym.name, pc - sym.address, sym.size


def symbol_address(prog: Program, name: str) -> int | None:
    """Address of a kallsyms symbol, or None."""
    try:
        return prog.symbol(name).address
    except LookupError:
        return None


__all__ = [
    "check_module_list",
    "has_builtin_kallsyms",
    "load_core",
    "load_modules",
    "locate_tables",
    "modules",
    "symbol_address",
    "symbolize",
    "vmcoreinfo_symbols",
]
