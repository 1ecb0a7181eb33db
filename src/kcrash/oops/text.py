"""Oops-text mode: kernel log text (any format) -> :class:`CrashFacts`.

Public API:

* :func:`events_from_log` - report blocks of an already-normalised log
  (also used by the vmcore mode on the log read out of the dump);
* :func:`read_text` - a file or stdin (text or bytes) -> :class:`TextInput`
  holding ``CrashFacts(source="text", mode="text")``, the detected format and
  parse statistics.

Streaming with bounded memory: the input is read line by line; only the open
report blocks (each capped), the finished events, the first lines of the log
(boot banner), and a sliding window of the last lines are kept, so a 100 MB
console log costs a few MB.  Binary or garbage input never raises anything
but :class:`~kcrash.errors.KcrashError`.
"""

from __future__ import annotations

import io
import re
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from kcrash.errors import KcrashError
from kcrash.inputs import BoundedReader, ReadLimits, open_regular
from kcrash.model import CrashFacts, Frame, LogLine, ModuleInfo, OopsEvent, Stack, SystemInfo
from kcrash.notes import Note
from kcrash.oops.blocks import BlockScanner, events_from_log
from kcrash.oops.crashsession import CrashSessionReader
from kcrash.oops.formats import parse_line
from kcrash.oops.unflatten import split_collapsed

__all__ = [
    "NotKernelTextError",
    "TextInput",
    "events_from_log",
    "read_lines",
    "read_path",
    "read_text",
]

HEAD_KEEP = 400  # first records kept (boot banner, command line)
TAIL_KEEP = 4000  # last records kept
MAX_LINE = 8192  # longer lines are cut (binary junk has no newlines)
SNIFF_BYTES = 8192

_BANNER_RE = re.compile(r"^Linux version (?P<release>\S+) (?P<rest>.*)$")
_CMDLINE_RE = re.compile(r"^(?:Kernel )?[Cc]ommand line: (?P<cmd>.*)$")
_HUNG_RE = re.compile(r"INFO: task .+:\d+ (?:blocked (?:in I/O wait )?for more than|can't die)")
_NMI_BT_RE = re.compile(r"NMI backtrace for cpu \d+")
_TASK_D_RE = re.compile(r"^task:.+?\s+state:D\b")  # a D-state task of sysrq-w / -t


# A second printk record glued to the end of the first (a message printed without its
# newline, then the next record): "[ 76.470085] ... bytes[ 76.471107] BUG: unable to ..."
_GLUED_RE = re.compile(r"(?<=\S)(?=\[\s*\d{1,10}\.\d{6}\](?:\[\s*[TC]\d{1,10}\])? \S)")
_RECORD_START_RE = re.compile(r"^(?:<\d{1,3}>)?\[\s*\d{1,10}\.\d{1,9}\]")


def _unglue(lines: Iterable[str]) -> Iterator[str]:
    """Split timestamped console lines that hold two printk records."""
    for raw in lines:
        if raw[:1] in ("[", "<") and _RECORD_START_RE.match(raw) and "] " in raw[15:]:
            parts = _GLUED_RE.split(raw)
            if len(parts) > 1:
                yield from (p if p.endswith("\n") else p + "\n" for p in parts)
                continue
        yield raw


class NotKernelTextError(KcrashError):
    """The input holds no kernel log records and no crash-session output."""


@dataclass
class TextInput:
    """What :func:`read_text` found in a text."""

    facts: CrashFacts
    format: str  # dominant line format: dmesg, console, dmesg-T, journal, kmsg, plain, crash
    formats: dict[str, int] = field(default_factory=dict)  # lines per format
    lines_read: int = 0
    kernel_lines: int = 0
    crash_session: bool = False
    truncated_lines: int = 0
    dropped_events: int = 0
    cmdline: str | None = None

    @property
    def events(self) -> list[OopsEvent]:
        return self.facts.events


def _chunks(stream: IO[Any] | Iterable[Any]) -> Iterator[Any]:
    """Lines of at most MAX_LINE characters: a binary file without newlines
    must not be read into memory as one line."""
    readline = getattr(stream, "readline", None)
    if readline is None:
        yield from stream
        return
    while True:
        try:
            chunk = readline(MAX_LINE)
        except (EOFError, OSError, ValueError) as e:
            # a compressed file cut short: analyse what was read (the end of a
            # crash log is often exactly what got cut, but the oops is earlier)
            yield f"{_TRUNCATED_MARK}{e}"
            return
        except Exception as e:  # lzma.LZMAError, zstd errors: same degraded answer
            yield f"{_TRUNCATED_MARK}{e}"
            return
        if not chunk:
            return
        yield chunk


