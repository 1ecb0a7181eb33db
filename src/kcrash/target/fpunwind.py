"""An arm64 frame-pointer unwinder through exception frames, IRQ stacks and PAC.

Why our own when drgn unwinds arm64 with frame pointers when it has no CFI
(``fallback_unwind_aarch64``): drgn 0.3.0's fallback

* recognises a ``pt_regs`` only when it is some CPU's ``__irq_regs`` (before
  v6.13's frame metadata), so the registers of an oops (``el1h_64_sync``)
  are lost: the faulting pc comes out as a plain return address;
* stops when the next frame record is not above the current one, which is
  what a switch from the IRQ stack back to the task stack looks like
  (``call_on_irq_stack``, v5.15+; IRQ stacks are vmalloc'ed);
* needs a thread, hence types, to start: with neither DWARF nor BTF the
  crashed CPU's stack must start from its NT_PRSTATUS registers.

arm64 kernels are built with frame pointers (``CONFIG_FRAME_POINTER`` is
forced by ``ARCH_WANT_FRAME_POINTERS``): ``x29`` points at a 16-byte frame
record ``{caller's x29, x30}`` (AAPCS64). The exception entry
(``kernel_entry`` in ``arch/arm64/kernel/entry.S``) saves the interrupted
context as ``struct pt_regs`` and, for an exception taken from EL1, chains a
frame record into it, ``pt_regs.stackframe = {x29, elr}``, then sets ``x29``
to it; from EL0 the record is ``{0, 0}``, which ends the chain. So a return
address inside an entry vector (:data:`EXCEPTION_VECTORS`) means the next
frame record is the ``stackframe`` member of a ``pt_regs``.

Return addresses may carry a pointer-authentication code in their top bits
(``CONFIG_ARM64_PTR_AUTH_KERNEL``, v5.13+, on CPUs with FEAT_PAuth such as
QEMU ``-cpu max``): :func:`strip_pac` restores the address.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from dataclasses import dataclass

from .orc import UnwoundFrame

#: ``struct user_pt_regs`` (the start of ``struct pt_regs`` and the ``pr_reg`` of
#: NT_PRSTATUS): x0-x30, sp, pc, pstate (unchanged since v3.7).
USER_PT_REGS = (*(f"x{i}" for i in range(31)), "sp", "pc", "pstate")

#: ``offsetof(struct pt_regs, stackframe)`` (``S_STACKFRAME``): 304 from v5.8 to
#: v6.12 (user_pt_regs 272, orig_x0, syscallno + unused2, orig_addr_limit (v5.8-v5.10)
#: or sdei_ttbr1 (v5.11+), pmr_save). With BTF the offset is read from the type.
S_STACKFRAME = 304

#: ``orig_x0`` and ``syscallno`` follow user_pt_regs (v4.x-v6.x); crash prints both.
_ORIG_X0 = 272
_SYSCALLNO = 280

#: Entry vectors whose call into C (``el1h_64_sync_handler`` …) returns into them:
#: the frame record below lives in a ``pt_regs``. (regex over the whole name, why).
#: The C handlers (``*_handler``) are ordinary frames and do not match.
EXCEPTION_VECTORS: tuple[tuple[str, str], ...] = (
    (r"el1h_64_(?:sync|irq|fiq|error)", "taken from the kernel (EL1, SP_EL1), v5.14+"),
    (r"el1t_64_(?:sync|irq|fiq|error)", "taken from EL1 on SP_EL0 (invalid: panics), v5.14+"),
    (r"el0t_(?:64|32)_(?:sync|irq|fiq|error)", "syscall, fault or IRQ of a task, v5.14+"),
    (r"el1_(?:sync|irq|fiq|error)(?:_invalid)?", "taken from the kernel, v4.x-v5.13"),
    (r"el0_(?:sync|irq|fiq|error)(?:_compat)?(?:_invalid)?", "from a task, v4.x-v5.13"),
)
_VECTOR_RE = re.compile("|".join(f"(?:{p})" for p, _why in EXCEPTION_VECTORS))

#: THREAD_SIZE on arm64 with 4 KiB pages (16 KiB since v4.x; IRQ_STACK_SIZE is the same).
THREAD_SIZE = 16 << 10
_MAX_FRAMES = 256

ReadBytes = Callable[[int, int], bytes]
SymbolName = Callable[[int], "str | None"]


def vector_kind(name: str | None) -> str | None:
    """``"kernel"`` or ``"user"`` for an exception entry vector, else None."""
    if not name or not _VECTOR_RE.fullmatch(name):
        return None
    return "user" if name.startswith("el0") else "kernel"


def pac_mask(vmcoreinfo: dict[str, str]) -> int:
    """The bits a PAC may occupy in a kernel return address.

    ``NUMBER(KERNELPACMASK)`` (v5.7+, 0 when the CPU has no address
    authentication) is exactly that; without it, every bit above the kernel's
    virtual address size: ``64 - TCR_EL1_T1SZ`` (v5.9+, the size in use) or
    ``VA_BITS`` (v4.12+), 48 if neither is known.
    """

    def number(key: str) -> int | None:
        v = vmcoreinfo.get(f"NUMBER({key})")
        if v is None:
            return None
        try:
            return int(v, 0) if v.lower().startswith("0x") else int(v)
        except ValueError:
            return None

    mask = number("KERNELPACMASK")
    if mask is not None:
        return mask
    t1sz = number("TCR_EL1_T1SZ")
    va_bits = 64 - t1sz if t1sz else number("VA_BITS") or 48
    return ((1 << 64) - 1) & ~((1 << va_bits) - 1)


def strip_pac(addr: int, mask: int) -> int:
    """``addr`` without its PAC: bit 55 says kernel (set the bits) or user (clear)."""
    if not mask:
        return addr
    return addr | mask if addr & (1 << 55) else addr & ~mask


@dataclass
class FpUnwinder:
    """Frame records over a dump's memory (``read``), frames named by ``symbol``.

    ``stackframe`` is ``offsetof(struct pt_regs, stackframe)`` of this kernel.
    """

    read: ReadBytes
    symbol: SymbolName
    mask: int
    stackframe: int = S_STACKFRAME

    def pt_regs(self, address: int) -> dict[str, int]:
        """The registers saved at ``address`` (x0-x30, sp, pc, pstate, orig_x0,
        syscallno), return addresses stripped of their PAC."""
        data = self.read(address, _SYSCALLNO + 8)
        vals = struct.unpack_from("<34Q", data, 0)
        regs = dict(zip(USER_PT_REGS, vals, strict=True))
        regs["x30"] = strip_pac(regs["x30"], self.mask)
        regs["orig_x0"] = struct.unpack_from("<Q", data, _ORIG_X0)[0]
        regs["syscallno"] = struct.unpack_from("<i", data, _SYSCALLNO)[0]
        return regs

    def unwind(self, regs: dict[str, int], interrupted: bool = True) -> list[UnwoundFrame]:
        """Frames from a register set (``pc``, ``x29``, ``sp``), innermost first.

        ``interrupted``: ``pc`` is where the CPU was (NT_PRSTATUS, an exception),
        not a return address (a sleeping task's saved context).
        """
        pc = regs["pc"]
        regs = dict(regs)
        if "x30" in regs:  # lr as the CPU held it: maybe signed (a saved context's PAC)
            regs["x30"] = strip_pac(regs["x30"], self.mask)
        frames = [
            UnwoundFrame(
                pc=pc,
                sp=regs.get("sp", 0),
                bp=regs.get("x29"),
                regs=regs if interrupted else None,
                interrupted=interrupted,
            )
        ]
        fp = regs.get("x29", 0)
        if interrupted:
            self._leaf_caller(frames, regs)
        seen: set[int] = set()
        while len(frames) < _MAX_FRAMES and fp and fp >> 63 and not fp & 7 and fp not in seen:
            seen.add(fp)
            try:
                next_fp, lr = struct.unpack("<QQ", self.read(fp, 16))
            except Exception:  # a fault reading the stack: the frames so far
                break
            lr = strip_pac(lr, self.mask)
            if not lr:
                break
            frame = UnwoundFrame(pc=lr, sp=fp + 16, bp=next_fp)
            frames.append(frame)
            kind = vector_kind(self.symbol(lr - 4))
            if kind is not None and next_fp:
                if self._exception(frames, next_fp, kind):
                    break
                fp = frames[-1].bp or 0
                continue
            if not _next_record_ok(fp, next_fp):
                break
            fp = next_fp
        return frames

    def _leaf_caller(self, frames: list[UnwoundFrame], regs: dict[str, int]) -> None:
        """Add the caller of an interrupted function that has no frame record of its own.

        A leaf function (or one interrupted in its prologue or epilogue) keeps its
        return address in ``lr`` only: ``x29`` is still its caller's record, whose
        saved lr returns into the caller's caller, so following records alone skips
        the caller. It is missing exactly when ``lr`` returns into another function
        than ``pc``'s and is not the lr saved in the record at ``x29``.
        """
        pc, lr, fp = regs.get("pc", 0), regs.get("x30", 0), regs.get("x29", 0)
        lr = strip_pac(lr, self.mask)
        if not (lr >> 63 and fp >> 63):
            return
        own = self.symbol(pc)
        if own is None or self.symbol(lr - 4) in (None, own):
            return
        try:
            saved = strip_pac(struct.unpack("<QQ", self.read(fp, 16))[1], self.mask)
        except Exception:
            return
        if saved != lr:
            frames.append(UnwoundFrame(pc=lr, sp=regs.get("sp", 0), bp=fp))

    def _exception(self, frames: list[UnwoundFrame], record: int, kind: str) -> bool:
        """Append the context an entry vector saved; True when it ends the stack."""
        address = record - self.stackframe
        try:
            saved = self.pt_regs(address)
        except Exception:
            return True
        frames.append(
            UnwoundFrame(
                pc=saved["pc"],
                sp=saved["sp"],
                bp=saved["x29"],
                regs=saved,
                regs_address=address,
                interrupted=True,
            )
        )
        if kind == "user":
            return True
        self._leaf_caller(frames, saved)
        return False


def _next_record_ok(fp: int, next_fp: int) -> bool:
    """A caller's frame record lies above ours on the same stack, or on another stack
    (from an IRQ stack back to the task's: ``call_on_irq_stack``)."""
    if not next_fp or not next_fp >> 63 or next_fp & 7:
        return False
    if next_fp // THREAD_SIZE == fp // THREAD_SIZE:
        return next_fp > fp
    return True
