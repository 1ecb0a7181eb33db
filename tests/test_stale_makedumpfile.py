"""A dump written by a makedumpfile older than its kernel: kcrash reads it, crash stumbles.

Debian 12's makedumpfile 1.7.2 does not know Debian 13's 6.12 and excludes pages the kernel
still uses (its dump of the same crash is 40 % the size of trixie's 1.7.6's). crash 8.0.6
(Debian 13's own) complains "page excluded" and loses what those pages held (here a task:
its ``ps`` lists one task fewer than on the good dump of the same boot). The operator with
such a dump has nothing else to read: kcrash must give the same ``sys`` facts, panic-task
stack and verdict as on the good dump, and say which tasks it could not read.

The twin is the same boot's kdump-zlib dump written by the matching makedumpfile: same
crash, same memory, same registers; crash's readings of it are the oracle.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import drgn
import pytest
from checks import each
from conftest import pick
from crash_oracle import parse_bt, parse_ps, parse_sys

from kcrash.commands import registry
from kcrash.pipeline import analyze_path
from kcrash.target.open import open_target


def _twin(entry: dict[str, Any], corpus: list[dict[str, Any]]) -> dict[str, Any]:
    twins = pick(corpus, boot=entry["boot"], format="kdump", compression="zlib")
    if not twins:
        pytest.fail(f"{entry['id']}: no kdump-zlib dump of the same boot")
    return twins[0]


def _oracle(entry: dict[str, Any], key: str) -> str:
    return Path(entry["oracle"][key]).read_text(errors="replace")


def _run(target: Any, line: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        registry.run(target, line)
    return out.getvalue(), err.getvalue()


def test_the_stale_dump_is_the_stale_makedumpfile_s(crash_incomplete: list[dict[str, Any]]) -> None:
    for e in crash_incomplete:
        assert e["kernel"] == "deb13" and "1.7.2" in e["written_by"], e["written_by"]


def test_crash_stumbles_on_it(
    crash_incomplete: list[dict[str, Any]], corpus: list[dict[str, Any]]
) -> None:
    """crash 8.0.6 reports excluded pages and reads fewer tasks than on the twin (or stops)."""

    def check(e: dict[str, Any]) -> None:
        excluded = _oracle(e, "page-excluded")
        assert "page excluded" in excluded, excluded
        twin_tasks = len(parse_ps(_oracle(_twin(e, corpus), "ps")))
        if "ps" in e["oracle"]:
            assert len(parse_ps(_oracle(e, "ps"))) < twin_tasks

    each(crash_incomplete, check)


def test_kcrash_reads_sys_and_the_panic_stack_like_the_good_dump(
    crash_incomplete: list[dict[str, Any]], corpus: list[dict[str, Any]]
) -> None:
    def check(e: dict[str, Any]) -> None:
        twin = _twin(e, corpus)
        target = open_target(e["path"], e["vmlinux"])
        ours = parse_sys(_run(target, "sys")[0])
        crash = parse_sys(_oracle(twin, "sys"))
        for key, value in crash.items():
            if key in ("TASKS", "PANIC", "DUMPFILE"):
                continue
            assert ours.get(key) == value, f"{key}: ours {ours.get(key)!r}, crash {value!r}"
        # Where the stale makedumpfile excluded a node of the PID table itself, no tool can
        # count the tasks: kcrash then says so (unknown, with the excluded page) rather
        # than print a wrong number; otherwise it counts as crash does on the good twin.
        if ours["TASKS"].startswith("(unknown:"):
            assert "Excluded page" in ours["TASKS"], ours["TASKS"]
        else:
            assert int(ours["TASKS"]) == len(parse_ps(_oracle(twin, "ps")))
        assert e["expected"]["panic_substring"] in ours["PANIC"], ours["PANIC"]
        try:
            bt_out = _run(target, "bt")[0]
        except drgn.FaultError as err:
            # This capture left out the page of the panic task's own task_struct (and a
            # node of the PID table): kcrash cannot name the task whose stack it would
            # show, and says which page is missing (`kcrash: partial:`, exit 4, from the
            # command line) instead of a stack it cannot vouch for.
            assert "Excluded page" in str(err), err
            return
        ours_bt = [(f.function, f.address) for f in parse_bt(bt_out)[0]]
        crash_bt = [(f.function, f.address) for f in parse_bt(_oracle(twin, "bt"))[0]]
        # The syscall entry's label may differ (entry_SYSCALL_64 vs _after_hwframe): compare
        # the addresses, and the names of every frame above it.
        assert [a for _, a in ours_bt] == [a for _, a in crash_bt]
        assert [n for n, _ in ours_bt[:-1]] == [n for n, _ in crash_bt[:-1]]

    each(crash_incomplete, check)


def test_kcrash_ps_lists_what_it_can_and_names_the_rest(
    crash_incomplete: list[dict[str, Any]], corpus: list[dict[str, Any]]
) -> None:
    def check(e: dict[str, Any]) -> None:
        twin_rows = parse_ps(_oracle(_twin(e, corpus), "ps"))
        target = open_target(e["path"], e["vmlinux"])
        out, _err = _run(target, "ps")
        rows = parse_ps(out)
        missing = len(twin_rows) - len(rows)
        assert 0 <= missing < len(twin_rows)
        # Each task left out is named in the partial notes (`kcrash: partial: ps: task at …`
        # on stderr, exit status 4, from the command line).
        notes = [n for n in target.unreadable if n.startswith("ps: task at ")]
        cut = [n for n in target.unreadable if n.startswith("ps: the task list is cut short")]
        # Either every task left out is named, or the walk itself was cut (an excluded
        # node of the PID table) and that is said, with the page.
        assert len(notes) == missing or (cut and "Excluded page" in cut[0]), target.unreadable
        theirs = {(r["pid"], r["task"]) for r in twin_rows}
        assert {(r["pid"], r["task"]) for r in rows} <= theirs

    each(crash_incomplete, check)


@pytest.mark.parametrize("dwarf", [True, False], ids=["dwarf", "no-debuginfo"])
def test_kcrash_analyze_gives_the_verdict(
    crash_incomplete: list[dict[str, Any]], dwarf: bool
) -> None:
    def check(e: dict[str, Any]) -> None:
        r = analyze_path(e["path"], e["vmlinux"] if dwarf else None, no_debuginfo=not dwarf)
        exp = e["expected"]
        assert r["verdict"]["class"] == exp["class"]
        c = r["verdict"]["culprit"]
        assert (c["function"], c["module"]) == (exp["culprit_function"], exp["culprit_module"])

    each(crash_incomplete, check)
