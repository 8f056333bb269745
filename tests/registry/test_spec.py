"""Spec validation as data: every bad field is named by its location, good specs normalise."""

from __future__ import annotations

import json

import pytest
from reprolab_common.canonical import canonical_json
from reprolab_common.errors import Invalid
from reprolab_registry.spec import check_name, parse_spec_json, sanitize_name, validate_spec

HEX = "ab" * 32
GOOD = {
    "base": "localhost:5000/reprolab/bookworm-python:latest",
    "python": {
        "version": "3.12",
        "requirements": ["numpy>=1.26", "pandas[parquet]==2.2.*; python_version>='3.10'"],
    },
    "r": {"packages": ["ggplot2", "data.table"]},
    "apt": ["libpq-dev", "g++=4:12.2.0-3", "libstdc++6"],
    "datasets": [{"digest": f"sha256:{HEX}", "mount": "/data/iris"}],
    "files": [{"path": "conf/settings.toml", "content": "x = 1\n"}],
    "entrypoint": ["python", "-m", "train"],
    "resources": {"cpu": "500m", "memory": "4Gi", "gpu": 1},
}


def errors_of(doc: object) -> dict[str, str]:
    with pytest.raises(Invalid) as info:
        validate_spec(doc)
    assert info.value.status == 422
    errors = dict(info.value.errors)
    for loc in errors:  # the detail names every field it reports (up to five)
        if list(errors).index(loc) < 5:
            assert loc in info.value.detail
    return errors


@pytest.mark.parametrize(
    "base",
    [
        "python:3.12-slim",
        "localhost:5000/reprolab/bookworm-python:latest",
        f"quay.io/jupyter/scipy-notebook@sha256:{HEX}",
        f"ghcr.io/org/sub/image:v1.2@sha256:{HEX}",
        "ubuntu",
        "registry.example.com:443/a__b/c-d.e:TAG_1",
    ],
)
def test_valid_image_references(base: str) -> None:
    assert validate_spec({"base": base}).document == {"base": base}


@pytest.mark.parametrize(
    "base",
    [
        "Python:3.12",
        "python:",
        "python@sha256:abc",
        "/python",
        "python//x",
        "python:3.12 slim",
        "",
        "-python",
        "localhost:5000/",
        f"python@sha512:{HEX}{HEX}",
        "a:" + "t" * 129,
    ],
)
def test_invalid_image_references_name_spec_base(base: str) -> None:
    errors = errors_of({"base": base})
    assert list(errors) == ["spec.base"]
    assert "not a valid OCI image reference" in errors["spec.base"]


def test_good_spec_normalises_and_digest_ignores_key_order() -> None:
    valid = validate_spec(GOOD)
    reordered = json.loads(json.dumps(GOOD), object_pairs_hook=lambda pairs: dict(reversed(pairs)))
    assert list(reordered) != list(GOOD)
    again = validate_spec(reordered)
    assert again.digest == valid.digest and again.canonical_json == valid.canonical_json
    assert valid.canonical_json == canonical_json(valid.document).decode()
    assert valid.digest.startswith("sha256:") and len(valid.digest) == 71
    # defaults and empty sections are not part of the spec's identity
    assert (
        validate_spec({"base": "python:3.12", "python": {}, "apt": [], "resources": {"gpu": 0}}).digest
        == validate_spec({"base": "python:3.12"}).digest
    )
    # requirement spelling is normalised by packaging
    spaced = validate_spec({"base": "python:3.12", "python": {"requirements": ["numpy >= 1.26"]}})
    assert spaced.document["python"]["requirements"] == ["numpy>=1.26"]
    # JSON text parses to the same spec
    assert parse_spec_json(json.dumps(reordered, indent=2)).digest == valid.digest


def test_requirements_are_validated_by_packaging() -> None:
    errors = errors_of(
        {
            "base": "python:3.12",
            "python": {"requirements": ["numpy", "pandas>=2", "numpy>>1", "x[", "ok ; bad_marker == '1'"]},
        }
    )
    assert set(errors) == {
        "spec.python.requirements[2]",
        "spec.python.requirements[3]",
        "spec.python.requirements[4]",
    }
    assert errors["spec.python.requirements[2]"].startswith("'numpy>>1' is not a valid requirement: Expected")


