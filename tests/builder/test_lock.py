"""lock.resolve against the real package index, Debian archive and base image: pins and failures."""

from __future__ import annotations

import re

import pytest
from reprolab_builder.backends.base import BuildError
from reprolab_builder.lock import LOCK_FORMAT, lock_digest, parse_compiled, resolve
from reprolab_common import canonical

BASE = "localhost/reprolab/bookworm-python:latest"
HASH = re.compile(r"^sha256:[0-9a-f]{64}$")


def test_resolve_pins_base_versions_and_hashes(lock_settings):
    spec = {"base": BASE, "python": {"version": "3.11", "requirements": ["six", "attrs>=23"]},
            "entrypoint": ["python3"], "files": [{"path": "a.txt", "content": "x"}]}
    logs: list[str] = []
    lock = resolve(spec, settings=lock_settings, log=logs.append)
    assert lock["format"] == LOCK_FORMAT and lock["platform"] == "linux/amd64"
    assert lock["base"]["ref"] == BASE and HASH.match(lock["base"]["digest"]) and lock["base"]["python"] == "3.11"
    names = [p["name"] for p in lock["python"]["packages"]]
    assert names == sorted(names) and {"six", "attrs"} <= set(names)
    for p in lock["python"]["packages"]:
        assert re.match(r"^\d[\w.]*$", p["version"]) and p["hashes"] and all(HASH.match(h) for h in p["hashes"])
    inst = lock["python"]["installer"]
    assert inst["name"] == "uv" and inst["filename"].startswith(f"uv-{inst['version']}-") and HASH.match(inst["sha256"])
    assert "manylinux" in inst["filename"] and inst["filename"].endswith("x86_64.whl")  # the base's platform
    assert lock["entrypoint"] == ["python3"] and lock["files"] == spec["files"]
    assert "apt" not in lock and "r" not in lock
    canonical.canonical_json(lock)  # JSON-able, no floats
    assert lock_digest(lock) == lock_digest(resolve(spec, settings=lock_settings, log=logs.append))


def test_derived_lock_keeps_parent_versions(lock_settings):
    parent = resolve({"base": BASE, "python": {"requirements": ["idna"]}}, settings=lock_settings, log=lambda _: None)
    # pretend the parent pinned an older idna: the derived lock keeps it while adding six
    old = {"name": "idna", "version": "3.6",
           "hashes": ["sha256:c05567e9c24a6b9faaa835c4821bad0590fbb9d5779e7caa6e1cc4978e7eb24f"]}
    parent["python"]["packages"] = [old]
    child = resolve({"base": BASE, "python": {"requirements": ["idna", "six"]}}, settings=lock_settings,
                    parent_lock=parent, parent_image="127.0.0.1:5000/ws/env@sha256:" + "d" * 64, log=lambda _: None)
    versions = {p["name"]: p["version"] for p in child["python"]["packages"]}
    assert versions["idna"] == "3.6" and "six" in versions
    assert child["parent"] == {"lock_digest": lock_digest(parent), "image": "127.0.0.1:5000/ws/env@sha256:" + "d" * 64}


@pytest.mark.parametrize(("spec", "message"), [
    ({"base": BASE, "python": {"requirements": ["nonexistent-xyz"]}},
     "python package 'nonexistent-xyz' is not on the package index"),
    ({"base": BASE, "python": {"requirements": ["idna==3.6", "idna==3.7"]}},
     "conflicting python requirements: Because you require idna==3.6 and idna==3.7"),
    ({"base": "localhost/reprolab/does-not-exist:1"}, "base image 'localhost/reprolab/does-not-exist:1' not found"),
    ({"base": BASE, "python": {"version": "3.12", "requirements": ["six"]}},
     "spec asks for Python 3.12 but base image 'localhost/reprolab/bookworm-python:latest' has Python 3.11"),
], ids=["nonexistent", "conflict", "missing-base", "python-mismatch"])
def test_user_failures_name_the_problem(lock_settings, spec, message):
    with pytest.raises(BuildError) as err:
        resolve(spec, settings=lock_settings, log=lambda _: None)
    assert message in str(err.value)
    assert len(str(err.value)) < 700


def test_apt_and_r_are_pinned_and_unknown_r_package_is_named(lock_settings):
    lock = resolve({"base": BASE, "apt": ["jq"]}, settings=lock_settings, log=lambda _: None)
    apt = {p["name"]: p["version"] for p in lock["apt"]}
    assert "jq" in apt and "libjq1" in apt  # dependencies included, exact versions
    assert all(re.match(r"^[0-9][\w.+~:-]*$", v) for v in apt.values())
    with pytest.raises(BuildError, match="R package 'NoSuchPkgXyz' is not available.*r-cran-nosuchpkgxyz"):
        resolve({"base": BASE, "apt": ["jq"], "r": {"packages": ["NoSuchPkgXyz"]}}, settings=lock_settings,
                log=lambda _: None)
    with pytest.raises(BuildError, match="apt package 'no-such-deb-xyz' is not available"):
        resolve({"base": BASE, "apt": ["no-such-deb-xyz"]}, settings=lock_settings, log=lambda _: None)


def test_parse_compiled():
    text = ("attrs==26.1.0 \\\n    --hash=sha256:" + "b" * 64 + " \\\n    --hash=sha256:" + "a" * 64
            + "\nSix==1.17.0 \\\n    --hash=sha256:" + "c" * 64 + "\n")
    assert parse_compiled(text) == [
        {"name": "attrs", "version": "26.1.0", "hashes": ["sha256:" + "a" * 64, "sha256:" + "b" * 64]},
        {"name": "six", "version": "1.17.0", "hashes": ["sha256:" + "c" * 64]},
    ]
