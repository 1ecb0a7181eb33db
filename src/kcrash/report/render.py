"""The renderers, one row per output format, and :func:`write_report` for every caller.

A format is one module ``report/render_<name>.py`` with ``render(report, …) -> str | bytes``
and one row of :data:`RENDERERS`; ``kcrash analyze``, the shell's ``analyze`` and
``batch`` all write through :func:`write_report`, so a new format is that module and that
row.  A renderer may return ``bytes`` (a binary format such as PDF): :func:`write_report`
writes those to a binary stream and refuses a text-only one with one clear line.

This is also where a report meets :mod:`kcrash.textsafe`: every string of the
report came from a dump or a log, so text, Markdown and HTML render a copy
whose strings are all :func:`~kcrash.textsafe.visible` (no control character,
no escape sequence, no bidi override can reach a terminal or a page), and
JSON keeps the exact values with the characters JSON leaves raw escaped.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import IO, Any

from ..errors import KcrashError
from ..textsafe import visible_tree
from .schema import Report


@dataclass(frozen=True)
class Renderer:
    """One output format."""

    name: str  # the --format value
    module: str  # report/render_<module>.py: imported on first use (startup stays fast)
    suffix: str  # of a file holding it (batch's <name>.<suffix>)
    #: Strings made visible first (terminal and page formats); JSON keeps exact values.
    visible: bool = True
    #: ``render`` takes ``color`` (terminal formats).
    color: bool = False


RENDERERS: dict[str, Renderer] = {
    r.name: r
    for r in (
        # A terminal: rich tables, colour when it is a tty.
        Renderer("text", "render_text", "txt", color=True),
        # A ticket or a wiki page: every value escaped (textsafe.md_text).
        Renderer("markdown", "render_markdown", "md"),
        # Machines (a server, a dashboard, batch's summary): exact values, schema'd.
        Renderer("json", "render_json", "json", visible=False),
        # A browser: one self-contained page (templates/report.html.j2).
        Renderer("html", "render_html", "html"),
    )
}

FORMATS = tuple(RENDERERS)


def render(report: Report | dict[str, Any], fmt: str, color: bool | None = None) -> str | bytes:
    """The report in format ``fmt``: text (``str``) or, for a binary format, ``bytes``."""
    r = RENDERERS.get(fmt)
    if r is None:
        raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    mod = importlib.import_module(f"{__package__}.{r.module}")
    shown = visible_tree(report) if r.visible else report
    return mod.render(shown, color=color) if r.color else mod.render(shown)  # type: ignore[no-any-return]


def render_text(report: Report | dict[str, Any], fmt: str, color: bool | None = None) -> str:
    """The report in a text format (every format but a binary one)."""
    out = render(report, fmt, color=color)
    if isinstance(out, bytes):
        raise KcrashError(f"--format {fmt} is binary: write it to a file (-o FILE)")
    return out


def write_report(
    report: Report | dict[str, Any], fmt: str, out: IO[bytes] | IO[str], color: bool | None = None
) -> None:
    """Write the report in ``fmt`` to ``out``: a binary file, or a text stream.

    Text formats go to a binary file as UTF-8.  On a stream of kcrash's command output
    (the shell's, which makes every other write visible) they are written as trusted:
    the renderer already made each value visible and the colour codes are kcrash's own.
    A binary format goes to a binary file, or to a text stream's underlying buffer
    (``kcrash analyze -f pdf > file``); never decoded.
    """
    data = render(report, fmt, color=color)
    text_stream = hasattr(out, "encoding")
    if isinstance(data, str):
        if not text_stream:
            out.write(data.encode("utf-8"))  # type: ignore[arg-type]
            return
        getattr(out, "write_trusted", out.write)(data)
        return
    if not text_stream:
        out.write(data)  # type: ignore[arg-type]
        return
    buffer = getattr(out, "buffer", None)
    if buffer is None:
        raise KcrashError(f"--format {fmt} is binary: write it to a file (-o FILE)")
    out.flush()
    buffer.write(data)
    buffer.flush()
