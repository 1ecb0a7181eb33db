"""Errors that end a command with one clear line and exit status 2.

Every layer raises :class:`KcrashError` (or a subclass) for problems the
operator can act on: a missing file, a file that is not a dump, a vmlinux
that belongs to another kernel.  The CLI prints ``kcrash: <message>`` and
exits 2; anything else is a bug and is reported as such, still in one line.
"""

#: Exit status of a crash command that printed what it could read of a damaged dump
#: and listed, on stderr, each fact it could not read (``kcrash: partial: …``).
PARTIAL_EXIT = 4


class KcrashError(Exception):
    """A problem with the user's input or environment, worth one line."""

    exit_status = 2


class NotADumpError(KcrashError):
    """The file is not a vmcore in any format we know."""


class TruncatedDumpError(KcrashError):
    """The dump ends before the data its headers describe."""


class DebuginfoMismatchError(KcrashError):
    """The vmlinux given or found belongs to another kernel build."""


class DebuginfoNotFoundError(KcrashError):
    """No debuginfo was found (only raised when it was explicitly required)."""


class StepTimeout(KcrashError):
    """An analysis step ran past its time bound."""
