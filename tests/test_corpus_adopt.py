"""``python -m kcrash_corpus adopt SRC``: real boots of the corpus copied between two caches.

A helper builds new scenarios in a private cache (a ``cp -al`` of the shared one); the lead
adopts the finished boots into the shared cache instead of building them again.  These tests
do that with real boot directories of the corpus, in temporary caches made the way the
helpers make theirs (``cp -al``): the dumps must arrive as hard links, every stored path
(result.json, the manifest, crash's own ``KERNEL:``/``DUMPFILE:`` lines) must name the new
cache, kcrash's reading of the adopted dump must still equal crash's, the source cache must
not change, and a boot this checkout's tables would not build must be refused.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from crash_oracle import parse_sys

REPO = Path(__file__).resolve().parents[1]
#: Small boots: the lean NULL deref (512 MB guest, one kdump) and a hang boot whose scenario
#: loads an extra module (kcrash_hang.ko), so its kernel files must come along.
LEAN = "deb12/null-deref-lean/kdump"
HANG = "deb12/abba-deadlock/qemu"


@pytest.fixture(scope="module")
def shared(corpus: list[dict[str, Any]], corpus_root: str) -> Path:
    """The cache the tests read (the source of the first adopt), with the boots used here."""
    root = Path(corpus_root)
    for bid in (LEAN, HANG):
        assert (root / "dumps" / bid / "result.json").exists(), f"the corpus lacks {bid}"
    return root


@pytest.fixture
def scratch(tmp_path: Path, shared: Path) -> Iterator[Path]:
    """A directory on the corpus's file system (hard links need one), removed afterwards."""
    if tmp_path.stat().st_dev == shared.stat().st_dev:
        yield tmp_path
        return
    d = Path(tempfile.mkdtemp(prefix="kcrash-adopt-test-", dir=shared.parent))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _cache(root: Path, shared: Path, *, kernel: bool = True) -> Path:
    """An empty cache as a helper starts one: the prepared kernel and trixie's crash stamp
    linked from the shared cache (``cp -al``), no boots."""
    (root / "tools" / "trixie").mkdir(parents=True)
    shutil.copy2(shared / "tools/trixie/tools.json", root / "tools/trixie/tools.json")
    if kernel:
        (root / "kernels").mkdir()
        subprocess.run(["cp", "-al", shared / "kernels/deb12", root / "kernels/"], check=True)
        # As before issue 18's hangs were built: no kcrash_hang build in this cache.
        for p in (root / "kernels/deb12").glob("extra-kcrash_hang-*"):
            shutil.rmtree(p)
        (root / "kernels/deb12/debug-modules/kcrash_hang.ko").unlink()
    return root


