"""One monitoring pass of a model: its collected traffic against the training data of its run, through
``serving/monitor.py``, into a JSON report and alerts (events, and the model's webhook when set).

:class:`Monitor` runs a pass for every served model every ``model_monitor_seconds`` (and at once when
asked, ``runner.model.monitor`` with ``run_now``) and keeps each report in the object store beside the
traffic (``models/<ws>/<name>/monitoring/<window>.json``), so that reading a report costs one object.

**The reference** is the training data: the datasets of the run the model came from, read from the
object store (CSV, TSV or Parquet; the first whose columns can stand for the model's inputs). Traffic
sent as rows of named features is matched by name; traffic sent as tensors has positional features
("0", "1", ...), matched to the dataset's numeric columns in their order when the counts agree (the
columns a scikit-learn model was fitted on, its label being the non-numeric one). When nothing matches,
the report says so (``reference`` is null) and gives statistics without drift.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import ipaddress
import json
import logging
import socket
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pyarrow.parquet as pq
from reprolab_common.db import transact
from reprolab_common.objectstore import ObjectNotFound, ObjectStore
from sqlalchemy import select
from sqlalchemy.orm import Session as Db
from sqlalchemy.orm import sessionmaker

from ..models import Run
from ..serving import monitor
from . import service
from .models import DeployedModel, ModelAlert, ModelState
from .traffic import Record, prefix, read_labels, read_traffic

log = logging.getLogger(__name__)

MAX_REFERENCE_BYTES = 64 * 1024 * 1024  # a larger dataset is not read as a reference
REFERENCE_SUFFIXES = (".csv", ".tsv", ".parquet")
KEEP_DAYS = {monitor.Window.HOUR: 2, monitor.Window.DAY: 31}  # windows a report covers, back from today
MIN_ROWS = 30  # a window with fewer rows is reported but raises no drift alert (a handful of rows is noise)
MIN_LABELS = 10  # likewise for accuracy


@dataclass(frozen=True)
class Reference:
    dataset: str
    columns: dict[str, list[Any]]

    @property
    def rows(self) -> int:
        return len(next(iter(self.columns.values()), []))


def parse_table(name: str, data: bytes) -> dict[str, list[Any]]:
    """Columns of a CSV, TSV or Parquet file; CSV cells that read as numbers become floats."""
    if name.endswith(".parquet"):
        return pq.read_table(io.BytesIO(data)).to_pydict()
    text = data.decode("utf-8-sig")
    reader = csv.reader(io.StringIO(text), delimiter="\t" if name.endswith(".tsv") else ",")
    header = next(reader, [])
    cols: dict[str, list[Any]] = {h: [] for h in header}
    for row in reader:
        if not row:
            continue
        for h, cell in zip(header, row, strict=False):
            cols[h].append(_cell(cell))
    return cols


def _cell(cell: str) -> Any:
    if cell == "" or cell.lower() in ("na", "nan", "null"):
        return None
    try:
        return float(cell)
    except ValueError:
        return cell


def match_features(features: Sequence[str], columns: Mapping[str, Sequence[Any]]) -> dict[str, str] | None:
    """traffic feature -> reference column, or None when the reference cannot stand for these inputs."""
    if not features:
        return None
    if all(f in columns for f in features):
        return {f: f for f in features}
    if all(f.isdigit() for f in features):
        numeric = [c for c, values in columns.items()
                   if monitor.infer_kind(values) is monitor.Kind.NUMERICAL]
        if len(numeric) == len(features):
            return {f: numeric[int(f)] for f in features if int(f) < len(numeric)} or None
    return None


def load_reference(store: ObjectStore, datasets: Sequence[Mapping[str, str]],
                   features: Sequence[str]) -> tuple[Reference | None, dict[str, str]]:
    """The first of the run's datasets whose columns match ``features``, and the mapping."""
    for d in datasets:
        name = d.get("name", "")
        if not name.lower().endswith(REFERENCE_SUFFIXES):
            continue
        try:
            if store.size(d["object_key"]) > MAX_REFERENCE_BYTES:
                log.info("dataset %s is too large to serve as a monitoring reference", name)
                continue
            cols = parse_table(name.lower(), store.read_bytes(d["object_key"]))
        except (ObjectNotFound, ValueError, UnicodeDecodeError, OSError) as exc:
            log.info("dataset %s cannot serve as a monitoring reference: %s", name, exc)
            continue
        mapping = match_features(features, cols)
        if mapping:
            return Reference(name, {mapping[f]: list(cols[mapping[f]]) for f in features if f in mapping}), mapping
    return None, {}


