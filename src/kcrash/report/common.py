"""Small formatting pieces shared by the text, Markdown and HTML renderers."""

from __future__ import annotations

from typing import Any

from ..facts.model import SystemInfo


def culprit_line(c: dict[str, Any] | None, lb: dict[str, str]) -> str:
    """``func [module] at file:line (out-of-tree, unsigned)``."""
    if not c or not c.get("function"):
        return lb["none"]
    s = c["function"]
    if c.get("module") and c["module"] != "vmlinux":
        s += f" [{c['module']}]"
    else:
        s += " [vmlinux]"
    if c.get("source"):
        s += f" — {c['source']}"
    flags = [lb[k] for k in ("out_of_tree", "unsigned", "proprietary") if c.get(k)]
    if flags:
        s += f" ({', '.join(flags)})"
    return s


def frame_line(f: dict[str, Any]) -> str:
    name = f.get("function") or (f"{f['address']:#x}" if f.get("address") is not None else "?")
    if f.get("offset") is not None:
        name += f"+{f['offset']:#x}"
        if f.get("size") is not None:
            name += f"/{f['size']:#x}"
    if f.get("module"):
        name += f" [{f['module']}]"
    if f.get("reliable") is False:
        name = "? " + name
    if f.get("source"):
        name += f"  {f['source']}"
    return name


def registers_lines(regs: dict[str, int]) -> list[str]:
    names = [r for r in regs if isinstance(regs[r], int)]
    cells = [f"{r.upper():>8}: {regs[r]:016x}" for r in names]
    return ["  ".join(cells[i : i + 3]) for i in range(0, len(cells), 3)]


SYSTEM_ORDER = tuple(SystemInfo().crash_fields())


def system_rows(system: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    for k in SYSTEM_ORDER:
        v = system.get(k)
        if v is None:
            continue
        if k == "task" and isinstance(v, int):
            v = f"{v:x}"
        rows.append((k.upper().replace("_", " "), str(v)))
    return rows
