"""R packages from a CRAN-like repository: resolution and locking against a local repository
served over HTTP (tests/builder/cranrepo.py), offline."""

from __future__ import annotations

import hashlib

import pytest
from reprolab_builder import rcache, rlock
from reprolab_builder.backends.base import BuildError

from .conftest import make_settings
from .cranrepo import CranServer, build_repository, source_package


@pytest.fixture(scope="module")
def cran(tmp_path_factory):
    with CranServer(build_repository(tmp_path_factory.mktemp("cran"))) as server:
        yield server


@pytest.fixture
def settings(tmp_path):
    return make_settings(tmp_path / "cache")


def quiet(_line: str) -> None:
    pass


def test_dependencies_are_locked_recursively_in_install_order(cran, settings):
    locked = rlock.resolve_cran([("tinya", None)], cran.url, settings=settings, r_version="4.2.2", log=quiet)
    pkgs = locked["packages"]
    assert [(p["name"], p["version"]) for p in pkgs] == [("tinyc", "1.1.0"), ("tinyb", "0.2"), ("tinya", "2.0-1")]
    assert locked["debian"] == []
    for p in pkgs:  # every archive's sha256, from the repository it came from, cached for the build
        data = (cran.root / p["path"]).read_bytes()
        assert p["sha256"] == "sha256:" + hashlib.sha256(data).hexdigest()
        assert p["repository"] == cran.url and rcache.cached(settings, p).read_bytes() == data
    # base packages (utils, stats, R) are left out of the dependencies
    assert pkgs[1]["depends"] == ["tinyc"] and pkgs[2]["depends"] == ["tinyb"]


def test_exact_old_version_comes_from_archive(cran, settings):
    locked = rlock.resolve_cran([("tinyb", None), ("tinyc", "1.0.0")], cran.url, settings=settings, log=quiet)
    c = next(p for p in locked["packages"] if p["name"] == "tinyc")
    assert c["version"] == "1.0.0" and c["path"] == "src/contrib/Archive/tinyc/tinyc_1.0.0.tar.gz"


def test_lock_is_stable(cran, settings):
    one = rlock.resolve_cran([("tinya", None)], cran.url, settings=settings, log=quiet)
    two = rlock.resolve_cran([("tinya", None)], cran.url + "/", settings=settings, log=quiet)
    assert one == two


def test_recommended_packages_come_from_debian_and_provided_ones_are_not_fetched(cran, settings):
    locked = rlock.resolve_cran([("tinymass", None)], cran.url, settings=settings, log=quiet)
    assert [p["name"] for p in locked["packages"]] == ["tinymass"] and locked["debian"] == ["MASS"]
    locked = rlock.resolve_cran([("tinyb", None)], cran.url, settings=settings, provided={"tinyc": "1.1.0"},
                                log=quiet)
    assert [p["name"] for p in locked["packages"]] == ["tinyb"]


@pytest.mark.parametrize(("requests", "message"), [
    ([("nosuchpkg", None)], r"R package 'nosuchpkg' is not in the repository .*check the name"),
    ([("tinyc", "0.9")], r"R package 'tinyc' has no version '0.9' .*current version is 1.1.0"),
    ([("tinyneedsnew", None)], r"'tinyneedsnew' needs tinyc >= 9.0, but .* has tinyc 1.1.0; pin a version"),
    ([("tinyneedsnew", None), ("tinyc", "1.0.0")], r"needs tinyc >= 9.0, but tinyc 1.0.0 is locked"),
])
def test_refusals_say_what_to_fix(cran, settings, requests, message):
    with pytest.raises(BuildError, match=message):
        rlock.resolve_cran(requests, cran.url, settings=settings, log=quiet)


