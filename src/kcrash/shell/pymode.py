"""The ``py`` Python mode: drgn's helpers on the dump, state kept between visits.

Why our own console rather than ``drgn.cli.run_interactive``: drgn's takes
fresh globals on every call (variables would be lost on the way back to the
shell) and uses readline, which would fight prompt_toolkit over the
terminal.  The namespace here is drgn's interactive defaults (``prog``,
``Object``, ``cast``, ``container_of``… and every ``drgn.helpers.linux``
helper) plus ``task`` (the shell's current context, refreshed on every
entry so ``set PID`` then ``py`` sees that task), ``target`` and
``command("bt")`` to run a shell command from Python.
"""

from __future__ import annotations

import builtins
import code
import contextlib
import sys
import types
from collections.abc import Iterator
from typing import Any

import drgn
import drgn.cli

from .reader import LineReader

BANNER = (
    "Python mode: prog, task{task}, target, command('bt') and drgn's helpers are "
    "defined;\nCtrl-D or exit() returns to kcrash with your variables kept."
)


class _Leave:
    """``exit()``/``quit()`` that leave Python mode without closing stdin.

    (site's versions close ``sys.stdin`` first, which would end a piped
    session and break prompt_toolkit.)
    """

    def __repr__(self) -> str:
        return "Use exit() or Ctrl-D to return to kcrash"

    def __call__(self, code: object = None) -> None:
        raise SystemExit(code)


def default_namespace(prog: drgn.Program) -> dict[str, Any]:
    ns = drgn.cli.default_globals(prog)
    ns["__name__"] = "__kcrash__"
    ns["exit"] = ns["quit"] = _Leave()
    return ns


def current_task(prog: drgn.Program) -> drgn.Object | None:
    """The crash context task (``set PID`` changes it), or None on a bare program."""
    from .. import drgn_private

    try:
        return drgn_private.crash_get_context(prog)
    except Exception:
        return None


@contextlib.contextmanager
def python_session(prog: drgn.Program) -> Iterator[None]:
    """drgn's default program and pretty Object display, restored afterwards."""
    old_hook = sys.displayhook
    try:
        old_prog: drgn.Program | None = drgn.get_default_prog()
    except drgn.NoDefaultProgramError:
        old_prog = None
    drgn.set_default_prog(prog)
    sys.displayhook = drgn.cli._displayhook  # formats Objects like drgn's CLI
    try:
        yield
    finally:
        sys.displayhook = old_hook
        drgn.set_default_prog(old_prog)


def refresh(ns: dict[str, Any], prog: drgn.Program) -> drgn.Object | None:
    task = current_task(prog)
    ns["task"] = task
    return task


def run_code(ns: dict[str, Any], prog: drgn.Program, code_obj: types.CodeType) -> None:
    """``py CODE``: one statement, printed like at the ``>>>`` prompt."""
    refresh(ns, prog)
    with python_session(prog):
        try:
            exec(code_obj, ns)
        except KeyboardInterrupt:
            print("KeyboardInterrupt", file=sys.stderr)
        except Exception as e:
            from .. import drgn_private

            drgn_private.print_py_command_exception(e)


def interact(ns: dict[str, Any], prog: drgn.Program, reader: LineReader, quiet: bool) -> None:
    """The ``>>>`` loop until Ctrl-D, ``exit()`` or ``quit()``."""
    task = refresh(ns, prog)
    if not quiet:
        desc = ""
        if task is not None:
            with contextlib.suppress(Exception):
                comm = task.comm.string_().decode(errors="replace")
                desc = f" (PID {task.pid.value_()}, {comm})"
        print(BANNER.format(task=desc))
    console = code.InteractiveConsole(ns, filename="<kcrash-py>")
    more = False
    with python_session(prog):
        while True:
            try:
                line = reader.read("... " if more else ">>> ")
            except EOFError:
                if not quiet:
                    print()
                break
            except KeyboardInterrupt:
                print("KeyboardInterrupt")
                console.resetbuffer()
                more = False
                continue
            if not more and line.strip() in ("exit", "quit"):
                break  # Python would only print "Use exit() or Ctrl-D"
            try:
                more = console.push(line)
            except SystemExit:
                break
    if hasattr(builtins, "_"):
        ns["_"] = builtins._
