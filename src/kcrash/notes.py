"""Sentences kcrash says about its own limits, kept with their message ids.

What a mode lacks ("no source lines … install linux-image-R-dbg") is found
deep in the target layer but shown by every report in the reader's
language.  A :class:`Note` is that sentence: a ``str`` in English (so the
commands, the shell and error messages print it as before) that also keeps
its message id of ``report/i18n/rules.<lang>.json`` and its parameters, so a
report renders it again in another language with :meth:`Note.in_lang`.
"""

from __future__ import annotations

from typing import Any


class Note(str):
    """An English sentence that can be rendered again in another language."""

    id: str
    params: dict[str, Any]

    def __new__(cls, message_id: str, **params: Any) -> Note:
        self = super().__new__(cls, _render(message_id, params, "en"))
        self.id = message_id
        self.params = params
        return self

    def __getnewargs_ex__(self) -> tuple[tuple[str], dict[str, Any]]:
        # batch's worker processes pickle facts: rebuild from id and params
        return (self.id,), self.params

    def in_lang(self, lang: str) -> str:
        return _render(self.id, self.params, lang)


def in_lang(text: str, lang: str) -> str:
    """``text`` in ``lang`` when it is a :class:`Note`; other text is a value, kept as is."""
    return text.in_lang(lang) if isinstance(text, Note) else text


def _render(message_id: str, params: dict[str, Any], lang: str) -> str:
    # Imported here: the catalogues' renderer lives with the diagnosis, above
    # the target layer that makes most notes.
    from kcrash.diagnosis.i18n import render

    return render(message_id, {k: in_lang(v, lang) for k, v in params.items()}, lang)
