"""Analyze many dumps at once: one process per dump, a time bound per dump.

Why processes, one per dump (not threads, not a reusable pool): a corrupt dump can make drgn
loop or crash in C, where neither a Python exception nor ``SIGALRM`` reaches it.  Only a
process can be killed cleanly, and a fresh process per dump means one bad dump cannot leave
a poisoned drgn ``Program`` or a leaked 300 MB index behind for the next one.

Why ``forkserver``: the parent shows a progress bar (a rich thread), and forking a threaded
process is unsafe.  The fork server is started before any thread and has drgn and kcrash's
analysis modules imported already (``set_forkserver_preload``), so each dump still starts in
milliseconds instead of paying the Python imports again.

Outputs, in ``--out DIR``: ``<name>.json`` and ``<name>.txt`` per analyzed dump (``name`` is
the dump's path below the common input folder, ``/`` turned into ``_``), ``<name>.log`` when
the analysis wrote anything to stdout/stderr (drgn warnings, a C-level crash message),
``summary.json`` and ``summary.md``.
"""

from __future__ import annotations

import glob
import json
import multiprocessing
import multiprocessing.connection
import os
import signal
import stat
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from . import drgn_private
from .errors import KcrashError
from .inputs import create_new, file_kind, output_dir, write_new
from .textsafe import json_dumps, md_code, md_text

#: Imported once in the fork server so that every per-dump child starts warm.
PRELOAD = [
    "drgn",
    "drgn.helpers.linux",
    # drgn 0.3.0 imports its plugins (every crash command) at the first set_core_dump:
    # ~0.2 s per dump unless the fork server has them already.
    *drgn_private.modules(),
    "kcrash.pipeline",
    "kcrash.target.open",
    "kcrash.facts.log",
    "kcrash.facts.stacks",
    "kcrash.facts.system",
    "kcrash.facts.modules",
    "kcrash.oops.text",
    "kcrash.diagnosis",
    "kcrash.report.render",
    "kcrash.report.render_text",
    "kcrash.report.render_json",
    # the patterns compiled on first use, compiled once here for every child
    "kcrash.diagnosis.warm",
]

#: Outcome statuses. Only "ok" counts as analyzed.
OK, FAILED, TIMEOUT, NOT_A_DUMP, CRASHED = "ok", "failed", "timeout", "not-a-dump", "crashed"
#: A symlink (not followed without --follow-symlinks) or a FIFO/socket/device: never opened.
REFUSED = "refused"


@dataclass
class Options:
    """What every per-dump analysis gets (picklable: it crosses into the child)."""

    vmlinux: str | None = None
    debuginfo_dirs: list[str] = field(default_factory=list)
    no_debuginfo: bool = False
    lang: str = "en"
    follow_symlinks: bool = False


@dataclass
class Outcome:
    """One line of the summary: what happened to one input file."""

    path: str
    name: str
    status: str
    seconds: float = 0.0
    reason: str | None = None
    signature: str | None = None
    title: str | None = None
    crash_class: str | None = None
    culprit: str | None = None
    mode: str | None = None
    #: the dump's kernel build id: dumps of one build share caches (``summary["builds"]``)
    build_id: str | None = None
    #: steps of the analysis that failed or timed out (the report still came out)
    degraded: list[str] = field(default_factory=list)
    json: str | None = None
    text: str | None = None
    log: str | None = None


# ---------------------------------------------------------------- inputs


