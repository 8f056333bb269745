"""A real Jupyter server (jupyter_server + ipykernel from the dev environment) behind a real gateway served by
uvicorn on a real socket, on a real nats-server.

Until the runner's sessions answer ``runner.session.connect``, the proxy is pointed at the server by
``FixedResolver`` (a FAKE of that answer: session id → upstream URL, token, owner); everything else is real:
the gateway app, its database, its auth, the HTTP and websocket hops, the Jupyter server and its kernel.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from reprolab_common.natsserver import NatsServer, free_port, stop_child
from reprolab_common.settings import CommonSettings
from reprolab_gateway.core.config import GatewaySettings
from reprolab_gateway.main import create_app
from reprolab_gateway.sessions_proxy import FixedResolver, Upstream


@dataclass
class JupyterServer:
    url: str  # http://127.0.0.1:<port>
    base_url: str  # /sessions/<id>/
    token: str
    proc: subprocess.Popen


def start_jupyter(root: Path, session_id: str, token: str) -> JupyterServer:
    """``python -m jupyter_server`` with the runner's settings for a session: base_url /sessions/<id>/, token."""
    port = free_port()
    home = root / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(root / "cfg"), "JUPYTER_DATA_DIR": str(root / "data"),
           "JUPYTER_RUNTIME_DIR": str(root / "rt"), "IPYTHONDIR": str(root / "ipython"), "HOME": str(home)}
    base = f"/sessions/{session_id}/"
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", f"--ServerApp.base_url={base}", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={home}", "--ServerApp.port_retries=0"],
        env=env, stdout=open(root / "jupyter.log", "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter_server exited: {(root / 'jupyter.log').read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}{base}api/status", headers={"Authorization": f"token {token}"}).status_code == 200:
                return JupyterServer(url, base, token, proc)
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    stop_child(proc)
    raise RuntimeError("jupyter_server did not answer within 60 s")


@dataclass
class ServedGateway:
    url: str
    app: object
    admin_token: str
    resolver: FixedResolver
    server: uvicorn.Server
    thread: threading.Thread


def serve_gateway(root: Path, nats_url: str, resolver: FixedResolver, **overrides) -> ServedGateway:
    """The gateway app under uvicorn (websockets need a real server) in a thread."""
    settings = GatewaySettings(common=CommonSettings(nats_url=nats_url, data_dir=str(root / "data")),
                               bootstrap_token_file=root / "admin-token", nats_connect_wait_seconds=5, **overrides)
    app = create_app(settings)
    app.state.session_resolver = resolver
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, ws="websockets-sansio", lifespan="on",
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the gateway did not start")
        time.sleep(0.05)
    return ServedGateway(f"http://127.0.0.1:{port}", app, (root / "admin-token").read_text().strip(), resolver,
                         server, thread)


@dataclass
class ProxyWorld:
    gateway: ServedGateway
    jupyter: JupyterServer
    session_id: str
    owner_token: str
    owner_id: str
    other_token: str

    @property
    def base(self) -> str:
        return self.gateway.url + self.jupyter.base_url


@pytest.fixture(scope="module")
def proxy_world(tmp_path_factory: pytest.TempPathFactory, nats_server: NatsServer) -> Iterator[ProxyWorld]:
    root = tmp_path_factory.mktemp("proxy")
    session_id = "s" + secrets.token_hex(8)
    token = secrets.token_hex(24)
    resolver = FixedResolver()
    jupyter = start_jupyter(root / "jupyter", session_id, token)
    gateway = serve_gateway(root / "gateway", nats_server.url, resolver)
    try:
        admin = {"Authorization": f"Bearer {gateway.admin_token}"}
        owner = httpx.post(f"{gateway.url}/api/v1/users", json={"username": "owner-" + session_id[:6]},
                           headers=admin).json()
        other = httpx.post(f"{gateway.url}/api/v1/users", json={"username": "other-" + session_id[:6]},
                           headers=admin).json()
        owner_id = httpx.get(f"{gateway.url}/api/v1/me",
                             headers={"Authorization": f"Bearer {owner['token']}"}).json()["id"]
        resolver.upstreams[session_id] = Upstream(session_id=session_id, workspace="cs1", owner=owner_id,
                                                  upstream_url=jupyter.url, server_token=token)
        yield ProxyWorld(gateway, jupyter, session_id, owner["token"], owner_id, other["token"])
    finally:
        gateway.server.should_exit = True
        gateway.thread.join(15)
        stop_child(jupyter.proc)
