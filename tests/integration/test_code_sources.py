"""Code the way students have it, through the whole platform (issue 17 item 5): a Git repository served by
a real `git daemon` on loopback (fetched by the runner, pinned to the commit), a notebook executed top to
bottom in the run's image (its executed copy among the outputs), and running an earlier run again, as it
was or edited, in a chosen environment version (API and CLI)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest
from reprolab_cli.client import ApiError
from reprolab_cli.main import app
from typer.testing import CliRunner

from .test_runs import BASE, tar_gz, wait_run

SCRIPT = 'import json\nprint("version {v}")\njson.dump({{"v": {v}}}, open("/outputs/metrics.json", "w"))\n'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _git(*args: str, cwd: Path) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.org", "GIT_CONFIG_GLOBAL": "/dev/null"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


class Repo:
    """A bare repository served read-only by `git daemon` on a free loopback port, and a clone to commit in."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bare = root / "srv" / "course.git"
        self.bare.mkdir(parents=True)
        _git("init", "-q", "--bare", "-b", "main", str(self.bare), cwd=root)
        self.work = root / "work"
        _git("clone", "-q", str(self.bare), str(self.work), cwd=root)
        _git("checkout", "-q", "-b", "main", cwd=self.work)
        self.port = _free_port()
        self.proc = subprocess.Popen(
            ["git", "daemon", "--reuseaddr", "--export-all", "--listen=127.0.0.1", f"--port={self.port}",
             f"--base-path={root / 'srv'}", str(root / "srv")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "git daemon did not start"
                time.sleep(0.1)
        self.url = f"git://127.0.0.1:{self.port}/course.git"

    def commit(self, files: dict[str, str], message: str) -> str:
        for name, text in files.items():
            (self.work / name).write_text(text)
        _git("add", "-A", cwd=self.work)
        _git("commit", "-q", "-m", message, cwd=self.work)
        _git("push", "-q", "origin", "main", cwd=self.work)
        return _git("rev-parse", "HEAD", cwd=self.work)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory):
    r = Repo(tmp_path_factory.mktemp("gitsrv"))
    yield r
    r.stop()


@pytest.fixture
def lab(running, base_image):
    """A workspace with a built environment (v1, and v2 equal to it: the same image) and a student."""
    _, teacher = running.user("cst")
    ws = running.workspace(teacher, "cs")
    sname, student = running.user("css")
    teacher.post(f"/workspaces/{ws}/members", json={"username": sname, "role": "student"})
    spec = {"base": BASE, "python": {"version": "3.11", "requirements": ["six==1.16.0"]}}
    teacher.post(f"/workspaces/{ws}/environments", json={"name": "py", "spec": spec})
    for n in (1, 2):
        if n == 2:
            teacher.post(f"/workspaces/{ws}/environments/py/versions", json={"spec": spec, "note": "same"})
        build = teacher.post(f"/workspaces/{ws}/environments/py/versions/{n}/builds", expect=(202,))
        deadline = time.monotonic() + 300
        while (status := teacher.get(f"/builds/{build['id']}")["status"]) not in ("succeeded", "failed"):
            assert time.monotonic() < deadline
            time.sleep(0.5)
        assert status == "succeeded"
    return ws, teacher, student


def _run(client, ws: str, **body) -> dict:
    return client.request("POST", f"/workspaces/{ws}/runs", json={"environment": "py", **body}, expect=(202,))


def _log(client, run_id: str) -> str:
    return client.get(f"/runs/{run_id}/outputs/logs.txt").decode()


def test_a_git_run_is_pinned_to_its_commit_and_runs_again_on_it(running, lab, repo) -> None:
    ws, _, student = lab
    first = repo.commit({"train.py": SCRIPT.format(v=1)}, "one")
    second = repo.commit({"train.py": SCRIPT.format(v=2)}, "two")
    run = _run(student, ws, git={"url": repo.url, "ref": "main"}, command=["python3", "train.py"])
    assert run["source"] == {"git_url": repo.url, "git_ref": "main", "git_commit": second}
    done = wait_run(student, run["id"])
    assert done["status"] == "succeeded" and done["metrics"] == {"v": 2}, done
    assert done["provenance"]["source"]["git_commit"] == second and done["provenance"]["code"] == done["code_digest"]
    # the branch moves on; running the run again runs its commit, not the branch's newest
    repo.commit({"train.py": SCRIPT.format(v=3)}, "three")
    again = student.request("POST", f"/runs/{run['id']}/rerun", json={}, expect=(202,))
    done_again = wait_run(student, again["id"])
    assert done_again["metrics"] == {"v": 2} and done_again["code_digest"] == done["code_digest"]
    assert done_again["source"]["git_commit"] == second
    # an older commit by its full and its abbreviated sha (not a branch tip: fetched by its branches)
    for ref in (first, first[:10]):
        old = wait_run(student, _run(student, ws, git={"url": repo.url, "ref": ref}, command=["python3", "train.py"])
                       ["id"])
        assert old["metrics"] == {"v": 1} and old["source"]["git_commit"] == first, old
    # the default branch when no ref is given
    tip = wait_run(student, _run(student, ws, git={"url": repo.url}, command=["python3", "train.py"])["id"])
    assert tip["metrics"] == {"v": 3}


def test_a_git_url_the_platform_cannot_or_may_not_fetch_is_refused(running, lab, repo) -> None:
    ws, _, student = lab
    repo.commit({"train.py": SCRIPT.format(v=1)}, "refusals")

    def refused(git: dict, field: str) -> dict:
        with pytest.raises(ApiError) as info:
            _run(student, ws, git=git, command=["python3", "train.py"])
        assert info.value.status == 422, info.value
        problem = info.value.problem
        assert field in json.dumps(problem.get("errors", [])), problem
        said = json.dumps(problem).replace(git["url"], "<url>")  # the URL as given may be echoed, nothing else
        assert "/tmp/" not in said and str(running.platform.data_dir) not in said, said
        return problem

    closed = f"git://127.0.0.1:{_free_port()}/course.git"
    assert "could not reach" in refused({"url": closed}, "git_url")["detail"]
    assert "could not reach" in refused({"url": repo.url.replace("course.git", "nothing.git")}, "git_url")["detail"]
    assert "file://" in refused({"url": f"file://{repo.bare}"}, "git_url")["detail"]
    assert "only" in refused({"url": "ssh://example.org/x.git"}, "git_url")["detail"]
    secret = refused({"url": "https://alice:hunter2pass@example.org/x.git"}, "git_url")
    assert "password" in secret["detail"] and "hunter2pass" not in json.dumps(secret).replace(
        "https://alice:hunter2pass@example.org/x.git", "")
    assert "no branch, tag or commit" in refused({"url": repo.url, "ref": "nope"}, "git_ref")["detail"]
    # no run was made of any of them
    assert student.get(f"/workspaces/{ws}/runs")["items"] == []


NOTEBOOK = {"cells": [
    {"cell_type": "markdown", "metadata": {}, "source": ["# Week 1\n"]},
    {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
     "source": ["import json\n", "rows = [1, 2, 3]\n", "print('rows', len(rows))\n", "sum(rows) * 7\n"]},
    {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
     "source": ["json.dump({'total': sum(rows)}, open('/outputs/metrics.json', 'w'))\n"]},
], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def _failing() -> dict:
    nb = json.loads(json.dumps(NOTEBOOK))
    nb["cells"][2]["source"] = ["share = 1\n", "share = share / (len(rows) - 3)\n"]
    nb["cells"].append({"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                        "source": ["print('never')\n"]})
    return nb


def test_a_notebook_runs_top_to_bottom_and_its_executed_copy_is_an_output(running, lab, tmp_path: Path) -> None:
    ws, _, student = lab
    code = student.request("POST", f"/workspaces/{ws}/code", expect=(201,), content=tar_gz({
        "notebooks/week1.ipynb": json.dumps(NOTEBOOK), "notebooks/bad.ipynb": json.dumps(_failing())}))
    run = _run(student, ws, code=code["digest"], notebook="notebooks/week1.ipynb")
    assert run["source"] == {"notebook": "notebooks/week1.ipynb"}
    done = wait_run(student, run["id"])
    assert done["status"] == "succeeded" and done["metrics"] == {"total": 6}, done
    assert done["provenance"]["source"] == {"notebook": "notebooks/week1.ipynb"}
    names = {f["name"] for f in student.get(f"/runs/{run['id']}/outputs")["files"]}
    assert "week1.executed.ipynb" in names, names
    executed = json.loads(student.get(f"/runs/{run['id']}/outputs/week1.executed.ipynb"))
    cell = executed["cells"][1]
    assert cell["execution_count"] == 1
    assert cell["outputs"][0] == {"output_type": "stream", "name": "stdout", "text": ["rows 3\n"]}
    assert cell["outputs"][1]["data"] == {"text/plain": "42"}
    # a failing cell fails the run, which names the cell and its line; the copy shows the traceback
    bad = wait_run(student, _run(student, ws, code=code["digest"], notebook="notebooks/bad.ipynb")["id"])
    assert bad["status"] == "failed", bad
    assert "Cell 2 of bad.ipynb failed at line 2: share = share / (len(rows) - 3)" in bad["error"], bad["error"]
    assert "ZeroDivisionError" in bad["error"]
    copy = json.loads(student.get(f"/runs/{bad['id']}/outputs/bad.executed.ipynb"))
    assert copy["cells"][2]["outputs"][-1]["ename"] == "ZeroDivisionError"
    assert copy["cells"][3]["execution_count"] is None and copy["cells"][3]["outputs"] == []
    # a command and a notebook at once, a path outside the code: 422
    for body in ({"command": ["python3"], "notebook": "a.ipynb"}, {"notebook": "../x.ipynb"}, {}):
        with pytest.raises(ApiError) as info:
            _run(student, ws, code=code["digest"], **body)
        assert info.value.status == 422, body


def test_run_again_edited_in_another_version(running, lab, tmp_path: Path) -> None:
    ws, teacher, student = lab
    code = student.request("POST", f"/workspaces/{ws}/code", expect=(201,),
                           content=tar_gz({"train.py": SCRIPT.format(v=1)}))
    run = wait_run(student, _run(student, ws, code=code["digest"], version=1, command=["python3", "train.py"])["id"])
    assert run["version"] == 1 and run["status"] == "succeeded"
    # as it was, in version 2
    v2 = wait_run(student, student.request("POST", f"/runs/{run['id']}/rerun", json={"version": 2},
                                           expect=(202,))["id"])
    assert v2["version"] == 2 and v2["code_digest"] == run["code_digest"] and v2["metrics"] == {"v": 1}
    assert v2["command"] == run["command"] and v2["provenance"]["environment"].endswith("/v2")
    # edited: new code and a new command
    edited = student.request("POST", f"/workspaces/{ws}/code", expect=(201,), content=tar_gz({
        "train.py": SCRIPT.format(v=5), "other.py": 'print("other")\n'}))
    again = wait_run(student, student.request("POST", f"/runs/{run['id']}/rerun", json={
        "code": edited["digest"], "command": ["python3", "other.py"]}, expect=(202,))["id"])
    assert again["status"] == "succeeded" and again["code_digest"] == edited["digest"]
    assert "other" in _log(student, again["id"])
    # an unbuilt version: 409; another student's run: 404; a bad change: 422
    spec = teacher.get(f"/workspaces/{ws}/environments/py/versions/2")["spec"]
    teacher.post(f"/workspaces/{ws}/environments/py/versions", json={"spec": {**spec, "apt": ["make"]}})
    for change, status in (({"version": 3}, 409), ({"command": []}, 422), ({"version": 99}, 404)):
        with pytest.raises(ApiError) as info:
            student.request("POST", f"/runs/{run['id']}/rerun", json=change, expect=(202,))
        assert info.value.status == status, (change, info.value)
    _, other = running.user("cso")
    with pytest.raises(ApiError) as info:
        other.request("POST", f"/runs/{run['id']}/rerun", json={}, expect=(202,))
    assert info.value.status == 404
    # the CLI: run again in the latest built version, with a new command
    token = student.http.headers["Authorization"].removeprefix("Bearer ")
    result = CliRunner().invoke(app, ["run", "again", again["id"], "--version", "2", "--json", "--url",
                                      running.platform.url, "--token", token, "--", "python3", "train.py"],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    cli_run = json.loads(result.stdout[result.stdout.index("{"):])
    assert cli_run["version"] == 2 and cli_run["metrics"] == {"v": 5} and cli_run["code_digest"] == edited["digest"]


def test_cli_submits_a_git_run(running, lab, repo) -> None:
    ws, _, student = lab
    tip = repo.commit({"train.py": SCRIPT.format(v=7)}, "cli")
    token = student.http.headers["Authorization"].removeprefix("Bearer ")
    result = CliRunner().invoke(app, ["run", "submit", ws, "py", "--git", repo.url, "--ref", "main", "--json",
                                      "--url", running.platform.url, "--token", token, "--", "python3", "train.py"],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout[result.stdout.index("{"):])
    assert run["source"]["git_commit"] == tip and run["metrics"] == {"v": 7}
    refused = CliRunner().invoke(app, ["run", "submit", ws, "py", "--git", f"file://{repo.bare}", "--url",
                                       running.platform.url, "--token", token, "--", "python3", "train.py"])
    assert refused.exit_code != 0 and "file://" in refused.output
