"""Where the shell keeps its state (history files).

Why XDG_STATE_HOME: history is state, not configuration or cache (XDG base
directory spec 0.8); ``~/.local/state`` is its default.  ``KCRASH_HISTFILE``
overrides the command history path so that tests (and shared accounts) can
keep sessions apart; the Python mode's history sits next to it with ``.py``
appended.
"""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return Path(base) / "kcrash"


def history_file() -> Path:
    """The command history file (``KCRASH_HISTFILE`` wins)."""
    override = os.environ.get("KCRASH_HISTFILE")
    return Path(override) if override else state_dir() / "history"


def py_history_file() -> Path:
    """The Python mode's history, kept apart so ``bt`` never recalls ``x = 1``."""
    override = os.environ.get("KCRASH_HISTFILE")
    return Path(override + ".py") if override else state_dir() / "py_history"


def ensure_parent(path: Path) -> bool:
    """Create the history file's directory; False if we cannot (read-only home)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a"):
            pass
    except OSError:
        return False
    return True
