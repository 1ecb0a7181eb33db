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


def _context(report: dict[str, Any], lang: str) -> dict[str, Any]:
    lb = labels(lang)
    ev = report.get("evidence", {})
    return {
        "r": report,
        "lb": lb,
        "culprit": culprit_line(report["verdict"].get("culprit"), lb),
        "crash_site": crash_site_line(report["verdict"], lb),
        "registers": registers_lines(ev["registers"]) if ev.get("registers") else [],
        "trace": [frame_line(f) for f in ev.get("call_trace", [])],
        "system": system_rows(report.get("system") or {}, lb),
        "context": context_sections(report, lb),
    }


def render(report: dict[str, Any]) -> str:
    return _ENV.get_template("report.html.j2").render(**_context(report, report.get("lang", "en")))


def render_body(report: dict[str, Any], lang: str) -> str:
    """The report's sections without the page around them, headings in ``lang``.

    The fleet dashboard embeds this in its crash and bucket pages: the report's
    sentences stay in the language it was analysed in, the chrome follows the page.
    The strings are made :func:`~kcrash.textsafe.visible` here, as for a whole page.
    """
    from ..textsafe import visible_tree

    return _ENV.get_template("report_body.html.j2").render(**_context(visible_tree(report), lang))
