"""The real vmcore corpus is what the manifest says it is.

Every manifest entry: the dump is there and unchanged (sha256), crash's saved `log` holds the
panic message the scenario is expected to produce, crash's `bt` is not empty. These tests
FAIL, never skip, when the corpus has not been built: without it nothing else is tested.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kcrash_corpus
import pytest
from kcrash_corpus.build import plan
from kcrash_corpus.tables import ALL_FORMATS, FORMATS, HOST_FILES, KERNELS, ORACLE_COMMANDS
from kcrash_corpus.util import BuildError, sha256_file

ENTRY_KEYS = {
    "id", "boot", "scenario", "kernel", "release", "build_id", "format", "compression",
    "capture", "partial", "path", "vmlinux", "modules_debug_dir", "dmesg", "console", "oracle",
    "expected", "guest", "size", "sha256", "recipe_version",
}  # fmt: skip
#: Scenarios issue 2 asks for, by scenario id.
REQUIRED_SCENARIOS = {
    "sysrq", "null-deref", "bug-on", "panic", "soft-lockup", "hung-task", "divide-error",
    "list-corruption", "warn", "gpf", "use-after-free", "stack-protector", "oom", "irq-timer",
    "cpu1-page-fault", "null-deref-4g",
}  # fmt: skip


def _load() -> list[Any]:
    """Entries as test parameters; one failing parameter when the corpus is missing."""
    try:
        entries = kcrash_corpus.load()
    except kcrash_corpus.CorpusMissingError as exc:
        return [pytest.param(str(exc), id="corpus-missing")]
    return [pytest.param(e, id=e["id"]) for e in entries] or [
        pytest.param("manifest.json has no entries", id="corpus-empty")
    ]


ENTRIES = _load()


def _entry(param: Any) -> dict[str, Any]:
    if isinstance(param, str):
        pytest.fail(param)
    return param


# -- the recipe tables (no corpus needed) ------------------------------------------------------
def test_plan_covers_issue_2() -> None:
    boots = plan()
    deb12 = {b.scenario.id for b in boots if b.kernel.name == "deb12"}
    assert deb12 >= REQUIRED_SCENARIOS
    for kernel in KERNELS[1:]:
        got = {b.scenario.id for b in boots if b.kernel.name == kernel.name}
        assert {"sysrq", "null-deref", "soft-lockup"} <= got, kernel.name
    for scenario in ("null-deref", "sysrq"):
        formats = {
            f
            for b in boots
            if b.kernel.name == "deb12" and b.scenario.id == scenario
            for f in b.formats
        }
        # The raw `cp /proc/vmcore` (820 MB for a 1 GB guest) only once: deb12 null-deref.
        copy = set() if scenario == "null-deref" else {"vmcore-copy"}
        assert formats == set(ALL_FORMATS) - {"kdump-zlib-mismatch"} - copy, scenario
    assert [b.id for b in boots if "vmcore-copy" in b.formats] == ["deb12/null-deref/kdump"]
    assert all("kdump-zlib" in b.formats for b in boots if b.capture == "kdump")
    # Debian 13: every scenario of deb12 but its size/QEMU variants and oom (left out until
    # the no-debuginfo unwinder crosses 6.12's panic(): see tables.py), every format but
    # QEMU's once between null-deref and sysrq, and the dump of Debian 12's makedumpfile.
    # Plus issue 18's hang rows (kdump only; test_plan_covers_issue_18_extra_modules).
    deb13 = [b for b in boots if b.kernel.name == "deb13"]
    assert {b.scenario.id for b in deb13} == (REQUIRED_SCENARIOS | HANGS) - {
        "null-deref-4g",
        "oom",
    }
    assert {f for b in deb13 for f in b.formats} == set(ALL_FORMATS) - {
        "qemu-elf",
        "qemu-kdump",
        "vmcore-copy",
    }
    assert [b.formats for b in deb13 if "kdump-zlib-mismatch" in b.formats] == [
        ("kdump-zlib", "elf", "kdump-zstd", "kdump-zlib-mismatch")
    ]


def test_plan_covers_issue_18_extra_modules() -> None:
    """Issue 18's scenarios load a module of their own: the hangs (kcrash_hang) run on
    Debian 12, the memory and slab-object crashes (kcrash_memslab) on Debian 12 and, for
    uaf-track's kdump, Debian 11; each caught by kdump and by QEMU on Debian 12. Only they
    load one, so every other boot's recipe is what it was (kcrash_crash.c is untouched)."""
    from kcrash_corpus.guest import job_script

    boots = plan()
    want = {
        *(("deb12", s, c, "kcrash_hang") for s in HANGS for c in ("kdump", "qemu")),
        # Debian 13's kernel (6.12) for the same hangs: kdump only.
        *(("deb13", s, "kdump", "kcrash_hang") for s in HANGS),
        *(("deb12", s, c, "kcrash_memslab") for s in MEMSLAB for c in ("kdump", "qemu")),
        ("deb11", "uaf-track", "kdump", "kcrash_memslab"),
        *(("deb12", s, c, "kcrash_spin") for s in SPIN for c in ("kdump", "qemu")),
        # Issue 19's scale guests: 10,000 threads, and 16 GB touched (tests/test_scale_corpus.py).
        ("deb12", "crowd-hung-task", "kdump", "kcrash_scale"),
        ("deb12", "null-deref-16g", "qemu", "kcrash_scale"),
    }
    got = {
        (b.kernel.name, b.scenario.id, b.capture, b.scenario.extra_module)
        for b in boots
        if b.scenario.extra_module
    }
    assert got == want
    for b in boots:
        script = job_script(b.scenario, b.capture, b.id, b.hosts_tree)
        if b.scenario.extra_module:
            assert f"insmod /share/{b.scenario.extra_module}.ko" in script
            assert f"/proc/{b.scenario.extra_module}" in b.scenario.trigger
        elif b.scenario.kernel_modules:
            # io-stall loads Debian's own modules (null_blk, ext4) from the image package.
            assert "extra_module" not in b.scenario.recipe()
            for spec in b.scenario.kernel_modules:
                assert f"insmod /share/kmod/{spec.split()[0]}.ko" in script, b.id
        else:
            assert "insmod" not in script and "extra_module" not in b.scenario.recipe()


