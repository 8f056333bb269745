"""Every endpoint's happy path, RBAC and bad input, against the real platform (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import httpx
import pytest
from reprolab_cli.client import ApiError, Client
from reprolab_common import merkle, signednote
from reprolab_common.auditlog import verify_bundle, verify_consistency_notes

SPEC = {"base": "python:3.12-slim", "python": {"version": "3.12", "requirements": ["pandas>=2.2"]}}


def spec_with(*reqs: str) -> dict:
    return {"base": "python:3.12-slim", "python": {"version": "3.12", "requirements": ["pandas>=2.2", *reqs]}}


def expect_problem(fn, status: int, *needles: str) -> dict:
    with pytest.raises(ApiError) as info:
        fn()
    assert info.value.status == status, info.value
    problem = info.value.problem
    text = json.dumps(problem)
    for needle in needles:
        assert needle in text, f"{needle!r} not in {text}"
    return problem


def raw(client: Client, method: str, path: str, **kw) -> httpx.Response:
    return client.http.request(method, path, **kw)


def test_health_ready_and_openapi(running) -> None:
    root = httpx.get(f"{running.platform.url}/healthz")
    assert root.status_code == 200
    ready = httpx.get(f"{running.platform.url}/readyz")
    assert ready.status_code == 200
    assert set(ready.json()["checks"]) >= {"nats", "registry", "audit", "builder", "runner"}
    spec = httpx.get(f"{running.platform.url}/api/v1/openapi.json").json()
    for path in ("/api/v1/workspaces", "/api/v1/workspaces/{ws}/environments/{env}/versions",
                 "/api/v1/workspaces/{ws}/datasets", "/api/v1/activity/verify",
                 "/api/v1/workspaces/{ws}/activity/export"):
        assert path in spec["paths"], path


def test_tokens_authenticate_and_bad_tokens_are_refused(running) -> None:
    name, user = running.user()
    assert user.get("/me")["username"] == name
    for header in ({}, {"Authorization": "Bearer rpl_not-a-real-token"}, {"Authorization": "Basic abc"}):
        r = httpx.get(f"{running.platform.url}/api/v1/me", headers=header)
        assert r.status_code == 401
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "token" in r.json()["detail"].lower()
    # a student-level user cannot create users
    expect_problem(lambda: user.post("/users", json={"username": "x" + name}), 403)


def test_workspace_members_and_cross_workspace_404(running, course) -> None:
    ws, (iname, teacher), (sname, student) = course
    got = teacher.get(f"/workspaces/{ws}")
    assert got["slug"] == ws and got["caller_role"] == "admin"
    assert ws in [w["slug"] for w in teacher.get("/workspaces")["items"]]
    members = {m["username"]: m["role"] for m in teacher.get(f"/workspaces/{ws}/members")["items"]}
    assert members[sname] == "student" and members[iname] == "admin"
    assert student.get(f"/workspaces/{ws}")["caller_role"] == "student"

    _, outsider = running.user("out")
    for path in (f"/workspaces/{ws}", f"/workspaces/{ws}/environments", f"/workspaces/{ws}/datasets",
                 f"/workspaces/{ws}/activity", f"/workspaces/{ws}/members"):
        expect_problem(lambda p=path: outsider.get(p), 404, ws)
    assert ws not in [w["slug"] for w in outsider.get("/workspaces")["items"]]
    # a student cannot add members; duplicate workspace is a conflict
    expect_problem(lambda: student.post(f"/workspaces/{ws}/members", json={"username": iname, "role": "admin"}), 403)
    expect_problem(lambda: teacher.post("/workspaces", json={"slug": ws, "title": "again"}), 409, ws)
    expect_problem(lambda: teacher.post(f"/workspaces/{ws}/members", json={"username": "nobody-here",
                                                                           "role": "student"}), 422, "nobody-here")


def test_environment_versions_rollback_and_fork(running, course) -> None:
    ws, (iname, teacher), (sname, student) = course
    env = teacher.post(f"/workspaces/{ws}/environments", json={"name": "iris", "spec": SPEC})
    assert env["name"] == "iris" and env["latest_version"] == 1 and env["latest"]["origin"] == "create"
    v2 = teacher.post(f"/workspaces/{ws}/environments/iris/versions", json={"spec": spec_with("scipy")})
    assert v2["number"] == 2 and v2["parent"] == f"{ws}/iris/v1" and v2["origin"] == "update"
    v3 = teacher.post(f"/workspaces/{ws}/environments/iris/versions", json={"rollback_to": 1})
    assert v3["number"] == 3 and v3["origin"] == "rollback" and v3["parent"] == f"{ws}/iris/v1"
    assert v3["spec_digest"] == env["latest"]["spec_digest"] != v2["spec_digest"]
    history = teacher.get(f"/workspaces/{ws}/environments/iris/versions")["items"]
    assert [v["number"] for v in history] == [1, 2, 3]
    assert teacher.get(f"/workspaces/{ws}/environments/iris/versions/2")["spec_digest"] == v2["spec_digest"]
    assert teacher.get(f"/workspaces/{ws}/environments/iris")["latest_version"] == 3
    # the bad value is a field of the request body: 422 naming it
    expect_problem(lambda: teacher.post(f"/workspaces/{ws}/environments/iris/versions", json={"rollback_to": 9}),
                   422, "rollback_to", "9")

    # students read, may not change, may fork and change their fork
    assert "iris" in [e["name"] for e in student.get(f"/workspaces/{ws}/environments")["items"]]
    expect_problem(lambda: student.post(f"/workspaces/{ws}/environments", json={"name": "x", "spec": SPEC}), 403)
    expect_problem(lambda: student.post(f"/workspaces/{ws}/environments/iris/versions",
                                        json={"spec": spec_with("numpy")}), 403)
    fork = student.post(f"/workspaces/{ws}/environments/iris/fork", json={"version": 2, "name": "mine"})
    assert fork["name"] == "mine" and fork["forked_from"] == f"{ws}/iris/v2" and fork["kind"] == "personal"
    assert fork["latest"]["parent"] == f"{ws}/iris/v2" and fork["latest"]["origin"] == "fork"
    assert fork["latest"]["spec_digest"] == v2["spec_digest"]
    own = student.post(f"/workspaces/{ws}/environments/mine/versions", json={"spec": spec_with("scipy", "numpy")})
    assert own["number"] == 2 and own["parent"] == f"{ws}/mine/v1"
    # another student cannot see or change the first student's fork
    other_name, other = running.user("stud")
    teacher.post(f"/workspaces/{ws}/members", json={"username": other_name, "role": "student"})
    assert "mine" not in [e["name"] for e in other.get(f"/workspaces/{ws}/environments")["items"]]
    expect_problem(lambda: other.post(f"/workspaces/{ws}/environments/mine/versions", json={"spec": SPEC}), 404)
    # the instructor sees it
    assert "mine" in [e["name"] for e in teacher.get(f"/workspaces/{ws}/environments")["items"]]


def test_yaml_specs_and_bad_input_store_nothing(running, course) -> None:
    ws, (_, teacher), _ = course
    yaml_body = ("name: yml\nspec:\n  base: python:3.12-slim\n"
                 "  python:\n    version: '3.12'\n    requirements: [numpy]\n")
    env = teacher.post(f"/workspaces/{ws}/environments", content=yaml_body,
                       headers={"Content-Type": "application/yaml"})
    assert env["name"] == "yml"
    before = teacher.get(f"/workspaces/{ws}/environments/yml/versions")["items"]
    head_before = settled_head(teacher, ws, at_least=3)

    base = f"/workspaces/{ws}/environments"
    cases = [
        (dict(content="{not json", headers={"Content-Type": "application/json"}), 400, "JSON"),
        (dict(content="name: [unclosed\n", headers={"Content-Type": "application/yaml"}), 400, "line"),
        (dict(json={"name": "ok1", "spec": SPEC, "colour": "red"}), 422, "colour"),
        (dict(json={"name": "ok2", "spec": {**SPEC, "pyton": {}}}), 422, "pyton"),
        (dict(json={"name": "ok3", "spec": spec_with("numpy>>1")}), 422, "requirements"),
        (dict(json={"name": "ok4", "spec": spec_with("not a name!")}), 422, "requirements"),
        (dict(json={"name": "ok5", "spec": {**SPEC, "base": "UPPER/Case::bad"}}), 422, "base"),
        (dict(json={"name": "ok6", "spec": {**SPEC, "datasets": [{"digest": "sha256:" + "0" * 64,
                                                                   "mount": "/data/x"}]}}), 422, "datasets"),
        (dict(json={"name": "../etc", "spec": SPEC}), 422, "name"),
        (dict(content="[1, 2]", headers={"Content-Type": "application/json"}), 422, ""),
        (dict(content="x", headers={"Content-Type": "text/plain"}), 415, ""),
    ]
    for kwargs, status, needle in cases:
        r = raw(teacher, "POST", base, **kwargs)
        assert r.status_code == status, (kwargs, r.status_code, r.text)
        assert r.headers["content-type"].startswith("application/problem+json"), r.headers
        assert needle in r.text, (needle, r.text)
        assert r.json()["detail"], r.text
    r = raw(teacher, "POST", f"{base}/yml/versions", json={"spec": spec_with("numpy"), "rollback_to": 1})
    assert r.status_code == 422, r.text
    names = [e["name"] for e in teacher.get(base)["items"]]
    assert names == ["yml"], names
    assert teacher.get(f"/workspaces/{ws}/environments/yml/versions")["items"] == before
    assert teacher.get(f"/workspaces/{ws}/activity", params={"limit": 1})["head_seq"] == head_before


def test_dataset_upload_download_visibility_and_limits(running, course, tmp_path: Path) -> None:
    ws, (_, teacher), (_, student) = course
    data = b"x,y\n" + b"1,2\n" * 1000
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    up = teacher.post(f"/workspaces/{ws}/datasets", params={"name": "train.csv", "visibility": "public"},
                      content=data, headers={"Content-Type": "application/octet-stream"})
    assert up["digest"] == digest and up["size"] == len(data) and up["visibility"] == "public"
    hidden = teacher.post(f"/workspaces/{ws}/datasets", params={"name": "labels.csv", "visibility": "hidden"},
                          content=b"secret-labels\n")
    assert teacher.get(f"/workspaces/{ws}/datasets/{digest}")["name"] == "train.csv"
    assert {d["name"] for d in teacher.get(f"/workspaces/{ws}/datasets")["items"]} == {"train.csv", "labels.csv"}
    assert {d["name"] for d in student.get(f"/workspaces/{ws}/datasets")["items"]} == {"train.csv"}
    expect_problem(lambda: student.get(f"/workspaces/{ws}/datasets/{hidden['digest']}"), 404)
    expect_problem(lambda: student.get(f"/workspaces/{ws}/datasets/{hidden['digest']}/content"), 404)
    out = tmp_path / "train.csv"
    assert student.download(f"/workspaces/{ws}/datasets/{digest}/content", out) == len(data)
    assert out.read_bytes() == data
    expect_problem(lambda: student.post(f"/workspaces/{ws}/datasets", params={"name": "s.csv"}, content=b"a"), 403)

    # a dataset may be named in a spec once it exists
    env = teacher.post(f"/workspaces/{ws}/environments", json={
        "name": "withdata", "spec": {**SPEC, "datasets": [{"digest": digest, "mount": "/data/train"}]}})
    assert env["latest_version"] == 1

    def stored() -> set[str]:
        return {str(p) for p in running.objects_dir.rglob("*") if p.is_file() and ".tmp" not in p.parts}

    objects = stored()
    for name in ("../escape.csv", "/etc/passwd", "a/b.csv", ".hidden", ""):
        r = raw(teacher, "POST", f"/workspaces/{ws}/datasets", params={"name": name}, content=b"abc")
        assert r.status_code == 422, (name, r.text)
        assert "name" in r.text
    r = raw(teacher, "POST", f"/workspaces/{ws}/datasets", params={"name": "big.bin", "visibility": "public"},
            content=b"0" * (2 * 1024 * 1024))
    assert r.status_code == 413 and "byte" in r.json()["detail"].lower(), r.text

    def chunks():
        for _ in range(40):
            yield b"1" * 65536  # 2.5 MiB without a Content-Length

    r = raw(teacher, "POST", f"/workspaces/{ws}/datasets", params={"name": "stream.bin"}, content=chunks())
    assert r.status_code == 413, r.text
    r = raw(teacher, "POST", f"/workspaces/{ws}/datasets", params={"name": "v.csv", "visibility": "secret"},
            content=b"abc")
    assert r.status_code == 422 and "visibility" in r.text
    assert stored() == objects, "a refused upload left an object behind"
    assert {d["name"] for d in teacher.get(f"/workspaces/{ws}/datasets")["items"]} == {"train.csv", "labels.csv"}


def settled_head(client: Client, ws: str, at_least: int) -> int:
    """Events reach the log asynchronously: wait for ``at_least`` entries and then for quiet."""
    head = client.wait_activity(ws, at_least=at_least)
    while True:
        time.sleep(1.5)
        now = client.get(f"/workspaces/{ws}/activity", params={"limit": 1})["head_seq"]
        if now == head:
            return head
        head = now


def test_activity_views_export_and_verify(running, course, tmp_path: Path) -> None:
    ws, (iname, teacher), (sname, student) = course
    teacher.post(f"/workspaces/{ws}/environments", json={"name": "act", "spec": SPEC})
    student.post(f"/workspaces/{ws}/environments/act/fork", json={})
    # workspace, 2 members, 2 environments, 2 versions
    head = settled_head(teacher, ws, at_least=5)
    everything = teacher.get(f"/workspaces/{ws}/activity", params={"limit": 1000})["items"]
    assert len(everything) == head
    assert {e["actor_name"] for e in everything} >= {iname, sname}
    mine = student.get(f"/workspaces/{ws}/activity", params={"limit": 1000})["items"]
    assert mine and {e["actor_name"] for e in mine} == {sname}
    only_created = teacher.get(f"/workspaces/{ws}/activity", params={"type": "environment.created"})["items"]
    assert {e["type"] for e in only_created} == {"environment.created"} and len(only_created) == 2
    by_actor = teacher.get(f"/workspaces/{ws}/activity", params={"actor": sname})["items"]
    assert by_actor and {e["actor_name"] for e in by_actor} == {sname}
    by_subject = teacher.get(f"/workspaces/{ws}/activity", params={"subject": "environments/act"})["items"]
    assert by_subject and all(e["subject"].startswith("environments/act") for e in by_subject)

    # paging and a time window
    first_page = teacher.get(f"/workspaces/{ws}/activity", params={"limit": 2})
    assert [e["seq"] for e in first_page["items"]] == [1, 2] and first_page["next_after"] == 2
    second = teacher.get(f"/workspaces/{ws}/activity", params={"limit": 2, "after": first_page["next_after"]})
    assert [e["seq"] for e in second["items"]] == [3, 4]
    t3 = everything[2]["time"]
    window = teacher.get(f"/workspaces/{ws}/activity", params={"since": t3, "until": everything[-1]["time"]})
    assert window["items"] and all(t3 <= e["time"] < everything[-1]["time"] for e in window["items"])
    assert all(e["leaf_hash"] == hashlib.sha256(b"\x00" + e["canonical_json"].encode()).hexdigest()
               for e in everything)

    # the signed checkpoint a student keeps (C2SP note), and proofs against it
    r = raw(student, "GET", f"/workspaces/{ws}/activity/checkpoint")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain"), r.text
    kept_note = r.text
    verifiers = [signednote.Verifier.parse(k) for k in r.headers["x-reprolab-verifier-keys"].split()]
    kept, _ = signednote.open_checkpoint(kept_note, verifiers, origin=r.headers["x-reprolab-origin"])
    assert kept.size == head and kept.origin.endswith("/" + ws)
    my_entry = mine[0]
    proof = student.get(f"/workspaces/{ws}/activity/proof/inclusion", params={"index": my_entry["seq"] - 1})
    assert proof["size"] == head and proof["checkpoint"] == kept_note
    merkle.verify_inclusion(my_entry["seq"] - 1, head, bytes.fromhex(my_entry["leaf_hash"]),
                            [bytes.fromhex(h) for h in proof["hashes"]], kept.root)
    for params in ({"index": head}, {"index": -1}, {}, {"index": 0, "size": head + 1}):
        r = raw(student, "GET", f"/workspaces/{ws}/activity/proof/inclusion", params=params)
        assert r.status_code == 422, (params, r.text)
    r = raw(student, "GET", f"/workspaces/{ws}/activity/proof/consistency", params={"old": head + 1})
    assert r.status_code == 422, r.text
    r = raw(student, "GET", "/workspaces/no-such-ws/activity/checkpoint")
    assert r.status_code == 404, r.text

    bundle = tmp_path / "all.jsonl"
    teacher.download(f"/workspaces/{ws}/activity/export", bundle)
    result = verify_bundle(bundle, against=kept_note)
    assert result.ok and result.entries == head and result.workspace == ws, result
    assert result.against_size == head
    api = teacher.post("/activity/verify", content=bundle.read_bytes())
    assert api["ok"] and api["keys_known"] and api["matches_log"] and api["entries"] == head
    api = teacher.post("/activity/verify", params={"against": kept_note}, content=bundle.read_bytes())
    assert api["ok"] and api["against_size"] == head, api
    # the log grew (the export itself was logged): the student checks it extends the kept checkpoint
    later = teacher.wait_activity(ws, at_least=head + 1)
    r = raw(student, "GET", f"/workspaces/{ws}/activity/checkpoint")
    cons = student.get(f"/workspaces/{ws}/activity/proof/consistency", params={"old": head})
    assert cons["new_size"] >= later and cons["new_checkpoint"] == r.text
    verify_consistency_notes(kept_note, r.text, [bytes.fromhex(h) for h in cons["hashes"]], verifiers)
    # a checkpoint of another log does not pass as one this bundle extends
    other = kept_note.replace(kept.origin, kept.origin + "x", 1)
    api = teacher.post("/activity/verify", params={"against": other}, content=bundle.read_bytes())
    assert api["ok"] is False and "your checkpoint" in api["reason"]

    own = tmp_path / "own.jsonl"
    student.download(f"/workspaces/{ws}/activity/export", own)
    assert verify_bundle(own).ok
    assert iname not in own.read_text(), "a student's export leaked another member's entries"

    lines = bundle.read_text().splitlines()
    entry_line = next(i for i, line in enumerate(lines) if json.loads(line)["type"] == "entry")
    doc = json.loads(lines[entry_line])
    doc["entry"]["actor"]["name"] = "someone-else"
    lines[entry_line] = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    api = teacher.post("/activity/verify", content=("\n".join(lines) + "\n").encode())
    assert api["ok"] is False and api["line"] == entry_line + 1 and "leaf hash" in api["reason"], api
    # there is no way to change or delete an entry through the API
    for method in ("PUT", "PATCH", "DELETE"):
        r = raw(teacher, method, f"/workspaces/{ws}/activity")
        assert r.status_code == 405, (method, r.status_code)
