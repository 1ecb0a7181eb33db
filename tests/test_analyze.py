"""``kcrash analyze`` on every corpus dump: verdict, culprit, signature, formats, languages.

Expected values come from the corpus manifest (what each scenario's module
provoked), never from kcrash's own output.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from checks import each, is_arm64, validate_report

from kcrash.pipeline import analyze_path, render_to_string

_CACHE: dict[tuple[str, bool, str], dict[str, Any]] = {}


def report(entry: dict[str, Any], *, dwarf: bool = True, lang: str = "en") -> dict[str, Any]:
    key = (entry["id"], dwarf, lang)
    if key not in _CACHE:
        _CACHE[key] = analyze_path(
            entry["path"],
            entry["vmlinux"] if dwarf else None,
            no_debuginfo=not dwarf,
            lang=lang,
        )
    return _CACHE[key]


def test_class_and_culprit_match_the_manifest(corpus: list[dict[str, Any]]) -> None:
    def check(e: dict[str, Any]) -> None:
        r = report(e)
        exp = e["expected"]
        assert r["verdict"]["class"] == exp["class"]
        c = r["verdict"]["culprit"]
        assert c["function"] == exp["culprit_function"], c
        assert c["module"] == exp["culprit_module"], c
        assert exp["panic_substring"] in (r["system"]["panic"] or "") or exp[
            "panic_substring"
        ] in "\n".join(r["evidence"].get("related") or [r["evidence"]["header"] or ""])

    each(corpus, check)


def test_culprit_has_a_source_line_with_dwarf(corpus: list[dict[str, Any]]) -> None:
    def check(e: dict[str, Any]) -> None:
        src = report(e)["verdict"]["culprit"]["source"]
        assert src and re.search(r"\.[ch]:\d+$", src), src

    each(corpus, check)


def test_signature_is_stable_across_formats_and_boots(corpus: list[dict[str, Any]]) -> None:
    """One crash, one bucket: whatever the format, boot (KASLR offset), guest size or
    kernel release (an attribute, not hashed); different crashes, different buckets."""
    by_crash: dict[tuple[str, str], set[str]] = defaultdict(set)
    by_boot: dict[str, set[str]] = defaultdict(set)
    for e in corpus:
        sig = report(e)["signature"]["id"]
        assert sig
        exp = e["expected"]
        by_crash[(exp["class"], exp["culprit_function"])].add(sig)
        by_boot[e["boot"]].add(sig)
    assert all(len(s) == 1 for s in by_boot.values()), by_boot
    assert all(len(s) == 1 for s in by_crash.values()), by_crash
    assert len({next(iter(s)) for s in by_crash.values()}) == len(by_crash)


def test_same_verdict_without_debuginfo(corpus: list[dict[str, Any]]) -> None:
    def check(e: dict[str, Any]) -> None:
        a, b = report(e), report(e, dwarf=False)
        assert b["input"]["mode"] in ("btf", "kallsyms")
        assert b["verdict"]["class"] == a["verdict"]["class"]
        for k in ("function", "module"):
            assert b["verdict"]["culprit"][k] == a["verdict"]["culprit"][k]
        assert b["signature"]["id"] == a["signature"]["id"]
        assert b["verdict"]["culprit"]["source"] is None
        assert b["input"]["lacks"], "the no-debuginfo report must say what it lacks"

    each(corpus, check)


def test_null_deref_names_the_struct_member(corpus: list[dict[str, Any]]) -> None:
    for e in corpus:
        if e["scenario"] != "null-deref":
            continue
        acc = report(e)["evidence"]["access"]
        assert acc["expression"] == "dev->refcount", acc
        assert acc["struct"] == "struct kcrash_device"
        assert acc["member_offset"] == 0x74
        code = report(e)["evidence"]["code"]
        # x86 `mov eax, dword ptr [rdi + 0x74]`; arm64 `ldr w0, [x0, #0x74]` (capstone arm64)
        want = "#0x74]" if is_arm64(e) else "+ 0x74]"
        assert code and code[0].startswith("=>") and want in code[0], code


def test_arm64_exception_frame_and_esr(corpus: list[dict[str, Any]]) -> None:
    """arm64 dumps: the exception's registers (sp, x0-x29 of the oops) are the evidence,
    the ESR is decoded (data abort from EL1, translation fault, a read), the faulting
    instruction disassembled in capstone's arm64 mode with its NULL base register, and the
    same evidence comes without debuginfo (frame records, BTF found in the image)."""
    arm = [e for e in corpus if is_arm64(e) and e["scenario"] == "null-deref"]
    assert arm, "the corpus has no arm64 null-deref dump"
    for e in arm:
        for dwarf in (True, False):
            r = report(e, dwarf=dwarf)
            regs = {k.lower(): v for k, v in r["evidence"]["registers"].items()}
            assert {f"x{i}" for i in range(30)} | {"sp"} <= set(regs), (e["id"], regs)
            assert int(str(regs["x0"]), 0) == 0  # the NULL struct pointer
            text = render_to_string(r, "text")
            assert "arm64 ESR 0x96000006: exception class 0x25 (dabt_current)" in text, e["id"]
            assert "translation fault at translation level 2" in text and "WnR = 0" in text
            assert "In ldr w0, [x0, #0x74], register x0 held the NULL pointer." in text


def test_arm64_qemu_kdump_is_refused_in_one_line(refused: list[dict[str, Any]]) -> None:
    """QEMU's kdump-format capture of an arm64 guest: libkdumpfile cannot translate its
    addresses (64 KiB blocks for the kernel's 4 KiB pages: every read fails with "Cannot
    read 64-bit PTE"); kcrash says so in one line and exits 2, never a traceback.
    crash 8.0.6 built for ARM64 does read this file's memory (diskdump.c reads pages by the
    header's block size: its sys, log, ps and mod are right; its bt finds no CPU registers
    there and lists no frame): the difference is drgn's reader, libkdumpfile, not the dump;
    the same boot's QEMU ELF dump is read by kcrash."""
    assert refused, "the corpus has no arm64 QEMU kdump-format dump"
    for e in refused:
        for cmd in (["analyze", e["path"]], ["sys", e["path"], "--no-debuginfo"]):
            p = subprocess.run(
                [sys.executable, "-m", "kcrash", *cmd], capture_output=True, text=True, timeout=300
            )
            assert p.returncode == 2, (cmd, p.stderr)
            err = p.stderr.strip().splitlines()
            assert len(err) == 1 and "Traceback" not in p.stderr, p.stderr
            assert "arm64" in err[0] and "ELF" in err[0], err


