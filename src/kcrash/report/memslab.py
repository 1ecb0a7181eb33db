"""The memory and slab-object parts of a report: lines for the renderers, next steps.

Why a module of its own: the memory picture of an OOM (breakdown, biggest tasks, caches,
leak suspect, memory cgroup) and the slab objects behind a bad pointer are facts the
person acts on; every sentence is a label of ``i18n/report.*.json`` so the Chinese
report says the same, and the next steps name the cache, the object and the stacks.
"""

from __future__ import annotations

from typing import Any

#: Breakdown figures in the order a person reads them (keys of facts.memory).
BREAKDOWN = ("total_kb", "free_kb", "anon_kb", "file_kb", "shmem_kb", "slab_reclaimable_kb",
             "slab_unreclaimable_kb", "kernel_stack_kb", "pagetables_kb", "hugetlb_kb",
             "hugetlb_free_kb", "other_kb")  # fmt: skip


def size(kb: int) -> str:
    """``612.4 MB`` / ``880 kB`` / ``1.2 GB``: what a person compares at a glance."""
    if kb >= 1024 * 1024:
        return f"{kb / 1024 / 1024:.1f} GB"
    if kb >= 1024:
        return f"{kb / 1024:.1f} MB"
    return f"{kb} kB"


def frame_text(fr: dict[str, Any]) -> str:
    if fr.get("function") is None:
        return f"{fr['address']:#x}"
    text = f"{fr['function']}+{fr['offset']:#x}"
    if fr.get("size"):
        text += f"/{fr['size']:#x}"
    if fr.get("module"):
        text += f" [{fr['module']}]"
    return text


def memory_lines(mem: dict[str, Any], lb: dict[str, str]) -> list[str]:
    """The memory section: breakdown, leak suspect, OOM constraint/cgroup, tasks, caches."""
    out = []
    for key in BREAKDOWN:
        if key in mem:
            out.append(f"{lb['mem.' + key]}: {size(mem[key])}")
    leak = mem.get("leak_suspect")
    if leak:
        out.append(leak_text(leak, lb))
    oom = mem.get("oom") or {}
    if oom.get("constraint"):
        out.append(lb["oom_constraint"].format(constraint=oom["constraint"]))
    if oom.get("memcg"):
        out.append(memcg_text(oom, lb))
    if mem.get("top_tasks"):
        out.append(lb["mem_top_tasks"])
        out += [f"  {t['pid']:>7} {t['comm']:<16} {size(t['rss_kb'])}" for t in mem["top_tasks"]]
    if mem.get("slab_caches"):
        out.append(lb["mem_slab_caches"].format(n=mem.get("slab_cache_count", 0)))
        out.append(f"  {lb['col_cache']:<24} {lb['col_objsize']:>8} {lb['col_allocated']:>10} "
                   f"{lb['col_total']:>10} {lb['col_size']:>10}")  # fmt: skip
        out += [
            f"  {c['name']:<24} {c['object_size']:>8} {c['allocated']:>10} {c['total']:>10} "
            f"{size(c['total_kb']):>10}"
            for c in mem["slab_caches"]
        ]
    for what in mem.get("lacks") or []:
        out.append(lb["mem_lacks"].format(what=lb.get("mem." + what, what)))
    return out


def leak_text(leak: dict[str, Any], lb: dict[str, str]) -> str:
    if leak.get("objects") is None:  # from the log's "Unreclaimable slab info" alone
        key = "leak_suspect_log"
    elif leak.get("times_next") is not None:
        key = "leak_suspect"
    else:
        key = "leak_suspect_alone"
    return lb[key].format(
        cache=leak["cache"],
        size=size(leak["total_kb"]),
        percent=leak["ram_percent"],
        times=leak.get("times_next"),
        next=leak.get("next_cache"),
        objects=leak["objects"],
        object_size=leak["object_size"],
    )


def memcg_text(oom: dict[str, Any], lb: dict[str, str]) -> str:
    if "memcg_limit_kb" in oom:
        return lb["oom_memcg_limit"].format(
            memcg=oom["memcg"],
            usage=size(oom["memcg_usage_kb"]),
            limit=size(oom["memcg_limit_kb"]),
        )
    return lb["oom_memcg"].format(memcg=oom["memcg"])


def _state(obj: dict[str, Any], lb: dict[str, str]) -> str:
    if obj["allocated"] is None:
        return lb["obj_state_unknown"]
    return lb["obj_state_alloc"] if obj["allocated"] else lb["obj_state_free"]


