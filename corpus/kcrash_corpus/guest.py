"""Boot a guest under QEMU (TCG), crash it, and capture the dump the way it is done for real.

Two capture paths, one per boot:

* ``kdump``: the guest reserves ``crashkernel=``, loads a capture kernel with ``kexec -p``;
  the panic kexecs into it and it writes ``makedumpfile -d 31`` dumps (several formats from
  one boot) plus ``vmcore-dmesg.txt`` onto a virtio-9p share of a host folder. Registers in
  these dumps are the crash-time ones.
* ``qemu``: no kdump; ``pvpanic`` makes QEMU pause at the panic and report it over QMP, then
  ``dump-guest-memory`` writes ELF and kdump-zlib; ``-device vmcoreinfo`` plus the guest's
  ``qemu_fw_cfg`` module put VMCOREINFO into the dump (without it KASLR cannot be resolved).

Every QEMU run has a deadline and is killed when it passes: a guest that never panics
cannot hang the build.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from .kernel import KernelState
from .tables import (
    ARCHES,
    DERIVED_FORMATS,
    FORMATS,
    GUEST_KDUMP_FORMATS,
    HOST_FILES,
    READY_SYSCTLS,
    Scenario,
    capture_cmdline,
)
from .util import BuildError, progress, rm_rf

QEMU = "qemu-system-x86_64"
#: In the initramfs of a kernel with its own suite's userland: the host's makedumpfile, run
#: through the host's loader and libraries (kernel.py puts it there).
HOST_MAKEDUMPFILE = "/opt/host/makedumpfile"
#: Deadline added per makedumpfile pass beyond the first (see run_boot).
EXTRA_SECONDS_PER_PASS = 90
#: The last line panic() prints (since v4.8, "---[ end Kernel panic - not syncing: …"): on a
#: kernel without pvpanic (Debian's arm64) QEMU's capture is taken once the console has it.
PANIC_END = "---[ end Kernel panic"


def guest_formats(
    formats: tuple[str, ...], derived: tuple[str, ...] = DERIVED_FORMATS
) -> list[str]:
    """Formats written inside the capture kernel (`derived` ones are re-encoded on the host
    from the zlib dump, so that one is always written then)."""
    order = GUEST_KDUMP_FORMATS + tuple(f for f in DERIVED_FORMATS if f not in derived)
    wanted = [f for f in order if f in formats]
    if set(formats) & set(derived) and "kdump-zlib" not in wanted:
        wanted.insert(0, "kdump-zlib")
    return wanted


def _sysctl_lines(sysctls: dict[str, str]) -> str:
    return "".join(f"echo {v} > /proc/sys/{k} || fail 'sysctl {k}'\n" for k, v in sysctls.items())


def _host_copy(tree: str) -> str:
    """Shell that copies the host-readiness files into /share/host, keeping their paths."""
    use_kdump = "1" if tree == "ready" else "0"
    lines = [
        f"sed -i 's/^USE_KDUMP=.*/USE_KDUMP={use_kdump}/' /etc/default/kdump-tools",
        "for f in " + " ".join(HOST_FILES) + "; do",
        '  [ -e "$f" ] || continue',
        '  mkdir -p "/share/host$(dirname "$f")"',
        '  cat "$f" > "/share/host$f" || fail "copy $f"',
        "done",
        "uname -r > /share/host/uname-r",
        "echo KCRASH-HOST-COPIED > /dev/console",
    ]
    return "\n".join(lines) + "\n"


def job_script(
    sc: Scenario, capture: str, boot_id: str, hosts_tree: str | None, arch: str = "x86_64"
) -> str:
    """The first kernel's part: knobs, capture kernel (kdump), host files, the trigger."""
    parts = [f"echo 'KCRASH-JOB {boot_id}' > /dev/console\n"]
    if hosts_tree == "not-ready":
        parts.append(_host_copy("not-ready"))  # before any knob is set: a stock host
    sysctls = dict(sc.sysctls)
    if hosts_tree == "ready":
        sysctls = {**READY_SYSCTLS, **sysctls}
    parts.append(_sysctl_lines(sysctls))
    foreign = ARCHES.get(arch)
    if capture == "kdump" and foreign is not None and foreign.kallsyms_text is not None:
        # kexec-tools needs `_text` in /proc/kallsyms (tables.Arch.kallsyms_text says why);
        # _stext's low 32 bits minus the distance (the kernel is 2 MB-aligned: no borrow).
        parts.append(
            "stext=$(grep ' _stext$' /proc/kallsyms | cut -d' ' -f1)\n"
            '[ -n "$stext" ] || fail "no _stext in /proc/kallsyms"\n'
            "printf '%s%08x T _text\\n' \"$(echo $stext | cut -c1-8)\" "
            f"$((0x$(echo $stext | cut -c9-16) - {foreign.kallsyms_text:#x})) > /tmp/kallsyms\n"
            "cat /proc/kallsyms >> /tmp/kallsyms\n"
            "mount --bind /tmp/kallsyms /proc/kallsyms || fail 'bind /proc/kallsyms'\n"
        )
    if capture == "kdump":
        parts.append(
            "kexec -p /share/vmlinuz --initrd=/share/initrd.cpio "
            f"--append={shlex.quote(capture_cmdline(arch))} || fail 'kexec -p'\n"
            '[ "$(cat /sys/kernel/kexec_crash_loaded)" = 1 ] || fail "capture kernel not loaded"\n'
        )
    if hosts_tree == "ready":
        parts.append(_host_copy("ready"))
    if sc.extra_module:
        name = sc.extra_module
        parts.append(f"insmod /share/{name}.ko || fail 'insmod {name}'\n")
    if sc.kernel_modules:
        # Their dependencies first (kmod/deps, in modinfo's order), then each with its args.
        parts.append(
            'for m in $(cat /share/kmod/deps); do insmod /share/kmod/$m.ko || fail "insmod $m"; '
            "done\n"
        )
        for spec in sc.kernel_modules:
            name, *args = spec.split()
            parts.append(f"insmod /share/kmod/{name}.ko {' '.join(args)} || fail 'insmod {name}'\n")
    parts.append("sync\necho KCRASH-TRIGGER > /dev/console\n")
    parts.append(sc.trigger + "\n")
    return "".join(parts)


