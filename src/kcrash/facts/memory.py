"""What ate the memory: for OOM and memory-pressure crashes.

An expert's second look at an OOM is ``kmem -i`` (where the pages went), ``ps`` sorted
by RSS, ``kmem -s`` (slab caches by size) and the memory cgroup that hit its limit; this
module reads all four from the dump and adds a *leak suspect*: one slab cache far out of
proportion (:data:`LEAK_RULE`).

Counters come from drgn's vmstat helpers (``vm_zone_stat``/``vm_node_stat``: the global
sums /proc/meminfo prints); :data:`COUNTERS` is a TABLE of what each figure is called in
which kernel, since several were renamed or moved between zone and node counters.
"""

from __future__ import annotations

import re
from typing import Any

import drgn
from drgn.helpers.linux.mm import task_rss, totalram_pages
from drgn.helpers.linux.pid import for_each_task

from .tasks import is_kthread

#: (key, enumerators to try in order, unit) — unit "pages" or "kb". Zone and node
#: counters are both tried: several moved from zone to node (4.8-4.14, 5.x).
COUNTERS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("free_kb", ("NR_FREE_PAGES",), "pages"),
    # Anonymous pages mapped by processes: node counter NR_ANON_MAPPED since 4.8
    # (NR_ANON_PAGES before).
    ("anon_kb", ("NR_ANON_MAPPED", "NR_ANON_PAGES"), "pages"),
    # The page cache (includes shmem and swap cache, as /proc/meminfo's "Cached" + them).
    ("file_kb", ("NR_FILE_PAGES",), "pages"),
    ("shmem_kb", ("NR_SHMEM",), "pages"),
    # Slab: NR_SLAB_{RECLAIMABLE,UNRECLAIMABLE}_B since 5.9 (commit d42f3245c7e2, byte
    # precise for memcg; the global node counter still holds pages), before that without
    # _B (node counters since 4.13, zone counters before).
    ("slab_reclaimable_kb", ("NR_SLAB_RECLAIMABLE_B", "NR_SLAB_RECLAIMABLE"), "pages"),
    ("slab_unreclaimable_kb", ("NR_SLAB_UNRECLAIMABLE_B", "NR_SLAB_UNRECLAIMABLE"), "pages"),
    # Kernel stacks in kB (zone counter up to 5.7, node counter since 5.8).
    ("kernel_stack_kb", ("NR_KERNEL_STACK_KB",), "kb"),
    # Page tables (zone counter up to 5.10, node counter since 5.11).
    ("pagetables_kb", ("NR_PAGETABLE",), "pages"),
)

#: Leak suspect rule. A healthy kernel's slab memory spreads over many caches (dentry,
#: inode caches, kmalloc-*), none more than a few percent of RAM. One cache that alone
#: holds at least ``min_ram_share`` of RAM *and* ``min_ratio`` times the next biggest
#: cache is growing without bound: objects allocated and never freed. Both conditions:
#: a big box's dentry cache may reach 10 % of RAM, but then inode caches grow with it.
LEAK_RULE = {"min_ram_share": 0.10, "min_ratio": 5.0}


def _counter(prog: drgn.Program, names: tuple[str, ...]) -> int | None:
    from drgn.helpers.linux.vmstat import global_node_page_state, global_zone_page_state

    for name in names:
        try:
            item = prog.constant(name)
        except LookupError:
            continue
        enum_type = item.type_.type_name()
        fn = global_node_page_state if "node" in enum_type else global_zone_page_state
        try:
            return int(fn(item))
        except (LookupError, TypeError, ValueError, drgn.FaultError):
            continue
    return None


