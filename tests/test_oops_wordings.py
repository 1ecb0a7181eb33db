"""Real crash text of every kernel wording since 3.10 and of other architectures.

Each sample under ``tests/data/oops/`` is verbatim public text (a kernel mailing
list message on lore.kernel.org, a public GitHub file, or google/syzkaller's
report test data, Apache-2.0, see ``SYZKALLER-LICENSE``); its first ``# `` lines
name the source.  Each row asserts the class, the crash site (the function at
RIP / pc / NIP / PSW as parsed from the text, ``None`` for a call through a NULL
pointer or a report without registers) and the culprit.

The messy forms (collapsed line breaks, CRLF, HTML entities, syslog/journal/ISO
prefixes, ``dmesg -T``, caller ids with another CPU interleaved, mail quoting,
several crashes in one log) are DERIVED MECHANICALLY from these real samples in
the tests below, the way ``test_oops_formats.py`` derives them from the corpus.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest

from kcrash.diagnosis import diagnose, render_messages
from kcrash.oops.text import read_text

DATA = Path(__file__).parent / "data" / "oops"

# name: (class, crash site, culprit, fault address or None)
EXPECTED: dict[str, tuple[str, str | None, str | None, str | None]] = {
    # 3.10-4.14: old NULL wording "(null)", IP: [<...>], RHEL 7 CPU line with dashes;
    # RIP is NULL (a call through a NULL pointer): the caller at RSP is the culprit
    "centos7-crash-session": ("null-deref", None, "process_bprm_put", "0x0"),
    "x86-null-old-wording": ("null-deref", None, "inet_autobind", "0x0"),
    # crash bt with "[exception RIP: ...]" and RHEL 7's async-PF fault path, no log
    "centos7-bt-exception-rip": ("oops", "load_image_lzo", "load_image_lzo", None),
    # 6.10+: "Oops: Oops: 0000", "Oops: general protection fault", "Oops: invalid opcode"
    "x86-oops-oops-6.13": ("bad-paging", "do_raw_spin_lock", "process_srcu", "0xffffffff9175c704"),
    "x86-oops-gpf-6.x": ("gpf", "__se_sys_mremap", "sys_mremap", "0xdffffc0000000004"),
    "x86-oops-invalid-opcode-6.15": ("bug-on", "folio_unlock", "f2fs_sync_node_pages", None),
    # stack overflow (guard page) vs a real double fault
    "x86-task-stack-guard": (
        "stack-overflow",
        "__sanitizer_cov_trace_const_cmp4",
        "tls_setsockopt",
        None,
    ),
    "x86-stack-overflow-double-fault": ("stack-overflow", "netdev_next_lower_dev_rcu", None, None),
    "x86-panic-double-fault": (
        "double-fault",
        "kvm_async_pf_task_wait",
        "kvm_async_pf_task_wait",
        None,
    ),
    # lockdep: 2.6/3.x brackets and 4.x WARNING wording (no stack in these logs)
    "x86-lockdep-brackets": ("lockdep", None, None, None),
    "x86-lockdep-4.12": ("lockdep", None, None, None),
    "x86-suspicious-rcu": ("lockdep", None, "rds_tcp_conn_alloc", None),
    # sanitizers: UBSAN < 5.7, KCSAN, KMSAN; kmemleak
    "x86-ubsan-old": ("sanitizer", None, "ip_idents_reserve", None),
    "x86-kcsan": ("sanitizer", None, "e1000_clean_rx_irq", None),
    "x86-kmsan": ("sanitizer", None, "prepare_task_switch", None),
    "x86-memleak": ("memory-leak", None, "new_inode_pseudo", None),
    # 3.19: panic_on_oom's "Out of memory and no killable processes..." after the task
    # list (no "invoked oom-killer" report in the quoted log); the stack is the allocation
    "x86-oom-panic-3.19": ("oom-panic", None, None, None),
    # hardware: APEI/GHES fatal memory and PCIe errors blame no code
    "ghes-memory-fatal": ("machine-check", None, None, None),
    "ghes-pcie-fatal-quoted": ("machine-check", None, None, None),
    # arm64: 3.18 "PC is at", 5.9 8-digit ESR, 6.10 16-digit ESR
    "arm64-3.18": ("bad-paging", "_snd_timer_stop.constprop.9", "_snd_timer_stop", None),
    "arm64-5.9-callers": (
        "bad-paging",
        "selinux_socket_sendmsg",
        "selinux_socket_sendmsg",
        "0xdfffa00000000003",
    ),
    "arm64-6.10-null": (
        "null-deref",
        "may_access_direct_pkt_data",
        "may_access_direct_pkt_data",
        "0x4",
    ),
    # ppc64le NIP/LR, s390x Krnl PSW / Last Breaking-Event-Address
    "ppc64le": (
        "bad-paging",
        "partition_sched_domains_locked",
        "partition_sched_domains_locked",
        "0x8000000041a25f20",
    ),
    "s390x-bug-on": ("bug-on", "btrfs_compress_folios", "btrfs_compress_folios", None),
    # arm64 6.x: a permission-fault wording, "(P)" tag, "Oops: Fatal exception", mail-indented
    "arm64-6.15-tagged-quoted": (
        "bad-paging",
        "wakeup_flusher_threads",
        "wakeup_flusher_threads",
        "0x78",
    ),
    # arm64 6.16 "(C)" tag; the panic line wrapped by a mail client (">> " quoting)
    "arm64-6.16-wrapped-panic": ("panic", None, "exynos_sysmmu_irq", None),
    # RHEL 8 "--------- -  -" CPU line wrapped in a quoted mail; a WARNING, then the
    # GPF [#1] whose call trace was not quoted: the culprit is unknown, not invented
    "rhel8-quoted-wrapped-two-reports": (
        "gpf",
        "__pv_queued_spin_lock_slowpath",
        None,
        "0x646e61725f770b07",
    ),
    # 3.10 "IP: [<addr>] f+0x/0x [mod]", RHEL 7 "------------ T" CPU line
    "centos7-ip-wording-module": ("null-deref", "teql_destroy", "teql_destroy", "0xa8"),
    # 6.10+ "Oops: stack segment": a #SS on a poisoned list pointer (KASAN shadow access)
    "x86-oops-stack-segment-6.18": (
        "gpf",
        "__list_add_valid_or_report",
        "diUpdatePMap",
        "0xfbd59c0000000021",
    ),
    # x86 MCE panic, quoted in a mail: the hardware, not code
    "x86-mce-fatal-quoted": ("machine-check", None, None, None),
    # i386: "EIP is at f", "EIP: [<addr>] f [mod] SS:ESP" after the trace, "Pid: N, comm:"
    "i386-eip-after-trace": ("null-deref", "ir_register_class", "ir_register_class", "0x0"),
    # arm64 5.x "Call trace:" starting with dump_backtrace/show_stack; a WARN with
    # panic_on_warn (debug_print_object is ODEBUG's reporter, the caller is blamed)
    "arm64-rcu-usage-dump-backtrace": ("lockdep", None, "gc_worker", None),
    "arm64-warn-panic-on-warn": ("warn", "debug_print_object", "netdev_freemem", None),
    # arm64 6.5 console log mailed unquoted: "<N>" levels, wrapped address/registers/banner
    "arm64-6.5-console-wrapped": (
        "bad-paging",
        "percpu_counter_add_batch",
        "percpu_counter_add_batch",
        "0xffff5dbb8189f000",
    ),
}
# rows whose culprit is asserted to be unknown (None)
UNKNOWN_CULPRIT = {
    "rhel8-quoted-wrapped-two-reports",
    "ghes-memory-fatal",
    "ghes-pcie-fatal-quoted",
}


def load(name: str) -> str:
    """A sample without its ``# source`` header lines."""
    lines = (DATA / f"{name}.txt").read_text(encoding="utf-8").split("\n")
    i = 0
    while i < len(lines) and lines[i].startswith("# "):
        i += 1
    return "\n".join(lines[i:])


