"""The activity agent's package-tool records in real built images, all offline (``--network none``):
a pip removal, an apt install and removal of a local .deb (as root), R's install.packages and
remove.packages through the Rprofile hook, and ``uv pip install`` through the uv wrapper. Each check
names the exact kind, package name and version recorded, and that the whole chain still verifies."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest
from reprolab_builder.backends.buildah import BuildahBackend
from reprolab_builder.build import build_lock
from reprolab_builder.lock import resolve
from reprolab_common import agentchain

from .conftest import make_settings
from .test_agent_image import BASE, chain, load_agent, podman, student, tiny_wheel

UV = "uv==0.5.11"


def build(tmp_path_factory, registry: str, name: str, spec: dict) -> str:
    settings = make_settings(tmp_path_factory.mktemp(f"{name}-cache"), registry)
    ref = f"{registry}/t{uuid.uuid4().hex[:8]}/{name}:v1"
    lock = resolve(spec, settings=settings, log=lambda _: None)
    build_lock(lock, settings=settings, backend=BuildahBackend(settings), image_ref=ref, log=lambda _: None)
    BuildahBackend.wait_for_local_copies()  # the tests run it from local storage
    return ref


def start(ref: str) -> str:
    """A container started with the image's entrypoint (the daemon runs; the command is the student's)."""
    name = f"reprolab-agent-tools-{uuid.uuid4().hex[:8]}"
    podman("run", "-d", "--name", name, "--network=none", ref, "sleep", "infinity")
    return name


def as_root(container: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return podman("exec", "--user", "0", container, *cmd, check=check)


def verified(container: str) -> list[dict]:
    """The container's chain, checked by the agent itself, by its export bundle and by the platform."""
    entries = chain(container)
    agent = load_agent()
    assert agent.verify_entries(entries) == (True, f"{len(entries)} entries verified")
    assert agentchain.verify(agentchain.check_shape(entries))[0]
    student(container, "reprolab", "activity", "export", "-o", "/home/student/bundle.jsonl")
    assert student(container, "reprolab", "activity", "verify", "/home/student/bundle.jsonl").stdout.startswith(
        f"ok: {len(entries)} entries verified")
    return entries


def last_install(container: str, seen: int) -> tuple[dict, list[dict]]:
    """The one install entry appended after the first ``seen`` entries."""
    entries = verified(container)
    new = [e for e in entries[seen:] if e["kind"] == "install"]
    assert len(new) == 1, entries[seen:]
    return new[0], entries


def tiny_deb(dest: Path, name: str = "reprolab-tiny-deb", version: str = "1.2-3") -> Path:
    """A dependency-free Debian package with one file, built here with dpkg-deb."""
    root = dest / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: Reprolab tests <t@example.org>\n"
        "Section: misc\nPriority: optional\nDescription: a tiny package for the agent's apt tests\n")
    (root / "usr/share/reprolab-tiny-deb").mkdir(parents=True)
    (root / "usr/share/reprolab-tiny-deb/hello.txt").write_text("hello from a deb\n")
    deb = dest / f"{name}_{version}_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(root), str(deb)], check=True,
                   capture_output=True)
    return deb


@pytest.fixture(scope="module")
def py_image(tmp_path_factory, oci_registry, base_image):
    """pip and uv from the locked wheels (fetched on the host), so both run offline in the container."""
    ref = build(tmp_path_factory, oci_registry.address, "agent-tools",
                {"base": BASE, "python": {"version": "3.11", "requirements": ["pip==24.2", UV]}})
    yield ref
    subprocess.run(["podman", "rmi", "-f", ref], capture_output=True)


@pytest.fixture(scope="module")
def py_container(py_image):
    name = start(py_image)
    yield name
    podman("rm", "-f", "-t", "0", name, check=False)


