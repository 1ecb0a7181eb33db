"""An analyzed dump is let go: its file closed, its memory freed.

Why: a fleet worker, ``kcrash shell`` and anyone calling :func:`analyze_path` in a loop
analyze dump after dump in one process.  drgn objects that hold their Program without
telling Python's garbage collector (a vmlinux Symbol, a StackTrace reached from a kept
exception) made a cycle through ``prog.cache`` that was never freed: every dump stayed
mapped and open, 45 MB and 3 file descriptors each, until a test worker reached 21 GB
and the kernel's OOM killer ended CI.
"""

from __future__ import annotations

import gc
import os
from typing import Any

import drgn
import pytest

from kcrash.pipeline import analyze_path
from kcrash.target.open import open_target


def _programs() -> int:
    gc.collect()
    return sum(isinstance(o, drgn.Program) for o in gc.get_objects())


def _open_fds(path: str) -> int:
    real = os.path.realpath(path)
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            n += os.readlink(f"/proc/self/fd/{fd}") == real
        except OSError:
            continue
    return n


def _pick(corpus: list[dict[str, Any]], suffix: str) -> dict[str, Any]:
    got = [e for e in corpus if e["id"].endswith(suffix)]
    if not got:
        pytest.fail(f"the corpus has no {suffix} dump")
    return got[0]


@pytest.mark.parametrize("dwarf", [True, False], ids=["dwarf", "no-debuginfo"])
@pytest.mark.parametrize(
    "which",
    [
        "deb12/null-deref/kdump-zlib",  # oops path: symbols of every frame, source lines
        "deb12/hung-task/kdump-zlib",  # hang path: blocked tasks' stacks, the waits scan
        "deb12/spin-held/qemu-kdump",  # every CPU's stack, the spinlock holder search
    ],
)
def test_analyze_frees_the_dump(corpus: list[dict[str, Any]], which: str, dwarf: bool) -> None:
    e = _pick(corpus, which)
    before_progs, before_fds = _programs(), _open_fds(e["path"])
    report = analyze_path(e["path"], e["vmlinux"] if dwarf else None, no_debuginfo=not dwarf)
    assert report["verdict"]["class"] == e["expected"]["class"]  # it did the whole job
    del report
    assert _programs() == before_progs, "the analyzed dump's drgn Program is still alive"
    assert _open_fds(e["path"]) == before_fds, "the analyzed dump is still open"


def test_a_target_is_freed_after_its_commands(corpus: list[dict[str, Any]]) -> None:
    """The shell's path: a Target opened, commands run on it, then dropped."""
    from kcrash.commands import registry

    e = _pick(corpus, "deb12/null-deref/kdump-zlib")
    before = _programs()
    t = open_target(e["path"], e["vmlinux"])
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        for line in ("sys", "bt", "bt -a", "ps", "mod", "log"):
            registry.run(t, line)
    del t
    assert _programs() == before, "the shell's Program is still alive after its commands"
