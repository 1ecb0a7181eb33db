"""What issue 18's wait-for graph costs: ``kcrash analyze`` with and without it.

Usage::

    PYTHONPATH=corpus python bench/hang_cost.py            # one dump per hang scenario, 3 rounds
    PYTHONPATH=corpus python bench/hang_cost.py -n 3 --no-write

Each run is a child process (fresh interpreter, page cache warm after a discarded first
round), in rounds that alternate the two variants so a slow minute of the shared machine
lands on both. "without" is the same analysis with the ``waits`` step switched off
(``waits`` taken out of each class's ``Rule.context`` in the child); the step's own time
is read from the report's step records. Both debuginfo modes are measured: the DWARF one
reads the waiting frame's argument first, the no-debuginfo one scans each blocked task's
stack.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
SCENARIOS = (
    "abba-deadlock",
    "mutex-owner-waits",
    "rwsem-writer-stall",
    "hung-task",
    # the soft lockup behind a spinlock: the holder is searched on every other CPU
    "spin-held",
    "spin-held-heap",
)

CHILD = r"""
import json, sys, time
import kcrash.crash_classes as rules
import kcrash.pipeline as a
path, vmlinux, waits = sys.argv[1], sys.argv[2] or None, sys.argv[3] == "1"
if not waits:
    full = rules.context_of
    rules.context_of = lambda c: tuple(x for x in full(c) if x != "waits")
t0 = time.perf_counter()
r = a.analyze_path(path, vmlinux, no_debuginfo=vmlinux is None)
wall = time.perf_counter() - t0
step = next((s["seconds"] for s in r["steps"] if s["name"] == "waits"), None)
print(json.dumps({"wall": wall, "step": step, "hang": bool(r.get("hang"))}))
"""


def run_child(path: str, vmlinux: str | None, waits: bool) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=f"{REPO / 'src'}:{os.environ.get('PYTHONPATH', '')}")
    out = subprocess.run(
        [sys.executable, "-c", CHILD, path, vmlinux or "", "1" if waits else "0"],
        capture_output=True, text=True, env=env, check=True, timeout=600,
    )  # fmt: skip
    got: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    if got["hang"] != waits:
        raise SystemExit(f"{path}: the hang section is {'missing' if waits else 'present'}")
    return got


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("-n", type=int, default=3, help="rounds (after one warm-up)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    import kcrash_corpus

    # One dump per scenario, the kdump one when there is one (a QEMU capture otherwise).
    chosen: dict[str, dict[str, Any]] = {}
    for e in sorted(kcrash_corpus.load(), key=lambda e: e["capture"] != "kdump"):
        if e["kernel"] == "deb12" and e["scenario"] in SCENARIOS and e["compression"] == "zlib":
            chosen.setdefault(e["scenario"], e)
    dumps = [chosen[s] for s in SCENARIOS if s in chosen]
    if not dumps:
        raise SystemExit("no hang dump in the corpus: build it (kcrash_corpus build)")
    samples: dict[tuple[str, str, bool], list[dict[str, Any]]] = {}
    load0 = os.getloadavg()
    t_start = time.monotonic()
    for rnd in range(args.n + 1):
        for e in dumps:
            for mode, vml in (("dwarf", e["vmlinux"]), ("no-debuginfo", None)):
                order = (True, False) if rnd % 2 else (False, True)
                for waits in order:
                    got = run_child(e["path"], vml, waits)
                    if rnd:  # round 0 warms the page cache
                        samples.setdefault((e["id"], mode, waits), []).append(got)
    load1 = os.getloadavg()
    lines = [
        f"# Cost of the wait-for graph (issue 18), {dt.date.today().isoformat()}",
        "",
        f"`PYTHONPATH=corpus python bench/hang_cost.py -n {args.n}`: median of {args.n} runs "
        f"per cell, each a fresh process, page cache warm. Load average {load0[0]:.1f} at the "
        f"start, {load1[0]:.1f} at the end (a shared 2-core machine: compare within a row, "
        f"not with other days). Total {time.monotonic() - t_start:.0f} s.",
        "",
        "| dump | mode | analyze with graph | without | difference | `waits` step |",
        "|---|---|---|---|---|---|",
    ]
    for e in dumps:
        for mode in ("dwarf", "no-debuginfo"):
            w = [s["wall"] for s in samples[(e["id"], mode, True)]]
            wo = [s["wall"] for s in samples[(e["id"], mode, False)]]
            st = [s["step"] for s in samples[(e["id"], mode, True)]]
            mw, mwo, mst = statistics.median(w), statistics.median(wo), statistics.median(st)
            lines.append(
                f"| {e['id']} | {mode} | {mw:.2f} s | {mwo:.2f} s | {mw - mwo:+.2f} s "
                f"({(mw / mwo - 1) * 100:+.0f} %) | {mst:.3f} s |"
            )
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"{dt.date.today().isoformat()}-hang.md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
