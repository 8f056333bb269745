"""JupyterLab sessions through the gateway: kernel round-trip latency through the gateway beside direct, and
(when the runner's sessions are on this branch) click-to-ready beside a raw ``podman run`` of the same image.

Latency: a real jupyter_server + ipykernel (the dev environment's) with the runner's settings for a session
(base_url /sessions/<id>/, a token), and the real gateway app under uvicorn in its OWN process (so the client
does not share its interpreter), on its own nats-server. The gateway is pointed at the server by a FAKE
resolver (``BenchResolver``: the runner's connect answer, owner = whoever asks). Each round trip is a
``kernel_info_request`` on the shell channel over the v1 kernel websocket protocol and its reply; the same
number of round trips direct to the server and through the gateway, alternating in blocks. Target: <= 2 ms
added per message (median).

Click-to-ready (``--starts N``, 0 to skip): a whole Platform (the one ``reprolab up`` starts: gateway, runner,
builder, registry, podman's API) with an environment built through it. One first session builds the notebook
layer (reported apart); then N times: ``POST /workspaces/{ws}/sessions`` until JupyterLab's ``api/status``
answers 200 THROUGH THE GATEWAY's proxy (the student's token only), then stopped. Beside it, in the same run,
N raw ``podman run -d`` of the very same session image, command and environment (``JUPYTER_TOKEN``, port
published on 127.0.0.1) until ``api/status`` answers directly: what a user with Docker knowledge would get,
without a runner, a home volume, the database or the gateway. Target: <= 1.5x raw (median).

Usage: python bench/session.py [--messages N] [--starts N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from reprolab_common.natsserver import NatsServer, free_port, stop_child

SUBPROTOCOL = "v1.kernel.websocket.jupyter.org"


def serve_gateway(root: str, nats_url: str, port: int, upstream_url: str, token: str) -> None:
    """(Child process) the gateway app under uvicorn, its session resolver the bench's fake."""
    import uvicorn
    from reprolab_common.settings import CommonSettings
    from reprolab_gateway.core.config import GatewaySettings
    from reprolab_gateway.main import create_app
    from reprolab_gateway.sessions_proxy import FixedResolver, SessionGone, Upstream

    class BenchResolver(FixedResolver):
        """FAKE: every session id resolves to the bench's server, owned by whoever asks."""

        async def resolve(self, session_id, actor):
            if not session_id.startswith("bench"):
                raise SessionGone(session_id)
            return Upstream(session_id=session_id, workspace="bench", owner=actor.user_id, upstream_url=upstream_url,
                            server_token=token)

    settings = GatewaySettings(common=CommonSettings(nats_url=nats_url, data_dir=f"{root}/data"),
                               bootstrap_token_file=Path(root) / "admin-token", nats_connect_wait_seconds=10)
    app = create_app(settings)
    app.state.session_resolver = BenchResolver()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", loop="asyncio", http="h11",
                ws="websockets-sansio")


