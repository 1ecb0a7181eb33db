"""The entry layer: the target arguments of every tool, declared once, opened once.

Why one module: ``kcrash sys VMCORE``, ``kcrash analyze VMCORE``, ``kcrash shell VMCORE``
and ``kcrash batch DIR`` all open dumps, and each used to declare its own subset of the
target options (the shell had no ``--qemu``, ``analyze`` no ``--live``).  Here the options
are one TABLE (:data:`TARGET_OPTIONS`, a row per option with its reason), read both by
argparse-based tools (:func:`add_target_arguments`) and by the crash-style commands, whose
free-form argv is split by hand because their own options belong to drgn's parser
(:func:`split_target_options`).  Opening — which word is VMCORE, which is VMLINUX — is
:func:`open_from_words`, so every tool opens a dump exactly as ``kcrash sys`` does.

This sits above ``target`` (it calls :func:`kcrash.target.open.open_target`) and below
``cli`` and ``tools``; nothing here prints.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .errors import KcrashError

if TYPE_CHECKING:
    from .target.open import Target


@dataclass(frozen=True)
class TargetOption:
    """One target option: its flag, where argparse stores it, its value's name, its help."""

    flag: str
    dest: str
    metavar: str | None  # None: a switch without a value
    help: str
    #: A live source instead of a dump file: not offered where only files make sense
    #: (``batch`` analyzes many dump files; a running kernel is one).
    live: bool = False
    #: The option may be given more than once; every value is kept, in order.
    repeat: bool = False


TARGET_OPTIONS: tuple[TargetOption, ...] = (
    # A vmlinux found nowhere standard (a build tree, a copied -dbg package); may repeat.
    TargetOption(
        "--debuginfo",
        "debuginfo",
        "DIR",
        "also search DIR for vmlinux and module debug files",
        repeat=True,
    ),
    # DWARF that is wrong or too slow to index: the dump's own BTF/kallsyms/ORC still answer.
    TargetOption(
        "--no-debuginfo",
        "no_debuginfo",
        None,
        "ignore DWARF; use BTF + kallsyms + ORC from the dump",
    ),
    # The running kernel, read as crash reads it (root; drgn's /proc/kcore support).
    TargetOption("--live", "live", None, "analyze the running kernel (/proc/kcore)", live=True),
    # A guest's memory over QMP, without stopping it (drgn's set_qemu_qmp).
    TargetOption(
        "--qemu",
        "qemu",
        "SOCKET",
        "analyze a running QEMU guest over its QMP socket (live)",
        live=True,
    ),
)


def options_help() -> str:
    """The "target options" paragraph of ``kcrash --help``, from the table."""
    rows = [(o.flag + (f" {o.metavar}" if o.metavar else ""), o.help) for o in TARGET_OPTIONS]
    width = max(len(flag) for flag, _ in rows) + 3
    lines = [f"  {flag:<{width}} {text}" for flag, text in rows]
    return "target options (any position):\n" + "\n".join(lines) + "\n"


@dataclass
class TargetArgs:
    """What the target options said, however they were parsed."""

    debuginfo: list[str] = field(default_factory=list)
    no_debuginfo: bool = False
    live: bool = False
    qemu: str | None = None

    def source(self) -> str | None:
        """The live source named by the options (``/proc/kcore``, ``qmp:SOCKET``), if any."""
        if self.qemu:
            return f"qmp:{self.qemu}"
        return "/proc/kcore" if self.live else None


def add_target_arguments(p: argparse.ArgumentParser, *, live: bool = True) -> None:
    """Declare the target options on an argparse parser (``live=False``: dump files only)."""
    for o in TARGET_OPTIONS:
        if o.live and not live:
            continue
        if o.metavar is None:
            p.add_argument(o.flag, dest=o.dest, action="store_true", help=o.help)
        elif o.dest == "debuginfo":  # may repeat: every DIR is searched
            p.add_argument(
                o.flag, dest=o.dest, action="append", default=[], metavar=o.metavar, help=o.help
            )
        else:
            p.add_argument(o.flag, dest=o.dest, metavar=o.metavar, help=o.help)


