"""Where does ``kcrash analyze`` spend its time?  cProfile over one corpus dump.

Usage::

    PYTHONPATH=corpus python bench/profile_analyze.py [--dump ID] [--no-debuginfo] [-n 25]

Why in-process cProfile and not a sampling profiler: most of the time is inside drgn's C
code (DWARF indexing, page reads), which cProfile still attributes to the Python call that
entered it (``Program.load_debug_info``, ``stack_trace``, ``read``) — exactly the granularity
at which a step can be made lazy, parallel or cached.  The import of kcrash/drgn is timed
apart because a profiler started after it cannot see it, yet every CLI run pays it.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dump", default="deb12/null-deref/kdump-zlib", help="corpus id")
    p.add_argument("--path", help="a vmcore outside the corpus (with --vmlinux)")
    p.add_argument("--vmlinux", help="its vmlinux")
    p.add_argument("--no-debuginfo", action="store_true")
    p.add_argument("-n", type=int, default=25, help="rows of each profile table")
    p.add_argument("--save", type=Path, help="also write the raw profile here (pstats)")
    args = p.parse_args(argv)

    if args.path:
        entry = {"path": args.path, "vmlinux": args.vmlinux}
        args.dump = args.path
    else:
        sys.path.insert(0, str(REPO / "corpus"))
        import kcrash_corpus

        entry = next((e for e in kcrash_corpus.load() if e["id"] == args.dump), None)
        if entry is None:
            sys.exit(f"profile: {args.dump} is not in the corpus manifest")

    t0 = time.perf_counter()
    import drgn  # noqa: F401

    from kcrash.pipeline import analyze_path, render_to_string

    t_import = time.perf_counter() - t0

    vmlinux = None if args.no_debuginfo else entry["vmlinux"]
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    report = analyze_path(entry["path"], vmlinux, no_debuginfo=args.no_debuginfo)
    render_to_string(report, "json")
    prof.disable()
    t_run = time.perf_counter() - t0

    print(
        f"# profile of kcrash analyze on {args.dump}"
        f" ({'no debuginfo' if args.no_debuginfo else 'with vmlinux'})"
    )
    print(f"import kcrash.pipeline + drgn: {t_import:.3f} s; analyze + render: {t_run:.3f} s")
    print("\n## steps (the report's own timings)")
    for s in report.get("steps", []):
        extra = f"  ({s.get('reason')})" if s.get("reason") else ""
        print(
            f"  {s.get('name', '?'):<16} {s.get('status', '?'):<8} "
            f"{float(s.get('seconds') or 0):7.3f} s{extra}"
        )
    for key, title in (("cumulative", "by cumulative time"), ("tottime", "by own time")):
        buf = io.StringIO()
        st = pstats.Stats(prof, stream=buf).strip_dirs().sort_stats(key)
        st.print_stats(args.n)
        print(f"\n## {title}\n")
        print("\n".join(buf.getvalue().splitlines()[4:]))
    if args.save:
        prof.dump_stats(str(args.save))
    return 0


if __name__ == "__main__":
    sys.exit(main())
