"""Real dumps and their logs through a real ``kcrash server``: the right buckets, and a
``kill -9`` of the embedded server in the middle of an analysis loses nothing.

Four vmcores (the analysis of one takes seconds on a loaded host) and three
vmcore-dmesg.txt logs from the corpus: the same scenario on Debian 11, 12 and 13, as a dump
or as its log, is one bucket; different scenarios are different buckets.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import pick
from server_process import ServerProcess, make_token

pytestmark = pytest.mark.corpus


def _one(corpus: list[dict[str, Any]], **want: Any) -> dict[str, Any]:
    found = pick(corpus, **want)
    assert found, f"the corpus has no {want}"
    return found[0]


@pytest.fixture(scope="module")
def picks(corpus: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    zlib = {"format": "kdump", "compression": "zlib"}
    return {
        "null12": _one(corpus, kernel="deb12", scenario="null-deref", **zlib),
        "null11": _one(corpus, kernel="deb11", scenario="null-deref", **zlib),
        "null13": _one(corpus, kernel="deb13", scenario="null-deref", **zlib),
        "bug12": _one(corpus, kernel="deb12", scenario="bug-on", **zlib),
        "warn12": _one(corpus, kernel="deb12", scenario="warn", **zlib),
        "sysrq12": _one(corpus, kernel="deb12", scenario="sysrq", **zlib),
    }


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, picks: dict[str, dict[str, Any]]
) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("server-corpus") / "data"
    kernels = sorted({str(Path(e["vmlinux"]).parent) for e in picks.values()})
    extra = ["--workers", "2"]
    for k in kernels:
        extra += ["--debuginfo", k]
    srv = ServerProcess(data, extra=extra)
    srv.tokens = {r: make_token(data, r) for r in ("submit", "read", "admin")}  # type: ignore[attr-defined]
    srv.start()
    yield srv
    srv.stop()


def test_corpus_dumps_and_logs_end_in_the_right_buckets(
    server: ServerProcess, picks: dict[str, dict[str, Any]]
) -> None:
    t = server.tokens  # type: ignore[attr-defined]
    uploads = [
        ("null12", "path"),
        ("null11", "path"),
        ("bug12", "path"),
        ("null13", "dmesg"),
        ("bug12", "dmesg"),
        ("warn12", "dmesg"),
    ]
    ids: dict[tuple[str, str], int] = {}
    for name, field in uploads:
        e = picks[name]
        status, sub = server.submit(
            t["submit"],
            Path(e[field]).read_bytes(),
            host=f"{name}-{field}",
            kernel_release=e["release"],
        )
        assert status == 202, sub
        assert sub["kind"] == ("vmcore" if field == "path" else "log"), sub
        ids[(name, field)] = sub["id"]
    done = {k: server.wait_done(t["read"], i, timeout=900) for k, i in ids.items()}
    for k, c in done.items():
        assert c["status"] == "done", (k, c["error"])
        assert c["class"] == picks[k[0]]["expected"]["class"], (k, c["class"])
    null = {
        done[k]["bucket"] for k in (("null12", "path"), ("null11", "path"), ("null13", "dmesg"))
    }
    bug = {done[k]["bucket"] for k in (("bug12", "path"), ("bug12", "dmesg"))}
    warn = {done[("warn12", "dmesg")]["bucket"]}
    assert len(null) == len(bug) == len(warn) == 1, (null, bug, warn)
    assert len(null | bug | warn) == 3
    status, b = server.json("GET", f"/api/v1/buckets/{null.pop()}", t["read"])
    assert status == 200 and b["count"] == 3 and b["hosts"] == 3
    assert {k["value"] for k in b["kernels"]} == {
        picks[n]["release"] for n in ("null11", "null12", "null13")
    }
    assert b["culprit"] == picks["null12"]["expected"]["culprit_function"]
    status, page = server.json("GET", "/api/v1/buckets?class=bug-on", t["read"])
    assert status == 200 and [x["count"] for x in page["items"]] == [2]


def test_kill_9_mid_analysis_loses_nothing(
    server: ServerProcess, picks: dict[str, dict[str, Any]]
) -> None:
    t = server.tokens  # type: ignore[attr-defined]
    e = picks["sysrq12"]
    status, sub = server.submit(t["submit"], Path(e["path"]).read_bytes(), host="sysrq-host")
    assert status == 202, sub
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        _s, c = server.json("GET", f"/api/v1/crashes/{sub['id']}", t["read"])
        if c["status"] == "running":
            break
        time.sleep(0.1)
    assert c["status"] == "running", c
    server.stop(signal.SIGKILL)
    server.start()
    c = server.wait_done(t["read"], sub["id"], timeout=900)
    assert c["status"] == "done" and c["class"] == e["expected"]["class"], c["error"]
    status, crash = server.json("GET", f"/api/v1/crashes/{sub['id']}", t["read"])
    assert [h["reason"] for h in crash["history"]] == ["analysis"]
