"""The kcrash command namespace: ours first, then drgn's crash-compatible ones.

Why reuse drgn's command system: drgn 0.3 already ships ~40 crash commands
with crash's syntax, shell pipes and redirections.  We register only the
commands drgn lacks or gets wrong (``sys``'s PANIC line, ``analyze``, JSON
output…) in our own namespace, and every other name falls through to drgn's,
so operators keep the whole crash vocabulary.

A command is one module in :mod:`kcrash.commands` that decorates its function
with :func:`kcrash_command`; importing :mod:`kcrash.commands.all` registers
them all.  Commands reach the opened :class:`~kcrash.target.open.Target`
through :func:`target_of`.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from drgn import Program
from drgn.commands import Command, CommandNotFoundError, command

from ..drgn_private import CRASH_COMMAND_NAMESPACE, CrashCommandNamespace

if TYPE_CHECKING:
    from ..target.open import Target

_TARGET_KEY = "kcrash.target"


class KcrashNamespace(CrashCommandNamespace):  # type: ignore[misc]
    """Crash's command syntax; our commands shadow drgn's of the same name.

    (Subclasses a private drgn class on purpose: drgn is pinned to 0.3.0 in
    pyproject.toml, and this keeps crash's ``!cmd``, ``*struct`` and
    ``struct.member`` forms working unchanged.)
    """

    def __init__(self) -> None:
        super().__init__()
        self._func_name_prefix = "_kcrash_cmd_"

    def lookup(self, prog: Program, name: str) -> Command[object]:
        try:
            return super().lookup(prog, name)
        except CommandNotFoundError:
            return CRASH_COMMAND_NAMESPACE.lookup(prog, name)

    def enabled(self, prog: Program):  # type: ignore[no-untyped-def]
        ours = dict(super().enabled(prog))
        theirs = {n: c for n, c in CRASH_COMMAND_NAMESPACE.enabled(prog) if n not in ours}
        return sorted({**theirs, **ours}.items())

    def own_names(self) -> list[str]:
        return sorted(self._commands)


KCRASH_NAMESPACE = KcrashNamespace()

kcrash_command = functools.partial(command, namespace=KCRASH_NAMESPACE)
"""Register a kcrash command (name = function name minus ``_kcrash_cmd_``)."""


def attach_target(target: Target) -> None:
    target.prog.config[_TARGET_KEY] = target


def target_of(prog: Program) -> Target:
    return prog.config[_TARGET_KEY]  # type: ignore[no-any-return]


def run(target: Target, line: str, **kwargs: Any) -> Any:
    """Run one command line (with pipes/redirections) against ``target``."""
    import kcrash.commands.all  # noqa: F401  (registers our commands)

    attach_target(target)
    return KCRASH_NAMESPACE.run(target.prog, line, globals={"prog": target.prog}, **kwargs)
