"""How the cost grows with the machine (issue 19): CPUs, tasks, memory, log size.

Usage::

    PYTHONPATH=corpus python bench/scale.py                 # every scale dump present, 3 rounds
    PYTHONPATH=corpus python bench/scale.py --only tasks -n 1 --no-write

Each scale dump of the corpus is measured beside the small dump of the same crash (same
kernel, same capture path), with the same conventions as ``bench/run.py`` (whose measuring
code this reuses): interleaved rounds after a discarded warm-up, one child per run in a
fresh HOME, median wall time, CPU time, busy, peak RSS and bytes read. The rows:

| row | command |
|---|---|
| kcrash analyze | ``kcrash analyze VMCORE VMLINUX --format json`` |
| kcrash analyze --no-debuginfo | ``kcrash analyze VMCORE --no-debuginfo --format json`` |
| kcrash sys, kcrash sys --no-debuginfo | ``kcrash sys VMCORE VMLINUX`` (PANIC from the log's end) |
| kcrash ps | ``kcrash ps VMCORE VMLINUX`` |
| kcrash bt -a | ``kcrash bt VMCORE VMLINUX -a`` |
| kcrash / crash / drgn-crash sys;bt -a;ps;log | the four commands in one session of each tool |
| kcrash / crash / drgn-crash foreach bt | every task's stack (the tasks scenario only) |

Each row is reported as a ratio to the same row on the small dump (how it scales) and, for
the shared command sets, kcrash's time as a ratio to crash's and drgn-crash's (the peers).
``main(argv)`` is what ``bench/run.py`` calls; the result goes to
``bench/results/<date>-scale.md`` (plus ``<date>-scale.json`` with every sample).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from run import (
    RESULTS,
    Case,
    Result,
    _analyze_check,
    _fmt_busy,
    _fmt_cpu,
    _fmt_read,
    _fmt_rss,
    _fmt_wall,
    _need,
    _ratio,
    _which,
    load_entries,
    machine_info,
    measure,
)


@dataclass(frozen=True)
class ScaleDump:
    """One scale dump and the small dump it is compared with (same crash, same capture)."""

    name: str  #: --only key
    dump: str  #: corpus id of the scale dump
    small: str  #: corpus id of the small case
    what: str  #: what is big about it
    foreach: bool = False  #: also measure `foreach bt` (every task's stack)
    #: the boot's first record ("Linux version …") is still in the log; a full ring has
    #: overwritten it, so the session's `log` cannot show it there
    banner: bool = True


#: The scale scenarios of tables.SCALE_SCENARIOS, each with its small case.
SCALE_DUMPS: tuple[ScaleDump, ...] = (
    ScaleDump(
        "cpus-8",
        "deb12/smp8-sysrq/qemu-kdump",
        "deb12/sysrq/qemu-kdump",
        "8 vCPUs, QEMU capture (small: 2 vCPUs)",
    ),
    ScaleDump(
        "cpus-16",
        "deb12/smp16-sysrq/qemu-kdump",
        "deb12/sysrq/qemu-kdump",
        "16 vCPUs, QEMU capture (small: 2 vCPUs)",
    ),
    ScaleDump(
        "tasks",
        "deb12/crowd-hung-task/kdump-zlib",
        "deb12/mutex-owner-waits/kdump-zlib",
        "10,000+ tasks, 6,000+ of them in D state behind one mutex (small: 60 tasks, 2 hung)",
        foreach=True,
    ),
    ScaleDump(
        "memory",
        "deb12/null-deref-16g/qemu-kdump",
        "deb12/null-deref/qemu-kdump",
        "16 GB guest, 15.6 GB touched, QEMU capture of every page (small: 512 MB)",
    ),
    ScaleDump(
        "log",
        "deb12/log-full/qemu-kdump",
        "deb12/null-deref/qemu-kdump",
        "32 MB kernel log ring buffer, full (small: Debian's 128 KB, half used)",
        banner=False,
    ),
)

SESSION = "sys;bt -a;ps;log"
KCRASH_ANALYZE = "kcrash analyze"
KCRASH_NODEBUG = "kcrash analyze --no-debuginfo"
KCRASH_SYS = "kcrash sys"
KCRASH_SYS_NODEBUG = "kcrash sys --no-debuginfo"
KCRASH_PS = "kcrash ps"
KCRASH_BT_A = "kcrash bt -a"
KCRASH_SESSION = f"kcrash {SESSION}"
CRASH_SESSION = f"crash {SESSION}"
DRGN_SESSION = f"drgn-crash {SESSION}"
KCRASH_FOREACH = "kcrash foreach bt"
CRASH_FOREACH = "crash foreach bt"
DRGN_FOREACH = "drgn-crash foreach bt"
#: kcrash's rows compared with the peers' rows running the same commands.
PEERS: tuple[tuple[str, str, str], ...] = (
    (KCRASH_SESSION, CRASH_SESSION, DRGN_SESSION),
    (KCRASH_ANALYZE, CRASH_SESSION, DRGN_SESSION),
    (KCRASH_NODEBUG, CRASH_SESSION, DRGN_SESSION),
    (KCRASH_FOREACH, CRASH_FOREACH, DRGN_FOREACH),
)


def make_cases(
    entry: dict[str, Any], cmd_dir: Path, foreach: bool, banner: bool = True
) -> list[Case]:
    """The measured commands for one dump (``foreach`` adds the every-task stacks)."""
    vmcore, vmlinux, i = entry["path"], entry["vmlinux"], entry["id"]
    kc, crash, drgn = _which("kcrash"), _which("crash"), _which("drgn-crash")
    crash_cmds = cmd_dir / "crash-session.cmds"
    drgn_cmds = cmd_dir / "drgn-session.cmds"
    crash_cmds.write_text("sys\nbt -a\nps\nlog\nquit\n")
    drgn_cmds.write_text("sys\nbt -a\nps\nlog\nq\n")
    session_ok = _need("PANIC:", "#0", *(["Linux version"] if banner else []), "COMM")
    cases = [
        Case(i, KCRASH_ANALYZE, [kc, "analyze", vmcore, vmlinux, "--format", "json"], None,
             _analyze_check),
        Case(i, KCRASH_NODEBUG, [kc, "analyze", vmcore, "--no-debuginfo", "--format", "json"],
             None, _analyze_check),
        Case(i, KCRASH_SYS, [kc, "sys", vmcore, vmlinux], None, _need("PANIC:")),
        Case(i, KCRASH_SYS_NODEBUG, [kc, "sys", vmcore, "--no-debuginfo"], None,
             _need("PANIC:")),
        Case(i, KCRASH_PS, [kc, "ps", vmcore, vmlinux], None, _need("COMM")),
        Case(i, KCRASH_BT_A, [kc, "bt", vmcore, vmlinux, "-a"], None, _need("#0")),
        Case(i, KCRASH_SESSION, [kc, vmcore, vmlinux, "-c", "sys; bt -a; ps; log"], None,
             session_ok),
        Case(i, CRASH_SESSION, [crash, "-s", "-i", str(crash_cmds), vmlinux, vmcore], None,
             session_ok),
        Case(i, DRGN_SESSION, [drgn, vmlinux, vmcore], str(drgn_cmds), session_ok),
    ]  # fmt: skip
    if foreach:
        crash_fe = cmd_dir / "crash-foreach.cmds"
        drgn_fe = cmd_dir / "drgn-foreach.cmds"
        crash_fe.write_text("foreach bt\nquit\n")
        drgn_fe.write_text("foreach bt\nq\n")
        fe_ok = _need("PID:", "#0")
        cases += [
            Case(i, KCRASH_FOREACH, [kc, vmcore, vmlinux, "-c", "foreach bt"], None, fe_ok),
            Case(i, CRASH_FOREACH, [crash, "-s", "-i", str(crash_fe), vmlinux, vmcore], None,
                 fe_ok),
            Case(i, DRGN_FOREACH, [drgn, vmlinux, vmcore], str(drgn_fe), fe_ok),
        ]  # fmt: skip
    return cases


def _cpu_ratio(a: Result | None, b: Result | None) -> str:
    return _ratio(a.cpu() if a else None, b.cpu() if b else None)


def _wall_ratio(a: Result | None, b: Result | None) -> str:
    return _ratio(a.wall() if a else None, b.wall() if b else None)


def render(
    chosen: list[ScaleDump],
    entries: dict[str, dict[str, Any]],
    results: dict[tuple[str, str], Result],
    rounds: int,
    info: dict[str, str],
) -> str:
    """Markdown: per scale dump, every row beside the small case's, then kcrash / peers."""
    out = [
        f"# Scale benchmark {info['date']}",
        "",
        f"{info['cpu']}, {info['memory']}, {info['os']}; {info['kcrash']}; crash "
        f"{info['crash']}; drgn {info['drgn']}. Load before the run {info['load']}. "
        f"Median of {rounds} "
        "interleaved rounds after a discarded warm-up; busy = mean number of other runnable "
        "tasks while the child ran (the machine is shared: wall times are pessimistic where "
        "busy is high; CPU time moves much less).",
        "",
    ]
    for sd in chosen:
        big, small = entries[sd.dump], entries[sd.small]
        out += [
            f"## {sd.name}: {sd.dump}",
            "",
            f"{sd.what}. Dump {big['size'] / 2**20:.0f} MB on disk, small case {sd.small} "
            f"{small['size'] / 2**20:.0f} MB.",
            "",
            "| row | wall | CPU | busy | peak RSS | read | wall / small | CPU / small |",
            "|---|---|---|---|---|---|---|---|",
        ]
        tools = dict.fromkeys(t for (d, t) in results if d == sd.dump)
        for tool in tools:
            r, s = results.get((sd.dump, tool)), results.get((sd.small, tool))
            out.append(
                f"| {tool} | {_fmt_wall(r)} | {_fmt_cpu(r)} | {_fmt_busy(r)} | {_fmt_rss(r)} "
                f"| {_fmt_read(r)} | {_wall_ratio(r, s)} | {_cpu_ratio(r, s)} |"
            )
        out += ["", "| kcrash row | wall / crash | wall / drgn-crash | CPU / crash | "
                "CPU / drgn-crash |", "|---|---|---|---|---|"]  # fmt: skip
        for mine, crash, drgn in PEERS:
            r = results.get((sd.dump, mine))
            if r is None:
                continue
            c, d = results.get((sd.dump, crash)), results.get((sd.dump, drgn))
            out.append(
                f"| {mine} (vs `{crash.split(' ', 1)[1]}`) | {_wall_ratio(r, c)} | "
                f"{_wall_ratio(r, d)} | {_cpu_ratio(r, c)} | {_cpu_ratio(r, d)} |"
            )
        out.append("")
    failed = [r for r in results.values() if r.failed]
    for r in failed:
        out.append(f"- FAILED: {r.tool} on {r.dump_id}: {r.failed}")
    out.append(
        "Reproduce: `PYTHONPATH=corpus python bench/scale.py` (needs the scale boots: "
        "`python -m kcrash_corpus build --only 'deb12/smp*' 'deb12/crowd-hung-task/*' "
        "'deb12/null-deref-16g/*' 'deb12/log-full/*'`)."
    )
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--only", nargs="+", choices=[s.name for s in SCALE_DUMPS], help="scale dumps to measure"
    )
    p.add_argument("-n", type=int, default=3, help="measured rounds (default 3)")
    p.add_argument("--timeout", type=float, default=600, help="seconds per child (default 600)")
    p.add_argument("--quiet-wait", type=float, default=5.0, help="wait for an idle CPU (s)")
    p.add_argument("--no-write", action="store_true", help="print only")
    p.add_argument(
        "--no-foreach",
        action="store_true",
        help="skip `foreach bt` (10,000 stacks: about a minute for drgn-crash, seconds for kcrash)",
    )
    a = p.parse_args(argv)
    chosen = [s for s in SCALE_DUMPS if not a.only or s.name in a.only]
    ids = list(dict.fromkeys(i for s in chosen for i in (s.dump, s.small)))
    entries = {e["id"]: e for e in load_entries(ids)}
    info = machine_info()
    with tempfile.TemporaryDirectory(prefix="kcrash-scale-") as tmp:
        scratch = Path(tmp)
        cases: list[Case] = []
        for sd in chosen:
            for dump_id in (sd.dump, sd.small):
                have = {(c.dump_id, c.tool) for c in cases}
                foreach = sd.foreach and not a.no_foreach
                banner = sd.banner or dump_id == sd.small
                cases += [
                    c
                    for c in make_cases(entries[dump_id], scratch, foreach, banner)
                    if (c.dump_id, c.tool) not in have
                ]

        def log(msg: str) -> None:
            print(msg, file=sys.stderr, flush=True)

        results = measure(cases, a.n, scratch, a.timeout, log, a.quiet_wait)
    text = render(chosen, entries, results, a.n, info)
    print(text)
    if not a.no_write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        stem = RESULTS / f"{dt.date.today().isoformat()}-scale"
        stem.with_suffix(".md").write_text(text)
        raw = [
            {"dump": r.dump_id, "tool": r.tool, "argv": r.argv,
             "samples": [asdict(s) for s in r.samples]}
            for r in results.values()
        ]  # fmt: skip
        stem.with_suffix(".json").write_text(json.dumps({"machine": info, "results": raw}))
        print(f"written {stem}.md", file=sys.stderr)
    return 1 if any(r.failed for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