def target_args(ns: argparse.Namespace) -> TargetArgs:
    """The :class:`TargetArgs` of a namespace filled by :func:`add_target_arguments`."""
    return TargetArgs(
        debuginfo=list(getattr(ns, "debuginfo", None) or []),
        no_debuginfo=bool(getattr(ns, "no_debuginfo", False)),
        live=bool(getattr(ns, "live", False)),
        qemu=getattr(ns, "qemu", None) or None,
    )


def split_target_options(argv: list[str]) -> tuple[TargetArgs, list[str]]:
    """Pull the target options out of a crash-command argv, in any position.

    By hand rather than argparse: the rest (``-a``, ``-l``, ``| grep``…) is the command's
    own, parsed later by drgn, and argparse would reorder it or take ``-`` words for ours.
    """
    args = TargetArgs()
    by_flag = {o.flag: o for o in TARGET_OPTIONS}
    rest: list[str] = []
    it = iter(argv)
    for a in it:
        flag, eq, value = a.partition("=")
        o = by_flag.get(flag)
        if o is None or (eq and o.metavar is None):
            rest.append(a)
            continue
        if o.metavar is None:
            setattr(args, o.dest, True)
            continue
        value = value if eq else next(it, "")
        if o.repeat:
            getattr(args, o.dest).append(value)
        else:
            setattr(args, o.dest, value)
    return args, rest


def looks_like_elf(path: str) -> bool:
    """An ELF file that is not a core: a vmlinux (how ``VMCORE VMLINUX`` are told apart)."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF" and not _is_core(path)
    except OSError:
        return False


def _is_core(path: str) -> bool:
    with open(path, "rb") as f:
        head = f.read(18)
    return len(head) == 18 and int.from_bytes(head[16:18], "little") == 4  # ET_CORE


def crash_order(files: list[str]) -> list[str]:
    """Accept crash's ``VMLINUX VMCORE`` order too: muscle memory from ``crash``."""
    if len(files) == 2 and looks_like_elf(files[0]) and not looks_like_elf(files[1]):
        return [files[1], files[0]]
    return files


def pick_files(args: TargetArgs, words: list[str]) -> tuple[str, str | None, list[str]]:
    """``VMCORE [VMLINUX]`` among ``words`` -> (vmcore, vmlinux, the other words).

    VMCORE is the first word that is not an option (or the live source); VMLINUX, when
    given, the next one that is an ELF executable.  Command options may come before or
    after them, as in ``kcrash bt -l vmcore`` or ``kcrash bt vmcore -a``.
    """
    vmcore = args.source()
    vmlinux = None
    keep: list[str] = []
    for a in words:
        if vmcore is None and not a.startswith("-"):
            vmcore = a
        elif vmlinux is None and not a.startswith("-") and os.path.isfile(a) and looks_like_elf(a):
            vmlinux = a
        else:
            keep.append(a)
    if vmcore is None:
        raise KcrashError("missing VMCORE (or --live)")
    return vmcore, vmlinux, keep


def open_from_words(args: TargetArgs, words: list[str]) -> tuple[Target, list[str]]:
    """Open the target that ``args`` and ``VMCORE [VMLINUX]`` in ``words`` name.

    Returns the target and the words that were neither (a command's own arguments).
    """
    from .target.open import open_target

    vmcore, vmlinux, rest = pick_files(args, words)
    target = open_target(
        vmcore, vmlinux, debuginfo_dirs=args.debuginfo, no_debuginfo=args.no_debuginfo
    )
    return target, rest


def open_from_argv(argv: list[str]) -> tuple[Target, list[str]]:
    """``VMCORE [VMLINUX] rest…`` plus target options in any position -> (Target, rest)."""
    args, words = split_target_options(argv)
    return open_from_words(args, words)