def report(store: ObjectStore, m: DeployedModel, reference: Mapping[str, Sequence[Any]] | Reference | None, *,
           window: monitor.Window = monitor.Window.HOUR, records: Sequence[Record] | None = None,
           mapping: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Per window: feature statistics, drift against ``reference`` (the run's dataset, by column), class
    shares and accuracy once labels have arrived. ``mapping`` renames traffic features to the reference's
    columns (positional tensor features)."""
    if records is None:
        records = read_traffic(store, m.workspace, m.name)
    labels = read_labels(store, m.workspace, m.name)
    ref_info = None
    if isinstance(reference, Reference):
        ref_info = {"dataset": reference.dataset, "rows": reference.rows}
        reference = reference.columns
    reference = reference or {}
    if mapping:
        records = [Record(r.time, r.request_id, r.version, {mapping.get(k, k): v for k, v in r.inputs.items()},
                          r.prediction) for r in records]
    features = [f for f in reference] or sorted({k for r in records for k in r.inputs})
    by_window: dict[Any, list[Mapping[str, Any]]] = {}
    for r in records:
        by_window.setdefault(monitor.window_start(r.time, window), []).append(r.inputs)
    stats = monitor.windowed_stats(((r.time, r.inputs) for r in records), window, features)
    windows = []
    for start in sorted(by_window):
        current = monitor.columns(by_window[start], features)
        drift = monitor.dataset_drift(reference, current) if reference else None
        windows.append({"start": start.isoformat(), "count": len(by_window[start]),
                        "drift": drift.as_dict() if drift else None})
    predictions = monitor.prediction_windows(((r.time, r.request_id, r.prediction) for r in records), labels,
                                             window)
    return {"model": m.name, "window": str(window), "features": features, "reference": ref_info,
            "reference_stats": {f: _jsonable(monitor.feature_stats(v).as_dict()) for f, v in reference.items()},
            "updated": dt.datetime.now(dt.UTC).isoformat(),
            "stats": {start.isoformat(): {f: _jsonable(st.as_dict()) for f, st in per.items()}
                      for start, per in stats.items()},
            "windows": windows, "predictions": [p.as_dict() for p in predictions]}


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda o: o.as_dict() if hasattr(o, "as_dict") else str(o)))


def alerts_from(db: Db, m: DeployedModel, rep: Mapping[str, Any], *, min_accuracy: float = 0.8,
                min_rows: int = MIN_ROWS, min_labels: int = MIN_LABELS) -> list[ModelAlert]:
    """New drift/accuracy alerts of this report (one per kind and window; events through the outbox). A
    window of fewer than ``min_rows`` requests (or ``min_labels`` labels) is too small to alert on. A day
    window raises no alert of a kind that one of its hours already raised (the same news twice)."""
    window = rep.get("window", "hour")
    seen = ({(a.kind, a.window_start[:10]) for a in service.alerts(db, m.workspace, m.name)}
            if window == "day" else set())
    new = []
    for w in rep["windows"]:
        d = w.get("drift")
        if d and d.get("drifted") and w.get("count", 0) >= min_rows and ("drift", w["start"][:10]) not in seen:
            names = ", ".join(f["feature"] for f in d.get("features", []) if f.get("drifted"))
            a = service.record_alert(db, m, kind="drift", window_start=w["start"],
                                     detail=f"input drift: {d.get('drifted_count')} of {len(d.get('features', []))} "
                                            f"features drifted ({names}) in the {window} from {_when(w['start'])}, "
                                            f"{w['count']} predictions against the training data")
            new += [a] if a else []
    for p in rep["predictions"]:
        if (p.get("accuracy") is not None and p["accuracy"] < min_accuracy and p.get("labelled", 0) >= min_labels
                and ("accuracy", p["start"][:10]) not in seen):
            a = service.record_alert(db, m, kind="accuracy", window_start=p["start"],
                                     detail=f"accuracy {p['accuracy']:.2f} on {p['labelled']} labels in the {window} "
                                            f"from {_when(p['start'])} (below {min_accuracy:.2f})")
            new += [a] if a else []
    return new


def _when(iso: str) -> str:
    return dt.datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M UTC")


def webhook_refusal(url: str, *, allow_private: bool = False) -> str:
    """Why the runner will not POST to ``url`` ("" when it will). A webhook is a URL any deployer chooses and
    the runner calls from inside the platform's network, so by default only public addresses are called: not
    loopback, private, link-local (cloud metadata) or reserved ones (REPROLAB_RUNNER_MODEL_WEBHOOK_ALLOW_PRIVATE
    for a hook inside the network). The check resolves the name once; the call resolves it again."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "not an http(s) URL"
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80),
                                   proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        return f"its host does not resolve ({type(exc).__name__})"
    if not allow_private:
        for info in infos:
            if not ipaddress.ip_address(info[4][0].split("%")[0]).is_global:
                return "its host is not a public address"
    return ""


def webhook_host(url: str) -> str:
    """What may be shown of a webhook URL: its scheme and host (the path often holds the hook's secret)."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}/…" if parts.hostname else ""


def notify(m: DeployedModel, alerts: Sequence[ModelAlert], *, allow_private: bool = False) -> int:
    """POST each new alert to the model's webhook (best effort: a failing hook is logged, not retried); the
    number delivered. The URL itself is never logged: it may carry the hook's secret."""
    if not m.webhook_url or not alerts:
        return 0
    where = webhook_host(m.webhook_url)
    if refusal := webhook_refusal(m.webhook_url, allow_private=allow_private):
        log.warning("webhook %s of model %s/%s not called: %s", where, m.workspace, m.name, refusal)
        return 0
    sent = 0
    for a in alerts:
        try:
            r = httpx.post(m.webhook_url, timeout=5, follow_redirects=False, trust_env=False,
                           json={"workspace": m.workspace, "model": m.name, "version": a.version, "kind": a.kind,
                                 "window_start": a.window_start, "detail": a.detail})
            sent += r.is_success
            if not r.is_success:
                log.warning("webhook %s of model %s/%s answered %d", where, m.workspace, m.name, r.status_code)
        except httpx.HTTPError as exc:
            log.warning("webhook %s of model %s/%s failed: %s", where, m.workspace, m.name, type(exc).__name__)
    return sent


def report_key(workspace: str, name: str, window: monitor.Window) -> str:
    return f"{prefix(workspace, name, 'monitoring')}{window}.json"


class Monitor:
    """Monitoring passes: on a timer for every served model, and on request for one."""

    def __init__(self, *, settings: Any, sessions: sessionmaker, store: ObjectStore, wake_outbox: Any) -> None:
        self.settings = settings
        self.sessions = sessions
        self.store = store
        self.wake_outbox = wake_outbox
        self._references: dict[tuple[str, tuple[str, ...]], tuple[Reference | None, dict[str, str]]] = {}
        self._lock = asyncio.Lock()  # one pass at a time: two would record the same alert twice

    def _pass(self, m: DeployedModel, datasets: Sequence[Mapping[str, str]]) -> tuple[dict[str, dict], list]:
        """(window -> report) of one model, computed and stored; its runs' datasets as the reference."""
        since = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=max(KEEP_DAYS.values()))
        records = read_traffic(self.store, m.workspace, m.name, since)
        features = tuple(sorted({k for r in records for k in r.inputs}, key=lambda k: (len(k), k)))
        cache_key = (m.run_id, features)
        if cache_key not in self._references:
            self._references[cache_key] = load_reference(self.store, datasets, features)
        reference, mapping = self._references[cache_key]
        reports = {}
        for window in monitor.Window:
            since_w = dt.datetime.now(dt.UTC) - dt.timedelta(days=KEEP_DAYS[window])
            rep = report(self.store, m, reference, window=window, mapping=mapping,
                         records=[r for r in records if r.time >= since_w])
            self.store.put_bytes(report_key(m.workspace, m.name, window), json.dumps(rep).encode())
            reports[str(window)] = rep
        return reports, records

    async def run_once(self, workspace: str, name: str) -> dict[str, dict]:
        """A pass over one model (its active version, or its latest when none is active) now."""
        def _load(db: Db) -> tuple[DeployedModel, list[dict[str, str]]]:
            rows = service.versions(db, workspace, name)
            if not rows:
                service.get(db, workspace, name)  # raises NotFound
            m = next((v for v in rows if v.active), rows[-1])
            run = db.get(Run, m.run_id)
            return m, json.loads(run.datasets_json) if run is not None else []

        m, datasets = await transact(self.sessions, _load)
        async with self._lock:
            reports, _ = await asyncio.to_thread(self._pass, m, datasets)
            new = await transact(self.sessions, lambda db: alerts_from(
                db, db.merge(m), reports[str(monitor.Window.HOUR)], min_accuracy=self.settings.model_min_accuracy)
                + alerts_from(db, db.merge(m), reports[str(monitor.Window.DAY)],
                              min_accuracy=self.settings.model_min_accuracy))
        if new:
            self.wake_outbox()
            await asyncio.to_thread(notify, m, new,
                                    allow_private=self.settings.model_webhook_allow_private)
        return reports

    def stored(self, workspace: str, name: str, window: monitor.Window) -> dict[str, Any] | None:
        try:
            return json.loads(self.store.read_bytes(report_key(workspace, name, window)))
        except ObjectNotFound:
            return None

    async def sweep(self) -> None:
        """A pass for every model with a serving active version."""
        models = await transact(self.sessions, lambda db: [
            (m.workspace, m.name) for m in db.scalars(select(DeployedModel).where(
                DeployedModel.active.is_(True), DeployedModel.state == ModelState.SERVING))])
        for ws, name in models:
            try:
                await self.run_once(ws, name)
            except Exception:  # noqa: BLE001 - one model's failure must not stop the others' monitoring
                log.exception("monitoring pass of model %s/%s failed", ws, name)

    async def forever(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), self.settings.model_monitor_seconds)
            except TimeoutError:
                await self.sweep()
