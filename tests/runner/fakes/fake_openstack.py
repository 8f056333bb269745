"""A fake OpenStack (as at the Mass Open Cloud): Keystone v3 password and application-credential
token issue with a service catalog, and the Nova servers API openstacksdk's compute proxy uses
(version discovery, create, show, list detail, delete)."""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PROJECT_ID = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"


class FakeOpenStack:
    def __init__(self, *, username: str, password: str, project: str, app_cred: tuple[str, str] | None = None) -> None:
        self.username, self.password, self.project, self.app_cred = username, password, project, app_cred
        self.tokens: set[str] = set()
        self.servers: dict[str, dict] = {}
        self.quota_exceeded = False
        self.unhandled: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def send(self, status: int, body: dict | None = None, headers: dict | None = None) -> None:
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _go(self, method: str) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fake._handle(self, method, urllib.parse.urlsplit(self.path).path.rstrip("/"),
                             json.loads(body) if body else None)

            def do_GET(self) -> None:  # noqa: N802
                self._go("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._go("POST")

            def do_DELETE(self) -> None:  # noqa: N802
                self._go("DELETE")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.auth_url = f"{self.url}/identity/v3"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- Keystone ---------------------------------------------------------------------------
    def _version_doc(self) -> dict:
        return {"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
                "links": [{"rel": "self", "href": f"{self.auth_url}/"}],
                "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}]}

    def _issue(self, h, body: dict) -> None:
        ident = body["auth"]["identity"]
        ok = False
        if "password" in ident["methods"]:
            user = ident["password"]["user"]
            ok = user.get("name") == self.username and user.get("password") == self.password
            scope = (body["auth"].get("scope") or {}).get("project", {})
            ok = ok and scope.get("name") == self.project
        elif "application_credential" in ident["methods"] and self.app_cred:
            ac = ident["application_credential"]
            ok = (ac.get("id"), ac.get("secret")) == self.app_cred
        if not ok:
            return h.send(401, {"error": {"code": 401, "title": "Unauthorized",
                                          "message": "The request you have made requires authentication."}})
        token = uuid.uuid4().hex
        self.tokens.add(token)
        now = datetime.now(UTC)
        compute = f"{self.url}/compute/v2.1"
        h.send(201, {"token": {
            "methods": ident["methods"], "expires_at": (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
            "issued_at": now.strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
            "user": {"id": "u1", "name": self.username, "domain": {"id": "default", "name": "Default"}},
            "project": {"id": PROJECT_ID, "name": self.project, "domain": {"id": "default", "name": "Default"}},
            "roles": [{"id": "r1", "name": "member"}],
            "catalog": [
                {"type": "identity", "name": "keystone", "id": "s1", "endpoints": [
                    {"id": "e1", "interface": "public", "region": "RegionOne", "region_id": "RegionOne",
                     "url": f"{self.url}/identity"}]},
                {"type": "compute", "name": "nova", "id": "s2", "endpoints": [
                    {"id": "e2", "interface": "public", "region": "RegionOne", "region_id": "RegionOne",
                     "url": compute}]},
            ]}}, headers={"X-Subject-Token": token})

    # -- Nova -------------------------------------------------------------------------------
    def _nova_version(self, full: bool) -> dict:
        v = {"id": "v2.1", "status": "CURRENT", "version": "2.96", "min_version": "2.1",
             "updated": "2013-07-23T11:33:21Z", "links": [{"rel": "self", "href": f"{self.url}/compute/v2.1/"}]}
        return {"version": v} if full else {"versions": [v]}

    def _server_view(self, s: dict) -> dict:
        return s | {"links": [{"rel": "self", "href": f"{self.url}/compute/v2.1/servers/{s['id']}"}]}

    def _handle(self, h, method: str, path: str, body: dict | None) -> None:
        if path in ("/identity", "/identity/v3") and method == "GET":
            doc = self._version_doc()
            return h.send(200, {"version": doc} if path.endswith("v3") else {"versions": {"values": [doc]}})
        if path == "/identity/v3/auth/tokens" and method == "POST":
            return self._issue(h, body)
        if path.startswith("/compute"):
            if path == "/compute":
                return h.send(200, self._nova_version(False))
            if h.headers.get("X-Auth-Token") not in self.tokens:
                return h.send(401, {"error": {"code": 401, "message": "bad token"}})
            if path == "/compute/v2.1":
                return h.send(200, self._nova_version(True))
            if path == "/compute/v2.1/servers" and method == "POST":
                return self._create(h, body["server"])
            if path == "/compute/v2.1/servers/detail" and method == "GET":
                return h.send(200, {"servers": [self._server_view(s) for s in self.servers.values()]})
            m = re.fullmatch(r"/compute/v2\.1/servers/([^/]+)", path)
            if m:
                server = self.servers.get(m[1])
                if server is None:
                    return h.send(404, {"itemNotFound": {"code": 404,
                                                         "message": f"Instance {m[1]} could not be found."}})
                if method == "GET":
                    return h.send(200, {"server": self._server_view(server)})
                if method == "DELETE":
                    del self.servers[m[1]]
                    return h.send(204)
        self.unhandled.append(f"{method} {path}")
        h.send(404, {"itemNotFound": {"code": 404, "message": f"fake has no {method} {path}"}})

    def _create(self, h, req: dict) -> None:
        if self.quota_exceeded:
            return h.send(403, {"forbidden": {"code": 403, "message":
                "Quota exceeded for instances: Requested 1, but already used 10 of 10 instances"}})
        sid = str(uuid.uuid4())
        self.servers[sid] = {"id": sid, "name": req["name"], "status": "BUILD", "tenant_id": PROJECT_ID,
                             "user_data": req.get("user_data"), "metadata": req.get("metadata", {}),
                             "flavor": {"id": req.get("flavorRef")}, "image": {"id": req.get("imageRef")},
                             "networks": req.get("networks"), "addresses": {}, "OS-EXT-STS:vm_state": "building"}
        h.send(202, {"server": {"id": sid, "links": [], "adminPass": "fake", "OS-DCF:diskConfig": "MANUAL",
                                "security_groups": [{"name": "default"}]}})
