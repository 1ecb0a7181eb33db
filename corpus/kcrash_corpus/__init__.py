"""kcrash's real vmcore corpus: real Debian kernels crashed under QEMU, dumped the way servers
do it (kdump + makedumpfile) and the way hypervisors do (QEMU dump-guest-memory), each dump
with crash's own reading of it as the oracle.

Build it with ``python -m kcrash_corpus build``; tests read it with :func:`load`. The corpus
lives outside the git tree (``$KCRASH_CORPUS`` or ``~/.cache/kcrash/corpus``) because it is
gigabytes; only the recipe (this package) is versioned. Schema: ``corpus/README.md``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = [
    "MANIFEST_NAME",
    "SCHEMA_VERSION",
    "CorpusMissingError",
    "cache_root",
    "load",
    "load_manifest",
]

MANIFEST_NAME = "manifest.json"
SCHEMA_VERSION = 1


class CorpusMissingError(RuntimeError):
    """The corpus has not been built (or not at this root); the message says how to build it."""


def cache_root() -> Path:
    """Where the corpus lives: ``$KCRASH_CORPUS``, else ``~/.cache/kcrash/corpus``."""
    env = os.environ.get("KCRASH_CORPUS")
    if env:
        return Path(env).expanduser().resolve()
    return Path.home() / ".cache" / "kcrash" / "corpus"


def load_manifest(root: Path | None = None) -> dict[str, Any]:
    """The whole manifest (entries, kernels, hosts, tools). Cheap: reads one JSON file."""
    path = (root or cache_root()) / MANIFEST_NAME
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise CorpusMissingError(
            f"no vmcore corpus at {path.parent} (manifest.json missing); build it with "
            "`PYTHONPATH=corpus python -m kcrash_corpus build` (about 25 min) or point "
            "KCRASH_CORPUS at an existing one"
        ) from None
    except ValueError as exc:
        raise CorpusMissingError(f"corpus manifest {path} is not valid JSON: {exc}") from exc


def load(root: Path | None = None) -> list[dict[str, Any]]:
    """Manifest entries, one dict per dump (see corpus/README.md for the fields)."""
    return list(load_manifest(root)["entries"])
