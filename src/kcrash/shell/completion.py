"""Tab completion for the ``kcrash>`` prompt.

What is offered where (crash's commands take the same kinds of arguments):

- the first word, and the argument of ``help``: command names;
- a word starting with ``-``: that command's options;
- ``struct``/``union``/``whatis`` (first argument) and ``list``/``tree``
  after ``-s``/``-o``: struct and union names; after ``struct NAME.`` (or
  ``NAME.a,``, crash's member list) that struct's members;
- commands that take a task (``set``, ``bt``, ``ps``, ``task``, ``files``,
  ``vm``, ``sig``, ``net``, ``foreach``): PIDs, shown with their command name;
  then for ``foreach``, the commands it can run;
- any other word: kernel symbols;
- after ``>``/``>>``: file names; after ``|`` or ``!``: nothing (that part
  belongs to the system shell).
"""

from __future__ import annotations

import re
import rlcompleter
from collections.abc import Iterable, Iterator
from typing import Any

from prompt_toolkit.completion import CompleteEvent, Completer, Completion, PathCompleter
from prompt_toolkit.document import Document

from .names import Names, prefixed

PID_COMMANDS = {"set", "bt", "ps", "task", "files", "vm", "sig", "net", "foreach"}
TYPE_COMMANDS = {"struct", "union", "whatis"}
TYPE_OPTIONS = {"-s", "-o"}  # list/tree: -s struct.member, -o offset or struct.member
SET_OPTIONS = ("scroll", "radix")
# drgn 0.3.0's foreach subcommands (drgn/commands/_crash/common.py).
FOREACH_COMMANDS = ("bt", "files", "ps", "set", "sig", "task", "vm", "vtop")
_DOTTED = re.compile(r"[\w.]*$")

_TOKEN = re.compile(r"""'[^']*'?|"(?:\\.|[^"])*"?|\\.|[;|!]|>>?|[^\s;|'"\\>]+|\s+""")


def split_context(text: str) -> tuple[list[str], str, str] | None:
    """Words of the current command before the cursor, the word at the cursor
    and the operator before it (``>`` for a redirect target, else "").

    ``None`` when the cursor is in a part that the system shell will run.
    """
    words: list[str] = []
    current = ""
    redirect = ""
    shell = False
    for m in _TOKEN.finditer(text):
        tok = m.group()
        if tok == ";" and not (shell and words[:1] == ["!"]):
            words, current, redirect, shell = [], "", "", False
        elif shell:
            continue
        elif tok == "|" or (tok == "!" and not words and not current):
            shell = True
            words = [tok]
        elif tok.startswith(">"):
            if current:
                words.append(current)
            current, redirect = "", ">"
        elif tok.isspace():
            if current:
                if redirect:
                    redirect = ""
                else:
                    words.append(current)
            current = ""
        else:
            current += tok
    return None if shell else (words, current, redirect)


class ShellCompleter(Completer):
    """prompt_toolkit completer over a :class:`Names` vocabulary."""

    def __init__(self, names: Names) -> None:
        self.names = names
        self._paths = PathCompleter(expanduser=True)

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterator[Completion]:
        ctx = split_context(document.text_before_cursor)
        if ctx is None:
            return
        words, word, redirect = ctx
        if redirect:
            yield from self._paths.get_completions(Document(word), complete_event)
            return
        for text, meta in self.candidates(words, word):
            yield Completion(text, start_position=-len(word), display_meta=meta)

    def candidates(self, words: list[str], word: str) -> Iterable[tuple[str, str]]:
        """``(completion, description)`` pairs; separate from prompt_toolkit for tests."""
        if not words or words[0] == "help":
            cmds = self.names.commands()
            return [(n, d) for n, d in sorted(cmds.items()) if n.startswith(word)]
        cmd, prev = words[0], words[-1]
        if cmd in ("struct", "union") and len(words) == 1 and "." in word:
            return self._members(cmd, word)
        if word.startswith("-"):
            return [(o, "") for o in self.names.options(cmd) if o.startswith(word)]
        if (cmd in TYPE_COMMANDS and len(words) == 1) or (
            cmd in ("list", "tree") and prev in TYPE_OPTIONS
        ):
            return [(n, "struct") for n in prefixed(self.names.structs, word)]
        if cmd in PID_COMMANDS and (not word or word.isdigit()):
            return [(p, comm) for p, comm in self.names.pids if p.startswith(word)]
        if cmd == "foreach" and word.isalpha():
            return [(c, "command") for c in FOREACH_COMMANDS if c.startswith(word)]
        if cmd == "set" and len(words) == 1:
            return [(o, "option") for o in SET_OPTIONS if o.startswith(word)]
        if word and not word[0].isdigit():
            return [(s, "") for s in prefixed(self.names.symbols, word)]
        return []

    def _members(self, kind: str, word: str) -> list[tuple[str, str]]:
        """``struct task_struct.co`` -> ``…comm``; also after ``,`` (crash's ``.a,b``)."""
        tname, _, members = word.partition(".")
        prefix = members.rpartition(",")[2]
        base = word[: len(word) - len(prefix)]
        names = self.names.members(kind, tname)
        return [(base + m, "member") for m in names if m.startswith(prefix)]


class PyCompleter(Completer):
    """Completion of Python names and attributes (``task.m<Tab>``) via rlcompleter."""

    def __init__(self, ns: dict[str, Any]) -> None:
        self._rl = rlcompleter.Completer(ns)

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterator[Completion]:
        m = _DOTTED.search(document.text_before_cursor)
        word = m.group() if m else ""
        for state in range(500):
            try:
                match = self._rl.complete(word, state)
            except Exception:
                return
            if match is None:
                return
            yield Completion(match, start_position=-len(word))
