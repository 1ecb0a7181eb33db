"""``kcrash worker --database URL --broker URL``: analyze crashes from a Celery queue.

Run one or more per machine (each runs ``--concurrency`` analyses at once); they share the
API server's database and, by path, its blob store.  See :mod:`kcrash.server.celery_app` for
why a killed worker loses nothing.
"""

from __future__ import annotations

import argparse
import os
import socket
from collections.abc import Callable

from . import tool
from .server_tool import (
    add_debuginfo_options,
    add_store_options,
    alerts_file,
    debuginfo_settings,
    settings_from_args,
)


@tool("worker", "analyze crashes queued by `kcrash server --broker` (Celery worker)")
def configure(p: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    add_store_options(p)
    p.add_argument("--broker", required=True, metavar="URL", help="Celery broker (redis://…)")
    p.add_argument("--concurrency", type=int, default=1, help="analyses at once (processes)")
    p.add_argument("--name", help="worker node name (default: kcrash@HOST-PID)")
    add_debuginfo_options(p)
    p.add_argument("--analysis-timeout", type=float, metavar="S", help="default 900")
    p.add_argument(
        "--visibility-timeout",
        type=float,
        metavar="S",
        help="seconds before an unacknowledged analysis goes to another worker "
        "(default: analysis timeout + 300)",
    )
    p.add_argument(
        "--alerts",
        metavar="FILE",
        help="webhooks for new/regressed/spiking buckets (JSON; see kcrash.server.alerts)",
    )
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    return run


def run(args: argparse.Namespace) -> int:
    from ..errors import KcrashError

    if args.concurrency < 1:
        raise KcrashError("--concurrency must be at least 1")
    if args.visibility_timeout is not None:
        os.environ["KCRASH_VISIBILITY_TIMEOUT"] = str(args.visibility_timeout)
    settings = settings_from_args(
        args,
        broker_url=args.broker,
        alerts_file=alerts_file(args.alerts),
        **debuginfo_settings(args),
    )
    from ..server import celery_app
    from ..server.db import open_database

    try:
        db = open_database(settings)  # migrates, so a worker may start before the API
    except Exception as e:
        raise KcrashError(f"cannot open the database: {str(e).splitlines()[0]}") from None
    from ..server.ingest import store_problem

    with db.session() as s:
        problem = store_problem(s, settings.blob_dir)
    if problem:
        db.engine.dispose()
        raise KcrashError(
            f"--data {settings.data_dir}: {problem}; give the API server's --data directory "
            "(on another machine: its mount point, NFS or the like)"
        )
    app = celery_app.make_app(settings)
    # What no API process sent (broker down at upload time), a starting worker sends.
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=3, interval_start=1, interval_step=1)
        for crash_id in celery_app.stale_queued(db):
            app.send_task(celery_app.TASK, args=[crash_id], queue=celery_app.QUEUE)
    except Exception as e:
        raise KcrashError(f"cannot reach the broker {args.broker}: {e}") from None
    db.engine.dispose()
    name = args.name or f"kcrash@{socket.gethostname()}-{os.getpid()}"
    app.worker_main(
        [
            "worker",
            f"--loglevel={args.log_level.upper()}",
            f"--concurrency={args.concurrency}",
            "--pool=prefork",
            f"--queues={celery_app.QUEUE}",
            f"--hostname={name}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
    )
    return 0
