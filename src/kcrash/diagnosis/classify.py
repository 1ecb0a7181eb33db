"""Classify report blocks and pick the primary crash among them.

Why the choice is not simply "the panic": on kernels since ~4.x the panic
line of most crashes is only a *trailer* (``Fatal exception``,
``panic_on_warn set``, ``softlockup: hung tasks``, ``hung_task: blocked
tasks``); the cause is the report printed before it (the first ``[#1]`` oops,
the soft-lockup or hung-task report, the WARNING).  With kdump the panic line
is often absent altogether (``crash_kexec`` runs from ``oops_end`` before
``panic()``), so the log ends with the oops itself.

Order of preference:

1. a trailer panic -> the last ``[#1]`` oops before it; else the first event
   of the classes the trailer names; else the nearest fatal/warning event;
2. a *weak* panic (``Attempted to kill init!``) preceded by an oops -> the oops;
3. any other panic -> the earliest event of the same class (or of a class it
   folds, e.g. OOM reports before ``Out of memory`` panic) that has a stack,
   else the panic block itself;
4. no panic -> the first ``[#1]`` oops, else the first fatal event, else the
   first warning.

Events of the primary's chain (same class, folded classes, the panic block,
auxiliary blocks) are not reported again; every other classified event is an
"other" report, in log order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kcrash.crash_classes import TRAILER_TARGETS, Rule, classify_lines
from kcrash.model import OopsEvent


@dataclass
class Classified:
    index: int
    event: OopsEvent
    rule: Rule | None
    match: re.Match[str] | None = field(default=None, repr=False)

    @property
    def class_id(self) -> str | None:
        return self.rule.id if self.rule else None

    @property
    def has_stack(self) -> bool:
        return bool(self.event.call_trace) or (
            self.event.rip is not None and self.event.rip.function is not None
        )

    @property
    def is_panic(self) -> bool:
        return self.event.panic_message is not None and "not syncing" in self.event.header


@dataclass
class Selection:
    primary: Classified | None
    chain: list[Classified]  # events folded into the primary (primary included)
    panic: Classified | None
    others: list[Classified]


def classify_events(events: list[OopsEvent]) -> list[Classified]:
    """Each event with the first rule of the table that matches its head."""
    out = []
    for i, ev in enumerate(events):
        got = classify_lines(ev.lines or [ev.header])
        out.append(Classified(i, ev, got[0] if got else None, got[1] if got else None))
    return out


def _fatal(c: Classified) -> bool:
    return c.rule is not None and not c.rule.trailer and c.rule.severity == "fatal"


def _reportable(c: Classified) -> bool:
    return c.rule is not None and not c.rule.trailer and c.rule.severity != "info"


def select(cl: list[Classified]) -> Selection:
    """Pick the primary crash, its chain, and the other reports."""
    panic = next((c for c in cl if c.is_panic and c.rule is not None), None)
    primary: Classified | None = None
    before = cl[: panic.index] if panic else cl
    if panic is not None and panic.rule is not None:
        rule = panic.rule
        if rule.trailer:
            primary = _trailer_cause(before, panic)
        elif rule.weak:
            primary = next(
                (c for c in reversed(before) if c.event.oops_number is not None and _fatal(c)),
                None,
            )
        if primary is None and not rule.trailer:
            same = (rule.id, *rule.folds)
            primary = (
                next((c for c in before if c.class_id == rule.id and c.has_stack), None) or panic
            )
            if not primary.has_stack:
                primary = next((c for c in before if c.class_id in same and c.has_stack), primary)
        if primary is None:
            primary = panic
    else:
        primary = (
            next((c for c in before if c.event.oops_number == 1 and _fatal(c)), None)
            or next((c for c in before if _fatal(c)), None)
            or next((c for c in before if _reportable(c)), None)
            or next((c for c in before if c.rule is not None), None)
        )
    if primary is None:
        return Selection(None, [], panic, [])
    # classes whose repeated reports belong to one crash (soft lockups every
    # few seconds, several hung tasks, OOM reports before the OOM panic)
    folded: set[str | None] = set()
    if primary.rule is not None:
        folded.update(primary.rule.folds)
    if panic is not None and panic.rule is not None:
        folded.update(panic.rule.folds)
    chain = [primary]
    others = []
    for c in cl:
        if c is primary:
            continue
        in_window = panic is None or c.index <= panic.index
        if c.rule is None or c is panic or c.rule.trailer or (c.class_id in folded and in_window):
            chain.append(c)
        else:
            others.append(c)
    chain.sort(key=lambda c: c.index)
    return Selection(primary, chain, panic, others)


def _trailer_cause(before: list[Classified], panic: Classified) -> Classified | None:
    """The event a trailer panic is the consequence of."""
    q = (panic.match.groupdict().get("q") if panic.match else None) or ""
    targets = TRAILER_TARGETS.get(q, ())
    if targets:
        named = next((c for c in before if c.class_id in targets), None)
        if named is not None:
            return named
    oops1 = [c for c in before if c.event.oops_number == 1 and _reportable(c)]
    if oops1:
        return oops1[-1]
    for c in reversed(before):
        if _fatal(c):
            return c
    for c in reversed(before):
        if _reportable(c):
            return c
    return None
