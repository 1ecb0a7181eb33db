"""Open a vmcore with no vmlinux: symbols, types and stacks from the dump itself.

Why (issue 5): the debuginfo package (~1 GB, byte-for-byte matching) is the
most common obstacle to reading a dump.  A distribution kernel carries in
memory what is needed instead:

* symbols — kallsyms (:mod:`.kallsyms`, drgn's decoder);
* types — BTF between ``__start_BTF`` and ``__stop_BTF`` (:mod:`.btf`),
  plus the table of globals BTF does not type (:mod:`.globals`);
* stacks — the ORC tables.  drgn 0.3.0 reads the core kernel's built-in ORC
  (``__start_orc_unwind_ip`` …, found through our symbols) only for PCs
  inside the *main module*'s address range; without vmlinux that module has
  no range, so unwinding stopped at the first core-kernel frame.  Giving
  the main module the kernel text ranges from kallsyms is enough: drgn's
  own unwinder then crosses core, module and exception (``pt_regs``)
  frames, and every drgn helper (``prog.stack_trace(task)``,
  ``kernel_stack_trace``) works unchanged.  Modules' ORC is read by drgn
  from ``struct module`` once :meth:`drgn.Program.create_loaded_modules`
  has run (it needs BTF types).
* with neither DWARF nor BTF ("kallsyms" mode): the log through VMCOREINFO
  offsets (:mod:`.vmcoreinfo_log`) and the crashed CPU's stack from its
  saved registers with our own ORC unwinder (:mod:`.orc`).

Kernels: 6.0+ (VMCOREINFO locates kallsyms); BTF since 5.2 (Debian 11+).
"""

from __future__ import annotations

import logging
import re
import struct
import time
from dataclasses import dataclass, field
from typing import Any

import drgn
from drgn import FindObjectFlags, Object, Program

from ..model import LogLine
from ..notes import Note
from . import datasyms, kallsyms
from . import globals as kglobals
from .btf import Btf, BtfError, BtfTypes
from .dumpfile import parse_vmcoreinfo
from .fetch.distro import debuginfo_package
from .fpunwind import S_STACKFRAME, FpUnwinder, pac_mask, strip_pac
from .orc import TYPE_UNDEFINED, OrcTable, OrcUnwinder, UnwoundFrame, orc_version
from .vmcoreinfo_log import read_log, split_records

log = logging.getLogger(__name__)

_STATE_KEY = "kcrash.nodebug"


@dataclass
class NoDebugSetup:
    """What :func:`attach` managed: the mode and, in words, what it lacks."""

    mode: str  # "btf" when BTF types were registered, else "kallsyms"
    lacks: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    btf_types: int = 0  # number of BTF records (0 without BTF)


class _State:
    """Per-program data of this mode (kept in ``prog.cache``)."""

    def __init__(self, prog: Program, release: str | None) -> None:
        self.prog = prog
        self.release = release
        self.version = kglobals.parse_version(release)
        self.btf: Btf | None = None
        self.types: BtfTypes | None = None
        self.unwinder: OrcUnwinder | None = None
        self.module_tables_loaded = False
        self.path: str | None = None
        self.cpu_regs: list[dict[str, int]] | None = None
        self.objects: dict[tuple[str, int], Object | None] = {}
        self.module_types: list[BtfTypes] | None = None
        self.setup: NoDebugSetup | None = None


def _state(prog: Program) -> _State:
    st = prog.cache.get(_STATE_KEY)
    if st is None:
        raise ValueError("kcrash.target.nodebug.attach() was not called on this program")
    return st


def _guess_core_path(prog: Program) -> str | None:
    """The vmcore file of ``prog`` among the files this process has open.

    Only for the kallsyms-only mode, which reads the CPUs' registers from
    the file's notes when the caller did not pass ``path``.  drgn keeps the
    dump open: take the open files (Linux ``/proc/self/fd``) that start like
    a dump (ELF core, kdump, flattened), newest descriptor first, and accept
    the first whose VMCOREINFO note is the program's.
    """
    import os

    from .prstatus import read_notes, vmcoreinfo_of_notes

    try:
        fds = os.listdir("/proc/self/fd")
        mine = prog["VMCOREINFO"].string_().rstrip(b"\0")
    except (OSError, LookupError, drgn.FaultError):
        return None
    candidates: list[tuple[int, str]] = []
    for fd in fds:
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
            if not target.startswith("/") or not os.path.isfile(target):
                continue
            with open(target, "rb") as f:
                magic = f.read(16)
        except OSError:
            continue
        if (
            (magic.startswith(b"\x7fELF") and _is_elf_core(target))
            or magic[:8] in (b"KDUMP   ", b"DISKDUMP")
            or magic[:12] == b"makedumpfile"
        ):
            candidates.append((int(fd), target))
    for _fd, target in sorted(candidates, reverse=True):
        try:
            if vmcoreinfo_of_notes(read_notes(target)) == mine:
                return target
        except (OSError, struct.error, ValueError):
            continue
    return None


