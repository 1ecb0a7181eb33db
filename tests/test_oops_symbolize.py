"""Symbolisation of real oops text with the corpus's vmlinux and module debug files
(what decode_stacktrace.sh does): the culprit gets the right file:line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kcrash.diagnosis import diagnose
from kcrash.oops.symbolize import symbolize_events
from kcrash.oops.text import read_text

# scenario -> a word the culprit's source line must contain (corpus module source)
LINE_WORDS = {
    "null-deref": "refcount",
    "bug-on": "BUG_ON",
    "divide-error": "divisor",
    "warn": "WARN_ON",
    "irq-timer": "mode",
}


@pytest.mark.corpus
def test_culprit_source_lines(corpus: list[dict[str, Any]]) -> None:
    seen = set()
    checked = 0
    for e in corpus:
        if e["scenario"] not in LINE_WORDS or e["boot"] in seen or not e.get("dmesg"):
            continue
        seen.add(e["boot"])
        with open(e["dmesg"], "rb") as f:
            facts = read_text(f).facts
        res = symbolize_events(facts.events, e["vmlinux"], [e["modules_debug_dir"]])
        assert res.resolved > 0, res.problems
        d = diagnose(facts)[0]
        assert d.culprit is not None and d.culprit.source, (e["boot"], res)
        file, _, line = d.culprit.source.rpartition(":")
        assert file.endswith("kcrash_crash.c")
        src = Path(file) if Path(file).exists() else None
        if src is None:
            continue
        text = src.read_text().splitlines()[int(line) - 1]
        assert LINE_WORDS[e["scenario"]] in text, (e["boot"], d.culprit.source, text)
        checked += 1
    assert checked, "no corpus boot could be symbolised"


def test_missing_files_are_problems_not_errors() -> None:
    from kcrash.facts.model import Frame, OopsEvent

    ev = OopsEvent(header="x", rip=Frame("f", 1, 2, module="nomod"), call_trace=[Frame("g", 1, 2)])
    res = symbolize_events([ev], "/nonexistent/vmlinux", ["/nonexistent"])
    assert res.resolved == 0 and len(res.problems) == 2
