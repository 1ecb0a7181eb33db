"""Open what the user has into one :class:`Target`: a drgn Program plus its mode.

The mode says what the facts can rely on:

- ``dwarf``: a matching vmlinux (and module debug files where found);
- ``btf``: no vmlinux; types from the BTF in the dump, symbols from kallsyms,
  stacks from the ORC tables in memory (:mod:`kcrash.target.nodebug`);
- ``kallsyms``: neither DWARF nor BTF: symbols and the log only.

Every later layer asks the Target, never the file system, so a new dump
quirk or debuginfo source is handled here once.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass, field
from typing import Any

import drgn

from .. import drgn_private
from ..errors import DebuginfoNotFoundError, KcrashError, NotADumpError
from ..notes import Note
from . import debuginfo_search as di
from .dumpfile import DumpFile, inspect, parse_vmcoreinfo
from .fetch.distro import debuginfo_package

_LE64 = drgn.PlatformFlags.IS_64_BIT | drgn.PlatformFlags.IS_LITTLE_ENDIAN
X86_64 = drgn.Platform(drgn.Architecture.X86_64, _LE64)
AARCH64 = drgn.Platform(drgn.Architecture.AARCH64, _LE64)

#: utsname.machine (the kdump header's, or OSRELEASE's suffix) -> drgn platform.
PLATFORMS: dict[str, drgn.Platform] = {"x86_64": X86_64, "aarch64": AARCH64, "arm64": AARCH64}

#: VMCOREINFO entries only one architecture exports, for a header that names none.
#: arm64: ``NUMBER(VA_BITS)`` (v4.12+), ``NUMBER(kimage_voffset)`` (v4.12+),
#: ``NUMBER(KERNELPACMASK)`` (v5.7+); x86-64: ``NUMBER(phys_base)`` and
#: ``SYMBOL(init_top_pgt)`` (v4.13+; ``init_level4_pgt`` before).
_VMCOREINFO_ARCH: tuple[tuple[str, str], ...] = (
    ("NUMBER(kimage_voffset)", "aarch64"),
    ("NUMBER(VA_BITS)", "aarch64"),
    ("NUMBER(KERNELPACMASK)", "aarch64"),
    ("SYMBOL(init_top_pgt)", "x86_64"),
    ("SYMBOL(init_level4_pgt)", "x86_64"),
    ("NUMBER(phys_base)", "x86_64"),
)


def dump_machine(dump: DumpFile) -> str | None:
    """The dump's architecture as ``uname -m`` says it, from its headers.

    The kdump header's utsname first (QEMU writes the guest's, ``aarch64``), then
    what only one architecture puts in VMCOREINFO.
    """
    if dump.machine in PLATFORMS:
        return "aarch64" if PLATFORMS[dump.machine] is AARCH64 else dump.machine
    for key, machine in _VMCOREINFO_ARCH:
        if key in dump.vmcoreinfo:
            return machine
    return None


@dataclass
class Target:
    """An opened dump (or live kernel) and what we know about reading it."""

    prog: drgn.Program
    dump: DumpFile
    mode: str  # "dwarf" | "btf" | "kallsyms"
    vmlinux: str | None = None
    lacks: list[str] = field(default_factory=list)
    looked: list[str] = field(default_factory=list)  # where debuginfo was searched
    missing_debuginfo: str | None = None  # why there is no DWARF, in one sentence
    #: facts a command could not read (a damaged dump): "what: why", printed as partial
    unreadable: list[str] = field(default_factory=list)
    _modules_missing: set[str] = field(default_factory=set)
    #: the same dump opened without DWARF (:meth:`btf_twin`); False once it could not be
    _twin: Target | bool | None = None

    @property
    def release(self) -> str | None:
        return self.dump.release

    def load_module_debuginfo(self, names: Any = None) -> list[str]:
        """Load the DWARF of these modules (all when ``names`` is None); return those
        without a debug file, which are also noted once in :attr:`lacks`."""
        if self.mode != "dwarf":
            return []
        want = None if names is None else {n.replace("-", "_") for n in names if n}
        mods = [
            m
            for m, _ in self.prog.loaded_modules()
            if not isinstance(m, drgn.MainModule)
            and m.wants_debug_file()
            and (want is None or m.name in want)
        ]
        if not mods:
            return []
        with contextlib.suppress(drgn.MissingDebugInfoError):
            self.prog.load_module_debug_info(*mods)
        from .frame_labels import forget_symbols

        forget_symbols(self.prog)
        missing = sorted(m.name for m in mods if m.wants_debug_file())
        new = [n for n in missing if n not in self._modules_missing]
        if new:
            self._modules_missing.update(new)
            self.lacks.append(Note("lack.module_debuginfo", modules=", ".join(new[:10])))
        return missing

    def stack_trace(self, thread_or_task: Any) -> drgn.StackTrace:
        """A task's stack, unwound with DWARF/ORC in the vmlinux, or ORC in memory."""
        if self.mode == "dwarf":
            return self.prog.stack_trace(thread_or_task)
        from . import nodebug

        return nodebug.stack_trace(self.prog, thread_or_task)

    def btf_twin(self) -> Target | None:
        """This dump opened a second time in ``btf`` mode (kallsyms, BTF, the ORC tables in
        memory), to unwind many sleeping tasks fast; None when it cannot be.

        Why: with DWARF, drgn 0.3.0's unwinder looks up every frame's inline scopes in the
        vmlinux's DWARF: 4.5 ms per task (the same task again costs the same: nothing is
        cached), 45 s for a 10,000-task machine. The same unwinder over the same ORC
        tables without DWARF takes ~0.4 ms and gives the same frames, less the inlined
        ones (which ``bt`` prints only with ``-l``). Opening the twin costs ~0.6 s and
        ~80 MB, so callers ask for it only for many tasks. Never for a live kernel: a
        second reading of it would be another moment.
        """
        if self._twin is None:
            self._twin = False
            if self.mode == "dwarf" and self.dump.container not in ("kcore", "qmp"):
                with contextlib.suppress(KcrashError, drgn.FaultError, LookupError, OSError):
                    twin = open_target(self.dump.path, None, no_debuginfo=True, dump=self.dump)
                    if twin.mode == "btf":
                        self._twin = twin
        return self._twin or None


