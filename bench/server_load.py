"""Load test of ``kcrash server`` on loopback, SQLite and PostgreSQL (issue 16).

Measures, for each database:

1. **ingest**: ``POST /api/v1/crashes`` of N report JSONs (several client threads) and of M
   vmcores (streamed, zstd in transit, as ``kcrash submit`` sends them); the server runs with
   ``--broker`` and no worker, so ingest is measured without analyses competing for the CPU.
2. **bucket queries at S stored crashes**: rows are added straight into the database up to S
   (bulk insert, like a server that has run for months), then ``GET /api/v1/buckets``,
   ``GET /api/v1/buckets/{signature}`` and a filtered ``GET /api/v1/crashes`` are timed.
3. **analysis throughput** with 1 and 2 workers: K vmcores analyzed end to end (upload to
   ``done``); SQLite with the embedded pool (``--workers 1|2``), PostgreSQL with ``kcrash
   worker`` processes on Redis.

Inputs, all real (never mocks):
- report JSONs: ``kcrash analyze --format json`` of the corpus's vmcore-dmesg.txt files and of
  tests/data/oops; each submission is one of them with its ``input.path`` set to a path of its
  own, so N submissions are N distinct crashes (the server deduplicates by content hash).
- vmcores: the corpus's dumps, plus re-encodings of its kdump dumps by Debian's
  ``makedumpfile`` (``-l``, ``-p``, ``-z`` re-filtering of a zlib dump: another real dump file
  of the same crash) until there are M distinct files; cached in ~/.cache/kcrash/bench-dumps.
- the S stored rows beyond the ingested ones copy the bucket columns (signature, class,
  culprit module, kernel, host) of the analyzed reports, without a report body each (S full
  reports would be gigabytes); every bucket's representative is an ingested crash.

Runs redis-server and PostgreSQL from Debian's packages in temporary directories (the test
fixtures of tests/services.py).  Prints Markdown and writes ``bench/results/<date>-server-load
.md`` and ``.json``; the scale actually used is printed with the numbers.

    PYTHONPATH=src:corpus python bench/server_load.py                 # the full scale
    PYTHONPATH=src:corpus python bench/server_load.py --reports 500 --vmcores 10 --stored 5000
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import contextlib
import datetime as dt
import hashlib
import http.client
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "src"))

from server_process import ServerProcess, kcrash_env, make_token  # noqa: E402
from services import create_database, postgres_cluster, redis_server  # noqa: E402

CACHE = Path(os.environ.get("KCRASH_BENCH_CACHE", Path.home() / ".cache/kcrash/bench-dumps"))
REENCODINGS = (("-l", "lzo"), ("-p", "snappy"), ("-z", "zstd"))


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- inputs ---------------------------------------------------------------------------------


def base_reports(corpus: list[dict[str, Any]], limit: int) -> list[bytes]:
    """Real reports of real logs, analyzed two at a time (cached by input content)."""
    inputs = sorted({e["dmesg"] for e in corpus if e.get("dmesg") and os.path.exists(e["dmesg"])})
    inputs += sorted(str(p) for p in (ROOT / "tests/data/oops").glob("*.txt"))
    inputs = inputs[:limit]
    CACHE.mkdir(parents=True, exist_ok=True)

    def one(path: str) -> bytes | None:
        key = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:24]
        cached = CACHE / f"report-{key}.json"
        if cached.exists():
            return cached.read_bytes()
        r = subprocess.run(
            [sys.executable, "-m", "kcrash", "analyze", path, "--format", "json"],
            env=kcrash_env(),
            capture_output=True,
            timeout=300,
        )
        if r.returncode not in (0, 4) or not r.stdout.strip():
            return None
        cached.write_bytes(r.stdout)
        return r.stdout

    with cf.ThreadPoolExecutor(2) as ex:
        out = [r for r in ex.map(one, inputs) if r]
    log(f"{len(out)} base reports from {len(inputs)} logs")
    return out


def report_variant(base: bytes, i: int) -> bytes:
    rep = json.loads(base)
    rep.setdefault("input", {})["path"] = f"/var/crash/bench-{i:06d}/vmcore-dmesg.txt"
    return json.dumps(rep).encode()


def vmcores(corpus: list[dict[str, Any]], want: int) -> list[str]:
    """The corpus's dump files, then makedumpfile re-encodings of its kdump-zlib dumps."""
    paths = sorted({e["path"] for e in corpus if e["format"] in ("kdump", "elf", "flattened")})
    zlib = sorted(
        (e for e in corpus if e["format"] == "kdump" and e.get("compression") == "zlib"),
        key=lambda e: e["size"],
    )
    CACHE.mkdir(parents=True, exist_ok=True)
    for flag, name in REENCODINGS:
        for e in zlib:
            if len(paths) >= want:
                return paths[:want]
            out = CACHE / f"{e['id'].replace('/', '_')}.re-{name}"
            if not out.exists():
                tmp = out.with_suffix(".tmp")
                tmp.unlink(missing_ok=True)
                r = subprocess.run(
                    ["nice", "-n", "10", "makedumpfile", flag, "-d", "31", e["path"], str(tmp)],
                    capture_output=True,
                    timeout=600,
                )
                if r.returncode != 0:
                    log(f"makedumpfile {flag} {e['id']}: {r.stderr[-200:]!r}")
                    continue
                tmp.rename(out)
            paths.append(str(out))
    return paths[:want]


