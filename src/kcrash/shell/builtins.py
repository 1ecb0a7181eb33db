"""Commands that belong to the shell rather than to the dump: ``help``, ``py``.

Why a namespace of their own: they need the session (its Python globals,
its readers), which dump commands never see; and ``help`` must list
kcrash's namespace (ours shadowing drgn's), whereas drgn's crash ``help``
only knows drgn's.  They still go through drgn's command machinery, so
``help bt > file`` and ``py print(x) | grep y`` work like any command.
"""

from __future__ import annotations

import argparse
import types
from typing import TYPE_CHECKING, Any

import drgn
from drgn.commands import (
    Command,
    CommandError,
    CommandNamespace,
    CommandNotFoundError,
    argument,
    command,
    custom_command,
)

from .. import drgn_private
from ..commands import registry
from . import pymode

drgn_private.builtin_commands  # noqa: B018  (importing it registers "sh", which "!cmd" runs)

if TYPE_CHECKING:
    from .session import Session

_SESSION_KEY = "kcrash.shell.session"
PY_NAMES = ("py", "python", "drgn")
QUIT_NAMES = ("q", "quit", "exit")


class ShellNamespace(CommandNamespace):
    """Pages like the crash commands do, except the Python prompt."""

    def _resolve(
        self, prog: drgn.Program, line: str, kwargs: dict[str, Any]
    ) -> tuple[str, str, Command[object], str | None]:
        name, tail, cmd, _ = super()._resolve(prog, line, kwargs)
        return name, tail, cmd, None if name in PY_NAMES else drgn_private.get_pager(prog)


SHELL_NAMESPACE = ShellNamespace(func_name_prefix="_shell_cmd_")


def shell_names() -> list[str]:
    """Words the shell itself understands (for completion and ``help``)."""
    return sorted([*SHELL_NAMESPACE._commands, *QUIT_NAMES])


def attach(prog: drgn.Program, session: Session) -> None:
    prog.config[_SESSION_KEY] = session


def _session(prog: drgn.Program) -> Session:
    return prog.config[_SESSION_KEY]  # type: ignore[no-any-return]


def _all_commands(prog: drgn.Program) -> dict[str, Command[object]]:
    import kcrash.commands.all  # noqa: F401

    cmds = dict(registry.KCRASH_NAMESPACE.enabled(prog))
    cmds.update(SHELL_NAMESPACE._commands)
    for name in QUIT_NAMES:
        cmds.pop(name, None)
    return cmds


def _print_overview(prog: drgn.Program) -> None:
    names = sorted(n for n in _all_commands(prog) if n != "*")
    columns = 6
    rows = (len(names) + columns - 1) // columns
    print("Commands:")
    for row in range(rows):
        print("".join(names[i].ljust(13) for i in range(row, len(names), rows)).rstrip())
    print(
        "\n"
        "help CMD     help on one command        py [CODE]   Python: prog, task, drgn helpers\n"
        "CMD | sh     pipe output to a shell     CMD > FILE  write (>> appends) to FILE\n"
        "!CMD         run a shell command        set PID     change the current task\n"
        "history [N]  earlier commands (or h)    CMD; CMD    run one, then the other\n"
        "q, exit or Ctrl-D leave.  Tab completes commands, options, symbols, structs\n"
        "and PIDs.  Ctrl-C stops a command, not the session."
    )


def _print_help(name: str, cmd: Command[object]) -> None:
    print(f"NAME\n  {name} - {cmd.description()}\n")
    print(f"SYNOPSIS\n  {cmd.format_usage()}\n")
    body = cmd.format_help(indent="  ")
    if body.strip():
        print(f"DESCRIPTION\n{body}")


@command(
    name="help",
    description="get help on the commands",
    long_description="Without a command, list every command; with names, print their help.",
    arguments=(argument("command", nargs="*", help="command to describe"),),
    namespace=SHELL_NAMESPACE,
)
def _shell_cmd_help(prog: drgn.Program, name: str, args: argparse.Namespace, **_: Any) -> None:
    if not args.command:
        _print_overview(prog)
        return
    cmds = _all_commands(prog)
    for i, cname in enumerate(args.command):
        if i:
            print()
        cmd = cmds.get(cname)
        if cmd is None:
            try:
                cmd = registry.KCRASH_NAMESPACE.lookup(prog, cname)
            except CommandNotFoundError:
                raise CommandError(f"no command named {cname!r}") from None
        _print_help(cname, cmd)


@command(
    name="history",
    description="list the commands of this and earlier sessions",
    long_description="The last N commands from the history file (crash's ``h``).",
    arguments=(argument("n", nargs="?", type=int, default=20, help="how many (default 20)"),),
    namespace=SHELL_NAMESPACE,
)
@command(
    name="h",
    description="list the commands of this and earlier sessions",
    long_description="Same as ``history``.",
    arguments=(argument("n", nargs="?", type=int, default=20, help="how many (default 20)"),),
    namespace=SHELL_NAMESPACE,
)
def _shell_cmd_history(prog: drgn.Program, name: str, args: argparse.Namespace, **_: Any) -> None:
    from prompt_toolkit.history import FileHistory

    from .paths import history_file

    path = history_file()
    if not path.exists():
        return
    entries = list(FileHistory(str(path)).load_history_strings())  # newest first
    total = len(entries)
    shown = entries[: max(args.n, 0)]
    for i, line in enumerate(reversed(shown)):
        print(f"[{total - len(shown) + i + 1}] {line}")


def _register_py(name: str) -> None:
    @custom_command(
        name=name,
        description="run Python code, or enter Python mode (state is kept)",
        usage=f"**{name}** [*code*]",
        long_description="""
        With code, run that one Python statement, up to the first shell
        redirection or pipe.  Without, enter a Python prompt where prog,
        task (the current context), target, command() and every drgn
        helper are defined; Ctrl-D or exit() returns to kcrash and the
        variables stay for the next visit.
        """,
        parse=drgn_private.parse_py_command,
        namespace=SHELL_NAMESPACE,
    )
    def _py(
        prog: drgn.Program,
        name: str,
        code: types.CodeType | SyntaxError | None,
        **_: Any,
    ) -> None:
        session = _session(prog)
        if code is None:
            session.enter_python()
        elif isinstance(code, SyntaxError):
            raise code
        else:
            pymode.run_code(session.py_globals, prog, code)


for _name in PY_NAMES:
    _register_py(_name)
