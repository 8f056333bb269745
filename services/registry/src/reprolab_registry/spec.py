"""The environment spec document: validation, normalisation, canonical JSON and digest.

Every model forbids unknown keys and is strict (no silent coercion, no floats), so a spec either
means exactly one thing or is refused with the location of each bad field
(``spec.python.requirements[2]``). Normalisation drops defaults and empty sections and rewrites
requirements in packaging's canonical form, so two spellings of one environment share a digest.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from packaging.requirements import InvalidRequirement, Requirement
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from reprolab_common import canonical
from reprolab_common.errors import Invalid
from reprolab_common.names import sanitize_name  # noqa: F401  (re-exported: part of the spec rules)

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")

# OCI image reference (distribution/reference grammar, digests restricted to sha256).
_ALNUM = r"[a-z0-9]+"
_SEP = r"(?:[._]|__|-+)"
_PATH = rf"{_ALNUM}(?:{_SEP}{_ALNUM})*"
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*(?::[0-9]+)?"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
IMAGE_RE = re.compile(rf"^(?:{_DOMAIN}/)?{_PATH}(?:/{_PATH})*(?::{_TAG})?(?:@sha256:[a-f0-9]{{64}})?$")

PY_VERSION_RE = re.compile(r"^\d+\.\d+$")
CRAN_RE = re.compile(r"^[A-Za-z][A-Za-z0-9.]*[A-Za-z0-9](?:==[0-9]+(?:[.-][0-9]+)+)?$")
R_VERSION_RE = re.compile(r"^\d+\.\d+(?:\.\d+)?$")
R_REPOSITORY_RE = re.compile(r"^https?://[A-Za-z0-9.-]+(?::[0-9]+)?(?:/[A-Za-z0-9._~%+-]+)*/?$")
APT_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+(?:=[0-9][A-Za-z0-9.+~:-]*)?$")
SEGMENT_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
CPU_RE = re.compile(r"^(?:[0-9]+m|[0-9]+(?:\.[0-9]{1,3})?)$")
MEMORY_RE = re.compile(r"^[0-9]+(?:\.[0-9]+)?(?:[KMGTPE]i|[kMGTPE])?$")

MAX_FILE_BYTES = 64 * 1024
MAX_SPEC_BYTES = 256 * 1024
MAX_IMAGE_REF = 512


def _pattern(regex: re.Pattern[str], what: str) -> AfterValidator:
    def check(value: str) -> str:
        if not regex.match(value):
            raise ValueError(f"{value!r} is not {what}")
        return value

    return AfterValidator(check)


def _image(value: str) -> str:
    if len(value) > MAX_IMAGE_REF or not IMAGE_RE.match(value):
        raise ValueError(
            f"{value!r} is not a valid OCI image reference: expected "
            "[registry[:port]/]name[:tag][@sha256:<64 hex>] with a lowercase name, e.g. 'python:3.12-slim'"
        )
    return value


def _requirement(value: str) -> str:
    try:
        req = Requirement(value)
    except InvalidRequirement as exc:
        raise ValueError(f"{value!r} is not a valid requirement: {exc}") from None
    return str(req)


def _segments_safe(path: str) -> bool:
    parts = path.split("/")
    return all(p and p not in {".", ".."} and SEGMENT_RE.match(p) for p in parts)


def _mount(value: str) -> str:
    if not value.startswith("/data/") or not _segments_safe(value[len("/data/") :].rstrip("/")):
        raise ValueError(
            f"{value!r} is not a mount path under /data/ (e.g. '/data/iris'; no '..', no empty parts)"
        )
    return value.rstrip("/")


def _relative_path(value: str) -> str:
    if value.startswith("/") or len(value) > 255 or not _segments_safe(value):
        raise ValueError(
            f"{value!r} is not a safe relative path (letters, digits, '_', '-', '.'; no '..', no leading '/')"
        )
    return value


def _file_content(value: str) -> str:
    size = len(value.encode())
    if size > MAX_FILE_BYTES:
        raise ValueError(f"file content is {size} bytes; the limit is {MAX_FILE_BYTES} bytes (64 KiB)")
    return value


def _cpu(value: str) -> str:
    if not CPU_RE.match(value) or float(value.rstrip("m") or 0) == 0:
        raise ValueError(f"{value!r} is not a CPU quantity like '500m' or '2' (greater than zero)")
    return value


def _memory(value: str) -> str:
    if not MEMORY_RE.match(value) or float(re.sub(r"[A-Za-z]+$", "", value)) == 0:
        raise ValueError(f"{value!r} is not a memory quantity like '512Mi' or '4Gi' (greater than zero)")
    return value


def _entry(value: str) -> str:
    if "\x00" in value:
        raise ValueError("entrypoint arguments cannot contain NUL characters")
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class PythonSection(_Model):
    version: Annotated[str, _pattern(PY_VERSION_RE, "a Python version like '3.12'")] | None = None
    requirements: list[Annotated[str, AfterValidator(_requirement)]] = Field(default=[], max_length=1000)


class RSection(_Model):
    """R packages: Debian's ``r-cran-*`` by default; with ``repository`` (a CRAN-like repository: a
    CRAN mirror or a Posit Package Manager snapshot URL) any package or exact version it serves.
    The repository is part of the spec, not a workspace setting, so that the spec alone says where
    every package comes from (its digest changes when the repository does, exports carry it)."""

    packages: list[Annotated[str, _pattern(CRAN_RE, "a CRAN package name, optionally 'name==version'")]] = Field(
        default=[], max_length=1000
    )
    repository: Annotated[str, Field(max_length=512), _pattern(
        R_REPOSITORY_RE, "an http(s) URL of a CRAN-like repository "
        "(e.g. 'https://packagemanager.posit.co/cran/2024-06-01')")] | None = None
    version: Annotated[str, _pattern(R_VERSION_RE, "an R version like '4.2' or '4.2.2'")] | None = None


class DatasetMount(_Model):
    digest: Annotated[str, _pattern(DIGEST_RE, "a dataset digest 'sha256:<64 lowercase hex>'")]
    mount: Annotated[str, AfterValidator(_mount)]


class SpecFile(_Model):
    path: Annotated[str, AfterValidator(_relative_path)]
    content: Annotated[str, AfterValidator(_file_content)]


class Repository(_Model):
    """An imported repository's files (an uncompressed tar registered as a dataset of the workspace),
    copied into the user's home, which is the working directory, as repo2docker's ``REPO_DIR``."""

    digest: Annotated[str, _pattern(DIGEST_RE, "a dataset digest 'sha256:<64 lowercase hex>'")]


class BuildStep(_Model):
    """A shell command run in the repository's folder after it is copied (``postBuild``, installing
    the project). Arbitrary commands can read the network and the clock, so a lock with steps is
    marked as not guaranteed bit-reproducible."""

    run: Annotated[str, Field(min_length=1, max_length=4096), AfterValidator(_entry)]
    user: Literal["student", "root"] = "student"


class Resources(_Model):
    cpu: Annotated[str, AfterValidator(_cpu)] | None = None
    memory: Annotated[str, AfterValidator(_memory)] | None = None
    gpu: Annotated[int, Field(ge=0, le=64)] = 0


class Spec(_Model):
    base: Annotated[str, AfterValidator(_image)]
    python: PythonSection | None = None
    r: RSection | None = None
    apt: list[Annotated[str, _pattern(APT_RE, "a Debian package name (optionally 'name=version')")]] = Field(
        default=[], max_length=1000
    )
    datasets: list[DatasetMount] = Field(default=[], max_length=64)
    files: list[SpecFile] = Field(default=[], max_length=64)
    entrypoint: list[Annotated[str, AfterValidator(_entry)]] = Field(default=[], max_length=256)
    resources: Resources | None = None
    repository: Repository | None = None
    build_steps: list[BuildStep] = Field(default=[], max_length=32)
    start: Annotated[str, AfterValidator(_relative_path)] | None = None


@dataclass(frozen=True)
class ValidSpec:
    """A validated spec: the normalised document, its canonical JSON text and ``sha256:`` digest."""

    document: dict[str, Any]
    canonical_json: str
    digest: str

    @property
    def dataset_digests(self) -> list[tuple[int, str]]:
        return [(i, d["digest"]) for i, d in enumerate(self.document.get("datasets", []))]

    @property
    def repository_digest(self) -> str | None:
        return (self.document.get("repository") or {}).get("digest")


def loc_text(parts: tuple[int | str, ...], root: str = "spec") -> str:
    out = root
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _message(err: Mapping[str, Any]) -> str:
    kind = err["type"]
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a known field"
    if kind == "value_error":
        return str(err.get("ctx", {}).get("error", err["msg"]))
    if kind in {"model_type", "dict_type"}:
        return "must be a JSON object"
    if kind in {"float_type", "int_type"} and isinstance(err.get("input"), float):
        return "must be an integer (floats are not allowed; use strings for quantities)"
    expected = {
        "string_type": "a string",
        "int_type": "an integer",
        "list_type": "a JSON array",
        "bool_type": "a boolean",
    }
    if kind in expected:
        return f"must be {expected[kind]}, not {_json_type(err.get('input'))}"
    return err["msg"]


def _json_type(value: Any) -> str:
    for py, name in (
        (bool, "a boolean"),
        (int, "a number"),
        (float, "a number"),
        (str, "a string"),
        (list, "an array"),
        (dict, "an object"),
    ):
        if isinstance(value, py):
            return name
    return "null"


def invalid(errors: list[tuple[str, str]], what: str = "spec") -> Invalid:
    """One ``Invalid`` whose detail names every bad field (first line of each message)."""
    shown = [f"{loc}: {msg.splitlines()[0]}" for loc, msg in errors[:5]]
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return Invalid(f"invalid {what}: " + "; ".join(shown) + more, errors=errors)


def _prune(value: Any) -> Any:
    """Drop empty sections so ``{"python": {}}`` and an absent ``python`` are one spec."""
    if isinstance(value, dict):
        pruned = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v not in ({}, [], None)}
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


def validate_spec(document: Any) -> ValidSpec:
    """Validate a parsed spec document; raises ``Invalid`` with one error per bad field."""
    try:
        spec = Spec.model_validate(document)
    except ValidationError as exc:
        raise invalid([(loc_text(e["loc"]), _message(e)) for e in exc.errors()]) from None
    errors: list[tuple[str, str]] = []
    for field, key in (("datasets", "mount"), ("files", "path")):
        seen: dict[str, int] = {}
        for i, item in enumerate(getattr(spec, field)):
            value = getattr(item, key)
            if value in seen:
                errors.append(
                    (f"spec.{field}[{i}].{key}", f"{value!r} is already used by spec.{field}[{seen[value]}]")
                )
            seen.setdefault(value, i)
    if spec.start and spec.repository is None:
        errors.append(("spec.start", "names a script in the repository, but the spec has no repository"))
    if errors:
        raise invalid(errors)
    normalised = _prune(spec.model_dump(mode="json", exclude_none=True, exclude_defaults=True))
    text = canonical.canonical_json(normalised)
    if len(text) > MAX_SPEC_BYTES:
        raise invalid(
            [("spec", f"the spec is {len(text)} bytes as canonical JSON; the limit is {MAX_SPEC_BYTES}")]
        )
    return ValidSpec(document=normalised, canonical_json=text.decode(), digest=canonical.digest(normalised))


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def parse_spec_json(text: str, *, field: str = "spec_json") -> ValidSpec:
    """Parse JSON text (422 naming ``field`` when it is not JSON) and validate it as a spec."""
    if not text.strip():
        raise invalid([(field, "is required: send the spec document as JSON")], "request")
    if len(text.encode()) > 4 * MAX_SPEC_BYTES:
        raise invalid([(field, f"is larger than {4 * MAX_SPEC_BYTES} bytes")], "request")
    try:
        document = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise invalid([(field, f"is not valid JSON: {exc}")], "request") from None
    except ValueError as exc:
        raise invalid([(field, f"is not valid JSON: {exc}")], "request") from None
    return validate_spec(document)


def check_name(value: str, loc: str, what: str) -> str:
    """Workspace slugs and environment names: lowercase letters, digits and '-', at most 63."""
    if not NAME_RE.match(value):
        raise invalid(
            [
                (
                    loc,
                    f"{value!r} is not a valid {what}: use 1-63 lowercase letters, digits and '-', "
                    "starting with a letter or digit",
                )
            ],
            "request",
        )
    return value


def check_digest(value: str, loc: str = "digest") -> str:
    if not DIGEST_RE.match(value):
        raise invalid([(loc, f"{value!r} is not a digest 'sha256:<64 lowercase hex>'")], "request")
    return value


