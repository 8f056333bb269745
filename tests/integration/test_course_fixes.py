"""Bugs found running a course as people really do (issue 17), each through the whole platform: the CLI's
`env fork` without `--version`, a dataset name uploaded twice, `python` (not only `python3`) in built
images, a spec's `resources` reaching the run's container."""

from __future__ import annotations

import time

from reprolab_cli.main import app
from typer.testing import CliRunner

from .test_runs import BASE, tar_gz, wait_run


def test_env_fork_without_version_takes_the_latest(running) -> None:
    iname, instructor = running.user("fk")
    ws = running.workspace(instructor, "fork")
    spec = {"base": BASE, "python": {"version": "3.11", "requirements": []}}
    instructor.post(f"/workspaces/{ws}/environments", json={"name": "py", "spec": spec})
    instructor.post(f"/workspaces/{ws}/environments/py/versions",
                    json={"spec": {**spec, "apt": ["make"]}, "note": "v2"})
    token = instructor.http.headers["Authorization"].removeprefix("Bearer ")
    result = CliRunner().invoke(app, ["env", "fork", ws, "py", "--name", "mine", "--json",
                                      "--url", running.platform.url, "--token", token], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output  # was: 422, "version: must be >= 1"
    forked = instructor.get(f"/workspaces/{ws}/environments/mine")
    assert forked["forked_from"] == f"{ws}/py/v2"


def test_a_dataset_name_taken_by_other_bytes_is_refused(running) -> None:
    _, instructor = running.user("ds")
    ws = running.workspace(instructor, "dsname")
    first = instructor.post(f"/workspaces/{ws}/datasets", params={"name": "iris.csv"}, content=b"a,b\n1,2\n")
    # the same bytes again are the same dataset (idempotent), under any name
    again = instructor.post(f"/workspaces/{ws}/datasets", params={"name": "iris.csv"}, content=b"a,b\n1,2\n",
                            expect=(200, 201))
    assert again["digest"] == first["digest"]
    r = instructor.response("POST", f"/workspaces/{ws}/datasets", params={"name": "iris.csv"},
                            content=b"a,b\n3,4\n", expect=(409,)).json()
    assert r["status"] == 409 and "already exists" in r["detail"] and first["digest"] in r["detail"]
    names = [d["name"] for d in instructor.get(f"/workspaces/{ws}/datasets")["items"]]
    assert names == ["iris.csv"]


def test_images_have_python_and_runs_get_the_specs_resources(running, base_image) -> None:
    _, instructor = running.user("rsrc")
    ws = running.workspace(instructor, "rsrc")
    instructor.post(f"/workspaces/{ws}/environments", json={"name": "py", "spec": {
        "base": BASE, "python": {"version": "3.11", "requirements": []},
        "resources": {"cpu": "2", "memory": "1536Mi"}}})
    build = instructor.post(f"/workspaces/{ws}/environments/py/versions/1/builds", expect=(202,))
    deadline = time.monotonic() + 300
    while (status := instructor.get(f"/builds/{build['id']}")["status"]) not in ("succeeded", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert status == "succeeded"
    # the container's own cgroup limits, cgroup v2 or v1, as "cpus <quota/period> memory <bytes>"
    probe = """
import os
def read(*paths):
    for path in paths:
        if os.path.exists(path):
            return open(path).read().split()
v2 = read("/sys/fs/cgroup/cpu.max")
v1 = "/sys/fs/cgroup/cpu/cpu.cfs_"
quota, period = v2 if v2 else read(v1 + "quota_us") + read(v1 + "period_us")
memory = read("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")[0]
print(f"cpus {int(quota) / int(period)} memory {memory}")
"""
    code = instructor.request("POST", f"/workspaces/{ws}/code", content=tar_gz({"probe.py": probe}), expect=(201,))

    def run(**extra: object) -> str:
        made = instructor.post(f"/workspaces/{ws}/runs", json={
            "environment": "py", "code": code["digest"], "command": ["python", "probe.py"], **extra},
            expect=(201, 202))
        done = wait_run(instructor, made["id"])
        log = "\n".join(instructor.sse(f"/runs/{made['id']}/logs"))
        assert done["status"] == "succeeded", (done, log)  # `python` was "not found": images had only python3
        return log

    log = run()
    assert f"cpus 2.0 memory {1536 * 1024 * 1024}" in log, log  # as the spec asks (was 1 CPU, 1 GiB)
    # a run's own request still wins over the spec
    log = run(resources={"cpu": "500m", "memory": "512Mi"})
    assert f"cpus 0.5 memory {512 * 1024 * 1024}" in log, log


def test_a_run_that_reads_a_dataset_it_was_not_given_fails_with_a_hint(running, base_image) -> None:
    _, instructor = running.user("hint")
    ws = running.workspace(instructor, "hint")
    instructor.post(f"/workspaces/{ws}/datasets", params={"name": "iris-train.csv", "visibility": "public"},
                    content=b"a,b\n1,2\n")
    instructor.post(f"/workspaces/{ws}/environments", json={"name": "py", "spec": {
        "base": BASE, "python": {"version": "3.11", "requirements": []}}})
    build = instructor.post(f"/workspaces/{ws}/environments/py/versions/1/builds", expect=(202,))
    deadline = time.monotonic() + 300
    while (status := instructor.get(f"/builds/{build['id']}")["status"]) not in ("succeeded", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert status == "succeeded"
    code = instructor.request("POST", f"/workspaces/{ws}/code",
                              content=tar_gz({"train.py": "print(open('/data/iris-train.csv').read())\n"}),
                              expect=(201,))
    made = instructor.post(f"/workspaces/{ws}/runs", json={
        "environment": "py", "code": code["digest"], "command": ["python3", "train.py"]}, expect=(201, 202))
    done = wait_run(instructor, made["id"])
    assert done["status"] == "failed"
    assert done["error"].startswith("exited with code 1. Hint: /data/iris-train.csv does not exist because "
                                    "dataset 'iris-train.csv' was not given to this run (it had none)"), done["error"]
    # given the dataset, the same code runs
    made = instructor.post(f"/workspaces/{ws}/runs", json={
        "environment": "py", "code": code["digest"], "command": ["python3", "train.py"],
        "datasets": ["iris-train.csv"]}, expect=(201, 202))
    assert wait_run(instructor, made["id"])["status"] == "succeeded"


def test_verifying_the_current_log_does_not_add_to_it(running) -> None:
    """Each click on the portal's "Verify the log" exported the log, and each export is an entry."""
    _, instructor = running.user("ver")
    ws = running.workspace(instructor, "ver")

    def types() -> list[str]:
        return [e["type"] for e in instructor.get(f"/workspaces/{ws}/activity", params={"limit": 200})["items"]]

    deadline = time.monotonic() + 30
    while "workspace.created" not in types():
        assert time.monotonic() < deadline
        time.sleep(0.3)
    before, still = types(), time.monotonic()
    while time.monotonic() - still < 3:  # what creating the workspace emits may arrive in several batches
        assert time.monotonic() < deadline
        time.sleep(0.3)
        if (now := types()) != before:
            before, still = now, time.monotonic()
    for _ in range(2):
        result = instructor.post(f"/workspaces/{ws}/activity/verify", expect=(200,))
        assert result["ok"] and result["keys_known"] and result["entries"] == len(before), result
    time.sleep(3)  # an entry would have arrived by now (the outbox ships within a second)
    assert types() == before
    # a download is an export, and that is recorded
    instructor.response("GET", f"/workspaces/{ws}/activity/export")
    deadline = time.monotonic() + 30
    while "activity.exported" not in types():
        assert time.monotonic() < deadline
        time.sleep(0.3)
