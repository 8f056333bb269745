"""Build through any Docker Engine API (Docker itself, or ``podman system service``) with the docker SDK.

What the engine must support, and what podman 4.3's compat API does:

* ``POST /build`` with ``dockerfile=Containerfile``; ``RUN --mount=type=bind,source=<path in context>``
  works on podman (buildah underneath) and on Docker with BuildKit.
* Reproducibility hints are sent as query parameters: ``timestamp=0``, ``identitylabel=false``,
  ``layers=false`` (podman/buildah) and the ``SOURCE_DATE_EPOCH=0`` build arg (Docker BuildKit).
  Engines ignore the parameters they do not know. Podman's compat endpoint always writes the
  Docker v2s2 image format, whose config records the build container's id and hostname, so digests
  are *not* bit-for-bit reproducible through it; the buildah backend is the reproducible one.
* ``POST /images/{name}/push`` with ``tlsVerify=false`` when ``registry_tls_verify`` is off: podman
  honours it (so a plain-HTTP registry works without a registries.conf entry); Docker ignores it and
  needs the registry in its ``insecure-registries`` (loopback registries are insecure by default).

The SDK's ``build()``/``push()`` cannot pass those extra query parameters, so the two requests are
made with the SDK's own (underscore) request helpers; everything else is the public low-level API.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.auth
import docker.errors
import docker.utils
import httpx
import requests

from ..config import BuilderSettings
from .base import BuildBackend, BuildError, BuildResult, LogSink, register

MANIFEST_ACCEPT = ", ".join([
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
])
_PUSHED_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64})")
_STEP = re.compile(r"^(STEP \d+(/\d+)?:|Step \d+/\d+ :|#\d+ \[)")


def split_image_ref(image_ref: str) -> tuple[str, str, str]:
    """``"host:port/ws/env:v3"`` -> ``("host:port", "ws/env", "v3")``; the registry host is required."""
    name, sep, tag = image_ref.rpartition(":")
    if not sep or "/" in tag:
        raise ValueError(f"image reference {image_ref!r} has no tag")
    host, slash, repo = name.partition("/")
    if not slash or not repo or not ("." in host or ":" in host or host == "localhost"):
        raise ValueError(f"image reference {image_ref!r} does not start with a registry host")
    return host, repo, tag


def read_auth_file(path: Path | None, host: str) -> tuple[str, str] | None:
    """(username, password) for ``host`` from a containers-auth.json / docker config.json, if any."""
    if path is None or not path.is_file():
        return None
    entry = json.loads(path.read_text()).get("auths", {}).get(host)
    if not entry or "auth" not in entry:
        return None
    user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
    return user, password


class RegistryClient:
    """Just enough of the OCI distribution API to read a tag's manifest digest."""

    def __init__(self, host: str, *, tls_verify: bool, credentials: tuple[str, str] | None = None,
                 timeout: float = 10.0) -> None:
        self.host = host
        self.tls_verify = tls_verify
        self.credentials = credentials
        self.timeout = timeout

    def _get(self, path: str, headers: dict[str, str]) -> httpx.Response:
        # An insecure registry may still speak TLS (self-signed): try https, fall back to plain http
        # the way containers/image does. A verified registry is https only.
        schemes = ["https"] if self.tls_verify else ["https", "http"]
        last: Exception | None = None
        for scheme in schemes:
            url = f"{scheme}://{self.host}{path}"
            try:
                with httpx.Client(verify=self.tls_verify, timeout=self.timeout) as http:
                    resp = http.get(url, headers=headers)
                    if resp.status_code == 401 and self.credentials:
                        resp = http.get(url, headers=headers | self._authorization(http, resp))
                    return resp
            except httpx.TransportError as exc:
                last = exc
        raise BuildError(f"registry {self.host} is unreachable: {last}")

    def _authorization(self, http: httpx.Client, challenge: httpx.Response) -> dict[str, str]:
        assert self.credentials is not None
        scheme, _, params = challenge.headers.get("www-authenticate", "").partition(" ")
        if scheme.lower() != "bearer":
            return {"Authorization": "Basic " + base64.b64encode(":".join(self.credentials).encode()).decode()}
        fields = dict(re.findall(r'(\w+)="([^"]*)"', params))
        realm = fields.pop("realm", "")
        token = http.get(realm, params=fields, auth=self.credentials).json()
        return {"Authorization": "Bearer " + (token.get("token") or token.get("access_token", ""))}

    def manifest_digest(self, repo: str, tag: str) -> str | None:
        """The digest ``repo:tag`` points at, or None when the tag does not exist."""
        resp = self._get(f"/v2/{repo}/manifests/{tag}", {"Accept": MANIFEST_ACCEPT})
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise BuildError(f"registry {self.host} answered {resp.status_code} for {repo}:{tag}: {resp.text[:200]}")
        digest = resp.headers.get("docker-content-digest")
        if not digest:
            import hashlib

            digest = "sha256:" + hashlib.sha256(resp.content).hexdigest()
        return digest