HANGS = {"abba-deadlock", "mutex-owner-waits", "rwsem-writer-stall"}
MEMSLAB = {"slab-leak", "uaf-track"}
SPIN = {"spin-held", "spin-held-heap"}


# -- every manifest entry -----------------------------------------------------------------------
@pytest.mark.corpus
@pytest.mark.parametrize("param", ENTRIES)
def test_entry_schema(param: Any) -> None:
    e = _entry(param)
    assert set(e) >= ENTRY_KEYS, ENTRY_KEYS - set(e)
    assert e["id"] == f"{e['kernel']}/{e['scenario']}/{e['id'].rsplit('/', 1)[1]}"
    fmt = FORMATS[e["id"].rsplit("/", 1)[1]]
    assert (e["format"], e["compression"], e["capture"]) == (
        fmt["format"],
        fmt["compression"],
        fmt["capture"],
    )
    # makedumpfile -d 31 leaves pages out; a plain copy of /proc/vmcore keeps every one.
    assert e["partial"] is (e["capture"] == "kdump" and not fmt.get("copy"))
    if e["expected"].get("crash_incomplete"):
        assert "page-excluded" in e["oracle"]  # crash's complaints, not an oracle
    else:
        assert set(ORACLE_COMMANDS) <= set(e["oracle"])
    assert set(e["expected"]) == {
        "class", "panic_substring", "culprit_function", "culprit_module", "crash_incomplete"
    }  # fmt: skip
    # Debian 13's kernel is read by the crash of its own release; 8.0.2 predates 6.12. An
    # arm64 dump by crash 8.0.6 built for ARM64 dumps on this host (crash_arm64.py).
    want = "crash 8.0.6 (Debian 13)" if e["kernel"] == "deb13" else "crash 8.0.2 (Debian 12)"
    if e.get("arch", "x86_64") == "arm64":
        want = "crash 8.0.6 target=ARM64 (Debian trixie source)"
    assert e["oracle_crash"] == want
    assert e.get("arch", "x86_64") == next(k.arch for k in KERNELS if k.name == e["kernel"])
    assert len(e["build_id"]) == 40
    assert Path(e["vmlinux"]).is_file()
    assert (Path(e["modules_debug_dir"]) / "kcrash_crash.ko").is_file()


@pytest.mark.corpus
@pytest.mark.parametrize("param", ENTRIES)
def test_dump_present_and_unchanged(param: Any) -> None:
    e = _entry(param)
    path = Path(e["path"])
    assert path.is_file(), f"{path} missing: rebuild the corpus"
    assert path.stat().st_size == e["size"]
    assert sha256_file(path) == e["sha256"], f"{path} changed since it was built"


