"""An ORC unwinder over the tables in the dump's memory (x86-64).

Why: without vmlinux, drgn 0.3.0 unwinds a frame only when it can map the
PC to a module that has ORC; it does read the core kernel's built-in ORC
(``__start_orc_unwind_ip`` …) once the main module has an address range,
and :mod:`kcrash.target.nodebug` arranges that.  This module is the
unwinder of our own for what drgn cannot do without types: the crashed
CPU's stack in kallsyms-only mode (no BTF), and the list of exception
frames (``pt_regs``) with their registers that ``bt`` prints like crash.

Tables (``arch/x86/kernel/unwind_orc.c``): ``__start_orc_unwind_ip`` is an
array of ``s32`` offsets, entry ``i`` covering code from ``&ip[i] + ip[i]``;
``__start_orc_unwind`` the parallel array of 6-byte ``struct orc_entry``;
modules have the same pair in ``struct module.arch`` (``orc_unwind_ip``,
``orc_unwind``, ``num_orcs``), sorted by the kernel at load time.  The core
kernel's table is sorted at build time since 5.6.

``struct orc_entry`` is ``s16 sp_offset; s16 bp_offset;`` then a 16-bit
word of bit-fields whose layout changed:

=============  ====================================================  ========
kernels        bits (LSB first)                                      ORC ver.
=============  ====================================================  ========
4.14 – 6.2     sp_reg:4 bp_reg:4 type:2 end:1                        1
6.3            sp_reg:4 bp_reg:4 type:2 signal:1 end:1               2
6.4 – 7.0      sp_reg:4 bp_reg:4 type:3 signal:1 (type 0 UNDEFINED,  3
               1 END_OF_STACK, 2 CALL, 3 REGS, 4 REGS_PARTIAL)
=============  ====================================================  ========

(Debian 12's 6.1 and Debian 11's 5.10 are both version 1; 6.1's
``orc_types.h`` in linux-headers-6.1.0-56 confirms the layout.)  Register
numbers are those of version 1–3: UNDEFINED 0, PREV_SP 1, DX 2, DI 3, BP 4,
SP 5, R10 6, R13 7, BP_INDIRECT 8, SP_INDIRECT 9.  ``SP_INDIRECT`` means
``*(sp + off)`` before 5.12 and ``*sp + off`` since (objtool's
stack-swizzle); the offsets used are 0 in practice, where both agree.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

# Registers (versions 1-3).
REG_UNDEFINED = 0
REG_PREV_SP = 1
REG_DX = 2
REG_DI = 3
REG_BP = 4
REG_SP = 5
REG_R10 = 6
REG_R13 = 7
REG_BP_INDIRECT = 8
REG_SP_INDIRECT = 9

# Normalised types (drgn's numbering, the kernel's since 6.4).
TYPE_UNDEFINED = 0
TYPE_END_OF_STACK = 1
TYPE_CALL = 2
TYPE_REGS = 3
TYPE_REGS_PARTIAL = 4

# struct pt_regs (x86-64), unchanged since 2.6.
PT_REGS = [
    "r15",
    "r14",
    "r13",
    "r12",
    "rbp",
    "rbx",
    "r11",
    "r10",
    "r9",
    "r8",
    "rax",
    "rcx",
    "rdx",
    "rsi",
    "rdi",
    "orig_rax",
    "rip",
    "cs",
    "rflags",
    "rsp",
    "ss",
]
PT_REGS_SIZE = 8 * len(PT_REGS)

_REG_NAMES = {REG_DX: "rdx", REG_DI: "rdi", REG_R10: "r10", REG_R13: "r13"}

ReadU64 = Callable[[int], int]
ReadBytes = Callable[[int, int], bytes]


@dataclass(frozen=True)
class OrcEntry:
    """One decoded ORC entry, normalised to the 6.4+ meaning of ``type``."""

    sp_offset: int
    bp_offset: int
    sp_reg: int
    bp_reg: int
    type: int
    signal: bool


def orc_version(release: str | None) -> int:
    """The ORC entry layout of a kernel release (see the module table)."""
    if not release:
        return 1
    parts = release.split(".")
    try:
        major, minor = int(parts[0]), int("".join(c for c in parts[1] if c.isdigit()) or 0)
    except (IndexError, ValueError):
        return 1
    if (major, minor) >= (6, 4):
        return 3
    if (major, minor) == (6, 3):
        return 2
    return 1


def decode_entry(raw: bytes, version: int) -> OrcEntry:
    """Decode 6 bytes of ``struct orc_entry`` of the given layout version."""
    sp_off, bp_off, flags = struct.unpack("<hhH", raw)
    sp_reg = flags & 0xF
    bp_reg = (flags >> 4) & 0xF
    if version >= 3:
        typ = (flags >> 8) & 0x7
        signal = bool(flags & 0x800)
    else:
        end_bit = 0x400 if version == 1 else 0x800
        raw_type = (flags >> 8) & 0x3
        if sp_reg == REG_UNDEFINED:
            typ = TYPE_END_OF_STACK if flags & end_bit else TYPE_UNDEFINED
        else:
            typ = raw_type + TYPE_CALL
        # Version 1 has no signal bit: REGS and REGS_PARTIAL imply it.
        signal = bool(flags & 0x400) if version == 2 else raw_type > 0
    return OrcEntry(sp_off, bp_off, sp_reg, bp_reg, typ, signal)


class OrcTable:
    """One sorted ORC table (core kernel or one module), read lazily.

    Lookups binary-search the ``orc_unwind_ip`` array reading 4 KiB chunks
    on demand, so a stack of 20 frames touches a few pages, not the 3.9 MB
    of Debian 6.1's table.
    """

    CHUNK = 1024  # entries per read

    def __init__(
        self,
        read: ReadBytes,
        ip_table: int,
        entries: int,
        count: int,
        version: int,
        text_range: tuple[int, int] | None = None,
    ) -> None:
        self._read = read
        self.ip_table = ip_table
        self.entries = entries
        self.count = count
        self.version = version
        self.text_range = text_range
        self._chunks: dict[int, tuple[int, ...]] = {}

    def _offset(self, i: int) -> int:
        c = i // self.CHUNK
        chunk = self._chunks.get(c)
        if chunk is None:
            start = c * self.CHUNK
            n = min(self.CHUNK, self.count - start)
            chunk = struct.unpack(f"<{n}i", self._read(self.ip_table + 4 * start, 4 * n))
            self._chunks[c] = chunk
        return chunk[i - c * self.CHUNK]

    def ip(self, i: int) -> int:
        """Start address of the code that entry ``i`` covers."""
        return (self.ip_table + 4 * i + self._offset(i)) & 0xFFFFFFFFFFFFFFFF

    def lookup(self, pc: int) -> OrcEntry | None:
        """The entry covering ``pc`` (the last one starting at or below it)."""
        if self.count == 0:
            return None
        if self.text_range is not None and not (self.text_range[0] <= pc < self.text_range[1]):
            return None
        lo, hi = 0, self.count
        while lo < hi:
            mid = (lo + hi) // 2
            if self.ip(mid) <= pc:
                lo = mid + 1
            else:
                hi = mid
        if lo == 0:
            return None
        raw = self._read(self.entries + 6 * (lo - 1), 6)
        return decode_entry(raw, self.version)


@dataclass
class UnwoundFrame:
    """One frame: ``pc``/``sp`` as the kernel's unwinder sees them.

    ``regs`` is set on the first frame after an exception/interrupt entry
    (the interrupted context, from its ``pt_regs``), like crash's register
    dump in ``bt``; ``regs_address`` is where that ``pt_regs`` lives.
    """

    pc: int
    sp: int
    bp: int | None = None
    regs: dict[str, int] | None = None
    regs_address: int | None = None
    interrupted: bool = False  # pc is exact (not a return address)
    reliable: bool = True  # False: the next frame was found by scanning the stack


@dataclass
class Unwound:
    """An ORC-unwound stack and why it ended."""

    frames: list[UnwoundFrame] = field(default_factory=list)
    end: str = ""  # "end of stack", "user mode", or the reason it stopped
    complete: bool = False
    guessed: bool = False  # some frame was found by scanning, not unwinding


class OrcUnwinder:
    """Unwind kernel stacks over one or more :class:`OrcTable`\\ s."""

    MAX_FRAMES = 256

    def __init__(
        self,
        read_u64: ReadU64,
        read: ReadBytes,
        tables: list[OrcTable],
        sp_indirect_deref_first: bool = True,
        is_text: Callable[[int], bool] | None = None,
        other_text: Callable[[int], bool] | None = None,
    ) -> None:
        self.read_u64 = read_u64
        self.read = read
        self.tables = tables
        self.sp_indirect_deref_first = sp_indirect_deref_first
        self.is_text = is_text
        # Code we have no ORC for but may return into (modules, in
        # kallsyms-only mode): accepted by the stack scan, then scanned past.
        self.other_text = other_text

    SCAN_WORDS = 512

    def _scan(self, sp: int) -> tuple[int, int, int | None] | None:
        """First ``(return address, sp after return, caller's rbp)`` above ``sp``.

        A candidate is a word inside kernel text with ORC, right after a
        ``call`` instruction (``e8 rel32``, or ``ff /2`` indirect forms), from
        which ORC leads on to another such word (:meth:`_leads_on`).
        """
        assert self.is_text is not None
        data = b""
        addr = sp
        while len(data) < 8 * self.SCAN_WORDS:  # page by page: stop at the stack's end
            n = 4096 - (addr & 4095)
            try:
                data += self.read(addr, n)
            except Exception:
                break
            addr += n
        words = struct.unpack(f"<{len(data) // 8}Q", data[: len(data) // 8 * 8])
        for k, w in enumerate(words):
            known = self.is_text(w) and self.find(w - 1) is not None
            if not known and not (self.other_text is not None and self.other_text(w)):
                continue
            try:
                before = self.read(w - 7, 7)
            except Exception:
                continue
            if _after_call(before) and self._leads_on(w, sp + 8 * k + 8):
                slot = sp + 8 * k
                # The callee's prologue pushes rbp first, just below the
                # return address: recover the caller's rbp from there.
                bp = words[k - 1] if k and slot < words[k - 1] < slot + 0x8000 else None
                return w, slot + 8, bp
        return None

    def _leads_on(self, pc: int, sp: int) -> bool:
        """Whether the frame of return address ``pc`` (at ``sp``) returns to a return address.

        Why: a function's locals can hold a copy of a code address that follows
        a call: ``__crash_kexec`` (no ORC) keeps the oops' ``pt_regs`` in
        ``fixed_regs``, whose ip is the BUG()'s ``ud2`` right after a call to
        printk.  Taken for a return address it ends the unwind two frames
        later; the real one leads on.  Only a call frame whose CFA is its stack
        pointer plus an offset can be checked; any other is accepted.
        """
        orc = self.find(pc - 1)
        if orc is None or orc.type != TYPE_CALL or orc.sp_reg != REG_SP:
            return True
        try:
            ret = self.read_u64(sp + orc.sp_offset - 8)
            if ret == 0:
                return True  # the end of the stack
            known = self.is_text is not None and self.is_text(ret) and self.find(ret - 1)
            if not known and not (self.other_text is not None and self.other_text(ret)):
                return False
            return _after_call(self.read(ret - 7, 7))
        except Exception:
            return False

    def find(self, pc: int) -> OrcEntry | None:
        for t in self.tables:
            e = t.lookup(pc)
            if e is not None:
                return e
        return None

    def read_pt_regs(self, addr: int) -> dict[str, int]:
        vals = struct.unpack("<21Q", self.read(addr, PT_REGS_SIZE))
        return dict(zip(PT_REGS, vals, strict=True))

    def unwind(self, regs: dict[str, int], interrupted: bool = True) -> Unwound:
        """Unwind from a register set (``rip``, ``rsp``, ``rbp`` at least).

        ``interrupted`` says the first pc is exact (crash-time registers,
        a ``pt_regs``); a return address is looked up at ``pc - 1``.
        """
        out = Unwound()
        pc, sp, bp = regs["rip"], regs["rsp"], regs.get("rbp", 0)
        full: dict[str, int] | None = dict(regs)
        exact = interrupted
        pending_regs: dict[str, int] | None = None
        pending_addr: int | None = None
        for _ in range(self.MAX_FRAMES):
            out.frames.append(
                UnwoundFrame(
                    pc=pc,
                    sp=sp,
                    bp=bp,
                    regs=pending_regs,
                    regs_address=pending_addr,
                    interrupted=exact,
                )
            )
            pending_regs = pending_addr = None
            orc = self.find(pc if exact else pc - 1)
            if orc is not None and orc.type == TYPE_UNDEFINED:
                # objtool marks some code "undefined" (e.g. the label whose
                # address crash_setup_regs() saves as the ip in
                # __crash_kexec): handle it as code without ORC.
                orc = None
            if orc is None:
                found = self._scan(sp) if self.is_text is not None else None
                if found is None:
                    out.end = f"no ORC rule for {pc:#x}"
                    return out
                # No ORC here (e.g. a module's code in kallsyms-only mode):
                # resume at the first return address found on the stack, as
                # crash's and the kernel's "?" entries do; not reliable.
                pc, sp, guessed_bp = found
                if guessed_bp is not None:
                    bp = guessed_bp
                exact = False
                full = None
                out.frames[-1].reliable = False
                out.guessed = True
                continue
            if orc.type == TYPE_END_OF_STACK:
                out.end, out.complete = "end of stack", True
                return out
            try:
                cfa = self._cfa(orc, sp, bp, full)
                if orc.type == TYPE_CALL:
                    new_pc = self.read_u64(cfa - 8)
                    new_sp = cfa
                    new_bp = self._bp(orc, cfa, bp)
                    exact = False
                    full = None
                elif orc.type == TYPE_REGS:
                    full = self.read_pt_regs(cfa)
                    new_pc, new_sp, new_bp = full["rip"], full["rsp"], full["rbp"]
                    pending_regs, pending_addr = full, cfa
                    exact = True
                    if full["cs"] & 3:
                        out.frames.append(
                            UnwoundFrame(new_pc, new_sp, new_bp, full, cfa, interrupted=True)
                        )
                        out.end, out.complete = "user mode", True
                        return out
                else:  # REGS_PARTIAL: an iret frame (ip, cs, flags, sp, ss)
                    new_pc = self.read_u64(cfa)
                    cs = self.read_u64(cfa + 8)
                    new_sp = self.read_u64(cfa + 24)
                    new_bp = self._bp(orc, cfa, bp)
                    exact = True
                    if cs & 3:
                        out.end, out.complete = "user mode", True
                        return out
            except _NeedRegister as e:
                out.end = str(e)
                return out
            except Exception as e:  # a fault reading the stack
                out.end = f"cannot read the stack: {e}"
                return out
            if new_pc == 0:
                out.end, out.complete = "end of stack", True
                return out
            if new_sp == sp and new_pc == pc:
                out.end = "unwinding made no progress"
                return out
            pc, sp, bp = new_pc, new_sp, new_bp
        out.end = "too many frames"
        return out

    def _cfa(self, orc: OrcEntry, sp: int, bp: int, full: dict[str, int] | None) -> int:
        r = orc.sp_reg
        if r == REG_SP:
            return sp + orc.sp_offset
        if r == REG_BP:
            return bp + orc.sp_offset
        if r == REG_SP_INDIRECT:
            if self.sp_indirect_deref_first:
                return self.read_u64(sp) + orc.sp_offset
            return self.read_u64(sp + orc.sp_offset)
        if r == REG_BP_INDIRECT:
            return self.read_u64(bp + orc.sp_offset)
        name = _REG_NAMES.get(r)
        if name is not None:
            if full is None or name not in full:
                raise _NeedRegister(f"ORC needs {name}, unknown in this frame")
            return full[name]
        raise _NeedRegister(f"unknown ORC sp register {r}")

    def _bp(self, orc: OrcEntry, cfa: int, bp: int) -> int:
        if orc.bp_reg == REG_PREV_SP:
            return self.read_u64(cfa + orc.bp_offset)
        if orc.bp_reg == REG_BP:
            return self.read_u64(bp + orc.bp_offset)
        return bp


class _NeedRegister(Exception):
    pass


def _after_call(before: bytes) -> bool:
    """Whether the 7 bytes before an address end with an x86-64 call."""
    if before[2] == 0xE8:  # call rel32
        return True
    # call *%reg (ff d0+r), call *(%reg) (ff 10+r), with REX (41 ff ..):
    if before[5] == 0xFF and 0xD0 <= before[6] <= 0xD7:
        return True
    if before[5] == 0xFF and 0x10 <= before[6] <= 0x17:
        return True
    # call *disp8(%reg) (ff 50+r d8), call *disp32(%reg) (ff 90+r d32)
    if before[4] == 0xFF and 0x50 <= before[5] <= 0x57:
        return True
    return before[1] == 0xFF and 0x90 <= before[2] <= 0x97
