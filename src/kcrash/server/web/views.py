"""The dashboard's pages: server-rendered HTML over the server's own queries.

Mounted by ``create_app`` (``server/api.py``) from ``router``.  Every page needs a login:
the browser holds the API token in an HttpOnly, SameSite=Strict cookie, checked against
the token table on every request exactly as a bearer header is, so revoking a token
logs its browser out.  Roles are the API's: ``read`` sees every page but never a dump,
``admin`` downloads dumps and changes buckets.  Forms that change something carry a
token derived from the session (CSRF) on top of SameSite.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import inspect
import math
from collections.abc import Callable
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from sqlalchemy import func, select

from ...report.render_html import render_body
from .. import auth, buckets, queries
from ..models import BUCKET_STATES, Bucket, Crash, utcnow
from . import charts, data
from .i18n import LANGS, Words, pick_lang, words

router = APIRouter(include_in_schema=False)

COOKIE = "kcrash_session"
LANG_COOKIE = "kcrash_lang"
#: Rows per page of every long list.
PAGE_SIZE = 25
#: Days shown by the overview's chart and tables.
WINDOW_DAYS = 30
#: Served from ``static/`` (a fixed list: no path from a request reaches the filesystem).
STATIC = {
    "style.css": "text/css; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "icon.svg": "image/svg+xml",
}
#: Only what kcrash serves itself, no inline script; SVG charts are markup, not images.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}

_ENV = Environment(
    loader=PackageLoader("kcrash.server.web", "templates"),
    autoescape=select_autoescape(["html", "j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


class Who:
    """The logged-in token: its role, name and the form token derived from the session."""

    def __init__(self, role: str, name: str, session_token: str) -> None:
        self.role, self.name = role, name
        self.csrf = hmac.new(session_token.encode(), b"kcrash-csrf", hashlib.sha256).hexdigest()

    @property
    def admin(self) -> bool:
        return auth.role_at_least(self.role, "admin")


class PageError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _db(request: Request) -> Any:
    return request.app.state.db


def _who(request: Request) -> Who | None:
    token = request.cookies.get(COOKIE, "")
    if not token:
        return None
    with _db(request).session() as s:
        tok = auth.lookup(s, token)
        if tok is None:
            return None
        return Who(tok.role, tok.name, token)


def _lang(request: Request) -> str:
    return pick_lang(
        request.query_params.get("lang"),
        request.cookies.get(LANG_COOKIE),
        request.headers.get("accept-language"),
    )


def _fmt_time(value: str | dt.datetime | None) -> str:
    """ISO 8601 UTC shortened to minutes: what a person compares at a glance."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        value = queries.iso(value) or ""
    return value.replace("T", " ")[:16]


def _safe_next(target: str | None) -> str:
    """Only a path on this server (an open redirect would make the login page a lure)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _query(request: Request, **changes: Any) -> str:
    """The current query string with some parameters changed (None removes one)."""
    params = dict(request.query_params)
    params.pop("lang", None)
    for k, v in changes.items():
        if v is None:
            params.pop(k, None)
        else:
            params[k] = str(v)
    return ("?" + urlencode(params)) if params else ""


def _pager(request: Request, page: queries.Page) -> dict[str, Any]:
    pages = max(1, math.ceil(page.total / page.limit))
    current = page.offset // page.limit + 1
    return {
        "total": page.total,
        "page": current,
        "pages": pages,
        "prev": _query(request, page=current - 1) if current > 1 else None,
        "next": _query(request, page=current + 1) if current < pages else None,
    }


def _page_number(request: Request) -> int:
    try:
        return max(1, min(int(request.query_params.get("page", "1")), 100000))
    except ValueError:
        return 1


def render(
    request: Request, template: str, who: Who | None, status: int = 200, **ctx: Any
) -> HTMLResponse:
    lang = _lang(request)
    w = words(lang)
    html = _ENV.get_template(template).render(
        w=w,
        who=who,
        lang=lang,
        langs=LANGS,
        path=request.url.path,
        here=request.url.path + _query(request),
        q=_query,
        request=request,
        fmt_time=_fmt_time,
        **ctx,
    )
    resp = HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
    chosen = request.query_params.get("lang")
    if chosen in LANGS:
        resp.set_cookie(LANG_COOKIE, chosen, max_age=365 * 86400, samesite="strict")
    return resp


def page(role: str = "read") -> Callable[..., Any]:
    """A page handler: logged in with at least ``role``, errors as pages in the language."""

    def wrap(fn: Callable[..., Response]) -> Callable[..., Response]:
        def handler(request: Request, **kw: Any) -> Response:
            who = _who(request)
            if who is None:
                nxt = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse("/login?" + urlencode({"next": nxt}), status_code=303)
            w = words(_lang(request))
            if not auth.role_at_least(who.role, role):
                return _error(request, who, 403, w.fmt("forbidden", role=role))
            try:
                return fn(request, who, **kw)
            except PageError as e:
                return _error(request, who, e.status, e.message)

        handler.__name__ = fn.__name__
        handler.__doc__ = fn.__doc__
        params = [p for p in inspect.signature(fn).parameters.values() if p.name != "who"]
        handler.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        return handler

    return wrap


def _error(request: Request, who: Who | None, status: int, message: str) -> HTMLResponse:
    return render(request, "error.html.j2", who, status=status, status_code=status, message=message)


async def _form(request: Request, who: Who) -> dict[str, str]:
    """The posted form, refused unless it carries this session's CSRF token."""
    form = await request.form()
    values = {k: str(v) for k, v in form.items() if isinstance(v, str)}
    if not hmac.compare_digest(values.get("csrf", ""), who.csrf):
        raise PageError(400, words(_lang(request))["bad_request"] + " (CSRF)")
    return values


