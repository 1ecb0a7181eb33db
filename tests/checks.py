"""Helpers shared by the corpus tests."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: The JSON report's schema (docs/report-schema.json), which every report must satisfy.
REPORT_SCHEMA = json.loads((Path(__file__).parents[1] / "docs/report-schema.json").read_text())


@functools.cache
def _report_validator() -> Any:
    import jsonschema

    cls = jsonschema.validators.validator_for(REPORT_SCHEMA)
    cls.check_schema(REPORT_SCHEMA)
    return cls(REPORT_SCHEMA)


def validate_report(report: Any) -> None:
    """``jsonschema.validate(report, REPORT_SCHEMA)`` with the schema checked once: validate()
    checks the schema itself and builds a validator on every call, 35 times the cost of the
    validation (0.14 s CPU a report; the suite validates hundreds)."""
    _report_validator().validate(report)


def each(entries: list[dict[str, Any]], check: Callable[[dict[str, Any]], None]) -> None:
    """Run ``check`` on every corpus entry and report every failing dump at once.

    One assertion per dump would stop at the first bad dump; an operator
    fixing a regression wants the whole list (which formats, which kernels).
    """
    failures = []
    for e in entries:
        try:
            check(e)
        except AssertionError as err:
            failures.append(f"{e['id']}: {err}")
    assert not failures, "\n".join(failures)


def is_arm64(entry: dict[str, Any]) -> bool:
    """An entry of an arm64 kernel (the manifest says ``"arch": "arm64"``; x86-64 else)."""
    return entry.get("arch") == "arm64"


def platform(entry: dict[str, Any]) -> Any:
    """The drgn platform of an entry's dump (QEMU's kdump format names none)."""
    import drgn

    if is_arm64(entry):
        flags = drgn.PlatformFlags.IS_64_BIT | drgn.PlatformFlags.IS_LITTLE_ENDIAN
        return drgn.Platform(drgn.Architecture.AARCH64, flags)
    return drgn.host_platform
