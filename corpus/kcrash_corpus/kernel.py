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
from .tables import ARCHES, GUEST_MODULES, RECIPE_VERSION, Arch, Kernel
from .util import BuildError, progress, read_json, recipe_hash, rm_rf, run, write_json

PKG_DIR = Path(__file__).resolve().parent
MODULE_SRC = PKG_DIR / "module"
#: Test modules apart from kcrash_crash, each built only for the scenarios that load it
#: (Scenario.extra_module): their source is not part of the kernel's recipe, so adding one
#: leaves every cached dump valid.
EXTRA_MODULES: dict[str, Path] = {
    "kcrash_hang": PKG_DIR / "module-hang",
    "kcrash_memslab": PKG_DIR / "module-memslab",
    "kcrash_scale": PKG_DIR / "module-scale",
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
#: Debian's name of the host architecture (the kbuild binaries of a cross build are its).
HOST_ARCH = "amd64"
#: Packages of a foreign architecture's userland closure that no guest binary loads
#: (maintainer-script and packaging dependencies): not downloaded.
FOREIGN_SKIP = (
    "perl", "libperl", "debconf", "cdebconf", "dpkg", "tar", "install-info",
    "libdebian-installer", "libnewt", "libslang", "libtextwrap", "readline-common",
    "libreadline", "libtinfo", "libgdbm", "libdb5", "libselinux", "libpcre2", "libacl1",
    "libmd0", "libext2fs", "libuuid", "libcrypt",
)  # fmt: skip


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
    arch: str = "x86_64"  #: Kernel.arch (a key of tables.ARCHES for a foreign kernel)


def _module_dir(root: Path, release: str) -> Path:
    """The modules of an unpacked image package: Debian 13 (merged /usr) ships them under
    /usr/lib/modules."""
    moddir = root / "lib" / "modules" / release
    return moddir if moddir.is_dir() else root / "usr" / "lib" / "modules" / release


def _modules_by_name(moddir: Path) -> dict[str, Path]:
    """Module name (``-`` as ``_``) -> its file, ``.ko`` or ``.ko.xz``."""
    return {p.name.split(".ko")[0].replace("-", "_"): p for p in moddir.rglob("*.ko*")}


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


def _cross_tool_versions(arch: Arch) -> dict[str, str]:
    """Versions of the host packages a foreign kernel's build uses: the cross compiler and
    binutils (the test module's code), and QEMU is hashed per boot."""
    gcc = arch.cross_compile.rstrip("-").replace("_", "-")
    out = run(
        ["dpkg-query", "-W", "-f", "${Package} ${Version}\n", f"gcc-{gcc}", f"binutils-{gcc}"],
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


def _in_tree(tree: Path, path: Path) -> Path:
    """`path` of an unpacked package tree with its symlinks followed inside `tree` (an
    absolute link target such as libc6's `/lib/aarch64-linux-gnu/…` means `tree/lib/…`,
    never the host's file)."""
    current = tree
    parts = list(path.relative_to("/").parts) if path.is_absolute() else list(path.parts)
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            current = current.parent if current != tree else tree
            continue
        candidate = current / part
        if not candidate.is_symlink():
            current = candidate
            continue
        links += 1
        if links > 40:  # bounded: a link loop is an error, not a hang
            break
        target = Path(os.readlink(candidate))
        if target.is_absolute():
            current = tree
            parts = list(target.relative_to("/").parts) + parts
        else:
            parts = list(target.parts) + parts
    else:
        return current
    raise BuildError("unpacked tree", f"too many symlinks resolving {path} in {tree}")


class KernelBuilder:
    """Prepare one kernel of ``tables.KERNELS`` under ``<root>/kernels/<name>``."""

    def __init__(self, root: Path, kernel: Kernel) -> None:
        self.root = root
        self.kernel = kernel
        self.dir = root / "kernels" / kernel.name
        #: A foreign architecture's description (ARCHES), None for the host's (x86_64).
        self.arch: Arch | None = ARCHES.get(kernel.arch)
        self.apt = Apt(root, kernel.suite, self.arch.name if self.arch else None)
        #: The host architecture's configuration of the suite: a cross build runs the
        #: host's kbuild binaries (fixdep, modpost …) from the same linux source version.
        self.host_apt = Apt(root, kernel.suite) if self.arch else self.apt
        self.step = f"kernel {kernel.name}"
        #: A foreign kernel's userland packages (busybox, kdump tools and their libraries),
        #: set by resolve().
        self.foreign_userland: list[str] = []

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
        if self.arch is not None:
            # The kbuild binaries run on the host: the host architecture's package.
            pinned = {
                (f"{n}:{HOST_ARCH}" if n.startswith("linux-kbuild-") else n): v
                for n, v in pinned.items()
            }
        for n in pinned:
            apt = self.host_apt if n.endswith(f":{HOST_ARCH}") else self.apt
            if n != image and k.version not in apt.versions(n.split(":")[0]):
                raise BuildError(self.step, f"{n} {k.version} is not served by Debian's mirror")
        userland = self.apt.candidates(list(USERLAND_PACKAGES)) if k.userland else {}
        if self.arch is not None:
            self.host_apt.update()
            names = [
                n
                for n in self.apt.recursive_depends(list(self.arch.userland))
                if not n.startswith(FOREIGN_SKIP)
            ]
            userland = self.apt.candidates(names)
            self.foreign_userland = names
        return k.release, {
            **pinned,
            **{n: self.apt.version(n) for n in ("base-files", "kdump-tools")},
            **userland,
        }

    # -- main entry -------------------------------------------------------------------------
    def prepare(self) -> KernelState:
        """Everything a guest boot of this kernel needs, reusing the cache when current."""
        release, packages = self.resolve()
        if self.arch is None:
            tools = _host_tool_versions()
            recipe = recipe_hash(
                RECIPE_VERSION,
                packages,
                tools,
                tree_hash(MODULE_SRC),
                INIT_SCRIPT.read_text(),
                GUEST_MODULES,
            )
        else:
            # A foreign kernel's guest binaries are its architecture's packages (in
            # `packages`); the host gives the cross compiler.
            recipe = recipe_hash(
                RECIPE_VERSION,
                packages,
                _cross_tool_versions(self.arch),
                tree_hash(MODULE_SRC),
                INIT_SCRIPT.read_text(),
                # kallsyms_text shapes the guest's job script, which each boot's recipe
                # hashes; the kernel's files do not depend on it.
                {k: v for k, v in asdict(self.arch).items() if k != "kallsyms_text"},
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
        small = {
            p: v
            for p, v in packages.items()
            if not p.endswith("-dbg") and not p.endswith(f":{HOST_ARCH}")
        }
        debs = self.apt.download(small)
        host = {p.split(":")[0]: v for p, v in packages.items() if p.endswith(f":{HOST_ARCH}")}
        if host:
            debs.update(self.host_apt.download(host))
        image = debs[f"linux-image-{release}"]
        userland = None
        if self.kernel.userland:
            userland = self._extract_userland([debs[p] for p in USERLAND_PACKAGES])
        foreign = None
        if self.arch is not None:
            foreign = self._extract_userland([debs[p] for p in self.foreign_userland])
        vmlinuz, guest_mods = self._extract_image(image, release)
        headers = self._extract_headers(
            [
                debs[p.split(":")[0]]
                for p in packages
                if p.startswith(("linux-headers-", "linux-kbuild-"))
            ],
            release,
            userland,
        )
        debug_dir = self.dir / "debug-modules"
        debug_dir.mkdir()
        self._build_module(headers, guest_mods, debug_dir, userland)
        etc = self._extract_etc(debs["base-files"], debs["kdump-tools"])
        initrd = self._initramfs(guest_mods, etc, userland, foreign)
        vmlinux = self._extract_vmlinux(release)
        if self.arch is not None and self.arch.kallsyms_text is not None:
            self._check_text_distance(vmlinux, self.arch.kallsyms_text)
        state = KernelState(
            name=self.kernel.name, suite=self.kernel.suite, release=release,
            packages=packages, vmlinuz=str(vmlinuz), vmlinux=str(vmlinux),
            build_id=build_id(vmlinux), modules_debug_dir=str(debug_dir),
            initrd=str(initrd), recipe=recipe, arch=self.kernel.arch,
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
            moddir = _module_dir(Path(tmp), release)
            by_name = _modules_by_name(moddir)
            order = self._closure(by_name, self.arch.guest_modules if self.arch else GUEST_MODULES)
            for name in order:
                self._copy_module(by_name[name], out / f"{name}.ko")
            (out / "modules.order").write_text("\n".join(order) + "\n")
            (self.dir / "guest-modules.paths").write_text(
                "\n".join(str(by_name[n].relative_to(tmp)).removesuffix(".xz") for n in order)
                + "\n"
            )
        return vmlinuz, out

    def _closure(self, by_name: dict[str, Path], names: tuple[str, ...]) -> list[str]:
        """`names` and the modules they depend on (modinfo), dependencies first."""
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

        for name in names:
            visit(name)
        return order

    def _copy_module(self, src: Path, dest: Path) -> None:
        """A module as busybox insmod wants it: since Debian 13 the modules ship
        xz-compressed (`.ko.xz`), the -dbg package keeps the debug files as plain `.ko`."""
        if src.suffix == ".xz":
            with dest.open("wb") as fh:
                run(["xz", "-dc", src], self.step, 60, stdout=fh)
        elif src.suffix == ".ko":
            shutil.copy2(src, dest)
        else:
            raise BuildError(self.step, f"compressed module {src.name} not supported")

    def kernel_modules(self, state: KernelState, specs: tuple[str, ...]) -> Path:
        """Debian's own modules a scenario loads (Scenario.kernel_modules) and their
        dependencies, from the pinned image package, in a directory for the guest's share:
        the .ko files plus `deps` (the dependencies the guest has not loaded yet, in load
        order). Built once per set of names; the image .deb is fetched again (prepare()
        deletes it) and removed afterwards."""
        names = tuple(spec.split()[0] for spec in specs)
        out = self.dir / f"kmods-{hashlib.sha256(' '.join(names).encode()).hexdigest()[:12]}"
        if (out / "deps").exists():
            return out
        progress(self.step, f"copying {', '.join(names)} from the image package")
        image = f"linux-image-{state.release}"
        deb = self.apt.download({image: state.packages[image]})[image]
        loaded = (self.dir / "guest-modules.paths").read_text().split()
        stage = self.dir / ".kmods.tmp"
        rm_rf(stage)
        stage.mkdir()
        with tempfile.TemporaryDirectory(dir=self.root) as tmp:
            run(["dpkg-deb", "-x", deb, tmp], self.step, 300)
            by_name = _modules_by_name(_module_dir(Path(tmp), state.release))
            loaded_names = {Path(p).name.split(".ko")[0].replace("-", "_") for p in loaded}
            order = [n for n in self._closure(by_name, names) if n not in loaded_names]
            for name in order:
                self._copy_module(by_name[name], stage / f"{name}.ko")
        (stage / "deps").write_text("\n".join(n for n in order if n not in names) + "\n")
        rm_rf(deb)
        rm_rf(out)
        stage.replace(out)
        return out

    def _extract_userland(self, debs: list[Path]) -> Path:
        """The kernel's suite's kdump userland and libraries, unpacked (nothing installed)."""
        suite = self.kernel.userland or f"{self.kernel.suite} {self.kernel.arch}"
        progress(self.step, f"unpacking {suite}'s kexec-tools and makedumpfile")
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
        # A new file replaces the old one (never written through: the cache may be
        # hard-linked into another, corpus-private.md).
        tmp = wrapper.with_name(f".{wrapper.name}.tmp")
        tmp.write_text(
            f'#!/bin/sh\nexec {libdir / LOADER} --library-path {libdir} --argv0 "$0" '
            f'{binary} "$@"\n'
        )
        tmp.chmod(0o755)
        tmp.replace(wrapper)

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
        if self.arch is not None:
            # Cross build with Debian's cross gcc (the same gcc 12 Debian built the kernel
            # with, as aarch64-linux-gnu-gcc) and the host's kbuild binaries.
            cross = self.arch.cross_compile
            cc = [f"ARCH={self.arch.name}", f"CROSS_COMPILE={cross}", f"CC={cross}gcc"]
        else:
            cc = ["CC=gcc"]
        run(
            ["make", "-C", headers, f"M={build}", *cc,
             *self._make_overrides(headers, userland), "modules"],
            self.step, 300, env=env,
        )  # fmt: skip

    @property
    def strip(self) -> str:
        """The strip that knows the kernel's architecture (the host's knows only its own)."""
        return f"{self.arch.cross_compile}strip" if self.arch else "strip"

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
        run([self.strip, "--strip-debug", "-o", guest_mods / "kcrash_crash.ko", ko], self.step, 60)
        with (guest_mods / "modules.order").open("a") as fh:
            fh.write("kcrash_crash\n")

    def extra_module(self, state: KernelState, name: str) -> Path:
        """The stripped .ko of test module `name` (EXTRA_MODULES) for the guest's share,
        built once per source hash against this kernel's headers (their small .debs are kept
        by prepare()); the unstripped .ko goes beside kcrash_crash's in this kernel's
        debug-modules directory (modules_debug_dir of a corpus built in place).
        A kernel with its own suite's userland (Debian 13) unpacks that suite's loader and
        tools again for its kbuild, as prepare() does."""
        src = EXTRA_MODULES[name]
        out = self.dir / f"extra-{name}-{tree_hash(src)}"
        ko = out / f"{name}.ko"
        debug = self.dir / "debug-modules" / f"{name}.ko"
        if ko.exists() and debug.exists():
            return ko
        if self.arch:
            # No arm64 scenario has an extra module: _make_module builds for the host only.
            raise BuildError(self.step, f"{name}.ko is built for x86-64 kernels only")
        progress(self.step, f"building {name}.ko")
        wanted = {
            p: v
            for p, v in state.packages.items()
            if p.startswith(("linux-headers-", "linux-kbuild-"))
        }
        debs = self.apt.download(wanted)
        userland = None
        if self.kernel.userland:
            tools = self.apt.download({p: state.packages[p] for p in USERLAND_PACKAGES})
            userland = self._extract_userland(list(tools.values()))
        # Fixed paths, like kcrash_crash's (module-build/, headers/): the paths enter the
        # debug info and so the build id, which must not change between two builds of the
        # same source (a dump and the debug file it is read with must match).
        build = self.dir / f"module-build-{name}"
        headers_root = self.dir / "headers"
        rm_rf(build)
        rm_rf(headers_root)
        try:
            headers = self._extract_headers(list(debs.values()), state.release, userland)
            self._make_module(src, build, headers, userland)
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
            if userland is not None:
                rm_rf(userland)
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

    def _initramfs(
        self, guest_mods: Path, etc: Path, userland: Path | None, foreign: Path | None = None
    ) -> Path:
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
        if foreign is not None:
            self._foreign_binaries(stage, foreign)
        elif userland is None:
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

    def _foreign_binaries(self, stage: Path, tree: Path) -> None:
        """A foreign architecture's busybox, kexec, vmcore-dmesg and makedumpfile from its
        unpacked packages, at the paths the guest runs them from, with the shared
        libraries they need (their DT_NEEDED closure, found in the tree: the host cannot
        run that architecture's loader to ask) and the loader."""
        assert self.arch is not None
        libdirs = [Path(self.arch.libdir), Path("/usr") / self.arch.libdir.lstrip("/")]
        wanted: list[Path] = []
        for binary in GUEST_BINARIES:
            src = _in_tree(tree, Path(binary))
            if not src.is_file():
                src = _in_tree(tree, Path("/usr") / binary.lstrip("/"))
            dest = stage / binary.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest)
            wanted.append(src)
        libs: dict[str, Path] = {}
        while wanted:
            elf = wanted.pop()
            dyn = run(["readelf", "-d", elf], self.step, 30).stdout
            for name in re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dyn):
                if name in libs:
                    continue
                found = [_in_tree(tree, d / name) for d in libdirs]
                found = [f for f in found if f.is_file()]
                if not found:
                    raise BuildError(self.step, f"{elf.name} needs {name}: not in {tree}")
                libs[name] = found[0]
                wanted.append(found[0])
        dest_dir = stage / self.arch.libdir.lstrip("/")
        dest_dir.mkdir(parents=True, exist_ok=True)
        for name, lib in sorted(libs.items()):
            shutil.copy2(lib, dest_dir / name)
        loader = stage / self.arch.loader.lstrip("/")
        loader.parent.mkdir(parents=True, exist_ok=True)
        src = _in_tree(tree, Path(self.arch.loader))
        if not src.is_file():  # a merged-/usr suite (trixie) ships it under /usr/lib
            src = _in_tree(tree, Path("/usr") / self.arch.loader.lstrip("/"))
        shutil.copy2(src, loader)

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

    def _check_text_distance(self, vmlinux: Path, distance: int) -> None:
        """The guest computes `_text` as `_stext - distance` for kexec (Arch.kallsyms_text):
        the distance must be this kernel's own."""
        out = run(["readelf", "-sW", vmlinux], self.step, 300).stdout
        syms = {}
        for line in out.splitlines():
            cols = line.split()
            if len(cols) == 8 and cols[7] in ("_text", "_stext"):
                syms[cols[7]] = int(cols[1], 16)
        got = syms.get("_stext", 0) - syms.get("_text", 0)
        if len(syms) != 2 or got != distance:
            raise BuildError(
                self.step, f"vmlinux has _stext - _text = {got:#x}, the table says {distance:#x}"
            )

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
