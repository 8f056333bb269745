"""repo2docker's build packs as detectors: the first whose ``detect()`` is true maps the repository.

The order and each ``detect()`` follow repo2docker (``app.py``'s ``buildpacks`` list, then the
Python default): Dockerfile, Julia (Project.toml, REQUIRE), Nix, R, conda, Pipfile, Python. As there,
the packs are a hierarchy whose ``contribute`` hooks add up: every pack honours ``apt.txt``,
``postBuild`` and ``start``; Python, Pipfile and R also read ``environment.yml`` through the conda
pack they extend; R also reads what the Python pack does. The first four cannot be honoured (a
locked image from an arbitrary Dockerfile or a Nix/Julia toolchain), so detecting them refuses.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from . import formats, renv
from .formats import Mapped, Runtime
from .tree import ImportRefused, RepoTree

REPO_DIR = "/home/student"
"""Where the repository's files go: the user's home, as repo2docker's default ``REPO_DIR=${HOME}``."""


class Detector(ABC):
    """One build pack: ``detect`` decides whether it applies, ``contribute`` maps its files."""

    name: ClassVar[str]

    @abstractmethod
    def detect(self, tree: RepoTree, runtime: Runtime) -> bool: ...

    def contribute(self, tree: RepoTree, runtime: Runtime, mapped: Mapped) -> None:
        """The base pack's files, honoured whatever pack is picked."""
        if tree.has("apt.txt"):
            path = tree.binder_path("apt.txt")
            mapped.used.append(path)
            for line in tree.text(path).splitlines():
                package = line.partition("#")[0].strip()
                if not package:
                    continue
                # a name, or name=version (repo2docker passes the line to apt-get install as is)
                if not re.match(r"^[a-z0-9][a-z0-9.+-]+(?:=[0-9][A-Za-z0-9.+~:-]*)?$", package):
                    mapped.problems.append((path, f"{package!r} is not a Debian package name"))
                elif package not in mapped.apt:
                    mapped.apt.append(package)
        if tree.has("runtime.txt"):
            mapped.used.append(tree.binder_path("runtime.txt"))
        if tree.has("postBuild"):
            path = tree.binder_path("postBuild")
            mapped.used.append(path)
            mapped.steps.append(formats.script_step(path))
        if tree.has("start"):
            path = tree.binder_path("start")
            mapped.used.append(path)
            mapped.start = path
        if tree.binder_dir:
            config = ("requirements.txt", "environment.yml", "environment.yaml", "Pipfile", "Pipfile.lock", "apt.txt",
                      "runtime.txt", "postBuild", "start", "install.R", "setup.py", "pyproject.toml", "DESCRIPTION")
            at_root = [f for f in config if tree.has_root(f)]
            if at_root:
                mapped.notes.append(f"{', '.join(at_root)} at the root ignored: the {tree.binder_dir}/ folder is "
                                    "used instead, as repo2docker does")
        for ignored in ("requirements3.txt", "install.R", "environment.yml", "Pipfile", "requirements.txt"):
            if tree.has(ignored) and tree.binder_path(ignored) not in mapped.used and not self._reads(ignored):
                mapped.notes.append(f"{tree.binder_path(ignored)} is ignored, as repo2docker's {self.name} pack "
                                    "ignores it")

    def _reads(self, filename: str) -> bool:
        return False


class Refusing(Detector):
    """A pack whose environment cannot be locked; detecting it answers 422 naming the file."""

    files: ClassVar[tuple[str, ...]]
    reason: ClassVar[str]

    def detect(self, tree: RepoTree, runtime: Runtime) -> bool:
        return any(tree.has(f) for f in self.files)

    def contribute(self, tree: RepoTree, runtime: Runtime, mapped: Mapped) -> None:
        found = [tree.binder_path(f) for f in self.files if tree.has(f)]
        mapped.problems.append((", ".join(found), self.reason))


class LegacyDockerDetector(Detector):
    name = "legacy"

    def detect(self, tree: RepoTree, runtime: Runtime) -> bool:
        return tree.has_root("Dockerfile") and "andrewosh/binder-base" in tree.text("Dockerfile").lower()

    def contribute(self, tree: RepoTree, runtime: Runtime, mapped: Mapped) -> None:
        mapped.problems.append(("Dockerfile", "the legacy binder-base image is gone (repo2docker removed it in 2020); "
                                              "describe the environment with requirements.txt or environment.yml"))


