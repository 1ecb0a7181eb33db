"""Read a host's /proc, /sys and /etc under a root directory.

Why a root: the same checks run on the live host (``/``), on an image
mounted somewhere, and on the trees the corpus guests copy out of their real
``/proc`` and ``/sys`` — so every check reads through :class:`Host` and never
opens an absolute path itself.  A file that cannot be read is ``None``, not
an error: a missing file is itself an answer (no kexec support, no config).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from dataclasses import dataclass, field
from functools import cached_property

from ..target.fetch.distro import host_family, os_release

#: Where unit files live; ``etc`` overrides ``run`` overrides ``usr/lib``/``lib``.
UNIT_DIRS = (
    "etc/systemd/system",
    "run/systemd/system",
    "usr/lib/systemd/system",
    "lib/systemd/system",
)


@dataclass
class UnitState:
    """What we can tell about one systemd unit (or SysV script) from files."""

    name: str
    installed: bool
    enabled: bool
    active: bool | None  # None: not knowable (not the live root, or no systemd running)
    wanted_by: list[str] = field(default_factory=list)


class Host:
    """The host under ``root``: its files, sysctls, memory and services."""

    def __init__(self, root: str = "/", family: str | None = None) -> None:
        self.root = os.path.abspath(root)
        self.live = self.root == "/"
        self._family = family

    # -- files -------------------------------------------------------------
    def path(self, rel: str) -> str:
        return os.path.join(self.root, rel.lstrip("/"))

    def exists(self, rel: str) -> bool:
        return os.path.lexists(self.path(rel))

    def read(self, rel: str) -> str | None:
        try:
            with open(self.path(rel), encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return None

    def read_bytes(self, rel: str) -> bytes | None:
        try:
            with open(self.path(rel), "rb") as f:
                return f.read()
        except OSError:
            return None

    def read_int(self, rel: str) -> int | None:
        text = self.read(rel)
        if text is None:
            return None
        try:
            return int(text.split()[0], 0)
        except (ValueError, IndexError):
            return None

    def sysctl(self, name: str) -> int | None:
        """``kernel.panic_on_oops`` -> the integer in ``/proc/sys/kernel/panic_on_oops``."""
        return self.read_int("proc/sys/" + name.replace(".", "/"))

    # -- facts -------------------------------------------------------------
    @cached_property
    def family(self) -> str | None:
        return self._family or host_family(self.root)

    @cached_property
    def os_name(self) -> str:
        info = os_release(self.root)
        return info.get("PRETTY_NAME") or info.get("NAME") or "unknown distribution"

    @cached_property
    def release(self) -> str | None:
        text = self.read("proc/sys/kernel/osrelease")
        if text:
            return text.strip()
        version = self.read("proc/version")  # "Linux version R (…"
        if version and version.startswith("Linux version "):
            return version.split()[2]
        saved = self.read("uname-r")  # `uname -r` saved beside a copied tree (kcrash's corpus)
        return saved.strip() if saved and saved.strip() else None

    @cached_property
    def build_id(self) -> str | None:
        """The running kernel's GNU build id, from the raw ELF notes in ``/sys/kernel/notes``."""
        data = self.read_bytes("sys/kernel/notes")
        off = 0
        while data and off + 12 <= len(data):
            namesz, descsz, ntype = struct.unpack_from("<III", data, off)
            off += 12
            name = data[off : off + namesz].rstrip(b"\0")
            off += (namesz + 3) & ~3
            desc = data[off : off + descsz]
            off += (descsz + 3) & ~3
            if name == b"GNU" and ntype == 3:
                return desc.hex()
        return None

    @cached_property
    def cmdline(self) -> str:
        return (self.read("proc/cmdline") or "").strip()

    def cmdline_param(self, key: str) -> str | None:
        """The last ``key=value`` of the kernel command line (the kernel uses the last)."""
        value = None
        for word in self.cmdline.split():
            if word == "--":
                break
            k, sep, v = word.partition("=")
            if sep and k == key:
                value = v
        return value

    @cached_property
    def meminfo(self) -> dict[str, int]:
        """``/proc/meminfo`` in bytes."""
        out: dict[str, int] = {}
        for line in (self.read("proc/meminfo") or "").splitlines():
            key, _, rest = line.partition(":")
            parts = rest.split()
            if parts and parts[0].isdigit():
                out[key] = int(parts[0]) * (1024 if len(parts) > 1 else 1)
        return out

    def iomem_crash_kernel(self) -> tuple[bool, int]:
        """Whether ``/proc/iomem`` lists "Crash kernel" ranges, and their total size.

        The size is 0 when read without root (the kernel shows zeroed addresses).
        """
        seen, total = False, 0
        for line in (self.read("proc/iomem") or "").splitlines():
            rng, _, name = line.strip().partition(" : ")
            if name.strip() == "Crash kernel":
                seen = True
                lo, _, hi = rng.partition("-")
                try:
                    a, b = int(lo, 16), int(hi, 16)
                except ValueError:
                    continue
                if b > a:
                    total += b - a + 1
        return seen, total

    # -- services ----------------------------------------------------------
    def unit(self, name: str) -> UnitState:
        """Installed/enabled from unit files and ``*.wants`` links; active only when live."""
        installed = any(self.exists(f"{d}/{name}") for d in UNIT_DIRS)
        wanted_by: list[str] = []
        for d in ("etc/systemd/system", "usr/lib/systemd/system", "lib/systemd/system"):
            try:
                entries = os.listdir(self.path(d))
            except OSError:
                continue
            for e in entries:
                if e.endswith((".wants", ".requires")) and self.exists(f"{d}/{e}/{name}"):
                    wanted_by.append(e.rsplit(".", 1)[0])
        script = name.removesuffix(".service")
        sysv = self.exists(f"etc/init.d/{script}")
        sysv_enabled = sysv and any(
            f.startswith("S") and f[3:] == script
            for lvl in "2345"
            for f in _listdir(self.path(f"etc/rc{lvl}.d"))
        )
        enabled = bool(wanted_by) or (not installed and sysv_enabled)
        if (
            self.exists(f"etc/systemd/system/{name}")
            and os.path.realpath(self.path(f"etc/systemd/system/{name}")) == "/dev/null"
        ):
            enabled = False  # masked
        return UnitState(name, installed or sysv, enabled, self._active(name), wanted_by)

    def _active(self, name: str) -> bool | None:
        if not self.live or not os.path.isdir("/run/systemd/system"):
            return None
        systemctl = shutil.which("systemctl")
        if not systemctl:
            return None
        try:
            r = subprocess.run(
                [systemctl, "is-active", "--quiet", name], timeout=10, capture_output=True
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return r.returncode == 0

    def free_bytes(self, rel: str) -> tuple[str, int] | None:
        """Free space for root at ``rel`` (or its nearest existing parent) under the root."""
        p = self.path(rel)
        while not os.path.isdir(p) and p != os.path.dirname(p):
            p = os.path.dirname(p)
        try:
            st = os.statvfs(p)
        except OSError:
            return None
        return p, st.f_bavail * st.f_frsize


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []
