"""Build (or reuse) the corpus: plan boots from the tables, run them, write the manifest.

A *boot* is one guest run of one scenario on one kernel with one capture path; it yields one
dump per format (kdump boots write several formats from the same crash). Each boot keeps a
``result.json`` with the recipe hash of its inputs: when the recipe is unchanged and the
files are there, nothing is rebuilt. The manifest is rewritten after every boot, so other
work can start on the first dumps while the rest is still building.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import fnmatch
import os
import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import MANIFEST_NAME, SCHEMA_VERSION, crash_arm64
from .guest import PANIC_END, capture_script, guest_formats, job_script, run_boot
from .kernel import EXTRA_MODULES, KernelBuilder, KernelState, tree_hash
from .oracle import record_incomplete, record_oracle, run_crash
from .reencode import REENCODER_VERSION, reencode
from .rootfs import prepare as prepare_rootfs
from .tables import (
    ARCHES,
    CAPTURE_CMDLINE,
    CRASHKERNEL,
    CULPRIT_FUNCTION,
    FORMATS,
    KERNELS,
    ORACLE_COMMANDS,
    PANIC_WORDING,
    RECIPE_VERSION,
    SCENARIOS,
    Kernel,
    Scenario,
)
from .trixie import SUITE as TRIXIE_SUITE
from .trixie import TrixieTools
from .trixie import prepare as prepare_trixie
from .util import (
    BuildError,
    need_tools,
    progress,
    read_json,
    recipe_hash,
    rm_rf,
    run,
    sha256_file,
    write_json,
)

#: Manifest `oracle_crash`: which crash wrote an entry's sys/bt/log/ps/mod files.
ORACLE_CRASH = {False: "crash 8.0.2 (Debian 12)", True: "crash 8.0.6 (Debian 13)"}

#: `--only` name of the live tests' root file system (rootfs.py), built beside the boots.
LIVE_STEP = "live"

#: Boots built first: other work is blocked until these exist.
PRIORITY = ("deb12/null-deref/kdump", "deb12/sysrq/kdump")


@dataclass(frozen=True)
class Boot:
    """One guest run: a scenario on a kernel with one capture path."""

    kernel: Kernel
    scenario: Scenario
    capture: str
    formats: tuple[str, ...]

    @property
    def id(self) -> str:
        return f"{self.kernel.name}/{self.scenario.id}/{self.capture}"

    @property
    def hosts_tree(self) -> str | None:
        """Host-readiness trees come from the first kernel's guests only (one per name)."""
        return self.scenario.hosts_tree if self.kernel == KERNELS[0] else None


