"""Data symbols of a kernel whose kallsyms holds code only (no ``CONFIG_KALLSYMS_ALL``).

Why: Debian's arm64 kernels (6.1 at least) are built without
``CONFIG_KALLSYMS_ALL``, so kallsyms names functions but no variable: no
``__start_BTF``, ``init_task``, ``init_uts_ns``.  Without vmlinux the
no-debuginfo mode then has neither types nor a way into the task list.  What
the dump still says, each checked before it is used:

* ``SYMBOL(name)`` entries of VMCOREINFO (``init_uts_ns``, ``prb``,
  ``swapper_pg_dir``, ``mem_section`` … since v2.6.24, more over time);
* ``__start_BTF``/``__stop_BTF``: the vmlinux BTF blob lies in the read-only
  data after the kernel text (``.BTF`` in ``RO_DATA``, v5.2+); its 24-byte
  header (magic 0xeb9f, version 1, ``hdr_len`` 24) is searched from ``_etext``
  and accepted when its type and string sections fit and the string section
  starts with the empty string;
* ``init_task`` (the boot CPU's idle task, statically allocated in ``.data``):
  the 16 bytes ``swapper/0`` of its ``comm`` searched below ``init_uts_ns``
  (both in ``.data``), accepted when, read as a ``struct task_struct`` (BTF),
  its pid is 0, its ``tasks`` list links back to it and it is its own
  ``group_leader``.
"""

from __future__ import annotations

import contextlib
import re
import struct
from collections.abc import Callable

import drgn
from drgn import Program

from . import kallsyms

#: BTF header: magic 0xeb9f, version 1, flags 0, hdr_len 24 (include/uapi/linux/btf.h).
_BTF_HEADER = struct.pack("<HBBI", 0xEB9F, 1, 0, 24)
_BTF_SCAN = 32 << 20  # rodata of a distribution kernel is ~10-20 MiB
_DATA_SCAN = 24 << 20  # .data below init_uts_ns
_CHUNK = 1 << 20
_PAGE = 4096
_INIT_COMM = b"swapper/0".ljust(16, b"\0")  # TASK_COMM_LEN 16, init/init_task.c


def vmcoreinfo_symbols(prog: Program) -> dict[str, int]:
    """The ``SYMBOL(name)=address`` entries of the dump's VMCOREINFO."""
    try:
        info = prog["VMCOREINFO"].string_().decode("ascii", "replace")
    except (LookupError, drgn.FaultError):
        return {}
    return kallsyms.vmcoreinfo_symbols(info)


def _scan(read: Callable[[int, int], bytes], start: int, span: int, needle: bytes) -> list[int]:
    """Addresses of ``needle`` in [start, start + span), read in 1 MiB chunks; a chunk
    with unmapped pages (vmalloc space) is read page by page, the holes skipped."""
    hits: list[int] = []
    overlap = len(needle) - 1

    def search(base: int, data: bytes) -> None:
        pos = data.find(needle)
        while pos >= 0:
            hits.append(base + pos)
            pos = data.find(needle, pos + 1)

    for base in range(start, start + span, _CHUNK):
        try:
            search(base, read(base, _CHUNK + overlap))
            continue
        except drgn.FaultError:
            pass
        for page in range(base, base + _CHUNK, _PAGE):
            try:
                data = read(page, _PAGE)
            except drgn.FaultError:
                continue
            with contextlib.suppress(drgn.FaultError):
                data += read(page + _PAGE, overlap)
            search(page, data)
    return sorted(set(hits))


def find_btf(prog: Program) -> tuple[int, int] | None:
    """``(__start_BTF, __stop_BTF)`` found after the kernel text, or None."""
    start = kallsyms.symbol_address(prog, "_etext")
    if start is None:
        return None
    for addr in _scan(prog.read, start, _BTF_SCAN, _BTF_HEADER):
        try:
            hdr = prog.read(addr, 24)
            type_off, type_len, str_off, str_len = struct.unpack_from("<4I", hdr, 8)
            if type_off != 0 or str_off < type_len or not 0 < str_len < 64 << 20:
                continue
            size = 24 + str_off + str_len
            if prog.read(addr + 24 + str_off, 1) != b"\0":
                continue
        except drgn.FaultError:
            continue
        return addr, addr + size
    return None


def _type_and_offsets(
    prog: Program, name: str, *members: str
) -> tuple[drgn.Type, list[int]] | None:
    """A type (BTF) and the byte offsets of some of its members, or None."""
    try:
        typ = prog.type(name)
        return typ, [drgn.offsetof(typ, m) for m in members]
    except (LookupError, ValueError):
        return None


