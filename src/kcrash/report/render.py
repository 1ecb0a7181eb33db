"""Pick a renderer by format name: one format, one module.

This is also where a report meets :mod:`kcrash.textsafe`: every string of the
report came from a dump or a log, so text, Markdown and HTML render a copy
whose strings are all :func:`~kcrash.textsafe.visible` (no control character,
no escape sequence, no bidi override can reach a terminal or a page), and
JSON keeps the exact values with the characters JSON leaves raw escaped.
"""

from __future__ import annotations

from typing import Any

from ..textsafe import visible_tree

FORMATS = ("text", "markdown", "json", "html")


def render(report: dict[str, Any], fmt: str, color: bool | None = None) -> str:
    if fmt == "json":
        from .render_json import render as r

        return r(report)
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    shown = visible_tree(report)
    if fmt == "text":
        from .render_text import render as rt

        return rt(shown, color=color)
    if fmt == "markdown":
        from .render_markdown import render as r
    else:
        from .render_html import render as r
    return r(shown)
