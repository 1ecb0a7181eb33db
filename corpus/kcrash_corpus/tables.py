"""The corpus as data: kernels, scenarios and dump formats.

Everything that says *what* the corpus contains lives here, so that adding a kernel or a
scenario is one line (a row) and never a change to the build code. Bump ``RECIPE_VERSION``
when a change here or in the guest scripts must invalidate every cached dump; a change to a
single row already invalidates only the dumps built from that row (each boot's recipe hash
covers its rows).
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields

RECIPE_VERSION = 1
#: crashkernel= of kdump boots (Scenario.crashkernel overrides it).
CRASHKERNEL = "256M"

#: Every dump format the corpus knows. ``capture`` says who wrote it; snappy and zstd are
#: re-encoded on the host from the same boot's real zlib dump (see reencode.py for why).
FORMATS: dict[str, dict[str, str | bool | None]] = {
    "kdump-zlib": {"format": "kdump", "compression": "zlib", "capture": "kdump", "flag": "-c"},
    "kdump-lzo": {"format": "kdump", "compression": "lzo", "capture": "kdump", "flag": "-l"},
    "elf": {"format": "elf", "compression": None, "capture": "kdump", "flag": "-E"},
    "flattened": {
        "format": "flattened",
        "compression": "zlib",
        "capture": "kdump",
        "flag": "-F -c",
    },
    # Debian 12's makedumpfile has neither snappy nor zstd: the zlib dump is re-encoded.
    "kdump-snappy": {"format": "kdump", "compression": "snappy", "capture": "kdump", "flag": "-p"},
    "kdump-zstd": {"format": "kdump", "compression": "zstd", "capture": "kdump", "flag": "-z"},
    # Debian 12's makedumpfile 1.7.2 run on a kernel newer than it knows (Debian 13's 6.12):
    # what a host with a stale makedumpfile writes. It excludes pages the kernel still uses
    # (its zlib dump is 40 % the size of 1.7.6's of the same crash), and crash 8.0.6 stumbles
    # on them ("page excluded: ... type: \"fill_task_struct\"" here, "xa_node shift" in an
    # earlier trial); kcrash must still read it. Its crash readings are never an oracle.
    "kdump-zlib-mismatch": {
        "format": "kdump",
        "compression": "zlib",
        "capture": "kdump",
        "flag": "-c",
        "makedumpfile": "host",
        "crash_incomplete": True,
    },
    # `cp /proc/vmcore` in the capture kernel: the whole of the old kernel's memory as the
    # capture kernel's /proc/vmcore shows it (an ELF file with kexec's program headers and
    # notes), no page filtered. What an operator without makedumpfile saves. Not partial.
    # One scenario only (deb12 null-deref): it is the guest's RAM less crashkernel= (about
    # 770 MB for a 1 GB guest; stored sparse, its never-used zero pages as holes).
    "vmcore-copy": {
        "format": "elf",
        "compression": None,
        "capture": "kdump",
        "flag": "cp /proc/vmcore",
        "copy": True,
    },
    "qemu-elf": {"format": "qemu-elf", "compression": None, "capture": "qemu", "qmp": "elf"},
    "qemu-kdump": {
        "format": "qemu-kdump",
        "compression": "zlib",
        "capture": "qemu",
        "qmp": "kdump-zlib",
    },
}
#: Written inside the capture kernel by the guest's makedumpfile (Debian 12's for deb12/deb11).
GUEST_KDUMP_FORMATS = (
    "kdump-zlib",
    "kdump-lzo",
    "elf",
    "flattened",
    "kdump-zlib-mismatch",
    "vmcore-copy",
)
#: Re-encoded on the host (from the "kdump-zlib" dump of the same boot) when the guest's
#: makedumpfile cannot write them (Kernel.native_formats says which it can).
DERIVED_FORMATS = ("kdump-snappy", "kdump-zstd")
ALL_FORMATS = tuple(FORMATS)
#: What the full-format scenarios of a kernel write: every format but QEMU's and the
#: mismatched one (a kernel row asks for that one by name).
EVERY_KDUMP_FORMAT = tuple(
    f
    for f in ALL_FORMATS
    if f not in ("qemu-elf", "qemu-kdump", "kdump-zlib-mismatch", "vmcore-copy")
)


@dataclass(frozen=True)
class Kernel:
    """One Debian kernel build, pinned to its exact ABI and package version.

    The pin is what makes a fresh build reproduce the corpus the tests were written on:
    Debian moves ``linux-image-amd64`` with every security update (6.1.0-56 became 6.1.0-57
    under a built corpus once, and a bt frame changed). Moving a pin is deliberate:
    ``python3 -m kcrash_corpus bump NAME`` rewrites the row, rebuilds its dumps and shows which
    oracle comparisons changed.
    """

    name: str  #: short name used in ids, e.g. "deb12"
    suite: str  #: Debian suite; `<suite>`, `-updates` and `-security` are searched
    abi: str  #: kernel ABI, e.g. "6.1.0-57": the release is `<abi>-<flavour>`
    version: str  #: Debian version of every package built from the `linux` source
    scenarios: tuple[str, ...] | None = None  #: None = every scenario
    formats: tuple[str, ...] | None = None  #: None = every format the scenario asks for
    flavour: str = "amd64"
    #: Debian suite whose kdump userland (kexec-tools, makedumpfile) and kbuild tools run for
    #: this kernel, unpacked and run through that suite's own loader (trixie's kbuild needs
    #: trixie's glibc). None = the host's (Debian 12) tools, as for deb12 and deb11.
    userland: str | None = None
    #: Scenarios whose formats are not filtered by `formats` but given here (scenario id ->
    #: formats): the full-format boots of a kernel whose other scenarios are zlib only.
    scenario_formats: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: Formats the guest's makedumpfile writes itself among DERIVED_FORMATS (the others are
    #: re-encoded from kdump-zlib). Debian 12's 1.7.2 has neither snappy nor zstd; trixie's
    #: 1.7.6 has zstd (`makedumpfile -v`: "snappy disabled, zstd enabled").
    native_formats: tuple[str, ...] = ()
    #: The kernel's architecture (a key of ARCHES, or the host's "x86_64"): an arm64 kernel
    #: is fetched with apt's arm64 architecture, its module cross-built, its guest run by
    #: qemu-system-aarch64 with arm64 Debian binaries in the initramfs.
    arch: str = "x86_64"

    @property
    def release(self) -> str:
        """`uname -r` of this kernel."""
        return f"{self.abi}-{self.flavour}"

    def derived_formats(self) -> tuple[str, ...]:
        """Formats re-encoded on the host for this kernel's boots."""
        return tuple(f for f in DERIVED_FORMATS if f not in self.native_formats)

    def formats_of(self, sc: Scenario) -> tuple[str, ...]:
        """The formats this kernel's boot of scenario `sc` writes."""
        given = dict(self.scenario_formats).get(sc.id)
        if given is not None:
            return given
        return tuple(f for f in sc.formats if self.formats is None or f in self.formats)

    @property
    def meta_package(self) -> str:
        """The package that follows Debian's newest build (what `bump` moves the pin to)."""
        return f"linux-image-{self.flavour}"


