"""Time-bounded, independent analysis steps.

Why: a vmcore can be corrupt in ways that make a helper loop for minutes
(a cyclic task list, a garbage page table).  Every step of ``analyze`` runs
under a wall-clock bound; a step that fails or runs out of time is recorded
as skipped with its reason, and the report still comes out.

The bound uses ``SIGALRM`` (the main thread only; ``batch`` runs each dump in
its own process).  It interrupts Python code between bytecodes, which covers
drgn's helpers (Python loops over kernel lists); a single long C call is
interrupted when it returns.  Elsewhere (another thread) steps run unbounded
but are still recorded.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .notes import Note

T = TypeVar("T")


class _Timeout(BaseException):
    """Raised inside a step when its time is up (BaseException: not swallowed
    by the helpers' ``except Exception`` clauses)."""


@dataclass
class StepRecord:
    name: str
    status: str  # "ok" | "skipped" | "failed" | "timeout"
    seconds: float
    reason: str | None = None


@dataclass
class Steps:
    """Runs steps and keeps their records, in order."""

    records: list[StepRecord] = field(default_factory=list)
    default_seconds: float = 20.0

    def run(self, name: str, fn: Callable[[], T], seconds: float | None = None) -> T | None:
        """Run ``fn``; return its value, or None when it failed or timed out."""
        limit = seconds if seconds is not None else self.default_seconds
        start = time.perf_counter()
        use_alarm = threading.current_thread() is threading.main_thread() and limit > 0

        def on_alarm(signum: int, frame: Any) -> None:
            raise _Timeout()

        old = None
        if use_alarm:
            old = signal.signal(signal.SIGALRM, on_alarm)
            signal.setitimer(signal.ITIMER_REAL, limit)
        try:
            value = fn()
        except _Timeout:
            self.records.append(
                StepRecord(
                    name,
                    "timeout",
                    time.perf_counter() - start,
                    Note("step.timeout", seconds=limit),
                )
            )
            return None
        except Exception as e:  # a failed step is reported, never fatal
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            self.records.append(
                StepRecord(
                    name,
                    "failed",
                    time.perf_counter() - start,
                    Note("step.failed", error=f"{type(e).__name__}: {msg}"),
                )
            )
            return None
        finally:
            if use_alarm:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, old)
        self.records.append(StepRecord(name, "ok", time.perf_counter() - start))
        return value

    def skip(self, name: str, reason: str) -> None:
        self.records.append(StepRecord(name, "skipped", 0.0, reason))


class time_limit:
    """Bound a step that cannot be skipped (opening the dump): past ``seconds``
    raise :class:`~kcrash.errors.StepTimeout`, one line for the operator.
    No-op outside the main thread."""

    def __init__(self, seconds: float, what: str) -> None:
        self.seconds, self.what = seconds, what
        self._armed = False
        self._old: Any = None

    def __enter__(self) -> None:
        if threading.current_thread() is threading.main_thread() and self.seconds > 0:
            self._old = signal.signal(signal.SIGALRM, self._fire)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
            self._armed = True

    def _fire(self, signum: int, frame: Any) -> None:
        raise _Timeout()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if self._armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._old)
        if exc_type is _Timeout:
            from .errors import StepTimeout

            raise StepTimeout(f"{self.what} took more than {self.seconds:g} s; giving up")
        return False