def object_lines(items: list[dict[str, Any]], lb: dict[str, str]) -> list[str]:
    """One line per poisoned value or slab address; the stacks of freed objects."""
    out = []
    for it in items:
        where = lb["obj_fault_address"] if it["where"] == "fault_address" else it["where"]
        value = f"{it['value']:#018x}"
        if it["poison"]:
            out.append(
                lb["obj_poison"].format(
                    where=where,
                    value=value,
                    name=it["poison"]["name"],
                    meaning=lb["poison." + it["poison"]["kind"]],
                )
            )
            continue
        obj = it["slab"]
        past = obj["offset"] >= obj["object_size"]  # in the debug metadata after the object
        out.append(
            lb["obj_line_past" if past else "obj_line"].format(
                where=where,
                value=value,
                offset=obj["offset"],
                state=_state(obj, lb),
                object=f"{obj['object']:#x}",
                cache=obj["cache"],
                size=obj["object_size"],
            )
        )
        tracks = obj.get("tracks")
        if tracks is None:
            if obj["allocated"] is False:
                out.append("  " + lb["obj_no_tracks"].format(cache=obj["cache"]))
            continue
        if obj["allocated"] is not False:
            continue  # an allocated neighbour: its stacks would only add noise
        for which in ("alloc", "free"):
            t = tracks.get(which)
            if not t:
                continue
            out.append(
                "  "
                + lb["obj_track"].format(
                    which=lb["track_" + which],
                    caller=frame_text(t["caller"]),
                    pid=t["pid"],
                    cpu=t["cpu"],
                    ago=t["jiffies_ago"],
                )
            )
            out += [f"    {frame_text(fr)}" for fr in t["stack"][:16]]
    return out


def freed_object(items: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The freed slab object among the bad pointers (the use-after-free's victim)."""
    freed = [it for it in items if it["slab"] and it["slab"]["allocated"] is False]
    # A register at the object's start (or inside it) before one just past its end.
    freed.sort(key=lambda it: (it["slab"]["offset"] >= it["slab"]["object_size"],
                               it["slab"]["offset"]))  # fmt: skip
    return freed[0] if freed else None


def _first_outside_allocator(stack: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The first frame of a track's stack that is not the slab allocator itself: whose
    code allocated or freed (SLUB's own frames come first in a saved stack)."""
    skip = ("kmem_cache_", "kfree", "kmalloc", "__kmalloc", "slab_", "__slab", "___slab",
            "set_track", "kmem_", "__kmem", "krealloc", "kvfree")  # fmt: skip
    for fr in stack:
        name = fr.get("function") or ""
        if not name.startswith(skip):
            return fr
    return stack[0] if stack else None


#: The counters whose sum leaves "in no counter" (facts.memory.breakdown's parts).
_OTHER_PARTS = ("free_kb", "anon_kb", "file_kb", "slab_reclaimable_kb", "slab_unreclaimable_kb",
                "kernel_stack_kb", "pagetables_kb")  # fmt: skip


def next_steps(
    mem: dict[str, Any] | None, items: list[dict[str, Any]], lb: dict[str, str]
) -> list[str]:
    """Steps that name what the dump showed: the cache that leaked, the cgroup at its
    limit, the freed object and who freed it. Put before the class's generic steps."""
    out = []
    if mem:
        leak = mem.get("leak_suspect")
        if leak:
            out.append(
                lb["leak_step"].format(
                    cache=leak["cache"], size=size(leak["total_kb"]), percent=leak["ram_percent"]
                )
            )
        oom = mem.get("oom") or {}
        if oom.get("memcg"):
            out.append(lb["memcg_step"].format(memcg=oom["memcg"]))
        tasks = mem.get("top_tasks") or []
        total = mem.get("total_kb") or 0
        other = mem.get("other_kb") or 0
        unread = [k for k in (*_OTHER_PARTS, "total_kb") if k in (mem.get("lacks") or [])]
        if not leak and "other_kb" not in mem and unread:
            # The share in no counter (the DWARF run's first step on a page leak) needs every
            # counter: say which were not read rather than leave the step out.
            what = "; ".join(lb.get("mem." + k, k) for k in unread)
            out.append(lb["other_unknown_step"].format(what=what))
        if not leak and total and other * 2 >= total:
            # Half of RAM in no counter: pages taken straight from the page allocator.
            out.append(
                lb["other_step"].format(size=size(other), percent=round(100 * other / total))
            )
        if not leak and tasks and total and tasks[0]["rss_kb"] * 2 >= total:
            t = tasks[0]
            out.append(
                lb["task_step"].format(
                    comm=t["comm"],
                    pid=t["pid"],
                    rss=size(t["rss_kb"]),
                    percent=round(100 * t["rss_kb"] / total),
                )
            )
    it = freed_object(items)
    if it is not None:
        obj = it["slab"]
        where = lb["obj_fault_address"] if it["where"] == "fault_address" else it["where"]
        tracks = obj.get("tracks") or {}
        free, alloc = tracks.get("free"), tracks.get("alloc")
        if free and alloc:
            # The recorded caller (the kernel's "Freed in …") is exact; the saved stack may
            # skip it (stack depot's skip count, a tail call into kfree()).
            freer = _first_outside_allocator([free["caller"], *free["stack"]]) or free["caller"]
            allocer = (
                _first_outside_allocator([alloc["caller"], *alloc["stack"]]) or alloc["caller"]
            )
            out.append(
                lb["uaf_step"].format(
                    where=where,
                    object=f"{obj['object']:#x}",
                    cache=obj["cache"],
                    free=frame_text(freer),
                    free_pid=free["pid"],
                    alloc=frame_text(allocer),
                    free_fn=freer.get("function") or frame_text(freer),
                )
            )
        else:
            out.append(
                lb["uaf_step_notrack"].format(
                    where=where, object=f"{obj['object']:#x}", cache=obj["cache"]
                )
            )
    return out
