"""The peer benchmark: kcrash's text path over syzkaller's own report test data.

``tests/data/syzkaller/report/`` holds syzkaller's 747 real crash logs, each
headed by the title syzkaller gives it (see that directory's README.md).  kcrash
reads each log as ``kcrash analyze LOG`` does (bytes in, the primary diagnosis
out) and is held to three floors:

* **detection**: a crash is found (a class other than ``unknown``) in >= 98 % of
  the logs whose ``TITLE:`` is not empty;
* **no false alarm**: nothing is found in the logs without a title (every one);
* **culprit**: in >= 85 % of the non-corrupted logs whose title names a function,
  kcrash's culprit is that function (a log where kcrash found nothing counts as a
  miss).

Which titles name a function (:func:`title_functions`): a title of the form
``<what> in <f>`` where ``<f>`` is a C identifier (syzkaller's ``{{FUNC}}``):
``WARNING in kvm_arch_vcpu_ioctl_run``, ``KASAN: use-after-free Read in foo``,
``INFO: task hung in bar``, the old ``KASAN: ... in foo at addr ADDR``.  Two
forms name two: ``WARNING in caller/usb_submit_urb`` (syzkaller names the
driver that called the USB core; the caller is the one compared) and
``KCSAN: data-race in f / g`` (either counts).  Not counted: titles without
`` in <identifier>`` at the end (``INFO: rcu detected stall``, ``kernel BUG at
fs/x.c:LINE!``, ``BUG: Bad rss-counter state``), ``... in corrupted`` and
``CORRUPTED: Y`` logs (syzkaller itself could not tell), and Rust paths
(``<rust_binder::process::Process>::update_ref``).  Names are compared after
the compiler suffixes (``.isra.0``, ``.part.NUM``) and the syscall-wrapper
prefixes (``__x64_sys_``, ``SyS_``, ``compat_SyS_``, ``sys_``) are stripped:
syzkaller writes ``sys_rmdir`` in old titles and ``rmdir`` in new ones.

Every file where kcrash and syzkaller differ is listed in
``tests/data/syzkaller-differences.json`` with kcrash's answer and the reason
kcrash's answer is the better one (or why it differs).  The test fails when a
listed difference disappears or changes, or an unlisted one appears, so the list
stays exact.  ``python tests/test_syzkaller_benchmark.py`` prints the numbers
and the current differences (``--update`` rewrites the list, keeping the
reasons of entries whose answer did not change and marking new ones TODO).
"""

from __future__ import annotations

import io
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from kcrash.diagnosis import diagnose
from kcrash.diagnosis.signature import normalize_function
from kcrash.errors import KcrashError
from kcrash.oops.text import read_text

DATA = Path(__file__).parent / "data" / "syzkaller" / "report"
DIFFERENCES = Path(__file__).parent / "data" / "syzkaller-differences.json"

DETECTION_FLOOR = 0.98
CULPRIT_FLOOR = 0.85

_TITLE_FUNC_RE = re.compile(
    r"^(?P<what>.*) in (?P<f1>[A-Za-z_][\w.]*)(?:(?P<sep>/| / )(?P<f2>[A-Za-z_][\w.]*))?"
    r"(?: at addr ADDR)?$"
)
_SYSCALL_RE = re.compile(r"^(?:compat_)?(?:SyS|sys)_")


@dataclass
class Case:
    """One file of syzkaller's test data and kcrash's answer for it."""

    name: str
    title: str
    corrupted: bool
    log: bytes
    klass: str = "unknown"
    culprit: str | None = None

    @property
    def answer(self) -> str:
        """kcrash's answer as recorded in the differences file."""
        return f"{self.klass}: {self.culprit}" if self.culprit else self.klass


def load_case(path: Path) -> Case:
    """Headers and log of one file, parsed as syzkaller's report_test.go does."""
    data = path.read_bytes().replace(b"\r", b"")
    lines = data.split(b"\n")
    headers: dict[str, str] = {}
    i = 0
    while i < len(lines) and lines[i] != b"":
        text = lines[i].decode("utf-8", "replace")
        if not text.startswith("#"):
            key, _, value = text.partition(":")
            headers[key] = value.strip()
        i += 1
    log: list[bytes] = []
    prev_empty = False
    for ln in lines[i + 1 :]:
        if prev_empty and ln == b"REPORT:":
            break
        log.append(ln)
        prev_empty = ln == b""
    return Case(
        name=path.name,
        title=headers.get("TITLE", ""),
        corrupted=headers.get("CORRUPTED") == "Y",
        log=b"\n".join(log),
    )


def title_functions(title: str) -> set[str] | None:
    """The function(s) a syzkaller title names, normalised; None when it names none."""
    m = _TITLE_FUNC_RE.match(title)
    if not m or m.group("f1") == "corrupted":
        return None
    names = {m.group("f1")}
    if m.group("sep") == " / " and m.group("f2"):
        names.add(m.group("f2"))
    return {n for n in (_norm(x) for x in names) if n}


def _norm(name: str | None) -> str | None:
    f = normalize_function(name)
    return _SYSCALL_RE.sub("", f) if f else None


def run_kcrash(case: Case) -> None:
    """kcrash's text path (``kcrash analyze LOG``): class and culprit of the primary crash."""
    try:
        facts = read_text(io.BytesIO(case.log), case.name).facts
    except KcrashError:  # no kernel text at all: "nothing found"
        return
    d = diagnose(facts)[0]
    case.klass = d.class_id
    case.culprit = d.culprit.function if d.culprit else None


