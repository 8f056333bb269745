"""FAKE LMS for the LTI tests: a small platform speaking the real LTI 1.3 protocol over HTTP on loopback.

It is a fake (no LMS runs in the tests), but every message crosses a real socket in its real shape: RS256
id_tokens signed with its own keys and published in a JWKS, the OIDC authorization endpoint answering with
an auto-posting form, a token endpoint that checks the tool's signed client assertion against the tool's
own JWKS (fetched from the gateway), AGS line items whose URLs carry ``?type_id=`` (a score posted to
``.../7?type_id=3/scores`` is a 404 here, as it is on the LMSs that do this), NRPS memberships paged with
Link headers, and a deep-linking return that verifies the tool's response JWT.

Launches are scripted: ``prepare(...)`` returns an ``lti_message_hint``; the authorization endpoint
builds that launch's id_token, with any ``tamper`` applied (claims replaced or removed, another key,
another ``kid``), so the negative tests send exactly one thing wrong.
"""

from __future__ import annotations

import asyncio
import html
import itertools
import json
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
TA = "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"
AGS_SCOPES = ["https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
              "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
              "https://purl.imsglobal.org/spec/lti-ags/scope/score"]
NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
TYPE_ID = "3"
REMOVE = object()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    return {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key())), "kid": kid, "alg": "RS256",
            "use": "sig"}


@dataclass
class Person:
    sub: str
    name: str
    email: str


@dataclass
class Course:
    id: str
    label: str
    title: str
    # sub -> LTI roles in this course
    roles: dict[str, list[str]] = field(default_factory=dict)

    def claim(self) -> dict[str, str]:
        return {"id": self.id, "label": self.label, "title": self.title}


