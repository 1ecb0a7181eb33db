"""Parsers for the outputs of the real ``crash`` saved beside each corpus dump.

The corpus keeps crash 8.0.2's ``sys``, ``bt``, ``bt -a``, ``log``, ``ps``,
``mod`` output (and crash 8.0.6's ``ps`` as ``ps-trixie``) for every dump;
these helpers turn that text into values the tests compare ours with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FRAME_RE = re.compile(r"^\s*#(\d+) \[([0-9a-f]+)\] (\S+) at ([0-9a-f]+)(?: \[(\S+)\])?")
_EXC_RE = re.compile(r"^\s+\[exception RIP: ([^\]+]+)(?:\+(\d+))?\]")
#: arm64's exception frame (crash's arm64_print_exception_frame, KERNEL_MODE):
#: "     PC: ffff800000e20024  [kcrash_get_refcount+36]" then LR, "SP: … PSTATE: …", X29…X0;
#: a user-mode frame is one "PC: …   LR: …   SP: …" line without a name.
_ARM64_PC_RE = re.compile(r"^\s+PC: ([0-9a-f]{16})  \[([^\]+]+)(?:\+(\d+))?\]")
_ARM64_USER_PC_RE = re.compile(r"^\s+PC: [0-9a-f]+   LR: ")


def parse_sys(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(": ")
        if sep and key.strip().isupper():
            out[key.strip()] = value.strip()
    return out


@dataclass
class CrashFrame:
    function: str
    address: int | None
    module: str | None = None
    exception: bool = False
    after_bogus: bool = False  # follows crash's "possibly bogus exception frame"
    bogus: bool = False  # the frame crash warned about
    sp: int | None = None  # the stack slot crash read the return address from
    rsp: int | None = None  # an exception frame's RSP


def parse_bt(text: str) -> list[list[CrashFrame]]:
    """One list of frames per task block; exception RIPs included, marked."""
    tasks: list[list[CrashFrame]] = []
    bogus = False
    for line in text.splitlines():
        if line.startswith("PID:"):
            tasks.append([])
            continue
        if "possibly bogus exception frame" in line:
            bogus = True
            if tasks and tasks[-1]:
                tasks[-1][-1].bogus = True  # the frame (exception or not) it warns about
            continue
        m = _FRAME_RE.match(line)
        if m and tasks:
            tasks[-1].append(
                CrashFrame(
                    m.group(3),
                    int(m.group(4), 16),
                    m.group(5),
                    False,
                    bogus,
                    sp=int(m.group(2), 16),
                )
            )
            bogus = False
            continue
        m = _EXC_RE.match(line)
        if m and tasks:
            tasks[-1].append(CrashFrame(m.group(1), None, exception=True))
            continue
        m = _ARM64_PC_RE.match(line)
        if m and tasks:
            tasks[-1].append(CrashFrame(m.group(2), int(m.group(1), 16), exception=True))
            continue
        m = re.search(r"\b(?:RSP|SP): ([0-9a-f]+)", line)
        if m and tasks and tasks[-1] and tasks[-1][-1].exception and tasks[-1][-1].rsp is None:
            tasks[-1][-1].rsp = int(m.group(1), 16)
    return tasks


def parse_ps(text: str) -> list[dict[str, object]]:
    rows = []
    for line in text.splitlines()[1:]:
        parts = line[1:].split(None, 8)
        if len(parts) < 9 or not parts[0].isdigit():
            continue
        pid, ppid, cpu, task, st, mem, vsz, rss, comm = parts
        rows.append(
            {
                "pid": int(pid),
                "ppid": int(ppid),
                "cpu": int(cpu),
                "task": int(task, 16),
                "state": st,
                "%mem": mem,  # as printed ("%.1f"): the rounding is part of the answer
                "vsz": int(vsz),
                "rss": int(rss),
                "comm": comm.strip(),
                "active": line.startswith(">"),
            }
        )
    return rows


def parse_mod(text: str) -> list[dict[str, object]]:
    rows = []
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 4 and re.fullmatch(r"[0-9a-f]{16}", parts[0]):
            rows.append(
                {
                    "address": int(parts[0], 16),
                    "name": parts[1],
                    "base": int(parts[2], 16),
                    "size": int(parts[3]),
                }
            )
    return rows


def register_blocks(text: str) -> list[list[tuple[str, list[str]]]]:
    """Per task of a ``bt``/``bt -a`` text: (name, register lines) of every register block.

    A block follows ``[exception RIP: func+off]`` (named so) or a frame line
    (the user-mode registers at a system call's entry: named ``user regs
    after <function>``).  crash's "possibly bogus exception frame" marks the
    block before it ``(bogus) …``.
    """
    tasks: list[list[tuple[str, list[str]]]] = []
    current: list[str] | None = None
    last_frame: str | None = None
    for line in text.splitlines():
        if line.startswith("PID:"):
            tasks.append([])
            current, last_frame = None, None
            continue
        if not tasks:
            continue
        blocks = tasks[-1]
        if "possibly bogus exception frame" in line and blocks:
            blocks[-1] = ("(bogus) " + blocks[-1][0], blocks[-1][1])
            continue
        m = re.search(r"\[exception RIP: ([^\]]+)\]", line)
        if m:
            current = []
            blocks.append((m.group(1), current))
            continue
        m = _ARM64_PC_RE.match(line)
        if m:  # arm64: the PC line opens the block and is one of its registers
            current = [f"PC: {m.group(1)}"]
            blocks.append((m.group(2) + (f"+{m.group(3)}" if m.group(3) else ""), current))
            continue
        if _ARM64_USER_PC_RE.match(line):
            current = [" ".join(line.split())]
            blocks.append((f"user regs after {last_frame}", current))
            continue
        if re.match(r"^\s+[A-Z0-9_]+: [0-9a-f]+", line):
            if current is not None and line.lstrip().startswith("LR: "):
                line = line.split("  [")[0]  # arm64 names LR: the value is the register
            if current is None:
                current = []
                blocks.append((f"user regs after {last_frame}", current))
            current.append(" ".join(line.split()))
            continue
        current = None
        fm = _FRAME_RE.match(line)
        last_frame = fm.group(3) if fm else None
    return tasks


_KMEM_S_RE = re.compile(r"^([0-9a-f]{16})\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)k\s+(\S+)\s*$")


def parse_kmem_s(text: str) -> dict[str, dict[str, int]]:
    """crash's ``kmem -s`` (and the first row of ``kmem -S NAME``): name -> the columns
    CACHE, OBJSIZE, ALLOCATED, TOTAL, SLABS, SSIZE (kB)."""
    rows: dict[str, dict[str, int]] = {}
    for line in text.splitlines():
        m = _KMEM_S_RE.match(line)
        if m:
            rows[m.group(7)] = {
                "cache": int(m.group(1), 16),
                "objsize": int(m.group(2)),
                "allocated": int(m.group(3)),
                "total": int(m.group(4)),
                "slabs": int(m.group(5)),
                "ssize_kb": int(m.group(6)),
            }
    return rows


def parse_kmem_slabs(text: str) -> list[dict[str, int]]:
    """The slab rows of crash's ``kmem -S NAME`` (``SLAB MEMORY NODE TOTAL ALLOCATED FREE``,
    per CPU and per node list): crash 8.0.2 lists slabs, not each object, on 6.1."""
    out = []
    for line in text.splitlines():
        m = re.match(
            r"^\s+([0-9a-f]{16})\s+([0-9a-f]{16})\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*$", line
        )
        if m:
            out.append(
                {
                    "slab": int(m.group(1), 16),
                    "memory": int(m.group(2), 16),
                    "total": int(m.group(4)),
                    "allocated": int(m.group(5)),
                    "free": int(m.group(6)),
                }
            )
    return out
