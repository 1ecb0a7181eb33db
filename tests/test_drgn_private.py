"""drgn's private names that kcrash uses are all in one module, and all still exist.

drgn is pinned; this is the one place a drgn upgrade that moves or renames one of them fails.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from kcrash import drgn_private

SRC = Path(__file__).resolve().parent.parent / "src" / "kcrash"


@pytest.mark.parametrize("name", sorted(drgn_private.PRIVATE))
def test_every_private_name_resolves(name: str) -> None:
    module, attr, why = drgn_private.PRIVATE[name]
    assert why
    value = getattr(drgn_private, name)
    assert value is not None
    if attr:
        assert getattr(__import__(module, fromlist=[attr]), attr) is value


def _private_imports(path: Path) -> list[str]:
    """Imports of drgn's private modules or names in one source file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            mod = node.module
            if mod.split(".")[0] in ("drgn", "_drgn", "_drgn_util"):
                private_mod = any(part.startswith("_") for part in mod.split("."))
                private_names = [a.name for a in node.names if a.name.startswith("_")]
                if private_mod or private_names:
                    found.append(f"from {mod} import {', '.join(a.name for a in node.names)}")
        elif isinstance(node, ast.Import):
            for a in node.names:
                parts = a.name.split(".")
                if parts[0] in ("_drgn", "_drgn_util") or (
                    parts[0] == "drgn" and any(p.startswith("_") for p in parts)
                ):
                    found.append(f"import {a.name}")
        elif (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not (node.attr.startswith("__"))
        ):
            base = node.value
            if isinstance(base, ast.Name) and base.id in ("drgn", "dc"):
                found.append(f"{base.id}.{node.attr}")
    return found


def test_no_private_drgn_name_outside_the_fence() -> None:
    offenders = {
        str(p.relative_to(SRC)): hits
        for p in sorted(SRC.rglob("*.py"))
        if p.name != "drgn_private.py" and (hits := _private_imports(p))
    }
    assert not offenders, offenders
