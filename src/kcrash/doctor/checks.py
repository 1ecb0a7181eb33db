"""What ``kcrash doctor`` checks: the table.  One row per check, data only.

Each row says what it reads (paths under ``--root``), which verdict function
judges it (:mod:`kcrash.doctor.verdicts`), why it matters in one line, and
the command that fixes it on each distribution family.  Fix commands are
``str.format`` templates over the verdict's values and the host's (see
:func:`kcrash.doctor.run.template_values`); they are run as root.

Only ``fail`` makes the host "not ready": a host without a reserved
crashkernel, a loaded capture kernel, a kdump service or room for the dump
will not produce a vmcore.  Panic knobs decide *which* crashes produce one;
they are warnings (``panic_on_oops``) or information.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import verdicts as v
from .host import Host


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    reads: tuple[str, ...]
    verdict: Callable[[Host], v.Verdict]
    why: str
    fix: dict[str, str]  # family (rhel | debian | suse) -> command
    needs: str | None = None  # id of a check whose failure makes this one's fix moot


def same(cmd: str) -> dict[str, str]:
    """The same command on every family (sysctl knobs)."""
    return {"rhel": cmd, "debian": cmd, "suse": cmd}


def sysctl_fix(name: str, value: int = 1) -> dict[str, str]:
    slug = name.rsplit(".", 1)[-1]
    return same(
        f"sysctl -w {name}={value} && echo '{name} = {value}' > /etc/sysctl.d/90-kcrash-{slug}.conf"
    )


_GRUB = {
    "rhel": "grubby --update-kernel=ALL --args=crashkernel={mb}M && reboot",
    "debian": "apt-get install -y kdump-tools && sed -i 's/crashkernel=[^ \"]*/crashkernel={mb}M/'"
    " /etc/default/grub.d/kdump-tools.cfg && update-grub && reboot",
    "suse": "sed -i -e 's/ *crashkernel=[^ \"]*//' -e 's/^GRUB_CMDLINE_LINUX_DEFAULT=\"/&"
    "crashkernel={mb}M /' /etc/default/grub && grub2-mkconfig -o /boot/grub2/grub.cfg && reboot",
}

_SERVICE = {
    "rhel": "dnf install -y kexec-tools && systemctl enable --now kdump",
    "debian": "apt-get install -y kdump-tools && systemctl enable --now kdump-tools",
    "suse": "zypper install -y kdump && systemctl enable --now kdump",
}

CHECKS: tuple[Check, ...] = (
    Check(
        "kernel",
        "kernel release",
        ("/proc/sys/kernel/osrelease", "/sys/kernel/notes"),
        v.kernel,
        "the release and build id name the exact debuginfo a dump of this host will need",
        {},
    ),
    Check(
        "kexec_support",
        "kexec support",
        ("/sys/kernel/kexec_crash_size", "/sys/kernel/kexec_crash_loaded"),
        v.kexec_support,
        "kdump boots a second kernel with kexec at panic; a kernel without kexec captures nothing",
        {
            "rhel": "dnf install -y kernel && reboot",
            "debian": "apt-get install -y {kernel_package} && reboot",
            "suse": "zypper install -y kernel-default && reboot",
        },
    ),
    Check(
        "crashkernel",
        "crashkernel reserved",
        ("/sys/kernel/kexec_crash_size", "/proc/iomem", "/proc/cmdline", "/proc/meminfo"),
        v.crashkernel,
        "the capture kernel runs in memory reserved at boot by crashkernel=; without it, no dump",
        _GRUB,
        needs="kexec_support",
    ),
    Check(
        "crashkernel_size",
        "crashkernel size",
        ("/sys/kernel/kexec_crash_size", "/proc/meminfo"),
        v.crashkernel_size,
        "with too little reserved, the capture kernel or makedumpfile runs out of memory: no dump",
        _GRUB,
        needs="crashkernel",
    ),
    Check(
        "capture_loaded",
        "capture kernel loaded",
        ("/sys/kernel/kexec_crash_loaded",),
        v.capture_loaded,
        "only a capture kernel loaded (kexec -p) before the crash can save the dump",
        {
            "rhel": "kdumpctl restart",
            "debian": "systemctl restart kdump-tools && kdump-config status",
            "suse": "systemctl restart kdump",
        },
        needs="crashkernel",
    ),
    Check(
        "kdump_service",
        "kdump service",
        (
            "/etc/systemd/system/*.wants/kdump-tools.service",
            "/etc/systemd/system/*.wants/kdump.service",
            "/lib/systemd/system/",
            "/usr/lib/systemd/system/",
        ),
        v.kdump_service,
        "the service loads the capture kernel at every boot; without it a reboot ends protection",
        _SERVICE,
    ),
    Check(
        "kdump_config",
        "kdump configuration",
        ("/etc/kdump.conf", "/etc/default/kdump-tools", "/etc/sysconfig/kdump"),
        v.kdump_config,
        "it says where the dump goes and how it is filtered; -d 31 keeps what analysis needs",
        {
            "rhel": "dnf install -y kexec-tools && sed -i 's/^#* *core_collector .*/core_collector"
            " makedumpfile -l --message-level 7 -d 31/' /etc/kdump.conf && kdumpctl restart",
            "debian": "apt-get install -y kdump-tools && sed -i -e 's/^USE_KDUMP=.*/USE_KDUMP=1/'"
            " -e 's/^#* *MAKEDUMP_ARGS=.*/MAKEDUMP_ARGS=\"-c -d 31\"/' /etc/default/kdump-tools"
            " && systemctl restart kdump-tools",
            "suse": "zypper install -y kdump && sed -i 's/^KDUMP_DUMPLEVEL=.*/KDUMP_DUMPLEVEL="
            '"31"/\' /etc/sysconfig/kdump && systemctl restart kdump',
        },
    ),
    Check(
        "dump_space",
        "space for the dump",
        ("/etc/kdump.conf", "/etc/default/kdump-tools", "/proc/meminfo", "statvfs(path)"),
        v.dump_space,
        "a dump target that fills up leaves a truncated vmcore, often unusable",
        {
            "rhel": "df -h {path}; free space there, or set 'path <DIR>' in /etc/kdump.conf"
            " && kdumpctl restart",
            "debian": "df -h {path}; free space there, or sed -i 's|^KDUMP_COREDIR=.*|"
            'KDUMP_COREDIR="<DIR>"|\' /etc/default/kdump-tools && systemctl restart kdump-tools',
            "suse": "df -h {path}; free space there, or sed -i 's|^KDUMP_SAVEDIR=.*|"
            'KDUMP_SAVEDIR="file://<DIR>"|\' /etc/sysconfig/kdump && systemctl restart kdump',
        },
    ),
    Check(
        "panic_on_oops",
        "kernel.panic_on_oops",
        ("/proc/sys/kernel/panic_on_oops",),
        v.knob("kernel.panic_on_oops", "an oops", warn_when_off=True),
        "an oops (NULL dereference, BUG) otherwise kills one task and the kernel limps on: no dump",
        sysctl_fix("kernel.panic_on_oops"),
    ),
    Check(
        "softlockup_panic",
        "kernel.softlockup_panic",
        ("/proc/sys/kernel/softlockup_panic",),
        v.knob("kernel.softlockup_panic", "a soft lockup", missing_ok=True),
        "a CPU looping in the kernel for 2×watchdog_thresh seconds is otherwise only logged",
        sysctl_fix("kernel.softlockup_panic"),
    ),
    Check(
        "hardlockup_panic",
        "kernel.hardlockup_panic",
        ("/proc/sys/kernel/hardlockup_panic",),
        v.knob("kernel.hardlockup_panic", "a hard lockup", missing_ok=True),
        "a CPU stuck with interrupts off (NMI watchdog) is otherwise only logged",
        sysctl_fix("kernel.hardlockup_panic"),
    ),
    Check(
        "hung_task_panic",
        "kernel.hung_task_panic",
        ("/proc/sys/kernel/hung_task_panic",),
        v.knob("kernel.hung_task_panic", "a hung task", missing_ok=True),
        "a task stuck in D state past hung_task_timeout_secs is otherwise only logged",
        sysctl_fix("kernel.hung_task_panic"),
    ),
    Check(
        "panic_on_warn",
        "kernel.panic_on_warn",
        ("/proc/sys/kernel/panic_on_warn",),
        v.knob("kernel.panic_on_warn", "a WARN()", missing_ok=True),
        "WARN() splats become dumps: finds bugs early, but a harmless warning then stops the host",
        sysctl_fix("kernel.panic_on_warn"),
    ),
    Check(
        "unknown_nmi_panic",
        "kernel.unknown_nmi_panic",
        ("/proc/sys/kernel/unknown_nmi_panic",),
        v.knob("kernel.unknown_nmi_panic", "an unknown NMI", missing_ok=True),
        "lets an outside NMI (virsh inject-nmi, iLO/iDRAC NMI button) force a dump of a hung host",
        sysctl_fix("kernel.unknown_nmi_panic"),
    ),
    Check(
        "panic_on_oom",
        "vm.panic_on_oom",
        ("/proc/sys/vm/panic_on_oom",),
        v.knob("vm.panic_on_oom", "out of memory"),
        "out of memory then panics (and dumps) instead of OOM-killing: only to diagnose a leak",
        sysctl_fix("vm.panic_on_oom"),
    ),
    Check(
        "panic_timeout",
        "kernel.panic",
        ("/proc/sys/kernel/panic",),
        v.kernel_panic,
        "seconds to reboot after a panic that was not captured; 0 keeps the host down",
        sysctl_fix("kernel.panic", 10),
    ),
    Check(
        "sysrq",
        "magic SysRq",
        ("/proc/sys/kernel/sysrq",),
        v.sysrq,
        "SysRq-c at the console forces a dump of a host that hangs without crashing",
        sysctl_fix("kernel.sysrq"),
    ),
    Check(
        "debuginfo",
        "debuginfo (vmlinux)",
        ("/usr/lib/debug/boot/vmlinux-R", "/usr/lib/debug/lib/modules/R/vmlinux", "cache"),
        v.debuginfo,
        "source lines need this build's vmlinux; get it while its package is still on the mirror",
        {
            "rhel": "dnf debuginfo-install -y kernel-{release}",
            "debian": "apt-get install -y {dbg_package}   # or: kcrash debuginfo --release "
            "{release} --fetch",
            "suse": "zypper --plus-content debug install -y kernel-default-debuginfo",
        },
    ),
    Check(
        "btf",
        "BTF",
        ("/sys/kernel/btf/vmlinux",),
        v.btf,
        "with BTF, kcrash reads types from the dump itself: stacks and tasks with no download",
        {
            "rhel": "dnf install -y kernel && reboot",
            "debian": "apt-get install -y {kernel_package} && reboot",
            "suse": "zypper install -y kernel-default && reboot",
        },
    ),
)
