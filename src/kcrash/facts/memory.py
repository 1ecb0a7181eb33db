"""A memory summary for out-of-memory crashes: totals, slab, biggest tasks.

Counters come from drgn's vmstat helpers (``vm_zone_stat``/``vm_node_stat``,
kernels ≥ 4.8 for node counters); slab is reported in pages or bytes
depending on the kernel (``NR_SLAB_*_B`` since 5.9).
"""

from __future__ import annotations

from typing import Any

import drgn
from drgn.helpers.linux.mm import task_rss, totalram_pages
from drgn.helpers.linux.pid import for_each_task

from .tasks import is_kthread


def _stat(prog: drgn.Program, name: str) -> int | None:
    from drgn.helpers.linux.vmstat import global_node_page_state, global_zone_page_state

    for fn in (global_zone_page_state, global_node_page_state):
        try:
            return int(fn(prog[name]))
        except (KeyError, LookupError, TypeError, ValueError):
            continue
    return None


def memory_summary(prog: drgn.Program, top: int = 10) -> dict[str, Any]:
    """Totals in KiB and the ``top`` tasks by resident memory."""
    page_kb = prog["PAGE_SIZE"].value_() // 1024
    out: dict[str, Any] = {"total_kb": totalram_pages(prog) * page_kb}
    for key, item in (
        ("free_kb", "NR_FREE_PAGES"),
        ("slab_reclaimable_kb", "NR_SLAB_RECLAIMABLE_B"),
        ("slab_unreclaimable_kb", "NR_SLAB_UNRECLAIMABLE_B"),
        ("anon_kb", "NR_ANON_MAPPED"),
        ("file_kb", "NR_FILE_PAGES"),
    ):
        v = _stat(prog, item)
        if v is not None:
            out[key] = v * page_kb
    tasks = []
    for t in for_each_task(prog):
        if is_kthread(t):
            continue
        try:
            rss = task_rss(t).total * page_kb
        except Exception:
            continue
        tasks.append({"pid": t.pid.value_(), "comm": t.comm.string_().decode(), "rss_kb": rss})
    tasks.sort(key=lambda r: -r["rss_kb"])
    out["top_tasks"] = tasks[:top]
    return out
