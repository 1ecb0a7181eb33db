"""Bad input: one clear line on stderr, exit status 2, never a traceback.

Truncated files are real corpus dumps cut short (as a full dump target or a
broken copy leaves them); the wrong vmlinux is a real ELF with another build
id (a debug module of the same kernel).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


def kcrash(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kcrash", *args], capture_output=True, text=True, timeout=120
    )


def assert_one_line_error(p: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert p.returncode == 2, (p.returncode, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("kcrash: "), p.stderr
    assert "Traceback" not in p.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])


@pytest.fixture(scope="module")
def null_deref(kdump_zlib: list[dict[str, Any]]) -> dict[str, Any]:
    return next(e for e in kdump_zlib if e["scenario"] == "null-deref")


def test_missing_file(tmp_path: Path) -> None:
    assert_one_line_error(kcrash("sys", str(tmp_path / "nope")), "no such file")


def test_not_a_dump(tmp_path: Path) -> None:
    f = tmp_path / "notes.bin"
    f.write_bytes(bytes(range(256)) * 100)
    assert_one_line_error(kcrash("sys", str(f)), "not a vmcore")


def test_empty_file(tmp_path: Path) -> None:
    f = tmp_path / "empty"
    f.write_bytes(b"")
    assert_one_line_error(kcrash("sys", str(f)), "empty")


@pytest.mark.parametrize("fmt", ["kdump-zlib", "elf", "flattened"])
def test_truncated_dump(fmt: str, corpus: list[dict[str, Any]], tmp_path: Path) -> None:
    fmt_key = {
        "kdump-zlib": ("kdump", "zlib"),
        "elf": ("elf", None),
        "flattened": ("flattened", None),
    }
    want_format, want_comp = fmt_key[fmt]
    entry = next(
        e
        for e in corpus
        if e["format"] == want_format
        and (want_comp is None or e["compression"] == want_comp)
        and e["capture"] == "kdump"
    )
    data = Path(entry["path"]).read_bytes()
    cut = tmp_path / f"cut.{fmt}"
    cut.write_bytes(data[: len(data) // 3])
    p = kcrash("sys", str(cut))
    if fmt in ("kdump-zlib", "elf"):
        # Headers (and the page table) are whole: read as far as it goes (as crash does),
        # what is lost listed, exit status "partial" (issue 15); tests/test_hostile_dumps.py.
        assert p.returncode == 4, (p.returncode, p.stderr)
        assert "kcrash: partial: dump truncated:" in p.stderr and "missing" in p.stderr
        assert "Traceback" not in p.stderr
    else:
        assert_one_line_error(p, "truncated")


def test_wrong_vmlinux(null_deref: dict[str, Any]) -> None:
    other = next(Path(null_deref["modules_debug_dir"]).glob("*.ko"))
    p = kcrash("sys", null_deref["path"], str(other))
    assert_one_line_error(
        p, "does not match the dump", null_deref["build_id"], null_deref["release"]
    )


def test_no_debuginfo_found_for_source_lines(null_deref: dict[str, Any]) -> None:
    p = kcrash("bt", "-l", null_deref["path"], "--no-debuginfo")
    assert_one_line_error(p, "no vmlinux", f"linux-image-{null_deref['release']}-dbg")


def test_no_debuginfo_says_where_it_looked(null_deref: dict[str, Any]) -> None:
    p = kcrash("bt", "-l", null_deref["path"])
    assert_one_line_error(p, "looked in", "/usr/lib/debug/boot/vmlinux-")


def test_corrupt_page_data_gives_a_degraded_report(
    null_deref: dict[str, Any], tmp_path: Path
) -> None:
    """Garbage written over a real dump's compressed pages: the report still comes out."""
    data = bytearray(Path(null_deref["path"]).read_bytes())
    step = len(data) // 40
    for off in range(len(data) // 4, len(data) - 5000, step):
        data[off : off + 4096] = bytes((i * 37 + off) & 0xFF for i in range(4096))
    bad = tmp_path / "corrupt.kdump"
    bad.write_bytes(bytes(data))
    p = kcrash("analyze", str(bad), "-f", "json")
    assert p.returncode == 0, p.stderr
    import json

    report = json.loads(p.stdout)
    assert report["input"]["lacks"], "it must say what it could not read"
    # Which pages the damage hits depends on the boot's (KASLR-randomised) physical layout:
    # when the printk ring survives, the class comes from the log; when it is hit, the log
    # step says why it failed and kcrash does not guess a class.
    log = next(s for s in report["steps"] if s["name"] == "log")
    if log["status"] == "ok":
        assert report["verdict"]["class"] == null_deref["expected"]["class"]
    else:
        assert log["status"] == "failed" and "could not read memory" in log["reason"], log
        assert report["verdict"]["class"] == "unknown"


def test_time_limit_gives_one_line() -> None:
    from kcrash.errors import StepTimeout
    from kcrash.steps import time_limit

    with pytest.raises(StepTimeout, match="took more than"), time_limit(0.2, "spinning"):
        while True:
            pass