def _is_elf_core(path: str) -> bool:
    with open(path, "rb") as f:
        head = f.read(18)
    return len(head) == 18 and int.from_bytes(head[16:18], "little") == 4  # ET_CORE


def log_lines(prog: Program) -> list[LogLine]:
    """The kernel log without types (VMCOREINFO offsets), one entry per line.

    Same shape as :func:`kcrash.facts.log.log_lines`: a multi-line record
    gives several lines, the later ones ``continued``.
    """
    return split_records(read_log(prog))


def _release_of(prog: Program) -> str | None:
    try:
        from .vmcoreinfo_log import osrelease

        return osrelease(prog)
    except Exception:
        return None


def attach(
    prog: Program, release: str | None, *, use_btf: bool = True, path: str | None = None
) -> NoDebugSetup:
    """Make a vmcore without vmlinux readable by drgn's helpers.

    ``prog`` already has its core dump (and platform) set.  Loads kallsyms
    (core kernel + modules), gives the main module its text ranges (so drgn
    uses the built-in ORC), registers the BTF type finder and an object
    finder (BTF variables and functions, enumerators, the globals table),
    and creates drgn's loaded modules.  Never raises for a missing piece:
    what could not be done is listed in ``lacks``.  ``use_btf=False``
    forces the kallsyms-only mode (tests of issue 5's last-resort path).
    ``path`` (the vmcore file) lets that mode read the CPUs' saved registers
    from the dump's notes, for the crashed CPU's stack.
    """
    done = prog.cache.get(_STATE_KEY)
    if done is not None and done.setup is not None:
        return done.setup  # drgn refuses a second finder of the same name
    release = release or _release_of(prog)
    st = _State(prog, release)
    st.path = path
    prog.cache[_STATE_KEY] = st
    setup = NoDebugSetup(mode="kallsyms")
    t0 = time.perf_counter()
    pkg = debuginfo_package(release)

    # 1. Core kernel symbols.
    try:
        index = kallsyms.load_core(prog)
        prog.register_symbol_finder("kcrash-kallsyms", index, enable_index=0)
        have_syms = True
    except (LookupError, ValueError, drgn.FaultError) as e:
        have_syms = False
        setup.lacks.append(Note("lack.no_kernel_symbols", error=str(e)))
    setup.timings["kallsyms"] = time.perf_counter() - t0

    # 2. The main module's address ranges: drgn then finds the built-in ORC.
    if have_syms:
        _set_main_module_ranges(prog)

    # 2b. kallsyms of code only (no CONFIG_KALLSYMS_ALL: Debian's arm64): the data
    # symbols VMCOREINFO names, and the BTF blob found after the text.
    data: datasyms.DataSymbols | None = None
    if have_syms and kallsyms.symbol_address(prog, "init_uts_ns") is None:
        data = datasyms.DataSymbols(datasyms.vmcoreinfo_symbols(prog))
        found = datasyms.find_btf(prog)
        if found is not None:
            data.symbols["__start_BTF"], data.symbols["__stop_BTF"] = found
        prog.register_symbol_finder("kcrash-datasyms", data, enable_index=1)
        setup.lacks.append(Note("lack.code_kallsyms"))

    # 3. BTF types.
    t1 = time.perf_counter()
    if have_syms:
        btf_reason = _attach_btf(prog, st) if use_btf else "BTF not used (use_btf=False)"
        if btf_reason is None:
            assert st.btf is not None
            setup.mode = "btf"
            setup.btf_types = st.btf.count
        else:
            setup.lacks.append(Note("lack.no_types", reason=btf_reason, pkg=pkg))
    setup.timings["btf"] = time.perf_counter() - t1

    # 4. Objects (needs nothing but kallsyms; types only where BTF has them).
    prog.register_object_finder("kcrash-nodebug", _find_object, enable_index=-1)
    if data is not None and setup.mode == "btf" and "init_uts_ns" in data.symbols:
        init_task = datasyms.find_init_task(prog, data.symbols["init_uts_ns"])
        if init_task is not None:
            data.symbols["init_task"] = init_task
            data.symbols.update(datasyms.from_init_task(prog, init_task))
        area = _module_area(prog)
        if area is not None:
            try:
                names = datasyms.logged_module_names([r.text for r in read_log(prog)])
            except (LookupError, ValueError, drgn.FaultError):
                names = []
            head = datasyms.find_modules_head(prog, names, area)
            if head is not None:
                data.symbols["modules"] = head

    # 5. Modules: drgn's module objects (their ORC, address ranges) and symbols.
    t2 = time.perf_counter()
    if setup.mode == "btf":
        try:
            prog.create_loaded_modules()
        except Exception as e:  # a damaged module list must not stop the rest
            setup.lacks.append(Note("lack.modules_not_enumerated", error=str(e)))
        try:
            prog.register_symbol_finder(
                "kcrash-module-kallsyms", kallsyms.load_modules(prog), enable_index=1
            )
        except Exception as e:
            setup.lacks.append(Note("lack.no_module_symbols", error=str(e)))
    else:
        setup.lacks.append(Note("lack.no_module_list"))
    setup.timings["modules"] = time.perf_counter() - t2

    setup.lacks.append(Note("lack.no_dwarf", pkg=pkg))
    if setup.mode == "btf":
        setup.lacks.append(Note("lack.btf_types"))
    setup.timings["total"] = time.perf_counter() - t0
    st.setup = setup
    return setup


