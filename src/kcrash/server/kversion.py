"""Ordering of kernel release strings (``uname -r``), as the distributions version them.

Why: a bucket is *regressed* when it shows up on a kernel newer than the one it was marked
fixed in, and "newer" must follow the distribution's versioning, never the order crashes
arrived in.  ``6.1.0-57-amd64`` hides its upstream sublevel (the package is ``6.1.192-3``),
Ubuntu's ``5.15.0-91-generic`` counts ABIs, RHEL's ``4.18.0-513.5.1.el8_9.x86_64`` is an RPM
``version-release.arch`` whose real order is RPM's ``rpmvercmp``, and backports sort below
the release they were built from (``~bpo`` in package versions, ``0.bpo.N`` in old ABI names).

Rule across vendors: only the upstream series (major.minor) is comparable — a Debian
``6.1.0-57`` and a RHEL ``6.1.0-1.el9`` say nothing about each other's fixes.  So
:func:`compare` answers ``None`` ("unknown") for two releases of the same series from
different lines; callers decide what unknown means (alerts: not a regression).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

# --- the two version algorithms --------------------------------------------------------------


def _dpkg_chars(part: str) -> tuple[int, ...]:
    """A non-digit run in dpkg order: ``~`` < end < letters < everything else."""
    out = []
    for ch in part:
        if ch == "~":
            out.append(-1)
        elif ch.isalpha():
            out.append(ord(ch))
        else:
            out.append(ord(ch) + 256)
    out.append(0)  # the end of the run sorts between "~" and any letter
    return tuple(out)


def dpkg_key(version: str) -> tuple:
    """A sort key that orders strings as dpkg's ``verrevcmp`` does (deb-version(7)).

    The string alternates non-digit runs (compared character-wise with the order of
    :func:`_dpkg_chars`) and digit runs (compared as numbers, empty = 0).  One closing
    pair makes "ran out" compare like dpkg's empty string: below ``.1``, above ``~rc``.
    """
    pairs = []
    for m in re.finditer(r"(\D*)(\d*)", version):
        if not m.group(0):
            continue
        pairs.append((_dpkg_chars(m.group(1)), int(m.group(2) or 0)))
    pairs.append(((0,), 0))
    return tuple(pairs)


def debian_version_key(version: str) -> tuple:
    """``[epoch:]upstream[-revision]`` → key; the revision is split at the LAST hyphen."""
    epoch, _, rest = version.rpartition(":") if ":" in version else ("0", "", version)
    upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "")
    return (int(epoch) if epoch.isdigit() else 0, dpkg_key(upstream), dpkg_key(revision))


def rpm_key(version: str) -> tuple:
    """A sort key that orders strings as RPM's ``rpmvercmp`` does.

    Alphanumeric segments split at any other character (separators themselves do not
    count); a number beats letters; ``~`` sorts before the end (pre-releases) and ``^``
    after the end but before any further segment (snapshots).
    """
    out: list[tuple] = []
    for m in re.finditer(r"~|\^|\d+|[A-Za-z]+", version):
        tok = m.group(0)
        if tok == "~":
            out.append((-1,))
        elif tok == "^":
            out.append((0, 1))
        elif tok.isdigit():
            out.append((2, int(tok), ""))
        else:
            out.append((1, 0, tok))
    out.append((0,))
    return tuple(out)


# --- the release-string table -----------------------------------------------------------------

# Ubuntu flavours: the main kernel's (share its ABI counter) and the derivatives (each its own
# source package, so its own ABI counter: 5.15.0-1051-aws is not "newer" than 5.15.0-91-generic).
UBUNTU_MAIN = {"generic", "generic-64k", "generic-lpae", "lowlatency", "lowlatency-64k"}
UBUNTU_DERIVED = {
    "aws", "azure", "gcp", "gke", "gkeop", "kvm", "oracle", "ibm", "raspi", "nvidia",
    "nvidia-64k", "intel-iotg", "oem", "realtime", "xilinx-zynqmp", "virtual", "hwe",
}  # fmt: skip
# Debian flavours (all built from one source package per suite, one ABI counter).
DEBIAN_FLAVOUR = re.compile(
    r"^(?:(?:cloud|rt)-)?(?:amd64|arm64|armmp(?:-lpae)?|686(?:-pae)?|marvell|rpi|powerpc64le"
    r"|s390x|loong64|riscv64|octeon|loongson-3|[45]kc-malta|mips(?:32|64)r[26](?:el)?)$"
)

# Each row: name, pattern over the whole `uname -r`, and why it exists.  First match wins.
RELEASE_FORMATS: tuple[tuple[str, re.Pattern[str], str], ...] = (
    (
        "debian",
        re.compile(r"^(?P<up>\d+\.\d+\.\d+)\+(?P<abi>(?:deb\d+|bpo)(?:\.\d+)?)-(?P<flavour>.+)$"),
        "Debian since 2025 (trixie: 6.12.38+deb13-amd64): the upstream version is real; "
        "+debNN names the suite (+deb12 in bookworm-backports, earlier +bpo), .N a re-upload",
    ),
    (
        "debian",
        re.compile(
            r"^(?P<up>\d+\.\d+\.\d+)-(?P<abi>\d+|0\.(?:bpo|deb\d+)\.\d+)-(?P<flavour>[a-z0-9-]+)$"
        ),
        "Debian up to bookworm: X.Y.0-ABI-flavour; backports 0.bpo.N (to bullseye) and "
        "0.debNN.N (since 2023) so that they sort below the suite's own ABI",
    ),
    (
        "ubuntu",
        re.compile(r"^(?P<up>\d+\.\d+\.\d+)-(?P<abi>\d+)-(?P<flavour>[a-z0-9-]+)$"),
        "Ubuntu: X.Y.Z-ABI-flavour; the package adds .UPLOAD (5.15.0-91.101, HWE ~22.04.1)",
    ),
    (
        "rhel",
        re.compile(
            r"^(?P<up>\d+\.\d+\.\d+)-(?P<abi>[0-9][0-9A-Za-z._]*?\.el\d+(?:_\d+)?)"
            r"(?:\.(?P<arch>x86_64|aarch64|ppc64le|s390x))?(?:\+(?P<flavour>\w+))?$"
        ),
        "RHEL/CentOS/Alma/Rocky: version-release[.arch][+debug|+rt]; release ordered by "
        "rpmvercmp (513.5.1.el8_9 < 513.11.1.el8_9)",
    ),
    (
        "fedora",
        re.compile(
            r"^(?P<up>\d+\.\d+\.\d+)-(?P<abi>[0-9][0-9A-Za-z._]*?\.fc\d+)"
            r"(?:\.(?P<arch>x86_64|aarch64|ppc64le|s390x))?(?:\+(?P<flavour>\w+))?$"
        ),
        "Fedora: the same RPM scheme with .fcNN",
    ),
    (
        "suse",
        re.compile(r"^(?P<up>\d+\.\d+\.\d+)-(?P<abi>\d+(?:\.\d+)+)-(?P<flavour>[a-z0-9]+)$"),
        "SUSE: 5.14.21-150500.55.39-default; the release is an RPM release",
    ),
    (
        "upstream",
        re.compile(r"^(?P<up>\d+\.\d+(?:\.\d+)?)(?:-rc(?P<rc>\d+))?(?P<local>.*)$"),
        "kernel.org builds: 6.8.0-rc3, 6.1.150, local versions (6.6.30-custom, 6.8.0-rc3+) "
        "are not ordered; a release candidate sorts below its release",
    ),
)


@total_ordering
@dataclass(frozen=True)
class KernelRelease:
    """One parsed ``uname -r`` (plus, for Debian/Ubuntu, the package version if known)."""

    text: str
    family: str  # a RELEASE_FORMATS name
    line: str  # releases of one family and line share one version counter
    upstream: tuple[int, ...]
    key: tuple  # the family's order within the line
    package: str | None = None

    @property
    def series(self) -> tuple[int, int]:
        return (self.upstream[0], self.upstream[1])

    def sort_key(self) -> tuple:
        """A total order for display: series, then family/line, then the family's order."""
        pkg = debian_version_key(self.package) if self.package else ()
        return (self.series, self.family, self.line, self.key, pkg)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, KernelRelease):
            return NotImplemented
        return self.sort_key() < other.sort_key()


