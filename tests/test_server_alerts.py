"""The embedded server sends the same alerts as the Celery workers (issue 16, "Regressions
and alerts"): *new*, *regressed* and *spike* webhooks, signed, from ``kcrash server
--alerts FILE`` with no broker — the local pool runs the analyses and must alert too.

Inputs are real: the corpus's vmcore-dmesg.txt of one null-pointer bug captured on a
Debian 11 and a Debian 12 kernel (one bucket, two kernel releases; test_fleet checks that
grouping on the deployment).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import pick
from server_process import ServerProcess, WebhookReceiver, make_token

from kcrash.server import alerts, kversion


def test_embedded_pool_sends_new_regressed_and_spike(
    tmp_path: Path, corpus: list[dict[str, Any]]
) -> None:
    old = pick(corpus, id="deb11/null-deref/kdump-zlib")[0]
    new = pick(corpus, id="deb12/null-deref/kdump-zlib")[0]
    assert kversion.compare(kversion.parse(new["release"]), kversion.parse(old["release"])) == 1
    hooks = WebhookReceiver()
    config = tmp_path / "alerts.json"
    config.write_text(
        json.dumps(
            {
                "webhooks": [{"url": hooks.url, "secret": "s3"}],
                # Two crashes of a bucket in an hour, none before: a spike.
                "spike": {"window_minutes": 60, "baseline_days": 7, "factor": 5, "min_count": 2},
            }
        )
    )
    data = tmp_path / "data"
    tok = {r: make_token(data, r) for r in ("submit", "read", "admin")}
    srv = ServerProcess(data, extra=["--workers", "1", "--alerts", str(config)]).start()
    try:
        st, first = srv.submit(tok["submit"], Path(old["dmesg"]).read_bytes(), host="old-1")
        assert st == 202, first
        crash = srv.wait_done(tok["read"], first["id"], timeout=240)
        assert crash["status"] == "done", crash["error"]
        got = hooks.events(1)
        assert [e for e, _ in got] == ["new"]
        assert got[0][1]["bucket"]["signature"] == crash["bucket"]
        # Fixed in the Debian 11 kernel; the same bug on the newer Debian 12 kernel regresses.
        st, body = srv.json(
            "POST",
            f"/api/v1/buckets/{crash['bucket']}/state",
            tok["admin"],
            body=json.dumps({"state": "fixed", "fixed_in": old["release"]}).encode(),
            headers={"Content-Type": "application/json"},
        )
        assert st == 200, body
        st, second = srv.submit(tok["submit"], Path(new["dmesg"]).read_bytes(), host="new-1")
        assert st == 202, second
        again = srv.wait_done(tok["read"], second["id"], timeout=240)
        assert again["status"] == "done" and again["bucket"] == crash["bucket"], again
        got = hooks.events(3)
    finally:
        srv.stop()
        hooks.shutdown()
    assert sorted(e for e, _ in got) == ["new", "regressed", "spike"]
    regressed = next(p for e, p in got if e == "regressed")
    assert regressed["fixed_in"] == old["release"] and regressed["seen_on"] == new["release"]
    spike = next(p for e, p in got if e == "spike")
    assert spike["count_in_window"] == 2
    assert all(
        alerts.verify("s3", h["x-kcrash-timestamp"], b, h["x-kcrash-signature"])
        for h, b in hooks.got
    )
