"""Diagnosis of every real corpus crash from its text: vmcore-dmesg.txt and console capture.

Each manifest entry says what the crash is (``expected``: class, culprit
function and module, panic substring).  The texts are shared by all dump
formats of one boot, so each boot is checked once.  These tests FAIL when the
corpus is missing (``corpus`` fixture of conftest.py).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from checks import is_arm64, names_the_function_after_the_caller

from kcrash.diagnosis import CLASS_IDS, diagnose, render_messages
from kcrash.oops.text import read_text

pytestmark = pytest.mark.corpus


def _boots(corpus: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for e in corpus:
        seen.setdefault(e["boot"], e)
    return list(seen.values())


def _read(path: str) -> Any:
    with open(path, "rb") as f:
        return read_text(f)


def _texts(entry: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    if entry.get("dmesg"):
        out.append(("vmcore-dmesg", entry["dmesg"]))
    if entry.get("console"):
        out.append(("console", entry["console"]))
    return out


def test_every_boot_has_text(corpus: list[dict[str, Any]]) -> None:
    for e in _boots(corpus):
        assert _texts(e), f"{e['boot']}: no vmcore-dmesg.txt nor console capture"
        for _, p in _texts(e):
            assert Path(p).is_file(), p


def test_class_and_culprit_match_manifest(corpus: list[dict[str, Any]]) -> None:
    failures = []
    for e in _boots(corpus):
        exp = e["expected"]
        for kind, path in _texts(e):
            d = diagnose(_read(path).facts)[0]
            got = (
                d.class_id,
                d.culprit.function if d.culprit else None,
                d.culprit.module if d.culprit else None,
            )
            want = (exp["class"], exp["culprit_function"], exp["culprit_module"])
            if names_the_function_after_the_caller(e, path):
                # arm64 prints return addresses as they are: after panic() at the end of
                # sysrq_handle_crash the log names the *next* function at +0x0; text alone
                # cannot name the caller (analyze of the dump does: test_analyze.py)
                got, want = got[::2], want[::2]
            if got != want:
                failures.append(f"{e['boot']} {kind}: got {got}, expected {want} ({d.title})")
    assert not failures, "\n".join(failures)


def test_panic_substring_is_in_the_primary_report(corpus: list[dict[str, Any]]) -> None:
    failures = []
    for e in _boots(corpus):
        sub = e["expected"]["panic_substring"]
        for kind, path in _texts(e):
            facts = _read(path).facts
            d = diagnose(facts)[0]
            lines = list(d.event.lines if d.event else [])
            for rel in d.related:
                lines.append(rel)
            if not any(sub in ln for ln in lines):
                failures.append(f"{e['boot']} {kind}: {sub!r} not in the primary report")
    assert not failures, "\n".join(failures)


def test_dmesg_and_console_give_the_same_signature(corpus: list[dict[str, Any]]) -> None:
    for e in _boots(corpus):
        texts = _texts(e)
        if len(texts) < 2:
            continue
        sigs = {kind: diagnose(_read(p).facts)[0].signature.id for kind, p in texts}
        assert len(set(sigs.values())) == 1, f"{e['boot']}: {sigs}"


def test_signature_is_stable_across_boots_and_kernels(corpus: list[dict[str, Any]]) -> None:
    """Boots of one crash (other RAM size, capture method, kernel, KASLR offset) share a bucket."""
    by_crash: dict[tuple[str, ...], set[str]] = defaultdict(set)
    boots: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for e in _boots(corpus):
        exp = e["expected"]
        for _, path in _texts(e):
            key: tuple[str, ...] = (exp["class"], exp["culprit_function"], exp["culprit_module"])
            if names_the_function_after_the_caller(e, path):
                # The one documented exception (see test_class_and_culprit_match_manifest):
                # arm64's log names the function after the caller of panic() (sysrq_handle_crash
                # ends in the call: "sysrq_reset_seq_param_set+0x0"), so its text signature
                # cannot be x86's; it must still be one bucket over arm64 boots and captures.
                key = (*key, "arm64: return address past a noreturn call")
            by_crash[key].add(diagnose(_read(path).facts)[0].signature.id)
            boots[key].append(e["boot"])
    for key, ids in by_crash.items():
        assert len(ids) == 1, f"{key} over {boots[key]}: {ids}"
    # and different crashes get different buckets
    firsts = [next(iter(v)) for v in by_crash.values()]
    assert len(set(firsts)) == len(firsts)


def test_reports_render_in_english_and_chinese(corpus: list[dict[str, Any]]) -> None:
    for e in _boots(corpus):
        for _, path in _texts(e)[:1]:
            for d in diagnose(_read(path).facts):
                assert d.class_id in CLASS_IDS
                for lang in ("en", "zh"):
                    msgs = render_messages(d, lang)
                    sentences = [
                        msgs["meaning"],
                        *msgs["explanation"],
                        *msgs["next_steps"],
                        *msgs["evidence"],
                    ]
                    for s in sentences:
                        assert s and not s.startswith(
                            ("rule.", "evidence.", "explain.", "next.")
                        ), (e["boot"], lang, s)
                    if lang == "zh":
                        assert any("\u4e00" <= ch <= "\u9fff" for ch in msgs["meaning"])


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_null_deref_evidence_decodes_offset(corpus: list[dict[str, Any]], lang: str) -> None:
    boots = [e for e in _boots(corpus) if e["expected"]["class"] == "null-deref"]
    assert boots, "the corpus has no null-deref scenario"
    for e in boots:
        for _, path in _texts(e):
            d = diagnose(_read(path).facts)[0]
            assert d.evidence.address_kind == "address.null_offset"
            if is_arm64(e):  # arm64 reports the ESR, not x86's #PF error code
                ids = [m.id for m in d.evidence.messages]
                assert "evidence.esr.read" in ids and "evidence.esr.fsc.level" in ids, ids
            else:
                assert d.evidence.page_fault is not None
            text = " ".join(render_messages(d, lang)["evidence"])
            assert d.evidence.fault_address in text


def test_gpf_address_comes_from_the_faulting_operand(corpus: list[dict[str, Any]]) -> None:
    """A #GP has no CR2 and the kernel's "maybe for address" guess can be wrong (6.1
    mis-decodes movabs moffs64): the operand computed from Code: and registers wins."""
    boots = [e for e in _boots(corpus) if e["expected"]["class"] == "gpf"]
    assert boots, "the corpus has no gpf scenario"
    for e in boots:
        for kind, path in _texts(e):
            d = diagnose(_read(path).facts)[0]
            assert d.evidence.address_kind in (
                "address.non_canonical",
                "address.poison.slab_free",
            ), (e["boot"], kind, d.evidence.fault_address)
            if e["scenario"] == "use-after-free":
                assert d.evidence.address_kind == "address.poison.slab_free"


def test_interrupt_context_is_said(corpus: list[dict[str, Any]]) -> None:
    boots = [e for e in _boots(corpus) if e["scenario"] == "irq-timer"]
    assert boots, "the corpus has no irq-timer scenario"
    for e in boots:
        for kind, path in _texts(e):
            d = diagnose(_read(path).facts)[0]
            ids = [m.id for m in d.evidence.messages]
            assert "evidence.context.irq" in ids, (e["boot"], kind, ids)
            assert d.evidence.page_fault is not None
            assert "pf.access.write" in d.evidence.page_fault["facts"]


@pytest.mark.parametrize(
    ("scenario", "key"),
    [
        ("warn", "panic_on_warn"),
        ("soft-lockup", "softlockup_panic"),
        ("hung-task", "hung_task_panic"),
    ],
)
def test_trailer_sysctl_is_explained(corpus: list[dict[str, Any]], scenario: str, key: str) -> None:
    boots = [e for e in _boots(corpus) if e["scenario"] == scenario]
    assert boots, f"the corpus has no {scenario} scenario"
    for e in boots:
        for kind, path in _texts(e):
            d = diagnose(_read(path).facts)[0]
            assert f"explain.trailer.{key}" in [m.id for m in d.explanation], (e["boot"], kind)
