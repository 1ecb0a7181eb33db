"""Load test of ``kcrash server`` on loopback, SQLite and PostgreSQL (issue 16).

For each database, in this order (the store of one phase is the next one's input):

1. **ingest**: M vmcores (2 client threads), then N report JSONs (8 client threads), each sent
   by ``kcrash submit``'s own client code (:func:`kcrash.submit.upload.submit_file`: the
   content hash ahead, the body streamed zstd-compressed, one attempt so that a refusal is
   counted, not retried away) to a real ``kcrash server``.  The server runs with ``--broker``
   and no worker, so ingest is measured without analyses competing for the two CPUs.
2. **bulk load to S stored crashes** through the DB layer: the N ingested report crashes are
   put in their buckets by the server's own code (``ingest.apply_report`` + ``buckets.assign``
   on each stored report, in one process), then rows are added up to S that copy those
   reports' bucket columns (signature, class, culprit module, kernel) on 1,000 hosts over 90
   days, without a report body each (S full reports would be gigabytes).
3. **analysis throughput**: the M vmcores, analyzed end to end by real workers (their own
   child ``kcrash analyze`` processes, with the corpus kernels' debuginfo: DWARF mode) in a
   store of S crashes: SQLite with the embedded pool (``kcrash server --workers 1|2``),
   PostgreSQL with ``kcrash server --broker`` and 1 or 2 ``kcrash worker`` processes on Redis.
   Runs: all M with 2 workers, then the same half of them (every second dump by size) with
   1 worker and with 2 workers.  A run marks its dumps ``queued`` while no service runs and
   times from the services' start (so start-up is included) to the last one done or failed.
4. **queries** at S stored crashes: bucket list, bucket detail, crash list by class, text
   search — p50/p95 over Q requests each, after one warm-up request.

Inputs, all real (never mocks):
- report JSONs: ``kcrash analyze --format json`` of the corpus's vmcore-dmesg.txt files and of
  tests/data/oops; each submission is one of them with its ``input.path`` set to a path of
  its own, so N submissions are N distinct crashes (the server deduplicates by content hash).
- vmcores: every dump file of the corpus (66 from 47 boots at the time of writing), then
  ``makedumpfile -l`` (LZO) re-encodings of its kdump-zlib dumps, smallest first, until there
  are M distinct files: another real dump file of the same crash, as an operator gets from
  re-filtering a dump.  Debian's makedumpfile has no snappy or zstd, so LZO is the only
  other encoding; cached in ~/.cache/kcrash/bench-dumps.

Runs redis-server and PostgreSQL from Debian's packages in temporary directories (the test
fixtures of tests/services.py).  Samples the load average every 5 s.  Prints Markdown and
writes ``bench/results/<date>-server-load.md`` and ``.json``.

    PYTHONPATH=src:corpus python bench/server_load.py                 # the full scale
    PYTHONPATH=src:corpus python bench/server_load.py --reports 500 --vmcores 10 --stored 5000
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "src"))

from server_process import ServerProcess, kcrash_env, make_token  # noqa: E402
from services import create_database, postgres_cluster, redis_server  # noqa: E402

CACHE = Path(os.environ.get("KCRASH_BENCH_CACHE", Path.home() / ".cache/kcrash/bench-dumps"))


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- the machine ----------------------------------------------------------------------------


class LoadSampler(threading.Thread):
    """The 1-minute load average every ``every`` seconds, to say what else ran meanwhile."""

    def __init__(self, every: float = 5.0) -> None:
        super().__init__(daemon=True)
        self.every = every
        self.samples: list[tuple[float, float]] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            self.samples.append((time.monotonic(), os.getloadavg()[0]))
            self.stopped.wait(self.every)

    def between(self, t0: float, t1: float) -> dict[str, float]:
        v = [x for t, x in self.samples if t0 <= t <= t1] or [os.getloadavg()[0]]
        return {"min": min(v), "mean": statistics.fmean(v), "max": max(v)}


def machine() -> dict[str, Any]:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = 0
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gib": round(mem / (1 << 30), 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


class Phases:
    """Wall time and load average of each named phase."""

    def __init__(self, sampler: LoadSampler) -> None:
        self.sampler = sampler
        self.rows: list[dict[str, Any]] = []

    @contextlib.contextmanager
    def __call__(self, name: str):  # type: ignore[no-untyped-def]
        t0 = time.monotonic()
        try:
            yield
        finally:
            t1 = time.monotonic()
            self.rows.append(
                {"phase": name, "seconds": t1 - t0, "load": self.sampler.between(t0, t1)}
            )


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


def vmcores(corpus: list[dict[str, Any]], want: int) -> tuple[list[str], int]:
    """Every corpus dump file, then ``makedumpfile -l`` re-encodings of its kdump-zlib dumps;
    returns the paths and how many of them are corpus files."""
    paths = sorted({e["path"] for e in corpus})
    own = len(paths)
    # A re-encoding can be byte for byte a corpus file (its kdump-lzo dumps were made the
    # same way): the server would count it once, so it is not another vmcore.
    seen = {e.get("sha256") for e in corpus}
    zlib = sorted(
        (e for e in corpus if e["format"] == "kdump" and e.get("compression") == "zlib"),
        key=lambda e: (e["size"], e["id"]),
    )
    CACHE.mkdir(parents=True, exist_ok=True)
    for e in zlib:
        if len(paths) >= want:
            break
        out = CACHE / f"{e['id'].replace('/', '_')}.re-lzo"
        if not out.exists():
            tmp = out.with_suffix(".tmp")
            tmp.unlink(missing_ok=True)
            r = subprocess.run(
                ["nice", "-n", "10", "makedumpfile", "-l", "-d", "31", e["path"], str(tmp)],
                capture_output=True,
                timeout=600,
            )
            if r.returncode != 0:
                log(f"makedumpfile -l {e['id']}: {r.stderr[-200:]!r}")
                continue
            tmp.rename(out)
        sha = hashlib.sha256(out.read_bytes()).hexdigest()
        if sha in seen:
            continue
        seen.add(sha)
        paths.append(str(out))
    return paths[:want], min(own, want)


# --- phases ---------------------------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def submit_all(
    url: str, token: str, paths: list[str], hosts: list[str], threads: int
) -> dict[str, Any]:
    """``kcrash submit``'s client on every path; rate, latency and refusals."""
    from kcrash.submit.hostfacts import HostFacts
    from kcrash.submit.upload import Server, SubmitError, submit_file

    server = Server(url, token, attempts=1, timeout=600)

    def one(i: int) -> tuple[bool, float, str]:
        t = time.perf_counter()
        try:
            submit_file(server, paths[i], HostFacts(hostname=hosts[i]))
        except SubmitError as e:
            return False, time.perf_counter() - t, str(e)
        return True, time.perf_counter() - t, ""

    t0 = time.perf_counter()
    with cf.ThreadPoolExecutor(threads) as ex:
        results = list(ex.map(one, range(len(paths))))
    wall = time.perf_counter() - t0
    lat = [t for _, t, _ in results]
    errors = sorted({e.split(": ", 1)[-1][:160] for ok, _, e in results if not ok})
    size = sum(os.path.getsize(p) for p in paths)
    return {
        "count": len(paths),
        "bytes": size,
        "threads": threads,
        "seconds": wall,
        "per_second": len(paths) / wall,
        "per_minute": len(paths) / wall * 60,
        "mib_per_second": size / wall / (1 << 20),
        "p50_ms": pct(lat, 50) * 1000,
        "p95_ms": pct(lat, 95) * 1000,
        "refused": sum(1 for ok, _, _ in results if not ok),
        "errors": errors[:5],
    }


