"""``kcrash server`` end to end on SQLite and PostgreSQL: a real server process, real uploads,
real analyses.

Inputs are real: oops logs from tests/data/oops (each with its source recorded there) and a
report JSON made by ``kcrash analyze`` from one of them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from server_process import ServerProcess, kcrash_env, make_token
from services import create_database, postgres_server  # noqa: F401 (fixture)

OOPS = Path(__file__).parent / "data" / "oops"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """The embedded default, and the same server on a real PostgreSQL (tests/services.py)."""
    data = tmp_path_factory.mktemp("server") / "data"
    url = None
    if request.param == "postgresql":
        url = create_database(request.getfixturevalue("postgres_server"), "kcrash_api")
    srv = ServerProcess(data, database=url, extra=["--workers", "2"])
    srv.tokens = {r: make_token(data, r, url) for r in ("submit", "read", "admin")}  # type: ignore[attr-defined]
    srv.start()
    yield srv
    srv.stop()


def _report_of(log: Path) -> bytes:
    out = subprocess.run(
        [sys.executable, "-m", "kcrash", "analyze", str(log), "--format", "json"],
        env=kcrash_env(),
        capture_output=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture(scope="module")
def two_crashes(server: ServerProcess) -> tuple[dict[str, Any], dict[str, Any], bytes]:
    """An oops log and a report JSON submitted and analyzed: two crashes, two buckets."""
    t = server.tokens  # type: ignore[attr-defined]
    log = (OOPS / "x86-oops-gpf-6.x.txt").read_bytes()
    status, sub = server.submit(t["submit"], log, host="web-1", kernel_release="6.14.0")
    assert status == 202 and sub["kind"] == "log" and not sub["duplicate"], sub
    report = _report_of(OOPS / "s390x-bug-on.txt")
    status, sub2 = server.submit(t["submit"], report, host="db-1")
    assert status == 202 and sub2["kind"] == "report", sub2
    a = server.wait_done(t["read"], sub["id"])
    b = server.wait_done(t["read"], sub2["id"])
    assert a["status"] == "done" and b["status"] == "done", (a["error"], b["error"])
    return a, b, report


def test_log_and_report_end_in_buckets(
    server: ServerProcess, two_crashes: tuple[dict[str, Any], dict[str, Any], bytes]
) -> None:
    t = server.tokens  # type: ignore[attr-defined]
    a, b, report = two_crashes
    assert a["class"] == "gpf" and a["host"] == "web-1"
    assert b["signature"] == json.loads(report)["signature"]["id"]
    assert a["bucket"] != b["bucket"]
    status, page = server.json("GET", "/api/v1/buckets", t["read"])
    assert status == 200
    sigs = {x["signature"]: x for x in page["items"]}
    assert {a["bucket"], b["bucket"]} <= set(sigs)
    row = sigs[a["bucket"]]
    for key in ("signature", "title", "class", "count", "hosts", "first_seen", "last_seen"):
        assert row[key] not in (None, ""), key
    assert row["state"] == "open" and row["count"] == 1 and row["hosts"] == 1
    status, one = server.json("GET", f"/api/v1/buckets/{a['bucket']}", t["read"])
    assert status == 200 and one["host_names"] == [{"value": "web-1", "count": 1}]
    assert one["representative"]["report"]["verdict"]["class"] == "gpf"
    status, body, headers = server.request("GET", "/api/v1/buckets?format=csv", t["read"])
    assert status == 200 and headers["content-type"].startswith("text/csv")
    lines = body.decode().splitlines()
    assert lines[0].startswith("signature,title,class,") and len(lines) == 1 + page["total"]
    status, body, _h = server.request("GET", "/metrics", t["read"])
    assert status == 200
    text = body.decode()
    # The release the log names, not the one the host sent with it.
    assert a["kernel_release"] == "6.14.0-syzkaller-12456-gacc4d5ff0b61"
    assert f'kcrash_crashes{{bucket="{a["bucket"]}",kernel="{a["kernel_release"]}"}} 1.0' in text
    assert 'kcrash_queue_depth{status="queued"}' in text and "kcrash_crashes_failed 0.0" in text


def test_same_upload_twice_is_one_crash(server: ServerProcess) -> None:
    t = server.tokens  # type: ignore[attr-defined]
    log = (OOPS / "x86-oops-oops-6.13.txt").read_bytes()
    s1, first = server.submit(t["submit"], log, host="web-2")
    s2, second = server.submit(t["submit"], log, host="web-3")
    assert s1 == s2 == 202
    assert first["id"] == second["id"] and second["duplicate"]


def test_openapi_schema_lists_the_interface(server: ServerProcess) -> None:
    status, schema = server.json("GET", "/openapi.json", None)
    assert status == 200
    for path in (
        "/api/v1/crashes",
        "/api/v1/crashes/{crash_id}",
        "/api/v1/buckets",
        "/api/v1/buckets/{signature}",
    ):
        assert path in schema["paths"], path


def test_bucket_state_merge_split_over_http(
    server: ServerProcess, two_crashes: tuple[dict[str, Any], dict[str, Any], bytes]
) -> None:
    t = server.tokens  # type: ignore[attr-defined]
    a, b, _report = two_crashes
    gpf, bug = a["bucket"], b["bucket"]
    body = json.dumps({"state": "fixed", "fixed_in": "6.14.2"}).encode()
    hdr = {"Content-Type": "application/json"}
    status, res = server.json(
        "POST", f"/api/v1/buckets/{gpf}/state", t["read"], body=body, headers=hdr
    )
    assert status == 403, res
    status, res = server.json(
        "POST", f"/api/v1/buckets/{gpf}/state", t["admin"], body=body, headers=hdr
    )
    assert status == 200 and res["state"] == "fixed" and res["fixed_in"] == "6.14.2", res
    status, res = server.json(
        "POST", f"/api/v1/buckets/{gpf}/state", t["admin"], body=b'{"state": "done"}', headers=hdr
    )
    assert status == 400 and "state must be one of" in res["detail"]
    into = json.dumps({"into": gpf}).encode()
    status, res = server.json(
        "POST", f"/api/v1/buckets/{bug}/merge", t["admin"], body=into, headers=hdr
    )
    assert status == 200 and res["signature"] == gpf and res["merged"] == [bug], res
    status, res = server.json("GET", f"/api/v1/buckets/{bug}", t["read"])
    assert status == 200 and res["signature"] == gpf and res["count"] == 2
    status, crash = server.json("GET", f"/api/v1/crashes/{b['id']}", t["read"])
    assert [h["reason"] for h in crash["history"]] == ["analysis", "merge"]
    status, res = server.json("POST", f"/api/v1/buckets/{bug}/unmerge", t["admin"])
    assert status == 200 and res["signature"] == bug and res["count"] == 1, res
    split = json.dumps({"crash_ids": [a["id"]]}).encode()
    status, res = server.json(
        "POST", f"/api/v1/buckets/{gpf}/split", t["admin"], body=split, headers=hdr
    )
    assert status == 400 and "at least one crash" in res["detail"], res


def test_concurrent_submissions_from_new_hosts(
    server: ServerProcess, two_crashes: tuple[dict[str, Any], dict[str, Any], bytes]
) -> None:
    """Eight hosts at once, each new to the server: every submission is a 202 (on SQLite a
    read-then-write transaction must wait for the writer before it, not fail)."""
    from concurrent.futures import ThreadPoolExecutor

    t = server.tokens  # type: ignore[attr-defined]
    report = json.loads(two_crashes[2])

    def one(i: int) -> int:
        variant = dict(report, input=dict(report["input"], path=f"/var/crash/{i}/dmesg"))
        status, _sub = server.submit(
            t["submit"], json.dumps(variant).encode(), host=f"burst-{i:02d}"
        )
        return status

    with ThreadPoolExecutor(8) as ex:
        statuses = list(ex.map(one, range(32)))
    assert statuses == [202] * 32
    status, page = server.json("GET", "/api/v1/hosts?limit=100", t["read"])
    assert status == 200
    assert len([h for h in page["items"] if h["name"].startswith("burst-")]) == 32
