"""Special files, planted symlinks and decompression bombs (issue 15, rules 2-4 and 6).

Inputs are generated here: FIFOs and sockets made with the OS, symlinks planted the
way a local user would, and decompression bombs built from a real kernel log (the
shipped example's ``vmcore-dmesg.txt``) followed by one of its real lines repeated.
"""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from hostile import EXAMPLE, RAW_CONTROL, kcrash

DMESG = Path(__file__).parents[1] / "src" / "kcrash" / "examples" / "vmcore-dmesg.txt"
SECRET = "root:$6$kcrash-test-secret-hash$:19000:0:99999:7:::"


# ---------------------------------------------------------------- special files


@pytest.fixture
def specials(tmp_path: Path) -> dict[str, str]:
    fifo = tmp_path / "dump.fifo"
    os.mkfifo(fifo)
    sock_path = tmp_path / "dump.sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sock_path))
    (tmp_path / "adir").mkdir()
    yield {
        "FIFO": str(fifo),
        "socket": str(sock_path),
        "character device": "/dev/zero",
        "directory": str(tmp_path / "adir"),
    }
    sock.close()


@pytest.mark.parametrize(
    "cmd",
    [["sys"], ["bt"], ["log"], ["ps"], ["mod"], ["analyze"], ["debuginfo"], ["shell", "-c", "sys"]],
)
def test_special_files_refused_in_one_line(specials: dict[str, str], cmd: list[str]) -> None:
    """A FIFO as the dump blocked forever in open(); now every command refuses at once."""
    for kind, path in specials.items():
        t0 = time.monotonic()
        p = kcrash(cmd[0], path, *cmd[1:], timeout=60)
        assert time.monotonic() - t0 < 30
        assert p.returncode == 2, (kind, cmd, p.returncode, p.stderr)
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("kcrash: "), (kind, p.stderr)
        assert kind.split()[0] in lines[0] or kind in lines[0], (kind, lines[0])


def test_special_file_as_vmlinux_refused(specials: dict[str, str]) -> None:
    p = kcrash("analyze", str(EXAMPLE), specials["FIFO"], timeout=60)
    assert p.returncode == 2 and "FIFO" in p.stderr, p.stderr


# ---------------------------------------------------------------- batch


def _victim(tmp_path: Path) -> Path:
    v = tmp_path / "victim"
    v.write_text(SECRET + "\n")
    v.chmod(0o600)
    return v


def test_batch_never_follows_symlinks_planted_in_out(tmp_path: Path) -> None:
    """Every name batch writes in --out is a planted symlink to a victim: none is followed."""
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(EXAMPLE, src / "nd.vmcore")
    (src / "garbage.bin").write_bytes(b"\x00junk" * 100)  # writes a .log on failure too
    victim = _victim(tmp_path)
    before = victim.read_bytes()
    out = tmp_path / "out"
    out.mkdir()
    planted = []
    for name in ("nd.vmcore", "garbage.bin"):
        for suffix in (".json", ".txt", ".log", ".json.tmp", ".txt.tmp"):
            planted.append(name + suffix)
        planted += [f".{name}.result.tmp", f".{name}.result.json"]
    planted += ["summary.md", "summary.json"]
    for n in planted:
        (out / n).symlink_to(victim)
    p = kcrash("batch", str(src), "--out", str(out), "--jobs", "1", "--no-progress")
    assert p.returncode == 0, p.stderr
    assert victim.read_bytes() == before, "a file outside --out was written through a link"
    assert not victim.is_symlink()
    for n in ("nd.vmcore.json", "nd.vmcore.txt", "summary.md", "summary.json"):
        assert (out / n).is_file() and not (out / n).is_symlink(), n
    assert json.loads((out / "nd.vmcore.json").read_text())["verdict"]["class"] == "null-deref"
    left = [n for n in os.listdir(out) if (out / n).is_symlink()]
    assert all((out / n).resolve() == victim for n in left)  # untouched, never written through


def test_batch_refuses_out_that_is_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "out").symlink_to(target)
    p = kcrash("batch", str(EXAMPLE), "--out", str(tmp_path / "out"), "--no-progress")
    assert p.returncode == 2 and "symlink" in p.stderr, p.stderr
    assert not os.listdir(target)


