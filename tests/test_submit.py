"""``kcrash submit``: the client's wire behaviour, pstore reassembly and the journal source.

The receiver here is a real HTTP server on loopback (``http.server``) that records what
arrives and answers as told, so the client's streaming, compression, retries and errors are
checked byte for byte; tests/test_fleet.py sends to the real ``kcrash server``.  pstore
records are real ones (tests/data/pstore/SOURCES.md); the journal test runs the real
``journalctl``.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import zstandard

from kcrash.submit import hostfacts, journal, pstore
from kcrash.submit.upload import Server, SubmitError, submit_file

DATA = Path(__file__).parent / "data"
PSTORE = DATA / "pstore"
SRC = str(Path(__file__).parents[1] / "src")


class Receiver(http.server.ThreadingHTTPServer):
    """Answers each POST with the next status of ``script`` (then 202), keeping the bodies."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script: list[int | str] = []
        self.got: list[tuple[dict[str, str], bytes]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Receiver
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return self.rfile.read(int(self.headers.get("Content-Length", 0)))
        out = b""
        while True:
            size = int(self.rfile.readline().split(b";")[0], 16)
            if size == 0:
                self.rfile.readline()
                return out
            out += self.rfile.read(size)
            self.rfile.readline()

    def do_POST(self) -> None:
        action = self.server.script.pop(0) if self.server.script else 202
        if action == "drop":  # the server dies mid-upload: no answer at all
            self.rfile.read(100)
            self.close_connection = True
            self.connection.shutdown(2)
            return
        body = self._body()
        enc = self.headers.get("Content-Encoding")
        raw = (
            zstandard.ZstdDecompressor().decompressobj().decompress(body)
            if enc == "zstd"
            else (gzip.decompress(body) if enc == "gzip" else body)
        )
        self.server.got.append(({k: v for k, v in self.headers.items()}, raw))
        status = int(action)
        answer = (
            {"id": len(self.server.got), "status": "queued"}
            if status == 202
            else {"detail": "invalid or missing token" if status == 401 else "busy"}
        )
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    srv = Receiver()
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _server(url: str, attempts: int = 3) -> Server:
    return Server(url, "tok-123", attempts=attempts, backoff=0.01, sleep=lambda s: None)


def test_upload_is_the_file_exactly_with_host_facts(receiver: Receiver, tmp_path: Path) -> None:
    log = DATA / "oops" / "x86-oops-gpf-6.x.txt"
    facts = hostfacts.collect("/", "web-17", "6.1.0-57-amd64")
    got = submit_file(_server(receiver.url), str(log), facts)
    assert got.id == 1 and got.status == "queued"
    headers, body = receiver.got[0]
    assert hashlib.sha256(body).digest() == hashlib.sha256(log.read_bytes()).digest()
    assert headers["Authorization"] == "Bearer tok-123"
    assert headers["Content-Encoding"] == "zstd"
    assert headers["Transfer-Encoding"] == "chunked", "streamed, never read whole"
    assert headers["X-Kcrash-Host"] == "web-17"
    assert headers["X-Kcrash-Sha256"] == hashlib.sha256(log.read_bytes()).hexdigest()
    assert headers["X-Kcrash-Kernel-Release"] == "6.1.0-57-amd64"
    assert headers["X-Kcrash-Machine-Id"] == Path("/etc/machine-id").read_text().strip()
    assert headers["X-Kcrash-Distro"] == hostfacts.distro_from("/")


def test_retries_restart_from_the_first_byte(receiver: Receiver) -> None:
    """A dropped connection and a 503 are sent again; the third attempt is whole."""
    receiver.script = ["drop", 503]
    log = DATA / "oops" / "x86-panic-double-fault.txt"
    said: list[str] = []
    got = submit_file(_server(receiver.url), str(log), hostfacts.HostFacts(), log=said.append)
    assert got.id == len(receiver.got) == 2, "the drop left nothing, the 503 was answered"
    assert receiver.got[-1][1] == log.read_bytes()
    assert len(said) == 2 and "attempt 1 failed" in said[0] and "HTTP 503" in said[1]


def test_final_refusal_is_one_line_and_not_retried(receiver: Receiver) -> None:
    receiver.script = [401, 401]
    with pytest.raises(SubmitError, match=r"refused by the server \(401\): invalid or missing"):
        submit_file(
            _server(receiver.url), str(DATA / "oops" / "ppc64le.txt"), hostfacts.HostFacts()
        )
    assert len(receiver.got) == 1


def test_gives_up_after_the_attempts(receiver: Receiver) -> None:
    receiver.script = [503, 503]
    with pytest.raises(SubmitError, match="not sent after 2 attempts: HTTP 503"):
        submit_file(
            _server(receiver.url, 2), str(DATA / "oops" / "ppc64le.txt"), hostfacts.HostFacts()
        )


def test_size_cap_refuses_before_sending(receiver: Receiver) -> None:
    with pytest.raises(SubmitError, match="more than the cap of 100 bytes"):
        submit_file(
            _server(receiver.url),
            str(DATA / "oops" / "ppc64le.txt"),
            hostfacts.HostFacts(),
            max_bytes=100,
        )
    assert receiver.got == []


def _cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.run(
        [sys.executable, "-m", "kcrash", "submit", *args],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_cli_stdin_and_errors(receiver: Receiver) -> None:
    text = (DATA / "oops" / "s390x-bug-on.txt").read_bytes()
    r = _cli("--server", receiver.url, "--token", "t", "--host", "db-1", "-", stdin=text)
    assert r.returncode == 0, r.stderr
    assert "submitted <stdin>: crash 1, queued" in r.stdout
    assert receiver.got[0][1] == text
    r = _cli("--server", receiver.url, "--token", "t", "/nonexistent/vmcore")
    assert r.returncode == 2
    assert r.stderr.strip() == "kcrash: /nonexistent/vmcore: No such file or directory"
    r = _cli("--server", receiver.url, "/etc/hostname")
    assert r.returncode == 2 and "no token" in r.stderr and "Traceback" not in r.stderr


def test_pstore_efi_parts_reassemble_oldest_first() -> None:
    """Part1 holds the newest lines: the text runs Part4, Part3, Part2, Part1."""
    records, problems = pstore.find_records([str(PSTORE / "efi-ath11k")])
    assert problems == []
    assert {(r.backend, r.reason, r.count) for r in records} == {("efi_pstore", "Panic", 1)}
    crashes = pstore.group_crashes(records)
    assert len(crashes) == 1
    text = crashes[0].text().decode()
    assert "Part" not in text.split("\n", 1)[0], "headers are not log lines"
    order = [
        text.index("PM: **** DPM device timeout ****"),  # Part4
        text.index("Kernel panic - not syncing: ath11k_pci"),  # Part3
        text.index("RIP: 0010:cpuidle_enter_state"),  # Part2
        text.index("Kernel Offset: 0x2fa00000"),  # Part1
    ]
    assert order == sorted(order)
    assert hostfacts.release_from_log(text) == "6.1.7-lp153.3.g2ebd33f-default"


def test_pstore_erst_dumps_in_count_order_and_crashes_split_by_time(tmp_path: Path) -> None:
    for d in ("efi-ath11k", "erst-md"):
        shutil.copytree(PSTORE / d, tmp_path / d)
    for f in (tmp_path / "efi-ath11k").iterdir():
        os.utime(f, (1674425560, 1674425560))  # the EFI crash: 2023
    for f in (tmp_path / "erst-md").iterdir():
        os.utime(f, (1619106028, 1619106028))  # the ERST crash: 2021, another boot
    (tmp_path / "console-ramoops-0").write_text("not a dmesg record\n")
    records, problems = pstore.find_records([str(tmp_path)])
    assert problems == [] and len(records) == 6
    crashes = pstore.group_crashes(records)
    assert [c.reasons for c in crashes] == [["Oops#1", "Panic#2"], ["Panic#1"]]
    erst = crashes[0].text().decode()
    assert erst.index("Lost 353 message(s)!") < erst.index("Kernel panic - not syncing: Fatal")


def test_pstore_record_without_header_is_named(tmp_path: Path) -> None:
    (tmp_path / "dmesg-ramoops-0").write_bytes(b"\x00\x01garbage")
    records, problems = pstore.find_records([str(tmp_path)])
    assert records == []
    assert problems == [
        f"{tmp_path}/dmesg-ramoops-0: no 'Reason#N PartN' header (not a kmsg_dump record)"
    ]


def test_cli_from_pstore_sends_each_crash(receiver: Receiver) -> None:
    r = _cli(
        "--server",
        receiver.url,
        "--token",
        "t",
        "--from-pstore",
        "--pstore-dir",
        str(PSTORE / "efi-ath11k"),
    )
    assert r.returncode == 0, r.stderr
    assert "submitted pstore efi_pstore Panic#1: crash 1" in r.stdout
    headers, body = receiver.got[0]
    assert headers["X-Kcrash-Kernel-Release"] == "6.1.7-lp153.3.g2ebd33f-default"
    assert headers["X-Kcrash-Kind"] == "log"
    assert b"unrecoverable failure" in body


def test_journal_real_journalctl_without_that_boot(tmp_path: Path) -> None:
    """The real journalctl on an empty journal directory: one clear line, no traceback."""
    with pytest.raises(Exception, match=r"--from-journal: journalctl -k -b -1: "):
        journal.previous_boot_kernel_log("-1", str(tmp_path))
    r = _cli(
        "--server",
        "http://127.0.0.1:9",
        "--token",
        "t",
        "--from-journal",
        "--journal-dir",
        str(tmp_path),
    )
    assert r.returncode == 2 and r.stderr.startswith("kcrash: --from-journal: journalctl")


def test_journal_crash_detection_on_real_logs() -> None:
    """Real reports in journal, dmesg and console formats start a crash; a banner does not."""
    for name in (
        "journal/systemd-378-kdbus.txt",
        "oops/arm64-rcu-usage-dump-backtrace.txt",
        "oops/x86-oops-gpf-6.x.txt",
        "oops/s390x-bug-on.txt",
    ):
        assert journal.has_crash((DATA / name).read_text()), name
    text = (DATA / "journal/systemd-378-kdbus.txt").read_text()
    assert hostfacts.release_from_log(text) == "4.1.0-1.fc23.x86_64"
    assert not journal.has_crash("Jun 26 01:37:55 ank kernel: Linux version 4.1.0-1.fc23.x86_64\n")


def test_host_facts_from_a_root(tmp_path: Path) -> None:
    """kdump's initramfs reads the crashed host's facts under its root (/sysroot)."""
    (tmp_path / "etc").mkdir()
    shutil.copy("/etc/os-release", tmp_path / "etc" / "os-release")
    shutil.copy("/etc/machine-id", tmp_path / "etc" / "machine-id")
    (tmp_path / "etc" / "hostname").write_text("db-7\n")
    f = hostfacts.collect(str(tmp_path))
    assert f.hostname == "db-7"
    assert f.machine_id == Path("/etc/machine-id").read_text().strip()
    assert (
        f.distro
        and f.distro == hostfacts.os_release(Path("/etc/os-release").read_text())["PRETTY_NAME"]
    )
    assert hostfacts.clean("a\x1b[2Jb" + "x" * 300) == "a [2Jb" + "x" * 250


def test_release_of_file_on_corpus_dumps(corpus: list[dict]) -> None:
    """The crashed kernel, never the running one: from the kdump header's utsname and from
    vmcore-dmesg.txt; an ELF vmcore does not say it in its first bytes (the server reads it)."""
    seen = set()
    for e in corpus:
        if e["format"] == "kdump":
            assert hostfacts.release_of_file(e["path"]) == e["release"], e["id"]
            seen.add(e["kernel"])
        if e.get("dmesg") and os.path.exists(e["dmesg"]):
            assert hostfacts.release_of_file(e["dmesg"]) == e["release"], e["id"]
        if e["format"] == "elf":
            assert hostfacts.release_of_file(e["path"]) is None
    assert seen == {"deb11", "deb12", "deb13", "deb12-arm64"}
