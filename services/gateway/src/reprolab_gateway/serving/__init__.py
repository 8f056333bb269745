"""The gateway's side of model serving (issue 15): ``/serve/{ws}/{name}/v2/...`` proxied to the model's
Open Inference Protocol server, with per-model API keys, per-key rate limits, a body cap, traffic collection
and Prometheus ``/metrics``. See ``proxy.py``."""

from .proxy import ServeState, router

__all__ = ["ServeState", "router"]
