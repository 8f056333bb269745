"""Parsers of the configuration files repo2docker reads, each returning plain data.

Each parser reports what it cannot map instead of dropping it: fatal problems as ``(file, reason)``
pairs (the import answers 422 naming them) and softer ones as notes shown with the result.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from typing import Any

import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet

from .tree import ImportRefused, RepoTree


@dataclass
class Mapped:
    """What a set of files maps to; detectors add to one ``Mapped`` in repo2docker's order."""

    python_version: str | None = None
    requirements: list[str] = field(default_factory=list)
    apt: list[str] = field(default_factory=list)
    r_packages: list[str] = field(default_factory=list)
    r_repository: str | None = None  # from renv.lock (importer/renv.py)
    r_version: str | None = None
    steps: list[dict[str, str]] = field(default_factory=list)
    start: str | None = None
    used: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)

    def add_requirement(self, req: str) -> None:
        if req not in self.requirements:
            self.requirements.append(req)

    def add_r(self, name: str) -> None:
        if name.split("==")[0] not in {p.split("==")[0] for p in self.r_packages}:
            self.r_packages.append(name)


# ---------------------------------------------------------------------------------------------
# runtime.txt: name-version, name-version-YYYY-MM-DD or name-YYYY-MM-DD (repo2docker's grammar)


@dataclass(frozen=True)
class Runtime:
    name: str | None = None
    version: str | None = None
    date: dt.date | None = None


def parse_runtime(text: str, path: str = "runtime.txt") -> Runtime:
    raw = text.strip()
    parts = raw.split("-")
    if len(parts) not in (2, 4, 5) or any(not p for p in parts):
        raise ImportRefused([(path, f"{raw!r} is not valid: use name-version, name-version-YYYY-MM-DD or "
                                    "name-YYYY-MM-DD (e.g. 'python-3.11' or 'r-4.2-2023-01-15')")])
    version = parts[1] if len(parts) in (2, 5) else None
    date = None
    if len(parts) in (4, 5):
        text_date = "-".join(parts[-3:])
        if not re.match(r"\d\d\d\d-\d\d-\d\d", text_date):
            raise ImportRefused([(path, f"{text_date!r} is not a date YYYY-MM-DD")])
        try:
            date = dt.date.fromisoformat(text_date)
        except ValueError:
            raise ImportRefused([(path, f"{text_date!r} is not a calendar date")]) from None
    return Runtime(parts[0], version, date)


def python_version_of(version: str, path: str) -> str | None:
    """``3`` → None (the base's default Python 3, as repo2docker's major default), ``3.11.4`` → ``3.11``."""
    if not re.fullmatch(r"\d+(\.\d+)*", version):
        raise ImportRefused([(path, f"{version!r} is not a Python version")])
    parts = version.split(".")
    if parts[0] == "2":
        raise ImportRefused([(path, "Python 2 is not offered: Reprolab builds Python 3 environments only")])
    if parts[0] != "3":
        raise ImportRefused([(path, f"Python {version} does not exist")])
    return None if len(parts) == 1 else ".".join(parts[:2])


# ---------------------------------------------------------------------------------------------
# pip requirements files


_INDEX_OPTIONS = ("-i", "--index-url", "--extra-index-url", "-f", "--find-links", "--trusted-host", "--no-index")
_LOCAL = re.compile(r"^(-e\s+|--editable[ =]\s*)?(\.|\./?|file:\.?/?)(\[[^\]]*\])?$")


def is_local_project(line: str) -> bool:
    """``.``, ``-e .``, ``./`` or ``file:.``: the repository itself (repo2docker stages the repo first)."""
    return bool(_LOCAL.match(line.strip()))


def _logical_lines(text: str) -> list[str]:
    out: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.rstrip()
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        stripped = re.sub(r"(^|\s)#.*$", "", current).strip()
        if stripped:
            out.append(stripped)
        current = ""
    if current.strip():
        out.append(current.strip())
    return out


