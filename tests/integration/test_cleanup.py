"""Clean-up on the whole platform (SQLite and PostgreSQL): a dataset no version or assignment uses is deleted
and its bytes freed (another workspace's copy of the same file stays); one in use is refused with 409 naming
the versions; students cannot delete; the activity log keeps the upload and records the deletion."""

from __future__ import annotations

import time
import uuid

BASE = "localhost/reprolab/bookworm-python:latest"


def _key(ws: str, digest: str) -> str:
    return f"workspaces/{ws}/datasets/sha256/{digest.removeprefix('sha256:')}"


def test_datasets_are_deleted_unless_a_version_uses_them_and_bytes_go_when_unshared(course, running) -> None:
    ws, (_, instructor), (_, student) = course
    tag = uuid.uuid4().hex.encode()
    used = instructor.post(f"/workspaces/{ws}/datasets", params={"name": "used.csv", "visibility": "public"},
                           content=b"a\n" + tag)
    spare = instructor.post(f"/workspaces/{ws}/datasets", params={"name": "spare.csv", "visibility": "public"},
                            content=b"b\n" + tag)
    hidden = instructor.post(f"/workspaces/{ws}/datasets", params={"name": "hidden.csv"}, content=b"c\n" + tag)
    instructor.post(f"/workspaces/{ws}/environments", json={"name": "py", "spec": {
        "base": BASE, "python": {"version": "3.11", "requirements": []},
        "datasets": [{"digest": used["digest"], "mount": "/data/used.csv"}]}})

    # in use by v1 of py: refused, naming it
    r = instructor.response("DELETE", f"/workspaces/{ws}/datasets/{used['digest']}", expect=(409,))
    assert r.headers["content-type"].startswith("application/problem+json")
    assert f"{ws}/py/v1" in r.json()["detail"] and "used.csv" in r.json()["detail"]
    # a student may not delete a public dataset (403) and learns nothing of a hidden one (404, as for none)
    assert student.response("DELETE", f"/workspaces/{ws}/datasets/{spare['digest']}", expect=(403,))
    ghost = "sha256:" + "0" * 64
    hidden_answer = student.response("DELETE", f"/workspaces/{ws}/datasets/{hidden['digest']}", expect=(404,))
    ghost_answer = student.response("DELETE", f"/workspaces/{ws}/datasets/{ghost}", expect=(404,))
    assert hidden_answer.json()["detail"].replace(hidden["digest"], "X") == \
        ghost_answer.json()["detail"].replace(ghost, "X")
    assert student.response("DELETE", f"/workspaces/{ws}/datasets/bad-digest", expect=(422,))

    # the same file in another workspace is its own copy: deleting it here frees these bytes, not those
    _, other = running.user("other")
    other_ws = running.workspace(other)
    other.post(f"/workspaces/{other_ws}/datasets", params={"name": "copy.csv"}, content=b"b\n" + tag)
    path = running.objects_dir / _key(ws, spare["digest"])
    assert path.is_file()
    instructor.request("DELETE", f"/workspaces/{ws}/datasets/{spare['digest']}", expect=(204,))
    assert spare["digest"] not in {d["digest"] for d in instructor.get(f"/workspaces/{ws}/datasets")["items"]}
    assert not path.is_file(), "nothing refers to these bytes any more"
    assert other.get(f"/workspaces/{other_ws}/datasets/{spare['digest']}/content") == b"b\n" + tag
    instructor.response("DELETE", f"/workspaces/{ws}/datasets/{spare['digest']}", expect=(404,))
    assert (running.objects_dir / _key(ws, used["digest"])).is_file(), "the dataset in use keeps its bytes"

    hidden_path = running.objects_dir / _key(ws, hidden["digest"])
    instructor.request("DELETE", f"/workspaces/{ws}/datasets/{hidden['digest']}", expect=(204,))
    assert not hidden_path.exists()

    # the log keeps the upload and records the deletion (entries are never removed from the chain)
    deadline = time.monotonic() + 20
    while True:
        types = [(e["event"]["type"], e["event"]["subject"])
                 for e in instructor.get(f"/workspaces/{ws}/activity", params={"limit": 500})["items"]]
        if ("dataset.deleted", f"datasets/{hidden['digest']}") in types or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert ("dataset.deleted", f"datasets/{hidden['digest']}") in types, types
    assert ("dataset.deleted", f"datasets/{spare['digest']}") in types
    assert ("dataset.uploaded", f"datasets/{spare['digest']}") in types
    assert ("dataset.deleted", f"datasets/{used['digest']}") not in types
    assert instructor.post(f"/workspaces/{ws}/activity/verify")["ok"] is True


