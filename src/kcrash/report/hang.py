"""The report's ``hang`` section: the wait-for graph in words and as data (issue 18).

:mod:`kcrash.diagnosis.waits` decides (cycle, chain, root) and says it as message ids
whose lock parameters are dicts; here they become sentences of the report's language
(a lock: ``mutex `kcrash_lock_a```), and the graph becomes JSON (schema 1.2, ``hang``;
since 1.3 the page, bit and requests in flight behind a wait, and a heap lock's object).
"""

from __future__ import annotations

from typing import Any

from ..diagnosis.i18n import render
from ..diagnosis.spins import spin_messages, spin_next_step, spinning
from ..diagnosis.verdict import Message
from ..diagnosis.waits import (
    WaitGraph,
    build_graph,
    io_messages,
    story,
    summary,
    undetermined,
)
from ..model import IoRequest, LockFact, ObjectWait, TaskWait


def _lock_words(p: dict[str, Any], lang: str) -> str:
    """``mutex `kcrash_lock_a```, ``rwsem in a kmalloc-192 object at 0x…``, ``mutex at 0x…``."""
    kind = render(f"hang.kind.{p['kind']}", {}, lang)
    naming = p.get("naming") or "unknown"
    if not p.get("lock"):
        naming = "unknown"
    keys = {
        "slab": "hang.lock.slab",
        "unknown": "hang.lock.anonymous",
        "module-data": "hang.lock.module-data",
    }
    container = p.get("container")
    if isinstance(container, dict):
        container = container_words(container, lang)
    if naming == "object" and container:
        keys["object"] = "hang.lock.object"
    return render(
        keys.get(naming, "hang.lock.named"), {**p, "kind": kind, "container": container}, lang
    )


def container_words(c: dict[str, Any], lang: str) -> str:
    """``disk nullb0``, ``super block nullb0 (ext4)``: the heap object a lock lies in."""
    return render(f"hang.container.{c['kind']}", c, lang)


def json_lock_words(kind: str, name: str | None, naming: str, address: int, lang: str) -> str:
    """:func:`_lock_words` of a lock as the report's JSON holds it (its fields one by one)."""
    return _json_lock_dict_words(
        {"kind": kind, "name": name, "naming": naming, "address": address}, lang
    )


def _json_lock_dict_words(lk: dict[str, Any], lang: str) -> str:
    """:func:`_lock_words` of a lock as the report's JSON holds it."""
    p = {
        "kind": lk["kind"].split("-")[0],
        "lock": lk["name"],
        "naming": lk["naming"],
        "address": f"{lk['address']:#x}",
        "container": lk.get("container"),
    }
    return _lock_words(p, lang)


def _sep(lang: str) -> str:
    return render("hang.list_separator", {}, lang)


def say(msg: Message, lang: str) -> str:
    """One message with its lock parameters (dicts, lists of dicts) put into words."""
    params: dict[str, Any] = {}
    for k, v in msg.params.items():
        if isinstance(v, dict) and "address" in v:
            params[k] = _lock_words(v, lang)
        elif isinstance(v, list):
            params[k] = _sep(lang).join(_lock_words(x, lang) for x in v) or None
        elif k == "kind" and isinstance(v, str) and v:
            params[k] = render(f"hang.kind.{v}", {}, lang)
        elif k == "confidence" and isinstance(v, str) and v:
            params[k] = render(f"hang.confidence.{v}", {}, lang)
        else:
            params[k] = v
    return render(msg.id, params, lang)


def _lock_json(lk: LockFact, pids: dict[int, TaskWait], lang: str) -> dict[str, Any]:
    holder = pids.get(lk.owner_task) if lk.owner_task else None
    reader = pids.get(lk.last_reader_task) if lk.last_reader_task else None
    return {
        "kind": lk.kind,
        "address": lk.address,
        "name": lk.name,
        "naming": lk.naming,
        "found_by": lk.found_by,
        "state": lk.state,
        "holder": {"pid": holder.pid, "comm": holder.comm} if holder else None,
        "owner_task": lk.owner_task,
        "readers": lk.readers,
        "last_reader": {"pid": reader.pid, "comm": reader.comm} if reader else None,
        "count": lk.count,
        "error": lk.error,
        "container": container_words(lk.container, lang) if lk.container else None,
        # Since 1.3: a spinlock's holder is inferred from the other CPUs (no owner field).
        "holder_cpu": lk.holder_cpu,
        "holder_confidence": lk.holder_confidence,
        "holder_clues": list(lk.holder_clues),
        "holder_path": list(lk.holder_path),
        "taken_in": lk.taken_in,
        "waiter_cpu": lk.waiter_cpu,
        "object_offset": lk.object_offset,
    }


