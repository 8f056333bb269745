"""An assignment's starter code in a student's JupyterLab session (issue 17 item 1): unpacked into
~/<assignment>/ before the session shows ``running``, never over a file the student already has.

Real parts: the platform (gateway, registry, runner, builder), podman, the notebook server in the version's
image, the object store holding the archives. The student holds only their platform token.
"""

from __future__ import annotations

import io
import tarfile
import time
import zipfile
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from reprolab_runner.sessions.starter import files_of

from .test_sessions_gateway import bearer, gw_lab, home_of, wait_status  # noqa: F401 - gw_lab is a fixture

TRAIN = "print('starter train.py')\n"
UTIL = "def helper():\n    return 42\n"


def tar_gz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_only_safe_regular_files_of_an_archive_are_unpacked() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in {"./a.py": b"a", "src/b.py": b"b", "../evil": b"x", "/etc/evil": b"x"}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("link")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    assert [(f.path, f.data) for f in files_of(buf.getvalue())] == [("a.py", b"a"), ("src/b.py", b"b")]
    z = io.BytesIO()
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("nb/start.ipynb", "{}")
        zf.writestr("..\\evil", "x")
    assert [f.path for f in files_of(z.getvalue())] == ["nb/start.ipynb"]


@pytest.mark.timeout(900)
@pytest.mark.parametrize("running", ["sqlite"], indirect=True)
def test_a_students_session_starts_with_the_starter_code_and_keeps_their_edits(running, gw_lab) -> None:  # noqa: F811
    ws, teacher, ((alice, alice_token), _), homes = gw_lab
    gw = running.platform.url.rstrip("/")
    teacher.post(f"/workspaces/{ws}/datasets", params={"name": "labels.csv", "visibility": "hidden"},
                 content=b"id,y\n1,a\n")
    evaluation = teacher.request("POST", f"/workspaces/{ws}/code", content=tar_gz({"evaluate.py": b"pass\n"}),
                                 expect=(201,))
    starter = teacher.request("POST", f"/workspaces/{ws}/code", expect=(201,),
                              content=tar_gz({"train.py": TRAIN.encode(), "src/util.py": UTIL.encode()}))
    later = teacher.request("POST", f"/workspaces/{ws}/code", expect=(201,),
                            content=tar_gz({"later.py": b"not yet\n"}))
    common = {"environment": "py", "evaluation_code": evaluation["digest"], "labels": "labels.csv"}
    teacher.post(f"/workspaces/{ws}/assignments", json={**common, "name": "hw1", "starter_code": starter["digest"]})
    opens = (datetime.now(UTC) + timedelta(days=3)).isoformat().replace("+00:00", "Z")
    teacher.post(f"/workspaces/{ws}/assignments", json={**common, "name": "hw2", "starter_code": later["digest"],
                                                         "opens_at": opens})
    # an assignment not open yet, or none of that name, is refused before anything starts
    assert alice.response("POST", f"/workspaces/{ws}/sessions", json={"environment": "py", "assignment": "hw2"},
                          expect=(409,)).status_code == 409
    assert alice.response("POST", f"/workspaces/{ws}/sessions", json={"environment": "py", "assignment": "nope"},
                          expect=(404,)).status_code == 404

    s = alice.post(f"/workspaces/{ws}/sessions", json={"environment": "py"}, expect=(201,))
    assert s["starter_code"] == ["hw1"], s  # the open assignment of this environment, not hw2
    wait_status(alice, ws, s["id"], ("running",))
    homes.add(home_of(s["id"]))
    api = f"{gw}/sessions/{s['id']}/api/contents/"
    with httpx.Client(timeout=60, headers=bearer(alice_token)) as c:
        got = c.get(api + "hw1/train.py")  # there as soon as the session is running
        assert got.status_code == 200 and got.json()["content"] == TRAIN, got.text
        assert c.get(api + "hw1/src/util.py").json()["content"] == UTIL
        assert c.get(api + "hw2").status_code == 404
        # the student edits one file and deletes another
        put = c.put(api + "hw1/train.py", json={"type": "file", "format": "text", "content": "# mine\n"})
        assert put.status_code in (200, 201), put.text
        assert c.delete(api + "hw1/src/util.py").status_code == 204
    alice.request("DELETE", f"/workspaces/{ws}/sessions/{s['id']}")
    wait_status(alice, ws, s["id"], ("stopped",), timeout=120)

    # opened again for the assignment: the edit stays, the deleted starter file comes back
    s2 = alice.post(f"/workspaces/{ws}/sessions", json={"environment": "py", "assignment": "hw1"}, expect=(201,))
    assert s2["starter_code"] == ["hw1"]
    wait_status(alice, ws, s2["id"], ("running",))
    api = f"{gw}/sessions/{s2['id']}/api/contents/"
    with httpx.Client(timeout=60, headers=bearer(alice_token)) as c:
        assert c.get(api + "hw1/train.py").json()["content"] == "# mine\n"
        assert c.get(api + "hw1/src/util.py").json()["content"] == UTIL
        assert c.delete(api + "hw1/src/util.py").status_code == 204
    alice.request("DELETE", f"/workspaces/{ws}/sessions/{s2['id']}")
    wait_status(alice, ws, s2["id"], ("stopped",), timeout=120)

    # the student's fork of the course environment gets the course's starter code too
    alice.post(f"/workspaces/{ws}/environments/py/fork", json={"name": "py-mine"})
    build = alice.post(f"/workspaces/{ws}/environments/py-mine/versions/1/builds", expect=(202,))
    deadline = time.monotonic() + 300
    while (b := alice.get(f"/builds/{build['id']}"))["status"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, b
        time.sleep(0.5)
    assert b["status"] == "succeeded", b
    s3 = alice.post(f"/workspaces/{ws}/sessions", json={"environment": "py-mine"}, expect=(201,))
    assert s3["starter_code"] == ["hw1"], s3
    wait_status(alice, ws, s3["id"], ("running",))
    with httpx.Client(timeout=60, headers=bearer(alice_token)) as c:
        api = f"{gw}/sessions/{s3['id']}/api/contents/"
        assert c.get(api + "hw1/src/util.py").json()["content"] == UTIL
        assert c.get(api + "hw1/train.py").json()["content"] == "# mine\n"
    alice.request("DELETE", f"/workspaces/{ws}/sessions/{s3['id']}")
    wait_status(alice, ws, s3["id"], ("stopped",), timeout=120)