def verdict(text: str) -> tuple[Any, ...]:
    t = read_text(io.StringIO(text))
    d = diagnose(t.facts)[0]
    ev = d.event
    site = ev.rip.function if ev is not None and ev.rip is not None else None
    return d.class_id, site, d.culprit.function if d.culprit else None, d.evidence.fault_address


def test_every_sample_has_a_source_and_a_row() -> None:
    names = {p.stem for p in DATA.glob("*.txt")}
    assert names == set(EXPECTED)
    for n in names:
        head = (DATA / f"{n}.txt").read_text(encoding="utf-8").split("\n", 1)[0]
        assert head.startswith("# source: "), n
        assert "https://" in head or "search-index file id" in head, n


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_wording(name: str) -> None:
    cls, site, culprit, addr = EXPECTED[name]
    got = verdict(load(name))
    assert got[0] == cls, (name, got)
    assert got[1] == site, (name, got)
    if culprit is not None or name in UNKNOWN_CULPRIT:
        assert got[2] == culprit, (name, got)
    if addr is not None:
        assert got[3] == addr, (name, got)


def test_centos7_session_facts_and_no_placeholders() -> None:
    """The CentOS 7 case of issue 13: crash sys + bt + the log, RHEL 7 CPU line."""
    t = read_text(io.StringIO(load("centos7-crash-session")))
    assert t.crash_session
    sysinfo = t.facts.system
    assert (sysinfo.release, sysinfo.pid, sysinfo.command) == (
        "3.10.0-1160.49.1.el7.x86_64",
        2227,
        "bash",
    )
    ev = t.events[0]
    assert ev.release == "3.10.0-1160.49.1.el7.x86_64" and ev.taint == "G           OE"
    assert ev.rip is not None and ev.rip.address == 0 and ev.rip.function is None
    d = diagnose(t.facts)[0]
    assert d.culprit is not None and d.culprit.module == "process"
    for lang in ("en", "zh"):
        msgs = render_messages(d, lang)
        text = " ".join([msgs["meaning"], *msgs["explanation"], *msgs["next_steps"]])
        assert "?" not in text and "None" not in text, text