def test_r_version_constraint_and_not_a_repository(cran, settings):
    with pytest.raises(BuildError, match=r"'tinyb' needs R >= 3.5.0; the base provides R 3.4.0"):
        rlock.resolve_cran([("tinyb", None)], cran.url, settings=settings, r_version="3.4.0", log=quiet)
    with pytest.raises(BuildError, match="is not a CRAN-like repository: it has no src/contrib/PACKAGES"):
        rlock.resolve_cran([("tinyb", None)], cran.url + "/src", settings=settings, log=quiet)


def test_index_checksum_and_lock_hash_mismatches_are_refused(tmp_path, settings):
    root = build_repository(tmp_path / "repo")
    with CranServer(root) as server:
        locked = rlock.resolve_cran([("tinyb", None)], server.url, settings=settings, log=quiet)
        # the repository now serves other bytes under the locked name: the build's fetch refuses them
        target = root / "src/contrib/tinyb_0.2.tar.gz"
        target.write_bytes(source_package("tinyb", "0.2", value="'changed'"))
        fresh = make_settings(tmp_path / "other-cache")
        with pytest.raises(BuildError, match=r"tinyb_0.2.tar.gz .* has sha256 sha256:[0-9a-f]{64}, not the lock's"):
            rcache.ensure({"r_source": locked["packages"]}, settings=fresh, log=quiet)
        # and a new resolution sees the index's MD5sum disagree with the file
        with pytest.raises(BuildError, match="does not match the MD5sum in the repository's index"):
            rlock.resolve_cran([("tinyb", None)], server.url, settings=fresh, log=quiet)


def test_a_version_that_moved_to_archive_is_still_fetched(tmp_path, settings):
    root = build_repository(tmp_path / "repo")
    with CranServer(root) as server:
        locked = rlock.resolve_cran([("tinyb", None)], server.url, settings=settings, log=quiet)
        archive = root / "src/contrib/Archive/tinyb"
        archive.mkdir(parents=True)
        (root / "src/contrib/tinyb_0.2.tar.gz").rename(archive / "tinyb_0.2.tar.gz")
        fresh = make_settings(tmp_path / "other-cache")
        rcache.ensure({"r_source": locked["packages"]}, settings=fresh, log=quiet)
        assert all(rcache.cached(fresh, p) for p in locked["packages"])


def test_debian_is_the_fast_path_when_it_has_the_version():
    debian = {"jsonlite": "1.8.4+dfsg-1", "MASS": "7.3-58.2-1", "tinya": None}
    from_debian, from_repo = rlock.split_requests(
        [("jsonlite", None), ("MASS", "7.3-58.2"), ("tinya", None), ("jsonlite2", None)],
        {**debian, "jsonlite2": None}, repository="https://cran.example.org")
    assert from_debian == ["jsonlite", "MASS"] and from_repo == [("tinya", None), ("jsonlite2", None)]
    _deb, repo = rlock.split_requests([("jsonlite", "1.8.8")], debian, repository="https://cran.example.org")
    assert repo == [("jsonlite", "1.8.8")]
    with pytest.raises(BuildError, match=r"'jsonlite'==1.8.8 is not the version Debian has \(1.8.4\); set r.repo"):
        rlock.split_requests([("jsonlite", "1.8.8")], debian, repository=None)


def test_versions_requests_and_r_version():
    assert rlock.parse_request("tinyc==1.0-2") == ("tinyc", "1.0-2")
    with pytest.raises(BuildError, match="is not 'name' or 'name==version'"):
        rlock.parse_request("tinyc>=1")
    assert rlock.debian_upstream("1:1.8.4+dfsg-1") == "1.8.4" and rlock.r_version_of("4.2.2.20221110-2") == "4.2.2"
    assert rlock.same_version("7.3-58.2", "7.3.58.2") and rlock.satisfies("1.10", ">=", "1.9")
    rlock.check_r_version("4.2", "4.2.2", "b")
    with pytest.raises(BuildError, match=r"spec asks for R 4.3.1 but base image 'b' provides R 4.2.2"):
        rlock.check_r_version("4.3.1", "4.2.2", "b")