@dataclass
class FakeLms:
    """FAKE LMS (see the module's docstring). ``tool_url``: the gateway's base URL."""

    tool_url: str
    client_id: str = "reprolab-fake-client"
    deployment_id: str = "dep-1"
    port: int = field(default_factory=free_port)
    # the name the LMS is reached by ("localhost" makes it another site than the gateway at 127.0.0.1)
    host: str = "127.0.0.1"
    page_size: int = 2
    # a score post answers 503 this many times first (retries)
    fail_scores: int = 0
    # the JWKS answers only after this many seconds (timeouts)
    slow_jwks: float = 0.0

    def __post_init__(self) -> None:
        self.keys = {"lms-1": _key()}
        self.published = {"lms-1"}
        self.rogue = _key()
        self.people: dict[str, Person] = {}
        self.courses: dict[str, Course] = {}
        self.launches: dict[str, dict[str, Any]] = {}
        self.line_items: dict[str, dict[str, Any]] = {}
        self.scores: list[tuple[str, dict[str, Any]]] = []
        self.tokens: dict[str, set[str]] = {}
        self.assertion_ids: set[str] = set()
        self.deep_links: list[dict[str, Any]] = []
        self.refused: list[str] = []
        self.jwks_requests = 0
        self.roster_pages = 0
        self._ids = itertools.count(7)
        self._server: uvicorn.Server | None = None

    # --- set-up -------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def issuer(self) -> str:
        return self.url

    def course_api(self, course: str) -> str:
        return f"{self.url}/api/lti/courses/{course}"

    def registration(self) -> dict[str, Any]:
        return {"title": "Fake LMS", "issuer": self.issuer, "client_id": self.client_id,
                "auth_login_url": f"{self.url}/auth", "token_url": f"{self.url}/token",
                "jwks_url": f"{self.url}/jwks", "deployment_ids": [self.deployment_id]}

    def course(self, id: str, label: str, title: str) -> Course:
        self.courses[id] = Course(id, label, title)
        return self.courses[id]

    def enrol(self, course: Course, sub: str, name: str, roles: list[str]) -> Person:
        p = self.people.setdefault(sub, Person(sub=sub, name=name, email=f"{sub}@uni.example"))
        course.roles[sub] = roles
        return p

    def rotate(self) -> str:
        """A new signing key, published (the old one stays too); returns its kid."""
        kid = f"lms-{len(self.keys) + 1}"
        self.keys[kid] = _key()
        self.published.add(kid)
        return kid

    def prepare(self, course: Course, sub: str, *, message_type: str = "LtiResourceLinkRequest",
                custom: dict | None = None, kid: str = "lms-1", tamper: dict[str, Any] | None = None,
                key: str = "") -> str:
        """Script the next launch of ``sub``; returns its lti_message_hint. ``tamper``: claims to replace (or
        REMOVE); ``key``: "rogue" signs with a key the JWKS does not hold (under ``kid``), "hs256" with HMAC."""
        hint = secrets.token_urlsafe(8)
        self.launches[hint] = {"sub": sub, "course": course.id, "message_type": message_type,
                               "custom": custom or {}, "kid": kid, "tamper": tamper or {}, "key": key}
        return hint

    def login_params(self, hint: str, target: str | None = None) -> dict[str, str]:
        """What the LMS posts to the tool's login initiation URL."""
        return {"iss": self.issuer, "login_hint": self.launches[hint]["sub"], "lti_message_hint": hint,
                "target_link_uri": target or f"{self.tool_url}/lti/launch", "client_id": self.client_id,
                "lti_deployment_id": self.deployment_id}

    # --- the id_token ------------------------------------------------------------------------------

    def id_token(self, launch: dict[str, Any], nonce: str) -> str:
        person = self.people[launch["sub"]]
        course = self.courses[launch["course"]]
        api = self.course_api(course.id)
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer, "aud": self.client_id, "sub": person.sub, "exp": now + 300, "iat": now,
            "nonce": nonce, "name": person.name, "email": person.email,
            CLAIM + "message_type": launch["message_type"], CLAIM + "version": "1.3.0",
            CLAIM + "deployment_id": self.deployment_id, CLAIM + "target_link_uri": f"{self.tool_url}/lti/launch",
            CLAIM + "roles": course.roles[person.sub], CLAIM + "context": course.claim(),
            CLAIM + "custom": launch["custom"],
            "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint": {
                "scope": AGS_SCOPES, "lineitems": f"{api}/line_items?type_id={TYPE_ID}"},
            "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice": {
                "context_memberships_url": f"{api}/names_and_roles", "service_versions": ["2.0"]},
        }
        if launch["message_type"] == "LtiResourceLinkRequest":
            claims[CLAIM + "resource_link"] = {"id": "link-" + json.dumps(launch["custom"], sort_keys=True)}
        else:
            claims["https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"] = {
                "deep_link_return_url": f"{self.url}/deep_link_return?course={course.id}",
                "accept_types": ["ltiResourceLink"], "accept_presentation_document_targets": ["iframe", "window"],
                "data": "opaque-" + secrets.token_hex(4)}
        for name, value in launch["tamper"].items():
            if value is REMOVE:
                claims.pop(name, None)
            else:
                claims[name] = value
        if launch["key"] == "hs256":  # the "alg confusion" attack: HMAC keyed with something public
            return jwt.encode(claims, self.client_id * 4, algorithm="HS256", headers={"kid": launch["kid"]})
        key = self.rogue if launch["key"] == "rogue" else self.keys[launch["kid"] if launch["kid"] in self.keys
                                                                     else "lms-1"]
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": launch["kid"]})

    # --- HTTP ---------------------------------------------------------------------------------------

    async def jwks(self, request: Request) -> Response:
        self.jwks_requests += 1
        if self.slow_jwks:
            await asyncio.sleep(self.slow_jwks)
        return JSONResponse({"keys": [_jwk(self.keys[k], k) for k in sorted(self.published)]})

    async def auth(self, request: Request) -> Response:
        q = request.query_params
        problems = [f"{k}={q.get(k)!r}" for k, want in (("scope", "openid"), ("response_type", "id_token"),
                                                         ("response_mode", "form_post"), ("prompt", "none"),
                                                         ("client_id", self.client_id),
                                                         ("redirect_uri", f"{self.tool_url}/lti/launch"))
                    if q.get(k) != want]
        if not q.get("state") or not q.get("nonce"):
            problems.append("no state or nonce")
        launch = self.launches.get(q.get("lti_message_hint", ""))
        if launch is None or launch["sub"] != q.get("login_hint"):
            problems.append("unknown lti_message_hint/login_hint")
        if problems:
            self.refused.append("auth: " + ", ".join(problems))
            return HTMLResponse("bad authorization request: " + ", ".join(problems), status_code=400)
        token = self.id_token(launch, q["nonce"])
        return HTMLResponse(self._autopost(q["redirect_uri"], {"id_token": token, "state": q["state"]}))

    @staticmethod
    def _autopost(action: str, fields: dict[str, str]) -> str:
        inputs = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                         for k, v in fields.items())
        return (f'<!doctype html><html><body><form id="post" method="post" action="{html.escape(action)}">'
                f'{inputs}<button type="submit">Continue</button></form>'
                '<script>document.getElementById("post").submit()</script></body></html>')

    def _tool_key(self, token: str) -> Any:
        keys = httpx.get(f"{self.tool_url}/lti/jwks", timeout=5).json()["keys"]
        kid = jwt.get_unverified_header(token).get("kid")
        jwk = next(k for k in keys if k["kid"] == kid)
        return jwt.PyJWK(jwk, algorithm="RS256").key

    async def token(self, request: Request) -> Response:
        form = await request.form()
        try:
            assert form.get("grant_type") == "client_credentials", "grant_type"
            assert form.get("client_assertion_type") == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
            assertion = str(form.get("client_assertion"))
            claims = jwt.decode(assertion, self._tool_key(assertion), algorithms=["RS256", "RS384"],
                                audience=f"{self.url}/token", options={"require": ["iss", "sub", "exp", "iat", "jti"]})
            assert claims["iss"] == claims["sub"] == self.client_id, "iss/sub"
            assert claims["jti"] not in self.assertion_ids, "jti replayed"
            self.assertion_ids.add(claims["jti"])
        except (AssertionError, jwt.PyJWTError, StopIteration) as exc:
            self.refused.append(f"token: {exc!r}")
            return JSONResponse({"error": "invalid_client", "error_description": repr(exc)}, status_code=401)
        scopes = set(str(form.get("scope", "")).split())
        token = secrets.token_urlsafe(24)
        self.tokens[token] = scopes & {*AGS_SCOPES, NRPS_SCOPE}
        return JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": 3600,
                             "scope": " ".join(sorted(self.tokens[token]))})

    def _authorized(self, request: Request, scope: str) -> bool:
        header = request.headers.get("authorization", "")
        ok = header.startswith("Bearer ") and scope in self.tokens.get(header[7:], set())
        if not ok:
            self.refused.append(f"{request.url.path}: no token with {scope}")
        return ok

    def make_line_item(self, course: str, body: dict[str, Any]) -> dict[str, Any]:
        n = next(self._ids)
        item = {**body, "id": f"{self.course_api(course)}/line_items/{n}?type_id={TYPE_ID}"}
        self.line_items[str(n)] = {**item, "course": course}
        return item

    async def line_items_endpoint(self, request: Request) -> Response:
        if request.query_params.get("type_id") != TYPE_ID:
            return JSONResponse({"error": "type_id missing from the line items URL"}, status_code=404)
        if request.method == "POST":
            if not self._authorized(request, AGS_SCOPES[0]):
                return Response(status_code=401)
            body = json.loads(await request.body())
            return JSONResponse(self.make_line_item(request.path_params["course"], body), status_code=201,
                                media_type="application/vnd.ims.lis.v2.lineitem+json")
        if not self._authorized(request, AGS_SCOPES[0]):
            return Response(status_code=401)
        wanted = request.query_params.get("resource_id")
        items = [{k: v for k, v in i.items() if k != "course"} for i in self.line_items.values()
                 if i["course"] == request.path_params["course"] and (not wanted or i.get("resourceId") == wanted)]
        return JSONResponse(items, media_type="application/vnd.ims.lis.v2.lineitemcontainer+json")

    async def scores_endpoint(self, request: Request) -> Response:
        item = request.path_params["item"]
        if item not in self.line_items or request.query_params.get("type_id") != TYPE_ID or \
                self.line_items[item]["course"] != request.path_params["course"]:
            self.refused.append(f"scores: {request.url}")
            return JSONResponse({"error": "no such line item"}, status_code=404)
        if not self._authorized(request, AGS_SCOPES[2]):
            return Response(status_code=401)
        if request.headers.get("content-type") != "application/vnd.ims.lis.v1.score+json":
            return Response(status_code=415)
        if self.fail_scores > 0:
            self.fail_scores -= 1
            return Response("busy", status_code=503)
        self.scores.append((item, json.loads(await request.body())))
        return Response(status_code=204)

    async def memberships(self, request: Request) -> Response:
        if not self._authorized(request, NRPS_SCOPE):
            return Response(status_code=401)
        course = self.courses[request.path_params["course"]]
        page = int(request.query_params.get("page", "1"))
        people = sorted(course.roles)
        chunk = people[(page - 1) * self.page_size: page * self.page_size]
        headers = {}
        if page * self.page_size < len(people):
            headers["Link"] = f'<{self.course_api(course.id)}/names_and_roles?page={page + 1}>; rel="next"'
        self.roster_pages += 1
        body = {"id": str(request.url), "context": course.claim(),
                "members": [{"status": "Active", "user_id": sub, "name": self.people[sub].name,
                             "email": self.people[sub].email, "roles": course.roles[sub]} for sub in chunk]}
        return JSONResponse(body, headers=headers,
                            media_type="application/vnd.ims.lti-nrps.v2.membershipcontainer+json")

    async def deep_link_return(self, request: Request) -> Response:
        form = await request.form()
        token = str(form.get("JWT", ""))
        try:
            claims = jwt.decode(token, self._tool_key(token), algorithms=["RS256"], audience=self.issuer,
                                issuer=self.client_id, options={"require": ["exp", "iat", "nonce"]})
            assert claims[CLAIM + "message_type"] == "LtiDeepLinkingResponse", "message_type"
            assert claims[CLAIM + "version"] == "1.3.0", "version"
            assert claims[CLAIM + "deployment_id"] == self.deployment_id, "deployment_id"
            assert str(claims.get("https://purl.imsglobal.org/spec/lti-dl/claim/data", "")).startswith("opaque-")
        except (AssertionError, jwt.PyJWTError, StopIteration) as exc:
            self.refused.append(f"deep link: {exc!r}")
            return HTMLResponse(f"refused: {exc!r}", status_code=400)
        items = claims["https://purl.imsglobal.org/spec/lti-dl/claim/content_items"]
        for item in items:
            self.deep_links.append(item)
            if "lineItem" in item:
                self.make_line_item(request.query_params["course"], item["lineItem"])
        return HTMLResponse(f'<p id="added">Added {len(items)} item(s) to the course.</p>')

    async def course_page(self, request: Request) -> Response:
        """The LMS's course page with the tool in an iframe (the browser test)."""
        hint = request.query_params["hint"]
        return HTMLResponse(f'<!doctype html><html><body><h1>Data Science 101 (FAKE LMS)</h1>'
                            f'<iframe id="tool" title="Reprolab" style="width:900px;height:500px" '
                            f'src="/start?hint={hint}"></iframe></body></html>')

    def start_url(self, hint: str) -> str:
        return f"{self.url}/course?hint={hint}"


    async def start(self, request: Request) -> Response:
        """Inside the iframe: the login initiation, posted to the tool (as LMSs do)."""
        hint = request.query_params["hint"]
        return HTMLResponse(self._autopost(f"{self.tool_url}/lti/login", self.login_params(hint)))

    def app(self) -> Starlette:
        base = "/api/lti/courses/{course}"
        return Starlette(routes=[
            Route("/jwks", self.jwks), Route("/auth", self.auth), Route("/token", self.token, methods=["POST"]),
            Route(base + "/line_items", self.line_items_endpoint, methods=["GET", "POST"]),
            Route(base + "/line_items/{item}/scores", self.scores_endpoint, methods=["POST"]),
            Route(base + "/names_and_roles", self.memberships),
            Route("/deep_link_return", self.deep_link_return, methods=["POST"]),
            Route("/course", self.course_page), Route("/start", self.start),
        ])

    def start_server(self) -> FakeLms:
        config = uvicorn.Config(self.app(), host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        threading.Thread(target=self._server.run, daemon=True, name="fake-lms").start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < deadline, "the fake LMS did not start"
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True


def form_fields(page: str) -> tuple[str, dict[str, str]]:
    """(action, hidden fields) of the first form of an HTML page."""
    import re

    action = html.unescape(re.search(r'<form[^>]*action="([^"]*)"', page).group(1))  # type: ignore[union-attr]
    fields = {html.unescape(m.group(1)): html.unescape(m.group(2))
              for m in re.finditer(r'<input type="hidden" name="([^"]*)" value="([^"]*)"', page)}
    return action, fields


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


__all__ = ["FakeLms", "INSTRUCTOR", "LEARNER", "TA", "REMOVE", "form_fields", "query_of", "urlencode"]
