"""``explain``: the rule table and decoders answer without a crash at hand."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from kcrash.commands.explain_cmd import explain_lines
from kcrash.errors import KcrashError


def test_explain_class() -> None:
    lines = explain_lines("null-deref")
    assert lines[0] == "NULL pointer dereference"
    assert any("<function>" in ln for ln in lines), lines  # placeholders, not "?"
    assert len(explain_lines("soft-lockup")) >= 3


def test_explain_taint_address_and_pf() -> None:
    taint = " ".join(explain_lines("G OE"))
    assert "out-of-tree" in taint and "unsigned" in taint
    assert "LIST_POISON2" in explain_lines("dead000000000122")[0]
    pf = explain_lines("pf:0x2")
    assert any("write" in ln for ln in pf) and any("not present" in ln for ln in pf)


def test_explain_in_chinese() -> None:
    assert "空指针" in " ".join(explain_lines("null-deref", "zh"))


def test_explain_unknown_is_one_clear_error() -> None:
    with pytest.raises(KcrashError, match="not a crash class"):
        explain_lines("no-such-thing")


def test_explain_and_analyze_in_the_shell(kdump_zlib: list[dict[str, Any]]) -> None:
    e = next(x for x in kdump_zlib if x["scenario"] == "null-deref")
    p = subprocess.run(
        [sys.executable, "-m", "kcrash", "shell", e["path"], e["vmlinux"],
         "-c", "explain sysrq; analyze -f markdown"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "SysRq" in p.stdout
    # Markdown escapes the brackets of text from the dump (issue 15: no link can be forged)
    assert "# kcrash report: null-deref in kcrash_get_refcount \\[kcrash_crash\\]" in p.stdout
