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
