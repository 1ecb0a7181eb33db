"""Shared text/JSON output helpers of the crash-style commands."""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import Any

from drgn.commands import argument

JSON_ARG = argument("--json", action="store_true", help="print JSON instead of crash's text")


def _default(o: Any) -> Any:
    if dataclasses.is_dataclass(o):
        return dataclasses.asdict(o)  # type: ignore[arg-type]
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, default=_default, ensure_ascii=False)
    sys.stdout.write("\n")


def mode_note(target: Any) -> str | None:
    """One line saying what this mode lacks, printed on stderr by text commands."""
    if target.mode == "dwarf":
        return None
    what = {
        "btf": "types from the dump's BTF, symbols from kallsyms, stacks from ORC",
        "kallsyms": "no types (no BTF): symbols from kallsyms and the log only",
    }.get(target.mode, target.mode)
    lacks = target.lacks[0] if target.lacks else ""
    return f"kcrash: no vmlinux: {what}; {lacks}".rstrip("; ")