def fill(database_url: str, data: Path, stored: int, seed: int = 16) -> dict[str, Any]:
    """The ingested reports bucketed, then rows up to ``stored`` (the DB layer, one process).

    Each stored report goes through ``ingest.apply_report`` (the columns queries filter on)
    and the first crash of each signature through ``buckets.assign`` (the bucket, its title
    and history); the others of that signature join its bucket in one UPDATE: the per-crash
    path of the workers would take longer than this benchmark may run (measured apart, in
    the analysis phases).  The added rows copy the bucket columns of analyzed crashes."""
    from sqlalchemy import func, insert, select, update

    from kcrash.server import buckets
    from kcrash.server.analysis import load_report
    from kcrash.server.config import Settings
    from kcrash.server.db import open_database
    from kcrash.server.ingest import apply_report
    from kcrash.server.models import Bucket, Crash, Host

    db = open_database(Settings(data_dir=data, database_url=database_url))
    rnd = random.Random(seed)
    t0 = time.perf_counter()
    with db.session() as s:
        rows = s.scalars(
            select(Crash).where(Crash.kind == "report", Crash.status == "queued")
        ).all()
        first: dict[str, Crash] = {}
        for c in rows:
            apply_report(c, load_report(c.blob_path, 16 << 20))
            c.status = "done"
            first.setdefault(c.signature or "", c)
        s.flush()
        for sig, c in first.items():
            b = buckets.assign(s, c)
            if b is not None:
                s.execute(
                    update(Crash)
                    .where(
                        Crash.signature == sig, Crash.bucket_id.is_(None), Crash.status == "done"
                    )
                    .values(bucket_id=b.id)
                )
        s.flush()
        t_reports = time.perf_counter() - t0
        have = s.scalar(select(func.count(Crash.id))) or 0
        protos = list(
            s.execute(
                select(
                    Crash.signature,
                    Crash.class_,
                    Crash.culprit_module,
                    Crash.kernel_release,
                    Crash.bucket_id,
                    Crash.panic,
                ).where(Crash.status == "done", Crash.bucket_id.is_not(None))
            )
        )
        hosts = [
            s.execute(
                insert(Host).values(key=f"bench:{i}", name=f"fleet-{i:04d}")
            ).inserted_primary_key[0]
            for i in range(1000)
        ]
        now = dt.datetime.now(dt.timezone.utc)
        batch = []
        for i in range(max(0, stored - have)):
            sig, cls, mod, rel, bid, panic = rnd.choice(protos)
            t = now - dt.timedelta(seconds=rnd.uniform(86400, 90 * 86400))
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
                    "panic": panic,
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
    wall = time.perf_counter() - t0
    log(f"  {len(rows)} reports bucketed in {t_reports:.0f}s; {total} crashes in {wall:.0f}s")
    return {
        "crashes": total,
        "buckets": nb,
        "reports_bucketed": len(rows),
        "reports_seconds": t_reports,
        "fill_seconds": wall,
    }