_TRUNCATED_MARK = "\x00kcrash-truncated\x00"


def _decode_lines(stream: IO[Any] | Iterable[Any]) -> Iterator[str]:
    """Yield text lines from a text or binary stream, bounded in length."""
    first = True
    for raw in _chunks(stream):
        if isinstance(raw, bytes | bytearray):
            if first and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            text = bytes(raw).decode("utf-8", errors="replace")
        else:
            text = raw
            if first and text.startswith("\ufeff"):
                text = text[1:]
        first = False
        if len(text) > MAX_LINE:
            text = text[:MAX_LINE]
        # a paste whose line breaks became spaces: cut it back into records
        yield from split_collapsed(text.rstrip("\r\n"))


def _sniff_binary(stream: Any) -> bool:
    """True when the first bytes look like a binary file (a vmcore, an ELF, gzip)."""
    peek = getattr(stream, "peek", None)
    if peek is None:
        return False
    try:
        head = peek(SNIFF_BYTES)[:SNIFF_BYTES]
    except Exception:  # a decompressor cut short: let the line reader degrade
        return False
    if not isinstance(head, bytes | bytearray) or not head:
        return False
    if head[:4] == b"\x7fELF" or head[:8] in (b"KDUMP   ", b"DISKDUMP") or head[:2] == b"\x1f\x8b":
        return True
    if head.startswith(b"makedumpfile"):
        return True
    nul = head.count(0)
    printable = sum(1 for b in head if 32 <= b < 127 or b in (9, 10, 13))
    return nul > len(head) // 20 or printable < len(head) * 0.6


def read_text(stream: IO[Any] | Iterable[Any], name: str | None = None) -> TextInput:
    """Read a kernel log / console capture / crash session text into facts.

    ``stream`` may be a text or binary file object, or any iterable of
    lines.  Raises :class:`NotKernelTextError` (a :class:`KcrashError`) when
    the input is binary or holds nothing that looks like kernel output.
    """
    label = name or getattr(stream, "name", None) or "input"
    if _sniff_binary(stream):
        raise NotKernelTextError(
            f"{label}: this is a binary file, not kernel log text "
            "(for a vmcore, run `kcrash analyze VMCORE`)"
        )
    return read_lines(join_wrapped(_decode_lines(stream)), label)


_COMPRESSED = (
    (b"\x1f\x8b", "gzip"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"BZh", "bz2"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)


def read_path(path: str, limits: ReadLimits | None = None) -> TextInput:
    """Read a log file (``-`` = stdin), decompressing gzip/xz/bz2/zstd on the fly.

    Rotated logs (``kern.log.2.gz``) and sosreport archives' members are often
    compressed; decompression is streamed like the text itself, and bounded by
    ``limits`` (a decompression bomb is cut short; the report says where).
    """
    import sys

    limits = limits or ReadLimits()
    try:
        if path == "-":
            return read_text(_maybe_decompress(sys.stdin.buffer, "stdin", limits), "stdin")
        with open_regular(path, "log or vmcore") as raw:  # a FIFO is refused, not waited on
            return read_text(_maybe_decompress(raw, path, limits), path)
    except OSError as e:
        raise KcrashError(f"{path}: cannot read: {e.strerror or e}") from None


def _maybe_decompress(raw: Any, label: str, limits: ReadLimits) -> Any:
    stream = _decompressor(raw, label)
    if stream is raw:
        return raw
    return io.BufferedReader(BoundedReader(stream, raw, limits, label))


def _decompressor(raw: Any, label: str) -> Any:
    peek = getattr(raw, "peek", None)
    head = peek(8)[:8] if peek is not None else b""
    for magic, kind in _COMPRESSED:
        if head.startswith(magic):
            if kind == "gzip":
                import gzip

                return io.BufferedReader(gzip.GzipFile(fileobj=raw))  # type: ignore[arg-type]
            if kind == "xz":
                import lzma

                return io.BufferedReader(lzma.LZMAFile(raw))
            if kind == "bz2":
                import bz2

                return io.BufferedReader(bz2.BZ2File(raw))
            try:
                import zstandard
            except ImportError:
                raise NotKernelTextError(
                    f"{label}: zstd-compressed; install the zstandard package or decompress it"
                ) from None
            return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw))
    return raw


