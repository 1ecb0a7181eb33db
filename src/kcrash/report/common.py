"""Small formatting pieces shared by the text, Markdown and HTML renderers."""

from __future__ import annotations

from typing import Any

from ..sys_rows import report_rows


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


def crash_site_line(v: dict[str, Any], lb: dict[str, str]) -> str | None:
    """``func [module]`` of the crash site, only when it is not the culprit's function."""
    site, c = v.get("crash_site"), v.get("culprit")
    if not site or not site.get("function"):
        return None
    if c and c.get("function") == site["function"] and c.get("module") == site.get("module"):
        return None
    s = site["function"] + f" [{site.get('module') or 'vmlinux'}]"
    if site.get("source"):
        s += f" — {site['source']}"
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


def system_rows(system: dict[str, Any], lb: dict[str, str]) -> list[tuple[str, str]]:
    """(label, text) of the report's ``system``: the rows of :mod:`kcrash.sys_rows`."""
    return report_rows(system, lambda why: lb["unknown_value"].format(why=why))


def step_name(name: str, lb: dict[str, str]) -> str:
    """An analysis step's name in the report's language (the JSON keeps the English id)."""
    return lb.get("step." + name, name)


def stack_lines(st: dict[str, Any], lb: dict[str, str], limit: int = 12) -> list[str]:
    """A short stack for context sections: header and the first frames."""
    head = f"PID {st.get('pid')} ({st.get('comm')})"
    if st.get("cpu") is not None:  # a blocked task in a log has no CPU: say nothing
        head += f" CPU {st['cpu']}"
    real = [f for f in st.get("frames", []) if not f.get("inlined")]
    # What the CPU was doing is below the last exception frame; above it is
    # only how the dump was taken (panic/NMI path), so start there.
    starts = [i for i, f in enumerate(real) if f.get("exception")]
    if starts:
        real = real[starts[-1] :]
    frames = [frame_line(f) for f in real]
    more = len(frames) - limit
    out = [head, *("  " + f for f in frames[:limit])]
    if more > 0:
        out.append("  " + lb["more"].format(n=more))
    return out


def context_sections(report: dict[str, Any], lb: dict[str, str]) -> list[tuple[str, list[str]]]:
    """(heading, lines) of the class-dependent context: CPUs, blocked tasks, memory, modules."""
    ctx = report.get("context") or {}
    out: list[tuple[str, list[str]]] = []
    hang = report.get("hang")
    graph: list[tuple[str, list[str]]] = []
    if hang and hang.get("tasks"):
        from .hang import hang_lines

        graph = [(lb["hang"], hang_lines(hang, report.get("lang", "en")))]
    if hang and hang.get("story"):  # a cycle or a chain: the answer, so it comes first
        out += graph
        graph = []
    if ctx.get("cpu_stacks"):
        lines: list[str] = []
        for st in ctx["cpu_stacks"]:
            lines += stack_lines(st, lb, 8)
        out.append((lb["cpu_stacks"], lines))
    if ctx.get("blocked_tasks"):
        lines = []
        for st in ctx["blocked_tasks"][:8]:
            lines += stack_lines(st, lb, 8)
        if len(ctx["blocked_tasks"]) > 8:
            lines.append(lb["more"].format(n=len(ctx["blocked_tasks"]) - 8))
        out.append((lb["blocked_tasks"], lines))
    out += graph  # blocked tasks without a cycle or chain: after the CPUs and D tasks
    mem = ctx.get("memory")
    if mem:
        from .memslab import memory_lines

        out.append((lb["memory"], memory_lines(mem, lb)))
    if report.get("objects"):
        from .memslab import object_lines

        out.append((lb["objects"], object_lines(report["objects"], lb)))
    flagged = [m for m in ctx.get("modules", []) if m.get("taints")]
    if flagged:
        out.append((lb["modules"], [f"{m['name']} ({m['taints']})" for m in flagged]))
    return out
