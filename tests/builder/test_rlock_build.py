"""A real build of R packages from a CRAN-like repository (served locally over HTTP): installed
offline from the R source cache, checked inside the image, and bit-reproducible (built again with no
layer cache: the same image)."""

from __future__ import annotations

import subprocess
import time
import uuid

import pytest
from reprolab_builder import rcache, rlock
from reprolab_builder.backends.buildah import BuildahBackend
from reprolab_builder.build import build_lock, one_layer
from reprolab_builder.lock import resolve
from reprolab_builder.render import render, write_context

from .conftest import make_settings
from .cranrepo import CranServer, build_repository

BASE = "localhost/reprolab/bookworm-python:latest"


@pytest.fixture(scope="module")
def built(tmp_path_factory, oci_registry, base_image):
    """One lock (tinya → tinyb → tinyc==1.0.0 from Archive/, tinycc with C code, jsonlite from Debian),
    built once through the builder's pipeline and pushed; yields (lock, image ref, settings, timings)."""
    tmp = tmp_path_factory.mktemp("rbuild")
    settings = make_settings(tmp / "cache", registry=oci_registry.address)
    with CranServer(build_repository(tmp / "cran")) as cran:
        t0 = time.monotonic()
        lock = resolve({"base": BASE, "r": {"repository": cran.url, "version": "4.2",
                                            "packages": ["tinya", "tinyc==1.0.0", "tinycc", "jsonlite"]}},
                       settings=settings, log=lambda _: None)
        t_lock = time.monotonic() - t0
        ref = f"{oci_registry.address}/cran-test/r-{uuid.uuid4().hex[:8]}:v1"
        t0 = time.monotonic()
        result = build_lock(lock, settings=settings, backend=BuildahBackend(settings), image_ref=ref,
                            log=lambda _: None)
        t_build = time.monotonic() - t0
        BuildahBackend.wait_for_local_copies()  # the tests run it from local storage
    # the repository is gone now: everything below works offline
    yield {"lock": lock, "ref": ref, "digest": result.digest, "settings": settings, "tmp": tmp,
           "times": {"lock_s": round(t_lock, 1), "build_s": round(t_build, 1)}}
    subprocess.run(["podman", "rmi", "-f", ref], capture_output=True)


def test_lock_mixes_debian_fast_path_and_repository_packages(built):
    lock = built["lock"]
    assert [(p["name"], p["version"]) for p in lock["r_source"]] == [
        ("tinyc", "1.0.0"), ("tinyb", "0.2"), ("tinya", "2.0-1"), ("tinycc", "0.1")]
    assert lock["r_source"][0]["path"] == "src/contrib/Archive/tinyc/tinyc_1.0.0.tar.gz"
    assert [p["deb"] for p in lock["r"]] == ["r-cran-jsonlite"]
    assert {"r-base-core", "r-base-dev"} <= {p["name"] for p in lock["r_system"]}  # tinycc needs a compiler
    print("R lock/build times for the test packages:", built["times"])


def test_packages_are_installed_at_locked_versions_offline(built):
    check = ('library(tinya); stopifnot(packageVersion("tinya") == "2.0-1", packageVersion("tinyb") == "0.2", '
             'packageVersion("tinyc") == "1.0.0", tinyc::tinyc_value() == "1.0.0", '
             'grepl("1970-01-01", packageDescription("tinya")$Built), tinycc::tinycc_twice(1:3) == c(2, 4, 6), '
             '!file.exists("/tmp/reprolab-r-build")); '
             'cat(jsonlite::toJSON(list(ok = TRUE)), "\\n")')
    ran = subprocess.run(["podman", "run", "--rm", "--network=none", "--entrypoint", "", built["ref"],
                          "Rscript", "-e", check], capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert ran.stdout.strip() == '{"ok":[true]}'


def test_same_lock_gives_the_same_image_without_cache(built):
    """The lock built again with no layer cache (the same buildah flags as the backend, ``--layers=false``
    for a one-layer lock),
    offline from the R source cache: the same image id (its config digest covers every layer's diff id).
    This caught R CMD INSTALL's random unpack directory, which reached help/paths.rds and the compiled
    library's debug info and build id."""
    lock, settings, tmp = built["lock"], built["settings"], built["tmp"]
    ctx = tmp / "ctx2"
    write_context(render(lock), ctx)
    rcache.materialize(rlock.source_delta(lock, None), ctx / "rsources", settings=settings)
    layers = "--layers=false" if one_layer(lock) else "--layers"  # as the backend builds it
    iid = tmp / "iid"
    t0 = time.monotonic()
    done = subprocess.run(["buildah", "bud", "--timestamp", "0", "--identity-label=false", "--format", "oci",
                           "--no-cache", layers, "--iidfile", str(iid), "-f", str(ctx / "Containerfile"),
                           str(ctx)], capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-2000:]
    again = iid.read_text().strip().removeprefix("sha256:")
    print("R lock rebuilt without cache in", round(time.monotonic() - t0, 1), "s")
    first = subprocess.run(["podman", "image", "inspect", "--format", "{{.Id}}", built["ref"]],
                           capture_output=True, text=True, check=True).stdout.strip()
    try:
        layers = [subprocess.run(["podman", "image", "inspect", "--format", "{{json .RootFS.Layers}}", i],
                                 capture_output=True, text=True).stdout for i in (first, again)]
        assert again == first, layers
    finally:
        if again != first:
            subprocess.run(["podman", "rmi", "-f", again], capture_output=True)
