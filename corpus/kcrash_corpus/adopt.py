"""Adopt boots another cache built: ``python -m kcrash_corpus adopt SRC_CACHE [--only GLOB…]``.

New scenarios are built in private caches (a ``cp -al`` of the shared one, see
/work/notes/corpus-private.md) so that nobody's tests read a half-built boot; adopting copies
the finished boots into this cache instead of building them a second time (a boot is minutes
of TCG).  What is copied, as hard links when both caches are on one file system:

- each boot's directory (``dumps/<kernel>/<scenario>/<capture>/``: dumps, crash's oracle
  files, console and dmesg);
- the files of its kernel this cache lacks: ``kernels/<k>/debug-modules/*.ko`` and
  ``kernels/<k>/extra-*/`` (an extra test module's build), or the whole ``kernels/<k>/`` of a
  kernel this cache has not prepared;
- a scenario's host-readiness tree (``hosts/<tree>/``) when this cache has none.

The stored paths are absolute (result.json, and crash's own ``KERNEL:``/``DUMPFILE:`` lines,
which the tests compare with kcrash's), so every path under the source's root is rewritten to
this root: a rewritten file is written new and renamed into place, never written through a
hard link into the source cache.  The manifest is then rewritten from the boots on disk, under
the build lock.

A boot is adopted only when this tree's tables would build exactly it: the guest recipe and
each oracle recipe the code here computes must equal the ones stored with the boot, and its
kernel must be the same prepared kernel.  Otherwise adopt refuses (one line per boot) and
copies nothing: a boot under a recipe this code does not produce would be rebuilt by the next
``build`` anyway, or worse, kept while the code says otherwise.
"""

from __future__ import annotations

import errno
import filecmp
import fnmatch
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .build import Boot, Builder, build_lock, plan
from .kernel import KernelState
from .trixie import SUITE as TRIXIE_SUITE
from .trixie import TrixieTools
from .util import BuildError, progress, read_json, rm_rf

STEP = "adopt"
#: (old, new) path prefixes.
Moves = set[tuple[str, str]]
#: The paths kernel.json stores (and the manifest repeats for every entry).
KPATHS = ("vmlinux", "vmlinuz", "initrd", "modules_debug_dir")
#: Files of a boot directory that hold absolute paths of the cache (rewritten when copied):
#: result.json (dumps, oracle files, dmesg, console, host tree) and crash's outputs under
#: oracle/ (``KERNEL:``, ``DUMPFILE:``, crash's own stdout/stderr).
TEXT_SUFFIXES = (".json", ".txt", ".stdout", ".stderr")


@dataclass
class Plan:
    """What one adopt will do, decided before anything is copied."""

    boots: list[tuple[Boot, Path]] = field(default_factory=list)  #: (boot, source boot dir)
    kernels: dict[str, Path] = field(default_factory=dict)  #: whole kernel dirs to copy
    kernel_files: dict[Path, Path] = field(default_factory=dict)  #: dest file -> source file
    hosts: dict[Path, Path] = field(default_factory=dict)  #: dest tree -> source tree
    #: boot id or kernel name -> (old, new) path prefixes its files' text must change
    moves: dict[str, Moves] = field(default_factory=dict)
    here: list[str] = field(default_factory=list)  #: already in this cache, identical
    refused: list[str] = field(default_factory=list)


def _link_or_copy(src: Path, dst: Path) -> None:
    """A hard link when both are on one file system, else a copy (sparse files stay sparse
    with a link; a copy across file systems is what remains)."""
    try:
        os.link(src, dst)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
            raise
        shutil.copy2(src, dst)


def _rewrite_text(text: str, moves: Moves) -> str:
    for old, new in sorted(moves, key=lambda m: len(m[0]), reverse=True):
        text = text.replace(old, new)
    return text


