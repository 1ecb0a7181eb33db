"""A drgn Program over a vmlinux and module debug files alone, with no dump.

For oops text (no vmcore) we still want ``func+0x1a/0x40 [mod]`` turned into
``file:line``, as the kernel's ``decode_stacktrace.sh`` does.  drgn can load
DWARF without a core: the vmlinux as an *extra module* at its link addresses,
and each module's ``.ko`` as a *relocatable module* whose allocated sections
we lay out at made-up addresses.  Symbol + offset lookups then resolve
within that private address space, which is all a source lookup needs.
"""

from __future__ import annotations

import os

import drgn
from elftools.elf.elffile import ELFFile

from ..errors import DebuginfoMismatchError, KcrashError
from .debuginfo_search import elf_release
from .open import X86_64

_SHF_ALLOC = 0x2
_MODULE_AREA = 0xFFFFFFFFC0000000


def _find_ko(name: str, dirs: list[str]) -> str | None:
    want = name.replace("-", "_")
    for d in dirs:
        for root, _dirs, files in os.walk(d):
            for f in files:
                if f.endswith(".ko") and f[:-3].replace("-", "_") == want:
                    return os.path.join(root, f)
    return None


def open_symbolizer(
    vmlinux: str, release: str | None, modules: list[str], module_dirs: list[str]
) -> tuple[drgn.Program, list[str]]:
    """The Program, and the modules whose debug files were not found."""
    if not os.path.isfile(vmlinux):
        raise KcrashError(f"{vmlinux}: no such file")
    theirs = elf_release(vmlinux)
    if release and theirs and theirs != release:
        raise DebuginfoMismatchError(
            f"{vmlinux} is for {theirs}, but the log is from {release}: source lines would be wrong"
        )
    prog = drgn.Program(X86_64)
    main = prog.extra_module("vmlinux", 0, create=True)
    main.address_range = (0xFFFFFFFF80000000, _MODULE_AREA)
    main.try_file(vmlinux, force=True)
    if not main.debug_file_path:
        raise KcrashError(f"{vmlinux}: no DWARF debuginfo in it")
    missing = []
    base = _MODULE_AREA
    for name in modules:
        ko = _find_ko(name, [os.path.dirname(os.path.abspath(vmlinux)), *module_dirs])
        if ko is None:
            missing.append(name)
            continue
        mod = prog.relocatable_module(name, base, create=True)
        addr = base
        with open(ko, "rb") as f:
            for sec in ELFFile(f).iter_sections():
                if sec["sh_flags"] & _SHF_ALLOC and sec["sh_size"]:
                    mod.section_addresses[sec.name] = addr
                    addr += (sec["sh_size"] + 4095) // 4096 * 4096
        mod.address_range = (base, addr)
        mod.try_file(ko, force=True)
        base = addr + 4096
    return prog, missing