class DockerDetector(Refusing):
    name = "docker"
    files = ("Dockerfile",)
    reason = ("a Dockerfile cannot be honoured: Reprolab builds locked, reproducible images from declared "
              "packages; remove it or move it out of the way and declare the packages instead")


class JuliaProjectDetector(Refusing):
    name = "julia"
    files = ("Project.toml", "JuliaProject.toml")
    reason = "Julia environments are not supported: Reprolab offers Python and R"


class JuliaRequireDetector(Detector):
    name = "julia_require"

    def detect(self, tree: RepoTree, runtime: Runtime) -> bool:
        return tree.has("REQUIRE") and not (tree.has("Project.toml") or tree.has("JuliaProject.toml"))

    def contribute(self, tree: RepoTree, runtime: Runtime, mapped: Mapped) -> None:
        mapped.problems.append((tree.binder_path("REQUIRE"), "Julia (REQUIRE) environments are not supported"))


class NixDetector(Refusing):
    name = "nix"
    files = ("default.nix",)
    reason = "Nix environments are not supported: declare the packages with apt.txt or requirements.txt"


class CondaDetector(Detector):
    name = "conda"

    @staticmethod
    def environment_yml(tree: RepoTree) -> str | None:
        for filename in ("environment.yml", "environment.yaml"):
            if tree.has(filename):
                return tree.binder_path(filename)
        return None

    def detect(self, tree: RepoTree, runtime: Runtime) -> bool:
        return self.environment_yml(tree) is not None

    def _reads(self, filename: str) -> bool:
        return filename == "environment.yml"

    def contribute(self, tree: RepoTree, runtime: Runtime, mapped: Mapped) -> None:
        super().contribute(tree, runtime, mapped)
        path = self.environment_yml(tree)
        if path:
            formats.parse_environment_yml(tree, path, mapped)
        if runtime.name == "python" and runtime.version and type(self) is CondaDetector:
            mapped.notes.append("runtime.txt's Python is not read by the conda pack (repo2docker takes it from "
                                "environment.yml)")


class PipfileDetector(CondaDetector):
    name = "pipfile"

    def detect(self, tree: RepoTree, runtime: Runtime) -> bool:
        if runtime.name and runtime.name != "python":
            return False
        return tree.has("Pipfile") or tree.has("Pipfile.lock")

    def _reads(self, filename: str) -> bool:
        return filename in ("Pipfile", "environment.yml")

    def contribute(self, tree: RepoTree, runtime: Runtime, mapped: Mapped) -> None:
        super().contribute(tree, runtime, mapped)
        mapped.python_version = formats.pipfile_python(tree) or mapped.python_version
        if formats.parse_pipfile(tree, mapped):
            mapped.steps.append({"run": formats.PROJECT_INSTALL, "user": "root"})
            mapped.add_requirement("pip")
            mapped.add_requirement("setuptools")


class PythonDetector(CondaDetector):
    name = "python"

    def detect(self, tree: RepoTree, runtime: Runtime) -> bool:
        if runtime.name:
            return runtime.name == "python"
        return formats.is_python_package(tree) or tree.has("requirements.txt")

    def _reads(self, filename: str) -> bool:
        return filename in ("requirements.txt", "environment.yml")

    def python_version(self, tree: RepoTree, runtime: Runtime) -> str | None:
        if runtime.name == "python" and runtime.version:
            return formats.python_version_of(runtime.version, tree.binder_path("runtime.txt"))
        return None

    def contribute(self, tree: RepoTree, runtime: Runtime, mapped: Mapped) -> None:
        super().contribute(tree, runtime, mapped)
        version = self.python_version(tree, runtime)
        mapped.python_version = version or mapped.python_version
        local = False
        if tree.has("requirements.txt"):
            local = formats.parse_requirements(tree, tree.binder_path("requirements.txt"), mapped)
        if formats.is_python_package(tree):
            formats.map_project(tree, mapped, version)
        elif local:
            mapped.add_requirement("pip")
            mapped.add_requirement("setuptools")
            mapped.steps.append({"run": formats.PROJECT_INSTALL, "user": "root"})