@dataclass(frozen=True)
class Scenario:
    """One way to crash the guest, and what the kernel is expected to say about it."""

    id: str
    trigger: str  #: shell run in the guest (a child of init) to cause the crash
    klass: str  #: crash class of docs/triage-reference.md
    panic_substring: str  #: must appear in crash's `log` (the real console wording)
    culprit_function: str
    culprit_module: str  #: "vmlinux" for the core kernel
    sysctls: dict[str, str] = field(default_factory=dict)  #: /proc/sys paths -> value
    cmdline: str = ""  #: extra kernel command line of the crashing kernel
    cpus: int = 2
    ram_mb: int = 1024
    formats: tuple[str, ...] = ("kdump-zlib",)
    timeout: int = 300  #: seconds for the whole boot (crash + capture)
    hosts_tree: str | None = None  #: copy the host-readiness files as hosts/<name>/
    kernels: tuple[str, ...] | None = None  #: restrict to these kernels (None = all)
    crashkernel: str = CRASHKERNEL  #: memory reserved for the capture kernel (kdump boots)
    #: crash commands recorded beside ORACLE_COMMANDS for this scenario only (key, command):
    #: `kmem -s` and `kmem -S CACHE` are slow on big dumps, so only the slab scenarios ask.
    oracle: tuple[tuple[str, str], ...] = ()
    #: A test module of kernel.EXTRA_MODULES the guest loads (from the share) before the
    #: trigger; its source hash enters only this scenario's recipe.
    extra_module: str | None = None
    #: Debian's own modules of the kernel the guest loads before the trigger, each "name"
    #: or "name arg=value …" (insmod's arguments): the build copies them and what they
    #: depend on (modinfo) from the pinned image package into the share. Empty for every
    #: scenario before it existed, so their recipes are unchanged.
    kernel_modules: tuple[str, ...] = ()
    #: The architecture the row is written for: its wording, class and culprit are that
    #: architecture's (an arm64 kernel prints "Unable to handle kernel NULL pointer
    #: dereference at virtual address …"). A row only runs on kernels of its arch.
    arch: str = "x86_64"

    def recipe(self) -> dict[str, object]:
        """The fields that differ from their defaults: adding a field with a default to this
        class does not invalidate every cached dump."""
        out: dict[str, object] = {}
        for f in fields(self):
            default = f.default_factory() if f.default_factory is not MISSING else f.default
            value = getattr(self, f.name)
            if value != default:
                out[f.name] = value
        return out


def _w(action: str) -> str:
    """Shell that makes a child of init write `action` into the test module's proc file."""
    return f"sh -c 'echo {action} > /proc/kcrash_crash'"


OOPS = {"kernel/panic_on_oops": "1"}
#: hung_task_panic with the shortest timeout the hung-task scenarios use.
HUNG = {"kernel/hung_task_panic": "1", "kernel/hung_task_timeout_secs": "5"}
#: The hang scenarios' kdump boots wait 5-10 s for khungtaskd, then boot the capture kernel:
#: on a 2-core machine at load 15-20 (other builds and test runs) all three outran 300 s,
#: their capture kernel still booting (2026-11-30); the QEMU captures stayed within it.
HANG_KDUMP_TIMEOUT = 900


def _memslab(action: str) -> str:
    """Shell that makes a child of init write `action` into kcrash_memslab's proc file."""
    return f"sh -c 'echo {action} > /proc/kcrash_memslab'"


#: The io-stall trigger: a null_blk device made through configfs (nr_devices=0 at load, so
#: no device exists before its parameters are set) whose requests complete after an hour;
#: named nullb0 so that its disk is /dev/nullb0 whichever way the kernel names it.
IO_STALL = "; ".join(
    (
        "mount -t configfs none /sys/kernel/config || fail 'mount configfs'",
        "d=/sys/kernel/config/nullb/nullb0",
        "mkdir $d && echo 2 > $d/irqmode && echo 3600000000000 > $d/completion_nsec"
        " || fail 'nullb0 configfs'",
        "(echo 1 > $d/power &)",
        "sleep 2",
        "mkdir -p /mnt",
        "(mount -t ext4 /dev/nullb0 /mnt &)",
        "sleep 1",
        "(sync &)",
        "(dd if=/dev/nullb0 of=/dev/null bs=4096 count=1 skip=32 &)",
        "(dd if=/dev/zero of=/dev/nullb0 bs=4096 count=1 seek=64 conv=fsync &)",
        "(dd if=/dev/nullb0 of=/dev/null bs=4096 count=1 skip=128 iflag=direct &)",
    )
)


