"""The activity agent inside a real built image: the student's installs land in a root-owned hash chain
the student can read but not write; export bundles verify and break when edited; ``env capture`` sees
the additions; the runner's mode (uid 65534, read-only root, explicit command) still works."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import os
import subprocess
import uuid
import zipfile
from pathlib import Path

import pytest
from reprolab_builder.backends.buildah import BuildahBackend
from reprolab_builder.build import build_lock, one_layer
from reprolab_builder.lock import lock_digest, resolve
from reprolab_builder.render import AGENT_SOURCE
from reprolab_common import agentchain

from .conftest import make_settings

BASE = "localhost/reprolab/bookworm-python:latest"


def load_agent():
    spec = importlib.util.spec_from_file_location("reprolab_agent_under_test", AGENT_SOURCE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def tiny_wheel(dest: Path, name: str = "reprolab_tiny", version: str = "1.0") -> Path:
    """A minimal pure-Python wheel, built here so the container installs it with no network."""
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f'__version__ = "{version}"\n',
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: {version}\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: reprolab-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    files[f"{dist}/RECORD"] = "\n".join(record + [f"{dist}/RECORD,,"]) + "\n"
    wheel = dest / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return wheel


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return proc


def student(container: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return podman("exec", "-u", "student", "-e", "HOME=/home/student", "-w", "/home/student", container, *cmd,
                  check=check)


def chain(container: str) -> list[dict]:
    out = podman("exec", container, "cat", "/var/lib/reprolab/activity.jsonl").stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def image(tmp_path_factory, oci_registry, base_image):
    settings = make_settings(tmp_path_factory.mktemp("agent-cache"), oci_registry.address)
    ref = f"{oci_registry.address}/t{uuid.uuid4().hex[:8]}/agent:v1"
    spec = {"base": BASE, "python": {"version": "3.11", "requirements": ["pip==24.2"]}}
    lock = resolve(spec, settings=settings, log=lambda _: None)
    result = build_lock(lock, settings=settings, backend=BuildahBackend(settings), image_ref=ref, log=lambda _: None)
    BuildahBackend.wait_for_local_copies()  # the tests run it from local storage
    yield {"ref": ref, "digest": result.digest, "lock": lock, "settings": settings}
    subprocess.run(["podman", "rmi", "-f", ref], capture_output=True)


@pytest.fixture(scope="module")
def container(image, tmp_path_factory):
    """One interactive container (started with the image's entrypoint) where the student installed a
    local wheel with pip, offline."""
    name = f"reprolab-agent-test-{uuid.uuid4().hex[:8]}"
    podman("run", "-d", "--name", name, "--network=none", image["ref"], "sleep", "infinity")
    try:
        wheel = tiny_wheel(tmp_path_factory.mktemp("wheel"))
        podman("cp", str(wheel), f"{name}:/tmp/{wheel.name}")
        podman("exec", name, "chmod", "0644", f"/tmp/{wheel.name}")
        installed = student(name, "pip", "install", "--user", "--no-index", "--break-system-packages",
                            f"/tmp/{wheel.name}")
        yield {"name": name, "install": installed}
    finally:
        podman("rm", "-f", "-t", "0", name, check=False)


def test_the_student_runs_the_container_and_the_install_is_chained(container):
    top = podman("top", container["name"], "user", "args").stdout.splitlines()
    sleep = next(line for line in top if "sleep infinity" in line)
    assert sleep.split()[0] in ("student", "1000"), top  # the entrypoint dropped to the student
    assert any(line.split()[0] in ("root", "0") and "logd" in line for line in top), top
    entries = chain(container["name"])
    kinds = [e["kind"] for e in entries]
    assert kinds[:2] == ["chain.started", "session"], kinds
    install = [e for e in entries if e["kind"] == "install"]
    assert len(install) == 1, entries
    details = install[0]["details"]
    assert details["tool"] == "pip" and details["exit"] == 0 and details["uid"] == 1000
    assert details["changes"]["python"]["added"] == {"reprolab-tiny": "1.0"}
    assert entries[0]["details"]["image"]["lock_digest"].startswith("sha256:")
    assert load_agent().verify_entries(entries)[0]
    assert agentchain.verify(agentchain.check_shape(entries))[0]  # the platform's reader agrees
    # the package really is installed for the student
    assert student(container["name"], "python3", "-c", "import reprolab_tiny; print(reprolab_tiny.__version__)"
                   ).stdout.strip() == "1.0"


def test_the_student_can_read_but_not_write_the_chain(container):
    name = container["name"]
    assert student(name, "cat", "/var/lib/reprolab/activity.jsonl").stdout.count("\n") >= 3
    denied = student(name, "sh", "-c", "echo '{}' >> /var/lib/reprolab/activity.jsonl", check=False)
    assert denied.returncode != 0 and "Permission denied" in denied.stderr
    denied = student(name, "sh", "-c", "rm -f /var/lib/reprolab/activity.jsonl", check=False)
    assert denied.returncode != 0
    stat = podman("exec", name, "stat", "-c", "%U %a", "/var/lib/reprolab/activity.jsonl").stdout.split()
    assert stat == ["root", "644"]
    # the daemon writes what the kernel says about the caller, whatever the caller claims
    student(name, "reprolab", "record", "note", '{"text": "hello", "uid": 0}')
    assert chain(name)[-1]["details"] == {"text": "hello", "uid": 1000}


def test_export_bundle_verifies_and_an_edit_breaks_it(container, tmp_path):
    name = container["name"]
    student(name, "reprolab", "activity", "export", "-o", "/home/student/bundle.jsonl")
    assert "ok:" in student(name, "reprolab", "activity", "verify", "/home/student/bundle.jsonl").stdout
    podman("cp", f"{name}:/home/student/bundle.jsonl", str(tmp_path / "bundle.jsonl"))
    agent = load_agent()
    ok, why = agent.verify_bundle(str(tmp_path / "bundle.jsonl"))
    assert ok, why
    lines = (tmp_path / "bundle.jsonl").read_text().splitlines()
    edited = [line.replace('"reprolab-tiny": "1.0"', '"reprolab-tiny": "2.0"') for line in lines]
    assert edited != lines
    (tmp_path / "edited.jsonl").write_text("\n".join(edited) + "\n")
    ok, why = agent.verify_bundle(str(tmp_path / "edited.jsonl"))
    assert not ok and "hash does not match" in why
    (tmp_path / "dropped.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    assert not agent.verify_bundle(str(tmp_path / "dropped.jsonl"))[0]


def test_env_capture_reports_the_students_addition(container, image):
    doc = json.loads(student(container["name"], "reprolab", "env", "capture", "--json").stdout)
    assert doc["changes"] == {"python": {"added": {"reprolab-tiny": "1.0"}}}
    assert "reprolab-tiny==1.0" in doc["proposed_spec"]["python"]["requirements"]
    assert "pip==24.2" in doc["proposed_spec"]["python"]["requirements"]
    assert doc["image"]["lock_digest"] == lock_digest(image["lock"])
    assert doc["chain"]["seq"] == chain(container["name"])[-1]["seq"]
    # as root (podman exec's default) the student's user site is seen too
    as_root = json.loads(podman("exec", container["name"], "reprolab", "env", "capture", "--json").stdout)
    assert as_root["changes"] == doc["changes"]


def test_reprolab_run_records_the_command_and_its_exit(container):
    name = container["name"]
    done = student(name, "reprolab", "run", "--", "python3", "-c", "import sys; print('hi'); sys.exit(3)",
                   check=False)
    assert done.returncode == 3 and done.stdout.strip() == "hi"
    start, end = chain(name)[-2:]
    assert start["kind"] == "run.start" and end["kind"] == "run.end"
    assert end["details"]["exit"] == 3 and end["details"]["start_seq"] == start["seq"]


def test_runner_mode_uid_65534_read_only_root(image, tmp_path):
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    os.chown(outputs, 65534, 65534)
    proc = podman("run", "--rm", "--network=none", "--user", "65534:65534", "--read-only", "--tmpfs",
                  "/tmp:rw,size=16m,mode=1777", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
                  "-e", "HOME=/tmp", "-v", f"{outputs}:/outputs:rw", image["ref"],
                  "reprolab", "run", "--", "python3", "-c", "print(6 * 7)")
    assert proc.stdout.strip() == "42", proc.stderr
    entries = [json.loads(line) for line in (outputs / ".reprolab" / "activity.jsonl").read_text().splitlines()]
    assert [e["kind"] for e in entries] == ["chain.started", "run.start", "run.end"]
    assert entries[-1]["details"]["exit"] == 0 and entries[-1]["details"]["uid"] == 65534
    assert load_agent().verify_entries(entries)[0]
    # a plain command (no `reprolab run`) leaves no chain behind and runs as before
    plain = podman("run", "--rm", "--network=none", "--user", "65534:65534", "--read-only",
                   "--security-opt", "no-new-privileges", image["ref"], "python3", "-c", "print('plain')")
    assert plain.stdout.strip() == "plain"


def test_same_lock_same_image_with_the_agent(image, tmp_path):
    """The agent's layer keeps builds reproducible: the same lock built again with no layer cache
    gives the same image (its id is the config digest, which covers every layer)."""
    from reprolab_builder.build import link_installer
    from reprolab_builder.render import UV_CONTEXT, render, write_context
    from reprolab_builder.wheelcache import materialize

    ctx = tmp_path / "ctx"
    files = render(image["lock"])
    write_context(files, ctx)
    materialize(image["lock"], ctx / "wheels", settings=image["settings"])
    if UV_CONTEXT in files:
        link_installer(image["lock"], ctx, settings=image["settings"])
    layers = "--layers=false" if one_layer(image["lock"]) else "--layers"  # as the backend builds it
    iid = tmp_path / "iid"
    done = subprocess.run(["buildah", "bud", "--timestamp", "0", "--identity-label=false", "--format", "oci",
                           "--no-cache", layers, "--iidfile", str(iid), "-f", str(ctx / "Containerfile"),
                           str(ctx)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    try:
        built = podman("image", "inspect", "--format", "{{.Id}}", image["ref"]).stdout.strip()
        assert iid.read_text().strip().removeprefix("sha256:") == built
    finally:
        if iid.exists() and iid.read_text().strip().removeprefix("sha256:") != built:
            subprocess.run(["podman", "rmi", "-f", iid.read_text().strip()], capture_output=True)


def test_secrets_never_enter_the_chain():
    agent = load_agent()
    details = {"command": ["pip", "install", "--index-url", "https://ann:s3cret@pypi.example/simple", "--password",
                           "hunter2", "--token=rpl_abcdef", "pkg"], "env": "API_TOKEN=xyz", "note": "rpl_live_123"}
    text = json.dumps(agent.redact(details))
    for secret in ("s3cret", "hunter2", "rpl_abcdef", "xyz", "rpl_live_123"):
        assert secret not in text
    assert agent.redact(details)["command"][-1] == "pkg" and "pypi.example/simple" in text
