"""HTML: one self-contained file (inline CSS, no scripts, no external assets)."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from .common import (
    context_sections,
    crash_site_line,
    culprit_line,
    frame_line,
    registers_lines,
    system_rows,
)
from .labels import labels

_ENV = Environment(
    loader=PackageLoader("kcrash.report", "templates"),
    autoescape=select_autoescape(["html", "j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(report: dict[str, Any]) -> str:
    lb = labels(report.get("lang", "en"))
    ev = report.get("evidence", {})
    return _ENV.get_template("report.html.j2").render(
        r=report,
        lb=lb,
        culprit=culprit_line(report["verdict"].get("culprit"), lb),
        crash_site=crash_site_line(report["verdict"], lb),
        registers=registers_lines(ev["registers"]) if ev.get("registers") else [],
        trace=[frame_line(f) for f in ev.get("call_trace", [])],
        system=system_rows(report.get("system") or {}, lb),
        context=context_sections(report, lb),
    )