def _hang(action: str) -> str:
    """Shell that starts the kernel threads of kcrash_hang's `action` (they block for good)."""
    return f"sh -c 'echo {action} > /proc/kcrash_hang'"


def _hang_rows(action: str, culprit: str) -> tuple[Scenario, Scenario, Scenario]:
    """The rows of one kcrash_hang scenario (issue 18): Debian 12's kdump and QEMU boots,
    Debian 13's kdump boot (a row of its own: the Debian 12 rows' recipes stay as they
    were). hung_task_panic turns the blocked threads into a panic; ``culprit`` is the
    thread khungtaskd reports first."""
    return tuple(  # type: ignore[return-value]
        Scenario(
            action,
            _hang(action),
            "hung-task",
            "blocked for more than 5 seconds",
            culprit,
            "kcrash_hang",
            HUNG,
            formats=(fmt,),
            kernels=(kernel,),
            extra_module="kcrash_hang",
            **({"timeout": HANG_KDUMP_TIMEOUT} if fmt == "kdump-zlib" else {}),  # type: ignore[arg-type]
        )
        for kernel, fmt in (
            ("deb12", "kdump-zlib"),
            ("deb12", "qemu-kdump"),
            ("deb13", "kdump-zlib"),
        )
    )


def _spin(action: str) -> str:
    """Shell that starts kcrash_spin's holder (CPU 1) and waiter (CPU 0) of `action`."""
    return f"sh -c 'echo {action} > /proc/kcrash_spin'"


def _spin_rows(action: str, culprit: str) -> tuple[Scenario, Scenario]:
    """The kdump and the QEMU row of one kcrash_spin scenario (issue 18), Debian 12 only
    (extra modules are built with the host's kbuild): CPU 0 spins for a spinlock CPU 1
    holds until the soft-lockup watchdog panics (threshold 2 s: reported after 4 s);
    ``culprit`` is the spinning thread's function."""
    return tuple(  # type: ignore[return-value]
        Scenario(
            action,
            _spin(action),
            "soft-lockup",
            "BUG: soft lockup - CPU#0",
            culprit,
            "kcrash_spin",
            {"kernel/softlockup_panic": "1", "kernel/watchdog_thresh": "2"},
            formats=(fmt,),
            kernels=("deb12",),
            extra_module="kcrash_spin",
            **({"timeout": HANG_KDUMP_TIMEOUT} if fmt == "kdump-zlib" else {}),  # type: ignore[arg-type]
        )
        for fmt in ("kdump-zlib", "qemu-kdump")
    )


def _scale(action: str) -> str:
    """Shell that makes a child of init write `action` into kcrash_scale's proc file."""
    return f"sh -c 'echo {action} > /proc/kcrash_scale'"


def _pinned_sysrq(cpus: int) -> Scenario:
    """Issue 19, CPUs: sysrq-c from a task pinned to the last CPU of a `cpus`-CPU guest (the
    others idle, their stacks saved by the crash NMI or QEMU). The sysrq class's report shows
    every CPU's stack, so `analyze` reads them all, as `bt -a` does."""
    return Scenario(
        f"smp{cpus}-sysrq",
        f"taskset {1 << (cpus - 1):x} sh -c 'echo c > /proc/sysrq-trigger'",
        "sysrq",
        "sysrq triggered crash",
        "sysrq_handle_crash",
        "vmlinux",
        cpus=cpus,
        ram_mb=512,
        formats=("qemu-kdump",),
        kernels=("deb12",),
        # TCG runs every vCPU on the host's two cores.
        timeout=900,
    )