def _module_area(prog: Program) -> tuple[int, int] | None:
    """Where to look for ``struct module``: around the code addresses on the CPUs'
    stacks that kallsyms does not name (module code: a module's ``struct module`` is in
    the same allocation, after its text), else VMCOREINFO's ``MODULES_VADDR`` ..
    ``MODULES_END`` (arm64, v4.12+: link-time values, right without KASLR)."""
    pcs: list[int] = []
    for regs in cpu_registers(prog):
        try:
            frames = unwind_registers(prog, regs)
        except (LookupError, ValueError, drgn.FaultError):
            continue
        for f in frames:
            if f.pc >> 63:
                try:
                    prog.symbol(f.pc)
                except LookupError:
                    pcs.append(f.pc)
    if pcs:
        return min(pcs) - (32 << 20), max(pcs) + (32 << 20)
    try:
        info = parse_vmcoreinfo(prog["VMCOREINFO"].string_())
        lo, hi = int(info["NUMBER(MODULES_VADDR)"], 16), int(info["NUMBER(MODULES_END)"], 16)
    except (LookupError, ValueError, drgn.FaultError):
        return None
    stext, etext = kallsyms.symbol_address(prog, "_stext"), kallsyms.symbol_address(prog, "_etext")
    if int(info.get("KERNELOFFSET", "0"), 16) and stext and etext:
        # KASLR moves the module region too (arch/arm64/kernel/kaslr.c, v6.1): its base
        # into [_etext - MODULES_VSIZE, _stext), or with RANDOMIZE_MODULE_REGION_FULL
        # (Debian) into [_end - 2 GiB, _stext]; the region is MODULES_VSIZE long. The
        # window from _etext - 2 GiB (kallsyms of code has no _end) covers both.
        return max(etext - (2 << 30), lo), stext + (hi - lo)
    return lo, hi


def _text_ranges(prog: Program) -> list[tuple[int, int]]:
    """The core kernel's text and init text, from kallsyms."""
    ranges = []
    for start, end in (("_stext", "_etext"), ("_sinittext", "_einittext")):
        a = kallsyms.symbol_address(prog, start)
        b = kallsyms.symbol_address(prog, end)
        if a and b and a < b:
            ranges.append((a, b))
    return sorted(ranges)


def _set_main_module_ranges(prog: Program) -> None:
    """Give the ``kernel`` main module its text (and init text) ranges."""
    ranges = _text_ranges(prog)
    if not ranges:
        return
    try:
        main = prog.main_module("kernel", create=True)
    except LookupError:
        main = prog.main_module()
    if not main.address_ranges:
        main.address_ranges = ranges


def read_btf_blob(prog: Program) -> bytes:
    """The kernel's BTF, read from memory between ``__start_BTF`` and ``__stop_BTF``."""
    start = kallsyms.symbol_address(prog, "__start_BTF")
    stop = kallsyms.symbol_address(prog, "__stop_BTF")
    if start is None or stop is None:
        raise LookupError("the kernel has no __start_BTF (built without CONFIG_DEBUG_INFO_BTF)")
    if not 24 <= stop - start <= 256 << 20:
        raise BtfError(f"implausible BTF size {stop - start}")
    return prog.read(start, stop - start)


