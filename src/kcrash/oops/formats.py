"""Turn one line of any kernel-log text format into a :class:`LogLine`.

Why per line rather than per file: real pastes mix formats.  A serial
console capture interleaves kernel records (``[    5.1][  T123] ...``) with
user-space output; a ticket holds a ``crash`` session whose ``log`` command
prints dmesg lines between prompts; a syslog file prefixes every record with
``Mon DD HH:MM:SS host kernel:`` and keeps the kernel's ``[ts]`` inside.  So
every line goes through the same cascade of prefix patterns and the file's
*format* is only the majority vote, reported for the operator.

Formats recognised (names used in :attr:`TextInput.format`):

``dmesg``
    ``[    5.123456] text`` (``dmesg``, ``vmcore-dmesg.txt``, crash ``log``),
    optionally with a ``<N>`` syslog level prefix (``dmesg -r``).
``console``
    the same with printk caller ids, ``[    5.1][  T123] text``
    (``CONFIG_PRINTK_CALLER``, kernels >= 5.1).
``dmesg-T``
    ``[Thu Nov 26 06:37:22 2026] text`` (``dmesg -T``, util-linux).
``journal``
    ``Nov 26 06:37:22[.123456] host kernel: text`` (``journalctl -k``,
    ``-o short-precise``, syslog files), ``-o short-iso[-precise]`` and
    ``-o short-monotonic`` (``[    5.123456] host kernel: text``).
``kmsg``
    ``6,123,5123456,-[,caller=T1];text`` (``/dev/kmsg``).
``journal-json``
    ``journalctl -k -o json`` (one object per line, ``MESSAGE`` and
    ``_SOURCE_MONOTONIC_TIMESTAMP``).
``golog``
    ``2018/01/09 14:28:48 text`` (Go's log package: syzkaller's syz-manager).
``plain``
    bare kernel text without any prefix (``dmesg -t``, pasted fragments).
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass

from kcrash.model import LogLine

_ENTITY_RE = re.compile(r"&(?:lt|gt|amp|quot|apos|nbsp|#\d{1,5}|#x[0-9a-fA-F]{1,4});")
# mail quoting: "> ", ">> ", "> > " (not a "<4>" syslog level, not "->")
_QUOTE_RE = re.compile(r"^(?:> ?)+(?=\S|\s+\S)")
_INDENTED_STAMP_RE = re.compile(r"^\s+(?:<\d{1,3}>)?\[\s*\d{1,10}\.\d{1,9}\]")
# Control characters other than TAB are noise from serial lines and terminals.
_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][A-Za-z0-9]|\x1b[=>]")
_CTRL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

_SYSLOG_LEVEL = r"(?:<(?P<lvl>\d{1,3})>)?"
_CALLER = r"(?:\[\s*(?P<caller>[TC]\d{1,10})\])?"

# [    5.123456] / [    5.123456][  T123] / <6>[    5.1] text
_DMESG_RE = re.compile(
    r"^"
    + _SYSLOG_LEVEL
    + r"\[\s*(?P<ts>\d{1,10}\.\d{1,9})\]"
    + r"\s?"
    + _CALLER
    + r" ?(?P<text>.*)$"
)
# [Thu Nov 26 06:37:22 2026] text
_DMESG_T_RE = re.compile(
    r"^" + _SYSLOG_LEVEL + r"\[(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) [A-Z][a-z]{2} [ \d]\d "
    r"\d\d:\d\d:\d\d \d{4}\]\s?" + _CALLER + r" ?(?P<text>.*)$"
)
_MONTHS = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"
# journalctl short / short-precise / syslog files: "Nov 26 06:37:22.123456 host kernel: text"
_JOURNAL_RE = re.compile(
    r"^(?:" + _MONTHS + r") [ \d]\d \d\d:\d\d:\d\d(?:\.\d+)? (?P<host>\S+) "
    r"(?P<ident>[^\s:\[]+)(?:\[\d+\])?: ?(?P<text>.*)$"
)
# journalctl -o short-iso[-precise]: "2026-11-26T06:37:22.123456+0000 host kernel: text"
_JOURNAL_ISO_RE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)? (?P<host>\S+) "
    r"(?P<ident>[^\s:\[]+)(?:\[\d+\])?: ?(?P<text>.*)$"
)
# journalctl -o short-monotonic: "[    5.123456] host kernel: text"
_JOURNAL_MONO_RE = re.compile(
    r"^\[\s*(?P<ts>\d{1,10}\.\d{1,9})\] (?P<host>[\w.-]+) (?P<ident>kernel): ?(?P<text>.*)$"
)
# /dev/kmsg: "6,123,5123456,-;text" or with ",caller=T1"
_KMSG_RE = re.compile(
    r"^(?P<prio>\d{1,4}),(?P<seq>\d+),(?P<usec>\d+),[^;,]*(?:,caller=(?P<caller>[TC]\d+))?"
    r"[^;]*;(?P<text>.*)$"
)
# Go's log package (syzkaller's syz-manager, other test harnesses): "2018/01/09 14:28:48 text"
_GOLOG_RE = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d(?:\.\d+)? (?P<text>.*)$")
# A kernel record glued to the end of another line of a serial console: a login
# prompt or a message without its newline ("syzkaller login: [  16.3] INFO: ...",
# "** 93 printk messages dropped ** [  322.9] BUG: KASAN: ...").
_GLUED_DMESG_RE = re.compile(r"\S.*?(?P<rec>\[\s*\d{1,10}\.\d{6}\](?:\[\s*[TC]\d{1,10}\])? .*)$")
# journalctl decorations that are not records.
_JOURNAL_NOISE_RE = re.compile(r"^-- (?:Logs begin|Journal begins|Boot |No entries|Reboot)")


@dataclass
class ParsedLine:
    """A normalised record plus the format its prefix revealed."""

    line: LogLine | None  # None: not a kernel record (e.g. another journal identifier)
    format: str


def clean(raw: str) -> str:
    """Drop ANSI escapes, CR and other control characters; keep TABs.

    Text copied out of a web page or a mail keeps traces of its transport:
    HTML entities (``&lt;IRQ&gt;``, ``&#39;``) are decoded, and mail quote
    marks (``> ``, ``>> ``) in front of a kernel record are dropped.
    """
    if "\x1b" in raw:
        raw = _ANSI_RE.sub("", raw)
    raw = raw.rstrip("\r\n")
    if _CTRL_RE.search(raw):
        raw = _CTRL_RE.sub("", raw)
    if "&" in raw and _ENTITY_RE.search(raw):
        raw = html.unescape(raw)
    if raw.startswith(">"):
        m = _QUOTE_RE.match(raw)
        if m:
            raw = raw[m.end() :]
            if _INDENTED_STAMP_RE.match(raw):  # ">    [  877.1] ..." indented in a mail
                raw = raw.lstrip()
        elif not raw.strip("> "):  # an empty quoted line
            raw = ""
    return raw


def parse_line(raw: str) -> ParsedLine:
    """Strip the transport prefix of one line of log text."""
    text = clean(raw)
    if not text:
        return ParsedLine(LogLine(text=""), "plain")
    c = text[0]
    if c == "[" or c == "<":
        m = _JOURNAL_MONO_RE.match(text)
        if m:
            return ParsedLine(
                LogLine(text=m.group("text"), timestamp=float(m.group("ts"))), "journal"
            )
        m = _DMESG_RE.match(text)
        if m:
            lvl = m.group("lvl")
            return ParsedLine(
                LogLine(
                    text=m.group("text"),
                    timestamp=float(m.group("ts")),
                    level=int(lvl) & 7 if lvl else None,
                    caller=m.group("caller"),
                ),
                "console" if m.group("caller") else "dmesg",
            )
        m = _DMESG_T_RE.match(text)
        if m:
            return ParsedLine(LogLine(text=m.group("text"), caller=m.group("caller")), "dmesg-T")
    elif c.isdigit():
        m = _KMSG_RE.match(text)
        if m:
            return ParsedLine(
                LogLine(
                    text=m.group("text"),
                    timestamp=int(m.group("usec")) / 1e6,
                    level=int(m.group("prio")) & 7,
                    caller=m.group("caller"),
                    seq=int(m.group("seq")),
                ),
                "kmsg",
            )
        m = _JOURNAL_ISO_RE.match(text)
        if m:
            return _journal(m)
        m = _GOLOG_RE.match(text)
        if m:
            return ParsedLine(LogLine(text=m.group("text")), "golog")
    elif c.isupper():
        m = _JOURNAL_RE.match(text)
        if m:
            return _journal(m)
    if c == "-" and _JOURNAL_NOISE_RE.match(text):
        return ParsedLine(None, "journal")
    if c == "{" and '"MESSAGE"' in text:
        return _journal_json(text)
    if "] " in text:
        g = _GLUED_DMESG_RE.match(text)
        if g:
            m = _DMESG_RE.match(g.group("rec"))
            if m:
                return ParsedLine(
                    LogLine(
                        text=m.group("text"),
                        timestamp=float(m.group("ts")),
                        caller=m.group("caller"),
                    ),
                    "console" if m.group("caller") else "dmesg",
                )
    return ParsedLine(LogLine(text=text), "plain")


def _journal(m: re.Match[str]) -> ParsedLine:
    """A syslog/journal record: keep only the kernel's, and its inner ``[ts]``."""
    if m.group("ident") != "kernel":
        return ParsedLine(None, "journal")
    inner = m.group("text")
    dm = _DMESG_RE.match(inner)
    if dm:  # syslog files (rsyslog) keep the kernel's own timestamp
        return ParsedLine(
            LogLine(
                text=dm.group("text"), timestamp=float(dm.group("ts")), caller=dm.group("caller")
            ),
            "journal",
        )
    return ParsedLine(LogLine(text=inner), "journal")


def _journal_json(text: str) -> ParsedLine:
    """``journalctl -o json``: one JSON object per line (systemd journal fields)."""
    try:
        obj = json.loads(text)
    except ValueError:
        return ParsedLine(LogLine(text=text), "plain")
    if not isinstance(obj, dict):
        return ParsedLine(LogLine(text=text), "plain")
    if obj.get("SYSLOG_IDENTIFIER", "kernel") != "kernel" and obj.get("_TRANSPORT") != "kernel":
        return ParsedLine(None, "journal-json")
    msg = obj.get("MESSAGE")
    if isinstance(msg, list):  # non-UTF-8 messages are byte arrays
        try:
            msg = bytes(int(b) & 0xFF for b in msg).decode("utf-8", errors="replace")
        except (TypeError, ValueError):
            msg = None
    if not isinstance(msg, str):
        return ParsedLine(None, "journal-json")
    ts = None
    mono = obj.get("_SOURCE_MONOTONIC_TIMESTAMP")
    if isinstance(mono, str) and mono.isdigit():
        ts = int(mono) / 1e6
    prio = obj.get("PRIORITY")
    level = int(prio) if isinstance(prio, str) and prio.isdigit() else None
    return ParsedLine(LogLine(text=clean(msg), timestamp=ts, level=level), "journal-json")