def parse_requirements(tree: RepoTree, path: str, mapped: Mapped, *, _seen: set[str] | None = None) -> bool:
    """Add a requirements file's requirements to ``mapped``; True when it installs the repository itself."""
    seen = _seen if _seen is not None else set()
    if path in seen:
        return False
    seen.add(path)
    mapped.used.append(path)
    local = False
    folder = path.rpartition("/")[0]
    for line in _logical_lines(tree.text(path)):
        if is_local_project(line):
            local = True
            continue
        if line.startswith(("-r ", "--requirement", "-c ", "--constraint")):
            option, _, target = line.partition(" ") if " " in line else line.partition("=")
            target = target.strip().lstrip("=").strip()
            inner = f"{folder}/{target}" if folder else target
            if option in ("-c", "--constraint"):
                mapped.problems.append((path, f"constraints files ({line!r}) are not supported by import: "
                                              "pin the versions in the requirements file instead"))
            elif inner not in tree.files:
                mapped.problems.append((path, f"{line!r} names a file that is not in the repository"))
            else:
                local |= parse_requirements(tree, inner, mapped, _seen=seen)
            continue
        if line.startswith(_INDEX_OPTIONS):
            mapped.problems.append((path, f"{line.split()[0]!r}: package indexes other than PyPI are not "
                                          "supported by import in a requirements file (a URL here could carry a "
                                          "password into the spec); remove the option and add the index to the "
                                          "workspace instead (`reprolab index set WS NAME URL`)"))
            continue
        if line.startswith("-"):
            if line.startswith("--hash") or line.startswith("--pre"):
                continue
            mapped.problems.append((path, f"pip option {line.split()[0]!r} is not supported by import"))
            continue
        req_text = re.sub(r"\s--hash[= ]\S+", "", line).strip()
        if re.match(r"^(git|hg|svn|bzr)\+", req_text) or "://" in req_text and " @ " not in req_text:
            mapped.problems.append((path, f"{req_text!r}: requirements from version control or a URL cannot be "
                                          "locked by hash from an index; publish a wheel or pin a PyPI release"))
            continue
        try:
            req = Requirement(req_text)
        except InvalidRequirement as exc:
            mapped.problems.append((path, f"{req_text!r} is not a valid requirement: {exc}"))
            continue
        if req.url:
            mapped.problems.append((path, f"{req_text!r}: direct URL requirements are not supported by import; "
                                          "pin a release from PyPI"))
            continue
        mapped.add_requirement(str(req))
    return local


# ---------------------------------------------------------------------------------------------
# Pipfile and Pipfile.lock (repo2docker runs ``pipenv install --system --dev``: both sections)


_PYPI_HOSTS = ("https://pypi.org/simple", "https://pypi.python.org/simple")


def _pipfile_entry(name: str, value: Any, path: str, mapped: Mapped) -> bool:
    """One ``[packages]`` entry; True when it is the repository itself (``{path = "."}``)."""
    if isinstance(value, str):
        spec = "" if value.strip() in ("*", "") else value.strip()
        extras, markers = [], None
    elif isinstance(value, dict):
        if value.get("path") in (".", "./"):
            return True
        for key in ("git", "hg", "svn", "file", "path", "ref"):
            if key in value:
                mapped.problems.append((path, f"{name}: {key!r} sources cannot be locked by hash from an index; "
                                              "pin a PyPI release"))
                return False
        if value.get("index") not in (None, "pypi"):
            mapped.problems.append((path, f"{name}: index {value['index']!r} is not supported by import yet "
                                          "(only PyPI)"))
            return False
        spec = "" if value.get("version", "*") in ("*", "") else str(value["version"])
        extras, markers = list(value.get("extras", [])), value.get("markers")
    else:
        mapped.problems.append((path, f"{name}: {value!r} is not a version or table"))
        return False
    text = name + (f"[{','.join(extras)}]" if extras else "") + spec + (f"; {markers}" if markers else "")
    try:
        mapped.add_requirement(str(Requirement(text)))
    except InvalidRequirement as exc:
        mapped.problems.append((path, f"{name}: {text!r} is not a valid requirement: {exc}"))
    return False


