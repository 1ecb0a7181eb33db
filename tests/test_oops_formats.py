"""Every input format on REAL text from the corpus.

The corpus gives real ``vmcore-dmesg.txt`` (dmesg format), real serial-console
captures and real ``crash`` output (``sys``, ``bt``, ``log``).  No journald or
``dmesg -T`` runs in the guest, so those forms are DERIVED MECHANICALLY from
the real records: the same record texts, re-prefixed the way ``journalctl -k``
(short, short-precise, short-iso, short-monotonic), ``dmesg -T``, ``dmesg -t``,
``dmesg -r``, ``/dev/kmsg`` and a ``CONFIG_PRINTK_CALLER`` console print them.
Each variant must give the same class, culprit and signature as the original.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from checks import names_the_function_after_the_caller

from kcrash.diagnosis import diagnose
from kcrash.model import LogLine
from kcrash.oops.formats import parse_line
from kcrash.oops.text import read_text

_TS = re.compile(r"^\[\s*(\d+\.\d+)\] ?(.*)$")
_BOOT = datetime(2026, 11, 26, 6, 50, 0, tzinfo=timezone.utc)


def _records(text: str) -> list[tuple[float | None, str]]:
    out = []
    for ln in text.splitlines():
        m = _TS.match(ln)
        out.append((float(m.group(1)), m.group(2)) if m else (None, ln))
    return out


def _wall(ts: float | None) -> datetime:
    return _BOOT + timedelta(seconds=ts or 0.0)


def v_plain(recs: list[tuple[float | None, str]]) -> str:  # dmesg -t
    return "\n".join(t for _, t in recs)


def v_dmesg_T(recs: list[tuple[float | None, str]]) -> str:  # dmesg -T
    return "\n".join(
        f"[{_wall(ts).strftime('%a %b %e %H:%M:%S %Y')}] {t}" if ts is not None else t
        for ts, t in recs
    )


def v_dmesg_r(recs: list[tuple[float | None, str]]) -> str:  # dmesg -r
    return "\n".join(f"<4>[{ts:12.6f}] {t}" if ts is not None else t for ts, t in recs)


def _journal(stamp: Callable[[datetime], str]) -> Callable[[list[Any]], str]:
    def render(recs: list[tuple[float | None, str]]) -> str:
        lines = ["-- Journal begins at Thu 2026-11-26 06:50:00 UTC. --"]
        last: float | None = 0.0
        for ts, t in recs:
            last = ts if ts is not None else last
            lines.append(f"{stamp(_wall(last))} guest kernel: {t}")
        # a full journal also holds other programs' lines; -k would not, but be robust
        lines.insert(3, f"{stamp(_BOOT)} guest systemd[1]: Started Journal Service.")
        return "\n".join(lines)

    return render


v_journal_short = _journal(lambda d: d.strftime("%b %d %H:%M:%S"))
v_journal_precise = _journal(lambda d: d.strftime("%b %d %H:%M:%S.%f"))
v_journal_iso = _journal(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S%z"))


def v_journal_monotonic(recs: list[tuple[float | None, str]]) -> str:
    last = 0.0
    out = []
    for ts, t in recs:
        last = ts if ts is not None else last
        out.append(f"[{last:12.6f}] guest kernel: {t}")
    return "\n".join(out)


def v_kmsg(recs: list[tuple[float | None, str]]) -> str:  # /dev/kmsg
    last = 0.0
    out = []
    for n, (ts, t) in enumerate(recs):
        last = ts if ts is not None else last
        out.append(f"4,{n},{int(last * 1e6)},-;{t}")
    return "\n".join(out)


def v_console_caller(recs: list[tuple[float | None, str]]) -> str:
    """CONFIG_PRINTK_CALLER console: ``[ts][  T113] text``, with a second CPU's
    records (caller C0) interleaved inside every report block."""
    out = []
    noise = 0
    for ts, t in recs:
        if ts is None:
            out.append(t)
            continue
        out.append(f"[{ts:12.6f}][  T113] {t}")
        if t.startswith((" ", "RIP", "Code", "R", "Call Trace")) and noise < 40:
            noise += 1
            out.append(f"[{ts:12.6f}][    C0] random: crng reseeded on system resumption")
    return "\n".join(out)


def v_journal_json(recs: list[tuple[float | None, str]]) -> str:  # journalctl -k -o json
    last = 0.0
    out = []
    for ts, t in recs:
        last = ts if ts is not None else last
        out.append(
            json.dumps(
                {
                    "MESSAGE": t,
                    "_SOURCE_MONOTONIC_TIMESTAMP": str(int(last * 1e6)),
                    "PRIORITY": "4",
                    "SYSLOG_IDENTIFIER": "kernel",
                    "_TRANSPORT": "kernel",
                }
            )
        )
    return "\n".join(out)


def v_console_user_lines(recs: list[tuple[float | None, str]]) -> str:
    """A serial console without caller ids: user-space output (no timestamp) lands
    between kernel records, here every 7th record, inside report blocks too."""
    out = []
    for n, (ts, t) in enumerate(recs):
        out.append(f"[{ts:12.6f}] {t}" if ts is not None else t)
        if n % 7 == 3:
            out.append("udhcpc: sending discover")
    return "\n".join(out)


VARIANTS: dict[str, Callable[[list[Any]], str]] = {
    "console user lines": v_console_user_lines,
    "journal json": v_journal_json,
    "dmesg -t": v_plain,
    "dmesg -T": v_dmesg_T,
    "dmesg -r": v_dmesg_r,
    "journal short": v_journal_short,
    "journal short-precise": v_journal_precise,
    "journal short-iso": v_journal_iso,
    "journal short-monotonic": v_journal_monotonic,
    "kmsg": v_kmsg,
    "console caller ids": v_console_caller,
}
EXPECTED_FORMAT = {
    "console user lines": "dmesg",
    "journal json": "journal-json",
    "dmesg -t": "plain",
    "dmesg -T": "dmesg-T",
    "dmesg -r": "dmesg",
    "journal short": "journal",
    "journal short-precise": "journal",
    "journal short-iso": "journal",
    "journal short-monotonic": "journal",
    "kmsg": "kmsg",
    "console caller ids": "console",
}


def _boots(corpus: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for e in corpus:
        if e.get("dmesg"):
            seen.setdefault(e["boot"], e)
    assert seen, "no corpus boot has a vmcore-dmesg.txt"
    return list(seen.values())


def _verdict(text: str) -> tuple[Any, ...]:
    t = read_text(io.StringIO(text))
    d = diagnose(t.facts)[0]
    return (
        d.class_id,
        d.culprit.function if d.culprit else None,
        d.culprit.module if d.culprit else None,
        d.signature.id,
    )


def _read_file(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_derived_formats_agree_with_vmcore_dmesg(
    corpus: list[dict[str, Any]], variant: str
) -> None:
    for e in _boots(corpus):
        original = _read_file(e["dmesg"])
        want = _verdict(original)
        derived = VARIANTS[variant](_records(original))
        t = read_text(io.StringIO(derived))
        assert t.format == EXPECTED_FORMAT[variant], (e["boot"], variant, t.formats)
        assert _verdict(derived) == want, (e["boot"], variant)


@pytest.mark.corpus
def test_vmcore_dmesg_and_console_are_detected(corpus: list[dict[str, Any]]) -> None:
    for e in _boots(corpus):
        with open(e["dmesg"], "rb") as f:
            t = read_text(f)
        assert t.format == "dmesg"
        assert t.facts.source == "text" and t.facts.mode == "text"
        assert t.facts.system.release == e["release"]
        assert t.events, e["boot"]
        with open(e["console"], "rb") as f:
            c = read_text(f)
        # a console capture also holds user-space lines (init script, capture kernel)
        assert c.format in ("dmesg", "console")
        assert c.formats.get("plain", 0) > 0


@pytest.mark.corpus
def test_event_fields_from_real_oops(corpus: list[dict[str, Any]]) -> None:
    oopses = 0
    for e in _boots(corpus):
        with open(e["dmesg"], "rb") as f:
            t = read_text(f)
        for ev in t.events:
            if ev.oops_number is None:
                continue
            oopses += 1
            assert ev.oops_number >= 1
            assert ev.release == e["release"]
            assert ev.cpu is not None and ev.pid is not None and ev.comm
            # "Hardware name:": x86's QEMU machine; arm64's `-M virt` names its device tree
            hw = "linux,dummy-virt (DT)" if e.get("arch") == "arm64" else "QEMU"
            assert ev.hardware and hw in ev.hardware
            assert ev.taint is not None
            assert ev.rip is not None and ev.rip.function
            arm64 = e.get("arch") == "arm64"
            regs = {"SP", "X0", "X29"} if arm64 else {"RSP", "RAX", "R15", "EFLAGS", "CR2"}
            assert regs <= set(ev.registers)
            assert ev.call_trace and all(f.function or f.address for f in ev.call_trace)
            assert any(not f.reliable for f in ev.call_trace) or ev.call_trace
            assert ev.modules_linked and any(
                m.startswith("kcrash_crash") for m in ev.modules_linked
            )
    assert oopses, "no [#N] oops in the corpus texts"


def _crash_session(oracle: dict[str, str], with_log: bool) -> str:
    parts = []
    for cmd, key in (("sys", "sys"), ("bt", "bt")) + ((("log", "log"),) if with_log else ()):
        parts.append(f"crash> {cmd}")
        parts.append(_read_file(oracle[key]))
    parts.append("crash> quit")
    return "\n".join(parts)


@pytest.mark.corpus
def test_crash_session_text_with_log(corpus: list[dict[str, Any]]) -> None:
    for e in corpus:
        if e["format"] != "kdump" or e["compression"] != "zlib":
            continue
        text = _crash_session(e["oracle"], with_log=True)
        t = read_text(io.StringIO(text))
        assert t.format == "crash" and t.crash_session
        assert t.facts.system.release == e["release"]
        assert t.facts.panic_stack is not None and t.facts.panic_stack.frames
        d = diagnose(t.facts)[0]
        exp = e["expected"]
        # arm64's log names the function after panic()'s caller (see the helper); crash's bt
        # in the same text names the caller, and the text reader renames the log's frame
        assert (d.class_id, d.culprit.function if d.culprit else None) == (
            exp["class"],
            exp["culprit_function"],
        ), e["id"]
        # the same signature as the vmcore-dmesg.txt of the same boot, whose text alone
        # cannot name that caller (arm64: its function and so its signature differ)
        if e.get("dmesg") and not names_the_function_after_the_caller(e, e["dmesg"]):
            assert d.signature.id == _verdict(_read_file(e["dmesg"]))[3]


@pytest.mark.corpus
def test_crash_session_sys_and_bt_only(corpus: list[dict[str, Any]]) -> None:
    """Without the log only crash's PANIC line and bt are left: the culprit still comes
    from the exception frame (or the panic path) of bt."""
    for e in corpus:
        if e["format"] != "kdump" or e["compression"] != "zlib":
            continue
        t = read_text(io.StringIO(_crash_session(e["oracle"], with_log=False)))
        assert not t.events
        assert t.facts.system.cpus and t.facts.system.release == e["release"]
        d = diagnose(t.facts)[0]
        assert d.source == "panic_stack"
        exp = e["expected"]
        # Only where bt has an exception frame (or sysrq's own frame): crash 8.0's bt
        # loses the caller of a noreturn panic() (it shows kcrash_write, not kcrash_panic).
        if exp["class"] in ("null-deref", "sysrq", "bug-on", "divide-error", "gpf"):
            assert d.culprit is not None and d.culprit.function == exp["culprit_function"], e["id"]


@pytest.mark.corpus
def test_several_oopses_in_one_log(corpus: list[dict[str, Any]]) -> None:
    """Two real crashes in one log (the second's header renumbered [#2] and its records
    appended, as a machine with panic_on_oops=0 prints them): the first is the primary."""
    boots = [
        e for e in _boots(corpus) if any("[#1]" in ln for ln in _read_file(e["dmesg"]).splitlines())
    ]
    assert len(boots) >= 1
    first = _read_file(boots[0]["dmesg"])
    blocks = []
    for e in boots[1:] or boots[:1]:
        text = _read_file(e["dmesg"])
        lines = text.splitlines()
        start = next(i for i, ln in enumerate(lines) if "[#1]" in ln)
        # the report starts a few lines above its [#1] line (BUG:/#PF: lines)
        while start > 0 and not re.search(
            r"\] (?:BUG|kernel BUG|list_|general|divide|invalid)", lines[start]
        ):
            start -= 1
        blocks.append("\n".join(ln.replace("[#1]", "[#2]") for ln in lines[start:]))
    combined = first + "\n" + "\n".join(blocks)
    ds = diagnose(read_text(io.StringIO(combined)).facts)
    want = _verdict(first)
    assert (ds[0].class_id, ds[0].signature.id) == (want[0], want[3])
    assert ds[0].primary and not any(d.primary for d in ds[1:])
    if len(boots) > 1:
        assert len(ds) >= 2


@pytest.mark.corpus
def test_interleaved_caller_lines_do_not_enter_blocks(corpus: list[dict[str, Any]]) -> None:
    for e in _boots(corpus):
        text = v_console_caller(_records(_read_file(e["dmesg"])))
        t = read_text(io.StringIO(text))
        for ev in t.events:
            assert not any("crng reseeded" in ln for ln in ev.lines)


def test_parse_line_prefixes() -> None:
    cases = {
        "[    6.186692] BUG: x": ("dmesg", 6.186692, None, "BUG: x"),
        "[    6.186692][  T113] BUG: x": ("console", 6.186692, "T113", "BUG: x"),
        "[    6.186692][    C1]  func+0x1/0x2": ("console", 6.186692, "C1", " func+0x1/0x2"),
        "<4>[    1.000000] x": ("dmesg", 1.0, None, "x"),
        "[Thu Nov 26 06:50:52 2026] BUG: x": ("dmesg-T", None, None, "BUG: x"),
        "Nov 26 06:50:52 h kernel: BUG: x": ("journal", None, None, "BUG: x"),
        "Nov 26 06:50:52.123456 h kernel: BUG: x": ("journal", None, None, "BUG: x"),
        "2026-11-26T06:50:52+0000 h kernel: BUG: x": ("journal", None, None, "BUG: x"),
        "Nov 26 06:50:52 h kernel: [    6.100000] BUG: x": ("journal", 6.1, None, "BUG: x"),
        "4,12,6186692,-;BUG: x": ("kmsg", 6.186692, None, "BUG: x"),
        "\x1b[0mBUG: x\r": ("plain", None, None, "BUG: x"),
    }
    for raw, (fmt, ts, caller, text) in cases.items():
        p = parse_line(raw)
        assert p.format == fmt, raw
        assert isinstance(p.line, LogLine)
        assert p.line.text == text and p.line.caller == caller, raw
        if ts is None:
            assert p.line.timestamp is None
        else:
            assert p.line.timestamp == pytest.approx(ts)
    assert parse_line("Nov 26 06:50:52 h sshd[12]: hello").line is None


@pytest.mark.corpus
def test_hung_task_reports_become_blocked_tasks(corpus: list[dict[str, Any]]) -> None:
    boots = [e for e in _boots(corpus) if e["expected"]["class"] == "hung-task"]
    assert boots, "the corpus has no hung-task scenario"
    for e in boots:
        with open(e["dmesg"], "rb") as f:
            facts = read_text(f).facts
        assert facts.blocked_tasks
        st = facts.blocked_tasks[0]
        assert st.pid is not None and st.comm
        assert any(fr.function == e["expected"]["culprit_function"] for fr in st.frames)


@pytest.mark.corpus
def test_compressed_and_cut_logs(corpus: list[dict[str, Any]], tmp_path: Any) -> None:
    """Rotated logs come compressed (kern.log.2.gz); a copy may be cut short."""
    import bz2
    import gzip
    import lzma

    from kcrash.oops.text import read_path

    e = next(e for e in _boots(corpus) if e.get("console"))
    with open(e["console"], "rb") as f:
        data = f.read()
    want = _verdict(data.decode("utf-8", "replace"))
    for name, packed in (
        ("k.log.gz", gzip.compress(data)),
        ("k.log.xz", lzma.compress(data)),
        ("k.log.bz2", bz2.compress(data)),
    ):
        p = tmp_path / name
        p.write_bytes(packed)
        d = diagnose(read_path(str(p)).facts)[0]
        assert d.signature.id == want[3], name
    # cut inside the trailing capture-kernel boot: the report is still there
    packed = gzip.compress(data)
    p = tmp_path / "cut.log.gz"
    p.write_bytes(packed[: len(packed) * 9 // 10])
    t = read_path(str(p))
    assert any("cut short" in x for x in t.facts.lacks)
    assert diagnose(t.facts)[0].signature.id == want[3]
