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

    ``kernel_release`` is the CRASHED kernel, which only the crash itself tells
    (:func:`release_of_file`) or the operator (``--kernel-release``); the running kernel is
    never sent in its place: after a reboot into an update it is another kernel, and a wrong
    release would put the crash on the wrong side of a regression.
    """
    return HostFacts(
        hostname=clean(hostname or hostname_from(root)),
        machine_id=clean(machine_id_from(root)),
        kernel_release=clean(kernel_release),
        distro=clean(distro_from(root)),
        hardware=clean(hardware_from(root)),
    )


#: makedumpfile's kdump-compressed header (``struct disk_dump_header``): an 8-byte signature,
#: an int version, then the crashed kernel's ``struct new_utsname`` (six 65-byte strings:
#: sysname, nodename, release, version, machine, domainname).
KDUMP_SIGNATURES = (b"KDUMP   ", b"DISKDUMP")
UTS_LEN = 65
UTS_RELEASE_OFFSET = 8 + 4 + 2 * UTS_LEN


def release_of_file(path: str) -> str | None:
    """The crashed kernel's release as the file says it: the kdump header's utsname, a
    report JSON's ``system.release``, or a log's banner/oops line; None when it does not say
    (an ELF vmcore: the server reads it from the dump's VMCOREINFO)."""
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 20)
    except OSError:
        return None
    if head[:8] in KDUMP_SIGNATURES:
        raw = head[UTS_RELEASE_OFFSET : UTS_RELEASE_OFFSET + UTS_LEN].split(b"\0", 1)[0]
        return raw.decode("ascii", "replace") or None
    if head[:4] == b"\x7fELF" or b"\0" in head[:4096]:
        return None
    text = head.decode("utf-8", "replace")
    if text.lstrip().startswith("{"):
        import json

        try:
            release = (json.loads(text).get("system") or {}).get("release")
        except (ValueError, AttributeError):
            return None
        return str(release) if release else None
    return release_from_log(text)


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
