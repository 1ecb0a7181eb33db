"""Kernel release ordering (server/kversion.py): one table row per pair, with why it holds.

The strings are real releases of each distribution (Debian's linux-image-* package names and
versions, Ubuntu's, RHEL/Alma errata kernels); the corpus's own deb11/12/13 kernels are rows too.
"""

from __future__ import annotations

import pytest

from kcrash.server import kversion

# (older, newer, why) — compare(older, newer) must be -1 and compare(newer, older) 1.
OLDER_NEWER = [
    ("6.1.0-13-amd64", "6.1.0-57-amd64", "Debian: a later ABI of one suite"),
    ("5.10.0-46-amd64", "6.1.0-57-amd64", "Debian 11 → 12 (the corpus's kernels)"),
    ("6.1.0-57-amd64", "6.12.117+deb13-amd64", "Debian 12 → 13 (the corpus's kernels)"),
    ("6.1.0-0.deb11.17-amd64", "6.1.0-17-amd64", "a backport sorts below its suite's ABI"),
    ("5.10.0-0.bpo.15-amd64", "5.10.0-16-amd64", "old-style 0.bpo.N backport"),
    ("5.10.0-0.bpo.9-amd64", "5.10.0-0.bpo.15-amd64", "backport ABIs compare as numbers"),
    ("6.12.12+bpo-amd64", "6.12.12+deb13-amd64", "+bpo backport below the suite (MR 1524)"),
    ("6.12.38+deb12-amd64", "6.12.38+deb13-amd64", "+deb12 backport below +deb13"),
    ("6.12.38+deb13-amd64", "6.12.38+deb13.1-amd64", "a re-upload's serial"),
    ("6.12.38+deb13-amd64", "6.12.41+deb13-amd64", "upstream sublevel is real since +debNN"),
    ("6.1.0-57-cloud-amd64", "6.1.0-58-amd64", "Debian flavours share one ABI counter"),
    ("5.15.0-89-generic", "5.15.0-91-generic", "Ubuntu ABI"),
    ("5.15.0-91-generic", "5.15.0-101-lowlatency", "Ubuntu main flavours share the ABI"),
    ("5.15.0-1049-aws", "5.15.0-1051-aws", "one Ubuntu derivative's own ABI"),
    ("5.15.0-91-generic", "6.5.0-14-generic", "HWE series is newer"),
    ("4.18.0-513.5.1.el8_9.x86_64", "4.18.0-513.11.1.el8_9.x86_64", "rpmvercmp: 5 < 11"),
    ("4.18.0-477.27.1.el8_8.x86_64", "4.18.0-513.5.1.el8_9.x86_64", "RHEL 8.8 → 8.9"),
    ("5.14.0-362.8.1.el9_3", "5.14.0-362.13.1.el9_3.x86_64", "arch suffix is not version"),
    ("5.14.0-362.el9", "5.14.0-362.8.1.el9_3", "CentOS Stream base < z-stream errata"),
    ("4.18.0-553.el8_10.x86_64", "5.14.0-70.13.1.el9_0.x86_64", "RHEL 8 → 9 by series"),
    ("6.5.6-300.fc39.x86_64", "6.5.12-300.fc39.x86_64", "Fedora: upstream sublevel"),
    ("5.14.21-150500.55.36-default", "5.14.21-150500.55.39-default", "SUSE release"),
    ("6.8.0-rc3", "6.8.0", "a release candidate sorts below its release"),
    ("6.8.0-rc3", "6.8.0-rc7", "rc numbers compare as numbers"),
    ("6.1.150", "6.1.192", "upstream sublevel"),
    ("6.1.0-57-amd64", "6.12.38+deb13-amd64", "Debian old scheme → new scheme by series"),
    ("4.18.0-553.el8_10.x86_64", "6.1.0-57-amd64", "across vendors: series only"),
]

# (a, b, why) — within one series, different lines cannot be ordered.
UNORDERED = [
    ("6.1.0-57-amd64", "6.1.0-57.el9.x86_64", "Debian and an RPM 6.1 say nothing of each other"),
    ("5.15.0-91-generic", "5.15.0-1051-aws", "Ubuntu derivative has its own ABI counter"),
    ("5.14.0-362.8.1.el9_3.x86_64+rt", "5.14.0-362.13.1.el9_3.x86_64", "+rt is its own stream"),
    ("not a kernel", "6.1.0-57-amd64", "garbage is unknown, never 'older'"),
]


