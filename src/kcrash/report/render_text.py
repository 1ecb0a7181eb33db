"""Terminal text with rich: the verdict at a glance, evidence after.

Colour only on a terminal (rich decides; ``NO_COLOR`` is honoured); piped
output is plain text that still reads well in a ticket.
"""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from .common import (
    context_sections,
    crash_site_line,
    culprit_line,
    frame_line,
    registers_lines,
    step_name,
    system_rows,
)
from .labels import labels


def _hanging(console: Console, prefix: str, text: str, indent: int = 2) -> None:
    """One paragraph, wrapped at the console's width under its own first character (a
    numbered step or a bullet keeps its text in one column), never at column 0."""
    grid = Table.grid()
    grid.add_column(width=indent + len(prefix), no_wrap=True)
    grid.add_column()
    grid.add_row(" " * indent + prefix, Text(text))
    console.print(grid)


def render(report: dict[str, Any], color: bool | None = None, width: int = 100) -> str:
    buf = io.StringIO()
    console = Console(
        file=buf,
        force_terminal=bool(color),
        no_color=not color,
        width=width,
        soft_wrap=False,
        emoji=False,  # ":name:" in a log is text, not an emoji
    )
    lb = labels(report.get("lang", "en"))
    v = report["verdict"]
    sig = report["signature"]
    head = Text()
    head.append(f"{v['class']}", style="bold red")
    head.append(f"  {v.get('title') or ''}\n", style="bold")
    if v.get("summary"):
        head.append(v["summary"] + "\n")
    head.append(f"{lb['culprit']}: ", style="bold")
    head.append(culprit_line(v.get("culprit"), lb) + "\n", style="yellow")
    site = crash_site_line(v, lb)
    if site:
        head.append(f"{lb['crash_site']}: ", style="bold")
        head.append(site + "\n")
    head.append(f"{lb['signature']}: ", style="bold")
    head.append(f"{sig.get('id')}  {sig.get('title')}\n")
    mode = report["input"]["mode"]
    head.append(f"{lb['mode']}: ", style="bold")
    head.append(lb.get("mode_" + mode, mode), style="dim")
    console.print(Panel(head, title=lb["verdict"], title_align="left", expand=True))

    if report.get("explanation"):
        console.print(Text(lb["explanation"], style="bold underline"))
        for line in report["explanation"]:
            _hanging(console, "", line)
        console.print()
    if report.get("next_steps"):
        console.print(Text(lb["next_steps"], style="bold underline"))
        for i, line in enumerate(report["next_steps"], 1):
            _hanging(console, f"{i}. ", line)
        console.print()

    ev = report.get("evidence", {})
    console.print(Text(lb["evidence"], style="bold underline"))
    for key in ("panic_message", "header"):
        if ev.get(key):
            console.print(f"  {lb[key]}: {ev[key]}", highlight=False, markup=False)
    for item in ev.get("decoded", []):
        prefix = f"{item['label']}: " if item.get("label") else "- "
        _hanging(console, prefix, item["text"])
    for key, lines in (
        ("code", ev.get("code")),
        ("registers", registers_lines(ev["registers"]) if ev.get("registers") else None),
        ("call_trace", [frame_line(f) for f in ev.get("call_trace", [])] or None),
    ):
        if lines:
            console.print(f"  {lb[key]}:", style="bold", markup=False)
            for ln in lines:
                console.print("    " + ln, highlight=False, markup=False)
    console.print()

    for heading, lines in context_sections(report, lb):
        console.print(Text(heading, style="bold underline"))
        for ln in lines:
            if heading == lb["hang"] and len(ln) > width - 4:
                _hanging(console, "", ln)  # the graph's sentences wrap under themselves
            else:
                console.print("  " + ln, highlight=False, markup=False)
        console.print()

    if report.get("system"):
        t = Table(title=lb["system"], title_justify="left", show_header=False, box=None)
        for k, val in system_rows(report["system"], lb):
            t.add_row(Text(k, style="bold"), Text(val))
        console.print(t)
        console.print()
    lacks = report.get("input", {}).get("lacks") or []
    if lacks:
        console.print(Text(lb["lacks"], style="bold underline"))
        for x in lacks:
            console.print("  - " + x, highlight=False, markup=False)
        console.print()
    t = Table(title=lb["steps"], title_justify="left", box=None)
    t.add_column(lb["col_step"])
    t.add_column(lb["col_status"])
    t.add_column(lb["col_seconds"], justify="right")
    t.add_column("")
    for s in report.get("steps", []):
        style = "green" if s["status"] == "ok" else "yellow"
        t.add_row(
            step_name(s["name"], lb),
            Text(lb.get("status_" + s["status"], s["status"]), style=style),
            f"{s['seconds']:.3f}",
            Text(s.get("reason") or ""),
        )
    console.print(t)
    for o in report.get("other_reports") or []:
        label = lb["other_reports_before"] if o.get("position") == "before" else lb["other_reports"]
        console.print(
            f"{label}: {o['verdict']['class']}: {o['verdict'].get('title')}",
            markup=False,
            highlight=False,
        )
    # Tables pad their cells to the width: no trailing blanks in a ticket or a diff.
    return "".join(line.rstrip() + "\n" for line in buf.getvalue().splitlines())
