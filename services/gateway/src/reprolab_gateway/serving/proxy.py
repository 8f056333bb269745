"""``/serve/{ws}/{name}/v2/...``: a deployed model's stable URL, proxied to the active version's Open Inference
Protocol server (``reprolab_runner/serving/oip_server.py``; where it runs is the runner's ``runner.model.route``).

Who may call: the holder of one of the model's API keys (``Authorization: Bearer rlm_...``, checked by the
runner, which stores only its SHA-256), or a member of the workspace with their platform API token or, from the
portal's "Try it", their signed-in session (the cookie, with the CSRF header on a POST, as /api/v1 takes it). Per key
(and per user for tokens) a token bucket of ``rate_per_minute`` (0: ``serve_default_rate_per_minute``)
answers 429 with ``Retry-After`` when spent. A body above ``serve_max_body_bytes`` is answered 413 before
it is read whole. Errors use the protocol's shape, ``{"error": "..."}``. The key is never logged: it lives
in a header, and only its SHA-256 is used as a cache key.

Every infer/predict request's inputs and predictions go to the runner's ``TrafficLog`` (sampled at the
model's ``sample_rate``) in a background task after the answer is sent; a timer flushes them to the object
store as Parquet (``models/<ws>/<name>/traffic/``). ``POST /serve/{ws}/{name}/feedback`` takes true labels
by request id (``X-Request-Id`` of the answer) into ``.../feedback/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import re
import time
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from reprolab.v1 import common_pb2, serving_pb2
from reprolab_common.errors import ProblemError
from starlette.background import BackgroundTask

from ..api.deps import request_user
from ..clients import RegistryClient, RunnerClient
from ..core.security import SESSION_COOKIE, TTLCache
from .metrics import ServeMetrics
from .openapi import document

log = logging.getLogger(__name__)

KEY_PREFIX = "rlm_"
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_MODEL = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
GATEWAY = common_pb2.Actor(username="reprolab-gateway")  # the proxy's own calls (key check, route)

router = APIRouter(include_in_schema=False)


class ServeError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class TokenBuckets:
    """``rate`` requests per minute per caller, with bursts up to ``rate``."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}  # who -> (tokens, monotonic time)

    def take(self, who: str, rate: int) -> int:
        """0 when allowed, else the seconds to wait."""
        now = time.monotonic()
        per_second = rate / 60.0
        tokens, at = self._buckets.get(who, (float(rate), now))
        tokens = min(float(rate), tokens + (now - at) * per_second)
        if tokens >= 1.0:
            self._buckets[who] = (tokens - 1.0, now)
            return 0
        self._buckets[who] = (tokens, now)
        if len(self._buckets) > 100_000:  # bounded: forget callers whose bucket is full again
            self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 60}
        return max(1, math.ceil((1.0 - tokens) / per_second))


@dataclass
class Caller:
    who: str  # rate-limit identity: "key:<id>" or "user:<id>"
    rate: int
    actor: common_pb2.Actor


