"""Record crash's own reading of a dump: the oracle kcrash's answers are compared with.

crash spends nearly all of its 13-20 s start-up in gdb reading the 633 MB vmlinux, so each
dump gets exactly one crash session that runs every command, each redirected to its own file.
"""

from __future__ import annotations

import re
from pathlib import Path

from .tables import ORACLE_COMMANDS
from .util import BuildError, progress, run

#: crash's whole session on one dump. 10,000 tasks (issue 19's crowd-hung-task: `bt -a`, `ps`)
#: outran 300 s at load 25 on the shared 2-core machine; a deadline only, no recipe changes.
CRASH_TIMEOUT = 900


def oracle_file_name(key: str) -> str:
    """File name of one command's output: "bt -a" -> "bt-a.txt"."""
    return re.sub(r"[^A-Za-z0-9]+", "-", key).strip("-") + ".txt"


def run_crash(
    crash: list[str],
    vmlinux: str,
    vmcore: Path,
    out_dir: Path,
    commands: dict[str, str],
    step: str,
    env: dict[str, str] | None = None,
) -> dict[str, str]:
    """Run one crash session over `vmcore`; returns key -> path of that command's output."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {key: out_dir / oracle_file_name(key) for key in commands}
    for p in paths.values():
        p.unlink(missing_ok=True)
    script = (
        "set scroll off\n"
        + "".join(f"{cmd} > {paths[key]}\n" for key, cmd in commands.items())
        + "quit\n"
    )
    proc = run(
        [*crash, "-s", "--no_crashrc", vmlinux, vmcore],
        step,
        CRASH_TIMEOUT,
        input_text=script,
        env=env,
        check=False,
    )
    (out_dir / "crash.stdout").write_text(proc.stdout or "")
    (out_dir / "crash.stderr").write_text(proc.stderr or "")
    missing = [k for k, p in paths.items() if not p.exists()]
    if missing:
        tail = " | ".join(((proc.stdout or "") + (proc.stderr or "")).strip().splitlines()[-6:])
        raise BuildError(
            step, f"crash wrote no output for {missing} (exit {proc.returncode}): {tail}"
        )
    return {k: str(p) for k, p in paths.items()}


def record_oracle(
    vmlinux: str,
    vmcore: Path,
    out_dir: Path,
    entry_id: str,
    commands: dict[str, str] = ORACLE_COMMANDS,
) -> dict[str, str]:
    """crash 8.0.2 (Debian 12) output of `sys`, `bt`, `bt -a`, `log`, `ps`, `mod` and the
    scenario's own commands (`kmem -s` …)."""
    step = f"oracle {entry_id}"
    progress(step, "crash " + "; ".join(commands.values()))
    return run_crash(["crash"], vmlinux, vmcore, out_dir, commands, step)


def record_incomplete(
    crash: list[str], vmlinux: str, vmcore: Path, out_dir: Path, entry_id: str
) -> dict[str, str]:
    """A dump crash is known to read only in part (a stale makedumpfile excluded pages the
    kernel needed): crash's usual readings plus its `page excluded` complaints
    (`page-excluded`), so a test can assert both that crash still stumbles on it and that
    kcrash reads it. A crash that no longer complains is an error: the entry would no
    longer test anything."""
    step = f"oracle {entry_id} (crash expected to stumble)"
    progress(step, "crash " + "; ".join(ORACLE_COMMANDS.values()))
    try:
        oracle = run_crash(crash, vmlinux, vmcore, out_dir, ORACLE_COMMANDS, step)
    except BuildError:  # crash gave up before some command: keep what it wrote
        oracle = {
            key: str(out_dir / oracle_file_name(key))
            for key in ORACLE_COMMANDS
            if (out_dir / oracle_file_name(key)).exists()
        }
    said = "".join(
        (out_dir / f).read_text(errors="replace")
        for f in ("crash.stdout", "crash.stderr")
        if (out_dir / f).exists()
    )
    excluded = [line for line in said.splitlines() if "page excluded" in line]
    if not excluded:
        raise BuildError(step, f"crash read {vmcore.name} without a 'page excluded' error")
    path = out_dir / "page-excluded.txt"
    path.write_text("\n".join(excluded) + "\n")
    oracle["page-excluded"] = str(path)
    return oracle
