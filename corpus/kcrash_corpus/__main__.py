"""Command line: ``python -m kcrash_corpus {build,verify,list}``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import CorpusMissingError, cache_root, load
from .util import BuildError, sha256_file


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kcrash_corpus", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build the corpus, reusing what is cached")
    b.add_argument("--jobs", type=int, default=2, help="guests/oracles in parallel (default 2)")
    b.add_argument("--only", nargs="*", help="boot ids or globs, e.g. 'deb12/null-deref/*'")
    b.add_argument(
        "--no-ps-trixie", action="store_true", help="skip crash 8.0.6's ps (the ps-trixie oracle)"
    )
    sub.add_parser("verify", help="check every dump's sha256 against the manifest")
    sub.add_parser("list", help="list the manifest's entries")
    sub.add_parser("root", help="print the cache root")
    args = parser.parse_args(argv)
    root = cache_root()
    try:
        if args.cmd == "build":
            from .build import Builder

            t0 = time.monotonic()
            rc = Builder(root, args.jobs, args.only, not args.no_ps_trixie).build()
            print(f"build finished in {time.monotonic() - t0:.0f}s, root {root}", file=sys.stderr)
            return rc
        if args.cmd == "verify":
            return _verify(root)
        if args.cmd == "list":
            for e in load(root):
                print(f"{e['id']:45} {e['size'] / 1e6:8.1f} MB  {e['expected']['class']}")
            return 0
        print(root)
        return 0
    except (BuildError, CorpusMissingError) as exc:
        print(f"kcrash_corpus: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
