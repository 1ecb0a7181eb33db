"""drgn's private names that kcrash uses are all in one module, and all still exist.

drgn is pinned; this is the one place a drgn upgrade that moves or renames one of them fails.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

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


_DEFERRED = """
import io, contextlib, sys
from kcrash.pipeline import analyze_path
report = analyze_path(sys.argv[1], None, no_debuginfo=True)
assert report["verdict"]["class"], report
print("after-analyze", "drgn.commands._crash" in sys.modules)
from kcrash.commands import registry
from kcrash.target.open import open_target
t = open_target(sys.argv[1], None, no_debuginfo=True)
out = io.StringIO()
with contextlib.redirect_stdout(out):
    registry.run(t, "ps")  # kcrash's own ps
    registry.run(t, "sym jiffies")  # one of drgn's crash commands, through kcrash's namespace
print("commands", "jiffies" in out.getvalue(), "COMM" in out.getvalue())
"""

_USER_PLUGIN = """
def drgn_prog_set(prog):
    print("user-plugin-called")
"""


def test_command_plugins_deferred_user_plugins_kept(
    corpus: list[dict[str, Any]], tmp_path: Path
) -> None:
    """analyze does not import drgn's ~60 command modules at set_core_dump (they only register
    commands), a command that needs them still finds them, and a user's own drgn plugin with a
    ``drgn_prog_set`` hook is still called (drgn's DRGN_PLUGINS)."""
    e = next((e for e in corpus if e["id"] == "deb12/null-deref/kdump-zlib"), None)
    if e is None:
        pytest.fail("the corpus has no deb12/null-deref/kdump-zlib dump")
    plugin = tmp_path / "user_plugin.py"
    plugin.write_text(_USER_PLUGIN)
    env = dict(os.environ, DRGN_PLUGINS=f"mine={plugin}")
    env["PYTHONPATH"] = os.pathsep.join([str(SRC.parent), env.get("PYTHONPATH", "")])
    p = subprocess.run(
        [sys.executable, "-c", _DEFERRED, e["path"]],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-2000:]
    lines = p.stdout.splitlines()
    assert "after-analyze False" in lines, p.stdout[-2000:]
    assert "commands True True" in lines, p.stdout[-2000:]
    assert lines.count("user-plugin-called") == 2, p.stdout[-2000:]  # one per Program
