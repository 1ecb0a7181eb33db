"""What the completer offers: commands, options, symbols, struct names, PIDs.

Why lazy and cached: a dump does not change under us, but listing ~150k
symbols or scanning BTF costs a few hundred milliseconds, which the operator
should only pay on the first Tab that needs them, never at startup.
"""

from __future__ import annotations

import argparse
from bisect import bisect_left
from collections.abc import Callable, Iterable
from functools import cached_property

import drgn

from ..commands import registry
from .btfnames import kernel_struct_names

# Structs operators ask for most; offered when the kernel has no BTF to list.
COMMON_STRUCTS = (
    "address_space", "bio", "block_device", "cred", "dentry", "device", "file",
    "files_struct", "inode", "kmem_cache", "list_head", "mm_struct", "module", "mutex",
    "net_device", "page", "pid", "rq", "sk_buff", "sock", "super_block", "task_struct",
    "timer_list", "vm_area_struct", "work_struct", "worker_pool",
)  # fmt: skip


def prefixed(sorted_names: list[str], prefix: str, limit: int = 500) -> list[str]:
    """Entries of a sorted list starting with ``prefix`` (bisect, so 150k is instant)."""
    out: list[str] = []
    for i in range(bisect_left(sorted_names, prefix), len(sorted_names)):
        name = sorted_names[i]
        if not name.startswith(prefix) or len(out) >= limit:
            break
        out.append(name)
    return out


class Names:
    """Completion vocabulary of one opened dump."""

    def __init__(self, prog: drgn.Program, shell_commands: Callable[[], Iterable[str]]) -> None:
        self.prog = prog
        self._shell_commands = shell_commands
        self._members: dict[str, list[str]] = {}

    def commands(self) -> dict[str, str]:
        """Command name -> one-line description (kcrash's, drgn's, the shell's)."""
        import kcrash.commands.all  # noqa: F401  (registers our commands)

        out = {
            name: cmd.description() for name, cmd in registry.KCRASH_NAMESPACE.enabled(self.prog)
        }
        out.pop("*", None)  # typed as "*addr", not a word to complete
        for name in self._shell_commands():
            out.setdefault(name, "")
        return out

    def options(self, command: str) -> list[str]:
        """Option strings of an argparse-defined command (drgn's and ours)."""
        try:
            cmd = registry.KCRASH_NAMESPACE.lookup(self.prog, command)
        except Exception:
            return []
        parser = getattr(cmd, "_parser", None)
        if not isinstance(parser, argparse.ArgumentParser):
            return []
        return sorted(
            {opt for action in parser._actions for opt in action.option_strings} - {"-h", "--help"}
        )

    @cached_property
    def symbols(self) -> list[str]:
        try:
            syms = self.prog.symbols()
        except Exception:
            return []
        return sorted({s.name for s in syms if s.name})

    @cached_property
    def structs(self) -> list[str]:
        names = kernel_struct_names(self.prog)
        if not names:
            for name in COMMON_STRUCTS:
                try:
                    self.prog.type("struct " + name)
                except LookupError:
                    continue
                names.add(name)
        return sorted(names)

    def members(self, kind: str, name: str) -> list[str]:
        """Member names of ``struct NAME`` (anonymous unions/structs flattened)."""
        key = f"{kind} {name}"
        if key not in self._members:
            try:
                self._members[key] = sorted(set(_member_names(self.prog.type(key))))
            except (LookupError, ValueError, SyntaxError):
                self._members[key] = []
        return self._members[key]

    @cached_property
    def pids(self) -> list[tuple[str, str]]:
        """``(pid, comm)`` sorted by PID, as text (completion works on text)."""
        from drgn.helpers.linux.pid import for_each_task

        seen: dict[int, str] = {}
        try:
            for task in for_each_task(self.prog):
                pid = task.pid.value_()
                if pid not in seen:
                    seen[pid] = task.comm.string_().decode(errors="replace")
        except Exception:
            pass
        return [(str(pid), comm) for pid, comm in sorted(seen.items())]


def _member_names(t: drgn.Type) -> Iterable[str]:
    for m in t.members or ():
        if m.name:
            yield m.name
        else:  # an anonymous struct/union: its members are the parent's
            yield from _member_names(m.type.unqualified())