#: Issue 19's scale scenarios, Debian 12 only (each guest costs minutes under TCG).
SCALE_SCENARIOS: tuple[Scenario, ...] = (
    # Captured by QEMU (512 MB, as the small QEMU case): at load 28-34 on the shared host
    # every kdump capture kernel of these rows panicked in setup_IO_APIC() (check_timer: the
    # 8254 timer not seen through the IO-APIC under TCG), 2026-11-30; QEMU needs none.
    _pinned_sysrq(8),
    _pinned_sysrq(16),
    # 10,000+ tasks: crowd_holder holds kcrash_crowd_lock and waits for a completion nobody
    # signals (culprit: the function kcrash_crowd_holder, see CULPRIT_FUNCTION; the row's
    # "crowd_holder" is kept only because it is in the boot's recipe), 6,000 threads wait
    # for the mutex (D state), 4,000 sleep (S state). The hung task watchdog is off
    # (timeout 0) while they are started, then armed: khungtaskd reports the holder first
    # (it was created first) and panics. 3 GB: threads-max is RAM / 128 KB (16,384 in 2 GB,
    # too close), and each thread costs ~30 KB (16 KB of stack).
    Scenario(
        "crowd-hung-task",
        _scale("crowd")
        + " && echo 1 > /proc/sys/kernel/hung_task_panic"
        + " && echo 5 > /proc/sys/kernel/hung_task_timeout_secs",
        "hung-task",
        "blocked for more than 5 seconds",
        "crowd_holder",
        "kcrash_scale",
        {"kernel/hung_task_timeout_secs": "0"},
        ram_mb=3072,
        kernels=("deb12",),
        extra_module="kcrash_scale",
        timeout=1800,
    ),
    # A 16 GB guest whose memory was really touched: kcrash_scale fills all but 384 MB with
    # a compressible pattern (kernel pages, so no filter drops them), then kcrash_crash's
    # NULL dereference. QEMU's kdump-zlib capture writes every non-zero page (about 300 MB
    # on disk); a guest-side makedumpfile would compress 15 GB under TCG (many minutes).
    Scenario(
        "null-deref-16g",
        _scale("fill") + " && " + _w("null-deref"),
        "null-deref",
        "BUG: kernel NULL pointer dereference, address: 0000000000000074",
        "kcrash_get_refcount",
        "kcrash_crash",
        OOPS,
        ram_mb=16384,
        formats=("qemu-kdump",),
        kernels=("deb12",),
        extra_module="kcrash_scale",
        # At load 28 (2026-11-30) the fill took 21 min (12 MB/s under TCG at a tenth of a
        # core) and QEMU's dump had written 120 MB of it when 1800 s ran out.
        timeout=3600,
    ),
    # A kernel log at its ring buffer's limit: log_buf_len=32M (Debian's default is 128 KB;
    # the kernel caps it at 2 GB, which TCG cannot fill in CI time), filled with the kernel's
    # own sysrq t (every task's stack) and m (memory) reports until the oldest record is
    # gone (the first record /dev/kmsg returns is no longer number 0), then the NULL
    # dereference. The console is quieted (printk level 1) so the serial port is not the
    # bottleneck; the panic raises it again.
    Scenario(
        "log-full",
        "echo 1 > /proc/sys/kernel/printk; "
        'while [ "$(head -n 1 /dev/kmsg | cut -d, -f2)" = 0 ]; do '
        "for i in 1 2 3 4 5; do echo t > /proc/sysrq-trigger; echo m > /proc/sysrq-trigger; "
        "done; done; "
        "for i in 1 2 3 4 5; do echo t > /proc/sysrq-trigger; done; " + _w("null-deref"),
        "null-deref",
        "BUG: kernel NULL pointer dereference, address: 0000000000000074",
        "kcrash_get_refcount",
        "kcrash_crash",
        OOPS,
        cmdline="log_buf_len=32M",
        ram_mb=512,
        # QEMU's capture: see _pinned_sysrq's rows.
        formats=("qemu-kdump",),
        kernels=("deb12",),
        timeout=1800,
    ),
)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "null-deref",
        _w("null-deref"),
        "null-deref",
        "BUG: kernel NULL pointer dereference, address: 0000000000000074",
        "kcrash_get_refcount",
        "kcrash_crash",
        OOPS,
        # Plus the one raw `cp /proc/vmcore` of the corpus (deb11 and deb13 filter it out).
        formats=(*EVERY_KDUMP_FORMAT, "vmcore-copy"),
    ),
    Scenario(
        "sysrq",
        "sh -c 'echo c > /proc/sysrq-trigger'",
        "sysrq",
        "sysrq triggered crash",
        "sysrq_handle_crash",
        "vmlinux",
        formats=EVERY_KDUMP_FORMAT,
        hosts_tree="ready",
    ),
    Scenario(
        "null-deref",
        _w("null-deref"),
        "null-deref",
        "BUG: kernel NULL pointer dereference, address: 0000000000000074",
        "kcrash_get_refcount",
        "kcrash_crash",
        OOPS,
        ram_mb=512,
        formats=("qemu-elf", "qemu-kdump"),
        kernels=("deb12",),
    ),
    Scenario(
        "sysrq",
        "sh -c 'echo c > /proc/sysrq-trigger'",
        "sysrq",
        "sysrq triggered crash",
        "sysrq_handle_crash",
        "vmlinux",
        ram_mb=512,
        formats=("qemu-elf", "qemu-kdump"),
        hosts_tree="not-ready",
        kernels=("deb12",),
    ),
    Scenario(
        "bug-on",
        _w("bug-on"),
        "bug-on",
        "kernel BUG at kcrash_crash.c:",
        "kcrash_bug_on",
        "kcrash_crash",
        OOPS,
    ),
    Scenario(
        "panic",
        _w("panic"),
        "panic",
        "Kernel panic - not syncing: kcrash: deliberate panic from the test module",
        "kcrash_panic",
        "kcrash_crash",
    ),
    Scenario(
        "soft-lockup",
        _w("soft-lockup"),
        "soft-lockup",
        "BUG: soft lockup - CPU#",
        "kcrash_soft_lockup",
        "kcrash_crash",
        {"kernel/softlockup_panic": "1", "kernel/watchdog_thresh": "2"},
    ),
    Scenario(
        "hung-task",
        _w("hung-task") + " &",
        "hung-task",
        "blocked for more than 5 seconds",
        "kcrash_hung_task",
        "kcrash_crash",
        {"kernel/hung_task_panic": "1", "kernel/hung_task_timeout_secs": "5"},
    ),
    # Issue 18's hangs (module kcrash_hang, Debian 12 only: each boot costs minutes under
    # TCG). kcrash_abba_a holds kcrash_lock_a and wants kcrash_lock_b, kcrash_abba_b the
    # reverse; khungtaskd reports kcrash_abba_a first (it was created first).
    *_hang_rows("abba-deadlock", "kcrash_abba_a"),
    # kcrash_io_holder holds kcrash_hang_dev.io_lock and waits for a completion nobody
    # signals; kcrash_io_waiter waits for io_lock. Both are hung; the holder is reported first.
    *_hang_rows("mutex-owner-waits", "kcrash_io_holder"),
    # kcrash_cfg_reader holds kcrash_hang_dev.cfg_sem for reading and sleeps in msleep() (it
    # wakes each second: not hung); kcrash_cfg_writer's down_write() waits behind it.
    *_hang_rows("rwsem-writer-stall", "kcrash_cfg_writer"),
    # I/O that never completes (issue 18): Debian's null_blk with a one-hour completion
    # time (irqmode=2, a timer per request). Powering the device on adds its disk, and 6.1
    # scans its partitions right away: that task (a child of init) holds the disk's
    # open_mutex and its claim while it waits on the lock of page 0 of nullb0, under a READ
    # that never completes. `mount` then waits for the claim (bd_prepare_to_claim), `sync`
    # (sync_bdevs) and three `dd` (buffered, fsync, O_DIRECT: each open) for
    # `&disk->open_mutex`. khungtaskd reports `mount` first (the first one past 5 s), blocked
    # in bd_prepare_to_claim().
    *(
        Scenario(
            "io-stall",
            IO_STALL,
            "hung-task",
            "blocked for more than 5 seconds",
            "bd_prepare_to_claim",
            "vmlinux",
            HUNG,
            formats=(fmt,),
            kernels=("deb12",),
            kernel_modules=("null_blk nr_devices=0", "ext4"),
            **({"timeout": HANG_KDUMP_TIMEOUT} if fmt == "kdump-zlib" else {}),  # type: ignore[arg-type]
        )
        for fmt in ("kdump-zlib", "qemu-kdump")
    ),
    # Issue 18, a soft lockup behind a spinlock (module kcrash_spin): kcrash_spin_holder
    # holds kcrash_spin_lock on CPU 1 and polls a device that never answers (touching the
    # watchdog); kcrash_spin_waiter spins for it on CPU 0 until the watchdog panics there.
    *_spin_rows("spin-held", "kcrash_spin_waiter"),
    # The same with the lock inside a kmalloc'ed struct kcrash_spin_dev (`&dev->lock`).
    *_spin_rows("spin-held-heap", "kcrash_dev_waiter"),
    Scenario(
        "divide-error",
        _w("divide-error"),
        "divide-error",
        "divide error: 0000",
        "kcrash_divide_error",
        "kcrash_crash",
        OOPS,
    ),
    Scenario(
        "list-corruption",
        _w("list-corruption"),
        "list-corruption",
        "list_del corruption. next->prev should be",
        "kcrash_list_corruption",
        "kcrash_crash",
        OOPS,
    ),
    Scenario(
        "warn",
        _w("warn"),
        "warn",
        "WARNING: CPU:",
        "kcrash_warn",
        "kcrash_crash",
        {"kernel/panic_on_warn": "1"},
    ),
    Scenario(
        "gpf",
        _w("gpf"),
        "gpf",
        "general protection fault, probably for non-canonical address 0x8000000000000000",
        "kcrash_gpf",
        "kcrash_crash",
        OOPS,
    ),
    # slub_debug=P poisons freed objects with 0x6b: the stale pointer read out of the freed
    # object is 0x6b6b6b6b6b6b6b6b, non-canonical, so the kernel reports a GPF.
    Scenario(
        "use-after-free",
        _w("use-after-free"),
        "gpf",
        "general protection fault, probably for non-canonical address 0x6b6b6b6b6b6b6b",
        "kcrash_use_after_free",
        "kcrash_crash",
        OOPS,
        cmdline="slub_debug=P",
    ),
    Scenario(
        "stack-protector",
        _w("stack-protector"),
        "stack-protector",
        "stack-protector: Kernel stack is corrupted in: kcrash_stack_smash",
        "kcrash_stack_smash",
        "kcrash_crash",
    ),
    Scenario(
        "oom",
        _w("oom"),
        "oom-panic",
        "Out of memory: system-wide panic_on_oom is enabled",
        "kcrash_oom",
        "kcrash_crash",
        {"vm/panic_on_oom": "1"},
    ),
    Scenario(
        "irq-timer",
        _w("irq-timer"),
        "null-deref",
        "BUG: kernel NULL pointer dereference, address: 0000000000000070",
        "kcrash_timer_fn",
        "kcrash_crash",
    ),
    # CPU 0 spins in a user task; the faulting write runs pinned on CPU 1 and reads past the
    # end of a vmalloc buffer into its guard page.
    Scenario(
        "cpu1-page-fault",
        "taskset 1 sh -c 'while :; do :; done' & sleep 1; "
        "taskset 2 sh -c 'echo vmalloc-overrun > /proc/kcrash_crash'",
        "bad-paging",
        "BUG: unable to handle page fault for address:",
        "kcrash_vmalloc_overrun",
        "kcrash_crash",
        OOPS,
    ),
    # The small example dump shipped in the repo (issue 5): one CPU, 512 MB, 160 MB reserved.
    Scenario(
        "null-deref-lean",
        _w("null-deref"),
        "null-deref",
        "BUG: kernel NULL pointer dereference, address: 0000000000000074",
        "kcrash_get_refcount",
        "kcrash_crash",
        OOPS,
        cpus=1,
        ram_mb=512,
        crashkernel="160M",
        kernels=("deb12",),
    ),
    Scenario(
        "null-deref-4g",
        _w("null-deref"),
        "null-deref",
        "BUG: kernel NULL pointer dereference, address: 0000000000000074",
        "kcrash_get_refcount",
        "kcrash_crash",
        OOPS,
        ram_mb=4096,
        kernels=("deb12",),
    ),
    # Issue 18, memory: the module's own cache "kcrash_leak" grows until the OOM killer
    # panics; `kmem -s` is the oracle for the slab cache sizes kcrash reads.
    *(
        Scenario(
            "slab-leak",
            _memslab("slab-leak"),
            "oom-panic",
            "Out of memory: system-wide panic_on_oom is enabled",
            "kcrash_leak_one",
            "kcrash_memslab",
            {"vm/panic_on_oom": "1"},
            formats=formats,
            ram_mb=ram,
            kernels=("deb12",),
            extra_module="kcrash_memslab",
            oracle=(("kmem -s", "kmem -s"),),
            # The leak fills ~600 MB before the OOM: slow under TCG on a busy host.
            timeout=600,
        )
        for formats, ram in ((("kdump-zlib",), 1024), (("qemu-kdump",), 512))
    ),
    # Issue 18, bad pointers: a use-after-free of an object of the module's cache
    # "kcrash_uaf" under slub_debug=PU (U: allocation and free stacks stored after each
    # object; P: the freed object poisoned, so the stale pointer read from it faults).
    # Debian 11 too: 5.10 stores the stacks as addrs[] arrays, 6.1 as stack depot handles.
    # `kmem -S kcrash_uaf` lists the cache's slabs and how many of their objects are in use.
    *(
        Scenario(
            "uaf-track",
            _memslab("uaf-track"),
            "gpf",
            "general protection fault, probably for non-canonical address 0x6b6b6b6b6b6b6b",
            "kcrash_uaf_use",
            "kcrash_memslab",
            OOPS,
            cmdline="slub_debug=PU",
            formats=formats,
            ram_mb=ram,
            kernels=kernels,
            extra_module="kcrash_memslab",
            # (`kmem -s` over every slub_debug cache outran crash's 300 s under load.)
            oracle=(("kmem -S kcrash_uaf", "kmem -S kcrash_uaf"),),
            # slub_debug=PU slows boot and capture: 253 s of a 300 s deadline measured.
            timeout=600,
        )
        for formats, ram, kernels in (
            (("kdump-zlib",), 1024, ("deb12", "deb11")),
            (("qemu-kdump",), 512, ("deb12",)),
        )
    ),
    *SCALE_SCENARIOS,
)


