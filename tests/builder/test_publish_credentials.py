"""Registry credentials at rest: AES-GCM bound to their row, a generated 0600 keyring, checked names."""

from __future__ import annotations

import stat

import pytest
from reprolab_builder import publish
from reprolab_builder.models import RegistryCredential
from reprolab_common.errors import Invalid

from .conftest import make_settings


def test_password_is_encrypted_and_bound_to_its_row(tmp_path) -> None:
    settings = make_settings(tmp_path)
    ring = publish.keyring(settings)
    path = tmp_path / publish.KEYRING_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and publish.keyring(settings) == ring  # made once
    row = RegistryCredential(id="r1", workspace="ws", host="ghcr.io", username="alice")
    row.secret = publish.encrypt(ring, row, "hunter2")
    assert "hunter2" not in row.secret and publish.decrypt(ring, row) == "hunter2"
    assert "hunter2" not in repr(ring) and "key_ids" in repr(ring)
    for field, value in (("workspace", "other"), ("host", "quay.io"), ("username", "bob"), ("id", "r2")):
        moved = RegistryCredential(**{"id": row.id, "workspace": row.workspace, "host": row.host,
                                      "username": row.username, field: value})
        moved.secret = row.secret
        with pytest.raises(RuntimeError, match="does not decrypt"):
            publish.decrypt(ring, moved)


@pytest.mark.parametrize(("destination", "expected"), [
    ("ghcr.io/org/course", ("ghcr.io", "ghcr.io/org/course:latest")),
    ("127.0.0.1:5001/a/b-c:week_1", ("127.0.0.1:5001", "127.0.0.1:5001/a/b-c:week_1")),
    ("docker.io/library/x:1", ("docker.io", "docker.io/library/x:1")),
])
def test_destinations(destination: str, expected: tuple[str, str]) -> None:
    assert publish.check_destination(destination) == expected


@pytest.mark.parametrize("destination", ["course", "ghcr.io/Org/X", "ghcr.io/a@sha256:" + "0" * 64, "ghcr.io/a b"])
def test_bad_destinations_are_named(destination: str) -> None:
    with pytest.raises(Invalid, match="is not a destination"):
        publish.check_destination(destination)
