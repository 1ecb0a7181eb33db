"""``kcrash submit``: send a crash from a host to a kcrash server (issue 16).

The client side of the fleet service, kept free of the analysis code and of third-party
packages (the standard library's ``http.client``; ``zstandard`` only if installed), because it
runs where the crash happened: in a kdump capture initramfs or on a freshly rebooted host.

Modules: :mod:`hostfacts` (hostname, machine id, kernel, distribution, hardware),
:mod:`upload` (streamed, compressed, size-capped, restartable POST), :mod:`pstore`
(``/sys/fs/pstore`` dmesg records reassembled), :mod:`journal` (``journalctl -k -b -1``).
"""
