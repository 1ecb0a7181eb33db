"""The fleet deployment end to end: PostgreSQL + Redis + ``kcrash server --broker`` + Celery
``kcrash worker`` processes, fed by ``kcrash submit``.

Everything is the real program: the services come from Debian's packages (tests/services.py),
the server and the workers are the commands an operator runs, the inputs are the corpus's
vmcores and vmcore-dmesg.txt files and the oops logs of tests/data/oops.  Kills are
``SIGKILL`` of whole process groups, as when a machine dies.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import pick
from server_process import ServerProcess, WebhookReceiver, kcrash_env, make_token
from services import create_database, postgres_server, redis_url  # noqa: F401  (fixtures)

from kcrash.server import alerts

OOPS = Path(__file__).parent / "data" / "oops"
#: Redis hands an unacknowledged analysis to another worker after this many seconds (the
#: deployment default is the analysis timeout + 300 s; the kill test cannot wait that long).
VISIBILITY = 25.0


class Worker:
    """``kcrash worker`` in its own process group (so a kill takes the pool with it)."""

    def __init__(
        self, data: Path, database: str, broker: str, n: int, extra: tuple[str, ...] = ()
    ) -> None:
        self.log = data.parent / f"worker-{n}.log"
        cmd = [sys.executable, "-m", "kcrash", "worker", "--data", str(data)]
        cmd += ["--database", database, "--broker", broker, "--concurrency", "1"]
        cmd += ["--visibility-timeout", str(VISIBILITY), "--log-level", "warning"]
        cmd += ["--name", f"test{n}@%h", *extra]
        with open(self.log, "ab") as logf:
            self.proc = subprocess.Popen(
                cmd, env=kcrash_env(), stdout=logf, stderr=logf, start_new_session=True
            )

    def kill9(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill9()


@pytest.fixture(scope="module")
def deployment(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_server: str,  # noqa: F811
    redis_url: str,  # noqa: F811
) -> Iterator[dict[str, Any]]:
    """One API server on PostgreSQL + Redis for the module (tests use distinct crashes)."""
    base = tmp_path_factory.mktemp("fleet")
    database = create_database(postgres_server, "fleet")
    data = base / "data"
    srv = ServerProcess(data, database=database, extra=["--broker", redis_url])
    tokens = {r: make_token(data, r, database=database) for r in ("submit", "read")}
    srv.start()
    yield {"data": data, "server": srv, "tokens": tokens, "database": database, "broker": redis_url}
    srv.stop()


@pytest.fixture
def fleet(deployment: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The deployment plus this test's workers (stopped after it, so no test's workers take
    another test's crashes)."""
    workers: list[Worker] = []
    d = deployment
    env = {**d, "workers": workers}
    env["spawn"] = lambda *extra: workers.append(
        Worker(d["data"], d["database"], d["broker"], len(workers), extra)
    )
    yield env
    for w in workers:
        w.stop()


