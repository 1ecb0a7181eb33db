"""Run one analysis in a child process with time and memory limits.

``python -m kcrash analyze --format json`` is the boundary: the server and the workers
never import the analysis modules, a hostile dump can at worst crash or exhaust its own
child, and the JSON report (docs/report-schema.json) is the only thing that comes back.
The child runs in its own session so a timeout kills it and anything it started; its
address space is capped with RLIMIT_AS and it may not write a core file of its own.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

KINDS = ("vmcore", "log", "report")
#: Lines of the child's stderr kept in an error message.
STDERR_TAIL = 2000


class AnalysisError(Exception):
    """The analysis did not produce a report; the message says why in one line."""


#: prctl(2) option: a signal the child gets when the thread that started it dies.
PR_SET_PDEATHSIG = 1
#: Looked up before any fork: a child of a threaded process must not dlopen.
_prctl = None
with contextlib.suppress(OSError, AttributeError):
    _prctl = ctypes.CDLL(None, use_errno=True).prctl


def _limits(mem_bytes: int):  # type: ignore[no-untyped-def]
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (mem_bytes, mem_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        # A server or worker killed with -9 takes its analyses with it (the crash is
        # analyzed again at the next start) instead of leaving orphans burning CPU.
        if _prctl is not None:
            _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)

    return apply


def check_report(report: Any) -> dict[str, Any]:
    """The fields the server relies on, checked (a report JSON can come from a host)."""
    if not isinstance(report, dict):
        raise AnalysisError("the report is not a JSON object")
    verdict = report.get("verdict")
    sig = report.get("signature")
    if not isinstance(verdict, dict) or not isinstance(verdict.get("class"), str):
        raise AnalysisError("the report has no verdict.class (not kcrash analyze JSON)")
    if not isinstance(sig, dict) or not isinstance(sig.get("id"), str):
        raise AnalysisError("the report has no signature.id (not kcrash analyze JSON)")
    if not 1 <= len(sig["id"]) <= 64 or not sig["id"].isalnum():
        raise AnalysisError("the report's signature.id is not a short alphanumeric id")
    return report


def load_report(path: str | os.PathLike[str], max_bytes: int) -> dict[str, Any]:
    """A submitted report JSON, bounded and checked (no child needed: json only parses)."""
    with open(path, "rb") as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise AnalysisError(f"the report is larger than {max_bytes} bytes")
    try:
        report = json.loads(data)
    except (ValueError, RecursionError) as e:
        raise AnalysisError(f"the report is not valid JSON: {e}") from None
    return check_report(report)


def analyze_file(
    path: str | os.PathLike[str],
    kind: str,
    *,
    timeout: float,
    mem_bytes: int,
    debuginfo_dirs: Sequence[str] = (),
    fetch_debuginfo: bool = False,
    debuginfo_cache: str | None = None,
    max_report_bytes: int = 16 * 1024 * 1024,
) -> dict[str, Any]:
    """The report dict of ``path``; raises :class:`AnalysisError` with the reason."""
    if kind not in KINDS:
        raise AnalysisError(f"unknown kind {kind!r}")
    if kind == "report":
        return load_report(path, max_report_bytes)
    with tempfile.TemporaryDirectory(prefix="kcrash-analysis-") as tmp:
        out = Path(tmp) / "report.json"
        cmd = [sys.executable, "-m", "kcrash", "analyze", os.fspath(path)]
        cmd += ["--format", "json", "--lang", "en", "--color", "never", "-o", str(out)]
        for d in debuginfo_dirs:
            cmd += ["--debuginfo", d]
        if fetch_debuginfo:
            cmd.append("--fetch-debuginfo")
        env = dict(os.environ, DRGN_DISABLE_PLUGINS="*", KCRASH_DEBUG="")
        if debuginfo_cache:
            env["KCRASH_DEBUGINFO_CACHE"] = debuginfo_cache
        started = time.monotonic()
        with open(Path(tmp) / "stderr", "w+b") as err:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=env,
                cwd=tmp,
                start_new_session=True,
                preexec_fn=_limits(mem_bytes),  # rlimits apply in the child only
            )
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise AnalysisError(f"analysis timed out after {timeout:g} s") from None
            except BaseException:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise
            err.seek(0)
            tail = err.read()[-STDERR_TAIL:].decode("utf-8", "replace").strip()
        if rc < 0:
            name = signal.Signals(-rc).name if -rc in signal.Signals._value2member_map_ else -rc
            raise AnalysisError(
                f"the analysis process was killed by {name} after "
                f"{time.monotonic() - started:.1f} s (memory limit {mem_bytes >> 20} MiB?)"
            )
        if not out.exists() or rc not in (0, 4):
            last = tail.splitlines()[-1] if tail else f"exit status {rc}"
            # The blob's path means nothing to the submitter and reveals the store layout.
            raise AnalysisError(last.removeprefix("kcrash: ").replace(os.fspath(path), "upload"))
        return load_report(out, max_report_bytes)
