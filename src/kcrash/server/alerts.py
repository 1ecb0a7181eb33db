"""Alerts on buckets: *new*, *regressed* and *spike*, delivered as signed JSON webhooks.

When a crash lands in its bucket (:func:`events_for`), three questions are asked, each at
most once per cause so a fleet-wide crash storm is one message, not thousands:

- **new** — the bucket's first crash (``count == 1``).
- **regressed** — the bucket is marked fixed in a kernel and the crash ran a kernel NEWER
  than that one, by :mod:`kversion`'s order of release strings (``6.1.0-58-amd64`` after
  ``6.1.0-57-amd64``; RHEL by rpmvercmp), never by when crashes arrived: an old host sending
  an old dump late is not a regression.  Once per bucket and kernel release: the bucket's
  first crash on that release (the model keeps no time of the "fixed" mark, so a release
  already seen in the bucket before the mark raises nothing when seen again).
- **spike** — the bucket's crashes in the last ``window`` exceed ``factor`` times its
  baseline rate (the ``baseline`` period before the window, scaled to the window) and at
  least ``min_count``.  Sent when the count crosses that line, not for every crash above it.

Delivery (:class:`Notifier`): an HTTP POST per webhook, body JSON, with
``X-Kcrash-Event``, ``X-Kcrash-Timestamp`` and ``X-Kcrash-Signature: sha256=<hex>`` — the
HMAC-SHA256 of ``"<timestamp>.<body>"`` under the webhook's secret (the timestamp inside the
MAC stops replays; receivers compare with ``hmac.compare_digest`` and reject old stamps).
A webhook of format ``chat`` gets ``{"text": …}`` instead, which Slack, Mattermost and
Rocket.Chat incoming webhooks accept as is.  Failed deliveries are retried a few times and
then logged: an alert must never block or fail an analysis.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import kversion
from .models import Bucket, Crash

log = logging.getLogger("kcrash.alerts")

EVENTS = ("new", "regressed", "spike")


@dataclass(frozen=True)
class SpikeRule:
    window: dt.timedelta = dt.timedelta(hours=1)
    baseline: dt.timedelta = dt.timedelta(days=7)
    factor: float = 5.0
    min_count: int = 5


@dataclass(frozen=True)
class Webhook:
    url: str
    secret: str = ""
    format: str = "json"  # json | chat
    events: tuple[str, ...] = EVENTS


@dataclass(frozen=True)
class AlertConfig:
    webhooks: tuple[Webhook, ...] = ()
    spike: SpikeRule = field(default_factory=SpikeRule)
    #: The dashboard's address, for links in messages (optional).
    base_url: str = ""

    @classmethod
    def from_json(cls, text: str) -> AlertConfig:
        """``{"webhooks": [{"url", "secret", "format", "events"}], "spike": {"window_minutes",
        "baseline_days", "factor", "min_count"}, "base_url"}``."""
        raw = json.loads(text)
        hooks = []
        for h in raw.get("webhooks", []):
            events = tuple(h.get("events") or EVENTS)
            bad = set(events) - set(EVENTS)
            if bad or h.get("format", "json") not in ("json", "chat") or not h.get("url"):
                raise ValueError(f"bad webhook entry {h.get('url')!r}: events {sorted(bad)}")
            hooks.append(Webhook(h["url"], h.get("secret", ""), h.get("format", "json"), events))
        s = raw.get("spike", {})
        spike = SpikeRule(
            window=dt.timedelta(minutes=float(s.get("window_minutes", 60))),
            baseline=dt.timedelta(days=float(s.get("baseline_days", 7))),
            factor=float(s.get("factor", 5.0)),
            min_count=int(s.get("min_count", 5)),
        )
        return cls(tuple(hooks), spike, raw.get("base_url", ""))


@dataclass(frozen=True)
class Event:
    kind: str  # new | regressed | spike
    bucket: dict[str, Any]
    crash: dict[str, Any]
    detail: dict[str, Any]

    def payload(self) -> dict[str, Any]:
        return {"event": self.kind, "bucket": self.bucket, "crash": self.crash, **self.detail}


def _aware(t: dt.datetime | None) -> dt.datetime | None:
    if t is None:
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


def _bucket_info(b: Bucket) -> dict[str, Any]:
    return {
        "signature": b.signature,
        "title": b.title,
        "class": b.class_,
        "culprit": b.culprit,
        "state": b.state,
        "fixed_in": b.fixed_in,
        "count": b.count,
        "first_seen": _aware(b.first_seen).isoformat() if b.first_seen else None,
    }


def _crash_info(c: Crash) -> dict[str, Any]:
    return {
        "id": c.id,
        "host": c.host.name if c.host else None,
        "kernel_release": c.kernel_release,
        "received_at": _aware(c.received_at).isoformat() if c.received_at else None,
    }


def _package_of(c: Crash) -> str | None:
    """The crashed kernel's package version, when its ``uname -v`` says it (Debian, Ubuntu)."""
    system = (c.report or {}).get("system") or {}
    if not c.kernel_release or not system.get("version"):
        return None
    return kversion.package_from_uname_version(c.kernel_release, str(system["version"]))