def test_batch_refuses_symlinks_and_special_files_in_input(tmp_path: Path) -> None:
    """A link to a secret file and a FIFO among the dumps: listed as refused, never opened,
    never quoted; --follow-symlinks opens the link's target and still prints none of it."""
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(EXAMPLE, src / "nd.vmcore")
    victim = _victim(tmp_path)
    (src / "shadow").symlink_to(victim)
    os.mkfifo(src / "pipe")
    for follow in (False, True):
        out = tmp_path / f"out-{follow}"
        args = ["batch", str(src), "--out", str(out), "--jobs", "1", "--no-progress"]
        p = kcrash(*args, *(["--follow-symlinks"] if follow else []), timeout=120)
        assert p.returncode == 0, p.stderr
        summary = json.loads((out / "summary.json").read_text())
        by_name = {Path(d["path"]).name: d for d in summary["dumps"]}
        assert by_name["nd.vmcore"]["status"] == "ok"
        assert by_name["pipe"]["status"] == "refused" and "FIFO" in by_name["pipe"]["reason"]
        if follow:
            assert by_name["shadow"]["status"] == "not-a-dump", by_name["shadow"]
        else:
            assert by_name["shadow"]["status"] == "refused", by_name["shadow"]
            assert "symlink" in by_name["shadow"]["reason"]
        everything = p.stdout + p.stderr + "".join(f.read_text() for f in out.iterdir())
        for piece in ("root:", "kcrash-test-secret", "$6$"):
            assert piece not in everything, piece


def test_not_a_dump_message_quotes_no_bytes(tmp_path: Path) -> None:
    f = tmp_path / "shadow-copy"
    f.write_text(SECRET + "\n")
    p = kcrash("sys", str(f))
    assert p.returncode == 2 and "not a vmcore" in p.stderr
    assert "root:" not in p.stderr and "$6$" not in p.stderr


# ---------------------------------------------------------------- decompression bombs

_FILLER = "[    4.026245]  </TASK>\n"  # a real line of the example log


def _bomb(path: Path, kind: str, gib: int, member_mib: int = 64) -> Path:
    """The real log, then ``gib`` GiB of one of its lines, as concatenated members.

    gzip, xz, bzip2 and zstd all read concatenated members/streams as one stream,
    so a 10 GiB bomb is one 64 MiB member compressed once and repeated.
    """
    head = DMESG.read_bytes()
    body = (_FILLER * ((member_mib << 20) // len(_FILLER))).encode()
    if kind == "gzip":
        first, member = gzip.compress(head, 1), gzip.compress(body, 9)
    elif kind == "xz":
        first, member = lzma.compress(head), lzma.compress(body, preset=1)
    elif kind == "bz2":
        first, member = bz2.compress(head), bz2.compress(body, 9)
    else:
        import zstandard  # a test dependency (pyproject [test])

        c = zstandard.ZstdCompressor(level=3)
        first, member = c.compress(head), c.compress(body)
    with open(path, "wb") as f:
        f.write(first)
        for _ in range(gib * 1024 // member_mib):
            f.write(member)
    return path


@pytest.fixture(scope="module")
def gzip_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _bomb(tmp_path_factory.mktemp("bomb") / "kern.log.gz", "gzip", 10)


def _lacks(p: subprocess.CompletedProcess[str]) -> str:
    assert p.returncode == 0, p.stderr
    report = json.loads(p.stdout)
    assert report["verdict"]["class"] == "null-deref", report["verdict"]
    return " ".join(report["input"]["lacks"])


def test_gzip_bomb_stops_at_the_ratio_cap_in_seconds(gzip_bomb: Path) -> None:
    assert gzip_bomb.stat().st_size < 64 << 20  # 10 GiB of log in a few MB
    t0 = time.monotonic()
    p = kcrash("analyze", str(gzip_bomb), "-f", "json", timeout=120)
    took = time.monotonic() - t0
    lacks = _lacks(p)
    assert "cut short" in lacks and "decompression bomb" in lacks and "200:1" in lacks, lacks
    assert took < 60, took


def test_bomb_time_and_size_caps_can_be_chosen(gzip_bomb: Path) -> None:
    p = kcrash(
        "analyze", str(gzip_bomb), "-f", "json", "--max-log-ratio", "1e9", "--max-log-seconds", "2"
    )
    assert "2 s of decompression" in _lacks(p)
    p = kcrash(
        "analyze", str(gzip_bomb), "-f", "json", "--max-log-ratio", "1e9", "--max-log-bytes", "8M"
    )
    assert "stopped after 8 MiB decompressed" in _lacks(p)


@pytest.mark.parametrize("kind", ["xz", "bz2", "zstd"])
def test_other_compressions_are_bounded(kind: str, tmp_path: Path) -> None:
    bomb = _bomb(tmp_path / f"kern.log.{kind}", kind, 1, member_mib=4)
    t0 = time.monotonic()
    p = kcrash("analyze", str(bomb), "-f", "json", "--max-log-bytes", "8M", timeout=120)
    assert "cut short" in _lacks(p)
    assert time.monotonic() - t0 < 60


def test_small_real_compressed_log_is_read_whole(tmp_path: Path) -> None:
    """The caps do not touch a real log: the example dmesg, gzipped, reads to the end."""
    f = tmp_path / "dmesg.gz"
    f.write_bytes(gzip.compress(DMESG.read_bytes()))
    p = kcrash("analyze", str(f), "-f", "json")
    assert "cut short" not in _lacks(p)
    assert not RAW_CONTROL.search(p.stdout)
