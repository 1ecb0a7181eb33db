"""Pick a renderer by format name: one format, one module."""

from __future__ import annotations

from typing import Any

FORMATS = ("text", "markdown", "json", "html")


def render(report: dict[str, Any], fmt: str, color: bool | None = None) -> str:
    if fmt == "json":
        from .json_out import render as r
    elif fmt == "markdown":
        from .markdown import render as r
    elif fmt == "html":
        from .html import render as r
    elif fmt == "text":
        from .text import render as rt

        return rt(report, color=color)
    else:
        raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    return r(report)
