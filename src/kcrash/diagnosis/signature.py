"""Crash signatures: a stable bucket id and a syzbot-style title.

Scheme ``v1`` hashes exactly: the scheme name, the class id, the class
qualifier (e.g. the sanitizer kind, the file of a ``kernel BUG at``), the
culprit function (compiler suffixes and syscall-wrapper prefixes stripped)
and the culprit module (``vmlinux`` for the core kernel).  Offsets,
addresses, KASLR, line numbers, the kernel release and the taint are *not*
hashed, so the same bug from another boot, another capture format or a
rebuilt kernel lands in the same bucket; release and taint are kept as
attributes.  Never change what ``v1`` hashes: add ``v2`` instead.

Title: ``<class>[: qualifier] in <function> [<module>]``, with ``[<module>]``
omitted for the core kernel (``sysrq in sysrq_handle_crash``).  With no
culprit the title falls back to the normalised panic message.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from kcrash.diagnosis.culprit import base_name

SCHEME = "v1"

_SYSCALL_RE = re.compile(r"^__(?:x64|ia32|x32|arm64|se|do)_(compat_)?sys_")
_HEX_RE = re.compile(r"\b(?:0x)?[0-9a-f]{6,}\b")
_NUM_RE = re.compile(r"\b\d+\b")
_OFFSET_RE = re.compile(r"\+0x[0-9a-f]+(?:/0x[0-9a-f]+)?")


@dataclass
class Signature:
    scheme: str
    id: str
    title: str
    attributes: dict[str, str | None] = field(default_factory=dict)
    #: exactly what was hashed (for people comparing buckets by hand)
    key: list[str] = field(default_factory=list)


def normalize_function(name: str | None) -> str | None:
    """``__x64_sys_write.cold`` -> ``sys_write``; ``foo.isra.0`` -> ``foo``."""
    if not name:
        return None
    name = base_name(name)
    if name.startswith("SyS_"):  # 3.x-4.16 syscall wrappers
        return "sys_" + name[4:]
    m = _SYSCALL_RE.match(name)
    if m:
        name = ("compat_" if m.group(1) else "") + "sys_" + name[m.end() :]
    return name


def normalize_text(text: str) -> str:
    """Replace offsets, addresses and numbers (syzbot's ADDR/NUM) in free text."""
    text = _OFFSET_RE.sub("", text)
    text = _HEX_RE.sub("ADDR", text)
    text = _NUM_RE.sub("NUM", text)
    return re.sub(r"\s+", " ", text).strip()


def normalize_qualifier(q: str | None) -> str | None:
    """Qualifiers keep their words, lose paths' directories and numbers."""
    if not q:
        return None
    q = q.strip()
    if "/" in q or q.endswith((".c", ".h")):
        q = q.rsplit("/", 1)[-1]
    return normalize_text(q)


def make_signature(
    class_id: str,
    qualifier: str | None,
    function: str | None,
    module: str | None,
    *,
    qualifier_in_title: bool = False,
    fallback: str | None = None,
    release: str | None = None,
    taint: str | None = None,
) -> Signature:
    """Build the ``v1`` signature of one diagnosis."""
    func = normalize_function(function)
    mod = module or ("vmlinux" if func else None)
    qual = normalize_qualifier(qualifier)
    fb = normalize_text(fallback) if (fallback and not func) else None
    key = [SCHEME, class_id, qual or "", func or "", mod or "", fb or ""]
    digest = hashlib.sha256("\x1f".join(key).encode()).hexdigest()[:16]
    head = class_id
    if qual and qualifier_in_title:
        head = f"{class_id}: {qual}"
    if func:
        title = f"{head} in {func}"
        if mod and mod != "vmlinux":
            title += f" [{mod}]"
    elif fb:
        title = f"{head}: {fb}"
    else:
        title = head
    return Signature(
        scheme=SCHEME,
        id=digest,
        title=title,
        attributes={"release": release, "taint": taint},
        key=key,
    )
