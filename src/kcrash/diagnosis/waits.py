"""The wait-for graph of a hung machine: deadlock cycles, chains and their roots (issue 18).

Nodes are tasks; task A has an edge to task B when A waits for a lock B holds (a mutex's
owner, an rwsem's writer, or, for an rwsem held for reading, the last reader the kernel
recorded: a hint, marked as such). A cycle is a deadlock: none of its tasks can go on. Without
a cycle, the longest chain ends at its *root*, the task everyone behind it waits on; what
the root itself does (sleeps, waits for a completion or I/O, runs) is the answer the
operator needs.

Pure functions over :class:`kcrash.model.TaskWait` (no drgn, no I/O), so they are
unit-testable on hand-built facts besides the real dumps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kcrash.diagnosis.verdict import Message
from kcrash.model import IoRequest, LockFact, TaskWait


@dataclass
class Edge:
    """``waiter`` waits for ``lock``, held by ``holder``."""

    waiter: int  # pid
    holder: int  # pid
    lock: LockFact
    hint: bool = False  # the holder is the rwsem's last recorded reader, not a proven owner


@dataclass
class WaitGraph:
    """The graph and what it shows: a cycle, or the longest chain and its root."""

    tasks: dict[int, TaskWait] = field(default_factory=dict)  # pid -> wait
    edges: dict[int, Edge] = field(default_factory=dict)  # waiter pid -> its edge
    held: dict[int, list[LockFact]] = field(default_factory=dict)  # pid -> locks it holds
    cycles: list[list[int]] = field(default_factory=list)  # each: pids, a waits for b …
    chain: list[int] = field(default_factory=list)  # longest chain, first waiter … root
    blocked: int = 0  # tasks blocked (D state or spinning)
    requests: dict[int, IoRequest] = field(default_factory=dict)  # address -> request

    @property
    def root(self) -> int | None:
        return self.chain[-1] if self.chain and not self.cycles else None


def build_graph(waits: list[TaskWait], requests: list[IoRequest] | None = None) -> WaitGraph:
    """Edges from each wait to the holder of its lock; then cycles and the longest chain."""
    g = WaitGraph(tasks={w.pid: w for w in waits})
    g.requests = {r.address: r for r in requests or []}
    by_task = {w.task: w.pid for w in waits}
    g.blocked = sum(1 for w in waits if w.blocked)
    for w in waits:
        lk = w.lock
        if lk is None:
            continue
        holder, hint = lk.owner_task, False
        if holder is None and lk.last_reader_task is not None:
            holder, hint = lk.last_reader_task, True
        if holder is None or holder not in by_task:
            continue
        hpid = by_task[holder]
        g.edges[w.pid] = Edge(w.pid, hpid, lk, hint)
        g.held.setdefault(hpid, [])
        if all(h.address != lk.address for h in g.held[hpid]):
            g.held[hpid].append(lk)
    g.cycles = _cycles(g.edges)
    if not g.cycles:
        g.chain = _longest_chain(g)
    return g


def _cycles(edges: dict[int, Edge]) -> list[list[int]]:
    """Every cycle of a graph where each node has at most one outgoing edge."""
    out: list[list[int]] = []
    state: dict[int, int] = {}  # 1 = on the current path, 2 = done
    for start in sorted(edges):
        path: list[int] = []
        node: int | None = start
        while node is not None and state.get(node) is None:
            state[node] = 1
            path.append(node)
            e = edges.get(node)
            node = e.holder if e is not None else None
        if node is not None and state.get(node) == 1:
            cyc = path[path.index(node) :]
            k = cyc.index(min(cyc))  # a stable order: the lowest pid first
            out.append(cyc[k:] + cyc[:k])
        for n in path:
            state[n] = 2
    return out


def _longest_chain(g: WaitGraph) -> list[int]:
    """The longest path of blocked waiters to a root (ties: the lowest first pid)."""
    best: list[int] = []
    for start in sorted(g.tasks):
        if not g.tasks[start].blocked:
            continue
        path = [start]
        while path[-1] in g.edges and len(path) <= len(g.tasks):
            path.append(g.edges[path[-1]].holder)
        if len(path) > len(best):
            best = path
    return best if len(best) > 1 else []


# -- sentences ---------------------------------------------------------------------------


def lock_params(lk: LockFact) -> dict[str, object]:
    """What a sentence needs to name a lock: its name (or address) and kind."""
    return {
        "lock": lk.name,
        "address": f"{lk.address:#x}",
        "naming": lk.naming,
        "kind": lk.kind.split("-")[0],
        "container": lk.container,
    }


def _task(w: TaskWait) -> dict[str, object]:
    return {"pid": w.pid, "comm": w.comm}


def link_messages(g: WaitGraph, pids: list[int], cycle: bool) -> list[Message]:
    """The pieces of one sentence that walks a cycle or a chain: who holds what, waits for
    what, held by whom … ending with "a deadlock" or with what the root does.

    ``Task 412 (a) holds mutex `A` and waits for mutex `B` | held by task 398 (b) | , which
    waits for mutex `A` | held by task 412 (a) | : a deadlock.`` Lock parameters are dicts
    (:func:`lock_params`), rendered into words by the report layer."""
    first = g.tasks[pids[0]]
    e0 = g.edges.get(first.pid)
    if e0 is None:
        return []
    if cycle and len(pids) == 1:
        return [Message("hang.self", {**_task(first), "want": lock_params(e0.lock)})]
    held = [lock_params(h) for h in g.held.get(first.pid, []) if h.address != e0.lock.address]
    msgs = [
        Message(
            "hang.link.first", {**_task(first), "held": held or None, "want": lock_params(e0.lock)}
        )
    ]
    seq = pids[1:] + ([pids[0]] if cycle else [])
    for i, pid in enumerate(seq):
        prev = g.edges[pids[i]]  # the edge into seq[i]
        holder = "hang.link.reader" if prev.hint else "hang.link.holder"
        conf = prev.lock.holder_confidence  # a spinlock's holder is inferred, never read
        msgs.append(
            Message(
                "hang.link.inferred" if conf else holder,
                {**_task(g.tasks[pid]), "readers": prev.lock.readers, "confidence": conf},
            )
        )
        if i < len(seq) - 1:
            msgs.append(Message("hang.link.wants", {"want": lock_params(g.edges[pid].lock)}))
    if cycle:
        msgs.append(Message("hang.cycle.end", {}))
    else:
        msgs += root_messages(g.tasks[pids[-1]], g.requests)
    return msgs


def story(g: WaitGraph) -> list[Message]:
    """The sentence of the first cycle, else of the longest chain (empty when neither)."""
    if g.cycles:
        return link_messages(g, g.cycles[0], True)
    if g.chain:
        return link_messages(g, g.chain, False)
    return []


#: What the root of a chain does, by the kind of its own wait (facts.locks.WAIT_FRAMES).
ROOT_MESSAGES = {
    "completion": "hang.root.completion",
    "sleep": "hang.root.sleep",
    "io": "hang.root.io",
    "page": "hang.root.page",
    "bit": "hang.root.bit",
    "rcu": "hang.root.rcu",
    "semaphore": "hang.root.semaphore",
    "spinlock": "hang.root.spin",
    "rwlock": "hang.root.spin",
    "mutex-spin": "hang.root.spin",
}


def object_params(w: TaskWait) -> dict[str, object]:
    """What a sentence needs to name the page or bit a task waits on."""
    ow = w.object
    if ow is None:
        return {}
    return {
        "bit": ow.bit,
        "index": ow.index,
        "path": ow.path,
        "device": ow.device,
        "owner": ow.owner,
        "block": ow.block,
    }


def request_params(r: IoRequest) -> dict[str, object]:
    return {
        "op": r.op,
        "disk": r.disk,
        "bytes": r.bytes,
        "sector": r.sector,
        "age": f"{r.age_seconds:.1f}" if r.age_seconds is not None else None,
    }


def root_messages(w: TaskWait, requests: dict[int, IoRequest] | None = None) -> list[Message]:
    """What the root of a chain does; for a page, bit or I/O wait also the request in
    flight behind it (the oldest), or that none holds it."""
    if w.object is None and not (w.kind == "io" and w.requests):
        return [root_message(w)]
    p: dict[str, object] = {**_task(w), "function": w.function, **object_params(w)}
    kind = w.object.kind if w.object is not None else "io"
    out = [Message(f"hang.root.{kind}_of", p)]
    tied = [r for a in w.requests if (r := (requests or {}).get(a)) is not None]
    if tied:
        oldest = max(tied, key=lambda r: r.age_seconds or 0.0)
        out.append(Message("hang.root.request", request_params(oldest)))
    else:
        out.append(Message("hang.root.no_request", {}))
    return out


def io_messages(g: WaitGraph) -> list[Message]:
    """Per disk with requests in flight: how many, the oldest, how many tasks wait."""
    by_disk: dict[str, list[IoRequest]] = {}
    for r in g.requests.values():
        if r.state == "in-flight":
            by_disk.setdefault(r.disk, []).append(r)
    out = []
    for _disk, rqs in sorted(by_disk.items()):
        oldest = max(rqs, key=lambda r: r.age_seconds or 0.0)
        waiters = {t for r in rqs for t in r.waiters}
        out.append(
            Message(
                "hang.io.in_flight",
                {**request_params(oldest), "count": len(rqs), "waiters": len(waiters)},
            )
        )
    return out


def root_message(w: TaskWait) -> Message:
    """What the root of a chain is doing, as precisely as its stack and structures say."""
    p: dict[str, object] = {**_task(w), "function": w.function, "state": w.state}
    if w.lock is not None:
        p["want"] = lock_params(w.lock)
        if w.lock.kind in ("completion", "semaphore"):
            return Message(ROOT_MESSAGES[w.lock.kind], p)
        return Message("hang.root.lock_free", p)  # a lock nobody holds now
    if w.kind is None:
        if w.state == "RU":
            return Message("hang.root.running", p)
        top = next((f.function for f in (w.stack.frames if w.stack else []) if f.function), None)
        p["function"] = top
        return Message("hang.root.other", p)
    if w.kind in ("mutex", "rwsem-write", "rwsem-read", "semaphore", "completion"):
        p["kind"] = w.kind.split("-")[0]
        p["why"] = w.unknown
        return Message("hang.root.unidentified", p)
    return Message(ROOT_MESSAGES.get(w.kind, "hang.root.other"), p)


def summary(g: WaitGraph) -> Message | None:
    """One sentence: a deadlock of N tasks, a chain of N tasks behind task R, or nothing."""
    if g.cycles:
        cyc = g.cycles[0]
        if len(cyc) == 1:
            return Message("hang.summary.self", {"pids": str(cyc[0])})
        return Message(
            "hang.summary.deadlock",
            {"count": len(cyc), "pids": ", ".join(str(p) for p in cyc)},
        )
    if g.chain:
        root = g.tasks[g.chain[-1]]
        return Message(
            "hang.summary.chain",
            {"count": len(g.chain) - 1, "pid": root.pid, "comm": root.comm},
        )
    return None


def undetermined(g: WaitGraph) -> list[Message]:
    """What could not be determined for each task, and why (never silently left out)."""
    out: list[Message] = []
    for w in g.tasks.values():
        if w.kind in ("spinlock", "rwlock") and w.lock is None:
            out.append(Message("hang.unknown.spinlock", {**_task(w), "function": w.function}))
        elif w.unknown:
            why = "not-on-stack" if w.unknown == "not-on-stack" else "unreadable"
            out.append(
                Message(
                    f"hang.unknown.{why}",
                    {
                        **_task(w),
                        "kind": (w.kind or "").split("-")[0],
                        "function": w.function,
                        "error": w.unknown,
                    },
                )
            )
        lk = w.lock
        if lk is not None and lk.kind == "mutex" and lk.state == "unlocked":
            out.append(Message("hang.unknown.unlocked", {**_task(w), **lock_params(lk)}))
        if lk is not None and lk.naming == "module-data":
            out.append(Message("hang.unknown.module-data", lock_params(lk)))
        if lk is not None and lk.naming == "symbol+offset":
            out.append(Message("hang.unknown.member", lock_params(lk)))
        if lk is not None and lk.naming == "slab" and lk.object_offset is not None:
            # A heap object's type is not in the slab: the frames' variables (DWARF) say it.
            offset = f"{lk.object_offset:#x}"
            out.append(Message("hang.unknown.slab-member", {**lock_params(lk), "offset": offset}))
    return out
