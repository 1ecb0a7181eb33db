"""Crash site and culprit as data: the skip tables, the strategies, the report fields.

The reports are syzkaller's real logs vendored under ``tests/data/syzkaller/``
(Apache-2.0, see its README); the table checks and the module case are unit
tests over hand-built frames, in addition.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from checks import validate_report
from test_syzkaller_benchmark import DATA, load_case

from kcrash.diagnosis.culprit import (
    ANCHORS,
    CLASS_SKIPS,
    HUNG_ANCHORS,
    INFRASTRUCTURE,
    SLEEPING,
    STALL_NAMED,
    blame,
    skip_reason,
)
from kcrash.model import Frame
from kcrash.pipeline import analyze_path, render_to_string


def _all_rows():
    for rows in INFRASTRUCTURE.values():
        yield from rows
    for rows in CLASS_SKIPS.values():
        yield from rows
    yield from SLEEPING
    yield from HUNG_ANCHORS
    yield from ANCHORS
    yield from STALL_NAMED


def test_every_row_compiles_and_says_why() -> None:
    rows = list(_all_rows())
    assert len(rows) > 300
    for r in rows:
        re.compile(r.pattern)
        assert len(r.why) > 20, r


@pytest.mark.parametrize(
    "name",
    [
        # RHEL 7 / 3.10 x86 fault path (issue 13)
        "async_page_fault",
        "do_async_page_fault",
        "trace_do_page_fault",
        "__do_page_fault",
        "bad_area_nosemaphore",
        "no_context",
        # WARN/BUG plumbing, locking, allocators, strings
        "fixup_bug",
        "report_bug",
        "warn_slowpath_fmt",
        "_raw_spin_lock",
        "native_queued_spin_lock_slowpath",
        "kmem_cache_alloc_trace",
        "__kmalloc",
        "memcpy",
        "__memcpy",
        "memcmp",
        "copy_from_user",
        "del_timer",
        "delay_tsc",
        "refcount_warn_saturate",
        "__list_del_entry_valid",
        "kobject_put",
        "printk",
        "__schedule",
        "shrink_node",
    ],
)
def test_infrastructure_is_never_the_culprit(name: str) -> None:
    assert skip_reason(name) is not None, name


@pytest.mark.parametrize("name", ["kvm_arch_vcpu_ioctl_run", "ext4_fill_super", "kcrash_gpf"])
def test_ordinary_code_is_blamed(name: str) -> None:
    assert skip_reason(name) is None


def test_helper_called_from_a_module_is_the_site_and_the_module_the_culprit() -> None:
    rip = Frame(function="memcpy_erms", offset=0x10, size=0x20)
    trace = [
        Frame(function="foo_fill_ring", offset=0x44, size=0x100, module="foo"),
        Frame(function="foo_ioctl", offset=0x12, size=0x80, module="foo"),
        Frame(function="__x64_sys_ioctl", offset=0x8, size=0x40),
        Frame(function="do_syscall_64", offset=0x30, size=0x60),
    ]
    b = blame("first", rip, trace, class_id="gpf")
    assert b.site is rip
    assert b.culprit is not None and b.culprit.frame.function == "foo_fill_ring"
    assert b.culprit.frame.module == "foo"


def test_rhel7_fault_path_is_skipped_to_the_faulting_caller() -> None:
    # 3.10 prints the fault path's own frames when the oops is taken from a nested fault
    trace = [
        Frame(function=f)
        for f in (
            "no_context",
            "__bad_area_nosemaphore",
            "bad_area_nosemaphore",
            "__do_page_fault",
            "trace_do_page_fault",
            "do_async_page_fault",
            "async_page_fault",
            "kmem_cache_alloc_trace",
            "foo_open",
            "do_dentry_open",
        )
    ]
    b = blame("first", None, trace, class_id="null-deref")
    assert b.culprit is not None and b.culprit.frame.function == "foo_open"
    assert b.site is not None and b.site.function == "kmem_cache_alloc_trace"


def _report(name: str, tmp_path: Path) -> dict:
    case = load_case(DATA / name)
    log = tmp_path / f"{name}.log"
    log.write_bytes(case.log)
    return analyze_path(str(log))


def test_sanitizer_site_and_culprit_in_every_format(tmp_path: Path) -> None:
    """KASAN in memcmp called by xfrm_selector_match (syzkaller file 172)."""
    r = _report("172", tmp_path)
    validate_report(r)
    assert r["schema_version"] == "1.3"
    v = r["verdict"]
    assert v["crash_site"]["function"] == "memcmp"
    assert v["culprit"]["function"] == "xfrm_selector_match"
    assert "xfrm_selector_match" in r["signature"]["title"]
    assert "xfrm_selector_match" in r["signature"]["key"]
    for fmt in ("text", "markdown", "html"):
        out = render_to_string(r, fmt)
        assert "Crash site" in out and "memcmp" in out, fmt


def test_warn_with_panic_on_warn_blames_the_warn_site(tmp_path: Path) -> None:
    """4.12 WARN + panic_on_warn: the RIP is inside the trace after invalid_op
    (syzkaller file 4); the issue's example of blaming fixup_bug instead."""
    r = _report("4", tmp_path)
    v = r["verdict"]
    assert v["class"] == "warn"
    assert v["culprit"]["function"] == "kvm_arch_vcpu_ioctl_run"
    assert v["crash_site"]["function"] == "kvm_arch_vcpu_ioctl_run"
    out = render_to_string(r, "text")
    assert "Crash site" not in out  # same as the culprit: said once


def test_lockdep_blames_the_lock_taker(tmp_path: Path) -> None:
    """3.x bracketed lockdep header; the lock is taken in vcs_read (syzkaller file 189)."""
    r = _report("189", tmp_path)
    assert r["verdict"]["class"] == "lockdep"
    assert r["verdict"]["culprit"]["function"] == "vcs_read"


def test_stall_blames_the_frame_above_the_syscall_anchor(tmp_path: Path) -> None:
    """RCU stall with the grace-period kthread's stack first (syzkaller file 278)."""
    r = _report("278", tmp_path)
    assert r["verdict"]["class"] == "rcu-stall"
    assert r["verdict"]["culprit"]["function"] == "sys_futex"


def test_skip_tables_match_as_their_whole_alternation() -> None:
    """A table's plain-name rows are a set and only its regex rows are compiled: the
    answer must be the one the whole table as one ``^(?:…)$`` alternation gives, for
    its names, near misses, and every syzkaller test report's frame names."""
    from kcrash.diagnosis import culprit as C

    tables = [
        C._SKIP_ALL,
        C._HARD,
        C._LOCKING,
        C._SLEEPING,
        C._HUNG_ANCHORS,
        C._ANCHORS,
        C._STALL_NAMED,
        *C._CLASS_SKIP.values(),
    ]
    names = {n for t in tables if t is not None for n in t._names}
    frames = set()
    for path in sorted(p for p in DATA.iterdir() if p.is_file()):
        frames |= set(re.findall(r"\b([a-z_][a-z0-9_.]*)\+0x", path.read_text(errors="replace")))
    cands = names | frames | {n + "\n" for n in names} | {n + "x" for n in names} | {"", "x"}
    for t in tables:
        if t is None:
            continue
        rows = sorted(t._names) + ([t._pattern[4:-2]] if t._pattern else [])
        whole = re.compile(r"^(?:" + "|".join(rows) + r")$")
        for name in cands:
            assert t.match(name) == (whole.match(name) is not None), (name, t._pattern)
    assert C._SKIP_ALL is not None and C._SKIP_ALL._names and C._SKIP_ALL._pattern
