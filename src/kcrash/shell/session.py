"""The session: read a line, run its commands, report failures in one line.

Why the loop is ours and the commands are drgn's: drgn's
``CommandNamespace.run`` already does crash's syntax (``| sh``, ``> file``,
``>> file``, ``!cmd``, pager); what a session adds is what must survive a
command: a failing command prints one line and the next prompt comes; Ctrl-C
stops the command, not the session; the Python namespace outlives ``py``.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import traceback
from collections.abc import Iterable
from typing import Any

import drgn
from drgn.commands import (
    CommandArgumentError,
    CommandError,
    CommandExitStatusError,
    CommandNotFoundError,
)

from .. import __version__
from ..commands import registry
from ..errors import KcrashError
from . import builtins, pager, pymode
from .reader import LineReader, PlainReader, PromptReader, interactive_terminal

PROMPT = "kcrash> "
_COMMAND_NAME = re.compile(r"!|[^\s|<>]+")


def split_commands(line: str) -> list[str]:
    """``"sys; bt"`` -> ``["sys", "bt"]``: ``;`` outside quotes separates commands.

    As in sh, ``log | grep x; bt`` is ``(log | grep x); bt``.  A ``!cmd``
    line is wholly the system shell's and ``py CODE`` takes the rest of the
    line as Python, so a ``;`` there is kept.
    """
    out: list[str] = []
    cur: list[str] = []
    quote = ""
    i = 0
    while i < len(line):
        c = line[i]
        if quote:
            if c == "\\" and quote == '"' and i + 1 < len(line):
                cur.append(line[i : i + 2])
                i += 2
                continue
            if c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c == "\\" and i + 1 < len(line):
            cur.append(line[i : i + 2])
            i += 2
            continue
        elif c == "!" and not "".join(cur).strip():
            cur.append(line[i:])
            break
        elif c == ";":
            words = "".join(cur).split(maxsplit=1)
            if words and words[0] in builtins.PY_NAMES:
                cur.append(line[i:])
                break
            out.append("".join(cur))
            cur = []
            i += 1
            continue
        cur.append(c)
        i += 1
    out.append("".join(cur))
    return [c.strip() for c in out if c.strip()]


def describe_error(e: BaseException, name: str) -> str:
    """One line for a failed command; the full story only with KCRASH_DEBUG=1."""
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    if isinstance(e, CommandExitStatusError) and e.exit_status in (-signal.SIGINT, 130):
        return "interrupted"
    if isinstance(e, (CommandArgumentError, CommandNotFoundError, CommandExitStatusError)):
        return msg
    if isinstance(e, SyntaxError):
        return f"{name}: syntax error: {e.msg}" if name else f"syntax error: {e.msg}"
    if isinstance(e, (KcrashError, CommandError, LookupError, ValueError, OSError)):
        return f"{name}: {msg or type(e).__name__}"
    if isinstance(e, drgn.FaultError):
        return f"{name}: {msg}"
    return f"{name}: internal error: {type(e).__name__}: {msg} (KCRASH_DEBUG=1 for details)"


class Session:
    """One opened dump, the shell's state on it, and how to run a line."""

    def __init__(self, target: Any, *, interactive: bool) -> None:
        self.target = target
        self.prog: drgn.Program = target.prog
        self.interactive = interactive
        self.failures = 0
        self.reader: LineReader = PlainReader()
        self._py_reader: LineReader | None = None
        registry.attach_target(target)
        builtins.attach(self.prog, self)
        _fold_argparse_usage()
        self._py_globals: dict[str, Any] | None = None

    @property
    def py_globals(self) -> dict[str, Any]:
        """Python mode's namespace, built on first use (importing every drgn
        helper costs ~150 ms that ``-c sys`` should not pay)."""
        if self._py_globals is None:
            ns = pymode.default_namespace(self.prog)
            ns["target"] = self.target
            ns["command"] = self.command
            self._py_globals = ns
        return self._py_globals

    # -- running ------------------------------------------------------------

    def command(self, line: str) -> None:
        """``command("bt -a")`` from Python mode: run shell commands."""
        self.run_line(line)

    def run_line(self, line: str) -> bool:
        """Run every command of one input line; False when the user asked to leave."""
        return all(self.run_one(part) for part in split_commands(line))

    def run_one(self, line: str) -> bool:
        line = line.strip()
        if not line or line.startswith("#"):
            return True
        name = _COMMAND_NAME.match(line).group()  # type: ignore[union-attr]
        if name in builtins.QUIT_NAMES:
            return False
        ns = builtins.SHELL_NAMESPACE if name in builtins.SHELL_NAMESPACE._commands else None
        try:
            if ns is None:
                registry.run(self.target, line, onerror=lambda e: self._failed(e, name))
            else:
                ns.run(
                    self.prog,
                    line,
                    globals=self.py_globals,
                    onerror=lambda e: self._failed(e, name),
                )
        except KeyboardInterrupt:
            self._failed(KeyboardInterrupt(), name)
        except SystemExit:
            return False
        except Exception as e:  # resolution errors raised before onerror applies
            self._failed(e, name)
        finally:
            _flush()
        return True

    def _failed(self, e: BaseException, name: str) -> None:
        self.failures += 1
        _flush()
        if isinstance(e, KeyboardInterrupt):
            print("kcrash: interrupted", file=sys.stderr)
            return
        msg = describe_error(e, name)
        if isinstance(e, CommandArgumentError) and (usage := self._usage(name)):
            msg += f"; usage: {usage}"
        print(f"kcrash: {msg}", file=sys.stderr)
        if os.environ.get("KCRASH_DEBUG"):
            traceback.print_exception(e)

    def _usage(self, name: str) -> str:
        for ns in (builtins.SHELL_NAMESPACE, registry.KCRASH_NAMESPACE):
            try:
                return " ".join(ns.lookup(self.prog, name).format_usage().split())
            except Exception:
                continue
        return ""

    def run_lines(self, lines: Iterable[str]) -> bool:
        return all(self.run_line(line) for line in lines)

    # -- interactive ---------------------------------------------------------

    def loop(self, reader: LineReader) -> None:
        """Read and run lines until EOF or ``q``."""
        self.reader = reader
        while True:
            try:
                line = reader.read(PROMPT)
            except EOFError:
                if self.interactive:
                    print()
                return
            except KeyboardInterrupt:
                continue  # as in bash: Ctrl-C at the prompt discards the line
            if not self.run_line(line):
                return

    def enter_python(self) -> None:
        if self._py_reader is None:
            if self.interactive:
                from .completion import PyCompleter
                from .paths import py_history_file

                self._py_reader = PromptReader(py_history_file(), PyCompleter(self.py_globals))
            else:
                self._py_reader = self.reader  # the rest of stdin is Python now
        pymode.interact(self.py_globals, self.prog, self._py_reader, quiet=not self.interactive)

    def banner(self) -> None:
        t = self.target
        where = t.dump.path if hasattr(t, "dump") else ""
        print(f"kcrash {__version__}: {where} ({t.release or 'unknown release'}, {t.mode} mode)")
        for lack in getattr(t, "lacks", []):
            print(f"note: {lack}", file=sys.stderr)
        print('Type "help" for commands, "py" for Python, "q" to leave.\n')


