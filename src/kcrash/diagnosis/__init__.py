"""kcrash.diagnosis: rules over facts -> verdicts (class, culprit, evidence, signature).

Public API::

    diagnose(facts: CrashFacts) -> list[Diagnosis]      # primary first
    render_messages(diag: Diagnosis, lang: str) -> dict  # all sentences in one language
    i18n.render(message_id, params, lang) -> str         # one sentence

No I/O, no printing, no drgn: everything here works on :mod:`kcrash.model`.
"""

from __future__ import annotations

from kcrash.crash_classes import CLASS_IDS, RULES, RULES_BY_ID, Rule
from kcrash.diagnosis.engine import diagnose
from kcrash.diagnosis.i18n import render, render_messages
from kcrash.diagnosis.signature import SCHEME, Signature
from kcrash.diagnosis.verdict import CodeLine, Culprit, Diagnosis, Evidence, Message

__all__ = [
    "CLASS_IDS",
    "RULES",
    "RULES_BY_ID",
    "SCHEME",
    "CodeLine",
    "Culprit",
    "Diagnosis",
    "Evidence",
    "Message",
    "Rule",
    "Signature",
    "diagnose",
    "render",
    "render_messages",
]
