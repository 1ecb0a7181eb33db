"""Frame names as kallsyms gives them, also when the vmlinux is loaded.

Why: the kernel's own traces, crash, and kcrash without debuginfo name an
address by the nearest symbol at or below it (kallsyms), so a system call's
bottom frame is ``entry_SYSCALL_64_after_hwframe+0x6e/0xd8`` and an idle
task's is ``secondary_startup_64_no_verify``.  drgn with a vmlinux names it
by the ELF symbol whose *size* covers it (``entry_SYSCALL_64``), because the
labels inside assembly code (``SYM_INNER_LABEL`` in arch/x86/entry/entry_64.S
and head_64.S, since v5.5) are symbols of size 0.  With this, ``bt`` and the
report give one answer with and without debuginfo, and crash's.

Finding those labels means walking the vmlinux's ~130,000 symbols (0.1 s):
done once per build and cached by build id, like the kallsyms places.  The
same walk keeps where every core-kernel symbol starts: drgn 0.3.0 looks an
address up in the ELF symbol table by a linear scan (~2 ms a lookup), so
probing the 64 bytes of padding after a function one address at a time cost
0.1-0.3 s per report; with the starts known only a symbol's own address is
looked up.
"""

from __future__ import annotations

import bisect
from array import array

import drgn

from .kallsyms import cache_load, cache_path, cache_store

_KEY = "kcrash.inner_labels"
#: The cache's directory under ~/.cache/kcrash: "labels2" since the walk also keeps the
#: name kallsyms gives an address several functions share (older caches lack them).
_KIND = "labels2"


def _labels(prog: drgn.Program) -> tuple[list[int], list[str], array]:
    """Sorted (addresses, names) of the size-0 code labels of the core kernel, and
    the sorted start addresses of its symbols from ``_stext`` to the end of the image
    (module symbols are left out: their places differ from dump to dump)."""
    got = prog.cache.get(_KEY)
    if got is not None:
        return got
    try:
        stext = prog.symbol("_stext").address
        build_id = prog.main_module().build_id
        bid = build_id.hex() if build_id else None
    except (LookupError, ValueError, AttributeError):
        stext, bid = 0, None
    found = cache_load(bid, stext, kind=_KIND)
    starts = _load_starts(bid, stext) if found is not None else None
    if found is None or starts is None:
        found, starts = _walk(prog, stext, _image_end(prog))
        cache_store(bid, stext, found, kind=_KIND)
        _store_starts(bid, stext, starts)
    pairs = sorted((a, n) for n, a in found.items())
    got = ([a for a, _ in pairs], [n for _, n in pairs], starts)
    prog.cache[_KEY] = got
    return got


def _image_end(prog: drgn.Program) -> int:
    """Where the core kernel's image ends (0 when drgn does not say)."""
    try:
        return max((hi for _, hi in prog.main_module().address_ranges), default=0)
    except (LookupError, ValueError, AttributeError):
        return 0


def _walk(prog: drgn.Program, stext: int, image_end: int) -> tuple[dict[str, int], array]:
    """One pass over the core kernel's symbols: its code labels and where each symbol
    starts.  Module symbols are left out: their places differ from dump to dump.

    Only a label inside a sized symbol can rename a frame or end a symbol early, so
    only those are kept; and ``Symbol.kind`` (an enum built on each access, ~3 µs, 0.15-
    0.3 s over all ~45,000 size-0 symbols, mostly ``__ksymtab_*`` data) is read only
    for them.
    """
    spans: list[tuple[int, int]] = []
    zero: list[drgn.Symbol] = []
    starts: list[int] = []
    sized: dict[int, list[str]] = {}
    for s in prog.symbols():
        a = s.address
        if a < stext or a >= image_end:
            continue
        starts.append(a)
        size = s.size
        if size:
            spans.append((a, a + size))
            sized.setdefault(a, []).append(s.name)
        else:
            zero.append(s)
    spans.sort()
    span_starts = [lo for lo, _ in spans]
    reach: list[int] = []  # reach[i]: the furthest end of spans[0..i]
    far = 0
    for _, hi in spans:
        far = max(far, hi)
        reach.append(far)
    obj = drgn.SymbolKind.OBJECT
    found: dict[str, int] = {}
    for s in zero:
        a = s.address
        i = bisect.bisect_right(span_starts, a) - 1
        if i < 0 or reach[i] <= a:
            continue  # inside no sized symbol: never consulted
        name = s.name
        if not name.startswith(".") and s.kind != obj:  # assembler-local: not in kallsyms
            found[name] = a
    # Functions sharing one address (a syscall's __x64_sys_sync, __ia32_sys_sync and
    # __do_sys_sync): drgn's ELF lookup returns one of them, kallsyms -- and crash, and
    # kcrash without debuginfo -- the last by name.  Kept as a label at that address, the
    # last by name wins below as it does for the labels (one name in both modes).
    for a, names in sized.items():
        named = [n for n in names if not n.startswith(".")]
        if len(named) > 1:
            found[max(named)] = a
    return found, array("Q", sorted(set(starts)))


def _load_starts(bid: str | None, stext: int) -> array | None:
    path = cache_path(bid, _KIND, ".starts")
    try:
        if path is None or not path.exists():
            return None
        rel = array("Q")
        rel.frombytes(path.read_bytes())
    except (OSError, ValueError):
        return None
    return array("Q", (stext + r for r in rel))