class RDetector(PythonDetector):
    name = "r"

    def detect(self, tree: RepoTree, runtime: Runtime) -> bool:
        if runtime.name == "r" and runtime.date:
            return True
        return tree.has("renv.lock") or (not tree.binder_dir and tree.has_root("DESCRIPTION"))

    def _reads(self, filename: str) -> bool:
        return filename in ("requirements.txt", "environment.yml", "install.R")

    def python_version(self, tree: RepoTree, runtime: Runtime) -> str | None:
        return None  # runtime.txt names R, so Python is the default (as repo2docker)

    def contribute(self, tree: RepoTree, runtime: Runtime, mapped: Mapped) -> None:
        super().contribute(tree, runtime, mapped)
        if "r-base-core" not in mapped.apt and not tree.has("renv.lock"):  # renv's R section brings R itself
            mapped.apt.append("r-base-core")
        if runtime.name == "r":
            wanted = [f"R {runtime.version}"] if runtime.version else []
            wanted += [f"the CRAN snapshot of {runtime.date}"] if runtime.date else []
            if wanted:
                mapped.notes.append(f"runtime.txt: {' and '.join(wanted)} not honoured: R and its packages come "
                                    "from the base image's Debian archive (r-base-core, r-cran-*), locked at exact "
                                    "versions")
        if tree.has("renv.lock"):  # exact versions and the repository (importer/renv.py)
            path = tree.binder_path("renv.lock")
            mapped.used.append(path)
            section, problems = renv.r_section(tree.text(path), path)
            mapped.problems.extend(problems)
            mapped.r_repository, mapped.r_version = section.get("repository"), section.get("version")
            locked = {p.split("==")[0] for p in section.get("packages", [])}
            mapped.r_packages[:] = [p for p in mapped.r_packages if p not in locked]
            for p in section.get("packages", []):
                mapped.add_r(p)
        if tree.has("install.R"):
            formats.parse_install_r(tree, tree.binder_path("install.R"), mapped)
        if not tree.binder_dir and tree.has_root("DESCRIPTION"):
            formats.parse_description(tree, mapped)


DETECTORS: tuple[type[Detector], ...] = (LegacyDockerDetector, DockerDetector, JuliaProjectDetector,
                                         JuliaRequireDetector, NixDetector, RDetector, CondaDetector,
                                         PipfileDetector, PythonDetector)
DEFAULT = PythonDetector


@dataclass(frozen=True)
class Detection:
    """What a repository maps to: the pack picked, the spec's parts, the files read and the notes."""

    buildpack: str
    binder_dir: str
    mapped: Mapped

    def spec(self, *, base: str, repository_digest: str | None = None) -> dict[str, Any]:
        m = self.mapped
        spec: dict[str, Any] = {"base": base}
        python: dict[str, Any] = {}
        if m.python_version:
            python["version"] = m.python_version
        if m.requirements:
            python["requirements"] = list(m.requirements)
        if python:
            spec["python"] = python
        if m.r_packages or m.r_repository or m.r_version:
            spec["r"] = {k: v for k, v in (("packages", list(m.r_packages)), ("repository", m.r_repository),
                                           ("version", m.r_version)) if v}
        if m.apt:
            spec["apt"] = sorted(m.apt)
        if repository_digest:
            spec["repository"] = {"digest": repository_digest}
        if m.steps:
            spec["build_steps"] = list(m.steps)
        if m.start:
            spec["start"] = m.start
        return spec


def detect_repository(tree: RepoTree) -> Detection:
    """Pick the pack as repo2docker does and map the repository; ``ImportRefused`` names every problem."""
    runtime = Runtime()
    if tree.has("runtime.txt"):
        runtime = formats.parse_runtime(tree.text(tree.binder_path("runtime.txt")), tree.binder_path("runtime.txt"))
    picked: Detector = DEFAULT()
    for cls in DETECTORS:
        candidate = cls()
        if candidate.detect(tree, runtime):
            picked = candidate
            break
    mapped = Mapped()
    picked.contribute(tree, runtime, mapped)
    if mapped.problems:
        raise ImportRefused(mapped.problems)
    return Detection(buildpack=picked.name, binder_dir=tree.binder_dir, mapped=mapped)
