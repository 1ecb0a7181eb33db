"""What a blocked task waits on and who holds it, read from the dump (issue 18).

The second look at a hung machine, as an engineer does it with crash: take a task in D
state, find the lock its stack sleeps in, read the lock's owner, and go on with that task.
Three questions, each answered from kernel structures only:

1. *What kind of wait* — the innermost frame of the stack found in :data:`WAIT_FRAMES`
   (``__mutex_lock`` = a mutex, ``rwsem_down_write_slowpath`` = an rwsem, …).
2. *Which object* — with DWARF, the frame's own argument (``lock`` of ``__mutex_lock``)
   when the compiler kept it; otherwise every word on the task's stack is a candidate (the
   lock pointer sits in a callee-saved register that ``schedule()`` pushed, and the waiter
   the lock's wait list links to lives on the same stack), and a candidate is *proved*, not
   guessed: the task's own waiter must be on that object's wait list. This needs only the
   struct layouts, which BTF has, so it works without debuginfo.
3. *Who holds it* — ``mutex.owner`` and ``rw_semaphore.owner`` (drgn's helpers decode the
   flag bits of every kernel version), the reader count of an rwsem; semaphores and
   completions record no owner, and a qspinlock records no holder: that is said, not guessed.

Names come from kallsyms (``kcrash_lock_a``; a member of a global with DWARF:
``kcrash_hang_dev.io_lock``) or from the slab (``an object of kmalloc-192``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import drgn

from ..model import LockFact, Stack, TaskWait

if TYPE_CHECKING:
    from ..target.open import Target


@dataclass(frozen=True)
class WaitFrame:
    """One row of the wait table: a function a sleeping or spinning task sits in."""

    function: str  #: base name (compiler suffixes like ``.constprop.0`` are ignored)
    kind: str  #: mutex, rwsem-write, rwsem-read, semaphore, completion, spinlock, …
    #: DWARF name of the argument holding the object, "" when the wait has no object
    argument: str
    reason: str  #: why this frame means that wait


#: Innermost first wins; ``schedule*`` and ``__schedule`` are in no row (every sleep has
#: them). Rows with an ``argument`` name an object the table :data:`LOCK_TYPES` can prove.
WAIT_FRAMES: tuple[WaitFrame, ...] = (
    WaitFrame("__mutex_lock", "mutex", "lock", "mutex_lock()'s slow path sleeps for the owner"),
    WaitFrame("__mutex_lock_common", "mutex", "lock", "the same, where it is not inlined"),
    WaitFrame("__mutex_lock_slowpath", "mutex", "lock", "older kernels' slow path"),
    WaitFrame("__ww_mutex_lock", "mutex", "lock", "a wound/wait mutex is a mutex inside"),
    WaitFrame("rwsem_down_write_slowpath", "rwsem-write", "sem", "down_write() (since v5.3)"),
    WaitFrame("rwsem_down_read_slowpath", "rwsem-read", "sem", "down_read() (since v5.3)"),
    WaitFrame("rwsem_down_write_failed", "rwsem-write", "sem", "down_write() before v5.3"),
    WaitFrame("rwsem_down_read_failed", "rwsem-read", "sem", "down_read() before v5.3"),
    WaitFrame("__down_common", "semaphore", "sem", "down() and its variants sleep here"),
    WaitFrame("__down", "semaphore", "sem", "down() where __down_common is inlined"),
    WaitFrame("__down_killable", "semaphore", "sem", "down_killable()"),
    WaitFrame("__down_interruptible", "semaphore", "sem", "down_interruptible()"),
    WaitFrame("__down_timeout", "semaphore", "sem", "down_timeout()"),
    WaitFrame("__wait_for_common", "completion", "x", "every wait_for_completion*()"),
    WaitFrame("wait_for_common", "completion", "x", "wait_for_completion() when inlined"),
    WaitFrame("wait_for_common_io", "completion", "x", "wait_for_completion_io()"),
    WaitFrame("wait_for_completion", "completion", "x", "no inner frame left"),
    WaitFrame("native_queued_spin_lock_slowpath", "spinlock", "", "a contended qspinlock"),
    WaitFrame("queued_spin_lock_slowpath", "spinlock", "", "the same without paravirt"),
    WaitFrame("queued_read_lock_slowpath", "rwlock", "", "a contended rwlock (read)"),
    WaitFrame("queued_write_lock_slowpath", "rwlock", "", "a contended rwlock (write)"),
    WaitFrame("mutex_spin_on_owner", "mutex-spin", "", "spins while the mutex owner runs"),
    WaitFrame("osq_lock", "mutex-spin", "", "queued for the optimistic spin of a mutex/rwsem"),
    WaitFrame("folio_wait_bit_common", "page", "", "a page/folio lock or writeback (v5.16+)"),
    WaitFrame("wait_on_page_bit_common", "page", "", "a page lock or writeback (< v5.16)"),
    WaitFrame("__wait_on_bit", "bit", "", "wait_on_bit(): a flag bit of some object"),
    WaitFrame("__wait_on_bit_lock", "bit", "", "wait_on_bit_lock()"),
    WaitFrame("__wait_on_buffer", "io", "", "a buffer head under I/O"),
    WaitFrame("blk_mq_get_tag", "io", "", "no free request tag on a block device"),
    WaitFrame("rq_qos_wait", "io", "", "block-layer throttling (wbt)"),
    WaitFrame("io_schedule", "io", "", "waits for I/O to finish"),
    WaitFrame("io_schedule_timeout", "io", "", "the same, waking now and then (blk_io_schedule)"),
    WaitFrame(
        "bd_prepare_to_claim", "claim", "", "another opener claims the whole block device (v5.10+)"
    ),
    WaitFrame("synchronize_rcu", "rcu", "", "waits for an RCU grace period"),
    WaitFrame("synchronize_rcu_expedited", "rcu", "", "waits for an expedited grace period"),
    WaitFrame("__synchronize_srcu", "rcu", "", "waits for an SRCU grace period"),
    WaitFrame("rcu_barrier", "rcu", "", "waits for every RCU callback"),
    WaitFrame("msleep", "sleep", "", "sleeps for a time (not waiting for anyone)"),
    WaitFrame("usleep_range_state", "sleep", "", "sleeps for a time"),
    WaitFrame("schedule_hrtimeout_range_clock", "sleep", "", "sleeps for a time"),
)
_BY_FUNCTION = {row.function: row for row in WAIT_FRAMES}
_SUFFIX = re.compile(r"(\.(constprop|isra|part|cold|lto_priv)(\.\d+)?)+$")


@dataclass(frozen=True)
class LockType:
    """How to prove that a task waits on an object of one type: its wait list's entries."""

    struct: str  #: the lock's type
    wait_list: str  #: member path of the list head in the lock
    waiter: str  #: type of the wait-list entries
    link: str  #: the entry's list member
    task: str  #: the entry's task member