def vmcore_ids(database_url: str, data: Path) -> list[int]:
    """The stored vmcore crashes, smallest upload first."""
    from sqlalchemy import select

    from kcrash.server.config import Settings
    from kcrash.server.db import open_database
    from kcrash.server.models import Crash

    db = open_database(Settings(data_dir=data, database_url=database_url), migrate=False)
    with db.session() as s:
        ids = list(s.scalars(select(Crash.id).where(Crash.kind == "vmcore").order_by(Crash.size)))
    db.engine.dispose()
    return ids


def mark_queued(database_url: str, data: Path, ids: list[int]) -> None:
    from sqlalchemy import update

    from kcrash.server.config import Settings
    from kcrash.server.db import open_database
    from kcrash.server.models import Crash

    db = open_database(Settings(data_dir=data, database_url=database_url), migrate=False)
    with db.session() as s:
        s.execute(update(Crash).where(Crash.id.in_(ids)).values(status="queued", attempts=0))
    db.engine.dispose()


def analyzed(database_url: str, data: Path, ids: list[int]) -> list[tuple[str, float, str]]:
    from sqlalchemy import select

    from kcrash.server.config import Settings
    from kcrash.server.db import open_database
    from kcrash.server.models import Crash

    db = open_database(Settings(data_dir=data, database_url=database_url), migrate=False)
    with db.session() as s:
        q = select(Crash.status, Crash.analysis_seconds, Crash.error).where(Crash.kind == "vmcore")
        rows = s.execute(q.where(Crash.id.in_(ids)) if ids else q).all()
    db.engine.dispose()
    return [(st, sec or 0.0, err or "") for st, sec, err in rows]