#: Time for one arm64 boot: TCG emulates arm64 on x86-64 instruction by instruction (and
#: pointer authentication on every call); a 2-core host shared with other builds runs it
#: slower than the x86 guests.
ARM64_TIMEOUT = 600
#: arm64's wording (arch/arm64/mm/fault.c: die_kernel_fault()): "Unable to handle kernel
#: NULL pointer dereference at virtual address 0000000000000074" where x86 says "BUG:
#: kernel NULL pointer dereference, address: …".
ARM64_NULL = "Unable to handle kernel NULL pointer dereference at virtual address 0000000000000074"
ARM64_PAGING = "Unable to handle kernel paging request at virtual address"


def _arm64_rows() -> tuple[Scenario, ...]:
    """Issue 20's arm64 scenarios (Debian's arm64 kernels under qemu-system-aarch64, TCG):
    the x86 rows' crashes that exist on arm64, with arm64's wording and class. Left out:
    divide-error (arm64's sdiv by 0 gives 0, no trap), gpf (no general protection fault on
    arm64: a non-canonical address is a paging request, use-after-free shows it),
    stack-protector, irq-timer and the size variants (nothing arm64-specific to add).
    One CPU unless the scenario is about a second one (sysrq and null-deref keep 2: the
    other CPU's stop in `bt -a`); 1 GB for kdump (crashkernel=256M), 512 MB for QEMU's
    captures (the ELF is the whole RAM)."""
    arm = {"arch": "arm64", "timeout": ARM64_TIMEOUT}
    one = {**arm, "cpus": 1}
    qemu = {**arm, "ram_mb": 512, "formats": ("qemu-elf", "qemu-kdump")}
    return (
        Scenario("null-deref", _w("null-deref"), "null-deref", ARM64_NULL,
                 "kcrash_get_refcount", "kcrash_crash", OOPS,
                 formats=("kdump-zlib", "elf"), **arm),
        Scenario("sysrq", "sh -c 'echo c > /proc/sysrq-trigger'", "sysrq",
                 "sysrq triggered crash", "sysrq_handle_crash", "vmlinux",
                 formats=("kdump-zlib", "flattened"), **arm),
        Scenario("null-deref", _w("null-deref"), "null-deref", ARM64_NULL,
                 "kcrash_get_refcount", "kcrash_crash", OOPS, **qemu),
        Scenario("sysrq", "sh -c 'echo c > /proc/sysrq-trigger'", "sysrq",
                 "sysrq triggered crash", "sysrq_handle_crash", "vmlinux", **qemu),
        Scenario("bug-on", _w("bug-on"), "bug-on", "kernel BUG at kcrash_crash.c:",
                 "kcrash_bug_on", "kcrash_crash", OOPS, **one),
        Scenario("panic", _w("panic"), "panic",
                 "Kernel panic - not syncing: kcrash: deliberate panic from the test module",
                 "kcrash_panic", "kcrash_crash", **one),
        Scenario("soft-lockup", _w("soft-lockup"), "soft-lockup", "BUG: soft lockup - CPU#",
                 "kcrash_soft_lockup", "kcrash_crash",
                 {"kernel/softlockup_panic": "1", "kernel/watchdog_thresh": "2"}, **one),
        Scenario("hung-task", _w("hung-task") + " &", "hung-task",
                 "blocked for more than 5 seconds", "kcrash_hung_task", "kcrash_crash",
                 HUNG, **one),
        Scenario("list-corruption", _w("list-corruption"), "list-corruption",
                 "list_del corruption. next->prev should be", "kcrash_list_corruption",
                 "kcrash_crash", OOPS, **one),
        Scenario("warn", _w("warn"), "warn", "WARNING: CPU:", "kcrash_warn", "kcrash_crash",
                 {"kernel/panic_on_warn": "1"}, **one),
        # slub_debug=P: the stale pointer read from the freed object is 0x6b6b…, which on
        # arm64 is an unmapped address (bit 55 set), not a GPF as on x86; the kernel prints
        # it with its top byte cleared (TBI): "… at virtual address 006b6b6b6b6b6bdf".
        Scenario("use-after-free", _w("use-after-free"), "bad-paging",
                 f"{ARM64_PAGING} 006b6b6b6b6b6b", "kcrash_use_after_free", "kcrash_crash",
                 OOPS, cmdline="slub_debug=P", **one),
        Scenario("oom", _w("oom"), "oom-panic",
                 "Out of memory: system-wide panic_on_oom is enabled", "kcrash_oom",
                 "kcrash_crash", {"vm/panic_on_oom": "1"}, **one),
        Scenario("cpu1-page-fault",
                 "taskset 1 sh -c 'while :; do :; done' & sleep 1; "
                 "taskset 2 sh -c 'echo vmalloc-overrun > /proc/kcrash_crash'",
                 "bad-paging", ARM64_PAGING, "kcrash_vmalloc_overrun", "kcrash_crash", OOPS,
                 **arm),
    )  # fmt: skip


