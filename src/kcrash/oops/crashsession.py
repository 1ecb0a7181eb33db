"""Read text saved from a ``crash`` session: ``sys``, ``bt`` (and ``bt -a``).

People paste crash output into tickets; its ``log`` part is ordinary dmesg
text (handled by the log path), but ``sys`` and ``bt`` have their own shapes
(crash 7.x/8.x):

``sys``::

          KERNEL: /usr/lib/debug/boot/vmlinux-6.1.0-28-amd64
        DUMPFILE: vmcore  [PARTIAL DUMP]
           PANIC: "Kernel panic - not syncing: sysrq triggered crash"
             PID: 1234
         COMMAND: "sh"

``bt``::

    PID: 1234     TASK: ffff9d3b8a6c0000  CPU: 0    COMMAND: "sh"
     #0 [ffffb4f1c0b2fb50] machine_kexec at ffffffff8d06a5d0
     #6 [ffffb4f1c0b2fd10] asm_exc_page_fault at ffffffff8da00b26
        [exception RIP: crashme_write+42]
        RIP: ffffffffc07a502a  RSP: ffffb4f1c0b2fdc0  RFLAGS: 00010246
        RAX: 0000000000000000  RBX: ...
        ORIG_RAX: ffffffffffffffff  CS: 0010  SS: 0018
     #7 [ffffb4f1c0b2fdc0] proc_reg_write at ffffffff8d3... [crashme]

The exception-frame registers become a frame carrying ``regs`` (like drgn's
``pt_regs`` frames), inserted where crash prints them: at the faulting
function.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kcrash.model import Frame, Stack, SystemInfo
from kcrash.sys_rows import CRASH_ROWS, ROWS_BY_LABEL

_SYS_RE = re.compile(
    r"^\s{0,12}(?P<key>"
    + "|".join(re.escape(str(r.label)) for r in CRASH_ROWS)
    + r"): (?P<val>.*?)\s*$"
)
_BT_HEAD_RE = re.compile(
    r"^PID: (?P<pid>\d+)\s+TASK: (?P<task>[0-9a-f]+)\s+CPU: (?P<cpu>\d+)\s+"
    r"COMMAND: \"(?P<comm>[^\"]*)\""
)
_BT_FRAME_RE = re.compile(
    r"^\s*#(?P<n>\d+) \[(?P<sp>[0-9a-f]+)\] (?P<func>\S+) at (?P<addr>[0-9a-f]+)"
    r"(?: \[(?P<mod>[\w-]+)\])?(?:\s+(?P<src>\S+:\d+))?"
)
_BT_EXC_RE = re.compile(r"^\s*\[exception RIP: (?P<sym>[^\]]+)\]")
_BT_REGS_RE = re.compile(r"(?P<name>[A-Z][A-Z0-9_]*): (?P<val>[0-9a-f]+)")
_BT_NOISE_RE = re.compile(
    r"^(?:WARNING: (?:possibly bogus|cannot|multiple|active task)|--- <[^>]+> ---|"
    r"bt: |\s+\[exception|\s*$)"
)
_PROMPT_RE = re.compile(r"^crash(?:64)?> ?(?P<cmd>.*)$")
_SYM_OFF_RE = re.compile(r"^(?P<func>[^+\s]+)(?:\+(?P<off>\d+|0x[0-9a-f]+))?$")


@dataclass
class CrashSession:
    """What the crash-session lines of a text held."""

    system: SystemInfo = field(default_factory=SystemInfo)
    stacks: list[Stack] = field(default_factory=list)
    sys_fields: int = 0
    bt_frames: int = 0
    prompts: int = 0

    @property
    def seen(self) -> bool:
        return self.sys_fields >= 3 or self.bt_frames > 0 or self.prompts > 0


class CrashSessionReader:
    """Feed raw lines; recognise ``sys`` and ``bt`` output among them."""

    MAX_STACKS = 256
    MAX_FRAMES = 512

    def __init__(self) -> None:
        self.out = CrashSession()
        self._stack: Stack | None = None
        self._exc: Frame | None = None

    def feed(self, text: str) -> bool:
        """Consume one line; True when it was crash-session output."""
        m = _PROMPT_RE.match(text)
        if m:
            self.out.prompts += 1
            self._stack = None
            self._exc = None
            return True
        m = _BT_HEAD_RE.match(text)
        if m:
            if len(self.out.stacks) < self.MAX_STACKS:
                self._stack = Stack(
                    pid=int(m.group("pid")),
                    task=int(m.group("task"), 16),
                    cpu=int(m.group("cpu")),
                    comm=m.group("comm"),
                )
                self.out.stacks.append(self._stack)
            self._exc = None
            return True
        if self._stack is not None:
            m = _BT_FRAME_RE.match(text)
            if m:
                self._exc = None
                if len(self._stack.frames) < self.MAX_FRAMES:
                    self._stack.frames.append(
                        Frame(
                            function=m.group("func"),
                            module=m.group("mod"),
                            address=int(m.group("addr"), 16),
                            sp=int(m.group("sp"), 16),
                            source=m.group("src"),
                        )
                    )
                    self.out.bt_frames += 1
                return True
            m = _BT_EXC_RE.match(text)
            if m:
                sm = _SYM_OFF_RE.match(m.group("sym").strip())
                func = sm.group("func") if sm else m.group("sym").strip()
                off = None
                if sm and sm.group("off"):
                    o = sm.group("off")
                    off = int(o, 16) if o.startswith("0x") else int(o)
                mod = None
                # crash prints "[exception RIP: foo+42]" and the module on the frame line
                self._exc = Frame(
                    function=func if not func.startswith("0x") else None,
                    offset=off,
                    module=mod,
                    regs={},
                )
                self._stack.frames.append(self._exc)
                return True
            if self._exc is not None and self._exc.regs is not None and _BT_REGS_RE.search(text):
                for rm in _BT_REGS_RE.finditer(text):
                    name = rm.group("name").lower()
                    if name == "rflags":
                        name = "eflags"
                    self._exc.regs[name] = int(rm.group("val"), 16)
                if "rip" in self._exc.regs:
                    self._exc.address = self._exc.regs["rip"]
                return True
        if self._stack is not None and _BT_NOISE_RE.match(text):
            # crash's own remarks inside bt output ("WARNING: possibly bogus
            # exception frame", "--- <IRQ stack> ---", "bt: ...")
            return True
        m = _SYS_RE.match(text)
        # crash right-aligns labels in 12 columns: a sys line starts with blanks, but for
        # LOAD AVERAGE, which fills them, and KERNEL/DUMPFILE, often pasted without them
        if m and (text.startswith(" ") or m.group("key") in ("KERNEL", "DUMPFILE", "LOAD AVERAGE")):
            self._sys(m.group("key"), m.group("val"))
            return True
        return False

    def _sys(self, key: str, val: str) -> None:
        s = self.out.system
        self.out.sys_fields += 1
        val = val.strip()
        # PANIC: "Oops: 0000 [#1] PREEMPT SMP NOPTI" (check log for details)
        q = re.match(r'^"(?P<v>.*)"', val)
        unq = q.group("v") if q else val
        row = ROWS_BY_LABEL[key]
        try:
            if row.field == "cpus":
                m = re.match(r"(\d+)(?:\s+\[OFFLINE: (\d+)\])?", unq)
                if m:
                    s.cpus = int(m.group(1))
                    s.cpus_offline = int(m.group(2) or 0)
            elif row.parse is not None:
                setattr(s, row.field, row.parse(unq))
        except (ValueError, IndexError):
            return

    def finish(self) -> None:
        """Give exception frames the module of the nearest module frame.

        crash prints ``[exception RIP: foo+5]`` without the module, but prints
        ``[mod]`` on the frame lines of module code; a module's text is
        contiguous, so the module frame closest in address (within 1 MiB,
        in the module area) is the module of the faulting function.
        """
        for st in self.out.stacks:
            mods = [f for f in st.frames if f.module and f.address is not None]
            for f in st.frames:
                if f.regs is None or f.module or f.address is None:
                    continue
                if f.address < 0xFFFFFFFFA0000000:
                    continue
                near = min(mods, key=lambda m: abs((m.address or 0) - f.address), default=None)
                if near is not None and abs((near.address or 0) - f.address) < (1 << 20):
                    f.module = near.module

    def panic_stack(self) -> Stack | None:
        """The panicking task's ``bt``: the one of sys's PID, else the first."""
        st = self.out.stacks
        if not st:
            return None
        pid = self.out.system.pid
        for s in st:
            if pid is not None and s.pid == pid and s.frames:
                return s
        return next((s for s in st if s.frames), st[0])
