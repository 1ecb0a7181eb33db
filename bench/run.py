"""Benchmark kcrash against crash and drgn on the same real dumps (issue 8).

Usage::

    PYTHONPATH=corpus python bench/run.py                  # default dumps, 5 rounds
    PYTHONPATH=corpus python bench/run.py --dumps deb12/null-deref/kdump-zlib -n 3
    PYTHONPATH=corpus python bench/run.py --no-batch --no-write

Why it is built this way:

- **Interleaved rounds.** Each round runs every tool once on every dump, in an order that
  rotates from round to round, so a slow minute of the (shared, 2-core) machine is spread over
  all tools instead of landing on one of them.  One warm-up round is run first and discarded:
  every tool then reads the dump and vmlinux from the page cache, which is the fair and
  repeatable state (a cold first reader would be penalised for the others).
- **One child per run, measured by the kernel.**  Wall time is taken around the child; peak RSS
  comes from ``os.wait4``'s rusage (``ru_maxrss``), the child's own high-water mark, not a
  sampled guess.
- **Nothing reused between tools.**  Every child gets a fresh, empty ``HOME`` and
  ``XDG_CACHE_HOME`` (no ``.crashrc``, no drgn history, no kcrash cache from a previous run);
  outputs are checked (a tool that printed nothing useful does not count as fast) and
  thrown away.  No network is used.
- **The reference commands are the ones operators type**: ``crash -s -i CMDFILE vmlinux
  vmcore`` with ``sys``, ``bt``, ``log``, ``quit``; ``drgn-crash vmlinux vmcore`` fed the same
  three commands on stdin (drgn 0.3.0's crash mode reads commands with ``input()``, so a file on
  stdin runs them non-interactively; it knows ``q``/``exit``, not ``quit``).

The result is a Markdown table (median and min–max of N runs, ratios against crash and against
drgn-crash), the scaling ratio of the 4 GB-guest dump against the 1 GB one, batch throughput for
1 and 2 jobs, and the goals of issue 8 marked met / not met.  It is printed and written to
``bench/results/<date>.md`` (plus the raw samples as ``<date>.json``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"

#: Dumps measured when --dumps is not given (the first one present is the headline dump).
DEFAULT_DUMPS = (
    "deb12/null-deref/kdump-zlib",
    "deb12/sysrq/kdump-zlib",
    "deb12/null-deref-4g/kdump-zlib",
)
#: Scaling pair of issue 8: the same scenario from a 4 GB guest and from the smaller guest.
SCALING_BIG = "null-deref-4g"
SCALING_SMALL = "null-deref"

CRASH_COMMANDS = "sys\nbt\nlog\nquit\n"
DRGN_CRASH_COMMANDS = "sys\nbt\nlog\nq\n"

KCRASH_SYS = "kcrash sys"
KCRASH_ANALYZE = "kcrash analyze"
KCRASH_ANALYZE_NODEBUG = "kcrash analyze --no-debuginfo"
KCRASH_ANALYZE_WARM = "kcrash analyze, cache warm"
CRASH = "crash sys;bt;log"
DRGN_CRASH = "drgn-crash sys;bt;log"
TOOLS = (KCRASH_SYS, KCRASH_ANALYZE, KCRASH_ANALYZE_WARM, KCRASH_ANALYZE_NODEBUG, CRASH, DRGN_CRASH)


@dataclass
class Case:
    """One tool on one dump: the command line, its stdin and how to tell it worked."""

    dump_id: str
    tool: str
    argv: list[str]
    stdin: str | None
    check: Callable[[str, str, int], str | None]
    #: a ``~/.cache`` kept from run to run (the kcrash rows say what a second dump of the
    #: same build costs); None: an empty one for every run
    cache: Path | None = None


@dataclass
class Sample:
    """One measured run of a case."""

    wall: float
    maxrss_kb: int
    rc: int
    error: str | None = None
    read_mb: float = float("nan")
    cpu: float = 0.0  #: user + system seconds of the child (and what it reaped)
    busy: float = 0.0  #: mean number of other runnable tasks while it ran


@dataclass
class Result:
    dump_id: str
    tool: str
    argv: list[str]
    samples: list[Sample] = field(default_factory=list)

    @property
    def ok(self) -> list[Sample]:
        return [s for s in self.samples if s.error is None]

    @property
    def failed(self) -> str | None:
        """The first failure's reason when more than half of the runs failed."""
        bad = [s for s in self.samples if s.error]
        if bad and len(bad) * 2 >= len(self.samples):
            return bad[0].error
        return None

    def wall(self) -> float | None:
        ok = self.ok
        return statistics.median(s.wall for s in ok) if ok and not self.failed else None

    def cpu(self) -> float | None:
        ok = self.ok
        return statistics.median(s.cpu for s in ok) if ok and not self.failed else None

    def read_mb(self) -> float | None:
        ok = self.ok
        return statistics.median(s.read_mb for s in ok) if ok and not self.failed else None

    def rss_mb(self) -> float | None:
        ok = self.ok
        if not ok or self.failed:
            return None
        return statistics.median(s.maxrss_kb for s in ok) / 1024


# ---------------------------------------------------------------- checks


