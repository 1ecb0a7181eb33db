"""A real ``kcrash server`` process on a free loopback port, for the server's tests.

Not a TestClient: the tests talk HTTP to the same command an operator runs, so start-up,
migrations, the analysis pool and shutdown are what is tested.  ``fleet`` and ``dash``
reuse :class:`ServerProcess` (database URL and broker URL are options).
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SRC = str(Path(__file__).resolve().parent.parent / "src")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def kcrash_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([SRC, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def make_token(data: Path, role: str, database: str | None = None) -> str:
    cmd = [sys.executable, "-m", "kcrash", "token", "create", "--data", str(data), "--role", role]
    if database:
        cmd += ["--database", database]
    out = subprocess.run(cmd, env=kcrash_env(), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


class ServerProcess:
    """``kcrash server --data DIR --listen 127.0.0.1:PORT [extra…]`` and an HTTP client."""

    def __init__(
        self, data: Path, *, database: str | None = None, extra: Sequence[str] = ()
    ) -> None:
        self.data = data
        self.database = database
        self.extra = list(extra)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data.parent / f"server-{self.port}.log"

    def start(self, timeout: float = 180) -> ServerProcess:
        cmd = [sys.executable, "-m", "kcrash", "server", "--data", str(self.data)]
        cmd += ["--listen", f"127.0.0.1:{self.port}", "--log-level", "warning", *self.extra]
        if self.database:
            cmd += ["--database", self.database]
        logf = open(self.log, "ab")  # noqa: SIM115 - the child keeps it
        self.proc = subprocess.Popen(cmd, env=kcrash_env(), stdout=logf, stderr=logf)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"kcrash server exited: {self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2):
                    return self
            except OSError:
                time.sleep(0.2)
        self.stop(signal.SIGKILL)  # not left behind by a failed test
        raise AssertionError(f"kcrash server did not answer in {timeout} s")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def request(
        self,
        method: str,
        path: str,
        token: str | None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 120,
    ) -> tuple[int, bytes, dict[str, str]]:
        h = dict(headers or {})
        if token:
            h["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read(), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, e.read(), dict(e.headers)

    def json(self, method: str, path: str, token: str | None, **kw: Any) -> tuple[int, Any]:
        status, body, _h = self.request(method, path, token, **kw)
        return status, json.loads(body) if body else None

    def submit(self, token: str, data: bytes, **facts: str) -> tuple[int, Any]:
        headers = {f"X-Kcrash-{k.replace('_', '-').title()}": v for k, v in facts.items()}
        return self.json("POST", "/api/v1/crashes", token, body=data, headers=headers)

    def wait_done(self, token: str, crash_id: int, timeout: float = 300) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, crash = self.json("GET", f"/api/v1/crashes/{crash_id}", token)
            assert status == 200, crash
            if crash["status"] in ("done", "failed"):
                return crash
            time.sleep(0.3)
        raise AssertionError(f"crash {crash_id} not analyzed in {timeout} s")


class WebhookReceiver(http.server.ThreadingHTTPServer):
    """A webhook endpoint on loopback that keeps what the analysis runners send."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Hook)
        self.got: list[tuple[dict[str, str], bytes]] = []
        self.url = f"http://127.0.0.1:{self.server_address[1]}/hook"
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def events(self, want: int, timeout: float = 30) -> list[tuple[str, dict[str, Any]]]:
        """(event, payload) of what arrived, once ``want`` deliveries did (or at timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.got) < want:
            time.sleep(0.2)
        return [(h["x-kcrash-event"], json.loads(b)) for h, b in self.got]


class _Hook(http.server.BaseHTTPRequestHandler):
    server: WebhookReceiver

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()
