"""The hostile-input corpus, generated from real dumps and real log text by the tests.

Nothing here is a mock: every damaged or hostile dump is a copy of a real vmcore
(the shipped example, a kdump-compressed zlib dump of the corpus's
``null-deref-lean`` scenario) with bytes changed the way an attacker or a broken
disk changes them, written to a temporary directory:

- :func:`patch_kdump_pages` rewrites bytes *inside the dump's memory*: it walks the
  page descriptors of a kdump-compressed file, decompresses each page, and where a
  page holds a needle (a printk record's text, a symbol name in the module's
  kallsyms, the module's name) writes the patched page uncompressed at the end of
  the file and points that page's descriptor at it (makedumpfile stores pages it
  cannot compress the same way, flags 0);
- :func:`flip_bit`, :func:`zero_block`, :func:`truncate` damage the file itself.

Payloads are the control sequences that drive a terminal or a page: OSC title
change, screen clear, OSC 8 hyperlink, a C1 CSI, a bidi override, and Markdown/HTML
that would run or fetch something.
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path

SRC = str(Path(__file__).parents[1] / "src")
EXAMPLE = Path(__file__).parents[1] / "src" / "kcrash" / "examples" / "null-deref.vmcore"


def kcrash(
    *args: str, stdin: str | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run this tree's ``kcrash`` as a user would (stdin empty unless given)."""
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        [sys.executable, "-m", "kcrash", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        env=env,
    )


#: Every control character class the sanitiser must stop (one of each kind).
ESC_CLEAR = "\x1b[2J"  # CSI: clear the screen
OSC_TITLE = "\x1b]0;pwned\x07"  # OSC: set the window title
OSC8_LINK = "\x1b]8;;http://e.x/\x07"  # OSC 8 hyperlink (short: fits in a symbol name)
C1_CSI = "\u009b31m"  # a one-character CSI (C1)
BIDI = "\u202e"  # right-to-left override
PAYLOADS = (ESC_CLEAR, OSC_TITLE, OSC8_LINK, C1_CSI, BIDI, "\r", "\x07", "\x08")
MARKDOWN_PAYLOADS = (
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "![x](http://evil.example/t.png)",
    "[click](javascript:alert(1))",
    "a | b | c",
)

#: A raw control character (C0 but TAB/LF, DEL, C1) or a bidi control.
RAW_CONTROL = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


def same_length(payload: bytes, original: bytes, pad: bytes = b"_") -> bytes:
    """``payload`` padded to ``original``'s length: records keep their lengths."""
    assert len(payload) <= len(original), (payload, original)
    return payload + pad * (len(original) - len(payload))


def _kdump_layout(data: bytes) -> tuple[int, int, int]:
    """(block size, offset of the page descriptors, number of dumped pages)."""
    assert data[:8] in (b"KDUMP   ", b"DISKDUMP"), "not a kdump-compressed file"
    block_size, sub_hdr_size, bitmap_blocks = struct.unpack_from("<iiI", data, 428)
    bitmap_off = block_size * (1 + sub_hdr_size)
    half = bitmap_blocks * block_size // 2
    npages = int.from_bytes(data[bitmap_off + half : bitmap_off + 2 * half], "little").bit_count()
    return block_size, bitmap_off + bitmap_blocks * block_size, npages


def patch_kdump_pages(src: Path, dst: Path, replacements: dict[bytes, bytes]) -> int:
    """Copy ``src`` to ``dst`` with every occurrence of each key in its *memory* replaced.

    Returns how many pages were patched (the caller asserts it found its needles).
    """
    data = bytearray(src.read_bytes())
    _bs, desc_off, npages = _kdump_layout(bytes(data))
    patched = 0
    tail = bytearray()
    for i in range(npages):
        at = desc_off + 24 * i
        offset, size, flags, page_flags = struct.unpack_from("<qIIQ", data, at)
        raw = bytes(data[offset : offset + size])
        if flags & 0x1:
            page = zlib.decompress(raw)
        elif flags == 0:
            page = raw
        else:  # lzo/snappy/zstd pages: the example is zlib
            continue
        new = page
        for old, rep in replacements.items():
            assert len(old) == len(rep), (old, rep)
            new = new.replace(old, rep)
        if new == page:
            continue
        new_off = len(data) + len(tail)
        tail += new
        struct.pack_into("<qIIQ", data, at, new_off, len(new), 0, page_flags)
        patched += 1
    dst.write_bytes(bytes(data + tail))
    return patched


def flip_bit(src: Path, dst: Path, byte: int, bit: int = 0) -> None:
    data = bytearray(src.read_bytes())
    data[byte] ^= 1 << bit
    dst.write_bytes(bytes(data))


def zero_block(src: Path, dst: Path, offset: int, size: int) -> None:
    data = bytearray(src.read_bytes())
    data[offset : offset + size] = bytes(min(size, len(data) - offset))
    dst.write_bytes(bytes(data))


def truncate(src: Path, dst: Path, fraction: float) -> None:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])


def kdump_offsets(src: Path) -> dict[str, int]:
    """Where the parts of a kdump-compressed file are (to aim the damage)."""
    data = src.read_bytes()
    block_size, desc_off, npages = _kdump_layout(data)
    _bs, sub_hdr_size, bitmap_blocks = struct.unpack_from("<iiI", data, 428)
    bitmap_off = block_size * (1 + sub_hdr_size)
    first_data = struct.unpack_from("<q", data, desc_off)[0]
    return {
        "header": 0,
        "sub_header": block_size,
        "bitmap1": bitmap_off,
        "bitmap2": bitmap_off + bitmap_blocks * block_size // 2,
        "descriptors": desc_off,
        "pages": npages,
        "page_data": first_data,
        "size": len(data),
    }


def loop_module_list(src: Path, dst: Path) -> None:
    """Make the dump's module list loop: one module's ``list.next`` points back to an
    earlier module (as a stray write or a bad page leaves it), found with drgn."""
    from drgn.helpers.linux.module import for_each_module

    from kcrash.target.open import open_target

    prog = open_target(str(src), no_debuginfo=True).prog
    mods = list(for_each_module(prog))
    assert len(mods) > 6, "the dump needs a few modules"
    earlier = mods[2].list.address_of_().value_()
    later = mods[6].list.address_of_().value_()
    # every pointer to the later entry now points to the earlier one: mods[5] -> mods[2]
    n = patch_kdump_pages(src, dst, {later.to_bytes(8, "little"): earlier.to_bytes(8, "little")})
    assert n > 0