def _filters(request: Request) -> queries.Filters:
    p = request.query_params

    def get(name: str, limit: int = 300) -> str | None:
        v = (p.get(name) or "").strip()
        return v[:limit] or None

    return queries.Filters(
        class_=get("class", 100),
        module=get("module"),
        kernel=get("kernel"),
        host=get("host"),
        state=get("state", 20),
        text=get("q"),
    )


def _classes(session: Any) -> list[str]:
    return sorted(c for c in session.scalars(select(Bucket.class_).distinct()) if c)


# ---------------------------------------------------------------- static and session


@cache
def _static_dir() -> Path:
    return Path(str(resources.files(__package__).joinpath("static")))


@router.get("/static/{name}")
def static(name: str) -> Response:
    if name not in STATIC:
        return Response("not found", status_code=404, media_type="text/plain")
    return FileResponse(
        _static_dir() / name,
        media_type=STATIC[name],
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/favicon.ico")
def favicon() -> Response:
    return RedirectResponse("/static/icon.svg", status_code=301)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> Response:
    return render(request, "login.html.j2", None, next=_safe_next(request.query_params.get("next")))


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    token = str(form.get("token") or "").strip()
    nxt = _safe_next(str(form.get("next") or "/"))
    with _db(request).session() as s:
        tok = auth.lookup(s, token) if token else None
        role = tok.role if tok else None
    if role is None or not auth.role_at_least(role, "read"):
        w = words(_lang(request))
        return render(
            request, "login.html.j2", None, status=401, next=nxt, failed=w["login_failed"]
        )
    resp = RedirectResponse(nxt, status_code=303)
    resp.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        max_age=14 * 86400,
    )
    return resp


@router.post("/logout")
def logout() -> Response:
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(COOKIE)
    return resp


# ---------------------------------------------------------------- pages


def _chart(w: Words, per_day: dict[tuple[dt.date, str | None], int], days: list[dt.date]) -> Any:
    classes = sorted({c for _d, c in per_day}, key=lambda c: c or "")
    series = [
        charts.Series(c or "unknown", w.class_name(c), [per_day.get((d, c), 0) for d in days])
        for c in classes
    ]
    series = charts.fold(series, w["unknown"])
    return {
        "svg": charts.stacked_bars(days, series, w["crashes_per_day"]),
        "legend": charts.legend(series),
        "total": sum(per_day.values()),
    }


@router.get("/", response_class=HTMLResponse)
@page()
def overview(request: Request, who: Who) -> Response:
    now = utcnow()
    days = charts.day_range(now.date(), WINDOW_DAYS)
    since = dt.datetime.combine(days[0], dt.time(), dt.timezone.utc)
    w = words(_lang(request))
    with _db(request).session() as s:
        per_day = data.per_day_by_class(s, days)
        att = data.attention(s, now)
        top = data.top_by_hosts(s)
        kernels = data.kernels(s, since)
    return render(
        request,
        "overview.html.j2",
        who,
        chart=_chart(w, per_day, days),
        attention=att.rows,
        top=top,
        kernels=kernels,
        window=WINDOW_DAYS,
    )