_QUOTED_RE = re.compile(r"^\s*>[> ]*")
_STAMPED_RE = re.compile(r"^(?:<\d{1,3}>)?\[\s*\d{1,10}\.\d{1,9}\](?:\[\s*[TC]\d+\])?")
# Unquoted wraps are only joined where the cut is certain (a table: what the record
# ends with, what the next line starts with, and the separator to put back):
_UNQUOTED_WRAPS: tuple[tuple[re.Pattern[str], re.Pattern[str], str], ...] = (
    # a console cut inside a number: "CPU: 1 PID: 1" | "88243 Comm: ..."
    (re.compile(r"\bCPU: \d+ (?:UID: \d+ )?PID: \d+$"), re.compile(r"^\d*\s?Comm: "), ""),
    # a register name whose value went to the next line: "x27:" | "ffffa2457df24008"
    (re.compile(r"\b[A-Za-z][A-Za-z0-9]{0,3} ?:$"), re.compile(r"^[0-9a-f]{4,16}\b"), " "),
    # "Unable to handle kernel paging request at virtual" | "address ffff5dbb8189f000"
    (re.compile(r"\bat(?: virtual)?$"), re.compile(r"^(?:address )?(?:0x)?[0-9a-f]{4,}"), " "),
    # "Modules linked in: a b" | "c d [last" | "unloaded: e]"
    (
        re.compile(r"Modules linked in:.*[\w\]]$"),
        re.compile(r"^(?:[\w-]+(?:\([A-Z_]+\))?\s*)+(?:\[last)?$|^unloaded: [\w-]*\]"),
        " ",
    ),
    # the end banner: "---[ end Kernel panic - not syncing: Oops: Fatal" | "exception ... ]---"
    (re.compile(r"^---\[ end (?!.*\]---)"), re.compile(r".*\]---$"), " "),
    # an open parenthesis: "pstate: 824000c9 (Nzcv daIF +PAN" | "-SSBS BTYPE=--)"
    (re.compile(r"\([^)]*$"), re.compile(r"^[^:(]*\)$"), " "),
)


def _unquote(line: str) -> tuple[bool, str]:
    m = _QUOTED_RE.match(line)
    return (True, line[m.end() :]) if m else (False, line)


def _continuation(prev: str, cur: str) -> str | None:
    """``prev`` joined with ``cur`` when ``cur`` is the wrapped rest of ``prev``, else None.

    Mail clients wrap long lines at a space and quote them (``> ``): inside
    quoted text, a line without a printk timestamp that follows a stamped
    record (not a blank line) is the rest of that record.  A console wraps
    at a fixed width, even inside a number; unquoted text also interleaves
    user-space lines, which must stay lines of their own: there only the
    cuts of :data:`_UNQUOTED_WRAPS` are joined.
    """
    c0 = cur[:1]
    if not c0 or c0 == "[" or (c0 == "<" and cur[1:2].isdigit()):
        return None  # a stamped record (the common case) never continues another
    pq, ptext = _unquote(prev)
    cq, ctext = _unquote(cur)
    if not ctext.strip() or _STAMPED_RE.match(ctext.lstrip()):
        return None
    if pq and cq and ptext.strip() and _STAMPED_RE.match(ptext.lstrip()):
        if _STAMPED_RE.fullmatch(ptext.strip()):  # the wrapped line was only the timestamp
            return prev.rstrip() + " " + ctext
        return prev.rstrip() + " " + ctext.strip()
    if pq or cq:
        return None
    stamp = _STAMPED_RE.match(ptext.lstrip())
    if stamp is None:
        return None
    record = ptext.lstrip()[stamp.end() :].strip()
    for ends, starts, sep in _UNQUOTED_WRAPS:
        if ends.search(record) and starts.match(ctext.strip()):
            return prev.rstrip() + sep + ctext.strip()
    return None


def join_wrapped(lines: Iterable[str]) -> Iterator[str]:
    """Lines with wrapped records joined back (see :func:`_continuation`)."""
    prev: str | None = None
    for raw in lines:
        line = raw.rstrip("\r\n")
        if prev is not None:
            joined = _continuation(prev, line)
            if joined is not None:
                prev = joined
                continue
            yield prev
        prev = line
    if prev is not None:
        yield prev