def test_json_matches_the_schema(corpus: list[dict[str, Any]]) -> None:
    for e in corpus:
        validate_report(report(e))
        validate_report(report(e, dwarf=False))


def test_chinese_report(corpus: list[dict[str, Any]]) -> None:
    e = corpus[0]
    en, zh = report(e), report(e, lang="zh")
    assert zh["verdict"]["class"] == en["verdict"]["class"]
    assert zh["signature"]["id"] == en["signature"]["id"]
    cjk = re.compile(r"[\u4e00-\u9fff]")
    for sentence in [*zh["explanation"], *zh["next_steps"]]:
        assert cjk.search(sentence), sentence
    text = render_to_string(zh, "text")
    assert "结论" in text and "下一步" in text


@pytest.mark.parametrize("fmt", ["text", "markdown", "json", "html"])
def test_output_formats(fmt: str, corpus: list[dict[str, Any]]) -> None:
    e = next(x for x in corpus if x["scenario"] == "null-deref")
    r = report(e)
    out = render_to_string(r, fmt)
    assert "kcrash_get_refcount" in out
    if fmt == "json":
        validate_report(json.loads(out))
    elif fmt == "html":
        assert out.startswith("<!DOCTYPE html>") and "</html>" in out
        assert "<script" not in out and "http" not in out.split("<body>")[1]
    elif fmt == "markdown":
        assert out.startswith("# ") and "```" in out
    else:
        assert "null-deref" in out and r["signature"]["id"] in out
        # text from the log is never taken for rich markup
        operand = "[x0, #0x74]" if is_arm64(e) else "[rdi + 0x74]"
        assert operand in out and "kcrash_get_refcount [kcrash_crash]" in out


