"""``kcrash shell``: the crash-style interactive session, with Python one keystroke away.

Why a package of small modules: the session loop (:mod:`.session`), line
input (:mod:`.reader`), completion (:mod:`.completion`, :mod:`.names`,
:mod:`.btfnames`), the pager policy (:mod:`.pager`), the shell's own
commands (:mod:`.builtins`) and the Python mode (:mod:`.pymode`) change for
different reasons and are tested separately.

Command execution itself is drgn's: :func:`kcrash.commands.registry.run`
resolves a line in kcrash's namespace (ours first, then drgn's crash
commands) and handles ``| pipes``, ``> file`` / ``>> file`` and ``!cmd``.
"""

from __future__ import annotations

from .session import Session, run_session

__all__ = ["Session", "run_session"]
