"""``analyze`` inside the shell: the same report as ``kcrash analyze``, on the open dump."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from drgn import Program
from drgn.commands import argument

from ..report.labels import LANGS
from ..report.render import FORMATS
from .registry import kcrash_command, target_of


@kcrash_command(
    description="why did the kernel crash? (class, culprit, evidence, next steps)",
    arguments=(
        argument("-f", "--format", choices=FORMATS, default="text"),
        argument("--lang", choices=LANGS, default="en"),
    ),
)
def _kcrash_cmd_analyze(prog: Program, name: str, args: argparse.Namespace, **kwargs: Any) -> None:
    from ..pipeline import analyze_target
    from ..report.render import write_report

    report = analyze_target(target_of(prog), lang=args.lang)
    # the renderers made every value visible; the colour codes are ours (written trusted)
    write_report(report, args.format, sys.stdout, color=sys.stdout.isatty())
