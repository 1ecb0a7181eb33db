"""The wait-for graph on hand-built facts (in addition to the real dumps of
test_hang_corpus.py): shapes the corpus does not have, a cycle of three, a chain behind a
reader-held rwsem, a lock whose object was not found, and the sentences in both languages."""

from __future__ import annotations

from kcrash.diagnosis.waits import build_graph, story, summary, undetermined
from kcrash.model import LockFact, TaskWait
from kcrash.report.hang import hang_section, say


def wait(
    pid: int, lock: LockFact | None = None, kind: str | None = "mutex", **kw: object
) -> TaskWait:
    w = TaskWait(pid=pid, comm=f"t{pid}", task=0x1000 * pid, state="UN", kind=kind, lock=lock)
    w.blocked = True
    for k, v in kw.items():
        setattr(w, k, v)
    return w


def mutex(name: str, owner_pid: int | None, address: int) -> LockFact:
    return LockFact(
        "mutex", address, name, "symbol", "stack-waiter", "locked",
        owner_task=0x1000 * owner_pid if owner_pid else None,
    )  # fmt: skip


def test_cycle_of_three_lowest_pid_first() -> None:
    g = build_graph(
        [wait(7, mutex("b", 9, 0xB0)), wait(9, mutex("c", 5, 0xC0)), wait(5, mutex("a", 7, 0xA0))]
    )
    assert g.cycles == [[5, 7, 9]] and g.root is None
    assert [h.name for h in g.held[7]] == ["a"]
    text = "".join(say(m, "en") for m in story(g))
    assert text.startswith("Task 5 (t5) holds mutex `c` and waits for mutex `a` held by task 7")
    assert text.count("which waits for") == 2 and "held by task 5 (t5): a deadlock" in text
    assert say(summary(g), "en").startswith("Deadlock: 3 tasks (5, 7, 9)")  # type: ignore[arg-type]


def test_chain_behind_a_reader_ends_at_its_root() -> None:
    sem = LockFact("rwsem-write", 0xD0, "s", "symbol", "stack-waiter", "read-locked",
                   readers=2, last_reader_task=0x1000 * 3)  # fmt: skip
    reader = wait(3, None, "io", function="io_schedule")
    reader.blocked = False
    g = build_graph([wait(1, mutex("m", 2, 0xE0)), wait(2, sem), reader])
    assert not g.cycles and g.chain == [1, 2, 3] and g.root == 3
    text = "".join(say(m, "en") for m in story(g))
    assert "held for reading by 2 task(s), the last recorded reader being task 3 (t3)" in text
    assert text.endswith(
        "which waits for I/O in io_schedule: look at that device's queue and its driver."
    )
    zh = "".join(say(m, "zh") for m in story(g))
    assert "读者" in zh and "I/O" in zh and "Task" not in zh


def test_unfound_object_is_said_with_its_reason() -> None:
    g = build_graph([wait(4, None, "semaphore", function="__down_common", unknown="not-on-stack")])
    assert not g.cycles and not g.chain
    (msg,) = undetermined(g)
    assert "no word of its stack leads to a semaphore" in say(msg, "en")
    assert hang_section([], "en")["summary"] is None  # type: ignore[index]