def _fold_argparse_usage() -> None:
    """argparse prints the usage line before its error; the shell folds it into
    its one error line instead (see :meth:`Session._failed`).

    Patches drgn 0.3.0's private parser class, in the shell's process only:
    one-shot ``kcrash bt …`` keeps argparse's usual two lines.
    """
    from .. import drgn_private

    parser_class = drgn_private.DrgnCommandArgumentParser
    parser_class.print_usage = lambda self, file=None: None


def _isatty(f: Any) -> bool:
    try:
        return bool(f.isatty())
    except (AttributeError, ValueError):
        return False


def _flush() -> None:
    for f in (sys.stdout, sys.stderr):
        with contextlib.suppress(BrokenPipeError, ValueError):
            f.flush()


def run_session(
    target: Any,
    *,
    commands: list[str] | None = None,
    script: str | None = None,
) -> int:
    """``kcrash shell``: -c commands and exit, or -i FILE then the prompt, or the prompt.

    Exit status: 0 for an interactive session; otherwise 1 if any command
    failed, so ``kcrash VMCORE -c "sys; bt"`` can be scripted.
    """
    # cli.main sets SIGPIPE to SIG_DFL for one-shot commands; in a session,
    # `log | head` must end `head`'s reader with EPIPE, not kill the shell.
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    interactive = interactive_terminal() and not commands
    if interactive:
        # Ctrl-C must stop a command even when kcrash was started with SIGINT ignored (a
        # script's background job, nohup, some CI runners): Python installs its
        # KeyboardInterrupt handler only when SIGINT is at its default at start-up.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    pager.configure(target.prog)
    session = Session(target, interactive=interactive)
    try:
        if commands:
            for line in commands:
                if not session.run_line(line):
                    break
            return 1 if session.failures else 0
        if script is not None:
            try:
                with open(script) as f:
                    lines = f.read().splitlines()
            except OSError as e:
                raise KcrashError(f"-i {script}: {e.strerror}") from None
            if not session.run_lines(lines):
                return 1 if session.failures else 0
        if interactive:
            from .completion import ShellCompleter
            from .names import Names
            from .paths import history_file

            reader: LineReader = PromptReader(
                history_file(), ShellCompleter(Names(target.prog, builtins.shell_names))
            )
            session.banner()
            if script is None:
                session.run_one("sys")
        else:
            # `kcrash VMCORE > out` typed at a terminal: prompt on stderr, not in out
            reader = PlainReader(prompt_to=sys.stderr if _isatty(sys.stdin) else None)
        session.loop(reader)
        return 0 if interactive else (1 if session.failures else 0)
    finally:
        _quiet_broken_stdout()


def _quiet_broken_stdout() -> None:
    """``kcrash VMCORE -c log | head``: no 'Exception ignored … BrokenPipeError'."""
    try:
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
