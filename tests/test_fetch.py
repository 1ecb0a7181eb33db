"""Fetching debuginfo for real: a real ``debuginfod`` over the corpus's vmlinux, a loopback
server that serves the wrong ELF, and Debian's archive through apt.

Needs the Debian package ``debuginfod`` (elfutils' server) and the corpus; both missing
make the tests FAIL, never skip.  ``test_debian_archive_download_858MB`` downloads the
corpus kernel's ``-dbg`` package (858 MB) from the distribution archive with apt.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kcrash.errors import DebuginfoMismatchError
from kcrash.target.fetch import fetch_debuginfo, find_local, plan
from kcrash.target.fetch.cache import gnu_build_id
from kcrash.target.fetch.deb import package_names
from kcrash.target.fetch.debuginfod import server_urls
from kcrash.target.fetch.distro import debuginfo_package, is_ubuntu_release, release_family
from kcrash.target.fetch.rpm import rhel_package, suse_package


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def kcrash(*args: str, env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "DEBUGINFOD_URLS"}
    full.update(env)
    return subprocess.run(
        [sys.executable, "-m", "kcrash", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full,
    )


# -- fixtures: the corpus kernel and the servers ---------------------------------------------


@pytest.fixture(scope="module")
def kernel() -> dict[str, Any]:
    """The corpus's Debian 12 kernel: release, build id, vmlinux path."""
    try:
        import kcrash_corpus

        kernels = kcrash_corpus.load_manifest()["kernels"]
    except Exception as e:
        pytest.fail(f"the vmcore corpus is missing ({e})")
    k = kernels.get("deb12") or next(iter(kernels.values()), None)
    if not k or not os.path.isfile(k["vmlinux"]):
        pytest.fail("the corpus manifest has no kernel with a vmlinux")
    return dict(k)


