"""Shared text/JSON output helpers of the crash-style commands."""

from __future__ import annotations

import dataclasses
from typing import Any

import drgn
from drgn.commands import argument

from ..textsafe import json_dumps, write_trusted

JSON_ARG = argument("--json", action="store_true", help="print JSON instead of crash's text")


def _default(o: Any) -> Any:
    if dataclasses.is_dataclass(o):
        return dataclasses.asdict(o)  # type: ignore[arg-type]
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def print_json(obj: Any) -> None:
    # exact values; C1 and bidi controls written as \uXXXX (kcrash.textsafe)
    write_trusted(json_dumps(obj, indent=2, default=_default) + "\n")


#: What reading a damaged dump raises: a missing page, a missing symbol, garbage values.
READ_ERRORS = (drgn.FaultError, LookupError, ValueError, OverflowError)


def unreadable(target: Any, what: str, e: BaseException) -> None:
    """Record a fact the command could not read; the CLI lists them and exits partial."""
    from ..facts.system import read_error

    target.unreadable.append(f"{what}: {read_error(e)}")


def mode_note(target: Any) -> str | None:
    """One line saying what this mode lacks, printed on stderr by text commands."""
    if target.mode == "dwarf":
        return None
    from ..target.nodebug import is_arm64

    stacks = "frame records" if is_arm64(target.prog) else "ORC"
    what = {
        "btf": f"types from the dump's BTF, symbols from kallsyms, stacks from {stacks}",
        "kallsyms": "no types (no BTF): symbols from kallsyms and the log only",
    }.get(target.mode, target.mode)
    lacks = target.lacks[0] if target.lacks else ""
    return f"kcrash: no vmlinux: {what}; {lacks}".rstrip("; ")
