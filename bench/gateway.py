"""Gateway throughput and latency, each beside the framework's own ceiling measured in the same run.

Starts a platform (the embedded defaults: SQLite, its own nats-server), then drives it with ``wrk`` (Debian's
package; ``scripts/bench-deps.sh`` installs it), a C load generator in a second process, so the Python
under test does not share its interpreter with the client. For each endpoint and each concurrency
(1, 10, 50 connections, one wrk thread) it prints req/s, p50 and p99, and the ratio to ``GET /healthz``
(unauthenticated, no database, no NATS: the ceiling of uvicorn + FastAPI on this machine) at the same
concurrency.

Endpoints: ``/healthz``; ``GET /api/v1/me`` (the token check only); ``GET /api/v1/workspaces/{ws}`` and
``GET .../environments`` (token check + a NATS request to the registry, which reads its database);
``POST .../environments/{env}/versions`` (a new version: a registry transaction and an outbox event).

Targets (issue 14): authenticated reads >= 0.5 x /healthz, p99 < 50 ms at c=10; version create >= 300/s.

The gateway serves with one uvicorn worker: its token cache and revocation ("a revoked token stops
working at once through this gateway") are per process.

The two registry reads go through the gateway's read cache (reprolab_gateway/core/readcache.py,
REPROLAB_GATEWAY_READ_CACHE_SECONDS, default 5): wrk repeats one caller's request, so after the first
request of each cell the reply comes from the cache, and the figures are those of a hit (token check,
route, response; no NATS). Entries go when the registry announces a committed change to the workspace
(``registry.changed``), when this gateway forwards a write to it (before that write's response), after
the time limit, and all of them whenever the gateway's NATS connection drops; nothing is cached while it
is down. ``--read-cache-seconds 0`` turns the cache off and measures every read's round trip to the
registry, as before the cache.

Usage: python bench/gateway.py [--duration S] [--concurrency 1,10,50] [--read-cache-seconds S]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from reprolab_cli.client import Client
from reprolab_cli.supervisor import Platform

SPEC = {"base": "python:3.12-slim", "python": {"version": "3.12", "requirements": ["numpy"]}}

# wrk's Lua hooks: one request shape per run; done() prints the figures as one JSON line.
LUA = """
wrk.method = %(method)s
local auth = %(auth)s
if auth then wrk.headers["Authorization"] = auth end
wrk.headers["Content-Type"] = "application/json"
wrk.body = %(body)s
function done(summary, latency, requests)
  io.write(string.format('{"requests": %%d, "duration_us": %%d, "bad": %%d, "errors": %%d, ' ..
    '"p50_us": %%d, "p99_us": %%d}\\n', summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def lua_string(value: str | None) -> str:
    return "nil" if value is None else json.dumps(value)


def wrk(url: str, *, concurrency: int, duration: float, method: str = "GET", token: str | None = None,
        body: str | None = None, workdir: Path) -> dict:
    script = workdir / f"{uuid.uuid4().hex}.lua"
    script.write_text(LUA % {"method": lua_string(method), "auth": lua_string(f"Bearer {token}" if token else None),
                             "body": lua_string(body)})
    out = subprocess.run(["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(duration))}s", "--timeout", "10s",
                          "-s", str(script), url], capture_output=True, text=True, check=True)
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    seconds = figures["duration_us"] / 1e6
    return {"rps": figures["requests"] / seconds, "p50": figures["p50_us"] / 1000, "p99": figures["p99_us"] / 1000,
            "bad": figures["bad"], "errors": figures["errors"], "requests": figures["requests"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=5, help="seconds per endpoint and concurrency")
    parser.add_argument("--concurrency", default="1,10,50")
    parser.add_argument("--read-cache-seconds", type=float, default=None,
                        help="REPROLAB_GATEWAY_READ_CACHE_SECONDS for the gateway (default: its own, 5; 0: off)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is not installed: bash scripts/bench-deps.sh (Debian package wrk)", file=sys.stderr)
        return 2
    levels = [int(c) for c in args.concurrency.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="reprolab-bench-gw-"))
    extra = {}
    if args.read_cache_seconds is not None:
        extra["REPROLAB_GATEWAY_READ_CACHE_SECONDS"] = str(args.read_cache_seconds)
    platform = Platform(tmp / "platform", extra_env=extra)
    try:
        platform.start(timeout=120)
        token = platform.admin_token()
        admin = Client(platform.url, token)
        ws = f"bench-{uuid.uuid4().hex[:8]}"
        admin.post("/workspaces", json={"slug": ws, "title": "gateway bench"})
        admin.post(f"/workspaces/{ws}/environments", json={"name": "py", "spec": SPEC})
        api = f"{platform.url}/api/v1"
        cases = [
            ("GET /healthz", f"{platform.url}/healthz", "GET", None, None),
            ("GET /me", f"{api}/me", "GET", token, None),
            ("GET workspace", f"{api}/workspaces/{ws}", "GET", token, None),
            ("GET environments", f"{api}/workspaces/{ws}/environments", "GET", token, None),
            ("POST version", f"{api}/workspaces/{ws}/environments/py/versions", "POST", token,
             json.dumps({"spec": SPEC, "note": "bench"})),
        ]
        cache = "default" if args.read_cache_seconds is None else f"{args.read_cache_seconds:g} s"
        print(f"gateway bench: wrk -t1, {args.duration:.0f} s per cell, read cache {cache}, "
              f"platform in {platform.data_dir}")
        print(f"{'endpoint':<18} {'c':>3} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'x healthz':>10} {'non-2xx':>8}")
        results: dict[tuple[str, int], dict] = {}
        failed = False
        for c in levels:
            for name, url, method, tok, body in cases:
                r = wrk(url, concurrency=c, duration=args.duration, method=method, token=tok, body=body, workdir=tmp)
                results[(name, c)] = r
                ceiling = results[("GET /healthz", c)]["rps"]
                bad = r["bad"] + r["errors"]
                failed |= bad > 0
                print(f"{name:<18} {c:>3} {r['rps']:>9.0f} {r['p50']:>8.1f} {r['p99']:>8.1f} "
                      f"{r['rps'] / ceiling:>10.2f} {bad:>8}", flush=True)
        print()
        for c in levels:
            ceiling = results[("GET /healthz", c)]["rps"]
            reads = [n for n, *_ in cases[1:4]]
            worst = min(results[(n, c)]["rps"] for n in reads) / ceiling
            p99 = max(results[(n, c)]["p99"] for n in reads)
            print(f"c={c}: slowest authenticated read {worst:.2f} x /healthz (target >= 0.5), worst p99 "
                  f"{p99:.1f} ms{' (target < 50 ms)' if c == 10 else ''}; version create "
                  f"{results[('POST version', c)]['rps']:.0f}/s (target >= 300/s)")
        if failed:
            print("some requests failed (non-2xx or socket errors): see the last column", file=sys.stderr)
        admin.close()
        return 1 if failed else 0
    finally:
        platform.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
