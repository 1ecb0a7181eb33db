"""``kcrash batch DIR_OR_GLOB… --jobs N --out DIR``: triage many dumps at once.

Why a tool of its own: after a fleet incident there are tens of vmcores, and the first
question is "how many different bugs is this?", not one report at a time.  Each dump is
analyzed in its own killable process (see :mod:`kcrash.batch_runner`); the summary groups the dumps
by crash signature and lists every file that could not be analyzed with the reason.  The exit
status is non-zero only when nothing could be analyzed, so a script can run it over
``/var/crash`` and still get its reports when one dump is truncated.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

from ..entry import add_target_arguments
from . import tool


@tool("batch", "analyze many dumps in parallel; reports per dump plus a summary by signature")
def configure(p: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    p.add_argument("inputs", nargs="+", metavar="DIR_OR_GLOB", help="directories, globs, files")
    p.add_argument("--out", "-o", required=True, metavar="DIR", help="where reports go")
    p.add_argument(
        "--jobs",
        "-j",
        type=int,
        default=os.cpu_count() or 1,
        help="dumps analyzed at once (default: the number of CPUs)",
    )
    p.add_argument(
        "--timeout", type=float, default=300.0, help="seconds per dump before it is killed"
    )
    p.add_argument("--vmlinux", help="one vmlinux for every dump (default: found per dump)")
    add_target_arguments(p, live=False)  # a batch is of dump files; a live kernel is one
    p.add_argument("--lang", default=os.environ.get("KCRASH_LANG", "en"))
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--follow-symlinks",
        action="store_true",
        help="analyze the targets of symlinks in the inputs (default: listed as refused)",
    )
    return run


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    from ..batch_runner import OK, Options, find_inputs, run_batch, summary_dict, write_summary
    from ..errors import KcrashError
    from ..textsafe import visible

    if args.jobs < 1:
        raise KcrashError("--jobs must be at least 1")
    paths = find_inputs(args.inputs)
    opts = Options(
        vmlinux=args.vmlinux,
        debuginfo_dirs=list(args.debuginfo),
        no_debuginfo=args.no_debuginfo,
        lang=args.lang,
        follow_symlinks=args.follow_symlinks,
    )
    err = Console(stderr=True)
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]analyzing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[last]}"),
        console=err,
        disable=args.no_progress,
    )
    task = progress.add_task("batch", total=len(paths), last="")

    def on_done(o) -> None:  # type: ignore[no-untyped-def]
        progress.advance(task)
        mark = "[green]ok" if o.status == OK else f"[red]{o.status}"
        progress.update(task, last=f"{mark}[/] {escape(visible(o.name))}")
        if o.status != OK:  # names and reasons come from the inputs: shown, never emitted
            progress.console.print(
                f"[red]{o.status}[/] {escape(visible(o.path))}: {escape(visible(o.reason or ''))}",
                highlight=False,
            )

    start = time.monotonic()
    with progress:
        outcomes = run_batch(
            paths, args.out, opts=opts, jobs=args.jobs, timeout=args.timeout, on_done=on_done
        )
    seconds = time.monotonic() - start
    summary = summary_dict(outcomes, jobs=args.jobs, seconds=seconds, lang=args.lang)
    write_summary(args.out, summary)
    _print_summary(summary, args.out)
    return 0 if summary["analyzed"] else 1


def _print_summary(summary: dict, out_dir: str) -> None:  # type: ignore[type-arg]
    """The signature table on stdout; the rest is in out_dir.

    On a terminal, rich tables; piped, the Markdown of ``summary.md`` (no wrapped cells: a
    pipeline can grep a path or a signature, a ticket can take it as is).
    """
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from ..batch_runner import summary_markdown
    from ..report.labels import labels
    from ..textsafe import visible

    said = labels(summary.get("lang") or "en")
    reports_in = said["batch_reports_in"].format(out=visible(out_dir))

    def cell(s: object) -> Text:  # input text: no markup, no control character
        return Text(visible(s or ""))

    if not sys.stdout.isatty():
        sys.stdout.write(summary_markdown(summary))
        print(f"\n{reports_in}")
        return
    con = Console(file=sys.stdout, soft_wrap=False, no_color="NO_COLOR" in os.environ, emoji=False)
    t = Table(
        title=said["batch_analyzed"].format(**summary),
        title_justify="left",
    )
    t.add_column(said["batch_col_signature"])
    t.add_column(said["batch_col_dumps"], justify="right")
    t.add_column(said["batch_col_class"])
    t.add_column(said["batch_col_title"])
    for g in summary["groups"]:
        t.add_row(cell(g["signature"]), str(g["count"]), cell(g["class"]), cell(g["title"]))
    con.print(t)
    bad = [d for d in summary["dumps"] if d["status"] != "ok"]
    if bad:
        b = Table(title=said["batch_not_analyzed"], title_justify="left")
        b.add_column(said["batch_col_file"])
        b.add_column(said["col_status"])
        b.add_column(said["batch_col_reason"])
        for d in bad:
            b.add_row(
                cell(d["path"]), said.get("status_" + d["status"], d["status"]), cell(d["reason"])
            )
        con.print(b)
    con.print(Text(reports_in))
