"""Shared fixtures: the real vmcore corpus; the order files run in on two cores.

Tests that need the corpus FAIL when it is missing (they never skip): a
green run must mean the real dumps were checked.  Build it with
``PYTHONPATH=corpus python -m kcrash_corpus build`` (``.ci/run`` does).

The README's command runs the suite on every core (``pytest -n auto --dist loadfile``,
pytest-xdist): each file runs whole in one worker, so a module's fixtures (a booted guest,
a server, opened dumps) are set up once.  Session fixtures run once per worker; what they
start (tests/services.py, tests/server_process.py) takes a free port and a private temp
directory, so two workers never share one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

#: Files that run longest, longest first: with ``--dist loadfile`` a file runs whole on one
#: worker, and one started last tails the run while the other cores idle.  Every other file
#: keeps pytest's order after these.  Measured 2026-11-30 (see the README's "CI budget").
LONGEST_FIRST: tuple[tuple[str, str], ...] = (
    (
        "test_live_guest.py",
        "boots a 2 GB guest under TCG and waits for two tools' sessions: "
        "12-15 min in one worker, mostly QEMU's own CPU time",
    ),
)


def _load() -> list[dict[str, Any]]:
    try:
        import kcrash_corpus
    except ImportError as e:  # pragma: no cover - a broken checkout
        pytest.fail(f"the corpus package is missing: {e}")
    try:
        return list(kcrash_corpus.load())
    except Exception as e:
        pytest.fail(
            f"the vmcore corpus is missing or unreadable ({e}); build it with "
            "`PYTHONPATH=corpus python -m kcrash_corpus build`"
        )


def _crash_incomplete(entry: dict[str, Any]) -> bool:
    """A dump crash reads only in part (Debian 12's makedumpfile on Debian 13's kernel):
    its crash output is no oracle; tests/test_stale_makedumpfile.py checks it."""
    return bool(entry["expected"].get("crash_incomplete"))


def kcrash_refuses(entry: dict[str, Any]) -> bool:
    """A dump kcrash refuses in one line: QEMU's kdump-format capture of an arm64 guest
    (64 KiB blocks for 4 KiB pages, which libkdumpfile cannot translate; issue 20).
    test_analyze.py checks the refusal."""
    return entry.get("arch") == "arm64" and entry["format"] == "qemu-kdump"


@pytest.fixture(scope="session")
def corpus() -> list[dict[str, Any]]:
    """Every manifest entry of the corpus whose crash output is an oracle (and that kcrash
    reads: see kcrash_refuses)."""
    entries = [e for e in _load() if not _crash_incomplete(e) and not kcrash_refuses(e)]
    if not entries:
        pytest.fail("the vmcore corpus manifest has no entries")
    return entries


@pytest.fixture(scope="session")
def crash_incomplete() -> list[dict[str, Any]]:
    """The dumps crash reads only in part (written by a makedumpfile older than the kernel)."""
    entries = [e for e in _load() if _crash_incomplete(e)]
    if not entries:
        pytest.fail("the corpus has no dump written by a stale makedumpfile (deb13)")
    return entries


@pytest.fixture(scope="session")
def refused() -> list[dict[str, Any]]:
    """The corpus dumps kcrash refuses in one line (kcrash_refuses)."""
    return [e for e in _load() if kcrash_refuses(e)]


def pick(entries: list[dict[str, Any]], **want: Any) -> list[dict[str, Any]]:
    """Entries whose fields equal ``want`` (e.g. scenario="null-deref", format="kdump")."""
    return [e for e in entries if all(e.get(k) == v for k, v in want.items())]


@pytest.fixture(scope="session")
def kdump_zlib(corpus: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per scenario and kernel, in kdump-compressed zlib form."""
    out = pick(corpus, format="kdump", compression="zlib")
    if not out:
        pytest.fail("the corpus has no kdump zlib dumps")
    return out


@pytest.fixture(scope="session")
def corpus_root() -> str:
    import kcrash_corpus

    return str(kcrash_corpus.cache_root())


def _file_rank(item: pytest.Item) -> int:
    name = Path(str(item.fspath)).name
    ranks = [i for i, (f, _why) in enumerate(LONGEST_FIRST) if f == name]
    return ranks[0] if ranks else len(LONGEST_FIRST)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The longest files first (a stable sort: each file's own order is kept)."""
    items.sort(key=_file_rank)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadfile`` in the collection order above: by default xdist hands out the files
    with the most tests first, which would start the live guest's five tests last."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    config.option.loadscopereorder = False
    return LoadFileScheduling(config, log)


os.environ.setdefault("KCRASH_DEBUG", "")
