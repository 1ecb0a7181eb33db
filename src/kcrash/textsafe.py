"""The one boundary between text that came from a dump or a log and any output.

Why one module at the bottom of the layers: a vmcore and a kernel log are
attacker-influenced (any local user picks a task's ``comm``; a crash log is pasted
from anywhere), and the same value reaches many outputs — a terminal, a pager, a
Markdown ticket, an HTML page, a batch table.  Each output path calls one of the
functions here, so a new renderer or command has exactly one thing to get right.

The rules:

- terminal and plain text: every character of :data:`UNSAFE` is shown as a visible
  escape (``\\x1b``, ``\\u202e``), never emitted: an ``ESC ] 0 ; … BEL`` title change,
  an ``ESC [ 2 J`` screen clear, an OSC 8 hyperlink, a C1 ``CSI`` (U+009B) or a bidi
  override (U+202E) is shown for what it is.  Escaping the introducer is enough: the
  rest of a sequence is printable text;
- JSON stays exact (the value is the dump's), but the characters JSON allows raw
  (DEL, C1, bidi controls, U+2028/2029) are written as ``\\uXXXX`` so that ``jq`` or
  ``cat`` on a terminal cannot be driven by them either;
- Markdown: every interpolated value is escaped for Markdown's syntax and for HTML
  (:func:`md_text`, :func:`md_code`, :func:`md_block`), table cells included.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from collections.abc import Iterable, Iterator
from typing import Any

#: Characters never written raw, with why (a table: add a row, not a special case).
UNSAFE_RANGES: tuple[tuple[str, str, str], ...] = (
    ("\x00", "\x08", "C0 controls: NUL, BEL, BS …"),
    ("\x09", "\x0a", "TAB and LF: kept only in multi-line text (visible_text)"),
    ("\x0b", "\x1f", "C0 controls: VT, FF, CR (overwrites a line), ESC (starts CSI/OSC) …"),
    ("\x7f", "\x9f", "DEL and the C1 controls (U+009B is a one-character CSI)"),
    ("\u061c", "\u061c", "Arabic letter mark (bidi)"),
    ("\u200b", "\u200f", "zero-width space/joiners and the LRM/RLM bidi marks"),
    ("\u2028", "\u2029", "line and paragraph separators (break lines in editors and JS)"),
    ("\u202a", "\u202e", "bidi embeddings and overrides (U+202E reverses the text after it)"),
    ("\u2060", "\u2064", "word joiner and invisible operators"),
    ("\u2066", "\u2069", "bidi isolates"),
    ("\ufeff", "\ufeff", "zero-width no-break space (BOM)"),
    ("\ufff9", "\ufffb", "interlinear annotation controls"),
)

_CLASS = "".join(f"{re.escape(lo)}-{re.escape(hi)}" for lo, hi, _ in UNSAFE_RANGES)
_UNSAFE_RE = re.compile(f"[{_CLASS}]")
_UNSAFE_KEEP_LINES_RE = re.compile(f"(?![\t\n])[{_CLASS}]")
#: In JSON text the C0 controls are already escaped by the encoder; the rest is not.
_JSON_RAW_RE = re.compile(f"(?![\x00-\x1f])[{_CLASS}]")


def _escape(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def visible(s: Any) -> str:
    """One line of untrusted text for any text output: no control, no bidi, no newline."""
    s = s if isinstance(s, str) else str(s)
    return _UNSAFE_RE.sub(_escape, s)


def visible_text(s: str) -> str:
    """Several lines of untrusted text: like :func:`visible` but TAB and LF are kept."""
    return _UNSAFE_KEEP_LINES_RE.sub(_escape, s)


def is_visible(s: str, keep_lines: bool = True) -> bool:
    """True when ``s`` holds no character :func:`visible`/:func:`visible_text` escapes."""
    return not (_UNSAFE_KEEP_LINES_RE if keep_lines else _UNSAFE_RE).search(s)


def visible_tree(obj: Any) -> Any:
    """A copy of a JSON-like tree (a report) with every string made :func:`visible`.

    Renderers that interpolate many values (text, Markdown, HTML) take the report
    through this once, so no field can be forgotten; keys are code's, not input's.
    """
    if isinstance(obj, str):
        return visible(obj)
    if isinstance(obj, dict):
        return {k: visible_tree(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [visible_tree(v) for v in obj]
    return obj


def json_safe(text: str) -> str:
    """JSON text with the characters JSON leaves raw written as ``\\uXXXX`` (same values).

    Structural JSON is ASCII, so any such character is inside a string, where a
    ``\\u`` escape decodes to exactly the same character.
    """
    return _JSON_RAW_RE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def json_dumps(obj: Any, **kwargs: Any) -> str:
    """:func:`json.dumps` (UTF-8 kept readable) followed by :func:`json_safe`."""
    kwargs.setdefault("ensure_ascii", False)
    return json_safe(json.dumps(obj, **kwargs))


class VisibleWriter:
    """A text stream that writes through :func:`visible_text`: the commands' stdout.

    crash-style commands (ours and every command of drgn's that we pass through)
    print dump text in many places; wrapping their stdout while they run means no
    print can be forgotten.  ``write_trusted`` is for output kcrash composed itself
    from already visible values (the colours of the text report).
    """

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def write(self, s: str) -> int:
        self.raw.write(visible_text(s))
        return len(s)

    def write_trusted(self, s: str) -> int:
        return self.raw.write(s)  # type: ignore[no-any-return]

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:  # flush, fileno, isatty, encoding …
        return getattr(self.raw, name)


@contextlib.contextmanager
def visible_stdout() -> Iterator[None]:
    """Run a block with ``sys.stdout`` (whatever it is now: a pipe, a file, a
    terminal) wrapped in a :class:`VisibleWriter`."""
    saved = sys.stdout
    if isinstance(saved, VisibleWriter):
        yield
        return
    sys.stdout = VisibleWriter(saved)  # type: ignore[assignment]
    try:
        yield
    finally:
        if isinstance(sys.stdout, VisibleWriter):
            sys.stdout = saved


def write_trusted(s: str) -> None:
    """Write kcrash's own composed output (escape codes of colour included) to stdout."""
    getattr(sys.stdout, "write_trusted", sys.stdout.write)(s)


# ---------------------------------------------------------------- Markdown

#: Escaped anywhere in Markdown text: inline syntax (emphasis, code, links and
#: images, autolinks, raw HTML, strikethrough, table cells, math) and backslash itself.
_MD_INLINE = re.compile(r"([\\`*{}\[\]()!|~$])")
#: ``_`` between two letters or digits can neither open nor close emphasis (CommonMark's
#: flanking rules): ``kcrash_get_refcount`` stays readable; any other ``_`` is escaped.
_MD_UNDERSCORE = re.compile(r"(?<![^\W_])_|_(?![^\W_])")
#: HTML in Markdown is escaped as entities, which every Markdown dialect honours.
_MD_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
#: Syntax only at the start of a line: headings, lists, quotes, setext underlines.
_MD_LINE_START = re.compile(r"^( *)([#+\-=]|\d+[.)])")


def md_text(s: Any) -> str:
    """An untrusted value inside Markdown prose or a table cell: shown, never parsed.

    ``<script>``, ``<img onerror=…>``, ``![x](http://…)``, ``[x](javascript:…)``,
    ``**``, a ``|`` that would split a table cell, and a leading ``#`` or ``1.`` all
    come out as the characters they are.
    """
    s = visible(s)
    s = "".join(_MD_HTML.get(c, c) for c in s)
    s = _MD_INLINE.sub(r"\\\1", s)
    s = _MD_UNDERSCORE.sub(r"\\_", s)
    m = _MD_LINE_START.match(s)
    if m:
        lead, tok = m.group(1), m.group(2)
        tok = tok[:-1] + "\\" + tok[-1]
        s = lead + tok + s[m.end() :]
    # Leading spaces would indent a code block, trailing ones (any Unicode space)
    # would be dropped: as character references they are plain text anywhere.
    core = s.strip()
    if core != s:
        left = len(s) - len(s.lstrip())
        right = len(s) - len(s.rstrip()) if core else 0
        s = _char_refs(s[:left]) + core + _char_refs(s[len(s) - right :] if right else "")
    return s


def _char_refs(s: str) -> str:
    return "".join(f"&#{ord(c)};" for c in s)


def _longest_backtick_run(s: str) -> int:
    return max((len(r) for r in re.findall(r"`+", s)), default=0)


def md_code(s: Any, table: bool = False) -> str:
    """An untrusted value as an inline code span (literal: no Markdown, no HTML inside).

    The fence is one backtick longer than any run inside the value (CommonMark's
    rule), and in a table ``|`` is escaped: GFM splits cells before code spans.
    """
    s = visible(s)
    if table:
        s = s.replace("|", "\\|")
    if not s:
        return ""
    fence = "`" * (_longest_backtick_run(s) + 1)
    pad = " " if s.startswith("`") or s.endswith("`") or s.startswith(" ") else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def md_block(lines: Iterable[Any]) -> list[str]:
    """Untrusted lines as a fenced code block (closing fence longer than any inside)."""
    body = [visible(x) for x in lines]
    n = max(3, max((_longest_backtick_run(x) for x in body), default=0) + 1)
    fence = "`" * n
    return [fence, *body, fence, ""]


__all__ = [
    "UNSAFE_RANGES",
    "VisibleWriter",
    "is_visible",
    "json_dumps",
    "json_safe",
    "md_block",
    "md_code",
    "md_text",
    "visible",
    "visible_stdout",
    "visible_text",
    "visible_tree",
    "write_trusted",
]