def _need(*words: str) -> Callable[[str, str, int], str | None]:
    """A check that the tool exited 0 and printed every one of ``words``."""

    def check(out: str, err: str, rc: int) -> str | None:
        if rc != 0:
            last = (err.strip().splitlines() or out.strip().splitlines() or [""])[-1]
            return f"exit {rc}: {last[:160]}"
        missing = [w for w in words if w not in out]
        if missing:
            return f"output lacks {missing!r}"
        return None

    return check


def _analyze_check(out: str, err: str, rc: int) -> str | None:
    """``analyze --format json`` must exit 0 and print a report with a signature."""
    if rc != 0:
        last = (err.strip().splitlines() or [""])[-1]
        return f"exit {rc}: {last[:160]}"
    try:
        report = json.loads(out)
    except ValueError as e:
        return f"not JSON: {e}"
    if not (report.get("signature") or {}).get("id"):
        return "report has no signature id"
    return None


# ---------------------------------------------------------------- running


def _which(name: str) -> str:
    """Absolute path of a program: the same binary for every run, found once."""
    path = shutil.which(name)
    if path is None:
        sys.exit(f"bench: {name} not found on PATH")
    return path


def _crash_for(entry: dict[str, Any]) -> str:
    """The crash that reads this dump: the host's for x86-64, and for an arm64 dump the
    crash-ARM64 the corpus built as that dump's oracle (``make target=ARM64``: an x86-64
    binary with an aarch64 gdb, corpus/kcrash_corpus/crash_arm64.py). drgn-crash and kcrash
    read both architectures as they are."""
    if entry.get("arch", "x86_64") != "arm64":
        return _which("crash")
    import kcrash_corpus

    binary = kcrash_corpus.cache_root() / "tools" / "crash-arm64" / "crash"
    if not binary.exists():
        sys.exit(f"bench: {binary} missing: build the arm64 entries' oracle (kcrash_corpus build)")
    return str(binary)


def make_cases(entry: dict[str, Any], cmd_dir: Path) -> list[Case]:
    """The five measured commands for one corpus dump."""
    vmcore, vmlinux = entry["path"], entry["vmlinux"]
    crash_cmds = cmd_dir / "crash.cmds"
    drgn_cmds = cmd_dir / "drgn-crash.cmds"
    crash_cmds.write_text(CRASH_COMMANDS)
    drgn_cmds.write_text(DRGN_CRASH_COMMANDS)
    kc = _which("kcrash")
    i = entry["id"]
    return [
        Case(i, KCRASH_SYS, [kc, "sys", vmcore, vmlinux], None, _need("PANIC")),
        Case(
            i,
            KCRASH_ANALYZE,
            [kc, "analyze", vmcore, vmlinux, "--format", "json"],
            None,
            _analyze_check,
        ),
        Case(
            i,
            KCRASH_ANALYZE_WARM,
            [kc, "analyze", vmcore, vmlinux, "--format", "json"],
            None,
            _analyze_check,
            cmd_dir / f"cache-{i.replace('/', '_')}",
        ),
        Case(
            i,
            KCRASH_ANALYZE_NODEBUG,
            [kc, "analyze", vmcore, "--no-debuginfo", "--format", "json"],
            None,
            _analyze_check,
        ),
        Case(
            i,
            CRASH,
            [_crash_for(entry), "-s", "-i", str(crash_cmds), vmlinux, vmcore],
            None,
            _need("PANIC:", "#0", "Linux version"),
        ),
        Case(
            i,
            DRGN_CRASH,
            [_which("drgn-crash"), vmlinux, vmcore],
            str(drgn_cmds),
            _need("PANIC:", "#0", "Linux version"),
        ),
    ]


