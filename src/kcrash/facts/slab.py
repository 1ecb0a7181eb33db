"""Slab facts: caches by size (crash's ``kmem -s``) and what an address is (``kmem ADDR``).

Why: an expert's second look at an OOM is the cache table, and at a general protection
fault on a poisoned pointer it is ``kmem ADDR``: which cache, which object, allocated or
free, and, when the kernel ran with ``slub_debug=U``, who allocated and who freed it.
drgn 0.3.0 ships the walking (``for_each_slab_cache``, ``slab_cache_usage``,
``slab_object_info``, ``stack_depot_fetch``); this module adds what it lacks: the table
row as crash prints it, the poison values the kernel writes (a TABLE), and the
allocation/free records SLUB keeps after each object (``struct track``).

SLUB only (every distribution kernel; SLAB was removed in 6.8, SLOB in 6.4).  Works on
the types BTF describes as well as on DWARF: ``struct kmem_cache``, ``struct slab``
(5.17+; ``struct page`` before) and ``struct track`` are all in vmlinux BTF.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

import drgn
from drgn.helpers.linux.slab import for_each_slab_cache, slab_cache_usage, slab_object_info

from ..target.frame_labels import kallsyms_name

#: Values the kernel writes on purpose, so that a pointer loaded from them is recognisable
#: (include/linux/poison.h; unchanged from 2.6 to 6.12). A register equal to one of them,
#: or made of one poison byte repeated, says where the value came from.
#: (name, the exact 64-bit value or None, the repeated byte or None, what it means)
POISONS: tuple[tuple[str, int | None, int | None, str], ...] = (
    ("POISON_FREE", None, 0x6B, "freed"),  # slub_debug=P: a freed object's bytes
    ("POISON_INUSE", None, 0x5A, "uninit"),  # slub_debug=P: allocated, never written
    ("POISON_END", None, 0xA5, "freed"),  # the last byte of a poisoned object
    ("SLUB_RED_ACTIVE", None, 0xCC, "redzone"),  # red zone of an allocated object
    ("SLUB_RED_INACTIVE", None, 0xBB, "redzone"),  # red zone of a free object
    # LIST_POISON1/2 (list_del() of a list_head; dead000000000000 = POISON_POINTER_DELTA
    # on x86-64 since 2.6.x), and the hlist/rb variants built the same way.
    ("LIST_POISON1", 0xDEAD000000000100, None, "list_deleted"),
    ("LIST_POISON2", 0xDEAD000000000122, None, "list_deleted"),
)


def poison_of(value: int) -> dict[str, str] | None:
    """The poison ``value`` is (``{"name", "kind"}``), or None.

    A value counts when it equals a poison exactly, or when at least its six high bytes
    repeat one poison byte (a poisoned pointer plus a small member offset:
    ``0x6b6b6b6b6b6b6bdf`` is ``dev->refcount`` read through a freed ``dev``)."""
    value &= (1 << 64) - 1
    for name, full, byte, kind in POISONS:
        if full is not None and value == full:
            return {"name": name, "kind": kind}
        if byte is not None and value >> 16 == int.from_bytes(bytes([byte]) * 6, "little"):
            return {"name": name, "kind": kind}
    return None


@contextlib.contextmanager
def every_cpu() -> Iterator[None]:
    """Let drgn's slab helpers see every CPU's per-CPU slabs, not only the online ones.

    Why: ``slab_cache_usage`` and ``slab_object_info`` count the objects free on each CPU's
    freelist over ``for_each_online_cpu``; at a panic the other CPUs stop and mark
    themselves offline (x86 stop_this_cpu(), smp_send_stop()), so in a dump only the
    panicking CPU is online and the objects free on the others would count as allocated
    (measured: inode_cache 5 objects off crash's ``kmem -s`` on a 2-CPU QEMU dump). A
    possible CPU that never ran has a zeroed per-CPU slab, which adds nothing."""
    import drgn.helpers.linux.slab as slab_helpers
    from drgn.helpers.linux.cpumask import for_each_possible_cpu

    from ..drgn_private import slab_cpu_walk

    slab_helpers.for_each_online_cpu = for_each_possible_cpu  # type: ignore[assignment]
    try:
        yield
    finally:
        slab_helpers.for_each_online_cpu = slab_cpu_walk  # type: ignore[assignment]


def _remote_frees(cache: drgn.Object) -> int:
    """Objects free on the CPUs' active slabs that drgn's ``slab_cache_usage`` leaves out.

    An active (frozen) slab hands its freelist to the CPU (``c->freelist``, which drgn
    counts); objects other CPUs free into it later go on ``slab->freelist`` and lower
    ``slab->inuse`` (mm/slub.c __slab_free()). crash's ``kmem -s`` counts them free and so
    does this (measured: task_struct 3 objects off crash on a 2-CPU dump). The active slab
    is ``c->slab`` since 5.17 (struct slab split from struct page), ``c->page`` before."""
    from drgn.helpers.linux.cpumask import for_each_possible_cpu
    from drgn.helpers.linux.percpu import per_cpu_ptr

    prog = cache.prog_
    n = 0
    for cpu in for_each_possible_cpu(prog):
        c = per_cpu_ptr(cache.cpu_slab, cpu)
        try:
            active = c.slab.read_()
        except AttributeError:
            active = c.page.read_()
        if active:
            n += active.objects.value_() - active.inuse.value_()
    return n


def _name(cache: drgn.Object) -> str:
    return cache.name.string_().decode(errors="replace")


def cache_rows(prog: drgn.Program) -> list[dict[str, Any]]:
    """One row per cache as crash's ``kmem -s`` prints it, biggest first.

    ``total_kb`` is what the cache's slabs occupy (slabs × pages per slab), the figure
    ``kmem -s`` calls SSIZE × SLABS and the kernel's OOM report "Total"."""
    page_size = prog["PAGE_SIZE"].value_()
    rows = []
    for cache in for_each_slab_cache(prog):
        with every_cpu():
            usage = slab_cache_usage(cache)
        free = usage.free_objs + _remote_frees(cache)
        # oo packs order and objects per slab: order in the bits above OO_SHIFT (16),
        # the same in 5.10 and 6.1 (struct kmem_cache_order_objects).
        order = cache.oo.x.value_() >> 16
        slab_bytes = page_size << order
        rows.append(
            {
                "name": _name(cache),
                "address": cache.value_(),
                "object_size": cache.object_size.value_(),
                "size": cache.size.value_(),
                "allocated": usage.num_objs - free,
                "total": usage.num_objs,
                "slabs": usage.num_slabs,
                "slab_kb": slab_bytes // 1024,
                "total_kb": usage.num_slabs * slab_bytes // 1024,
            }
        )
    rows.sort(key=lambda r: (-r["total_kb"], r["name"]))
    return rows


# SLAB_STORE_USER: the cache keeps a struct track for allocation and free after each
# object (slub_debug=U). A #define of 0x00010000 up to 6.8; since 6.9 the flags are
# built from enum _slab_flag_bits, whose _SLAB_STORE_USER gives the bit.
_STORE_USER_BEFORE_6_9 = 0x00010000


def _store_user_flag(prog: drgn.Program) -> int:
    try:
        return 1 << prog.constant("_SLAB_STORE_USER").value_()
    except LookupError:
        return _STORE_USER_BEFORE_6_9


def _info_end(cache: drgn.Object) -> int:
    """Offset of the first byte after an object's own data and its free pointer: where
    the tracks start (mm/slub.c get_info_end(), 5.7+). The free pointer sits after the
    object when it cannot live inside it (poisoning, RCU, a constructor): then
    ``offset >= inuse``."""
    inuse = cache.inuse.value_()
    if cache.offset.value_() >= inuse:
        return inuse + cache.prog_.type("void *").size
    return inuse


def _frames(prog: drgn.Program, pcs: Iterable[int]) -> list[dict[str, Any]]:
    out = []
    for pc in pcs:
        if not pc:
            break
        frame: dict[str, Any] = {"address": pc, "function": None, "offset": None, "module": None}
        try:
            sym = prog.symbol(pc)
        except LookupError:
            out.append(frame)
            continue
        # Named as bt names frames (kallsyms's labels and sizes), so a stack reads the same
        # with DWARF and without, and as crash and the kernel print it.
        name, addr, size = kallsyms_name(prog, sym, pc)
        frame["function"] = name
        frame["offset"] = pc - addr
        frame["size"] = size
        mod = getattr(sym, "module", None) or _module_of(prog, pc)
        frame["module"] = mod
        out.append(frame)
    return out


def _module_of(prog: drgn.Program, pc: int) -> str | None:
    """Name of the loadable module whose code holds ``pc`` (None for vmlinux)."""
    try:
        mod = prog.module(pc)
    except (LookupError, AttributeError):
        return None
    return None if isinstance(mod, drgn.MainModule) else mod.name


def _track_stack(prog: drgn.Program, track: drgn.Object) -> list[int]:
    """The saved call stack of one ``struct track``.

    Kernel history: up to 5.16 ``addrs[TRACK_ADDRS_COUNT]`` (16 return addresses, 0 at
    the end) with CONFIG_STACKTRACE; since 5.17 (commit 788691464c29 "mm/slub: use
    stackdepot to save stack trace in objects") a ``depot_stack_handle_t handle`` into
    the stack depot, 0 when the depot was full or not initialised."""
    try:
        addrs = track.addrs
    except AttributeError:
        pass
    else:
        return [a.value_() for a in addrs]
    handle = track.handle
    if not handle.value_():
        return []
    from drgn.helpers.linux.stackdepot import stack_depot_fetch

    trace = stack_depot_fetch(handle)
    if trace is None:
        return []
    # With DWARF, drgn lists a PC's inlined callers as frames of the same PC: one is enough.
    pcs: list[int] = []
    for fr in trace:
        if not pcs or fr.pc != pcs[-1]:
            pcs.append(fr.pc)
    return pcs


def object_tracks(cache: drgn.Object, address: int) -> dict[str, Any] | None:
    """The allocation and free records SLUB stored after the object at ``address``, or
    None when the cache does not store them (booted without ``slub_debug=U``)."""
    prog = cache.prog_
    if not cache.flags.value_() & _store_user_flag(prog):
        return None
    base = address + _info_end(cache)
    track_type = prog.type("struct track")
    now = prog["jiffies"].value_()
    out: dict[str, Any] = {}
    for i, which in enumerate(("alloc", "free")):
        t = drgn.Object(prog, track_type, address=base + i * track_type.size)
        caller = t.addr.value_()
        if not caller:  # never allocated / never freed
            out[which] = None
            continue
        when = t.when.value_()
        out[which] = {
            "caller": _frames(prog, [caller])[0],
            "pid": t.pid.value_(),
            "cpu": t.cpu.value_(),
            "jiffies_ago": (now - when) & ((1 << 64) - 1),
            "stack": _frames(prog, _track_stack(prog, t)),
        }
    return out


def object_info(prog: drgn.Program, address: int) -> dict[str, Any] | None:
    """What crash's ``kmem ADDR`` says of a slab address: cache, object, offset inside,
    allocated or free, and the tracks. None when ``address`` is not in a slab page."""
    try:
        with every_cpu():
            info = slab_object_info(prog, address)
    except (drgn.FaultError, ValueError, LookupError):
        return None
    if info is None or not info.slab_cache:
        return None
    cache = info.slab_cache
    out: dict[str, Any] = {
        "address": address,
        "cache": _name(cache),
        "cache_address": cache.value_(),
        "object": info.address,
        "offset": address - info.address,
        "object_size": cache.object_size.value_(),
        "allocated": info.allocated,
        "tracks": None,
        "lacks": [],
    }
    try:
        out["tracks"] = object_tracks(cache, info.address)
    except (drgn.FaultError, LookupError, ValueError) as exc:
        out["lacks"].append(f"slub_debug tracks unreadable: {exc}")
    return out


#: Registers worth looking at for a pointer, in the order the kernel prints them.
_REGS = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8", "r9", "r10", "r11", "r12",
         "r13", "r14", "r15")  # fmt: skip


def bad_pointers(
    prog: drgn.Program, regs: dict[str, int], fault_address: int | None
) -> list[dict[str, Any]]:
    """The fault address and the fault's registers that are poison or point into a slab
    object: each with where it was seen (``fault address``/``rax``…) and what it is.

    Why registers: a use-after-free under ``slub_debug=P`` faults on the *poison* read
    out of the freed object (0x6b6b…), not on the object's address; that address is
    usually still in another register, the base of the load that produced the poison."""
    seen: list[tuple[str, int]] = []
    if fault_address is not None:
        seen.append(("fault_address", fault_address))
    seen += [(r, regs[r]) for r in _REGS if r in regs]
    out: list[dict[str, Any]] = []
    done: set[int] = set()
    for where, value in seen:
        value &= (1 << 64) - 1
        poison = poison_of(value)
        if poison is not None:
            out.append({"where": where, "value": value, "poison": poison, "slab": None})
            continue
        if value < 1 << 63 or value in done:  # user space and kernel addresses only once
            continue
        obj = object_info(prog, value)
        if obj is not None:
            done.add(value)
            out.append({"where": where, "value": value, "poison": None, "slab": obj})
    return out
