"""renv.lock import and export: the mapping, the refusals, and the round trip through the builder's
real lock resolution (base image + a local CRAN-like repository over HTTP)."""

from __future__ import annotations

import json

import pytest
from reprolab_builder.backends.base import BuildError
from reprolab_builder.lock import resolve
from reprolab_gateway.importer import ImportRefused, detect_repository, tree_of
from reprolab_gateway.importer.binder_export import binder_folder
from reprolab_gateway.importer.flow import refused
from reprolab_gateway.importer.renv import r_section, renv_lock
from reprolab_registry.spec import validate_spec

from tests.builder.conftest import make_settings
from tests.builder.cranrepo import CranServer, build_repository

BASE = "localhost/reprolab/bookworm-python:latest"


def renv(packages: dict, repos=(("CRAN", "https://packagemanager.posit.co/cran/2024-06-01"),), version="4.2.2"):
    return json.dumps({"R": {"Version": version, "Repositories": [{"Name": n, "URL": u} for n, u in repos]},
                       "Packages": packages})


def pkg(name, version, **extra):
    return {"Package": name, "Version": version, "Source": "Repository", "Repository": "CRAN", **extra}


def test_renv_lock_maps_to_the_r_section():
    text = renv({"tinya": pkg("tinya", "2.0-1"), "jsonlite": pkg("jsonlite", "1.8.4", Hash="abc")})
    detection = detect_repository(tree_of({"renv.lock": text, "analysis.R": "library(tinya)\n"}))
    spec = detection.spec(base=BASE)
    assert detection.buildpack == "r" and "renv.lock" in detection.mapped.used
    assert spec["r"] == {"packages": ["jsonlite==1.8.4", "tinya==2.0-1"], "version": "4.2.2",
                         "repository": "https://packagemanager.posit.co/cran/2024-06-01"}
    assert "apt" not in spec  # R comes with the R section, not as an unpinned apt package
    validate_spec(spec)  # the registry accepts what the importer makes


def test_packages_renv_cannot_lock_are_named_in_a_422():
    text = renv({"gh": {"Package": "gh", "Version": "0.1", "Source": "GitHub", "RemoteRepo": "r-lib/gh"},
                 "Biobase": {"Package": "Biobase", "Version": "2.62.0", "Source": "Bioconductor"},
                 "other": pkg("other", "1.0", Repository="RSPM"),
                 "fine": pkg("fine", "1.0")})
    with pytest.raises(ImportRefused) as info:
        detect_repository(tree_of({"renv.lock": text}))
    problem = refused(info.value)
    assert problem.status == 422
    text = problem.detail
    assert "'gh' comes from GitHub (r-lib/gh)" in text and "'Biobase' comes from Bioconductor" in text
    assert "'other' names repository 'RSPM', which R.Repositories does not list" in text
    _, problems = r_section(renv({"aa": pkg("aa", "1.0"), "bb": pkg("bb", "1.0", Repository="X")},
                                 repos=(("CRAN", "https://a.example"), ("X", "https://b.example"))))
    assert problems and "an environment takes R packages from one repository" in problems[0][1]
    assert r_section("{nope")[1][0][1].startswith("is not JSON")


@pytest.fixture(scope="module")
def cran(tmp_path_factory):
    with CranServer(build_repository(tmp_path_factory.mktemp("cran"))) as server:
        yield server


def test_round_trip_gives_the_same_lock(cran, tmp_path, base_image):
    """lock → renv.lock (the GET route's and the Binder export's document) → import → lock: identical."""
    settings = make_settings(tmp_path / "cache")
    spec = {"base": BASE, "r": {"repository": cran.url, "packages": ["tinya", "tinyc==1.0.0", "jsonlite"]}}
    first = resolve(spec, settings=settings, log=lambda _: None)
    doc = renv_lock(first)
    assert doc["R"]["Version"] == "4.2.2" and doc["R"]["Repositories"] == [{"Name": "CRAN", "URL": cran.url}]
    assert doc["Packages"]["tinyc"]["Version"] == "1.0.0" and doc["Packages"]["jsonlite"]["Version"] == "1.8.4"
    folder = binder_folder(first, environment="e", version=1)
    assert json.loads(folder["binder/renv.lock"]) == doc
    imported = detect_repository(tree_of({"renv.lock": json.dumps(doc)})).spec(base=BASE)
    again = resolve(validate_spec(imported).document, settings=settings, log=lambda _: None)
    assert again == first


def test_an_r_version_the_base_cannot_provide_is_named(cran, tmp_path, base_image):
    settings = make_settings(tmp_path / "cache")
    imported = detect_repository(tree_of({"renv.lock": renv({"tinyc": pkg("tinyc", "1.1.0")},
                                                            repos=(("CRAN", cran.url),), version="3.6.3")}))
    with pytest.raises(BuildError, match=r"spec asks for R 3.6.3 but base image .* provides R 4.2.2"):
        resolve(imported.spec(base=BASE), settings=settings, log=lambda _: None)