# --- HTTP -----------------------------------------------------------------------------------


def post(port: int, token: str, body: bytes | Path, host: str) -> tuple[int, float]:
    """One upload (zstd in transit, as kcrash submit sends); (status, seconds)."""
    import zstandard

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/octet-stream",
        "Content-Encoding": "zstd",
        "X-Kcrash-Host": host,
    }

    def chunks() -> Any:
        comp = zstandard.ZstdCompressor(level=3).compressobj()
        if isinstance(body, Path):
            with open(body, "rb") as f:
                while block := f.read(1 << 20):
                    yield comp.compress(block)
        else:
            yield comp.compress(body)
        yield comp.flush()

    t = time.perf_counter()
    conn.request("POST", "/api/v1/crashes", body=chunks(), headers=headers, encode_chunked=True)
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp.status, time.perf_counter() - t


def get(port: int, token: str, path: str) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    t = time.perf_counter()
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    if resp.status != 200:
        raise RuntimeError(f"GET {path}: {resp.status}")
    return time.perf_counter() - t


def flush(broker: str) -> None:
    import redis

    redis.Redis.from_url(broker).flushall()


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


# --- phases ---------------------------------------------------------------------------------


def ingest(srv: ServerProcess, token: str, reports: list[bytes], dumps: list[str], threads: int):
    res: dict[str, Any] = {}
    n = len(reports)
    t0 = time.perf_counter()
    with cf.ThreadPoolExecutor(threads) as ex:
        results = list(
            ex.map(lambda i: post(srv.port, token, reports[i], f"host-{i % 500:03d}"), range(n))
        )
    wall = time.perf_counter() - t0
    bad = [s for s, _ in results if s != 202]
    lat = [t for _, t in results]
    res["reports"] = {
        "count": n,
        "threads": threads,
        "seconds": wall,
        "per_second": n / wall,
        "p50_ms": pct(lat, 50) * 1000,
        "p95_ms": pct(lat, 95) * 1000,
        "refused": len(bad),
    }
    log(f"  {n} reports in {wall:.1f}s ({n / wall:.0f}/s), refused {len(bad)}")
    size = sum(os.path.getsize(p) for p in dumps)
    t0 = time.perf_counter()
    with cf.ThreadPoolExecutor(2) as ex:
        vres = list(ex.map(lambda p: post(srv.port, token, Path(p), "dump-host"), dumps))
    wall = time.perf_counter() - t0
    res["vmcores"] = {
        "count": len(dumps),
        "bytes": size,
        "seconds": wall,
        "per_second": len(dumps) / wall,
        "mib_per_second": size / wall / (1 << 20),
        "refused": sum(1 for s, _ in vres if s != 202),
    }
    log(f"  {len(dumps)} vmcores ({size >> 20} MiB) in {wall:.1f}s")
    return res