def capture_script(formats: list[str]) -> str:
    """The capture kernel's part: makedumpfile -d 31 per format (or a plain `cp` of
    /proc/vmcore for a copy format), then vmcore-dmesg."""
    lines = ["cd /share"]
    for fmt in formats:
        flag = str(FORMATS[fmt]["flag"])
        out = f"vmcore.{fmt}"
        log = f"makedumpfile.{fmt}.log"
        # The host's (Debian 12) makedumpfile beside a newer suite's one: see kernel.py.
        tool = HOST_MAKEDUMPFILE if FORMATS[fmt].get("makedumpfile") == "host" else "makedumpfile"
        if FORMATS[fmt].get("copy"):
            cmd = f"cp /proc/vmcore {out}.part > {log} 2>&1"
        elif fmt == "flattened":
            cmd = f"{tool} {flag} -d 31 /proc/vmcore > {out}.part 2> {log}"
        else:
            cmd = f"{tool} {flag} -d 31 /proc/vmcore {out}.part > {log} 2>&1"
        lines += [
            f"echo 'KCRASH-MAKEDUMPFILE {fmt}' > /dev/console",
            f"{cmd} || fail '{cmd.split()[0]} {fmt}'",
            f"mv {out}.part {out}",
        ]
    lines += [
        "vmcore-dmesg /proc/vmcore > vmcore-dmesg.txt 2> vmcore-dmesg.log || fail 'vmcore-dmesg'",
    ]
    return "\n".join(lines) + "\n"


def qemu_command(
    state: KernelState, sc: Scenario, capture: str, share: Path, console: Path, qmp: Path | None
) -> list[str]:
    """The QEMU command line: TCG (nested KVM here cannot run guests), KASLR left on."""
    if state.arch in ARCHES:
        return _foreign_qemu_command(state, sc, capture, share, console, qmp)
    append = ["console=ttyS0,115200", "panic=5", "loglevel=7", *_cmdline_tail(sc, capture)]
    cmd = [
        QEMU, "-accel", "tcg", "-cpu", "max,la57=off", "-M", "pc",
        *_guest_args(state, sc, share, console, append),
    ]  # fmt: skip
    if capture == "qemu":
        assert qmp is not None
        cmd += [
            "-device",
            "pvpanic",
            "-device",
            "vmcoreinfo",
            "-action",
            "panic=pause",
            "-qmp",
            f"unix:{qmp},server=on,wait=off",
        ]
    return cmd


def _cmdline_tail(sc: Scenario, capture: str) -> list[str]:
    """The crashing kernel's command line after console and panic: the kdump reservation and
    the scenario's own options."""
    return ([f"crashkernel={sc.crashkernel}"] if capture == "kdump" else []) + (
        [sc.cmdline] if sc.cmdline else []
    )