SCENARIOS = (*SCENARIOS, *_arm64_rows())

#: Pinned builds (move one with `python3 -m kcrash_corpus bump NAME`). Debian keeps a few
#: past ABIs of a suite in its -security pocket and the point release's in the suite itself,
#: so a pin stays downloadable for a while; when it is gone the build says so and how to bump.
KERNELS: tuple[Kernel, ...] = (
    Kernel("deb12", "bookworm", "6.1.0-57", "6.1.192-3"),
    Kernel(
        "deb11",
        "bullseye",
        "5.10.0-46",
        "5.10.262-1",
        ("sysrq", "null-deref", "soft-lockup", "uaf-track"),
        ("kdump-zlib",),
    ),
    # Debian 13 (trixie), its 6.12 in the suite's main pocket (served longest). Captured with
    # trixie's own kdump userland; every scenario in kdump-zlib, null-deref and sysrq share
    # the other formats between them (each format once: the formats are tested in full on
    # deb12, a boot with every format costs minutes under TCG), plus one dump written by
    # Debian 12's makedumpfile (crash reads it only in part).
    Kernel(
        "deb13",
        "trixie",
        "6.12.117+deb13",
        "6.12.117-1",
        # Every scenario but oom: on 6.12's OOM panic kcrash's no-debuginfo unwinder loses
        # the stack at panic() (its next pc is garbage, then the scan resumes two frames
        # up: out_of_memory.cold is missing), where DWARF and crash get it right. Until that
        # is fixed the dump stays out rather than the no-debuginfo tests being loosened.
        # A scenario with a test module of its own only where a row names this kernel
        # (the hang scenarios).
        scenarios=tuple(
            dict.fromkeys(
                s.id
                for s in SCENARIOS
                if s.id != "oom" and (not s.extra_module or "deb13" in (s.kernels or ()))
            )
        ),
        formats=("kdump-zlib",),
        userland="trixie",
        scenario_formats=(
            ("null-deref", ("kdump-zlib", "elf", "kdump-zstd", "kdump-zlib-mismatch")),
            ("sysrq", ("kdump-zlib", "kdump-lzo", "flattened", "kdump-snappy")),
        ),
        native_formats=("kdump-zstd",),
    ),
    # Issue 20: Debian 12's arm64 build of the same kernel (same ABI and version as deb12),
    # booted by qemu-system-aarch64 (-M virt, -cpu max: pointer authentication on), with the
    # arm64 rows of SCENARIOS (`arch="arm64"`) and Debian 12's arm64 kdump userland (see
    # Arch.kallsyms_text for what kexec needs there).
    Kernel("deb12-arm64", "bookworm", "6.1.0-57", "6.1.192-3", flavour="arm64", arch="arm64"),
)

