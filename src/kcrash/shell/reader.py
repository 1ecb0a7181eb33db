"""Line input: prompt_toolkit on a terminal, plain lines from a pipe or file.

Why two readers: prompt_toolkit needs a terminal on both stdin and stdout
(it warns and misbehaves otherwise), while ``echo sys | kcrash VMCORE`` or
``kcrash VMCORE < cmds`` must simply read one command per line with no prompt
and no escape sequences in the output.  Both raise ``EOFError`` at the end
and ``KeyboardInterrupt`` on Ctrl-C, so the session loop handles them alike.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, Protocol

from .paths import ensure_parent


class LineReader(Protocol):
    def read(self, prompt: str) -> str:
        """One line without its newline; ``EOFError`` at the end of input."""
        ...


class PlainReader:
    """Lines from a stream (stdin by default); prompts only if asked to show them."""

    def __init__(self, stream: IO[str] | None = None, prompt_to: IO[str] | None = None) -> None:
        self._stream = stream
        self._prompt_to = prompt_to

    def read(self, prompt: str) -> str:
        stream = self._stream if self._stream is not None else sys.stdin
        if self._prompt_to is not None:
            self._prompt_to.write(prompt)
            self._prompt_to.flush()
        line = stream.readline()
        if not line:
            raise EOFError
        return line.rstrip("\n")


class PromptReader:
    """prompt_toolkit with a persistent history file and a completer.

    The history file is written after every accepted line (prompt_toolkit's
    ``FileHistory`` appends immediately), so a session killed by the end of a
    maintenance window still leaves its commands behind.
    """

    def __init__(self, history: Path, completer: object | None = None) -> None:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory, InMemoryHistory

        if ensure_parent(history):
            hist: FileHistory | InMemoryHistory = FileHistory(str(history))
        else:
            print(
                f"kcrash: cannot write history file {history}; history is not kept", file=sys.stderr
            )
            hist = InMemoryHistory()
        self._session: PromptSession[str] = PromptSession(
            history=hist,
            completer=completer,  # type: ignore[arg-type]
            complete_in_thread=True,  # first symbol/struct completion loads names
            complete_while_typing=False,
            enable_history_search=False,
        )

    def read(self, prompt: str) -> str:
        return self._session.prompt(prompt)


def interactive_terminal() -> bool:
    """Both ends are a terminal: the only case where prompt_toolkit is used."""
    try:
        return sys.stdin.isatty() and sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False