def _collapse(text: str) -> str:
    return " ".join(text.split("\n"))


@pytest.mark.parametrize(
    "name",
    [
        "centos7-crash-session",
        "centos7-bt-exception-rip",
        "arm64-6.10-null",
        "x86-null-old-wording",
        "x86-oops-gpf-6.x",
    ],
)
def test_collapsed_line_breaks(name: str) -> None:
    """A paste whose newlines became spaces gives the same verdict (derived)."""
    assert verdict(_collapse(load(name))) == verdict(load(name))


def test_collapsed_crash_session_without_log() -> None:
    """Only crash's sys and bt, collapsed: class from PANIC, culprit above the RHEL 7
    fault path (async_page_fault ... no_context), address from the old wording."""
    text = load("centos7-crash-session")
    session = text[text.index(" KERNEL:") :]
    for variant in (session, _collapse(session)):
        t = read_text(io.StringIO(variant))
        assert not t.events and t.crash_session
        d = diagnose(t.facts)[0]
        assert (d.class_id, d.culprit.function if d.culprit else None) == (
            "null-deref",
            "process_bprm_put",
        )
        assert d.evidence.fault_address == "0x0" and t.facts.system.pid == 2227
        msgs = render_messages(d, "en")
        assert "?" not in msgs["meaning"] + " ".join(msgs["explanation"])


@pytest.mark.parametrize("name", ["arm64-6.10-null", "s390x-bug-on", "ghes-memory-fatal"])
def test_crlf_and_html_entities(name: str) -> None:
    want = verdict(load(name))
    assert verdict(load(name).replace("\n", "\r\n")) == want
    html = load(name).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert verdict(html) == want


_TS = re.compile(r"^\[\s*(\d+\.\d+)\](?:\[\s*[TC]\d+\])? ?(.*)$")


def _records(text: str) -> list[tuple[float | None, str]]:
    out: list[tuple[float | None, str]] = []
    for ln in text.splitlines():
        m = _TS.match(ln)
        out.append((float(m.group(1)), m.group(2)) if m else (None, ln))
    return out


@pytest.mark.parametrize("variant", ["dmesg -T", "journal short", "journal short-iso", "kmsg"])
@pytest.mark.parametrize("name", ["arm64-6.10-null", "x86-oops-oops-6.13", "ghes-memory-fatal"])
def test_prefixes(variant: str, name: str) -> None:
    """syslog/journal/ISO-8601/dmesg -T/kmsg prefixes on real records (derived)."""
    from test_oops_formats import VARIANTS

    assert verdict(VARIANTS[variant](_records(load(name)))) == verdict(load(name))


