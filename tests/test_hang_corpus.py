"""Issue 18's hangs on real dumps: the locks, holders, cycle or chain ``analyze`` names.

Each scenario of the ``kcrash_hang`` module (corpus/kcrash_corpus/module-hang) is checked in
both its captures (kdump and QEMU) with DWARF and without debuginfo (BTF, kallsyms, ORC):

- abba-deadlock: ``kcrash_abba_a`` holds ``kcrash_lock_a`` and waits for ``kcrash_lock_b``,
  ``kcrash_abba_b`` the reverse: a cycle of two;
- mutex-owner-waits: ``kcrash_io_waiter`` waits for ``kcrash_hang_dev.io_lock``, held by
  ``kcrash_io_holder``, which waits for the completion ``kcrash_hang_dev.io_done``: a chain
  whose root waits for a completion;
- rwsem-writer-stall: ``kcrash_cfg_writer`` waits for ``kcrash_hang_dev.cfg_sem``, read-held
  by ``kcrash_cfg_reader``, which sleeps in ``msleep()``: a chain whose root sleeps;
- hung-task (kcrash_crash, Debian 12 and 13): ``sh`` takes ``kcrash_lock`` twice: a cycle
  of one;
- io-stall (Debian's own null_blk, requests complete after an hour): powering the device on
  scans its partitions, and that task holds the whole device's claim and
  ``&disk->open_mutex`` of nullb0 while it waits on the lock of page 0 of nullb0 under a READ
  that never completes; ``mount`` waits for the claim, ``sync`` and three ``dd`` for that
  mutex: heap locks named like lockdep, a folio wait and a request in flight (which device,
  how long).

The three kcrash_hang scenarios run on Debian 12 (kdump and QEMU) and Debian 13 (kdump).

Expected names are the module's own (its source says which thread takes which lock), never
kcrash's output. Without DWARF a member of ``kcrash_hang_dev`` is named by symbol and offset
(the module has no BTF of its own: the offset is checked against the struct's layout in the
DWARF of the same build).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from checks import each, is_arm64, validate_report

from kcrash.pipeline import analyze_path, render_to_string

_CACHE: dict[tuple[str, bool, str], dict[str, Any]] = {}

#: struct kcrash_hang_dev (module-hang/kcrash_hang.c) on x86-64: name[16], then the locks.
MEMBER_OFFSETS = {"io_lock": 0x10, "io_done": 0x30, "cfg_sem": 0x50}


def report(entry: dict[str, Any], dwarf: bool, lang: str = "en") -> dict[str, Any]:
    key = (entry["id"], dwarf, lang)
    if key not in _CACHE:
        _CACHE[key] = analyze_path(
            entry["path"], entry["vmlinux"] if dwarf else None, no_debuginfo=not dwarf, lang=lang
        )
    return _CACHE[key]


def entries(corpus: list[dict[str, Any]], scenario: str) -> list[dict[str, Any]]:
    out = [e for e in corpus if e["scenario"] == scenario]
    assert out, f"the corpus has no {scenario} dump: build it (kcrash_corpus build)"
    return out


def by_comm(hang: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Tasks by the thread name the module gave them (the kernel keeps 15 characters)."""
    names = ("kcrash_abba_a", "kcrash_abba_b", "kcrash_io_holder", "kcrash_io_waiter",
             "kcrash_cfg_reader", "kcrash_cfg_writer", "sh")  # fmt: skip
    full = {n[:15]: n for n in names}
    return {full.get(t["comm"], t["comm"]): t for t in hang["tasks"]}


def member(name: str, dwarf: bool) -> str:
    """``kcrash_hang_dev.io_lock`` with DWARF, ``kcrash_hang_dev+0x10`` without."""
    return f"kcrash_hang_dev.{name}" if dwarf else f"kcrash_hang_dev+{MEMBER_OFFSETS[name]:#x}"


BOTH = pytest.mark.parametrize("dwarf", [True, False], ids=["dwarf", "nodebug"])