#: Since v2.6.16 (mutex) / v5.3 (rwsem in C) the waiters sit on the sleeping task's stack,
#: linked into the lock's wait list; completions queue a ``swait_queue`` since v4.19.
LOCK_TYPES: dict[str, LockType] = {
    "mutex": LockType("struct mutex", "wait_list", "struct mutex_waiter", "list", "task"),
    "rwsem": LockType("struct rw_semaphore", "wait_list", "struct rwsem_waiter", "list", "task"),
    "semaphore": LockType(
        "struct semaphore", "wait_list", "struct semaphore_waiter", "list", "task"
    ),
    "completion": LockType(
        "struct completion", "wait.task_list", "struct swait_queue", "task_list", "task"
    ),
}

#: A wait list longer than this is not followed further (a corrupt list must not hang us).
#: Thousands of waiters are real (issue 19's crowd: 6,000 threads behind one mutex); a
#: walk that has not come back to its head after this many entries proves nothing.
MAX_WAITERS = 1 << 16
_KERNEL_MIN = 0xFFFF800000000000
#: prog.cache key of the wait lists already walked: (struct, address) -> tasks or None.
_WAIT_LISTS = "kcrash.locks.wait_lists"


#: Waits whose object is a page or a flag bit, found by its wait entry (facts.io).
OBJECT_KINDS = ("page", "bit", "io")


def base_name(function: str | None) -> str:
    """``__mutex_lock.constprop.0`` -> ``__mutex_lock``: the compiler's clones are one row."""
    return _SUFFIX.sub("", function or "")


def wait_frame(stack: Stack) -> tuple[int, WaitFrame] | None:
    """Index and row of the innermost frame of ``stack`` that says what the task waits on."""
    for i, fr in enumerate(stack.frames):
        row = _BY_FUNCTION.get(base_name(fr.function))
        if row is not None:
            return i, row
    return None


def lock_type_of(kind: str) -> LockType | None:
    """The provable type of a wait kind (``rwsem-write`` and ``rwsem-read`` are rwsems)."""
    return LOCK_TYPES.get(kind.split("-")[0])


def waits_on(prog: drgn.Program, ltype: LockType, address: int, task: int) -> bool:
    """Is ``task`` (a ``task_struct`` address) queued on the object at ``address``?"""
    tasks = wait_list_tasks(prog, ltype, address)
    return tasks is not None and task in tasks


def wait_list_tasks(prog: drgn.Program, ltype: LockType, address: int) -> frozenset[int] | None:
    """The tasks queued on the object at ``address``, or None when it has no sound wait list.

    The wait list must be a sound circular list (every ``next->prev`` points back, the
    walk returns to the head): a stack word that only looks like a lock (its wait list
    head 8 bytes off, where ``prev`` happens to lead to the waiter) is not accepted.
    Each list is walked once per program (``prog.cache``): the waiters of one lock share
    it, and a list of 6,000 is 18,000 reads."""
    cache: dict[tuple[str, int], frozenset[int] | None] = prog.cache.setdefault(_WAIT_LISTS, {})
    key = (ltype.struct, address)
    if key not in cache:
        cache[key] = _walk_wait_list(prog, ltype, address)
    return cache[key]


def _walk_wait_list(prog: drgn.Program, ltype: LockType, address: int) -> frozenset[int] | None:
    try:
        obj = drgn.Object(prog, ltype.struct, address=address)
        head = obj.subobject_(ltype.wait_list).address_
        link = drgn.Object(prog, ltype.waiter, address=0)
        link_off = link.member_(ltype.link).address_
        task_off = link.member_(ltype.task).address_
        tasks: set[int] = set()
        node = head
        for _ in range(MAX_WAITERS):
            nxt = prog.read_u64(node)
            if nxt < _KERNEL_MIN or prog.read_u64(nxt + 8) != node:
                return None
            if nxt == head:
                return frozenset(tasks)
            tasks.add(prog.read_u64(nxt - link_off + task_off))
            node = nxt
    except (drgn.FaultError, LookupError, ValueError, OverflowError):
        return None
    return None


def _stack_words(prog: drgn.Program, task: drgn.Object) -> list[int]:
    """The words of the task's kernel stack, from its saved stack pointer up."""
    from .io import stack_words

    return [value for _, value in stack_words(prog, task)]


def find_object_on_stack(prog: drgn.Program, task: drgn.Object, ltype: LockType) -> int | None:
    """The object the task waits on, from the words of its stack, proved by its wait list.

    A word is either the object's address (a saved register) or the address of its wait
    list head (the waiter's ``list.next`` when it is the first or only waiter)."""
    t = drgn.Object(prog, ltype.struct, address=0)
    off = t.subobject_(ltype.wait_list).address_
    seen: set[int] = set()
    for w in _stack_words(prog, task):
        if w < _KERNEL_MIN:
            continue
        for cand in (w, w - off):
            if cand in seen or cand & 7:
                continue
            seen.add(cand)
            if waits_on(prog, ltype, cand, task.value_()):
                return cand
    return None


def _from_dwarf(target: Target, task: drgn.Object, row: WaitFrame, ltype: LockType) -> int | None:
    """The wait frame's own argument (DWARF), when the compiler kept it and it is proved."""
    try:
        trace = target.prog.stack_trace(task)
    except (ValueError, LookupError, drgn.FaultError):
        return None
    for fr in trace:
        if base_name(fr.name) != row.function:
            continue
        try:
            val = fr[row.argument]
            if val.absent_:
                return None
            addr = val.value_()
        except (KeyError, LookupError, ValueError, drgn.FaultError, drgn.ObjectAbsentError):
            return None
        return addr if waits_on(target.prog, ltype, addr, task.value_()) else None
    return None


