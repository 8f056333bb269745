"""The first platform admin, so a fresh installation can be used at all."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from . import crud
from .models import User

log = logging.getLogger(__name__)

ADMIN = "admin"


def bootstrap_admin(sessions: sessionmaker, token_file: Path) -> bool:
    """Create platform admin ``admin`` and write its token to ``token_file`` (0600) unless a user
    named ``admin`` exists already, in which case nothing changes. Returns whether it was created."""
    with sessions() as session:
        if crud.get_user_by_username(session, ADMIN) is not None:
            return False
        user = User(username=ADMIN, display_name="Platform administrator", platform_admin=True)
        session.add(user)
        try:
            # Flush first: a second replica starting at the same moment fails here, before it
            # could overwrite the token file with a token that never gets committed.
            session.flush()
        except IntegrityError:
            session.rollback()
            return False
        token, _ = crud.add_token(session, user=user, name="bootstrap")
        _write_secret(token_file, token)
        session.commit()
    log.info("created platform admin %r; its API token is in %s", ADMIN, token_file)
    return True


def _write_secret(path: Path, secret: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # O_CREAT's mode does not apply to a file that already existed
        os.write(fd, secret.encode())  # no newline: the file is the exact token
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
