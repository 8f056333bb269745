"""Model serving (issue 15): Iris predictions per second and p50/p99 latency, Reprolab's Open Inference Protocol
server beside MLServer 1.7.1 serving the same model, measured in the same run; and the time from ``model
deploy`` to the first successful prediction.

One request shape everywhere: ``POST .../v2/models/iris/infer`` with one row, a ``[1, 4]`` FP64 tensor. Targets:

* ``ours, podman``: oip_server.py in the run's own image, the container the platform's deployer started
  (``podman`` with a 1-CPU limit, port published on 127.0.0.1), requests sent to it directly;
* ``ours, host``: the same file run directly by the host's Python on the same joblib (no container, no limit);
* ``gateway /serve``: through the platform's gateway with a model API key (key check, rate limit, traffic
  collection, proxy) to that container;
* ``MLServer 1.7.1``: ``mlserver start`` with ``mlserver_sklearn.SKLearnModel`` from .tools/mlserver
  (``make mlserver-env``), its defaults otherwise (one parallel inference worker), on the same joblib.

Load: ``wrk`` (Debian's package; ``scripts/bench-deps.sh``), one thread, C connections kept alive, a C load
generator in its own process so the Python under test does not share an interpreter with the client: a
Python client (httpx.AsyncClient) tops out near 900 req/s on this 2-core machine, below what the servers
do. ``--client httpx`` uses one anyway (C workers on one AsyncClient). Each cell: a warm-up, then a
fixed duration. Concurrency 1, 10, 50.

The platform is the one ``reprolab up`` starts (SQLite, its own nats-server, podman's API), under a temporary
data dir: it builds an environment with scikit-learn, runs a training script that writes model.joblib,
and deploys it; ``deploy -> first prediction`` is from ``POST /workspaces/{ws}/models`` until an infer through
the gateway first answers 200 (polled every 0.1 s). Targets: direct >= MLServer's throughput with p99 <= 30 ms
at c=10; deploy -> first prediction <= 60 s.

Usage: python bench/serve.py [--duration S] [--warmup S] [--concurrency 1,10,50] [--client wrk|httpx]
                             [--no-platform]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.integration.test_runs import tar_gz  # noqa: E402
from tests.serving.oipservers import (  # noqa: E402
    MLSERVER_VERSION,
    missing_mlserver,
    start_mlserver,
    start_oip,
    train_iris,
)

BASE = "localhost/reprolab/bookworm-python:latest"
TRAIN = """
import joblib, os
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
X, y = load_iris(return_X_y=True)
os.makedirs("/outputs", exist_ok=True)
joblib.dump(LogisticRegression(max_iter=500).fit(X, y), "/outputs/model.joblib")
"""
ACCEPTED = (200, 201, 202)
BODY = json.dumps({"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}]})

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
%(auth)s
wrk.body = %(body)s
function done(summary, latency, requests)
  io.write(string.format('{"requests": %%d, "duration_us": %%d, "bad": %%d, "errors": %%d, ' ..
    '"p50_us": %%d, "p99_us": %%d}\\n', summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass
class Target:
    label: str
    url: str  # the infer URL
    headers: dict[str, str] = field(default_factory=dict)


def wrk(t: Target, concurrency: int, seconds: int, workdir: Path) -> dict:
    script = workdir / f"{uuid.uuid4().hex}.lua"
    auth = "".join(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}\n" for k, v in t.headers.items())
    script.write_text(LUA % {"auth": auth, "body": json.dumps(BODY)})
    out = subprocess.run(["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script),
                          t.url], capture_output=True, text=True, check=True)
    f = json.loads(out.stdout.strip().splitlines()[-1])
    return {"rps": f["requests"] / (f["duration_us"] / 1e6), "p50": f["p50_us"] / 1000, "p99": f["p99_us"] / 1000,
            "bad": f["bad"] + f["errors"]}


async def _httpx(t: Target, concurrency: int, seconds: float) -> dict:
    latencies: list[float] = []
    bad = 0
    headers = {"Content-Type": "application/json"} | t.headers
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:
        end = time.monotonic() + seconds

        async def worker() -> None:
            nonlocal bad
            while time.monotonic() < end:
                start = time.perf_counter()
                try:
                    ok = (await client.post(t.url, content=BODY, headers=headers)).status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - start)
                bad += not ok

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.monotonic() - started
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    return {"rps": len(latencies) / elapsed, "p50": pick(0.5), "p99": pick(0.99), "bad": bad}


def measure(t: Target, concurrency: int, args: argparse.Namespace, workdir: Path) -> dict:
    if args.client == "wrk":
        wrk(t, concurrency, args.warmup, workdir)
        return wrk(t, concurrency, args.duration, workdir)
    asyncio.run(_httpx(t, concurrency, args.warmup))
    return asyncio.run(_httpx(t, concurrency, args.duration))


def check_prediction(t: Target) -> None:
    r = httpx.post(t.url, content=BODY, headers={"Content-Type": "application/json"} | t.headers, timeout=30)
    if r.status_code != 200 or r.json()["outputs"][0]["data"] not in ([0], [[0]]):
        raise SystemExit(f"{t.label}: the warm-up prediction failed: {r.status_code} {r.text[:300]}")


def deploy_on_platform(platform, cleanup: list) -> tuple[float, float, Target, Target]:  # noqa: ANN001
    """Builds, trains and deploys through the platform; returns (seconds from deploy to the first prediction,
    seconds from deploy to ``serving``, the gateway target with a model key, the container's direct target).
    Appends to ``cleanup`` what stops the model's container (it outlives the platform otherwise)."""
    from reprolab_cli.client import Client
    from reprolab_runner.deploy.engine import PORT, handle_for

    token = platform.admin_token()
    admin = Client(platform.url, token)
    ws = f"bench-{uuid.uuid4().hex[:8]}"
    admin.post("/workspaces", json={"slug": ws, "title": "serving bench"})
    admin.post(f"/workspaces/{ws}/environments", json={"name": "sk", "spec": {
        "base": BASE, "python": {"version": "3.11", "requirements": ["scikit-learn"]}}})
    t0 = time.monotonic()
    build = admin.post(f"/workspaces/{ws}/environments/sk/versions/1/builds", expect=ACCEPTED)
    while (b := admin.get(f"/builds/{build['id']}"))["status"] not in ("succeeded", "failed"):
        time.sleep(1)
    if b["status"] != "succeeded":
        raise SystemExit(f"the environment build failed: {b}")
    print(f"environment with scikit-learn built in {time.monotonic() - t0:.0f} s", flush=True)
    code = admin.post(f"/workspaces/{ws}/code", content=tar_gz({"train.py": TRAIN}))["digest"]
    run = admin.post(f"/workspaces/{ws}/runs", json={"environment": "sk", "code": code,
                                                    "command": ["python3", "train.py"]}, expect=ACCEPTED)
    while (r := admin.get(f"/runs/{run['id']}"))["status"] not in ("succeeded", "failed", "cancelled", "timed_out"):
        time.sleep(0.5)
    if r["status"] != "succeeded":
        raise SystemExit(f"the training run failed: {r}")
    gateway = Target("gateway /serve (key)", f"{platform.url}/serve/{ws}/iris/v2/models/iris/infer")
    http = httpx.Client(timeout=30)
    bearer = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    t0 = time.monotonic()
    admin.post(f"/workspaces/{ws}/models", json={"run_id": run["id"], "artifact": "model.joblib", "name": "iris"},
               expect=ACCEPTED)
    cleanup.append(lambda: admin.request("DELETE", f"/workspaces/{ws}/models/iris"))
    serving_at = 0.0
    while True:
        resp = http.post(gateway.url, content=BODY, headers=bearer)
        if resp.status_code == 200:
            first = time.monotonic() - t0
            break
        if not serving_at and admin.get(f"/workspaces/{ws}/models/iris/versions/1")["state"] == "serving":
            serving_at = time.monotonic() - t0
        if time.monotonic() - t0 > 300:
            raise SystemExit(f"no prediction 300 s after deploy: {resp.status_code} {resp.text[:300]}")
        time.sleep(0.1)
    serving_at = serving_at or first
    key = admin.post(f"/workspaces/{ws}/models/iris/keys", json={"label": "bench", "rate_per_minute": 1_000_000},
                     expect=ACCEPTED)
    gateway.headers = {"Authorization": f"Bearer {key['secret']}"}
    port = subprocess.run(["podman", "port", handle_for(ws, "iris", 1), f"{PORT}/tcp"], capture_output=True,
                          text=True, check=True).stdout.split()[0].rsplit(":", 1)[1]
    direct = Target("ours, podman (run image)", f"http://127.0.0.1:{port}/v2/models/iris/infer")
    http.close()
    return first, serving_at, gateway, direct


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=5, help="seconds measured per target and concurrency")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of warm-up before each cell")
    parser.add_argument("--concurrency", default="1,10,50")
    parser.add_argument("--client", choices=["wrk", "httpx"], default="wrk")
    parser.add_argument("--no-platform", action="store_true",
                        help="only the host-Python server and MLServer (no platform, no podman, no deploy time)")
    args = parser.parse_args()
    if args.client == "wrk" and not shutil.which("wrk"):
        print("wrk is not installed: bash scripts/bench-deps.sh (Debian package wrk), or --client httpx",
              file=sys.stderr)
        return 2
    if reason := missing_mlserver():
        print(reason, file=sys.stderr)
        return 2
    levels = [int(c) for c in args.concurrency.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="reprolab-bench-serve-"))
    servers = []
    platform = None
    cleanup: list = []
    try:
        artifact = train_iris(tmp / "model" / "model.joblib")
        ml = start_mlserver(tmp / "mlserver", artifact)
        ours = start_oip(tmp / "oip", artifact)
        servers += [ml, ours]
        ml.wait_ready("iris", timeout=120)
        ours.wait_ready("iris", timeout=120)
        targets = [Target("ours, host python", f"{ours.url}/v2/models/iris/infer")]
        mlserver = Target(f"MLServer {MLSERVER_VERSION}", f"{ml.url}/v2/models/iris/infer")
        deploy = None
        if not args.no_platform:
            from reprolab_cli.supervisor import Platform

            platform = Platform(tmp / "platform")
            platform.start(timeout=120)
            first, serving_at, gateway, direct = deploy_on_platform(platform, cleanup)
            deploy = (first, serving_at)
            targets = [direct, targets[0], gateway]
        targets.append(mlserver)
        for t in targets:
            check_prediction(t)
        print(f"serving bench: {args.client}, {args.warmup} s warm-up + {args.duration} s per cell, "
              f"[1,4] FP64 infer; data in {tmp}")
        print(f"{'target':<26} {'c':>3} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'x MLServer':>11} {'failed':>7}")
        results: dict[tuple[str, int], dict] = {}
        failed = False
        for c in levels:
            for t in [mlserver] + [t for t in targets if t is not mlserver]:
                r = measure(t, c, args, tmp)
                results[(t.label, c)] = r
                failed |= r["bad"] > 0
                ratio = r["rps"] / results[(mlserver.label, c)]["rps"]
                print(f"{t.label:<26} {c:>3} {r['rps']:>8.0f} {r['p50']:>8.2f} {r['p99']:>8.2f} {ratio:>11.2f} "
                      f"{r['bad']:>7}", flush=True)
        print()
        ref = {c: results[(mlserver.label, c)] for c in levels}
        for t in targets:
            if t is mlserver:
                continue
            cells = ", ".join(f"c={c}: {results[(t.label, c)]['rps'] / ref[c]['rps']:.2f}x req/s, p99 "
                              f"{results[(t.label, c)]['p99']:.1f} vs {ref[c]['p99']:.1f} ms" for c in levels)
            print(f"{t.label} vs MLServer: {cells}")
        if 10 in levels:
            for t in targets[:-1]:
                if t.label.startswith("ours"):
                    r = results[(t.label, 10)]
                    met = r["rps"] >= ref[10]["rps"] and r["p99"] <= 30
                    print(f"target (c=10, direct, {t.label}): >= MLServer's {ref[10]['rps']:.0f} req/s with p99 <= "
                          f"30 ms: {r['rps']:.0f} req/s, p99 {r['p99']:.1f} ms -> {'met' if met else 'NOT met'}")
        if deploy:
            first, serving_at = deploy
            print(f"deploy -> serving {serving_at:.1f} s; deploy -> first prediction through the gateway {first:.1f} s "
                  f"(target <= 60 s: {'met' if first <= 60 else 'NOT met'}; the seed: 255 min)")
        if failed:
            print("some requests failed (non-2xx or socket errors): see the last column", file=sys.stderr)
        return 1 if failed else 0
    finally:
        for s in servers:
            s.stop()
        for undo in cleanup:
            try:
                undo()
            except Exception as exc:  # noqa: BLE001 - the platform is stopped below all the same
                print(f"clean-up: {exc}", file=sys.stderr)
        if platform is not None:
            platform.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
