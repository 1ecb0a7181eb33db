"""Command line: ``python -m kcrash_corpus {build,adopt,bump,verify,list}``."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from . import CorpusMissingError, cache_root, load
from .util import BuildError, sha256_file

EXAMPLE_ID = "deb12/null-deref-lean/kdump-zlib"
EXAMPLE_MAX_BYTES = 20 * 1000 * 1000


def _verify(root: Path) -> int:
    """Hash every dump against the manifest (slow: reads every byte, about 2 GB)."""
    bad = 0
    entries = load(root)
    for e in entries:
        path = Path(e["path"])
        if not path.exists():
            print(f"MISSING {e['id']}: {path}")
            bad += 1
        elif sha256_file(path) != e["sha256"]:
            print(f"CHANGED {e['id']}: sha256 differs")
            bad += 1
        else:
            print(f"ok      {e['id']}")
    print(f"{len(entries) - bad}/{len(entries)} dumps verified")
    return 1 if bad else 0


def _export_example(root: Path, dest: Path, entry_id: str) -> int:
    """Copy one small dump and its vmcore-dmesg.txt into the source tree (kcrash's first-run
    example needs no debuginfo download), and say where it came from."""
    entry = next((e for e in load(root) if e["id"] == entry_id), None)
    if entry is None:
        print(f"kcrash_corpus: no entry {entry_id} in the manifest", file=sys.stderr)
        return 2
    if entry["size"] > EXAMPLE_MAX_BYTES:
        print(f"kcrash_corpus: {entry_id} is {entry['size']} bytes, over 20 MB", file=sys.stderr)
        return 2
    dest.mkdir(parents=True, exist_ok=True)
    name = entry["scenario"].removesuffix("-lean")
    shutil.copyfile(entry["path"], dest / f"{name}.vmcore")
    if entry["dmesg"]:
        shutil.copyfile(entry["dmesg"], dest / "vmcore-dmesg.txt")
    print(
        f"{entry_id}: {entry['release']} build id {entry['build_id']}, "
        f"{entry['size']} bytes, sha256 {entry['sha256']}, {entry['written_by']}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kcrash_corpus", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build the corpus, reusing what is cached")
    b.add_argument("--jobs", type=int, default=2, help="guests/oracles in parallel (default 2)")
    b.add_argument(
        "--only",
        nargs="*",
        help="boot ids or globs, e.g. 'deb12/null-deref/*'; `live`: the live tests' root fs",
    )
    b.add_argument(
        "--no-ps-trixie", action="store_true", help="skip crash 8.0.6's ps (the ps-trixie oracle)"
    )
    a = sub.add_parser(
        "adopt", help="copy the finished boots another cache built (hard links) into this one"
    )
    a.add_argument("source", type=Path, help="the other cache, e.g. /work/corpus-NAME")
    a.add_argument("--only", nargs="*", help="boot ids or globs, e.g. 'deb12/abba-deadlock/*'")
    bp = sub.add_parser(
        "bump", help="move a kernel's pin to Debian's newest build, rebuild it, compare"
    )
    bp.add_argument("kernel", help="a name of tables.KERNELS, e.g. deb12")
    bp.add_argument("--jobs", type=int, default=2, help="guests/oracles in parallel (default 2)")
    sub.add_parser("verify", help="check every dump's sha256 against the manifest")
    sub.add_parser("list", help="list the manifest's entries")
    sub.add_parser("root", help="print the cache root")
    x = sub.add_parser("export-example", help="copy the small example dump (issue 5) to DEST")
    x.add_argument("dest", type=Path, help="directory, e.g. src/kcrash/examples")
    x.add_argument("--id", default=EXAMPLE_ID, help=f"entry id (default {EXAMPLE_ID})")
    args = parser.parse_args(argv)
    root = cache_root()
    try:
        if args.cmd == "build":
            from .build import Builder

            t0 = time.monotonic()
            rc = Builder(root, args.jobs, args.only, not args.no_ps_trixie).build()
            print(f"build finished in {time.monotonic() - t0:.0f}s, root {root}", file=sys.stderr)
            return rc
        if args.cmd == "adopt":
            from .adopt import adopt

            return adopt(root, args.source, args.only)
        if args.cmd == "bump":
            from .bump import bump

            return bump(root, args.kernel, args.jobs)
        if args.cmd == "verify":
            return _verify(root)
        if args.cmd == "list":
            for e in load(root):
                print(f"{e['id']:45} {e['size'] / 1e6:8.1f} MB  {e['expected']['class']}")
            return 0
        if args.cmd == "export-example":
            return _export_example(root, args.dest, args.id)
        print(root)
        return 0
    except (BuildError, CorpusMissingError) as exc:
        print(f"kcrash_corpus: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
