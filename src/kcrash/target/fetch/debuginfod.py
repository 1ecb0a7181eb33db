"""Fetch a vmlinux from debuginfod servers by build id (the standard HTTP protocol).

Protocol (elfutils ``debuginfod(8)``): ``GET <url>/buildid/<hex>/debuginfo``
answers the ELF file with DWARF for that build id, 404 when the server
does not have it.  ``DEBUGINFOD_URLS`` lists servers separated by spaces;
we try them in order.  Why our own client rather than libdebuginfod or
``debuginfod-find``: we must print the URL used, show our progress bar,
verify the build id before anything enters our cache, and keep working on
hosts without elfutils' client tools.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from ...errors import KcrashError
from . import cache
from . import progress as _progress

#: Per-request socket timeout (seconds), overridable like elfutils' client.
DEFAULT_TIMEOUT = 90.0


def server_urls(env: str | None = None) -> list[str]:
    """The servers of ``DEBUGINFOD_URLS`` (space separated), without trailing slashes."""
    raw = os.environ.get("DEBUGINFOD_URLS", "") if env is None else env
    return [u.rstrip("/") for u in raw.split() if u]


def debuginfo_url(server: str, build_id: str) -> str:
    return f"{server.rstrip('/')}/buildid/{build_id}/debuginfo"


def _timeout() -> float:
    try:
        return float(os.environ.get("DEBUGINFOD_TIMEOUT", DEFAULT_TIMEOUT))
    except ValueError:
        return DEFAULT_TIMEOUT


def download(url: str, dest: str, *, progress: bool, say: Callable[[str], None]) -> int:
    """Stream ``url`` to ``dest``; return the byte count.  404 -> FileNotFoundError."""
    import urllib.error  # here, not at the top: every analyze imports this module (0.03 s)
    import urllib.request

    req = urllib.request.Request(url, headers={"User-Agent": "kcrash"})
    try:
        resp = urllib.request.urlopen(req, timeout=_timeout())
    except urllib.error.HTTPError as e:
        if e.code == 404:
            raise FileNotFoundError(url) from None
        raise KcrashError(f"{url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise KcrashError(f"{url}: cannot connect: {reason}") from None
    with resp:
        size = resp.headers.get("X-DEBUGINFOD-SIZE") or resp.headers.get("Content-Length")
        total = int(size or 0)
        with open(dest, "wb") as out:
            return _copy(resp, out, total, progress=progress, label=url.rsplit("/", 3)[-2][:12])


def _copy(src, out, total: int, *, progress: bool, label: str) -> int:  # type: ignore[no-untyped-def]
    """Copy in 1 MiB chunks, with a progress bar on a terminal for big files."""
    done = 0
    with _progress.bar(f"debuginfod {label}", total, _progress.wanted(progress, total)) as advance:
        while chunk := src.read(1 << 20):
            out.write(chunk)
            done += len(chunk)
            advance(len(chunk))
    return done


def fetch_verified(
    build_id: str,
    release: str | None,
    *,
    servers: list[str],
    progress: bool,
    say: Callable[[str], None],
    tmp_dir: Path,
) -> tuple[str, int] | None:
    """Download ``build_id``'s debuginfo into a temporary file in ``tmp_dir`` and verify it.

    Returns ``(temporary path, size)``; the caller renames it into place.  A
    server that answers 404 is skipped; one that serves the wrong build id
    makes us refuse with :class:`DebuginfoMismatchError` (a wrong file is a
    server problem the operator must know about, not a miss).
    """
    tmp_dir.mkdir(parents=True, exist_ok=True)
    for server in servers:
        url = debuginfo_url(server, build_id)
        say(f"fetching {url}")
        fd, tmp = tempfile.mkstemp(prefix=f".{build_id}.", suffix=".part", dir=tmp_dir)
        os.close(fd)
        try:
            size = download(url, tmp, progress=progress, say=say)
        except FileNotFoundError:
            say(f"{server}: no debuginfo for build id {build_id}")
            _unlink(tmp)
            continue
        except BaseException:
            _unlink(tmp)
            raise
        try:
            cache.verify(tmp, build_id, release, url)
        except BaseException:
            _unlink(tmp)
            raise
        return tmp, size
    return None


def fetch(
    build_id: str,
    release: str | None,
    *,
    servers: list[str],
    progress: bool,
    say: Callable[[str], None],
    root: Path | None = None,
) -> str | None:
    """The vmlinux of ``build_id`` from the first server that has it, cached; or None."""
    top = root or cache.cache_dir()  # the build's own directory only once verified
    got = fetch_verified(
        build_id, release, servers=servers, progress=progress, say=say, tmp_dir=top
    )
    if got is None:
        return None
    tmp, size = got
    path = cache.install(tmp, build_id, release, root)
    say(f"verified build id {build_id} ({size >> 20} MiB) -> {path}")
    return path


def _unlink(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
