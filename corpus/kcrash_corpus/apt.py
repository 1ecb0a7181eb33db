"""Private apt configurations: one per Debian suite, all state under the cache.

The machine's own sources are never touched: each suite gets its own sources.list, lists,
archive cache and an empty dpkg status, and apt is pointed at them with ``-o`` options.
The machine's Debian archive keyring verifies every suite (it carries bullseye to trixie).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from .util import BuildError, progress, run

MIRROR = "http://deb.debian.org/debian"
SECURITY = "http://deb.debian.org/debian-security"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
#: apt lists older than this are refreshed (the kernel ABI moves with security updates).
LIST_MAX_AGE = 6 * 3600


class Apt:
    """apt-get / apt-cache bound to a private configuration for one suite.

    `arch` None is the host's architecture (amd64: the x86 kernels' configuration, at the
    paths it always had); another architecture (arm64) gets a configuration and a .deb
    directory of its own (`apt/<suite>-<arch>/`), so its lists never mix with the host's."""

    def __init__(
        self, root: Path, suite: str, arch: str | None = None, source: bool = False
    ) -> None:
        self.suite = suite
        self.arch = arch
        self.source_lists = source
        name = suite if arch is None else f"{suite}-{arch}"
        if source:  # a configuration of its own: the binary ones' sources.list stays as it was
            name += "-src"
        self.dir = root / "apt" / name
        self.debs = root / "debs" / name

    def _opts(self) -> list[str]:
        d = self.dir
        return [
            "-o", f"Dir::Etc::SourceList={d / 'sources.list'}",
            "-o", "Dir::Etc::SourceParts=/nonexistent",
            "-o", f"Dir::State::Lists={d / 'lists'}",
            "-o", f"Dir::Cache={d / 'cache'}",
            "-o", f"Dir::State::status={d / 'status'}",
            "-o", "Debug::NoLocking=1",
            "-o", "APT::Sandbox::User=root",
            "-o", "Acquire::Retries=3",
            *(["-o", f"APT::Architecture={self.arch}", "-o", f"APT::Architectures={self.arch}"]
              if self.arch else []),
        ]  # fmt: skip

    def update(self) -> None:
        """Write the private sources and refresh its lists when stale."""
        step = f"apt {self.suite}"
        for sub in ("lists/partial", "cache/archives/partial"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        sources = (
            f"deb [signed-by={KEYRING}] {MIRROR} {self.suite} main\n"
            f"deb [signed-by={KEYRING}] {MIRROR} {self.suite}-updates main\n"
            f"deb [signed-by={KEYRING}] {SECURITY} {self.suite}-security main\n"
        )
        if self.source_lists:
            sources = "".join(
                line.replace("deb ", "deb-src ", 1) + "\n" for line in sources.splitlines()
            )
        src = self.dir / "sources.list"
        stamp = self.dir / "updated"
        fresh = (
            src.exists()
            and src.read_text() == sources
            and stamp.exists()
            and time.time() - stamp.stat().st_mtime < LIST_MAX_AGE
        )
        if fresh:
            return
        src.write_text(sources)
        (self.dir / "status").touch()
        progress(step, "apt-get update (private configuration)")
        run(["apt-get", *self._opts(), "update"], step, timeout=300)
        stamp.touch()

    def depends(self, package: str) -> list[str]:
        """Direct Depends of the candidate version of `package`."""
        out = run(["apt-cache", *self._opts(), "depends", package], f"apt {self.suite}", 60)
        deps = []
        for line in out.stdout.splitlines():
            m = re.match(r"\s+\|?Depends: (\S+)", line)
            if m and not m.group(1).startswith("<"):
                deps.append(m.group(1))
        return deps

    def version(self, package: str) -> str:
        """Candidate version of `package` in this suite."""
        out = run(["apt-cache", *self._opts(), "policy", package], f"apt {self.suite}", 60)
        m = re.search(r"Candidate: (\S+)", out.stdout)
        if not m or m.group(1) == "(none)":
            raise BuildError(f"apt {self.suite}", f"no candidate for {package}")
        return m.group(1)

    def candidates(self, packages: list[str]) -> dict[str, str]:
        """Candidate version of each of `packages`, from one apt-cache run (a run costs
        seconds on a loaded machine; a kernel's userland is two dozen packages)."""
        out = run(["apt-cache", *self._opts(), "policy", *packages], f"apt {self.suite}", 120)
        found: dict[str, str] = {}
        name = None
        for line in out.stdout.splitlines():
            if line and not line.startswith(" ") and line.endswith(":"):
                name = line[:-1]
            m = re.match(r"\s+Candidate: (\S+)", line)
            if m and name and m.group(1) != "(none)":
                found[name] = m.group(1)
        missing = [p for p in packages if p not in found]
        if missing:
            raise BuildError(f"apt {self.suite}", f"no candidate for {', '.join(missing)}")
        return {p: found[p] for p in packages}  # in the caller's order (recipes hash it)

    def versions(self, package: str) -> list[str]:
        """Every version of `package` the suite's pockets serve now (newest first)."""
        out = run(["apt-cache", *self._opts(), "madison", package], f"apt {self.suite}", 60)
        seen: list[str] = []
        for line in out.stdout.splitlines():
            parts = [p.strip() for p in line.split("|")]
            if len(parts) >= 2 and parts[0] == package and parts[1] not in seen:
                seen.append(parts[1])
        return seen

    def recursive_depends(self, packages: list[str]) -> list[str]:
        """Packages needed to run `packages` (Depends and Pre-Depends, recursively)."""
        out = run(
            [
                "apt-cache", *self._opts(), "depends", "--recurse", "--no-recommends",
                "--no-suggests", "--no-conflicts", "--no-breaks", "--no-replaces",
                "--no-enhances", *packages,
            ],
            f"apt {self.suite}", 120,
        )  # fmt: skip
        names = []
        for line in out.stdout.splitlines():
            if line and not line.startswith((" ", "<")):
                names.append(line.strip())
        return sorted(set(names))

    def download(self, packages: list[str] | dict[str, str]) -> dict[str, Path]:
        """Download .debs (reused when present); returns package name -> .deb path.

        A dict pins each package to a version; a list takes the suite's candidates."""
        step = f"download {self.suite}"
        self.debs.mkdir(parents=True, exist_ok=True)
        want: dict[str, str] = (
            dict(packages) if isinstance(packages, dict) else {p: self.version(p) for p in packages}
        )
        found: dict[str, Path] = {}
        missing = []
        for pkg, ver in want.items():
            pattern = f"{pkg}_{ver.replace(':', '%3a')}_*.deb"
            hits = sorted(self.debs.glob(pattern))
            if hits:
                found[pkg] = hits[0]
            else:
                missing.append(pkg)
        if missing:
            progress(step, f"apt-get download {' '.join(missing)}")
            run(
                ["apt-get", *self._opts(), "download", *[f"{p}={want[p]}" for p in missing]],
                step,
                timeout=900,
                cwd=self.debs,
            )
            for pkg in missing:
                pattern = f"{pkg}_{want[pkg].replace(':', '%3a')}_*.deb"
                hits = sorted(self.debs.glob(pattern))
                if not hits:
                    raise BuildError(step, f"{pkg} {want[pkg]} not downloaded")
                found[pkg] = hits[0]
        return found

    def orig_source(self, package: str, version: str, dest: Path, timeout: int = 900) -> Path:
        """Debian's upstream tarball (`.orig.tar.*`) of source package `package`=`version`,
        downloaded into `dest` by apt's own helper with the sha256 the suite's Sources index
        gives (needs a configuration made with ``source=True``). Only the orig tarball: this
        machine's archive mirror serves it but not every source package's `.dsc` and
        `.debian.tar.xz`, so what is built is the upstream source Debian packages, without
        Debian's patches."""
        step = f"source {self.suite} {package}"
        out = run(
            ["apt-get", *self._opts(), "source", "--print-uris", f"{package}={version}"],
            step,
            timeout=120,
            cwd=self.dir,  # not `dest`: apt leaves out files already there
        )
        for line in out.stdout.splitlines():
            m = re.match(r"'(\S+)' (\S+\.orig\.tar\.\w+) \d+ (SHA256:[0-9a-f]+)", line)
            if m:
                url, name, digest = m.groups()
                break
        else:
            raise BuildError(step, f"no orig tarball for {package} {version} in {self.suite}")
        dest.mkdir(parents=True, exist_ok=True)
        tarball = dest / name
        if not tarball.exists():
            progress(step, f"downloading {name}")
            part = dest / f"{name}.part"
            run(
                ["/usr/lib/apt/apt-helper", "download-file", url, part, digest],
                step,
                timeout=timeout,
            )
            part.replace(tarball)
        return tarball