def breakdown(prog: drgn.Program) -> tuple[dict[str, int], list[str]]:
    """Where the pages went, in kB, and the figures that could not be read."""
    page_kb = prog["PAGE_SIZE"].value_() // 1024
    out: dict[str, int] = {}
    lacks = []
    try:
        out["total_kb"] = totalram_pages(prog) * page_kb
    except (LookupError, drgn.FaultError):
        # A data symbol (_totalram_pages): kallsyms of a kernel built without
        # CONFIG_KALLSYMS_ALL (Debian's arm64) does not list it, nor vm_zone_stat.
        lacks.append("total_kb")
    for key, names, unit in COUNTERS:
        v = _counter(prog, names)
        if v is None:
            lacks.append(key)
            continue
        out[key] = v * page_kb if unit == "pages" else v
    try:
        from drgn.helpers.linux.hugetlb import hugetlb_total_usage

        huge = hugetlb_total_usage(prog)
        out["hugetlb_kb"] = huge.pages * page_kb
        out["hugetlb_free_kb"] = huge.free_pages * page_kb
    except (LookupError, AttributeError, drgn.FaultError):
        lacks.append("hugetlb_kb")
    # What no counter above explains: pages a driver took straight from the page allocator
    # (alloc_pages() is counted nowhere), vmalloc, per-CPU areas, the kernel image. file
    # already includes shmem.
    parts = ("free_kb", "anon_kb", "file_kb", "slab_reclaimable_kb", "slab_unreclaimable_kb",
             "kernel_stack_kb", "pagetables_kb", "hugetlb_kb")  # fmt: skip
    if "total_kb" in out and all(k in out for k in parts):
        out["other_kb"] = max(0, out["total_kb"] - sum(out[k] for k in parts))
    return out, lacks


def top_tasks(prog: drgn.Program, top: int = 10) -> list[dict[str, Any]]:
    """User tasks by resident memory, as ``ps`` computes RSS (file + anon + shmem pages
    of the task's mm: the kernel's get_mm_rss())."""
    page_kb = prog["PAGE_SIZE"].value_() // 1024
    tasks = []
    for t in for_each_task(prog):
        if is_kthread(t):
            continue
        try:
            rss = task_rss(t).total * page_kb
        except (drgn.FaultError, LookupError, AttributeError, ValueError):
            continue
        tasks.append({"pid": t.pid.value_(), "comm": t.comm.string_().decode(), "rss_kb": rss})
    tasks.sort(key=lambda r: (-r["rss_kb"], r["pid"]))
    return tasks[:top]


def leak_suspect(caches: list[dict[str, Any]], total_kb: int | None) -> dict[str, Any] | None:
    """The cache :data:`LEAK_RULE` names, or None. ``caches`` biggest first."""
    if not caches or not total_kb:
        return None
    first = caches[0]
    second_kb = caches[1]["total_kb"] if len(caches) > 1 else 0
    share = first["total_kb"] / total_kb
    ratio = first["total_kb"] / second_kb if second_kb else float("inf")
    if share < LEAK_RULE["min_ram_share"] or ratio < LEAK_RULE["min_ratio"]:
        return None
    return {
        "cache": first["name"],
        "total_kb": first["total_kb"],
        "objects": first["allocated"],
        "object_size": first["object_size"],
        "ram_percent": round(100 * share, 1),
        "times_next": None if second_kb == 0 else round(ratio, 1),
        "next_cache": caches[1]["name"] if len(caches) > 1 else None,
    }


_OOM_KILL_RE = re.compile(r"oom-kill:constraint=(?P<constraint>[A-Z_]+),(?P<rest>.*)")
_MEMCG_USAGE_RE = re.compile(r"memory: usage (?P<usage>\d+)kB, limit (?P<limit>\d+)kB")
_INVOKED_RE = re.compile(r"(?P<comm>.+?) invoked oom-killer: gfp_mask=(?P<gfp>\S+?),")
# mm/slab_common.c dump_unreclaimable_slab() (4.15+): "%-17s %10luKB %10luKB" per cache,
# printed when unreclaimable slab exceeds the pages on the LRU lists.
_SLAB_INFO_RE = re.compile(r"^(?P<name>\S+)\s+(?P<used>\d+)KB\s+(?P<total>\d+)KB\s*$")
_PAGES_RE = re.compile(r"^(?P<n>\d+) pages (?P<what>RAM|reserved)$")


