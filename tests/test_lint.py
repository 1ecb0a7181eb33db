"""The tree stays ruff-clean (lint and format), as the project promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_ruff_check() -> None:
    p = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True
    )
    assert p.returncode == 0, p.stdout + p.stderr


def test_ruff_format() -> None:
    p = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert p.returncode == 0, p.stdout + p.stderr


def test_ci_runs_the_readme_test_command() -> None:
    """.ci/run ends with the README's test command, character for character: what CI runs is
    what the README tells a developer to run (both cores, one file per worker)."""
    readme = (ROOT / "README.md").read_text().splitlines()
    shown = readme[readme.index("# 2. Run the tests (installs what they need, builds or reuses "
                                "the real vmcore corpus; see \"Testing\"):") + 1]  # fmt: skip
    ci = [ln for ln in (ROOT / ".ci/run").read_text().splitlines() if ln and ln[0] != "#"]
    assert ci[-1] == shown
    assert " -n 2 --dist loadfile" in shown
