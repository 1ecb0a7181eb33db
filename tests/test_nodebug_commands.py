"""kcrash's own commands give the same answers without debuginfo, on every corpus dump.

The README's claim, checked exactly: ``sys``, ``bt``, ``bt -a``, ``log``,
``ps``, ``mod`` and ``analyze`` print the same with the matching vmlinux and
with none (types from the dump's BTF, symbols from its kallsyms, stacks from
its ORC), source lines excepted.  The text each command prints is compared
line by line, and its ``--json`` form value by value; what may differ is
exactly:

- ``sys``'s KERNEL line (the vmlinux path, or what replaced it), the mode
  and what it lacks (``sys --json``'s ``mode``/``lacks``, the report's
  ``input``), the report's ``steps`` (timings) and each module's debug file
  (``object_file``);
- ``source`` values (file:line needs DWARF) and inlined frames (DWARF's
  inline records are the only way to know a call was inlined);
- the pointer variable named in a bad access (``dev->refcount``): it comes
  from the faulting frame's DWARF variable locations.  Without them the
  report must say the rest the same and give the generic next step instead
  (:func:`_without_the_named_pointer`);
- in the wait-for graph (``hang``, issue 18): how a lock was found (a DWARF frame argument or
  the stack scan), a member path for a lock inside a global (``kcrash_hang_dev.io_lock``
  against ``kcrash_hang_dev+0x10``) and the sentences that use that name, the waiting
  function and stack (inlined frames), and the "needs DWARF" notes of ``undetermined``.
  Tasks, pids, lock kinds, addresses, states, holders, cycles and chains must be equal
  (:func:`_hang_named_as_without_dwarf`).

(``tests/test_nodebug_corpus.py`` checks the layers beneath: drgn's own
helpers over the same dumps.)
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys
from typing import Any

import pytest
from checks import each, is_arm64

from kcrash.commands import registry
from kcrash.errors import PARTIAL_EXIT
from kcrash.facts.waits import MIN_TASKS
from kcrash.report.hang import json_lock_words as lock_words
from kcrash.report.labels import labels
from kcrash.target.open import open_target

#: Text commands, compared line by line (``sys`` without its KERNEL line).
TEXT = ("sys", "bt", "bt -a", "log", "ps", "mod")
#: The same with ``--json``, and the report; compared after :func:`_comparable`.
JSON = ("sys --json", "bt --json", "bt -a --json", "log --json", "ps --json", "mod --json")


def _run(target: Any, line: str) -> str:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        registry.run(target, line)
    return buf.getvalue()


def _comparable(x: Any) -> Any:
    """``x`` without what needs DWARF (sources, inlined frames) or names the mode."""
    if isinstance(x, dict):
        return {
            k: _comparable(v)
            for k, v in x.items()
            if k not in ("source", "kernel", "mode", "lacks", "input", "steps", "tool")
            and k != "object_file"
        }
    if isinstance(x, list):
        return [_comparable(v) for v in x if not (isinstance(v, dict) and v.get("inlined"))]
    return x


def _outputs(target: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for cmd in TEXT:
        lines = _run(target, cmd).splitlines()
        out[cmd] = [ln for ln in lines if not ln.lstrip().startswith("KERNEL:")]
    for cmd in JSON:
        out[cmd] = _comparable(json.loads(_run(target, cmd)))
    out["analyze"] = _comparable(json.loads(_run(target, "analyze -f json")))
    return out


def _without_the_named_pointer(dwarf: dict[str, Any], nodebug: dict[str, Any]) -> dict[str, Any]:
    """The DWARF report as it reads without the named pointer, checked against ``nodebug``.

    With DWARF, ``evidence.access`` names the variable (``dev->refcount``), the
    evidence starts with that sentence (the only one with a label) and the
    next step about the NULL register, when the class has one, names the
    variable; without DWARF there is no access, no such evidence, and that
    step is the generic one.  Anything else must be equal.
    """
    ev = dwarf["evidence"]
    if not (ev.get("access") or {}).get("expression"):
        return dwarf
    expr = ev["access"]["expression"]
    # The decoded instruction, register and value are the same; only the names go.
    unnamed = {**ev["access"], "expression": None, "struct": None, "member": None}
    unnamed["member_offset"] = None
    steps = [
        theirs if ours != theirs and ours.startswith(f"{expr} was read through") else ours
        for ours, theirs in zip(dwarf["next_steps"], nodebug["next_steps"], strict=True)
    ]
    decoded = [d for d in ev["decoded"] if not d["label"]]
    assert len(decoded) == len(ev["decoded"]) - 1
    return {**dwarf, "next_steps": steps, "evidence": {**ev, "access": unnamed, "decoded": decoded}}


def _hang_named_as_without_dwarf(
    dwarf: dict[str, Any], nodebug: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both reports with the graph's mode-dependent parts out and the DWARF lock names
    replaced by the names the same addresses get without DWARF."""
    hd, hn = dwarf.get("hang"), nodebug.get("hang")
    if not hd or not hn:
        return dwarf, nodebug
    names: dict[str, str] = {}
    for td, tn in zip(hd["tasks"], hn["tasks"], strict=False):
        pairs = [(td.get("lock"), tn.get("lock"))]
        pairs += list(zip(td.get("holds") or [], tn.get("holds") or [], strict=False))
        for ld, ln in pairs:
            if ld and ln and ld["address"] == ln["address"] and ld["name"] and ln["name"]:
                names[ld["name"]] = ln["name"]
                if ld.get("naming") == "variable":
                    # A heap member the frames' variables name (`&dev->lock`) is, without
                    # DWARF, "in a kmalloc-64 object at …": another wording, not only a name.
                    words = [lock_words(x["kind"], x["name"], x["naming"], x["address"], "en")
                             for x in (ld, ln)]  # fmt: skip
                    names[words[0]] = words[1]

    def renamed(x: Any) -> Any:
        if isinstance(x, str):
            for a in sorted(names, key=len, reverse=True):
                x = x.replace(a, names[a])
            return x
        if isinstance(x, list):
            return [renamed(v) for v in x]
        if isinstance(x, dict):
            return {k: renamed(v) for k, v in x.items()}
        return x

    def bare(h: dict[str, Any]) -> dict[str, Any]:
        tasks = []
        for t in h["tasks"]:
            t = {k: v for k, v in t.items() if k not in ("function", "stack")}
            if t.get("lock"):
                mode_dependent = ("found_by", "naming", "object_offset")
                t["lock"] = {k: v for k, v in t["lock"].items() if k not in mode_dependent}
            t["holds"] = [{k: v for k, v in x.items() if k != "naming"} for x in t["holds"]]
            tasks.append(t)
        spins = [
            {**x, "lock": {k: v for k, v in x["lock"].items() if k != "naming"}}
            for x in h.get("spinlocks") or []
        ]
        return {**h, "tasks": tasks, "undetermined": None, "spinlocks": spins}

    dwarf = renamed(dwarf)
    bd, bn = bare(dwarf["hang"]), bare(hn)
    if len(bd["tasks"]) != len(bn["tasks"]):
        # The graph stops reading stacks MAX_SECONDS after its step began (crowd-hung-task:
        # 6,001 tasks in D state), so how many it reaches depends on each mode's speed. The
        # order is the same (holders first, then the task list): the shorter list must be
        # the start of the longer one, past the MIN_TASKS examined whatever the time.
        short, long = sorted((bd, bn), key=lambda h: len(h["tasks"]))
        pids = [t["pid"] for t in short["tasks"]]
        assert len(pids) >= MIN_TASKS, pids
        assert pids == [t["pid"] for t in long["tasks"]][: len(pids)], pids
        long["tasks"] = long["tasks"][: len(pids)]
        bd, bn = {**bd, "blocked": None}, {**bn, "blocked": None}
    return {**dwarf, "hang": bd}, {**nodebug, "hang": bn}


