"""The spec's imported-repository parts: repository, build_steps, start."""

from __future__ import annotations

import pytest
from reprolab_common.errors import Invalid
from reprolab_registry.spec import validate_spec

BASE = "localhost/reprolab/bookworm-python:latest"
REPO = {"digest": "sha256:" + "a" * 64}


def test_repository_steps_and_start_normalise() -> None:
    spec = validate_spec({"base": BASE, "repository": REPO, "start": "binder/start",
                          "build_steps": [{"run": "./postBuild", "user": "student"}, {"run": "make", "user": "root"}]})
    # the default user is dropped, so both spellings share a digest
    assert spec.document["build_steps"] == [{"run": "./postBuild"}, {"run": "make", "user": "root"}]
    assert spec.repository_digest == REPO["digest"]
    same = validate_spec({"base": BASE, "repository": REPO, "start": "binder/start",
                          "build_steps": [{"run": "./postBuild"}, {"run": "make", "user": "root"}]})
    assert same.digest == spec.digest


@pytest.mark.parametrize(("doc", "loc", "fragment"), [
    ({"repository": {"digest": "sha256:xyz"}}, "spec.repository.digest", "dataset digest"),
    ({"build_steps": [{"run": ""}]}, "spec.build_steps[0].run", "at least 1"),
    ({"build_steps": [{"run": "x", "user": "admin"}]}, "spec.build_steps[0].user", "student"),
    ({"build_steps": [{"run": "x", "shell": "bash"}]}, "spec.build_steps[0].shell", "not a known field"),
    ({"repository": REPO, "start": "../start"}, "spec.start", "safe relative path"),
    ({"start": "binder/start"}, "spec.start", "no repository"),
])
def test_bad_parts_are_named(doc: dict, loc: str, fragment: str) -> None:
    with pytest.raises(Invalid) as info:
        validate_spec({"base": BASE, **doc})
    assert any(where == loc and fragment in m for where, m in info.value.errors), info.value.errors