def _copy_tree(src: Path, dst: Path, moves: Moves) -> None:
    """``src`` to ``dst`` (which must not exist): a text file holding one of the old paths of
    ``moves`` is written new with the new ones, every other file is linked."""
    for dirpath, _dirs, files in os.walk(src):
        rel = Path(dirpath).relative_to(src)
        (dst / rel).mkdir(parents=True, exist_ok=True)
        for name in files:
            s, d = Path(dirpath, name), dst / rel / name
            if s.is_symlink():
                d.symlink_to(os.readlink(s))
                continue
            if name.endswith(TEXT_SUFFIXES) and s.stat().st_size < (16 << 20):
                text = s.read_text(errors="surrogateescape")
                new = _rewrite_text(text, moves)
                if new != text:
                    d.write_text(new, errors="surrogateescape")
                    shutil.copystat(s, d)
                    continue
            _link_or_copy(s, d)


def _place(src: Path, dst: Path, moves: Moves) -> None:
    """Copy a tree aside, then swap it in: a reader never sees half of it."""
    tmp = dst.with_name(f".{dst.name}.adopt")
    rm_rf(tmp)
    _copy_tree(src, tmp, moves)
    rm_rf(dst)
    tmp.replace(dst)


def _moved(path: str, marker: str, base: Path) -> str:
    """``path`` (stored under whichever cache root) moved to ``base``: the part after
    ``marker``, e.g. ``/kernels/deb12/``, is kept."""
    i = path.find(marker)
    return str(base / path[i + len(marker) :]) if i >= 0 else path


def _source_boots(src: Path) -> list[str]:
    """Boot ids of the source cache: every ``dumps/<k>/<scenario>/<capture>/result.json``."""
    return sorted(
        str(p.parent.relative_to(src / "dumps")) for p in (src / "dumps").glob("*/*/*/result.json")
    )


def _complete(result: dict[str, Any], boot: Boot) -> str | None:
    """Why a source boot is not finished (None when it is)."""
    if set(result.get("dumps", {})) != set(boot.formats):
        return f"has formats {sorted(result.get('dumps', {}))}, the tables ask {list(boot.formats)}"
    for fmt, d in result["dumps"].items():
        if not Path(d["path"]).exists():
            return f"its {fmt} dump {d['path']} is missing"
        if "oracle" not in d or not all(Path(p).exists() for p in d["oracle"].values()):
            return f"its {fmt} dump has no crash oracle yet (still building?)"
    return None


def _trixie(root: Path) -> TrixieTools | None:
    stamp = read_json(root / "tools" / TRIXIE_SUITE / "tools.json")
    return TrixieTools(root / "tools" / TRIXIE_SUITE, stamp["versions"]) if stamp else None


def _same_as_here(builder: Builder, boot: Boot, result: dict[str, Any]) -> bool:
    """This cache already holds the same build of the boot (a cp -al copy shares it)."""
    mine = read_json(builder.boot_dir(boot) / "result.json")
    if not mine or mine.get("guest_recipe") != result["guest_recipe"]:
        return False
    for fmt, d in result["dumps"].items():
        m = mine["dumps"].get(fmt)
        if not m or m.get("sha256") != d["sha256"] or not Path(m["path"]).exists():
            return False
        if m.get("oracle_recipe") != d.get("oracle_recipe") or "oracle" not in m:
            return False
    return True


def _kernel_files(src_k: Path, dest_k: Path, out: Plan, bid: str) -> None:
    """The debug .ko files and extra-module builds of a kernel this cache lacks; a file both
    have must be the same (a different build of one module would not match the dumps)."""
    for sub in [src_k / "debug-modules", *sorted(src_k.glob("extra-*"))]:
        if not sub.is_dir() or sub.name.startswith("."):
            continue
        for f in sorted(p for p in sub.rglob("*") if p.is_file()):
            d = dest_k / f.relative_to(src_k)
            if not d.exists():
                out.kernel_files.setdefault(d, f)
            elif not filecmp.cmp(f, d, shallow=False):
                out.refused.append(
                    f"{bid}: {d.relative_to(dest_k.parent.parent)} differs between the caches"
                )