def find_inputs(specs: Iterable[str]) -> list[str]:
    """Files named by directories (walked recursively), globs or plain paths, in order.

    Every file under a directory is a candidate, not only names that look like
    dumps: kdump-tools writes ``dump.<stamp>``, makedumpfile users write anything, and a
    file that is not a vmcore is listed in the summary with its reason rather than silently
    ignored (an operator who expected it to be analyzed learns why it was not).  Symlinks
    and special files are listed too; :func:`input_problem` refuses them before any open.
    """
    out: list[str] = []
    seen: set[str] = set()

    def add(p: str) -> None:
        key = os.path.abspath(p)
        if key not in seen:
            seen.add(key)
            out.append(p)

    for spec in specs:
        if os.path.isdir(spec):
            for root, dirs, files in os.walk(spec):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for f in sorted(files):
                    if not f.startswith("."):
                        add(os.path.join(root, f))
        elif glob.has_magic(spec):
            matches = sorted(glob.glob(spec, recursive=True))
            if not matches:
                raise KcrashError(f"{spec}: no file matches")
            for p in matches:
                if not os.path.isdir(p) or os.path.islink(p):
                    add(p)
        elif os.path.lexists(spec):
            add(spec)
        else:
            raise KcrashError(f"{spec}: no such file or directory")
    if not out:
        raise KcrashError("no input files: " + " ".join(specs))
    return out


def input_problem(path: str, follow_symlinks: bool = False) -> str | None:
    """Why ``path`` must not be opened, or None: checked in the parent, before any child.

    A symlink in a directory of dumps may point anywhere (``/etc/shadow``, a FIFO that
    blocks the analysis forever); it is analyzed only when the operator asks for it.
    """
    try:
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            if not follow_symlinks:
                return "a symlink; not followed (--follow-symlinks to analyze its target)"
            st = os.stat(path)
    except OSError as e:
        return f"cannot stat: {e.strerror}"
    if not stat.S_ISREG(st.st_mode):
        return f"{file_kind(st.st_mode)}, not a dump; not opened"
    return None


NO_SIGNATURE = "not a vmcore (no ELF, kdump-compressed or flattened signature)"


def _has_dump_signature(path: str) -> bool:
    from .target.dumpfile import has_dump_signature

    try:
        return has_dump_signature(path)
    except (OSError, KcrashError):  # unreadable: the child says why, as for any other failure
        return True


def output_names(paths: list[str]) -> list[str]:
    """File-name-safe, unique names: the path below the inputs' common folder.

    Basenames alone collide (every scenario folder of a corpus holds ``vmcore.kdump-zlib``,
    every ``/var/crash/<stamp>/`` a ``dump.<stamp>`` of its own only by luck).
    """
    absolute = [os.path.abspath(p) for p in paths]
    common = os.path.commonpath([os.path.dirname(p) for p in absolute]) if absolute else "/"
    names: list[str] = []
    used: set[str] = set()
    for p in absolute:
        rel = os.path.relpath(p, common)
        base = "".join(c if c.isalnum() or c in "-._" else "_" for c in rel.replace(os.sep, "_"))
        base = base.lstrip(".") or "dump"
        name, n = base, 2
        while name in used or name in ("summary",):
            name, n = f"{base}-{n}", n + 1
        used.add(name)
        names.append(name)
    return names


# ---------------------------------------------------------------- the child


def _child(path: str, name: str, opts: Options, out_dir: str) -> None:
    """Analyze one dump; write its reports and a small result file for the parent.

    Runs in its own process.  Its stdout/stderr (file descriptors, so C libraries too) go to
    ``<name>.log``: nothing may draw over the parent's progress bar.
    """
    log_path = os.path.join(out_dir, name + ".log")
    fd = create_new(log_path)  # never through a symlink planted in --out
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    result: dict[str, Any] = {"status": FAILED}
    try:
        result = _analyze_one(path, name, opts, out_dir)
    except KcrashError as e:
        # The summary shows the path next to the reason: drop the message's own path prefix.
        reason = str(e).removeprefix(path + ": ")
        result = {"status": NOT_A_DUMP if _is_not_a_dump(e) else FAILED, "reason": reason}
    except BaseException as e:  # a bug, or a KeyboardInterrupt: still a reason in the summary
        msg = str(e).splitlines()[0] if str(e) else ""
        result = {"status": FAILED, "reason": f"internal error: {type(e).__name__}: {msg}"}
        import traceback

        traceback.print_exc()
    finally:
        tmp = os.path.join(out_dir, f".{name}.result.tmp")
        write_new(tmp, json.dumps(result))
        os.replace(tmp, _result_path(out_dir, name))  # rename replaces a link, never follows it


