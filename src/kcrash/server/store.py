"""The blob store: uploads land here, content-addressed by SHA-256, private to the server.

Layout: ``DATA/blobs/ab/cd/<sha256>`` (0600 files in 0700 directories: dumps hold keys,
passwords and customer data from kernel memory), ``DATA/blobs/tmp/`` for uploads in
progress.  An upload streams into a temporary file while its hash is computed, is
decompressed on the fly when the client sent ``Content-Encoding: zstd`` or ``gzip``, and
is cut off at the size cap of its kind — so neither memory nor disk use depends on what a
client claims.  Only a complete, accepted upload is renamed into place; a rejected one is
deleted, and temporary files left by a killed server are removed at the next start (the
client never got its 202, so it sends again).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import anyio.to_thread

from .config import Limits
from .dumpcheck import dump_problem, looks_like_vmcore


class Rejected(Exception):
    """A request the server refuses: becomes a 4xx with this one-line message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


#: The kinds of upload and how they are told apart by their first bytes (after transit
#: decompression).  A declared kind (``X-Kcrash-Kind`` / form field) must agree.
KIND_RULES = (
    ("vmcore", "ELF core, kdump-compressed (KDUMP/DISKDUMP) or makedumpfile flattened header"),
    ("report", "a JSON object (kcrash analyze --format json)"),
    ("log", "UTF-8 text without NUL bytes (an oops log, vmcore-dmesg.txt, console capture)"),
)

#: Bytes inspected to tell the kind: enough for every dump header magic and to judge text.
SNIFF_BYTES = 64 * 1024


def sniff_kind(head: bytes) -> str | None:
    """vmcore, report, log, or None for anything else (garbage is refused, not stored)."""
    if looks_like_vmcore(head):
        return "vmcore"
    if b"\0" in head:
        return None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:
        # A multi-byte character cut by the sniff window is still text.
        if e.start < len(head) - 4:
            return None
        text = head[: e.start].decode("utf-8")
    stripped = text.lstrip()
    if not stripped:
        return None
    if stripped.startswith("{"):
        return "report"
    return "log"


def cap_for(kind: str, limits: Limits) -> int:
    return {
        "vmcore": limits.max_vmcore_bytes,
        "log": limits.max_log_bytes,
        "report": limits.max_report_bytes,
    }[kind]


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.0f} MiB"


class _Sink:
    """Writes decompressed bytes to the temporary file, hashing, sniffing and capping."""

    def __init__(self, f: BinaryIO, limits: Limits, declared: str | None) -> None:
        self.f = f
        self.limits = limits
        self.declared = declared
        self.sha = hashlib.sha256()
        self.size = 0
        self.head = b""
        self.kind: str | None = None
        self.cap = max(limits.max_vmcore_bytes, limits.max_log_bytes, limits.max_report_bytes)

    def _decide(self) -> None:
        kind = sniff_kind(self.head)
        if kind is None:
            raise Rejected(
                415, "not a vmcore, a kernel log or a kcrash report JSON (unrecognized content)"
            )
        if self.declared and self.declared != kind:
            raise Rejected(415, f"declared kind {self.declared} but the content is a {kind}")
        self.kind = kind
        self.cap = cap_for(kind, self.limits)

    def write(self, data: bytes) -> int:
        if not data:
            return 0
        if self.kind is None:
            self.head += data[: SNIFF_BYTES - len(self.head)]
            if len(self.head) >= SNIFF_BYTES:
                self._decide()
        self.size += len(data)
        if self.size > self.cap:
            raise Rejected(
                413, f"upload too large: a {self.kind or 'crash'} is at most {_mib(self.cap)}"
            )
        self.sha.update(data)
        self.f.write(data)
        return len(data)

    def finish(self) -> None:
        if self.kind is None:
            if not self.head:
                raise Rejected(400, "empty upload")
            self._decide()


class _Gunzip:
    """Streaming gzip with bounded output per call (a small gzip bomb chunk cannot
    allocate gigabytes: output comes in slices of at most 1 MiB)."""

    def __init__(self, sink: _Sink) -> None:
        self.d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self.sink = sink

    def write(self, data: bytes) -> None:
        try:
            out = self.d.decompress(data, 1 << 20)
            self.sink.write(out)
            while self.d.unconsumed_tail:
                self.sink.write(self.d.decompress(self.d.unconsumed_tail, 1 << 20))
        except zlib.error as e:
            raise Rejected(400, f"Content-Encoding gzip, but the body is not gzip data: {e}") from e

    def finish(self) -> None:
        if not self.d.eof:
            raise Rejected(400, "truncated gzip body (the upload ended inside the stream)")


