"""contrib/kdump/kcrash-kdump-hook against a real embedded ``kcrash server``.

The crash directories are laid out as the two tools write them (RHEL kdump's
``<ip>-<date>/vmcore`` + ``vmcore-dmesg.txt``; Debian kdump-tools' ``<stamp>/dump.<stamp>`` +
``dmesg.<stamp>``) with the corpus's real dumps and dmesg files in them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import pick
from server_process import ServerProcess, kcrash_env, make_token

HOOK = Path(__file__).resolve().parents[1] / "contrib" / "kdump" / "kcrash-kdump-hook"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("hook") / "data"
    srv = ServerProcess(data)
    srv.tokens = {r: make_token(data, r) for r in ("submit", "read")}  # type: ignore[attr-defined]
    srv.start()
    yield srv
    srv.stop()


def _run_hook(srv: ServerProcess, tmp: Path, coredir: Path, *args: str) -> Any:
    bin_dir = tmp / "bin"
    bin_dir.mkdir(exist_ok=True)
    wrapper = bin_dir / "kcrash"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} -m kcrash "$@"\n')
    wrapper.chmod(0o755)
    token = tmp / "token"
    token.write_text(srv.tokens["submit"] + "\n")  # type: ignore[attr-defined]
    env = {
        **kcrash_env(),
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "KCRASH_CONF": str(tmp / "absent.conf"),
        "KCRASH_SERVER": srv.url,
        "KCRASH_TOKEN_FILE": str(token),
        "KCRASH_COREDIR": str(coredir),
    }
    return subprocess.run(
        ["sh", str(HOOK), *args], env=env, capture_output=True, text=True, timeout=300
    )


def test_hook_sends_each_dump_once(
    server: ServerProcess, tmp_path: Path, corpus: list[dict[str, Any]]
) -> None:
    nd = pick(corpus, id="deb12/null-deref/kdump-zlib")[0]
    sysrq = pick(corpus, id="deb12/sysrq/kdump-zlib")[0]
    coredir = tmp_path / "crash"
    rhel = coredir / "127.0.0.1-2026-11-30-05:12:01"
    deb = coredir / "202611300512"
    rhel.mkdir(parents=True)
    deb.mkdir()
    (rhel / "vmcore").symlink_to(nd["path"])
    (rhel / "vmcore-dmesg.txt").symlink_to(nd["dmesg"])
    # Debian: the vmcore is truncated (the disk filled up): refused, so the dmesg goes.
    (deb / "dump.202611300512").write_bytes(Path(sysrq["path"]).read_bytes()[: 1 << 20])
    (deb / "dmesg.202611300512").symlink_to(sysrq["dmesg"])
    (coredir / "202611300600").mkdir()  # kdump-tools still writing: dump-incomplete only
    (coredir / "202611300600" / "dump-incomplete").write_bytes(b"KDUMP   ")

    r = _run_hook(server, tmp_path, coredir)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("kcrash: submitted") == 2, r.stdout
    assert "refused by the server (4" in r.stderr, "the truncated vmcore was refused"
    assert (rhel / ".kcrash-submitted").exists() and (deb / ".kcrash-submitted").exists()
    assert not (coredir / "202611300600" / ".kcrash-submitted").exists()
    status, page = server.json(
        "GET",
        "/api/v1/crashes?limit=10",
        server.tokens["read"],  # type: ignore[attr-defined]
    )
    assert status == 200
    kinds = sorted(c["kind"] for c in page["items"])
    assert kinds == ["log", "vmcore"] and page["total"] == 2

    again = _run_hook(server, tmp_path, coredir)
    assert again.returncode == 0 and "submitted" not in again.stdout, "marked dumps stay sent"


def test_hook_failed_capture_sends_nothing(server: ServerProcess, tmp_path: Path) -> None:
    r = _run_hook(server, tmp_path, tmp_path / "none", "1")
    assert r.returncode == 0 and "capture failed (status 1)" in r.stdout