def _wait(url: str, headers: dict, proc: subprocess.Popen, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited")
        try:
            if httpx.get(url, headers=headers).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{what} did not answer")


async def round_trips(url: str, headers: dict, n: int) -> list[float]:
    from jupyter_server.services.kernels.connection.base import deserialize_msg_from_ws_v1, serialize_msg_to_ws_v1
    from websockets.asyncio.client import connect

    out = []
    async with connect(url, additional_headers=headers, subprotocols=[SUBPROTOCOL], open_timeout=120,
                       max_size=None) as ws:
        for i in range(n + 20):
            header = {"msg_id": uuid.uuid4().hex, "msg_type": "kernel_info_request", "username": "bench",
                      "session": "bench", "date": "2026-01-01T00:00:00Z", "version": "5.3"}
            frame = serialize_msg_to_ws_v1([json.dumps(p).encode() for p in (header, {}, {}, {})], "shell")
            t = time.perf_counter()
            await ws.send(frame)
            while True:
                channel, parts = deserialize_msg_from_ws_v1(await ws.recv())
                if channel == "shell" and json.loads(parts[1]).get("msg_id") == header["msg_id"]:
                    break
            if i >= 20:  # the first ones warm up both paths
                out.append((time.perf_counter() - t) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--starts", type=int, default=5, help="click-to-ready starts each (0: skip)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-session-"))
    nats = NatsServer(root / "js", log_file=root / "nats.log").start()
    sid, token = "bench" + secrets.token_hex(6), secrets.token_hex(24)
    jport, gport = free_port(), free_port()
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(root / "cfg"), "JUPYTER_DATA_DIR": str(root / "jd"),
           "JUPYTER_RUNTIME_DIR": str(root / "rt"), "IPYTHONDIR": str(root / "ip"), "HOME": str(root)}
    base = f"/sessions/{sid}/"
    jupyter = subprocess.Popen([sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root",
                                "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={jport}", f"--ServerApp.base_url={base}",
                                f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}"],
                               env=env, stdout=open(root / "jupyter.log", "wb"), stderr=subprocess.STDOUT,
                               start_new_session=True)
    direct = f"http://127.0.0.1:{jport}"
    gateway = subprocess.Popen([sys.executable, __file__, "--serve-gateway", str(root), nats.url, str(gport), direct,
                                token], stdout=open(root / "gateway.log", "wb"), stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        jh = {"Authorization": f"token {token}"}
        _wait(f"{direct}{base}api/status", jh, jupyter, "jupyter_server")
        _wait(f"http://127.0.0.1:{gport}/healthz", {}, gateway, "the gateway")
        admin = (root / "admin-token").read_text().strip()
        gh = {"Authorization": f"Bearer {admin}"}
        kid = httpx.post(f"{direct}{base}api/kernels", headers=jh, json={}).json()["id"]
        direct_ws = f"ws://127.0.0.1:{jport}{base}api/kernels/{kid}/channels"
        gw_ws = f"ws://127.0.0.1:{gport}{base}api/kernels/{kid}/channels"
        d_all, g_all = [], []
        block = max(args.messages // 5, 1)
        for _ in range(5):  # alternate, so drift on a shared machine hits both alike
            d_all += asyncio.run(round_trips(direct_ws, jh, block))
            g_all += asyncio.run(round_trips(gw_ws, gh, block))
        d50, g50 = statistics.median(d_all), statistics.median(g_all)
        d95 = statistics.quantiles(d_all, n=20)[18]
        g95 = statistics.quantiles(g_all, n=20)[18]
        print(f"kernel round trip (kernel_info over the v1 websocket, {len(d_all)} each):")
        print(f"  direct        p50 {d50:7.3f} ms   p95 {d95:7.3f} ms")
        print(f"  via gateway   p50 {g50:7.3f} ms   p95 {g95:7.3f} ms")
        print(f"  added per message: p50 {g50 - d50:+.3f} ms, p95 {g95 - d95:+.3f} ms  (target <= 2 ms)  "
              f"{'OK' if g50 - d50 <= 2 else 'MISSED'}")
    finally:
        stop_child(gateway)
        stop_child(jupyter)
        nats.stop()
    if args.starts > 0:
        click_to_ready(args.starts)


BASE_IMAGE = "localhost/reprolab/bookworm-python:latest"


def _until_200(url: str, headers: dict, t0: float, timeout: float = 300) -> float:
    with httpx.Client(timeout=10) as c:
        while True:
            try:
                if c.get(url, headers=headers).status_code == 200:
                    return time.monotonic() - t0
            except httpx.TransportError:
                pass
            if time.monotonic() - t0 > timeout:
                raise RuntimeError(f"{url} did not answer within {timeout} s")
            time.sleep(0.05)


def click_to_ready(n: int) -> None:
    """POST -> JupyterLab answering through the gateway, beside a raw podman run of the same session image."""
    from reprolab_cli.client import Client
    from reprolab_cli.supervisor import Platform

    root = Path(tempfile.mkdtemp(prefix="bench-session-platform-"))
    platform = Platform(root / "platform", extra_env={"REPROLAB_RUNNER_RECONCILE_SECONDS": "86400"})
    homes: set[str] = set()
    raw_names: list[str] = []
    try:
        print("click-to-ready: starting a platform and building an environment (six==1.16.0) ...", flush=True)
        platform.start(timeout=120)
        admin = Client(platform.url, platform.admin_token())
        ws = f"bench-{uuid.uuid4().hex[:8]}"
        token = admin.post("/users", json={"username": f"bs-{uuid.uuid4().hex[:6]}"})["token"]
        user = admin.as_user(token)
        user.post("/workspaces", json={"slug": ws, "title": "session bench"})
        user.post(f"/workspaces/{ws}/environments", json={"name": "py", "spec": {
            "base": BASE_IMAGE, "python": {"version": "3.11", "requirements": ["six==1.16.0"]}}})
        build = user.post(f"/workspaces/{ws}/environments/py/versions/1/builds", expect=(202,))
        while (b := user.get(f"/builds/{build['id']}"))["status"] not in ("succeeded", "failed"):
            time.sleep(0.5)
        if b["status"] != "succeeded":
            raise RuntimeError(f"the environment build failed: {b.get('error')}")
        gh = {"Authorization": f"Bearer {token}"}

        def one() -> tuple[float, str]:
            t0 = time.monotonic()
            s = user.post(f"/workspaces/{ws}/sessions", json={"environment": "py"}, expect=(201,))
            took = _until_200(f"{platform.url.rstrip('/')}/sessions/{s['id']}/api/status", gh, t0, timeout=900)
            return took, s["id"]

        def stop(sid: str) -> None:
            user.request("DELETE", f"/workspaces/{ws}/sessions/{sid}")
            while user.get(f"/workspaces/{ws}/sessions/{sid}")["status"] not in ("stopped", "failed"):
                time.sleep(0.2)

        first, sid = one()
        container = json.loads(subprocess.run(["podman", "inspect", f"reprolab-session-{sid}"], check=True,
                                              capture_output=True, text=True).stdout)[0]
        homes.add(container["Config"]["Labels"].get("org.reprolab.session-home", ""))
        image = container["Image"]
        cmd = container["Config"]["Cmd"] or []
        entrypoint = container["Config"]["Entrypoint"] or []
        if isinstance(entrypoint, str):
            entrypoint = entrypoint.split()
        base = next(a.split("=", 1)[1] for a in cmd if a.startswith("--ServerApp.base_url="))
        stop(sid)
        print(f"  first session of the version (builds the notebook layer): {first:.2f} s", flush=True)
        platform_times, raw_times = [], []
        for _ in range(n):  # alternate, so drift on a shared machine hits both alike
            took, sid = one()
            platform_times.append(took)
            stop(sid)
            name = f"reprolab-bench-raw-{uuid.uuid4().hex[:8]}"
            raw_names.append(name)
            port = free_port()
            rtoken = secrets.token_hex(24)
            t0 = time.monotonic()
            subprocess.run(["podman", "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8888",
                            "-e", f"JUPYTER_TOKEN={rtoken}", "--entrypoint", json.dumps(entrypoint), image, *cmd],
                           check=True, capture_output=True)
            raw_times.append(_until_200(f"http://127.0.0.1:{port}{base}api/status",
                                        {"Authorization": f"token {rtoken}"}, t0))
            subprocess.run(["podman", "rm", "-f", name], capture_output=True)
        p50, r50 = statistics.median(platform_times), statistics.median(raw_times)
        print(f"click-to-ready ({n} each, layer cached; POST -> api/status 200):")
        print(f"  raw podman run       p50 {r50:6.2f} s   all {' '.join(f'{t:.2f}' for t in raw_times)}")
        print(f"  platform via gateway p50 {p50:6.2f} s   all {' '.join(f'{t:.2f}' for t in platform_times)}")
        print(f"  ratio {p50 / r50:.2f}x  (target <= 1.5x)  {'OK' if p50 <= 1.5 * r50 else 'MISSED'}")
    finally:
        for name in raw_names:
            subprocess.run(["podman", "rm", "-f", name], capture_output=True)
        platform.stop()
        for volume in homes - {""}:
            subprocess.run(["podman", "volume", "rm", "-f", volume], capture_output=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve-gateway"]:
        serve_gateway(*sys.argv[2:7])
    else:
        main()