def _store_starts(bid: str | None, stext: int, starts: array) -> None:
    path = cache_path(bid, _KIND, ".starts")
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp-starts")
        tmp.write_bytes(array("Q", (a - stext for a in starts)).tobytes())
        tmp.replace(path)
    except OSError:
        pass  # a read-only home must not stop the analysis


_SYMBOLS = "kcrash.symbols"


def symbol(prog: drgn.Program, key: int | str) -> drgn.Symbol:
    """``prog.symbol(key)``, remembered for this Program.

    Why: drgn 0.3.0 finds an address (and a name) in a vmlinux's ELF symbol table by
    a linear scan of its ~130,000 symbols, 1-4 ms a lookup, and one report asks for the
    same frames' symbols from several steps.  :meth:`Target.load_module_debuginfo`
    forgets them (:func:`forget_symbols`): a module's debug file can change the answer.
    """
    cache = prog.cache.setdefault(_SYMBOLS, {})
    got = cache.get(key)
    if got is None:
        try:
            sym = prog.symbol(key)
            got = (sym.name, sym.address, sym.size, sym.binding, sym.kind)
        except LookupError as e:
            got = str(e)
        cache[key] = got
    # Neither drgn's Symbol nor the exception is kept in prog.cache: a Symbol of the
    # vmlinux holds its Program (the owner of the name) without telling Python's garbage
    # collector, and an exception's traceback reaches StackTraces that do the same -- a
    # cycle through prog.cache that is never freed (every analyzed dump stayed mapped:
    # 45 MB and 3 descriptors each, 20 GB in a test worker).  A Symbol built from the
    # values owns only its name.
    if isinstance(got, str):
        raise LookupError(got)
    return drgn.Symbol(*got)


def forget_symbols(prog: drgn.Program) -> None:
    """Drop what :func:`symbol` and :func:`frame_label` remembered (new debug files were
    loaded)."""
    prog.cache.pop(_SYMBOLS, None)
    prog.cache.pop(_FRAME_LABELS, None)


_FRAME_LABELS = "kcrash.frame_labels"


def frame_label(prog: drgn.Program, pc: int) -> tuple[str, int, int]:
    """:func:`kallsyms_name` of ``pc``'s :func:`symbol`, remembered for this Program.

    Why: the tasks of a big machine sleep in the same few functions (6,000 threads of
    crowd-hung-task in one ``__mutex_lock`` path), so ``foreach bt`` names the same return
    addresses thousands of times; each naming costs a few symbol lookups and bisections
    (~25 µs, a quarter of a sleeping task's whole stack). Only values are kept (see
    :func:`symbol`)."""
    cache = prog.cache.setdefault(_FRAME_LABELS, {})
    got = cache.get(pc)
    if got is None:
        try:
            got = kallsyms_name(prog, symbol(prog, pc), pc)
        except LookupError as e:
            got = str(e)
        cache[pc] = got
    if isinstance(got, str):
        raise LookupError(got)
    return got


def _has_vmlinux(prog: drgn.Program) -> bool:
    try:
        return prog.main_module().debug_file_path is not None
    except (LookupError, ValueError, AttributeError):
        return False


def kallsyms_name(prog: drgn.Program, sym: drgn.Symbol, pc: int) -> tuple[str, int, int]:
    """(name, address, size) of ``pc`` as kallsyms names it, given drgn's ``sym``.

    The label nearest below ``pc`` inside ``sym`` wins, also one at ``sym``'s
    own address (5.10's ``asm_call_on_stack`` starts with the labels
    ``asm_call_irq_on_stack`` and ``asm_call_sysvec_on_stack``: of such
    equals the last by name, the one crash and drgn's kallsyms pick; the
    kernel's own trace may print the other).  The size is kallsyms's: up to
    the next symbol,
    alignment padding included (the kernel prints ``+0x5/0x10`` for a
    13-byte function followed by 3 bytes of padding), where the ELF symbol's
    size stops at its last instruction.
    """
    name, addr, end = sym.name, sym.address, sym.address + sym.size
    if sym.size and _has_vmlinux(prog):  # without it symbols come from kallsyms already
        addrs, names, starts = _labels(prog)
        i = bisect.bisect_right(addrs, pc) - 1
        if i >= 0 and sym.address <= addrs[i] < end:
            name, addr = names[i], addrs[i]
        # kallsyms ends a symbol at the next label, also when pc lies before the first
        # label inside the ELF symbol (asm_exc_nmi+0xb7, before nested_nmi at +0x100).
        j = bisect.bisect_right(addrs, addr)
        if j < len(addrs) and addrs[j] < end:
            return name, addr, addrs[j] - addr
        return name, addr, _next_symbol(prog, end, starts) - addr
    return name, addr, _next_symbol(prog, end) - addr


#: Functions are aligned to 16 bytes (x86-64 -falign-functions), some to 64.
_MAX_PADDING = 64


def _next_symbol(prog: drgn.Program, end: int, starts: array | None = None) -> int:
    """Where the next symbol starts, at most :data:`_MAX_PADDING` bytes after ``end``.

    With ``starts`` (the core kernel's symbol addresses) only the addresses where
    some symbol starts are asked: the answer is the same, without the misses."""
    probe: range | list[int] = range(end, end + _MAX_PADDING)
    if starts and starts[0] <= end and end + _MAX_PADDING <= starts[-1]:
        lo = bisect.bisect_left(starts, end)
        hi = bisect.bisect_left(starts, end + _MAX_PADDING)
        probe = list(starts[lo:hi])
    for a in probe:
        try:
            if symbol(prog, a).address == a:
                return a
        except LookupError:
            continue
    return end
