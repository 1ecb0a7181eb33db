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


class Words:
    """Labels for one language, as ``w.key`` or ``w["key"]`` in templates.

    Not a ``dict`` subclass on purpose: Jinja2 looks attributes up before items, so a
    label named like a dict method (``clear``, ``items``) would print the method.
    """

    def __init__(self, lang: str, table: dict[str, str], rules: dict[str, str]) -> None:
        self.lang, self._table, self.rules = lang, table, rules
        self.report_labels = report_labels(lang)

    def __getitem__(self, key: str) -> str:
        return self._table[key]

    def __getattr__(self, key: str) -> str:
        try:
            return self.__dict__["_table"][key]
        except KeyError:
            raise AttributeError(key) from None

    def get(self, key: str, default: str) -> str:
        return self._table.get(key, default)

    def class_name(self, class_id: str | None) -> str:
        if not class_id:
            return self["unknown"]
        return self.rules.get("class." + class_id, class_id)

    def fmt(self, key: str, **params: Any) -> str:
        return self[key].format(**params)

    def state_label(self, state: str | None, fixed_in: str | None = None) -> str:
        if state == "fixed":
            return self.fmt("state_fixed", release=fixed_in or self["unknown"])
        return self.get("state_" + (state or "open"), state or "")


@cache
def words(lang: str) -> Words:
    """The dashboard's labels in ``lang`` (English for a missing key, as the report does)."""
    if lang not in LANGS:
        lang = "en"
    table = _catalogue(__package__, "i18n/web.en.json")
    rules = _catalogue("kcrash.report", "i18n/rules.en.json")
    if lang != "en":
        table.update(_catalogue(__package__, f"i18n/web.{lang}.json"))
        rules.update(_catalogue("kcrash.report", f"i18n/rules.{lang}.json"))
    return Words(lang, table, rules)


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
