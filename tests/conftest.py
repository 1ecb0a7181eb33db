"""Shared fixtures: the real vmcore corpus.

Tests that need the corpus FAIL when it is missing (they never skip): a
green run must mean the real dumps were checked.  Build it with
``PYTHONPATH=corpus python -m kcrash_corpus build`` (``.ci/run`` does).
"""

from __future__ import annotations

import os
from typing import Any

import pytest


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


os.environ.setdefault("KCRASH_DEBUG", "")
