"""Verdict functions: one per check row of :mod:`kcrash.doctor.checks`.

Each takes the :class:`~kcrash.doctor.host.Host` and returns a
:class:`Verdict`: a status, one line saying what was found, and values the
row's fix command may use (``{mb}``, ``{release}`` …).  No printing here;
wording of *why* and *how to fix* lives in the table, so the table reads as
the documentation of what ``kcrash doctor`` checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import kdumpconf
from .host import Host

OK, WARN, FAIL, INFO = "ok", "warn", "fail", "info"

MiB = 1 << 20
GiB = 1 << 30


@dataclass
class Verdict:
    status: str  # ok | warn | fail | info
    detail: str
    values: dict[str, object] = field(default_factory=dict)


def _mib(n: int) -> str:
    return f"{n / GiB:.1f} GiB" if n >= GiB else f"{n // MiB} MiB"


# -- kernel and reservation ---------------------------------------------------


def kernel(h: Host) -> Verdict:
    if h.release is None:
        return Verdict(WARN, "cannot read the kernel release (no /proc/sys/kernel/osrelease)")
    bid = f", build id {h.build_id}" if h.build_id else ""
    return Verdict(OK, f"{h.release}{bid}")


def kexec_support(h: Host) -> Verdict:
    if h.exists("sys/kernel/kexec_crash_size") or h.exists("sys/kernel/kexec_crash_loaded"):
        return Verdict(OK, "kernel built with kexec and crash-dump support")
    return Verdict(
        FAIL,
        "no /sys/kernel/kexec_crash_size: this kernel was built without kexec "
        "(CONFIG_KEXEC_CORE / CONFIG_CRASH_DUMP)",
    )


def recommended_crashkernel(total_ram: int) -> int:
    """Memory to reserve for the capture kernel on x86-64, in bytes.

    RHEL 9's ``crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M`` (what
    ``kdumpctl reset-crashkernel`` sets), which also fits Debian/Ubuntu
    capture initramfs sizes; Debian's own default ``384M-:128M`` is often
    too small for 6.x kernels (the capture kernel runs out of memory).
    """
    if total_ram >= 64 * GiB:
        return 512 * MiB
    if total_ram >= 4 * GiB:
        return 256 * MiB
    return 192 * MiB


def crash_size(h: Host) -> int | None:
    """Reserved bytes: ``/sys/kernel/kexec_crash_size``, else the ``/proc/iomem`` ranges."""
    size = h.read_int("sys/kernel/kexec_crash_size")
    if size is not None:
        return size
    seen, total = h.iomem_crash_kernel()
    return total if seen else None


def total_ram(h: Host) -> int:
    """RAM as the admin knows it: MemTotal plus what crashkernel took out of it."""
    return h.meminfo.get("MemTotal", 0) + (crash_size(h) or 0)


def crashkernel(h: Host) -> Verdict:
    size = crash_size(h)
    param = h.cmdline_param("crashkernel")
    seen, _ = h.iomem_crash_kernel()
    rec = recommended_crashkernel(total_ram(h))
    vals = {"mb": rec // MiB}
    if size:
        where = " (/proc/iomem: Crash kernel)" if seen else ""
        arg = f" by crashkernel={param}" if param else ""
        return Verdict(OK, f"{_mib(size)} reserved{arg}{where}", vals)
    if size is None and not seen:
        return Verdict(
            FAIL, "nothing reserved: no kexec_crash_size and no 'Crash kernel' in /proc/iomem", vals
        )
    if param:
        return Verdict(
            FAIL,
            f"crashkernel={param} is on the command line but nothing was reserved "
            "(too large, or not a size this kernel accepts: see 'crashkernel' in dmesg)",
            vals,
        )
    return Verdict(FAIL, "no crashkernel= on the kernel command line: 0 bytes reserved", vals)


def crashkernel_size(h: Host) -> Verdict:
    size = crash_size(h) or 0
    ram = total_ram(h)
    rec = recommended_crashkernel(ram)
    vals = {"mb": rec // MiB}
    if not size:
        return Verdict(INFO, f"nothing reserved; for {_mib(ram)} of RAM reserve {_mib(rec)}", vals)
    if size >= rec:
        return Verdict(OK, f"{_mib(size)} reserved for {_mib(ram)} of RAM (≥ {_mib(rec)})", vals)
    return Verdict(
        WARN,
        f"{_mib(size)} reserved for {_mib(ram)} of RAM; {_mib(rec)} recommended",
        vals,
    )


def capture_loaded(h: Host) -> Verdict:
    loaded = h.read_int("sys/kernel/kexec_crash_loaded")
    if loaded is None:
        return Verdict(FAIL, "no /sys/kernel/kexec_crash_loaded (no kexec support)")
    if loaded == 1:
        return Verdict(OK, "a capture kernel is loaded (kexec -p): a panic now boots into it")
    return Verdict(FAIL, "no capture kernel loaded: a panic now just stops or reboots the host")


# -- service and configuration ------------------------------------------------

SERVICE_NAMES = {"debian": "kdump-tools.service", "rhel": "kdump.service", "suse": "kdump.service"}


def _service(h: Host):  # type: ignore[no-untyped-def]
    names = [SERVICE_NAMES[h.family]] if h.family else []
    names += [n for n in ("kdump-tools.service", "kdump.service") if n not in names]
    states = [h.unit(n) for n in names]
    return next((s for s in states if s.installed), states[0])


def kdump_service(h: Host) -> Verdict:
    st = _service(h)
    loaded = h.read_int("sys/kernel/kexec_crash_loaded") == 1
    vals = {"unit": st.name}
    if not st.installed:
        if loaded:
            return Verdict(
                WARN,
                "no kdump service installed; the capture kernel was loaded by hand "
                "and will be gone after a reboot",
                vals,
            )
        return Verdict(FAIL, "no kdump service installed (kdump-tools / kexec-tools / kdump)", vals)
    active = {True: ", active", False: ", not active", None: ""}[st.active]
    if not st.enabled:
        return Verdict(
            WARN if loaded else FAIL,
            f"{st.name} installed but not enabled{active}: "
            "nothing loads the capture kernel at boot",
            vals,
        )
    by = ", ".join(st.wanted_by) or "rc.d"
    if st.active is False:
        return Verdict(FAIL, f"{st.name} enabled ({by}) but not active", vals)
    return Verdict(OK, f"{st.name} enabled ({by}){active}", vals)


def kdump_config(h: Host) -> Verdict:
    cfg = kdumpconf.load(h)
    loaded = h.read_int("sys/kernel/kexec_crash_loaded") == 1
    if cfg is None:
        if loaded:
            return Verdict(WARN, "no kdump configuration file (capture kernel loaded by hand)")
        return Verdict(FAIL, "no kdump configuration (/etc/kdump.conf, /etc/default/kdump-tools)")
    vals = {"file": cfg.file}
    if not cfg.enabled:
        return Verdict(FAIL, f"{cfg.file}: USE_KDUMP is off: kdump-tools will not load", vals)
    what = f"{cfg.file}: save to {cfg.where} with {cfg.collector}"
    if not cfg.filtered:
        return Verdict(
            WARN,
            f"{what}: not filtered with -d 31, the dump will be the size of RAM",
            vals,
        )
    return Verdict(OK, what, vals)


def expected_dump_size(h: Host, cfg: kdumpconf.KdumpConfig | None) -> int:
    """An upper bound for the dump written by this configuration, in bytes.

    Filtered (``-d 31``) dumps keep kernel memory only: RAM less free, page
    cache and anonymous user pages, counted before compression (which
    typically divides by 3–6).  Unfiltered dumps are the size of RAM.
    """
    mi = h.meminfo
    ram = mi.get("MemTotal", 0)
    if cfg is not None and not cfg.filtered:
        return ram
    user = sum(mi.get(k, 0) for k in ("MemFree", "Buffers", "Cached", "AnonPages", "SwapCached"))
    return max(ram - user, 64 * MiB)


def dump_space(h: Host) -> Verdict:
    cfg = kdumpconf.load(h)
    need = expected_dump_size(h, cfg)
    if cfg is not None and cfg.remote:
        return Verdict(
            INFO, f"dump target is remote ({cfg.remote}); it needs up to {_mib(need)} free"
        )
    if cfg is not None and cfg.device:
        return Verdict(
            INFO, f"dump target is {cfg.device}; check it has {_mib(need)} free at {cfg.path}"
        )
    path = cfg.path if cfg else "/var/crash"
    got = h.free_bytes(path)
    vals = {"path": path}
    if got is None:
        return Verdict(WARN, f"cannot measure free space at {path}", vals)
    where, free = got
    shown = where if h.live else f"{where} (under --root)"
    msg = f"{_mib(free)} free at {shown}; a dump needs up to {_mib(need)}"
    if free < need:
        return Verdict(FAIL, msg, vals)
    if free < 2 * need:
        return Verdict(WARN, msg + " (less than two dumps)", vals)
    return Verdict(OK, msg, vals)


# -- panic knobs -------------------------------------------------------------


def knob(name: str, event: str, *, missing_ok: bool = False, warn_when_off: bool = False):  # type: ignore[no-untyped-def]
    """A verdict for a panic knob: ✓ when ``event`` panics, and so is captured in a dump."""

    def verdict(h: Host) -> Verdict:
        value = h.sysctl(name)
        vals = {"name": name}
        if value is None:
            if h.live:
                msg = f"not in this kernel: {event} is never captured"
            else:
                msg = f"no /proc/sys/{name.replace('.', '/')} under the root: unknown"
            return Verdict(INFO if missing_ok else WARN, msg, vals)
        if value:
            return Verdict(OK, f"on ({value}): {event} panics and is captured", vals)
        return Verdict(
            WARN if warn_when_off else INFO, f"off: {event} is logged, not captured", vals
        )

    verdict.__name__ = f"knob_{name.replace('.', '_')}"
    verdict.__doc__ = f"✓ when {name} is non-zero: {event} becomes a dump."
    return verdict


def kernel_panic(h: Host) -> Verdict:
    value = h.sysctl("kernel.panic")
    if value is None:
        return Verdict(WARN, "kernel.panic: cannot read it")
    if value == 0:
        return Verdict(
            INFO, "kernel.panic = 0: if the capture fails, the host stays down at the panic"
        )
    if value < 0:
        return Verdict(OK, f"kernel.panic = {value}: reboot at once if the capture fails")
    return Verdict(OK, f"kernel.panic = {value}: reboot {value} s after a panic not captured")


def sysrq(h: Host) -> Verdict:
    value = h.sysctl("kernel.sysrq")
    if value is None:
        return Verdict(WARN, "no /proc/sys/kernel/sysrq: this kernel has no magic SysRq")
    if value == 1 or value & 0x8:
        return Verdict(OK, f"kernel.sysrq = {value}: SysRq-c (crash) allowed from the keyboard")
    return Verdict(
        WARN,
        f"kernel.sysrq = {value}: SysRq-c is off at the console "
        "(echo c > /proc/sysrq-trigger as root still works)",
    )


# -- analysis readiness ------------------------------------------------------


def _local_vmlinux(h: Host) -> str | None:
    from ..target import debuginfo_search as di
    from ..target.fetch import cache

    rel, bid = h.release, h.build_id
    if not rel and not bid:
        return None
    if h.live:
        from ..target.fetch import find_local

        return find_local(rel, bid)
    cands = [p.format(r=rel) for p in di.STANDARD_VMLINUX_PATHS] if rel else []
    if bid:
        cands.insert(0, f"/usr/lib/debug/.build-id/{bid[:2]}/{bid[2:]}.debug")
    for c in cands:
        p = h.path(c)
        if h.exists(c) and (bid is None or cache.gnu_build_id(p) == bid):
            return c
    return None


def debuginfo(h: Host) -> Verdict:
    path = _local_vmlinux(h)
    if path:
        return Verdict(OK, f"vmlinux with DWARF: {path}")
    btf = h.exists("sys/kernel/btf/vmlinux")
    return Verdict(
        INFO if btf else WARN,
        f"no vmlinux with debuginfo for {h.release or 'this kernel'} on this host"
        + (" (BTF is enough for a first analysis)" if btf else ""),
    )


def btf(h: Host) -> Verdict:
    data = h.read_bytes("sys/kernel/btf/vmlinux")
    if data is not None and data[:2] in (b"\x9f\xeb", b"\xeb\x9f"):
        return Verdict(
            OK, f"/sys/kernel/btf/vmlinux present ({_mib(len(data))}): types in the dump"
        )
    if h.exists("sys/kernel/btf/vmlinux"):
        return Verdict(OK, "/sys/kernel/btf/vmlinux present")
    return Verdict(WARN, "no /sys/kernel/btf/vmlinux (kernel built without CONFIG_DEBUG_INFO_BTF)")