#: What the kernel prints where a kernel's wording differs from the scenario row's (the row
#: holds 5.10/6.1's). (kernel, scenario) -> panic_substring, checked on the console.
PANIC_WORDING: dict[tuple[str, str], str] = {}

#: Expected culprit functions corrected after a row's dumps were built. Every field of a
#: row enters its guest recipe (Scenario.recipe), so a correction there would rebuild the
#: boot in CI (minutes of TCG) for a fact about the report, not about the guest.
#: scenario id -> the culprit function the manifest expects.
CULPRIT_FUNCTION: dict[str, str] = {
    # The row says "crowd_holder": the holder kthread's name (comm), not a function. The
    # function it blocks in is kcrash_crowd_holder (module-scale/kcrash_scale.c, started
    # as kthread_run(kcrash_crowd_holder, NULL, "crowd_holder")); crash's `log` of the dump
    # shows "kcrash_crowd_holder+0x29/0x40 [kcrash_scale]" under "task:crowd_holder".
    "crowd-hung-task": "kcrash_crowd_holder",
}

#: Files a host-readiness checker (`kcrash doctor`, issue 9) reads, copied from real guests.
HOST_FILES: tuple[str, ...] = (
    "/proc/cmdline",
    "/proc/iomem",
    "/proc/meminfo",
    "/proc/sys/kernel/panic",
    "/proc/sys/kernel/panic_on_oops",
    "/proc/sys/kernel/softlockup_panic",
    "/proc/sys/kernel/hung_task_panic",
    "/proc/sys/kernel/panic_on_warn",
    "/proc/sys/kernel/unknown_nmi_panic",
    "/proc/sys/kernel/sysrq",
    "/proc/sys/vm/panic_on_oom",
    "/sys/kernel/kexec_crash_size",
    "/sys/kernel/kexec_crash_loaded",
    "/sys/kernel/kexec_loaded",
    "/sys/kernel/btf/vmlinux",
    "/etc/os-release",
    "/etc/default/kdump-tools",
)

