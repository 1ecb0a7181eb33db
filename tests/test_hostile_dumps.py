"""Damaged dumps degrade in every command (issue 15, rules 5 and 6).

The damaged corpus is generated here from a real dump (the shipped example, a
kdump-compressed zlib vmcore of the corpus's ``null-deref-lean`` scenario): one bit
flipped in a page bitmap, ten header bytes flipped, zeroed blocks of page data and
of the page-descriptor table, random bit flips in the page data, and the file cut
at several points.  Every crash command must print what it can read and exit 0 or
4 ("partial", each unreadable fact listed on stderr as ``kcrash: partial: …``) —
never 3 (an internal error) — or, when the damage leaves nothing to open (the
block size or the VMCOREINFO note destroyed, the page table cut), refuse in one
line with exit 2.  No output may say ``0 bytes`` for memory it could not read.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hostile import (
    EXAMPLE,
    RAW_CONTROL,
    flip_bit,
    kcrash,
    kdump_offsets,
    loop_module_list,
    truncate,
    zero_block,
)

COMMANDS = ("sys", "bt", "ps", "mod", "log")

#: name -> (how to make it from the example, why a one-line refusal is right or None)
_OFF = kdump_offsets(EXAMPLE)


def _flip_bytes(offset: int, n: int = 10):  # type: ignore[no-untyped-def]
    def make(src: Path, dst: Path) -> None:
        data = bytearray(src.read_bytes())
        for i in range(n):
            data[offset + i] ^= 0xFF
        dst.write_bytes(bytes(data))

    return make


def _random_flips(seed: int, count: int):  # type: ignore[no-untyped-def]
    def make(src: Path, dst: Path) -> None:
        data = bytearray(src.read_bytes())
        rnd = random.Random(seed)
        for _ in range(count):
            data[rnd.randrange(_OFF["page_data"], len(data))] ^= 1 << rnd.randrange(8)
        dst.write_bytes(bytes(data))

    return make


DAMAGE = {
    # one bit of the second bitmap: every later page descriptor is off by one
    "bitmap2-bit-early": (lambda s, d: flip_bit(s, d, _OFF["bitmap2"] + 100, 3), None),
    "bitmap2-bit-late": (lambda s, d: flip_bit(s, d, _OFF["bitmap2"] + 2000, 5), None),
    "bitmap2-bit-first": (lambda s, d: flip_bit(s, d, _OFF["bitmap2"] + 8, 0), None),
    "bitmap1-bit": (lambda s, d: flip_bit(s, d, _OFF["bitmap1"] + 100, 3), None),
    # ten bytes of headers
    "header-utsname": (_flip_bytes(0x100), None),
    "header-block-size": (_flip_bytes(424), "invalid block size"),
    "subheader-phys-base": (_flip_bytes(_OFF["sub_header"]), None),
    "subheader-vmcoreinfo": (_flip_bytes(_OFF["sub_header"] + 40), "no VMCOREINFO"),
    # zeroed blocks
    "zero-page-data-64k": (
        lambda s, d: zero_block(s, d, _OFF["page_data"] + 4096 * 50, 65536),
        None,
    ),
    "zero-page-data-1m-middle": (
        lambda s, d: zero_block(s, d, _OFF["size"] // 2, 1 << 20),
        None,
    ),
    "zero-descriptors-4k": (lambda s, d: zero_block(s, d, _OFF["descriptors"] + 24000, 4096), None),
    "random-flips": (_random_flips(15, 40), None),
    # a module list that loops (drgn's helpers never returned: every command hung)
    "module-list-loop": (loop_module_list, None),
    # cut short: in the page data (read as far as it goes) or in the page table (refused)
    "truncated-98.5": (lambda s, d: truncate(s, d, 0.985), None),
    "truncated-70": (lambda s, d: truncate(s, d, 0.70), None),
    "truncated-33": (lambda s, d: truncate(s, d, 0.33), None),
    "truncated-in-page-table": (
        lambda s, d: truncate(s, d, (_OFF["descriptors"] + 24 * 100) / _OFF["size"]),
        "truncated",
    ),
}


@pytest.fixture(scope="module")
def damaged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("damaged")
    out = {}
    for name, (make, _) in DAMAGE.items():
        out[name] = root / f"{name}.vmcore"
        make(EXAMPLE, out[name])
        assert out[name].read_bytes() != EXAMPLE.read_bytes()
    return out


def _check(name: str, cmd: str, p: subprocess.CompletedProcess[str]) -> str | None:
    """One problem with a command's outcome on a damaged dump, or None."""
    refusal = DAMAGE[name][1]
    where = f"{name}: kcrash {cmd}: exit {p.returncode}"
    if "Traceback" in p.stderr or "internal error" in p.stderr:
        return f"{where}: {p.stderr.strip()[-300:]}"
    if RAW_CONTROL.search(p.stdout + p.stderr):
        return f"{where}: raw control character in the output"
    if re.search(r"MEMORY:?\s+0 bytes", p.stdout):  # sys's and the report's MEMORY row
        return f"{where}: memory shown as 0 bytes"
    if refusal is not None:
        lines = p.stderr.strip().splitlines()
        if p.returncode != 2 or len(lines) != 1 or refusal not in lines[0]:
            return f"{where}: expected a one-line refusal ({refusal}): {p.stderr.strip()[:300]}"
        return None
    if p.returncode == 0:
        return None
    if p.returncode == 4:
        partial = [ln for ln in p.stderr.splitlines() if ln.startswith("kcrash: partial: ")]
        return None if partial else f"{where}: partial status without the list of what is missing"
    return f"{where}: {p.stderr.strip()[:300]}"


