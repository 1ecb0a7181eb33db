"""``kcrash token create --role submit|read|admin``: print a new API token.

The token is printed once; only its hash is stored (see :mod:`kcrash.server.auth`).  It
works on the same store the server uses (``--data`` or ``--database``) and needs no
running server, so the first admin token can be made before the first start.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from ..errors import KcrashError
from . import tool
from .server_tool import add_store_options, settings_from_args


@tool("token", "create API tokens for kcrash server (hosts submit, people read, admins)")
def configure(p: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    sub = p.add_subparsers(dest="action", required=True)
    c = sub.add_parser("create", help="print a new token")
    add_store_options(c)
    c.add_argument("--role", required=True, choices=("submit", "read", "admin"))
    c.add_argument("--name", default="", help="what the token is for (a host, a person)")
    return run


def run(args: argparse.Namespace) -> int:
    try:
        from ..server.auth import create_token
        from ..server.db import open_database
    except ImportError:
        raise KcrashError(
            "kcrash token needs the server extra: pip install 'kcrash[server]'"
        ) from None
    if len(args.name) > 300:
        raise KcrashError("--name is longer than 300 characters")
    settings = settings_from_args(args)
    try:
        db = open_database(settings)
    except Exception as e:
        raise KcrashError(f"cannot open the server's store: {str(e).splitlines()[0]}") from None
    with db.session() as s:
        token = create_token(s, args.role, args.name)
    print(token)
    return 0