@contextlib.contextmanager
def services(
    kind: str,
    data: Path,
    url: str | None,
    broker: str,
    debuginfo: list[str],
    workers: int,
):  # type: ignore[no-untyped-def]
    """The analysing deployment: the embedded server (SQLite) or API + Celery workers."""
    import redis

    redis.Redis.from_url(broker).flushall()  # no message from an earlier phase
    di = [a for d in debuginfo for a in ("--debuginfo", d)]
    timeout = ["--analysis-timeout", "600"]
    if kind == "postgresql":
        extra = ["--broker", broker, *di, *timeout]
    else:
        extra = ["--workers", str(workers), *di, *timeout]
    srv = ServerProcess(data, database=url, extra=extra)
    procs = []
    try:
        srv.start()
        if kind == "postgresql":
            for i in range(workers):
                cmd = [sys.executable, "-m", "kcrash", "worker", "--data", str(data)]
                cmd += ["--database", url or "", "--broker", broker, "--log-level", "warning"]
                cmd += ["--name", f"bench{i}@%h", *di, *timeout]
                procs.append(
                    subprocess.Popen(
                        cmd,
                        env=kcrash_env(),
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                        start_new_session=True,
                    )
                )
        yield srv
    finally:
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, 15)
            p.wait()
        srv.stop()


def wait_idle(srv: ServerProcess, token: str, timeout: float = 1800) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = 0
        for st in ("queued", "running"):
            _s, page = srv.json("GET", f"/api/v1/crashes?status={st}&limit=1", token)
            left += page["total"]
        if left == 0:
            return
        time.sleep(1.0)
    raise RuntimeError(f"analyses not finished in {timeout} s")


def summarize(
    rows: list[tuple[str, float, str]], wall: float, workers: int, **extra: Any
) -> dict[str, Any]:
    done = [r for r in rows if r[0] == "done"]
    return {
        "workers": workers,
        "dumps": len(rows),
        "done": len(done),
        "failed": [r[2][:160] for r in rows if r[0] != "done"][:5],
        "seconds": wall,
        "dumps_per_minute": len(rows) / wall * 60,
        "mean_analysis_s": statistics.fmean(r[1] for r in done) if done else 0.0,
        "max_analysis_s": max((r[1] for r in done), default=0.0),
        **extra,
    }


def end_to_end(
    kind: str,
    data: Path,
    db_url: str,
    url: str | None,
    broker: str,
    debuginfo: list[str],
    dumps: list[str],
    workers: int,
    tok: dict[str, str],
) -> dict[str, Any]:
    """Upload ``dumps`` to the analysing deployment; time to the last analysis done."""
    t0 = time.perf_counter()
    with services(kind, data, url, broker, debuginfo, workers) as srv:
        up = submit_all(
            srv.url, tok["submit"], dumps, [f"dump-host-{i % 20:02d}" for i in range(len(dumps))], 2
        )
        log(
            f"  {up['count']} vmcores ({up['bytes'] >> 20} MiB) uploaded in {up['seconds']:.0f}s "
            f"({up['per_minute']:.0f}/min, {up['mib_per_second']:.0f} MiB/s), "
            f"refused {up['refused']}"
        )
        wait_idle(srv, tok["read"])
        wall = time.perf_counter() - t0
    res = summarize(analyzed(db_url, data, []), wall, workers, upload=up)
    log(f"  {kind} {workers} worker(s): {res['dumps']} dumps end to end in {wall:.0f}s")
    return res


