"""API tokens: created by ``kcrash token create``, stored only as a hash, with a role.

Roles are ordered ``submit < read < admin``: a host's kdump hook holds a submit token that
cannot read anyone's reports (a compromised host must not learn about the rest of the
fleet); ``read`` sees reports and buckets but never a dump; only ``admin`` downloads dumps
(they hold keys and customer data) and changes buckets.

Why SHA-256 and not a password hash: the tokens are 256 random bits, not passwords, so a
slow hash buys nothing against guessing, and a fast one keeps every request cheap.  The
database never holds a usable token; a stolen database cannot submit or read.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import ROLES, Token, utcnow

#: Tokens start with this so that secret scanners and people recognize them.
PREFIX = "kcrash_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def role_at_least(role: str, needed: str) -> bool:
    return ROLES.index(role) >= ROLES.index(needed)


def create_token(session: Session, role: str, name: str = "") -> str:
    """Store the hash of a new random token and return the token (shown once, never again)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r} (one of: {', '.join(ROLES)})")
    token = PREFIX + secrets.token_urlsafe(32)
    session.add(Token(hash=hash_token(token), role=role, name=name, created_at=utcnow()))
    session.flush()
    return token


def lookup(session: Session, token: str) -> Token | None:
    """The stored token this bearer string is, or None.

    The lookup is by hash (indexed); the final comparison is constant-time all the same, so
    the response time does not depend on how much of a guessed hash matched.
    """
    if not token.startswith(PREFIX) or len(token) > 200:
        return None
    h = hash_token(token)
    row = session.scalars(select(Token).where(Token.hash == h)).first()
    if row is None or not hmac.compare_digest(row.hash, h):
        return None
    return row
