"""Top-level tools: ``kcrash analyze``, ``shell``, ``batch``, ``doctor``, …

Each tool is one module here that registers itself with :func:`tool`; the CLI
imports every module of this package, so adding a tool touches no other file.
(Crash-style commands on an opened dump, such as ``sys`` or ``bt``, live in
:mod:`kcrash.commands` instead.)
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Tool:
    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


TOOLS: dict[str, Tool] = {}


def tool(name: str, help: str):  # type: ignore[no-untyped-def]
    """Class-free registration: decorate ``configure(parser)``; it returns ``run``.

    Usage::

        @tool("doctor", "is this host ready to capture a crash dump?")
        def configure(p: argparse.ArgumentParser) -> Callable[[Namespace], int]:
            p.add_argument(...)
            return run
    """

    def deco(configure):  # type: ignore[no-untyped-def]
        holder: dict[str, Callable[[argparse.Namespace], int]] = {}

        def _configure(p: argparse.ArgumentParser) -> None:
            holder["run"] = configure(p)

        TOOLS[name] = Tool(name, help, _configure, lambda a: holder["run"](a))
        return configure

    return deco


def load_all() -> dict[str, Tool]:
    for info in pkgutil.iter_modules(__path__, __name__ + "."):
        importlib.import_module(info.name)
    return TOOLS
