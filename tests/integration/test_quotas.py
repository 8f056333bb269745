"""Workspace quotas through the whole platform (issue 17 item 4): GET/PUT /workspaces/{ws}/quotas, a run beyond
the concurrent quota refused with 429 and Retry-After (and admitted again once one ends), a dataset upload and a
run beyond the storage quota refused with 409, nothing stored or started on refusal; students read, not change.

Real parts: the gateway, registry and runner over NATS, the local target on podman, the object store."""

from __future__ import annotations

import json
import time

import pytest
from reprolab_cli.client import ApiError

from .test_runs import BASE, submit, wait_run


@pytest.fixture
def lab(running, base_image):
    """A workspace with a built environment and a student."""
    _, teacher = running.user("qt")
    ws = running.workspace(teacher, "qws")
    sname, student = running.user("qs")
    teacher.post(f"/workspaces/{ws}/members", json={"username": sname, "role": "student"})
    teacher.post(f"/workspaces/{ws}/environments", json={"name": "py", "spec": {
        "base": BASE, "python": {"version": "3.11"}}})
    build = teacher.post(f"/workspaces/{ws}/environments/py/versions/1/builds", expect=(202,))
    deadline = time.monotonic() + 300
    while teacher.get(f"/builds/{build['id']}")["status"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert teacher.get(f"/builds/{build['id']}")["status"] == "succeeded"
    return ws, teacher, student


def refused(call, status: int) -> ApiError:
    with pytest.raises(ApiError) as info:
        call()
    assert info.value.status == status, info.value.problem
    return info.value


def test_members_read_quotas_and_only_instructors_change_them(lab) -> None:
    ws, teacher, student = lab
    seen = student.get(f"/workspaces/{ws}/quotas")
    assert seen["limits"] == {"max_concurrent_runs": 0, "max_concurrent_runs_per_member": 0, "max_storage_bytes": 0}
    assert seen["can_change"] is False and "datasets" in seen["counted"]
    refused(lambda: student.request("PUT", f"/workspaces/{ws}/quotas", json={"max_concurrent_runs": 5}), 403)
    assert teacher.get(f"/workspaces/{ws}/quotas")["limits"]["max_concurrent_runs"] == 0
    for bad in ({"max_concurrent_runs": -1}, {"max_storage_bytes": "lots"}, {"max_runs": 1},
                {"max_concurrent_runs": True}):
        refused(lambda bad=bad: teacher.request("PUT", f"/workspaces/{ws}/quotas", json=bad), 422)
    done = teacher.request("PUT", f"/workspaces/{ws}/quotas", json={"max_concurrent_runs": 3,
                                                                    "max_storage_bytes": 10 << 30})
    assert done["limits"]["max_concurrent_runs"] == 3 and done["can_change"] is True
    assert student.get(f"/workspaces/{ws}/quotas")["limits"]["max_storage_bytes"] == 10 << 30


def test_runs_beyond_the_concurrent_quota_wait_their_turn(lab) -> None:
    ws, teacher, student = lab
    teacher.request("PUT", f"/workspaces/{ws}/quotas", json={"max_concurrent_runs": 1})
    first = submit(student, ws, {"x.py": ""}, ["sleep", "4"])
    code = student.request("POST", f"/workspaces/{ws}/code", content=_tgz(), expect=(201,))
    body = {"environment": "py", "code": code["digest"], "command": ["true"]}
    with pytest.raises(ApiError) as info:
        student.response("POST", f"/workspaces/{ws}/runs", json=body, expect=(202,))
    assert info.value.status == 429 and "nothing was started" in info.value.problem["detail"], info.value.problem
    r = student.http.post(f"/workspaces/{ws}/runs", json=body)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert [x["id"] for x in student.get(f"/workspaces/{ws}/runs")["items"]] == [first["id"]], "nothing was queued"
    usage = teacher.get(f"/workspaces/{ws}/quotas")["usage"]
    assert usage["concurrent"] == 1 and usage["runs"] == 1 and usage["yours"] == 0
    assert wait_run(student, first["id"])["status"] == "succeeded"
    second = student.request("POST", f"/workspaces/{ws}/runs", json=body, expect=(202,))  # its turn now
    assert wait_run(student, second["id"])["status"] == "succeeded"
    # one member's limit: the instructor's run is not counted against the student's
    teacher.request("PUT", f"/workspaces/{ws}/quotas", json={"max_concurrent_runs_per_member": 1})
    mine = submit(student, ws, {"x.py": ""}, ["sleep", "60"])
    problem = refused(lambda: student.request("POST", f"/workspaces/{ws}/runs", json=body, expect=(202,)), 429)
    assert "you already have 1" in problem.problem["detail"]
    theirs = teacher.request("POST", f"/workspaces/{ws}/runs", json=body, expect=(202,))
    student.post(f"/runs/{mine['id']}/cancel")
    assert wait_run(student, mine["id"])["status"] == "cancelled"
    student.request("POST", f"/workspaces/{ws}/runs", json=body, expect=(202,))  # cancelling freed the place
    wait_run(teacher, theirs["id"])


def _tgz() -> bytes:
    from .test_runs import tar_gz
    return tar_gz({"x.py": ""})


def test_storage_quota_refuses_uploads_and_runs_and_keeps_nothing(running, lab) -> None:
    ws, teacher, student = lab
    teacher.post(f"/workspaces/{ws}/datasets", params={"name": "small.csv"}, content=b"a,b\n1,2\n")
    used = teacher.get(f"/workspaces/{ws}/quotas")["usage"]
    assert used["dataset_bytes"] == 8 and used["storage_bytes"] == used["dataset_bytes"] + used["output_bytes"]
    teacher.request("PUT", f"/workspaces/{ws}/quotas", json={"max_storage_bytes": used["storage_bytes"] + 100})
    objects = {p for p in running.objects_dir.rglob("*") if p.is_file()}
    problem = refused(lambda: teacher.post(f"/workspaces/{ws}/datasets", params={"name": "big.csv"},
                                           content=b"x" * 1000), 409).problem
    assert "storage quota" in problem["detail"] and "1000 bytes" in problem["detail"], problem
    assert "Delete datasets" in problem["detail"]
    assert [d["name"] for d in teacher.get(f"/workspaces/{ws}/datasets")["items"]] == ["small.csv"]
    assert {p for p in running.objects_dir.rglob("*") if p.is_file()} == objects, "nothing was stored"
    # without a declared length (chunked) the spooled size is checked before it is kept
    chunked = teacher.http.post(f"/workspaces/{ws}/datasets", params={"name": "big.csv"},
                                content=iter([b"y" * 500, b"y" * 500]))
    assert chunked.status_code == 409, chunked.text
    assert {p for p in running.objects_dir.rglob("*") if p.is_file()} == objects
    teacher.post(f"/workspaces/{ws}/datasets", params={"name": "fits.csv"}, content=b"z" * 50)  # within it
    # identical bytes under the workspace already: nothing added, accepted at the limit
    teacher.request("PUT", f"/workspaces/{ws}/quotas", json={"max_storage_bytes": 58})
    teacher.post(f"/workspaces/{ws}/datasets", params={"name": "fits.csv"}, content=b"z" * 50)
    # at the limit, a run (whose outputs would be kept) does not start
    code = student.request("POST", f"/workspaces/{ws}/code", content=_tgz(), expect=(201,))
    problem = refused(lambda: student.request("POST", f"/workspaces/{ws}/runs", json={
        "environment": "py", "code": code["digest"], "command": ["true"]}, expect=(202,)), 409).problem
    assert "58 bytes of its 58 bytes storage quota" in problem["detail"], problem
    assert student.get(f"/workspaces/{ws}/runs")["items"] == []
    teacher.request("PUT", f"/workspaces/{ws}/quotas", json={"max_storage_bytes": 0})
    done = wait_run(student, student.request("POST", f"/workspaces/{ws}/runs", json={
        "environment": "py", "code": code["digest"], "command": ["true"]}, expect=(202,))["id"])
    assert done["status"] == "succeeded"
    assert teacher.get(f"/workspaces/{ws}/quotas")["usage"]["output_bytes"] > 0  # its logs.txt is counted


def test_cli_shows_and_changes_quotas(running, course) -> None:
    from reprolab_cli.main import app
    from reprolab_cli.quotas_cmd import parse_size
    from typer.testing import CliRunner

    ws, (_, teacher), (_, student) = course

    def cli(client, *args: str):
        token = client.http.headers["Authorization"].split()[1]
        return CliRunner().invoke(app, ["workspace", "quotas", ws, *args, "--url", running.platform.url,
                                        "--token", token], env={"COLUMNS": "200"})

    assert parse_size("10GiB") == 10 << 30 and parse_size("500MB") == 500_000_000 and parse_size("0") == 0
    shown = cli(student)
    assert shown.exit_code == 0, shown.output
    assert "concurrent runs: 0 going of no limit" in shown.output
    assert "storage: 0 bytes used of no limit" in shown.output
    changed = cli(teacher, "--concurrent-runs", "4", "--storage", "10GiB")
    assert changed.exit_code == 0, changed.output
    assert "of 4 (" in changed.output and "of 10.0 GiB" in changed.output
    kept = cli(teacher, "--per-member", "2", "--json")  # the limits not named stay
    assert kept.exit_code == 0, kept.output
    assert json.loads(kept.output)["limits"] == {"max_concurrent_runs": 4, "max_concurrent_runs_per_member": 2,
                                                 "max_storage_bytes": 10 << 30}
    refused_ = cli(student, "--concurrent-runs", "100")
    assert refused_.exit_code == 1 and "403" in refused_.output and "Traceback" not in refused_.output
    bad = cli(teacher, "--storage", "lots")
    assert bad.exit_code == 2 and "not a size" in bad.output
    assert teacher.get(f"/workspaces/{ws}/quotas")["limits"]["max_concurrent_runs"] == 4