#: Sysctls of the "ready" host: what a server set up for kdump usually has.
READY_SYSCTLS = {
    "kernel/panic_on_oops": "1",
    "kernel/softlockup_panic": "1",
    "kernel/unknown_nmi_panic": "1",
    "kernel/sysrq": "1",
}

#: crash's commands recorded as the oracle; key = manifest `oracle` key.
ORACLE_COMMANDS: dict[str, str] = {
    "sys": "sys",
    "bt": "bt",
    "bt -a": "bt -a",
    "log": "log",
    "ps": "ps",
    "mod": "mod",
}

#: Guest kernel modules loaded by init (dependencies are resolved with modinfo).
#: pvpanic_mmio drives `-device pvpanic` on 6.1; 5.10 has it all in `pvpanic`.
GUEST_MODULES = ("virtio_pci", "9pnet_virtio", "9p", "qemu_fw_cfg", "pvpanic", "pvpanic_mmio")

#: Command line of the capture kernel (as Debian's kdump-tools passes it, minus systemd).
CAPTURE_CMDLINE = "console=ttyS0,115200 reset_devices nr_cpus=1 irqpoll nousb panic=1"


@dataclass(frozen=True)
class Arch:
    """How the guests of a non-host architecture are built and booted (issue 20). The x86
    kernels use the module-level constants above (GUEST_MODULES, CAPTURE_CMDLINE, the host's
    binaries), unchanged so that their recipes stay what they were."""

    name: str  #: Debian's architecture name (and Kernel.arch); `uname -m` says `machine`
    machine: str  #: `uname -m` in the guest
    qemu: str  #: QEMU system emulator
    qemu_package: str  #: the Debian package that has it (its version enters the recipe)
    qemu_args: tuple[str, ...]  #: board and CPU
    console: str  #: serial console device of that board
    cross_compile: str  #: CROSS_COMPILE= of the test module's build (Debian's cross gcc)
    #: Modules the guest loads (dependencies resolved with modinfo). Debian 12's arm64
    #: kernel has no CONFIG_PVPANIC: QEMU's captures are taken when the console shows the
    #: panic's end marker instead of at a pvpanic event.
    guest_modules: tuple[str, ...]
    loader: str  #: the dynamic loader the guest's Debian binaries name (PT_INTERP)
    libdir: str  #: multiarch library directory of those binaries
    #: `_stext - _text` of the arch's Debian kernels, when kexec-tools must be given `_text`
    #: (job_script): kexec-tools (2.0.25 in Debian 12, and still trixie's 2.0.31) derives
    #: PAGE_OFFSET and the kernel-text segment of the capture kernel's elfcorehdr from
    #: `_text` in /proc/kallsyms; Debian's arm64 kernels do not list it (`_text` lies before
    #: `_stext`, outside the text range kallsyms keeps without CONFIG_KALLSYMS_ALL), so
    #: `kexec -p` says "Can't get the symbol of _text to calculate page_offset" and writes
    #: PT_LOADs with virtual address 0 and a kernel-text PT_LOAD of absurd size, on which
    #: makedumpfile fails ("vaddr_to_paddr_arm64: Can't read pgd"): an arm64 Debian server
    #: with stock kdump-tools saves no usable dump of its own kernel. The guest adds the line
    #: to a copy of /proc/kallsyms bind-mounted over it before `kexec -p` (the kernel's
    #: memory, registers and notes are untouched). The build checks the distance against the
    #: kernel's vmlinux.
    kallsyms_text: int | None = None
    #: The arch's Debian packages whose binaries make the guest's userland (busybox, kdump
    #: tools); their libraries come from the same suite and architecture.
    userland: tuple[str, ...] = ("busybox-static", "kexec-tools", "makedumpfile")


ARCHES: dict[str, Arch] = {
    "arm64": Arch(
        name="arm64",
        machine="aarch64",
        qemu="qemu-system-aarch64",
        qemu_package="qemu-system-arm",
        # -cpu max: every feature QEMU emulates, pointer authentication among them (return
        # addresses on stacks carry PAC bits a reader must strip). pauth-impdef=on keeps PAC
        # on but signs with QEMU's cheap implementation-defined algorithm instead of QARMA,
        # which TCG computes slowly on every function entry and return.
        qemu_args=("-M", "virt", "-cpu", "max,pauth-impdef=on"),
        console="ttyAMA0",
        cross_compile="aarch64-linux-gnu-",
        guest_modules=("virtio_pci", "9pnet_virtio", "9p", "qemu_fw_cfg"),
        loader="/lib/ld-linux-aarch64.so.1",
        libdir="/lib/aarch64-linux-gnu",
        kallsyms_text=0x10000,
    ),
}


def capture_cmdline(arch: str) -> str:
    """The capture kernel's command line on `arch` (CAPTURE_CMDLINE with its console)."""
    if arch not in ARCHES:
        return CAPTURE_CMDLINE
    return CAPTURE_CMDLINE.replace("ttyS0,115200", ARCHES[arch].console)
