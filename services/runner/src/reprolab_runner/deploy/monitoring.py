"""One monitoring pass of a model: its collected traffic against the training data of its run, through
``serving/monitor.py``, into a JSON report and alerts (events, and the model's webhook when set)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from reprolab_common.objectstore import ObjectStore
from sqlalchemy.orm import Session as Db

from ..serving import monitor
from . import service
from .models import DeployedModel, ModelAlert
from .traffic import read_labels, read_traffic

log = logging.getLogger(__name__)


def report(store: ObjectStore, m: DeployedModel, reference: Mapping[str, Sequence[Any]], *,
           window: monitor.Window = monitor.Window.HOUR) -> dict[str, Any]:
    """Per window: feature statistics, drift against ``reference`` (the run's dataset, by column), class
    shares and accuracy once labels have arrived."""
    records = read_traffic(store, m.workspace, m.name)
    labels = read_labels(store, m.workspace, m.name)
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
    return {"model": m.name, "window": str(window), "features": features,
            "stats": {start.isoformat(): {f: _jsonable(st.as_dict()) for f, st in per.items()}
                      for start, per in stats.items()},
            "windows": windows, "predictions": [p.as_dict() for p in predictions]}


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda o: o.as_dict() if hasattr(o, "as_dict") else str(o)))


def alerts_from(db: Db, m: DeployedModel, rep: Mapping[str, Any], *,
                min_accuracy: float = 0.8) -> list[ModelAlert]:
    """New drift/accuracy alerts of this report (one per kind and window; events through the outbox)."""
    new = []
    for w in rep["windows"]:
        d = w.get("drift")
        if d and d.get("drifted"):
            a = service.record_alert(db, m, kind="drift", window_start=w["start"],
                                     detail=f"{d.get('drifted_count')} of {len(d.get('features', []))} features "
                                            f"drifted in the window from {w['start']}")
            new += [a] if a else []
    for p in rep["predictions"]:
        if p.get("accuracy") is not None and p["accuracy"] < min_accuracy:
            a = service.record_alert(db, m, kind="accuracy", window_start=p["start"],
                                     detail=f"accuracy {p['accuracy']:.2f} on {p['labelled']} labels "
                                            f"(below {min_accuracy:.2f})")
            new += [a] if a else []
    return new


def notify(m: DeployedModel, alerts: Sequence[ModelAlert]) -> None:
    """POST each new alert to the model's webhook (best effort: a failing hook is logged, not retried)."""
    if not m.webhook_url:
        return
    for a in alerts:
        try:
            httpx.post(m.webhook_url, timeout=5, json={"workspace": m.workspace, "model": m.name,
                                                       "version": a.version, "kind": a.kind,
                                                       "window_start": a.window_start, "detail": a.detail})
        except httpx.HTTPError as exc:
            log.warning("webhook of model %s/%s failed: %s", m.workspace, m.name, exc)