def _is_not_a_dump(e: KcrashError) -> bool:
    from .errors import NotADumpError

    return isinstance(e, NotADumpError)


def _result_path(out_dir: str, name: str) -> str:
    return os.path.join(out_dir, f".{name}.result.json")


def _analyze_one(path: str, name: str, opts: Options, out_dir: str) -> dict[str, Any]:
    from .notes import Note
    from .pipeline import analyze_path
    from .report.render import write_report
    from .report.schema import summary
    from .target.dumpfile import inspect

    # analyze_path reads a non-dump file as oops text; in a batch of dumps such a file is
    # an operator's mistake (a dmesg next to the dump, a half-copied file), so say so.
    dump = inspect(path)
    report = analyze_path(
        path,
        opts.vmlinux,
        lang=opts.lang,
        debuginfo_dirs=opts.debuginfo_dirs,
        no_debuginfo=opts.no_debuginfo,
    )
    json_path = os.path.join(out_dir, name + ".json")
    text_path = os.path.join(out_dir, name + ".txt")
    for p, fmt in ((json_path, "json"), (text_path, "text")):
        with os.fdopen(create_new(p + ".tmp"), "wb") as f:  # never through a planted link
            write_report(report, fmt, f, color=False)
        os.replace(p + ".tmp", p)
    got = summary(report)
    # a dump cut short is read as far as it goes: the summary says what is missing
    if dump.truncated:
        got.degraded.append(Note("lack.dump", what=dump.truncated).in_lang(opts.lang))
    return {
        "status": OK,
        **asdict(got),
        "build_id": dump.build_id,
        "json": json_path,
        "text": text_path,
    }


# ---------------------------------------------------------------- the parent


