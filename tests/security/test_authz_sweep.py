"""Authorization sweep, generated from the OpenAPI document: every route that names an object by a path
parameter is called as the object's owner, as another student of the same workspace, as a user of
another workspace and anonymously.

A route added later is swept without anyone remembering: its path parameters are filled from the
objects made here by name (``VALUES``), and its expectations follow from what the parameters name
(``PRIVATE``: a student's private fork, its builds and runs, the caller's own tokens and credentials;
otherwise a workspace's object). A parameter the sweep does not know, or a route that changes state and
has no request body here (``BODIES``) nor a reason to be left out (``NOT_SWEPT``), fails the test.

Expected: the owner 2xx; the other student 404 for a private object (its existence is not revealed),
2xx or 403 for a workspace's (``STUDENT``); the other workspace's user 404; no token 401.

Real parts: the platform (``running``, SQLite: the checks are the gateway's, not the database's), one
build (the shared ``six==1.16.0`` lock other modules build too) and two runs on podman.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..builder.pep503 import SimpleIndex

BASE = "localhost/reprolab/bookworm-python:latest"
SPEC = {"base": BASE, "python": {"version": "3.11", "requirements": ["six==1.16.0"]}}

on_sqlite = pytest.mark.parametrize("running", ["sqlite"], indirect=True)

# Path parameters that name an object private to one user: student A's fork (env, and so its versions),
# its build and run, A's own API token, cloud credential and browser session.
PRIVATE = {"build_id", "run_id", "env", "token_id", "vendor", "session_id", "notebook_id"}
# Path parameters of platform-admin routes: anyone else gets 403 whatever the name (nothing revealed).
ADMIN = {"username", "platform_id"}
# Every path parameter the sweep can fill; a new one fails test_every_id_route_is_swept until added.
KNOWN = PRIVATE | ADMIN | {"ws", "n", "digest", "name", "registry_host", "invite_id", "token", "assignment",
                           "member", "key_id"}

# Routes the sweep does not call as the owner, and why. (The others still get 404/401.)
_LTI = "needs a workspace linked to an LMS course by an LTI launch: tests/lti"
OWNER_NOT_SWEPT = {
    ("POST", "/api/v1/workspaces/{ws}/environments/{env}/versions/{n}/publish"):
        "pushes to an external registry with stored credentials: tests/integration/test_publish.py",
    ("GET", "/api/v1/lti/courses/{ws}/grades"): _LTI,
    ("GET", "/api/v1/lti/courses/{ws}/grades.csv"): _LTI,
    ("POST", "/api/v1/lti/courses/{ws}/grades/{assignment}/send"): _LTI,
    ("POST", "/api/v1/lti/courses/{ws}/roster/sync"): _LTI,
    ("POST", "/api/v1/workspaces/{ws}/assignments/{name}/submissions/{run_id}/feedback"):
        "instructors only, on a scored submission (the sweep's run is no assignment's): "
        "tests/integration/test_assignments_course.py",
    ("DELETE", "/api/v1/workspaces/{ws}/environments/{env}"):
        "A's fork has runs, so its owner gets the 409 that names them (by design); deletion that succeeds: "
        "tests/integration/test_cleanup.py",
    ("POST", "/api/v1/workspaces/{ws}/sessions/{notebook_id}/capture"):
        "A installed nothing in the session, so its owner gets the 422 saying so (by design); a save that "
        "succeeds: tests/sessions/test_session_capture.py",
}
# Routes the sweep does not call as the other student, and why.
STUDENT_NOT_SWEPT = {
    ("PUT", "/api/v1/me/credentials/{vendor}"):
        "the caller's own credential: B's PUT makes B's, and B's GET and DELETE must still find none of A's",
}
_MODELS = "needs a deployed model (a run's artifact served on podman): tests/serving/test_serve_gateway.py checks " \
    "the owner, another member, another workspace's user and anonymous callers on the models routes"
# Routes the sweep does not call at all, and why.
NOT_SWEPT = {
    **{(m, f"/api/v1/workspaces/{{ws}}/models{p}"): _MODELS for m, p in (
        ("POST", ""), ("GET", "/{name}"), ("DELETE", "/{name}"), ("GET", "/{name}/versions/{n}"),
        ("POST", "/{name}/rollback"), ("POST", "/{name}/keys"), ("GET", "/{name}/keys"),
        ("DELETE", "/{name}/keys/{key_id}"), ("GET", "/{name}/monitoring"), ("POST", "/{name}/monitoring"))},
    ("POST", "/api/v1/invites/{token}/accept"):
        "the path's token is the secret that authorises it (a capability, not an object's ID): whoever holds "
        "the link may join; tests/auth/test_invites.py covers used, expired and revoked links",
}

# What another student of the workspace gets on a workspace route when it is not 2xx: the role is
# missing (403), which reveals nothing a member does not already know.
STUDENT = {
    ("GET", "/api/v1/workspaces/{ws}/registry-credentials"): 403,
    ("PUT", "/api/v1/workspaces/{ws}/registry-credentials/{registry_host}"): 403,
    ("DELETE", "/api/v1/workspaces/{ws}/registry-credentials/{registry_host}"): 403,
    ("GET", "/api/v1/workspaces/{ws}/package-indexes"): 403,
    ("PUT", "/api/v1/workspaces/{ws}/package-indexes/{name}"): 403,
    ("DELETE", "/api/v1/workspaces/{ws}/package-indexes/{name}"): 403,
    ("POST", "/api/v1/workspaces/{ws}/members"): 403,
    ("POST", "/api/v1/workspaces/{ws}/environments"): 403,
    ("POST", "/api/v1/workspaces/{ws}/environments/import"): 403,
    ("GET", "/api/v1/workspaces/{ws}/members"): 403,
    ("PATCH", "/api/v1/workspaces/{ws}/members/{member}"): 403,
    ("DELETE", "/api/v1/workspaces/{ws}/members/{member}"): 403,
    ("DELETE", "/api/v1/workspaces/{ws}/invites/{invite_id}"): 403,
    ("POST", "/api/v1/workspaces/{ws}/invites"): 403,
    ("GET", "/api/v1/workspaces/{ws}/invites"): 403,
    ("GET", "/api/v1/workspaces/{ws}/people"): 403,
    # a public dataset: a student may see it, not delete it
    ("DELETE", "/api/v1/workspaces/{ws}/datasets/{digest}"): 403,
    ("POST", "/api/v1/workspaces/{ws}/class-list"): 403,
    ("GET", "/api/v1/lti/courses/{ws}/grades"): 403,
    ("GET", "/api/v1/lti/courses/{ws}/grades.csv"): 403,
    ("POST", "/api/v1/lti/courses/{ws}/grades/{assignment}/send"): 403,
    ("POST", "/api/v1/lti/courses/{ws}/roster/sync"): 403,
    # managers only, checked before the environment: the same 403 for any name, so nothing is revealed
    ("POST", "/api/v1/workspaces/{ws}/environments/{env}/versions/{n}/publish"): 403,
    ("POST", "/api/v1/workspaces/{ws}/datasets"): 403,
    ("POST", "/api/v1/workspaces/{ws}/assignments"): 403,
    ("PATCH", "/api/v1/workspaces/{ws}/assignments/{name}"): 403,
    ("PUT", "/api/v1/workspaces/{ws}/assignments/{name}/evaluation"): 403,
    # managers only, checked before the run: the same 403 for any run id
    ("POST", "/api/v1/workspaces/{ws}/assignments/{name}/submissions/{run_id}/feedback"): 403,
    # the run's environment is A's private fork
    ("POST", "/api/v1/workspaces/{ws}/runs"): 404,
    # so is the JupyterLab session's; the session settings are the instructors'
    ("POST", "/api/v1/workspaces/{ws}/sessions"): 404,
    ("PUT", "/api/v1/workspaces/{ws}/session-settings"): 403,
    # members read the quotas; instructors and admins change them
    ("PUT", "/api/v1/workspaces/{ws}/quotas"): 403,
}


def tar_gz(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@dataclass
class World:
    tokens: dict[str, str]            # persona → API token
    names: dict[str, str]             # persona → username
    ws: str                           # the course: instructor I, students A and B
    other_ws: str                     # X's workspace, with nothing in common with the course
    shared_ws: str                    # O's workspace, whose environment shares A's build
    fork: str
    build_id: str
    run_id: str
    run2_id: str
    run3_id: str                      # a finished run of A's that the sweep's DELETE /runs/{run_id} removes
    code: str
    dataset: str
    labels: str
    spare_user: str
    member: str                       # M: a student of the course whose role the sweep changes, then removes
    spare_token_id: str
    session_id: str
    notebook_id: str                  # A's JupyterLab session (of the fork)
    invite_id: str
    platform_id: str
    http: httpx.Client

    def call(self, persona: str | None, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[persona]}"} if persona else {}
        headers |= kw.pop("headers", {})
        return self.http.request(method, path, headers=headers, **kw)

    def ok(self, persona: str, method: str, path: str, **kw: Any) -> Any:
        r = self.call(persona, method, f"/api/v1{path}", **kw)
        assert r.is_success, (method, path, r.status_code, r.text)
        return r.json() if r.headers.get("content-type", "").startswith("application/json") else r.content


def _wait(world: World, persona: str, path: str, done: Callable[[dict], bool], timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while not done(doc := world.ok(persona, "GET", path)):
        assert time.monotonic() < deadline, doc
        time.sleep(0.3)
    return doc


@pytest.fixture(scope="module")
def world(running, base_image) -> Iterator[World]:
    """The course: instructor I, students A and B; A's private fork of ``py``, built, with a finished run
    and a cancelled one; a public and a hidden dataset and an assignment. X owns another workspace;
    O's workspace has an environment with the same spec, so it shares A's build."""
    tokens, names = {}, {}
    for persona in ("I", "A", "B", "X", "O", "spare", "M"):
        name = f"az{persona.lower()}-{uuid.uuid4().hex[:6]}"
        tokens[persona] = running.admin.post("/users", json={"username": name})["token"]
        names[persona] = name
    tokens["admin"] = running.platform.admin_token()
    w = World(tokens=tokens, names=names, ws="", other_ws="", shared_ws="", fork="",
              build_id="", run_id="", run2_id="", run3_id="", code="", dataset="", labels="", spare_user=names["spare"],
              member=names["M"], spare_token_id="", session_id="", notebook_id="", invite_id="", platform_id="",
              http=httpx.Client(base_url=running.platform.url, timeout=120))
    w.ws = f"azc-{uuid.uuid4().hex[:8]}"
    w.ok("I", "POST", "/workspaces", json={"slug": w.ws, "title": "Course"})
    for persona in ("A", "B", "M"):
        w.ok("I", "POST", f"/workspaces/{w.ws}/members", json={"username": names[persona], "role": "student"})
    w.other_ws = f"azx-{uuid.uuid4().hex[:8]}"
    w.ok("X", "POST", "/workspaces", json={"slug": w.other_ws, "title": "Elsewhere"})
    w.shared_ws = f"azo-{uuid.uuid4().hex[:8]}"
    w.ok("O", "POST", "/workspaces", json={"slug": w.shared_ws, "title": "Shares a build"})

    w.ok("I", "POST", f"/workspaces/{w.ws}/environments", json={"name": "py", "spec": SPEC})
    w.dataset = w.ok("I", "POST", f"/workspaces/{w.ws}/datasets", params={"name": "data.csv", "visibility": "public"},
                     content=b"x\n1\n")["digest"]
    w.labels = w.ok("I", "POST", f"/workspaces/{w.ws}/datasets", params={"name": "labels.csv"},
                    content=b"y\n1\n")["digest"]
    evaluation = w.ok("I", "POST", f"/workspaces/{w.ws}/code", content=tar_gz({"evaluate.py": "print(1)\n"}))
    w.ok("I", "POST", f"/workspaces/{w.ws}/assignments", json={
        "name": "hw", "environment": "py", "evaluation_code": evaluation["digest"], "labels": w.labels,
        "starter_code": evaluation["digest"], "due_at": "2030-01-01T00:00:00Z"})

    # A's private fork, built (py itself is not: the course must not see the build through it)
    w.fork = w.ok("A", "POST", f"/workspaces/{w.ws}/environments/py/fork", json={"name": f"mine-{names['A']}"})["name"]
    build = w.ok("A", "POST", f"/workspaces/{w.ws}/environments/{w.fork}/versions/1/builds")
    w.build_id = build["id"]
    w.ok("O", "POST", f"/workspaces/{w.shared_ws}/environments", json={"name": "same", "spec": SPEC})
    assert w.ok("O", "POST", f"/workspaces/{w.shared_ws}/environments/same/versions/1/builds")["id"] == w.build_id
    done = _wait(w, "A", f"/builds/{w.build_id}", lambda b: b["status"] in ("succeeded", "failed"))
    assert done["status"] == "succeeded", done

    program = "import os; os.makedirs('/outputs', exist_ok=True); open('/outputs/out.txt', 'w').write('hi')"
    w.code = w.ok("A", "POST", f"/workspaces/{w.ws}/code", content=tar_gz({"run.py": program}))["digest"]
    run = w.ok("A", "POST", f"/workspaces/{w.ws}/runs",
               json={"environment": w.fork, "code": w.code, "command": ["python3", "run.py"]})
    w.run_id = run["id"]
    w.run2_id = w.ok("A", "POST", f"/workspaces/{w.ws}/runs",
                     json={"environment": w.fork, "code": w.code, "command": ["sleep", "120"]})["id"]
    finished = _wait(w, "A", f"/runs/{w.run_id}", lambda r: r["status"] in ("succeeded", "failed", "cancelled",
                                                                           "timed_out"))
    assert finished["status"] == "succeeded", finished
    w.run3_id = w.ok("A", "POST", f"/workspaces/{w.ws}/runs",
                     json={"environment": w.fork, "code": w.code, "command": ["true"]})["id"]
    _wait(w, "A", f"/runs/{w.run3_id}", lambda r: r["status"] in ("succeeded", "failed", "cancelled", "timed_out"))
    w.spare_token_id = w.ok("A", "POST", "/me/tokens", json={"name": "spare"})["id"]
    w.ok("A", "PUT", "/me/credentials/aws", params={"workspace": w.ws}, json={
        "secret": {"access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": uuid.uuid4().hex},
        "options": {"region": "us-east-1"}})
    lms = f"https://lms-{uuid.uuid4().hex[:6]}.example.org"
    w.platform_id = w.ok("admin", "POST", "/lti/platforms", json={
        "issuer": lms, "client_id": "sweep", "auth_login_url": f"{lms}/auth", "token_url": f"{lms}/token",
        "jwks_url": f"{lms}/jwks", "deployment_ids": ["1"]})["id"]
    w.invite_id = w.ok("I", "POST", f"/workspaces/{w.ws}/invites", json={"role": "student"})["id"]
    with httpx.Client(base_url=running.platform.url, timeout=60) as browser:  # A signs in to the portal
        csrf = re.search(r'name="csrf" value="([^"]+)"', browser.get("/").text).group(1)
        assert browser.post("/login", data={"token": tokens["A"], "csrf": csrf}).status_code in (200, 303)
    w.session_id = w.ok("A", "GET", "/me/sessions")["items"][0]["id"]
    w.notebook_id = w.ok("A", "POST", f"/workspaces/{w.ws}/sessions", json={"environment": w.fork})["id"]
    yield w
    # the notebook sessions A and I started: stopped, and their containers gone before the platform stops
    for s in w.ok("I", "GET", f"/workspaces/{w.ws}/sessions")["items"]:
        w.call("I", "DELETE", f"/api/v1/workspaces/{w.ws}/sessions/{s['id']}")
        _wait(w, "I", f"/workspaces/{w.ws}/sessions/{s['id']}", lambda x: x["status"] in ("stopped", "failed"),
              timeout=900)
    w.call("A", "POST", f"/api/v1/runs/{w.run2_id}/cancel")  # the sweep cancels it; this, when it failed first
    w.http.close()


def _values(w: World, method: str, path: str) -> dict[str, str]:
    """A value for each path parameter: the object the route names."""
    name = "out.txt" if path.startswith("/api/v1/runs/") else "hw"
    deleting = (method, path) == ("DELETE", "/api/v1/runs/{run_id}")
    run = w.run2_id if path.endswith("/cancel") else w.run3_id if deleting else w.run_id
    return {"ws": w.ws, "env": w.fork, "n": "1", "build_id": w.build_id, "run_id": run, "token_id": w.spare_token_id,
            "vendor": "aws", "digest": w.dataset, "name": name, "registry_host": "registry.example.org",
            "session_id": w.session_id, "notebook_id": w.notebook_id, "invite_id": w.invite_id,
            "username": w.spare_user, "platform_id": w.platform_id, "assignment": "hw", "member": w.member}


def _ghosts(*, workspace: bool) -> dict[str, str]:
    """Values of private parameters (and the workspace) that name nothing: a refusal must read the same."""
    ghosts = {"env": f"ghost-{uuid.uuid4().hex[:8]}", "build_id": str(uuid.uuid4()), "run_id": str(uuid.uuid4()),
              "token_id": str(uuid.uuid4()), "vendor": "openstack", "session_id": str(uuid.uuid4()),
              "notebook_id": str(uuid.uuid4())}
    return ghosts | ({"ws": f"ghost-{uuid.uuid4().hex[:8]}"} if workspace else {})


def agent_entry() -> dict[str, Any]:
    """The first entry of a new, well-formed agent chain (what ``reprolab activity sync`` sends)."""
    chain = uuid.uuid4().hex

    def canonical(v: Any) -> bytes:
        return json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    prev = hashlib.sha256(f"reprolab-agent/1:{chain}".encode()).hexdigest()
    body = {"chain": chain, "seq": 1, "time": "2026-01-01T00:00:00Z", "kind": "note", "details": {"text": "a"}}
    return {**body, "prev": prev, "hash": hashlib.sha256(bytes.fromhex(prev) + canonical(body)).hexdigest()}


def _detail(r: httpx.Response, values: dict[str, str]) -> str:
    text = r.text
    try:
        text = r.json().get("detail", text)
    except ValueError:
        pass
    for v in sorted(values.values(), key=len, reverse=True):
        text = text.replace(v, "<id>")
    return f"{r.status_code} {text}"


def _bodies(w: World | None, index_url: str = "https://pkgs.example.org/simple"
            ) -> dict[tuple[str, str], Callable[[], dict[str, Any]]]:
    """Request keyword arguments of the routes that need more than their path (a body, a query).

    ``index_url``: a package index that answers (the workspace's builds lock against it)."""
    repo = tar_gz({"requirements.txt": "six==1.16.0\n"})
    return {
        ("POST", "/api/v1/workspaces/{ws}/members"): lambda: {
            "json": {"username": w.spare_user, "role": "student"}},
        ("PATCH", "/api/v1/workspaces/{ws}/members/{member}"): lambda: {"json": {"role": "student"}},
        ("DELETE", "/api/v1/workspaces/{ws}/members/{member}"): dict,
        ("POST", "/api/v1/workspaces/{ws}/environments"): lambda: {
            "json": {"name": f"e-{uuid.uuid4().hex[:6]}", "spec": SPEC}},
        ("POST", "/api/v1/workspaces/{ws}/environments/import"): lambda: {
            "params": {"name": f"i-{uuid.uuid4().hex[:6]}"}, "content": repo,
            "headers": {"Content-Type": "application/gzip"}},
        ("POST", "/api/v1/workspaces/{ws}/environments/{env}/versions"): lambda: {
            "json": {"rollback_to": 1, "note": "sweep"}},
        ("POST", "/api/v1/workspaces/{ws}/environments/{env}/fork"): lambda: {
            "json": {"name": f"f-{uuid.uuid4().hex[:6]}"}},
        ("POST", "/api/v1/workspaces/{ws}/environments/{env}/versions/{n}/builds"): dict,
        ("POST", "/api/v1/workspaces/{ws}/environments/{env}/versions/{n}/publish"): lambda: {
            "json": {"destination": "registry.example.org/sweep/never:v1"}},
        ("POST", "/api/v1/workspaces/{ws}/environments/{env}/versions/{n}/image.tar/prepare"): dict,
        ("PUT", "/api/v1/workspaces/{ws}/registry-credentials/{registry_host}"): lambda: {
            "json": {"username": "u", "password": uuid.uuid4().hex}},
        ("DELETE", "/api/v1/workspaces/{ws}/registry-credentials/{registry_host}"): dict,
        ("PUT", "/api/v1/workspaces/{ws}/package-indexes/{name}"): lambda: {
            "json": {"url": index_url, "username": "u", "password": uuid.uuid4().hex}},
        ("DELETE", "/api/v1/workspaces/{ws}/package-indexes/{name}"): dict,
        ("POST", "/api/v1/workspaces/{ws}/code"): lambda: {"content": tar_gz({"a.py": "print(1)\n"})},
        # the environment is A's fork: another student may not run it (404), whatever the workspace allows
        ("POST", "/api/v1/workspaces/{ws}/runs"): lambda: {
            "json": {"environment": w.fork, "version": 1, "code": w.code, "command": ["true"]}},
        ("POST", "/api/v1/runs/{run_id}/cancel"): dict,
        # run again as it was: the owner gets a new run of the same fork, others 404
        ("POST", "/api/v1/runs/{run_id}/rerun"): lambda: {"json": {}},
        ("POST", "/api/v1/workspaces/{ws}/sessions"): lambda: {"json": {"environment": w.fork, "version": 1}},
        ("DELETE", "/api/v1/workspaces/{ws}/sessions/{notebook_id}"): dict,
        ("POST", "/api/v1/workspaces/{ws}/sessions/{notebook_id}/capture"): dict,
        ("PUT", "/api/v1/workspaces/{ws}/session-settings"): lambda: {"json": {"idle_timeout_seconds": 3600}},
        # no limits (0): the sweep's own runs and sessions must not be refused
        ("PUT", "/api/v1/workspaces/{ws}/quotas"): lambda: {"json": {"max_concurrent_runs": 0}},
        ("POST", "/api/v1/workspaces/{ws}/datasets"): lambda: {
            "params": {"name": f"d-{uuid.uuid4().hex[:6]}.csv"}, "content": b"z\n"},
        ("POST", "/api/v1/workspaces/{ws}/assignments"): lambda: {"json": {
            "name": f"a-{uuid.uuid4().hex[:6]}", "environment": "py", "evaluation_code": w.code,
            "labels": w.labels}},
        ("PATCH", "/api/v1/workspaces/{ws}/assignments/{name}"): lambda: {"json": {"daily_limit": 5}},
        ("PUT", "/api/v1/workspaces/{ws}/assignments/{name}/evaluation"): lambda: {"json": {
            "evaluation_code": w.code}},
        ("POST", "/api/v1/workspaces/{ws}/assignments/{name}/submissions/{run_id}/feedback"): lambda: {"json": {
            "text": "swept"}},
        ("GET", "/api/v1/workspaces/{ws}/activity/proof/inclusion"): lambda: {"params": {"index": 0}},
        ("GET", "/api/v1/workspaces/{ws}/activity/proof/consistency"): lambda: {"params": {"old": 1}},
        ("POST", "/api/v1/workspaces/{ws}/activity/verify"): dict,
        ("POST", "/api/v1/workspaces/{ws}/activity/agent"): lambda: {"json": {"entries": [agent_entry()]}},
        ("DELETE", "/api/v1/me/tokens/{token_id}"): dict,
        ("DELETE", "/api/v1/me/sessions/{session_id}"): dict,
        ("DELETE", "/api/v1/workspaces/{ws}/invites/{invite_id}"): dict,
        ("POST", "/api/v1/workspaces/{ws}/invites"): lambda: {"json": {"role": "student"}},
        ("PUT", "/api/v1/users/{username}/password"): lambda: {"json": {"password": uuid.uuid4().hex * 2}},
        ("POST", "/api/v1/users/{username}/password-reset"): dict,
        ("DELETE", "/api/v1/users/{username}/sessions"): dict,
        # a change that changes nothing: the sweep checks who may, not what it does (tests/integration/test_people)
        ("DELETE", "/api/v1/workspaces/{ws}/datasets/{digest}"): dict,
        # A archives their fork and restores it at once (the routes are adjacent: nothing between sees it archived)
        ("POST", "/api/v1/workspaces/{ws}/environments/{env}/archive"): dict,
        ("POST", "/api/v1/workspaces/{ws}/environments/{env}/restore"): dict,
        ("DELETE", "/api/v1/workspaces/{ws}/environments/{env}"): dict,
        ("DELETE", "/api/v1/runs/{run_id}"): dict,
        ("PATCH", "/api/v1/users/{username}"): lambda: {"json": {"platform_admin": False}},
        ("POST", "/api/v1/workspaces/{ws}/class-list"): lambda: {
            "json": {"csv": f"username\n{w.spare_user}\n", "dry_run": True}},
        ("PATCH", "/api/v1/lti/platforms/{platform_id}"): lambda: {"json": {"title": "swept"}},
        ("DELETE", "/api/v1/lti/platforms/{platform_id}"): dict,
        ("POST", "/api/v1/lti/courses/{ws}/grades/{assignment}/send"): dict,
        ("POST", "/api/v1/lti/courses/{ws}/roster/sync"): dict,
        ("GET", "/api/v1/me/credentials/{vendor}"): lambda: {"params": {"workspace": w.ws}},
        ("PUT", "/api/v1/me/credentials/{vendor}"): lambda: {"params": {"workspace": w.ws}, "json": {
            "secret": {"access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": uuid.uuid4().hex},
            "options": {"region": "us-east-1"}}},
        ("DELETE", "/api/v1/me/credentials/{vendor}"): lambda: {"params": {"workspace": w.ws}},
    }


def id_routes(doc: dict[str, Any]) -> list[tuple[str, str, frozenset[str]]]:
    """(method, path, path parameters) of every operation with a path parameter."""
    found = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method not in ("get", "post", "put", "patch", "delete") or not isinstance(op, dict):
                continue
            params = frozenset(p["name"] for p in [*item.get("parameters", []), *op.get("parameters", [])]
                               if p["in"] == "path") | frozenset(re.findall(r"{(\w+)", path))
            if params:
                found.append((method.upper(), path, params))
    return found


def _order(route: tuple[str, str, frozenset[str]]) -> int:
    """Deletions last (the owner's deletes what the others' calls must still find)."""
    return 1 if route[0] == "DELETE" else 0


def _check_coverage(routes: list[tuple[str, str, frozenset[str]]], bodies: dict) -> None:
    unknown = sorted({p for _m, _p, params in routes for p in params} - KNOWN)
    assert not unknown, f"path parameters the sweep cannot fill: {unknown}; add them to KNOWN/PRIVATE and _values"
    unswept = [(m, p) for m, p, _ in routes if m != "GET" and (m, p) not in bodies and (m, p) not in NOT_SWEPT]
    assert not unswept, f"routes that change state with no request in _bodies nor a reason in NOT_SWEPT: {unswept}"
    stale = [k for k in (*NOT_SWEPT, *OWNER_NOT_SWEPT, *STUDENT_NOT_SWEPT, *STUDENT, *bodies)
             if k not in {(m, p) for m, p, _ in routes}]
    assert not stale, f"entries for routes the API no longer has: {stale}"


def test_the_sweep_knows_every_id_route(tmp_path) -> None:
    """The same coverage check on the gateway's document in-process, without the platform: a route added
    without teaching the sweep fails here in a second."""
    from reprolab_common.settings import CommonSettings
    from reprolab_gateway.core.config import GatewaySettings
    from reprolab_gateway.main import create_app

    doc = create_app(GatewaySettings(common=CommonSettings(data_dir=tmp_path))).openapi()
    routes = id_routes(doc)
    assert len(routes) > 50, len(routes)
    _check_coverage(routes, _bodies(None))


@pytest.fixture
def empty_index(tmp_path: Path) -> Iterator[str]:
    """A real, empty PEP 503 index: the sweep's package index, which later builds of the workspace probe
    and search (it has no packages, so they come from PyPI)."""
    index = SimpleIndex(tmp_path / "index").start()
    yield index.url
    index.stop()


@on_sqlite
def test_every_id_route_is_swept(running, world: World, empty_index: str) -> None:
    doc = world.call(None, "GET", "/api/v1/openapi.json").json()
    routes = sorted(id_routes(doc), key=_order)
    bodies = _bodies(world, empty_index)
    _check_coverage(routes, bodies)

    failures: list[str] = []
    swept: list[str] = []
    for method, template, params in routes:
        if (method, template) in NOT_SWEPT:
            continue
        values = {k: v for k, v in _values(world, method, template).items() if k in params}
        path = template.format(**values)
        kw = bodies.get((method, template), dict)
        private, admin = bool(params & PRIVATE), bool(params & ADMIN)
        owner = "admin" if admin else "A" if private else "I"
        student = 403 if admin else STUDENT.get((method, template), 404 if private else 200)
        expected = [(None, 401), ("X", 403 if admin else 404)]
        if (method, template) not in STUDENT_NOT_SWEPT:
            expected.append(("B", student))
        if (method, template) not in OWNER_NOT_SWEPT:
            expected.append((owner, 200))
        for persona, want in expected:
            r = world.call(persona, method, path, **kw())
            ok = r.is_success if want == 200 else r.status_code == want
            if not ok:
                failures.append(f"{method} {path} as {persona or 'anonymous'}: {r.status_code} (want "
                                f"{'2xx' if want == 200 else want}) {r.text[:200]}")
            elif want == 404:
                # refused as if it did not exist: the answer for names that name nothing reads the same (for
                # another workspace's user, the workspace too)
                ghosts = {k: v for k, v in {**values, **_ghosts(workspace=persona == "X")}.items() if k in params}
                if ghosts == values:
                    continue
                ghost = world.call(persona, method, template.format(**ghosts), **kw())
                if _detail(r, values) != _detail(ghost, ghosts):
                    failures.append(f"{method} {path} as {persona}: {_detail(r, values)!r} differs from the answer "
                                    f"for nothing, {_detail(ghost, ghosts)!r}")
        swept.append(f"{method} {template}")
    assert not failures, "\n".join(failures)
    # the global-ID routes are all among them
    for needle in ("/builds/{build_id}", "/builds/{build_id}/lock", "/builds/{build_id}/logs",
                   "/builds/{build_id}/sbom", "/runs/{run_id}", "/runs/{run_id}/outputs/{name}",
                   "/runs/{run_id}/logs", "/versions/{n}/binder", "/versions/{n}/image.tar",
                   "/runs/{run_id}/rerun", "/builds/{build_id}/log.txt",
                   "/versions/{n}/renv.lock"):
        assert any(s.endswith(needle) for s in swept), needle
    print(f"{len(swept)} ID routes swept:\n" + "\n".join(swept))


@on_sqlite
def test_a_shared_build_shows_each_workspace_only_itself(running, world: World) -> None:
    """A's fork and O's environment share one build (identical locks). Each sees its own names and
    requester, neither the other's; the log names no workspace, environment, user or host path."""
    w = world
    a = w.ok("A", "GET", f"/builds/{w.build_id}")
    o = w.ok("O", "GET", f"/builds/{w.build_id}")
    assert (a["workspace"], a["environment"], a["requested_by"]) == (w.ws, w.fork, w.names["A"]), a
    assert (o["workspace"], o["environment"], o["requested_by"]) == (w.shared_ws, "same", w.names["O"]), o
    assert f"/{w.shared_ws}/same:" in o["image_ref"] and o["pull"].startswith(o["image_ref"].rsplit(":", 1)[0])
    foreign = {"A": (w.shared_ws, w.names["O"], "/same"), "O": (w.ws, w.fork, w.names["A"], w.names["I"])}
    for persona, names in foreign.items():
        seen = [json.dumps(w.ok(persona, "GET", f"/builds/{w.build_id}")),
                json.dumps(w.ok(persona, "GET", f"/workspaces/{w.ws if persona == 'A' else w.shared_ws}/environments/"
                                f"{w.fork if persona == 'A' else 'same'}/builds")),
                w.ok(persona, "GET", f"/builds/{w.build_id}/sbom").decode()]
        for text in seen:
            for name in names:
                assert name not in text, (persona, name, text[:500])
    log = w.ok("O", "GET", f"/builds/{w.build_id}/logs").decode()
    assert "event: end" in log and len(log.splitlines()) > 5, log[:2000]
    data_dir = str(running.platform.data_dir)
    for needle in (w.ws, w.fork, w.names["A"], w.shared_ws, data_dir, "/var/lib/containers", "/.local/share/"):
        assert needle not in log, (needle, [line for line in log.splitlines() if needle in line][:5])
    # /tmp on the host (a temporary directory); /tmp/reprolab-agent is inside the image being built
    host_tmp = re.findall(r"/tmp/(?!reprolab-agent\b)\S*", log)
    assert not host_tmp, host_tmp[:5]
    # the log that names nothing is still a real build's: the steps and the push are in it
    assert "STEP" in log or "already" in log, log[:2000]


@on_sqlite
def test_hidden_and_private_objects_read_as_absent(running, world: World) -> None:
    """What the routes above cannot show by their parameters: a hidden dataset is absent to a student, a
    private fork and its run are missing from the other student's listings, and the instructor (who
    may see every fork) sees the fork's build under the fork's own names."""
    w = world
    for suffix in ("", "/content"):
        seen = w.call("B", "GET", f"/api/v1/workspaces/{w.ws}/datasets/{w.labels}{suffix}")
        nothing = w.call("B", "GET", f"/api/v1/workspaces/{w.ws}/datasets/sha256:{'0' * 64}{suffix}")
        assert seen.status_code == nothing.status_code == 404, (seen.text, nothing.text)
        assert _detail(seen, {"d": w.labels}) == _detail(nothing, {"d": f"sha256:{'0' * 64}"})
    assert w.fork not in {e["name"] for e in w.ok("B", "GET", f"/workspaces/{w.ws}/environments")["items"]}
    assert w.fork in {e["name"] for e in w.ok("I", "GET", f"/workspaces/{w.ws}/environments")["items"]}
    assert w.run_id not in {r["id"] for r in w.ok("B", "GET", f"/workspaces/{w.ws}/runs")["items"]}
    seen = w.ok("I", "GET", f"/builds/{w.build_id}")
    assert (seen["workspace"], seen["environment"], seen["requested_by"]) == (w.ws, w.fork, w.names["A"])


@on_sqlite
def test_members_change_role_and_leave_over_http(running, world: World) -> None:
    """PATCH and DELETE .../members/{member} against the real registry: the instructor changes a role and
    removes a member; a student may not; an instructor may not touch the admin; the last admin stays (409)."""
    w = world
    name = f"azn-{uuid.uuid4().hex[:6]}"
    w.tokens["N"] = running.admin.post("/users", json={"username": name})["token"]
    base = f"/api/v1/workspaces/{w.ws}/members"
    w.ok("I", "POST", f"/workspaces/{w.ws}/members", json={"username": name, "role": "student"})
    assert w.call("B", "PATCH", f"{base}/{name}", json={"role": "instructor"}).status_code == 403
    changed = w.ok("I", "PATCH", f"/workspaces/{w.ws}/members/{name}", json={"role": "instructor"})
    assert (changed["username"], changed["role"]) == (name, "instructor")
    roles = {m["username"]: m["role"] for m in w.ok("N", "GET", f"/workspaces/{w.ws}/members")["items"]}
    assert roles[name] == "instructor" and roles[w.names["I"]] == "admin"
    # an instructor may not unmake the admin; the admin may not demote nor remove themself (the last admin)
    r = w.call("N", "PATCH", f"{base}/{w.names['I']}", json={"role": "student"})
    assert r.status_code == 403 and "only an admin" in r.json()["detail"], r.text
    r = w.call("I", "PATCH", f"{base}/{w.names['I']}", json={"role": "student"})
    assert r.status_code == 409 and "last admin" in r.json()["detail"], r.text
    assert w.call("I", "DELETE", f"{base}/{w.names['I']}").status_code == 409
    r = w.call("I", "PATCH", f"{base}/{name}", json={"role": "admin"})
    assert r.is_success and r.json()["role"] == "admin", r.text
    assert w.call("I", "DELETE", f"{base}/{name}").status_code == 204
    r = w.call("I", "DELETE", f"{base}/{name}")
    assert r.status_code == 404 and "no member" in r.json()["detail"], r.text
    assert w.call("N", "GET", f"/api/v1/workspaces/{w.ws}/members").status_code == 404  # no longer a member
    deadline = time.monotonic() + 15
    while True:  # the events reach the activity log through the outbox and the audit service
        entries = w.ok("I", "GET", f"/workspaces/{w.ws}/activity", params={"limit": 1000})["items"]
        mine = [e["event"] for e in entries if e["event"].get("subject", "").startswith("members/")
                and e["event"]["type"] in ("member.role_changed", "member.removed")
                and e["event"].get("details", {}).get("username") == name]
        if len(mine) >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert sorted(e["type"] for e in mine) == ["member.removed", "member.role_changed", "member.role_changed"], mine