class ServeState:
    """Caches, rate limits, metrics and the traffic log of the proxy (one per app)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.buckets = TokenBuckets()
        self.metrics = ServeMetrics()
        self._routes = TTLCache()  # (ws, name) -> ModelRoute
        self._keys = TTLCache()  # sha256 of a key's secret -> CheckedModelKey
        self._members = TTLCache()  # (user id, ws) -> True: a member, as the registry said
        self._client: httpx.AsyncClient | None = None
        self._flusher: asyncio.Task | None = None
        self.traffic = self._traffic_log()

    @property
    def settings(self) -> Any:
        return self.app.state.settings

    def _traffic_log(self) -> Any:
        """The runner's ``TrafficLog`` over the gateway's object store (the same store the runner's monitor
        reads). The services image holds every service's package; without the runner's, nothing is collected."""
        store = getattr(self.app.state, "store", None)
        if store is None:
            return None
        try:
            from reprolab_runner.deploy.traffic import TrafficLog
        except ImportError:  # pragma: no cover - a gateway installed without the runner package
            log.warning("reprolab_runner is not installed: model traffic is not collected")
            return None
        return TrafficLog(store)

    def runner(self, actor: common_pb2.Actor) -> RunnerClient:
        return RunnerClient(self.app.state.nats, actor, self.settings.nats_timeout_seconds)

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=5.0), follow_redirects=False,
                                             limits=httpx.Limits(max_keepalive_connections=64), trust_env=False)
        return self._client

    # --- caches -----------------------------------------------------------------------------------
    def forget(self, ws: str, name: str) -> None:
        self._routes.pop((ws, name))

    def forget_keys(self) -> None:
        self._keys.forget()

    async def route(self, ws: str, name: str, version: int = 0) -> serving_pb2.ModelRoute:
        """The active version's server (cached), or ``version``'s (asked each time: ``.../versions/{v}/`` URLs are
        for comparing versions, not for production traffic, and a cache would have to learn every version)."""
        if not version and (hit := self._routes.get((ws, name))) is not None:
            return hit
        try:
            route = await self.runner(GATEWAY).route_model(ws, name, version)
        except ProblemError as exc:
            if exc.status == 404:
                what = f"version {version} of model {name!r}" if version else f"model {name!r}"
                raise ServeError(404, f"no {what} is served in workspace {ws!r}") from exc
            raise
        if not version:
            self._routes.put((ws, name), route, self.settings.serve_cache_seconds)
        return route

    async def check_key(self, secret: str) -> serving_pb2.CheckedModelKey:
        digest = hashlib.sha256(secret.encode()).hexdigest()
        if (hit := self._keys.get(digest)) is not None:
            return hit
        checked = await self.runner(GATEWAY).check_model_key(secret)
        self._keys.put(digest, checked, self.settings.serve_cache_seconds)
        return checked

    async def check_member(self, actor: common_pb2.Actor, ws: str, name: str) -> None:
        if self._members.get((actor.user_id, ws)):
            return
        try:
            await RegistryClient(self.app.state.nats, actor, self.settings.nats_timeout_seconds).get_workspace(ws)
        except ProblemError as exc:
            if exc.status in (403, 404):  # not a member: as if the model did not exist
                raise ServeError(404, f"no model {name!r} is served in workspace {ws!r}") from exc
            raise
        self._members.put((actor.user_id, ws), True, self.settings.serve_cache_seconds)

    # --- traffic ----------------------------------------------------------------------------------
    def start(self) -> None:
        if self.traffic is not None and self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush_forever())

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.serve_flush_seconds)
            await self.flush()

    async def flush(self) -> list[str]:
        if self.traffic is None or not self.traffic.pending():
            return []
        try:
            return await asyncio.to_thread(self.traffic.flush)
        except Exception as exc:  # the store is down: this batch is lost, serving goes on
            log.warning("writing collected model traffic failed: %s", exc)
            return []

    async def aclose(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        await self.flush()
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def state(request: Request) -> ServeState:
    serve = getattr(request.app.state, "serve", None)
    if serve is None:
        serve = request.app.state.serve = ServeState(request.app)
    return serve


async def authenticate(request: Request, serve: ServeState, ws: str, name: str) -> Caller:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    secret = value.strip()
    if not header and not request.cookies.get(SESSION_COOKIE):
        raise ServeError(401, "this model needs 'Authorization: Bearer <model API key or your API token>'",
                         {"WWW-Authenticate": "Bearer"})
    if header and (scheme.lower() != "bearer" or not secret):
        raise ServeError(401, "malformed Authorization header: expected 'Bearer <key>'", {"WWW-Authenticate": "Bearer"})
    default = serve.settings.serve_default_rate_per_minute
    if secret.startswith(KEY_PREFIX):
        checked = await serve.check_key(secret)
        if not checked.valid:
            raise ServeError(401, "the model API key is unknown or has been revoked", {"WWW-Authenticate": "Bearer"})
        if (checked.key.workspace, checked.key.name) != (ws, name):
            raise ServeError(403, f"this API key does not open model {name!r} of workspace {ws!r}")
        actor = common_pb2.Actor(username=f"key:{checked.key.prefix}")
        return Caller(f"key:{checked.key.id}", checked.key.rate_per_minute or default, actor)
    try:  # a platform token, or the portal's session cookie (a POST must then carry the CSRF header)
        user = await request_user(request, serve.settings)
    except ProblemError as exc:
        raise ServeError(exc.status, exc.detail, getattr(exc, "headers", None)) from exc
    actor = common_pb2.Actor(user_id=user.id, username=user.username, platform_admin=user.platform_admin)
    await serve.check_member(actor, ws, name)
    return Caller(f"user:{user.id}", default, actor)


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ServeError(413, f"the body has {declared} bytes, at most {limit} are accepted")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ServeError(413, f"the body is larger than {limit} bytes, the most accepted")
        chunks.append(chunk)
    return b"".join(chunks)


def version_of(rest: str) -> int:
    """The version a ``/models/{m}/versions/{v}/...`` path names (0: none, the active one). ServeError 404 for a
    version that is not a number."""
    parts = [p for p in rest.split("/") if p]
    if len(parts) >= 4 and parts[0] == "models" and parts[2] == "versions":
        if not parts[3].isdigit() or not 0 < int(parts[3]) <= 2**31 - 1:
            raise ServeError(404, f"unknown version {parts[3]!r} of model {parts[1]!r}: versions are 1, 2, ...")
        return int(parts[3])
    return 0


def endpoint_of(rest: str) -> str:
    parts = [p for p in rest.split("/") if p]
    if not parts:
        return "server"
    if parts[0] == "health":
        return "health"
    return parts[-1] if parts[-1] in ("infer", "predict", "ready") else "metadata"


def traffic_rows(endpoint: str, request: Any, response: Any) -> tuple[list[dict[str, Any]], list[Any]]:
    """(one dict of features per row, one prediction per row) of an answered request, for monitoring."""
    if endpoint == "predict":
        rows = request.get("rows") or []
        feats = [r if isinstance(r, dict) else {str(j): v for j, v in enumerate(r)} for r in rows]
        return feats, list(response.get("predictions") or [])
    inputs = request.get("inputs") or []
    outputs = response.get("outputs") or []
    predictions = list(outputs[0].get("data") or []) if outputs else []
    if len(inputs) == 1 and len(inputs[0].get("shape") or []) == 2:
        n, f = inputs[0]["shape"]
        flat = _flat(inputs[0].get("data"))
        feats = [{str(j): flat[i * f + j] for j in range(f)} for i in range(n)]
    else:
        columns = {t.get("name", str(i)): _flat(t.get("data")) for i, t in enumerate(inputs)}
        n = min((len(c) for c in columns.values()), default=0)
        feats = [{k: c[i] for k, c in columns.items()} for i in range(n)]
    if outputs and len(predictions) != len(feats) and feats:  # e.g. probabilities: [N, classes]
        step = len(predictions) // len(feats)
        predictions = [predictions[i * step:(i + 1) * step] for i in range(len(feats))] if step else predictions
    return feats, predictions


def _flat(data: Any) -> list[Any]:
    if isinstance(data, list):
        out: list[Any] = []
        for d in data:
            out.extend(_flat(d) if isinstance(d, list) else [d])
        return out
    return [data]


def _record(serve: ServeState, ws: str, name: str, version: int, sample_rate: float, endpoint: str,
            request_id: str, body: bytes, answer: bytes) -> None:
    """After the answer is sent: parse both bodies again and keep the rows (a list append)."""
    try:
        rows, predictions = traffic_rows(endpoint, json.loads(body), json.loads(answer))
        if rows:
            serve.traffic.record(ws, name, version, request_id, rows, predictions, sample_rate=sample_rate)
    except Exception as exc:  # noqa: BLE001 - collection must never break serving
        log.warning("model %s/%s: traffic not recorded: %s", ws, name, exc)


@router.get("/serve/openapi.json")
async def serve_openapi(request: Request) -> JSONResponse:
    """The serving surface's own OpenAPI document (``openapi.py``): not in /api/v1's, which speaks problems."""
    return JSONResponse(document(getattr(request.app, "version", "")))


@router.api_route("/serve/{ws}/{name}/v2{rest:path}", methods=["GET", "POST"])
async def serve_model(ws: str, name: str, rest: str, request: Request) -> Response:
    serve = state(request)
    started = time.perf_counter()
    endpoint = endpoint_of(rest)
    response = await _serve(serve, ws, name, rest, request, endpoint)
    # only for models that exist and callers it let in: names made up by anyone must not grow the label set
    if getattr(request.state, "serve_route", False):
        serve.metrics.observe(ws, name, endpoint, response.status_code, time.perf_counter() - started)
    return response


async def _serve(serve: ServeState, ws: str, name: str, rest: str, request: Request, endpoint: str) -> Response:
    if not _NAME.match(ws) or not _MODEL.match(name):
        return error(404, f"no model {name!r} is served in workspace {ws!r}")
    try:
        caller = await authenticate(request, serve, ws, name)
        route = await serve.route(ws, name, version_of(rest))  # cached: a 404 for a model that is not served
        request.state.serve_route = True
        wait = serve.buckets.take(caller.who, caller.rate)
        if wait:
            raise ServeError(429, f"more than {caller.rate} requests per minute; retry in {wait} s",
                             {"Retry-After": str(wait)})
        body = await read_body(request, serve.settings.serve_max_body_bytes) if request.method == "POST" else b""
        if not route.upstream_url:
            raise ServeError(503, f"version {route.model.version} of model {name!r} is {route.model.state}, not "
                                  "serving yet", {"Retry-After": "2"})
        headers = {"Content-Type": request.headers.get("content-type", "application/json")} if body else {}
        upstream = None
        for attempt in (1, 2):  # once more on a fresh connection: a kept-alive one may have been closed meanwhile
            try:
                upstream = await serve.client().request(request.method, f"{route.upstream_url}/v2{rest}",
                                                        params=request.query_params, content=body, headers=headers)
                break
            except httpx.TransportError as exc:
                if attempt == 2 or not isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
                    serve.forget(ws, name)
                    raise ServeError(502, f"the model server did not answer ({type(exc).__name__}); try again "
                                          "shortly") from exc
    except ServeError as exc:
        return error(exc.status, str(exc), exc.headers)
    except ProblemError as exc:  # the runner or registry is unavailable
        return error(exc.status, exc.detail, getattr(exc, "headers", None))
    out_headers = {k: v for k, v in upstream.headers.items() if k.lower() in ("x-request-id",)}
    background = None
    if (endpoint in ("infer", "predict") and upstream.status_code == 200 and serve.traffic is not None):
        background = BackgroundTask(_record, serve, ws, name, route.model.version, route.sample_rate or 1.0,
                                    endpoint, upstream.headers.get("x-request-id", ""), body, upstream.content)
    return Response(upstream.content, status_code=upstream.status_code, headers=out_headers,
                    media_type=upstream.headers.get("content-type", "application/json"), background=background)


@router.post("/serve/{ws}/{name}/feedback")
async def feedback(ws: str, name: str, request: Request) -> Response:
    """True labels, later, by the request ids the answers carried: ``{"labels": {"<request id>": label}}``
    (a request of several rows: ``<id>:<row>``)."""
    serve = state(request)
    if not _NAME.match(ws) or not _MODEL.match(name):
        return error(404, f"no model {name!r} is served in workspace {ws!r}")
    try:
        caller = await authenticate(request, serve, ws, name)
        wait = serve.buckets.take(caller.who, caller.rate)
        if wait:
            raise ServeError(429, f"more than {caller.rate} requests per minute; retry in {wait} s",
                             {"Retry-After": str(wait)})
        body = await read_body(request, serve.settings.serve_max_body_bytes)
        await serve.route(ws, name)  # the model exists
        try:
            doc = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ServeError(400, f"the body is not JSON: {exc}") from exc
        labels = doc.get("labels") if isinstance(doc, dict) else None
        if not isinstance(labels, dict) or not labels or not all(isinstance(k, str) and k for k in labels):
            raise ServeError(400, 'the body must be {"labels": {"<request id>": <true label>, ...}}')
        if serve.traffic is None:
            raise ServeError(503, "traffic collection is not available on this gateway")
    except ServeError as exc:
        return error(exc.status, str(exc), exc.headers)
    except ProblemError as exc:
        return error(exc.status, exc.detail, getattr(exc, "headers", None))
    return JSONResponse({"accepted": serve.traffic.feedback(ws, name, labels)})


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request) -> Response:
    """Prometheus metrics of the serving proxy; a platform admin's API token is required (the labels name
    workspaces and models)."""
    serve = state(request)
    try:  # a platform token, or the portal's session cookie (a POST must then carry the CSRF header)
        user = await request_user(request, serve.settings)
    except ProblemError as exc:
        return PlainTextResponse(exc.detail + "\n", status_code=exc.status, headers={"WWW-Authenticate": "Bearer"}
                                 if exc.status == 401 else None)
    if not user.platform_admin:
        return PlainTextResponse("only a platform admin can read the metrics\n", status_code=403)
    return PlainTextResponse(serve.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
