"""Host facts sent with each crash: who crashed, on which kernel, distribution and hardware.

Why from files and not from tools: in a kdump capture initramfs the host's root is mounted
elsewhere (dracut: ``/sysroot``) and few programs exist, so every fact is one file read under
a root directory, each row of :data:`FACTS` saying where it comes from.  A fact that cannot be
read is left out (the server shows it as unknown), never sent as a placeholder.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
from dataclasses import asdict, dataclass

#: The server's own cap on host-fact fields (server/config.py Limits.max_field_chars).
MAX_FIELD_CHARS = 256


@dataclass(frozen=True)
class HostFacts:
    hostname: str | None = None
    machine_id: str | None = None
    kernel_release: str | None = None
    distro: str | None = None
    hardware: str | None = None

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if v}


def clean(value: str | None) -> str | None:
    """One line of printable text within the server's cap, or None when nothing is left."""
    if value is None:
        return None
    value = re.sub(r"[\x00-\x1f\x7f]+", " ", value).strip()
    return value[:MAX_FIELD_CHARS] or None


def _read(root: str, path: str) -> str | None:
    try:
        with open(os.path.join(root, path.lstrip("/")), encoding="utf-8", errors="replace") as f:
            return f.read(4096)
    except OSError:
        return None


def os_release(text: str) -> dict[str, str]:
    """os-release(5): shell-style ``KEY=value`` lines, values possibly quoted."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, raw = line.partition("=")
        try:
            words = shlex.split(raw)
        except ValueError:
            continue
        out[key] = " ".join(words)
    return out


def distro_from(root: str) -> str | None:
    """PRETTY_NAME, else NAME VERSION_ID; /etc/os-release first, /usr/lib/os-release after."""
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        text = _read(root, path)
        if text is None:
            continue
        rel = os_release(text)
        return rel.get("PRETTY_NAME") or " ".join(
            v for v in (rel.get("NAME"), rel.get("VERSION_ID")) if v
        )
    return None


def hardware_from(root: str) -> str | None:
    """``sys_vendor product_name`` from DMI (x86, arm64 with SMBIOS), else the device tree's
    ``model`` (arm boards); a VM without DMI has neither."""
    vendor = (_read(root, "/sys/class/dmi/id/sys_vendor") or "").strip()
    product = (_read(root, "/sys/class/dmi/id/product_name") or "").strip()
    if product:
        return f"{vendor} {product}" if vendor and vendor not in product else product
    model = _read(root, "/proc/device-tree/model") or _read(
        root, "/sys/firmware/devicetree/base/model"
    )
    return model.rstrip("\0\n") if model else None


def machine_id_from(root: str) -> str | None:
    """machine-id(5): 32 lowercase hex digits; dbus's copy on hosts without systemd."""
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        text = (_read(root, path) or "").strip()
        if re.fullmatch(r"[0-9a-f]{32}", text):
            return text
    return None


def hostname_from(root: str) -> str | None:
    """/etc/hostname of the root (the capture kernel's own name is often "localhost")."""
    text = (_read(root, "/etc/hostname") or "").strip()
    if text and not text.startswith("#"):
        return text.split()[0]
    if root in ("", "/"):
        return socket.gethostname() or None
    return None


def collect(
    root: str = "/", hostname: str | None = None, kernel_release: str | None = None
) -> HostFacts:
    """Every fact of the host whose root directory is ``root``.

    ``kernel_release`` is the crashed kernel when the caller knows it (from the log); the
    running kernel otherwise — the same one after kdump (which boots the crashed host's
    kernel), possibly a newer one after a reboot, so callers pass what the crash says.
    """
    return HostFacts(
        hostname=clean(hostname or hostname_from(root)),
        machine_id=clean(machine_id_from(root)),
        kernel_release=clean(kernel_release or os.uname().release),
        distro=clean(distro_from(root)),
        hardware=clean(hardware_from(root)),
    )


# The kernel release a log names: the boot banner, or the "CPU: … Comm: … <release> #N" line
# every oops, WARNING and panic prints (dump_stack_print_info()).
RELEASE_IN_LOG = (
    re.compile(r"Linux version (\S+)"),
    re.compile(
        r"\bCPU: \d+ (?:UID: \d+ )?PID: \d+ Comm: .*?(?:Not tainted|Tainted: [A-Z ]+?)\s+(\S+) #"
    ),
)


def release_from_log(text: str) -> str | None:
    """The crashed kernel's release as its own log says it (last banner or oops line wins)."""
    found = None
    for rx in RELEASE_IN_LOG:
        for m in rx.finditer(text):
            found = m.group(1)
    return found
