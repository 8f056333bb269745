"""The wheel cache fetches exactly the locked wheels, by hash, for the image's Python and platform."""

from __future__ import annotations

from pathlib import Path

from reprolab_builder.config import BuilderSettings
from reprolab_builder.wheelcache import _choose, fetch, sha256_file, simple_index_files, supported_tags

from .conftest import make_settings


def _file(name: str, sha: str) -> dict:
    return {"filename": name, "packagetype": "bdist_wheel", "digests": {"sha256": sha}, "url": "x"}


def test_choose_prefers_a_compatible_wheel_named_by_the_lock() -> None:
    ranks = supported_tags("3.11")
    files = [
        _file("k-1.0-cp311-cp311-macosx_11_0_arm64.whl", "a" * 64),
        _file("k-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "b" * 64),
        _file("k-1.0-cp312-cp312-manylinux_2_17_x86_64.whl", "c" * 64),
        _file("k-1.0-cp311-cp311-musllinux_1_2_x86_64.whl", "d" * 64),
        _file("k-1.0-py3-none-any.whl", "e" * 64),
        {"filename": "k-1.0.tar.gz", "packagetype": "sdist", "digests": {"sha256": "f" * 64}, "url": "x"},
    ]
    every = [f"sha256:{c * 64}" for c in "abcdef"]
    assert _choose(files, every, ranks)["digests"]["sha256"] == "b" * 64  # the platform wheel beats py3-none-any
    assert _choose(files, [f"sha256:{'e' * 64}"], ranks)["digests"]["sha256"] == "e" * 64
    assert _choose(files, [f"sha256:{'a' * 64}", f"sha256:{'c' * 64}"], ranks) is None  # mac, cp312 only
    assert _choose(files, [f"sha256:{'f' * 64}"], ranks) is None  # never an sdist


def test_fetches_manylinux_2_17_only_wheels_by_hash(tmp_path: Path) -> None:
    """kiwisolver 1.4.5 ships cp311 wheels tagged manylinux_2_17 only, which `pip download
    --platform manylinux_2_28_x86_64` alone refuses although uv locks them."""
    settings: BuilderSettings = make_settings(tmp_path)
    from reprolab_builder.lock import resolve

    lock = resolve({"base": "localhost/reprolab/bookworm-python:latest",
                    "python": {"version": "3.11", "requirements": ["kiwisolver==1.4.5"]}}, settings=settings)
    pkg = next(p for p in lock["python"]["packages"] if p["name"] == "kiwisolver")
    logs: list[str] = []
    got = fetch([pkg], python_version="3.11", settings=settings, log=logs.append)
    wheel = got["kiwisolver"]
    assert "manylinux_2_17_x86_64" in wheel.name and "cp311" in wheel.name, wheel.name
    assert not any("falling back" in line for line in logs), logs
    assert f"sha256:{sha256_file(wheel)}" in pkg["hashes"]
    assert wheel.parent.name == sha256_file(wheel)  # content-addressed
    again = fetch([pkg], python_version="3.11", settings=settings)  # cached: no second download
    assert again["kiwisolver"] == wheel


def test_the_fast_path_reads_the_simple_index_and_pip_is_not_needed(tmp_path: Path) -> None:
    """With a broken pip fallback (a bogus --cert), the simple-index path alone must fetch."""
    settings = make_settings(tmp_path)
    from reprolab_builder.lock import resolve

    lock = resolve({"base": "localhost/reprolab/bookworm-python:latest",
                    "python": {"version": "3.11", "requirements": ["six==1.16.0", "idna==3.7"]}}, settings=settings)
    logs: list[str] = []
    got = fetch(lock["python"]["packages"], python_version="3.11", settings=settings, log=logs.append)
    assert set(got) == {"six", "idna"}
    assert not any("falling back" in line for line in logs), logs


def test_simple_index_page_parsing() -> None:
    page = ('<a href="../../packages/ab/six-1.16.0-py2.py3-none-any.whl#sha256=' + "1" * 64 + '">'
            'six-1.16.0-py2.py3-none-any.whl</a><a href="x/six-1.16.0.tar.gz#sha256=' + "2" * 64 + '">'
            'six-1.16.0.tar.gz</a>')
    files = simple_index_files(page, "https://pypi.org/simple/six/")
    assert files == [{"filename": "six-1.16.0-py2.py3-none-any.whl", "digests": {"sha256": "1" * 64},
                      "url": "https://pypi.org/packages/ab/six-1.16.0-py2.py3-none-any.whl",
                      "packagetype": "bdist_wheel"}]