def _guest_args(
    state: KernelState, sc: Scenario, share: Path, console: Path, append: list[str]
) -> list[str]:
    """QEMU's options every guest has whatever its board: CPUs and memory, direct kernel
    boot, serial console to a file, the host share over virtio-9p."""
    return [
        "-smp", str(sc.cpus), "-m", str(sc.ram_mb), "-nodefaults", "-no-user-config",
        "-display", "none", "-no-reboot",
        "-kernel", state.vmlinuz, "-initrd", state.initrd, "-append", " ".join(append),
        "-serial", f"file:{console}",
        "-fsdev", f"local,id=share,path={share},security_model=none",
        "-device", "virtio-9p-pci,fsdev=share,mount_tag=kcrash",
    ]  # fmt: skip


def _foreign_qemu_command(
    state: KernelState, sc: Scenario, capture: str, share: Path, console: Path, qmp: Path | None
) -> list[str]:
    """QEMU for a foreign architecture's kernel (ARCHES): its board, CPU and console.
    Without pvpanic the panicked guest must stay put until QEMU has dumped it: `panic=0`
    (never reboot) for QEMU's captures."""
    arch = ARCHES[state.arch]
    append = [f"console={arch.console}", "panic=0" if capture == "qemu" else "panic=5"]
    append += ["loglevel=7", *_cmdline_tail(sc, capture)]
    cmd = [
        arch.qemu,
        "-accel",
        "tcg",
        *arch.qemu_args,
        *_guest_args(state, sc, share, console, append),
    ]
    if capture == "qemu":
        assert qmp is not None
        cmd += ["-device", "vmcoreinfo", "-qmp", f"unix:{qmp},server=on,wait=off"]
    return cmd


def _wait_console(console: Path, marker: str, deadline: float, proc: subprocess.Popen) -> None:
    """Wait until the guest's console has `marker` (a kernel without pvpanic tells QEMU
    nothing); raises TimeoutError at the deadline, EOFError when QEMU is gone."""
    while True:
        with contextlib.suppress(OSError):
            if marker in console.read_text(errors="replace"):
                return
        if proc.poll() is not None:
            raise EOFError(f"QEMU exited ({proc.returncode}) before {marker!r}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {marker!r} on the console")
        time.sleep(0.5)


class _Qmp:
    """Just enough QMP: handshake, wait for an event, run a command."""

    def __init__(self, path: Path, deadline: float) -> None:
        self.deadline = deadline
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(str(path))
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self.file = self.sock.makefile("rw")
        self._read()  # greeting
        self.execute("qmp_capabilities")

    def _read(self) -> dict[str, Any]:
        self.sock.settimeout(max(1.0, self.deadline - time.monotonic()))
        line = self.file.readline()
        if not line:
            raise EOFError("QMP connection closed")
        return json.loads(line)

    def wait_event(self, name: str) -> dict[str, Any]:
        while True:
            msg = self._read()
            if msg.get("event") == name:
                return msg

    def execute(self, command: str, **arguments: Any) -> Any:
        req: dict[str, Any] = {"execute": command}
        if arguments:
            req["arguments"] = arguments
        self.file.write(json.dumps(req) + "\n")
        self.file.flush()
        while True:
            msg = self._read()
            if "return" in msg:
                return msg["return"]
            if "error" in msg:
                raise RuntimeError(f"QMP {command}: {msg['error'].get('desc')}")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def _console_tail(console: Path, n: int = 12) -> str:
    try:
        lines = console.read_text(errors="replace").splitlines()
    except OSError:
        return "(no console output)"
    return " | ".join(line.strip() for line in lines[-n:])