def parse_fixed_in(text: str) -> kversion.KernelRelease | None:
    """``fixed_in`` is a kernel release, optionally followed by its package version
    (``6.1.0-57-amd64 6.1.192-3``: Debian kept one ABI name across several uploads)."""
    parts = text.split()
    if not parts:
        return None
    return kversion.parse(parts[0], parts[1] if len(parts) > 1 else None)


def _is_regression(session: Session, crash: Crash, bucket: Bucket) -> dict[str, Any] | None:
    if bucket.state != "fixed" or not bucket.fixed_in or not crash.kernel_release:
        return None
    fixed = parse_fixed_in(bucket.fixed_in)
    seen = kversion.parse(crash.kernel_release, _package_of(crash))
    if fixed is None or seen is None or kversion.compare(seen, fixed) != 1:
        return None
    # Once per bucket and kernel: the first crash of this release in the bucket.
    same = session.scalar(
        select(func.count(Crash.id)).where(
            Crash.bucket_id == bucket.id,
            Crash.kernel_release == crash.kernel_release,
            Crash.id <= crash.id,
        )
    )
    if (same or 0) > 1:
        return None
    return {"fixed_in": bucket.fixed_in, "seen_on": crash.kernel_release}


def _is_spike(
    session: Session, crash: Crash, bucket: Bucket, rule: SpikeRule, now: dt.datetime
) -> dict[str, Any] | None:
    start = now - rule.window
    base_start = start - rule.baseline

    def count(since: dt.datetime, until: dt.datetime, upto: int) -> int:
        q = select(func.count(Crash.id)).where(
            Crash.bucket_id == bucket.id,
            Crash.received_at > since,
            Crash.received_at <= until,
            Crash.id <= upto,
        )
        return int(session.scalar(q) or 0)

    recent = count(start, now, crash.id)
    before = count(base_start, start, crash.id)
    windows = rule.baseline / rule.window
    baseline = before / windows if windows else 0.0
    threshold = max(float(rule.min_count), rule.factor * baseline)

    def over(n: int) -> bool:
        return n >= rule.min_count and n > rule.factor * baseline

    if not over(recent) or over(recent - 1):
        return None  # not over the line, or already over it before this crash
    return {
        "window_minutes": rule.window.total_seconds() / 60,
        "count_in_window": recent,
        "baseline_per_window": round(baseline, 3),
        "threshold": round(threshold, 3),
    }


def events_for(
    session: Session, crash: Crash, config: AlertConfig, now: dt.datetime | None = None
) -> list[Event]:
    """The alerts one analyzed, bucketed crash raises (call after ``buckets.assign``)."""
    if crash.bucket_id is None:
        return []
    bucket = session.get(Bucket, crash.bucket_id)
    if bucket is None:
        return []
    now = now or _aware(crash.received_at) or dt.datetime.now(dt.timezone.utc)
    b, c = _bucket_info(bucket), _crash_info(crash)
    out = []
    if bucket.count == 1:
        out.append(Event("new", b, c, {}))
    reg = _is_regression(session, crash, bucket)
    if reg:
        out.append(Event("regressed", b, c, reg))
    spike = _is_spike(session, crash, bucket, config.spike, now)
    if spike:
        out.append(Event("spike", b, c, spike))
    return out