@router.get("/buckets", response_class=HTMLResponse)
@page()
def bucket_list(request: Request, who: Who) -> Response:
    f = _filters(request)
    sort = request.query_params.get("sort", "last_seen")
    if sort not in queries.BUCKET_SORTS:
        sort = "last_seen"
    n = _page_number(request)
    with _db(request).session() as s:
        result = queries.list_buckets(s, f, sort=sort, limit=PAGE_SIZE, offset=(n - 1) * PAGE_SIZE)
        classes = _classes(s)
    return render(
        request,
        "buckets.html.j2",
        who,
        rows=result.items,
        pager=_pager(request, result),
        f=f,
        sort=sort,
        sorts=list(queries.BUCKET_SORTS),
        states=BUCKET_STATES,
        classes=classes,
    )


@router.get("/search", response_class=HTMLResponse)
@page()
def search(request: Request, who: Who) -> Response:
    """Crashes by class, module, kernel, host and text of the panic line."""
    f = _filters(request)
    f.state = None
    n = _page_number(request)
    with _db(request).session() as s:
        result = queries.list_crashes(s, f, limit=PAGE_SIZE, offset=(n - 1) * PAGE_SIZE)
        classes = _classes(s)
    return render(
        request,
        "search.html.j2",
        who,
        rows=result.items,
        pager=_pager(request, result),
        f=f,
        classes=classes,
        searched=any((f.class_, f.module, f.kernel, f.host, f.text)),
    )


def _timeline(w: Words, session: Any, bucket_id: int, first: str | None) -> Any:
    """Crashes per day of one bucket, from its first crash (at most a year) to today."""
    today = utcnow().date()
    start = dt.date.fromisoformat(first[:10]) if first else today
    span = min(max((today - start).days + 1, 14), 366)
    days = charts.day_range(today, span)
    since = dt.datetime.combine(days[0], dt.time(), dt.timezone.utc)
    day = func.date(Crash.received_at)
    counts = {
        data._day(d): n
        for d, n in session.execute(
            select(day, func.count(Crash.id))
            .where(Crash.bucket_id == bucket_id, Crash.received_at >= since)
            .group_by(day)
        )
    }
    series = [charts.Series("bucket", w["crashes"], [counts.get(d, 0) for d in days])]
    return charts.stacked_bars(days, series, w["timeline"])


@router.get("/buckets/{signature}", response_class=HTMLResponse)
@page()
def bucket_page(request: Request, who: Who, signature: str) -> Response:
    w = words(_lang(request))
    n = _page_number(request)
    with _db(request).session() as s:
        row = queries.get_bucket(s, signature[:100], crashes=1)
        if row is None:
            raise PageError(404, w["not_found"] + f": {signature[:100]}")
        if row["signature"] != signature:
            # A merged-away signature leads to the bucket that holds its crashes now.
            return RedirectResponse(f"/buckets/{row['signature']}", status_code=303)
        b = buckets.by_signature(s, row["signature"])
        assert b is not None
        crashes = queries.list_crashes(
            s, bucket_id=b.id, limit=PAGE_SIZE, offset=(n - 1) * PAGE_SIZE
        )
        timeline = _timeline(w, s, b.id, row["first_seen"])
    rep = row.get("representative") or {}
    report = rep.get("report")
    return render(
        request,
        "bucket.html.j2",
        who,
        b=row,
        crashes=crashes.items,
        pager=_pager(request, crashes),
        timeline=timeline,
        rep=rep,
        report_html=Markup(render_body(report, w.lang)) if report else None,
        report_lang=(report or {}).get("lang", "en"),
        states=BUCKET_STATES,
        saved=request.query_params.get("saved"),
    )