@pytest.mark.corpus
@pytest.mark.parametrize("param", ENTRIES)
def test_crash_log_has_panic_message(param: Any) -> None:
    e = _entry(param)
    if not e["expected"].get("crash_incomplete"):  # crash may stop early on that one
        log = Path(e["oracle"]["log"]).read_text(errors="replace")
        assert e["expected"]["panic_substring"] in log
    console = Path(e["console"]).read_text(errors="replace")
    assert e["expected"]["panic_substring"] in console
    if e["dmesg"]:
        assert e["expected"]["panic_substring"] in Path(e["dmesg"]).read_text(errors="replace")


@pytest.mark.corpus
@pytest.mark.parametrize("param", ENTRIES)
def test_crash_bt_not_empty(param: Any) -> None:
    e = _entry(param)
    if e["expected"].get("crash_incomplete"):
        excluded = Path(e["oracle"]["page-excluded"]).read_text(errors="replace")
        assert "page excluded" in excluded, excluded
        return
    bt = Path(e["oracle"]["bt"]).read_text(errors="replace")
    if e.get("arch") == "arm64" and e["capture"] == "qemu":
        # crash 8.0.6 built for ARM64 reads no CPU registers from QEMU's arm64 captures
        # (ELF and kdump format alike: QEMU writes more notes per CPU than the NT_PRSTATUS
        # one crash expects in turn): it says so and lists the panic task without a frame.
        # kcrash reads the ELF capture's notes (tests/test_core_vs_crash.py).
        session = Path(e["oracle"]["bt"]).parent / "crash.stdout"
        assert "cannot find NT_PRSTATUS note" in session.read_text(errors="replace")
        assert "PID:" in bt and " #0 " not in bt, bt[:500]
    else:
        assert "PID:" in bt and " #0 " in bt, bt[:500]
    sys_out = Path(e["oracle"]["sys"]).read_text(errors="replace")
    assert e["release"] in sys_out


@pytest.mark.corpus
def test_hosts_trees() -> None:
    try:
        manifest = kcrash_corpus.load_manifest()
    except kcrash_corpus.CorpusMissingError as exc:
        pytest.fail(str(exc))
    hosts = manifest["hosts"]
    assert set(hosts) == {"ready", "not-ready"}
    for name, host in hosts.items():
        root = Path(host["root"])
        for f in HOST_FILES:
            assert (root / f.lstrip("/")).is_file(), f"{name}: {f}"
        assert (root / "uname-r").read_text().strip() == host["release"]
    ready = Path(hosts["ready"]["root"])
    not_ready = Path(hosts["not-ready"]["root"])
    assert (ready / "sys/kernel/kexec_crash_loaded").read_text().strip() == "1"
    assert (not_ready / "sys/kernel/kexec_crash_loaded").read_text().strip() == "0"
    assert "crashkernel=" in (ready / "proc/cmdline").read_text()
    assert "crashkernel=" not in (not_ready / "proc/cmdline").read_text()


@pytest.mark.corpus
def test_same_boot_same_reading() -> None:
    """Dumps of one crash in different formats read the same in crash: this is what makes
    the re-encoded snappy/zstd dumps (and each format reader) trustworthy."""
    try:
        entries = kcrash_corpus.load()
    except kcrash_corpus.CorpusMissingError as exc:
        pytest.fail(str(exc))
    by_boot: dict[str, list[dict[str, Any]]] = {}
    for e in entries:
        if not e["expected"].get("crash_incomplete"):  # crash stumbles on that one, by design
            by_boot.setdefault(e["boot"], []).append(e)
    multi = {b: es for b, es in by_boot.items() if len(es) > 1}
    assert multi, "no boot has several formats"
    for boot, es in multi.items():
        # crash 8.0.2 reads the *other* CPUs' registers of QEMU's ELF and kdump outputs
        # differently (ELF: `stop_this_cpu` frame #0; kdump: an exception frame in it), so
        # `bt -a` is compared for makedumpfile's formats only.
        keys = ("log", "bt", "bt -a", "mod") if es[0]["capture"] == "kdump" else ("log", "bt")
        for key in keys:
            texts = {e["id"]: Path(e["oracle"][key]).read_text(errors="replace") for e in es}
            assert len(set(texts.values())) == 1, f"{boot}: crash '{key}' differs: {list(texts)}"


