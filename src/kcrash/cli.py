"""Command-line entry point: dispatch only.

Forms::

    kcrash analyze VMCORE|LOGFILE|- [VMLINUX] [--format …] [--lang …]
    kcrash <crash-command> VMCORE [VMLINUX] [command args…]   # sys, bt, log, ps, mod, …
    kcrash VMCORE [VMLINUX] [-c "sys; bt"]                     # interactive shell
    kcrash shell|batch|doctor|debuginfo …                      # other tools

Errors the operator can fix print one line ``kcrash: …`` and exit 2; a bug
prints one line too (set ``KCRASH_DEBUG=1`` for the traceback) and exits 3.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence

from . import __version__
from .errors import KcrashError
from .textsafe import visible


def _run_crash_command(name: str, argv: list[str]) -> int:
    from .commands.registry import run_one
    from .entry import open_from_argv

    target, rest = open_from_argv(argv)
    return run_one(target, name, rest)


def _usage() -> str:
    from .commands import registry
    from .entry import options_help
    from .tools import load_all

    tools = load_all()
    lines = [
        f"kcrash {__version__}: why did this Linux kernel crash?",
        "",
        "usage: kcrash analyze VMCORE|LOGFILE|- [VMLINUX] [--format text|markdown|json|html] "
        "[--lang en|zh]",
        "       kcrash COMMAND VMCORE [VMLINUX] [ARGS…]   crash-compatible commands",
        "       kcrash VMCORE [VMLINUX] [-c 'CMD; CMD']     interactive shell",
        "",
        "tools:",
        *(f"  {t.name:<10} {t.help}" for t in sorted(tools.values(), key=lambda t: t.name)),
        "",
        "kcrash's own dump commands: " + ", ".join(registry.own_command_names()),
        "every crash command of drgn is also available (kcrash help-commands lists them)",
        "",
        options_help(),
    ]
    return "\n".join(lines)


def _dispatch(argv: list[str]) -> int:
    from .tools import load_all

    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0 if argv else 2
    if argv[0] == "--version":
        print(f"kcrash {__version__}")
        return 0
    tools = load_all()
    name = argv[0]
    if name in tools:
        t = tools[name]
        p = argparse.ArgumentParser(prog=f"kcrash {name}", description=t.help)
        t.configure(p)
        args = p.parse_args(argv[1:])
        return t.run(args)
    from .commands import registry

    if name == "help-commands":
        for cname, description in registry.command_list():
            print(f"{cname:<12} {description}")
        return 0
    if not registry.is_command(name) and (os.path.exists(name) or name.startswith("-")):
        # "kcrash VMCORE [VMLINUX]" opens the shell, as "crash vmlinux vmcore" does.
        if "shell" in tools:
            return _dispatch(["shell", *argv])
        raise KcrashError("the interactive shell is not available in this build")
    return _run_crash_command(name, argv[1:])


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kcrash`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `kcrash log … | head` stays quiet
    try:
        return _dispatch(argv)
    except KcrashError as e:  # messages name files and quote dumps: shown, never emitted raw
        print(f"kcrash: {visible(e)}", file=sys.stderr)
        return e.exit_status
    except KeyboardInterrupt:
        print("kcrash: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug: still one line unless asked for more
        if os.environ.get("KCRASH_DEBUG"):
            raise
        first = visible(str(e).splitlines()[0]) if str(e) else ""
        print(
            f"kcrash: internal error: {type(e).__name__}: {first} (KCRASH_DEBUG=1 for details)",
            file=sys.stderr,
        )
        return 3


if __name__ == "__main__":
    sys.exit(main())