def parse_pipfile(tree: RepoTree, mapped: Mapped) -> bool:
    """Map ``Pipfile.lock`` (preferred, as ``pipenv install --ignore-pipfile``) or ``Pipfile``."""
    lock_path, pipfile_path = tree.binder_path("Pipfile.lock"), tree.binder_path("Pipfile")
    local = False
    if lock_path in tree.files:
        mapped.used.append(lock_path)
        try:
            doc = json.loads(tree.text(lock_path))
        except json.JSONDecodeError as exc:
            raise ImportRefused([(lock_path, f"is not valid JSON: {exc}")]) from None
        for source in doc.get("_meta", {}).get("sources", []):
            if source.get("url", "").rstrip("/") not in _PYPI_HOSTS:
                mapped.problems.append((lock_path, f"source {source.get('url')!r}: only PyPI is supported by "
                                                   "import yet"))
        for section in ("default", "develop"):
            for name, entry in sorted(doc.get(section, {}).items()):
                entry = dict(entry)
                entry.pop("hashes", None)
                entry.pop("index", None)
                local |= _pipfile_entry(name, entry, lock_path, mapped)
        return local
    mapped.used.append(pipfile_path)
    try:
        doc = tomllib.loads(tree.text(pipfile_path))
    except tomllib.TOMLDecodeError as exc:
        raise ImportRefused([(pipfile_path, f"is not valid TOML: {exc}")]) from None
    for source in doc.get("source", []):
        if source.get("url", "").rstrip("/") not in _PYPI_HOSTS:
            mapped.problems.append((pipfile_path, f"source {source.get('url')!r}: only PyPI is supported by "
                                                  "import yet"))
    for section in ("packages", "dev-packages"):
        for name, value in doc.get(section, {}).items():
            local |= _pipfile_entry(name, value, pipfile_path, mapped)
    return local


def pipfile_python(tree: RepoTree) -> str | None:
    """The Python version a Pipfile.lock or Pipfile requires (``python_full_version`` first)."""
    sources = []
    lock_path, pipfile_path = tree.binder_path("Pipfile.lock"), tree.binder_path("Pipfile")
    if lock_path in tree.files:
        try:
            sources.append((lock_path, json.loads(tree.text(lock_path)).get("_meta", {}).get("requires", {})))
        except json.JSONDecodeError:
            pass
    if pipfile_path in tree.files:
        try:
            sources.append((pipfile_path, tomllib.loads(tree.text(pipfile_path)).get("requires", {})))
        except tomllib.TOMLDecodeError:
            pass
    for path, requires in sources:
        for key in ("python_full_version", "python_version"):
            m = re.match(r"\d+(\.\d+)*", str(requires.get(key) or ""))
            if m:
                return python_version_of(m.group(), path)
    return None


# ---------------------------------------------------------------------------------------------
# pyproject.toml / setup.py: the repository is a Python project, installed into the image


def pyproject(tree: RepoTree) -> dict[str, Any]:
    if "pyproject.toml" not in tree.files:
        return {}
    try:
        return tomllib.loads(tree.text("pyproject.toml"))
    except tomllib.TOMLDecodeError as exc:
        raise ImportRefused([("pyproject.toml", f"is not valid TOML: {exc}")]) from None


def is_python_package(tree: RepoTree) -> bool:
    """repo2docker's rule: only without a binder folder; setup.py, or pyproject with project + build-system."""
    if tree.binder_dir:
        return False
    if tree.has_root("setup.py"):
        return True
    doc = pyproject(tree)
    return "project" in doc and "build-system" in doc


PROJECT_INSTALL = ("python3 -m pip install --no-cache-dir --no-build-isolation --root-user-action=ignore "
                   "--break-system-packages --disable-pip-version-check .")


def map_project(tree: RepoTree, mapped: Mapped, runtime_version: str | None) -> None:
    """The project's declared dependencies and build requirements are locked like any requirement
    (so the image has its build backend and pip); installing the project itself is a build step."""
    doc = pyproject(tree)
    if doc:
        mapped.used.append("pyproject.toml")
    if tree.has_root("setup.py"):
        mapped.used.append("setup.py")
    requires = doc.get("build-system", {}).get("requires") or (["setuptools"] if tree.has_root("setup.py") else [])
    for dep in [*doc.get("project", {}).get("dependencies", []), *requires, "pip"]:
        try:
            mapped.add_requirement(str(Requirement(dep)))
        except InvalidRequirement as exc:
            mapped.problems.append(("pyproject.toml", f"{dep!r} is not a valid requirement: {exc}"))
    requires_python = doc.get("project", {}).get("requires-python")
    if requires_python and runtime_version:
        try:
            if runtime_version not in SpecifierSet(requires_python):
                mapped.problems.append(("runtime.txt", f"python-{runtime_version} is not allowed by pyproject.toml's "
                                                       f"requires-python {requires_python!r}"))
        except InvalidSpecifier:
            mapped.problems.append(("pyproject.toml", f"requires-python {requires_python!r} is not a specifier"))
    if tree.has_root("setup.py") and not doc.get("project", {}).get("dependencies"):
        mapped.notes.append("setup.py: install_requires is not read statically; what the project needs beyond the "
                            "locked requirements is fetched from PyPI when the project is installed (a build step)")
    mapped.steps.append({"run": PROJECT_INSTALL, "user": "root"})