def _attach_btf(prog: Program, st: _State) -> str | None:
    """Register the BTF type finder; return why not, or None on success."""
    try:
        blob = read_btf_blob(prog)
        st.btf = Btf(blob, cache=True)
    except (LookupError, BtfError, drgn.FaultError) as e:
        return str(e)
    st.types = BtfTypes(prog, st.btf)
    prog.register_type_finder("kcrash-btf", st.types.find_type, enable_index=-1)
    prog.register_type_finder("kcrash-btf-modules", _find_module_type, enable_index=-1)
    return None


def _find_module_type(
    prog: Program, kinds: drgn.TypeKindSet, name: str, filename: str | None
) -> drgn.Type | None:
    """Types private to loaded modules, from their split BTF (read on first miss)."""
    st: _State | None = prog.cache.get(_STATE_KEY)
    if st is None or st.types is None:
        return None
    if st.module_types is None:
        st.module_types = _load_module_btf(prog, st)
    for types in st.module_types:
        t = types.find_type(prog, kinds, name, filename)
        if t is not None:
            return t
    return None


def _load_module_btf(prog: Program, st: _State) -> list[BtfTypes]:
    """Each loaded module's BTF, split on the kernel's (``CONFIG_DEBUG_INFO_BTF_MODULES``,
    5.11+; Debian 12's 6.1 has it).

    Since v5.11 a module carries its BTF in ``struct module`` (``btf_data``,
    ``btf_data_size``) only while it loads: the pointer is into the copy of the
    ``.ko`` freed after init, and ``do_init_module()`` clears it (6.1's dumps
    here: ``btf_data`` NULL, ``btf_data_size`` kept).  The BPF subsystem keeps
    its own copy in a ``struct btf`` (``data``/``data_size``, ``base_btf`` set
    for a module), reachable two ways, tried in order (:data:`_MODULE_BTF_SOURCES`).
    """
    assert st.btf is not None and st.types is not None
    out: list[BtfTypes] = []
    st.module_types = out  # re-entrant lookups while reading see "none yet"
    for _name, source, _why in _MODULE_BTF_SOURCES:
        try:
            blobs = source(prog)
        except (LookupError, AttributeError, drgn.FaultError, ValueError):
            continue  # before 5.11, no BPF, or this path unreachable in this dump
        for blob in blobs:
            try:
                out.append(BtfTypes(prog, Btf(blob, base=st.btf), st.types))
            except BtfError:
                continue
        if blobs:
            break
    return out


#: A module's BTF is between these sizes, or the pointer read is not one.
_MODULE_BTF_MAX = 64 << 20
_BTF_MAGIC = b"\x9f\xeb"  # 0xeB9F, little-endian


def _btf_blob(prog: Program, data: int, size: int) -> bytes | None:
    """The ``size`` bytes at ``data`` if they start like a BTF header, else None."""
    if not data or not 24 <= size <= _MODULE_BTF_MAX:
        return None
    try:
        blob = prog.read(data, size)
    except drgn.FaultError:
        return None
    return blob if blob[:2] == _BTF_MAGIC else None


def _module_btf_from_idr(prog: Program) -> list[bytes]:
    """Every module ``struct btf`` in ``btf_idr`` (kernel/bpf/btf.c, every parsed BTF).
    A data symbol: kallsyms lists it only with ``CONFIG_KALLSYMS_ALL`` (Debian's amd64
    kernels, not its arm64 ones)."""
    from drgn.helpers.linux.idr import idr_for_each

    btf_ptr = prog.type("struct btf *")
    out = []
    for _, entry in idr_for_each(prog["btf_idr"].address_of_()):
        b = drgn.cast(btf_ptr, entry)
        if not b.base_btf.value_():
            continue  # vmlinux itself
        blob = _btf_blob(prog, b.data.value_(), b.data_size.value_())
        if blob is not None:
            out.append(blob)
    return out