@pytest.mark.parametrize(
    ("doc", "loc", "fragment"),
    [
        ({}, "spec.base", "is required"),
        ({"base": "python", "pyhton": {}}, "spec.pyhton", "not a known field"),
        ({"base": "python", "python": {"version": "3"}}, "spec.python.version", "Python version"),
        ({"base": "python", "python": {"version": 3.12}}, "spec.python.version", "must be a string"),
        ({"base": "python", "python": {"requirements": "numpy"}}, "spec.python.requirements", "JSON array"),
        ({"base": "python", "python": {"pip": []}}, "spec.python.pip", "not a known field"),
        ({"base": "python", "r": {"packages": ["ok", "9lives"]}}, "spec.r.packages[1]", "CRAN"),
        ({"base": "python", "r": {"packages": ["dot."]}}, "spec.r.packages[0]", "CRAN"),
        ({"base": "python", "apt": ["curl", "Curl"]}, "spec.apt[1]", "Debian package"),
        ({"base": "python", "apt": ["curl=not valid"]}, "spec.apt[0]", "Debian package"),
        (
            {"base": "python", "datasets": [{"digest": "sha256:abc", "mount": "/data/x"}]},
            "spec.datasets[0].digest",
            "sha256:<64",
        ),
        (
            {"base": "python", "datasets": [{"digest": f"sha256:{HEX}", "mount": "/mnt/x"}]},
            "spec.datasets[0].mount",
            "under /data/",
        ),
        (
            {"base": "python", "datasets": [{"digest": f"sha256:{HEX}", "mount": "/data/../etc"}]},
            "spec.datasets[0].mount",
            "under /data/",
        ),
        (
            {"base": "python", "datasets": [{"digest": f"sha256:{HEX}"}]},
            "spec.datasets[0].mount",
            "is required",
        ),
        (
            {"base": "python", "files": [{"path": "/etc/passwd", "content": ""}]},
            "spec.files[0].path",
            "relative",
        ),
        (
            {"base": "python", "files": [{"path": "a/../../b", "content": ""}]},
            "spec.files[0].path",
            "relative",
        ),
        (
            {"base": "python", "files": [{"path": "a", "content": "x" * (64 * 1024 + 1)}]},
            "spec.files[0].content",
            "64 KiB",
        ),
        (
            {"base": "python", "files": [{"path": "a", "content": "", "mode": 493}]},
            "spec.files[0].mode",
            "known",
        ),
        ({"base": "python", "entrypoint": "python -m x"}, "spec.entrypoint", "JSON array"),
        ({"base": "python", "entrypoint": ["python", 3]}, "spec.entrypoint[1]", "must be a string"),
        ({"base": "python", "resources": {"cpu": 2}}, "spec.resources.cpu", "must be a string"),
        ({"base": "python", "resources": {"cpu": "two"}}, "spec.resources.cpu", "CPU quantity"),
        ({"base": "python", "resources": {"cpu": "0m"}}, "spec.resources.cpu", "CPU quantity"),
        ({"base": "python", "resources": {"memory": "4GB"}}, "spec.resources.memory", "memory quantity"),
        ({"base": "python", "resources": {"gpu": 1.0}}, "spec.resources.gpu", "floats are not allowed"),
        ({"base": "python", "resources": {"gpu": -1}}, "spec.resources.gpu", "greater than or equal to 0"),
        ({"base": "python", "resources": {"gpu": True}}, "spec.resources.gpu", "must be an integer"),
        ({"base": "python", "resources": {"gpu": "1"}}, "spec.resources.gpu", "must be an integer"),
        (["base"], "spec", "JSON object"),
    ],
)
def test_each_bad_field_is_named(doc: object, loc: str, fragment: str) -> None:
    errors = errors_of(doc)
    assert loc in errors, errors
    assert fragment in errors[loc]


def test_duplicate_mounts_and_paths_are_refused() -> None:
    doc = {
        "base": "python",
        "datasets": [
            {"digest": f"sha256:{HEX}", "mount": "/data/x"},
            {"digest": f"sha256:{'cd' * 32}", "mount": "/data/x/"},
        ],
        "files": [{"path": "a", "content": ""}, {"path": "a", "content": "b"}],
    }
    errors = errors_of(doc)
    assert errors == {
        "spec.datasets[1].mount": "'/data/x' is already used by spec.datasets[0]",
        "spec.files[1].path": "'a' is already used by spec.files[0]",
    }


def test_several_errors_are_reported_together() -> None:
    errors = errors_of({"base": "Bad", "python": {"version": "x"}, "resources": {"memory": "lots"}})
    assert set(errors) == {"spec.base", "spec.python.version", "spec.resources.memory"}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "is required"),
        ("{not json", "not valid JSON"),
        ('{"base": "python", "base": "ubuntu"}', "duplicate key 'base'"),
        ('{"base": "python", "resources": {"gpu": NaN}}', "floats are not allowed"),
    ],
)
def test_spec_json_text_errors(text: str, fragment: str) -> None:
    with pytest.raises(Invalid) as info:
        parse_spec_json(text)
    assert fragment in info.value.detail
    assert info.value.errors[0][0] in {"spec_json", "spec.resources.gpu"}


@pytest.mark.parametrize("name", ["a", "cs-101", "0day", "a" * 63])
def test_valid_names(name: str) -> None:
    assert check_name(name, "slug", "workspace slug") == name


@pytest.mark.parametrize("name", ["", "-a", "A", "a_b", "a.b", "a" * 64, "é"])
def test_invalid_names_name_the_field(name: str) -> None:
    with pytest.raises(Invalid) as info:
        check_name(name, "name", "environment name")
    assert info.value.errors[0][0] == "name"
    assert "not a valid environment name" in info.value.detail


def test_sanitize_name_makes_valid_names() -> None:
    assert sanitize_name("iris-Ada.Lovelace") == "iris-ada-lovelace"
    assert sanitize_name("--x__y--") == "x-y"
    long = sanitize_name("e" * 60 + "-" + "u" * 20)
    assert len(long) <= 63 and check_name(long, "n", "name")
