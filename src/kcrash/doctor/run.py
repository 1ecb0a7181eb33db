"""Run the check table over a host and render the checklist (text or JSON).

Why separate from the table: the table is what we check; this is how a
result is shown — ✓ / ✗ / ⚠ (and · for information), one line of what was
found, and for anything not fine one line of why and the exact fix for this
host's distribution (all three families when it is unknown).
"""

from __future__ import annotations

import json
import os
import traceback
from dataclasses import asdict, dataclass, field

from ..target.fetch.distro import FAMILIES, FAMILY_NAMES, is_ubuntu_release
from .checks import CHECKS, Check
from .host import Host
from .verdicts import FAIL, INFO, OK, WARN, Verdict

SYMBOLS = {OK: "✓", FAIL: "✗", WARN: "⚠", INFO: "·"}


@dataclass
class Result:
    id: str
    title: str
    status: str
    detail: str
    why: str
    reads: list[str]
    fix: dict[str, str] = field(default_factory=dict)  # family -> command, filled in


@dataclass
class Report:
    root: str
    distribution: str
    family: str | None
    release: str | None
    build_id: str | None
    ready: bool
    results: list[Result]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False)


class _Keep(dict):  # type: ignore[type-arg]
    """``format_map`` mapping that leaves unknown ``{names}`` as they are."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def template_values(h: Host) -> dict[str, object]:
    """Values every fix command may use: ``{release}``, ``{kernel_package}``, ``{dbg_package}``."""
    from ..target.fetch.deb import package_names

    release = h.release or "$(uname -r)"
    ubuntu = "ubuntu" in h.os_name.lower() or (h.release and is_ubuntu_release(h.release))
    arch = os.uname().machine if h.live else "x86_64"
    deb_arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(arch, arch)
    return {
        "release": release,
        "kernel_package": "linux-image-generic" if ubuntu else f"linux-image-{deb_arch}",
        "dbg_package": package_names(release)[0] if h.release else "linux-image-$(uname -r)-dbg",
    }


def _judge(check: Check, h: Host) -> Verdict:
    try:
        return check.verdict(h)
    except Exception as e:  # one broken check must not hide the others
        if os.environ.get("KCRASH_DEBUG"):
            traceback.print_exc()
        return Verdict(WARN, f"check failed: {type(e).__name__}: {e}")


def run(root: str = "/", family: str | None = None) -> Report:
    """Judge every row of :data:`CHECKS` on the host under ``root``."""
    h = Host(root, family)
    base = template_values(h)
    results: list[Result] = []
    status: dict[str, str] = {}
    titles = {c.id: c.title for c in CHECKS}
    for check in CHECKS:
        verdict = _judge(check, h)
        status[check.id] = verdict.status
        if check.needs and status.get(check.needs) == FAIL and verdict.status in (FAIL, WARN):
            verdict.detail += f" (fix '{titles[check.needs]}' first)"
        fix: dict[str, str] = {}
        if verdict.status != OK:
            values = _Keep({**base, **verdict.values})
            families = [h.family] if h.family else list(FAMILIES)
            fix = {f: check.fix[f].format_map(values) for f in families if f in check.fix}
        results.append(
            Result(
                check.id,
                check.title,
                verdict.status,
                verdict.detail,
                check.why,
                list(check.reads),
                fix,
            )
        )
    ready = not any(r.status == FAIL for r in results)
    return Report(h.root, h.os_name, h.family, h.release, h.build_id, ready, results)


def render_text(report: Report, *, verbose: bool = False) -> str:
    fam = FAMILY_NAMES.get(report.family or "", "family unknown: fixes for all")
    lines = [
        f"kcrash doctor: {report.distribution} ({fam}), kernel {report.release or '?'}"
        + (f", root {report.root}" if report.root != "/" else ""),
        "",
    ]
    width = max(len(r.title) for r in report.results)
    for r in report.results:
        lines.append(f"{SYMBOLS[r.status]} {r.title:<{width}}  {r.detail}")
        if r.status in (FAIL, WARN) or verbose:
            lines.append(f"  {'':<{width}}  why: {r.why}")
        if r.status in (FAIL, WARN) or (verbose and r.fix):
            for f, cmd in r.fix.items():
                label = "fix" if len(r.fix) == 1 else f"fix ({FAMILY_NAMES[f]})"
                lines.append(f"  {'':<{width}}  {label}: {cmd}")
    fails = sum(r.status == FAIL for r in report.results)
    warns = sum(r.status == WARN for r in report.results)
    lines.append("")
    if report.ready:
        lines.append(f"READY: this host will capture a kernel crash dump ({warns} warning(s))")
    else:
        lines.append(f"NOT READY: {fails} problem(s) ✗ to fix, {warns} warning(s) ⚠")
    return "\n".join(lines)