def test_caller_ids_with_another_cpu_interleaved() -> None:
    from test_oops_formats import v_console_caller

    name = "arm64-6.10-null"
    assert verdict(v_console_caller(_records(load(name)))) == verdict(load(name))


def test_mail_quoted_and_wrapped() -> None:
    """The GHES sample is itself a quoted mail with wrapped lines; the arm64 one quoted
    the same way (derived) still parses."""
    quoted = "\n".join("> " + ln for ln in load("arm64-6.10-null").split("\n"))
    assert verdict(quoted) == verdict(load("arm64-6.10-null"))


def test_several_crashes_in_one_log() -> None:
    """A warning-level report, then an oops that stopped the kernel: the oops is the
    primary, the other is listed after it (derived: two real samples appended)."""
    log = load("x86-suspicious-rcu") + "\n" + load("arm64-6.10-null")
    ds = diagnose(read_text(io.StringIO(log)).facts)
    assert ds[0].primary and ds[0].class_id == "null-deref"
    assert any(d.class_id == "lockdep" and not d.primary for d in ds[1:])


def test_hardware_error_names_the_memory_location() -> None:
    d = diagnose(read_text(io.StringIO(load("ghes-memory-fatal"))).facts)[0]
    msgs = render_messages(d, "en")
    ev = " ".join(msgs["evidence"])
    assert "CPU 1 DIMM 4" in ev and "node: 2 card: 0" in ev and "0x00000046fe735000" in ev
    assert d.culprit is None and "No kernel code is to blame" in " ".join(msgs["explanation"])
    pcie = diagnose(read_text(io.StringIO(load("ghes-pcie-fatal-quoted"))).facts)[0]
    assert any("0000:01:00.1" in m for m in render_messages(pcie, "en")["evidence"])


def test_rhel8_wrapped_lines_are_joined_and_the_reports_ordered() -> None:
    """The quoted RHEL 8 log: its wrapped CPU line still gives taint, release and PID;
    the GPF stopped the kernel, the WARNING before it blames hvc_alloc (the driver that
    overflowed), and the report says which is which."""
    t = read_text(io.StringIO(load("rhel8-quoted-wrapped-two-reports")))
    warn, gpf = t.events
    assert (gpf.pid, gpf.comm, gpf.taint, gpf.release) == (
        3225,
        "modprobe",
        "G W",
        "4.18.0-167.el8.x86_64",
    )
    assert [f.function for f in warn.call_trace][:3] == [
        "__raw_callee_save___pv_queued_spin_unlock_slowpath",
        ".slowpath",
        "hvc_alloc",
    ]
    ds = diagnose(t.facts)
    assert [d.class_id for d in ds] == ["gpf", "warn"] and ds[1].culprit.function == "hvc_alloc"
    en = render_messages(ds[0], "en")
    assert any("this one stopped the kernel" in m for m in en["explanation"])
    assert all("?" not in m for m in en["explanation"] + en["next_steps"])
    from kcrash.report.build import _position

    assert _position(ds[1], ds[0]) == "before"


def test_arm64_esr_is_decoded() -> None:
    """The ESR of "Internal error: Oops: 96000004" (8 digits, 3.x-5.x) and of the 16-digit
    6.x form: exception class, fault status and level, read or write."""
    for name, want in (
        ("arm64-3.18", ("0x25", "translation", "write")),
        ("arm64-6.10-null", ("0x25", "translation", "read")),
        ("arm64-6.15-tagged-quoted", ("0x25", "translation", "read")),
    ):
        d = diagnose(read_text(io.StringIO(load(name))).facts)[0]
        ids = {m.id: m.params for m in d.evidence.messages}
        assert ids["evidence.esr.summary"]["ec"] == want[0], name
        assert ids["evidence.esr.fsc.level"]["kind"] == want[1], name
        assert f"evidence.esr.{want[2]}" in ids, name
        assert "evidence.pf.summary" not in ids, name  # not read as x86 #PF bits