@BOTH
def test_abba_deadlock_is_a_cycle_of_two_named_mutexes(
    corpus: list[dict[str, Any]], dwarf: bool
) -> None:
    def check(e: dict[str, Any]) -> None:
        r = report(e, dwarf)
        h = r["hang"]
        assert h["deadlock"] is True, h["summary"]
        tasks = by_comm(h)
        a, b = tasks["kcrash_abba_a"], tasks["kcrash_abba_b"]
        assert sorted(h["cycles"][0]) == sorted([a["pid"], b["pid"]])
        for t, want, other, held in ((a, "kcrash_lock_b", b, "kcrash_lock_a"),
                                     (b, "kcrash_lock_a", a, "kcrash_lock_b")):  # fmt: skip
            assert t["wait"] == "mutex" and t["state"] == "UN"
            assert t["lock"]["name"] == want and t["lock"]["naming"] == "symbol"
            assert t["lock"]["holder"] == {"pid": other["pid"], "comm": other["comm"]}
            assert [x["name"] for x in t["holds"]] == [held]
            # With DWARF the frame's argument when the compiler kept it, else the stack.
            ways = {"dwarf-argument", "stack-waiter"} if dwarf else {"stack-waiter"}
            assert t["lock"]["found_by"] in ways
        story = h["story"]
        assert "kcrash_lock_a" in story and "kcrash_lock_b" in story and "deadlock" in story
        assert f"task {a['pid']} (kcrash_abba_a)" in story.lower()
        assert r["next_steps"][0] == story, "the cycle is the first next step"
        assert not any("Find what" in s for s in r["next_steps"]), "the generic step is answered"

    abba = entries(corpus, "abba-deadlock")
    assert {"deb12", "deb13"} <= {e["kernel"] for e in abba}, "6.1 and 6.12 both checked"
    each(abba, check)


@BOTH
def test_mutex_owner_waiting_on_a_completion_is_the_root_of_a_chain(
    corpus: list[dict[str, Any]], dwarf: bool
) -> None:
    def check(e: dict[str, Any]) -> None:
        h = report(e, dwarf)["hang"]
        assert h["deadlock"] is False
        tasks = by_comm(h)
        waiter, holder = tasks["kcrash_io_waiter"], tasks["kcrash_io_holder"]
        assert h["chain"] == [waiter["pid"], holder["pid"]] and h["root"] == holder["pid"]
        assert waiter["lock"]["name"] == member("io_lock", dwarf)
        assert waiter["lock"]["kind"] == "mutex" and waiter["lock"]["state"] == "locked"
        assert waiter["lock"]["holder"]["pid"] == holder["pid"]
        assert holder["wait"] == "completion"
        assert holder["lock"]["name"] == member("io_done", dwarf)
        assert holder["lock"]["holder"] is None and holder["lock"]["count"] == 0
        assert "complete()" in h["story"] and member("io_lock", dwarf) in h["story"]
        if not dwarf:  # which member it is needs the variable's type: said, not guessed
            assert any("DWARF" in u for u in h["undetermined"]), h["undetermined"]
            # the same object as the DWARF run names kcrash_hang_dev.io_lock
            named = by_comm(report(e, True)["hang"])["kcrash_io_waiter"]["lock"]
            assert waiter["lock"]["address"] == named["address"]

    each(entries(corpus, "mutex-owner-waits"), check)


@BOTH
def test_rwsem_writer_behind_a_sleeping_reader(corpus: list[dict[str, Any]], dwarf: bool) -> None:
    def check(e: dict[str, Any]) -> None:
        h = report(e, dwarf)["hang"]
        tasks = by_comm(h)
        writer, reader = tasks["kcrash_cfg_writer"], tasks["kcrash_cfg_reader"]
        assert h["deadlock"] is False and h["root"] == reader["pid"]
        assert h["chain"] == [writer["pid"], reader["pid"]]
        lk = writer["lock"]
        assert lk["kind"] == "rwsem-write" and lk["name"] == member("cfg_sem", dwarf)
        assert lk["state"] == "read-locked" and lk["readers"] == 1
        assert lk["last_reader"] == {"pid": reader["pid"], "comm": reader["comm"]}
        # msleep() sleeps in D state too (it wakes every second, so khungtaskd skips it)
        assert reader["state"] == "UN" and writer["state"] == "UN"
        assert reader["wait"] == "sleep" and reader["function"] == "msleep"
        assert "held for reading by 1 task" in h["story"] and "msleep" in h["story"]

    each(entries(corpus, "rwsem-writer-stall"), check)


