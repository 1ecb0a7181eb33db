"""The dashboard's words in English and Chinese: its own catalogue plus the report's.

Why reuse the report's catalogues: a class, a report heading or a step has one name in
kcrash, whether it is read in ``kcrash analyze --lang zh`` or on the dashboard.  Only the
dashboard's chrome (navigation, table headings, forms) lives in ``i18n/web.<lang>.json``.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from ...report.labels import LANGS
from ...report.labels import labels as report_labels

__all__ = ["LANGS", "Words", "pick_lang", "words"]


def _catalogue(package: str, name: str) -> dict[str, Any]:
    return json.loads(resources.files(package).joinpath(name).read_text("utf-8"))


class Words(dict[str, str]):
    """Labels for one language; ``class_name`` and ``fmt`` cover the parametrized ones."""

    lang: str
    rules: dict[str, str]
    report: dict[str, str]

    def class_name(self, class_id: str | None) -> str:
        if not class_id:
            return self["unknown"]
        return self.rules.get("class." + class_id, class_id)

    def fmt(self, key: str, **params: Any) -> str:
        return self[key].format(**params)

    def state(self, state: str | None, fixed_in: str | None = None) -> str:
        if state == "fixed":
            return self.fmt("state_fixed", release=fixed_in or self["unknown"])
        return self.get("state_" + (state or "open"), state or "")


@cache
def words(lang: str) -> Words:
    """The dashboard's labels in ``lang`` (English for a missing key, as the report does)."""
    if lang not in LANGS:
        lang = "en"
    w = Words(_catalogue(__package__, "i18n/web.en.json"))
    rules = _catalogue("kcrash.report", "i18n/rules.en.json")
    if lang != "en":
        w.update(_catalogue(__package__, f"i18n/web.{lang}.json"))
        rules.update(_catalogue("kcrash.report", f"i18n/rules.{lang}.json"))
    w.lang, w.rules, w.report = lang, rules, report_labels(lang)
    return w


def pick_lang(query: str | None, cookie: str | None, accept: str | None) -> str:
    """``?lang=`` first, then the remembered choice, then the browser's Accept-Language."""
    for choice in (query, cookie):
        if choice in LANGS:
            return choice
    for part in (accept or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.split("-")[0] in LANGS:
            return tag.split("-")[0]
    return "en"