def find_init_task(prog: Program, near: int) -> int | None:
    """``init_task``'s address, searched below ``near`` (``init_uts_ns``) with BTF types."""
    got = _type_and_offsets(prog, "struct task_struct", "comm", "tasks")
    if got is None:
        return None
    task_type, (comm_off, tasks_off) = got
    for hit in reversed(_scan(prog.read, near - _DATA_SCAN, _DATA_SCAN, _INIT_COMM)):
        addr = hit - comm_off
        try:
            task = drgn.Object(prog, task_type, address=addr)
            if task.pid.value_() != 0 or task.group_leader.value_() != addr:
                continue
            nxt = task.tasks.next.value_()
            back = prog.read_u64(nxt + 8)  # list_head.prev of the next task
            if back == addr + tasks_off:
                return addr
        except (drgn.FaultError, LookupError, AttributeError):
            continue
    return None


def from_init_task(prog: Program, init_task: int) -> dict[str, int]:
    """Globals ``init_task`` points at: ``init_pid_ns`` (its pid's namespace, the one
    drgn's task and PID helpers walk), ``init_nsproxy`` and ``init_mm`` (its
    ``active_mm``; a kernel thread has no ``mm``)."""
    out: dict[str, int] = {}
    try:
        task = drgn.Object(prog, "struct task_struct", address=init_task)
        out["init_pid_ns"] = task.thread_pid.numbers[0].ns.value_()
        out["init_nsproxy"] = task.nsproxy.value_()
        out["init_mm"] = task.active_mm.value_()
    except (drgn.FaultError, LookupError, AttributeError, IndexError):
        pass
    return {k: v for k, v in out.items() if v}


class DataSymbols:
    """A drgn symbol finder over the data symbols found here (name -> address)."""

    def __init__(self, symbols: dict[str, int]) -> None:
        self.symbols = dict(symbols)

    def __call__(
        self, prog: Program, name: str | None, address: int | None, one: bool
    ) -> list[drgn.Symbol]:
        out = []
        for sym, addr in self.symbols.items():
            if (name is not None and sym != name) or (address is not None and addr != address):
                continue
            out.append(drgn.Symbol(sym, addr, 0, drgn.SymbolBinding.GLOBAL, drgn.SymbolKind.OBJECT))
            if one:
                break
        return out


#: "Modules linked in: a(OE) b [last unloaded: c]" (lib/dump_stack.c, print_modules()).
_MODULES_LINE_RE = re.compile(r"Modules linked in:(?P<mods>.*)")
#: A module whose load tainted the kernel names itself (kernel/module/main.c, v6.1:
#: "kcrash_crash: loading out-of-tree module taints kernel.", and the signature check's
#: "…: module verification failed: …"). A panic() or a sysrq crash prints no "Modules
#: linked in:" line (only an oops, a BUG or a WARN do): these lines still name a module.
_TAINTING_MODULE_RE = re.compile(
    r"^(?P<name>[\w-]+): (?:loading out-of-tree module taints kernel|module verification failed)"
)


def logged_module_names(log_text: list[str]) -> list[str]:
    """Module names the log gives: those of its last "Modules linked in:" line (taint
    flags off), else those of the modules whose loading tainted the kernel."""
    for text in reversed(log_text):
        m = _MODULES_LINE_RE.search(text)
        if m:
            body = re.sub(r"\[last unloaded: [^\]]*\]", "", m.group("mods"))
            return [re.sub(r"\(\w+\)$", "", tok) for tok in body.split()]
    names: list[str] = []
    for text in log_text:
        m = _TAINTING_MODULE_RE.match(text)
        if m and m.group("name") not in names:
            names.append(m.group("name"))
    return names


def find_modules_head(prog: Program, names: list[str], area: tuple[int, int]) -> int | None:
    """The ``modules`` list head, reached from a ``struct module`` found by its name.

    A module's ``struct module`` lives in its own allocation inside the module area
    (arm64: VMCOREINFO ``NUMBER(MODULES_VADDR)``/``NUMBER(MODULES_END)``, v5.x+); its
    ``name`` is searched there for each module the log names, the candidate accepted
    when its state is live, coming or going (0-2) and its ``list`` links both ways.
    Following ``list`` leads to the one node inside the kernel image (after
    ``_stext``, within its 256 MiB): the head, in the kernel's ``.data``.
    """
    lo, hi = area
    image = kallsyms.symbol_address(prog, "_stext")
    if image is None:
        return None
    got = _type_and_offsets(prog, "struct module", "name", "list")
    if got is None:
        return None
    mod_type, (name_off, list_off) = got
    for name in names:
        needle = name.encode() + b"\0"
        for hit in _scan(prog.read, lo, hi - lo, needle):
            addr = hit - name_off
            try:
                mod = drgn.Object(prog, mod_type, address=addr)
                if mod.state.value_() not in (0, 1, 2):
                    continue
                node = addr + list_off
                for _ in range(4096):
                    nxt = prog.read_u64(node)
                    if prog.read_u64(nxt + 8) != node:
                        break
                    if image <= nxt < image + (256 << 20):
                        return nxt
                    node = nxt
            except (drgn.FaultError, LookupError, AttributeError):
                continue
    return None
