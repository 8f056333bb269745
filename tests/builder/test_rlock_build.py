"""A real build of R packages from a CRAN-like repository (served locally over HTTP): installed
offline from the R source cache, and checked inside the image."""

from __future__ import annotations

import subprocess
import time
import uuid

import pytest
from reprolab_builder.backends.buildah import BuildahBackend
from reprolab_builder.build import build_lock
from reprolab_builder.lock import resolve

from .conftest import make_settings
from .cranrepo import CranServer, build_repository

BASE = "localhost/reprolab/bookworm-python:latest"


@pytest.fixture(scope="module")
def built(tmp_path_factory, oci_registry, base_image):
    """One lock (tinya → tinyb → tinyc==1.0.0 from Archive/, jsonlite from Debian), built once through
    the builder's pipeline and pushed; yields (lock, image ref, settings, timings)."""
    tmp = tmp_path_factory.mktemp("rbuild")
    settings = make_settings(tmp / "cache", registry=oci_registry.address)
    with CranServer(build_repository(tmp / "cran")) as cran:
        t0 = time.monotonic()
        lock = resolve({"base": BASE, "r": {"repository": cran.url, "version": "4.2",
                                            "packages": ["tinya", "tinyc==1.0.0", "jsonlite"]}},
                       settings=settings, log=lambda _: None)
        t_lock = time.monotonic() - t0
        ref = f"{oci_registry.address}/cran-test/r-{uuid.uuid4().hex[:8]}:v1"
        t0 = time.monotonic()
        result = build_lock(lock, settings=settings, backend=BuildahBackend(settings), image_ref=ref,
                            log=lambda _: None)
        t_build = time.monotonic() - t0
    # the repository is gone now: everything below works offline
    yield {"lock": lock, "ref": ref, "digest": result.digest, "settings": settings, "tmp": tmp,
           "times": {"lock_s": round(t_lock, 1), "build_s": round(t_build, 1)}}
    subprocess.run(["podman", "rmi", "-f", ref], capture_output=True)


def test_lock_mixes_debian_fast_path_and_repository_packages(built):
    lock = built["lock"]
    assert [(p["name"], p["version"]) for p in lock["r_source"]] == [
        ("tinyc", "1.0.0"), ("tinyb", "0.2"), ("tinya", "2.0-1")]
    assert lock["r_source"][0]["path"] == "src/contrib/Archive/tinyc/tinyc_1.0.0.tar.gz"
    assert [p["deb"] for p in lock["r"]] == ["r-cran-jsonlite"]
    assert "r-base-core" in {p["name"] for p in lock["r_system"]}
    print("R lock/build times for the test packages:", built["times"])


def test_packages_are_installed_at_locked_versions_offline(built):
    check = ('library(tinya); stopifnot(packageVersion("tinya") == "2.0-1", packageVersion("tinyb") == "0.2", '
             'packageVersion("tinyc") == "1.0.0", tinyc::tinyc_value() == "1.0.0", '
             'grepl("1970-01-01", packageDescription("tinya")$Built)); '
             'cat(jsonlite::toJSON(list(ok = TRUE)), "\\n")')
    ran = subprocess.run(["podman", "run", "--rm", "--network=none", "--entrypoint", "", built["ref"],
                          "Rscript", "-e", check], capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert ran.stdout.strip() == '{"ok":[true]}'
