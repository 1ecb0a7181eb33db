"""One crash file to ``POST /api/v1/crashes``: streamed, compressed in transit, capped, retried.

Why the standard library's ``http.client``: this runs in kdump capture environments and on
hosts that only have Python, so it must not need httpx or requests.  The body is read in 1 MiB
chunks, compressed on the fly (zstd when ``zstandard`` is installed, else gzip) and sent with
chunked transfer encoding, so a multi-GiB vmcore never sits in memory.

Restartable, not resumable: a failed attempt (connection lost, server killed, 5xx, 429) is sent
again from the first byte after a back-off.  That is safe because the server stores crashes by
the SHA-256 of their content (the same dump twice is one crash) and throws away half-received
uploads.  Standard input is first copied to a private temporary file so it can be sent again.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import ssl
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO
from urllib.parse import urlsplit

from ..errors import KcrashError
from .hostfacts import HostFacts

CHUNK = 1 << 20
#: The server's default cap on a vmcore (server/config.py Limits.max_vmcore_bytes).
DEFAULT_MAX_BYTES = 8 << 30

#: Host facts travel as request headers (the body is the crash file itself, unmodified).
HOST_HEADERS = {
    "hostname": "X-Kcrash-Host",
    "machine_id": "X-Kcrash-Machine-Id",
    "kernel_release": "X-Kcrash-Kernel-Release",
    "distro": "X-Kcrash-Distro",
    "hardware": "X-Kcrash-Hardware",
}

#: Statuses worth sending again: the server or a proxy in front of it was not able to take
#: the upload now; every other 4xx is final (bad token, too large, not a crash).
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class SubmitError(KcrashError):
    """A submission that failed for good; the message is one line for the operator."""


@dataclass
class Server:
    url: str
    token: str
    ca_file: str | None = None
    timeout: float = 300.0
    attempts: int = 5
    backoff: float = 1.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    def connection(self) -> http.client.HTTPConnection:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SubmitError(f"--server must be an http:// or https:// URL, not {self.url!r}")
        if parts.scheme == "https":
            ctx = ssl.create_default_context(cafile=self.ca_file)
            return http.client.HTTPSConnection(
                parts.hostname, parts.port, timeout=self.timeout, context=ctx
            )
        return http.client.HTTPConnection(parts.hostname, parts.port, timeout=self.timeout)

    def path(self, tail: str) -> str:
        base = urlsplit(self.url).path.rstrip("/")
        return f"{base}{tail}"


def _encoder() -> tuple[str, Callable[[], object]]:
    """zstd when the module exists (fast, good on dump pages), gzip otherwise."""
    try:
        import zstandard

        return "zstd", lambda: zstandard.ZstdCompressor(level=3).compressobj()
    except ImportError:
        return "gzip", lambda: zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)


def _compressed(f: BinaryIO, make: Callable[[], object]) -> Iterator[bytes]:
    comp = make()
    while True:
        block = f.read(CHUNK)
        if not block:
            break
        out = comp.compress(block)  # type: ignore[attr-defined]
        if out:
            yield out
    tail = comp.flush()  # type: ignore[attr-defined]
    if tail:
        yield tail


def spool_stdin(stream: BinaryIO, max_bytes: int) -> str:
    """Standard input into a 0600 temporary file (so a retry can send it again), capped."""
    fd, path = tempfile.mkstemp(prefix="kcrash-submit-")
    total = 0
    try:
        with os.fdopen(fd, "wb") as out:
            while True:
                block = stream.read(CHUNK)
                if not block:
                    break
                total += len(block)
                if total > max_bytes:
                    raise SubmitError(f"standard input is larger than the cap ({max_bytes} bytes)")
                out.write(block)
    except BaseException:
        os.unlink(path)
        raise
    return path


@dataclass
class Accepted:
    """The server's 202 answer."""

    id: object
    status: str | None
    duplicate: bool
    body: dict


def _sha256(path: str) -> str:
    """Sent ahead of the body: a server that has this content already answers at once, so
    a restarted submission (or a second host's copy) does not send the dump again."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def _one_attempt(
    server: Server, path: str, headers: dict[str, str], encoding: str, make: Callable
) -> tuple[int, dict[str, str], bytes]:
    conn = server.connection()
    try:
        with open(path, "rb") as f:
            conn.request(
                "POST",
                server.path("/api/v1/crashes"),
                body=_compressed(f, make),
                headers={**headers, "Content-Encoding": encoding},
                encode_chunked=True,
            )
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read(1 << 20)
    finally:
        conn.close()


def _message(body: bytes) -> str:
    """The server's one-line reason (FastAPI's ``{"detail": …}``), else the start of the body."""
    try:
        detail = json.loads(body).get("detail")
        if isinstance(detail, str):
            return detail
        if detail is not None:
            return json.dumps(detail)[:300]
    except (ValueError, AttributeError):
        pass
    return body.decode("utf-8", "replace").strip().splitlines()[0][:300] if body.strip() else ""


def submit_file(
    server: Server,
    path: str,
    facts: HostFacts,
    *,
    kind: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    name: str | None = None,
    log: Callable[[str], None] = lambda s: None,
) -> Accepted:
    """Send ``path`` (a vmcore, a log or a report JSON); retried from the start on failure."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise SubmitError(f"{path}: {e.strerror}") from e
    if not os.path.isfile(path):
        raise SubmitError(f"{path}: not a regular file")
    if st.st_size > max_bytes:
        raise SubmitError(f"{path}: {st.st_size} bytes is more than the cap of {max_bytes} bytes")
    if st.st_size == 0:
        raise SubmitError(f"{path}: empty file")
    headers = {
        "Authorization": f"Bearer {server.token}",
        "Content-Type": "application/octet-stream",
        "X-Kcrash-Filename": os.path.basename(name or path)[:200],
    }
    if kind:
        headers["X-Kcrash-Kind"] = kind
    for key, value in facts.as_dict().items():
        headers[HOST_HEADERS[key]] = value
    headers["X-Kcrash-Sha256"] = _sha256(path)
    encoding, make = _encoder()
    delay = server.backoff
    last = ""
    for attempt in range(1, server.attempts + 1):
        try:
            status, rheaders, body = _one_attempt(server, path, headers, encoding, make)
        except (OSError, http.client.HTTPException) as e:
            last = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        else:
            if status in (200, 201, 202):
                try:
                    data = json.loads(body)
                except ValueError as e:
                    raise SubmitError(f"{path}: the server answered {status} without JSON") from e
                return Accepted(
                    data.get("id"), data.get("status"), bool(data.get("duplicate")), data
                )
            reason = _message(body)
            if status not in RETRY_STATUSES:
                raise SubmitError(f"{path}: refused by the server ({status}): {reason}")
            last = f"HTTP {status}: {reason}"
            retry_after = rheaders.get("retry-after", "")
            if retry_after.isdigit():
                delay = max(delay, min(float(retry_after), 300.0))
        if attempt < server.attempts:
            log(f"{path}: attempt {attempt} failed ({last}); sending again in {delay:.0f}s")
            server.sleep(delay)
            delay = min(delay * 2, 60.0)
    raise SubmitError(f"{path}: not sent after {server.attempts} attempts: {last}")
