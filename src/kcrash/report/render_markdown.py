"""Markdown: for tickets and chat; verdict first, evidence after."""

from __future__ import annotations

from typing import Any

from ..textsafe import md_block, md_code, md_text
from . import common
from .labels import labels


def _code(lines: list[str]) -> list[str]:
    return md_block(lines)


def render(report: dict[str, Any]) -> str:
    lb = labels(report.get("lang", "en"))
    v = report["verdict"]
    sig = report["signature"]
    # Every value below came from the dump or the log: md_text/md_code/_code
    # escape Markdown and HTML in it (the labels are ours).
    out = [f"# {lb['title']}: {md_text(v.get('title') or v['class'])}", ""]
    mode = report["input"]["mode"]
    out += [
        f"- **{lb['verdict']}:** {md_code(v['class'])} — {md_text(v.get('summary') or '')}".rstrip(
            " —"
        ),
        f"- **{lb['culprit']}:** {md_text(common.culprit_line(v.get('culprit'), lb))}",
        *(
            [f"- **{lb['crash_site']}:** {md_text(site)}"]
            if (site := common.crash_site_line(v, lb))
            else []
        ),
        f"- **{lb['signature']}:** {md_code(sig.get('id'))} ({md_text(sig.get('title'))})",
        f"- **{lb['mode']}:** {md_text(lb.get('mode_' + mode, mode))}",
        "",
    ]
    if report.get("explanation"):
        out += [f"## {lb['explanation']}", "", *map(md_text, report["explanation"]), ""]
    if report.get("next_steps"):
        out += [f"## {lb['next_steps']}", "", *(f"1. {md_text(s)}" for s in report["next_steps"])]
        out.append("")
    ev = report.get("evidence", {})
    out += [f"## {lb['evidence']}", ""]
    for key in ("panic_message", "header"):
        if ev.get(key):
            out += [f"- **{lb[key]}:** {md_code(ev[key])}"]
    for item in ev.get("decoded", []):
        label = f"**{md_text(item['label'])}:** " if item.get("label") else ""
        out += [f"- {label}{md_text(item['text'])}"]
    out.append("")
    if ev.get("code"):
        out += [f"### {lb['code']}", "", *_code(ev["code"])]
    if ev.get("registers"):
        out += [f"### {lb['registers']}", "", *_code(common.registers_lines(ev["registers"]))]
    if ev.get("call_trace"):
        trace = [common.frame_line(f) for f in ev["call_trace"]]
        out += [f"### {lb['call_trace']}", "", *_code(trace)]
    for heading, lines in common.context_sections(report, lb):
        out += [f"## {heading}", "", *_code(lines)]
    if report.get("system"):
        out += [f"## {lb['system']}", "", "| | |", "|---|---|"]
        out += [f"| {k} | {md_text(val)} |" for k, val in common.system_rows(report["system"], lb)]
        out.append("")
    if report.get("input", {}).get("lacks"):
        out += [f"## {lb['lacks']}", "", *(f"- {md_text(x)}" for x in report["input"]["lacks"])]
        out.append("")
    cols = f"| {lb['col_step']} | {lb['col_status']} | {lb['col_seconds']} | |"
    out += [f"## {lb['steps']}", "", cols, "|---|---|---|---|"]
    for s in report.get("steps", []):
        status = lb.get("status_" + s["status"], s["status"])
        out.append(
            f"| {md_text(common.step_name(s['name'], lb))} | {status} | "
            f"{s['seconds']:.3f} | {md_text(s.get('reason') or '')} |"
        )
    others = report.get("other_reports") or []
    if others:
        out += ["", f"## {lb['other_reports']}", ""]
        out += [
            f"- {md_code(o['verdict']['class'])}: {md_text(o['verdict'].get('title') or '')}"
            for o in others
        ]
    return "\n".join(out) + "\n"
