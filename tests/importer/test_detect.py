"""Detection as repo2docker does it, on trees in memory and on the fixture folders (pure, fast).

Each case names the repo2docker rule it checks. The fixture folders under ``repos/`` are also built
and verified inside their images by ``tests/integration/test_import.py``.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from reprolab_gateway.importer import ImportRefused, detect_repository, tree_of
from reprolab_gateway.importer.archive import canonical_tar, read_archive, read_directory
from reprolab_gateway.importer.formats import parse_runtime

REPOS = Path(__file__).parent / "repos"


def detect(files: dict[str, str], executable: set[str] = frozenset()):  # type: ignore[assignment]
    return detect_repository(tree_of(files, executable))


def refusal(files: dict[str, str]) -> list[tuple[str, str]]:
    with pytest.raises(ImportRefused) as info:
        detect(files)
    return info.value.problems


# --- the binder folder rule -------------------------------------------------------------------


def test_binder_folder_is_read_and_root_files_ignored() -> None:
    d = detect({"binder/requirements.txt": "six==1.16.0\n", "requirements.txt": "idna\n", "apt.txt": "jq\n"})
    assert d.binder_dir == "binder"
    assert d.spec(base="b")["python"] == {"requirements": ["six==1.16.0"]}
    assert "apt" not in d.spec(base="b")
    assert any("requirements.txt, apt.txt at the root ignored" in n for n in d.mapped.notes)


def test_dot_binder_folder_wins_the_same_way() -> None:
    d = detect({".binder/apt.txt": "jq\n", "apt.txt": "tree\n"})
    assert d.binder_dir == ".binder" and d.spec(base="b")["apt"] == ["jq"]


def test_both_binder_folders_refused() -> None:
    problems = refusal({"binder/requirements.txt": "six", ".binder/requirements.txt": "six"})
    assert "both a 'binder' and a '.binder'" in problems[0][1]


def test_setup_py_is_not_a_package_inside_a_binder_folder_repo() -> None:
    # repo2docker: _is_python_package is False whenever a binder folder exists
    d = detect({"binder/requirements.txt": "six\n", "setup.py": "from setuptools import setup; setup()"})
    assert "build_steps" not in d.spec(base="b")


# --- order of precedence ----------------------------------------------------------------------


@pytest.mark.parametrize(("files", "pack"), [
    ({"environment.yml": "dependencies: [six]", "requirements.txt": "idna"}, "conda"),
    ({"environment.yml": "dependencies: [six]", "Pipfile": "[packages]\nidna='*'"}, "conda"),
    ({"Pipfile": "[packages]\nsix='*'", "requirements.txt": "idna"}, "pipfile"),
    ({"runtime.txt": "r-2023-01-01", "environment.yml": "dependencies: [six]"}, "r"),
    ({"DESCRIPTION": "Package: x\nImports: jsonlite\n", "requirements.txt": "six"}, "r"),
    ({"requirements.txt": "six"}, "python"),
    ({"README.md": "nothing to configure"}, "python"),  # the default pack
    ({"runtime.txt": "python-3.11"}, "python"),
    ({"runtime.txt": "r-4.2", "requirements.txt": "six"}, "python"),  # R needs a date (or DESCRIPTION)
])
def test_order_of_precedence(files: dict[str, str], pack: str) -> None:
    assert detect(files).buildpack == pack


def test_conda_pack_ignores_requirements_txt_and_says_so() -> None:
    d = detect({"environment.yml": "dependencies:\n  - six=1.16\n", "requirements.txt": "idna\n"})
    assert d.spec(base="b")["python"]["requirements"] == ["six==1.16.*"]
    assert any("requirements.txt is ignored" in n for n in d.mapped.notes)


def test_r_pack_also_reads_requirements_and_environment_like_repo2docker() -> None:
    d = detect({"runtime.txt": "r-4.2-2023-01-01", "requirements.txt": "six\n",
                "install.R": 'install.packages("jsonlite")'})
    spec = d.spec(base="b")
    assert spec["r"] == {"packages": ["jsonlite"]} and spec["python"]["requirements"] == ["six"]
    assert "r-base-core" in spec["apt"]
    assert any("not honoured" in n and "2023-01-01" in n for n in d.mapped.notes)


def test_install_r_without_r_pack_is_ignored_as_repo2docker_does() -> None:
    d = detect({"install.R": 'install.packages("jsonlite")', "requirements.txt": "six"})
    assert "r" not in d.spec(base="b") and any("install.R is ignored" in n for n in d.mapped.notes)


# --- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("files", "named", "needle"), [
    ({"Dockerfile": "FROM busybox", "requirements.txt": "six"}, "Dockerfile", "Dockerfile cannot be honoured"),
    ({"binder/Dockerfile": "FROM busybox"}, "binder/Dockerfile", "Dockerfile"),
    ({"Dockerfile": "FROM andrewosh/binder-base"}, "Dockerfile", "legacy"),
    ({"default.nix": "{}"}, "default.nix", "Nix"),
    ({"Project.toml": "[deps]"}, "Project.toml", "Julia"),
    ({"binder/REQUIRE": "julia 0.6"}, "binder/REQUIRE", "Julia"),
    ({"environment.yml": "dependencies: [python=3.11, mkl]"}, "environment.yml", "conda-only"),
    ({"requirements.txt": "--index-url https://example.invalid/simple\nsix"}, "requirements.txt", "indexes"),
    ({"requirements.txt": "git+https://example.invalid/x.git"}, "requirements.txt", "version control"),
    ({"requirements.txt": "-r missing.txt"}, "requirements.txt", "not in the repository"),
    ({"runtime.txt": "python-2.7", "requirements.txt": "six"}, "runtime.txt", "Python 2"),
    ({"runtime.txt": "r-2023-01-01", "install.R": 'remotes::install_github("a/b")'}, "install.R", "GitHub"),
    ({"Pipfile": "[packages]\nx = {git = 'https://example.invalid/x.git'}"}, "Pipfile", "sources"),
    ({"runtime.txt": "python-3.8", "pyproject.toml":
      "[project]\nname='x'\nversion='1'\nrequires-python='>=3.10'\n[build-system]\nrequires=['setuptools']"},
     "runtime.txt", "requires-python"),
])
def test_what_cannot_be_honoured_is_named(files: dict[str, str], named: str, needle: str) -> None:
    problems = refusal(files)
    assert any(f == named and needle in reason for f, reason in problems), problems


def test_every_problem_is_named_not_only_the_first() -> None:
    problems = refusal({"requirements.txt": "git+https://example.invalid/a.git\n-i https://example.invalid/simple\n"})
    assert len(problems) == 2


# --- runtime.txt grammar ------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "name", "version", "date"), [
    ("python-3.11", "python", "3.11", None),
    ("r-4.2-2023-06-01", "r", "4.2", "2023-06-01"),
    ("r-2023-06-01", "r", None, "2023-06-01"),
    ("python-3\n", "python", "3", None),
])
def test_runtime_grammar(text: str, name: str, version: str | None, date: str | None) -> None:
    rt = parse_runtime(text)
    assert (rt.name, rt.version, str(rt.date) if rt.date else None) == (name, version, date)


@pytest.mark.parametrize("text", ["python", "python-", "r-4.2-2023-06", "r-4.2-2023-13-01", "a-b-c-d-e-f"])
def test_runtime_grammar_refusals(text: str) -> None:
    with pytest.raises(ImportRefused) as info:
        parse_runtime(text)
    assert info.value.problems[0][0] == "runtime.txt"


def test_runtime_python_major_only_means_the_default() -> None:
    assert "version" not in detect({"runtime.txt": "python-3", "requirements.txt": "six"}).spec(base="b")["python"]


# --- file kinds -----------------------------------------------------------------------------------


def test_requirements_includes_options_and_local_project() -> None:
    d = detect({"requirements.txt": "-r more.txt\nsix==1.16.0 --hash=sha256:abc \\\n  --hash=sha256:def\n-e .\n",
                "more.txt": "idna>=3 ; python_version >= '3.8'  # comment\n"})
    spec = d.spec(base="b")
    assert spec["python"]["requirements"][:2] == ['idna>=3; python_version >= "3.8"', "six==1.16.0"]
    assert spec["build_steps"][0]["user"] == "root" and "pip install" in spec["build_steps"][0]["run"]


def test_pipfile_lock_is_preferred_and_pins_default_and_develop() -> None:
    lock = ('{"_meta": {"requires": {"python_version": "3.11"}}, "default": {"six": {"version": "==1.16.0", '
            '"hashes": ["sha256:x"]}}, "develop": {"idna": {"version": "==3.7", '
            '"markers": "python_version >= \'3\'"}}}')
    d = detect({"Pipfile": "[packages]\nrequests='*'", "Pipfile.lock": lock})
    spec = d.spec(base="b")
    assert spec["python"] == {"version": "3.11",
                              "requirements": ["six==1.16.0", 'idna==3.7; python_version >= "3"']}


def test_pipfile_sections_versions_and_python() -> None:
    d = detect({"Pipfile": "[packages]\nsix = '*'\nidna = {version = '>=3', extras = []}\n[dev-packages]\n"
                           "pytest = '==8.0'\n[requires]\npython_version = '3.11'\n"})
    assert d.spec(base="b")["python"] == {"version": "3.11", "requirements": ["six", "idna>=3", "pytest==8.0"]}


def test_pyproject_project_is_installed_with_its_build_backend() -> None:
    d = detect({"pyproject.toml": "[build-system]\nrequires=['hatchling']\n[project]\nname='x'\nversion='1'\n"
                                  "dependencies=['six']\n"})
    spec = d.spec(base="b")
    assert spec["python"]["requirements"] == ["six", "hatchling", "pip"]
    assert spec["build_steps"] == [{"run": spec["build_steps"][0]["run"], "user": "root"}]


def test_pyproject_without_build_system_is_not_a_package() -> None:
    d = detect({"pyproject.toml": "[project]\nname='x'\nversion='1'\n", "requirements.txt": "six"})
    assert "build_steps" not in d.spec(base="b")


def test_environment_yml_maps_python_pip_apt_r_and_names_the_approximations() -> None:
    d = detect({"environment.yml": "channels: [bioconda]\ndependencies:\n  - python=3.11.4\n  - numpy=1.26\n"
                                   "  - pytorch>=2\n  - nodejs\n  - r-ggplot2\n  - pip:\n    - six==1.16.0\n"})
    spec = d.spec(base="b")
    assert spec["python"] == {"version": "3.11", "requirements": ["numpy==1.26.*", "torch>=2", "six==1.16.0"]}
    assert spec["apt"] == ["nodejs"] and spec["r"] == {"packages": ["ggplot2"]}
    notes = " ".join(d.mapped.notes)
    assert "bioconda" in notes and "torch" in notes and "r-ggplot2" in notes


def test_install_r_reads_literal_install_packages_calls() -> None:
    d = detect({"runtime.txt": "r-2023-01-01", "install.R":
                "# deps\ninstall.packages(c('dplyr', \"tidyr\"), repos = 'https://cloud.r-project.org')\n"
                "install.packages('jsonlite')\nlibrary(dplyr)\n"})
    assert d.spec(base="b")["r"] == {"packages": ["dplyr", "tidyr", "jsonlite"]}


def test_description_dependencies_and_package_install() -> None:
    d = detect({"DESCRIPTION": "Package: demo\nDepends: R (>= 4.0), stats\nImports: jsonlite (>= 1.0),\n"
                               "    digest\nSuggests: testthat\n"})
    spec = d.spec(base="b")
    assert spec["r"] == {"packages": ["jsonlite", "digest"]}
    assert spec["build_steps"] == [{"run": "R CMD INSTALL --no-test-load .", "user": "root"}]


def test_apt_postbuild_start_from_any_pack() -> None:
    d = detect({"environment.yml": "dependencies: [six]", "apt.txt": "# tools\ncurl\njq # json\n",
                "postBuild": "#!/bin/sh\necho hi", "start": "#!/bin/sh\nexec \"$@\""})
    spec = d.spec(base="b", repository_digest="sha256:" + "a" * 64)
    assert spec["apt"] == ["curl", "jq"] and spec["start"] == "start"
    assert spec["build_steps"] == [{"run": "chmod +x postBuild && ./postBuild", "user": "student"}]
    assert spec["repository"] == {"digest": "sha256:" + "a" * 64}


def test_apt_txt_refuses_what_is_not_a_package_name() -> None:
    assert refusal({"apt.txt": "curl; rm -rf /\n"})[0][0] == "apt.txt"


# --- the fixture folders, read from disk and from archives ----------------------------------------

FIXTURES = {
    "venv-requirements": "python", "binder-dir": "python", "dotbinder-dir": "python", "runtime-python": "python",
    "pipfile-lock": "pipfile", "pyproject-project": "python", "conda-environment": "conda", "r-install-R": "r",
}
REFUSED = {"refuse-dockerfile": "Dockerfile", "refuse-nix": "binder/default.nix", "refuse-julia": "Project.toml",
           "refuse-conda-only": "environment.yml", "refuse-both-binder-dirs": ".binder, binder"}


def test_every_fixture_folder_is_covered() -> None:
    assert {p.name for p in REPOS.iterdir() if p.is_dir()} == set(FIXTURES) | set(REFUSED)
    for name in FIXTURES:
        assert (REPOS / name / "verify").stat().st_mode & 0o111, f"{name}/verify must be executable"


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_detection(name: str) -> None:
    assert detect_repository(read_directory(REPOS / name)).buildpack == FIXTURES[name]


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_fixture_refusals(name: str) -> None:
    with pytest.raises(ImportRefused) as info:
        detect_repository(read_directory(REPOS / name))
    assert info.value.problems[0][0] == REFUSED[name]


def _targz(members: dict[str, bytes], prefix: str = "") -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(prefix + name)
            info.size, info.mode = len(data), 0o755 if name.endswith("postBuild") else 0o644
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_archive_single_top_folder_is_the_root_and_git_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "repo.tar.gz"
    path.write_bytes(_targz({"binder/postBuild": b"echo", "requirements.txt": b"six", ".git/config": b"x"},
                            prefix="project-main/"))
    tree = read_archive(path)
    assert set(tree.files) == {"binder/postBuild", "requirements.txt"}
    assert tree.executable == {"binder/postBuild"}


def test_archive_holding_only_a_binder_folder_keeps_it(tmp_path: Path) -> None:
    path = tmp_path / "repo.tar.gz"
    path.write_bytes(_targz({"binder/default.nix": b"{}"}))
    assert set(read_archive(path).files) == {"binder/default.nix"}


def test_canonical_tar_depends_on_content_only(tmp_path: Path) -> None:
    a = tmp_path / "a.tar.gz"
    b = tmp_path / "b.tar.gz"
    a.write_bytes(_targz({"x/y.txt": b"1", "postBuild": b"echo"}))
    b.write_bytes(_targz({"postBuild": b"echo", "x/y.txt": b"1"}, prefix="other-top/"))
    first, second = canonical_tar(read_archive(a)), canonical_tar(read_archive(b))
    assert first == second
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        members = {m.name: m for m in tar}
    assert {m.uid for m in members.values()} == {1000} and {m.mtime for m in members.values()} == {0}
    assert members["postBuild"].mode == 0o755 and members["x/y.txt"].mode == 0o644 and members["x"].isdir()
    c = tmp_path / "c.tar.gz"
    c.write_bytes(_targz({"x/y.txt": b"2", "postBuild": b"echo"}))
    assert canonical_tar(read_archive(c)) != first
