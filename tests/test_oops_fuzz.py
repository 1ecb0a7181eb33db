"""Property-based robustness: random and mutated REAL logs never raise anything but
KcrashError, and diagnosis of whatever was read never raises at all.

Bounded time: a fixed number of examples per property, no deadline (CI machines
are slow and shared).
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kcrash.diagnosis import diagnose, render_messages
from kcrash.errors import KcrashError
from kcrash.model import LogLine
from kcrash.oops.blocks import events_from_log
from kcrash.oops.text import read_text

FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)


def _check(data: bytes | str) -> None:
    stream: Any = io.BytesIO(data) if isinstance(data, bytes) else io.StringIO(data)
    try:
        t = read_text(stream)
    except KcrashError:
        return
    for d in diagnose(t.facts):
        render_messages(d, "en")
        render_messages(d, "zh")
        d.to_dict()


@pytest.fixture(scope="module")
def real_logs(corpus: list[dict[str, Any]]) -> list[str]:
    out = []
    for e in corpus:
        for key in ("dmesg", "console"):
            p = e.get(key)
            if p and p not in out:
                out.append(p)
    texts = []
    for p in out[:8]:
        with open(p, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
        # the part around the report, where mutations matter most
        idx = next((i for i, ln in enumerate(lines) if "[#1]" in ln or "not syncing" in ln), 0)
        texts.append("\n".join(lines[max(0, idx - 40) : idx + 120]))
    assert texts
    return texts


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes(data: bytes) -> None:
    _check(data)


@FUZZ
@given(st.text(max_size=3000))
def test_random_text(data: str) -> None:
    _check(data)


@FUZZ
@given(
    st.lists(
        st.sampled_from(
            [
                "BUG: kernel NULL pointer dereference, address: 0000000000000074",
                "Oops: 0000 [#1] PREEMPT SMP NOPTI",
                "Call Trace:",
                " <TASK>",
                " </TASK>",
                " <IRQ>",
                "RIP: 0010:foo+0x5/0x10 [m]",
                "Code: 00 <0f> 0b",
                "RSP: 0018:ffff EFLAGS: 00000246",
                "Kernel panic - not syncing: Fatal exception",
                "---[ end trace 0000000000000000 ]---",
                " ? bar+0x1/0x2",
                " baz+0x1/0x2 [m]",
                "kernel BUG at a.c:1!",
                "invalid opcode: 0000 [#2]",
                "WARNING: CPU: 0 PID: 1 at a.c:3 f+0x1/0x2",
                "INFO: task x:1 blocked for more than 5 seconds.",
                "watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [sh:1]",
                "NMI backtrace for cpu 1",
                "Kernel panic - not syncing: hung_task: blocked tasks",
                "sysrq: Trigger a crash",
                "CPU: 0 PID: 1 Comm: sh Tainted: G OE 6.1.0 #1",
                "Modules linked in: a(OE) b",
                "",
                "crash> bt",
                'PID: 1 TASK: ffff CPU: 0 COMMAND: "sh"',
                " #0 [ffff] foo at ffff",
                "    [exception RIP: foo+5]",
                "    RIP: ffffffffc0000005  RSP: ffff  RFLAGS: 00000246",
            ]
        ),
        max_size=80,
    ),
    st.booleans(),
)
def test_shuffled_report_lines(lines: list[str], stamp: bool) -> None:
    if stamp:
        lines = [f"[{i:5d}.000000] {ln}" for i, ln in enumerate(lines)]
    _check("\n".join(lines))


@pytest.mark.corpus
@FUZZ
@given(data=st.data())
def test_mutated_real_logs(real_logs: list[str], data: st.DataObject) -> None:
    text = data.draw(st.sampled_from(real_logs))
    lines = text.splitlines()
    for _ in range(data.draw(st.integers(0, 12))):
        if not lines:
            break
        op = data.draw(st.sampled_from(["drop", "dup", "cut", "flip", "junk", "swap", "trunc"]))
        i = data.draw(st.integers(0, len(lines) - 1))
        if op == "drop":
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "cut":
            lines[i] = lines[i][: data.draw(st.integers(0, max(0, len(lines[i]))))]
        elif op == "flip" and lines[i]:
            j = data.draw(st.integers(0, len(lines[i]) - 1))
            lines[i] = lines[i][:j] + data.draw(st.characters()) + lines[i][j + 1 :]
        elif op == "junk":
            lines.insert(i, data.draw(st.text(max_size=200)))
        elif op == "swap":
            j = data.draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "trunc":
            lines = lines[:i]
    _check("\n".join(lines))


@FUZZ
@given(
    st.lists(
        st.builds(
            LogLine,
            text=st.text(max_size=120),
            caller=st.one_of(st.none(), st.sampled_from(["T1", "C0", "C1"])),
        ),
        max_size=120,
    )
)
def test_events_from_log_any_records(log: list[LogLine]) -> None:
    for ev in events_from_log(log):
        assert ev.lines and ev.header is not None


def test_binary_input_is_a_clear_error() -> None:
    with pytest.raises(KcrashError, match="binary"):
        read_text(io.BufferedReader(io.BytesIO(b"\x7fELF\x02\x01\x01" + bytes(5000))))
    with pytest.raises(KcrashError):
        read_text(io.StringIO(""))
    with pytest.raises(KcrashError, match="no kernel log"):
        read_text(io.StringIO("hello\nworld\n"))