def test_pip_uninstall_is_chained_with_name_and_version(py_container, tmp_path):
    name = py_container
    wheel = tiny_wheel(tmp_path)
    podman("cp", str(wheel), f"{name}:/tmp/{wheel.name}")
    podman("exec", name, "chmod", "0644", f"/tmp/{wheel.name}")
    seen = len(chain(name))
    student(name, "pip", "install", "--user", "--no-index", "--break-system-packages", f"/tmp/{wheel.name}")
    installed, entries = last_install(name, seen)
    assert installed["details"]["changes"] == {"python": {"added": {"reprolab-tiny": "1.0"}}}
    capture = json.loads(student(name, "reprolab", "env", "capture", "--json").stdout)
    assert capture["changes"] == {"python": {"added": {"reprolab-tiny": "1.0"}}}

    seen = len(entries)
    done = student(name, "pip", "uninstall", "-y", "--break-system-packages", "reprolab-tiny")
    assert "Successfully uninstalled reprolab-tiny-1.0" in done.stdout
    removed, entries = last_install(name, seen)
    d = removed["details"]
    assert d["tool"] == "pip" and d["exit"] == 0 and d["uid"] == 1000
    assert d["command"] == ["pip", "uninstall", "-y", "--break-system-packages", "reprolab-tiny"]
    assert d["changes"] == {"python": {"removed": {"reprolab-tiny": "1.0"}}}
    capture = json.loads(student(name, "reprolab", "env", "capture", "--json").stdout)
    assert capture["changes"] == {}
    assert not any(r.startswith("reprolab-tiny") for r in capture["proposed_spec"]["python"]["requirements"])
    assert capture["chain"]["seq"] == entries[-1]["seq"]