def throughput(
    kind: str,
    data: Path,
    db_url: str,
    url: str | None,
    broker: str,
    debuginfo: list[str],
    ids: list[int],
    workers: int,
    token: str,
) -> dict[str, Any]:
    """Analyze ``ids`` (stored vmcores, marked queued) again; from services' start to done."""
    mark_queued(db_url, data, ids)
    t0 = time.perf_counter()
    with services(kind, data, url, broker, debuginfo, workers) as srv:
        wait_idle(srv, token)
        wall = time.perf_counter() - t0
    res = summarize(analyzed(db_url, data, ids), wall, workers)
    log(f"  {kind} {workers} worker(s): {len(ids)} dumps in {wall:.0f}s")
    return res


def get_ms(srv: ServerProcess, token: str, path: str) -> float:
    t = time.perf_counter()
    status, body, _h = srv.request("GET", path, token)
    if status != 200:
        raise RuntimeError(f"GET {path}: {status} {body[:200]!r}")
    return (time.perf_counter() - t) * 1000


def queries(srv: ServerProcess, token: str, n: int) -> dict[str, Any]:
    status, page = srv.json("GET", "/api/v1/buckets?limit=50", token)
    assert status == 200, page
    sigs = [b["signature"] for b in page["items"]]
    cls = page["items"][0]["class"]
    out = {}
    for name, paths in (
        ("bucket list (50, by last seen)", ["/api/v1/buckets?limit=50"]),
        ("bucket detail", [f"/api/v1/buckets/{s}" for s in sigs]),
        ("crashes of one class (50)", [f"/api/v1/crashes?class={cls}&limit=50"]),
        ("bucket text search q=", ["/api/v1/buckets?q=NULL+pointer&limit=50"]),
    ):
        get_ms(srv, token, paths[0])  # warm
        lat = [get_ms(srv, token, paths[i % len(paths)]) for i in range(n)]
        out[name] = {
            "n": n,
            "p50_ms": pct(lat, 50),
            "p95_ms": pct(lat, 95),
            "mean_ms": statistics.fmean(lat),
        }
        log(f"  {name}: p50 {out[name]['p50_ms']:.0f} ms, p95 {out[name]['p95_ms']:.0f} ms")
    return out


# --- main -----------------------------------------------------------------------------------


def ids_of(database_url: str, data: Path, paths: list[str]) -> list[int]:
    """The stored crashes of these files (by content hash, as the server keys them)."""
    from sqlalchemy import select

    from kcrash.server.config import Settings
    from kcrash.server.db import open_database
    from kcrash.server.models import Crash

    shas = []
    for p in paths:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
        shas.append(h.hexdigest())
    db = open_database(Settings(data_dir=data, database_url=database_url), migrate=False)
    with db.session() as s:
        ids = list(s.scalars(select(Crash.id).where(Crash.sha256.in_(shas)).order_by(Crash.id)))
    db.engine.dispose()
    return ids


