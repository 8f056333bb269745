"""``python -m reprolab_gateway admin-token [USERNAME]``: a new API token for a platform admin, minted
straight into the gateway's database on the host (or in the gateway's pod).

Why a host command: the API refuses the revocations that would lock the last way in (the token a
request uses, a password-less admin's last token), but a token file can still be lost or a password
forgotten. Whoever can read the data directory or the database already controls the platform, so
letting them mint an admin token adds no power and needs no new data directory. The token is printed
once; only its hash is stored, as for every token.
"""

from __future__ import annotations

from reprolab_common.settings import CommonSettings

from . import crud
from .bootstrap import ADMIN
from .core.db import open_database


class RecoveryError(Exception):
    """Why no token was minted (printed as is)."""


def mint_admin_token(common: CommonSettings, username: str = ADMIN, *, name: str = "recovery") -> str:
    """A new token for platform admin ``username``; ``RecoveryError`` if there is no such admin."""
    engine, sessions = open_database(common)
    try:
        with sessions() as session:
            user = crud.get_user_by_username(session, username)
            if user is None or not user.platform_admin:
                admins = [u.username for u in crud.list_users(session) if u.platform_admin]
                raise RecoveryError(f"{username!r} is not a platform admin here; platform admins: "
                                    f"{', '.join(admins) or 'none'}")
            token, _ = crud.add_token(session, user=user, name=name)
            session.commit()
            return token
    finally:
        engine.dispose()
