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
from .errors import PARTIAL_EXIT, KcrashError
from .textsafe import visible

TARGET_OPTIONS_HELP = """\
target options (any position):
  --debuginfo DIR    also search DIR for vmlinux and module debug files
  --no-debuginfo     ignore DWARF; use BTF + kallsyms + ORC from the dump
  --live             analyze the running kernel (/proc/kcore)
  --qemu SOCKET      analyze a running QEMU guest over its QMP socket (live)
"""


def _split_target_options(argv: list[str]) -> tuple[dict[str, object], list[str]]:
    """Pull kcrash's target options out of a crash-command argv."""
    opts: dict[str, object] = {"debuginfo_dirs": [], "no_debuginfo": False, "live": False}
    rest: list[str] = []
    it = iter(argv)
    for a in it:
        if a == "--debuginfo":
            opts["debuginfo_dirs"].append(next(it, ""))  # type: ignore[union-attr]
        elif a.startswith("--debuginfo="):
            opts["debuginfo_dirs"].append(a.split("=", 1)[1])  # type: ignore[union-attr]
        elif a == "--no-debuginfo":
            opts["no_debuginfo"] = True
        elif a == "--live":
            opts["live"] = True
        elif a == "--qemu":
            opts["qemu"] = next(it, "")
        elif a.startswith("--qemu="):
            opts["qemu"] = a.split("=", 1)[1]
        else:
            rest.append(a)
    return opts, rest


def _looks_like_elf(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF" and not _is_core(path)
    except OSError:
        return False


def _is_core(path: str) -> bool:
    with open(path, "rb") as f:
        head = f.read(18)
    return len(head) == 18 and int.from_bytes(head[16:18], "little") == 4  # ET_CORE


def open_from_args(argv: list[str]):  # type: ignore[no-untyped-def]
    """``VMCORE [VMLINUX] rest…`` (plus target options) -> (Target, rest)."""
    from .target.open import open_target

    opts, rest = _split_target_options(argv)
    # VMCORE is the first argument that is not an option; VMLINUX, when given,
    # is the next one if it is an ELF executable.  Command options may come
    # before or after them, as in `kcrash bt -l vmcore` or `kcrash bt vmcore -a`.
    vmcore = "/proc/kcore" if opts["live"] else None
    if opts.get("qemu"):
        vmcore = f"qmp:{opts['qemu']}"
    vmlinux = None
    keep: list[str] = []
    for a in rest:
        if vmcore is None and not a.startswith("-"):
            vmcore = a
        elif vmlinux is None and not a.startswith("-") and os.path.isfile(a) and _looks_like_elf(a):
            vmlinux = a
        else:
            keep.append(a)
    if vmcore is None:
        raise KcrashError("missing VMCORE (or --live)")
    rest = keep
    target = open_target(
        vmcore,
        vmlinux,
        debuginfo_dirs=opts["debuginfo_dirs"],  # type: ignore[arg-type]
        no_debuginfo=bool(opts["no_debuginfo"]),
    )
    return target, rest


def _run_crash_command(name: str, argv: list[str]) -> int:
    from drgn.commands import CommandError

    from .commands import registry

    target, rest = open_from_args(argv)
    if not sys.stdout.isatty():
        target.prog.config["crash_scroll"] = False  # no pager into pipes and files
    line = " ".join([name, *(_quote(a) for a in rest)])
    from .commands._render import READ_ERRORS, mode_note, unreadable

    try:
        registry.run(target, line)
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


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


def _usage() -> str:
    import kcrash.commands.all  # noqa: F401

    from .commands import registry
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
        "kcrash's own dump commands: " + ", ".join(registry.KCRASH_NAMESPACE.own_names()),
        "every crash command of drgn is also available (kcrash help-commands lists them)",
        "",
        TARGET_OPTIONS_HELP,
    ]
    return "\n".join(lines)


def _is_command(name: str) -> bool:
    """A crash-style command name (ours or drgn's), checked before any path."""
    import drgn

    import kcrash.commands.all  # noqa: F401

    from .commands import registry

    return any(n == name for n, _ in registry.KCRASH_NAMESPACE.enabled(drgn.Program()))


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
    if name == "help-commands":
        import drgn

        import kcrash.commands.all  # noqa: F401

        from .commands import registry

        for cname, cmd in registry.KCRASH_NAMESPACE.enabled(drgn.Program()):
            print(f"{cname:<12} {cmd.description()}")
        return 0
    if not _is_command(name) and (os.path.exists(name) or name.startswith("-")):
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
