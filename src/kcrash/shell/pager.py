"""Pager policy: page long output, only on a terminal.

drgn's crash namespace pipes every command's output to ``prog.config
["crash_pager"]`` (default ``less -E -X``) whenever stdout is a file
descriptor, even a pipe or a file.  The shell decides instead:

- stdout is not a terminal: no pager at all (``crash_scroll`` off), so
  ``kcrash VMCORE -c log > out`` and piped sessions get plain text;
- a terminal: ``less -F -R -X -K``: ``-F`` exits at once when the output
  fits on one screen, so short output is never paged; ``-X`` leaves it on
  the screen; ``-K`` makes Ctrl-C leave the pager as well as the command;
- ``KCRASH_PAGER`` overrides the command ("" or ``cat`` turns paging off);
  crash's ``set scroll off|on|less|more`` keeps working on top of that.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys

import drgn


def choose_pager() -> str | None:
    env = os.environ.get("KCRASH_PAGER")
    if env is not None:
        return env if env.strip() and env.strip() != "cat" else None
    less = shutil.which("less")
    if less:
        return f"{shlex.quote(less)} -F -R -X -K"
    more = shutil.which("more")
    return shlex.quote(more) if more else None


def configure(prog: drgn.Program, stdout_is_tty: bool | None = None) -> None:
    """Set drgn's crash pager options on ``prog`` for this session."""
    if stdout_is_tty is None:
        try:
            stdout_is_tty = sys.stdout.isatty()
        except (AttributeError, ValueError):
            stdout_is_tty = False
    pager = choose_pager() if stdout_is_tty else None
    prog.config["crash_scroll"] = pager is not None
    prog.config["crash_pager"] = pager
