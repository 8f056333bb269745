"""Traffic collection and monitoring: rows buffered, written as Parquet batches to a real object store
directory, read back; a window of shifted traffic against the run's training data raises one drift
alert (an event), labels sent later give the window's accuracy and an accuracy alert."""

from __future__ import annotations

import io
import random
from collections.abc import Iterator

import pyarrow.parquet as pq
import pytest
from reprolab.v1 import common_pb2, events_pb2
from reprolab_common.db import in_transaction, make_engine, migrate, session_factory
from reprolab_common.objectstore import LocalObjectStore
from reprolab_common.settings import CommonSettings
from reprolab_runner.deploy import monitoring, service
from reprolab_runner.deploy.traffic import TrafficLog, read_labels, read_traffic
from reprolab_runner.models import MIGRATIONS, OutboxEvent
from sqlalchemy import select

BOB = common_pb2.Actor(user_id="u-bob", username="bob")
FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")


@pytest.fixture
def db(database_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator:
    for key, value in database_env.items():
        monkeypatch.setenv(key, value)
    engine = make_engine(CommonSettings(), "runner")
    migrate(engine, MIGRATIONS)
    yield session_factory(engine)
    engine.dispose()


def iris_like(rng: random.Random, n: int, shift: float = 0.0) -> list[dict[str, float]]:
    return [{"sepal_length": rng.gauss(5.8, 0.8) + shift, "sepal_width": rng.gauss(3.0, 0.4) + shift,
             "petal_length": rng.gauss(3.7, 1.7) + shift, "petal_width": rng.gauss(1.2, 0.7)} for _ in range(n)]


def test_rows_reach_parquet_off_the_request_path_and_sampling_holds(tmp_path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    log = TrafficLog(store, rng=random.Random(1))
    kept = sum(log.record("ws", "iris", 1, f"r{i}", [{"x": i}], ["a"], sample_rate=0.25) for i in range(400))
    assert 60 < kept < 140 and log.pending() == kept
    assert list(store.list_objects("models/")) == []  # nothing written until a flush
    keys = log.flush()
    assert len(keys) == 1 and keys[0].startswith("models/ws/iris/traffic/") and keys[0].endswith(".parquet")
    table = pq.read_table(io.BytesIO(store.read_bytes(keys[0])))
    assert table.num_rows == kept and table.column_names == ["time", "request_id", "version", "inputs", "prediction"]
    assert log.pending() == 0 and log.flush() == []
    log.record("ws", "iris", 1, "batch", [{"x": 1}, {"x": 2}], ["a", "b"])
    log.feedback("ws", "iris", {"batch:1": "b"})
    log.flush()
    assert [r.request_id for r in read_traffic(store, "ws", "iris")][-2:] == ["batch:0", "batch:1"]
    assert read_labels(store, "ws", "iris") == {"batch:1": "b"}


def test_shifted_traffic_raises_one_drift_alert_and_late_labels_an_accuracy_alert(db, tmp_path) -> None:
    rng = random.Random(7)
    store = LocalObjectStore(tmp_path / "objects")
    m = in_transaction(db, lambda s: service.create_version(
        s, actor=BOB, workspace="ws", name="iris", run_id="r1", image="x@sha256:" + "a" * 64,
        artifact="model.joblib", target="local"))
    reference_rows = iris_like(rng, 500)
    reference = {f: [r[f] for r in reference_rows] for f in FEATURES}
    log = TrafficLog(store)

    # unshifted traffic: no alert
    rows = iris_like(rng, 300)
    log.record("ws", "iris", 1, "same", rows, ["setosa"] * len(rows))
    log.flush()
    rep = monitoring.report(store, m, reference)
    assert rep["windows"][0]["count"] == 300 and rep["windows"][0]["drift"]["drifted"] is False
    assert set(next(iter(rep["stats"].values()))) == set(FEATURES)
    assert in_transaction(db, lambda s: monitoring.alerts_from(s, s.merge(m), rep)) == []

    # shifted traffic in the same window: the window drifts (3 of 4 features), one alert only
    rows = iris_like(rng, 600, shift=2.0)
    log.record("ws", "iris", 1, "shift", rows, ["virginica"] * len(rows))
    log.feedback("ws", "iris", {f"shift:{i}": "setosa" for i in range(50)})  # labels arrive later
    log.flush()
    rep = monitoring.report(store, m, reference)
    assert rep["windows"][0]["drift"]["drifted"] is True
    new = in_transaction(db, lambda s: [a.kind for a in monitoring.alerts_from(s, s.merge(m), rep)])
    assert sorted(new) == ["accuracy", "drift"]
    assert rep["predictions"][0]["labelled"] == 50 and rep["predictions"][0]["accuracy"] == 0.0
    assert in_transaction(db, lambda s: monitoring.alerts_from(s, s.merge(m), rep)) == []  # once per window
    with db() as s:
        types = [events_pb2.Event.FromString(r.payload).type for r in s.scalars(select(OutboxEvent))]
    assert sorted(types) == ["model.accuracy_alert", "model.drift_alert"]


def test_webhooks_call_public_addresses_only_unless_allowed() -> None:
    refusal = monitoring.webhook_refusal
    assert refusal("http://127.0.0.1:9/hook") == "its host is not a public address"
    assert refusal("http://169.254.169.254/latest/meta-data") == "its host is not a public address"
    assert refusal("http://10.1.2.3/x") == "its host is not a public address"
    assert refusal("http://[::1]/x") == "its host is not a public address"
    assert refusal("http://127.0.0.1:9/hook", allow_private=True) == ""
    assert refusal("ftp://example.org/x") == "not an http(s) URL"
    assert refusal("http://nosuch.invalid/x").startswith("its host does not resolve")
    assert monitoring.webhook_host("https://hooks.example.org/services/T0/B0/secret") == "https://hooks.example.org/…"