def parse(release: str, package_version: str | None = None) -> KernelRelease | None:
    """``uname -r`` (and the package version, for Debian/Ubuntu) → :class:`KernelRelease`.

    None when the string is no kernel release at all (the caller says "unknown kernel").
    """
    release = release.strip()
    for family, pattern, _why in RELEASE_FORMATS:
        m = pattern.match(release)
        if m is None:
            continue
        up = tuple(int(x) for x in m.group("up").split("."))
        groups = m.groupdict()
        flavour = groups.get("flavour") or ""
        if family == "debian" and not DEBIAN_FLAVOUR.match(flavour):
            continue
        if family == "ubuntu" and flavour not in UBUNTU_MAIN | UBUNTU_DERIVED:
            continue
        if family in ("debian", "ubuntu"):
            abi = m.group("abi")
            if abi.startswith("bpo"):  # +bpo (bookworm-backports before +deb12): a backport
                abi = "deb~" + abi
            key: tuple = (up, dpkg_key(abi))
            line = "main" if family == "debian" or flavour in UBUNTU_MAIN else flavour
            return KernelRelease(release, family, line, up, key, package_version or None)
        if family in ("rhel", "fedora", "suse"):
            line = {"debug": "main", "": "main"}.get(flavour, flavour)  # +rt: its own stream
            key = (up, rpm_key(m.group("abi")))
            return KernelRelease(release, family, line, up, key)
        # upstream
        up = (*up, 0) if len(up) == 2 else up
        rc = groups.get("rc")
        pre = (0, int(rc)) if rc else (1, 0)
        return KernelRelease(release, family, "main", up, (up, pre))
    return None