@pytest.fixture(scope="module")
def both(corpus: list[dict[str, Any]]) -> Any:
    """(entry, outputs with vmlinux, outputs without) per dump, opened one at a time."""

    def make(e: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        dwarf = open_target(e["path"], e["vmlinux"])
        assert dwarf.mode == "dwarf", e["id"]
        nodebug = open_target(e["path"], None, no_debuginfo=True)
        assert nodebug.mode == "btf", (e["id"], nodebug.lacks)
        return _outputs(dwarf), _outputs(nodebug)

    return make


def test_every_command_answers_the_same_without_debuginfo(
    corpus: list[dict[str, Any]], both: Any
) -> None:
    def check(e: dict[str, Any]) -> None:
        if is_arm64(e):
            _arm64_answers_the_same(e)
            return
        with_vmlinux, without = both(e)
        with_vmlinux["analyze"] = _without_the_named_pointer(
            with_vmlinux["analyze"], without["analyze"]
        )
        with_vmlinux["analyze"], without["analyze"] = _hang_named_as_without_dwarf(
            with_vmlinux["analyze"], without["analyze"]
        )
        differ = [cmd for cmd in with_vmlinux if with_vmlinux[cmd] != without[cmd]]
        detail = {
            cmd: next(
                ((a, b) for a, b in zip(with_vmlinux[cmd], without[cmd], strict=False) if a != b),
                "lengths differ",
            )
            if isinstance(with_vmlinux[cmd], list)
            else [k for k in with_vmlinux[cmd] if with_vmlinux[cmd][k] != without[cmd].get(k)]
            for cmd in differ
        }
        assert not differ, detail
        # The commands really ran: a panic task with frames, tasks, log lines, modules.
        assert len(without["bt"]) > 5 and len(without["ps"]) > 20, e["id"]
        assert len(without["log"]) > 100 and without["mod --json"], e["id"]

    each(corpus, check)


def _sys_fields(text: list[str]) -> dict[str, str]:
    return {
        k.strip(): v.strip()
        for k, _, v in (ln.partition(":") for ln in text)
        if k.strip() and not v.strip().startswith("(unknown")
    }


def _arm64_answers_the_same(e: dict[str, Any]) -> None:
    """arm64 (Debian: kallsyms of code only, no CONFIG_KALLSYMS_ALL): what needs per-CPU
    data (the CPU masks, ``runqueues``: the idle tasks, each CPU's current task) cannot be
    read without vmlinux, so ``ps``, ``bt -a`` and those ``sys`` fields are reported as
    unreadable (the CLI's "partial"), never given other values. Everything printed is
    the same: ``log``, ``mod``, the panic stack of ``bt`` (the panic CPU's frames,
    exception registers included, under a header that says its task is not reachable),
    every ``sys`` field both modes read, and ``analyze`` (the named pointer excepted)."""
    dwarf = open_target(e["path"], e["vmlinux"])
    nodebug = open_target(e["path"], None, no_debuginfo=True)
    assert dwarf.mode == "dwarf" and nodebug.mode == "btf", (e["id"], nodebug.lacks)
    assert any("CONFIG_KALLSYMS_ALL" in str(s) for s in nodebug.lacks), nodebug.lacks
    # The module list is found from a module the log names ("Modules linked in:", else a
    # module whose loading tainted the kernel); a log naming none leaves it unfound
    # without vmlinux: said, not guessed.
    mods = _run(nodebug, "mod")
    found_modules = not any(u.startswith("mod:") for u in nodebug.unreadable)
    assert found_modules or mods.count("\n") == 1, mods
    for cmd in ("log", "log --json", *(("mod", "mod --json") if found_modules else ())):
        a, b = _run(dwarf, cmd), _run(nodebug, cmd)
        if cmd.endswith("--json"):
            a, b = _comparable(json.loads(a)), _comparable(json.loads(b))
        assert a == b, (e["id"], cmd)
    bt_dwarf, bt_nodebug = _run(dwarf, "bt").splitlines(), _run(nodebug, "bt").splitlines()
    assert bt_nodebug[0].startswith("PANIC CPU") and bt_dwarf[0].startswith("PID:"), bt_nodebug
    assert bt_nodebug[1:] == bt_dwarf[1:], e["id"]
    ours = _sys_fields(_run(nodebug, "sys").splitlines())
    theirs = _sys_fields(_run(dwarf, "sys").splitlines())
    ours.pop("KERNEL"), theirs.pop("KERNEL")
    assert {"RELEASE", "VERSION", "MACHINE", "PANIC"} <= set(ours), ours
    assert all(theirs[k] == v for k, v in ours.items()), (e["id"], ours, theirs)
    ps = _run(nodebug, "ps")  # no idle tasks nor CPU masks: said, not guessed
    assert any(u.startswith("ps:") for u in nodebug.unreadable) or ps.count("\n") > 20, ps
    a = _comparable(json.loads(_run(dwarf, "analyze -f json")))
    b = _comparable(json.loads(_run(nodebug, "analyze -f json")))
    a = _without_the_named_pointer(a, b)
    a, b = _without_kernel_variables(a, b)
    for key in ("verdict", "signature", "evidence", "next_steps", "explanation"):
        assert a[key] == b[key], (e["id"], key)


def _template(text: str) -> re.Pattern[str]:
    """A report sentence's template (``{size} ({percent} % of RAM) …``) as a regex."""
    parts = re.split(r"\{[a-z_]+\}", text)
    return re.compile(".+?".join(re.escape(x) for x in parts) + "$", re.S)


def _without_kernel_variables(
    dwarf: dict[str, Any], nodebug: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """arm64 reports with what needs a kernel or module variable's symbol put equal, and
    nothing else: without CONFIG_KALLSYMS_ALL kallsyms lists no variable, of the kernel
    or of a module (kernel/module/kallsyms.c keeps a module's code symbols only), so

    - a lock that is a module's variable (hung-task's ``kcrash_lock``) is named without
      vmlinux by its address and module ("mutex at 0x… in kcrash_crash's data (no
      name: …)"): the DWARF name is replaced by those words at the same address;
    - the memory counters (``vm_zone_stat``, ``_totalram_pages``) are unread: the
      DWARF run's share "in no memory counter" (oom) is replaced by the step that says
      which counters were not read. Every other step, and their order, must be equal.
    """
    hd, hn = dwarf.get("hang") or {}, nodebug.get("hang") or {}
    words: dict[str, str] = {}
    for td, tn in zip(hd.get("tasks") or [], hn.get("tasks") or [], strict=False):
        pairs = [(td.get("lock"), tn.get("lock"))]
        pairs += list(zip(td.get("holds") or [], tn.get("holds") or [], strict=False))
        for ld, ln in pairs:
            if ld and ln and ln["naming"] == "module-data" and ld["naming"] == "symbol":
                assert ld["address"] == ln["address"], (ld, ln)
                old = lock_words(ld["kind"], ld["name"], "symbol", ld["address"], "en")
                words[old] = lock_words(ln["kind"], ln["name"], "module-data", ln["address"], "en")

    def renamed(x: Any) -> Any:
        if isinstance(x, str):
            for old, new in words.items():
                x = x.replace(old, new)
            return x
        return [renamed(v) for v in x] if isinstance(x, list) else x

    lb = labels("en")
    unread = _template(lb["other_unknown_step"])
    steps_d, steps_n = renamed(dwarf["next_steps"]), list(nodebug["next_steps"])
    if steps_n and unread.match(steps_n[0]):
        steps_n = steps_n[1:]
        in_no_counter = _template(lb["other_step"])
        steps_d = [x for x in steps_d if not in_no_counter.match(x)]
    dwarf = {**dwarf, "next_steps": steps_d, "explanation": renamed(dwarf["explanation"])}
    return dwarf, {**nodebug, "next_steps": steps_n}


def test_the_comparison_sees_a_difference(corpus: list[dict[str, Any]]) -> None:
    """What the comparison ignores is only what it must: a changed frame is seen."""
    e = corpus[0]
    out = _outputs(open_target(e["path"], None, no_debuginfo=True))
    bt = out["bt --json"]
    changed = json.loads(json.dumps(bt))
    changed["frames"][1]["function"] = "something_else"
    assert _comparable(changed) != bt
    assert _comparable({**bt, "source": "x.c:1"}) == bt


@pytest.mark.parametrize(
    "which, marker",
    [
        # tainted (the corpus module's O flag), read from tainted_mask through kallsyms
        ("deb12/null-deref/kdump-zlib", "  [TAINTED]"),
        # Debian's arm64 kernel has no CONFIG_KALLSYMS_ALL: tainted_mask has no symbol, so
        # the taint is unknown and said so, never shown as a clean kernel
        ("deb12-arm64/null-deref/kdump-zlib", "  [taint: not readable]"),
    ],
)
def test_sys_kernel_line_says_the_taint(
    corpus: list[dict[str, Any]], which: str, marker: str
) -> None:
    """Without vmlinux, sys's KERNEL line carries crash's [TAINTED] or says the taint could not
    be read; it once rendered an unreadable mask as "(not in the log)"."""
    e = next((e for e in corpus if e["id"] == which), None)
    if e is None:
        pytest.fail(f"the corpus has no {which} dump")
    p = subprocess.run(
        [sys.executable, "-m", "kcrash", "sys", e["path"], "--no-debuginfo"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    # arm64 without vmlinux cannot read every field: a partial answer (PARTIAL_EXIT), said
    assert p.returncode in (0, PARTIAL_EXIT), p.stderr[-2000:]
    assert "Traceback" not in p.stderr
    kernel = next(ln for ln in p.stdout.splitlines() if ln.strip().startswith("KERNEL:"))
    assert kernel.split("KERNEL: ", 1)[1] == "(no vmlinux: btf from the dump)" + marker