def _open_program(dump: DumpFile) -> drgn.Program:
    """A Program with the core dump set, naming the architecture when needed.

    QEMU's kdump writer (``dump-guest-memory -z``, flattened) leaves the
    architecture out of what libkdumpfile reads ("KDUMP_ATTR_ARCH_NAME: Key
    has no value": QEMU 7.2 for x86-64 and arm64 guests), so on that error
    we retry with the platform the headers name (:func:`dump_machine`).
    """
    prog = drgn.Program()
    try:
        _set_core(prog, dump)
        return prog
    except NotADumpError as e:
        if "ARCH_NAME" not in str(e):
            raise
    machine = dump_machine(dump)
    _refuse_unreadable_qemu_arm64(dump, machine)
    if machine is None:
        raise NotADumpError(
            f"{dump.path}: the dump names no architecture (neither its header nor its "
            "VMCOREINFO): rewrite it with makedumpfile -R (flattened) or capture it as ELF"
        )
    prog = drgn.Program(PLATFORMS[machine])
    _set_core(prog, dump)
    return prog


def _refuse_unreadable_qemu_arm64(dump: DumpFile, machine: str | None) -> None:
    """One clear line for QEMU's kdump-format capture of an arm64 guest.

    QEMU (7.2) writes such a file with the target's largest page size as its block
    size (64 KiB) while the guest kernel's pages are 4 KiB (VMCOREINFO ``PAGESIZE``);
    libkdumpfile then computes page frame numbers from the wrong size and every
    virtual address fails to translate (``Cannot read 64-bit PTE … Out-of-bounds
    PFN``), so nothing of the dump is readable.
    """
    page = dump.vmcoreinfo.get("PAGESIZE")
    if machine != "aarch64" or dump.block_size is None or not page or not page.isdigit():
        return
    if dump.block_size != int(page):
        raise NotADumpError(
            f"{dump.path}: QEMU's kdump-format capture of an arm64 guest ({dump.block_size}-byte "
            f"blocks for {page}-byte pages), which libkdumpfile cannot translate: capture it "
            "with dump-guest-memory in ELF format (no -z/-l/-s), or with kdump inside the guest"
        )


def _set_core(prog: drgn.Program, dump: DumpFile) -> None:
    # drgn logs a hint for flattened files ("reassemble it with makedumpfile
    # -R"); we name the format ourselves, so keep its logger to errors.
    logging.getLogger("drgn").setLevel(logging.ERROR)
    drgn_private.defer_command_plugins()
    try:
        if dump.container == "kcore":
            prog.set_kernel()
        elif dump.container == "qmp":
            prog.set_qemu_qmp(dump.path)
        else:
            prog.set_core_dump(dump.path)
    except PermissionError:
        raise KcrashError(f"{dump.path}: permission denied (run as root for /proc/kcore)") from None
    except (ValueError, OSError, drgn.FaultError, Exception) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise NotADumpError(f"{dump.path}: cannot open as a vmcore: {msg}") from None