def test_students_see_their_own_forks_not_everyones(course, running) -> None:
    ws, (_, instructor), (sname, student) = course
    oname, other = running.user("stud-b")
    instructor.post(f"/workspaces/{ws}/members", json={"username": oname, "role": "student"})
    instructor.post(f"/workspaces/{ws}/environments", json={"name": "py", "spec": {
        "base": BASE, "python": {"version": "3.11", "requirements": []}}})
    mine = student.post(f"/workspaces/{ws}/environments/py/fork", json={"name": f"mine-{sname}"[:63]})["name"]
    theirs = other.post(f"/workspaces/{ws}/environments/py/fork", json={"name": f"mine-{oname}"[:63]})["name"]
    names = lambda client: {e["name"] for e in client.get(f"/workspaces/{ws}/environments")["items"]}  # noqa: E731
    assert names(student) == {"py", mine}
    assert names(other) == {"py", theirs}
    assert names(instructor) == {"py", mine, theirs}
    assert other.response("GET", f"/workspaces/{ws}/environments/{mine}", expect=(404,))


def _activity(client, ws: str, wanted: tuple[str, str]) -> list[tuple[str, str]]:
    deadline = time.monotonic() + 20
    while True:
        types = [(e["event"]["type"], e["event"]["subject"])
                 for e in client.get(f"/workspaces/{ws}/activity", params={"limit": 500})["items"]]
        if wanted in types or time.monotonic() > deadline:
            return types
        time.sleep(0.3)


def test_environments_are_archived_restored_and_deleted_only_when_nothing_needs_them(course, running) -> None:
    ws, (_, instructor), (sname, student) = course
    spec = {"base": BASE, "python": {"version": "3.11", "requirements": []}}
    instructor.post(f"/workspaces/{ws}/environments", json={"name": "py", "spec": spec})
    instructor.post(f"/workspaces/{ws}/environments", json={"name": "old", "spec": spec})
    fork = student.post(f"/workspaces/{ws}/environments/py/fork", json={"name": f"mine-{sname}"[:63]})["name"]
    names = lambda client, **params: {  # noqa: E731
        e["name"] for e in client.get(f"/workspaces/{ws}/environments", params=params)["items"]}

    # a fork points at its parent for good: the parent cannot go, the detail says why and what to do
    r = instructor.response("DELETE", f"/workspaces/{ws}/environments/py", expect=(409,))
    assert r.headers["content-type"].startswith("application/problem+json")
    assert f"fork {ws}/{fork}" in r.json()["detail"] and "archive it instead" in r.json()["detail"]
    # students change only their own fork
    assert student.response("POST", f"/workspaces/{ws}/environments/py/archive", expect=(403,))
    assert student.response("DELETE", f"/workspaces/{ws}/environments/py", expect=(403,))

    # archived: out of lists (and so run forms), still readable, no new versions, restorable
    archived = instructor.post(f"/workspaces/{ws}/environments/old/archive", expect=(200,))
    assert archived["archived_at"] is not None
    assert instructor.post(f"/workspaces/{ws}/environments/old/archive", expect=(200,))["archived_at"] == \
        archived["archived_at"], "archiving twice changes nothing"
    assert names(instructor) == {"py", fork} and names(student) == {"py", fork}
    assert names(instructor, archived="true") == {"py", "old", fork}
    assert names(student, archived="true") == {"py", "old", fork}
    assert instructor.get(f"/workspaces/{ws}/environments/old/versions/1")["number"] == 1
    r = instructor.response("POST", f"/workspaces/{ws}/environments/old/versions", json={"spec": spec},
                            expect=(409,))
    assert "restore" in r.json()["detail"]
    assert instructor.post(f"/workspaces/{ws}/environments/old/restore", expect=(200,))["archived_at"] is None
    assert "old" in names(instructor)

    # a student archives and deletes their own fork; then the parent may go
    assert student.post(f"/workspaces/{ws}/environments/{fork}/archive", expect=(200,))["archived_at"]
    assert fork not in names(student)
    student.request("DELETE", f"/workspaces/{ws}/environments/{fork}", expect=(204,))
    student.response("GET", f"/workspaces/{ws}/environments/{fork}", expect=(404,))
    instructor.request("DELETE", f"/workspaces/{ws}/environments/py", expect=(204,))
    instructor.response("DELETE", f"/workspaces/{ws}/environments/py", expect=(404,))
    assert names(instructor, archived="true") == {"old"}
    # the name is free again; the new environment starts at version 1
    assert instructor.post(f"/workspaces/{ws}/environments", json={"name": "py", "spec": spec})["latest_version"] == 1
    assert instructor.response("DELETE", f"/workspaces/{ws}/environments/Bad_Name", expect=(422,))

    types = _activity(instructor, ws, ("environment.deleted", "environments/py"))
    assert ("environment.deleted", "environments/py") in types, types
    assert ("environment.deleted", f"environments/{fork}") in types
    assert types.count(("environment.archived", "environments/old")) == 1
    assert ("environment.restored", "environments/old") in types
    assert ("environment.created", "environments/py") in types, "earlier entries stay"
    assert instructor.post(f"/workspaces/{ws}/activity/verify")["ok"] is True