def plan() -> list[Boot]:
    """Every boot the tables ask for, priority boots first, then the slowest guests."""
    boots: list[Boot] = []
    for kernel in KERNELS:
        for sc in SCENARIOS:
            if kernel.scenarios is not None and sc.id not in kernel.scenarios:
                continue
            if sc.kernels is not None and kernel.name not in sc.kernels:
                continue
            if sc.arch != kernel.arch:  # a row's wording and class are its arch's
                continue
            formats = kernel.formats_of(sc)
            if not formats:
                continue
            captures = {FORMATS[f]["capture"] for f in formats}
            if len(captures) != 1:
                raise ValueError(f"scenario row {sc.id} mixes capture paths {captures}")
            boots.append(Boot(kernel, sc, str(captures.pop()), formats))
    ids = [b.id for b in boots]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise ValueError(f"duplicate boots in tables: {sorted(dupes)}")
    kernel_rank = {k.name: i for i, k in enumerate(KERNELS)}

    def rank(b: Boot) -> tuple[int, int, int]:
        prio = PRIORITY.index(b.id) if b.id in PRIORITY else len(PRIORITY)
        return (prio, kernel_rank[b.kernel.name], -len(b.formats) - b.scenario.ram_mb // 1024)

    return sorted(boots, key=rank)


def oracle_commands(sc: Scenario) -> dict[str, str]:
    """crash's commands recorded for a scenario's dumps: ORACLE_COMMANDS plus its own."""
    return {**ORACLE_COMMANDS, **dict(sc.oracle)}


def _tool_versions() -> dict[str, str]:
    out = run(
        [
            "dpkg-query",
            "-W",
            "-f",
            "${Package} ${Version}\n",
            "crash",
            "makedumpfile",
            "kexec-tools",
            "qemu-system-x86",
            "busybox-static",
        ],
        "host tools",
        30,
    )
    versions = dict(line.split(" ", 1) for line in out.stdout.splitlines() if " " in line)
    # A foreign architecture's emulator, asked apart (check=False: a host without it builds
    # the x86 kernels all the same; its boots then stop at need_tools).
    foreign = run(
        ["dpkg-query", "-W", "-f", "${Package} ${Version}\n",
         *sorted({a.qemu_package for a in ARCHES.values()})],
        "host tools", 30, check=False,
    )  # fmt: skip
    for line in foreign.stdout.splitlines():
        name, _, version = line.partition(" ")
        if version:
            versions[name] = version
    return versions


def _punch_zero_holes(path: Path, step: str) -> None:
    """Turn a raw copy's runs of zero pages into holes (`fallocate --dig-holes`): the bytes
    read back are the same (the sha256 too), but a 1 GB guest's never-used memory no longer
    takes disk space."""
    run(["fallocate", "--dig-holes", str(path)], step, 300)


@contextmanager
def build_lock(root: Path) -> Iterator[None]:
    """An exclusive lock on the cache for whatever writes it (a build, an adopt): two of them
    (say CI and a developer) writing the same dumps, oracle files or manifest at once would
    corrupt each other. Waits, saying which process holds it."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".build.lock").open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "?"
            progress("lock", f"another build (pid {holder}) holds {lock.name}; waiting")
            fcntl.flock(lock, fcntl.LOCK_EX)
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        yield


class Builder:
    """Runs the plan with a small thread pool; writes results and the manifest."""

    def __init__(self, root: Path, jobs: int, only: list[str] | None, ps_trixie: bool) -> None:
        self.root = root
        self.jobs = jobs
        self.only = only
        self.ps_trixie = ps_trixie
        self.lock = threading.Lock()
        self.module_lock = threading.Lock()
        self.kernels: dict[str, KernelState] = {}
        self.trixie: TrixieTools | None = None
        #: crash built for arm64 dumps (crash_arm64.py), prepared when an arm64 boot runs.
        self.crash_arm64: crash_arm64.CrashArm64 | None = None
        self.crash_arm64_lock = threading.Lock()
        #: The arm64 boots' oracles (see do_boot), and the pool they wait in.
        self.late_pool: ThreadPoolExecutor | None = None
        self.late: list[tuple[str, Future[None]]] = []
        self.tools = _tool_versions()
        self.errors: list[str] = []

    # -- helpers ----------------------------------------------------------------------------
    def boot_dir(self, boot: Boot) -> Path:
        return self.root / "dumps" / boot.id

    def selected(self, boots: list[Boot]) -> list[Boot]:
        if not self.only:
            return boots
        return [
            b
            for b in boots
            if any(fnmatch.fnmatch(b.id, p) or b.id.startswith(p) for p in self.only)
        ]

    def guest_recipe(self, boot: Boot, state: KernelState) -> str:
        sc = boot.scenario
        arch = ARCHES.get(boot.kernel.arch)
        return recipe_hash(
            RECIPE_VERSION,
            state.recipe,
            sc.recipe(),
            boot.capture,
            boot.formats,
            job_script(sc, boot.capture, boot.id, boot.hosts_tree, boot.kernel.arch),
            capture_script(guest_formats(boot.formats, boot.kernel.derived_formats())),
            CAPTURE_CMDLINE,
            CRASHKERNEL,
            self.tools.get("qemu-system-x86"),
            REENCODER_VERSION if set(boot.formats) & set(boot.kernel.derived_formats()) else None,
            # Only a scenario with an extra module hashes it (the others' recipes stay as
            # they were).
            *([tree_hash(EXTRA_MODULES[sc.extra_module])] if sc.extra_module else []),
            # A foreign kernel's QEMU (the x86 boots' recipes stay as they were).
            *([self.tools.get(arch.qemu_package), PANIC_END] if arch else []),
        )

    def oracle_recipe(self, guest_recipe: str, kernel: Kernel, sc: Scenario) -> str:
        # A scenario without commands of its own hashes ORACLE_COMMANDS alone, as before.
        commands = oracle_commands(sc)
        if kernel.arch == "arm64":
            return recipe_hash(
                guest_recipe, commands, crash_arm64.VERSION, crash_arm64.TARGET, "arm64"
            )
        if kernel.userland == TRIXIE_SUITE:
            # crash 8.0.6 is this kernel's one oracle (8.0.2 predates 6.12).
            assert self.trixie is not None
            return recipe_hash(guest_recipe, commands, self.trixie.versions, "trixie")
        return recipe_hash(
            guest_recipe,
            commands,
            self.tools.get("crash"),
            self.trixie.versions if self.trixie and self.ps_trixie else None,
        )

    def _oracle(
        self, boot: Boot, state: KernelState, dump: Path, tmp: Path, entry_id: str, fmt: str
    ) -> dict[str, str]:
        """crash's reading of one dump: Debian 12's crash 8.0.2 plus 8.0.6's `ps` for the
        Debian 12/11 kernels; trixie's crash 8.0.6 alone for a trixie-userland kernel.
        A format crash is known to read only in part adds crash's complaints.
        An arm64 kernel's dumps: crash 8.0.6 built for ARM64 (crash_arm64.py), every command
        in one session; its `ps` is also `ps-trixie` (the same crash as x86's ps-trixie)."""
        if boot.kernel.arch == "arm64":
            self.crash_arm64 = self._prepare_crash_arm64()
            crash, label = self.crash_arm64.crash, self.crash_arm64.label
            return self._crash_806(crash, label, boot, state, dump, tmp, entry_id)
        if boot.kernel.userland == TRIXIE_SUITE:
            assert self.trixie is not None
            if FORMATS[fmt].get("crash_incomplete"):
                return record_incomplete(self.trixie.crash, state.vmlinux, dump, tmp, entry_id)
            crash, label = self.trixie.crash, "crash 8.0.6"
            return self._crash_806(crash, label, boot, state, dump, tmp, entry_id)
        oracle = record_oracle(state.vmlinux, dump, tmp, entry_id, oracle_commands(boot.scenario))
        if self.ps_trixie and self.trixie:
            # crash 8.0.2's ps lists two tasks on Debian 6.1; 8.0.6's is right. Best
            # effort: the entry stands without it.
            try:
                extra = run_crash(
                    self.trixie.crash,
                    state.vmlinux,
                    dump,
                    tmp,
                    {"ps-trixie": "ps"},
                    f"oracle {entry_id} (crash 8.0.6)",
                )
                oracle.update(extra)
            except BuildError as exc:
                progress("warning", str(exc))
        return oracle

    def _crash_806(
        self,
        crash: list[str],
        label: str,
        boot: Boot,
        state: KernelState,
        dump: Path,
        tmp: Path,
        entry_id: str,
    ) -> dict[str, str]:
        """One crash 8.0.6 session (trixie's, or the one built for ARM64) is a kernel's only
        oracle: every command, and its ps is also the "ps-trixie" the tests compare with."""
        step = f"oracle {entry_id} ({label})"
        commands = oracle_commands(boot.scenario)
        progress(step, "crash " + "; ".join(commands.values()))
        oracle = run_crash(crash, state.vmlinux, dump, tmp, commands, step)
        oracle["ps-trixie"] = oracle["ps"]
        return oracle

    # -- one boot -----------------------------------------------------------------------------
    def do_boot(self, boot: Boot, state_f: Future[KernelState]) -> None:
        state = state_f.result()
        bdir = self.boot_dir(boot)
        rfile = bdir / "result.json"
        grecipe = self.guest_recipe(boot, state)
        result: dict[str, Any] | None = read_json(rfile)
        if (
            result
            and result.get("guest_recipe") == grecipe
            and all(Path(d["path"]).exists() for d in result["dumps"].values())
            and set(result["dumps"]) == set(boot.formats)
        ):
            progress(f"guest {boot.id}", "cached")
            fresh = False
        else:
            result = self._capture(boot, state, bdir, grecipe)
            fresh = True
            write_json(rfile, result)
        if boot.kernel.arch == "arm64" and self.late_pool is not None:
            # crash for arm64 dumps may still be building (many minutes cold): its oracle
            # waits in a pool of its own, so this worker goes on to the next guest.
            self.late.append(
                (boot.id, self.late_pool.submit(self._late_oracle, boot, state, result, grecipe))
            )
            return
        self._oracles(boot, state, result, grecipe, fresh)

    def _late_oracle(
        self, boot: Boot, state: KernelState, result: dict[str, Any], grecipe: str
    ) -> None:
        try:
            self._oracles(boot, state, result, grecipe, False)
        except BuildError as exc:
            progress("error", str(exc))
            self.errors.append(str(exc))

    def _oracles(
        self,
        boot: Boot,
        state: KernelState,
        result: dict[str, Any],
        grecipe: str,
        fresh: bool,
    ) -> None:
        """crash's reading of each of a boot's dumps (unless cached), then the manifest."""
        bdir = self.boot_dir(boot)
        rfile = bdir / "result.json"
        orecipe = self.oracle_recipe(grecipe, boot.kernel, boot.scenario)
        for fmt, dump in result["dumps"].items():
            if dump.get("oracle_recipe") == orecipe and all(
                Path(p).exists() for p in dump.get("oracle", {}).values()
            ):
                continue
            entry_id = f"{boot.id.rsplit('/', 1)[0]}/{fmt}"
            # Written aside, then swapped in: a reader never sees a half-written oracle.
            odir = bdir / "oracle" / fmt
            tmp = bdir / "oracle" / f".{fmt}.tmp"
            rm_rf(tmp)
            oracle = self._oracle(boot, state, Path(dump["path"]), tmp, entry_id, fmt)
            rm_rf(odir)
            tmp.replace(odir)
            dump["oracle"] = {k: str(odir / Path(p).name) for k, p in oracle.items()}
            dump["oracle_recipe"] = orecipe
            write_json(rfile, result)
        for fmt, dump in result["dumps"].items():
            if "ps-trixie" not in dump.get("oracle", {}):
                self._retry_ps_trixie(boot, state, bdir, fmt, dump)
                write_json(rfile, result)
        if result.get("host"):
            self._publish_host_tree(boot, Path(result["host"]), fresh)
        self.write_manifest()

    def _retry_ps_trixie(
        self, boot: Boot, state: KernelState, bdir: Path, fmt: str, dump: dict[str, Any]
    ) -> None:
        """crash 8.0.6's ``ps`` of a dump whose first try failed (best effort in
        :meth:`_oracle`: on 2026-11-30 one session outran its time at load 30 and the
        entry stayed without it, so the tests that compare ``ps`` failed on every later
        build).  A cached boot gets it here, one crash session, without a new capture."""
        if not (self.ps_trixie and self.trixie) or boot.kernel.userland == TRIXIE_SUITE:
            return
        if boot.kernel.arch != "x86_64":  # its one oracle is crash 8.0.6 (ps included)
            return
        entry_id = f"{boot.id.rsplit('/', 1)[0]}/{fmt}"
        tmp = bdir / "oracle" / f".{fmt}.ps-trixie.tmp"
        rm_rf(tmp)
        try:
            extra = run_crash(
                self.trixie.crash,
                state.vmlinux,
                Path(dump["path"]),
                tmp,
                {"ps-trixie": "ps"},
                f"oracle {entry_id} (crash 8.0.6, again)",
            )
        except BuildError as exc:
            progress("warning", str(exc))
            return
        odir = bdir / "oracle" / fmt
        dest = odir / Path(extra["ps-trixie"]).name
        Path(extra["ps-trixie"]).replace(dest)
        rm_rf(tmp)
        dump.setdefault("oracle", {})["ps-trixie"] = str(dest)

    def _publish_host_tree(self, boot: Boot, src: Path, fresh: bool) -> None:
        """Copy a guest's host-readiness files to hosts/<tree>/ when new (under the manifest
        lock: the manifest lists those files)."""
        dest = self.root / "hosts" / str(boot.hosts_tree)
        if dest.is_dir() and not fresh:
            return
        with self.lock:
            tmp = dest.with_name(f".{dest.name}.tmp")
            rm_rf(tmp)
            shutil.copytree(src, tmp)
            rm_rf(dest)
            tmp.replace(dest)

    def _capture(self, boot: Boot, state: KernelState, bdir: Path, grecipe: str) -> dict[str, Any]:
        extra = None
        if boot.scenario.extra_module:
            with self.module_lock:  # one build per kernel and module, whichever boot asks first
                extra = KernelBuilder(self.root, boot.kernel).extra_module(
                    state, boot.scenario.extra_module
                )
        kmods = None
        if boot.scenario.kernel_modules:
            with self.module_lock:
                kmods = KernelBuilder(self.root, boot.kernel).kernel_modules(
                    state, boot.scenario.kernel_modules
                )
        rm_rf(bdir)
        bdir.mkdir(parents=True)
        files = run_boot(
            state,
            boot.scenario,
            boot.capture,
            tuple(f for f in boot.formats if f not in boot.kernel.derived_formats()),
            boot.id,
            bdir,
            boot.hosts_tree,
            boot.kernel.derived_formats(),
            extra,
            kmods,
        )
        dumps: dict[str, dict[str, Any]] = {}
        host_mdf = f"makedumpfile {self.tools.get('makedumpfile')} (Debian 12) in the capture"
        host_mdf += " kernel"
        mdf = host_mdf
        if boot.kernel.userland:
            mdf = (
                f"makedumpfile {state.packages.get('makedumpfile')} (Debian {boot.kernel.suite}) "
                "in the capture kernel"
            )
        for fmt in boot.formats:
            if fmt in boot.kernel.derived_formats():
                path = self._derive(boot, fmt, files["kdump-zlib"])
                written_by = (
                    f"kcrash_corpus.reencode {REENCODER_VERSION}: this boot's kdump-zlib dump "
                    f"(makedumpfile -c -d 31) with its pages re-compressed by python "
                    f"{FORMATS[fmt]['compression']}"
                )
                flags = f"{FORMATS[fmt]['flag']} -d 31"
            elif boot.capture == "qemu":
                path = files[fmt]
                qemu = (
                    ARCHES[boot.kernel.arch].qemu_package
                    if boot.kernel.arch in ARCHES
                    else ("qemu-system-x86")
                )
                written_by = f"QEMU {self.tools.get(qemu)} dump-guest-memory"
                flags = f"format={FORMATS[fmt]['qmp']} paging=false"
            elif FORMATS[fmt].get("copy"):
                path = files[fmt]
                _punch_zero_holes(path, f"guest {boot.id}")
                written_by = "busybox cp in the capture kernel (stored sparse on the host)"
                flags = str(FORMATS[fmt]["flag"])
            else:
                path = files[fmt]
                by = host_mdf if FORMATS[fmt].get("makedumpfile") == "host" else mdf
                written_by, flags = by, f"{FORMATS[fmt]['flag']} -d 31"
            dumps[fmt] = {
                "path": str(path),
                "size": path.stat().st_size,
                "sha256": sha256_file(path),
                "written_by": written_by,
                "flags": flags,
            }
        # The zlib dump is always written (derived formats come from it) and kept.
        return {
            "boot": boot.id,
            "guest_recipe": grecipe,
            "built_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "dumps": dumps,
            "dmesg": str(files["dmesg"]) if "dmesg" in files else None,
            "console": str(files["console"]),
            "host": str(files["host"]) if "host" in files else None,
        }

    def _derive(self, boot: Boot, fmt: str, zlib_dump: Path) -> Path:
        """snappy/zstd kdump files: the real zlib dump's pages re-encoded (reencode.py)."""
        step = f"derive {boot.id} {fmt}"
        out = zlib_dump.with_name(f"vmcore.{fmt}")
        progress(step, f"re-encoding {zlib_dump.name} pages as {FORMATS[fmt]['compression']}")
        try:
            reencode(zlib_dump, out, str(FORMATS[fmt]["compression"]))
        except (OSError, ValueError, ImportError) as exc:
            raise BuildError(step, str(exc)) from exc
        return out

    # -- manifest -----------------------------------------------------------------------------
    def entries(self) -> Iterator[dict[str, Any]]:
        for boot in plan():
            result = read_json(self.boot_dir(boot) / "result.json")
            state = self.kernels.get(boot.kernel.name)
            if state is None:
                kj = read_json(self.root / "kernels" / boot.kernel.name / "kernel.json")
                state = KernelState(**kj) if kj else None
            if not result or state is None:
                continue
            sc = boot.scenario
            for fmt, dump in result["dumps"].items():
                if "oracle" not in dump:
                    continue
                f = FORMATS[fmt]
                yield {
                    "id": f"{boot.kernel.name}/{sc.id}/{fmt}",
                    "boot": boot.id,
                    "scenario": sc.id,
                    "kernel": boot.kernel.name,
                    "release": state.release,
                    "build_id": state.build_id,
                    "format": f["format"],
                    "compression": f["compression"],
                    "capture": f["capture"],
                    # makedumpfile -d 31 filters pages; a cp of /proc/vmcore keeps them all.
                    "partial": f["capture"] == "kdump" and not f.get("copy"),
                    "path": dump["path"],
                    "vmlinux": state.vmlinux,
                    "modules_debug_dir": state.modules_debug_dir,
                    "dmesg": result["dmesg"],
                    "console": result["console"],
                    "oracle": dump["oracle"],
                    "oracle_crash": (
                        self._arm64_label()
                        if boot.kernel.arch == "arm64"
                        else ORACLE_CRASH[boot.kernel.userland == TRIXIE_SUITE]
                    ),
                    "expected": {
                        "class": sc.klass,
                        "panic_substring": PANIC_WORDING.get(
                            (boot.kernel.name, sc.id), sc.panic_substring
                        ),
                        "crash_incomplete": bool(f.get("crash_incomplete")),
                        "culprit_function": CULPRIT_FUNCTION.get(sc.id, sc.culprit_function),
                        "culprit_module": sc.culprit_module,
                    },
                    "guest": {
                        "cpus": sc.cpus,
                        "ram_mb": sc.ram_mb,
                        "cmdline_extra": sc.cmdline,
                        "crashkernel": sc.crashkernel if boot.capture == "kdump" else None,
                        "sysctls": sc.sysctls,
                    },
                    "size": dump["size"],
                    "sha256": dump["sha256"],
                    # Only a foreign kernel's entries say it: a missing arch is x86_64.
                    **({"arch": boot.kernel.arch} if boot.kernel.arch != "x86_64" else {}),
                    "written_by": dump["written_by"],
                    "flags": dump["flags"],
                    "recipe_version": RECIPE_VERSION,
                    "recipe": result["guest_recipe"],
                    "built_at": result["built_at"],
                }

    def _prepare_crash_arm64(self) -> crash_arm64.CrashArm64:
        """Build (once, under a lock: the oracles of every arm64 boot wait for it) or reuse
        crash for arm64 dumps."""
        with self.crash_arm64_lock:
            if self.crash_arm64 is None:
                self.crash_arm64 = crash_arm64.prepare(self.root)
            return self.crash_arm64

    def _oracles_stored(self, boot: Boot) -> bool:
        """Every dump of the boot's result.json has crash's output on disk."""
        result = read_json(self.boot_dir(boot) / "result.json")
        return bool(result) and all(
            d.get("oracle") and all(Path(p).exists() for p in d["oracle"].values())
            for d in result["dumps"].values()
        )

    def _side_crash_arm64(self) -> None:
        try:
            self._prepare_crash_arm64()
        except BuildError as exc:
            self.errors.append(str(exc))

    def _arm64_label(self) -> str:
        if self.crash_arm64 is not None:
            return self.crash_arm64.label
        upstream = crash_arm64.VERSION.split("-")[0]
        return f"crash {upstream} target={crash_arm64.TARGET} (Debian {crash_arm64.SUITE} source)"

    def live_record(self) -> dict[str, Any] | None:
        """The live tests' root file system and the crash they run beside kcrash (trixie's
        8.0.6, unpacked for the ps-trixie oracle), when both are built."""
        rootfs = read_json(self.root / "live" / "rootfs.json")
        tools = read_json(self.root / "tools" / TRIXIE_SUITE / "tools.json")
        if not rootfs or not tools:
            return None
        crash = {"crash": str(self.root / "tools" / TRIXIE_SUITE)}
        crash["crash_version"] = tools["versions"].get("crash", "")
        return {**rootfs, **crash}

    def write_manifest(self) -> None:
        with self.lock:
            kernels = {}
            for k in KERNELS:
                kj = read_json(self.root / "kernels" / k.name / "kernel.json")
                if kj:
                    kernels[k.name] = {
                        "release": kj["release"], "suite": kj["suite"],
                        "packages": kj["packages"], "vmlinux": kj["vmlinux"],
                        "vmlinuz": kj["vmlinuz"], "initrd": kj["initrd"],
                        "build_id": kj["build_id"],
                        "modules_debug_dir": kj["modules_debug_dir"],
                        "module_debug_complete": kj.get("module_debug_done", False),
                    }  # fmt: skip
            hosts = {}
            for boot in plan():
                tree = boot.hosts_tree
                hdir = self.root / "hosts" / str(tree)
                if tree and hdir.is_dir():
                    kstate = kernels.get(boot.kernel.name, {})
                    hosts[tree] = {
                        "root": str(hdir), "boot": boot.id, "kernel": boot.kernel.name,
                        "release": kstate.get("release"), "kdump_ready": tree == "ready",
                        "files": sorted("/" + str(p.relative_to(hdir))
                                        for p in hdir.rglob("*") if p.is_file()),
                    }  # fmt: skip
            manifest = {
                "schema_version": SCHEMA_VERSION,
                "recipe_version": RECIPE_VERSION,
                "written_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "root": str(self.root),
                "tools": {
                    **self.tools,
                    **(
                        {f"trixie {k}": v for k, v in self.trixie.versions.items()}
                        if self.trixie
                        else {}
                    ),
                },
                "kernels": kernels,
                "hosts": hosts,
                "live": self.live_record(),
                "entries": list(self.entries()),
            }
            write_json(self.root / MANIFEST_NAME, manifest)

    # -- whole build --------------------------------------------------------------------------
    def build(self) -> int:
        """Build under the cache's exclusive lock (:func:`build_lock`)."""
        with build_lock(self.root):
            return self._build()

    def _build(self) -> int:
        need_tools(
            [
                "qemu-system-x86_64",
                "busybox",
                "cpio",
                "kexec",
                "vmcore-dmesg",
                "makedumpfile",
                "crash",
                "modinfo",
                "apt-get",
                "dpkg-deb",
                "make",
                "gcc",
                "strip",
                "fallocate",
            ],
            "host tools",
        )
        self.root.mkdir(parents=True, exist_ok=True)
        boots = self.selected(plan())
        live = not self.only or LIVE_STEP in self.only
        if not boots and not live:
            raise BuildError("plan", f"no boot matches {self.only}")
        progress("plan", f"{len(boots)} boots: {', '.join(b.id for b in boots)}")
        if live or self.ps_trixie or any(b.kernel.userland == TRIXIE_SUITE for b in boots):
            self.trixie = prepare_trixie(self.root)
        foreign = {ARCHES[b.kernel.arch] for b in boots if b.kernel.arch in ARCHES}
        if foreign:
            need_tools(
                [t for a in foreign for t in (a.qemu, f"{a.cross_compile}gcc")], "host tools"
            )
        if not boots:
            if live:
                self._rootfs()
            self.write_manifest()
            return 0
        if any(b.kernel.arch == "arm64" for b in boots):
            # As many crash sessions at a time as guests. A session is its start-up: crash's
            # gdb reading vmlinux's symbols and DWARF (measured 2026-11-30 at load 4: 47.8 s
            # wall, 32.3 s user, 400 MB; the six commands after it 0.4 s), so one at a time
            # made 17 of them a 15-20 min tail after the last guest on a cold cache.
            self.late_pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="oracle")
        kernel_names = [k.name for k in KERNELS if any(b.kernel.name == k.name for b in boots)]
        first = next(k for k in KERNELS if k.name == kernel_names[0])
        # The first kernel is prepared up front (everything waits on it). The guests run in
        # `jobs` slots; what is mostly downloading and unpacking (the other kernels, every
        # kernel's module debug files, the live root file system) runs in one lane of its
        # own beside them, so that no guest slot waits on the network: on a fresh machine
        # the kernels' packages are about 3 GB.
        self.kernels[first.name] = KernelBuilder(self.root, first).prepare()
        with (
            ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="guest") as pool,
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="fetch") as fetch,
        ):
            state_f: dict[str, Future[KernelState]] = {}
            done_f: Future[KernelState] = Future()
            done_f.set_result(self.kernels[first.name])
            state_f[first.name] = done_f
            futures: list[tuple[str, Future[Any]]] = []
            # In the order the guests need them: the kernels (their boots come after the
            # first kernel's), then what only the tests read.
            for k in KERNELS:
                if k.name in kernel_names and k.name not in state_f:
                    state_f[k.name] = fetch.submit(self._prepare, k)
                    futures.append((f"kernel {k.name}", state_f[k.name]))
            for name in kernel_names:
                futures.append(
                    (
                        f"kernel {name} module debug",
                        fetch.submit(self._module_debug, name, state_f[name]),
                    )
                )
            if live:
                futures.append((LIVE_STEP, fetch.submit(self._rootfs)))
            if any(not self._oracles_stored(b) for b in boots if b.kernel.arch == "arm64"):
                # crash for ARM64 is a compile (most of an hour cold), not a download: it
                # takes a guest slot from the start, the arm64 oracles wait for it (late_pool).
                # Not when every arm64 boot has its oracles (an adopted or kept cache): a
                # recipe that changed still gets crash, from the oracle that needs it.
                futures.append(("crash-arm64", pool.submit(self._side_crash_arm64)))
            for boot in boots:
                futures.append(
                    (boot.id, pool.submit(self._safe_boot, boot, state_f, boot.kernel.name))
                )
            for _name, fut in futures:
                fut.exception()
        if self.late_pool is not None:
            for _name, fut in self.late:
                fut.exception()
            self.late_pool.shutdown()
        self.write_manifest()
        if self.errors:
            for err in self.errors:
                progress("FAILED", err)
            return 1
        progress("done", f"manifest: {self.root / MANIFEST_NAME}")
        return 0

    def _rootfs(self) -> None:
        """The live tests' root file system: seconds when cached; about a minute fresh
        (downloads): see the README's budget."""
        try:
            prepare_rootfs(self.root)
        except BuildError as exc:
            progress("error", str(exc))
            self.errors.append(str(exc))

    def _prepare(self, kernel: Kernel) -> KernelState:
        try:
            state = KernelBuilder(self.root, kernel).prepare()
        except BuildError as exc:
            self.errors.append(str(exc))
            raise
        self.kernels[kernel.name] = state
        return state

    def _module_debug(self, name: str, fut: Future[KernelState]) -> KernelState | None:
        try:
            kernel = next(k for k in KERNELS if k.name == name)
            state = KernelBuilder(self.root, kernel).extract_module_debug(fut.result())
            self.kernels[name] = state
            return state
        except BuildError as exc:
            self.errors.append(str(exc))
        except Exception as exc:  # the kernel itself failed: already reported
            if not isinstance(exc.__cause__, BuildError):
                self.errors.append(f"kernel {name} module debug: {exc!r}")
        return None

    def _safe_boot(self, boot: Boot, state_f: dict[str, Future[KernelState]], name: str) -> None:
        try:
            self.do_boot(boot, state_f[name])
        except BuildError as exc:
            progress("error", str(exc))
            self.errors.append(str(exc))
        except Exception as exc:
            progress("error", f"{boot.id}: {exc!r}")
            self.errors.append(f"step 'guest {boot.id}' failed: {exc!r}")
