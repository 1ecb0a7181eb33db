"""Render diagnosis messages in a language from the rule catalogues.

The catalogues are package data: ``kcrash/report/i18n/rules.<lang>.json``,
a flat object ``{message id: format string}`` with ``{param}`` placeholders.
Languages are data: adding one is adding a file.  A message id missing from
a language falls back to English; a parameter missing from a message's
values never renders as a placeholder: the catalogue's ``<id>~unknown``
variant (the sentence written without the unknown values) is used when
there is one; otherwise an optional `` [{module}]`` is left out and every
other unknown value is said to be unknown (``unknown.<param>``: "code the
log does not name").  A report never prints "?" or "None".
"""

from __future__ import annotations

import json
import string
from functools import lru_cache
from importlib import resources
from typing import Any

from kcrash.diagnosis.verdict import Diagnosis, Message

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


_FORMATTER = string.Formatter()
_UNKNOWN = ("", "?", None)


def _lookup(message_id: str, lang: str) -> str | None:
    return catalogue(lang).get(message_id) or catalogue(DEFAULT_LANG).get(message_id)


def _fields(fmt: str) -> set[str]:
    try:
        return {f for _, f, _, _ in _FORMATTER.parse(fmt) if f}
    except ValueError:
        return set()


def _missing(fmt: str, params: dict[str, Any]) -> set[str]:
    return {f for f in _fields(fmt) if params.get(f) in _UNKNOWN}


def render(message_id: str, params: dict[str, Any] | None = None, lang: str = DEFAULT_LANG) -> str:
    """One sentence: the catalogue's format string with ``params`` filled in."""
    fmt = _lookup(message_id, lang)
    if fmt is None:
        return message_id
    values = dict(params or {})
    missing = _missing(fmt, values)
    if missing:
        alt = _lookup(message_id + "~unknown", lang)
        if alt is not None and not _missing(alt, values):
            fmt, missing = alt, set()
    if "module" in missing:  # "f [mod]": the module is an aside, leave it out
        fmt = fmt.replace(" [{module}]", "").replace("[{module}]", "")
        missing.discard("module")
    for name in missing:
        values[name] = _lookup(f"unknown.{name}", lang) or _lookup("unknown.other", lang) or ""
    for name, value in list(values.items()):
        # a word of kcrash's own passed as a value (the kind of an arm64 fault status):
        # said in the report's language by its "value.<param>.<word>" entry
        if isinstance(value, str) and value.isidentifier():
            word = _lookup(f"value.{name}.{value}", lang)
            if word is not None:
                values[name] = word
    try:
        out = _FORMATTER.vformat(fmt, (), values)
    except (KeyError, ValueError, IndexError, AttributeError, TypeError):
        return fmt
    if missing and out[:1].islower() and any(fmt.startswith("{" + n) for n in missing):
        out = out[0].upper() + out[1:]  # "Code the log does not name executed ..."
    return out


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
