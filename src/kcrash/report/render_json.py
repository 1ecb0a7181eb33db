"""JSON: the report dict itself (schema: docs/report-schema.json).

Values stay exact; :func:`~kcrash.textsafe.json_dumps` writes the characters
JSON allows raw (C1 controls, bidi overrides) as ``\\uXXXX``.
"""

from __future__ import annotations

from typing import Any

from ..textsafe import json_dumps


def render(report: dict[str, Any]) -> str:
    return json_dumps(report, indent=2) + "\n"
