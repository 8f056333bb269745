"""Serving request counts and latency histograms in Prometheus' text exposition format (0.0.4).

Written here rather than with ``prometheus_client``: that package is in uv.lock only as a dependency of
jupyter-server, not of the gateway, and two metric families do not justify a new dependency.
"""

from __future__ import annotations

import threading
from collections import defaultdict

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class ServeMetrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str, str, str], int] = defaultdict(int)
        self._buckets: dict[tuple[str, str, str], list[int]] = {}
        self._sums: dict[tuple[str, str, str], float] = defaultdict(float)

    def observe(self, workspace: str, model: str, endpoint: str, code: int, seconds: float) -> None:
        key = (workspace, model, endpoint)
        with self._lock:
            self._counts[(*key, str(code))] += 1
            counts = self._buckets.setdefault(key, [0] * (len(BUCKETS) + 1))
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    counts[i] += 1
            counts[-1] += 1  # +Inf: every observation
            self._sums[key] += seconds

    def render(self) -> str:
        out = ["# HELP reprolab_serve_requests_total Requests to /serve/<ws>/<model>/..., by endpoint and status.",
               "# TYPE reprolab_serve_requests_total counter"]
        with self._lock:
            for (ws, model, endpoint, code), n in sorted(self._counts.items()):
                out.append(f'reprolab_serve_requests_total{{workspace="{_label(ws)}",model="{_label(model)}",'
                           f'endpoint="{endpoint}",code="{code}"}} {n}')
            out += ["# HELP reprolab_serve_request_duration_seconds Time from a /serve request to its answer "
                    "(through the gateway), in seconds.",
                    "# TYPE reprolab_serve_request_duration_seconds histogram"]
            for (ws, model, endpoint), counts in sorted(self._buckets.items()):
                labels = f'workspace="{_label(ws)}",model="{_label(model)}",endpoint="{endpoint}"'
                for bound, n in zip(BUCKETS, counts, strict=False):
                    out.append(f'reprolab_serve_request_duration_seconds_bucket{{{labels},le="{bound}"}} {n}')
                out.append(f'reprolab_serve_request_duration_seconds_bucket{{{labels},le="+Inf"}} {counts[-1]}')
                out.append(f"reprolab_serve_request_duration_seconds_sum{{{labels}}} "
                           f"{self._sums[(ws, model, endpoint)]:.6f}")
                out.append(f"reprolab_serve_request_duration_seconds_count{{{labels}}} {counts[-1]}")
        return "\n".join(out) + "\n"
