"""Move one kernel's pin to Debian's newest build, deliberately, and show what that changed.

``python3 -m kcrash_corpus bump deb12`` asks the suite which build ``linux-image-<flavour>``
now depends on, rewrites that kernel's row in ``tables.py``, rebuilds the kernel's dumps and
runs the crash-oracle comparison tests on them before and after, listing every test whose
outcome changed. The pin itself is then a one-line diff to review and commit.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from .apt import Apt
from .tables import ARCHES, KERNELS
from .util import BuildError, progress

TABLES = Path(__file__).resolve().parent / "tables.py"
REPO = Path(__file__).resolve().parents[2]
#: The tests that compare kcrash with crash (and the diagnosis) dump by dump.
ORACLE_TESTS = ("tests/test_core_vs_crash.py", "tests/test_diagnosis_corpus.py")


def newest(root: Path, name: str) -> tuple[str, str]:
    """ABI and version of the build the suite's meta package depends on today."""
    kernel = next((k for k in KERNELS if k.name == name), None)
    if kernel is None:
        raise BuildError("bump", f"no kernel {name!r} in tables.KERNELS")
    # A foreign-arch kernel (arm64) is asked of that architecture's configuration.
    apt = Apt(root, kernel.suite, kernel.arch if kernel.arch in ARCHES else None)
    apt.update()
    images = [d for d in apt.depends(kernel.meta_package) if d.startswith("linux-image-")]
    if not images:
        raise BuildError("bump", f"{kernel.meta_package} has no linux-image dependency")
    abi = images[0].removeprefix("linux-image-").removesuffix(f"-{kernel.flavour}")
    return abi, apt.version(images[0])


def rewrite_pin(text: str, name: str, abi: str, version: str) -> str:
    """`tables.py` with the row of kernel `name` pinned to `abi` / `version`."""
    row = re.compile(
        r'(Kernel\(\s*"' + re.escape(name) + r'",\s*"[^"]+",\s*)"[^"]+"(,\s*)"[^"]+"', re.S
    )
    new, n = row.subn(lambda m: f'{m.group(1)}"{abi}"{m.group(2)}"{version}"', text)
    if n != 1:
        raise BuildError("bump", f"found {n} rows for kernel {name!r} in {TABLES}")
    return new


def _outcomes(name: str, report: Path) -> dict[str, str]:
    """Run the oracle tests of one kernel; test id -> passed/failed/error/skipped."""
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", name,
         f"--junitxml={report}", *ORACLE_TESTS],
        cwd=REPO, check=False,
    )  # fmt: skip
    out: dict[str, str] = {}
    if not report.exists():
        return out
    for case in ET.parse(report).getroot().iter("testcase"):
        tid = f"{case.get('classname')}::{case.get('name')}"
        kinds = [c.tag for c in case if c.tag in ("failure", "error", "skipped")]
        out[tid] = kinds[0] if kinds else "passed"
    return out


def bump(root: Path, name: str, jobs: int) -> int:
    """Re-pin, rebuild and compare; returns the build's status (0 = built)."""
    abi, version = newest(root, name)
    old = TABLES.read_text()
    kernel = next(k for k in KERNELS if k.name == name)
    if (kernel.abi, kernel.version) == (abi, version):
        progress("bump", f"{name} is already pinned to Debian's newest build {abi} {version}")
        return 0
    progress("bump", f"{name}: {kernel.abi} {kernel.version} -> {abi} {version}")
    before = _outcomes(name, root / f"bump-{name}-before.xml")
    TABLES.write_text(rewrite_pin(old, name, abi, version))
    # The build reads the tables in a fresh interpreter, so it sees the new pin.
    rc = subprocess.run(
        [sys.executable, "-m", "kcrash_corpus", "build", "--jobs", str(jobs),
         "--only", f"{name}/*"],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO / "corpus")},
        check=False,
    ).returncode  # fmt: skip
    if rc:
        progress("bump", f"build failed; the pin in {TABLES} is moved, `git diff` shows it")
        return rc
    after = _outcomes(name, root / f"bump-{name}-after.xml")
    changed = sorted(t for t in set(before) | set(after) if before.get(t) != after.get(t))
    print(f"oracle comparisons of {name}: {len(after)} tests, {len(changed)} changed outcome")
    for t in changed:
        print(f"  {before.get(t, 'absent'):8} -> {after.get(t, 'absent'):8} {t}")
    print(f"review and commit the new pin: git diff {TABLES.relative_to(REPO)}")
    return 0