@register("docker")
class DockerBackend(BuildBackend):
    """Builds and pushes through a Docker Engine API endpoint (``REPROLAB_BUILDER_DOCKER_URL``).

    Needs a self-contained context: the engine may run on another machine, so ``build_volumes``
    (host directories) cannot be mounted; put such files in the context and bind-mount them with
    ``RUN --mount=type=bind,source=...`` instead.
    """

    def __init__(self, settings: BuilderSettings, store: Any = None, *,
                 client: docker.APIClient | None = None) -> None:
        self.settings = settings
        self._client = client

    @property
    def client(self) -> docker.APIClient:
        if self._client is None:
            # Long RUN steps can be silent for a long time: no short read timeout on the stream.
            self._client = docker.APIClient(base_url=self.settings.docker_url, version="auto", timeout=3600)
        return self._client

    def build_and_push(self, context: Path, image_ref: str, *, log: LogSink,
                       build_volumes: dict[str, Path] | None = None, one_layer: bool = False) -> BuildResult:
        # The Docker API commits a layer per step whatever ``one_layer`` says (its images never had the
        # buildah backend's digests).
        if build_volumes:
            raise ValueError("the docker backend needs a self-contained context; build_volumes are not supported")
        if not (context / "Containerfile").is_file():
            raise BuildError(f"no Containerfile in build context {context}")
        host, repo, tag = split_image_ref(image_ref)
        credentials = read_auth_file(self.settings.registry_auth_file, host)
        registry = RegistryClient(host, tls_verify=self.settings.registry_tls_verify, credentials=credentials)
        self._refuse_existing(registry, repo, tag, image_ref)

        try:
            self._build(context, image_ref, log)
            # Checked again right before the push: another builder may have pushed the tag meanwhile.
            self._refuse_existing(registry, repo, tag, image_ref)
            digest = self._push(host, repo, tag, credentials, log)
        finally:
            self._untag(image_ref)
        return BuildResult(image_ref=image_ref, digest=digest)

    def _untag(self, image_ref: str) -> None:
        # The registry holds the result; the engine's copy would only fill its disk.
        try:
            self.client.remove_image(image_ref)
        except (docker.errors.DockerException, requests.RequestException):
            pass

    @staticmethod
    def _refuse_existing(registry: RegistryClient, repo: str, tag: str, image_ref: str) -> None:
        # Through the compat API the pushed digest is unknown until after the push, so any existing
        # tag is refused: tags are immutable and are never moved to another manifest.
        existing = registry.manifest_digest(repo, tag)
        if existing is not None:
            raise BuildError(f"{image_ref} already exists in the registry as {existing}; refusing to move the tag")

    def _stream(self, resp: requests.Response) -> Iterator[dict[str, Any]]:
        try:
            yield from self.client._stream_helper(resp, decode=True)
        except (requests.RequestException, docker.errors.DockerException) as exc:
            raise BuildError(f"lost the Docker Engine API stream: {exc}") from exc

    def _post(self, path: str, **kwargs: Any) -> requests.Response:
        try:
            resp = self.client._post(self.client._url(path), stream=True, **kwargs)
            self.client._raise_for_status(resp)
        except docker.errors.APIError as exc:
            raise BuildError(f"Docker Engine API error on {path}: {exc.explanation or exc}") from exc
        except (requests.RequestException, docker.errors.DockerException) as exc:
            raise BuildError(f"Docker Engine API at {self.settings.docker_url} is unreachable: {exc}") from exc
        return resp

    def _build(self, context: Path, image_ref: str, log: LogSink) -> None:
        params = {
            "t": image_ref, "dockerfile": "Containerfile", "rm": True, "forcerm": True, "pull": False,
            "buildargs": json.dumps({"SOURCE_DATE_EPOCH": "0"}),
            "timestamp": 0, "identitylabel": "false", "layers": "false",
        }
        step = "build"
        built = False
        with docker.utils.tar(str(context), gzip=False) as archive:
            resp = self._post("/build", data=archive, params=params, headers={"Content-Type": "application/tar"})
            for event in self._stream(resp):
                for line in (event.get("stream") or "").splitlines():
                    if line.strip():
                        log(line)
                        if _STEP.match(line):
                            step = line.strip()
                if "aux" in event and event["aux"].get("ID"):
                    built = True
                if "error" in event or "errorDetail" in event:
                    message = (event.get("errorDetail") or {}).get("message") or event.get("error")
                    log(f"error: {message}")
                    raise BuildError(f"{step} failed: {message}")
        if not built:
            raise BuildError("the engine ended the build stream without reporting an image")

    def _push(self, host: str, repo: str, tag: str, credentials: tuple[str, str] | None, log: LogSink) -> str:
        auth = {"username": credentials[0], "password": credentials[1], "serveraddress": host} if credentials else {}
        params: dict[str, Any] = {"tag": tag}
        if not self.settings.registry_tls_verify:
            params["tlsVerify"] = "false"
        resp = self._post(f"/images/{host}/{repo}/push", params=params,
                          headers={"X-Registry-Auth": docker.auth.encode_header(auth).decode()})
        digest = None
        for event in self._stream(resp):
            if "error" in event or "errorDetail" in event:
                message = (event.get("errorDetail") or {}).get("message") or event.get("error")
                log(f"error: {message}")
                raise BuildError(f"pushing to registry {host} failed: {message}")
            status = event.get("status")
            if status and not event.get("progressDetail"):
                log(status if not event.get("id") else f"{event['id']}: {status}")
            if aux_digest := (event.get("aux") or {}).get("Digest"):
                digest = aux_digest
            elif status and (match := _PUSHED_DIGEST.search(status)):
                digest = match.group(1)
        if digest is None:
            raise BuildError(f"pushing to registry {host} ended without a manifest digest; the push did not complete")
        return digest