@BOTH
def test_hung_task_is_a_task_waiting_for_its_own_mutex(
    corpus: list[dict[str, Any]], dwarf: bool
) -> None:
    def check(e: dict[str, Any]) -> None:
        h = report(e, dwarf)["hang"]
        assert h["deadlock"] and len(h["cycles"][0]) == 1
        t = by_comm(h)["sh"]
        if is_arm64(e) and not dwarf:
            # No CONFIG_KALLSYMS_ALL: kallsyms lists no module variable, so the mutex is
            # named by its module (test_nodebug_commands: the one documented difference).
            assert (t["lock"]["name"], t["lock"]["naming"]) == ("kcrash_crash", "module-data")
        else:
            assert t["lock"]["name"] == "kcrash_lock"
        assert t["lock"]["holder"]["pid"] == t["pid"]
        assert "already holds itself" in h["story"]

    hung = entries(corpus, "hung-task")
    kernels = {e["kernel"] for e in hung}
    assert {"deb12", "deb13", "deb12-arm64"} <= kernels, "6.1, 6.12 and arm64's 6.1 checked"
    each(hung, check)


def test_formats_show_the_graph(corpus: list[dict[str, Any]]) -> None:
    """Text, Markdown and HTML show the story and each lock; the JSON follows the schema."""

    def check(e: dict[str, Any]) -> None:
        r = report(e, True)
        validate_report(r)
        for fmt in ("text", "markdown", "html"):
            out = render_to_string(r, fmt)
            flat = " ".join(out.split())
            for name in ("kcrash_lock_a", "kcrash_lock_b", "kcrash_abba_a", "kcrash_abba_b"):
                assert name in out, (fmt, name)
            assert "deadlock" in flat, fmt
        assert r["hang"]["story"] in json.loads(render_to_string(r, "json"))["next_steps"]

    each(entries(corpus, "abba-deadlock"), check)


def test_chinese_report_tells_the_same_story(corpus: list[dict[str, Any]]) -> None:
    def check(e: dict[str, Any]) -> None:
        zh = report(e, False, "zh")["hang"]
        assert "死锁" in zh["story"] and "kcrash_lock_a" in zh["story"]
        assert "互斥锁" in zh["story"] and "deadlock" not in zh["story"]

    each(entries(corpus, "abba-deadlock"), check)


def test_wait_step_is_timed(corpus: list[dict[str, Any]]) -> None:
    """The graph is one analysis step of its own (its time is in the report and the bench)."""
    r = report(entries(corpus, "abba-deadlock")[0], False)
    step = next(s for s in r["steps"] if s["name"] == "waits")
    assert step["status"] == "ok" and step["seconds"] >= 0


@BOTH
def test_io_stall_names_the_heap_mutex_the_page_and_the_request(
    corpus: list[dict[str, Any]], dwarf: bool
) -> None:
    """The chain behind a block device that never completes, as the scenario builds it
    (tables.py io-stall): who holds ``&disk->open_mutex``, which page it waits on, which
    request on which device, for how long."""

    def check(e: dict[str, Any]) -> None:
        r = report(e, dwarf)
        h = r["hang"]
        pages = [t for t in h["tasks"] if (t.get("object") or {}).get("kind") == "page"]
        assert len(pages) == 1, [t["comm"] for t in h["tasks"]]
        holder = pages[0]
        # the partition scan of the new disk (add_disk) holds the disk's open_mutex ...
        assert any(f.startswith("read_part_sector") for f in holder["stack"]), holder["stack"]
        ow = holder["object"]
        assert ow["bit"] == "PG_locked" and ow["index"] == 0 and ow["device"] == "nullb0"
        assert ow["found_by"] == "stack-wait-entry" and "PG_locked" in ow["flags"]
        assert holder["function"].startswith("folio_wait_bit_common")
        held = sorted(x["name"] for x in holder["holds"])
        assert held == ["&bdev->bd_claiming", "&disk->open_mutex"], held
        # ... which sync (sync_bdevs) and the three dd (their open) wait for
        waiters = [t for t in h["tasks"] if t.get("lock") and t["lock"]["kind"] == "mutex"]
        assert sorted(t["comm"] for t in waiters) == ["dd", "dd", "dd", "sync"]
        for t in waiters:
            lk = t["lock"]
            assert (lk["name"], lk["naming"]) == ("&disk->open_mutex", "object")
            assert lk["container"] == "disk nullb0"
            assert lk["holder"] == {"pid": holder["pid"], "comm": holder["comm"]}
            ways = {"dwarf-argument", "stack-waiter"} if dwarf else {"stack-waiter"}
            assert lk["found_by"] in ways
        assert len({t["lock"]["address"] for t in waiters}) == 1
        # the READ of that page, in flight since before mount blocked (> 5 s)
        (rq,) = h["requests"]
        assert (rq["disk"], rq["op"], rq["sector"], rq["bytes"]) == ("nullb0", "READ", 0, 4096)
        assert rq["state"] == "in-flight" and rq["age_seconds"] >= 5
        assert rq["waiters"] == [{"pid": holder["pid"], "comm": holder["comm"]}]
        assert holder["requests"] == ow["requests"] == [rq["address"]]
        # mount waits for the claim of the whole device that the partition scan holds
        mount = next(t for t in h["tasks"] if t["comm"] == "mount")
        assert any(f.startswith("bd_prepare_to_claim") for f in mount["stack"][:4])
        claim = mount["lock"]
        assert (claim["kind"], claim["name"], claim["found_by"]) == (
            "claim",
            "&bdev->bd_claiming",
            "stack-claim",
        )
        assert claim["container"] == "block device nullb0 (claimed by disk_scan_partitions())"
        assert claim["holder"] == {"pid": holder["pid"], "comm": holder["comm"]}
        assert h["chain"] == [mount["pid"], holder["pid"]] and h["root"] == holder["pid"]
        assert h["deadlock"] is False
        story = h["story"]
        for words in (
            "`&bdev->bd_claiming`",
            "PG_locked of page 0 of nullb0",
            "READ request to nullb0",
        ):
            assert words in story, story
        assert r["next_steps"][0] == story
        assert any("nullb0 has 1 request(s) in flight" in s for s in r["next_steps"])

    io = entries(corpus, "io-stall")
    each(io, check)
    assert {e["capture"] for e in io} == {"kdump", "qemu"}


