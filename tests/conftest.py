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


@pytest.fixture(scope="session")
def corpus() -> list[dict[str, Any]]:
    """Every manifest entry of the corpus."""
    entries = _load()
    if not entries:
        pytest.fail("the vmcore corpus manifest has no entries")
    return entries


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