def oom_report(lines: list[str]) -> dict[str, Any]:
    """What the kernel's own OOM report says (mm/oom_kill.c dump_header()): who invoked
    the killer, the constraint and, for a memory cgroup OOM, which cgroup and its limit.

    ``oom-kill:constraint=…,oom_memcg=…,task_memcg=…`` is printed since 4.19 (commit
    ef8444ea01d7), but only when a victim is chosen: a ``panic_on_oom`` panic stops
    before it, and then the constraint is what the panic message says."""
    out: dict[str, Any] = {}
    slab_info: list[dict[str, Any]] | None = None
    for raw in lines:
        line = re.sub(r"^\[[^\]]*\]\s?", "", raw).rstrip()  # the printk time stamp
        if line == "Unreclaimable slab info:":
            slab_info = out.setdefault("unreclaimable_slab", [])
            continue
        m = _SLAB_INFO_RE.match(line)
        if slab_info is not None and m:
            slab_info.append(
                {"name": m["name"], "used_kb": int(m["used"]), "total_kb": int(m["total"])}
            )
            continue
        if slab_info is not None and not line.startswith("Name "):
            slab_info = None
        m = _PAGES_RE.match(line)
        if m:
            out[f"pages_{m['what'].lower()}"] = int(m["n"])
        if "invoked oom-killer:" in line and "invoked_by" not in out:
            m = _INVOKED_RE.search(line.split("] ", 1)[-1])
            if m:
                out["invoked_by"] = m["comm"].strip()
                out["gfp_mask"] = m["gfp"]
        m = _OOM_KILL_RE.search(line)
        if m:
            out["constraint"] = m["constraint"]
            fields = dict(
                kv.split("=", 1) for kv in m["rest"].split(",") if "=" in kv and "(" not in kv
            )
            if fields.get("oom_memcg"):
                out["memcg"] = fields["oom_memcg"]
            if fields.get("task"):
                out["victim"] = {"comm": fields["task"], "pid": int(fields.get("pid", "0"))}
        m = _MEMCG_USAGE_RE.search(line)
        if m and "memcg_usage_kb" not in out:
            out["memcg_usage_kb"] = int(m["usage"])
            out["memcg_limit_kb"] = int(m["limit"])
        if "system-wide panic_on_oom is enabled" in line:
            out.setdefault("constraint", "CONSTRAINT_NONE")
        elif "compulsory panic_on_oom is enabled" in line:
            out.setdefault("constraint", "CONSTRAINT_MEMCG")
    return out


def memory_from_log(lines: list[str]) -> dict[str, Any]:
    """What the OOM report in the log alone says, for a log without a dump or a dump
    without types: the constraint and cgroup, and the leak suspect among the caches of
    "Unreclaimable slab info" (their Total column: objects × size) against the RAM of
    "N pages RAM" minus "M pages reserved" (4 kB pages: x86-64's size, assumed)."""
    oom = oom_report(lines)
    # Read from memory only: the breakdown, tasks by RSS and the full cache table.
    out: dict[str, Any] = {
        "oom": oom,
        "top_tasks": [],
        "slab_caches": [],
        "lacks": ["breakdown", "top_tasks", "slab_caches"],
    }
    if "pages_ram" in oom:
        out["total_kb"] = (oom["pages_ram"] - oom.get("pages_reserved", 0)) * 4
    else:
        out["lacks"].append("total_kb")
    rows = [
        {"name": r["name"], "total_kb": r["total_kb"], "allocated": None, "object_size": None}
        for r in sorted(oom.get("unreclaimable_slab", []), key=lambda r: -r["total_kb"])
    ]
    out["leak_suspect"] = leak_suspect(rows, out.get("total_kb"))
    return out


def memory_summary(
    prog: drgn.Program, log_lines: list[str] | None = None, top: int = 10
) -> dict[str, Any]:
    """The whole memory picture of an OOM: breakdown, top tasks, slab caches, leak
    suspect, the OOM report's constraint and memory cgroup. ``lacks`` names what could
    not be read (a figure, the cgroup)."""
    from .slab import cache_rows

    out: dict[str, Any] = {}
    figures, lacks = breakdown(prog)
    out.update(figures)
    try:
        out["top_tasks"] = top_tasks(prog, top)
    except (drgn.FaultError, LookupError, ValueError) as exc:
        out["top_tasks"] = []
        lacks.append(f"tasks: {exc}")
    try:
        caches = cache_rows(prog)
    except (drgn.FaultError, LookupError, ValueError) as exc:
        caches = []
        lacks.append(f"slab caches: {exc}")
    out["slab_caches"] = caches[:top]
    out["slab_cache_count"] = len(caches)
    out["leak_suspect"] = leak_suspect(caches, figures.get("total_kb"))
    out["oom"] = oom_report(log_lines or [])
    out["lacks"] = lacks
    return out
