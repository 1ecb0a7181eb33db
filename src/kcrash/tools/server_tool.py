"""``kcrash server``: the crash collection service (API, analysis pool, dashboard).

Alone it is the embedded default — a SQLite file and a local pool of analysis processes
under ``--data`` — which is what a laptop or a small fleet needs; with ``--database
postgresql://…`` and ``--broker redis://…`` it is one stateless API process of a
deployment whose analyses run in ``kcrash worker`` processes.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

from ..errors import KcrashError
from . import tool


def parse_listen(s: str) -> tuple[str, int]:
    host, sep, port = s.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise KcrashError(f"--listen wants HOST:PORT, not {s!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def add_store_options(p: argparse.ArgumentParser) -> None:
    """``--data`` and ``--database``: shared by ``server``, ``token`` and the ``fleet`` tools."""
    from ..server.config import default_data_dir

    p.add_argument(
        "--data",
        metavar="DIR",
        default=None,
        help=f"data directory: blobs, and the SQLite database by default ({default_data_dir()})",
    )
    p.add_argument(
        "--database", metavar="URL", help="database URL (default: SQLite in DATA/kcrash.db)"
    )


def add_debuginfo_options(p: argparse.ArgumentParser) -> None:
    """Where analyses find debuginfo: the same options for the server's pool and the workers."""
    p.add_argument(
        "--debuginfo",
        action="append",
        default=[],
        metavar="DIR",
        help="directories with vmlinux and module debuginfo for the analyses",
    )
    p.add_argument(
        "--fetch-debuginfo",
        action="store_true",
        help="let analyses download missing debuginfo into the debuginfo cache",
    )
    p.add_argument(
        "--debuginfo-cache",
        metavar="DIR",
        help="the debuginfo cache the analyses read and fetch into; give every worker the "
        "same shared directory and each build id is downloaded once for the fleet "
        "(default: the user's ~/.cache/kcrash/debuginfo)",
    )


def debuginfo_settings(args: argparse.Namespace) -> dict[str, object]:
    """The Settings fields of :func:`add_debuginfo_options`."""
    return {
        "debuginfo_dirs": tuple(os.path.abspath(d) for d in args.debuginfo),
        "fetch_debuginfo": args.fetch_debuginfo,
        "debuginfo_cache": os.path.abspath(args.debuginfo_cache) if args.debuginfo_cache else None,
    }


def settings_from_args(args: argparse.Namespace, **extra: object):  # type: ignore[no-untyped-def]
    from ..server.config import Limits, Settings, default_data_dir

    data = Path(args.data) if args.data else default_data_dir()
    limits = Limits()
    changes = {}
    for name in ("max_vmcore_bytes", "analysis_timeout", "analysis_mem_bytes"):
        v = getattr(args, name, None)
        if v is not None:
            changes[name] = v
    if changes:
        from dataclasses import replace

        limits = replace(limits, **changes)
    return Settings(
        data_dir=data,
        database_url=args.database,
        limits=limits,
        **extra,  # type: ignore[arg-type]
    )


@tool("server", "collect, analyze and bucket kernel crashes from many hosts (HTTP API)")
def configure(p: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    from ..inputs import parse_size

    add_store_options(p)
    p.add_argument("--listen", default="127.0.0.1:8470", metavar="HOST:PORT")
    p.add_argument(
        "--broker",
        metavar="URL",
        help="Celery broker (redis://…): analyses go to "
        "`kcrash worker` processes instead of the embedded pool",
    )
    p.add_argument("--workers", type=int, default=1, help="embedded analysis processes at once")
    add_debuginfo_options(p)
    p.add_argument(
        "--max-vmcore-bytes",
        type=parse_size,
        metavar="SIZE",
        help="largest vmcore accepted after decompression (default 8G)",
    )
    p.add_argument(
        "--analysis-timeout",
        type=float,
        metavar="S",
        help="seconds one analysis may run (default 900)",
    )
    p.add_argument(
        "--analysis-mem-bytes",
        type=parse_size,
        metavar="SIZE",
        help="address space of one analysis process (default 6G)",
    )
    p.add_argument(
        "--retention-days", type=float, metavar="D", help="delete crashes older than D days"
    )
    p.add_argument(
        "--retention-size",
        type=parse_size,
        metavar="SIZE",
        help="keep stored files under SIZE in total, deleting the oldest",
    )
    p.add_argument(
        "--alerts",
        metavar="FILE",
        help="webhooks for new/regressed/spiking buckets (JSON; see kcrash.server.alerts)",
    )
    p.add_argument(
        "--regroup",
        action="store_true",
        help="analyze every stored crash again with this kcrash's rules at start",
    )
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    return run


def alerts_file(path: str | None) -> str | None:
    """``--alerts FILE`` checked now (one line on a bad file, not a traceback later)."""
    if not path:
        return None
    from ..server.alerts import load_config

    try:
        load_config(path)
    except (OSError, ValueError) as e:
        raise KcrashError(f"--alerts {path}: {e}") from None
    return os.path.abspath(path)


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn
    except ImportError:
        raise KcrashError(
            "kcrash server needs the server extra: pip install 'kcrash[server]'"
        ) from None
    host, port = parse_listen(args.listen)
    if args.workers < 1:
        raise KcrashError("--workers must be at least 1")
    settings = settings_from_args(
        args,
        broker_url=args.broker,
        alerts_file=alerts_file(args.alerts),
        workers=args.workers,
        **debuginfo_settings(args),
        retention_days=args.retention_days,
        retention_bytes=args.retention_size,
    )
    from ..server.api import create_app, requeue_all

    try:
        app = create_app(settings)
    except ImportError as e:
        raise KcrashError(
            f"kcrash server --broker needs {e.name} (pip install 'kcrash[server]')"
        ) from None
    except Exception as e:  # a database URL that does not answer, a data dir we cannot write
        raise KcrashError(f"cannot open the server's store: {str(e).splitlines()[0]}") from None
    if args.regroup:
        requeue_all(app.state.db)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=args.log_level,
        proxy_headers=True,
        forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
        # Uploads stream; idle keep-alive clients are cut after a while all the same.
        timeout_keep_alive=30,
    )
    return 0