def open_target(
    path: str,
    vmlinux: str | None = None,
    *,
    debuginfo_dirs: list[str] | None = None,
    no_debuginfo: bool = False,
    require_debuginfo: bool = False,
    dump: DumpFile | None = None,
) -> Target:
    """Open a vmcore (or ``/proc/kcore``) with the best debuginfo available.

    Raises :class:`KcrashError` subclasses for anything the operator must fix:
    a missing/foreign/truncated file, or a named vmlinux of another build.
    """
    dump = dump or inspect(path)  # callers that already inspected pass it on
    live = dump.container in ("kcore", "qmp")
    if not live and not dump.vmcoreinfo:
        raise NotADumpError(
            f"{path}: the dump has no VMCOREINFO note; kcrash needs it to find the kernel "
            "(QEMU: add -device vmcoreinfo and load qemu_fw_cfg in the guest)"
        )
    prog = _open_program(dump)
    if live:
        # A live kernel's VMCOREINFO comes from the kernel itself (drgn reads
        # it from /proc/kcore's note or the guest's fw_cfg entry).
        try:
            dump.vmcoreinfo = parse_vmcoreinfo(prog["VMCOREINFO"].string_())
        except (KeyError, LookupError, drgn.FaultError):
            raise NotADumpError(
                f"{path}: no VMCOREINFO from the live kernel (QEMU: -device vmcoreinfo "
                "and the qemu_fw_cfg module in the guest)"
            ) from None
    dirs = di.search_dirs(debuginfo_dirs or [])
    target = Target(prog=prog, dump=dump, mode="kallsyms")

    found: di.DebugInfo | None = None
    if vmlinux is not None:
        found = di.check_given(vmlinux, dump.release, dump.build_id, dirs)
    elif not no_debuginfo:
        found, target.looked = di.find(dump.release, dump.build_id, dirs)
        if found is None and require_debuginfo:
            raise DebuginfoNotFoundError(_not_found_message(dump, target.looked))

    if found is not None:
        _load_dwarf(prog, found, target)
        _note_truncated(target)
        return target

    from . import nodebug

    setup = nodebug.attach(prog, dump.release, path=None if live else dump.path)
    target.mode = setup.mode
    target.lacks = list(setup.lacks)
    if no_debuginfo:
        target.missing_debuginfo = Note(
            "lack.no_debuginfo_asked", pkg=debuginfo_package(dump.release)
        )
    else:
        target.missing_debuginfo = _not_found_message(dump, target.looked)
        target.lacks.append(target.missing_debuginfo)
    _note_truncated(target)
    return target


def _note_truncated(target: Target) -> None:
    """A dump cut in its page data is read as far as it goes; every output says so."""
    if target.dump.truncated:
        what = Note("lack.dump", what=target.dump.truncated)
        target.lacks.insert(0, what)
        target.unreadable.append(what)


def _not_found_message(dump: DumpFile, looked: list[str]) -> str:
    where = ", ".join(looked[:6])
    if len(looked) > 6:
        where = Note("lack.and_more", first=where, more=len(looked) - 6)
    return Note(
        "lack.debuginfo_not_found",
        release=dump.release or Note("lack.this_kernel"),
        build_id=dump.build_id or Note("lack.unknown_build_id"),
        where=where,
        pkg=debuginfo_package(dump.release),
    )


def _load_dwarf(prog: drgn.Program, found: di.DebugInfo, target: Target) -> None:
    """Load vmlinux's DWARF now; module debug files only when a question needs them.

    Why lazily: indexing the DWARF of every loaded module costs time and
    ~40 MB for answers that rarely need it.  Module *symbols* come from the
    dump's own module kallsyms (cheap, so every frame is named as crash
    names it); :meth:`Target.load_module_debuginfo` loads a module's DWARF
    when its frames need source lines, inlined calls or variables.
    """
    opts = prog.debug_info_options
    opts.kernel_directories = tuple(found.module_dirs)
    opts.try_kmod = drgn.KmodSearchMethod.WALK
    opts.directories = ()  # no slow global searches: we chose the files
    try:
        prog.load_debug_info([found.vmlinux], main=True)
    except drgn.MissingDebugInfoError as e:
        if prog.main_module().wants_debug_file():
            raise KcrashError(f"{found.vmlinux}: could not load its debuginfo: {e}") from None
    try:
        from .kallsyms import load_modules

        prog.register_symbol_finder("module_kallsyms", load_modules(prog), enable_index=-1)
    except (LookupError, ValueError, drgn.FaultError):
        pass  # no module symbols: module frames show addresses
    target.mode = "dwarf"
    target.vmlinux = os.path.abspath(found.vmlinux)