def clean_env(home: Path, cache: Path | None = None) -> dict[str, str]:
    """The environment of every child: a fresh HOME and cache, no colour, no pager.

    Byte-code: an installed package has its ``.pyc`` files; an editable checkout run with
    ``PYTHONDONTWRITEBYTECODE=1`` (as on our build machines) recompiles ~40 modules on every
    start (~50 ms), which no user pays.  So children write and read ``.pyc`` under one
    bench-private ``PYTHONPYCACHEPREFIX`` (filled by the discarded warm-up round, shared by
    kcrash and drgn alike, and never written into the source tree).
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KCRASH_", "DRGN_", "DEBUGINFOD_", "XDG_"))
        and k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")
    }
    home.mkdir(parents=True, exist_ok=True)
    env.update(
        HOME=str(home),
        XDG_CACHE_HOME=str(cache or home / ".cache"),
        XDG_CONFIG_HOME=str(home / ".config"),
        NO_COLOR="1",
        PAGER="cat",
        TERM="dumb",
        LC_ALL="C.UTF-8",
        PYTHONPYCACHEPREFIX=str(home.parent / "pycache"),
    )
    return env


def run_child(
    argv: list[str],
    stdin: str | None,
    scratch: Path,
    timeout: float,
    cache: Path | None = None,
) -> tuple[Sample, str, str]:
    """Run one child in a fresh HOME; measure wall time and peak RSS (``os.wait4``)."""
    home = Path(tempfile.mkdtemp(prefix="home-", dir=scratch))
    out_path, err_path = home / "stdout", home / "stderr"
    with (
        open(out_path, "wb") as out,
        open(err_path, "wb") as err,
        open(stdin or os.devnull, "rb") as inp,
    ):
        busy = _RunQueue()
        start = time.perf_counter()
        proc = subprocess.Popen(
            argv, stdin=inp, stdout=out, stderr=err, env=clean_env(home, cache), cwd=home
        )
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        busy.start(proc.pid)
        try:
            # Wait without reaping first: the zombie's /proc/PID/io still holds what the
            # child (and the children it reaped) read, the evidence that a tool did not
            # read the whole dump.  Then reap it with wait4 for its rusage.
            os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
            rchar = _rchar(proc.pid)
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
            busy.stop()
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped: keep Popen quiet
    out_text = out_path.read_text(errors="replace")
    err_text = err_path.read_text(errors="replace")
    shutil.rmtree(home, ignore_errors=True)
    sample = Sample(
        wall,
        usage.ru_maxrss,
        proc.returncode,
        read_mb=rchar / 1e6,
        cpu=usage.ru_utime + usage.ru_stime,
        busy=busy.mean(),
    )
    if proc.returncode == -9 and wall >= timeout:
        sample.error = f"timed out after {timeout:g} s"
    return sample, out_text, err_text


class _RunQueue:
    """Samples how many *other* tasks want a CPU while a child runs.

    The machine is shared (2 CPUs, other people's tests and QEMU guests): a wall time taken
    next to a busy neighbour must say so.  ``/proc/loadavg``'s running count, minus the
    child's own running threads and this sampler, every 50 ms.
    """

    def __init__(self) -> None:
        self._samples: list[int] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, pid: int) -> None:
        self._thread = threading.Thread(target=self._run, args=(pid,), daemon=True)
        self._thread.start()

    def _run(self, pid: int) -> None:
        while not self._stop.wait(0.05):
            try:
                running = int(Path("/proc/loadavg").read_text().split()[3].split("/")[0])
                own = sum(
                    1
                    for t in os.listdir(f"/proc/{pid}/task")
                    if Path(f"/proc/{pid}/task/{t}/stat").read_text().rsplit(")", 1)[1].split()[0]
                    == "R"
                )
            except (OSError, IndexError, ValueError):
                continue
            self._samples.append(max(0, running - own - 1))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def mean(self) -> float:
        return statistics.fmean(self._samples) if self._samples else 0.0


def wait_for_quiet(max_wait: float, log: Callable[[str], None]) -> None:
    """Wait (at most ``max_wait`` s) until no other task is runnable for 0.5 s."""
    if max_wait <= 0:
        return
    deadline = time.monotonic() + max_wait
    quiet_since = None
    while time.monotonic() < deadline:
        try:
            running = int(Path("/proc/loadavg").read_text().split()[3].split("/")[0])
        except (OSError, IndexError, ValueError):
            return
        now = time.monotonic()
        if running <= 1:  # this process
            quiet_since = quiet_since or now
            if now - quiet_since >= 0.5:
                return
        else:
            quiet_since = None
        time.sleep(0.05)
    log(f"(machine still busy after {max_wait:g} s: measuring anyway)")


def _rchar(pid: int) -> float:
    """Bytes read through read(2)-like calls (``rchar``): page-cache hits included, mmap not."""
    try:
        with open(f"/proc/{pid}/io") as f:
            for line in f:
                if line.startswith("rchar:"):
                    return float(line.split()[1])
    except OSError:
        pass
    return float("nan")


def measure(
    cases: list[Case],
    rounds: int,
    scratch: Path,
    timeout: float,
    log: Callable[[str], None],
    quiet: float = 0.0,
) -> dict[tuple[str, str], Result]:
    """Warm-up round (discarded), then ``rounds`` interleaved rounds over every case."""
    results = {(c.dump_id, c.tool): Result(c.dump_id, c.tool, c.argv) for c in cases}
    for rnd in range(rounds + 1):
        shift = rnd % len(cases)
        order = cases[shift:] + cases[:shift]
        for c in order:
            wait_for_quiet(quiet, log)
            sample, out, err = run_child(c.argv, c.stdin, scratch, timeout, c.cache)
            if sample.error is None:
                sample.error = c.check(out, err, sample.rc)
            tag = "warm-up" if rnd == 0 else f"round {rnd}/{rounds}"
            status = "ok" if sample.error is None else f"FAILED: {sample.error}"
            log(
                f"[{tag}] {c.dump_id:<34} {c.tool:<30} {sample.wall:7.2f} s "
                f"cpu {sample.cpu:6.2f} s busy {sample.busy:4.1f} "
                f"{sample.maxrss_kb / 1024:6.0f} MB {sample.read_mb:7.0f} MB read  {status}"
            )
            if rnd > 0:
                results[(c.dump_id, c.tool)].samples.append(sample)
    return results


# ---------------------------------------------------------------- batch throughput


def measure_batch(
    entries: list[dict[str, Any]],
    jobs_list: tuple[int, ...],
    rounds: int,
    scratch: Path,
    timeout: float,
    log: Callable[[str], None],
    quiet: float = 0.0,
    repeat: int = 1,
    details: dict[int, list[dict[str, Any]]] | None = None,
) -> dict[int, list[float]]:
    """``kcrash batch`` over the dumps with 1 and 2 jobs; dumps per minute per round.

    The dumps are symlinked into one directory (as an operator would point batch at
    ``/var/crash``); vmlinux files are found through ``--debuginfo`` directories.
    """
    src = scratch / "batch-input"
    src.mkdir(exist_ok=True)
    for k in range(repeat):
        for e in entries:
            link = src / f"{e['id'].replace('/', '_')}-{k}"
            if not link.exists():
                link.symlink_to(e["path"])
    total = len(entries) * repeat
    dirs = sorted({str(Path(e["vmlinux"]).parent) for e in entries})
    out: dict[int, list[float]] = {j: [] for j in jobs_list}
    kc = _which("kcrash")
    for rnd in range(rounds):
        for jobs in jobs_list if rnd % 2 == 0 else tuple(reversed(jobs_list)):
            odir = scratch / f"batch-out-{jobs}-{rnd}"
            argv = [kc, "batch", str(src), "--jobs", str(jobs), "--out", str(odir)]
            argv.append("--follow-symlinks")  # the links are ours (batch refuses links otherwise)
            for d in dirs:
                argv += ["--debuginfo", d]
            wait_for_quiet(quiet, log)
            sample, _out, err = run_child(argv, None, scratch, timeout)
            summary = _batch_summary(odir)
            ok = summary.get("analyzed", 0) if summary else 0
            if sample.rc != 0 or ok != total:
                last = (err.strip().splitlines() or [""])[-1]
                log(f"[batch] jobs={jobs}: {ok}/{total} analyzed, rc {sample.rc}: {last}")
            rate = ok / sample.wall * 60 if sample.wall else 0.0
            log(
                f"[batch] jobs={jobs} round {rnd + 1}: {sample.wall:.2f} s, {rate:.1f} dumps/min,"
                f" cpu {sample.cpu:.1f} s, busy {sample.busy:.1f}"
            )
            out[jobs].append(rate)
            if details is not None and summary:
                details.setdefault(jobs, []).append(
                    {
                        "builds": summary.get("builds") or [],
                        "dumps": [
                            {"name": d["name"], "seconds": d["seconds"], "status": d["status"]}
                            for d in summary.get("dumps") or []
                        ],
                        "wall": sample.wall,
                        "cpu": sample.cpu,
                        "busy": sample.busy,
                    }
                )
            shutil.rmtree(odir, ignore_errors=True)
    return out


def _batch_summary(odir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((odir / "summary.json").read_text())
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------- reporting


def machine_info(entries: list[dict[str, Any]] | None = None) -> dict[str, str]:
    """What a reader needs to compare these numbers with theirs."""

    def first_line(argv: list[str]) -> str:
        try:
            p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"unavailable ({e})"
        return next((ln.strip() for ln in (p.stdout + p.stderr).splitlines() if ln.strip()), "")

    cpu = "unknown"
    mem = "unknown"
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                cpu = ln.split(":", 1)[1].strip()
                break
        for ln in Path("/proc/meminfo").read_text().splitlines():
            if ln.startswith("MemTotal"):
                mem = f"{int(ln.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    try:
        debian = "Debian " + Path("/etc/debian_version").read_text().strip()
    except OSError:
        debian = platform.platform()
    commit = first_line(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = first_line(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"])
    info = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "os": f"{debian}, Linux {platform.release()}",
        "cpu": f"{cpu}, {os.cpu_count()} CPUs",
        "memory": mem,
        "python": platform.python_version(),
        "kcrash": first_line([_which("kcrash"), "--version"])
        + f" (git {commit}{', uncommitted changes' if dirty else ''})",
        "crash": first_line([_which("crash"), "--version"]),
        "drgn": first_line([sys.executable, "-c", "import drgn; print(drgn.__version__)"]),
        "load": _loadavg(),
    }
    arm = [e for e in entries or [] if e.get("arch") == "arm64"]
    if arm:
        info["crash (arm64 dumps)"] = first_line([_crash_for(arm[0]), "--version"]) + " ARM64"
    return info


def _loadavg() -> str:
    """The machine's load: numbers taken next to a busy neighbour must say so."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def _fmt_wall(r: Result | None) -> str:
    if r is None:
        return "—"
    if r.failed:
        return f"FAILED ({r.failed[:60]})"
    ok = r.ok
    walls = [s.wall for s in ok]
    return f"{statistics.median(walls):.2f} s ({min(walls):.2f}–{max(walls):.2f})"


def _fmt_rss(r: Result | None) -> str:
    v = r.rss_mb() if r else None
    return f"{v:.0f} MB" if v is not None else "—"


def _fmt_cpu(r: Result | None) -> str:
    v = r.cpu() if r else None
    return f"{v:.2f} s" if v is not None else "—"


def _fmt_busy(r: Result | None) -> str:
    ok = r.ok if r else []
    return f"{statistics.fmean(s.busy for s in ok):.1f}" if ok else "—"


def _fmt_read(r: Result | None) -> str:
    v = r.read_mb() if r else None
    return f"{v:.0f} MB" if v is not None and v == v else "—"


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}×" if a is not None and b else "—"


