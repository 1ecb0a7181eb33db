"""What issue 18's memory and slab-object analysis costs inside ``kcrash analyze``.

Usage::

    PYTHONPATH=src:corpus python bench/memslab.py            # 3 rounds, writes results
    PYTHONPATH=src:corpus python bench/memslab.py -n 5 --no-write

For each dump of the scenarios that trigger the analysis (``slab-leak`` and ``oom``: the
memory step; ``uaf-track`` and ``use-after-free``: the slab-objects step) it runs
``analyze_path`` with and without debuginfo in this process, N rounds after a warm-up,
and reports the median wall time of the whole analysis and of the new step alone (the
step's own timer, :mod:`kcrash.steps`). The step is the extra cost: without it the
analysis is the same. Measures, does not assert.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import time
from pathlib import Path

import kcrash_corpus

from kcrash.pipeline import analyze_path

SCENARIOS = {
    "slab-leak": "memory",
    "oom": "memory",
    "uaf-track": "slab objects",
    "use-after-free": "slab objects",
}


def measure(entry: dict, dwarf: bool, rounds: int) -> tuple[float, float]:
    """Median (whole analysis, the step) in seconds over ``rounds`` runs."""
    step = SCENARIOS[entry["scenario"]]
    totals, steps = [], []
    for i in range(rounds + 1):
        t0 = time.perf_counter()
        r = analyze_path(entry["path"], entry["vmlinux"] if dwarf else None, no_debuginfo=not dwarf)
        total = time.perf_counter() - t0
        got = [s["seconds"] for s in r["steps"] if s["name"] == step]
        if i:  # round 0 warms the page cache
            totals.append(total)
            steps.append(got[0] if got else float("nan"))
    return statistics.median(totals), statistics.median(steps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=3, help="rounds after the warm-up (default 3)")
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args()
    entries = [
        e for e in kcrash_corpus.load() if e["scenario"] in SCENARIOS and e["kernel"] != "deb13"
    ]
    lines = [
        f"# issue 18 analysis cost ({dt.date.today()}, {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.1f})",
        "",
        f"Median of {args.n} runs after a warm-up, `analyze_path` in one process.",
        "",
        "| dump | mode | analyze (s) | new step | step (s) | share |",
        "|---|---|---|---|---|---|",
    ]
    for e in sorted(entries, key=lambda e: e["id"]):
        for dwarf in (True, False):
            total, step = measure(e, dwarf, args.n)
            lines.append(
                f"| {e['id']} | {'dwarf' if dwarf else 'btf'} | {total:.2f} | "
                f"{SCENARIOS[e['scenario']]} | {step:.3f} | {100 * step / total:.1f} % |"
            )
            print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    if not args.no_write:
        out = Path(__file__).parent / "results" / f"{dt.date.today()}-memslab.md"
        out.write_text(text)
        print(f"written {out}")


if __name__ == "__main__":
    main()