def fill(database_url: str, data: Path, stored: int, seed: int = 16) -> dict[str, Any]:
    """Rows up to ``stored`` crashes, copying the ingested reports' bucket columns."""
    from sqlalchemy import func, insert, select

    from kcrash.server import buckets
    from kcrash.server.config import Settings
    from kcrash.server.db import open_database
    from kcrash.server.ingest import apply_report
    from kcrash.server.models import Bucket, Crash, Host

    db = open_database(Settings(data_dir=data, database_url=database_url))
    rnd = random.Random(seed)
    t0 = time.perf_counter()
    with db.session() as s:
        # The ingested report crashes, analyzed here in-process (their report is the content).
        rows = s.scalars(select(Crash).where(Crash.kind == "report")).all()
        for c in rows:
            with open(c.blob_path, "rb") as f:
                apply_report(c, json.load(f))
            c.status = "done"
            buckets.assign(s, c)
        s.flush()
        have = s.scalar(select(func.count(Crash.id))) or 0
        protos = [
            (c.signature, c.class_, c.culprit_module, c.kernel_release, c.bucket_id)
            for c in rows
            if c.bucket_id
        ]
        hosts = [
            s.execute(
                insert(Host).values(key=f"bench:{i}", name=f"fleet-{i:04d}")
            ).inserted_primary_key[0]
            for i in range(1000)
        ]
        now = dt.datetime.now(dt.timezone.utc)
        batch = []
        for i in range(max(0, stored - have)):
            sig, cls, mod, rel, bid = rnd.choice(protos)
            t = now - dt.timedelta(seconds=rnd.uniform(0, 90 * 86400))
            batch.append(
                {
                    "sha256": hashlib.sha256(f"bench-{seed}-{i}".encode()).hexdigest(),
                    "kind": "log",
                    "host_id": rnd.choice(hosts),
                    "received_at": t,
                    "crashed_at": t,
                    "kernel_release": rel,
                    "status": "done",
                    "signature": sig,
                    "bucket_id": bid,
                    "class_": cls,
                    "culprit_module": mod,
                    "size": 0,
                    "attempts": 1,
                }
            )
            if len(batch) == 5000:
                s.execute(insert(Crash), batch)
                batch = []
        if batch:
            s.execute(insert(Crash), batch)
        buckets.refresh_stats(s, [b for (b,) in s.execute(select(Bucket.id))])
        total = s.scalar(select(func.count(Crash.id)))
        nb = s.scalar(select(func.count(Bucket.id)))
    db.engine.dispose()
    log(f"  filled to {total} crashes in {nb} buckets in {time.perf_counter() - t0:.0f}s")
    return {"crashes": total, "buckets": nb, "fill_seconds": time.perf_counter() - t0}


def queries(srv: ServerProcess, token: str, n: int) -> dict[str, Any]:
    status, page = srv.json("GET", "/api/v1/buckets?limit=50", token)
    assert status == 200, page
    sigs = [b["signature"] for b in page["items"]]
    cls = page["items"][0]["class"]
    out = {}
    for name, paths in (
        ("buckets list (50, by last seen)", ["/api/v1/buckets?limit=50"]),
        ("bucket detail", [f"/api/v1/buckets/{s}" for s in sigs]),
        ("crashes of the top bucket's class (50)", [f"/api/v1/crashes?class={cls}&limit=50"]),
    ):
        get(srv.port, token, paths[0])  # warm
        lat = [get(srv.port, token, paths[i % len(paths)]) for i in range(n)]
        out[name] = {
            "n": n,
            "p50_ms": pct(lat, 50) * 1000,
            "p95_ms": pct(lat, 95) * 1000,
            "mean_ms": statistics.fmean(lat) * 1000,
        }
        log(f"  {name}: p50 {out[name]['p50_ms']:.0f} ms, p95 {out[name]['p95_ms']:.0f} ms")
    return out