def test_crash_commands_degrade_on_every_damaged_dump(damaged: dict[str, Path]) -> None:
    problems = []
    partial = 0
    for name, path in damaged.items():
        for cmd in COMMANDS:
            p = kcrash(cmd, str(path))
            partial += p.returncode == 4
            problem = _check(name, cmd, p)
            if problem:
                problems.append(problem)
    assert not problems, "\n".join(problems)
    assert partial >= 10, "the damage should leave some facts unreadable"  # not a no-op


def test_analyze_degrades_on_every_damaged_dump(damaged: dict[str, Path]) -> None:
    problems = []
    for name, path in damaged.items():
        p = kcrash("analyze", str(path))
        problem = _check(name, "analyze", p)
        if problem:
            problems.append(problem)
        elif p.returncode not in (0, 2):
            problems.append(f"{name}: analyze exit {p.returncode}")
    assert not problems, "\n".join(problems)


def test_unreadable_sys_fields_are_shown_as_unknown(damaged: dict[str, Path]) -> None:
    """One bitmap bit off: sys prints the fields it can read and says which it cannot."""
    p = kcrash("sys", str(damaged["bitmap2-bit-early"]))
    assert p.returncode == 4, p.stderr
    assert "RELEASE: 6.1.0-56-amd64" in p.stdout
    assert "MEMORY: (unknown: " in p.stdout, p.stdout
    assert "kcrash: partial: sys MEMORY: " in p.stderr


def test_truncated_dump_is_read_as_far_as_it_goes(damaged: dict[str, Path]) -> None:
    """Cut at 98.5 % (crash reads such a dump): the log and the verdict are all there,
    and every command says how many pages are missing."""
    path = str(damaged["truncated-98.5"])
    p = kcrash("log", path)
    assert p.returncode == 4
    assert "BUG: kernel NULL pointer dereference, address: 0000000000000074" in p.stdout
    assert "kcrash: partial: dump truncated:" in p.stderr and "pages are missing" in p.stderr
    p = kcrash("sys", path)
    assert "[TRUNCATED]" in p.stdout
    p = kcrash("analyze", path, "-f", "json")
    assert p.returncode == 0

    report = json.loads(p.stdout)
    assert report["verdict"]["class"] == "null-deref"
    assert any("truncated" in x for x in report["input"]["lacks"])


@pytest.mark.corpus
def test_truncated_elf_dump_is_read_as_far_as_it_goes(
    corpus: list[dict[str, Any]], tmp_path: Path
) -> None:
    """An ELF vmcore (/proc/vmcore copied) cut at 98.5 %: its notes are at the start, so
    every command reads what is there and says how much memory is missing."""
    e = next(x for x in corpus if x["format"] == "elf" and x["scenario"] == "null-deref")
    cut = tmp_path / "cut.elf"
    truncate(Path(e["path"]), cut, 0.985)
    for cmd in COMMANDS:
        p = kcrash(cmd, str(cut))
        assert p.returncode in (0, 4) and "internal error" not in p.stderr, (cmd, p.stderr)
        assert "kcrash: partial: dump truncated:" in p.stderr, (cmd, p.stderr)
    p = kcrash("log", str(cut))
    assert "BUG: kernel NULL pointer dereference, address: 0000000000000074" in p.stdout