def _submit(srv: ServerProcess, token: str, *args: str, timeout: float = 120) -> str:
    r = subprocess.run(
        [sys.executable, "-m", "kcrash", "submit", "--server", srv.url, "--token", token, *args],
        env=kcrash_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


def host_root(base: Path, name: str) -> str:
    """A host of the fleet as `kcrash submit --root` reads it: its own name and machine-id
    (the hosts of this test all run on one machine, whose /etc/machine-id is one)."""
    root = base / name / "etc"
    root.mkdir(parents=True)
    (root / "hostname").write_text(name + "\n")
    (root / "machine-id").write_text(uuid.uuid4().hex + "\n")
    return str(root.parent)


def _ids(out: str) -> list[int]:
    return [int(line.split("crash ", 1)[1].split(",")[0]) for line in out.splitlines()]


def test_corpus_ingest_ends_in_the_right_buckets(
    fleet: dict[str, Any], corpus: list[dict[str, Any]]
) -> None:
    """Two workers; one null-deref bug as 2 vmcore formats + its dmesg (Debian 12) and the
    Debian 11 build's dmesg; sysrq's dmesg; a gpf oops log twice (one crash)."""
    srv, tok = fleet["server"], fleet["tokens"]
    hooks = WebhookReceiver()
    alerts_file = fleet["data"].parent / "alerts.json"
    alerts_file.write_text(json.dumps({"webhooks": [{"url": hooks.url, "secret": "k"}]}))
    fleet["spawn"]("--alerts", str(alerts_file))
    fleet["spawn"]("--alerts", str(alerts_file))
    nd12 = pick(corpus, id="deb12/null-deref/kdump-zlib")[0]
    nd12_lzo = pick(corpus, id="deb12/null-deref/kdump-lzo")[0]
    nd11 = pick(corpus, id="deb11/null-deref/kdump-zlib")[0]
    sysrq = pick(corpus, id="deb12/sysrq/kdump-zlib")[0]
    base = fleet["data"].parent / "roots"
    web1, web2, db1, db2 = (host_root(base, n) for n in ("web-1", "web-2", "db-1", "db-2"))
    out = _submit(srv, tok["submit"], "--root", web1, nd12["path"], nd12_lzo["path"], nd12["dmesg"])
    out += _submit(srv, tok["submit"], "--root", web2, nd11["dmesg"], sysrq["dmesg"])
    gpf = str(OOPS / "x86-oops-gpf-6.x.txt")
    out += _submit(srv, tok["submit"], "--root", db1, gpf)
    again = _submit(srv, tok["submit"], "--root", db2, gpf)
    assert "(already known)" in again
    ids = _ids(out)
    assert len(ids) == 6 and _ids(again) == ids[-1:]
    done = [srv.wait_done(tok["read"], i, timeout=240) for i in ids]
    assert [c["status"] for c in done] == ["done"] * 6, [c["error"] for c in done]
    null_derefs, sysrq_c, gpf_c = done[:4], done[4], done[5]
    want = nd12["expected"]
    assert {c["class"] for c in null_derefs} == {want["class"]}
    assert len({c["bucket"] for c in null_derefs}) == 1, "one bug across formats and kernels"
    assert sysrq_c["class"] == sysrq["expected"]["class"] and gpf_c["class"] == "gpf"
    assert len({null_derefs[0]["bucket"], sysrq_c["bucket"], gpf_c["bucket"]}) == 3
    status, bucket = srv.json("GET", f"/api/v1/buckets/{null_derefs[0]['bucket']}", tok["read"])
    assert status == 200 and bucket["count"] == 4 and bucket["hosts"] == 2
    assert {h["value"] for h in bucket["host_names"]} == {"web-1", "web-2"}
    kernels = {k["value"] for k in bucket["kernels"]}
    assert kernels == {nd12["release"], nd11["release"]}
    # The workers told the webhook about each new bucket once, signed.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(hooks.got) < 3:
        time.sleep(0.2)
    hooks.shutdown()
    new = [json.loads(b) for h, b in hooks.got if h["x-kcrash-event"] == "new"]
    assert sorted(e["bucket"]["signature"] for e in new) == sorted(
        {c["bucket"] for c in (null_derefs[0], sysrq_c, gpf_c)}
    )
    assert all(
        alerts.verify("k", h["x-kcrash-timestamp"], b, h["x-kcrash-signature"])
        for h, b in hooks.got
    )


def test_kill9_worker_mid_analysis_loses_nothing(fleet: dict[str, Any], corpus: list) -> None:
    """The worker analyzing a vmcore dies with its pool (SIGKILL); a new worker gets the
    unacknowledged message from Redis and the crash ends analyzed, once, in its bucket."""
    srv, tok = fleet["server"], fleet["tokens"]
    entry = pick(corpus, id="deb12/panic/kdump-zlib")[0]
    fleet["spawn"]()
    crash_id = _ids(_submit(srv, tok["submit"], "--host", "web-9", entry["path"]))[0]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status, c = srv.json("GET", f"/api/v1/crashes/{crash_id}", tok["read"])
        if c["status"] == "running":
            break
        time.sleep(0.2)
    assert c["status"] == "running", c
    fleet["workers"][0].kill9()
    killed_at = time.monotonic()
    status, c = srv.json("GET", f"/api/v1/crashes/{crash_id}", tok["read"])
    assert c["status"] == "running", "the kill left it mid-analysis"
    fleet["spawn"]()
    c = srv.wait_done(tok["read"], crash_id, timeout=VISIBILITY + 150)
    assert c["status"] == "done", c["error"]
    assert c["class"] == entry["expected"]["class"]
    assert time.monotonic() - killed_at >= VISIBILITY - 1, "redelivered by Redis, not luck"
    assert _attempts(fleet["database"], crash_id) == 2, "one killed run, one finished run"
    status, b = srv.json("GET", f"/api/v1/buckets/{c['bucket']}", tok["read"])
    assert status == 200 and b["count"] == 1


def _attempts(database: str, crash_id: int) -> int:
    import psycopg

    url = database.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT attempts FROM crashes WHERE id = %s", (crash_id,)).fetchone()
    assert row is not None
    return int(row[0])


def _stall_upload(srv: ServerProcess, token: str, data: bytes) -> Any:
    """A host that sends half of a vmcore and then stalls (its link is slow)."""
    import socket

    s = socket.create_connection(("127.0.0.1", srv.port))
    head = (
        f"POST /api/v1/crashes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    s.sendall(head.encode() + data[: len(data) // 2])
    return s


def test_kill9_server_mid_upload_loses_nothing(fleet: dict[str, Any], corpus: list) -> None:
    """The server dies (SIGKILL) while a vmcore is half received and while `kcrash submit`
    tries to send it; after the restart the submission goes through, once, and the half
    upload leaves no crash and no file behind."""
    srv, tok = fleet["server"], fleet["tokens"]
    entry = pick(corpus, id="deb12/bug-on/kdump-zlib")[0]
    blob = Path(entry["path"]).read_bytes()
    _status, before = srv.json("GET", "/api/v1/crashes?limit=1", tok["read"])
    sock = _stall_upload(srv, tok["submit"], blob)
    tmp = fleet["data"] / "blobs" / "tmp"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(
        p.stat().st_size > 0 for p in tmp.iterdir() if p.is_file()
    ):
        time.sleep(0.1)
    assert any(tmp.iterdir()), "the server was receiving the upload"
    srv.stop(signal.SIGKILL)
    sock.close()
    # The host's own client starts while the server is down: it retries until it is back.
    client = subprocess.Popen(
        [
            *(sys.executable, "-m", "kcrash", "submit", "--server", srv.url),
            *("--token", tok["submit"], "--host", "web-5", "--attempts", "8", entry["path"]),
        ],
        env=kcrash_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(2)
    srv.start()
    fleet["spawn"]()
    out, err = client.communicate(timeout=180)
    assert client.returncode == 0, err
    assert "attempt 1 failed" in err, "the server really was down for the first attempt"
    crash_id = _ids(out)[0]
    c = srv.wait_done(tok["read"], crash_id, timeout=240)
    assert c["status"] == "done" and c["class"] == entry["expected"]["class"], c["error"]
    assert c["sha256"] == hashlib.sha256(blob).hexdigest()
    status, page = srv.json("GET", "/api/v1/crashes?limit=1", tok["read"])
    assert status == 200 and page["total"] == before["total"] + 1, "the half upload is no crash"
    assert [p for p in tmp.iterdir()] == [], "the half upload's file was removed at start"


def test_worker_needs_the_api_data_dir_at_any_mount_point(
    fleet: dict[str, Any], tmp_path: Path
) -> None:
    """Workers read uploads from the API's --data directory (shared, e.g. over NFS).  A worker
    started on another directory says so in one line and exits, before it takes any crash
    (it would fail them all); the right directory under another path (a mount point) works:
    uploads are found by content hash, not by the path the API wrote."""
    d = fleet
    (tmp_path / "elsewhere").mkdir()
    wrong = Worker(tmp_path / "elsewhere" / "data", d["database"], d["broker"], 90)
    rc = wrong.proc.wait(timeout=180)
    out = wrong.log.read_text()
    assert rc != 0 and "Traceback" not in out, out
    assert "not the API server's data directory" in out and len(out.strip().splitlines()) == 1
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    (mnt / "kcrash").symlink_to(d["data"], target_is_directory=True)
    d["workers"].append(Worker(mnt / "kcrash", d["database"], d["broker"], 91))
    srv, tok = d["server"], d["tokens"]
    st, body = srv.submit(tok["submit"], (OOPS / "s390x-bug-on.txt").read_bytes(), host="mnt-1")
    assert st == 202 and not body["duplicate"], body
    crash = srv.wait_done(tok["read"], body["id"], timeout=240)
    assert crash["status"] == "done" and crash["class"] == "bug-on", crash
