"""``mod``: loaded modules like crash's, with taint letters and ``--json``."""

from __future__ import annotations

import argparse
from typing import Any

from drgn import Program
from drgn.commands import argument

from ..facts.modules import loaded_modules
from ..textsafe import visible
from ._render import JSON_ARG, print_json
from .registry import kcrash_command, target_of


@kcrash_command(
    description="loaded kernel modules (crash's mod)",
    arguments=(
        argument("-S", dest="load_all", action="store_true", help="load every module's debuginfo"),
        JSON_ARG,
    ),
)
def _kcrash_cmd_mod(prog: Program, name: str, args: argparse.Namespace, **kwargs: Any) -> None:
    if args.load_all:
        target_of(prog).load_module_debuginfo()
    errors: list[str] = []
    mods = loaded_modules(prog, errors)
    target_of(prog).unreadable.extend(f"mod: {e}" for e in errors)
    if args.json:
        print_json([{**m.__dict__, "out_of_tree": m.out_of_tree} for m in mods])
        return
    print("     MODULE       NAME                         BASE          SIZE  OBJECT FILE")
    for m in mods:
        addr = f"{m.address:016x}" if m.address else "-" * 16
        base = f"{m.base:016x}" if m.base else "-" * 16
        obj = m.object_file or "(not loaded)  [CONFIG_KALLSYMS]"
        print(f"{addr}  {visible(m.name):<22} {base} {m.size or 0:>7}  {visible(obj)}")