def run_boot(
    state: KernelState,
    sc: Scenario,
    capture: str,
    formats: tuple[str, ...],
    boot_id: str,
    out_dir: Path,
    hosts_tree: str | None = None,
    derived: tuple[str, ...] = DERIVED_FORMATS,
    extra_module: Path | None = None,
    kernel_modules: Path | None = None,
) -> dict[str, Path]:
    """Boot, crash, capture. Returns format -> dump path (in `out_dir`), plus the keys
    "console" and, for kdump, "dmesg". Raises BuildError naming the boot on any failure."""
    step = f"guest {boot_id}"
    share = out_dir / "share"
    rm_rf(share)
    share.mkdir(parents=True)
    console = out_dir / "console.log"
    rm_rf(console)
    # kexec -p reads the capture kernel and initrd from the share: link, do not copy.
    links = [(state.vmlinuz, "vmlinuz"), (state.initrd, "initrd.cpio")]
    if extra_module is not None:
        links.append((str(extra_module), extra_module.name))
    if kernel_modules is not None:
        (share / "kmod").mkdir()
        links += [(str(p), f"kmod/{p.name}") for p in sorted(kernel_modules.iterdir())]
    for src, name in links:
        try:
            os.link(src, share / name)
        except OSError:
            shutil.copy2(src, share / name)
    gformats = guest_formats(formats, derived) if capture == "kdump" else []
    (share / "job.sh").write_text(job_script(sc, capture, boot_id, hosts_tree, state.arch))
    (share / "capture.sh").write_text(capture_script(gformats))
    qmp_path = out_dir / "qmp.sock" if capture == "qemu" else None
    if qmp_path:
        rm_rf(qmp_path)
    cmd = qemu_command(state, sc, capture, share, console, qmp_path)
    progress(step, f"booting ({sc.cpus} CPUs, {sc.ram_mb} MB, {capture} capture)")
    t0 = time.monotonic()
    # Each makedumpfile pass after the first gets more time: on a loaded 2-core machine the
    # deb13 null-deref capture (four passes, 6.12's ~80 MB zlib and 190 MB ELF) outgrew the
    # row's 300 s. A deadline only: no recipe changes with it.
    timeout = sc.timeout + EXTRA_SECONDS_PER_PASS * max(0, len(gformats) - 1)
    deadline = t0 + timeout
    results: dict[str, Path] = {}
    qemu_err = (out_dir / "qemu.stderr").open("w")
    with (
        qemu_err,
        subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=qemu_err, stderr=subprocess.STDOUT
        ) as proc,
    ):
        try:
            if capture == "qemu":
                assert qmp_path is not None
                qmp = _Qmp(qmp_path, deadline)
                try:
                    if state.arch in ARCHES:
                        _wait_console(console, PANIC_END, deadline, proc)
                        # Registers at the stop: the panicking CPU in panic()'s endless
                        # delay loop, the others parked by the panic's IPI.
                        qmp.execute("stop")
                    else:
                        qmp.wait_event("GUEST_PANICKED")
                    progress(step, f"panicked after {time.monotonic() - t0:.0f}s; dumping")
                    for fmt in formats:
                        dest = share / f"vmcore.{fmt}"
                        qmp.execute(
                            "dump-guest-memory",
                            paging=False,
                            protocol=f"file:{dest}",
                            format=FORMATS[fmt]["qmp"],
                        )
                    qmp.execute("quit")
                finally:
                    qmp.close()
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except (subprocess.TimeoutExpired, TimeoutError, OSError, EOFError, RuntimeError) as exc:
            proc.kill()
            proc.wait()
            why = (
                "QEMU still running at the deadline"
                if isinstance(exc, subprocess.TimeoutExpired)
                else f"{exc.__class__.__name__}: {exc}"
            )
            raise BuildError(
                step,
                f"no dump within {timeout}s, guest killed ({why}); "
                f"console: {_console_tail(console)}",
            ) from exc
        finally:
            if proc.poll() is None:
                proc.kill()
    text = console.read_text(errors="replace") if console.exists() else ""
    if "KCRASH-FAIL" in text:
        reason = text.split("KCRASH-FAIL:", 1)[1].splitlines()[0].strip()
        raise BuildError(
            step, f"guest reported failure: {reason}; console: {_console_tail(console)}"
        )
    if capture == "kdump" and "KCRASH-CAPTURE-DONE" not in text:
        raise BuildError(step, f"capture kernel did not finish; console: {_console_tail(console)}")
    for fmt in (*gformats, *(formats if capture == "qemu" else ())):
        src = share / f"vmcore.{fmt}"
        if not src.exists() or src.stat().st_size == 0:
            raise BuildError(step, f"{src.name} missing; console: {_console_tail(console)}")
        dest = out_dir / src.name
        src.replace(dest)
        dest.chmod(0o644)  # makedumpfile and QEMU write 0600/0400; tests may run as others
        results[fmt] = dest
    if capture == "kdump":
        dmesg = out_dir / "vmcore-dmesg.txt"
        (share / "vmcore-dmesg.txt").replace(dmesg)
        results["dmesg"] = dmesg
    host = share / "host"
    if host.is_dir():
        dest = out_dir / "host"
        rm_rf(dest)
        host.replace(dest)
        results["host"] = dest
    logs = out_dir / "logs"
    rm_rf(logs)
    logs.mkdir()
    for f in share.glob("*.log"):
        f.replace(logs / f.name)
    for name in ("job.sh", "capture.sh"):
        (share / name).replace(logs / name)
    rm_rf(share)
    results["console"] = console
    progress(
        step,
        f"captured {', '.join(sorted(set(results) - {'console', 'dmesg', 'host'}))} "
        f"in {time.monotonic() - t0:.0f}s",
    )
    return results