def render(
    info: dict[str, str],
    entries: list[dict[str, Any]],
    results: dict[tuple[str, str], Result],
    batch: dict[int, list[float]] | None,
    rounds: int,
    command: str,
    batch_note: str = "",
    batch_details: dict[int, list[dict[str, Any]]] | None = None,
    sections: list[tuple[str, str]] | None = None,
) -> tuple[str, list[tuple[str, str, str]]]:
    """Markdown results and the goals list ``(goal, measured, met)``."""
    lines = [
        f"# kcrash benchmark, {info['date']}",
        "",
        f"Reproduce: `{command}`",
        "",
        "| machine | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in info.items() if k != "date"),
        "",
        f"Median of {rounds} interleaved runs after one discarded warm-up round (page cache warm"
        " for every tool), min–max in brackets; peak RSS is the median of `ru_maxrss` from"
        " `os.wait4`; CPU time is its user + system time (less sensitive to a busy neighbour than"
        " wall time); busy is the mean number of *other* runnable tasks while it ran (0 = the"
        " machine was ours; this machine has 2 CPUs and is shared); read is the child's"
        " `rchar` from `/proc/PID/io` (read(2) bytes, page-cache hits included, mmap not"
        " counted). Every child runs with an empty HOME (the `cache warm` row keeps its"
        " `~/.cache` from its previous runs: a second dump of the same kernel build); its output is"
        " checked, then discarded.",
        "",
    ]
    for e in entries:
        i = e["id"]
        crash = results.get((i, CRASH))
        drgn = results.get((i, DRGN_CRASH))
        ram = (e.get("guest") or {}).get("ram_mb")
        lines += [
            f"## `{i}` ({e.get('size', 0) / 1e6:.0f} MB dump of a {ram} MB "
            f"{'arm64' if e.get('arch') == 'arm64' else 'x86-64'} guest)",
            "",
            "| command | wall time | CPU time | peak RSS | read | time vs crash |"
            " time vs drgn-crash | CPU vs drgn-crash | RSS vs drgn-crash | busy |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for tool in TOOLS:
            r = results.get((i, tool))
            w = r.wall() if r else None
            lines.append(
                f"| {tool} | {_fmt_wall(r)} | {_fmt_cpu(r)} | {_fmt_rss(r)} | {_fmt_read(r)} | "
                f"{_ratio(w, crash.wall() if crash else None)} | "
                f"{_ratio(w, drgn.wall() if drgn else None)} | "
                f"{_ratio(r.cpu() if r else None, drgn.cpu() if drgn else None)} | "
                f"{_ratio(r.rss_mb() if r else None, drgn.rss_mb() if drgn else None)} | "
                f"{_fmt_busy(r)} |"
            )
        lines.append("")
        lines.append(
            "Commands: "
            + "; ".join(
                f"`{' '.join(_short(a) for a in results[(i, t)].argv)}`"
                for t in TOOLS
                if (i, t) in results
            )
        )
        lines.append("")

    goals = _goals(entries, results, batch)
    scaling = _scaling_lines(entries, results)
    if scaling:
        lines += ["## Scaling: 4 GB guest against the smaller guest (same scenario, format)", ""]
        lines += [*scaling, ""]
    if batch:
        lines += [
            "## `kcrash batch` throughput",
            "",
            f"`kcrash batch DIR --jobs N --out OUT` over {batch_note}.",
            "",
            "| jobs | dumps/min (median) | runs |",
            "|---|---|---|",
        ]
        for jobs, rates in sorted(batch.items()):
            med = statistics.median(rates) if rates else 0.0
            lines.append(f"| {jobs} | {med:.1f} | {', '.join(f'{x:.1f}' for x in rates)} |")
        lines.append("")
        lines += _batch_detail_lines(batch_details or {})
    for title, body in sections or []:
        lines += [f"## {title}", "", body.rstrip(), ""]
    lines += ["## Goals (issues 8 and 19)", "", "| goal | measured | met? |", "|---|---|---|"]
    lines += [f"| {g} | {m} | {ok} |" for g, m, ok in goals]
    lines.append("")
    return "\n".join(lines), goals


def _batch_detail_lines(details: dict[int, list[dict[str, Any]]]) -> list[str]:
    """Per build id and per dump, from the runs' ``summary.json`` (issue 19): what the
    first dump of a build costs against the later ones (they find its caches), and each
    dump's median seconds with one job.  (No CPU column: the dumps are analyzed in the
    fork server's children, which ``wait4`` on the batch process does not count.)"""
    if not details:
        return []
    lines = [
        "Per build id (each run starts with an empty cache; seconds as the batch measured"
        " them, median over the runs):",
        "",
        "| jobs | build id | dumps | first dump | later dumps (median) | batch wall | busy |",
        "|---|---|---|---|---|---|---|",
    ]
    for jobs, runs in sorted(details.items()):
        builds: dict[str, list[dict[str, Any]]] = {}
        for run in runs:
            for b in run["builds"]:
                builds.setdefault(b["build_id"], []).append(b)
        wall = statistics.median(r["wall"] for r in runs)
        busy = statistics.fmean(r["busy"] for r in runs)
        for bid, bs in builds.items():
            first = statistics.median(b["first_seconds"] for b in bs)
            later = [b["later_median_seconds"] for b in bs if b["later_median_seconds"]]
            later_s = f"{statistics.median(later):.2f} s" if later else "—"
            lines.append(
                f"| {jobs} | `{bid[:12]}` | {bs[0]['dumps']} | {first:.2f} s | {later_s} |"
                f" {wall:.1f} s | {busy:.1f} |"
            )
    lines.append("")
    one = details.get(1) or next(iter(details.values()))
    per: dict[str, list[float]] = {}
    for run in one:
        for d in run["dumps"]:
            if d["status"] == "ok":
                # the links are <id with / as _>-<k>: one row per corpus dump
                per.setdefault(d["name"].rsplit("-", 1)[0], []).append(d["seconds"])
    if per:
        lines += [
            "Per dump (one job; every copy of it in every run):",
            "",
            "| dump | analyses | seconds (median) | min–max |",
            "|---|---|---|---|",
        ]
        for name, secs in sorted(per.items()):
            lines.append(
                f"| {name} | {len(secs)} | {statistics.median(secs):.2f} |"
                f" {min(secs):.2f}–{max(secs):.2f} |"
            )
        lines.append("")
    return lines


def _short(arg: str) -> str:
    """Paths shortened for the table: the corpus root and the tool paths are noise."""
    home = str(Path.home())
    if arg.startswith(home):
        arg = "~" + arg[len(home) :]
    if "/" in arg and arg.endswith(("kcrash", "crash", "drgn-crash")):
        arg = arg.rsplit("/", 1)[1]
    return arg


def _scaling_pairs(entries: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(small, big) pairs: the 4 GB scenario against the same scenario, format and kernel."""
    pairs = []
    for big in entries:
        if big["scenario"] != SCALING_BIG:
            continue
        for small in entries:
            if (
                small["scenario"] == SCALING_SMALL
                and small["kernel"] == big["kernel"]
                and small["format"] == big["format"]
                and small["compression"] == big["compression"]
            ):
                pairs.append((small, big))
    return pairs


def _scaling_lines(
    entries: list[dict[str, Any]], results: dict[tuple[str, str], Result]
) -> list[str]:
    out = []
    for small, big in _scaling_pairs(entries):
        sr, br = (small.get("guest") or {}).get("ram_mb"), (big.get("guest") or {}).get("ram_mb")
        out += [
            f"`{big['id']}` ({br} MB guest, {big.get('size', 0) / 1e6:.0f} MB dump) against "
            f"`{small['id']}` ({sr} MB guest, {small.get('size', 0) / 1e6:.0f} MB dump):",
            "",
            "| command | small | big | time ratio big/small | read small | read big |",
            "|---|---|---|---|---|---|",
        ]
        for tool in TOOLS:
            a, b = results.get((small["id"], tool)), results.get((big["id"], tool))
            out.append(
                f"| {tool} | {_fmt_wall(a)} | {_fmt_wall(b)} | "
                f"{_ratio(b.wall() if b else None, a.wall() if a else None)} | "
                f"{_fmt_read(a)} | {_fmt_read(b)} |"
            )
        out.append("")
    return out


def _goal(ok: bool | None) -> str:
    return "—" if ok is None else ("**met**" if ok else "**not met**")


def _goals(
    entries: list[dict[str, Any]],
    results: dict[tuple[str, str], Result],
    batch: dict[int, list[float]] | None,
) -> list[tuple[str, str, str]]:
    """The goals of issues 8 and 19, each judged on every measured dump (met only if met
    on all).  Time ratios are judged on wall time; the CPU-time ratio is printed beside
    it because on a shared machine it is the steadier of the two."""

    def ratio_goal(
        tool: str, ref: str, limit: float, what: str = "time"
    ) -> tuple[str, bool | None]:
        parts, oks = [], []
        for e in entries:
            r, rr = results.get((e["id"], tool)), results.get((e["id"], ref))
            if what == "rss":
                a, b = (r.rss_mb() if r else None), (rr.rss_mb() if rr else None)
                if a is None or b is None:
                    parts.append(f"{e['id']}: not measurable")
                    oks.append(False)
                    continue
                parts.append(f"{e['id']}: {a:.0f} / {b:.0f} MB = {a / b:.2f}×")
                oks.append(a / b <= limit)
                continue
            w, rw = (r.wall() if r else None), (rr.wall() if rr else None)
            c, rc = (r.cpu() if r else None), (rr.cpu() if rr else None)
            if w is None or rw is None:
                parts.append(f"{e['id']}: not measurable")
                oks.append(False)
                continue
            cpu = f", CPU {c / rc:.2f}×" if c and rc else ""
            parts.append(f"{e['id']}: {w / rw:.2f}×{cpu}")
            oks.append(w / rw <= limit)
        if all(p.endswith("not measurable") for p in parts):
            return "; ".join(parts), None  # skipped rows: no verdict
        return "; ".join(parts), bool(oks) and all(oks)

    goals = []
    m, ok = ratio_goal(KCRASH_ANALYZE, CRASH, 0.10)
    goals.append(("(8) `kcrash analyze` ≤ 0.1× crash's `sys; bt; log`", m, _goal(ok)))
    m, ok = ratio_goal(KCRASH_ANALYZE, DRGN_CRASH, 0.8)
    goals.append(
        ("(19) `kcrash analyze` with debuginfo ≤ 0.8× drgn-crash's `sys; bt; log`", m, _goal(ok))
    )
    m, ok = ratio_goal(KCRASH_ANALYZE_WARM, DRGN_CRASH, 0.8)
    goals.append(
        ("(19) the same, a later dump of the same build (cache warm) ≤ 0.8×", m, _goal(ok))
    )
    m, ok = ratio_goal(KCRASH_ANALYZE_NODEBUG, DRGN_CRASH, 0.6)
    goals.append(("(19) `kcrash analyze --no-debuginfo` ≤ 0.6× drgn-crash's", m, _goal(ok)))
    for tool in (KCRASH_ANALYZE, KCRASH_ANALYZE_NODEBUG):
        m, ok = ratio_goal(tool, DRGN_CRASH, 0.9, "rss")
        goals.append((f"(19) `{tool}` peak RSS ≤ 0.9× drgn-crash's", m, _goal(ok)))

    parts, oks = [], []
    for e in entries:
        r = results.get((e["id"], KCRASH_ANALYZE_NODEBUG))
        w = r.wall() if r else None
        parts.append(f"{e['id']}: {w:.2f} s" if w is not None else f"{e['id']}: failed")
        oks.append(w is not None and w < 0.5)
    goals.append(
        ("(8) no-debuginfo `kcrash analyze` under 0.5 s", "; ".join(parts), _goal(all(oks)))
    )

    pairs = _scaling_pairs(entries)
    if pairs:
        parts, oks = [], []
        for small, big in pairs:
            for tool in (KCRASH_ANALYZE, KCRASH_ANALYZE_NODEBUG):
                a, b = results.get((small["id"], tool)), results.get((big["id"], tool))
                aw, bw = (a.wall() if a else None), (b.wall() if b else None)
                if aw and bw:
                    parts.append(f"{tool}: {bw / aw:.2f}×")
                    oks.append(bw / aw <= 1.1)
                else:
                    parts.append(f"{tool}: not measurable")
                    oks.append(False)
        goals.append(
            ("(8) 4 GB-guest dump ≤ 1.1× the smaller guest's", "; ".join(parts), _goal(all(oks)))
        )
    else:
        goals.append(
            (
                "(8) 4 GB-guest dump ≤ 1.1× the smaller guest's",
                "no 4 GB dump in this run (corpus lacks null-deref-4g?)",
                _goal(None),
            )
        )

    goal = "(19) `kcrash batch` with 2 jobs ≥ 1.8× the throughput of 1"
    if batch and batch.get(1) and batch.get(2):
        one, two = statistics.median(batch[1]), statistics.median(batch[2])
        ratio = two / one if one else 0.0
        goals.append(
            (goal, f"{two:.1f} vs {one:.1f} dumps/min = {ratio:.2f}×", _goal(ratio >= 1.8))
        )
    else:
        goals.append((goal, "not run", _goal(None)))
    return goals


# ---------------------------------------------------------------- main


#: The other benchmarks, run after this one's rows so one command measures all of issue 19:
#: (name, title, script, takes ``-n`` and ``--no-write``).  Each writes its own
#: ``bench/results/<date>-<name>.md`` too (unless ``--no-write``); its printed Markdown
#: becomes a section of this result file.
SECTIONS: tuple[tuple[str, str, str, bool], ...] = (
    ("scale", "Scale scenarios (bench/scale.py)", "scale.py", True),
    ("big-log", "Oops text at scale (bench/big_log.py)", "big_log.py", False),
    ("hang", "Cost of the wait-for graph (bench/hang_cost.py)", "hang_cost.py", True),
    ("memslab", "Cost of the memory and slab analysis (bench/memslab.py)", "memslab.py", True),
)


def run_sections(
    names: list[str], rounds: int, write: bool, timeout: float, log: Callable[[str], None]
) -> list[tuple[str, str]]:
    """Run the other benchmark scripts, one child each; (title, Markdown) per script.

    A script that is absent (``scale.py`` comes from another branch) or fails is a
    section that says so, never a lost run."""
    out = []
    for name, title, script, takes_rounds in SECTIONS:
        if name not in names:
            continue
        path = REPO / "bench" / script
        if not path.exists():
            log(f"bench: {script} is not in this tree: section '{name}' skipped")
            out.append((title, f"Not run: `bench/{script}` is not in this tree."))
            continue
        argv = [sys.executable, str(path)]
        if takes_rounds:
            argv += ["-n", str(rounds)] + ([] if write else ["--no-write"])
        env = dict(
            os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "corpus"), str(REPO / "src")])
        )
        log(f"bench: running {' '.join(argv[1:])}")
        start = time.monotonic()
        try:
            p = subprocess.run(
                argv, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO
            )
        except subprocess.TimeoutExpired:
            out.append((title, f"Not finished: `bench/{script}` ran past {timeout:g} s."))
            continue
        took = time.monotonic() - start
        failed = ""
        if p.returncode != 0:
            last = (p.stderr.strip().splitlines() or ["no message"])[-1]
            failed = f"`bench/{script}` exited {p.returncode}: {last}"
            log(f"bench: {script} failed: {last}")
            if not p.stdout.strip():
                out.append((title, f"Failed: {failed}"))
                continue
            # a script that measured but had a row fail (scale.py: a peer that cannot
            # open a capture) still printed its tables: they are kept, with the exit said
            failed = f"Some rows failed ({failed}); what it measured:\n\n"
        body = [
            ln if not ln.startswith("#") else "#" * 2 + ln  # its headings below ours
            for ln in p.stdout.splitlines()
            if not ln.startswith("written ")
        ]
        reproduce = f"`PYTHONPATH=corpus python {' '.join(['bench/' + script, *argv[2:]])}`"
        out.append(
            (
                title,
                f"Reproduce: {reproduce} ({took:.0f} s, load {_loadavg()}).\n\n"
                + failed
                + "\n".join(body),
            )
        )
    return out


def load_entries(ids: list[str] | None) -> list[dict[str, Any]]:
    """Manifest entries for ``ids`` (default: the DEFAULT_DUMPS that exist)."""
    try:
        import kcrash_corpus
    except ImportError:
        sys.path.insert(0, str(REPO / "corpus"))
        import kcrash_corpus
    try:
        entries = {e["id"]: e for e in kcrash_corpus.load()}
    except kcrash_corpus.CorpusMissingError as e:
        sys.exit(f"bench: {e}")
    if ids:
        missing = [i for i in ids if i not in entries]
        if missing:
            sys.exit(
                f"bench: not in the corpus manifest: {', '.join(missing)}; "
                f"have: {', '.join(sorted(entries))}"
            )
        return [entries[i] for i in ids]
    chosen = [entries[i] for i in DEFAULT_DUMPS if i in entries]
    if not chosen:
        sys.exit("bench: none of the default dumps is in the corpus; pass --dumps")
    return chosen


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dumps", nargs="+", metavar="ID", help="corpus ids (default: %(default)s)")
    p.add_argument("-n", type=int, default=5, help="measured rounds (default 5)")
    p.add_argument("--timeout", type=float, default=300, help="seconds per child (default 300)")
    p.add_argument("--no-batch", action="store_true", help="skip the batch throughput part")
    p.add_argument(
        "--skip",
        nargs="+",
        default=[],
        choices=TOOLS,
        metavar="ROW",
        help="rows not to measure, e.g. 'crash sys;bt;log' (5 s a run, 18x the others)",
    )
    p.add_argument(
        "--batch-dumps",
        nargs="+",
        metavar="ID",
        help="dumps for the batch part (default: every kdump-zlib dump of deb12)",
    )
    p.add_argument("--batch-rounds", type=int, default=3)
    p.add_argument(
        "--batch-repeat",
        type=int,
        default=2,
        help="each batch dump is linked this many times (longer runs, steadier rates)",
    )
    p.add_argument("--out", type=Path, help="result file (default bench/results/<date>.md)")
    p.add_argument("--no-write", action="store_true", help="print only")
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=15.0,
        metavar="S",
        help="before each run, wait up to S s for no other runnable task (default 15; 0: off)",
    )
    p.add_argument(
        "--sections",
        nargs="*",
        default=[n for n, *_ in SECTIONS],
        metavar="NAME",
        help="the other benchmarks to run after the rows (default: all of "
        + ", ".join(n for n, *_ in SECTIONS)
        + "); none with --sections alone",
    )
    p.add_argument("--section-rounds", type=int, default=3, help="their rounds (default 3)")
    args = p.parse_args(argv)
    entries = load_entries(args.dumps)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    info = machine_info(entries)
    # ignore_cleanup_errors: a batch's fork server may still be writing byte-code there
    with tempfile.TemporaryDirectory(prefix="kcrash-bench-", ignore_cleanup_errors=True) as tmp:
        scratch = Path(tmp)
        cases = [c for e in entries for c in make_cases(e, scratch) if c.tool not in args.skip]
        results = measure(cases, args.n, scratch, args.timeout, log, args.quiet_wait)
        batch = None
        batch_note = ""
        batch_details: dict[int, list[dict[str, Any]]] = {}
        if not args.no_batch:
            import kcrash_corpus

            all_entries = {e["id"]: e for e in kcrash_corpus.load()}
            if args.batch_dumps:
                bentries = [all_entries[i] for i in args.batch_dumps]
            else:
                bentries = [
                    e
                    for e in all_entries.values()
                    if e["kernel"] == "deb12"
                    and e["format"] == "kdump"
                    and e["compression"] == "zlib"
                ]
            batch = measure_batch(
                bentries,
                (1, 2),
                args.batch_rounds,
                scratch,
                args.timeout * len(bentries) * args.batch_repeat,
                log,
                args.quiet_wait,
                args.batch_repeat,
                batch_details,
            )
            scenarios = ", ".join(sorted(e["scenario"] for e in bentries))
            batch_note = (
                f"{len(bentries)} corpus dumps ({scenarios})"
                f", each linked {args.batch_repeat}× into DIR ({len(bentries) * args.batch_repeat}"
                " analyses per run), vmlinux found through `--debuginfo`; median of"
                f" {args.batch_rounds} interleaved runs per job count"
            )
    sections = run_sections(
        args.sections, args.section_rounds, not args.no_write, args.timeout * 20, log
    )
    command = "PYTHONPATH=corpus python bench/run.py" + (
        " " + " ".join(sys.argv[1:]) if argv is None and sys.argv[1:] else ""
    )
    info["load average"] = f"{info.pop('load')} at start, {_loadavg()} at end (1/5/15 min)"
    text, goals = render(
        info, entries, results, batch, args.n, command, batch_note, batch_details, sections
    )
    print(text)
    if not args.no_write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        out = args.out or RESULTS / f"{dt.date.today().isoformat()}.md"
        out.write_text(text)
        raw = {
            "machine": info,
            "rounds": args.n,
            "results": [
                {
                    **{k: v for k, v in asdict(r).items() if k != "samples"},
                    "samples": [asdict(s) for s in r.samples],
                }
                for r in results.values()
            ],
            "batch_dumps_per_min": batch,
            "batch_runs": batch_details,
            "sections": [{"title": t, "markdown": b} for t, b in sections],
            "goals": goals,
        }
        out.with_suffix(".json").write_text(json.dumps(raw, indent=1) + "\n")
        log(f"bench: wrote {out} and {out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
