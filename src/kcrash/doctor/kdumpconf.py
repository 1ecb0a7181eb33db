"""Parse the kdump configuration of each family into one shape.

Why one shape: the checks ask the same three questions everywhere — is
kdump switched on, where does the dump go, and is it filtered — while the
files differ: ``/etc/kdump.conf`` (RHEL/Fedora, kexec-tools: ``path``,
``core_collector`` and a target line such as ``xfs UUID=…``, ``nfs``,
``ssh``), ``/etc/default/kdump-tools`` (Debian/Ubuntu: ``USE_KDUMP``,
``KDUMP_COREDIR``, ``MAKEDUMP_ARGS``, ``NFS``, ``SSH``) and
``/etc/sysconfig/kdump`` (SUSE: ``KDUMP_SAVEDIR`` as a URL,
``KDUMP_DUMPLEVEL``, ``KDUMP_DUMPFORMAT``).  Defaults are the packages' own
when a key is absent or commented out.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from .host import Host

CONFIG_FILES = {
    "rhel": "etc/kdump.conf",
    "debian": "etc/default/kdump-tools",
    "suse": "etc/sysconfig/kdump",
}

_FS_TYPES = ("ext2", "ext3", "ext4", "xfs", "btrfs", "minix", "vfat")


@dataclass
class KdumpConfig:
    """What a kdump configuration says, whichever family wrote it."""

    file: str  # relative to the root
    style: str  # "rhel" | "debian" | "suse"
    enabled: bool = True
    path: str = "/var/crash"  # directory on the target filesystem
    device: str | None = None  # a local filesystem target other than root (RHEL "xfs UUID=…")
    remote: str | None = None  # "ssh user@host", "nfs server:/export", "ftp://…"
    collector: str = ""  # the makedumpfile (or cp) command line
    dump_level: int | None = None  # makedumpfile -d N
    notes: list[str] = field(default_factory=list)

    @property
    def filtered(self) -> bool:
        """Does the collector drop free, cache and user pages (``-d`` with bits 1,2,4,8,16)?

        ``-d 31`` keeps only kernel memory: the dump is a fraction of RAM.
        """
        return self.dump_level is not None and self.dump_level & 0x1F == 0x1F

    @property
    def where(self) -> str:
        if self.remote:
            return f"{self.remote}:{self.path}"
        if self.device:
            return f"{self.device}:{self.path}"
        return self.path


def _shell_vars(text: str) -> dict[str, str]:
    """``KEY=value`` lines of a shell-sourced file (quotes removed, comments skipped)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line)
        if not m:
            continue
        try:
            words = shlex.split(m.group(2), comments=True)
        except ValueError:
            words = [m.group(2).strip("\"'")]
        out[m.group(1)] = " ".join(words)
    return out


def _dump_level(args: str) -> int | None:
    m = re.search(r"(?:^|\s)-d\s*(\d+)", args)
    return int(m.group(1)) if m else None


def parse_debian(text: str, file: str) -> KdumpConfig:
    v = _shell_vars(text)
    args = v.get("MAKEDUMP_ARGS", "-c -d 31")  # kdump-config's default
    cfg = KdumpConfig(file=file, style="debian", collector=f"makedumpfile {args}")
    cfg.enabled = v.get("USE_KDUMP", "0") not in ("0", "", "false", "no")
    cfg.path = v.get("KDUMP_COREDIR", "/var/crash")
    cfg.dump_level = _dump_level(args)
    if v.get("SSH"):
        cfg.remote = f"ssh {v['SSH']}"
    elif v.get("NFS"):
        cfg.remote = f"nfs {v['NFS']}"
    return cfg


def parse_rhel(text: str, file: str) -> KdumpConfig:
    cfg = KdumpConfig(file=file, style="rhel", collector="makedumpfile -l --message-level 7 -d 31")
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        key, _, value = line.partition(" ")
        value = value.strip()
        if key == "path":
            cfg.path = value
        elif key == "core_collector":
            cfg.collector = value
        elif key in ("ssh", "nfs", "nfs4"):
            cfg.remote = f"{key} {value}"
        elif key in _FS_TYPES:
            cfg.device = f"{key} {value}"
        elif key == "raw":
            cfg.device = f"raw {value}"
    if not cfg.remote and not cfg.device:
        cfg.notes.append("no target line: dumps go to the root filesystem")
    cfg.dump_level = _dump_level(cfg.collector) if "makedumpfile" in cfg.collector else 0
    return cfg


def parse_suse(text: str, file: str) -> KdumpConfig:
    v = _shell_vars(text)
    save = v.get("KDUMP_SAVEDIR", "/var/crash")
    cfg = KdumpConfig(file=file, style="suse")
    if save.startswith("file://"):
        cfg.path = save[len("file://") :]
    elif "://" in save:
        scheme, _, rest = save.partition("://")
        cfg.remote, _, path = f"{scheme} {rest}".partition("/")
        cfg.path = "/" + path
    else:
        cfg.path = save
    level = v.get("KDUMP_DUMPLEVEL", "31")
    cfg.dump_level = int(level) if level.isdigit() else None
    fmt = v.get("KDUMP_DUMPFORMAT", "compressed")
    cfg.collector = f"makedumpfile -d {level} ({fmt})"
    return cfg


_PARSERS = {"rhel": parse_rhel, "debian": parse_debian, "suse": parse_suse}


def load(host: Host) -> KdumpConfig | None:
    """The host's kdump configuration: its own family's file first, then any other."""
    order = [host.family] if host.family else []
    order += [f for f in CONFIG_FILES if f not in order]
    for fam in order:
        rel = CONFIG_FILES[fam]  # type: ignore[index]
        text = host.read(rel)
        if text is not None:
            return _PARSERS[fam](text, "/" + rel)  # type: ignore[index]
    return None