def lock_name(target: Target, address: int, struct: str | None = None) -> tuple[str | None, str]:
    """A name for the object at ``address`` (of type ``struct``) and how it was found.

    ``("kcrash_lock_a", "symbol")``; a member of a global: with DWARF
    ``("kcrash_hang_dev.io_lock", "member")``, without it
    ``("kcrash_hang_dev+0x10", "symbol+offset")`` (which member needs the variable's type);
    a slab object ``("kmalloc-192", "slab")``; a module's variable that no symbol names
    ``("kcrash_crash", "module-data")`` (kallsyms without ``CONFIG_KALLSYMS_ALL`` lists a
    module's code only: Debian's arm64); ``(None, "unknown")`` when nothing names it.
    """
    prog = target.prog
    try:
        sym = prog.symbol(address)
        off = address - sym.address
        if off == 0:
            return sym.name, "symbol"
        if 0 < off < (sym.size or 0):
            if target.mode == "dwarf" and struct:
                member = _global_member(prog, sym.name, off, struct)
                if member:
                    return f"{sym.name}.{member}", "member"
            return f"{sym.name}+{off:#x}", "symbol+offset"
    except LookupError:
        pass
    module = _module_holding(prog, address)
    if module is not None:
        return module, "module-data"
    if struct:
        got = object_lock_name(prog, address, struct)
        if got is not None:
            return got[0], "object"
    try:
        from drgn.helpers.linux.slab import slab_object_info

        info = slab_object_info(prog, address)
        if info is not None and info.slab_cache:
            return info.slab_cache.name.string_().decode(errors="replace"), "slab"
    except (LookupError, ValueError, drgn.FaultError, AttributeError, TypeError):
        pass
    return None, "unknown"


def _module_holding(prog: drgn.Program, address: int) -> str | None:
    """The loaded module (not the kernel) whose memory holds ``address``, if any."""
    try:
        module = prog.module(address)
    except (LookupError, ValueError):
        return None
    name = getattr(module, "name", None)
    return name if name and name != "kernel" and not name.startswith("/") else None


@dataclass(frozen=True)
class Container:
    """A kind of heap object locks live in, named the way lockdep names their classes
    (``&sb->s_umount``: the variable of ``init_rwsem(&sb->s_umount)`` and the member), and
    how an address is proved to be one (never taken from the slab cache's name alone:
    super blocks, disks and mm's come from kmalloc caches)."""

    struct: str
    var: str  #: the variable name kernel code and lockdep use for it
    proof: str  #: key of :data:`_PROOFS`
    reason: str


CONTAINERS: tuple[Container, ...] = (
    Container("struct super_block", "sb", "super_blocks", "every one is on super_blocks"),
    Container(
        "struct inode", "inode", "inode", "its i_sb is a super block, i_mapping its own i_data"
    ),
    Container("struct mm_struct", "mm", "task_mm", "a task's mm (or init_mm)"),
    Container("struct signal_struct", "sig", "task_signal", "a task's signal"),
    Container("struct gendisk", "disk", "disks", "a registered disk (block_class)"),
    Container("struct request_queue", "q", "queues", "a registered disk's queue"),
)
_CONTAINER_KEY = "kcrash.lock_containers"


def object_lock_name(
    prog: drgn.Program, address: int, struct: str
) -> tuple[str, dict[str, Any]] | None:
    """``("&sb->s_umount", {"kind": "super-block", "name": "nullb0", "fs": "ext4"})`` for a
    lock inside a heap object :data:`CONTAINERS` knows and can prove, else None: the name
    and what the object is (a message id's suffix and its parameters, ``hang.container.*``).
    Types only (BTF is enough)."""
    for c in CONTAINERS:
        for off, path in _lock_members(prog, c.struct, struct):
            base = address - off
            try:
                what = _PROOFS[c.proof](prog, base)
            except (drgn.FaultError, LookupError, ValueError, AttributeError, TypeError):
                what = None
            if what is not None:
                return f"&{c.var}->{path}", what
    return None


def _lock_members(prog: drgn.Program, container: str, struct: str) -> list[tuple[int, str]]:
    """(offset, member path) of every ``struct`` inside ``container`` (nested structs and
    anonymous unions followed, arrays and pointers not), cached per program."""
    cache = prog.cache.setdefault(_CONTAINER_KEY, {})
    key = ("members", container, struct)
    if key not in cache:
        try:
            want = prog.type(struct)
            cache[key] = list(_walk_members(prog.type(container), want, 0, "", 0))
        except LookupError:
            cache[key] = []
    return cache[key]


