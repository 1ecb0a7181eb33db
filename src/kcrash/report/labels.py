"""Report chrome (headings, statuses) per language: data, not code branches."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

LANGS = ("en", "zh")


@cache
def labels(lang: str) -> dict[str, str]:
    """Headings for ``lang``, falling back to English for any missing key."""
    base = json.loads(
        resources.files(__package__).joinpath("i18n/report.en.json").read_text("utf-8")
    )
    if lang != "en":
        path = resources.files(__package__).joinpath(f"i18n/report.{lang}.json")
        base.update(json.loads(path.read_text("utf-8")))
    return base
