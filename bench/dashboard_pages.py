"""How long each dashboard page takes on the server with 100,000 stored crashes (issue 17).

The budget is 300 ms per page.  The store is filled through the server's own models
(``Crash``/``CrashReport``/``Bucket``/``Host`` rows, columns copied out of each report by
``server.ingest.apply_report``) with bulk inserts, which takes a minute instead of the
hours real ingestion would.  The reports are real: ``kcrash analyze --format json`` of the
oops logs in tests/data/oops (their sources are recorded there).  What is synthetic is the
spread: ~2,000 buckets (each real report's signature in several variants, as splits make
them), 2,000 hosts, a dozen kernel releases and 60 days of arrival times, recent days
busier — so that lists, filters and aggregates have a fleet's shape to work on.

Pages are requested in-process through Starlette's TestClient (no network, no browser):
what is timed is the server's work, template rendering included.  Each page is requested
``--rounds`` times after one warm-up; the median and the maximum are printed, and written
to bench/results/<date>-dashboard.md unless ``--no-write``.

    PYTHONPATH=src python bench/dashboard_pages.py                 # 100,000 crashes
    PYTHONPATH=src python bench/dashboard_pages.py --crashes 20000 --no-write
    PYTHONPATH=src python bench/dashboard_pages.py --data /tmp/dash-bench --reuse
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OOPS = ROOT / "tests" / "data" / "oops"
BUDGET_MS = 300.0
#: Real Debian and upstream releases (the corpus's kernels and others of the same lines).
RELEASES = [
    "5.10.0-44-amd64",
    "5.10.0-45-amd64",
    "5.10.0-46-amd64",
    "6.1.0-55-amd64",
    "6.1.0-56-amd64",
    "6.1.0-57-amd64",
    "6.12.115+deb13-amd64",
    "6.12.116+deb13-amd64",
    "6.12.117+deb13-amd64",
    "6.6.63",
    "6.11.10",
    "6.13.0-rc1",
]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    return env


def _analyze(path: Path) -> dict[str, Any] | None:
    out = subprocess.run(
        [sys.executable, "-m", "kcrash", "analyze", str(path), "--format", "json"],
        env=_env(),
        capture_output=True,
        timeout=300,
    )
    if out.returncode != 0:
        return None
    report: dict[str, Any] = json.loads(out.stdout)
    return report if (report.get("signature") or {}).get("id") else None


def real_reports(cache: Path) -> list[dict[str, Any]]:
    """One report per oops log (cached: the analyses take a minute on a busy machine)."""
    if cache.exists():
        return list(json.loads(cache.read_text()))
    logs = sorted(OOPS.glob("*.txt"))
    with ThreadPoolExecutor(4) as pool:
        reports = [r for r in pool.map(_analyze, logs) if r is not None]
    cache.write_text(json.dumps(reports))
    return reports


def fill(db: Any, reports: list[dict[str, Any]], n: int, seed: int = 17) -> dict[str, Any]:
    """Bulk-insert ``n`` crashes with hosts and buckets; returns names the pages need."""
    from sqlalchemy import insert

    from kcrash.server.ingest import apply_report
    from kcrash.server.models import Bucket, Crash, CrashReport, Host

    rnd = random.Random(seed)
    now = dt.datetime.now(dt.timezone.utc)
    variants = max(1, 2000 // len(reports))
    hosts = [
        {
            "id": i + 1,
            "key": f"name:host-{i:04d}",
            "name": f"host-{i:04d}",
            "distro": rnd.choice(["Debian 11", "Debian 12", "Debian 13"]),
            "hardware": rnd.choice(["PowerEdge R650", "ProLiant DL360 Gen10", "QEMU Standard PC"]),
        }
        for i in range(2000)
    ]
    # Per report: the columns apply_report copies out, computed once.
    cols = []
    for r in reports:
        c = Crash()
        apply_report(c, r)
        cols.append(c)
    buckets: dict[tuple[str | None, int], dict[str, Any]] = {}
    rows = []
    weights = [1 / (k + 1) for k in range(len(reports))]  # a few bugs hit most
    for i in range(n):
        k = rnd.choices(range(len(reports)), weights)[0]
        v = rnd.randrange(variants)
        c = cols[k]
        key = (c.signature, v)  # two logs of one bug share a signature: one bucket
        age = rnd.expovariate(1 / 12) % 60  # days ago, recent days busier
        at = now - dt.timedelta(days=age, seconds=rnd.randrange(3600))
        b = buckets.get(key)
        if b is None:
            verdict = reports[k]["verdict"]
            b = buckets[key] = {
                "id": len(buckets) + 1,
                "signature": f"{c.signature}" + (f"~{v}" if v else ""),
                "title": verdict.get("title") or "",
                "class_": c.class_,
                "culprit": (verdict.get("culprit") or {}).get("function"),
                "culprit_module": c.culprit_module,
                "state": rnd.choice(["open"] * 8 + ["fixed", "ignored"]),
                "fixed_in": None,
                "first_seen": at,
                "last_seen": at,
                "count": 0,
                "origin": "rules" if not v else "split",
                "representative_id": i + 1,
            }
            if b["state"] == "fixed":
                b["fixed_in"] = rnd.choice(RELEASES)
        b["count"] += 1
        b["first_seen"], b["last_seen"] = min(b["first_seen"], at), max(b["last_seen"], at)
        rows.append(
            {
                "id": i + 1,
                "sha256": hashlib.sha256(f"bench-{seed}-{i}".encode()).hexdigest(),
                "kind": "log",
                "host_id": rnd.randrange(len(hosts)) + 1,
                "received_at": at,
                "crashed_at": None,
                "kernel_release": rnd.choice(RELEASES),
                "status": "done",
                "signature": c.signature,
                "bucket_id": b["id"],
                "size": 4096,
                "class_": c.class_,
                "culprit_module": c.culprit_module,
                "taint": c.taint,
                "panic": c.panic,
                "attempts": 1,
                "analysis_seconds": 1.0,
                "_k": k,
            }
        )
    with db.session() as s:
        s.execute(insert(Host), hosts)
        s.execute(insert(Bucket), list(buckets.values()))
        for start in range(0, len(rows), 5000):
            chunk = rows[start : start + 5000]
            s.execute(insert(Crash), [{c: v for c, v in r.items() if c != "_k"} for r in chunk])
            reports_of = [{"crash_id": r["id"], "report": reports[r["_k"]]} for r in chunk]
            s.execute(insert(CrashReport), reports_of)
    big = max(buckets.values(), key=lambda b: b["count"])
    return {
        "big_bucket": big["signature"],
        "big_pages": big["count"] // 25,
        "crash": n // 2,
        "host": "host-0042",
        "class": big["class_"],
        "text": (cols[0].panic or "BUG")[:12],
    }


def pages(info: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        ("overview", "/"),
        ("bucket list", "/buckets"),
        ("bucket list, class filter", f"/buckets?class={info['class']}"),
        ("bucket list, text search", f"/buckets?q={info['text']}"),
        ("bucket list, page 40 by count", "/buckets?sort=count&page=40"),
        ("bucket page (largest)", f"/buckets/{info['big_bucket']}"),
        ("bucket page, last crash page", f"/buckets/{info['big_bucket']}?page={info['big_pages']}"),
        ("crash page", f"/crashes/{info['crash']}"),
        ("search, class + kernel", f"/search?class={info['class']}&kernel=6.1.0-57-amd64"),
        ("search, panic text", f"/search?q={info['text']}"),
        ("search, page 100", "/search?page=100"),
        ("hosts", "/hosts"),
        ("host page", f"/hosts/{info['host']}"),
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--crashes", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--data", type=Path, help="data directory (default: a temporary one)")
    ap.add_argument("--reuse", action="store_true", help="keep an already filled --data")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()

    from fastapi.testclient import TestClient

    from kcrash.server.api import create_app
    from kcrash.server.auth import create_token
    from kcrash.server.config import Settings
    from kcrash.server.db import open_database

    tmp = None
    if args.data is None:
        tmp = tempfile.TemporaryDirectory(prefix="kcrash-dash-bench-")
        args.data = Path(tmp.name)
    settings = Settings(data_dir=args.data / "data")
    info_file = args.data / "bench-info.json"
    db = open_database(settings)
    t0 = time.monotonic()
    if args.reuse and info_file.exists():
        info = json.loads(info_file.read_text())
    else:
        reports = real_reports(args.data / "reports.json")
        print(f"{len(reports)} real reports; filling {args.crashes} crashes …", flush=True)
        info = fill(db, reports, args.crashes)
        info["fill_seconds"] = round(time.monotonic() - t0)
        info_file.write_text(json.dumps(info))
    with db.session() as s:
        token = create_token(s, "admin", "bench")
    fill_s = info.get("fill_seconds", time.monotonic() - t0)
    client = TestClient(create_app(settings))
    client.cookies.set("kcrash_session", token)
    results = []
    for name, path in pages(info):
        r = client.get(path, follow_redirects=False)
        if r.status_code != 200:
            print(f"{name}: {path} answered {r.status_code}", file=sys.stderr)
            return 1
        times, cpu = [], []
        for _ in range(args.rounds):
            t, c = time.perf_counter(), time.process_time()
            client.get(path, follow_redirects=False)
            times.append((time.perf_counter() - t) * 1000)
            cpu.append((time.process_time() - c) * 1000)
        med, mx, cmed = statistics.median(times), max(times), statistics.median(cpu)
        results.append((name, path, med, mx, cmed))
        print(f"{name:32} {med:7.1f} ms (max {mx:6.1f}, CPU {cmed:6.1f})", flush=True)
    load = os.getloadavg()[0]
    lines = [
        f"# Dashboard pages at {args.crashes:,} crashes ({dt.date.today().isoformat()})",
        "",
        f"Budget {BUDGET_MS:.0f} ms per page on the server; SQLite; median and max of "
        f"{args.rounds} requests after a warm-up, in-process (TestClient). Fill: {fill_s:.0f} s. "
        f"Load average when measured: {load:.1f} on {os.cpu_count()} CPUs (a shared machine).",
        "",
        "CPU ms is the server process's CPU time for the request: what the page costs when",
        "the machine is not shared (wall time here includes waiting for the other CPU users).",
        "",
        "| page | path | median ms | max ms | CPU ms | within budget (wall / CPU) |",
        "|---|---|---:|---:|---:|---|",
    ]
    for name, path, med, mx, cmed in results:
        ok = " / ".join("yes" if v <= BUDGET_MS else "**no**" for v in (med, cmed))
        lines.append(f"| {name} | `{path}` | {med:.1f} | {mx:.1f} | {cmed:.1f} | {ok} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        out = ROOT / "bench" / "results" / f"{dt.date.today().isoformat()}-dashboard.md"
        out.write_text(text)
        print(f"written to {out}")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
