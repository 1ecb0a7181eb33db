"""Waits on pages, flag bits and block I/O: which folio, which word, which request (issue 18).

A task asleep in ``folio_wait_bit_common()`` or ``__wait_on_bit()`` has queued a wait entry
on its own stack whose ``private`` is the task and whose ``func`` is the wake function of
that kind of wait (:data:`WAIT_ENTRIES`); the entry sits inside a small structure that names
the object (``wait_page_queue.folio`` and ``bit_nr``; ``wait_bit_queue_entry.key.flags`` and
``bit_nr``). Finding that entry among the stack's words proves the object without DWARF:
only the structures' layouts (BTF) and the wake function's address (kallsyms) are needed.

A request is *in flight* when the driver has it and has not completed it: the disk's tags
(drgn's ``request_queue_busy_iter``). Its age is the crash's jiffies minus its start
(``deadline - timeout``: ``blk_add_timer()`` sets the deadline when the driver starts it,
since v2.6.16). A waiting task is tied to a request by what its wait names: the page of the
folio it waits on, the buffer head whose bit it waits on (its page, or the bio's
``bi_private``), or for direct I/O a bio on its own stack or with the task as
``bi_private`` (``__blkdev_direct_IO_simple()``, since v4.10).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import drgn

from ..model import IoRequest, ObjectWait, TaskWait

if TYPE_CHECKING:
    from ..target.open import Target


@dataclass(frozen=True)
class WaitEntry:
    """One row: a wake function and the on-stack structure whose wait entry uses it."""

    wake: str  #: the wait_queue_entry's func
    struct: str  #: the structure around the entry
    entry: str  #: the entry's member in it
    kind: str  #: page or bit
    reason: str


WAIT_ENTRIES: tuple[WaitEntry, ...] = (
    WaitEntry(
        "wake_page_function",
        "struct wait_page_queue",
        "wait",
        "page",
        "folio_wait_bit_common() (wait_on_page_bit_common() before v5.16) queues one",
    ),
    WaitEntry(
        "wake_bit_function",
        "struct wait_bit_queue_entry",
        "wq_entry",
        "bit",
        "__wait_on_bit() and __wait_on_bit_lock() (wait_bit_queue_entry since v4.13)",
    ),
)

#: Which flag enum names a bit of a word that lies in an object of this slab cache, and
#: the object's type and the word's member (a buffer head's b_state: BH_Lock …).
BIT_OWNERS: dict[str, tuple[str, str, str]] = {
    "buffer_head": ("struct buffer_head", "b_state", "enum bh_state_bits"),
}

#: MQ_RQ_* of ``request.state`` (block/blk-mq.h, since v4.17).
RQ_STATES = {0: "idle", 1: "in-flight", 2: "complete"}
_KERNEL_MIN = 0xFFFF800000000000
#: At most this many requests are read per machine (a busy server has thousands).
MAX_REQUESTS = 256


def _offset(prog: drgn.Program, struct: str, member: str) -> int:
    return drgn.offsetof(prog.type(struct), member)


def _enum_name(prog: drgn.Program, enum: str, value: int) -> str:
    """The enumerator of ``enum`` with ``value`` (``PG_locked``), else the number."""
    try:
        for e in prog.type(enum).enumerators or ():
            if e.value == value:
                return e.name
    except LookupError:
        pass
    return str(value)


def find_wait_entry(
    prog: drgn.Program, task: drgn.Object, words: list[tuple[int, int]]
) -> tuple[WaitEntry, int] | None:
    """The row and address of the wait structure queued on ``task``'s stack, if any.

    ``words`` are (address, value) of the stack. A word equal to the task is a candidate
    ``private``; the word after the entry's ``flags`` must be the row's wake function and
    the entry must be linked (its list's ``next->prev`` points back)."""
    tval = task.value_()
    try:
        priv = _offset(prog, "struct wait_queue_entry", "private")
        func = _offset(prog, "struct wait_queue_entry", "func")
        link = _offset(prog, "struct wait_queue_entry", "entry")
    except LookupError:
        return None
    wakes = {}
    for row in WAIT_ENTRIES:
        try:
            wakes[prog.symbol(row.wake).address] = row
        except LookupError:
            continue
    for addr, value in words:
        if value != tval:
            continue
        entry = addr - priv
        try:
            row = wakes.get(prog.read_u64(entry + func))
            if row is None:
                continue
            node = entry + link
            nxt = prog.read_u64(node)
            if nxt < _KERNEL_MIN or prog.read_u64(nxt + 8) != node:
                continue
            return row, entry - _offset(prog, row.struct, row.entry)
        except (drgn.FaultError, LookupError):
            continue
    return None


def object_wait(prog: drgn.Program, row: WaitEntry, address: int) -> ObjectWait:
    """What the wait structure at ``address`` waits on, described."""
    q = drgn.Object(prog, row.struct, address=address)
    if row.kind == "page":
        # Since v5.16 the queue names a folio, before a page (the same first words).
        try:
            page = q.folio.value_()
        except AttributeError:
            page = q.page.value_()
        bit = _enum_name(prog, "enum pageflags", q.bit_nr.value_())
        w = ObjectWait(kind="page", address=page, bit=bit)
        describe_page(prog, w)
        return w
    word, nr = q.key.flags.value_(), q.key.bit_nr.value_()
    w = ObjectWait(kind="bit", address=word, bit=str(nr))
    describe_bit(prog, w, nr)
    return w


def describe_page(prog: drgn.Program, w: ObjectWait) -> None:
    """Flags, index and owner (file or block device) of the page ``w.address``."""
    from drgn.helpers.linux.mm import decode_page_flags

    page = drgn.Object(prog, "struct page", address=w.address)
    try:
        w.flags = [f for f in decode_page_flags(page.address_of_()).split("|") if f]
        w.index = page.index.value_()
        mapping = page.mapping.value_()
    except (drgn.FaultError, LookupError, AttributeError, ValueError):
        return
    if not mapping or mapping & 1:  # PAGE_MAPPING_ANON: not a file's page
        return
    try:
        space = drgn.Object(prog, "struct address_space", address=mapping)
        describe_inode(prog, w, space.host)
    except (drgn.FaultError, LookupError, AttributeError, ValueError):
        pass


def describe_inode(prog: drgn.Program, w: ObjectWait, inode: drgn.Object) -> None:
    """Inode number, file system, and the block device or the file's path (``inode``:
    ``struct inode *``)."""
    w.inode = inode.i_ino.value_()
    sb = inode.i_sb
    w.fs = sb.s_type.name.string_().decode(errors="replace")
    if (inode.i_mode.value_() & 0o170000) == 0o060000 and w.fs == "bdev":
        # A block device's own page cache: the inode is the vfs_inode of a bdev_inode
        # (fs/block_dev.c, block/bdev.c since v5.15), beside its block_device.
        bdev_inode = drgn.container_of(inode, "struct bdev_inode", "vfs_inode")
        w.device = _bdev_name(bdev_inode.bdev.address_of_())
        return
    w.device = sb.s_id.string_().decode(errors="replace")
    try:
        from drgn.helpers.linux.fs import inode_path

        p = inode_path(inode)
        w.path = p.decode(errors="replace") if p else None
    except (drgn.FaultError, LookupError, AttributeError, ValueError):
        pass


def _bdev_name(bdev: drgn.Object) -> str | None:
    try:
        from drgn.helpers.linux.block import bdev_partno, disk_name

        name = disk_name(bdev.bd_disk).decode(errors="replace")
        part = bdev_partno(bdev).value_()
        return f"{name}{part}" if part else name
    except (drgn.FaultError, LookupError, AttributeError, ValueError):
        return None


def describe_bit(prog: drgn.Program, w: ObjectWait, nr: int) -> None:
    """The object the word lies in (its slab cache) and the bit's name where the table
    knows the cache: a buffer head's ``BH_Lock``, its block and device."""
    try:
        from drgn.helpers.linux.slab import slab_object_info

        info = slab_object_info(prog, w.address)
    except (drgn.FaultError, LookupError, ValueError, AttributeError, TypeError):
        return
    if info is None or not info.slab_cache:
        return
    cache = info.slab_cache.name.string_().decode(errors="replace")
    w.owner = cache
    known = BIT_OWNERS.get(cache)
    if known is None:
        return
    struct, member, enum = known
    w.bit = _enum_name(prog, enum, nr)
    try:
        obj = drgn.Object(prog, struct, address=w.address - _offset(prog, struct, member))
        w.block = obj.b_blocknr.value_()
        w.device = _bdev_name(obj.b_bdev)
        w.page = obj.b_page.value_()
    except (drgn.FaultError, LookupError, AttributeError, ValueError):
        pass


def saved_stack_pointer(task: drgn.Object) -> int:
    """The stack pointer a task switched out with: x86-64 keeps it in ``thread.sp``,
    arm64 in ``thread.cpu_context.sp`` (the callee-saved set cpu_switch_to() stores)."""
    thread = task.thread
    try:
        return thread.sp.value_()
    except AttributeError:
        return thread.cpu_context.sp.value_()


def stack_words(prog: drgn.Program, task: drgn.Object) -> list[tuple[int, int]]:
    """(address, value) of the words of the task's kernel stack, from its saved sp up."""
    base = task.stack.value_()
    size = prog["THREAD_SIZE"].value_() if "THREAD_SIZE" in prog else 16384
    lo = saved_stack_pointer(task)
    if not base <= lo < base + size:
        lo = base
    lo &= ~7
    data = prog.read(lo, base + size - lo)
    return [(lo + i, int.from_bytes(data[i : i + 8], "little")) for i in range(0, len(data) - 7, 8)]


def task_object_wait(target: Target, task: drgn.Object) -> ObjectWait | None:
    """The page or bit ``task`` sleeps on, proved by its wait entry (None if none)."""
    prog = target.prog
    try:
        words = stack_words(prog, task)
        found = find_wait_entry(prog, task, words)
        if found is None:
            return None
        return object_wait(prog, *found)
    except (drgn.FaultError, LookupError, ValueError, AttributeError):
        return None


# -- requests ----------------------------------------------------------------------------


def _crash_jiffies_and_hz(prog: drgn.Program) -> tuple[int | None, int | None]:
    from .system import kernel_hz

    try:
        now = prog.read_u64(prog.symbol("jiffies_64").address)
    except (LookupError, drgn.FaultError):
        now = None
    try:
        hz = kernel_hz(prog)
    except (LookupError, ValueError, drgn.FaultError):
        hz = None
    return now, hz


def in_flight_requests(target: Target) -> list[IoRequest]:
    """Every request a block driver holds at the crash, per disk, with its age."""
    from drgn.helpers.linux.block import (
        blk_rq_bytes,
        blk_rq_pos,
        disk_name,
        for_each_disk,
        req_op,
        request_queue_busy_iter,
    )

    prog = target.prog
    now, hz = _crash_jiffies_and_hz(prog)
    out: list[IoRequest] = []
    for disk in for_each_disk(prog):
        try:
            name = disk_name(disk).decode(errors="replace")
            rqs = list(request_queue_busy_iter(disk.queue, "driver"))
        except (drgn.FaultError, LookupError, AttributeError, ValueError):
            continue
        for rq in rqs:
            if len(out) >= MAX_REQUESTS:
                return out
            try:
                op = req_op(rq).format_(type_name=False).removeprefix("REQ_OP_")
                r = IoRequest(
                    address=rq.value_(),
                    disk=name,
                    op=op,
                    sector=blk_rq_pos(rq).value_(),
                    bytes=blk_rq_bytes(rq).value_(),
                    state=RQ_STATES.get(rq.state.value_(), str(rq.state.value_())),
                    start_time_ns=rq.start_time_ns.value_() or None,
                    tag=rq.tag.value_(),
                )
                if now is not None and hz:
                    start = rq.deadline.value_() - rq.timeout.value_()
                    r.age_seconds = round(((now - start) & (2**64 - 1)) / hz, 2)
                bio = rq.bio
                for _ in range(64):
                    if not bio:
                        break
                    r.bios.append(bio.value_())
                    for i in range(min(bio.bi_vcnt.value_(), 256)):
                        r.pages.append(bio.bi_io_vec[i].bv_page.value_())
                    bio = bio.bi_next
            except (drgn.FaultError, LookupError, AttributeError, ValueError):
                continue
            out.append(r)
    return out


def tie_waits(prog: drgn.Program, waits: list[TaskWait], requests: list[IoRequest]) -> None:
    """Which requests each waiting task's wait is tied to (fills ``requests`` fields)."""
    by_page: dict[int, list[IoRequest]] = {}
    for r in requests:
        for p in r.pages:
            by_page.setdefault(p, []).append(r)
    privates: dict[int, IoRequest] = {}
    for r in requests:
        for b in r.bios:
            try:
                privates[drgn.Object(prog, "struct bio", address=b).bi_private.value_()] = r
            except (drgn.FaultError, LookupError, AttributeError):
                continue
    try:
        size = prog["THREAD_SIZE"].value_() if "THREAD_SIZE" in prog else 16384
    except (LookupError, drgn.FaultError):
        size = 16384
    for w in waits:
        tied: list[IoRequest] = []
        ow = w.object
        if ow is not None:
            page = ow.address if ow.kind == "page" else ow.page
            tied += by_page.get(page or -1, [])
            if ow.kind == "bit" and ow.owner in BIT_OWNERS:
                struct, member, _ = BIT_OWNERS[ow.owner]
                obj = ow.address - _offset(prog, struct, member)
                if obj in privates:
                    tied.append(privates[obj])
        elif w.kind == "io":
            if w.task in privates:
                tied.append(privates[w.task])
            try:
                base = drgn.Object(prog, "struct task_struct", address=w.task).stack.value_()
                tied += [r for r in requests if any(base <= b < base + size for b in r.bios)]
            except (drgn.FaultError, LookupError, AttributeError):
                pass
        seen: list[int] = []
        for r in tied:
            if r.address not in seen:
                seen.append(r.address)
                r.waiters.append(w.task)
        w.requests = seen
        if ow is not None:
            ow.requests = list(seen)