def read_lines(lines: Iterable[str], label: str = "input") -> TextInput:
    """:func:`read_text` over already-decoded text lines."""
    scanner = BlockScanner()
    crash = CrashSessionReader()
    counts: Counter[str] = Counter()
    head: list[LogLine] = []
    tail: deque[LogLine] = deque(maxlen=TAIL_KEEP)
    kept_index = 0
    n_read = 0
    kernel_lines = 0
    truncated = 0
    junk = 0
    system = SystemInfo()
    cmdline: str | None = None
    truncated_input: str | None = None
    try:
        for raw in _unglue(lines):
            if raw.startswith(_TRUNCATED_MARK):
                truncated_input = raw[len(_TRUNCATED_MARK) :]
                break
            n_read += 1
            if len(raw) >= MAX_LINE:
                truncated += 1
            if crash.feed(raw.rstrip("\r\n")):
                counts["crash"] += 1
                continue
            parsed = parse_line(raw)
            rec = parsed.line
            if rec is None:
                counts[parsed.format] += 1
                continue
            if "\ufffd" in rec.text and rec.text.count("\ufffd") > len(rec.text) // 4:
                junk += 1
                continue
            if parsed.format != "plain" or rec.text:
                counts[parsed.format] += 1
            if parsed.format != "plain":
                kernel_lines += 1
            if kept_index < HEAD_KEEP:  # the boot banner is at the start of a log
                _banner(rec.text, system)
                if cmdline is None:
                    m = _CMDLINE_RE.match(rec.text)
                    if m:
                        cmdline = m.group("cmd")
            scanner.feed(rec, kept_index)
            if len(head) < HEAD_KEEP:
                head.append(rec)
            else:
                tail.append(rec)
            kept_index += 1
    except (UnicodeError, OSError) as e:
        raise NotKernelTextError(f"{label}: cannot read text: {e}") from e
    events = scanner.finish()
    session = crash.out
    if not events and not session.seen and kernel_lines == 0:
        if n_read == 0 or junk >= n_read // 2:
            raise NotKernelTextError(f"{label}: empty or not text")
        # plain text with no recognisable kernel output at all
        raise NotKernelTextError(
            f"{label}: no kernel log records or crash output found "
            f"({n_read} lines read; expected dmesg, console, journal or crash text)"
        )
    # the log keeps line indexes of the events: head + window; events index into
    # the full stream, so record positions relative to what was kept
    log = head + list(tail)
    _fill_from_events(system, events)
    crash.finish()
    _merge_session(system, session.system)
    facts = CrashFacts(source="text", mode="text", system=system, log=log, events=events)
    facts.panic_stack = crash.panic_stack()
    if facts.panic_stack is not None:
        _name_noreturn_callers(events, facts.panic_stack.frames)
    facts.cpu_stacks = [s for s in session.stacks if s is not facts.panic_stack]
    facts.modules = _modules(events)
    _stacks_from_events(facts, events)
    if truncated_input is not None:
        facts.lacks.append(Note("lack.input_cut_short", reason=truncated_input))
    if kept_index > HEAD_KEEP + TAIL_KEEP:
        facts.lacks.append(
            Note("lack.log_records_kept", read=kept_index, head=HEAD_KEEP, tail=TAIL_KEEP)
        )
    fmt = _dominant(counts, session.seen)
    return TextInput(
        facts=facts,
        format=fmt,
        formats=dict(counts),
        lines_read=n_read,
        kernel_lines=kernel_lines,
        crash_session=session.seen,
        truncated_lines=truncated,
        dropped_events=scanner.dropped_events,
        cmdline=cmdline,
    )


def _name_noreturn_callers(events: list[OopsEvent], stack: list[Frame]) -> int:
    """Rename a ``Call trace:``'s ``f+0x0`` frame after crash's ``bt`` in the same text.

    arm64's dump_backtrace() prints return addresses as they are: after a call to a
    noreturn function that ends its caller (``panic()`` at the end of
    ``sysrq_handle_crash``), the return address is the next function's first byte and
    the log says ``sysrq_reset_seq_param_set+0x0``. A pasted crash session has crash's
    ``bt`` beside the log, which names the caller (crash looks up pc-4). The frame is
    renamed only where the two traces agree on the frame after it, so a genuine
    ``+0x0`` (a first frame, an exception frame) keeps its name; the dump's twin is
    ``pipeline.name_noreturn_callers``.
    """
    names = [f.function for f in stack]
    fixed = 0
    for ev in events:
        trace = ev.call_trace
        for i in range(1, len(trace) - 1):
            fr, after = trace[i], trace[i + 1]
            if fr.offset != 0 or fr.regs or not fr.function or not after.function:
                continue
            j = next((k for k in range(1, len(names)) if names[k] == after.function), None)
            if j is None or not names[j - 1] or names[j - 1] == fr.function:
                continue
            fr.function, fr.offset, fr.size = names[j - 1], None, None
            fixed += 1
    return fixed