class _Unzstd:
    """Streaming zstd through a stream_writer, which hands its output on in fixed slices
    (zstandard's decompressobj returns a whole bomb's output from one call)."""

    def __init__(self, sink: _Sink) -> None:
        import zstandard

        self.zstd = zstandard
        self.sink = sink
        self.w = zstandard.ZstdDecompressor().stream_writer(
            sink, write_size=1 << 20, write_return_read=True, closefd=False
        )

    def write(self, data: bytes) -> None:
        try:
            self.w.write(data)
        except self.zstd.ZstdError as e:
            raise Rejected(400, f"Content-Encoding zstd, but the body is not zstd data: {e}") from e

    def finish(self) -> None:
        # The writer cannot tell a frame cut short from a finished one; what it lost is
        # caught by the content checks that follow (a vmcore's page table runs past its
        # end, a report is not complete JSON).  A truncated log is still a log.
        self.w.flush()


@dataclass
class Received:
    """A finished upload in the temporary area, not yet accepted."""

    tmp_path: Path
    sha256: str
    size: int
    kind: str


#: A random id written by the API into its blob store and into the database (Meta
#: ``blob_store_id``): a worker whose ``--data`` holds another id (or none) does not see the
#: API's uploads, and says so at start instead of failing every analysis.
STORE_ID_FILE = ".store-id"


def blob_path_for(root: Path, sha256: str) -> Path:
    """Where an upload lives under a blob store: by content hash, so a worker finds it under
    its own mount point of the shared directory, whatever path the API wrote it at."""
    return Path(root) / sha256[:2] / sha256[2:4] / sha256


class BlobStore:
    def __init__(self, root: Path, limits: Limits) -> None:
        self.root = Path(root)
        self.limits = limits
        self.tmp = self.root / "tmp"
        for d in (self.root, self.tmp):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(d, 0o700)

    def clean_tmp(self) -> int:
        """Remove uploads a killed server left half-written; returns how many."""
        n = 0
        for p in self.tmp.iterdir():
            p.unlink(missing_ok=True)
            n += 1
        return n

    def path_for(self, sha256: str) -> Path:
        return blob_path_for(self.root, sha256)

    @property
    def id_file(self) -> Path:
        return self.root / STORE_ID_FILE

    async def receive(
        self,
        chunks: AsyncIterator[bytes],
        *,
        encoding: str | None = None,
        declared_kind: str | None = None,
    ) -> Received:
        """Stream ``chunks`` into a temporary 0600 file; raise :class:`Rejected` on bad data."""
        enc = (encoding or "identity").strip().lower()
        if enc not in ("identity", "gzip", "x-gzip", "zstd"):
            raise Rejected(415, f"unsupported Content-Encoding {encoding!r} (use zstd or gzip)")
        fd, name = tempfile.mkstemp(dir=self.tmp, prefix="upload-")
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as f:
                sink = _Sink(f, self.limits, declared_kind)
                dec: _Sink | _Gunzip | _Unzstd
                if enc in ("gzip", "x-gzip"):
                    dec = _Gunzip(sink)
                elif enc == "zstd":
                    dec = _Unzstd(sink)
                else:
                    dec = sink
                async for chunk in chunks:
                    dec.write(chunk)
                dec.finish()
                sink.finish()
            assert sink.kind is not None
            if sink.kind == "vmcore":
                # A few reads, but of a file of gigabytes: off the event loop.
                problem = await anyio.to_thread.run_sync(dump_problem, tmp)
                if problem:
                    raise Rejected(422, f"vmcore refused: {problem}")
            return Received(tmp, sink.sha.hexdigest(), sink.size, sink.kind)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def accept(self, rec: Received) -> Path:
        """Move an accepted upload to its content address (same content: same file)."""
        dest = self.path_for(rec.sha256)
        for d in (dest.parent.parent, dest.parent):
            d.mkdir(exist_ok=True, mode=0o700)
        os.chmod(rec.tmp_path, 0o600)
        os.replace(rec.tmp_path, dest)
        return dest

    def discard(self, rec: Received) -> None:
        rec.tmp_path.unlink(missing_ok=True)

    def delete(self, path: str | os.PathLike[str]) -> int:
        """Remove a blob and return the bytes freed (0 when already gone)."""
        p = Path(path)
        try:
            size = p.stat().st_size
            p.unlink()
        except FileNotFoundError:
            return 0
        for d in (p.parent, p.parent.parent):
            try:
                d.rmdir()
            except OSError:
                break
        return size

    def usage(self) -> int:
        total = 0
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                with contextlib.suppress(FileNotFoundError):
                    total += os.stat(os.path.join(dirpath, name)).st_size
        return total


def copy_file(src: Path, dst: Path) -> None:
    shutil.copyfile(src, dst)