def _adopt(dest: Path, src: Path, *only: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KCRASH_CORPUS": str(dest)}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "corpus"), str(REPO / "src")])
    cmd = [sys.executable, "-m", "kcrash_corpus", "adopt", str(src)]
    if only:
        cmd += ["--only", *only]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def _texts(root: Path) -> dict[Path, str]:
    """Every small text file of a cache's boots (result.json, oracle files)."""
    return {
        p: p.read_text(errors="replace")
        for p in (root / "dumps").rglob("*")
        if p.is_file() and p.suffix in (".json", ".txt") and p.stat().st_size < (1 << 20)
    }


def _entries(root: Path) -> dict[str, dict[str, Any]]:
    manifest = json.loads((root / "manifest.json").read_text())
    return {e["id"]: e for e in manifest["entries"]}


@pytest.mark.corpus
def test_adopt_links_the_boots_and_names_the_new_cache(shared: Path, scratch: Path) -> None:
    before = {p: p.read_bytes() for bid in (LEAN, HANG) for p in (shared / "dumps" / bid).rglob(
        "*") if p.is_file() and p.suffix in (".json", ".txt")}  # fmt: skip
    dest = _cache(scratch / "a", shared)
    out = _adopt(dest, shared, LEAN, HANG)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 boots adopted" in out.stdout

    entries = _entries(dest)
    assert sorted(entries) == ["deb12/abba-deadlock/qemu-kdump", "deb12/null-deref-lean/kdump-zlib"]
    kernel = json.loads((dest / "kernels/deb12/kernel.json").read_text())
    for e in entries.values():
        path = Path(e["path"])
        assert path.is_relative_to(dest / "dumps" / e["boot"]), e["path"]
        src = shared / "dumps" / e["boot"] / path.name
        assert path.stat().st_ino == src.stat().st_ino  # a hard link, not a copy
        assert all(Path(p).is_relative_to(dest) for p in e["oracle"].values())
        sys_ = parse_sys(Path(e["oracle"]["sys"]).read_text())
        assert sys_["DUMPFILE"].split()[0] == e["path"]
        assert sys_["KERNEL"].split()[0] == kernel["vmlinux"] == e["vmlinux"]
    # The hang boot's module came along (the destination had not built it).
    hang = [p for p in (dest / "kernels/deb12").glob("extra-kcrash_hang-*/kcrash_hang.ko")]
    assert len(hang) == 1
    ko = dest / "kernels/deb12/debug-modules/kcrash_hang.ko"
    assert ko.stat().st_ino == (shared / "kernels/deb12/debug-modules/kcrash_hang.ko").stat().st_ino

    # The source cache is untouched: no file rewritten through a link.
    after = {p: p.read_bytes() for p in before}
    assert after == before
    # Adopting again finds them here.
    again = _adopt(dest, shared, LEAN, HANG)
    assert again.returncode == 0 and "0 boots adopted, 2 already here" in again.stdout


@pytest.mark.corpus
def test_a_boot_adopted_twice_reads_as_crash_read_it(shared: Path, scratch: Path) -> None:
    """From a helper's cache (a) into one that has not even prepared the kernel (b): the
    kernel comes whole, and no file of b names a or the shared cache; kcrash's `sys` of the
    adopted dump equals crash's recorded one field by field (what test_core_vs_crash does)."""
    from kcrash.commands import registry
    from kcrash.target.open import open_target

    a = _cache(scratch / "a", shared)
    assert _adopt(a, shared, LEAN).returncode == 0
    b = _cache(scratch / "b", shared, kernel=False)
    # A boot the tables no longer have, shared by both caches (cp -al): not adopted, no refusal.
    _linked_boot(shared, a, "deb12/sysrq/kdump", "deb12/dropped-scenario/kdump")
    _linked_boot(a, b, "deb12/dropped-scenario/kdump")
    out = _adopt(b, a)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 boots adopted, 1 already here" in out.stdout
    for path, text in _texts(b).items():
        if "dropped-scenario" not in str(path):  # b's own cp -al copy, not adopted
            assert str(a) not in text and str(shared) not in text, path
    kernel = json.loads((b / "kernels/deb12/kernel.json").read_text())
    assert kernel["vmlinux"] == str(b / "kernels/deb12" / Path(kernel["vmlinux"]).name)
    e = _entries(b)["deb12/null-deref-lean/kdump-zlib"]
    assert e["vmlinux"] == kernel["vmlinux"] and Path(e["vmlinux"]).exists()

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        registry.run(open_target(e["path"], e["vmlinux"]), "sys")
    ours, crash = parse_sys(buf.getvalue()), parse_sys(Path(e["oracle"]["sys"]).read_text())
    assert crash["DUMPFILE"].startswith(str(b))
    for key, value in crash.items():
        if key not in ("TASKS", "PANIC"):  # crash 8.0.2's known misreadings (test_core_vs_crash)
            assert ours.get(key) == value, f"{key}: ours {ours.get(key)!r}, crash {value!r}"


def _linked_boot(shared: Path, src: Path, bid: str, as_bid: str | None = None) -> Path:
    bdir = src / "dumps" / (as_bid or bid)
    bdir.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-al", shared / "dumps" / bid, bdir], check=True)
    return bdir


@pytest.mark.corpus
def test_a_boot_of_other_code_is_refused_and_nothing_copied(shared: Path, scratch: Path) -> None:
    src = _cache(scratch / "src", shared)
    bdir = _linked_boot(shared, src, LEAN)
    result = json.loads((bdir / "result.json").read_text())
    result["guest_recipe"] = "0" * 20  # built by code whose tables differ from this tree's
    (bdir / "result.json").unlink()  # a new file, not written through the link
    (bdir / "result.json").write_text(json.dumps(result))
    _linked_boot(shared, src, "deb12/sysrq/kdump", "deb12/no-such-scenario/kdump")
    dest = _cache(scratch / "dest", shared)

    out = _adopt(dest, src)
    assert out.returncode == 2
    lines = out.stdout.splitlines()
    assert len(lines) == 3, lines  # one line per refused boot, then the summary
    assert f"refused {LEAN}: recipe hash {'0' * 20} differs" in lines[1]
    assert "refused deb12/no-such-scenario/kdump: not a boot of this tree's tables" in lines[0]
    assert "Traceback" not in out.stderr
    assert not (dest / "dumps").exists() and not (dest / "manifest.json").exists()

    missing = _adopt(dest, src, "deb13/*")
    assert missing.returncode == 2 and "deb13/*: no boot of" in missing.stdout
