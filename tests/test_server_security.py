"""Bad requests to ``kcrash server``: each gets a clear 4xx and leaves nothing stored.

A real server process; real inputs (oops logs from tests/data/oops, a corpus vmcore cut
short the way a full /var/crash or a dropped connection cuts it, random bytes as garbage).
After all the refusals the store holds exactly the accepted uploads, each private (0600).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zstandard
from server_process import ServerProcess, make_token

from kcrash.server.store import STORE_ID_FILE

OOPS = Path(__file__).parent / "data" / "oops"
CAP = 4 * 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("server-sec") / "data"
    srv = ServerProcess(data, extra=["--max-vmcore-bytes", str(CAP)])
    srv.tokens = {r: make_token(data, r) for r in ("submit", "read", "admin")}  # type: ignore[attr-defined]
    srv.start()
    yield srv
    srv.stop()


def _tok(server: ServerProcess) -> dict[str, str]:
    return server.tokens  # type: ignore[attr-defined,no-any-return]


def _stored(server: ServerProcess) -> list[Path]:
    blobs = server.data / "blobs"
    return sorted(p for p in blobs.rglob("*") if p.is_file() and p.name != STORE_ID_FILE)


def _crash_count(server: ServerProcess) -> int:
    status, page = server.json("GET", "/api/v1/crashes", _tok(server)["admin"])
    assert status == 200
    return int(page["total"])


def _refused(server: ServerProcess, status: int, body: Any, want: int, words: str) -> None:
    assert status == want, (status, body)
    assert isinstance(body["detail"], str) and words in body["detail"], body


def test_tokens_and_roles(server: ServerProcess) -> None:
    t = _tok(server)
    log = (OOPS / "x86-oops-gpf-6.x.txt").read_bytes()
    before = _crash_count(server)
    s, b = server.submit("", log)
    _refused(server, s, b, 401, "missing bearer token")
    s, b = server.submit("kcrash_" + "x" * 43, log)
    _refused(server, s, b, 401, "invalid token")
    s, b = server.json("GET", "/api/v1/buckets", "not-even-a-token")
    _refused(server, s, b, 401, "invalid token")
    for path in ("/api/v1/buckets", "/api/v1/crashes", "/api/v1/crashes/1", "/metrics"):
        status, body, _h = server.request("GET", path, t["submit"])
        assert status == 403 and b"needs the read role" in body, (path, status, body)
    s, b = server.json("POST", "/api/v1/regroup", t["read"])
    _refused(server, s, b, 403, "needs the admin role")
    assert _crash_count(server) == before


def test_garbage_and_huge_fields_store_nothing(server: ServerProcess) -> None:
    t = _tok(server)["submit"]
    before_files, before = _stored(server), _crash_count(server)
    s, b = server.submit(t, os.urandom(200_000))
    _refused(server, s, b, 415, "not a vmcore, a kernel log or a kcrash report")
    s, b = server.submit(t, b"")
    _refused(server, s, b, 400, "empty upload")
    s, b = server.submit(t, b'{"verdict": "not a kcrash report"}')
    _refused(server, s, b, 422, "report refused")
    s, b = server.submit(t, b'{"truncated": [1, 2')
    _refused(server, s, b, 422, "not valid JSON")
    log = (OOPS / "x86-oops-gpf-6.x.txt").read_bytes()
    s, b = server.submit(t, log, host="h" * 10_000)
    _refused(server, s, b, 400, "longer than 256 characters")
    s, b = server.submit(t, log, distro="Debian\x1b[31m")
    _refused(server, s, b, 400, "control characters")
    s, b = server.submit(t, log, kind="vmcore")
    _refused(server, s, b, 415, "declared kind vmcore but the content is a log")
    s, b = server.submit(t, log, kind="core")
    _refused(server, s, b, 400, "kind must be one of")
    s, b = server.json("POST", "/api/v1/crashes", t, body=log, headers={"Content-Encoding": "br"})
    _refused(server, s, b, 415, "unsupported Content-Encoding")
    s, b = server.json(
        "POST",
        "/api/v1/crashes",
        t,
        body=gzip.compress(log)[:-200],
        headers={"Content-Encoding": "gzip"},
    )
    _refused(server, s, b, 400, "truncated gzip")
    boundary = "kcrashtest"
    form = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="host"\r\n\r\n{"h" * 5000}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n\r\n'
        ).encode()
        + log
        + f"\r\n--{boundary}--\r\n".encode()
    )
    s, b = server.json(
        "POST",
        "/api/v1/crashes",
        t,
        body=form,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    _refused(server, s, b, 400, "too long")
    assert _stored(server) == before_files and _crash_count(server) == before
    assert not list((server.data / "blobs" / "tmp").iterdir())


@pytest.mark.corpus
def test_truncated_and_oversized_vmcores_store_nothing(
    server: ServerProcess, kdump_zlib: list[dict[str, Any]]
) -> None:
    t = _tok(server)["submit"]
    before_files, before = _stored(server), _crash_count(server)
    dump = Path(kdump_zlib[0]["path"])
    with open(dump, "rb") as f:
        head = f.read(3 * 1024 * 1024)
    s, b = server.submit(t, head)
    _refused(server, s, b, 422, "vmcore refused: truncated")
    s, b = server.submit(t, dump.read_bytes())
    _refused(server, s, b, 413, "at most 4 MiB")
    assert _stored(server) == before_files and _crash_count(server) == before


def test_compressed_and_multipart_uploads_are_one_crash(server: ServerProcess) -> None:
    t = _tok(server)
    log = (OOPS / "arm64-6.10-null.txt").read_bytes()
    sha = hashlib.sha256(log).hexdigest()
    s1, a = server.json(
        "POST",
        "/api/v1/crashes",
        t["submit"],
        body=zstandard.ZstdCompressor().compress(log),
        headers={"Content-Encoding": "zstd", "X-Kcrash-Host": "arm-1"},
    )
    s2, b = server.json(
        "POST",
        "/api/v1/crashes",
        t["submit"],
        body=gzip.compress(log),
        headers={"Content-Encoding": "gzip"},
    )
    boundary = "kcrashtest"
    form = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="host"\r\n\r\narm-1\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="o"\r\n\r\n'
        ).encode()
        + log
        + f"\r\n--{boundary}--\r\n".encode()
    )
    s3, c = server.json(
        "POST",
        "/api/v1/crashes",
        t["submit"],
        body=form,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert (s1, s2, s3) == (202, 202, 202), (a, b, c)
    assert a["sha256"] == b["sha256"] == c["sha256"] == sha
    assert a["id"] == b["id"] == c["id"] and b["duplicate"] and c["duplicate"]
    # A restart that names the content it is about to send needs no body at all.
    s4, d = server.json("POST", "/api/v1/crashes", t["submit"], headers={"X-Kcrash-Sha256": sha})
    assert s4 == 202 and d["id"] == a["id"] and d["duplicate"]


def test_files_are_private_and_dumps_admin_only(server: ServerProcess) -> None:
    t = _tok(server)
    log = (OOPS / "x86-oops-invalid-opcode-6.15.txt").read_bytes()
    s, sub = server.submit(t["submit"], log, host="web-9")
    assert s == 202
    crash = server.wait_done(t["read"], sub["id"])
    assert crash["status"] == "done", crash["error"]
    path = f"/api/v1/crashes/{sub['id']}/dump"
    assert server.request("GET", path, t["read"])[0] == 403
    assert server.request("GET", path, t["submit"])[0] == 403
    status, body, _h = server.request("GET", path, t["admin"])
    assert status == 200 and body == log
    for p in _stored(server):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
        assert stat.S_IMODE(p.parent.stat().st_mode) == 0o700, p.parent
    assert stat.S_IMODE((server.data / "kcrash.db").stat().st_mode) == 0o600


def test_retention_at_start_deletes_rows_and_files(tmp_path: Path) -> None:
    """``--retention-days`` runs at start: an expired crash leaves no row and no file."""
    data = tmp_path / "data"
    admin = make_token(data, "admin")
    srv = ServerProcess(data).start()
    try:
        log = (OOPS / "x86-suspicious-rcu.txt").read_bytes()
        status, sub = srv.submit(admin, log, host="old-host")
        assert status == 202
        assert srv.wait_done(admin, sub["id"])["status"] == "done"
        files = [p for p in (data / "blobs").rglob("*") if p.is_file() and p.name != STORE_ID_FILE]
        assert len(files) == 1
    finally:
        srv.stop()
    srv = ServerProcess(data, extra=["--retention-days", "0"]).start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status, _crash = srv.json("GET", f"/api/v1/crashes/{sub['id']}", admin)
            if status == 404:
                break
            time.sleep(0.2)
        assert status == 404
        assert not files[0].exists() and not files[0].parent.exists()
    finally:
        srv.stop()


def test_text_that_is_no_kernel_log_fails_with_its_reason(server: ServerProcess) -> None:
    """Only the analysis can tell prose from a kernel log: the crash is accepted, then
    marked failed with kcrash's one-line reason (no traceback, no server path)."""
    t = _tok(server)
    text = (Path(__file__).parent.parent / "docs" / "DEVELOPING.md").read_bytes()[:4000]
    status, sub = server.submit(t["submit"], text, host="typo-host")
    assert status == 202 and sub["kind"] == "log", sub
    crash = server.wait_done(t["read"], sub["id"])
    assert crash["status"] == "failed" and crash["report"] is None
    assert "no kernel log records" in crash["error"], crash["error"]
    assert "blobs" not in crash["error"] and "Traceback" not in crash["error"]
    status, body, _h = server.request("GET", "/metrics", t["read"])
    assert status == 200 and b"kcrash_crashes_failed 1.0" in body


def test_behind_a_tls_proxy(server: ServerProcess) -> None:
    """TLS ends at a reverse proxy: ``X-Forwarded-Proto: https`` from a trusted proxy
    address (``FORWARDED_ALLOW_IPS``, default 127.0.0.1: here the test is the proxy) makes
    the dashboard's session cookie ``Secure``; over plain HTTP it is not (or no browser
    would send it back)."""
    import http.client
    import urllib.parse

    form = urllib.parse.urlencode({"token": _tok(server)["read"], "next": "/"})
    ctype = {"Content-Type": "application/x-www-form-urlencoded"}

    def cookie(extra: dict[str, str]) -> str:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        try:  # not urllib: the cookie comes with the 303, which urllib would follow
            conn.request("POST", "/login", body=form, headers={**ctype, **extra})
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 303, resp.status
            return str(resp.getheader("set-cookie") or "")
        finally:
            conn.close()

    proxied = cookie({"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"})
    plain = cookie({})
    assert "secure" in proxied.lower() and "httponly" in proxied.lower(), proxied
    assert "secure" not in plain.lower(), plain
