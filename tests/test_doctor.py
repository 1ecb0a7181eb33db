"""``kcrash doctor`` on real hosts: this machine (``--root /``), a copy of its real files,
and the corpus guests' real /proc, /sys and /etc trees (kdump ready and not ready).

The corpus trees are copied by the guest itself (``cat`` of its live files into the
capture share, see ``corpus/kcrash_corpus/guest.py``); tests that need them FAIL when the
corpus or its ``hosts`` are missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kcrash.doctor import run
from kcrash.doctor.checks import CHECKS
from kcrash.doctor.host import Host
from kcrash.doctor.kdumpconf import parse_debian, parse_rhel, parse_suse
from kcrash.doctor.verdicts import FAIL, INFO, OK, WARN, GiB, MiB, recommended_crashkernel


def statuses(root: str, family: str | None = None) -> dict[str, str]:
    return {r.id: r.status for r in run(root, family).results}


def kcrash(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kcrash", *args], capture_output=True, text=True, timeout=120
    )


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


# -- this machine, a real host ------------------------------------------------------------


def test_live_root_verdicts_follow_its_real_files() -> None:
    """Each verdict on ``/`` agrees with what the files themselves say."""
    got = statuses("/")
    crash_size = _read("/sys/kernel/kexec_crash_size")
    assert got["kexec_support"] == (OK if crash_size is not None else FAIL)
    assert got["crashkernel"] == (OK if crash_size and int(crash_size) > 0 else FAIL)
    assert got["capture_loaded"] == (OK if _read("/sys/kernel/kexec_crash_loaded") == "1" else FAIL)
    oops = _read("/proc/sys/kernel/panic_on_oops")
    assert got["panic_on_oops"] == (OK if oops and oops != "0" else WARN)
    for knob in ("softlockup_panic", "hung_task_panic", "panic_on_warn", "unknown_nmi_panic"):
        value = _read(f"/proc/sys/kernel/{knob}")
        assert got[knob] == (OK if value and value != "0" else INFO), knob
    assert got["btf"] == (OK if os.path.exists("/sys/kernel/btf/vmlinux") else WARN)
    assert got["kernel"] == OK
    report = run("/")
    assert report.release == os.uname().release
    assert report.ready == (FAIL not in got.values())


def test_live_root_cli_exit_status_and_json() -> None:
    """Exit status 0/1 says ready/not ready; ``--json`` carries the same verdicts."""
    proc = kcrash("doctor", "--json", "--root", "/")
    data = json.loads(proc.stdout)
    assert proc.returncode == (0 if data["ready"] else 1)
    assert {r["id"] for r in data["results"]} == {c.id for c in CHECKS}
    fails = [r for r in data["results"] if r["status"] == FAIL]
    assert data["ready"] == (not fails)
    for r in fails:  # every problem comes with its why and a filled-in fix command
        assert r["why"] and r["fix"], r
        assert all("{" not in cmd for cmd in r["fix"].values()), r["fix"]
    text = kcrash("doctor")
    assert text.returncode == proc.returncode
    assert ("NOT READY" in text.stdout) == (not data["ready"])


def test_this_machine_is_not_ready_without_crashkernel() -> None:
    """This development machine reserves no crash kernel memory: doctor must say so."""
    if int(_read("/sys/kernel/kexec_crash_size") or 0) > 0:
        pytest.fail("this test expects a host without crashkernel (the project's machines)")
    proc = kcrash("doctor")
    assert proc.returncode == 1
    line = next(ln for ln in proc.stdout.splitlines() if "crashkernel reserved" in ln)
    assert line.startswith("✗")


def test_copied_real_tree_reads_like_the_live_root(tmp_path: Path) -> None:
    """``--root`` on a copy of this host's real files gives the live verdicts.

    The files are copied with their content, as the corpus guest does with ``cat``.
    """
    files = [
        "/proc/cmdline",
        "/proc/iomem",
        "/proc/meminfo",
        "/proc/sys/kernel/osrelease",
        "/sys/kernel/notes",
        "/sys/kernel/btf/vmlinux",
        "/sys/kernel/kexec_crash_size",
        "/sys/kernel/kexec_crash_loaded",
        "/etc/os-release",
        "/etc/kdump.conf",
        "/etc/default/kdump-tools",
    ]
    files += [f"/proc/sys/kernel/{k}" for k in ("panic", "panic_on_oops", "softlockup_panic")]
    files += [f"/proc/sys/kernel/{k}" for k in ("hung_task_panic", "panic_on_warn", "sysrq")]
    files += ["/proc/sys/kernel/unknown_nmi_panic", "/proc/sys/kernel/hardlockup_panic"]
    files += ["/proc/sys/vm/panic_on_oom"]
    for f in files:
        if not os.path.exists(f):
            continue
        dest = tmp_path / f.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(f, "rb") as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out)
    if os.path.isdir("/etc/systemd/system"):
        shutil.copytree("/etc/systemd/system", tmp_path / "etc/systemd/system", symlinks=True)
    live, copied = statuses("/"), statuses(str(tmp_path))
    for check in ("dump_space", "debuginfo"):  # depend on the disk and /usr/lib/debug
        live.pop(check)
        copied.pop(check)
    assert copied == live
    assert Host(str(tmp_path)).build_id == Host("/").build_id


# -- the corpus guests' real trees ---------------------------------------------------------


@pytest.fixture(scope="module")
def hosts() -> dict[str, Any]:
    try:
        import kcrash_corpus

        manifest = kcrash_corpus.load_manifest()
    except Exception as e:
        pytest.fail(f"the vmcore corpus is missing ({e}); doctor's guest trees come with it")
    trees = manifest.get("hosts") or {}
    for name in ("ready", "not-ready"):
        if name not in trees or not os.path.isdir(trees[name]["root"]):
            pytest.fail(f"the corpus has no hosts/{name} tree (rebuild the corpus)")
    return trees


@pytest.mark.corpus
def test_guest_ready_tree(hosts: dict[str, Any]) -> None:
    """A guest with crashkernel=, a loaded capture kernel, kdump-tools on and panic knobs set."""
    root = hosts["ready"]["root"]
    report = run(root)
    got = {r.id: r.status for r in report.results}
    assert report.ready, [r for r in report.results if r.status == FAIL]
    assert report.family == "debian"
    # the guest saved `uname -r` beside the tree (no /proc/sys/kernel/osrelease copied)
    assert report.release == Path(root, "uname-r").read_text().strip()
    for check in ("kexec_support", "crashkernel", "crashkernel_size", "capture_loaded"):
        assert got[check] == OK, check
    assert got["kdump_config"] == OK
    for knob in ("panic_on_oops", "softlockup_panic", "unknown_nmi_panic", "sysrq", "btf"):
        assert got[knob] == OK, knob
    for knob in ("hung_task_panic", "panic_on_warn", "panic_on_oom"):
        assert got[knob] == INFO, knob
    # a busybox guest runs no systemd: the capture kernel was loaded by hand
    assert got["kdump_service"] == WARN
    details = {r.id: r.detail for r in report.results}
    size = int(Path(root, "sys/kernel/kexec_crash_size").read_text())
    assert details["crashkernel"].startswith(f"{size >> 20} MiB reserved by crashkernel=")
    assert "makedumpfile -c -d 31" in details["kdump_config"]
    proc = kcrash("doctor", "--root", root)
    assert proc.returncode == 0, proc.stdout
    assert "READY" in proc.stdout.splitlines()[-1]


@pytest.mark.corpus
def test_guest_not_ready_tree(hosts: dict[str, Any]) -> None:
    """A stock guest: no crashkernel=, nothing loaded, USE_KDUMP=0, default knobs."""
    root = hosts["not-ready"]["root"]
    report = run(root)
    got = {r.id: r.status for r in report.results}
    assert not report.ready
    assert got["kexec_support"] == OK  # the kernel could, the host is not set up
    assert got["crashkernel"] == FAIL
    assert got["crashkernel_size"] == INFO
    assert got["capture_loaded"] == FAIL
    assert got["kdump_service"] == FAIL
    assert got["kdump_config"] == FAIL
    assert got["panic_on_oops"] == WARN
    sysrq = int(Path(root, "proc/sys/kernel/sysrq").read_text())
    assert got["sysrq"] == (OK if sysrq == 1 or sysrq & 8 else WARN)
    fixes = {r.id: r.fix for r in report.results}
    assert list(fixes["crashkernel"]) == ["debian"]  # from the guest's own os-release
    assert "update-grub" in fixes["crashkernel"]["debian"]
    assert "USE_KDUMP=1" in fixes["kdump_config"]["debian"]
    proc = kcrash("doctor", "--json", "--root", root)
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["ready"] is False


# -- parsers and rules on hand-built input (in addition to the real trees) -----------------


def test_rhel_kdump_conf() -> None:
    cfg = parse_rhel(
        "# comment\nxfs UUID=0b1a\npath /var/crash\n"
        "core_collector makedumpfile -l --message-level 7 -d 31\n",
        "/etc/kdump.conf",
    )
    assert cfg.device == "xfs UUID=0b1a" and cfg.filtered and cfg.remote is None
    cp = parse_rhel("core_collector cp\nssh kdump@backup\n", "/etc/kdump.conf")
    assert cp.remote == "ssh kdump@backup" and not cp.filtered


def test_debian_and_suse_config() -> None:
    deb = parse_debian('USE_KDUMP=1\n#MAKEDUMP_ARGS="-c -d 31"\nKDUMP_COREDIR="/srv/c"\n', "f")
    assert deb.enabled and deb.filtered and deb.path == "/srv/c"
    off = parse_debian("USE_KDUMP=0\nMAKEDUMP_ARGS='-c -d 1'\n", "f")
    assert not off.enabled and not off.filtered
    suse = parse_suse('KDUMP_SAVEDIR="ssh://root@dumps/srv/crash"\nKDUMP_DUMPLEVEL="31"\n', "f")
    assert suse.remote == "ssh root@dumps" and suse.path == "/srv/crash" and suse.filtered


def test_recommended_crashkernel_follows_ram() -> None:
    assert recommended_crashkernel(1 * GiB) == 192 * MiB
    assert recommended_crashkernel(16 * GiB) == 256 * MiB
    assert recommended_crashkernel(128 * GiB) == 512 * MiB


def test_every_check_has_a_fix_for_each_family_or_none() -> None:
    for c in CHECKS:
        assert c.why and c.reads, c.id
        assert set(c.fix) in (set(), {"rhel", "debian", "suse"}), c.id


def test_distro_override_picks_that_familys_fix() -> None:
    """``--distro`` (or the tree's os-release) decides which fix commands are printed."""
    for family, word in (("rhel", "grubby"), ("suse", "grub2-mkconfig"), ("debian", "update-grub")):
        report = run("/", family)
        crash = next(r for r in report.results if r.id == "crashkernel")
        if crash.status == OK:
            continue  # a host with crashkernel reserved needs no fix
        assert list(crash.fix) == [family]
        assert word in crash.fix[family]


def test_missing_root_is_one_line_error() -> None:
    proc = kcrash("doctor", "--root", "/nonexistent/kcrash-root")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "kcrash: /nonexistent/kcrash-root: no such directory"
