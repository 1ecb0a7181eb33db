"""``kcrash submit``: send crashes from this host to a kcrash server.

Forms::

    kcrash submit --server URL --token T [--host NAME] PATH…   # vmcore, log, report JSON
    kcrash submit --server URL --token T -                     # standard input
    kcrash submit --server URL --token T --from-pstore         # last crashes kept by pstore
    kcrash submit --server URL --token T --from-journal        # previous boot's kernel log

The token may come from ``--token-file`` or ``$KCRASH_TOKEN`` instead (kdump configuration
files are world-readable; the process list is too).  Exit status: 0 when everything was
accepted (or there was nothing to send), 2 when anything was refused or not sent.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from collections.abc import Callable

from . import tool


@tool("submit", "send a vmcore, an oops log or a report to a kcrash server")
def configure(p: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    p.add_argument("paths", nargs="*", metavar="PATH", help="vmcore, log or report JSON; - = stdin")
    p.add_argument("--server", default=os.environ.get("KCRASH_SERVER"), help="http(s)://host:port")
    p.add_argument("--token", default=None, help="a submit token (or $KCRASH_TOKEN)")
    p.add_argument("--token-file", metavar="FILE", help="read the token from FILE")
    p.add_argument("--host", help="host name to report (default: /etc/hostname of --root)")
    p.add_argument("--kind", choices=("vmcore", "log", "report"), help="default: the server tells")
    p.add_argument(
        "--root",
        default="/",
        metavar="DIR",
        help="the crashed host's root for host facts (kdump initramfs: /sysroot)",
    )
    p.add_argument("--kernel-release", help="the crashed kernel (default: from the log, or uname)")
    p.add_argument("--from-pstore", action="store_true", help="send crashes kept by pstore")
    p.add_argument(
        "--pstore-dir",
        action="append",
        metavar="DIR",
        help="where pstore records are (default: /sys/fs/pstore and /var/lib/systemd/pstore)",
    )
    p.add_argument("--from-journal", action="store_true", help="send the previous boot's oops")
    p.add_argument("--journal-dir", metavar="DIR", help="journal files directory (journalctl -D)")
    p.add_argument("--boot", default="-1", help="journal boot offset or id (default: -1)")
    p.add_argument("--max-size", type=int, default=None, metavar="BYTES", help="refuse larger")
    p.add_argument("--attempts", type=int, default=5, help="tries per file (restart from 0)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per network operation")
    p.add_argument("--ca", metavar="FILE", help="CA bundle for an https server")
    p.add_argument("--quiet", "-q", action="store_true", help="only errors")
    return run


def _token(args: argparse.Namespace) -> str:
    from ..errors import KcrashError

    if args.token:
        return str(args.token)
    if args.token_file:
        try:
            with open(args.token_file, encoding="utf-8") as f:
                tok = f.read().strip()
        except OSError as e:
            raise KcrashError(f"--token-file {args.token_file}: {e.strerror}") from e
        if tok:
            return tok
        raise KcrashError(f"--token-file {args.token_file} is empty")
    env = os.environ.get("KCRASH_TOKEN", "").strip()
    if env:
        return env
    raise KcrashError("no token: give --token, --token-file or $KCRASH_TOKEN")


def _write_temp(data: bytes) -> str:
    fd, path = tempfile.mkstemp(prefix="kcrash-submit-", suffix=".log")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path


def run(args: argparse.Namespace) -> int:
    from ..errors import KcrashError
    from ..submit import hostfacts, journal, pstore
    from ..submit.upload import DEFAULT_MAX_BYTES, Server, SubmitError, spool_stdin, submit_file

    modes = bool(args.paths) + bool(args.from_pstore) + bool(args.from_journal)
    if modes != 1:
        raise KcrashError("give PATH… or - , or --from-pstore, or --from-journal (one of them)")
    if not args.server:
        raise KcrashError("no server: give --server URL or $KCRASH_SERVER")
    server = Server(
        args.server, _token(args), args.ca, timeout=args.timeout, attempts=max(1, args.attempts)
    )
    max_bytes = args.max_size or DEFAULT_MAX_BYTES

    def say(msg: str) -> None:
        if not args.quiet:
            print(f"kcrash: {msg}", flush=True)

    def warn(msg: str) -> None:
        print(f"kcrash: {msg}", file=sys.stderr, flush=True)

    # (path to send, name shown, kernel release seen in it, temporary?)
    jobs: list[tuple[str, str, str | None, bool]] = []
    if args.from_pstore:
        records, problems = pstore.find_records(tuple(args.pstore_dir or pstore.DEFAULT_DIRS))
        for line in problems:
            warn(line)
        crashes = pstore.group_crashes(records)
        if not crashes:
            say("no pstore dmesg records: nothing to send")
            return 2 if problems else 0
        for c in crashes:
            text = c.text()
            rel = hostfacts.release_from_log(text.decode("utf-8", "replace"))
            label = f"pstore {c.records[0].backend} {', '.join(c.reasons)}"
            jobs.append((_write_temp(text), label, rel, True))
    elif args.from_journal:
        text = journal.previous_boot_kernel_log(args.boot, args.journal_dir)
        if not journal.has_crash(text):
            say(f"no kernel crash in the kernel log of boot {args.boot}: nothing to send")
            return 0
        rel = hostfacts.release_from_log(text)
        jobs.append((_write_temp(text.encode()), f"journal boot {args.boot}", rel, True))
    else:
        for path in args.paths:
            if path == "-":
                jobs.append((spool_stdin(sys.stdin.buffer, max_bytes), "<stdin>", None, True))
            else:
                jobs.append((path, path, None, False))

    failed = 0
    try:
        for path, label, rel, _tmp in jobs:
            if rel is None and not _tmp:
                rel = hostfacts.release_of_file(path)
            facts = hostfacts.collect(args.root, args.host, args.kernel_release or rel)
            try:
                got = submit_file(
                    server,
                    path,
                    facts,
                    kind=args.kind or ("log" if _tmp and label != "<stdin>" else None),
                    max_bytes=max_bytes,
                    name=None if not _tmp else label.replace(" ", "-"),
                    log=warn,
                )
            except SubmitError as e:
                warn(str(e).replace(path, label) if _tmp else str(e))
                failed += 1
                continue
            dup = " (already known)" if got.duplicate else ""
            say(f"submitted {label}: crash {got.id}, {got.status or 'accepted'}{dup}")
    finally:
        for path, _label, _rel, tmp in jobs:
            if tmp:
                with contextlib.suppress(OSError):
                    os.unlink(path)
    return 2 if failed else 0
