"""Fetch a Debian kernel and everything around it into the cache.

For one row of ``tables.KERNELS``: check that Debian still serves the pinned build, download
the image, headers and -dbg
packages, keep only what the corpus needs (vmlinuz, the guest's modules, vmlinux and a few
debug .ko files: the full trees are >1 GB), build the test module, and pack the guest
initramfs. The result is a ``kernel.json`` the rest of the build reads.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from .apt import Apt
from .tables import GUEST_MODULES, RECIPE_VERSION, Kernel
from .util import BuildError, progress, read_json, recipe_hash, rm_rf, run, write_json

PKG_DIR = Path(__file__).resolve().parent
MODULE_SRC = PKG_DIR / "module"
#: Test modules apart from kcrash_crash, each built only for the scenarios that load it
#: (Scenario.extra_module): their source is not part of the kernel's recipe, so adding one
#: leaves every cached dump valid.
EXTRA_MODULES: dict[str, Path] = {
    "kcrash_hang": PKG_DIR / "module-hang",
    "kcrash_memslab": PKG_DIR / "module-memslab",
    "kcrash_spin": PKG_DIR / "module-spin",
}
INIT_SCRIPT = PKG_DIR / "guest" / "init.sh"
#: Host tools copied into the initramfs (they run in both kernels of a kdump boot).
GUEST_BINARIES = ("/bin/busybox", "/sbin/kexec", "/sbin/vmcore-dmesg", "/usr/bin/makedumpfile")
#: A kernel with its own suite's userland (`Kernel.userland`): these of that suite's binaries
#: replace the host's in the initramfs (busybox stays the host's static one), as a server of
#: that release runs them; pahole gives the test module its BTF as on such a server (6.12's
#: kbuild runs it for `BTF [M]`).
USERLAND_BINARIES = ("/usr/sbin/kexec", "/usr/sbin/vmcore-dmesg", "/usr/bin/makedumpfile")
#: The suite's packages unpacked for that: the tools, then the libraries their ELF files load
#: (the build checks with the suite's loader that each one resolves inside this tree).
USERLAND_PACKAGES = (
    "kexec-tools", "makedumpfile", "pahole",
    "libc6", "libgcc-s1", "zlib1g", "libzstd1", "liblzo2-2", "liblzma5", "libbz2-1.0",
    "libelf1t64", "libdw1t64", "libbpf1",
    # kexec-tools links libxenctrl (libxenmisc) for Xen dom0 support.
    "libxenmisc4.20", "libxencall1", "libxendevicemodel1", "libxenevtchn1",
    "libxenforeignmemory1", "libxengnttab1", "libxentoolcore1", "libxentoollog1",
)  # fmt: skip
LOADER = "ld-linux-x86-64.so.2"


@dataclass
class KernelState:
    """What the build knows about a prepared kernel (kept as kernels/<name>/kernel.json)."""

    name: str
    suite: str
    release: str
    packages: dict[str, str]  #: package -> exact version
    vmlinuz: str
    vmlinux: str
    build_id: str
    modules_debug_dir: str
    initrd: str
    recipe: str  #: hash of everything the guest boots (changes -> dumps rebuild)
    module_debug_done: bool = False


def tree_hash(path: Path) -> str:
    """Hash of a source tree's file names and contents (the test module's recipe)."""
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:20]


def _host_tool_versions() -> dict[str, str]:
    """Versions of the Debian packages whose binaries go into the initramfs."""
    out = run(
        [
            "dpkg-query",
            "-W",
            "-f",
            "${Package} ${Version}\n",
            "busybox-static",
            "kexec-tools",
            "makedumpfile",
        ],
        "host tools",
        30,
    )
    return dict(line.split(" ", 1) for line in out.stdout.splitlines() if " " in line)


def build_id(elf: Path) -> str:
    """GNU build id of an ELF file (hex), read from its notes."""
    out = run(["readelf", "-n", elf], "build id", 120)
    m = re.search(r"Build ID: ([0-9a-f]+)", out.stdout)
    if not m:
        raise BuildError("build id", f"{elf} has no GNU build id")
    return m.group(1)


def _extract_members(
    deb: Path, dest: Path, members: list[str], step: str, timeout: int, check: bool = True
) -> None:
    """Extract a few members of a .deb's data tarball; tar stops once it has them all.

    ``--occurrence`` makes GNU tar stop reading after the last requested member, so pulling
    vmlinux (near the start of the -dbg tarball) takes seconds instead of a full xz pass.
    """
    dest.mkdir(parents=True, exist_ok=True)
    with subprocess.Popen(
        ["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    ) as feeder:
        try:
            run(
                ["tar", "-x", "--occurrence=1", "-C", dest, *members],
                step,
                timeout,
                stdin=feeder.stdout,
                check=check,
            )
        finally:
            feeder.kill()


class KernelBuilder:
    """Prepare one kernel of ``tables.KERNELS`` under ``<root>/kernels/<name>``."""

    def __init__(self, root: Path, kernel: Kernel) -> None:
        self.root = root
        self.kernel = kernel
        self.dir = root / "kernels" / kernel.name
        self.apt = Apt(root, kernel.suite)
        self.step = f"kernel {kernel.name}"

    # -- resolution -------------------------------------------------------------------------
    def resolve(self) -> tuple[str, dict[str, str]]:
        """The pinned release and the exact version of every package this kernel needs.

        Every package built from Debian's `linux` source (image, -dbg, headers, kbuild) is
        taken at the pinned version; base-files and kdump-tools (the guest's /etc) at the
        suite's candidate. A pin the mirror no longer serves is a clear error, not a silent
        move to another build."""
        self.apt.update()
        k = self.kernel
        image = f"linux-image-{k.release}"
        served = self.apt.versions(image)
        if k.version not in served:
            newest = self.apt.depends(k.meta_package)
            raise BuildError(
                self.step,
                f"{k.name} is pinned to {image} {k.version}, which Debian's mirror no longer "
                f"serves (it has {', '.join(served) or 'no version of it'}; "
                f"{k.meta_package} now depends on {', '.join(newest) or '?'}). Move the pin "
                f"with `PYTHONPATH=corpus python3 -m kcrash_corpus bump {k.name}`",
            )
        headers = f"linux-headers-{k.release}"
        hdeps = [
            d
            for d in self.apt.depends(f"{headers}={k.version}")
            if d.startswith(("linux-headers-", "linux-kbuild-"))
        ]
        pinned = {n: k.version for n in (image, f"{image}-dbg", headers, *hdeps)}
        for n in pinned:
            if n != image and k.version not in self.apt.versions(n):
                raise BuildError(self.step, f"{n} {k.version} is not served by Debian's mirror")
        userland = self.apt.candidates(list(USERLAND_PACKAGES)) if k.userland else {}
        return k.release, {
            **pinned,
            **{n: self.apt.version(n) for n in ("base-files", "kdump-tools")},
            **userland,
        }

    # -- main entry -------------------------------------------------------------------------
    def prepare(self) -> KernelState:
        """Everything a guest boot of this kernel needs, reusing the cache when current."""
        release, packages = self.resolve()
        tools = _host_tool_versions()
        recipe = recipe_hash(
            RECIPE_VERSION,
            packages,
            tools,
            tree_hash(MODULE_SRC),
            INIT_SCRIPT.read_text(),
            GUEST_MODULES,
        )
        state_file = self.dir / "kernel.json"
        old = read_json(state_file)
        if (
            old
            and old.get("recipe") == recipe
            and Path(old["initrd"]).exists()
            and Path(old["vmlinux"]).exists()
        ):
            progress(self.step, f"cached {release} ({recipe})")
            return KernelState(**old)
        progress(self.step, f"preparing {release} from {self.kernel.suite}")
        rm_rf(self.dir)
        self.dir.mkdir(parents=True)
        small = {p: v for p, v in packages.items() if not p.endswith("-dbg")}
        debs = self.apt.download(small)
        image = debs[f"linux-image-{release}"]
        userland = None
        if self.kernel.userland:
            userland = self._extract_userland([debs[p] for p in USERLAND_PACKAGES])
        vmlinuz, guest_mods = self._extract_image(image, release)
        headers = self._extract_headers(
            [debs[p] for p in packages if p.startswith(("linux-headers-", "linux-kbuild-"))],
            release,
            userland,
        )
        debug_dir = self.dir / "debug-modules"
        debug_dir.mkdir()
        self._build_module(headers, guest_mods, debug_dir, userland)
        etc = self._extract_etc(debs["base-files"], debs["kdump-tools"])
        initrd = self._initramfs(guest_mods, etc, userland)
        vmlinux = self._extract_vmlinux(release)
        state = KernelState(
            name=self.kernel.name, suite=self.kernel.suite, release=release,
            packages=packages, vmlinuz=str(vmlinuz), vmlinux=str(vmlinux),
            build_id=build_id(vmlinux), modules_debug_dir=str(debug_dir),
            initrd=str(initrd), recipe=recipe,
        )  # fmt: skip
        write_json(state_file, asdict(state))
        # Small .debs are kept (a few MB, make re-preparing cheap); the image and the
        # extracted headers are big and only needed to build what is now built.
        rm_rf(image)
        rm_rf(self.dir / "headers")
        rm_rf(self.dir / "userland")
        return state

    # -- steps --------------------------------------------------------------------------------
    def _extract_image(self, image: Path, release: str) -> tuple[Path, Path]:
        """vmlinuz and the guest's module closure (resolved with modinfo) from the image."""
        progress(self.step, "extracting vmlinuz and guest modules")
        out = self.dir / "guest-modules"
        out.mkdir()
        with tempfile.TemporaryDirectory(dir=self.root) as tmp:
            run(["dpkg-deb", "-x", image, tmp], self.step, 300)
            boot = Path(tmp) / "boot"
            vmlinuz = self.dir / f"vmlinuz-{release}"
            shutil.copy2(boot / f"vmlinuz-{release}", vmlinuz)
            shutil.copy2(boot / f"config-{release}", self.dir / f"config-{release}")
            shutil.copy2(boot / f"System.map-{release}", self.dir / f"System.map-{release}")
            # Debian 13 (merged /usr) ships the modules under /usr/lib/modules.
            moddir = Path(tmp) / "lib" / "modules" / release
            if not moddir.is_dir():
                moddir = Path(tmp) / "usr" / "lib" / "modules" / release
            by_name = {p.name.split(".ko")[0].replace("-", "_"): p for p in moddir.rglob("*.ko*")}
            # Since Debian 13 the modules ship xz-compressed (`.ko.xz`); busybox insmod wants
            # them plain, and the -dbg package keeps the debug files as plain `.ko`.
            order: list[str] = []

            def visit(name: str) -> None:
                name = name.replace("-", "_")
                if name in order:
                    return
                if name not in by_name:
                    progress(self.step, f"module {name} not in this kernel (built in?), skipped")
                    return
                deps = run(["modinfo", "-F", "depends", by_name[name]], self.step, 30).stdout
                for dep in filter(None, deps.strip().split(",")):
                    visit(dep)
                order.append(name)

            for name in GUEST_MODULES:
                visit(name)
            for name in order:
                src = by_name[name]
                if src.suffix == ".xz":
                    with (out / f"{name}.ko").open("wb") as fh:
                        run(["xz", "-dc", src], self.step, 60, stdout=fh)
                elif src.suffix == ".ko":
                    shutil.copy2(src, out / f"{name}.ko")
                else:
                    raise BuildError(self.step, f"compressed module {src.name} not supported")
            (out / "modules.order").write_text("\n".join(order) + "\n")
            (self.dir / "guest-modules.paths").write_text(
                "\n".join(str(by_name[n].relative_to(tmp)).removesuffix(".xz") for n in order)
                + "\n"
            )
        return vmlinuz, out

    def _extract_userland(self, debs: list[Path]) -> Path:
        """The kernel's suite's kdump userland and libraries, unpacked (nothing installed)."""
        progress(self.step, f"unpacking {self.kernel.userland}'s kexec-tools and makedumpfile")
        root = self.dir / "userland"
        rm_rf(root)
        for deb in debs:
            run(["dpkg-deb", "-x", deb, root], self.step, 120)
        return root

    def _libs(self, userland: Path, binary: Path) -> list[Path]:
        """The shared libraries `binary` loads, resolved by the suite's own loader inside
        the unpacked tree; one resolved elsewhere (the host's) or not at all is an error."""
        libdir = userland / "usr/lib/x86_64-linux-gnu"
        out = run(
            [libdir / LOADER, "--library-path", libdir, "--list", binary], self.step, 30
        ).stdout
        libs = []
        for line in out.splitlines():
            if "not found" in line:
                raise BuildError(self.step, f"{binary.name}: {line.strip()}")
            m = re.search(r"=> (/\S+)", line)
            if m:
                lib = Path(m.group(1))
                if not lib.is_relative_to(userland):
                    raise BuildError(
                        self.step, f"{binary.name} loads {lib} from outside {userland}"
                    )
                libs.append(lib)
        return libs

    def _wrap(self, userland: Path, binary: Path, wrapper: Path) -> None:
        """A shell script at `wrapper` that runs the suite's `binary` through the suite's
        loader; --argv0 keeps the name (kbuild's modpost and objtool pick their real binary
        from it)."""
        libdir = userland / "usr/lib/x86_64-linux-gnu"
        wrapper.write_text(
            f'#!/bin/sh\nexec {libdir / LOADER} --library-path {libdir} --argv0 "$0" '
            f'{binary} "$@"\n'
        )
        wrapper.chmod(0o755)

    def _extract_headers(
        self, debs: list[Path], release: str, userland: Path | None, root: Path | None = None
    ) -> Path:
        """linux-headers + kbuild in a private tree; its Makefile points at /usr/src, fix it.

        A newer suite's kbuild binaries (fixdep, modpost, objtool …) need that suite's glibc:
        each is renamed `*.elf` and replaced by a wrapper that runs it through the suite's
        loader (`userland`)."""
        progress(self.step, "extracting headers")
        root = root or self.dir / "headers"
        for deb in debs:
            run(["dpkg-deb", "-x", deb, root], self.step, 300)
        tree = root / "usr" / "src" / f"linux-headers-{release}"
        mk = tree / "Makefile"
        mk.write_text(mk.read_text().replace("include /usr/src/", f"include {root}/usr/src/"))
        if userland is not None:
            for kbuild in (root / "usr/lib").glob("linux-kbuild-*"):
                for f in sorted(kbuild.rglob("*")):
                    if f.is_file() and os.access(f, os.X_OK) and f.read_bytes()[:4] == b"\x7fELF":
                        real = f.with_name(f.name + ".elf")
                        f.replace(real)
                        self._wrap(userland, real, f)
        return tree

    def _make_overrides(self, headers: Path, userland: Path | None) -> list[str]:
        """make variables that let the host gcc 12 build for a kernel built by a newer gcc.

        Linux 6.9 uses gcc 14's `-fmin-function-alignment=N` when the compiler has it
        (CONFIG_CC_HAS_MIN_FUNCTION_ALIGNMENT) and falls back to `-falign-functions=N`, the
        same alignment for a module's functions; gcc 12 lacks the former, so the kernel's
        own fallback is selected. pahole (the module's BTF) is the suite's, wrapped."""
        out = []
        config = (headers / ".config").read_text()
        if "CONFIG_CC_HAS_MIN_FUNCTION_ALIGNMENT=y" in config:
            probe = run(
                ["gcc", "-fmin-function-alignment=16", "-x", "c", "-c", "-o", "/dev/null",
                 "/dev/null"],
                self.step, 60, check=False,
            )  # fmt: skip
            if probe.returncode != 0:
                out.append("CONFIG_CC_HAS_MIN_FUNCTION_ALIGNMENT=")
        if userland is not None:
            pahole = self.dir / "pahole"
            self._wrap(userland, userland / "usr/bin/pahole", pahole)
            out.append(f"PAHOLE={pahole}")
        return out

    def _make_module(self, src: Path, build: Path, headers: Path, userland: Path | None) -> None:
        """Copy a module's source to `build` and make it there with the host gcc (Debian's
        headers name a versioned gcc)."""
        shutil.copytree(src, build)
        env = dict(os.environ, DEBIAN_KERNEL_NO_CC_VERSION_CHECK="y")
        run(
            ["make", "-C", headers, f"M={build}", "CC=gcc",
             *self._make_overrides(headers, userland), "modules"],
            self.step, 300, env=env,
        )  # fmt: skip

    def _build_module(
        self, headers: Path, guest_mods: Path, debug_dir: Path, userland: Path | None
    ) -> None:
        """Build the test module with the host gcc (Debian's headers name a versioned gcc)."""
        progress(self.step, "building kcrash_crash.ko")
        build = self.dir / "module-build"
        self._make_module(MODULE_SRC, build, headers, userland)
        ko = build / "kcrash_crash.ko"
        shutil.copy2(ko, debug_dir / "kcrash_crash.ko")
        # The guest loads a stripped copy, as distributions ship modules; same build id.
        run(["strip", "--strip-debug", "-o", guest_mods / "kcrash_crash.ko", ko], self.step, 60)
        with (guest_mods / "modules.order").open("a") as fh:
            fh.write("kcrash_crash\n")

    def extra_module(self, state: KernelState, name: str) -> Path:
        """The stripped .ko of test module `name` (EXTRA_MODULES) for the guest's share,
        built once per source hash against this kernel's headers (their small .debs are kept
        by prepare()); the unstripped .ko goes beside kcrash_crash's in this kernel's
        debug-modules directory (modules_debug_dir of a corpus built in place).
        Host-userland kernels only (Debian 12/11): a newer suite's kbuild would need its
        loader unpacked again."""
        src = EXTRA_MODULES[name]
        out = self.dir / f"extra-{name}-{tree_hash(src)}"
        ko = out / f"{name}.ko"
        debug = self.dir / "debug-modules" / f"{name}.ko"
        if ko.exists() and debug.exists():
            return ko
        if self.kernel.userland:
            raise BuildError(self.step, f"{name}.ko is built for host-userland kernels only")
        progress(self.step, f"building {name}.ko")
        wanted = {
            p: v
            for p, v in state.packages.items()
            if p.startswith(("linux-headers-", "linux-kbuild-"))
        }
        debs = self.apt.download(wanted)
        # Fixed paths, like kcrash_crash's (module-build/, headers/): the paths enter the
        # debug info and so the build id, which must not change between two builds of the
        # same source (a dump and the debug file it is read with must match).
        build = self.dir / f"module-build-{name}"
        headers_root = self.dir / "headers"
        rm_rf(build)
        rm_rf(headers_root)
        try:
            headers = self._extract_headers(list(debs.values()), state.release, None)
            self._make_module(src, build, headers, None)
            built = build / f"{name}.ko"
            # New files replace old ones (never written through: the cache may be hard-linked).
            tmp_debug = debug.with_name(f".{name}.ko.tmp")
            shutil.copy2(built, tmp_debug)
            tmp_debug.replace(debug)
            stage = self.dir / f".extra-{name}.tmp"
            rm_rf(stage)
            stage.mkdir()
            run(["strip", "--strip-debug", "-o", stage / ko.name, built], self.step, 60)
            rm_rf(out)
            stage.replace(out)
        finally:
            rm_rf(headers_root)
        return ko

    def _extract_etc(self, base_files: Path, kdump_tools: Path) -> Path:
        """The suite's real os-release and kdump-tools defaults, for the guest's /etc."""
        etc = self.dir / "etc"
        with tempfile.TemporaryDirectory(dir=self.root) as tmp:
            run(["dpkg-deb", "-x", base_files, tmp], self.step, 60)
            run(["dpkg-deb", "-x", kdump_tools, tmp], self.step, 60)
            (etc / "default").mkdir(parents=True)
            shutil.copy2(Path(tmp) / "usr/lib/os-release", etc / "os-release")
            # kdump-tools' postinst installs this template as /etc/default/kdump-tools.
            shutil.copy2(
                Path(tmp) / "usr/share/kdump-tools/kdump-tools.conf", etc / "default/kdump-tools"
            )
        return etc

    def _initramfs(self, guest_mods: Path, etc: Path, userland: Path | None) -> Path:
        """An uncompressed cpio (TCG decompresses slowly): busybox, kdump tools, modules."""
        progress(self.step, "packing initramfs")
        stage = self.dir / "initramfs"
        rm_rf(stage)
        for d in (
            "bin",
            "sbin",
            "usr/bin",
            "usr/sbin",
            "lib/modules",
            "proc",
            "sys",
            "dev",
            "share",
            "tmp",
            "var/tmp",
            "etc/default",
        ):
            (stage / d).mkdir(parents=True, exist_ok=True)
        if userland is None:
            self._host_binaries(stage, GUEST_BINARIES)
        else:
            self._host_binaries(stage, ("/bin/busybox",))
            self._userland_binaries(stage, userland)
        shutil.copytree(guest_mods, stage / "lib/modules/kcrash")
        shutil.copy2(etc / "os-release", stage / "etc/os-release")
        shutil.copy2(etc / "default/kdump-tools", stage / "etc/default/kdump-tools")
        shutil.copy2(INIT_SCRIPT, stage / "init")
        (stage / "init").chmod(0o755)
        initrd = self.dir / "initrd.cpio"
        files = sorted(str(p.relative_to(stage)) for p in stage.rglob("*"))
        with initrd.open("wb") as fh:
            run(
                ["cpio", "-o", "-H", "newc", "--reproducible", "--quiet"],
                self.step,
                120,
                cwd=stage,
                input_text="\n".join(files) + "\n",
                stdout=fh,
            )
        rm_rf(stage)
        return initrd

    def _host_binaries(self, stage: Path, binaries: tuple[str, ...]) -> None:
        """Host binaries at their paths, with the libraries ldd names."""
        libs: set[str] = set()
        for binary in binaries:
            real = Path(binary).resolve()
            shutil.copy2(real, stage / binary.lstrip("/"))
            ldd = run(["ldd", real], self.step, 30, check=False).stdout
            libs.update(re.findall(r"(/\S+\.so[.\d]*)", ldd))
        for lib in sorted(libs):
            dest = stage / lib.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(Path(lib).resolve(), dest)

    def _userland_binaries(self, stage: Path, userland: Path) -> None:
        """The suite's kexec, vmcore-dmesg and makedumpfile at their paths with the suite's
        libraries and loader; the host's makedumpfile under /opt/host (its own loader and
        libraries, started by a wrapper) for the dump a stale makedumpfile writes."""
        libs: set[Path] = set()
        for binary in USERLAND_BINARIES:
            src = userland / binary.lstrip("/")
            dest = stage / binary.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest)
            libs.update(self._libs(userland, src))
        libdir = stage / "usr/lib/x86_64-linux-gnu"
        libdir.mkdir(parents=True, exist_ok=True)
        for lib in sorted(libs):
            shutil.copy2(lib.resolve(), libdir / lib.name)
        (stage / "lib64").mkdir(exist_ok=True)
        shutil.copy2(
            (userland / "usr/lib/x86_64-linux-gnu" / LOADER).resolve(), stage / "lib64" / LOADER
        )
        host = stage / "opt/host"
        (host / "lib").mkdir(parents=True)
        real = Path("/usr/bin/makedumpfile").resolve()
        shutil.copy2(real, host / "makedumpfile.bin")
        ldd = run(["ldd", real], self.step, 30, check=False).stdout
        for lib in re.findall(r"(/\S+\.so[.\d]*)", ldd):
            shutil.copy2(Path(lib).resolve(), host / "lib" / Path(lib).name)
        wrapper = host / "makedumpfile"
        wrapper.write_text(
            f"#!/bin/sh\nexec /opt/host/lib/{LOADER} --library-path /opt/host/lib "
            '/opt/host/makedumpfile.bin "$@"\n'
        )
        wrapper.chmod(0o755)

    def _dbg_deb(self, release: str) -> Path:
        name = f"linux-image-{release}-dbg"
        return self.apt.download({name: self.kernel.version})[name]

    def _extract_vmlinux(self, release: str) -> Path:
        """vmlinux from the -dbg package; tar stops right after it (seconds, not a minute)."""
        deb = self._dbg_deb(release)
        progress(self.step, f"extracting vmlinux from {deb.name}")
        member = f"./usr/lib/debug/boot/vmlinux-{release}"
        with tempfile.TemporaryDirectory(dir=self.root) as tmp:
            _extract_members(deb, Path(tmp), [member], self.step, 600)
            vmlinux = self.dir / f"vmlinux-{release}"
            (Path(tmp) / member).replace(vmlinux)
        return vmlinux

    def extract_module_debug(self, state: KernelState) -> KernelState:
        """Debug .ko files of the modules the guest loads (a full pass over the -dbg tarball,
        about a minute: run it beside the guests). Deletes the 0.9 GB -dbg .deb afterwards."""
        if state.module_debug_done:
            return state
        paths = (self.dir / "guest-modules.paths").read_text().split()
        # A module at usr/lib/modules (Debian 13) may have its debug file under either
        # usr/lib/debug/usr/lib/modules or usr/lib/debug/lib/modules: ask tar for both
        # (one is missing, so tar exits non-zero) and check what came out.
        variants = {p: [p] if p.startswith("lib/") else [p, p.removeprefix("usr/")] for p in paths}
        members = [f"./usr/lib/debug/{v}" for vs in variants.values() for v in vs]
        deb = self._dbg_deb(state.release)
        progress(self.step, f"extracting {len(paths)} module debug files")
        with tempfile.TemporaryDirectory(dir=self.root) as tmp:
            _extract_members(deb, Path(tmp), members, self.step, 900, check=False)
            for p, vs in variants.items():
                found = [Path(tmp) / f"usr/lib/debug/{v}" for v in vs]
                found = [f for f in found if f.exists()]
                if not found:
                    raise BuildError(self.step, f"no debug file for {p} in {deb.name}")
                shutil.copy2(found[0], Path(state.modules_debug_dir) / found[0].name)
        rm_rf(deb)
        state.module_debug_done = True
        write_json(self.dir / "kernel.json", asdict(state))
        progress(self.step, "module debug files done")
        return state