def make_plan(builder: Builder, src: Path, only: list[str] | None, boots: dict[str, Boot]) -> Plan:
    """Check every wanted boot of ``src`` against this tree's tables; nothing is written."""
    dest = builder.root
    out = Plan()
    wanted = _source_boots(src)
    if only:

        def hit(bid: str, pattern: str) -> bool:
            return fnmatch.fnmatch(bid, pattern) or bid.startswith(pattern)

        for pattern in only:
            if not any(hit(b, pattern) for b in wanted):
                out.refused.append(f"{pattern}: no boot of {src} matches it")
        wanted = [b for b in wanted if any(hit(b, p) for p in only)]
    for bid in wanted:
        mine, theirs = dest / "dumps" / bid / "result.json", src / "dumps" / bid / "result.json"
        if mine.exists() and filecmp.cmp(mine, theirs, shallow=False):
            # The same build (a cp -al copy shares it), even of a boot the tables dropped.
            out.here.append(bid)
            continue
        boot = boots.get(bid)
        if boot is None:
            out.refused.append(
                f"{bid}: not a boot of this tree's tables (merge the code that adds it first)"
            )
            continue
        result = read_json(src / "dumps" / bid / "result.json")
        why = _complete(result, boot) if result else "its result.json is unreadable"
        if why:
            out.refused.append(f"{bid}: {why}")
            continue
        assert result is not None
        name = boot.kernel.name
        src_kj = read_json(src / "kernels" / name / "kernel.json")
        dest_kj = read_json(dest / "kernels" / name / "kernel.json")
        if not src_kj:
            out.refused.append(f"{bid}: the source has no kernels/{name}/kernel.json")
            continue
        if dest_kj and dest_kj.get("recipe") != src_kj.get("recipe"):
            out.refused.append(
                f"{bid}: kernel {name} was prepared differently (recipe {src_kj.get('recipe')} "
                f"there, {dest_kj.get('recipe')} here)"
            )
            continue
        state = KernelState(**(dest_kj or src_kj))
        grecipe = builder.guest_recipe(boot, state)
        if result.get("guest_recipe") != grecipe:
            out.refused.append(
                f"{bid}: recipe hash {result.get('guest_recipe')} differs from this tree's "
                f"{grecipe} (built by other code than this checkout's tables)"
            )
            continue
        orecipe = builder.oracle_recipe(grecipe, boot.kernel, boot.scenario)
        stale = [f for f, d in result["dumps"].items() if d.get("oracle_recipe") != orecipe]
        if stale:
            out.refused.append(
                f"{bid}: the crash oracle of {', '.join(stale)} has another recipe than this "
                f"tree's {orecipe} (another crash, or built with --no-ps-trixie)"
            )
            continue
        if _same_as_here(builder, boot, result):
            out.here.append(bid)
            continue
        src_k, dest_k = src / "kernels" / name, dest / "kernels" / name
        # The boot's own files, wherever it was built (a copy of a copy keeps the root it was
        # built under), and its kernel's files as this cache has them: crash's KERNEL: line
        # must name the vmlinux the manifest will give.
        moves: Moves = {(f"{src}/dumps/{bid}/", f"{dest}/dumps/{bid}/")}
        for d in result["dumps"].values():
            moves.add((d["path"].rsplit("/", 1)[0] + "/", f"{dest}/dumps/{bid}/"))
        if not dest_kj:
            kmoves = {(src_kj[k], _moved(src_kj[k], f"/kernels/{name}/", dest_k)) for k in KPATHS}
            out.kernels[name] = src_k
            out.moves[name] = kmoves
        else:
            kmoves = {(src_kj[k], dest_kj[k]) for k in KPATHS}
            _kernel_files(src_k, dest_k, out, bid)
        out.moves[bid] = {(a, b) for a, b in moves | kmoves if a != b}
        out.boots.append((boot, src / "dumps" / bid))
        tree = boot.hosts_tree
        have = tree and (dest / "hosts" / tree).is_dir()
        if result.get("host") and tree and not have and (src / "hosts" / tree).is_dir():
            out.hosts[dest / "hosts" / tree] = src / "hosts" / tree
    return out