def chat_text(event: Event, base_url: str = "") -> str:
    """One line for a chat channel (Slack/Mattermost/Rocket.Chat ``{"text": …}``)."""
    b, c = event.bucket, event.crash
    where = f"{c.get('host') or 'a host'} on {c.get('kernel_release') or 'an unknown kernel'}"
    d = event.detail
    if event.kind == "regressed":
        head = f"Regression (fixed in {d['fixed_in']})"
    elif event.kind == "spike":
        head = f"Crash spike ({d['count_in_window']} in {d['window_minutes']:g} min)"
    else:
        head = "New kernel crash"
    link = f" {base_url.rstrip('/')}/buckets/{b['signature']}" if base_url else ""
    return f"{head}: {b['title']} [{b['class']}] — {where}{link}"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, header: str, max_age: float = 300) -> bool:
    """What a receiver does: constant-time compare, and refuse stale timestamps (replays)."""
    try:
        age = abs(time.time() - float(timestamp))
    except ValueError:
        return False
    return age <= max_age and hmac.compare_digest(sign(secret, timestamp, body), header)


class Notifier:
    def __init__(self, config: AlertConfig, *, attempts: int = 3, timeout: float = 10.0) -> None:
        self.config = config
        self.attempts = attempts
        self.timeout = timeout

    def request_for(self, hook: Webhook, event: Event) -> urllib.request.Request:
        if hook.format == "chat":
            payload: dict[str, Any] = {"text": chat_text(event, self.config.base_url)}
        else:
            payload = event.payload()
        body = json.dumps(payload, sort_keys=True).encode()
        ts = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "kcrash-alerts",
            "X-Kcrash-Event": event.kind,
            "X-Kcrash-Timestamp": ts,
        }
        if hook.secret:
            headers["X-Kcrash-Signature"] = sign(hook.secret, ts, body)
        return urllib.request.Request(hook.url, data=body, headers=headers, method="POST")

    def deliver(self, events: list[Event]) -> int:
        """Send every event to every webhook that wants it; returns deliveries that worked."""
        sent = 0
        for event in events:
            for hook in self.config.webhooks:
                if event.kind in hook.events and self._send(hook, event):
                    sent += 1
        return sent

    def _send(self, hook: Webhook, event: Event) -> bool:
        for attempt in range(self.attempts):
            try:
                with urllib.request.urlopen(self.request_for(hook, event), timeout=self.timeout):
                    return True
            except urllib.error.HTTPError as e:
                if e.code < 500 and e.code != 429:
                    log.error("webhook %s refused %s alert: HTTP %s", hook.url, event.kind, e.code)
                    return False
            except OSError as e:
                log.warning("webhook %s: %s", hook.url, e)
            time.sleep(min(2**attempt, 10))
        log.error("webhook %s: %s alert not delivered", hook.url, event.kind)
        return False


def notify_after_analysis(
    sessions: Callable[[], Session], crash_id: int, config: AlertConfig
) -> int:
    """The alerts of one crash that has just been analyzed, delivered; called by every
    analysis runner (the embedded pool and the Celery task) once the crash is ``done``.
    Alerts never fail an analysis: every error is logged and dropped (0 sent)."""
    try:
        with sessions() as s:
            crash = s.get(Crash, crash_id)
            events = events_for(s, crash, config) if crash is not None else []
        return Notifier(config).deliver(events)
    except Exception:
        log.exception("crash %s: alerts failed", crash_id)
        return 0


def load_config(path: str | None) -> AlertConfig | None:
    if not path:
        return None
    with open(path, encoding="utf-8") as f:
        return AlertConfig.from_json(f.read())
