"""Deployed model versions, keys and alerts on real SQLite and PostgreSQL (migration 0006): versions
count up, the first is active, activate() rolls back, keys are stored hashed and never in events."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from reprolab.v1 import common_pb2, events_pb2
from reprolab_common.db import in_transaction, make_engine, migrate, session_factory
from reprolab_common.errors import Invalid, NotFound
from reprolab_common.settings import CommonSettings
from reprolab_runner.deploy import service
from reprolab_runner.deploy.models import ModelKey
from reprolab_runner.models import MIGRATIONS, OutboxEvent
from sqlalchemy import select

BOB = common_pb2.Actor(user_id="u-bob", username="bob")
IMAGE = "127.0.0.1:5000/ws/iris@sha256:" + "a" * 64


@pytest.fixture
def db(database_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator:
    for key, value in database_env.items():
        monkeypatch.setenv(key, value)
    engine = make_engine(CommonSettings(), "runner")
    migrate(engine, MIGRATIONS)
    yield session_factory(engine)
    engine.dispose()


def deploy(db, name="iris", artifact="model.joblib", image=IMAGE):
    return in_transaction(db, lambda s: service.create_version(
        s, actor=BOB, workspace="ws", name=name, run_id="r1", image=image, artifact=artifact, target="local"))


def events(db) -> list[events_pb2.Event]:
    with db() as s:
        return [events_pb2.Event.FromString(row.payload) for row in s.scalars(select(OutboxEvent))]


def test_versions_activation_and_rollback(db) -> None:
    v1, v2 = deploy(db), deploy(db)
    assert (v1.version, v1.active, v2.version, v2.active) == (1, True, 2, False)
    for m in (v1, v2):
        in_transaction(db, lambda s, m=m: service.serving(s, m.id, handle="h", endpoint="http://x", artifact_path="/p"))
    assert in_transaction(db, lambda s: service.activate(s, actor=BOB, workspace="ws", name="iris", version=2)).active
    assert in_transaction(db, lambda s: service.get(s, "ws", "iris")).version == 2
    in_transaction(db, lambda s: service.activate(s, actor=BOB, workspace="ws", name="iris", version=1))  # rollback
    assert in_transaction(db, lambda s: service.get(s, "ws", "iris")).version == 1
    assert [e.type for e in events(db)] == ["model.deployed", "model.deployed", "model.activated", "model.activated"]
    assert events(db)[-1].model.version == 1
    with pytest.raises(NotFound):
        in_transaction(db, lambda s: service.get(s, "ws", "iris", 9))
    v3 = deploy(db)
    with pytest.raises(Invalid, match="deploying"):  # not serving yet
        in_transaction(db, lambda s: service.activate(s, actor=BOB, workspace="ws", name="iris", version=v3.version))
    in_transaction(db, lambda s: service.stopped(s, actor=BOB, model_id=v1.id))
    with pytest.raises(NotFound):  # nothing active after stopping the active version
        in_transaction(db, lambda s: service.get(s, "ws", "iris"))


@pytest.mark.parametrize(("kw", "match"), [({"name": "Bad Name"}, "model name"),
                                           ({"artifact": "notes.txt"}, "cannot serve"),
                                           ({"image": "python:3.11"}, "not pinned")])
def test_bad_deploys_are_refused(db, kw: dict, match: str) -> None:
    with pytest.raises(Invalid, match=match):
        deploy(db, **kw)


def test_keys_are_hashed_checked_revoked_and_never_in_events(db) -> None:
    key, secret = in_transaction(db, lambda s: service.create_key(s, actor=BOB, workspace="ws", name="iris",
                                                                   label="app", rate_per_minute=60))
    assert secret.startswith("rlm_") and key.prefix == secret[:10]
    with db() as s:
        stored = s.get(ModelKey, key.id)
        assert secret not in (stored.secret_sha256, stored.prefix, stored.label)
    assert in_transaction(db, lambda s: service.check_key(s, secret)).id == key.id
    assert in_transaction(db, lambda s: service.check_key(s, secret + "x")) is None
    assert in_transaction(db, lambda s: service.check_key(s, "Bearer-nonsense")) is None
    in_transaction(db, lambda s: service.revoke_key(s, workspace="ws", name="iris", key_id=key.id))
    assert in_transaction(db, lambda s: service.check_key(s, secret)) is None
    with pytest.raises(NotFound):
        in_transaction(db, lambda s: service.revoke_key(s, workspace="other", name="iris", key_id=key.id))
    m = deploy(db)
    in_transaction(db, lambda s: service.serving(s, m.id, handle="h", endpoint="http://x", artifact_path="/p"))
    for e in events(db):
        assert secret not in e.SerializeToString().decode(errors="replace")


def test_one_alert_per_kind_and_window(db) -> None:
    m = deploy(db)
    first = in_transaction(db, lambda s: service.record_alert(s, s.merge(m), kind="drift",
                                                               window_start="2026-12-05T06:00", detail="3/4 drifted"))
    again = in_transaction(db, lambda s: service.record_alert(s, s.merge(m), kind="drift",
                                                               window_start="2026-12-05T06:00", detail="3/4 drifted"))
    assert first is not None and again is None
    assert [e.type for e in events(db)] == ["model.drift_alert"]
    assert events(db)[0].model.detail == "3/4 drifted"