@pytest.mark.parametrize(("older", "newer", "why"), OLDER_NEWER)
def test_order(older: str, newer: str, why: str) -> None:
    assert kversion.compare(older, newer) == -1, why
    assert kversion.compare(newer, older) == 1, why
    assert kversion.is_newer(newer, older) is True, why
    assert kversion.is_newer(older, newer) is False, why


@pytest.mark.parametrize(("a", "b", "why"), UNORDERED)
def test_unordered(a: str, b: str, why: str) -> None:
    assert kversion.compare(a, b) is None, why
    assert kversion.is_newer(a, b) is None, why


def test_same_release_is_equal() -> None:
    assert kversion.compare("6.1.0-57-amd64", "6.1.0-57-amd64") == 0
    assert kversion.is_newer("5.14.0-362.8.1.el9_3", "5.14.0-362.8.1.el9_3.x86_64") is False


def test_package_version_breaks_an_abi_tie() -> None:
    """Debian kept one ABI name across point releases (6.1.0-57 for 6.1.192-2 and -3)."""
    a = kversion.parse("6.1.0-57-amd64", "6.1.192-2")
    b = kversion.parse("6.1.0-57-amd64", "6.1.192-3")
    c = kversion.parse("6.1.0-57-amd64", "6.1.192-3~bpo11+1")
    assert a is not None and b is not None and c is not None
    assert kversion.compare(a, b) == -1
    assert kversion.compare(c, b) == -1, "~bpo sorts below the release it came from"
    assert kversion.compare(c, a) == 1
    # Without both package versions the tie stays a tie (never a guessed regression).
    assert kversion.compare(a, "6.1.0-57-amd64") == 0


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        ("1.0~rc1", "1.0"),
        ("1.0", "1.0.1"),
        ("1.0", "1.0a"),
        ("1.0a", "1.0+b1"),
        ("1:0.9", "2:0.1"),
        ("6.1.76-1~bpo11+1", "6.1.76-1"),
        ("6.5.0-14.14~22.04.1", "6.5.0-14.14"),
        ("5.15.0-91.101", "5.15.0-91.102"),
    ],
)
def test_debian_package_versions(older: str, newer: str) -> None:
    """deb-version(7): ~ before the end, letters before other characters, epochs first."""
    assert kversion.debian_version_key(older) < kversion.debian_version_key(newer)


@pytest.mark.parametrize(
    ("older", "newer"),
    [("1.0~rc1", "1.0"), ("1.0", "1.0^git1"), ("1.0^git1", "1.0.1"), ("1.a", "1.1"), ("9", "10")],
)
def test_rpm_versions(older: str, newer: str) -> None:
    """rpmvercmp: ~ pre-release, ^ snapshot, a number beats letters."""
    assert kversion.rpm_key(older) < kversion.rpm_key(newer)


@pytest.mark.parametrize(
    ("release", "version", "package"),
    [
        ("6.1.0-57-amd64", "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-01-08)", "6.1.192-3"),
        ("5.15.0-91-generic", "#101-Ubuntu SMP Tue Nov 14 13:30:08 UTC 2023", "5.15.0-91.101"),
        ("6.5.0-14-generic", "#14~22.04.1-Ubuntu SMP PREEMPT_DYNAMIC", "6.5.0-14.14~22.04.1"),
        ("4.18.0-513.5.1.el8_9.x86_64", "#1 SMP Fri Sep 29 05:21:10 EDT 2023", None),
    ],
)
def test_package_from_uname_version(release: str, version: str, package: str | None) -> None:
    assert kversion.package_from_uname_version(release, version) == package


def test_sort_releases() -> None:
    given = ["6.12.117+deb13-amd64", "garbage", "5.10.0-46-amd64", "6.1.0-57-amd64"]
    assert kversion.sort_releases(given) == [
        "5.10.0-46-amd64",
        "6.1.0-57-amd64",
        "6.12.117+deb13-amd64",
        "garbage",
    ]


def test_corpus_releases_parse(corpus: list[dict]) -> None:
    """Every kernel the corpus boots parses as Debian's (never the generic fallback)."""
    releases = {e["release"] for e in corpus}
    assert releases
    for r in releases:
        p = kversion.parse(r)
        assert p is not None and p.family == "debian", r
