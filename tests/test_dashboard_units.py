"""The dashboard's catalogues and charts, without a server or a browser.

A label a template asks for but no catalogue has renders as nothing (Jinja2 is lenient), so
the templates are read here and every ``w.key`` / ``w["key"]`` they use must exist in both
languages; the charts must keep every value they were given.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

from kcrash.server.web import charts
from kcrash.server.web.i18n import pick_lang, words

WEB = Path(__file__).parent.parent / "src" / "kcrash" / "server" / "web"
#: Words' own attributes and methods, not labels.
NOT_LABELS = {"fmt", "get", "class_name", "state_label", "lang", "rules", "report_labels"}


def _catalogue(lang: str) -> dict[str, str]:
    return json.loads((WEB / "i18n" / f"web.{lang}.json").read_text("utf-8"))


def test_catalogues_have_the_same_keys() -> None:
    assert set(_catalogue("en")) == set(_catalogue("zh"))


def test_every_label_a_template_uses_exists() -> None:
    en = _catalogue("en")
    used: set[str] = set()
    for t in (WEB / "templates").glob("*.j2"):
        text = t.read_text("utf-8")
        used |= set(re.findall(r"\bw\.([a-z_]+)\b", text))
        used |= set(re.findall(r"\bw\[\"([a-z_]+)\"\]", text))
        used |= set(re.findall(r"\bw\.fmt\(\"([a-z_]+)\"", text))
    used -= NOT_LABELS
    assert used, "no label found: the pattern no longer matches the templates"
    assert sorted(used - set(en)) == []


def test_chinese_labels_hold_no_english_words() -> None:
    en, zh = _catalogue("en"), _catalogue("zh")
    same = sorted(k for k in en if k != "_comment" and en[k] == zh[k])
    assert same == [], same


def test_class_names_and_states_come_from_the_catalogues() -> None:
    w = words("zh")
    assert w.class_name("null-deref") == "空指针解引用"  # the report's rules.zh.json
    assert w.class_name("no-such-class") == "no-such-class"  # an id beats an empty cell
    assert "6.1.0-60-amd64" in w.state_label("fixed", "6.1.0-60-amd64")
    assert words("en").clear == "Clear"  # a label named like a dict method is a label


def test_language_choice_order() -> None:
    assert pick_lang("zh", "en", "en-US") == "zh"
    assert pick_lang(None, "zh", "en-US") == "zh"
    assert pick_lang("fr", None, "zh-CN,zh;q=0.9") == "zh"
    assert pick_lang(None, None, "de-DE") == "en"


def test_stacked_bars_keep_every_value() -> None:
    days = charts.day_range(dt.date(2026, 11, 30), 3)
    series = [charts.Series("a", "A & B", [1, 0, 4]), charts.Series("b", "C", [2, 3, 0])]
    svg = str(charts.stacked_bars(days, series, "label <x>"))
    assert svg.count("<rect") == 4  # zero values draw nothing
    assert "2026-11-30 · A &amp; B: 4" in svg and 'aria-label="label &lt;x&gt;"' in svg
    assert "<script" not in svg and "style=" not in svg  # CSP: no inline script or style


def test_fold_sums_the_smallest_series() -> None:
    many = [charts.Series(f"c{i}", f"c{i}", [i, 1]) for i in range(14)]
    folded = charts.fold(many, "other")
    assert len(folded) == charts.MAX_SERIES
    assert folded[-1].key == "other"
    total = [sum(s.values[i] for s in many) for i in range(2)]
    assert [sum(s.values[i] for s in folded) for i in range(2)] == total
