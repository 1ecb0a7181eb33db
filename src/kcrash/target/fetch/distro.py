"""Which distribution family a host runs, and which one built a kernel release.

Why two questions: ``kcrash doctor`` prints the fix command for the *host*
it checks (from ``/etc/os-release``), while ``kcrash debuginfo`` must find
the package that built a *dump's* kernel, which may come from another
distribution than the machine doing the analysis.  The release string
alone tells the families apart well enough:

- Debian ``6.1.0-27-amd64`` (``6.12.117+deb13-amd64`` since Debian 13), Ubuntu
  ``5.15.0-91-generic`` (ABI + flavour);
- RHEL/CentOS/Fedora/Alma/Rocky ``5.14.0-362.8.1.el9_3.x86_64``, ``6.5.6-300.fc39.x86_64``;
- SUSE ``5.14.21-150500.55.39-default``.
"""

from __future__ import annotations

import os
import re

FAMILIES = ("rhel", "debian", "suse")

#: Human names, for messages and the doctor's header.
FAMILY_NAMES = {"rhel": "RHEL/Fedora", "debian": "Debian/Ubuntu", "suse": "SUSE"}

_ID_TO_FAMILY = {
    "rhel": "rhel",
    "fedora": "rhel",
    "centos": "rhel",
    "rocky": "rhel",
    "almalinux": "rhel",
    "ol": "rhel",
    "amzn": "rhel",
    "debian": "debian",
    "ubuntu": "debian",
    "linuxmint": "debian",
    "raspbian": "debian",
    "suse": "suse",
    "sles": "suse",
    "opensuse": "suse",
    "opensuse-leap": "suse",
    "opensuse-tumbleweed": "suse",
}


def os_release(root: str = "/") -> dict[str, str]:
    """Parse ``os-release`` under ``root`` (``/etc`` first, then ``/usr/lib``)."""
    for rel in ("etc/os-release", "usr/lib/os-release"):
        try:
            with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError:
            continue
        out: dict[str, str] = {}
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep and not key.startswith("#"):
                out[key.strip()] = value.strip().strip("\"'")
        return out
    return {}


def host_family(root: str = "/") -> str | None:
    """``rhel`` | ``debian`` | ``suse`` for the host under ``root``, or None if unknown."""
    info = os_release(root)
    ids = [info.get("ID", ""), *info.get("ID_LIKE", "").split()]
    for i in ids:
        fam = _ID_TO_FAMILY.get(i.lower())
        if fam:
            return fam
    return None


_RHEL_RE = re.compile(r"\.(el\d+|fc\d+|amzn\d+)")
_SUSE_RE = re.compile(r"^\d+\.\d+\.\d+-\d+(\.\d+)*-(default|azure|rt|64kb|kvmsmall)$")
#: Debian up to 12 and Ubuntu: ``6.1.0-57-amd64`` (ABI number); since Debian 13 the ABI is
#: the upstream version and the release, ``6.12.117+deb13-amd64`` (``+bpo`` in backports).
_DEBIAN_RE = re.compile(r"^\d+\.\d+\.\d+(-\d+(\+\w+)?|\+(deb\d+|bpo))-[a-z0-9-]+$")


def release_family(release: str) -> str | None:
    """Guess which family built a kernel ``release`` (see the module docstring)."""
    if _RHEL_RE.search(release):
        return "rhel"
    if _SUSE_RE.match(release):
        return "suse"
    if _DEBIAN_RE.match(release):
        return "debian"
    return None


def is_ubuntu_release(release: str) -> bool:
    """Ubuntu flavours (``-generic``, ``-aws`` …) versus Debian's (``-amd64``, ``-arm64`` …)."""
    return bool(_DEBIAN_RE.match(release)) and not re.search(
        r"-(amd64|arm64|armmp|686|686-pae|cloud-amd64|cloud-arm64|rt-amd64|rt-arm64|"
        r"powerpc64le|s390x|marvell|rpi|loong64|riscv64|armmp-lpae)$",
        release,
    )


def debuginfo_package(release: str | None) -> str:
    """The package that holds ``release``'s vmlinux with DWARF, named the way the family
    that built the kernel names it (messages must not send a RHEL user to a Debian
    package): Debian ``linux-image-R-dbg``, Ubuntu ``linux-image-unsigned-R-dbgsym``,
    RHEL/Fedora ``kernel-debuginfo-R``, SUSE ``kernel-FLAVOUR-debuginfo``."""
    if not release:
        return "the kernel's debuginfo package"
    family = release_family(release)
    if family == "debian":
        from .deb import package_names

        return package_names(release)[0]
    if family == "rhel":
        from .rpm import rhel_package

        return rhel_package(release)
    if family == "suse":
        from .rpm import suse_package

        pkg, version = suse_package(release)
        return f"{pkg} {version}"
    return f"the debuginfo package of {release} (-dbg, -dbgsym or -debuginfo)"