def adopt(dest: Path, src: Path, only: list[str] | None) -> int:
    """Copy the finished boots of cache ``src`` into cache ``dest`` (see the module's doc)."""
    src, dest = src.expanduser().resolve(), dest.resolve()
    if not (src / "dumps").is_dir():
        raise BuildError(STEP, f"{src} is not a corpus cache (it has no dumps/ directory)")
    if src == dest:
        raise BuildError(STEP, f"{src} is this cache itself (KCRASH_CORPUS names the destination)")
    with build_lock(dest):
        builder = Builder(dest, 1, None, ps_trixie=True)
        builder.trixie = _trixie(dest) or _trixie(src)
        p = make_plan(builder, src, only, {b.id: b for b in plan()})
        if p.refused:
            for line in p.refused:
                print(f"kcrash_corpus adopt: refused {line}")
            print(f"kcrash_corpus adopt: nothing copied ({len(p.refused)} refused)")
            return 2
        for name, src_k in p.kernels.items():
            progress(STEP, f"kernel {name} (whole: this cache has not prepared it)")
            _place(src_k, dest / "kernels" / name, p.moves[name])
        for name in sorted({b.kernel.name for b, _ in p.boots} - set(p.kernels)):
            kj = read_json(dest / "kernels" / name / "kernel.json") or {}
            where = str(kj.get("modules_debug_dir", ""))
            if where and not where.startswith(f"{dest}/"):
                # A cp -al copy's kernel.json names the cache it was copied from: debug files
                # copied here are not the ones its manifest entries point at.
                progress(STEP, f"note: kernels/{name}/kernel.json names {where}, not this cache")
        for d, s in p.kernel_files.items():
            if s.parent.name.startswith("extra-") and not d.parent.exists():
                _place(s.parent, d.parent, set())
            elif not d.exists():
                d.parent.mkdir(parents=True, exist_ok=True)
                tmp = d.with_name(f".{d.name}.adopt")
                rm_rf(tmp)
                _link_or_copy(s, tmp)
                tmp.replace(d)
        for d, s in p.hosts.items():
            _place(s, d, set())
        for boot, sdir in p.boots:
            ddir = builder.boot_dir(boot)
            ddir.parent.mkdir(parents=True, exist_ok=True)
            _place(sdir, ddir, p.moves[boot.id])
            _check_rewritten(ddir, dest)
            progress(STEP, f"{boot.id}: adopted ({len(boot.formats)} dumps)")
        for bid in p.here:
            progress(STEP, f"{bid}: already here")
        builder.write_manifest()
    print(
        f"kcrash_corpus adopt: {len(p.boots)} boots adopted, {len(p.here)} already here, "
        f"manifest {dest / 'manifest.json'}"
    )
    return 0


def _check_rewritten(bdir: Path, dest: Path) -> None:
    """Every path result.json names is under this cache and exists (else undo the boot)."""
    result = read_json(bdir / "result.json") or {}
    paths = [d["path"] for d in result.get("dumps", {}).values()]
    paths += [p for d in result.get("dumps", {}).values() for p in d.get("oracle", {}).values()]
    paths += [result[k] for k in ("dmesg", "console") if result.get(k)]
    bad = [p for p in paths if not p.startswith(str(bdir) + "/") or not Path(p).exists()]
    if bad:
        rm_rf(bdir)
        raise BuildError(STEP, f"{bdir.relative_to(dest)}: after the copy {bad[0]} is not there")