@pytest.mark.parametrize(
    ("name", "taint", "release"),
    [
        ("centos7-crash-session", "G           OE", "3.10.0-1160.49.1.el7.x86_64"),
        ("centos7-ip-wording-module", "G", "3.10.0-1062.7.1.el7.x86_64"),
        ("rhel8-quoted-wrapped-two-reports", "G W", "4.18.0-167.el8.x86_64"),
    ],
)
def test_rhel_cpu_lines_with_vendor_dashes(name: str, taint: str, release: str) -> None:
    """RHEL 7 "OE  ------------ T 3.10.0-..." and RHEL 8 "--------- -  - 4.18.0-..."."""
    t = read_text(io.StringIO(load(name)))
    ev = next(e for e in t.events if e.oops_number is not None)
    assert (ev.taint, ev.release) == (taint, release)


def test_mce_names_the_address() -> None:
    d = diagnose(read_text(io.StringIO(load("x86-mce-fatal-quoted"))).facts)[0]
    ev = " ".join(render_messages(d, "en")["evidence"])
    assert "0x314d193000" in ev and "Bank 7" in ev
    assert d.culprit is None


def test_i386_summary_is_not_a_frame() -> None:
    ev = read_text(io.StringIO(load("i386-eip-after-trace"))).events[0]
    assert (ev.pid, ev.comm, ev.release) == (3062, "modprobe", "2.6.33-tm6000")
    assert ev.call_trace[-1].function == "wait_consider_task"


def test_unquoted_mail_wraps_are_joined() -> None:
    """The LKFT mail: the header's address, the register values and the module list
    were wrapped; the "# TEST" user-space line stays out of the report."""
    t = read_text(io.StringIO(load("arm64-6.5-console-wrapped")))
    ev = t.events[0]
    assert ev.header.endswith("at virtual address ffff5dbb8189f000")
    assert ev.fault_address == 0xFFFF5DBB8189F000
    assert "test_blackhole_dev" not in ev.modules_linked and "x_tables" in ev.modules_linked
    assert not any("# TEST" in ln for e in t.events for ln in e.lines)
    d = diagnose(t.facts)[0]
    assert any(m.id == "explain.trailer.fatal_exception_in_interrupt" for m in d.explanation)


def test_real_interleaved_callers() -> None:
    """syzkaller's arm64 log has another task's lines ([T4436] vhci_hcd) inside the oops of
    [T6604]: they stay out of its block."""
    t = read_text(io.StringIO(load("arm64-5.9-callers")))
    ev = next(e for e in t.events if e.oops_number == 1)
    assert ev.caller == "T6604" and not any("vhci_hcd" in ln for ln in ev.lines)


def test_console_cut_inside_the_cpu_line() -> None:
    """A console wrapped at a fixed width cuts "CPU: 1 PID: 3026" inside the number
    (derived from the real RHEL 7 sample: the record is split after "PID: 30")."""
    text = load("centos7-ip-wording-module")
    cut = text.replace("PID: 3026 Comm:", "PID: 30\n26 Comm:")
    assert cut != text
    ev = read_text(io.StringIO(cut)).events[0]
    assert (ev.cpu, ev.pid, ev.comm, ev.release) == (1, 3026, "tc", "3.10.0-1062.7.1.el7.x86_64")
    assert verdict(cut) == verdict(text)


def test_arm64_code_words_are_disassembled() -> None:
    """arm64's ``Code:`` line is 32-bit words, the faulting one in parentheses: capstone's
    arm64 mode decodes it, and the register dump (``x0 : 0000…``, ``x9 :`` padded) gives the
    base register's value, as x86's bytes and registers do."""
    for name, insn, base, null in (
        # may_access_direct_pkt_data: x0 is the NULL prog->aux (fault address 0x4)
        ("arm64-6.10-null", "ldr w3, [x0, #4]", "x0", True),
        # KASAN's shadow check: x2 (3) + x1 (the shadow offset 0xdfffa00000000000)
        ("arm64-5.9-callers", "ldrsb w1, [x2, x1]", "x2", False),
    ):
        d = diagnose(read_text(io.StringIO(load(name))).facts)[0]
        assert d.evidence.fault_instruction == insn, (name, d.evidence.fault_instruction)
        assert [c.text for c in d.evidence.code if c.faulting] == [insn], name
        assert len(d.evidence.code) == 5, name  # four words before pc, and pc's
        ids = {m.id: m.params for m in d.evidence.messages}
        if null:
            assert ids["evidence.code.null_base"]["register"] == base, (name, ids)
        else:
            assert "evidence.code.null_base" not in ids, name