def _walk_members(t: drgn.Type, want: drgn.Type, base: int, prefix: str, depth: int):  # type: ignore[no-untyped-def]
    t = _strip(t)
    if depth > 6 or t.kind not in (drgn.TypeKind.STRUCT, drgn.TypeKind.UNION):
        return
    for m in t.members or ():
        if m.bit_offset % 8:  # a bit field: no lock there
            continue
        mt = _strip(m.type)
        off = base + m.bit_offset // 8
        path = f"{prefix}.{m.name}" if prefix and m.name else (m.name or prefix)
        if _same(mt, want):
            yield off, path
        elif mt.kind in (drgn.TypeKind.STRUCT, drgn.TypeKind.UNION):
            yield from _walk_members(mt, want, off, path, depth + 1)


def _proof_set(prog: drgn.Program, name: str, build) -> dict[int, Any]:  # type: ignore[no-untyped-def]
    cache = prog.cache.setdefault(_CONTAINER_KEY, {})
    if name not in cache:
        try:
            cache[name] = build(prog)
        except (drgn.FaultError, LookupError, ValueError, AttributeError, TypeError):
            cache[name] = {}
    return cache[name]


def _super_blocks(prog: drgn.Program) -> dict[int, dict[str, Any]]:
    """Super block address -> its id and file system type, from the super_blocks list (read
    at its kallsyms address: no variable type needed without DWARF)."""
    head = prog.symbol("super_blocks").address
    off = drgn.offsetof(prog.type("struct super_block"), "s_list")
    out: dict[int, dict[str, Any]] = {}
    node = prog.read_u64(head)
    while node != head and len(out) < 4096:
        sb = drgn.Object(prog, "struct super_block", address=node - off)
        fs = sb.s_type.name.string_().decode(errors="replace")
        out[node - off] = {"name": sb.s_id.string_().decode(errors="replace"), "fs": fs}
        node = prog.read_u64(node)
    return out


def _task_members(prog: drgn.Program, member: str) -> dict[int, dict[str, Any]]:
    from drgn.helpers.linux.pid import for_each_task

    out: dict[int, dict[str, Any]] = {}
    for t in for_each_task(prog):
        ptr = getattr(t, member).value_()
        if ptr and ptr not in out:
            out[ptr] = {"comm": t.comm.string_().decode(errors="replace"), "pid": t.pid.value_()}
    return out


def _disks(prog: drgn.Program, member: str | None) -> dict[int, dict[str, Any]]:
    from drgn.helpers.linux.block import disk_name, for_each_disk

    return {
        (getattr(d, member) if member else d).value_(): {
            "name": disk_name(d).decode(errors="replace")
        }
        for d in for_each_disk(prog)
    }


def _prove(kind: str, name: str, build):  # type: ignore[no-untyped-def]
    """A proof: the object is a key of the set ``build`` makes; what it is, for words."""

    def prove(prog: drgn.Program, base: int) -> dict[str, Any] | None:
        got = _proof_set(prog, name, build).get(base)
        return {"kind": kind, **got} if got is not None else None

    return prove


def _prove_inode(prog: drgn.Program, base: int) -> dict[str, Any] | None:
    inode = drgn.Object(prog, "struct inode", address=base)
    sb = _proof_set(prog, "super_blocks", _super_blocks).get(inode.i_sb.value_())
    if sb is None or inode.i_mapping.value_() != inode.i_data.address_of_().value_():
        return None
    return {"kind": "inode", "ino": inode.i_ino.value_(), **sb}


_PROOFS = {
    "super_blocks": _prove("super-block", "super_blocks", _super_blocks),
    "inode": _prove_inode,
    "task_mm": _prove("mm", "task_mm", lambda p: _task_members(p, "mm")),
    "task_signal": _prove("signal", "task_signal", lambda p: _task_members(p, "signal")),
    "disks": _prove("disk", "disks", lambda p: _disks(p, None)),
    "queues": _prove("queue", "queues", lambda p: _disks(p, "queue")),
}