def test_io_stall_formats_and_chinese(corpus: list[dict[str, Any]]) -> None:
    def check(e: dict[str, Any]) -> None:
        r = report(e, False)
        validate_report(r)
        for fmt in ("text", "markdown", "html"):
            out = " ".join(render_to_string(r, fmt).split())
            assert "open_mutex" in out and "bd_claiming" in out and "PG_locked" in out, fmt
            assert "in flight" in out, fmt
        zh = report(e, False, "zh")["hang"]
        assert "&bdev->bd_claiming" in zh["story"] and "nullb0" in zh["story"]
        assert "在途" in zh["story"] and "in flight" not in zh["story"]

    each(entries(corpus, "io-stall"), check)


@BOTH
def test_heap_locks_are_named_by_their_proved_object(
    corpus: list[dict[str, Any]], dwarf: bool
) -> None:
    """``&sb->s_umount``, ``&inode->i_rwsem``, ``&mm->mmap_lock``, ``&sig->cred_guard_mutex``
    of real objects of a hang dump (each read from the kernel's own lists), with DWARF and
    with BTF alone; a global is never taken for a heap object."""
    import drgn
    from drgn.helpers.linux.pid import for_each_task

    from kcrash.facts.locks import object_lock_name
    from kcrash.target.open import open_target

    e = next(x for x in entries(corpus, "abba-deadlock") if x["kernel"] == "deb12")
    prog = open_target(e["path"], e["vmlinux"] if dwarf else None, no_debuginfo=not dwarf).prog
    head = prog.symbol("super_blocks").address
    sb = drgn.container_of(
        drgn.Object(prog, "struct list_head *", value=prog.read_u64(head)),
        "struct super_block",
        "s_list",
    )
    rw, mutex = "struct rw_semaphore", "struct mutex"
    sb_id = sb.s_id.string_().decode()
    got = object_lock_name(prog, sb.s_umount.address_of_().value_(), rw)
    assert got is not None and got[0] == "&sb->s_umount"
    assert got[1]["kind"] == "super-block" and got[1]["name"] == sb_id
    inode = sb.s_root.d_inode
    got = object_lock_name(prog, inode.i_rwsem.address_of_().value_(), rw)
    assert got is not None and got[0] == "&inode->i_rwsem"
    assert (got[1]["kind"], got[1]["ino"], got[1]["name"]) == ("inode", inode.i_ino.value_(), sb_id)
    task = next(t for t in for_each_task(prog) if t.mm)
    got = object_lock_name(prog, task.mm.mmap_lock.address_of_().value_(), rw)
    assert got is not None and got[0] == "&mm->mmap_lock"
    assert got[1] == {"kind": "mm", "comm": task.comm.string_().decode(), "pid": task.pid.value_()}
    got = object_lock_name(prog, task.signal.cred_guard_mutex.address_of_().value_(), mutex)
    assert got is not None and got[0] == "&sig->cred_guard_mutex"
    assert object_lock_name(prog, prog.symbol("kcrash_lock_a").address, mutex) is None