def test_apt_install_and_remove_of_a_local_deb_are_chained(py_container, tmp_path):
    name = py_container
    deb = tiny_deb(tmp_path)
    podman("cp", str(deb), f"{name}:/tmp/{deb.name}")
    as_root(name, "chmod", "0644", f"/tmp/{deb.name}")
    seen = len(chain(name))
    done = as_root(name, "apt-get", "install", "-y", f"/tmp/{deb.name}", check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert as_root(name, "cat", "/usr/share/reprolab-tiny-deb/hello.txt").stdout == "hello from a deb\n"
    installed, entries = last_install(name, seen)
    d = installed["details"]
    assert d["tool"] == "apt-get" and d["exit"] == 0 and d["uid"] == 0
    assert d["changes"] == {"apt": {"added": {"reprolab-tiny-deb": "1.2-3"}}}
    capture = json.loads(student(name, "reprolab", "env", "capture", "--json").stdout)
    assert capture["changes"]["apt"] == {"added": {"reprolab-tiny-deb": "1.2-3"}}
    assert "reprolab-tiny-deb" in capture["proposed_spec"]["apt"]

    seen = len(entries)
    done = as_root(name, "apt-get", "remove", "-y", "reprolab-tiny-deb", check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    removed, _ = last_install(name, seen)
    d = removed["details"]
    assert d["tool"] == "apt-get" and d["exit"] == 0 and d["uid"] == 0
    assert d["command"] == ["apt-get", "remove", "-y", "reprolab-tiny-deb"]
    assert d["changes"] == {"apt": {"removed": {"reprolab-tiny-deb": "1.2-3"}}}
    assert "apt" not in json.loads(student(name, "reprolab", "env", "capture", "--json").stdout)["changes"]


def test_uv_pip_install_and_uninstall_are_chained(py_container, tmp_path):
    name = py_container
    wheel = tiny_wheel(tmp_path, "reprolab_uvtiny", "2.5")
    podman("cp", str(wheel), f"{name}:/tmp/{wheel.name}")
    as_root(name, "chmod", "0644", f"/tmp/{wheel.name}")
    seen = len(chain(name))
    done = as_root(name, "uv", "pip", "install", "--system", "--break-system-packages", "--offline", "--no-index",
                   f"/tmp/{wheel.name}", check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    installed, entries = last_install(name, seen)
    d = installed["details"]
    assert d["tool"] == "uv" and d["exit"] == 0 and d["uid"] == 0
    assert d["changes"] == {"python": {"added": {"reprolab-uvtiny": "2.5"}}}
    assert student(name, "python3", "-c", "import reprolab_uvtiny as m; print(m.__version__)").stdout.strip() == "2.5"

    seen = len(entries)
    done = as_root(name, "uv", "pip", "uninstall", "--system", "--break-system-packages", "--offline",
                   "reprolab-uvtiny", check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    removed, _ = last_install(name, seen)
    assert removed["details"]["tool"] == "uv"
    assert removed["details"]["changes"] == {"python": {"removed": {"reprolab-uvtiny": "2.5"}}}


@pytest.fixture(scope="module")
def r_container(tmp_path_factory, oci_registry, base_image):
    """An image with R (Debian's r-cran-jsonlite pulls in r-base-core), started with its entrypoint."""
    ref = build(tmp_path_factory, oci_registry.address, "agent-r", {"base": BASE, "r": {"packages": ["jsonlite"]}})
    name = start(ref)
    yield name
    podman("rm", "-f", "-t", "0", name, check=False)
    subprocess.run(["podman", "rmi", "-f", ref], capture_output=True)


def tiny_r_package(dest: Path, name: str = "tinyr", version: str = "0.1.2") -> Path:
    """A pure-R source package directory (R CMD INSTALL needs no compiler for it)."""
    pkg = dest / name
    (pkg / "R").mkdir(parents=True)
    (pkg / "DESCRIPTION").write_text(
        f"Package: {name}\nVersion: {version}\nTitle: A Tiny Package\nDescription: For the agent's R tests.\n"
        "Authors@R: person('Reprolab', 'Tests', email = 't@example.org', role = c('aut', 'cre'))\n"
        "License: MIT + file LICENSE\nEncoding: UTF-8\n")
    (pkg / "LICENSE").write_text("YEAR: 2026\nCOPYRIGHT HOLDER: Reprolab tests\n")
    (pkg / "NAMESPACE").write_text("export(f)\n")
    (pkg / "R" / "f.R").write_text("f <- function() 42\n")
    return pkg


@pytest.mark.parametrize("lib", ["/home/student/R/x86_64-pc-linux-gnu-library/4.2", "/tmp/a student r-lib"])
def test_r_install_and_remove_packages_are_chained(r_container, tmp_path, lib):
    """install.packages/remove.packages as the student into a user library (R's default user library
    and an arbitrary one), offline from a local source directory."""
    name = r_container
    pkg = tiny_r_package(tmp_path)
    podman("cp", str(pkg), f"{name}:/tmp/tinyr")
    as_root(name, "chmod", "-R", "a+rX", "/tmp/tinyr")
    student(name, "mkdir", "-p", lib)
    seen = len(chain(name))
    done = student(name, "Rscript", "-e",
                   f'install.packages("/tmp/tinyr", repos = NULL, type = "source", lib = "{lib}")', check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    ran = student(name, "Rscript", "-e", f'library(tinyr, lib.loc = "{lib}"); cat(f())')
    assert ran.stdout == "42"
    installed, entries = last_install(name, seen)
    d = installed["details"]
    assert d["tool"] == "R" and d["exit"] == 0 and d["uid"] == 1000 and d["command"] == ["install.packages"]
    assert d["changes"] == {"r": {"added": {"tinyr": "0.1.2"}}}

    seen = len(entries)
    done = student(name, "Rscript", "-e", f'remove.packages("tinyr", lib = "{lib}")', check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    removed, _ = last_install(name, seen)
    d = removed["details"]
    assert d["tool"] == "R" and d["uid"] == 1000 and d["command"] == ["remove.packages"]
    assert d["changes"] == {"r": {"removed": {"tinyr": "0.1.2"}}}
