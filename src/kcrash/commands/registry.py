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
            cmd = super().lookup(prog, name)
        except CommandNotFoundError:
            cmd = CRASH_COMMAND_NAMESPACE.lookup(prog, name)
        return cmd if name in RAW_OUTPUT_COMMANDS else _VisibleOutput(cmd)

    def enabled(self, prog: Program):  # type: ignore[no-untyped-def]
        ours = dict(super().enabled(prog))
        theirs = {n: c for n, c in CRASH_COMMAND_NAMESPACE.enabled(prog) if n not in ours}
        return sorted({**theirs, **ours}.items())

    def own_names(self) -> list[str]:
        return sorted(self._commands)


#: Commands whose output is the operator's own, not the dump's: not sanitised.
RAW_OUTPUT_COMMANDS = frozenset({"py", "sh", "!"})


class _VisibleOutput:
    """A command whose stdout goes through :func:`kcrash.textsafe.visible_stdout`.

    Every command prints text from the dump (a ``comm``, a module name, a log
    record), ours and drgn's alike: wrapping at lookup covers all of them, and
    inside drgn's pipe/redirection set-up, so ``log | less`` is covered too.
    """

    def __init__(self, inner: Command[object]) -> None:
        self._inner = inner

    def run(self, prog: Program, name: str, args: Any, /, **kwargs: Any) -> Any:
        from ..textsafe import visible_stdout

        with visible_stdout():
            return self._inner.run(prog, name, args, **kwargs)

    def __getattr__(self, name: str) -> Any:  # description, parse, enabled, format_help …
        return getattr(self._inner, name)


KCRASH_NAMESPACE = KcrashNamespace()

kcrash_command = functools.partial(command, namespace=KCRASH_NAMESPACE)
"""Register a kcrash command (name = function name minus ``_kcrash_cmd_``)."""


def attach_target(target: Target) -> None:
    target.prog.config[_TARGET_KEY] = target


def target_of(prog: Program) -> Target:
    return prog.config[_TARGET_KEY]  # type: ignore[no-any-return]


def run(target: Target, line: str, **kwargs: Any) -> Any:
    """Run one command line (with pipes/redirections) against ``target``."""
    _load_all()
    attach_target(target)
    return KCRASH_NAMESPACE.run(target.prog, line, globals={"prog": target.prog}, **kwargs)


def _load_all() -> None:
    import kcrash.commands.all  # noqa: F401  (registers our commands)


def _enabled_without_dump() -> list[tuple[str, Command[object]]]:
    """Every command name, ours and drgn's, before any dump is opened.

    Why a blank :class:`drgn.Program`: drgn's namespace lists the commands *enabled* for a
    program (a command may require a live kernel or a platform), so it needs one; the CLI
    must tell ``kcrash bt VMCORE`` (a command) from ``kcrash VMCORE`` (the shell on a file)
    before it opens anything, and ``help-commands`` lists them with no dump at all.  A
    blank program costs microseconds and reads nothing.
    """
    _load_all()
    return list(KCRASH_NAMESPACE.enabled(Program()))


def is_command(name: str) -> bool:
    """A crash-style command name (ours or drgn's); the CLI checks this before any path."""
    return any(n == name for n, _ in _enabled_without_dump())


def command_list() -> list[tuple[str, str]]:
    """(name, description) of every command, sorted: ``kcrash help-commands``."""
    return [(n, cmd.description()) for n, cmd in _enabled_without_dump()]


def own_command_names() -> list[str]:
    """The commands kcrash implements itself (the rest fall through to drgn's)."""
    _load_all()
    return KCRASH_NAMESPACE.own_names()


def run_one(target: Target, name: str, args: list[str]) -> int:
    """``kcrash NAME VMCORE ARGS…``: run one command, say what it lacked; the exit status.

    A command error is one line and status 1; a damaged dump keeps what was printed and
    lists the facts it could not read (``kcrash: partial: …``, :data:`PARTIAL_EXIT`).
    """
    import shlex
    import sys

    from drgn.commands import CommandError

    from ..errors import PARTIAL_EXIT
    from ..textsafe import visible
    from ._render import READ_ERRORS, mode_note, unreadable

    if not sys.stdout.isatty():
        target.prog.config["crash_scroll"] = False  # no pager into pipes and files
    line = " ".join([name, *(shlex.quote(a) for a in args)])
    try:
        run(target, line)
    except CommandError as e:
        print(f"kcrash: {visible(e)}", file=sys.stderr)
        return 1
    except READ_ERRORS as e:  # a damaged dump: what was printed stands, the rest is listed
        sys.stdout.flush()
        unreadable(target, name, e)
    note = mode_note(target)
    if note:  # every command says which mode it ran in and what that lacks
        print(visible(note), file=sys.stderr)
    if target.unreadable:
        for what in target.unreadable:
            print(f"kcrash: partial: {visible(what)}", file=sys.stderr)
        return PARTIAL_EXIT
    return 0