def _module_btf_from_sysfs(prog: Program) -> list[bytes]:
    """Each module's ``/sys/kernel/btf/<module>`` file, found in kernfs from the module's
    own sysfs directory (``/sys/module/<module>``): needs only the module list, no data
    symbol.  The file is a ``struct bin_attribute`` (kernfs node's ``priv`` is its
    ``attr``) whose ``private`` is the module's ``struct btf`` (5.11-6.13,
    ``btf_module_read``) or, since v6.14 (``sysfs_bin_attr_simple_read``), the BTF data
    itself: both are told apart by the BTF magic."""
    from drgn.helpers.linux.kernfs import kernfs_walk
    from drgn.helpers.linux.module import for_each_module

    mods = list(for_each_module(prog))
    if not mods:
        return []
    root = mods[0].mkobj.kobj.sd
    while root.parent:
        root = root.parent
    btf_dir = kernfs_walk(root, "kernel/btf")
    if not btf_dir:
        return []
    attr_type = prog.type("struct attribute *")
    btf_ptr = prog.type("struct btf *")
    out = []
    for mod in mods:
        if not mod.btf_data_size.value_():
            continue  # built without BTF (an out-of-tree module like ours)
        node = kernfs_walk(btf_dir, mod.name.string_().decode(errors="replace"))
        if not node:
            continue
        attr = drgn.container_of(drgn.cast(attr_type, node.priv), "struct bin_attribute", "attr")
        size = attr.size.value_()
        private = attr.private.value_()
        blob = _btf_blob(prog, private, size)
        if blob is None:
            b = drgn.cast(btf_ptr, attr.private)
            blob = _btf_blob(prog, b.data.value_(), b.data_size.value_())
        if blob is not None:
            out.append(blob)
    return out


#: Where a dump keeps its modules' BTF, in the order tried; each row: (name, reader, why).
_MODULE_BTF_SOURCES: tuple[tuple[str, Any, str], ...] = (
    ("btf_idr", _module_btf_from_idr, "one data symbol for every module (CONFIG_KALLSYMS_ALL)"),
    ("sysfs", _module_btf_from_sysfs, "the module list only: Debian's arm64 without vmlinux"),
)


def _find_object(
    prog: Program, name: str, flags: FindObjectFlags, filename: str | None
) -> Object | None:
    """Object finder: enumerators, BTF VAR/FUNC, the globals table (+ kallsyms address)."""
    if filename is not None:
        return None
    st: _State | None = prog.cache.get(_STATE_KEY)
    if st is None:
        return None
    # drgn asks again on every prog["name"]: answer from a cache (negative
    # answers too: a miss costs a scan of the BTF strings).
    key = (name, flags.value)
    if key in st.objects:
        return st.objects[key]
    obj = _lookup_object(prog, st, name, flags)
    st.objects[key] = obj
    return obj


def _lookup_object(prog: Program, st: _State, name: str, flags: FindObjectFlags) -> Object | None:
    types = st.types
    if flags & FindObjectFlags.CONSTANT and types is not None:
        obj = types.constant(name)
        if obj is not None:
            return obj
    want_var = bool(flags & FindObjectFlags.VARIABLE)
    want_fn = bool(flags & FindObjectFlags.FUNCTION)
    if not (want_var or want_fn):
        return None
    if want_var and name == "vmemmap" and types is not None:
        # x86-64: vmemmap is the macro (struct page *)vmemmap_base (pgtable_64_types.h,
        # 4.8+ with KASLR). drgn derives it itself on Debian 12's 6.1 without vmlinux but
        # not on Debian 11's 5.10, where pfn_to_page() (slab_object_info) then fails.
        try:
            base = prog["vmemmap_base"].value_()
            return Object(prog, prog.pointer_type(prog.type("struct page")), value=base)
        except (LookupError, drgn.FaultError):
            return None
    address = kallsyms.symbol_address(prog, name)
    if address is None:
        return None
    if types is None:
        return None
    if want_var:
        t = types.var_type(name)
        if t is None:
            try:
                t = kglobals.global_type(prog, name, st.version)
            except LookupError:
                t = None
        if t is not None:
            return Object(prog, t, address=address)
    if want_fn:
        t = types.func_type(name)
        if t is not None:
            return Object(prog, t, address=address)
    return None


# -- stacks --------------------------------------------------------------


def stack_trace(prog: Program, thread_or_task: Any = None) -> drgn.StackTrace:
    """Stack of a task (``struct task_struct *``), a thread id, a drgn Thread,
    or, for ``None``, the crashed thread (the CPU that panicked).

    In BTF mode drgn's own unwinder runs over the in-memory ORC (see the
    module docstring), so frames carry registers and ``interrupted`` like
    with DWARF.  Without types, only the crashed CPU can be unwound: from
    its saved registers (the dump's NT_PRSTATUS note) with our ORC unwinder
    (:mod:`.orc`), returned through :meth:`drgn.Program.stack_trace_from_pcs`
    (frames named from kallsyms, without registers).
    """
    st = _state(prog)
    if st.types is not None:
        if thread_or_task is None:
            trace = prog.crashed_thread().stack_trace()
        elif isinstance(thread_or_task, drgn.Thread):
            trace = thread_or_task.stack_trace()
        else:
            trace = prog.stack_trace(thread_or_task)
        return trace if is_arm64(prog) else _checked(prog, trace)
    if thread_or_task is not None:
        raise ValueError("stack traces of tasks need types (this kernel has no BTF)")
    frames = crashed_cpu_frames(prog)
    return prog.stack_trace_from_pcs([f.pc for f in frames])


