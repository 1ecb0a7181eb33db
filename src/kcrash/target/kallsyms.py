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

import logging

from drgn import Program, SymbolIndex

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

    Raises LookupError when VMCOREINFO does not locate them.
    """
    from drgn.helpers.linux.kallsyms import load_vmlinux_kallsyms

    vmcoreinfo = prog["VMCOREINFO"].string_().decode("ascii", "replace")
    if not has_builtin_kallsyms(vmcoreinfo):
        raise LookupError(
            "VMCOREINFO does not locate kallsyms (kernel before 6.0 without the "
            "'vmcoreinfo: add kallsyms_num_syms symbol' backport)"
        )
    return load_vmlinux_kallsyms(prog)


def load_modules(prog: Program) -> SymbolIndex:
    """Symbols of every loaded module, from their in-memory ELF symtab.

    Needs ``struct module`` (BTF) and the ``modules`` list head.
    """
    from drgn.helpers.linux.kallsyms import load_module_kallsyms

    return load_module_kallsyms(prog)


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
    "has_builtin_kallsyms",
    "load_core",
    "load_modules",
    "symbol_address",
    "symbolize",
    "vmcoreinfo_symbols",
]