def _global_member(prog: drgn.Program, name: str, offset: int, struct: str) -> str | None:
    """The member of global ``name`` that is the ``struct`` at ``offset`` (DWARF gives the
    variable's type): ``io_lock``, ``queues[2].lock``."""
    try:
        want = prog.type(struct)
        return _member_path(prog.object(name).type_, offset, want)
    except (LookupError, ValueError, TypeError):
        return None


def _member_path(t: drgn.Type, offset: int, want: drgn.Type, depth: int = 0) -> str | None:
    t = _strip(t)
    if depth > 8:
        return None
    if t.kind == drgn.TypeKind.ARRAY and t.length:
        elem = _strip(t.type)
        size = drgn.sizeof(elem)
        if not size:
            return None
        idx, rest = divmod(offset, size)
        if idx >= t.length:
            return None
        sub = "" if rest == 0 and _same(elem, want) else _member_path(elem, rest, want, depth + 1)
        return None if sub is None else f"[{idx}]" + (f".{sub}" if sub else "")
    if t.kind not in (drgn.TypeKind.STRUCT, drgn.TypeKind.UNION):
        return None
    for m in t.members or ():
        mt = _strip(m.type)
        start = m.offset
        if start == offset and _same(mt, want):
            return m.name
        try:
            size = drgn.sizeof(mt)
        except TypeError:
            continue
        if start <= offset < start + size:
            sub = _member_path(mt, offset - start, want, depth + 1)
            if sub is not None:
                if not m.name:  # an anonymous struct/union: its members are the parent's
                    return sub
                return f"{m.name}.{sub}" if not sub.startswith("[") else f"{m.name}{sub}"
    return None


def _strip(t: drgn.Type) -> drgn.Type:
    while t.kind == drgn.TypeKind.TYPEDEF:
        t = t.type
    return t.unqualified()


def _same(a: drgn.Type, b: drgn.Type) -> bool:
    """The same struct (types of a module's DWARF and vmlinux's are distinct objects)."""
    return (
        a.kind == b.kind
        and a.kind in (drgn.TypeKind.STRUCT, drgn.TypeKind.UNION)
        and (a.tag == b.tag)
    )


def lock_fact(target: Target, kind: str, address: int, how: str) -> LockFact:
    """The lock at ``address``: its name and, where the kernel records one, its holder."""
    from drgn.helpers.linux.locking import mutex_owner, rwsem_locked, rwsem_owner

    prog = target.prog
    ltype = lock_type_of(kind)
    name, naming = lock_name(target, address, ltype.struct if ltype else None)
    fact = LockFact(kind=kind, address=address, name=name, naming=naming, found_by=how)
    if naming == "object" and ltype is not None:
        got = object_lock_name(prog, address, ltype.struct)
        fact.container = got[1] if got else None
    try:
        if kind == "mutex":
            lock = drgn.Object(prog, "struct mutex", address=address)
            fact.owner_task = mutex_owner(lock.address_of_()).value_() or None
            fact.state = "locked" if fact.owner_task else "unlocked"
        elif kind.startswith("rwsem"):
            sem = drgn.Object(prog, "struct rw_semaphore", address=address).address_of_()
            locked = rwsem_locked(sem).name  # UNLOCKED, READ_LOCKED, WRITE_LOCKED
            owner = rwsem_owner(sem).value_() or None
            fact.state = {"READ_LOCKED": "read-locked", "WRITE_LOCKED": "write-locked"}.get(
                locked, "unlocked"
            )
            if fact.state == "write-locked":
                fact.owner_task = owner
            elif fact.state == "read-locked":
                # Since v5.3: readers are counted from bit 8 (RWSEM_READER_SHIFT) of count
                # and owner keeps the last reader that took it (a hint: readers are not
                # tracked one by one).
                fact.readers = sem.count.counter.value_() >> 8 & 0x7FFFFFFFFFFFFF
                fact.last_reader_task = owner
        elif kind == "semaphore":
            sem = drgn.Object(prog, "struct semaphore", address=address)
            fact.count = sem.count.value_()
        elif kind == "completion":
            fact.count = drgn.Object(prog, "struct completion", address=address).done.value_()
    except (drgn.FaultError, LookupError, ValueError, AttributeError) as e:
        fact.error = str(e).splitlines()[0] if str(e) else type(e).__name__
    return fact


