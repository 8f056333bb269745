"""render of an imported repository: files in the user's home, build steps as their user, start
wrapping the command, and the lock's statement that build steps make an image not bit-reproducible."""

from __future__ import annotations

import copy
import json

from reprolab_builder.lock import lock_digest, reproducibility
from reprolab_builder.render import REPO_DIR, render

REPO = "sha256:" + "e" * 64
BASE = {"ref": "localhost/reprolab/bookworm-python:latest", "digest": "sha256:" + "b" * 64, "python": "3.11"}


def make_lock(steps: list[dict] | None = None, start: str | None = "binder/start") -> dict:
    lock = {"format": "reprolab-lock/1", "platform": "linux/amd64", "base": dict(BASE),
            "repository": {"digest": REPO}}
    if steps:
        lock["build_steps"] = steps
        lock["reproducibility"] = reproducibility(steps)
    if start:
        lock["start"] = start
    return lock


STEPS = [{"run": "chmod +x binder/postBuild && ./binder/postBuild"},
         {"run": "echo 'quoted \"text\"'\nsecond line", "user": "root"}]


def _runs(text: str) -> list[list[str]]:
    return [json.loads(line[4:]) for line in text.splitlines() if line.startswith("RUN [")]


def test_repository_goes_to_home_and_steps_run_as_their_user_from_there() -> None:
    files = render(make_lock(STEPS))
    text = files["Containerfile"].decode()
    assert files[f"datasets/{REPO.removeprefix('sha256:')}"] == b""  # fetched by digest like a dataset
    assert f"WORKDIR {REPO_DIR}\n" in text and f"ADD datasets/{'e' * 64} {REPO_DIR}/\n" in text
    runs = _runs(text)
    assert runs[0] == ["install", "-d", "-o", "1000", "-g", "1000", "-m", "0755", REPO_DIR]
    assert runs[1] == ["chmod", "+x", f"{REPO_DIR}/binder/start"]
    student, root = runs[2], runs[3]
    assert student[:4] == ["setpriv", "--reuid=1000", "--regid=1000", "--clear-groups"]
    assert f"HOME={REPO_DIR}" in student and student[-3:] == ["sh", "-c", STEPS[0]["run"]]
    assert root[0] == "env" and root[-1] == STEPS[1]["run"]  # verbatim: quotes and newlines survive JSON
    # the steps come after the packages and before the agent's layer (which records the baseline)
    assert text.index("ADD datasets/") < text.index("setpriv") < text.index("agent.py baseline")
    entry = json.loads(text.split("ENTRYPOINT ", 1)[1].splitlines()[0])
    assert entry == ["/usr/local/bin/reprolab", "init", "--", f"{REPO_DIR}/binder/start"]


def test_lock_with_steps_says_it_is_not_bit_reproducible_and_why() -> None:
    lock = make_lock(STEPS)
    assert lock["reproducibility"]["bit_reproducible"] is False
    assert lock["reproducibility"]["reasons"][0].startswith("build_steps[0] runs arbitrary commands as student")
    assert lock["reproducibility"]["reasons"][1].startswith("build_steps[1] runs arbitrary commands as root")
    text = render(lock)["Containerfile"].decode()
    assert 'org.reprolab.bit-reproducible="false"' in text
    plain = render(make_lock())["Containerfile"].decode()
    assert "bit-reproducible" not in plain and "setpriv" not in plain


def test_start_without_agent_is_the_entrypoint_itself() -> None:
    lock = make_lock()
    lock["base"] = {**BASE, "python": None}
    lock["entrypoint"] = ["python3"]
    text = render(lock)["Containerfile"].decode()
    assert f'ENTRYPOINT ["{REPO_DIR}/binder/start", "python3"]' in text


def test_derived_lock_inherits_repository_and_steps_from_its_parent() -> None:
    parent = make_lock(STEPS)
    child = copy.deepcopy(parent)
    child["parent"] = {"lock_digest": lock_digest(parent), "image": "127.0.0.1:5000/ws/env@sha256:" + "d" * 64}
    text = render(child, parent_lock=parent)["Containerfile"].decode()
    assert "ADD datasets/" not in text and "setpriv" not in text and f"WORKDIR {REPO_DIR}" in text
    changed = copy.deepcopy(child)
    changed["build_steps"] = [*STEPS, {"run": "echo more"}]
    assert "setpriv" in render(changed, parent_lock=parent)["Containerfile"].decode()
