"""Small helpers shared by the build steps: progress lines, bounded subprocesses, hashing.

Every subprocess goes through :func:`run` so that none can hang the build (each has a
timeout) and every failure names the step it belongs to.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

_T0 = time.monotonic()
_LOG_LOCK = threading.Lock()


class BuildError(Exception):
    """A build step failed; the message names the step and says why."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(f"step '{step}' failed: {message}")
        self.step = step


def progress(step: str, message: str) -> None:
    """One progress line per step, with the time since the build started."""
    elapsed = time.monotonic() - _T0
    with _LOG_LOCK:
        print(
            f"[{int(elapsed) // 60:02d}:{int(elapsed) % 60:02d}] {step}: {message}",
            file=sys.stderr,
            flush=True,
        )


def run(
    cmd: Sequence[str | os.PathLike[str]],
    step: str,
    timeout: float,
    *,
    cwd: Path | None = None,
    stdin: Any = None,
    stdout: Any = subprocess.PIPE,
    input_text: str | None = None,
    env: dict[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a command with a timeout; raise :class:`BuildError` naming `step` on failure."""
    try:
        proc = subprocess.run(
            [str(c) for c in cmd],
            cwd=cwd,
            stdin=stdin,
            stdout=stdout,
            stderr=subprocess.PIPE,
            input=input_text,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BuildError(step, f"{Path(str(cmd[0])).name} timed out after {timeout:.0f}s") from exc
    except OSError as exc:
        raise BuildError(step, f"cannot run {cmd[0]}: {exc}") from exc
    if check and proc.returncode != 0:
        tail = (proc.stderr or "").strip().splitlines()[-8:]
        raise BuildError(
            step,
            f"{' '.join(str(c) for c in cmd)[:200]} exited {proc.returncode}: " + " | ".join(tail),
        )
    return proc


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file, read in 4 MiB chunks (dumps reach hundreds of MB)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def recipe_hash(*parts: Any) -> str:
    """Stable hash of JSON-serialisable recipe inputs (the cache key of a build product)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically, so a reader never sees a half-written manifest."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}.{threading.get_ident()}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)


def read_json(path: Path) -> Any:
    """Read JSON, or None when the file does not exist or is unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def need_tools(names: Iterable[str], step: str) -> None:
    """Fail early, naming the Debian package to install, when a host tool is missing."""
    packages = {
        "qemu-system-x86_64": "qemu-system-x86",
        "busybox": "busybox-static",
        "cpio": "cpio",
        "kexec": "kexec-tools",
        "vmcore-dmesg": "kexec-tools",
        "makedumpfile": "makedumpfile",
        "crash": "crash",
        "modinfo": "kmod",
        "apt-get": "apt",
        "dpkg-deb": "dpkg",
        "make": "build-essential",
        "gcc": "build-essential",
        "strip": "binutils",
    }
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        pkgs = sorted({packages.get(n, n) for n in missing})
        raise BuildError(step, f"missing host tools {missing}; apt-get install {' '.join(pkgs)}")


def rm_rf(path: Path) -> None:
    """Remove a file or a tree if present."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