# ---------------------------------------------------------------------------------------------
# environment.yml (conda): the parts that map to pip, apt and R; the rest is named


# conda packages that are not Python packages but have a Debian package of the same purpose
CONDA_TO_APT = {"git": "git", "make": "make", "cmake": "cmake", "nodejs": "nodejs", "graphviz": "graphviz",
                "curl": "curl", "wget": "wget", "unzip": "unzip", "zip": "zip", "pandoc": "pandoc",
                "ffmpeg": "ffmpeg", "gdal": "gdal-bin", "openjdk": "default-jdk-headless", "sqlite": "sqlite3",
                "r-base": "r-base-core", "r-essentials": "r-base-core", "gcc": "gcc", "gxx": "g++",
                "gfortran": "gfortran", "c-compiler": "gcc", "cxx-compiler": "g++", "fortran-compiler": "gfortran"}
# conda-only packages: runtime libraries and toolchains with no PyPI or Debian counterpart we would trust
CONDA_ONLY = {"cudatoolkit", "cuda-toolkit", "cudnn", "nccl", "mkl", "mkl-service", "mkl_fft", "mkl_random",
              "libblas", "libcblas", "liblapack", "blas", "intel-openmp", "libgcc-ng", "libstdcxx-ng",
              "_libgcc_mutex", "_openmp_mutex", "conda", "conda-build", "mamba", "anaconda", "nomkl",
              "python_abi", "ca-certificates", "openssl", "libffi", "ncurses", "readline", "tk", "xz", "zlib"}
# conda names that differ on PyPI
CONDA_TO_PYPI = {"pytorch": "torch", "py-xgboost": "xgboost", "python-graphviz": "graphviz",
                 "pytables": "tables", "matplotlib-base": "matplotlib", "msgpack-python": "msgpack",
                 "pyqt": "PyQt5", "tensorflow-base": "tensorflow"}
_CONDA_DEP = re.compile(r"^(?:[A-Za-z0-9_.-]+::)?([A-Za-z0-9_.-]+)\s*(.*)$")


def _conda_version(spec: str) -> tuple[str, str | None]:
    """A conda version spec as a pip specifier, and the note for what was dropped (build strings)."""
    spec = spec.strip().replace(" ", "")
    if not spec:
        return "", None
    note = None
    if spec.startswith("=") and not spec.startswith("=="):
        version, _, build = spec[1:].partition("=")
        if build:
            note = f"build string {build!r} dropped"
        # conda's "=1.2" means 1.2.* (any release starting so)
        return (f"=={version}" if "*" in version else f"=={version}.*"), note
    return spec, note


def parse_environment_yml(tree: RepoTree, path: str, mapped: Mapped) -> None:
    mapped.used.append(path)
    try:
        doc = yaml.safe_load(tree.text(path)) or {}
    except yaml.YAMLError as exc:
        raise ImportRefused([(path, f"is not valid YAML: {exc}")]) from None
    if not isinstance(doc, dict):
        raise ImportRefused([(path, "must be a mapping with 'dependencies'")])
    channels = [c for c in doc.get("channels") or [] if c not in ("defaults", "conda-forge", "nodefaults")]
    if channels:
        mapped.notes.append(f"{path}: channels {channels} are not used: packages come from PyPI, Debian and CRAN")
    for dep in doc.get("dependencies") or []:
        if isinstance(dep, dict):
            for key, items in dep.items():
                if key != "pip":
                    mapped.problems.append((path, f"dependency section {key!r} is not understood"))
                    continue
                for line in items or []:
                    sub = RepoTree({"pip": str(line).encode()})
                    inner = Mapped()
                    parse_requirements(sub, "pip", inner)
                    mapped.requirements += [r for r in inner.requirements if r not in mapped.requirements]
                    mapped.problems += [(path, reason) for _f, reason in inner.problems]
            continue
        m = _CONDA_DEP.match(str(dep).strip())
        if not m:
            mapped.problems.append((path, f"{dep!r} is not a conda dependency"))
            continue
        name, version = m.group(1).lower(), m.group(2)
        if name == "python":
            pinned = re.match(r"[=<>~!]*\s*(\d+(?:\.\d+)*)", version or "")
            if pinned:
                mapped.python_version = python_version_of(pinned.group(1), path)
            continue
        if name == "pip":
            continue
        if name in CONDA_ONLY:
            mapped.problems.append((path, f"{name!r} is a conda-only package with no PyPI or Debian counterpart "
                                          "Reprolab can install; remove it (Python wheels bring their own "
                                          "libraries)"))
            continue
        if name in CONDA_TO_APT:
            if CONDA_TO_APT[name] not in mapped.apt:
                mapped.apt.append(CONDA_TO_APT[name])
            if version:
                mapped.notes.append(f"{path}: {name}{version} maps to Debian's {CONDA_TO_APT[name]} at the "
                                    "archive's version")
            continue
        if name.startswith("r-"):
            cran = name[2:]
            mapped.add_r(cran)
            mapped.notes.append(f"{path}: {name} maps to the CRAN package {cran!r} (Debian r-cran-{cran})"
                                + (f"; version {version} not honoured" if version else ""))
            continue
        pip_spec, note = _conda_version(version)
        pypi = CONDA_TO_PYPI.get(name, name)
        try:
            mapped.add_requirement(str(Requirement(pypi + pip_spec)))
        except InvalidRequirement:
            mapped.problems.append((path, f"{dep!r}: version {version!r} cannot be expressed for pip"))
            continue
        if note or pypi != name:
            mapped.notes.append(f"{path}: {dep} → {pypi}{pip_spec} from PyPI" + (f" ({note})" if note else ""))