def _tar_gz(files: dict[str, str]) -> bytes:
    import io
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _wait_run(client, run_id: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while (run := client.get(f"/runs/{run_id}"))["status"] not in ("succeeded", "failed", "cancelled", "timed_out"):
        assert time.monotonic() < deadline, run
        time.sleep(0.3)
    return run


def test_finished_runs_are_deleted_and_an_environment_a_run_used_is_kept(course, running, base_image) -> None:
    ws, (_, instructor), (_, student) = course
    oname, other = running.user("stud-c")
    instructor.post(f"/workspaces/{ws}/members", json={"username": oname, "role": "student"})
    instructor.post(f"/workspaces/{ws}/environments", json={"name": "py", "spec": {
        "base": BASE, "python": {"version": "3.11", "requirements": ["six==1.16.0"]}}})
    build = instructor.post(f"/workspaces/{ws}/environments/py/versions/1/builds", expect=(202,))
    deadline = time.monotonic() + 300
    while instructor.get(f"/builds/{build['id']}")["status"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    program = "import os; os.makedirs('/outputs', exist_ok=True); open('/outputs/out.txt', 'w').write('hi')"
    code = student.request("POST", f"/workspaces/{ws}/code", content=_tar_gz({"run.py": program}), expect=(201,))
    run = student.request("POST", f"/workspaces/{ws}/runs", json={
        "environment": "py", "code": code["digest"], "command": ["python3", "run.py"]}, expect=(202,))
    assert _wait_run(student, run["id"])["status"] == "succeeded"
    out = running.objects_dir / f"runs/{run['id']}/outputs/out.txt"
    assert out.is_file()

    # the run names py: py stays, the refusal names the run and suggests archiving
    r = instructor.response("DELETE", f"/workspaces/{ws}/environments/py", expect=(409,))
    assert run["id"] in r.json()["detail"] and "archive it instead" in r.json()["detail"]
    # another student does not see the run (404 as for none); its owner deletes it
    other.response("DELETE", f"/runs/{run['id']}", expect=(404,))
    student.request("DELETE", f"/runs/{run['id']}", expect=(204,))
    student.response("GET", f"/runs/{run['id']}", expect=(404,))
    student.response("DELETE", f"/runs/{run['id']}", expect=(404,))
    assert not out.exists(), "the run's outputs go with it"
    assert run["id"] not in {x["id"] for x in instructor.get(f"/workspaces/{ws}/runs")["items"]}

    # a run still going is not deleted: cancel it first
    slow = student.request("POST", f"/workspaces/{ws}/runs", json={
        "environment": "py", "code": code["digest"], "command": ["sleep", "120"]}, expect=(202,))
    r = instructor.response("DELETE", f"/runs/{slow['id']}", expect=(409,))
    assert "cancel it first" in r.json()["detail"]
    student.post(f"/runs/{slow['id']}/cancel")
    assert _wait_run(student, slow["id"])["status"] == "cancelled"
    instructor.request("DELETE", f"/runs/{slow['id']}", expect=(204,))

    # no run names py any more: it may go
    instructor.request("DELETE", f"/workspaces/{ws}/environments/py", expect=(204,))
    types = _activity(instructor, ws, ("run.deleted", f"runs/{slow['id']}"))
    assert ("run.deleted", f"runs/{run['id']}") in types and ("run.deleted", f"runs/{slow['id']}") in types, types
    assert ("run.succeeded", f"runs/{run['id']}") in types, "earlier entries stay"
    assert instructor.post(f"/workspaces/{ws}/activity/verify")["ok"] is True


def test_the_cli_archives_restores_and_deletes_an_environment(course, running, tmp_path) -> None:
    from reprolab_cli.main import app
    from typer.testing import CliRunner

    ws, (_, instructor), (_, student) = course
    cli = CliRunner()
    token = instructor.http.headers["Authorization"].removeprefix("Bearer ")
    common = ["--url", running.platform.url, "--token", token]

    def call(*args: str) -> tuple[int, str]:
        result = cli.invoke(app, list(args), env={"COLUMNS": "200"})
        return result.exit_code, result.output

    spec = tmp_path / "spec.yaml"
    spec.write_text(f"base: {BASE}\npython:\n  version: '3.11'\n  requirements: []\n")
    assert call("env", "create", ws, "iris", "--spec", str(spec), *common)[0] == 0
    student.post(f"/workspaces/{ws}/environments/iris/fork", json={"name": "iris-mine"})
    code, out = call("env", "archive", ws, "iris", *common)
    assert code == 0 and "iris" in out
    assert "iris " not in call("env", "list", ws, *common)[1].replace("iris-mine", "")
    assert "iris" in call("env", "list", ws, "--archived", *common)[1]
    assert call("env", "restore", ws, "iris", *common)[0] == 0
    code, out = call("env", "delete", ws, "iris", *common)
    assert code != 0 and f"fork {ws}/iris-mine" in out, out
    assert call("env", "delete", ws, "iris-mine", *common)[0] == 0
    code, out = call("env", "delete", ws, "iris", *common)
    assert code == 0 and f"deleted environment {ws}/iris" in out
    assert instructor.get(f"/workspaces/{ws}/environments", params={"archived": "true"})["items"] == []
