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