@pytest.fixture(scope="module")
def debuginfod(kernel: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real elfutils ``debuginfod`` over a directory holding (a symlink to) the vmlinux.

    debuginfod 0.188 has no option to bind one address: it listens on every interface
    of this test machine, on a random free port, and we talk to it on 127.0.0.1.
    """
    exe = shutil.which("debuginfod")
    if exe is None:
        pytest.fail("debuginfod is not installed (apt-get install debuginfod)")
    top = tmp_path_factory.mktemp("debuginfod")
    (top / "srv").mkdir()
    (top / "srv" / os.path.basename(kernel["vmlinux"])).symlink_to(kernel["vmlinux"])
    if kernel.get("modules_debug_dir"):  # the debug .ko of every module the guests load
        (top / "srv" / "modules").symlink_to(kernel["modules_debug_dir"])
    port = free_port()
    log = open(top / "debuginfod.log", "w")  # noqa: SIM115 - closed at teardown
    cmd = [exe, "-F", "-L", "-p", str(port), "-d", str(top / "db.sqlite"), "-t0", "-g0"]
    cmd += ["--disable-source-scan", str(top / "srv")]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"debuginfod exited {proc.returncode}: {(top / 'debuginfod.log')}")
            if time.monotonic() - start > 300:
                pytest.fail("debuginfod did not index the vmlinux in 300 s")
            try:
                with urllib.request.urlopen(f"{url}/buildid/{kernel['build_id']}/debuginfo") as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.2)
        indexed = time.monotonic() - start
        print(f"debuginfod indexed {kernel['vmlinux']} in {indexed:.1f} s", file=sys.stderr)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


class _Server(http.server.ThreadingHTTPServer):
    body: bytes | None  # None: answer 404
    hits: list[str]


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self.server.hits.append(self.path)
        if self.server.body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.server.body)))
        self.end_headers()
        self.wfile.write(self.server.body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def loopback() -> Iterator[_Server]:
    """A tiny HTTP server on 127.0.0.1 answering every path with ``body`` (or 404)."""
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.body, srv.hits = None, []
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _url(srv: _Server) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}"


# -- debuginfod ----------------------------------------------------------------------------


@pytest.mark.corpus
def test_debuginfod_fetch_into_empty_cache(
    kernel: dict[str, Any], debuginfod: str, tmp_path: Path
) -> None:
    said: list[str] = []
    bid = kernel["build_id"]
    path = fetch_debuginfo(
        kernel["release"],
        bid,
        allow_network=True,
        progress=False,
        say=said.append,
        cache_root=tmp_path,
        debuginfod_urls=[debuginfod],
    )
    assert path == str(tmp_path / bid / "vmlinux")
    assert gnu_build_id(path) == bid
    assert os.path.getsize(path) == os.path.getsize(kernel["vmlinux"])
    assert f"fetching {debuginfod}/buildid/{bid}/debuginfo" in said  # the URL is printed
    # now cached: found again without the network
    again = fetch_debuginfo(kernel["release"], bid, allow_network=False, cache_root=tmp_path)
    assert again == path
    # the build, its release link and the (empty) lock that serialises fetches of the build
    lock = f".fetch-{bid}.lock"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([bid, "by-release", lock])
    assert (tmp_path / lock).stat().st_size == 0


@pytest.mark.corpus
def test_cli_fetches_a_dumps_vmlinux_through_debuginfod(
    corpus: list[dict[str, Any]],
    kernel: dict[str, Any],
    debuginfod: str,
    loopback: _Server,
    tmp_path: Path,
) -> None:
    """``kcrash debuginfo VMCORE --fetch``: build id from the dump; a 404 server is skipped."""
    dump = next(e for e in corpus if e["build_id"] == kernel["build_id"])
    urls = f"{_url(loopback)} {debuginfod}"
    proc = kcrash(
        "debuginfo",
        dump["path"],
        "--fetch",
        env={"XDG_CACHE_HOME": str(tmp_path), "DEBUGINFOD_URLS": urls},
    )
    assert proc.returncode == 0, proc.stderr
    want = tmp_path / "kcrash" / "debuginfo" / kernel["build_id"] / "vmlinux"
    assert proc.stdout.strip() == str(want)
    assert loopback.hits == [f"/buildid/{kernel['build_id']}/debuginfo"]
    assert f"{debuginfod}/buildid/{kernel['build_id']}/debuginfo" in proc.stderr
    assert "no debuginfo for build id" in proc.stderr


@pytest.mark.corpus
def test_workers_sharing_a_cache_fetch_a_build_once(
    corpus: list[dict[str, Any]],
    kernel: dict[str, Any],
    debuginfod: str,
    loopback: _Server,
    tmp_path: Path,
) -> None:
    """Two fetches of one build into one ``KCRASH_DEBUGINFO_CACHE`` (a fleet's workers after
    a new kernel's first crashes): one downloads, the other waits for it and reads the cache.

    The test holds the build's lock itself until both processes say they wait, so the race
    is the worst case every time, not a matter of timing."""
    from kcrash.target.fetch.cache import fetch_lock

    dump = next(e for e in corpus if e["build_id"] == kernel["build_id"])
    shared = tmp_path / "shared-cache"
    env = {
        "KCRASH_DEBUGINFO_CACHE": str(shared),
        "DEBUGINFOD_URLS": f"{_url(loopback)} {debuginfod}",
    }
    full = {k: v for k, v in os.environ.items() if k != "DEBUGINFOD_URLS"} | env
    cmd = [sys.executable, "-m", "kcrash", "debuginfo", dump["path"], "--fetch"]
    errs = [tmp_path / f"err{i}" for i in range(2)]
    with fetch_lock(kernel["build_id"], shared):
        procs = []
        for err in errs:
            with open(err, "w") as f:
                procs.append(
                    subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=f, text=True, env=full)
                )
        deadline = time.monotonic() + 300
        while not all("waiting for another kcrash" in e.read_text() for e in errs):
            assert time.monotonic() < deadline, [e.read_text() for e in errs]
            assert all(p.poll() is None for p in procs), [e.read_text() for e in errs]
            time.sleep(0.2)
    outs = [p.communicate(timeout=600)[0] for p in procs]
    said = [e.read_text() for e in errs]
    assert [p.returncode for p in procs] == [0, 0], said
    want = str(shared / kernel["build_id"] / "vmlinux")
    assert [o.strip() for o in outs] == [want, want]
    fetched = [s for s in said if f"{debuginfod}/buildid/{kernel['build_id']}/debuginfo" in s]
    assert len(fetched) == 1, said
    assert sum("fetched by another kcrash" in s for s in said) == 1, said
    assert loopback.hits == [f"/buildid/{kernel['build_id']}/debuginfo"]  # one process asked


@pytest.mark.corpus
def test_find_local_reads_the_gnu_build_id(kernel: dict[str, Any]) -> None:
    """The corpus vmlinux (with a Xen note of type 3 before the GNU one) is found by build id."""
    d = os.path.dirname(kernel["vmlinux"])
    assert find_local(kernel["release"], kernel["build_id"], [d]) == kernel["vmlinux"]
    assert find_local(kernel["release"], "00" * 20, [d]) is None


# -- a server that lies ---------------------------------------------------------------------


def test_wrong_build_id_is_refused(loopback: _Server, tmp_path: Path) -> None:
    """A server answering with another ELF: refused in one line, nothing cached."""
    other = shutil.which("ls") or sys.executable
    other_id = gnu_build_id(other)
    assert other_id, f"{other} has no GNU build id"
    loopback.body = Path(other).read_bytes()
    wanted = "eb4fbcd037e7253717950bf2b93bd5566f47c56f"
    with pytest.raises(DebuginfoMismatchError) as exc:
        fetch_debuginfo(
            "6.1.0-56-amd64",
            wanted,
            allow_network=True,
            progress=False,
            say=lambda _m: None,
            cache_root=tmp_path,
            debuginfod_urls=[_url(loopback)],
        )
    msg = str(exc.value)
    assert "\n" not in msg and "refused" in msg and wanted in msg and other_id in msg
    assert _url(loopback) in msg
    assert not (tmp_path / wanted).exists()
    assert not list(tmp_path.glob(".*part"))

    proc = kcrash(
        "debuginfo",
        "--build-id",
        wanted,
        "--fetch",
        env={"XDG_CACHE_HOME": str(tmp_path), "DEBUGINFOD_URLS": _url(loopback)},
    )
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("kcrash: ") and "refused: served build id" in last


def test_nothing_leaves_the_machine_unless_asked(loopback: _Server, tmp_path: Path) -> None:
    bid = "ab" * 20
    assert (
        fetch_debuginfo(
            None, bid, allow_network=False, cache_root=tmp_path, debuginfod_urls=[_url(loopback)]
        )
        is None
    )
    proc = kcrash(
        "debuginfo",
        "--build-id",
        bid,
        env={"XDG_CACHE_HOME": str(tmp_path), "DEBUGINFOD_URLS": _url(loopback)},
    )
    assert proc.returncode == 1
    assert f"debuginfod: {_url(loopback)}/buildid/{bid}/debuginfo" in proc.stderr
    assert "--fetch" in proc.stderr
    assert loopback.hits == []


# -- Debian's archive, through apt ----------------------------------------------------------


@pytest.mark.corpus
def test_debian_archive_download_858MB(kernel: dict[str, Any], tmp_path: Path) -> None:
    """DOWNLOADS 858 MB: the corpus kernel's -dbg package, with the machine's own apt.

    Only vmlinux and one module (``aesni-intel.ko``, asked as ``aesni_intel``) are
    extracted; the result must carry the corpus kernel's build id.
    """
    if shutil.which("apt-get") is None:
        pytest.fail("apt-get is needed for the Debian archive path")
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    start = time.monotonic()
    proc = kcrash(
        "debuginfo", "--release", kernel["release"], "--fetch", "--module", "aesni_intel", env=env
    )
    took = time.monotonic() - start
    print(f"Debian -dbg fetch + extract: {took:.1f} s", file=sys.stderr)
    assert proc.returncode == 0, proc.stderr
    entry = tmp_path / "kcrash" / "debuginfo" / kernel["build_id"]
    assert proc.stdout.strip() == str(entry / "vmlinux")
    assert gnu_build_id(entry / "vmlinux") == kernel["build_id"]
    assert (entry / "kernel/arch/x86/crypto/aesni-intel.ko").is_file()
    assert "apt fetched http" in proc.stderr
    assert f"linux-image-{kernel['release']}-dbg" in proc.stderr
    # cached: by build id, and by release for dumps without one
    for args in (["--build-id", kernel["build_id"]], ["--release", kernel["release"]]):
        again = kcrash("debuginfo", *args, env=env)
        assert again.returncode == 0 and again.stdout.strip() == str(entry / "vmlinux")


# -- names and plans --------------------------------------------------------------------------


def test_release_families_and_package_names() -> None:
    assert release_family("6.1.0-56-amd64") == "debian"
    assert release_family("5.15.0-91-generic") == "debian"
    assert is_ubuntu_release("5.15.0-91-generic") and not is_ubuntu_release("6.1.0-56-amd64")
    assert release_family("5.14.0-362.8.1.el9_3.x86_64") == "rhel"
    assert release_family("6.5.6-300.fc39.x86_64") == "rhel"
    assert release_family("5.14.21-150500.55.39-default") == "suse"
    assert release_family("6.18.44-custom") is None
    # Debian 13 names its ABI after the upstream version (the corpus's deb13 kernel).
    assert release_family("6.12.117+deb13-amd64") == "debian"
    assert not is_ubuntu_release("6.12.117+deb13-amd64")
    assert package_names("6.12.117+deb13-amd64") == ["linux-image-6.12.117+deb13-amd64-dbg"]
    assert package_names("6.1.0-56-amd64") == ["linux-image-6.1.0-56-amd64-dbg"]
    assert package_names("5.15.0-91-generic")[0] == "linux-image-unsigned-5.15.0-91-generic-dbgsym"
    assert rhel_package("5.14.0-362.8.1.el9_3.x86_64") == (
        "kernel-debuginfo-5.14.0-362.8.1.el9_3.x86_64"
    )
    assert suse_package("5.14.21-150500.55.39-default") == (
        "kernel-default-debuginfo",
        "5.14.21-150500.55.39",
    )
    assert server_urls("https://a/ http://b") == ["https://a", "http://b"]
    # Messages name the package of the family that built the kernel, not always Debian's.
    assert debuginfo_package("5.14.0-362.8.1.el9_3.x86_64") == rhel_package(
        "5.14.0-362.8.1.el9_3.x86_64"
    )
    assert debuginfo_package("5.14.21-150500.55.39-default").startswith("kernel-default-debuginfo")
    assert debuginfo_package("6.12.117+deb13-amd64") == "linux-image-6.12.117+deb13-amd64-dbg"
    assert "linux-image" not in debuginfo_package("6.18.44-custom")


def test_rhel_release_prints_the_package_and_command(tmp_path: Path) -> None:
    said: list[str] = []
    rel = "5.14.0-362.8.1.el9_3.x86_64"
    got = fetch_debuginfo(
        rel, None, allow_network=True, say=said.append, cache_root=tmp_path, debuginfod_urls=[]
    )
    assert got is None
    text = "\n".join(said)
    assert f"kernel-debuginfo-{rel}" in text and "dnf debuginfo-install" in text
    assert any("dnf" in line for line in plan(rel, None))


@pytest.mark.corpus
def test_fetched_vmlinux_gives_source_lines_on_a_corpus_dump(
    corpus: list[dict[str, Any]], kernel: dict[str, Any], debuginfod: str, tmp_path: Path
) -> None:
    """The vmlinux that came through debuginfod symbolizes a real dump down to source lines.

    drgn is driven directly here so the check covers the fetched file alone (what
    ``kcrash analyze --fetch-debuginfo`` then hands to the target layer).
    """
    import drgn

    path = fetch_debuginfo(
        kernel["release"],
        kernel["build_id"],
        allow_network=True,
        progress=False,
        say=lambda _m: None,
        cache_root=tmp_path,
        debuginfod_urls=[debuginfod],
    )
    assert path is not None
    entry = next(
        e
        for e in corpus
        if e["build_id"] == kernel["build_id"]
        and e["format"] == "kdump"
        and e["capture"] == "kdump"
        and e["expected"]["culprit_module"] == "vmlinux"
    )
    prog = drgn.Program()
    prog.set_core_dump(entry["path"])
    # modules' debuginfo is not asked for here; vmlinux's must have loaded
    with contextlib.suppress(drgn.MissingDebugInfoError):
        prog.load_debug_info([path])
    frames = {f.name: f for f in prog.crashed_thread().stack_trace() if f.name}
    culprit = entry["expected"]["culprit_function"]
    assert culprit in frames, sorted(frames)
    assert ".c:" in str(frames[culprit].source())


@pytest.mark.corpus
def test_module_debuginfo_through_debuginfod_gives_module_source_lines(
    corpus: list[dict[str, Any]], kernel: dict[str, Any], debuginfod: str, tmp_path: Path
) -> None:
    """``--with-modules``: each loaded module's debug file by its own build id, verified;
    then the out-of-tree culprit module symbolizes to its source file."""
    import drgn

    entry = next(
        e
        for e in corpus
        if e["build_id"] == kernel["build_id"]
        and e["format"] == "kdump"
        and e["capture"] == "kdump"
        and e["expected"]["culprit_module"] not in ("vmlinux", "")
    )
    proc = kcrash(
        "debuginfo",
        entry["path"],
        "--fetch",
        "--with-modules",
        env={"XDG_CACHE_HOME": str(tmp_path), "DEBUGINFOD_URLS": debuginfod},
    )
    assert proc.returncode == 0, proc.stderr
    served = {
        p.name.removesuffix(".ko").replace("-", "_")
        for p in Path(kernel["modules_debug_dir"]).glob("*.ko")
    }
    cache_entry = tmp_path / "kcrash" / "debuginfo" / kernel["build_id"]
    got = {p.stem for p in (cache_entry / "debuginfod").glob("*.ko")}
    culprit_module = entry["expected"]["culprit_module"]
    assert culprit_module in got
    assert got <= served
    assert f"module debug files: {len(got)} of" in proc.stderr

    prog = drgn.Program()
    prog.set_core_dump(entry["path"])
    opts = prog.debug_info_options
    opts.kernel_directories = (str(cache_entry),)
    opts.try_kmod = drgn.KmodSearchMethod.WALK
    opts.directories = ()
    with contextlib.suppress(drgn.MissingDebugInfoError):
        prog.load_debug_info([str(cache_entry / "vmlinux")], default=True)
    frames = {f.name: f for f in prog.crashed_thread().stack_trace() if f.name}
    culprit = entry["expected"]["culprit_function"]
    assert culprit in frames, sorted(frames)
    assert f"{culprit_module}.c:" in str(frames[culprit].source())


@pytest.mark.corpus
def test_analyze_fetch_debuginfo_gets_source_lines(
    corpus: list[dict[str, Any]], kernel: dict[str, Any], debuginfod: str, tmp_path: Path
) -> None:
    """Issue 9's end: ``kcrash analyze --fetch-debuginfo`` on a corpus dump, no vmlinux on
    this machine, debuginfod the only source: the report is made in DWARF mode from the
    fetched vmlinux (source lines from that file: see the drgn test above)."""
    import json

    entry = next(
        e
        for e in corpus
        if e["build_id"] == kernel["build_id"]
        and e["format"] == "kdump"
        and e["capture"] == "kdump"
    )
    env = {"XDG_CACHE_HOME": str(tmp_path), "DEBUGINFOD_URLS": debuginfod}
    env["KCRASH_DEBUGINFO_PATH"] = ""
    proc = kcrash(
        "analyze", entry["path"], "--fetch-debuginfo", "--format", "json", env=env, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    vmlinux = tmp_path / "kcrash" / "debuginfo" / kernel["build_id"] / "vmlinux"
    assert report["input"]["mode"] == "dwarf"
    assert report["input"]["vmlinux"] == str(vmlinux)
    assert f"{debuginfod}/buildid/{kernel['build_id']}/debuginfo" in proc.stderr
    # DWARF for the core kernel: nothing in "lacks" about missing source lines for vmlinux
    # (modules' debuginfo is fetch_module_debuginfo's job, not asked for here)
    assert not [lack for lack in report["input"]["lacks"] if "no DWARF" in lack]