# ---------------------------------------------------------------------------------------------
# R: install.R (statically: install.packages calls) and DESCRIPTION


R_BASE_PACKAGES = {"R", "base", "compiler", "datasets", "graphics", "grDevices", "grid", "methods", "parallel",
                   "splines", "stats", "stats4", "tcltk", "tools", "utils"}
_R_CALL = re.compile(r"(?:utils::)?install\.packages\s*\(", re.S)
_R_IGNORED = re.compile(r"^\s*(library|require|requireNamespace|options|Sys\.setenv|message|print|cat)\s*\(")


def _r_strings(args: str) -> list[str]:
    """The package names in an install.packages call's first argument (a string or ``c(...)``)."""
    first = args.strip()
    m = re.match(r"""^c\s*\((.*?)\)""", first, re.S)
    body = m.group(1) if m else first.split(",")[0]
    return re.findall(r"""["']([A-Za-z][A-Za-z0-9.]*)["']""", body)


def parse_install_r(tree: RepoTree, path: str, mapped: Mapped) -> None:
    """install.packages(...) calls become R packages; any other statement that installs something is
    named (repo2docker would run the script with network, which a locked build does not)."""
    mapped.used.append(path)
    text = "\n".join(re.sub(r"#.*$", "", line) for line in tree.text(path).splitlines())
    rest = text
    for m in list(_R_CALL.finditer(text)):
        depth, end = 1, m.end()
        while end < len(text) and depth:
            depth += {"(": 1, ")": -1}.get(text[end], 0)
            end += 1
        names = _r_strings(text[m.end():end - 1])
        if not names:
            mapped.problems.append((path, f"{text[m.start():end].strip()!r}: only literal package names can be "
                                          "read"))
        for name in names:
            mapped.add_r(name)
        rest = rest.replace(text[m.start():end], "", 1)
    for line in rest.splitlines():
        stmt = line.strip().rstrip(";")
        if not stmt or _R_IGNORED.match(stmt):
            continue
        mapped.problems.append((path, f"{stmt!r} cannot be honoured: only install.packages(...) of CRAN packages "
                                      "is supported (GitHub and version installs are not)"))


def parse_description(tree: RepoTree, mapped: Mapped) -> None:
    """An R package at the root: its Depends/Imports/LinkingTo are installed, then the package itself
    (``R CMD INSTALL .``, repo2docker's ``remotes::install_local()``)."""
    mapped.used.append("DESCRIPTION")
    fields: dict[str, str] = {}
    key = None
    for line in tree.text("DESCRIPTION").splitlines():
        if line[:1].isspace() and key:
            fields[key] += " " + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            key = key.strip()
            fields[key] = value.strip()
    for name in ("Depends", "Imports", "LinkingTo"):
        for item in fields.get(name, "").split(","):
            pkg = re.sub(r"\(.*?\)", "", item).strip()
            if pkg and pkg not in R_BASE_PACKAGES:
                mapped.add_r(pkg)
    mapped.steps.append({"run": "R CMD INSTALL --no-test-load .", "user": "root"})


def script_step(path: str) -> dict[str, str]:
    """postBuild as repo2docker runs it: made executable, run from the repository as the user."""
    return {"run": f"chmod +x {shlex.quote(path)} && ./{shlex.quote(path)}", "user": "student"}