def _object_json(ow: ObjectWait) -> dict[str, Any]:
    """The page or bit a task waits on (schema 1.3)."""
    return {
        "kind": ow.kind,
        "address": ow.address,
        "bit": ow.bit,
        "found_by": ow.found_by,
        "flags": ow.flags,
        "index": ow.index,
        "inode": ow.inode,
        "device": ow.device,
        "path": ow.path,
        "fs": ow.fs,
        "owner": ow.owner,
        "block": ow.block,
        "requests": ow.requests,
    }


def _request_json(r: IoRequest, by_task: dict[int, TaskWait]) -> dict[str, Any]:
    """A request in flight (schema 1.3) and the tasks whose waits are tied to it."""
    return {
        "address": r.address,
        "disk": r.disk,
        "op": r.op,
        "sector": r.sector,
        "bytes": r.bytes,
        "state": r.state,
        "age_seconds": r.age_seconds,
        "start_time_ns": r.start_time_ns,
        "tag": r.tag,
        "waiters": [
            {"pid": by_task[t].pid, "comm": by_task[t].comm} for t in r.waiters if t in by_task
        ],
    }


def _task_json(
    w: TaskWait, g: WaitGraph, by_task: dict[int, TaskWait], lang: str
) -> dict[str, Any]:
    frames = [f for f in (w.stack.frames if w.stack else []) if not f.inlined]
    return {
        "pid": w.pid,
        "comm": w.comm,
        "task": w.task,
        "state": w.state,
        "blocked": w.blocked,
        "wait": w.kind,
        "function": w.function,
        "lock": _lock_json(w.lock, by_task, lang) if w.lock else None,
        "unknown": w.unknown,
        "holds": [
            {
                "kind": h.kind,
                "address": h.address,
                "name": h.name,
                "naming": h.naming,
                "container": container_words(h.container, lang) if h.container else None,
            }
            for h in g.held.get(w.pid, [])
        ],
        "object": _object_json(w.object) if w.object else None,
        "requests": w.requests,
        "stack": [f.symbol + (f" [{f.module}]" if f.module else "") for f in frames],
    }


def hang_section(
    waits: list[TaskWait] | None, lang: str, requests: list[IoRequest] | None = None
) -> dict[str, Any] | None:
    """The ``hang`` object of the report, or None when no waits were read."""
    if waits is None:
        return None
    g = build_graph(waits, requests)
    by_task = {w.task: w for w in waits}
    summ = summary(g)
    pieces = story(g)
    return {
        "deadlock": bool(g.cycles),
        "cycles": g.cycles,
        "chain": g.chain,
        "root": g.root,
        "blocked": g.blocked,
        "summary": say(summ, lang) if summ else None,
        "story": "".join(say(m, lang) for m in pieces) or None,
        "tasks": [_task_json(w, g, by_task, lang) for w in waits],
        "undetermined": [say(m, lang) for m in undetermined(g)],
        "requests": [_request_json(r, by_task) for r in requests or []],
        "io": [say(m, lang) for m in io_messages(g)],
        "spinlocks": spin_section(waits, lang),
    }


def _say_how(msg: Message, lang: str) -> str:
    """The "how the holder was found" sentence: its clue messages joined into one list."""
    clues = msg.params.get("clues") or []
    words = _sep(lang).join(render(c.id, c.params, lang) for c in clues)  # type: ignore[union-attr]
    conf = msg.params.get("confidence")
    conf_words = render(f"hang.confidence.{conf}", {}, lang) if conf else None
    return render(msg.id, {"confidence": conf_words, "clues": words or None}, lang)


