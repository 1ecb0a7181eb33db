"""CONFIG_HZ is read from the dump, never assumed (issue 13 item 6).

UPTIME is ``(jiffies_64 - INITIAL_JIFFIES) / HZ``; Debian builds HZ=250, RHEL/CentOS, Fedora,
SUSE and Ubuntu 24.04+ build HZ=1000: a constant 250 would make a RHEL dump's uptime four
times too long. The unit tests cover each method on the values the kernel defines; the
corpus tests check every method, alone and without debuginfo, against crash's UPTIME.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pytest
from checks import each, is_arm64
from crash_oracle import parse_sys

from kcrash.facts.log import target_log
from kcrash.facts.system import (
    HZ_CHOICES,
    _jiffies_64,
    hz_from_ikconfig,
    hz_from_jiffies,
    hz_from_tick_nsec,
    initial_jiffies,
    kernel_hz_and_source,
)
from kcrash.sys_rows import format_duration
from kcrash.target.open import open_target


@pytest.mark.parametrize("hz", HZ_CHOICES)
@pytest.mark.parametrize("seconds", [2.5, 19.3, 250.0, 360.0, 86_400.2, 400 * 86_400.0])
def test_hz_from_jiffies_finds_each_choice(hz: int, seconds: float) -> None:
    """jiffies_64 as the kernel keeps it (starting at INITIAL_JIFFIES, 32-bit wrap) after
    `seconds`, the log clock a little behind (the last record precedes the dump)."""
    jiffies_64 = initial_jiffies(hz) + int(seconds * hz)
    assert hz_from_jiffies(jiffies_64, seconds - 0.05) == hz


@pytest.mark.parametrize("hz", HZ_CHOICES)
def test_hz_from_jiffies_says_nothing_near_five_minutes(hz: int) -> None:
    """jiffies_64 passes 2^32 at 300 s whatever HZ is: there the choices imply nearly the
    same uptime, and a guess would be a coin toss."""
    for seconds in (299.0, 300.0, 301.7):
        assert hz_from_jiffies(initial_jiffies(hz) + int(seconds * hz), seconds - 0.05) is None


def test_hz_from_jiffies_refuses_a_clock_that_fits_no_choice() -> None:
    jiffies_64 = initial_jiffies(250) + 250 * 1000  # 1000 s at HZ=250
    assert hz_from_jiffies(jiffies_64, 5000.0) is None
    assert hz_from_jiffies(0, 10.0) is None  # no choice gives a non-negative tick count


def test_initial_jiffies_is_five_minutes_before_the_32_bit_wrap() -> None:
    assert initial_jiffies(250) == 2**32 - 75_000
    assert initial_jiffies(1000) == 2**32 - 300_000


@pytest.mark.parametrize(
    ("tick_nsec", "hz"),
    [
        (4_000_000, 250),  # TICK_NSEC at HZ=250
        (1_000_000, 1000),
        (3_333_333, 300),  # (NSEC_PER_SEC + HZ/2) / HZ rounds down at 300
        (10_000_000, 100),
        (999_848, 1000),  # adjtimex(tick) moved it a little: still HZ=1000
    ],
)
def test_hz_from_tick_nsec(tick_nsec: int, hz: int) -> None:
    assert hz_from_tick_nsec(tick_nsec) == hz


def test_hz_from_tick_nsec_rejects_nonsense() -> None:
    assert hz_from_tick_nsec(0) is None


def test_hz_from_ikconfig_reads_config_hz() -> None:
    """kernel/configs.c's layout: "IKCFG_ST", the gzipped .config, "IKCFG_ED"."""
    config = b"CONFIG_HZ_1000=y\nCONFIG_HZ=1000\nCONFIG_HZ_PERIODIC=n\n"
    blob = b"\0\0IKCFG_ST" + gzip.compress(config) + b"IKCFG_ED"
    assert hz_from_ikconfig(blob) == 1000
    assert hz_from_ikconfig(b"IKCFG_ST" + gzip.compress(b"CONFIG_SMP=y\n")) is None
    assert hz_from_ikconfig(b"no markers") is None
    assert hz_from_ikconfig(b"IKCFG_STnot gzip") is None


def _uptime(prog: Any, hz: int) -> str:
    return format_duration((_jiffies_64(prog) - initial_jiffies(hz)) // hz)


@pytest.mark.corpus
def test_every_method_gives_crash_uptime_without_debuginfo(
    kdump_zlib: list[dict[str, Any]],
) -> None:
    """On each kernel's dumps (Debian: no IKCONFIG, HZ=250), tick_nsec and the jiffies
    derivation each give the HZ that makes UPTIME equal crash's, with no vmlinux."""

    def check(e: dict[str, Any]) -> None:
        target = open_target(e["path"], None, no_debuginfo=True)
        prog = target.prog
        log = target_log(target)
        sys_text = Path(e["oracle"]["sys"]).read_text(errors="replace")
        crash_uptime = parse_sys(sys_text)["UPTIME"]
        hz, source = kernel_hz_and_source(prog, log)
        if is_arm64(e):
            # Debian's arm64 kernel: no CONFIG_KALLSYMS_ALL, so tick_nsec and jiffies_64
            # (data symbols) are not in kallsyms and no method applies without vmlinux:
            # HZ (and UPTIME) are unknown, said so, never guessed. With vmlinux, tick_nsec.
            assert (hz, source) == (None, "unknown"), (hz, source)
            assert any("CONFIG_KALLSYMS_ALL" in str(x) for x in target.lacks), target.lacks
            dwarf = open_target(e["path"], e["vmlinux"])
            assert kernel_hz_and_source(dwarf.prog, log) == (250, "tick_nsec")
            return
        assert (hz, source) == (250, "tick_nsec"), (hz, source)
        stamps = [ln.timestamp for ln in log if ln.timestamp]
        derived = hz_from_jiffies(_jiffies_64(prog), stamps[-1])
        assert derived == 250
        assert _uptime(prog, derived) == crash_uptime
        # The constant a RHEL kernel would need gives another answer: the test can fail.
        assert _uptime(prog, 1000) != crash_uptime

    each(kdump_zlib, check)