def _first_pc_has_orc(prog: Program, pc: int) -> bool:
    entry = _unwinder(prog).find(pc)
    return entry is not None and entry.type != TYPE_UNDEFINED


def _checked(prog: Program, trace: drgn.StackTrace) -> drgn.StackTrace:
    """drgn's trace, unless its first PC has no ORC rule.

    A CPU's saved registers can point where objtool recorded no rule: the
    ip that ``crash_setup_regs()`` stores in ``__crash_kexec`` is a label
    address (``_THIS_IP_``).  drgn then falls back to frame pointers and
    silently skips the caller (``panic``).  Our unwinder resumes at the
    first return address on the stack instead (as crash does), so use it
    for such a stack (frames named from kallsyms, no per-frame registers).
    """
    if not len(trace):
        return trace
    first = trace[0]
    if not first.interrupted or _first_pc_has_orc(prog, first.pc):
        return trace
    try:
        regs = first.registers()
        frames = unwind_registers(prog, regs)
    except (LookupError, ValueError, drgn.FaultError):
        return trace
    if len(frames) <= 1:
        return trace
    return prog.stack_trace_from_pcs([f.pc for f in frames])


def panic_cpu(prog: Program) -> int | None:
    """The CPU that panicked: ``panic_cpu`` (atomic_t, 4.5+), else ``crashing_cpu``."""
    for name in ("panic_cpu", "crashing_cpu"):
        addr = kallsyms.symbol_address(prog, name)
        if addr is None:
            continue
        try:
            cpu = int.from_bytes(prog.read(addr, 4), "little", signed=True)
        except drgn.FaultError:
            continue
        if cpu >= 0:
            return cpu
    return None


def cpu_registers(prog: Program) -> list[dict[str, int]]:
    """Each CPU's saved registers (NT_PRSTATUS notes of the dump file)."""
    st = _state(prog)
    if st.cpu_regs is None:
        from .prstatus import read_prstatus

        if st.path is None:
            st.path = _guess_core_path(prog)
        machine = "aarch64" if is_arm64(prog) else "x86_64"
        st.cpu_regs = [c.regs for c in read_prstatus(st.path, machine)] if st.path else []
    return st.cpu_regs


def cpu_prstatus(prog: Program) -> list[Any]:
    """Each CPU's NT_PRSTATUS note (:class:`.prstatus.CpuRegisters`: index, pid, regs)."""
    from .prstatus import read_prstatus

    st = _state(prog)
    if st.path is None:
        st.path = _guess_core_path(prog)
    machine = "aarch64" if is_arm64(prog) else "x86_64"
    return read_prstatus(st.path, machine) if st.path else []


def crashed_cpu_frames(prog: Program) -> list[UnwoundFrame]:
    """The panicking CPU's stack, from its saved registers, by our ORC unwinder
    (frame records on arm64)."""
    return unwind_registers(prog, _crashed_registers(prog))


def is_arm64(prog: Program) -> bool:
    """Whether the dump is of an arm64 kernel (frame pointers, no ORC)."""
    return prog.platform is not None and prog.platform.arch == drgn.Architecture.AARCH64


def fp_unwinder(prog: Program) -> FpUnwinder:
    """The arm64 frame-record unwinder of this dump (any mode: DWARF, BTF, kallsyms)."""
    unwinder = prog.cache.get("kcrash.fpunwind")
    if unwinder is None:
        try:
            info = parse_vmcoreinfo(prog["VMCOREINFO"].string_())
        except (LookupError, drgn.FaultError):
            info = {}
        try:
            stackframe = drgn.offsetof(prog.type("struct pt_regs"), "stackframe")
        except (LookupError, ValueError):
            stackframe = S_STACKFRAME  # no types (kallsyms mode): the v5.8-v6.12 layout

        def symbol(addr: int) -> str | None:
            try:
                return prog.symbol(addr).name
            except LookupError:
                return None

        unwinder = FpUnwinder(prog.read, symbol, pac_mask(info), stackframe)
        prog.cache["kcrash.fpunwind"] = unwinder
    return unwinder


