"""Struct and union names for completion, from the kernel's BTF.

Why BTF: drgn 0.3.0 can look a type up by name but cannot list types, and
completion needs the list.  Kernels built with ``CONFIG_DEBUG_INFO_BTF``
(5.2+; every mainstream distribution kernel since about 2020) carry all their
type names in memory between ``__start_BTF`` and ``__stop_BTF``, so this
works on a dump with or without a vmlinux.  Only names are needed, so this
is a single pass over the record headers, not the full reader of
:mod:`kcrash.target.btf`.

Record layout (``include/uapi/linux/btf.h``): 12-byte header ``name_off,
info (vlen:16, kind:5 at bit 24), size_or_type`` followed by a per-kind
tail.  Kinds up to ENUM64 (19, Linux 6.0) are known; an unknown kind ends
the scan with the names found so far.
"""

from __future__ import annotations

import struct

import drgn

STRUCT, UNION = 4, 5
# Extra 32-bit words after the header: (fixed, per vlen entry), by kind 0..19.
_TAIL = {
    0: (0, 0), 1: (1, 0), 2: (0, 0), 3: (3, 0), 4: (0, 3), 5: (0, 3), 6: (0, 2),
    7: (0, 0), 8: (0, 0), 9: (0, 0), 10: (0, 0), 11: (0, 0), 12: (0, 0),
    13: (0, 2), 14: (1, 0), 15: (0, 3), 16: (0, 0), 17: (1, 0), 18: (0, 0),
    19: (0, 3),
}  # fmt: skip


def names_from_blob(data: bytes, kinds: tuple[int, ...] = (STRUCT, UNION)) -> set[str]:
    """Names of the records of ``kinds`` in one (base) BTF blob."""
    if len(data) < 24 or struct.unpack_from("<H", data)[0] != 0xEB9F:
        return set()
    hdr_len = struct.unpack_from("<I", data, 4)[0]
    type_off, type_len, str_off, str_len = struct.unpack_from("<IIII", data, 8)
    types = memoryview(data)[hdr_len + type_off : hdr_len + type_off + type_len]
    strs = bytes(data[hdr_len + str_off : hdr_len + str_off + str_len])
    words = types.cast("I") if len(types) % 4 == 0 else types[: len(types) & ~3].cast("I")
    out: set[str] = set()
    i, n = 0, len(words)
    while i + 3 <= n:
        name_off, info = words[i], words[i + 1]
        kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
        tail = _TAIL.get(kind)
        if tail is None:
            break
        if kind in kinds and name_off:
            end = strs.find(b"\0", name_off)
            out.add(strs[name_off:end].decode("ascii", "replace"))
        i += 3 + tail[0] + tail[1] * vlen
    return out


def kernel_struct_names(prog: drgn.Program) -> set[str]:
    """Struct/union names of the kernel's own BTF; empty if it has none."""
    try:
        start = prog.symbol("__start_BTF").address
        stop = prog.symbol("__stop_BTF").address
        if not 24 <= stop - start <= 64 << 20:
            return set()
        return names_from_blob(prog.read(start, stop - start))
    except (LookupError, drgn.FaultError, ValueError, OverflowError):
        return set()