def measure() -> tuple[dict[str, float | int], dict[str, dict[str, str]]]:
    """Run every file; the numbers and the differences (file -> kind, titles, answer)."""
    cases = []
    for path in sorted(DATA.iterdir(), key=lambda p: int(p.name) if p.name.isdigit() else 0):
        case = load_case(path)
        run_kcrash(case)
        cases.append(case)
    diffs: dict[str, dict[str, str]] = {}
    titled = [c for c in cases if c.title]
    untitled = [c for c in cases if not c.title]
    found = [c for c in titled if c.klass != "unknown"]
    false_alarms = [c for c in untitled if c.klass != "unknown"]
    counted = 0
    agree = 0
    for c in titled:
        want = None if c.corrupted else title_functions(c.title)
        if want is not None:  # a log where nothing was found counts as a wrong culprit
            counted += 1
            agree += _norm(c.culprit) in want
        if c.klass == "unknown":
            diffs[c.name] = {"kind": "not found", "syzkaller": c.title, "kcrash": c.answer}
        elif want is not None and _norm(c.culprit) not in want:
            diffs[c.name] = {"kind": "culprit", "syzkaller": c.title, "kcrash": c.answer}
    for c in false_alarms:
        diffs[c.name] = {"kind": "false alarm", "syzkaller": "(no crash)", "kcrash": c.answer}
    numbers: dict[str, float | int] = {
        "files": len(cases),
        "titled": len(titled),
        "found": len(found),
        "detection": len(found) / len(titled),
        "untitled": len(untitled),
        "false_alarms": len(false_alarms),
        "culprit_counted": counted,
        "culprit_agree": agree,
        "culprit": agree / counted if counted else 0.0,
    }
    return numbers, diffs


def summary(numbers: dict[str, float | int]) -> str:
    return (
        f"syzkaller benchmark ({numbers['files']} logs): crash found in "
        f"{numbers['found']}/{numbers['titled']} titled logs ({numbers['detection']:.1%}); "
        f"false alarms in {numbers['false_alarms']}/{numbers['untitled']} untitled logs; "
        f"culprit = syzkaller's function in {numbers['culprit_agree']}/"
        f"{numbers['culprit_counted']} ({numbers['culprit']:.1%})"
    )


def _listed() -> dict[str, dict[str, str]]:
    return json.loads(DIFFERENCES.read_text())["differences"]


def test_syzkaller_benchmark_floors_and_listed_differences() -> None:
    numbers, diffs = measure()
    print(summary(numbers))
    assert numbers["files"] >= 747
    assert numbers["detection"] >= DETECTION_FLOOR, summary(numbers)
    assert numbers["false_alarms"] == 0, summary(numbers)
    assert numbers["culprit"] >= CULPRIT_FLOOR, summary(numbers)
    listed = _listed()
    problems = []
    for name, d in sorted(diffs.items(), key=lambda kv: int(kv[0])):
        want = listed.get(name)
        if want is None:
            problems.append(f"new difference {name}: {d}")
        elif (want["kind"], want["kcrash"]) != (d["kind"], d["kcrash"]):
            problems.append(f"difference {name} changed: listed {want}, now {d}")
    for name in sorted(set(listed) - set(diffs), key=int):
        problems.append(f"listed difference {name} is gone: update the list")
    assert not problems, "\n".join(problems)


def test_every_listed_difference_has_a_reason() -> None:
    doc = json.loads(DIFFERENCES.read_text())
    reasons = doc["reasons"]
    for name, d in doc["differences"].items():
        assert d.get("reason") in reasons, f"{name}: reason {d.get('reason')!r} is not defined"
        assert (DATA / name).is_file(), name
    assert all(len(text) > 20 for text in reasons.values())


def test_title_functions() -> None:
    assert title_functions("WARNING in kvm_arch_vcpu_ioctl_run") == {"kvm_arch_vcpu_ioctl_run"}
    assert title_functions("KASAN: use-after-free Read in foo") == {"foo"}
    assert title_functions("INFO: rcu detected stall") is None
    assert title_functions("kernel BUG at fs/ext4/inode.c:LINE!") is None
    assert title_functions("BUG: unable to handle kernel paging request in corrupted") is None
    assert title_functions("WARNING in aiptek_open/usb_submit_urb") == {"aiptek_open"}
    assert title_functions("KCSAN: data-race in f / g") == {"f", "g"}
    assert title_functions("KASAN: use-after-free in do_con_write.part.NUM at addr ADDR") == {
        "do_con_write"
    }
    assert title_functions("INFO: rcu detected stall in sys_futex") == {"futex"}
    assert title_functions("attempt to add with overflow in <a::b as c>::mmap") is None


def _update() -> None:
    """Rewrite the differences list: keep reasons whose answer is unchanged."""
    numbers, diffs = measure()
    print(summary(numbers))
    doc = json.loads(DIFFERENCES.read_text()) if DIFFERENCES.exists() else {}
    reasons = doc.get("reasons", {})
    old = doc.get("differences", {})
    out = {}
    for name, d in sorted(diffs.items(), key=lambda kv: int(kv[0])):
        prev = old.get(name)
        same = prev and (prev["kind"], prev["kcrash"]) == (d["kind"], d["kcrash"])
        out[name] = {**d, "reason": prev["reason"] if same else "TODO"}
    doc = {"about": doc.get("about", ""), "reasons": reasons, "differences": out}
    DIFFERENCES.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    if "--update" in sys.argv:
        _update()
    else:
        nums, found_diffs = measure()
        print(summary(nums))
        for n, diff in sorted(found_diffs.items(), key=lambda kv: int(kv[0])):
            print(n, diff["kind"], "|", diff["syzkaller"], "|", diff["kcrash"])
