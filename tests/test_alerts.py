"""Alerts (server/alerts.py): new / regressed / spike on a real database, delivered to a real
HTTP receiver on loopback, signatures checked the way a receiver checks them.

The crashes carry a real report: ``kcrash analyze`` of the corpus's Debian 12 null-deref
vmcore-dmesg.txt (release 6.1.0-57-amd64, ``uname -v`` naming package 6.1.192-3).  Each
crash row is one more upload of a crash with that report (distinct content hashes).
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import pick
from server_process import kcrash_env

from kcrash.server import alerts, buckets, ingest
from kcrash.server.config import Settings
from kcrash.server.db import open_database
from kcrash.server.models import Crash

SECRET = "s3cret-for-tests"


class Receiver(http.server.ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.got: list[tuple[str, dict[str, str], bytes]] = []
        self.fail_first = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Receiver

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.server.fail_first > 0:
            self.server.fail_first -= 1
            self.send_response(503)
            self.end_headers()
            return
        self.server.got.append((self.path, dict(self.headers.items()), body))
        self.send_response(200)
        self.end_headers()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    srv = Receiver()
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _analyze(path: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "kcrash", "analyze", path, "--format", "json"],
        env=kcrash_env(),
        capture_output=True,
        timeout=180,
        check=True,
    )
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def report(corpus: list[dict[str, Any]]) -> dict[str, Any]:
    return _analyze(pick(corpus, id="deb12/null-deref/kdump-zlib")[0]["dmesg"])


@pytest.fixture(scope="module")
def report_deb11(corpus: list[dict[str, Any]]) -> dict[str, Any]:
    """The same bug on Debian 11's kernel (5.10.0-46-amd64): the same bucket."""
    return _analyze(pick(corpus, id="deb11/null-deref/kdump-zlib")[0]["dmesg"])


@pytest.fixture
def db(tmp_path: Path) -> Any:
    return open_database(Settings(data_dir=tmp_path))


def _crash(db: Any, report: dict[str, Any], n: int, at: dt.datetime | None = None) -> int:
    """One more analyzed crash with ``report``, as ingest stores it, received at ``at``."""
    with db.session() as s:
        crash, new = ingest.record_upload(
            s,
            sha256=f"{n:064x}",
            kind="log",
            blob_path=Path("/nonexistent"),
            size=1,
            facts={"host": f"web-{n}"},
        )
        assert new
        if at is not None:
            crash.received_at = at
        ingest.apply_report(crash, report)
        buckets.assign(s, crash)
        crash.status = "done"
        s.flush()
        return crash.id


def _events(db: Any, crash_id: int, config: alerts.AlertConfig, now: Any = None) -> list[str]:
    with db.session() as s:
        crash = s.get(Crash, crash_id)
        return [e.kind for e in alerts.events_for(s, crash, config, now)]


def test_new_bucket_is_delivered_signed_and_to_chat(
    db: Any, report: dict[str, Any], receiver: Receiver
) -> None:
    config = alerts.AlertConfig(
        (
            alerts.Webhook(receiver.url("/hook"), SECRET),
            alerts.Webhook(receiver.url("/chat"), format="chat", events=("new",)),
        )
    )
    first = _crash(db, report, 1)
    with db.session() as s:
        events = alerts.events_for(s, s.get(Crash, first), config)
    assert [e.kind for e in events] == ["new"]
    receiver.fail_first = 1  # the receiver is briefly down: retried
    assert alerts.Notifier(config).deliver(events) == 2
    got = {path: (headers, body) for path, headers, body in receiver.got}
    assert sorted(got) == ["/chat", "/hook"]
    hook_headers = {k.lower(): v for k, v in got["/hook"][0].items()}
    body = got["/hook"][1]
    assert hook_headers["x-kcrash-event"] == "new"
    assert alerts.verify(
        SECRET, hook_headers["x-kcrash-timestamp"], body, hook_headers["x-kcrash-signature"]
    )
    assert not alerts.verify(
        "wrong", hook_headers["x-kcrash-timestamp"], body, hook_headers["x-kcrash-signature"]
    )
    payload = json.loads(body)
    assert payload["event"] == "new" and payload["bucket"]["class"] == "null-deref"
    assert payload["crash"]["kernel_release"] == "6.1.0-57-amd64"
    chat = json.loads(got["/chat"][1])
    assert set(chat) == {"text"} and chat["text"].startswith("New kernel crash: ")
    second = _crash(db, report, 2)
    assert _events(db, second, config) == [], "a second crash is no longer new"


@pytest.mark.parametrize(
    ("fixed_in", "regressed"),
    [
        ("6.1.0-40-amd64", True),  # the crash's 6.1.0-57 is newer than the fix
        ("6.1.0-58-amd64", False),  # 6.1.0-57 predates the fix: expected, not regressed
        ("6.1.0-57-amd64 6.1.192-2", True),  # same ABI name, later package (uname -v: -3)
        ("6.1.0-57-amd64 6.1.192-3", False),  # the very build the fix is in
        ("6.1.0-0.deb11.17-amd64", True),  # a bullseye backport of 6.1 sorts below
        ("6.12.38+deb13-amd64", False),  # fixed in Debian 13's kernel: 6.1 is older
        ("4.18.0-513.5.1.el8_9.x86_64", True),  # another vendor: series 6.1 > 4.18
        ("6.1.0-57.el9.x86_64", False),  # same series, another vendor: unknown, no alert
    ],
)
def test_regression_follows_kernel_order(
    db: Any, report: dict[str, Any], report_deb11: dict[str, Any], fixed_in: str, regressed: bool
) -> None:
    """Seen on 5.10.0-46, marked fixed in ``fixed_in``, then seen on 6.1.0-57 (6.1.192-3)."""
    config = alerts.AlertConfig()
    first = _crash(db, report_deb11, 1)
    with db.session() as s:
        signature = s.get(Crash, first).bucket.signature
        buckets.set_state(s, signature, "fixed", fixed_in)
    later = _crash(db, report, 2)
    assert ("regressed" in _events(db, later, config)) is regressed
    # Once per bucket and kernel release: the next crash on the same kernel says nothing.
    assert "regressed" not in _events(db, _crash(db, report, 3), config)


def test_spike_over_baseline_fires_once_when_crossing(db: Any, report: dict[str, Any]) -> None:
    rule = alerts.SpikeRule(
        window=dt.timedelta(hours=1), baseline=dt.timedelta(days=7), factor=5, min_count=3
    )
    config = alerts.AlertConfig(spike=rule)
    now = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.timezone.utc)
    for n, days in enumerate((6, 3), start=1):  # the baseline: two crashes in a week
        _crash(db, report, n, now - dt.timedelta(days=days))
    kinds = []
    for n in range(3, 7):  # then four within ten minutes
        at = now - dt.timedelta(minutes=10 - n)
        kinds.append(_events(db, _crash(db, report, n, at), config, now=at))
    assert kinds == [[], [], ["spike"], []], "fires when the third crosses the line, once"


def test_config_file_and_refusals(tmp_path: Path) -> None:
    good = {
        "webhooks": [{"url": "https://chat.example/hooks/x", "format": "chat", "events": ["new"]}],
        "spike": {"window_minutes": 30, "factor": 3},
    }
    cfg = alerts.AlertConfig.from_json(json.dumps(good))
    assert cfg.webhooks[0].format == "chat" and cfg.spike.window == dt.timedelta(minutes=30)
    with pytest.raises(ValueError, match="bad webhook entry"):
        alerts.AlertConfig.from_json(json.dumps({"webhooks": [{"url": "x", "events": ["boom"]}]}))