def test_cli_writes_every_format(corpus: list[dict[str, Any]], tmp_path: Path) -> None:
    e = next(x for x in corpus if x["scenario"] == "sysrq")
    for fmt in ("json", "html", "markdown"):
        out = tmp_path / f"r.{fmt}"
        p = subprocess.run(
            [
                sys.executable,
                "-m",
                "kcrash",
                "analyze",
                e["path"],
                e["vmlinux"],
                "-f",
                fmt,
                "-o",
                str(out),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert p.returncode == 0, p.stderr
        assert out.stat().st_size > 500
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["verdict"]["class"] == "sysrq"


def test_every_step_is_recorded_and_timed(corpus: list[dict[str, Any]]) -> None:
    r = report(corpus[0])
    names = [s["name"] for s in r["steps"]]
    for n in ("open", "log", "events", "system", "panic stack", "diagnose"):
        assert n in names
    assert all(s["status"] == "ok" for s in r["steps"]), r["steps"]


def test_context_follows_the_class(corpus: list[dict[str, Any]]) -> None:
    """Lockups show every CPU, hung tasks the blocked tasks, OOM the memory summary."""
    by_scenario = {e["scenario"]: e for e in corpus if e["format"] == "kdump"}
    lockup = report(by_scenario["soft-lockup"])["context"]
    assert len(lockup["cpu_stacks"]) == by_scenario["soft-lockup"]["guest"]["cpus"]
    assert all(st["frames"] for st in lockup["cpu_stacks"])
    from kcrash.report.common import context_sections
    from kcrash.report.labels import labels

    heading, lines = context_sections(report(by_scenario["soft-lockup"]), labels("en"))[0]
    assert heading == "Other CPUs"
    # each CPU's stack starts where it was interrupted, not in the dump path
    firsts = [lines[i + 1] for i, ln in enumerate(lines[:-1]) if ln.startswith("PID ")]
    assert any("kcrash_soft_lockup+" in ln for ln in firsts), lines
    assert not any(ln.strip().startswith("machine_kexec") for ln in lines), lines
    hung = report(by_scenario["hung-task"])["context"]
    assert hung["blocked_tasks"], "the hung task is in D state"
    assert any(
        f["function"] == "kcrash_hung_task" for st in hung["blocked_tasks"] for f in st["frames"]
    )
    oom = report(by_scenario["oom"])["context"]["memory"]
    assert oom["total_kb"] > 0 and oom["top_tasks"]
    text = render_to_string(report(by_scenario["oom"]), "text")
    assert "Memory" in text and "RAM: " in text and "Slab caches by size" in text


def test_readme_example_without_debuginfo() -> None:
    """The README's first command: the shipped example dump, no debuginfo anywhere."""
    example = Path(__file__).parents[1] / "src" / "kcrash" / "examples" / "null-deref.vmcore"
    assert example.stat().st_size <= 20 << 20
    p = subprocess.run(
        [sys.executable, "-m", "kcrash", "analyze", str(example), "-f", "json"],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "KCRASH_DEBUGINFO_PATH": ""},
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert r["input"]["mode"] == "btf"
    assert r["verdict"]["class"] == "null-deref"
    assert r["verdict"]["culprit"]["function"] == "kcrash_get_refcount"
    assert any("install linux-image-" in x for x in r["input"]["lacks"])


def _readme_example() -> tuple[list[str], list[str]]:
    """The README's example block: (command argv after `kcrash`, the lines it shows)."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    block = readme.split("```\n$ kcrash ", 1)[1].split("\n```", 1)[0]
    command, *shown = block.splitlines()
    if shown and shown[-1] == "…":  # the README shows the first lines only
        shown.pop()
    return command.split(), shown


def test_readme_example_output_is_what_the_command_prints() -> None:
    """The output at the top of the README is the real output of the command shown there
    (its first lines, verbatim), run as a new user would: the shipped example dump, no
    debuginfo, an 100-column terminal."""
    argv, shown = _readme_example()
    assert argv[0] == "analyze" and argv[1] == "src/kcrash/examples/null-deref.vmcore"
    p = subprocess.run(
        [sys.executable, "-m", "kcrash", *argv],
        capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[1],
        env={**os.environ, "KCRASH_DEBUGINFO_PATH": "", "COLUMNS": "100", "NO_COLOR": "1"},
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    out = [line.rstrip() for line in p.stdout.splitlines()]
    assert len(shown) >= 10
    assert [line.rstrip() for line in shown] == out[: len(shown)]
