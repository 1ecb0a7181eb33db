"""``explain``: what a crash class, a taint string, an address or a #PF code means.

The answers come from the diagnosis tables and decoders (the same sentences
``analyze`` uses), so the shell can answer "what does taint ``G OE`` mean?"
or "is ``dead000000000122`` a poison value?" without leaving the session.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from drgn import Program
from drgn.commands import argument

from ..errors import KcrashError
from .registry import kcrash_command


def _placeholders(message_id: str, lang: str) -> dict[str, str]:
    """``{address}`` -> ``<address>``: no crash at hand, so name what a report fills in."""
    import string

    from ..diagnosis.i18n import catalogue

    fmt = catalogue(lang).get(message_id) or catalogue("en").get(message_id) or ""
    names = {f for _, f, _, _ in string.Formatter().parse(fmt) if f}
    return {n: f"<{n}>" for n in names}


def explain_lines(what: str, lang: str = "en") -> list[str]:
    """Sentences explaining ``what`` (class id, taint letters, address, ``pf:0xN``)."""
    from ..diagnosis import RULES_BY_ID, render
    from ..diagnosis import decode as dec

    if what in RULES_BY_ID:
        rule = RULES_BY_ID[what]
        ids = [f"class.{what}", f"rule.{what}.meaning"]
        ids += [f"rule.{what}.next.{i}" for i in range(1, rule.next_steps + 1)]
        return [render(i, _placeholders(i, lang), lang) for i in ids]
    m = re.fullmatch(r"(?:pf|#pf|error_code)[:=]?(0x[0-9a-fA-F]+|\d+)", what, re.I)
    if m:
        facts = dec.decode_pf(int(m.group(1), 0))
        return [render("evidence." + f.id, f.params, lang) for f in facts]
    if re.fullmatch(r"(0x)?[0-9a-fA-F]{4,16}", what):
        fact = dec.classify_address(int(what, 16))
        if fact is None:
            return [f"{what}: an ordinary kernel or user address"]
        return [render("evidence." + fact.id, fact.params, lang)]
    if re.fullmatch(r"[A-Z ]+", what):
        return [render("evidence." + f.id, f.params, lang) for f in dec.decode_taint(what)]
    raise KcrashError(
        f"explain: {what!r} is not a crash class, taint string, address or pf:CODE; "
        f"classes: {', '.join(sorted(RULES_BY_ID))}"
    )


@kcrash_command(
    description="explain a crash class, taint letters, an address or a #PF error code",
    arguments=(
        argument("what", nargs="+", help="e.g. null-deref, 'G OE', dead000000000122, pf:0x2"),
        argument("--lang", choices=("en", "zh"), default="en"),
    ),
)
def _kcrash_cmd_explain(prog: Program, name: str, args: argparse.Namespace, **kwargs: Any) -> None:
    for line in explain_lines(" ".join(args.what), args.lang):
        print(line)