def strip_pac_of(prog: Program, addr: int) -> int:
    """A return address without its pointer-authentication code (arm64; others: as is)."""
    return strip_pac(addr, fp_unwinder(prog).mask) if is_arm64(prog) else addr


def _crashed_registers(prog: Program) -> dict[str, int]:
    regs = cpu_registers(prog)
    if not regs:
        raise ValueError(
            "no CPU registers: the dump has no NT_PRSTATUS notes"
            if _state(prog).path
            else "no CPU registers: attach() was not given the vmcore path"
        )
    cpu = panic_cpu(prog)
    if (cpu is None or cpu >= len(regs)) and is_arm64(prog):
        cpu = _cpu_of_last_report(prog)
        if cpu is None or cpu >= len(regs):
            cpu = _cpu_in_panic(prog, regs)
    if cpu is None or cpu >= len(regs):
        # No panic recorded: take the first CPU that was in the kernel.
        pc = "pc" if is_arm64(prog) else "rip"
        cpu = next((i for i, r in enumerate(regs) if r[pc] >> 63), 0)
    return regs[cpu]


_REPORT_CPU_RE = re.compile(r"^CPU: (\d+) (?:UID: \d+ )?PID: \d+ Comm: ")


def _cpu_of_last_report(prog: Program) -> int | None:
    """The CPU of the log's last report (dump_stack's "CPU: 1 PID: 121 Comm: sh" line,
    lib/dump_stack.c, v2.6-v6.x; "UID:" since v6.10): the one that oopsed or panicked.
    With kdump the panicking CPU's saved registers are the oops's (die() calls
    crash_kexec(regs)), so its stack does not go through panic()."""
    try:
        lines = [ln.text for ln in log_lines(prog)]
    except (LookupError, ValueError, drgn.FaultError):
        return None
    for text in reversed(lines):
        m = _REPORT_CPU_RE.match(text)
        if m:
            return int(m.group(1))
    return None


#: Functions only the CPU that crashed runs (the others stop in an IPI handler).
_PANIC_FRAMES = frozenset(("panic", "die", "__crash_kexec", "crash_kexec", "oops_end"))


def _cpu_in_panic(prog: Program, regs: list[dict[str, int]]) -> int | None:
    """The CPU whose stack goes through panic()/die(), when ``panic_cpu`` is not a
    known symbol (kallsyms of code only): the stopped CPUs sit in their IPI handler."""
    for i, r in enumerate(regs):
        try:
            frames = unwind_registers(prog, r)
        except (LookupError, ValueError, drgn.FaultError):
            continue
        for f in frames:
            try:
                if prog.symbol(f.pc if f.interrupted else f.pc - 1).name in _PANIC_FRAMES:
                    return i
            except LookupError:
                continue
    return None


def _unwinder(prog: Program) -> OrcUnwinder:
    st = _state(prog)
    if st.unwinder is None:
        read = prog.read
        tables: list[OrcTable] = []
        core = _core_orc_table(prog, st)
        if core is not None:
            tables.append(core)
        version = st.version or (0, 0)
        ranges = _text_ranges(prog)
        st.unwinder = OrcUnwinder(
            prog.read_u64,
            lambda a, n: read(a, n),
            tables,
            sp_indirect_deref_first=version >= (5, 12),
            is_text=lambda a: any(lo <= a < hi for lo, hi in ranges),
            other_text=None if st.types is not None else _in_module_area,
        )
    if not st.module_tables_loaded and st.types is not None:
        st.unwinder.tables.extend(_module_orc_tables(prog, st))
        st.module_tables_loaded = True
    return st.unwinder


# x86-64 module mapping space (MODULES_VADDR .. MODULES_END), since 2.6.
_MODULES_VADDR = 0xFFFFFFFFA0000000
_MODULES_END = 0xFFFFFFFFFF000000


def _in_module_area(addr: int) -> bool:
    return _MODULES_VADDR <= addr < _MODULES_END


