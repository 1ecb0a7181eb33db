"""RHEL/CentOS/Fedora and SUSE: name the debuginfo package and the command to get it.

Why only instructions: these packages come from debuginfo repositories the
host must have enabled (``*-debuginfo`` on RHEL through subscription-manager,
``fedora-debuginfo`` on Fedora, ``*-Debug`` on SUSE), installing them needs
root, and they are 600–900 MB; the exact package and command is what the
engineer was missing.  debuginfod (``debuginfod.fedoraproject.org``,
``debuginfod.centos.org``, ``debuginfod.opensuse.org``…) is the way to let
kcrash download by itself.
"""

from __future__ import annotations

import re


def rhel_package(release: str) -> str:
    """``5.14.0-362.8.1.el9_3.x86_64`` -> ``kernel-debuginfo-5.14.0-362.8.1.el9_3.x86_64``.

    Real-time and debug variants (``+rt``, ``+debug`` suffix since RHEL 9;
    ``.rt`` in older ones) have their own package.
    """
    m = re.match(r"^(.*?)\+(rt|debug|64k)$", release)
    if m:
        return f"kernel-{m.group(2)}-debuginfo-{m.group(1)}"
    return f"kernel-debuginfo-{release}"


def rhel_commands(release: str) -> list[str]:
    """The commands that install the debuginfo of ``release``, dnf first, then yum (RHEL 7)."""
    pkg = rhel_package(release)
    vmlinux = f"/usr/lib/debug/lib/modules/{release}/vmlinux"
    return [
        f"dnf debuginfo-install -y {pkg.replace('-debuginfo', '', 1)}",
        f"dnf --enablerepo='*debug*' install -y {pkg}",
        f"yum --enablerepo='*debug*' install -y {pkg}   # RHEL/CentOS 7",
        f"# then: {vmlinux}",
    ]


def suse_package(release: str) -> tuple[str, str]:
    """``5.14.21-150500.55.39-default`` -> package ``kernel-default-debuginfo``, version
    ``5.14.21-150500.55.39`` (SUSE appends a ``.N`` rebuild counter we cannot know)."""
    version, _, flavour = release.rpartition("-")
    return f"kernel-{flavour or 'default'}-debuginfo", version


def suse_commands(release: str) -> list[str]:
    pkg, version = suse_package(release)
    return [
        f"zypper --plus-content debug search -s -x {pkg}   # find the {version}.N build",
        f"zypper --plus-content debug install -y '{pkg} = {version}.N'",
        f"# then: /usr/lib/debug/boot/vmlinux-{release}.debug",
    ]