def throughput(
    kind: str, workdir: Path, db_url: str | None, broker: str | None, dumps: list[str], workers: int
) -> dict[str, Any]:
    data = workdir / f"tp-{kind}-{workers}" / "data"
    data.parent.mkdir(parents=True, exist_ok=True)
    extra = ["--broker", broker] if broker else ["--workers", str(workers)]
    srv = ServerProcess(data, database=db_url, extra=extra)
    tok = {r: make_token(data, r, database=db_url) for r in ("submit", "read")}
    srv.start()
    procs = []
    try:
        if broker:
            for i in range(workers):
                cmd = [sys.executable, "-m", "kcrash", "worker", "--data", str(data)]
                cmd += ["--database", db_url or "", "--broker", broker, "--log-level", "warning"]
                cmd += ["--name", f"bench{i}@%h"]
                procs.append(
                    subprocess.Popen(
                        cmd,
                        env=kcrash_env(),
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                        start_new_session=True,
                    )
                )
        t0 = time.perf_counter()
        for p in dumps:
            st, _ = post(srv.port, tok["submit"], Path(p), "tp-host")
            assert st == 202, st
        _status, page = srv.json("GET", "/api/v1/crashes?limit=100", tok["read"])
        ids = [c["id"] for c in page["items"]]
        rows = [srv.wait_done(tok["read"], i, timeout=1800) for i in ids]
        wall = time.perf_counter() - t0
    finally:
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, 15)
            p.wait()
        srv.stop()
        shutil.rmtree(data.parent, ignore_errors=True)
    done = [r for r in rows if r["status"] == "done"]
    res = {
        "workers": workers,
        "dumps": len(dumps),
        "done": len(done),
        "seconds": wall,
        "dumps_per_minute": len(dumps) / wall * 60,
        "mean_analysis_s": statistics.fmean(r["analysis_seconds"] or 0 for r in rows),
    }
    log(f"  {kind} {workers} worker(s): {len(dumps)} dumps in {wall:.0f}s")
    return res


# --- main -----------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reports", type=int, default=10_000)
    ap.add_argument("--vmcores", type=int, default=100)
    ap.add_argument("--stored", type=int, default=100_000)
    ap.add_argument("--throughput-dumps", type=int, default=6)
    ap.add_argument("--queries", type=int, default=40)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--base-reports", type=int, default=40)
    ap.add_argument("--dbs", default="sqlite,postgresql")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()

    import kcrash_corpus

    corpus = list(kcrash_corpus.load())
    started = time.perf_counter()
    bases = base_reports(corpus, args.base_reports)
    reports = [report_variant(bases[i % len(bases)], i) for i in range(args.reports)]
    dumps = vmcores(corpus, args.vmcores)
    small = sorted(
        (e for e in corpus if e["kernel"] == "deb12" and e["format"] == "kdump"),
        key=lambda e: e["size"],
    )
    tp_dumps = [e["path"] for e in small[: args.throughput_dumps]]
    log(f"inputs ready: {len(reports)} reports, {len(dumps)} vmcores")
    result: dict[str, Any] = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}",
        "scale": {
            "reports": len(reports),
            "vmcores": len(dumps),
            "stored": args.stored,
            "throughput_dumps": len(tp_dumps),
            "base_reports": len(bases),
            "threads": args.threads,
        },
        "dbs": {},
    }
    with redis_server() as broker, postgres_cluster() as pg:
        for kind in args.dbs.split(","):
            log(f"== {kind}")
            work = Path(tempfile.mkdtemp(prefix=f"kcrash-bench-{kind}-"))
            try:
                url = create_database(pg, f"bench_{kind}") if kind == "postgresql" else None
                data = work / "ingest" / "data"
                data.parent.mkdir(parents=True, exist_ok=True)
                srv = ServerProcess(data, database=url, extra=["--broker", broker])
                tok = {r: make_token(data, r, database=url) for r in ("submit", "read")}
                srv.start()
                try:
                    r: dict[str, Any] = {
                        "ingest": ingest(srv, tok["submit"], reports, dumps, args.threads)
                    }
                    srv.stop()
                    db_url = url or f"sqlite:///{data / 'kcrash.db'}"
                    r["stored"] = fill(db_url, data, args.stored)
                    srv.start()
                    r["queries"] = queries(srv, tok["read"], args.queries)
                finally:
                    srv.stop()
                    shutil.rmtree(data / "blobs", ignore_errors=True)
                r["throughput"] = []
                for w in (1, 2):
                    flush(broker)  # the ingest phase's messages are not this run's work
                    db = create_database(pg, f"bench_tp_{w}") if kind == "postgresql" else None
                    bk = broker if kind == "postgresql" else None
                    r["throughput"].append(throughput(kind, work, db, bk, tp_dumps, w))
                result["dbs"][kind] = r
                if not args.no_write:  # a failure later must not lose what was measured
                    partial = Path(args.out) / f"{dt.date.today().isoformat()}-server-load.json"
                    partial.parent.mkdir(parents=True, exist_ok=True)
                    partial.write_text(json.dumps(result, indent=1) + "\n")
            finally:
                shutil.rmtree(work, ignore_errors=True)
    result["total_seconds"] = time.perf_counter() - started
    md = markdown(result)
    print(md)
    if not args.no_write:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        stem = out / f"{dt.date.today().isoformat()}-server-load"
        stem.with_suffix(".md").write_text(md)
        stem.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
        log(f"wrote {stem}.md and .json")
    return 0


