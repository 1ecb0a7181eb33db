"""One progress bar for long transfers (downloads, unpacking a 858 MB package).

Why a helper: the bar must appear only where it helps — a terminal on
stderr and a transfer big enough to wait for — and never in pipes, logs or
``--format json`` runs, where stdout stays clean (messages go to stderr).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: Show a bar for transfers larger than this (bytes); unknown sizes always get one.
THRESHOLD = 16 << 20


def wanted(progress: bool, total: int) -> bool:
    from rich.console import Console

    return progress and Console(stderr=True).is_terminal and (total == 0 or total > THRESHOLD)


@contextmanager
def bar(label: str, total: int, enabled: bool) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(nbytes)``; a no-op when the bar is not wanted."""
    if not enabled:
        yield lambda _n: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as p:
        task = p.add_task(label, total=total or None)
        yield lambda n: p.update(task, advance=n)
