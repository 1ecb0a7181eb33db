"""The report's typed model, its renderers' registry and the table of ``sys`` rows.

Real text only: the logs are samples of ``tests/data/oops`` (each with its source link);
the raw-value checks over hand-built ``SystemInfo`` come in addition.
"""

from __future__ import annotations

import io
import json
import sys
import types
import typing
from pathlib import Path

import pytest

from kcrash.commands.sys_cmd import format_sys
from kcrash.model import SystemInfo
from kcrash.oops.text import read_path
from kcrash.pipeline import analyze_path, render_to_string
from kcrash.report import render as render_mod
from kcrash.report.render import FORMATS, RENDERERS, Renderer, write_report
from kcrash.report.schema import (
    BadPointer,
    Context,
    Evidence,
    FrameDict,
    Hang,
    HangLock,
    HangTask,
    Memory,
    Report,
    SignatureDict,
    SlabObject,
    StackDict,
    Track,
    Verdict,
    summary,
)
from kcrash.sys_rows import CRASH_ROWS, SYS_ROWS, system_values

DATA = Path(__file__).parent / "data" / "oops"
SCHEMA = json.loads((Path(__file__).parents[1] / "docs" / "report-schema.json").read_text())
SESSION = DATA / "centos7-crash-session.txt"


def _keys(td: object) -> set[str]:
    return set(typing.get_type_hints(td))


@pytest.mark.parametrize(
    ("typed", "schema"),
    [
        (Report, SCHEMA),
        (Verdict, SCHEMA["$defs"]["verdict"]),
        (SignatureDict, SCHEMA["$defs"]["signature"]),
        (Evidence, SCHEMA["$defs"]["evidence"]),
        (FrameDict, SCHEMA["$defs"]["frame"]),
        (StackDict, SCHEMA["$defs"]["stack"]),
        (Hang, SCHEMA["properties"]["hang"]["oneOf"][1]),
        (HangTask, SCHEMA["$defs"]["hang_task"]),
        (HangLock, SCHEMA["$defs"]["hang_lock"]),
        (Context, SCHEMA["properties"]["context"]),
        (Memory, SCHEMA["$defs"]["memory"]),
        (BadPointer, SCHEMA["$defs"]["bad_pointer"]),
        (SlabObject, SCHEMA["$defs"]["bad_pointer"]["properties"]["slab"]["oneOf"][1]),
        (Track, SCHEMA["$defs"]["track"]),
    ],
)
def test_model_has_every_key_of_the_schema(typed: object, schema: dict) -> None:  # type: ignore[type-arg]
    keys = _keys(typed)
    missing = (set(schema.get("properties", {})) | set(schema.get("required", []))) - keys
    assert not missing, f"{getattr(typed, '__name__', typed)} lacks {sorted(missing)}"


def test_report_of_a_real_log_has_the_model_keys() -> None:
    report = analyze_path(str(DATA / "x86-oops-gpf-6.x.txt"))
    assert set(report) == _keys(Report)
    assert set(report["verdict"]) <= _keys(Verdict)
    assert set(report["evidence"]) <= _keys(Evidence)
    for f in report["evidence"]["call_trace"]:
        assert set(f) == _keys(FrameDict)
    assert list(report["system"]) == [r.field for r in SYS_ROWS] + ["unknown"]
    s = summary(report)
    assert s.signature == report["signature"]["id"] and s.crash_class == "gpf"


def test_write_report_writes_each_format_as_its_text() -> None:
    report = analyze_path(str(SESSION))
    for fmt in FORMATS:
        buf = io.BytesIO()
        write_report(report, fmt, buf, color=False)
        assert buf.getvalue() == render_to_string(report, fmt, color=False).encode("utf-8")
        text = io.StringIO()
        write_report(report, fmt, text, color=False)
        assert text.getvalue() == render_to_string(report, fmt, color=False)


def test_a_binary_renderer_fits_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """A format whose renderer returns bytes (a PDF, say) goes to a binary file as is and
    is refused, in one line, where only text can go."""
    mod = types.ModuleType("kcrash.report.render_bytes_probe")
    mod.render = lambda report: b"%BIN\x00" + report["signature"]["id"].encode()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    monkeypatch.setitem(
        RENDERERS, "probe", Renderer("probe", "render_bytes_probe", "bin", visible=False)
    )
    report = analyze_path(str(DATA / "x86-oops-gpf-6.x.txt"))
    buf = io.BytesIO()
    write_report(report, "probe", buf)
    assert buf.getvalue() == b"%BIN\x00" + report["signature"]["id"].encode()
    from kcrash.errors import KcrashError

    with pytest.raises(KcrashError, match="binary"):
        write_report(report, "probe", io.StringIO())
    with pytest.raises(KcrashError, match="binary"):
        render_mod.render_text(report, "probe")


def test_sys_block_of_a_pasted_session_is_crash_s_own() -> None:
    """crash's words read back from a real session print as crash printed them: the table's
    labels, order and formats.  TASK is left out: before Linux 4.9 thread_info was not in
    task_struct and crash prints its own address, which a session does not keep apart."""
    info = read_path(str(SESSION)).facts.system
    # (the pasted KERNEL line lost crash's indentation: compared without it)
    lines = [ln.strip() for ln in SESSION.read_text().splitlines()]
    start = next(i for i, ln in enumerate(lines) if ln.startswith("KERNEL: "))
    want = lines[start : start + len(CRASH_ROWS)]
    got = [ln.strip() for ln in format_sys(info).splitlines()]
    skip = ("TASK: ", "PANIC: ")  # PANIC: the log's own cause line wins over crash's guess
    assert [ln for ln in got if not ln.startswith(skip)] == [
        ln for ln in want if not ln.startswith(skip)
    ]
    assert [w.split(":")[0] for w in want] == [r.label for r in CRASH_ROWS]


def test_raw_values_become_crash_s_words() -> None:
    info = SystemInfo(
        kernel="/boot/vmlinux",
        kernel_tainted=True,
        dumpfile="/var/crash/vmcore",
        partial_dump=True,
        cpus=4,
        cpus_offline=1,
        uptime=90061,
        load_average=(0.5, 0.25, 0.0),
        machine="x86_64",
        cpu_mhz=2095,
        memory=(1 << 30) - 40 * (1 << 20),
        task=0xFFFF888001234000,
        state="UN",
    )
    v = system_values(info)
    assert v["kernel"] == "/boot/vmlinux  [TAINTED]"
    assert v["dumpfile"] == "/var/crash/vmcore  [PARTIAL DUMP]"
    assert v["uptime"] == "1 days, 01:01:01"
    assert v["load_average"] == "0.50, 0.25, 0.00"
    assert v["machine"] == "x86_64  (2095 Mhz)"
    assert v["memory"] == "1 GB"
    assert v["state"] == "TASK_UNINTERRUPTIBLE (PANIC)"
    assert v["task"] == 0xFFFF888001234000  # the JSON keeps the number
    block = format_sys(info)
    assert "        CPUS: 4 [OFFLINE: 1]" in block
    assert "        TASK: ffff888001234000  [THREAD_INFO: ffff888001234000]" in block