def compare(a: str | KernelRelease, b: str | KernelRelease) -> int | None:
    """-1, 0 or 1 as ``a`` is older than, the same as, or newer than ``b``; None = unknown.

    Different series compare by series across any vendors; within one series only releases
    of the same family and line are ordered (package versions break ties of one ABI name).
    """
    ra = a if isinstance(a, KernelRelease) else parse(a)
    rb = b if isinstance(b, KernelRelease) else parse(b)
    if ra is None or rb is None:
        return None
    if ra.series != rb.series:
        return -1 if ra.series < rb.series else 1
    if (ra.family, ra.line) != (rb.family, rb.line):
        return None
    if ra.key != rb.key:
        return -1 if ra.key < rb.key else 1
    if ra.package and rb.package:
        ka, kb = debian_version_key(ra.package), debian_version_key(rb.package)
        return (ka > kb) - (ka < kb)
    return 0


def is_newer(release: str | KernelRelease, than: str | KernelRelease) -> bool | None:
    """True when ``release`` is strictly newer than ``than``; None when they cannot be ordered."""
    c = compare(release, than)
    return None if c is None else c > 0


def package_from_uname_version(release: str, version: str) -> str | None:
    """The package version hidden in ``uname -v`` (crash's ``VERSION``), when it says one.

    Debian: ``#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-…)``.  Ubuntu: ``#101-Ubuntu SMP``
    with ``5.15.0-91-generic`` means package ``5.15.0-91.101`` (HWE adds ``~22.04.1``, which
    ``uname -v`` shows as ``#14~22.04.1-Ubuntu``).
    """
    m = re.search(r"\bDebian (\d[\w.+~:-]*)", version)
    if m:
        return m.group(1)
    m = re.match(r"#(\d+(?:~[\d.]+)?)-Ubuntu\b", version.strip())
    r = re.match(r"^(\d+\.\d+\.\d+-\d+)-", release)
    if m and r:
        upload = m.group(1)
        number, tilde, rest = upload.partition("~")
        return f"{r.group(1)}.{number}{tilde}{rest}"
    return None


def sort_releases(releases: list[str]) -> list[str]:
    """Releases oldest first; strings that are no kernel release go last, as given."""
    parsed = [(parse(r), r) for r in releases]
    known = sorted((p, r) for p, r in parsed if p is not None)
    return [r for _, r in known] + [r for p, r in parsed if p is None]
