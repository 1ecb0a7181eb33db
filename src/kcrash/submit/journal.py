"""The previous boot's kernel log from the systemd journal (``journalctl -k -b -1``).

For hosts without kdump and without pstore: when the kernel oopsed but did not panic (or
the log reached the disk before the reboot), the journal kept the report.  The journal's own
tool reads it (its file format is not ours to parse); ``-o short-monotonic`` keeps the
kernel's timestamps, which the log parser uses to tell reports apart.
"""

from __future__ import annotations

import shutil
import subprocess

from ..errors import KcrashError

MAX_BYTES = 64 << 20  # the server's cap on a log (server/config.py Limits.max_log_bytes)


def has_crash(text: str) -> bool:
    """Whether any line starts a kernel report, by the log parser's own table of report
    starts (a clean shutdown's log has nothing worth sending)."""
    from ..oops.blocks import start_kind
    from ..oops.formats import parse_line

    for raw in text.splitlines():
        line = parse_line(raw).line
        if line is not None and start_kind(line.text):
            return True
    return False


def previous_boot_kernel_log(
    boot: str = "-1", directory: str | None = None, timeout: float = 120.0
) -> str:
    """``journalctl -k -b BOOT`` as text; a clear error when there is no such boot."""
    exe = shutil.which("journalctl")
    if exe is None:
        raise KcrashError("--from-journal: journalctl is not installed (no systemd journal)")
    args = [exe, "-k", "-b", boot, "-o", "short-monotonic", "--no-pager", "-q"]
    if directory:
        args += ["-D", directory]
    try:
        proc = subprocess.run(args, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as e:
        raise KcrashError(f"--from-journal: journalctl took more than {timeout:.0f}s") from e
    err = proc.stderr.decode("utf-8", "replace").strip()
    out = proc.stdout[:MAX_BYTES].decode("utf-8", "replace")
    if proc.returncode != 0 or (not out.strip() and err):
        first = err.splitlines()[-1] if err else f"exit status {proc.returncode}"
        raise KcrashError(f"--from-journal: journalctl -k -b {boot}: {first}")
    return out