def _dominant(counts: Counter[str], crash_seen: bool) -> str:
    kernel = {k: v for k, v in counts.items() if k not in ("plain", "crash")}
    if crash_seen:
        return "crash"
    if kernel:
        return max(kernel.items(), key=lambda kv: kv[1])[0]
    return "crash" if crash_seen else "plain"


def _banner(text: str, system: SystemInfo) -> None:
    if system.release is None:
        m = _BANNER_RE.match(text)
        if m:
            system.release = m.group("release")
            ver = re.search(r"(#\d+.*)$", m.group("rest"))
            system.version = ver.group(1).strip() if ver else None
            return
    if system.machine is None and text.startswith("DMI: "):
        pass


def _fill_from_events(system: SystemInfo, events: list[OopsEvent]) -> None:
    """Hints for ``sys`` from the report blocks (release, panic, task, taint)."""
    for ev in events:
        if system.release is None and ev.release:
            system.release = ev.release
        if system.version is None and ev.kernel_version:
            system.version = ev.kernel_version
        if ev.taint and ev.taint.strip() not in ("", "G"):
            system.taint = ev.taint
    panic = next(
        (e for e in events if e.panic_message is not None and "not syncing" in e.header), None
    )
    if panic is not None:
        system.panic = "Kernel panic - not syncing: " + (panic.panic_message or "")
        src = (
            panic
            if panic.pid is not None
            else next(
                (e for e in reversed(events[: events.index(panic)]) if e.pid is not None), None
            )
        )
        if src is not None:
            system.pid, system.command, system.cpu = src.pid, src.comm, src.cpu
    else:
        first = next((e for e in events if e.oops_number is not None), None)
        if first is not None:
            system.panic = first.header
            system.pid, system.command, system.cpu = first.pid, first.comm, first.cpu
    if system.taint is None:
        system.taint = next((e.taint for e in events if e.taint), None)


def _merge_session(system: SystemInfo, sess: SystemInfo) -> None:
    """A pasted ``sys`` block is the authority for the fields it has, but PANIC.

    crash's PANIC is a guess from the log (often only ``Oops: ... (check log
    for details)``, and wrong on some 6.1 builds with crash 8.0.2), so a panic
    line found in the log itself wins.
    """
    for k, v in vars(sess).items():
        if v is None or (k == "cpus_offline" and v == 0):
            continue
        if k == "panic" and system.panic and "not syncing" in system.panic:
            continue
        setattr(system, k, v)


def _stacks_from_events(facts: CrashFacts, events: list[OopsEvent]) -> None:
    """Blocked tasks (hung-task reports) and CPU stacks (NMI backtraces) of a log.

    The vmcore mode reads these from memory; in text mode the log's own
    reports are all there is (kernel/hung_task.c, lib/nmi_backtrace.c).
    """
    for ev in events:
        if not ev.call_trace:
            continue
        task = _TASK_D_RE.match(ev.header)
        if (_HUNG_RE.search(ev.header) or task) and len(facts.blocked_tasks) < 64:
            facts.blocked_tasks.append(
                Stack(frames=list(ev.call_trace), pid=ev.pid, comm=ev.comm, cpu=None)
            )
        elif _NMI_BT_RE.search(ev.header) and len(facts.cpu_stacks) < 256:
            frames = list(ev.call_trace)
            facts.cpu_stacks.append(Stack(frames=frames, pid=ev.pid, comm=ev.comm, cpu=ev.cpu))


def _modules(events: list[OopsEvent]) -> list[ModuleInfo]:
    """``Modules linked in:`` of the first block that has it, with taint letters."""
    for ev in events:
        if ev.modules_linked:
            out = []
            for tok in ev.modules_linked:
                name, _, rest = tok.partition("(")
                out.append(ModuleInfo(name=name, taints=rest.rstrip(")") if rest else ""))
            return out
    return []
