"""Markdown: for tickets and chat; verdict first, evidence after."""

from __future__ import annotations

from typing import Any

from .common import (
    context_sections,
    crash_site_line,
    culprit_line,
    frame_line,
    registers_lines,
    system_rows,
)
from .labels import labels


def _code(lines: list[str]) -> list[str]:
    return ["```", *lines, "```", ""]


def render(report: dict[str, Any]) -> str:
    lb = labels(report.get("lang", "en"))
    v = report["verdict"]
    sig = report["signature"]
    out = [f"# {lb['title']}: {v.get('title') or v['class']}", ""]
    out += [
        f"- **{lb['verdict']}:** `{v['class']}` — {v.get('summary') or ''}".rstrip(" —"),
        f"- **{lb['culprit']}:** {culprit_line(v.get('culprit'), lb)}",
        *([f"- **{lb['crash_site']}:** {site}"] if (site := crash_site_line(v, lb)) else []),
        f"- **{lb['signature']}:** `{sig.get('id')}` ({sig.get('title')})",
        f"- **{lb['mode']}:** {lb.get('mode_' + report['input']['mode'], report['input']['mode'])}",
        "",
    ]
    if report.get("explanation"):
        out += [f"## {lb['explanation']}", "", *report["explanation"], ""]
    if report.get("next_steps"):
        out += [f"## {lb['next_steps']}", "", *(f"1. {s}" for s in report["next_steps"]), ""]
    ev = report.get("evidence", {})
    out += [f"## {lb['evidence']}", ""]
    for key in ("panic_message", "header"):
        if ev.get(key):
            out += [f"- **{lb[key]}:** `{ev[key]}`"]
    for item in ev.get("decoded", []):
        label = f"**{item['label']}:** " if item.get("label") else ""
        out += [f"- {label}{item['text']}"]
    out.append("")
    if ev.get("code"):
        out += [f"### {lb['code']}", "", *_code(ev["code"])]
    if ev.get("registers"):
        out += [f"### {lb['registers']}", "", *_code(registers_lines(ev["registers"]))]
    if ev.get("call_trace"):
        out += [f"### {lb['call_trace']}", "", *_code([frame_line(f) for f in ev["call_trace"]])]
    for heading, lines in context_sections(report, lb):
        out += [f"## {heading}", "", *_code(lines)]
    if report.get("system"):
        out += [f"## {lb['system']}", "", "| | |", "|---|---|"]
        out += [f"| {k} | {val} |" for k, val in system_rows(report["system"])]
        out.append("")
    if report.get("input", {}).get("lacks"):
        out += [f"## {lb['lacks']}", "", *(f"- {x}" for x in report["input"]["lacks"]), ""]
    out += [f"## {lb['steps']}", "", "| step | status | s | |", "|---|---|---|---|"]
    for s in report.get("steps", []):
        out.append(
            f"| {s['name']} | {lb.get('status_' + s['status'], s['status'])} | "
            f"{s['seconds']:.3f} | {s.get('reason') or ''} |"
        )
    others = report.get("other_reports") or []
    if others:
        out += ["", f"## {lb['other_reports']}", ""]
        out += [f"- `{o['verdict']['class']}`: {o['verdict'].get('title')}" for o in others]
    return "\n".join(out) + "\n"
