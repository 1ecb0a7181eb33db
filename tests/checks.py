"""Helpers shared by the corpus tests."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from itertools import pairwise
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


def names_the_function_after_the_caller(entry: dict[str, Any], log_path: str) -> bool:
    """An arm64 log whose call trace names the function *after* panic()'s caller.

    arm64's dump_backtrace() prints return addresses as they are (``%pS``, not x86's
    ``%pB`` of the address minus one): a function that ends in its call to panic()
    (``sysrq_handle_crash``, the module's ``kcrash_panic``) returns past its own end, and
    the log names the next function at ``+0x0`` (``sysrq_reset_seq_param_set+0x0``,
    ``kcrash_exit+0x0``). Text alone cannot name the caller; the dump's analysis does
    (its symbol table has the call site). The text verdict's class and module are the
    dump's; its function and signature are not."""
    if not is_arm64(entry):
        return False
    with open(log_path, errors="replace") as f:
        lines = f.read().splitlines()
    return any("panic+" in a and "+0x0/" in b for a, b in pairwise(lines))