def _context(jobs: int) -> Any:
    """The fork server, started (once) with the analysis modules imported.

    drgn indexes DWARF with OpenMP, one thread per CPU: one dump alone already keeps both
    CPUs of a small machine busy.  With several jobs that means jobs × CPUs threads fighting
    (libgomp spin-waits, cache thrash): measured on 2 CPUs, 2 jobs with one OpenMP thread each
    finish a batch 15–20 % sooner than with two each.  libgomp reads ``OMP_NUM_THREADS`` when
    it is loaded, i.e. in the fork server's preload, so it is set in the environment the
    server starts with (an operator's own setting wins).  The server is started once per
    process: a later call with another ``jobs`` keeps the first setting.
    """
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    if jobs > 1 and "OMP_NUM_THREADS" not in os.environ:
        threads = max(1, (os.cpu_count() or 1) // jobs)
        os.environ["OMP_NUM_THREADS"] = str(threads)
        try:
            from multiprocessing import forkserver

            forkserver.ensure_running()
        finally:
            del os.environ["OMP_NUM_THREADS"]
    return ctx


def run_batch(
    paths: list[str],
    out_dir: str,
    *,
    opts: Options | None = None,
    jobs: int = 1,
    timeout: float = 300.0,
    on_start: Callable[[str, str], None] | None = None,
    on_done: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Analyze ``paths`` with up to ``jobs`` processes; one :class:`Outcome` per path, in order.

    A dump that fails, crashes its process or runs past ``timeout`` seconds is recorded with
    its reason; the batch goes on.
    """
    opts = opts or Options()
    output_dir(out_dir)  # a real directory, never a planted symlink
    names = output_names(paths)
    ctx = _context(jobs)
    pending = list(zip(paths, names, strict=True))
    pending.reverse()  # pop() from the end keeps input order
    running: dict[Any, tuple[str, str, float]] = {}  # sentinel -> (path, name, start)
    procs: dict[Any, Any] = {}
    done: dict[str, Outcome] = {}
    try:
        while pending or running:
            while pending and len(running) < max(1, jobs):
                path, name = pending.pop()
                problem = input_problem(path, opts.follow_symlinks)
                if problem is not None:
                    done[path] = Outcome(path, name, REFUSED, reason=problem)
                elif not _has_dump_signature(path):  # no child spent on a file that is no dump
                    done[path] = Outcome(path, name, NOT_A_DUMP, reason=NO_SIGNATURE)
                if path in done:
                    if on_done:
                        on_done(done[path])
                    continue
                stale = _result_path(out_dir, name)
                if os.path.exists(stale):
                    os.unlink(stale)
                proc = ctx.Process(
                    target=_child, args=(path, name, opts, out_dir), name=f"kcrash-batch:{name}"
                )
                proc.start()
                running[proc.sentinel] = (path, name, time.monotonic())
                procs[proc.sentinel] = proc
                if on_start:
                    on_start(path, name)
            if not running:
                continue
            now = time.monotonic()
            next_deadline = min(start + timeout for _, _, start in running.values())
            ready = multiprocessing.connection.wait(
                list(running), timeout=max(0.0, min(next_deadline - now, 1.0))
            )
            now = time.monotonic()
            for sentinel in list(running):
                path, name, start = running[sentinel]
                proc = procs[sentinel]
                if sentinel in ready:
                    proc.join()
                    outcome = _collect(path, name, out_dir, proc.exitcode, now - start)
                elif now - start >= timeout:
                    proc.kill()
                    proc.join()
                    outcome = Outcome(
                        path,
                        name,
                        TIMEOUT,
                        now - start,
                        reason=f"no result after {timeout:g} s; the analysis was killed",
                    )
                    _finish_log(outcome, out_dir)
                else:
                    continue
                del running[sentinel], procs[sentinel]
                proc.close()
                done[path] = outcome
                if on_done:
                    on_done(outcome)
    finally:
        for proc in procs.values():  # interrupted: leave no analysis running
            if proc.is_alive():
                proc.kill()
                proc.join()
    return [done[p] for p in paths]


def _collect(path: str, name: str, out_dir: str, exitcode: int | None, seconds: float) -> Outcome:
    """Read the child's result file; a child that died without one crashed."""
    rpath = _result_path(out_dir, name)
    try:
        fd = os.open(rpath, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, encoding="utf-8") as f:
            data = json.load(f)
        os.unlink(rpath)
    except (OSError, ValueError):
        data = None
    if data is None:
        if exitcode is not None and exitcode < 0:
            try:
                sig = signal.Signals(-exitcode).name
            except ValueError:
                sig = f"signal {-exitcode}"
            reason = f"the analysis process was killed by {sig}"
        else:
            reason = f"the analysis process exited with status {exitcode} and no result"
        outcome = Outcome(path, name, CRASHED, seconds, reason=reason)
    else:
        fields = {k: v for k, v in data.items() if k in Outcome.__dataclass_fields__}
        outcome = Outcome(path=path, name=name, seconds=seconds, **fields)
    _finish_log(outcome, out_dir)
    return outcome


def _finish_log(outcome: Outcome, out_dir: str) -> None:
    """Keep ``<name>.log`` only when the analysis had something to say."""
    log = os.path.join(out_dir, outcome.name + ".log")
    try:
        if os.path.getsize(log) == 0:
            os.unlink(log)
        else:
            outcome.log = log
    except OSError:
        pass


# ---------------------------------------------------------------- summary


def group_by_signature(outcomes: list[Outcome]) -> list[dict[str, Any]]:
    """Analyzed dumps bucketed by ``signature.id``, biggest bucket first."""
    groups: dict[str, dict[str, Any]] = {}
    for o in outcomes:
        if o.status != OK:
            continue
        key = o.signature or "(none)"
        g = groups.setdefault(
            key,
            {
                "signature": key,
                "title": o.title,
                "class": o.crash_class,
                "culprit": o.culprit,
                "count": 0,
                "dumps": [],
            },
        )
        g["count"] += 1
        g["dumps"].append(o.path)
    return sorted(groups.values(), key=lambda g: (-g["count"], g["signature"]))


def summary_dict(
    outcomes: list[Outcome], *, jobs: int, seconds: float, lang: str = "en"
) -> dict[str, Any]:
    analyzed = sum(o.status == OK for o in outcomes)
    return {
        "lang": lang,
        "total": len(outcomes),
        "analyzed": analyzed,
        "not_analyzed": len(outcomes) - analyzed,
        "jobs": jobs,
        "seconds": round(seconds, 3),
        "dumps_per_minute": round(analyzed / seconds * 60, 2) if seconds > 0 else None,
        "groups": group_by_signature(outcomes),
        "builds": by_build(outcomes),
        "dumps": [asdict(o) for o in outcomes],
    }


def by_build(outcomes: list[Outcome]) -> list[dict[str, Any]]:
    """Seconds per kernel build, in the order the dumps finished: the first dump of a
    build pays for what later ones find cached (its symbol labels, kallsyms places),
    so ``first_seconds`` against ``later_median_seconds`` shows what the reuse saves."""
    builds: dict[str, list[float]] = {}
    for o in outcomes:
        if o.status == OK:
            builds.setdefault(o.build_id or "unknown", []).append(o.seconds)
    out = []
    for bid, secs in builds.items():
        later = sorted(secs[1:])
        out.append(
            {
                "build_id": bid,
                "dumps": len(secs),
                "seconds": round(sum(secs), 3),
                "first_seconds": round(secs[0], 3),
                "later_median_seconds": round(later[len(later) // 2], 3) if later else None,
            }
        )
    return sorted(out, key=lambda b: -b["dumps"])


def summary_markdown(summary: dict[str, Any]) -> str:
    """The summary as Markdown, in the reports' language: signature buckets, then what
    could not be analyzed (its reasons are kcrash's error lines, English as printed)."""
    from .report.labels import labels

    said = labels(summary.get("lang") or "en")
    cols = ("signature", "dumps", "class", "title", "files")
    lines = [
        f"# {said['batch_title']}",
        "",
        said["batch_analyzed"].format(**summary),
        "",
        "| " + " | ".join(said[f"batch_col_{c}"] for c in cols) + " |",
        "|---|---|---|---|---|",
    ]
    # File names, titles and reasons come from the inputs: escaped (kcrash.textsafe).
    for g in summary["groups"]:
        files = ", ".join(md_code(os.path.basename(p), table=True) for p in g["dumps"])
        lines.append(
            f"| {md_code(g['signature'], table=True)} | {g['count']} | {md_text(g['class'] or '')}"
            f" | {md_text(g['title'] or '')} | {files} |"
        )
    bad = [d for d in summary["dumps"] if d["status"] != OK]
    if bad:
        head = (said["batch_col_file"], said["col_status"], said["batch_col_reason"])
        lines += ["", f"## {said['batch_not_analyzed']}", "", "| " + " | ".join(head) + " |"]
        lines.append("|---|---|---|")
        lines += [
            f"| {md_code(d['path'], table=True)} | {said.get('status_' + d['status'], d['status'])}"
            f" | {md_text(d['reason'] or '')} |"
            for d in bad
        ]
    degraded = [d for d in summary["dumps"] if d["status"] == OK and d["degraded"]]
    if degraded:
        lines += ["", f"## {said['batch_degraded']}", ""]
        lines += [f"- {md_code(d['path'])}: {md_text('; '.join(d['degraded']))}" for d in degraded]
    return "\n".join(lines) + "\n"


def write_summary(out_dir: str, summary: dict[str, Any]) -> None:
    """``summary.json`` (exact names; C1/bidi as ``\\u``) and ``summary.md``, as fresh files."""
    write_new(os.path.join(out_dir, "summary.json"), json_dumps(summary, indent=2) + "\n")
    write_new(os.path.join(out_dir, "summary.md"), summary_markdown(summary))
