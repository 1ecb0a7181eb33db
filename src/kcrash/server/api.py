"""The HTTP API: ``create_app(settings) -> FastAPI``, everything under ``/api/v1``.

Every request carries ``Authorization: Bearer TOKEN``; roles are checked before a body is
read.  ``POST /api/v1/crashes`` streams the upload into the blob store (size-capped,
``Content-Encoding: zstd|gzip`` decompressed in transit), refuses what is not a whole
vmcore, log or report with a 4xx that leaves nothing behind, answers 202 with the crash id
(the same content twice is the same crash) and queues the analysis.  The dashboard
(``server/web``, branch ``dash``) is mounted when present.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from .. import __version__
from . import auth, buckets, ingest, metrics, queries, retention
from .analysis import AnalysisError, load_report
from .config import Settings
from .db import Database, open_database
from .jobs import JobQueue, make_queue
from .models import KINDS, QUEUED, Crash, Token
from .store import BlobStore, Rejected

#: Host facts as request headers (raw body uploads) and their form-field names (multipart).
FACT_HEADERS = {
    "x-kcrash-host": "host",
    "x-kcrash-machine-id": "machine_id",
    "x-kcrash-kernel-release": "kernel_release",
    "x-kcrash-distro": "distro",
    "x-kcrash-hardware": "hardware",
    "x-kcrash-kind": "kind",
}
FORM_FIELDS = set(FACT_HEADERS.values())
#: A fact is printable text: no control characters (they would reach terminals and CSV).
FACT_RE = re.compile(r"^[^\x00-\x1f\x7f]*$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
log = logging.getLogger("kcrash.server")
#: Bytes of a refused upload still read so the client gets the answer (beyond: reset).
DRAIN_BYTES = 256 * 1024 * 1024
#: A multipart part's header line (Content-Disposition with a file name) is short.
PART_HEADER_BYTES = 8 * 1024


class Principal:
    """Who is calling: the token's role and name (the hash never leaves ``auth``)."""

    def __init__(self, tok: Token) -> None:
        self.role, self.name, self.id = tok.role, tok.name, tok.id


def _fact_value(name: str, value: str, limit: int) -> str:
    if len(value) > limit:
        raise Rejected(400, f"{name} is longer than {limit} characters")
    if not FACT_RE.match(value):
        raise Rejected(400, f"{name} contains control characters")
    return value.strip()


def _parse_time(s: str | None, name: str) -> dt.datetime | None:
    if not s:
        return None
    try:
        t = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise HTTPException(400, f"{name}: not an ISO 8601 time ({s[:40]!r})") from None
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


def _found(row: dict[str, Any] | None, missing: str) -> dict[str, Any]:
    if row is None:
        raise HTTPException(404, missing)
    return row


