"""Optional symbolisation of oops text: ``func+0x1a/0x40 [mod]`` -> ``file:line``.

What the kernel's ``scripts/decode_stacktrace.sh`` does, for the text mode
with ``--vmlinux`` (and module debug files): the symbol's address in the
debug file (``nm`` for vmlinux, ``objdump -t`` for a relocatable ``.ko``,
whose symbols are section offsets) plus the frame's offset, fed in one batch
per file to ``addr2line`` (binutils).  Return addresses (call-trace frames)
are looked up at offset - 1 so the line is the call, not the next statement;
the RIP frame at its exact offset.

Best effort and time-bounded: a missing tool, file or symbol leaves the frame
without ``source`` and is listed in the returned problems, never raised.
Static functions with the same name in several files are told apart by the
size the kernel printed (``/0x40``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from kcrash.facts.model import Frame, OopsEvent

TIMEOUT = 60.0
_NM_RE = re.compile(r"^([0-9a-f]+) ([0-9a-f]+) [tTwW] (\S+)$")


@dataclass
class SymbolizeResult:
    resolved: int = 0
    frames: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass
class _Sym:
    section: str | None
    value: int
    size: int


def _run(args: list[str], stdin: str | None = None) -> str:
    out = subprocess.run(
        args, input=stdin, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    return out.stdout


def _vmlinux_symbols(path: str) -> dict[str, list[_Sym]]:
    syms: dict[str, list[_Sym]] = defaultdict(list)
    for ln in _run(["nm", "-S", "--defined-only", path]).splitlines():
        m = _NM_RE.match(ln)
        if m:
            syms[m.group(3)].append(_Sym(None, int(m.group(1), 16), int(m.group(2), 16)))
    return syms


def _module_symbols(path: str) -> dict[str, list[_Sym]]:
    syms: dict[str, list[_Sym]] = defaultdict(list)
    for ln in _run(["objdump", "-t", path]).splitlines():
        parts = ln.split()
        # value flags... section size name
        if len(parts) < 4 or not re.fullmatch(r"[0-9a-f]{8,16}", parts[0]):
            continue
        if "F" not in parts[1:-3]:
            continue
        section, size, name = parts[-3], parts[-2], parts[-1]
        try:
            syms[name].append(_Sym(section, int(parts[0], 16), int(size, 16)))
        except ValueError:
            continue
    return syms


def _pick(cands: list[_Sym], size: int | None) -> _Sym | None:
    if not cands:
        return None
    if size is not None:
        same = [c for c in cands if c.size == size]
        if same:
            return same[0]
    return cands[0]


def find_module_file(name: str, dirs: Iterable[str]) -> str | None:
    """``<name>.ko`` (also with ``-``/``_`` swapped, ``.ko.debug``) under ``dirs``."""
    names = {
        f"{n}{ext}"
        for n in (name, name.replace("_", "-"), name.replace("-", "_"))
        for ext in (".ko", ".ko.debug")
    }
    for d in dirs:
        for root, _dirs, files in os.walk(d):
            for f in files:
                if f in names:
                    return os.path.join(root, f)
    return None


def symbolize_events(
    events: list[OopsEvent], vmlinux: str | None, module_dirs: Iterable[str] = ()
) -> SymbolizeResult:
    """Fill ``Frame.source`` of every RIP and call-trace frame that can be resolved."""
    res = SymbolizeResult()
    tools = [t for t in ("nm", "objdump", "addr2line") if shutil.which(t) is None]
    if tools:
        res.problems.append(f"binutils missing: {', '.join(tools)}")
        return res
    # (file, section) -> [(address, frame)]
    wanted: dict[str, list[tuple[Frame, bool]]] = defaultdict(list)
    for ev in events:
        frames = ([(ev.rip, True)] if ev.rip else []) + [(f, False) for f in ev.call_trace]
        for fr, exact in frames:
            if fr.function and fr.offset is not None and fr.source is None:
                wanted[fr.module or "vmlinux"].append((fr, exact))
                res.frames += 1
    dirs = list(module_dirs)
    for mod, frames in wanted.items():
        path = vmlinux if mod == "vmlinux" else find_module_file(mod, dirs)
        if not path or not os.path.exists(path):
            res.problems.append(f"{mod}: no debug file")
            continue
        try:
            syms = _vmlinux_symbols(path) if mod == "vmlinux" else _module_symbols(path)
            res.resolved += _resolve(path, syms, frames, relocatable=mod != "vmlinux")
        except (OSError, subprocess.SubprocessError) as e:
            res.problems.append(f"{mod}: {e}")
    return res


def _resolve(
    path: str, syms: dict[str, list[_Sym]], frames: list[tuple[Frame, bool]], relocatable: bool
) -> int:
    by_section: dict[str | None, list[tuple[int, Frame]]] = defaultdict(list)
    for fr, exact in frames:
        assert fr.function is not None and fr.offset is not None
        sym = _pick(syms.get(fr.function, []), fr.size)
        if sym is None:
            continue
        off = fr.offset if exact or fr.offset == 0 else fr.offset - 1
        by_section[sym.section if relocatable else None].append((sym.value + off, fr))
    done = 0
    for section, items in by_section.items():
        args = ["addr2line", "-e", path]
        if section:
            args += ["-j", section]
        out = _run(args, "\n".join(f"{a:#x}" for a, _ in items) + "\n").splitlines()
        for (_, fr), loc in zip(items, out, strict=False):
            loc = loc.split(" (discriminator")[0].strip()
            if loc and not loc.startswith("??"):
                fr.source = loc
                done += 1
    return done