def test_every_kernel_is_pinned_and_built_at_its_pin() -> None:
    """Each KERNELS row names an exact ABI and version, and the built kernel is that build:
    a fresh build must reproduce the corpus the tests were written on (issue 12)."""
    manifest = kcrash_corpus.load_manifest()
    for k in KERNELS:
        assert k.abi and k.version, k
        state = manifest["kernels"].get(k.name)
        assert state is not None, f"kernel {k.name} was not built"
        assert state["release"] == k.release
        assert state["packages"][f"linux-image-{k.release}"] == k.version
        assert state["packages"][f"linux-image-{k.release}-dbg"] == k.version


def test_bump_rewrites_exactly_one_pin() -> None:
    from kcrash_corpus.bump import TABLES, rewrite_pin

    text = TABLES.read_text()
    k = KERNELS[-1]
    new = rewrite_pin(text, k.name, "9.9.9-99", "9.9.9-1")
    changed = [(a, b) for a, b in zip(text.splitlines(), new.splitlines(), strict=True) if a != b]
    assert len(changed) in (1, 2), changed  # the ABI and version (one line or two)
    assert k.abi not in "".join(b for _, b in changed) and "9.9.9-99" in new
    with pytest.raises(BuildError):
        rewrite_pin(text, "no-such-kernel", "1", "1")


def test_a_pin_debian_no_longer_serves_is_one_clear_error(tmp_path: Path) -> None:
    """Asks Debian's real archive (the corpus build does too) for a version that never
    existed: the build must stop with one line that names the pin and the way out."""
    from kcrash_corpus.kernel import KernelBuilder
    from kcrash_corpus.tables import Kernel

    k = KERNELS[0]
    gone = Kernel(k.name, k.suite, k.abi, "0.0-never")
    root = kcrash_corpus.cache_root()  # reuses the build's apt lists
    with pytest.raises(BuildError) as err:
        KernelBuilder(root, gone).resolve()
    msg = str(err.value)
    assert "\n" not in msg
    assert f"linux-image-{k.release} 0.0-never" in msg and "no longer serves" in msg
    assert k.version in msg  # what Debian serves instead
    assert f"kcrash_corpus bump {k.name}" in msg


@pytest.mark.corpus
def test_raw_vmcore_copy_is_the_whole_memory() -> None:
    """The one raw `cp /proc/vmcore` (deb12 null-deref): an ELF core file of all the crashed
    kernel's memory, no page filtered. Its PT_LOAD segments hold the 1 GB guest's RAM less
    the crashkernel= reservation (and firmware holes), so it is far bigger than the same
    crash's `makedumpfile -E -d 31` ELF; kcrash's reading of it is compared with crash's in
    test_core_vs_crash.py like every other entry, and crash reads it like the same boot's
    other formats (test_same_boot_same_reading)."""
    from elftools.elf.elffile import ELFFile

    try:
        entries = kcrash_corpus.load()
    except kcrash_corpus.CorpusMissingError as exc:
        pytest.fail(str(exc))
    copies = [e for e in entries if e["id"].endswith("/vmcore-copy")]
    assert [e["id"] for e in copies] == ["deb12/null-deref/vmcore-copy"]
    e = copies[0]
    assert (e["format"], e["partial"], e["flags"]) == ("elf", False, "cp /proc/vmcore")
    with open(e["path"], "rb") as f:
        elf = ELFFile(f)
        assert elf["e_type"] == "ET_CORE"
        loads = [s for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"]
        notes = [n["n_name"] for s in elf.iter_segments() if s["p_type"] == "PT_NOTE"
                 for n in s.iter_notes()]  # fmt: skip
    assert "VMCOREINFO" in notes and notes.count("CORE") == e["guest"]["cpus"]
    # kexec adds the kernel text's own mapping as a segment over RAM already listed: count
    # each physical byte once.
    mib, covered, end = 1 << 20, 0, 0
    for start, size in sorted((s["p_paddr"], s["p_filesz"]) for s in loads):
        covered += max(0, start + size - max(start, end))
        end = max(end, start + size)
    ram = covered // mib
    reserved = int(e["guest"]["crashkernel"].rstrip("M"))
    # Below the reservation by what the firmware keeps (the 640K-1M hole, ACPI, e820 gaps).
    assert e["guest"]["ram_mb"] - reserved - 32 <= ram <= e["guest"]["ram_mb"] - reserved, ram
    assert e["size"] >= sum(s["p_filesz"] for s in loads)
    elf_d31 = next(x for x in entries if x["id"] == "deb12/null-deref/elf")
    assert e["size"] > 4 * elf_d31["size"]