def claim_fact(target: Target, task: drgn.Object) -> LockFact | None:
    """The claim a task in ``bd_prepare_to_claim()`` waits for: a whole disk's block device
    whose ``bd_claiming`` is set (the claimer's holder cookie) and whose address is a word of
    the task's stack. The holder cookie is a pointer the claimer chose; when it is a function
    (``disk_scan_partitions`` since v5.17's partition scan), :func:`claim_holders` looks for
    the task running it."""
    from drgn.helpers.linux.block import disk_name, for_each_disk

    prog = target.prog
    try:
        words = set(_stack_words(prog, task))
        for disk in for_each_disk(prog):
            whole = disk.part0.value_()
            if whole not in words:
                continue
            cookie = disk.part0.bd_claiming.value_()
            if not cookie:
                continue
            name = disk_name(disk).decode(errors="replace")
            try:
                sym = prog.symbol(cookie)
                by = sym.name if sym.address == cookie else None
            except LookupError:
                by = None
            return LockFact(
                kind="claim",
                address=whole,
                name="&bdev->bd_claiming",
                naming="object",
                found_by="stack-claim",
                state="claimed",
                container={"kind": "bdev-claim", "name": name, "by": by},
                error=None,
                claim_holder=by,
            )
    except (drgn.FaultError, LookupError, ValueError, AttributeError):
        return None
    return None


def claim_holders(waits: list[TaskWait]) -> None:
    """A claim held by a function (the partition scan): its holder is the one task whose
    stack runs that function, if exactly one does."""
    for w in waits:
        lk = w.lock
        if lk is None or lk.kind != "claim" or not lk.claim_holder or lk.owner_task:
            continue
        running = [
            o.task
            for o in waits
            if o.stack and any(base_name(f.function) == lk.claim_holder for f in o.stack.frames)
        ]
        if len(running) == 1:
            lk.owner_task = running[0]


def task_wait(target: Target, task: drgn.Object, stack: Stack) -> TaskWait:
    """What one task waits on (kind, object, holder), from its stack and the structures."""
    from .tasks import crash_state

    wait = TaskWait(
        pid=stack.pid if stack.pid is not None else task.pid.value_(),
        comm=stack.comm or task.comm.string_().decode(errors="replace"),
        task=task.value_(),
        state=crash_state(task),
    )
    found = wait_frame(stack)
    if found is None:
        return wait
    index, row = found
    wait.kind, wait.frame_index, wait.function = row.kind, index, stack.frames[index].function
    if row.kind in OBJECT_KINDS:
        from .io import task_object_wait

        # folio_wait_bit_common() and __wait_on_bit() sleep in io_schedule(): the wait
        # entry on the stack says which of them it is, and on what.
        wait.object = task_object_wait(target, task)
        if wait.object is not None:
            wait.kind = wait.object.kind
            # Name the frame of that wait (folio_wait_bit_common), not io_schedule.
            for i, fr in enumerate(stack.frames[index:], index):
                got = _BY_FUNCTION.get(base_name(fr.function))
                if got is not None and got.kind == wait.kind:
                    wait.frame_index, wait.function = i, fr.function
                    break
        return wait
    if row.kind == "claim":
        wait.lock = claim_fact(target, task)
        if wait.lock is None:
            wait.unknown = "not-on-stack"
        return wait
    if row.kind == "spinlock":
        from .spinlocks import spin_fact

        spin = spin_fact(target, task, stack, index)
        if isinstance(spin, str):
            wait.unknown = spin
        else:
            wait.lock = spin
        return wait
    ltype = lock_type_of(row.kind)
    if ltype is None:
        return wait
    address = None
    how = ""
    if target.mode == "dwarf":
        address = _from_dwarf(target, task, row, ltype)
        how = "dwarf-argument" if address is not None else ""
    if address is None:
        try:
            address = find_object_on_stack(target.prog, task, ltype)
        except (drgn.FaultError, LookupError, ValueError, AttributeError) as e:
            wait.unknown = f"stack unreadable: {str(e).splitlines()[0] if str(e) else e}"
            return wait
        how = "stack-waiter" if address is not None else ""
    if address is None:
        wait.unknown = "not-on-stack"
        return wait
    wait.lock = lock_fact(target, row.kind, address, how)
    return wait
