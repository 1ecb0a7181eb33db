"""The report's ``hang`` section: the wait-for graph in words and as data (issue 18).

:mod:`kcrash.diagnosis.waits` decides (cycle, chain, root) and says it as message ids
whose lock parameters are dicts; here they become sentences of the report's language
(a lock: ``mutex `kcrash_lock_a```), and the graph becomes JSON (schema 1.2, ``hang``).
"""

from __future__ import annotations

from typing import Any

from ..diagnosis.i18n import render
from ..diagnosis.verdict import Message
from ..diagnosis.waits import WaitGraph, build_graph, story, summary, undetermined
from ..model import LockFact, TaskWait


def _lock_words(p: dict[str, Any], lang: str) -> str:
    """``mutex `kcrash_lock_a```, ``rwsem in a kmalloc-192 object at 0x…``, ``mutex at 0x…``."""
    kind = render(f"hang.kind.{p['kind']}", {}, lang)
    naming = p.get("naming") or "unknown"
    if not p.get("lock"):
        naming = "unknown"
    keys = {"slab": "hang.lock.slab", "unknown": "hang.lock.anonymous"}
    return render(keys.get(naming, "hang.lock.named"), {**p, "kind": kind}, lang)


def _json_lock_words(kind: str, name: str | None, naming: str, address: int, lang: str) -> str:
    """:func:`_lock_words` of a lock as the report's JSON holds it."""
    p = {"kind": kind.split("-")[0], "lock": name, "naming": naming, "address": f"{address:#x}"}
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
        else:
            params[k] = v
    return render(msg.id, params, lang)


def _lock_json(lk: LockFact, pids: dict[int, TaskWait]) -> dict[str, Any]:
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
    }


def _task_json(w: TaskWait, g: WaitGraph, by_task: dict[int, TaskWait]) -> dict[str, Any]:
    frames = [f for f in (w.stack.frames if w.stack else []) if not f.inlined]
    return {
        "pid": w.pid,
        "comm": w.comm,
        "task": w.task,
        "state": w.state,
        "blocked": w.blocked,
        "wait": w.kind,
        "function": w.function,
        "lock": _lock_json(w.lock, by_task) if w.lock else None,
        "unknown": w.unknown,
        "holds": [
            {"kind": h.kind, "address": h.address, "name": h.name, "naming": h.naming}
            for h in g.held.get(w.pid, [])
        ],
        "stack": [f.symbol + (f" [{f.module}]" if f.module else "") for f in frames],
    }


def hang_section(waits: list[TaskWait] | None, lang: str) -> dict[str, Any] | None:
    """The ``hang`` object of the report, or None when no waits were read."""
    if waits is None:
        return None
    g = build_graph(waits)
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
        "tasks": [_task_json(w, g, by_task) for w in waits],
        "undetermined": [say(m, lang) for m in undetermined(g)],
    }


def task_line(t: dict[str, Any], lang: str) -> str:
    """``PID 412 (kcrash_abba_a) UN: waits for mutex `b` (found …); holds mutex `a```."""
    parts = [f"PID {t['pid']} ({t['comm']}) {t['state']}"]
    lk = t.get("lock")
    if lk:
        words = _json_lock_words(lk["kind"], lk["name"], lk["naming"], lk["address"], lang)
        how = render(f"hang.found.{lk['found_by']}", {}, lang)
        parts.append(render("hang.task.waits", {"lock": words, "how": how}, lang))
    elif t.get("wait"):
        parts.append(render("hang.task.in", {"function": t["function"]}, lang))
    if t.get("holds"):
        held = _sep(lang).join(
            _json_lock_words(h["kind"], h["name"], h["naming"], h["address"], lang)
            for h in t["holds"]
        )
        parts.append(render("hang.task.holds", {"locks": held}, lang))
    return parts[0] + ": " + "; ".join(parts[1:]) if len(parts) > 1 else parts[0]


def hang_lines(hang: dict[str, Any], lang: str, frames: int = 8) -> list[str]:
    """The section as lines for text, Markdown and HTML (common.context_sections)."""
    out: list[str] = []
    if hang.get("summary"):
        out.append(hang["summary"])
    if hang.get("story"):
        out.append(hang["story"])
    if out:
        out.append("")
    for t in hang.get("tasks", []):
        out.append(task_line(t, lang))
        out += ["    " + s for s in t.get("stack", [])[:frames]]
    for u in hang.get("undetermined", []):
        out.append("- " + u)
    return out


def hang_steps(hang: dict[str, Any] | None) -> list[str]:
    """The next steps the graph gives, first in the list: the story of the cycle or chain."""
    if not hang or not hang.get("story"):
        return []
    return [hang["story"]]
