"""Source lines for ``func+0x1a/0x40 [module]`` frames, like ``decode_stacktrace.sh``.

Frames that come from the log (the oops's call trace, a hung task's trace)
carry names and offsets but no addresses; with DWARF loaded we resolve the
symbol, add the offset and ask drgn for the source location.  Return
addresses point after the call, so every frame but the faulting one is looked
up one byte earlier (the call instruction), as ``addr2line`` users do.
"""

from __future__ import annotations

import drgn

from ..model import Frame
from ..target.frame_labels import symbol


def frame_address(prog: drgn.Program, frame: Frame) -> int | None:
    """The frame's code address: its own, or symbol + offset."""
    if frame.address is not None:
        return frame.address
    if not frame.function or frame.offset is None:
        return None
    try:
        return symbol(prog, frame.function).address + frame.offset
    except (LookupError, ValueError):
        return None


def source_of(prog: drgn.Program, frame: Frame, return_address: bool) -> str | None:
    """``file:line`` of the frame's function at its address (outermost, not inlined)."""
    addr = frame_address(prog, frame)
    if addr is None:
        return None
    try:
        locs = prog.source_location(addr - 1 if return_address else addr)
    except (LookupError, ValueError):
        return None
    if not len(locs):
        return None
    loc = locs[0]
    if not loc.filename or not loc.line:
        return None
    return f"{loc.filename}:{loc.line}"


def fill_sources(prog: drgn.Program, frames: list[Frame]) -> int:
    """Fill ``source`` on frames that lack it; the first frame is the faulting one."""
    n = 0
    for i, fr in enumerate(frames):
        if fr.source is None:
            fr.source = source_of(prog, fr, return_address=i > 0)
            n += fr.source is not None
    return n