def run_backend(
    kind: str,
    pg: str,
    broker: str,
    args: argparse.Namespace,
    report_files: list[str],
    dumps: list[str],
    compare: list[str],
    debuginfo: list[str],
    phase: Phases,
    started: float,
) -> dict[str, Any]:
    """One store: reports ingested (if any), the dumps end to end, 100k rows, queries, and
    the compare dumps analyzed again with 1 and 2 workers (while the time budget lasts)."""
    work = Path(tempfile.mkdtemp(prefix=f"kcrash-bench-{kind}-", dir=args.workdir))
    try:
        url = create_database(pg, f"bench_{kind}") if kind == "postgresql" else None
        data = work / "data"
        db_url = url or f"sqlite:///{data / 'kcrash.db'}"
        tok = {r: make_token(data, r, database=url) for r in ("submit", "read")}
        r: dict[str, Any] = {"reports": None}
        if report_files:
            srv = ServerProcess(data, database=url, extra=["--broker", broker])
            srv.start()
            try:
                with phase(f"{kind}: {len(report_files):,} report JSONs uploaded"):
                    hosts = [f"host-{i % 500:03d}" for i in range(len(report_files))]
                    r["reports"] = v = submit_all(
                        srv.url, tok["submit"], report_files, hosts, args.threads
                    )
                log(
                    f"  {v['count']} reports in {v['seconds']:.0f}s ({v['per_second']:.0f}/s), "
                    f"p50 {v['p50_ms']:.0f} ms, p95 {v['p95_ms']:.0f} ms, refused {v['refused']}"
                )
            finally:
                srv.stop()
        # The stored reports are bucketed before the analysing services start: their
        # pool would otherwise take every queued report first (see ``fill``).
        if report_files:
            with phase(f"{kind}: bulk load to {args.stored:,}"):
                r["stored"] = fill(db_url, data, args.stored)
        if dumps:
            with phase(f"{kind}: {len(dumps)} vmcores uploaded and analyzed, 2 workers"):
                r["end_to_end"] = end_to_end(
                    kind, data, db_url, url, broker, debuginfo, dumps, 2, tok
                )
        ids = ids_of(db_url, data, compare) if dumps else []
        r["throughput"] = {}
        for w in (1, 2) if ids else ():
            name = f"{len(ids)} vmcores again, {w} worker{'s' if w > 1 else ''}"
            if time.perf_counter() - started > args.budget_min * 60:
                log(f"  {name}: skipped, the time budget is spent")
                r["throughput"][name] = None
                continue
            with phase(f"{kind}: {name}"):
                r["throughput"][name] = throughput(
                    kind, data, db_url, url, broker, debuginfo, ids, w, tok["read"]
                )
        if "stored" not in r:  # the analyzed vmcores are the rows' models
            with phase(f"{kind}: bulk load to {args.stored:,}"):
                r["stored"] = fill(db_url, data, args.stored)
        srv = ServerProcess(data, database=url, extra=["--broker", broker])
        srv.start()
        try:
            with phase(f"{kind}: queries"):
                r["queries"] = queries(srv, tok["read"], args.queries)
        finally:
            srv.stop()
        return r
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reports", type=int, default=10_000)
    ap.add_argument("--reports-db", default="sqlite", help="the store(s) the reports go to")
    ap.add_argument("--vmcores", type=int, default=100)
    ap.add_argument("--vmcores-db", default="postgresql", help="the store all vmcores go to")
    ap.add_argument("--stored", type=int, default=100_000)
    ap.add_argument("--compare-dumps", type=int, default=3, help="dumps of the 1-vs-2 runs")
    ap.add_argument("--budget-min", type=float, default=30.0)
    ap.add_argument("--queries", type=int, default=20)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--base-reports", type=int, default=40)
    ap.add_argument("--dbs", default="postgresql,sqlite")
    ap.add_argument("--workdir", default=None, help="where the stores live (default: $TMPDIR)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--render", metavar="JSON", help="only print the Markdown of a result file")
    args = ap.parse_args()
    if args.render:
        print(markdown(json.loads(Path(args.render).read_text())))
        return 0

    import kcrash_corpus

    sampler = LoadSampler()
    sampler.start()
    phase = Phases(sampler)
    corpus = list(kcrash_corpus.load())
    started = time.perf_counter()
    date = dt.datetime.now(dt.timezone.utc)
    with phase("inputs"):
        bases = base_reports(corpus, args.base_reports)
        dumps, own = vmcores(corpus, args.vmcores)
    by_size = sorted(dumps, key=lambda p: (os.path.getsize(p), p))
    k = max(1, min(args.compare_dumps, len(by_size)))
    compare = [by_size[(2 * i + 1) * len(by_size) // (2 * k)] for i in range(k)] if dumps else []
    debuginfo = sorted({str(Path(e["vmlinux"]).parent) for e in corpus if e.get("vmlinux")})
    spool = Path(tempfile.mkdtemp(prefix="kcrash-bench-reports-", dir=args.workdir))
    report_files = []
    for i in range(args.reports):
        p = spool / f"report-{i:06d}.json"
        p.write_bytes(report_variant(bases[i % len(bases)], i))
        report_files.append(str(p))
    log(f"inputs ready: {len(report_files)} reports, {len(dumps)} vmcores ({own} corpus files)")
    result: dict[str, Any] = {
        "date": date.isoformat(timespec="seconds"),
        # A snapshot run (git archive, so edits meanwhile do not change what is measured)
        # names its commit in KCRASH_BENCH_COMMIT.
        "commit": os.environ.get("KCRASH_BENCH_COMMIT")
        or subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
        ).stdout.strip(),
        "machine": machine(),
        "scale": {
            "reports": len(report_files),
            "reports_db": args.reports_db,
            "vmcores": len(dumps),
            "vmcores_db": args.vmcores_db,
            "vmcores_corpus": own,
            "vmcores_reencoded": len(dumps) - own,
            "vmcore_bytes": sum(os.path.getsize(p) for p in dumps),
            "boots": len({e["boot"] for e in corpus}),
            "stored": args.stored,
            "compare": [
                os.path.basename(os.path.dirname(os.path.dirname(p))) + "/" + os.path.basename(p)
                for p in compare
            ],
            "compare_mib": sum(os.path.getsize(p) for p in compare) >> 20,
            "base_reports": len(bases),
            "threads": args.threads,
        },
        "dbs": {},
    }
    out = Path(args.out)
    stem = out / f"{date.date().isoformat()}-server-load"
    try:
        with redis_server() as broker, postgres_cluster() as pg:
            for kind in args.dbs.split(","):
                log(f"== {kind}")
                result["dbs"][kind] = run_backend(
                    kind,
                    pg,
                    broker,
                    args,
                    report_files if kind in args.reports_db.split(",") else [],
                    dumps if kind == args.vmcores_db else compare if dumps else [],
                    compare,
                    debuginfo,
                    phase,
                    started,
                )
                result["phases"] = phase.rows
                if not args.no_write:  # a failure later must not lose what was measured
                    out.mkdir(parents=True, exist_ok=True)
                    stem.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    finally:
        shutil.rmtree(spool, ignore_errors=True)
        sampler.stopped.set()
    result["total_seconds"] = time.perf_counter() - started
    result["phases"] = phase.rows
    result["load"] = sampler.between(0, time.monotonic())
    md = markdown(result)
    print(md)
    if not args.no_write:
        out.mkdir(parents=True, exist_ok=True)
        stem.with_suffix(".md").write_text(md)
        stem.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
        log(f"wrote {stem}.md and .json")
    return 0


def markdown(r: dict[str, Any]) -> str:
    sc, m, ld = r["scale"], r["machine"], r["load"]
    dbs = r["dbs"]
    lines = [
        f"# kcrash server load test, {r['date']} (commit {r['commit']})",
        "",
        f"Machine: {m['cpus']} × {m['cpu']}, {m['memory_gib']} GiB, Linux {m['kernel']}, "
        f"Python {m['python']}; shared with other sessions' jobs: load average "
        f"{ld['min']:.1f}–{ld['max']:.1f} (mean {ld['mean']:.1f}) over the run.  "
        f"Total {r['total_seconds'] / 60:.1f} min.",
        "",
        f"Scale: {sc['reports']:,} report JSONs (from {sc['base_reports']} real reports, each "
        f"with its own input.path) to {sc['reports_db']}, {sc['threads']} client threads; "
        f"{sc['vmcores']} vmcores, {sc['vmcore_bytes'] >> 20:,} MiB ({sc['vmcores_corpus']} "
        f"corpus dump files from {sc['boots']} boots, {sc['vmcores_reencoded']} `makedumpfile "
        f"-l` re-encodings of corpus kdump-zlib dumps) to {sc['vmcores_db']}, 2 client "
        f"threads, analyzed by 2 workers while they arrived; {sc['stored']:,} stored crashes "
        f"in each store for the queries and the 1-vs-2-worker runs; those runs analyze "
        f"{len(sc['compare'])} of the vmcores ({sc['compare_mib']} MiB: "
        f"{', '.join(sc['compare'])}) again.",
        "",
        "| | " + " | ".join(dbs) + " |",
        "|---|" + "---|" * len(dbs),
    ]

    def row(name: str, f: Any) -> None:
        cells = []
        for v in dbs.values():
            try:
                cells.append(f(v))
            except (KeyError, TypeError):
                cells.append("not run")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")

    row(
        "report JSONs accepted /s (wall)",
        lambda v: f"{v['reports']['per_second']:.1f} ({v['reports']['seconds']:.0f} s)",
    )
    row(
        "report upload latency p50 / p95",
        lambda v: f"{v['reports']['p50_ms']:.0f} / {v['reports']['p95_ms']:.0f} ms",
    )
    row("reports refused", lambda v: str(v["reports"]["refused"]))
    row(
        "vmcores uploaded /min (MiB/s), with 2 workers analyzing",
        lambda v: (
            f"{v['end_to_end']['upload']['per_minute']:.1f} "
            f"({v['end_to_end']['upload']['mib_per_second']:.1f}): "
            f"{v['end_to_end']['upload']['count']} in {v['end_to_end']['upload']['seconds']:.0f} s"
        ),
    )
    row("vmcores refused", lambda v: str(v["end_to_end"]["upload"]["refused"]))
    row(
        "vmcores analyzed end to end, 2 workers",
        lambda v: (
            f"{v['end_to_end']['dumps_per_minute']:.1f} /min: {v['end_to_end']['done']} of "
            f"{v['end_to_end']['dumps']} done in {v['end_to_end']['seconds']:.0f} s, "
            f"mean {v['end_to_end']['mean_analysis_s']:.1f} s, "
            f"max {v['end_to_end']['max_analysis_s']:.0f} s each"
        ),
    )
    row(
        "stored crashes / buckets",
        lambda v: f"{v['stored']['crashes']:,} / {v['stored']['buckets']}",
    )
    first = next(iter(dbs.values()))
    for name in first.get("throughput") or {}:

        def tp(v: dict[str, Any], name: str = name) -> str:
            t = v["throughput"][name]
            return (
                f"{t['dumps_per_minute']:.1f} /min: {t['done']} of {t['dumps']} done in "
                f"{t['seconds']:.0f} s, mean {t['mean_analysis_s']:.1f} s each"
            )

        row(f"analysis, {name}", tp)
    for q in first["queries"]:
        row(
            f"{q}: p50 / p95",
            lambda v, q=q: f"{v['queries'][q]['p50_ms']:.0f} / {v['queries'][q]['p95_ms']:.0f} ms",
        )
    lines += [
        "",
        "SQLite: the embedded server (`kcrash server --workers N`, its local pool); PostgreSQL: "
        "`kcrash server --broker` plus N `kcrash worker` processes on Redis; both with the "
        "corpus kernels' debuginfo (`--debuginfo`, DWARF analyses).  Report JSONs were sent to "
        "a server with `--broker` and no worker (ingest alone) and bucketed afterwards by the "
        "DB layer (`fill` in the script says how).  The 1-vs-2-worker runs mark their dumps "
        "queued while nothing runs and are timed from the services' start (start-up "
        "included) to the last one done.",
        "",
        "| phase | wall | load average min–max (mean) |",
        "|---|---|---|",
    ]
    for p in r["phases"]:
        lo = p["load"]
        lines.append(
            f"| {p['phase']} | {p['seconds']:.0f} s | "
            f"{lo['min']:.1f}–{lo['max']:.1f} ({lo['mean']:.1f}) |"
        )
    notes = []
    for k, v in dbs.items():
        if v.get("reports"):
            notes += [f"{k}, report refused: {e}" for e in v["reports"]["errors"]]
        e2e = v.get("end_to_end") or {"upload": {"errors": []}, "failed": []}
        notes += [f"{k}, vmcore refused: {e}" for e in e2e["upload"]["errors"]]
        notes += [f"{k}, vmcore not analyzed: {e}" for e in e2e["failed"]]
        for n, t in v["throughput"].items():
            if t:
                notes += [f"{k}, {n}, not analyzed: {e}" for e in t["failed"]]
    if notes:
        lines += ["", "Refused or not analyzed (first reasons):", ""]
        lines += [f"- {n}" for n in notes]
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
