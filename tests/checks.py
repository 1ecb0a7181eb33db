"""Helpers shared by the corpus tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def each(entries: list[dict[str, Any]], check: Callable[[dict[str, Any]], None]) -> None:
    """Run ``check`` on every corpus entry and report every failing dump at once.

    One assertion per dump would stop at the first bad dump; an operator
    fixing a regression wants the whole list (which formats, which kernels).
    """
    failures = []
    for e in entries:
        try:
            check(e)
        except AssertionError as err:
            failures.append(f"{e['id']}: {err}")
    assert not failures, "\n".join(failures)


def is_arm64(entry: dict[str, Any]) -> bool:
    """An entry of an arm64 kernel (the manifest says ``"arch": "arm64"``; x86-64 else)."""
    return entry.get("arch") == "arm64"


def platform(entry: dict[str, Any]) -> Any:
    """The drgn platform of an entry's dump (QEMU's kdump format names none)."""
    import drgn

    if is_arm64(entry):
        flags = drgn.PlatformFlags.IS_64_BIT | drgn.PlatformFlags.IS_LITTLE_ENDIAN
        return drgn.Platform(drgn.Architecture.AARCH64, flags)
    return drgn.host_platform