class Body:
    """The request body as an async iterator of chunks that remembers whether it ended
    (Starlette's ``request.stream()`` cannot be resumed after a refusal to drain it)."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.done = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        while not self.done:
            msg = await self.request.receive()
            if msg["type"] == "http.disconnect":
                raise ClientDisconnect()
            if not msg.get("more_body"):
                self.done = True
            chunk = msg.get("body", b"")
            if chunk:
                yield chunk


class StateIn(BaseModel):
    state: str = Field(max_length=20)
    fixed_in: str | None = Field(default=None, max_length=300)


class MergeIn(BaseModel):
    into: str = Field(max_length=100)


class SplitIn(BaseModel):
    crash_ids: list[int] = Field(max_length=10000)
    title: str = Field(default="", max_length=1000)


def window_dep(
    limit: int = Query(50, ge=1, le=queries.MAX_LIMIT),
    offset: int = Query(0, ge=0),
) -> tuple[int, int]:
    """(limit, offset): every list of the API pages the same way, declared once."""
    return limit, offset


def filters_dep(
    class_: str | None = Query(None, alias="class", max_length=100),
    module: str | None = Query(None, max_length=300),
    kernel: str | None = Query(None, max_length=300),
    host: str | None = Query(None, max_length=300),
    state: str | None = Query(None, max_length=20),
    since: str | None = Query(None, max_length=40),
    until: str | None = Query(None, max_length=40),
    q: str | None = Query(None, max_length=300),
    status: str | None = Query(None, max_length=20),
) -> queries.Filters:
    return queries.Filters(
        class_=class_,
        module=module,
        kernel=kernel,
        host=host,
        state=state,
        since=_parse_time(since, "since"),
        until=_parse_time(until, "until"),
        text=q,
        status=status,
    )


def create_app(settings: Settings, *, queue: JobQueue | None = None) -> FastAPI:
    db: Database = open_database(settings)
    with db.session() as s:
        ingest.regroup_if_rules_changed(s)
    store = BlobStore(settings.blob_dir, settings.limits)
    with db.session() as s:
        ingest.ensure_store_id(s, settings.blob_dir)
    jobs: JobQueue = queue or make_queue(db, settings)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        store.clean_tmp()
        jobs.start()
        sweeper = asyncio.create_task(_retention_loop())
        try:
            yield
        finally:
            sweeper.cancel()
            jobs.stop()

    def _retention_once() -> retention.RetentionResult:
        with db.session() as s:
            return retention.apply(
                s,
                store,
                max_age_days=settings.retention_days,
                max_bytes=settings.retention_bytes,
            )

    async def _retention_loop() -> None:
        while True:
            try:
                res = await run_in_threadpool(_retention_once)
                if res.files_deleted or res.crashes_deleted:
                    log.info(
                        "retention: %d crashes and %d files deleted, %d bytes freed",
                        res.crashes_deleted,
                        res.files_deleted,
                        res.bytes_freed,
                    )
            except Exception:  # a database hiccup must not end the server
                log.exception("retention failed")
            await asyncio.sleep(settings.retention_interval)

    app = FastAPI(
        title="kcrash server",
        version=__version__,
        description="Collect, bucket and track kernel crashes from a fleet.",
        lifespan=lifespan,
    )
    app.state.settings, app.state.db, app.state.store, app.state.jobs = settings, db, store, jobs

    @app.exception_handler(Rejected)
    async def _rejected(_req: Request, exc: Rejected) -> JSONResponse:
        metrics.UPLOADS.labels(outcome=f"rejected-{exc.status}").inc()
        return JSONResponse({"detail": exc.message}, status_code=exc.status)

    def require(role: str) -> Callable[[Request], Principal]:
        def dep(request: Request) -> Principal:
            header = request.headers.get("authorization", "")
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise HTTPException(
                    401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"}
                )
            with db.session() as s:
                tok = auth.lookup(s, token.strip())
                if tok is None:
                    raise HTTPException(
                        401, "invalid token", headers={"WWW-Authenticate": "Bearer"}
                    )
                who = Principal(tok)
            if not auth.role_at_least(who.role, role):
                raise HTTPException(403, f"this needs the {role} role (token has {who.role})")
            return who

        return dep

    submitter = Depends(require("submit"))
    reader = Depends(require("read"))
    admin = Depends(require("admin"))

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    async def _multipart(
        request: Request, body: Body, facts: dict[str, str]
    ) -> AsyncIterator[bytes]:
        """The file part's bytes as they arrive; small fields go into ``facts``."""
        from python_multipart.multipart import MultipartParser, parse_options_header

        _ctype, params = parse_options_header(request.headers.get("content-type", ""))
        boundary = params.get(b"boundary")
        if not boundary:
            raise Rejected(400, "multipart body without a boundary")
        out: list[bytes] = []
        part: dict[str, Any] = {"headers": {}, "field": b"", "value": b""}
        state = {"files": 0}
        limit = settings.limits.max_field_chars

        def on_part_begin() -> None:
            part.update(headers={}, field=b"", value=b"", name=None, is_file=False)

        def on_header_field(data: bytes, start: int, end: int) -> None:
            part["field"] += data[start:end]
            if len(part["field"]) > PART_HEADER_BYTES:
                raise Rejected(400, "a multipart part header is too long")

        def on_header_value(data: bytes, start: int, end: int) -> None:
            key = part["field"].lower()
            part["headers"][key] = part["headers"].get(key, b"") + data[start:end]
            if len(part["headers"][key]) > PART_HEADER_BYTES or len(part["headers"]) > 16:
                raise Rejected(400, "a multipart part header is too long")

        def on_header_end() -> None:
            part["field"] = b""

        def on_headers_finished() -> None:
            _d, p = parse_options_header(part["headers"].get(b"content-disposition", b""))
            part["name"] = p.get(b"name", b"").decode("utf-8", "replace")
            part["is_file"] = b"filename" in p or part["name"] == "file"
            if part["is_file"]:
                state["files"] += 1
                if state["files"] > 1:
                    raise Rejected(400, "one file per submission")

        def on_part_data(data: bytes, start: int, end: int) -> None:
            if part["is_file"]:
                out.append(data[start:end])
            else:
                part["value"] += data[start:end]
                if len(part["value"]) > limit * 4:
                    raise Rejected(400, f"form field {part['name'][:40]!r} is too long")

        def on_part_end() -> None:
            if not part["is_file"]:
                name = part["name"]
                if name not in FORM_FIELDS:
                    raise Rejected(400, f"unknown form field {name[:40]!r}")
                try:
                    value = part["value"].decode("utf-8")
                except UnicodeDecodeError:
                    raise Rejected(400, f"form field {name} is not UTF-8") from None
                facts[name] = _fact_value(name, value, limit)

        parser = MultipartParser(
            boundary,
            {
                "on_part_begin": on_part_begin,
                "on_header_field": on_header_field,
                "on_header_value": on_header_value,
                "on_header_end": on_header_end,
                "on_headers_finished": on_headers_finished,
                "on_part_data": on_part_data,
                "on_part_end": on_part_end,
            },
        )
        async for chunk in body:
            try:
                parser.write(chunk)
            except Rejected:
                raise
            except Exception as e:
                raise Rejected(400, f"malformed multipart body: {e}") from None
            while out:
                yield out.pop(0)
        parser.finalize()
        if state["files"] == 0:
            raise Rejected(400, "the multipart body has no file part")

    @app.post("/api/v1/crashes", status_code=202, tags=["crashes"])
    async def submit(request: Request, who: Principal = submitter) -> JSONResponse:
        """Submit a vmcore, a log or a report JSON (raw body, or multipart with a ``file``).

        Host facts come as ``X-Kcrash-Host``, ``-Machine-Id``, ``-Kernel-Release``,
        ``-Distro``, ``-Hardware`` headers or form fields of those names (``kind`` optional:
        vmcore, log, report).  ``X-Kcrash-Sha256`` of content already stored answers at once,
        so a host can restart a submission without sending the dump again."""
        limit = settings.limits.max_field_chars
        facts: dict[str, str] = {}
        for header, name in FACT_HEADERS.items():
            if header in request.headers:
                facts[name] = _fact_value(header, request.headers[header], limit)
        if facts.get("kind") and facts["kind"] not in KINDS:
            raise Rejected(400, f"kind must be one of {', '.join(KINDS)}")
        claimed = request.headers.get("x-kcrash-sha256", "").lower()
        if claimed and SHA256_RE.match(claimed):
            known = await run_in_threadpool(_known, claimed)
            if known is not None:
                metrics.UPLOADS.labels(outcome="duplicate").inc()
                return _accepted(known, duplicate=True)
        ctype = request.headers.get("content-type", "")
        body = Body(request)
        if ctype.startswith("multipart/form-data"):
            chunks = _multipart(request, body, facts)
        else:
            chunks = body
        try:
            rec = await store.receive(
                chunks,
                encoding=request.headers.get("content-encoding"),
                declared_kind=facts.get("kind"),
            )
        except ClientDisconnect:
            raise Rejected(400, "the client disconnected before the upload ended") from None
        except Rejected:
            await _drain(body)
            raise
        if facts.get("kind") and facts["kind"] != rec.kind:
            # A multipart ``kind`` field may come after the file: checked here too.
            store.discard(rec)
            raise Rejected(415, f"declared kind {facts['kind']} but the content is a {rec.kind}")
        if rec.kind == "report":
            # A report is checked now, not at analysis: a JSON that is not kcrash's report
            # is refused with a 4xx like any other garbage.
            try:
                await run_in_threadpool(load_report, rec.tmp_path, settings.limits.max_report_bytes)
            except AnalysisError as e:
                store.discard(rec)
                raise Rejected(422, f"report refused: {e}") from None
        try:
            crash_id, new = await run_in_threadpool(_record, rec, facts)
        finally:
            store.discard(rec)
        if new:
            # Celery's send is network I/O: not on the event loop.
            await run_in_threadpool(jobs.enqueue, crash_id)
        metrics.UPLOADS.labels(outcome="accepted" if new else "duplicate").inc()
        with db.session() as s:
            crash = s.get(Crash, crash_id)
            assert crash is not None
            return _accepted(crash, duplicate=not new)

    async def _drain(body: Body) -> None:
        """Read (and drop) what is left of a refused body, up to DRAIN_BYTES, so that a
        plain HTTP client still reads the 4xx instead of a connection reset."""
        left = DRAIN_BYTES
        with contextlib.suppress(Exception):
            async for chunk in body:
                left -= len(chunk)
                if left <= 0:
                    return

    def _known(sha: str) -> Crash | None:
        with db.session() as s:
            return s.scalars(select(Crash).where(Crash.sha256 == sha)).first()

    def _record(rec: Any, facts: dict[str, str]) -> tuple[int, bool]:
        with db.session() as s:
            existing = s.scalars(select(Crash).where(Crash.sha256 == rec.sha256)).first()
            if existing is not None:
                return existing.id, False
            path = store.accept(rec)
            facts = dict(facts)
            facts.pop("kind", None)
            crash, new = ingest.record_upload(
                s, sha256=rec.sha256, kind=rec.kind, blob_path=path, size=rec.size, facts=facts
            )
            s.flush()
            return crash.id, new

    def _accepted(crash: Crash, *, duplicate: bool) -> JSONResponse:
        return JSONResponse(
            {
                "id": crash.id,
                "sha256": crash.sha256,
                "kind": crash.kind,
                "status": crash.status,
                "duplicate": duplicate,
                "url": f"/api/v1/crashes/{crash.id}",
            },
            status_code=202,
        )

    def _export(page: queries.Page, fmt: str, columns: tuple[str, ...], name: str) -> Response:
        if fmt == "csv":
            return PlainTextResponse(
                queries.to_csv(page.items, columns),
                media_type="text/csv; charset=utf-8",
                headers={
                    "Content-Disposition": f'attachment; filename="{name}.csv"',
                    "X-Total-Count": str(page.total),
                },
            )
        return JSONResponse(page.as_dict())

    @app.get("/api/v1/crashes", tags=["crashes"])
    def crashes(
        f: Annotated[queries.Filters, Depends(filters_dep)],
        window: Annotated[tuple[int, int], Depends(window_dep)],
        format: str = Query("json", pattern="^(json|csv)$"),
        who: Principal = reader,
    ) -> Response:
        with db.session() as s:
            page = queries.list_crashes(s, f, limit=window[0], offset=window[1])
        return _export(page, format, queries.CRASH_CSV, "crashes")

    @app.get("/api/v1/crashes/{crash_id}", tags=["crashes"])
    def crash(crash_id: int, who: Principal = reader) -> dict[str, Any]:
        with db.session() as s:
            return _found(queries.get_crash(s, crash_id), f"no crash {crash_id}")

    @app.get("/api/v1/crashes/{crash_id}/report", tags=["crashes"])
    def crash_report(crash_id: int, who: Principal = reader) -> JSONResponse:
        with db.session() as s:
            c = s.get(Crash, crash_id)
            if c is None or c.report is None:
                raise HTTPException(404, f"no report for crash {crash_id}")
            return JSONResponse(
                c.report,
                headers={"Content-Disposition": f'attachment; filename="crash-{crash_id}.json"'},
            )

    @app.get("/api/v1/crashes/{crash_id}/dump", tags=["crashes"])
    def crash_dump(crash_id: int, who: Principal = admin) -> FileResponse:
        """The uploaded file itself (dumps hold secrets: admin only)."""
        with db.session() as s:
            c = s.get(Crash, crash_id)
            if c is None or not c.blob_path:
                raise HTTPException(404, f"no stored file for crash {crash_id}")
            path, kind = c.blob_path, c.kind
        if not Path(path).exists():
            raise HTTPException(410, f"the file of crash {crash_id} was deleted by retention")
        return FileResponse(
            path,
            media_type="application/octet-stream",
            filename=f"crash-{crash_id}.{ {'vmcore': 'vmcore', 'log': 'txt'}.get(kind, 'json') }",
        )

    @app.post("/api/v1/crashes/{crash_id}/retry", status_code=202, tags=["crashes"])
    def retry(crash_id: int, who: Principal = admin) -> dict[str, Any]:
        with db.session() as s:
            c = s.get(Crash, crash_id)
            if c is None:
                raise HTTPException(404, f"no crash {crash_id}")
            c.status = QUEUED
        jobs.enqueue(crash_id)
        return {"id": crash_id, "status": QUEUED}

    @app.get("/api/v1/buckets", tags=["buckets"])
    def bucket_list(
        f: Annotated[queries.Filters, Depends(filters_dep)],
        window: Annotated[tuple[int, int], Depends(window_dep)],
        sort: str = Query("last_seen", pattern="^(" + "|".join(queries.BUCKET_SORTS) + ")$"),
        format: str = Query("json", pattern="^(json|csv)$"),
        who: Principal = reader,
    ) -> Response:
        """Buckets: signature, title, class, count, hosts, first_seen, last_seen, state, …"""
        with db.session() as s:
            page = queries.list_buckets(s, f, sort=sort, limit=window[0], offset=window[1])
        return _export(page, format, queries.BUCKET_CSV, "buckets")

    @app.get("/api/v1/buckets/{signature}", tags=["buckets"])
    def bucket(signature: str, who: Principal = reader) -> dict[str, Any]:
        with db.session() as s:
            return _found(queries.get_bucket(s, signature), f"no bucket {signature[:100]}")

    def _bucket_op(fn: Callable[..., Any], *args: Any) -> dict[str, Any]:
        try:
            with db.session() as s:
                b = fn(s, *args)
                sig = b.signature
        except buckets.BucketError as e:
            raise HTTPException(409 if "already" in str(e) else 400, str(e)) from None
        with db.session() as s:
            row = queries.get_bucket(s, sig)
        assert row is not None
        return row

    @app.post("/api/v1/buckets/{signature}/state", tags=["buckets"])
    def bucket_state(signature: str, body: StateIn, who: Principal = admin) -> dict[str, Any]:
        return _bucket_op(buckets.set_state, signature, body.state, body.fixed_in)

    @app.post("/api/v1/buckets/{signature}/merge", tags=["buckets"])
    def bucket_merge(signature: str, body: MergeIn, who: Principal = admin) -> dict[str, Any]:
        return _bucket_op(buckets.merge, signature, body.into)

    @app.post("/api/v1/buckets/{signature}/unmerge", tags=["buckets"])
    def bucket_unmerge(signature: str, who: Principal = admin) -> dict[str, Any]:
        return _bucket_op(buckets.unmerge, signature)

    @app.post("/api/v1/buckets/{signature}/split", tags=["buckets"])
    def bucket_split(signature: str, body: SplitIn, who: Principal = admin) -> dict[str, Any]:
        return _bucket_op(buckets.split, signature, body.crash_ids, body.title)

    @app.post("/api/v1/regroup", status_code=202, tags=["buckets"])
    def regroup(who: Principal = admin) -> dict[str, Any]:
        """Analyze every stored crash again with this server's rules and regroup them."""
        ids = requeue_all(db)
        for i in ids:
            jobs.enqueue(i)
        return {"queued": len(ids)}

    @app.get("/api/v1/hosts", tags=["hosts"])
    def hosts(
        window: Annotated[tuple[int, int], Depends(window_dep)],
        who: Principal = reader,
    ) -> dict[str, Any]:
        with db.session() as s:
            return queries.list_hosts(s, limit=window[0], offset=window[1]).as_dict()

    @app.get("/api/v1/hosts/{name}", tags=["hosts"])
    def host(
        name: str,
        window: Annotated[tuple[int, int], Depends(window_dep)],
        who: Principal = reader,
    ) -> dict[str, Any]:
        with db.session() as s:
            row = queries.host_history(s, name, limit=window[0], offset=window[1])
        return _found(row, f"no host {name[:100]}")

    @app.get("/metrics", tags=["metrics"])
    def prometheus(who: Principal = reader) -> Response:
        return Response(metrics.render(db.sessions), media_type="text/plain; version=0.0.4")

    try:
        from .web import router as web_router  # branch dash
    except ModuleNotFoundError as e:
        if e.name != f"{__package__}.web":
            raise
    else:
        app.include_router(web_router)
    return app


def requeue_all(db: Database) -> list[int]:
    """Mark every analyzed or failed crash for analysis again (rules changed); their ids."""
    with db.session() as s:
        return ingest.requeue_all(s)
