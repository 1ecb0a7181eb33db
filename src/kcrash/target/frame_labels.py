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
done once per build and cached by build id, like the kallsyms places.
"""

from __future__ import annotations

import bisect

import drgn

from .kallsyms import cache_load, cache_store

_KEY = "kcrash.inner_labels"


def _labels(prog: drgn.Program) -> tuple[list[int], list[str]]:
    """Sorted (addresses, names) of the size-0 code labels of the core kernel."""
    got = prog.cache.get(_KEY)
    if got is not None:
        return got
    try:
        stext = prog.symbol("_stext").address
        build_id = prog.main_module().build_id
        bid = build_id.hex() if build_id else None
    except (LookupError, ValueError, AttributeError):
        stext, bid = 0, None
    found = cache_load(bid, stext, kind="labels")
    if found is None:
        found = {
            s.name: s.address
            for s in prog.symbols()
            if not s.size
            and s.kind != drgn.SymbolKind.OBJECT
            and not s.name.startswith(".")  # assembler-local: not in kallsyms
            and s.address >= stext
        }
        cache_store(bid, stext, found, kind="labels")
    pairs = sorted((a, n) for n, a in found.items())
    got = ([a for a, _ in pairs], [n for _, n in pairs])
    prog.cache[_KEY] = got
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
        addrs, names = _labels(prog)
        i = bisect.bisect_right(addrs, pc) - 1
        if i >= 0 and sym.address <= addrs[i] < end:
            name, addr = names[i], addrs[i]
        # kallsyms ends a symbol at the next label, also when pc lies before the first
        # label inside the ELF symbol (asm_exc_nmi+0xb7, before nested_nmi at +0x100).
        j = bisect.bisect_right(addrs, addr)
        if j < len(addrs) and addrs[j] < end:
            return name, addr, addrs[j] - addr
    return name, addr, _next_symbol(prog, end) - addr


#: Functions are aligned to 16 bytes (x86-64 -falign-functions), some to 64.
_MAX_PADDING = 64


_STARTS = "kcrash.symbol_starts"


def text_symbol_starts(prog: drgn.Program) -> tuple[int, int, list[int]]:
    """(``_stext``, ``_etext``, sorted start addresses of every core-kernel text symbol).

    Why: a symbol lookup that misses costs 1-8 ms in drgn (every symbol finder is asked,
    the modules' kallsyms last), and probing up to 64 padding bytes after each frame's
    function cost 1.7-2.5 s per hung machine's stacks; one pass over the vmlinux's
    symbols (0.1 s, cached by build id like the labels) answers every frame."""
    got = prog.cache.get(_STARTS)
    if got is not None:
        return got
    try:
        stext = prog.symbol("_stext").address
        etext = prog.symbol("_etext").address
        build_id = prog.main_module().build_id
        bid = build_id.hex() if build_id else None
    except (LookupError, ValueError, AttributeError):
        got = (0, 0, [])
        prog.cache[_STARTS] = got
        return got
    found = cache_load(bid, stext, kind="starts")
    if found is None:
        found = {
            f"{s.address - stext:x}": s.address
            for s in prog.symbols()
            if stext <= s.address < etext
        }
        cache_store(bid, stext, found, kind="starts")
    got = (stext, etext, sorted(found.values()))
    prog.cache[_STARTS] = got
    return got


def _next_symbol(prog: drgn.Program, end: int) -> int:
    """Where the next symbol starts, at most :data:`_MAX_PADDING` bytes after ``end``."""
    stext, etext, starts = text_symbol_starts(prog)
    if starts and stext <= end < etext:  # the core kernel's text: one bisection
        i = bisect.bisect_left(starts, end)
        return starts[i] if i < len(starts) and starts[i] < end + _MAX_PADDING else end
    for a in range(end, end + _MAX_PADDING):
        try:
            if prog.symbol(a).address == a:
                return a
        except LookupError:
            continue
    return end
