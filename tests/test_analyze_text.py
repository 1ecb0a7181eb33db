"""``kcrash analyze`` on the text kdump saved beside each dump (``vmcore-dmesg.txt``)
and on the serial console capture: the same verdict and signature as the vmcore.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from checks import names_the_function_after_the_caller

from kcrash.pipeline import analyze_path


def _boots(corpus: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for e in corpus:
        seen.setdefault(e["boot"], e)
    return list(seen.values())


def test_text_gives_the_vmcore_verdict(corpus: list[dict[str, Any]]) -> None:
    failures = []
    for e in _boots(corpus):
        dump = analyze_path(e["path"], e["vmlinux"])
        for kind in ("dmesg", "console"):
            if not e.get(kind):
                continue
            text = analyze_path(e[kind])
            got = (
                text["verdict"]["class"],
                text["verdict"]["culprit"]["function"],
                text["signature"]["id"],
            )
            want = (
                dump["verdict"]["class"],
                dump["verdict"]["culprit"]["function"],
                dump["signature"]["id"],
            )
            if names_the_function_after_the_caller(e, e[kind]):
                got, want = got[:1], want[:1]  # see names_the_function_after_the_caller
            if got != want:
                failures.append(f"{e['boot']} {kind}: {got} != {want}")
            assert text["input"]["kind"] == "text" and text["input"]["mode"] == "text"
    assert not failures, "\n".join(failures)


def test_vmlinux_adds_source_lines_to_a_log(corpus: list[dict[str, Any]]) -> None:
    e = next(x for x in corpus if x["scenario"] == "hung-task" and x.get("dmesg"))
    plain = analyze_path(e["dmesg"])
    assert plain["verdict"]["culprit"]["source"] is None
    r = analyze_path(e["dmesg"], e["vmlinux"], debuginfo_dirs=[e["modules_debug_dir"]])
    assert r["verdict"]["culprit"]["source"].endswith("kcrash_crash.c:98") or r["verdict"][
        "culprit"
    ]["source"].split(":")[0].endswith("kcrash_crash.c")
    vmlinux_frames = [f for f in r["evidence"]["call_trace"] if not f["module"]]
    assert vmlinux_frames and all(f["source"] for f in vmlinux_frames[:3])


def test_stdin(corpus: list[dict[str, Any]]) -> None:
    e = next(x for x in corpus if x.get("dmesg"))
    with open(e["dmesg"], "rb") as f:
        p = subprocess.run(
            [sys.executable, "-m", "kcrash", "analyze", "-", "-f", "json"],
            stdin=f,
            capture_output=True,
            timeout=60,
        )
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["verdict"]["class"] == e["expected"]["class"]