def _core_orc_table(prog: Program, st: _State) -> OrcTable | None:
    ip = kallsyms.symbol_address(prog, "__start_orc_unwind_ip")
    ip_end = kallsyms.symbol_address(prog, "__stop_orc_unwind_ip")
    ent = kallsyms.symbol_address(prog, "__start_orc_unwind")
    if ip is None or ip_end is None or ent is None:
        return None
    ranges = _text_ranges(prog)
    span = (ranges[0][0], ranges[-1][1]) if ranges else None
    return OrcTable(prog.read, ip, ent, (ip_end - ip) // 4, orc_version(st.release), span)


def _module_orc_tables(prog: Program, st: _State) -> list[OrcTable]:
    """ORC of each loaded module (``struct module.arch``, sorted at load)."""
    out: list[OrcTable] = []
    try:
        for mod in kallsyms.modules(prog):
            try:
                arch = mod.arch
                n = arch.num_orcs.value_()
                if not n:
                    continue
                lo, hi = _module_text_range(mod)
                out.append(
                    OrcTable(
                        prog.read,
                        arch.orc_unwind_ip.value_(),
                        arch.orc_unwind.value_(),
                        n,
                        orc_version(st.release),
                        (lo, hi) if lo < hi else None,
                    )
                )
            except (AttributeError, LookupError, drgn.FaultError):
                continue
    except (LookupError, ValueError, drgn.FaultError):
        pass  # a damaged list: the modules read so far
    return out


def _module_text_range(mod: Object) -> tuple[int, int]:
    """[start, end) of a module's code: ``core_layout`` (<6.4) or ``mem[]`` (6.4+)."""
    try:
        layout = mod.core_layout
        base = layout.base.value_()
        return base, base + layout.text_size.value_()
    except AttributeError:
        text = mod.mem[0]  # MOD_TEXT
        base = text.base.value_()
        return base, base + text.size.value_()


def unwind_registers(
    prog: Program, regs: dict[str, int], interrupted: bool = True
) -> list[UnwoundFrame]:
    """Frames from a register set, with our ORC unwinder (frame records on arm64)."""
    if is_arm64(prog):
        return fp_unwinder(prog).unwind(regs, interrupted)
    return _unwinder(prog).unwind(regs, interrupted).frames


def exception_frames(
    prog: Program, thread_or_task: Any = None
) -> list[tuple[int, int, dict[str, int] | None]]:
    """``(pc, sp, regs)`` per frame; ``regs`` set where a ``pt_regs`` begins.

    crash's ``bt`` prints such registers after an exception or interrupt
    frame.  Our ORC unwinder (which gives drgn's PCs, see the tests) runs
    from drgn's first frame (BTF mode) or the crashed CPU's saved registers
    (kallsyms mode) and records every ``pt_regs`` it crosses.  The first
    frame gets ``regs`` too when the saved registers are those of an
    exception (a kdump of an oops saves the oops' ``pt_regs``): then their
    image lies on the stack just below the interrupted stack pointer.
    """
    st = _state(prog)
    if st.types is None:
        if thread_or_task is not None:
            raise ValueError("stack traces of tasks need types (this kernel has no BTF)")
        regs0 = _crashed_registers(prog)
        frames = unwind_registers(prog, regs0)
        first_exact = True
    else:
        if thread_or_task is None:
            first = prog.crashed_thread().stack_trace()[0]
        elif isinstance(thread_or_task, drgn.Thread):
            first = thread_or_task.stack_trace()[0]
        else:
            first = prog.stack_trace(thread_or_task)[0]
        regs0 = frame_registers(first)
        first_exact = first.interrupted
        frames = unwind_registers(prog, regs0, first_exact)
    out = [(f.pc, f.sp, f.regs) for f in frames]
    if is_arm64(prog):
        return out  # the unwinder read every pt_regs it crossed
    if out and first_exact and _pt_regs_on_stack(prog, regs0):
        out[0] = (out[0][0], out[0][1], regs0)
    return out


def frame_registers(frame: drgn.StackFrame) -> dict[str, int]:
    """A drgn frame's registers, with ``pc`` on arm64 (drgn keeps it apart)."""
    regs = dict(frame.registers())
    if "x29" in regs or "x30" in regs:
        regs["pc"] = frame.pc
        # drgn also lists x29 and x30 by their aliases fp and lr: one name each
        regs.pop("fp", None)
        regs.pop("lr", None)
    return regs


def _pt_regs_on_stack(prog: Program, regs: dict[str, int]) -> bool:
    """Whether ``regs`` (ip, cs, flags, sp, ss) were pushed by an exception
    entry just below their own stack pointer."""
    try:
        tail = struct.pack("<5Q", regs["rip"], regs["cs"], regs["rflags"], regs["rsp"], regs["ss"])
        sp = regs["rsp"]
    except (KeyError, struct.error):
        return False
    if not sp >> 63:
        return False
    start = max(sp - 4096, sp & ~0x3FFF)  # stay on the same (16 KiB) stack
    try:
        window = prog.read(start, sp - start + 8 * 6)
    except drgn.FaultError:
        return False
    return window.find(tail) >= 0
