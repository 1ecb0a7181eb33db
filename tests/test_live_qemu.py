"""Live analysis: a running QEMU guest of the corpus kernel, read from outside over QMP.

``--qemu SOCKET``: boot the corpus kernel (idle, its init waits on ``job.sh``) with
``-device vmcoreinfo`` and a QMP socket, then run ``kcrash sys/ps/bt --qemu SOCKET`` on the
host. ``--live`` (``/proc/kcore`` read from inside the running kernel, compared with crash
run live there) is tested in ``tests/test_live_guest.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_live_guest import NO_TIMER_CHECK


@pytest.fixture(scope="module")
def guest(
    corpus: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    import kcrash_corpus

    root = Path(kcrash_corpus.cache_root())
    kjson = json.loads((root / "kernels" / "deb12" / "kernel.json").read_text())
    tmp = tmp_path_factory.mktemp("live")
    share = tmp / "share"
    share.mkdir()
    (share / "job.sh").write_text("echo KCRASH-IDLE > /dev/console\nsleep 600\n")
    qmp, console = tmp / "qmp.sock", tmp / "console.log"
    cmd = [
        "qemu-system-x86_64", "-accel", "tcg", "-cpu", "max,la57=off", "-smp", "2", "-m", "512",
        "-M", "pc", "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
        "-kernel", kjson["vmlinuz"], "-initrd", kjson["initrd"],
        "-append", f"console=ttyS0,115200 loglevel=7 {NO_TIMER_CHECK}",
        "-serial", f"file:{console}",
        "-fsdev", f"local,id=share,path={share},security_model=none",
        "-device", "virtio-9p-pci,fsdev=share,mount_tag=kcrash",
        "-device", "vmcoreinfo", "-qmp", f"unix:{qmp},server=on,wait=off",
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if console.exists() and "KCRASH-IDLE" in console.read_text(errors="replace"):
                break
            if proc.poll() is not None:
                pytest.fail(f"QEMU exited with {proc.returncode}")
            time.sleep(0.5)
        else:
            pytest.fail("the live guest did not finish booting within 120 s")
        yield {"qmp": str(qmp), "kernel": kjson, "console": console}
    finally:
        proc.kill()
        proc.wait(timeout=30)


def kcrash(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kcrash", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "KCRASH_DEBUG": ""},
    )


def test_sys_of_a_live_guest(guest: dict[str, Any]) -> None:
    p = kcrash("sys", "--json", "--qemu", guest["qmp"], guest["kernel"]["vmlinux"])
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)
    assert data["release"] == guest["kernel"]["release"]
    assert data["dump_format"] == "live QEMU guest over QMP"
    assert data["panic"] is None  # nothing crashed
    assert data["tasks"] > 10


def test_ps_of_a_live_guest_without_debuginfo(guest: dict[str, Any]) -> None:
    p = kcrash("ps", "--qemu", guest["qmp"], "--no-debuginfo")
    assert p.returncode == 0, p.stderr
    comms = {line.split()[-1] for line in p.stdout.splitlines()[1:]}
    assert "init" in comms or "sleep" in comms, p.stdout
    assert "[kthreadd]" in comms


def test_bt_of_a_live_task(guest: dict[str, Any]) -> None:
    p = kcrash("bt", "1", "--qemu", guest["qmp"], guest["kernel"]["vmlinux"])
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("PID: 1 ")
    assert " at " in p.stdout
