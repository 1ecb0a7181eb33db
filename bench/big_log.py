"""Time and peak memory of ``kcrash analyze`` on a big kernel log (issues 6 and 19).

The log is built from real text: the corpus's ``vmcore-dmesg.txt`` of one
boot, its non-report records repeated (with rising timestamps) until the
file reaches the size asked for, then the boot's real oops at the end — the
worst case, since the parser must stream everything before the verdict.
The verdict must equal the one from the original ``vmcore-dmesg.txt``.
The file is made at bench time in a temporary directory and deleted after.

``grep -c`` over the same file (page cache warm) is the physical floor: reading the bytes
and finding lines costs that much whatever the parser. Both are measured by ``os.wait4``
(wall, CPU, peak RSS); the result goes to ``bench/results/<date>-big-log.md``.

    PYTHONPATH=corpus python bench/big_log.py [--mb 1024] [--boot deb12/null-deref/kdump]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_TS = re.compile(r"^\[\s*(\d+)\.(\d+)\] ")


def build_log(src: Path, dest: Path, megabytes: int) -> None:
    lines = src.read_text(errors="replace").splitlines()
    first_report = next(
        i for i, ln in enumerate(lines) if "BUG:" in ln or "Kernel panic" in ln or "Oops" in ln
    )
    filler, tail = lines[:first_report], lines[first_report:]
    want = megabytes << 20
    t = 0.0
    with dest.open("w") as f:
        while f.tell() < want:
            for ln in filler:
                t += 0.000137
                f.write(_TS.sub(f"[{t:12.6f}] ", ln) + "\n")
        for ln in tail:
            t += 0.000001
            f.write(_TS.sub(f"[{t:12.6f}] ", ln) + "\n")


def count_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 24), b""))


def measure(args: list[str]) -> tuple[float, float, int, str]:
    """Wall time, CPU time (user + system), peak RSS (KB) and stdout of one child."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(args, stdout=out, stderr=err)
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        if os.waitstatus_to_exitcode(status) not in (0, 1):  # grep -c exits 1 on no match
            sys.exit(f"failed: {' '.join(args)}: {err.read().decode(errors='replace')}")
        return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, out.read().decode()


def main(argv: list[str] | None = None) -> int:
    import kcrash_corpus

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mb", type=int, default=1024, help="size of the log (default 1024 MB)")
    p.add_argument("--boot", default="deb12/null-deref/kdump")
    p.add_argument("--tmp", help="directory for the log (default: the system's temp dir)")
    p.add_argument("--no-write", action="store_true", help="print only")
    a = p.parse_args(argv)
    entry = next(e for e in kcrash_corpus.load() if e["boot"] == a.boot and e.get("dmesg"))
    with tempfile.TemporaryDirectory(prefix="kcrash-big-log-", dir=a.tmp) as tmp:
        log = Path(tmp) / "big.log"
        t0 = time.perf_counter()
        build_log(Path(entry["dmesg"]), log, a.mb)
        made = time.perf_counter() - t0
        size = log.stat().st_size
        lines = count_lines(log)
        kcrash = [sys.executable, "-m", "kcrash", "analyze", "-f", "json"]
        _, _, _, small = measure([*kcrash, entry["dmesg"]])
        measure(["grep", "-c", "BUG:", str(log)])  # the page cache holds the file now
        g_wall, g_cpu, g_rss, _ = measure(["grep", "-c", "BUG:", str(log)])
        wall, cpu, rss_kb, big = measure([*kcrash, str(log)])
    same = json.loads(small)["signature"]["id"] == json.loads(big)["signature"]["id"]
    rows = [
        "| command | size | wall time | CPU time | peak RSS | per line | verdict equals the "
        "original's |",
        "|---|---|---|---|---|---|---|",
        f"| `kcrash analyze` ({a.boot} vmcore-dmesg.txt grown) | {size / 2**20:.0f} MB | "
        f"{wall:.1f} s | {cpu:.1f} s | {rss_kb / 1024:.0f} MB | {cpu / lines * 1e6:.1f} µs | "
        f"{'yes' if same else 'NO'} |",
        f"| `grep -c BUG:` (the floor) | {size / 2**20:.0f} MB | {g_wall:.2f} s | {g_cpu:.2f} s "
        f"| {g_rss / 1024:.0f} MB | {g_cpu / lines * 1e6:.2f} µs | |",
    ]
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    text = "\n".join(
        [
            *rows,
            "",
            f"{lines:,} lines, made in {made:.0f} s. kcrash / grep: {wall / g_wall:.0f}× wall, "
            f"{cpu / max(g_cpu, 1e-3):.0f}× CPU. Load after the run: {load} (2 CPUs, shared).",
            "",
            f"Reproduce: `PYTHONPATH=corpus python bench/big_log.py --mb {a.mb}` "
            f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
        ]
    )
    print(text)
    if not a.no_write:
        out = (
            Path(__file__).resolve().parent / "results" / f"{time.strftime('%Y-%m-%d')}-big-log.md"
        )
        out.write_text(text + "\n")
        print(f"written {out}", file=sys.stderr)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
