"""Collected traffic: sampled request/response rows and late labels, as Parquet batches in the object
store under ``models/<ws>/<name>/traffic/`` and ``.../feedback/``.

The proxy calls :meth:`TrafficLog.record` (a list append under a lock: nothing on the request path
waits for the store); :meth:`TrafficLog.flush` — from a background task every few seconds or when a
batch is full — writes one Parquet file per model and batch. Inputs are stored as a JSON column so
models with any feature set share one schema; the monitor turns them back into columns.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import random
import threading
import uuid
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from reprolab_common.objectstore import ObjectStore

TRAFFIC_SCHEMA = pa.schema([("time", pa.timestamp("us", tz="UTC")), ("request_id", pa.string()),
                            ("version", pa.int32()), ("inputs", pa.string()), ("prediction", pa.string())])
FEEDBACK_SCHEMA = pa.schema([("time", pa.timestamp("us", tz="UTC")), ("request_id", pa.string()),
                             ("label", pa.string())])


def prefix(workspace: str, name: str, part: str) -> str:
    return f"models/{workspace}/{name}/{part}/"


@dataclass(frozen=True)
class Record:
    time: dt.datetime
    request_id: str
    version: int
    inputs: dict[str, Any]
    prediction: Any


class TrafficLog:
    def __init__(self, store: ObjectStore, *, batch_rows: int = 1000, rng: random.Random | None = None) -> None:
        self.store = store
        self.batch_rows = batch_rows
        self._rows: dict[tuple[str, str], list[Record]] = defaultdict(list)
        self._labels: dict[tuple[str, str], list[tuple[dt.datetime, str, str]]] = defaultdict(list)
        self._lock = threading.Lock()
        self._rng = rng or random.Random()  # noqa: S311 - sampling, not secrets

    def record(self, workspace: str, name: str, version: int, request_id: str, rows: list[Mapping[str, Any]],
               predictions: list[Any], sample_rate: float = 1.0) -> bool:
        """Keep this request's rows with probability ``sample_rate``; True when kept."""
        if sample_rate < 1.0 and self._rng.random() >= sample_rate:
            return False
        now = dt.datetime.now(dt.UTC)
        with self._lock:
            self._rows[(workspace, name)].extend(
                Record(now, f"{request_id}:{i}" if len(rows) > 1 else request_id, version, dict(r), p)
                for i, (r, p) in enumerate(zip(rows, predictions, strict=False)))
        return True

    def feedback(self, workspace: str, name: str, labels: Mapping[str, Any]) -> int:
        now = dt.datetime.now(dt.UTC)
        with self._lock:
            self._labels[(workspace, name)].extend((now, rid, json.dumps(v)) for rid, v in labels.items())
        return len(labels)

    def pending(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._rows.values()) + sum(len(v) for v in self._labels.values())

    def flush(self) -> list[str]:
        """Write what is buffered (one Parquet object per model and kind); returns the keys written."""
        with self._lock:
            rows, self._rows = self._rows, defaultdict(list)
            labels, self._labels = self._labels, defaultdict(list)
        written = []
        for (ws, name), recs in rows.items():
            table = pa.table({"time": [r.time for r in recs], "request_id": [r.request_id for r in recs],
                              "version": [r.version for r in recs],
                              "inputs": [json.dumps(r.inputs, sort_keys=True) for r in recs],
                              "prediction": [json.dumps(r.prediction) for r in recs]}, schema=TRAFFIC_SCHEMA)
            written.append(self._put(prefix(ws, name, "traffic"), recs[0].time, table))
        for (ws, name), ls in labels.items():
            table = pa.table({"time": [t for t, _, _ in ls], "request_id": [r for _, r, _ in ls],
                              "label": [v for _, _, v in ls]}, schema=FEEDBACK_SCHEMA)
            written.append(self._put(prefix(ws, name, "feedback"), ls[0][0], table))
        return written

    def _put(self, base: str, at: dt.datetime, table: pa.Table) -> str:
        buf = io.BytesIO()
        pq.write_table(table, buf, compression="zstd")
        # named by its first row's time to the microsecond: readers list keys in order, and two batches of
        # one second must not be ordered by the random suffix
        key = f"{base}{at:%Y-%m-%d}/{at:%H%M%S.%f}-{uuid.uuid4().hex[:8]}.parquet"
        self.store.put_bytes(key, buf.getvalue())
        return key


def _tables(store: ObjectStore, base: str, since: dt.date | None = None) -> Iterator[pa.Table]:
    """The batches under ``base`` in order; ``since``: only those of that UTC day or later (batches sit in
    one folder per day, so older days are skipped by their key without being read)."""
    for info in sorted(store.list_objects(base), key=lambda i: i.key):
        if not info.key.endswith(".parquet"):
            continue
        if since is not None and info.key[len(base):len(base) + 10] < since.isoformat():
            continue
        yield pq.read_table(io.BytesIO(store.read_bytes(info.key)))


def read_traffic(store: ObjectStore, workspace: str, name: str, since: dt.date | None = None) -> list[Record]:
    out = []
    for t in _tables(store, prefix(workspace, name, "traffic"), since):
        for row in t.to_pylist():
            out.append(Record(row["time"], row["request_id"], row["version"], json.loads(row["inputs"]),
                              json.loads(row["prediction"])))
    return out


def read_labels(store: ObjectStore, workspace: str, name: str) -> dict[str, Any]:
    """request id → the latest label sent for it."""
    labels: dict[str, Any] = {}
    for t in _tables(store, prefix(workspace, name, "feedback")):
        for row in t.to_pylist():
            labels[row["request_id"]] = json.loads(row["label"])
    return labels
