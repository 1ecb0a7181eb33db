"""Render diagnosis messages in a language from the rule catalogues.

The catalogues are package data: ``kcrash/report/i18n/rules.<lang>.json``,
a flat object ``{message id: format string}`` with ``{param}`` placeholders.
Languages are data: adding one is adding a file.  A message id missing from
a language falls back to English; a parameter missing from a message's
values renders as ``?`` (never a KeyError in front of the operator).
"""

from __future__ import annotations

import json
import string
from functools import lru_cache
from importlib import resources
from typing import Any

from kcrash.diagnosis.model import Diagnosis, Message

DEFAULT_LANG = "en"


@lru_cache(maxsize=8)
def catalogue(lang: str) -> dict[str, str]:
    """The rule catalogue of ``lang`` (empty when the language has none)."""
    try:
        ref = resources.files("kcrash.report").joinpath("i18n", f"rules.{lang}.json")
        data = json.loads(ref.read_text(encoding="utf-8"))
    except (FileNotFoundError, ModuleNotFoundError, OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, str) and not k.startswith("_")}


class _Safe(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"


_FORMATTER = string.Formatter()


def render(message_id: str, params: dict[str, Any] | None = None, lang: str = DEFAULT_LANG) -> str:
    """One sentence: the catalogue's format string with ``params`` filled in."""
    fmt = catalogue(lang).get(message_id) or catalogue(DEFAULT_LANG).get(message_id)
    if fmt is None:
        return message_id
    try:
        return _FORMATTER.vformat(fmt, (), _Safe(params or {}))
    except (ValueError, IndexError, AttributeError, TypeError):
        return fmt


def render_message(msg: Message, lang: str = DEFAULT_LANG) -> str:
    return render(msg.id, msg.params, lang)


def render_messages(diag: Diagnosis, lang: str = DEFAULT_LANG) -> dict[str, Any]:
    """Every sentence of a diagnosis in ``lang``.

    Keys: ``class_name``, ``meaning``, ``explanation`` (list), ``next_steps``
    (list), ``evidence`` (list), ``culprit_reason``.
    """
    return {
        "class_name": render(f"class.{diag.class_id}", {}, lang),
        "meaning": render_message(diag.meaning, lang),
        "explanation": [render_message(m, lang) for m in diag.explanation],
        "next_steps": [render_message(m, lang) for m in diag.next_steps],
        "evidence": [render_message(m, lang) for m in diag.evidence.messages],
        "culprit_reason": render(f"culprit.{diag.culprit.reason}", {}, lang)
        if diag.culprit
        else render("culprit.none", {}, lang),
    }
