"""``kcrash doctor``: is this host ready to capture a kernel crash dump?

The first half of every crash story happens before the crash: kexec
support, memory reserved with ``crashkernel=``, a capture kernel loaded, a
kdump service that reloads it at boot, a dump target with room, and panic
knobs that turn an oops or a lockup into a dump at all.  This package reads
all of that from files (under ``--root`` for images and captured trees):

- :mod:`.host` reads /proc, /sys, /etc under a root;
- :mod:`.kdumpconf` parses each family's kdump configuration into one shape;
- :mod:`.verdicts` judges; :mod:`.checks` is the table (why, fix per family);
- :mod:`.run` runs the table and renders the checklist.
"""

from .run import Report, Result, render_text, run

__all__ = ["Report", "Result", "render_text", "run"]
