"""Loaded kernel modules (crash's ``mod``), with their taint letters.

Works on every kernel drgn supports: :func:`for_each_module` walks the
``modules`` list, and :func:`module_address_regions` handles both the
pre-6.4 ``core_layout`` and the 6.4+ ``mem[]`` layouts.
"""

from __future__ import annotations

import drgn
from drgn.helpers.linux.module import module_address_regions, module_taints

from ..model import ModuleInfo
from ..target.kallsyms import modules

#: The taints a module carries and their letters (kernel/panic.c taint_flags[] rows
#: with ``module = true``, v4.x-v6.x): bit -> letter, in bit order as module_flags()
#: prints them. For dumps where taint_flags itself is not found (no data symbols).
MODULE_TAINTS: tuple[tuple[int, str], ...] = (
    (0, "P"),  # TAINT_PROPRIETARY_MODULE
    (1, "F"),  # TAINT_FORCED_MODULE
    (10, "C"),  # TAINT_CRAP (staging)
    (12, "O"),  # TAINT_OOT_MODULE
    (13, "E"),  # TAINT_UNSIGNED_MODULE
    (15, "K"),  # TAINT_LIVEPATCH
    (16, "X"),  # TAINT_AUX
    (17, "T"),  # TAINT_RANDSTRUCT
)


def _module_taint_letters(mod: drgn.Object) -> str:
    try:
        bits = mod.taints.value_()
    except (AttributeError, drgn.FaultError):
        return ""
    return "".join(letter for bit, letter in MODULE_TAINTS if bits & (1 << bit))


def _why(e: BaseException) -> str:
    from .system import read_error

    return read_error(e)


def loaded_modules(prog: drgn.Program, errors: list[str] | None = None) -> list[ModuleInfo]:
    """Modules as crash's ``mod`` lists them: sorted by base (text) address.

    With ``errors``, a module that cannot be read (or a list cut short) is noted
    there and the rest is listed: a damaged dump still shows what it can.
    """
    out = []
    debug_files: dict[str, str] = {}
    try:
        for m, _ in prog.loaded_modules():
            if m.debug_file_path and not isinstance(m, drgn.MainModule):
                debug_files[m.name] = m.debug_file_path
    except Exception:
        pass

    def one(mod: drgn.Object) -> ModuleInfo:
        name = mod.name.string_().decode("utf-8", "replace")
        regions = module_address_regions(mod)
        base = min((r[0] for r in regions if r[1]), default=None)
        # Since Linux v6.4 (struct module_memory) crash's base is mem[MOD_TEXT].base (MOD_TEXT
        # is 0); the module's other regions are allocated apart and may lie below its text.
        if mod.type_.type.has_member("mem") and mod.mem[0].size.value_():
            base = mod.mem[0].base.value_()
        size = sum(r[1] for r in regions)
        try:
            taints = module_taints(mod)
        except Exception:  # no taint_flags[] (kallsyms of code only): the bits themselves
            taints = _module_taint_letters(mod)
        return ModuleInfo(name, base, size, taints.strip(), debug_files.get(name), mod.value_())

    read = (drgn.FaultError, LookupError, ValueError)
    try:
        for mod in modules(prog):  # bounded: a damaged list that loops ends in ValueError
            try:
                out.append(one(mod))
            except read as e:
                if errors is None:
                    raise
                errors.append(f"module at {mod.value_():#x}: {_why(e)}")
    except read as e:
        if errors is None:
            raise
        errors.append(f"the module list is cut short: {_why(e)}")
    # crash lists modules by base address. Before Linux v6.4 a module's text, data and its
    # struct module shared one allocation, so sorting by struct module address gave the
    # same order; since v6.4 (struct module_memory) they are apart, and only the text
    # base keeps crash's order.
    out.sort(key=lambda m: (m.base is None, m.base or 0, m.address or 0))
    return out
