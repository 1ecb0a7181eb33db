"""Time and peak memory of ``kcrash analyze`` on a 100 MB kernel log (issue 6).

The log is built from real text: the corpus's ``vmcore-dmesg.txt`` of one
boot, its non-report records repeated (with rising timestamps) until the
file reaches the size asked for, then the boot's real oops at the end — the
worst case, since the parser must stream everything before the verdict.
The verdict must equal the one from the original ``vmcore-dmesg.txt``.

    PYTHONPATH=corpus python bench/big_log.py [--mb 100] [--boot deb12/null-deref/kdump]
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


def measure(args: list[str]) -> tuple[float, int, str]:
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    out = proc.stdout.read().decode() if proc.stdout else ""
    if status != 0:
        sys.exit(f"failed: {' '.join(args)}: {proc.stderr.read().decode() if proc.stderr else ''}")
    return wall, usage.ru_maxrss, out


def main() -> None:
    import kcrash_corpus

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mb", type=int, default=100)
    p.add_argument("--boot", default="deb12/null-deref/kdump")
    a = p.parse_args()
    entry = next(e for e in kcrash_corpus.load() if e["boot"] == a.boot and e.get("dmesg"))
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "big.log"
        build_log(Path(entry["dmesg"]), log, a.mb)
        size = log.stat().st_size
        kcrash = [sys.executable, "-m", "kcrash", "analyze", "-f", "json"]
        _, _, small = measure([*kcrash, entry["dmesg"]])
        wall, rss_kb, big = measure([*kcrash, str(log)])
    same = json.loads(small)["signature"]["id"] == json.loads(big)["signature"]["id"]
    print("| log | size | wall time | peak RSS | verdict equals the original's |")
    print("|---|---|---|---|---|")
    print(
        f"| {a.boot} vmcore-dmesg.txt grown | {size / 2**20:.0f} MB | {wall:.1f} s | "
        f"{rss_kb / 1024:.0f} MB | {'yes' if same else 'NO'} |"
    )


if __name__ == "__main__":
    main()