async def _bucket_change(request: Request, who: Who, signature: str, op: str) -> Response:
    w = words(_lang(request))
    if not who.admin:
        raise PageError(403, w.fmt("forbidden", role="admin"))
    form = await _form(request, who)
    db = _db(request)
    try:
        with db.session() as s:
            if op == "state":
                b = buckets.set_state(
                    s, signature, form.get("state", ""), form.get("fixed_in", "").strip() or None
                )
            elif op == "merge":
                b = buckets.merge(s, signature, form.get("into", "").strip())
            elif op == "unmerge":
                b = buckets.unmerge(s, signature)
            else:
                ids = [int(k[6:]) for k in form if k.startswith("crash-") and k[6:].isdigit()]
                b = buckets.split(s, signature, ids, form.get("title", "").strip())
            target = b.signature
    except buckets.BucketError as e:
        raise PageError(400, f"{w['bad_request']}: {e}") from None
    return RedirectResponse(f"/buckets/{target}?saved=1", status_code=303)


def _post(op: str) -> Callable[..., Any]:
    async def handler(request: Request, signature: str) -> Response:
        who = _who(request)
        if who is None:
            return RedirectResponse("/login", status_code=303)
        try:
            return await _bucket_change(request, who, signature, op)
        except PageError as e:
            return _error(request, who, e.status, e.message)

    handler.__name__ = f"bucket_{op}"
    return handler


for _op in ("state", "merge", "unmerge", "split"):
    router.add_api_route(f"/buckets/{{signature}}/{_op}", _post(_op), methods=["POST"])


@router.get("/crashes/{crash_id}", response_class=HTMLResponse)
@page()
def crash_page(request: Request, who: Who, crash_id: int) -> Response:
    w = words(_lang(request))
    with _db(request).session() as s:
        row = queries.get_crash(s, crash_id)
        if row is None:
            raise PageError(404, w["not_found"] + f": {crash_id}")
        c = s.get(Crash, crash_id)
        has_blob = bool(c and c.blob_path and Path(c.blob_path).exists())
        moved = [h[k] for h in row["history"] for k in ("old_bucket", "new_bucket") if h[k]]
        names = {b.id: b.signature for b in s.scalars(select(Bucket).where(Bucket.id.in_(moved)))}
    report = row.get("report")
    return render(
        request,
        "crash.html.j2",
        who,
        c=row,
        report_html=Markup(render_body(report, w.lang)) if report else None,
        report_lang=(report or {}).get("lang", "en"),
        dump=who.admin and has_blob,
        names=names,
    )


@router.get("/crashes/{crash_id}/report.json")
@page()
def crash_json(request: Request, who: Who, crash_id: int) -> Response:
    with _db(request).session() as s:
        c = s.get(Crash, crash_id)
        if c is None or c.report is None:
            raise PageError(404, words(_lang(request))["not_found"])
        return JSONResponse(
            c.report,
            headers={"Content-Disposition": f'attachment; filename="crash-{crash_id}.json"'},
        )


@router.get("/crashes/{crash_id}/dump")
@page("admin")
def crash_dump(request: Request, who: Who, crash_id: int) -> Response:
    """The uploaded file (a dump holds keys and customer data: admin only, as in the API)."""
    with _db(request).session() as s:
        c = s.get(Crash, crash_id)
        if c is None or not c.blob_path or not Path(c.blob_path).exists():
            raise PageError(404, words(_lang(request))["not_found"])
        path, kind = c.blob_path, c.kind
    ext = {"vmcore": "vmcore", "log": "txt"}.get(kind, "json")
    return FileResponse(
        path, media_type="application/octet-stream", filename=f"crash-{crash_id}.{ext}"
    )


@router.get("/hosts", response_class=HTMLResponse)
@page()
def host_list(request: Request, who: Who) -> Response:
    n = _page_number(request)
    with _db(request).session() as s:
        result = queries.list_hosts(s, limit=PAGE_SIZE, offset=(n - 1) * PAGE_SIZE)
    return render(request, "hosts.html.j2", who, rows=result.items, pager=_pager(request, result))


@router.get("/hosts/{name}", response_class=HTMLResponse)
@page()
def host_page(request: Request, who: Who, name: str) -> Response:
    w = words(_lang(request))
    n = _page_number(request)
    with _db(request).session() as s:
        row = queries.host_history(s, name[:300], limit=PAGE_SIZE, offset=(n - 1) * PAGE_SIZE)
    if row is None:
        raise PageError(404, w["not_found"] + f": {name[:100]}")
    crashes = queries.Page(**row["crashes"])
    return render(
        request, "host.html.j2", who, h=row, crashes=crashes.items, pager=_pager(request, crashes)
    )
