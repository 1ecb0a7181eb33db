"""Every private name of drgn that kcrash relies on, fenced in this one module.

drgn is pinned (``drgn==0.3.0`` in pyproject.toml) because kcrash uses a few of its
internals where the public API has no equivalent yet. Each row of :data:`PRIVATE` says
where the name lives and why kcrash needs it; the rest of kcrash imports them from here
only (``from kcrash.drgn_private import CrashCommandNamespace``), lazily, so that the
analysis path does not import drgn's command modules it does not use.
``tests/test_drgn_private.py`` imports every row: a drgn upgrade that moves or renames one
fails there, in one obvious place, instead of deep inside a command.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

#: kcrash name -> (drgn module, attribute or "" for the module itself, why kcrash uses it).
PRIVATE: dict[str, tuple[str, str, str]] = {
    "CrashCommandNamespace": (
        "drgn.commands._crash.common",
        "_CrashCommandNamespace",
        "base of kcrash's command namespace: crash's syntax (!cmd, *struct, struct.member) "
        "comes with it unchanged",
    ),
    "CRASH_COMMAND_NAMESPACE": (
        "drgn.commands._crash",
        "CRASH_COMMAND_NAMESPACE",
        "drgn's ~40 crash commands, which every name kcrash does not define falls through to",
    ),
    "crash_foreach_subcommands": (
        "drgn.commands._crash.common",
        "_CRASH_FOREACH_SUBCOMMANDS",
        "`foreach bt` is kcrash's own bt per task (drgn's took 5 ms a task, 50 s of CPU for "
        "10,000 tasks); the rest of `foreach` (its task selection, the other subcommands) "
        "stays drgn's",
    ),
    "get_pager": (
        "drgn.commands._crash.common",
        "_get_pager",
        "the shell pages long output the way drgn's crash commands do",
    ),
    "crash_get_context": (
        "drgn.commands._crash.common",
        "crash_get_context",
        "the task `set PID` selected, for the shell's Python mode",
    ),
    "parse_py_command": (
        "drgn.commands",
        "_parse_py_command",
        "the shell's `py` command parses its argument as drgn's does",
    ),
    "print_py_command_exception": (
        "drgn.commands",
        "_print_py_command_exception",
        "a failing `py` line prints drgn's short traceback, not the shell's",
    ),
    "DrgnCommandArgumentParser": (
        "drgn.commands",
        "_DrgnCommandArgumentParser",
        "the shell folds argparse's usage line into its one error line (patched in the "
        "shell's process only)",
    ),
    "builtin_commands": (
        "drgn.commands._builtin",
        "",
        "registers drgn's `sh`, which crash's `!cmd` runs",
    ),
    "plugins": (
        "_drgn_util.plugins",
        "",
        "drgn imports its plugins at the first set_core_dump: batch's fork server imports "
        "them once so every per-dump child starts warm, and defer_command_plugins loads "
        "the list without drgn's command modules",
    ),
    "slab_cpu_walk": (
        "drgn.helpers.linux.slab",
        "for_each_online_cpu",
        "drgn's slab helpers walk the per-CPU slabs of the *online* CPUs, looked up in that "
        "module: a panic takes the other CPUs offline, so kcrash rebinds it to the possible "
        "CPUs while it reads a dump (kcrash.facts.slab.every_cpu)",
    ),
    "x86_64_stack_ranges": (
        "drgn.helpers.linux.stack",
        "_x86_64_stack_ranges",
        "a CPU's IRQ/exception/NMI stacks, to say which stack each frame is on and to find "
        "the kdump NMI path",
    ),
    "load_builtin_kallsyms": (
        "_drgn",
        "_linux_helper_load_builtin_kallsyms",
        "drgn's kallsyms decoder, run over tables kcrash locates itself in dumps whose "
        "VMCOREINFO lacks them",
    ),
}


def __getattr__(name: str) -> Any:
    """Resolve a row of :data:`PRIVATE` on first use (PEP 562)."""
    try:
        module, attr, _why = PRIVATE[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    mod = importlib.import_module(module)
    value = getattr(mod, attr) if attr else mod
    globals()[name] = value
    return value


#: drgn's own plugins: each only registers commands when imported (no hook function), so
#: importing it later, where a command is run, is the same as loading it as a plugin.
COMMAND_PLUGINS = ("builtin_commands", "crash_commands")


def defer_command_plugins() -> None:
    """Load drgn's plugins now without its command modules (before the first set_core_dump).

    Why: drgn 0.3.0 imports every plugin at a process's first ``set_core_dump`` to call its
    ``drgn_prog_set`` hook; its own two plugins have no hook and only register the crash
    and builtin commands on import (0.2-0.4 s, a sixth of a ``--no-debuginfo`` analyze).
    The shell and the commands that run drgn's commands import those modules themselves
    (``CRASH_COMMAND_NAMESPACE``, ``builtin_commands`` above), so nothing is lost; a user's
    own plugins still load, through drgn's ``DRGN_DISABLE_PLUGINS`` list. Once per process:
    drgn keeps the list it loaded.
    """
    registry = __getattr__("plugins")
    if registry._plugins is not None:
        return
    old = os.environ.get("DRGN_DISABLE_PLUGINS")
    if old == "*":
        return  # drgn already skips them all
    os.environ["DRGN_DISABLE_PLUGINS"] = ",".join(filter(None, (old, *COMMAND_PLUGINS)))
    try:
        registry._plugins = registry._load_plugins()
    finally:
        if old is None:
            del os.environ["DRGN_DISABLE_PLUGINS"]
        else:
            os.environ["DRGN_DISABLE_PLUGINS"] = old


def modules() -> list[str]:
    """The drgn modules behind :data:`PRIVATE` (to preload them)."""
    return sorted({module for module, _attr, _why in PRIVATE.values()})