def markdown(r: dict[str, Any]) -> str:
    sc = r["scale"]
    lines = [
        f"# kcrash server load test, {r['date']}",
        "",
        f"Machine: {r['machine']} (shared with other jobs while this ran).  "
        f"Total {r['total_seconds'] / 60:.1f} min.",
        "",
        f"Scale: {sc['reports']} report JSONs (from {sc['base_reports']} real reports, each "
        f"with its own input.path), {sc['vmcores']} vmcores (the corpus's dumps and "
        "makedumpfile re-encodings of its kdump dumps), "
        f"{sc['stored']} stored crashes for the queries, {sc['throughput_dumps']} Debian 12 "
        f"corpus vmcores for analysis throughput; {sc['threads']} client threads.",
        "",
        "| | " + " | ".join(r["dbs"]) + " |",
        "|---|" + "---|" * len(r["dbs"]),
    ]

    def row(name: str, f: Any) -> None:
        lines.append(f"| {name} | " + " | ".join(f(v) for v in r["dbs"].values()) + " |")

    row("report JSONs ingested /s", lambda v: f"{v['ingest']['reports']['per_second']:.0f}")
    row(
        "report upload latency p50 / p95",
        lambda v: (
            f"{v['ingest']['reports']['p50_ms']:.0f} / {v['ingest']['reports']['p95_ms']:.0f} ms"
        ),
    )
    row(
        "vmcores ingested /s (MiB/s)",
        lambda v: (
            f"{v['ingest']['vmcores']['per_second']:.1f} "
            f"({v['ingest']['vmcores']['mib_per_second']:.0f})"
        ),
    )
    row(
        "refused uploads",
        lambda v: str(v["ingest"]["reports"]["refused"] + v["ingest"]["vmcores"]["refused"]),
    )
    row(
        "stored crashes / buckets", lambda v: f"{v['stored']['crashes']} / {v['stored']['buckets']}"
    )
    names = list(next(iter(r["dbs"].values()))["queries"])
    for q in names:
        row(
            f"{q}: p50 / p95",
            lambda v, q=q: f"{v['queries'][q]['p50_ms']:.0f} / {v['queries'][q]['p95_ms']:.0f} ms",
        )
    for i, w in enumerate((1, 2)):
        row(
            f"analysis, {w} worker(s): vmcores/min (mean s each)",
            lambda v, i=i: (
                f"{v['throughput'][i]['dumps_per_minute']:.1f} "
                f"({v['throughput'][i]['mean_analysis_s']:.0f} s, "
                f"{v['throughput'][i]['done']}/{v['throughput'][i]['dumps']} done)"
            ),
        )
    lines += [
        "",
        "SQLite: the embedded server (`--workers 1|2` local pool) for throughput; PostgreSQL: "
        "`kcrash server --broker` plus 1 or 2 `kcrash worker` processes on Redis.  Ingest runs "
        "with `--broker` and no worker on both, so uploads are not slowed by analyses.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
