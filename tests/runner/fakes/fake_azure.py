"""A fake of Azure over HTTPS: the Entra ID (AAD) token endpoint azure-identity's
ClientSecretCredential calls, and the slice of ARM compute/network REST azure-mgmt-compute and
azure-mgmt-network use for a VM (NIC put/delete, VM put/get/instanceView/list/delete, disk delete).

Long-running operations finish at once: PUT answers 201 with ``provisioningState: Succeeded`` in
the body and DELETE answers 204, both terminal for azure-core's ARM polling.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from fake_tls import self_signed

_RES = re.compile(r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
                  r"(?P<ns>Microsoft\.\w+)/(?P<kind>\w+)(?:/(?P<name>[^/]+))?(?:/(?P<sub_res>instanceView))?$", re.I)


class FakeAzure:
    def __init__(self, directory: Path, *, tenant_id: str, client_id: str, client_secret: str) -> None:
        self.ca_file, ctx = self_signed(directory)
        self.tenant_id, self.client_id, self.client_secret = tenant_id, client_id, client_secret
        self.resources: dict[str, dict] = {}   # lower-cased ARM id -> resource body
        self.power: dict[str, str] = {}        # vm name -> PowerState/...
        self.quota_exceeded = False
        self.requests: list[tuple[str, str]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _send(self, status: int, body: dict | None = None, headers: dict | None = None) -> None:
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("x-ms-request-id", str(uuid.uuid4()))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_GET(self) -> None:  # noqa: N802
                fake._handle(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                fake._handle(self, "POST")

            def do_PUT(self) -> None:  # noqa: N802
                fake._handle(self, "PUT")

            def do_DELETE(self) -> None:  # noqa: N802
                fake._handle(self, "DELETE")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def vms(self) -> list[dict]:
        return [r for r in self.resources.values() if r["type"] == "Microsoft.Compute/virtualMachines"]

    # -- routing ---------------------------------------------------------------------------
    def _handle(self, h, method: str) -> None:
        url = urllib.parse.urlsplit(h.path)
        body = h._body()
        self.requests.append((method, url.path))
        if url.path == f"/{self.tenant_id}/oauth2/v2.0/token" and method == "POST":
            return self._token(h, urllib.parse.parse_qs(body.decode()))
        if url.path.startswith(f"/{self.tenant_id}/") and "openid-configuration" in url.path:
            base = f"{self.url}/{self.tenant_id}"
            return h._send(200, {"token_endpoint": f"{base}/oauth2/v2.0/token",
                                 "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                                 "issuer": f"{base}/v2.0", "tenant_region_scope": "EU"})
        if not h.headers.get("Authorization", "").startswith("Bearer fake-arm-token-"):
            return h._send(401, {"error": {"code": "AuthenticationFailed", "message": "no or bad bearer token"}})
        m = _RES.match(url.path)
        if not m:
            return h._send(404, {"error": {"code": "NotFound", "message": url.path}})
        return self._arm(h, method, m, json.loads(body) if body else None, url.path)

    def _token(self, h, form: dict) -> None:
        if form.get("client_id") != [self.client_id] or form.get("client_secret") != [self.client_secret]:
            return h._send(401, {"error": "invalid_client", "error_description":
                                 "AADSTS7000215: Invalid client secret provided. (fake)", "error_codes": [7000215]})
        h._send(200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                      "access_token": f"fake-arm-token-{uuid.uuid4().hex}"})

    def _arm(self, h, method: str, m, body: dict | None, path: str) -> None:
        ns, kind, name = m["ns"], m["kind"], m["name"]
        rtype = f"{ns}/{kind}"
        if name is None:
            if method != "GET":
                return h._send(405, {"error": {"code": "MethodNotAllowed", "message": method}})
            items = [r for r in self.resources.values() if r["type"].lower() == rtype.lower()]
            return h._send(200, {"value": items})
        rid = path.removesuffix("/instanceView").lower()
        if m["sub_res"]:
            if rid not in self.resources:
                return self._not_found(h, name)
            power = self.power.get(name, "PowerState/running")
            return h._send(200, {"statuses": [
                {"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded"},
                {"code": power, "level": "Info", "displayStatus": power.split("/")[1]}]})
        if method == "GET":
            return h._send(200, self.resources[rid]) if rid in self.resources else self._not_found(h, name)
        if method == "DELETE":
            existed = self.resources.pop(rid, None)
            if existed and rtype == "Microsoft.Compute/virtualMachines":
                self.power.pop(name, None)
            return h._send(204 if existed is None else 200)
        if method == "PUT":
            if rtype == "Microsoft.Compute/virtualMachines" and self.quota_exceeded:
                return h._send(409, {"error": {"code": "OperationNotAllowed", "message":
                    "Operation could not be completed as it results in exceeding approved standardBSFamily "
                    "Cores quota. (fake)"}})
            resource = dict(body or {})
            resource.update({"id": path, "name": name, "type": rtype})
            props = resource.setdefault("properties", {})
            props["provisioningState"] = "Succeeded"
            if rtype == "Microsoft.Compute/virtualMachines":
                props["vmId"] = str(uuid.uuid4())
                self.power[name] = "PowerState/running"
            status = 200 if rid in self.resources else 201
            self.resources[rid] = resource
            return h._send(status, resource)
        h._send(405, {"error": {"code": "MethodNotAllowed", "message": method}})

    def _not_found(self, h, name: str) -> None:
        h._send(404, {"error": {"code": "ResourceNotFound", "message": f"The Resource '{name}' was not found."}})