def spin_section(waits: list[TaskWait], lang: str) -> list[dict[str, Any]]:
    """Since 1.3: each CPU spinning on a spinlock, the lock, its inferred holder and how it
    was found, as data and as the sentences the text, Markdown and HTML reports print."""
    out: list[dict[str, Any]] = []
    for w in spinning(waits):
        lk = w.lock
        assert lk is not None
        holder = next((h for h in waits if lk.owner_task and h.task == lk.owner_task), None)
        sentence, how = spin_messages(w, waits)
        step = spin_next_step(w, waits)
        out.append(
            {
                "cpu": lk.waiter_cpu,
                "pid": w.pid,
                "comm": w.comm,
                "lock": {"address": lk.address, "name": lk.name, "naming": lk.naming},
                "function": lk.taken_in or w.function,
                "holder": (
                    {"pid": holder.pid, "comm": holder.comm, "cpu": lk.holder_cpu}
                    if holder
                    else None
                ),
                "holder_path": list(lk.holder_path),
                "confidence": lk.holder_confidence,
                "clues": list(lk.holder_clues),
                "sentence": say(sentence, lang),
                "how": _say_how(how, lang) if how else None,
                "next_step": say(step, lang) if step else None,
            }
        )
    return out


def task_line(t: dict[str, Any], lang: str, requests: list[dict[str, Any]] | None = None) -> str:
    """``PID 412 (kcrash_abba_a) UN: waits for mutex `b` (found …); holds mutex `a```."""
    parts = [f"PID {t['pid']} ({t['comm']}) {t['state']}"]
    lk, ow = t.get("lock"), t.get("object")
    if lk:
        words = _json_lock_dict_words(lk, lang)
        how = render(f"hang.found.{lk['found_by']}", {}, lang)
        verb = "hang.task.spins" if lk["kind"] == "spinlock" else "hang.task.waits"
        parts.append(render(verb, {"lock": words, "how": how}, lang))
    elif ow:
        parts.append(_object_words(ow, lang))
    elif t.get("wait"):
        parts.append(render("hang.task.in", {"function": t["function"]}, lang))
    for r in requests or []:
        if r["address"] in (t.get("requests") or []):
            age = f"{r['age_seconds']:.1f}" if r.get("age_seconds") is not None else None
            parts.append(render("hang.task.request", {**r, "age": age}, lang))
    if t.get("holds"):
        held = _sep(lang).join(_json_lock_dict_words(h, lang) for h in t["holds"])
        parts.append(render("hang.task.holds", {"locks": held}, lang))
    return parts[0] + ": " + "; ".join(parts[1:]) if len(parts) > 1 else parts[0]


def _object_words(ow: dict[str, Any], lang: str) -> str:
    """``waits for PG_locked of page 32 of nullb0 (found on its stack, …)``."""
    how = render(f"hang.found.{ow['found_by']}", {}, lang)
    if ow["kind"] == "page":
        target = f"`{ow['path']}` ({ow['device']})" if ow.get("path") else ow.get("device")
        return render("hang.task.page", {**ow, "target": target, "how": how}, lang)
    return render(
        "hang.task.bit",
        {**ow, "owner": ow.get("owner") or "", "address": f"{ow['address']:#x}", "how": how},
        lang,
    )


def request_line(r: dict[str, Any], lang: str) -> str:
    """``nullb0: READ of 4096 bytes at sector 0, in-flight, for 9.8 s, request 0x…``."""
    age = f"{r['age_seconds']:.1f}" if r.get("age_seconds") is not None else None
    return render("hang.request", {**r, "age": age, "address": f"{r['address']:#x}"}, lang)


def hang_lines(hang: dict[str, Any], lang: str, frames: int = 8) -> list[str]:
    """The section as lines for text, Markdown and HTML (common.context_sections)."""
    out: list[str] = []
    if hang.get("summary"):
        out.append(hang["summary"])
    if hang.get("story"):
        out.append(hang["story"])
    for sp in hang.get("spinlocks") or []:
        out += [x for x in (sp["sentence"], sp["how"]) if x]
    if out:
        out.append("")
    for t in hang.get("tasks", []):
        out.append(task_line(t, lang, hang.get("requests")))
        out += ["    " + s for s in t.get("stack", [])[:frames]]
    for u in hang.get("undetermined", []):
        out.append("- " + u)
    for m in hang.get("io") or []:
        out.append(m)
    for r in hang.get("requests") or []:
        out.append("    " + request_line(r, lang))
    return out


def hang_steps(hang: dict[str, Any] | None) -> list[str]:
    """The next steps the graph gives, first in the list: the story of the cycle or chain."""
    if not hang:
        return []
    spins = [sp["next_step"] for sp in hang.get("spinlocks") or [] if sp.get("next_step")]
    return spins + ([hang["story"]] if hang.get("story") else []) + list(hang.get("io") or [])
