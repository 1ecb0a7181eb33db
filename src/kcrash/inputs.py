"""Opening untrusted input and writing output files safely, at the bottom of the layers.

Why here and not in each command: every command that opens a dump or a log must
refuse a FIFO before ``open()`` (which blocks forever on a FIFO without a writer),
and every decompressed log must be bounded (a 10 MB gzip can hold 10 GiB).  The
batch tool writes into directories other users may share, so its files are
created without ever following a planted symlink.  One module, one behaviour.
"""

from __future__ import annotations

import io
import os
import stat
import time
from dataclasses import dataclass
from typing import IO, Any

from .errors import KcrashError
from .textsafe import visible

#: What a non-regular file is called in the one-line refusal.
_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def file_kind(mode: int) -> str:
    """``a FIFO (named pipe)`` … or ``a regular file``."""
    return next((name for test, name in _KINDS if test(mode)), "a regular file")


class SpecialFileError(KcrashError):
    """The input is a directory, FIFO, socket or device, not a file to read."""


def require_regular(path: str, what: str = "vmcore") -> os.stat_result:
    """stat ``path`` (following a symlink the user named) and refuse anything but a file.

    Called before any ``open()`` of a dump or a log: a FIFO blocks the open itself,
    a character device may never end, a directory gives a confusing error later.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise KcrashError(f"{visible(path)}: no such file") from None
    except PermissionError:
        raise KcrashError(f"{visible(path)}: permission denied") from None
    except OSError as e:
        raise KcrashError(f"{visible(path)}: cannot stat: {e.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise SpecialFileError(f"{visible(path)}: is {file_kind(st.st_mode)}, not a {what}")
    return st


def open_regular(path: str, what: str = "vmcore") -> IO[bytes]:
    """Open a regular file for reading; refuse anything else without blocking.

    ``O_NONBLOCK`` makes the open itself return at once even if the path was
    swapped for a FIFO after :func:`require_regular`; ``fstat`` on the opened
    descriptor then decides, so there is no window between check and use.
    """
    require_regular(path, what)
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except PermissionError:
        raise KcrashError(f"{visible(path)}: permission denied") from None
    except OSError as e:
        raise KcrashError(f"{visible(path)}: cannot open: {e.strerror}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise SpecialFileError(f"{visible(path)}: is {file_kind(st.st_mode)}, not a {what}")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


# ---------------------------------------------------------------- output files


def create_new(path: str, mode: int = 0o644) -> int:
    """Create ``path`` as a fresh file and return its descriptor; never follow a symlink.

    An existing entry (our previous report, or a symlink someone planted to make a
    root-run batch overwrite ``/etc/shadow``) is unlinked — unlinking a symlink
    removes the link, not its target — and the file is created with
    ``O_CREAT | O_EXCL | O_NOFOLLOW``: if a link is planted again in between, the
    create fails instead of following it.
    """
    for _ in range(3):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except IsADirectoryError:
            raise KcrashError(f"{visible(path)}: is a directory; not overwritten") from None
        except OSError as e:
            raise KcrashError(f"{visible(path)}: cannot replace: {e.strerror}") from None
        try:
            return os.open(
                path,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0),
                mode,
            )
        except FileExistsError:
            continue  # re-planted between unlink and open: try again, never follow
        except OSError as e:
            raise KcrashError(f"{visible(path)}: cannot create: {e.strerror}") from None
    raise KcrashError(f"{visible(path)}: something keeps re-creating this file; not written")


def write_new(path: str, text: str) -> None:
    """Write ``text`` (UTF-8) into a fresh file created by :func:`create_new`."""
    with os.fdopen(create_new(path), "w", encoding="utf-8") as f:
        f.write(text)


def output_dir(path: str) -> str:
    """Make sure ``path`` is a real directory we may write in, creating it if needed.

    A symlink in place of the directory is refused: whoever planted it would choose
    where every report goes.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        try:
            os.makedirs(path, mode=0o755)
        except OSError as e:
            raise KcrashError(f"{visible(path)}: cannot create: {e.strerror}") from None
        return path
    if stat.S_ISLNK(st.st_mode):
        raise KcrashError(f"{visible(path)}: is a symlink; give the real directory for --out")
    if not stat.S_ISDIR(st.st_mode):
        raise KcrashError(f"{visible(path)}: is {file_kind(st.st_mode)}, not a directory")
    return path


# ---------------------------------------------------------------- decompressed input


@dataclass(frozen=True)
class ReadLimits:
    """Bounds on a decompressed log (options of ``kcrash analyze``; raise them to read more).

    A real kernel log compresses 5–20:1 and is rarely above a few hundred MB; a
    decompression bomb expands 1000:1 to gigabytes.  The ratio bound stops a bomb
    after ``ratio_after`` bytes (seconds); the size and time bounds stop everything
    else.  What was read is analyzed, and the report says what was cut.
    """

    max_bytes: int = 1 << 30
    max_seconds: float = 120.0
    max_ratio: float = 200.0
    ratio_after: int = 4 << 20


class InputCutShort(OSError):
    """A bound of :class:`ReadLimits` was reached (the reader turns it into 'cut short')."""


class BoundedReader(io.RawIOBase):
    """A decompressing stream that stops at :class:`ReadLimits`.

    ``compressed`` is the file under the decompressor: its position tells how many
    compressed bytes produced the output so far.
    """

    def __init__(self, stream: Any, compressed: Any, limits: ReadLimits, label: str) -> None:
        self._stream = stream
        self._compressed = compressed
        self._limits = limits
        self._label = label
        self._out = 0
        self._start = time.monotonic()

    def readable(self) -> bool:
        return True

    def _consumed(self) -> int:
        try:
            return max(1, int(self._compressed.tell()))
        except (OSError, ValueError, AttributeError):
            return 1

    def readinto(self, b: Any) -> int:
        lim = self._limits
        if self._out >= lim.max_bytes:
            raise InputCutShort(
                f"stopped after {_size(lim.max_bytes)} decompressed (--max-log-bytes to read more)"
            )
        if time.monotonic() - self._start > lim.max_seconds:
            raise InputCutShort(
                f"stopped after {lim.max_seconds:g} s of decompression at {_size(self._out)} "
                "(--max-log-seconds to read longer)"
            )
        if self._out >= lim.ratio_after and self._out / self._consumed() > lim.max_ratio:
            raise InputCutShort(
                f"stopped at {_size(self._out)}: it expands more than {lim.max_ratio:g}:1, "
                "like a decompression bomb (--max-log-ratio to read on)"
            )
        want = min(len(b), lim.max_bytes - self._out)
        data = self._stream.read(want)
        n = len(data)
        b[:n] = data
        self._out += n
        return n


def _size(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):.4g} {unit}"
    return f"{n} bytes"


def parse_size(text: str) -> int:
    """``512M``, ``2G``, ``1048576`` -> bytes (for the ``--max-log-bytes`` option)."""
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}.get(t[-1:], 1)
    try:
        n = float(t[:-1] if mult > 1 else t) * mult
    except ValueError:
        raise ValueError(f"not a size: {text!r} (e.g. 512M, 2G)") from None
    if n <= 0:
        raise ValueError(f"not a positive size: {text!r}")
    return int(n)
