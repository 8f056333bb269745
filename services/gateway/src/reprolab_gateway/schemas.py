"""Request bodies and response documents of the REST API, and their conversion from the contracts.

Responses are explicit models (snake_case, roles as strings, ISO 8601 times, ``null`` for absent
values) rather than ``MessageToDict`` dumps, so the API documents itself and does not change shape
when a proto gains an internal field.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from reprolab.v1 import audit_pb2, builder_pb2, common_pb2, registry_pb2, runner_pb2, serving_pb2

from . import models
from .core.problems import pattern

USERNAME_PATTERN = pattern(r"^[a-z0-9][a-z0-9._-]{1,38}$",
                           "use 2-39 lower-case letters, digits, '.', '_' and '-', starting with a letter or digit")
DATASET_NAME_PATTERN = pattern(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$",
                               "use 1-128 letters, digits, '.', '_' and '-', starting with a letter or digit")
DIGEST_PATTERN = pattern(r"^sha256:[0-9a-f]{64}$", "is not a digest 'sha256:<64 lower-case hex digits>'")
# Workspace slugs, environment and assignment names: the registry's ``check_name``.
_NAME_HINT = "use 1-63 lower-case letters, digits and '-', starting with a letter or digit"
NAME_PATTERN = pattern(r"^[a-z0-9][a-z0-9-]{0,62}$", _NAME_HINT)
OPTIONAL_NAME_PATTERN = pattern(r"^$|^[a-z0-9][a-z0-9-]{0,62}$", f"leave it empty or {_NAME_HINT}")
# Titles, descriptions, notes: the registry refuses control characters other than tab and newline.
TEXT_PATTERN = pattern(r"^[^\x00-\x08\x0b-\x1f]*$", "contains control characters (only tab and newline may be used)")
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1

# RFC 3339, what the document's `format: date-time` means: pydantic alone also takes numbers (seconds since
# the epoch) and times without a zone, which the document does not allow.
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def _rfc3339(value: Any) -> Any:
    if isinstance(value, str) and _RFC3339.fullmatch(value):
        return value
    raise ValueError("expected a time with its zone (RFC 3339), e.g. 2026-12-04T15:00:00Z")


ZonedTime = Annotated[datetime, BeforeValidator(_rfc3339)]

RoleName = Literal["admin", "instructor", "student"]
ROLE_NAMES: dict[int, RoleName] = {
    common_pb2.ROLE_ADMIN: "admin",
    common_pb2.ROLE_INSTRUCTOR: "instructor",
    common_pb2.ROLE_STUDENT: "student",
}
ROLE_VALUES: dict[str, int] = {name: value for value, name in ROLE_NAMES.items()}


class _In(BaseModel):
    # Unknown fields are refused, so a typo ("tilte") is a 422 rather than silently ignored.
    model_config = ConfigDict(extra="forbid")


# --- time and enum helpers ----------------------------------------------------------------


def ts(value: Timestamp) -> datetime | None:
    if value.seconds == 0 and value.nanos == 0:
        return None
    return value.ToDatetime(tzinfo=UTC)


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def role_name(role: int) -> RoleName | None:
    return ROLE_NAMES.get(role)


def _or_none(value: str) -> str | None:
    return value or None


def _json_object(text: str) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


# --- users and tokens ---------------------------------------------------------------------


class UserCreate(_In):
    username: str = Field(pattern=USERNAME_PATTERN, description="Lower-case login name, 2-39 characters.")
    display_name: str = Field(default="", max_length=200)
    platform_admin: bool = Field(
        default=False, description="Platform admins manage every workspace and user."
    )


class User(BaseModel):
    id: str
    username: str
    display_name: str
    platform_admin: bool
    created_at: datetime

    @classmethod
    def of(cls, user: models.User) -> User:
        return cls(
            id=user.id,
            username=user.username,
            display_name=user.display_name,
            platform_admin=user.platform_admin,
            created_at=aware(user.created_at),
        )


class UserList(BaseModel):
    items: list[User]


class UserCreated(BaseModel):
    user: User
    token: str = Field(description="The new user's first API token. It is shown only now.")


class TokenCreate(_In):
    name: str = Field(min_length=1, max_length=100, description="A label, e.g. the machine it is used on.")


class Token(BaseModel):
    id: str
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked: bool

    @classmethod
    def of(cls, token: models.ApiToken) -> Token:
        return cls(
            id=token.id,
            name=token.name,
            created_at=aware(token.created_at),
            last_used_at=aware(token.last_used_at),
            revoked=token.revoked,
        )


class TokenList(BaseModel):
    items: list[Token]


class TokenCreated(Token):
    token: str = Field(description="The API token (rpl_...). It is shown only now; only its hash is kept.")


# --- workspaces and members ---------------------------------------------------------------


class WorkspaceCreate(_In):
    slug: str = Field(pattern=NAME_PATTERN, description="Short URL name, e.g. cs505: 1-63 lower-case letters, "
                      "digits and '-'.")
    title: str = Field(min_length=1, max_length=200, pattern=TEXT_PATTERN)


class Workspace(BaseModel):
    slug: str
    title: str
    created_at: datetime | None
    caller_role: RoleName | None = Field(description="Your role here (admin for platform admins).")
    caller_is_member: bool

    @classmethod
    def of(cls, w: registry_pb2.Workspace) -> Workspace:
        return cls(
            slug=w.slug,
            title=w.title,
            created_at=ts(w.created_at),
            caller_role=role_name(w.caller_role),
            caller_is_member=w.caller_is_member,
        )


class WorkspaceList(BaseModel):
    items: list[Workspace]


class MemberAdd(_In):
    username: str = Field(pattern=USERNAME_PATTERN, description="An existing user's login name.")
    role: RoleName


class MemberUpdate(_In):
    role: RoleName


class Member(BaseModel):
    user_id: str
    username: str
    role: RoleName | None
    added_at: datetime | None

    @classmethod
    def of(cls, m: registry_pb2.Member) -> Member:
        return cls(user_id=m.user_id, username=m.username, role=role_name(m.role), added_at=ts(m.added_at))


class MemberList(BaseModel):
    items: list[Member]


# --- environments and versions ------------------------------------------------------------


class EnvironmentCreate(_In):
    name: str = Field(pattern=NAME_PATTERN, description="1-63 lower-case letters, digits and '-'.")
    description: str = Field(default="", max_length=2000, pattern=TEXT_PATTERN)
    spec: dict[str, Any] = Field(description="The environment spec (base, apt, python, r, datasets, ...); the "
                                 "registry validates it and answers 422 naming each bad field.")


class VersionCreate(_In):
    # "exactly one of": spelled out for the OpenAPI document, as the validator below enforces it
    model_config = ConfigDict(extra="forbid", json_schema_extra={"oneOf": [
        {"required": ["spec"], "properties": {"spec": {"type": "object"}}},
        {"required": ["rollback_to"], "properties": {"rollback_to": {"type": "integer"}}},
    ]})

    spec: dict[str, Any] | None = Field(default=None, description="A new spec; or give rollback_to.")
    rollback_to: int | None = Field(
        default=None, ge=1, le=INT32_MAX, description="Make a new version equal to version n."
    )
    note: str = Field(default="", max_length=2000, pattern=TEXT_PATTERN)

    @model_validator(mode="after")
    def _one_source(self) -> VersionCreate:
        if (self.spec is None) == (self.rollback_to is None):
            raise ValueError("give exactly one of 'spec' (a new spec) or 'rollback_to' (a version number)")
        return self


class ForkRequest(_In):
    version: int | None = Field(
        default=None, ge=1, le=INT32_MAX, description="Version to fork; default the latest."
    )
    name: str | None = Field(default=None, pattern=NAME_PATTERN, description="Name of the fork.")
    workspace: str | None = Field(
        default=None, pattern=NAME_PATTERN, description="Workspace to fork into; default the same one."
    )


class Version(BaseModel):
    workspace: str
    environment: str
    number: int
    spec: Any = Field(description="The spec as stored (canonical form).")
    spec_digest: str
    parent: str | None = Field(description="<workspace>/<env>/v<n> of the parent version.")
    origin: str | None
    rollback_to: int | None
    created_by: str
    created_at: datetime | None
    note: str
    lock_digest: str | None = Field(default=None, description="Lock of the image built for this version.")
    image_ref: str | None = Field(default=None, description="Pull reference <registry>/<workspace>/<env>:v<n>.")
    image_digest: str | None = Field(default=None, description="Manifest digest of that image.")

    @classmethod
    def of(cls, v: registry_pb2.Version) -> Version:
        return cls(
            workspace=v.workspace,
            environment=v.environment,
            number=v.number,
            spec=_json_object(v.spec_json),
            spec_digest=v.spec_digest,
            parent=_or_none(v.parent),
            origin=_or_none(v.origin),
            rollback_to=v.rollback_to or None,
            created_by=v.created_by,
            created_at=ts(v.created_at),
            note=v.note,
            lock_digest=_or_none(v.lock_digest),
            image_ref=_or_none(v.image_ref),
            image_digest=_or_none(v.image_digest),
        )


class VersionList(BaseModel):
    items: list[Version]


class Environment(BaseModel):
    workspace: str
    name: str
    kind: str = Field(description="workspace (the course's own) or personal (a member's fork).")
    description: str
    owner: str
    forked_from: str | None
    latest_version: int
    created_at: datetime | None
    latest: Version | None
    can_change: bool = Field(default=False, description="Whether you may create (and build) versions of it.")
    archived_at: datetime | None = Field(
        default=None, description="Set while archived: hidden from lists and run forms, every version still "
                                  "pulls and runs; restore undoes it.")

    @classmethod
    def of(cls, e: registry_pb2.Environment) -> Environment:
        return cls(
            workspace=e.workspace,
            name=e.name,
            kind=e.kind,
            description=e.description,
            owner=e.owner,
            forked_from=_or_none(e.forked_from),
            latest_version=e.latest_version,
            created_at=ts(e.created_at),
            latest=Version.of(e.latest) if e.HasField("latest") else None,
            can_change=e.caller_can_change,
            archived_at=ts(e.archived_at) if e.HasField("archived_at") else None,
        )


class EnvironmentList(BaseModel):
    items: list[Environment]


# --- datasets -----------------------------------------------------------------------------


class Dataset(BaseModel):
    workspace: str
    name: str
    digest: str = Field(description="sha256:<hex> of the content.")
    size: int
    media_type: str
    visibility: Literal["public", "hidden"] | str
    uploaded_by: str
    created_at: datetime | None

    @classmethod
    def of(cls, d: registry_pb2.Dataset) -> Dataset:
        return cls(
            workspace=d.workspace,
            name=d.name,
            digest=d.digest,
            size=d.size,
            media_type=d.media_type,
            visibility=d.visibility,
            uploaded_by=d.uploaded_by,
            created_at=ts(d.created_at),
        )


class DatasetList(BaseModel):
    items: list[Dataset]


# --- activity -----------------------------------------------------------------------------


class ActivityEntry(BaseModel):
    workspace: str
    seq: int
    event_id: str
    type: str
    subject: str
    actor_id: str
    actor_name: str
    time: datetime | None
    event: Any = Field(description="The entry's canonical JSON, parsed.")
    canonical_json: str = Field(description="The exact text the Merkle leaf hashes.")
    leaf_hash: str = Field(description="RFC 6962 leaf hash (hex) of canonical_json; its leaf index is seq - 1.")

    @classmethod
    def of(cls, e: audit_pb2.ActivityEntry) -> ActivityEntry:
        return cls(
            workspace=e.workspace,
            seq=e.seq,
            event_id=e.event_id,
            type=e.type,
            subject=e.subject,
            actor_id=e.actor_id,
            actor_name=e.actor_name,
            time=ts(e.time),
            event=_json_object(e.canonical_json),
            canonical_json=e.canonical_json,
            leaf_hash=e.leaf_hash,
        )


class ActivityPage(BaseModel):
    items: list[ActivityEntry]
    head_seq: int = Field(description="Sequence number of the workspace's newest entry.")
    next_after: int | None = Field(description="Pass as 'after' for the next page; null on the last page.")


class VerifyResult(BaseModel):
    ok: bool
    entries: int
    elided: int = Field(description="Entries of other people, present only as their leaf hashes.")
    checkpoints: int
    workspace: str
    origin: str = Field(description="The log's identity, first line of its checkpoints.")
    root: str = Field(description="Hex root hash of the bundle's tree.")
    line: int | None = Field(description="When not ok: the first bad line of the bundle.")
    seq: int | None
    reason: str
    keys_known: bool = Field(description="Whether every key that signed a checkpoint is one this platform used.")
    matches_log: bool = Field(description="Whether this platform's log has the same tree at the bundle's size.")
    against_size: int | None = Field(description="Size of the older checkpoint the bundle was shown to extend.")

    @classmethod
    def of(cls, r: audit_pb2.VerifyActivityReply) -> VerifyResult:
        return cls(
            ok=r.ok,
            entries=r.entries,
            elided=r.elided,
            checkpoints=r.checkpoints,
            workspace=r.workspace,
            origin=r.origin,
            root=r.root,
            line=r.line or None,
            seq=r.seq or None,
            reason=r.reason,
            keys_known=r.keys_known,
            matches_log=r.matches_log,
            against_size=r.against_size or None,
        )


class InclusionProof(BaseModel):
    index: int = Field(description="0-based leaf index (seq - 1).")
    size: int
    leaf_hash: str
    hashes: list[str] = Field(description="RFC 9162 audit path, hex, bottom-up.")
    root: str
    checkpoint: str | None = Field(description="The signed checkpoint of that size, when one was issued.")

    @classmethod
    def of(cls, p: audit_pb2.InclusionProof) -> InclusionProof:
        return cls(index=p.index, size=p.size, leaf_hash=p.leaf_hash, hashes=list(p.hashes), root=p.root,
                   checkpoint=p.checkpoint or None)


class ConsistencyProof(BaseModel):
    old_size: int
    new_size: int
    hashes: list[str] = Field(description="RFC 9162 consistency proof, hex.")
    old_root: str
    new_root: str
    old_checkpoint: str | None
    new_checkpoint: str | None

    @classmethod
    def of(cls, p: audit_pb2.ConsistencyProof) -> ConsistencyProof:
        return cls(old_size=p.old_size, new_size=p.new_size, hashes=list(p.hashes), old_root=p.old_root,
                   new_root=p.new_root, old_checkpoint=p.old_checkpoint or None,
                   new_checkpoint=p.new_checkpoint or None)


# --- health -------------------------------------------------------------------------------


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready"]
    checks: dict[str, bool]


# --- builds ---------------------------------------------------------------------------------

BUILD_STATUS = {0: "unknown", 1: "queued", 2: "running", 3: "succeeded", 4: "failed"}


class Build(BaseModel):
    id: str
    workspace: str
    environment: str
    version: int
    status: str = Field(description="queued, running, succeeded or failed.")
    lock_digest: str | None
    image_ref: str | None = Field(description="Pull reference once pushed.")
    image_digest: str | None
    pull: str | None = Field(description="The exact image to pull: <ref>@<digest>.")
    error: str | None = Field(description="Why it failed, in words that say what to fix.")
    backend: str
    requested_by: str
    joined: bool = Field(description="True when this request joined a build of the same lock.")
    created_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, b: builder_pb2.Build) -> Build:
        return cls(
            id=b.id, workspace=b.workspace, environment=b.environment, version=b.version,
            status=BUILD_STATUS.get(b.status, "unknown"), lock_digest=_or_none(b.lock_digest),
            image_ref=_or_none(b.image_ref) if b.image_digest else None, image_digest=_or_none(b.image_digest),
            pull=f"{b.image_ref.rsplit(':', 1)[0]}@{b.image_digest}" if b.image_digest else None,
            error=_or_none(b.error), backend=b.backend, requested_by=b.requested_by, joined=b.joined,
            created_at=ts(b.created_at), finished_at=ts(b.finished_at) if b.HasField("finished_at") else None,
        )


class BuildList(BaseModel):
    items: list[Build]


# --- runs -----------------------------------------------------------------------------------

RUN_STATUS = {0: "unknown", 1: "queued", 2: "starting", 3: "running", 4: "succeeded", 5: "failed", 6: "cancelled",
              7: "timed_out"}
TERMINAL_RUN = {"succeeded", "failed", "cancelled", "timed_out"}

class CodeUpload(BaseModel):
    digest: str
    size: int
    format: str
    entries: int


class RunResourcesIn(_In):
    cpu: str | None = Field(default=None, pattern=pattern(r"^([0-9]+m|[0-9]+(\.[0-9]{1,3})?)$",
                                                          "is not a CPU quantity like '2', '0.5' or '500m'"),
                            description='CPUs: "2", "0.5" or "500m". Default: the environment spec\'s '
                                        '`resources.cpu`, else 1.')
    memory: str | None = Field(default=None, pattern=pattern(r"^[0-9]+(Ki|Mi|Gi)$",
                                                             "is not a memory quantity like '512Mi' or '2Gi'"),
                               description='e.g. "512Mi", "2Gi". Default: the environment spec\'s '
                                           '`resources.memory`, else 1Gi.')
    pids: int = Field(default=256, ge=16, le=65536)
    timeout: int = Field(default=600, ge=1, description="Seconds before the run is stopped.")

    def to_proto(self, spec: dict[str, Any] | None = None) -> runner_pb2.RunResources:
        """The run's limits: what the request says, else what the environment's spec asks for (a spec's
        ``resources`` are what its author measured the work needs), else 1 CPU and 1 GiB."""
        wanted = (spec or {}).get("resources") or {}
        cpu = self.cpu or str(wanted.get("cpu") or "1")
        memory = self.memory or str(wanted.get("memory") or "1Gi")
        return runner_pb2.RunResources(cpu_millis=cpu_millis(cpu), memory_bytes=memory_bytes(memory),
                                       pids=self.pids, timeout_seconds=self.timeout)


_MEMORY_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
                 "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "Pi": 1 << 50, "Ei": 1 << 60}


def cpu_millis(quantity: str) -> int:
    """A Kubernetes CPU quantity ("2", "0.5", "500m") in thousandths of a CPU."""
    return int(quantity[:-1]) if quantity.endswith("m") else round(float(quantity) * 1000)


def memory_bytes(quantity: str) -> int:
    """A Kubernetes memory quantity ("4Gi", "512M", "1.5Gi", "1000") in bytes."""
    match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)([A-Za-z]*)", quantity)
    if not match or match.group(2) not in _MEMORY_UNITS:
        raise ValueError(f"{quantity!r} is not a memory quantity like '512Mi' or '4Gi'")
    return int(float(match.group(1)) * _MEMORY_UNITS[match.group(2)])


class GitSourceIn(_In):
    url: str = Field(min_length=1, max_length=2000, pattern=pattern(r"^[^\s-][^\s]*$", "is not a URL"),
                     description="A repository the platform can reach, e.g. https://host/owner/repo.git "
                                 "(no user name or password in it).")
    ref: str = Field(default="", max_length=200, pattern=pattern(r"^$|^[A-Za-z0-9._/+][A-Za-z0-9._/+-]*$",
                                                                 "is not a branch, tag or commit name"),
                     description="Branch, tag or commit; empty: the default branch. The run is pinned to the "
                                 "commit it names at submit time.")


_CODE_ONE_OF = {"oneOf": [{"required": ["code"], "properties": {"code": {"minLength": 1}}},
                          {"required": ["git"]}]}
_PROGRAM_ONE_OF = {"oneOf": [{"required": ["command"], "properties": {"command": {"minItems": 1}}},
                             {"required": ["notebook"], "properties": {"notebook": {"minLength": 1}}}]}
NOTEBOOK_PATTERN = pattern(r"^$|^[A-Za-z0-9._ +-][A-Za-z0-9._ /+-]{0,299}\.ipynb$",
                           "is not a notebook path inside the code like 'analysis.ipynb'")


class RunCreate(_In):
    # "environment unless assignment", "code or git", "command or notebook": spelled out for the OpenAPI
    # document, as submit_run and the runner enforce them
    model_config = ConfigDict(extra="forbid", json_schema_extra={"allOf": [
        {"anyOf": [
            {"required": ["environment"], "properties": {"environment": {"minLength": 1}}},
            {"required": ["assignment"], "properties": {"assignment": {"minLength": 1}}},
        ]}, _CODE_ONE_OF, _PROGRAM_ONE_OF]})

    environment: str = Field(default="", pattern=OPTIONAL_NAME_PATTERN, description="Required unless the run is "
                             "for an assignment, whose environment (and version) it then uses.")
    version: int = Field(default=0, ge=0, le=INT32_MAX, description="0: the latest version.")
    code: str = Field(default="", pattern=pattern(r"^$|^sha256:[0-9a-f]{64}$",
                                                  "is not a digest 'sha256:<64 lower-case hex digits>'"),
                      description="Digest of an archive uploaded to .../code (or give `git`).")
    git: GitSourceIn | None = Field(default=None, description="Run the code of a Git repository at a commit "
                                    "instead of an uploaded archive.")
    command: list[str] = Field(default_factory=list, max_length=256, description="What to run in /work "
                               "(or give `notebook`).")
    notebook: str = Field(default="", pattern=NOTEBOOK_PATTERN, description="A notebook inside the code, executed "
                          "top to bottom instead of a command; its executed copy is among the outputs.")
    datasets: list[str] = Field(default_factory=list, max_length=64,
                                description="Dataset digests or names; mounted read-only at /data/<name>.")
    target: str = Field(default="local", description="local, kubernetes, aws, azure or openstack.")
    resources: RunResourcesIn = Field(default_factory=RunResourcesIn)
    network: bool = Field(default=False, description="Give the run network access (off by default).")
    assignment: str = Field(default="", pattern=OPTIONAL_NAME_PATTERN, description="Score the run for this "
                            "assignment: the run must write the assignment's predictions file under /outputs.")


class RunAgain(_In):
    """What to change for a run again; every field left out is as in the earlier run."""

    version: int | None = Field(default=None, ge=0, le=INT32_MAX, description="The environment version to run "
                                "in; 0: the latest; left out: the earlier run's.")
    code: str | None = Field(default=None, pattern=DIGEST_PATTERN, description="New code (an uploaded archive).")
    git: GitSourceIn | None = Field(default=None, description="New code from a Git repository.")
    command: list[str] | None = Field(default=None, min_length=1, max_length=256)
    notebook: str | None = Field(default=None, pattern=NOTEBOOK_PATTERN)
    datasets: list[str] | None = Field(default=None, max_length=64)
    target: str | None = None
    resources: RunResourcesIn | None = None
    network: bool | None = None


class Run(BaseModel):
    id: str
    workspace: str
    environment: str
    version: int
    image: str
    code_digest: str
    datasets: list[dict[str, str]]
    command: list[str]
    target: str
    status: str
    exit_code: int | None
    error: str | None
    network: bool
    requested_by: str
    metrics: dict[str, Any] | None
    provenance: dict[str, Any] | None
    assignment: str | None = None
    scoring: Literal["pending", "scored", "failed", "skipped"] | None = Field(
        default=None, description="Scoring of an assignment's run: pending until the evaluation ends.")
    score: str | None = Field(default=None, description="The evaluation's score, as a decimal number in text.")
    score_error: str | None = Field(default=None, description="Why the run has no score.")
    source: dict[str, str] | None = Field(default=None, description="Where the code came from: git_url, git_ref, "
                                          "git_commit (the pinned commit), notebook.")
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, r: runner_pb2.Run) -> Run:
        status = RUN_STATUS.get(r.status, "unknown")
        return cls(
            id=r.id, workspace=r.workspace, environment=r.environment, version=r.version, image=r.image,
            code_digest=r.code_digest, datasets=[{"digest": d.digest, "name": d.name, "mount": d.mount}
                                                 for d in r.datasets],
            command=list(r.command), target=r.target, status=status,
            exit_code=r.exit_code if status in TERMINAL_RUN and status != "cancelled" else None,
            error=_or_none(r.error), network=r.network, requested_by=r.requested_by,
            metrics=_json_object(r.metrics_json) if r.metrics_json else None,
            provenance=_json_object(r.provenance_json) if r.provenance_json else None,
            assignment=_or_none(r.assignment), scoring=_or_none(r.scoring), score=_or_none(r.score),
            score_error=_or_none(r.score_error),
            source={k: v for k, v in (("git_url", r.source.git_url), ("git_ref", r.source.git_ref),
                                      ("git_commit", r.source.git_commit), ("notebook", r.source.notebook)) if v}
            or None,
            created_at=ts(r.created_at), started_at=ts(r.started_at) if r.HasField("started_at") else None,
            finished_at=ts(r.finished_at) if r.HasField("finished_at") else None,
        )


class RunList(BaseModel):
    items: list[Run]


class OutputFile(BaseModel):
    name: str
    size: int
    sha256: str


class RunOutputs(BaseModel):
    run_id: str
    files: list[OutputFile]
    metrics: dict[str, Any] | None


# --- assignments ----------------------------------------------------------------------------


MARKDOWN_PATTERN = pattern(r"^[^\x00-\x08\x0b\x0c\x0e-\x1f]*$", "contains control characters")


class AssignmentSettings(_In):
    """How a course runs an assignment; on PATCH only the fields sent change (null clears a date)."""

    title: str | None = Field(default=None, max_length=200, pattern=TEXT_PATTERN)
    instructions: str | None = Field(default=None, max_length=20000, pattern=MARKDOWN_PATTERN,
                                     description="Markdown; raw HTML is shown as text.")
    starter_code: str | None = Field(default=None, pattern=r"^(sha256:[0-9a-f]{64})?$",
                                     description="Digest of an archive uploaded to .../code that students download "
                                     "and may run as their code; \"\" removes it.")
    opens_at: ZonedTime | None = Field(default=None, description="Submissions are refused before this time.")
    due_at: ZonedTime | None = Field(default=None, description="The deadline: later submissions are late, and the "
                                    "leaderboard shows the private split from then on.")
    late_policy: Literal["none", "penalty", "refuse"] | None = Field(
        default=None, description="none: late submissions count as they are; penalty: late_penalty_percent is "
        "taken off; refuse: no submissions after the due date.")
    late_penalty_percent: int | None = Field(default=None, ge=0, le=100)
    daily_limit: int | None = Field(default=None, ge=0, le=1000,
                                    description="Submissions per student per UTC day; 0: no limit.")
    anonymous: bool | None = Field(default=None, description="Students see pseudonyms on the leaderboard.")
    grade_by: Literal["best", "last"] | None = Field(default=None,
                                                     description="Which submission the gradebook counts.")


class AssignmentCreate(AssignmentSettings):
    name: str = Field(pattern=NAME_PATTERN, description="1-63 lower-case letters, digits and '-'.")
    environment: str = Field(pattern=NAME_PATTERN, description="The environment whose image the evaluation runs in.")
    version: int = Field(default=0, ge=0, le=INT32_MAX, description="0: the latest version now.")
    evaluation_code: str = Field(pattern=DIGEST_PATTERN, description="Digest of an archive uploaded to .../code; "
                                 "its command runs in /work.")
    labels: str = Field(description="Digest or name of a hidden dataset; the evaluation reads it at /data/labels.")
    predictions: str = Field(default="predictions.csv", description="The file a student's run writes under "
                             "/outputs; the evaluation reads it at /inputs/<predictions>.")
    metric: str = Field(default="score", max_length=63, pattern=TEXT_PATTERN)
    higher_is_better: bool = True
    command: list[str] = Field(default_factory=lambda: ["python3", "evaluate.py"], min_length=1, max_length=64,
                               description="Runs the evaluation; it writes /outputs/score.json {\"score\": n}.")


class Assignment(BaseModel):
    workspace: str
    name: str
    title: str
    environment: str
    version: int
    predictions: str
    metric: str
    higher_is_better: bool
    created_by: str
    created_at: datetime | None
    # Instructors and admins only (never the object keys: those stay inside the platform).
    evaluation_code: str | None = None
    labels: str | None = None
    labels_name: str | None = None
    command: list[str] | None = None
    # How the course runs it (issue 17).
    instructions: str = Field(default="", description="Markdown, as the instructor wrote it.")
    instructions_html: str = Field(default="", description="The instructions rendered (raw HTML escaped).")
    starter_code: str | None = Field(default=None, description="Digest of the starter code archive: download it "
                                     "from .../starter, or use it as a run's code.")
    opens_at: datetime | None = None
    due_at: datetime | None = None
    late_policy: str = "none"
    late_penalty_percent: int = 0
    daily_limit: int = 0
    anonymous: bool = False
    grade_by: str = "best"
    evaluation_revision: int = 1
    past_due: bool = False

    @classmethod
    def of(cls, a: registry_pb2.Assignment) -> Assignment:
        from .coursework import render_markdown  # noqa: PLC0415 - the renderer is loaded on first use

        return cls(workspace=a.workspace, name=a.name, title=a.title, environment=a.environment, version=a.version,
                   predictions=a.predictions, metric=a.metric, higher_is_better=a.higher_is_better,
                   created_by=a.created_by, created_at=ts(a.created_at),
                   evaluation_code=_or_none(a.evaluation_code_digest), labels=_or_none(a.labels_digest),
                   labels_name=_or_none(a.labels_name),
                   command=list(a.command) if a.evaluation_code_digest else None,
                   instructions=a.instructions, instructions_html=render_markdown(a.instructions),
                   starter_code=_or_none(a.starter_code_digest), opens_at=ts(a.opens_at), due_at=ts(a.due_at),
                   late_policy=a.late_policy or "none", late_penalty_percent=a.late_penalty_percent,
                   daily_limit=a.daily_limit, anonymous=a.anonymous, grade_by=a.grade_by or "best",
                   evaluation_revision=a.evaluation_revision or 1, past_due=a.past_due)


class AssignmentList(BaseModel):
    items: list[Assignment]


class LeaderboardRow(BaseModel):
    rank: int
    username: str
    score: str
    run_id: str
    scored_at: datetime | None
    you: bool = Field(default=False, description="The caller's own row.")
    late: bool = False


class Leaderboard(BaseModel):
    workspace: str
    assignment: str
    metric: str
    higher_is_better: bool
    rows: list[LeaderboardRow]
    split: str = Field(default="public", description="public until the due date, private from then on.")
    anonymous: bool = False

    @classmethod
    def of(cls, b: registry_pb2.Leaderboard) -> Leaderboard:
        return cls(workspace=b.workspace, assignment=b.assignment, metric=b.metric,
                   higher_is_better=b.higher_is_better, split=b.split or "public", anonymous=b.anonymous,
                   rows=[LeaderboardRow(rank=r.rank, username=r.username, score=r.score, run_id=r.run_id or "",
                                        scored_at=ts(r.scored_at), you=r.you, late=r.late) for r in b.rows])


# --- JupyterLab sessions (issue 12) ----------------------------------------------------------------

SESSION_STATUS = {runner_pb2.SESSION_STATUS_STARTING: "starting", runner_pb2.SESSION_STATUS_RUNNING: "running",
                  runner_pb2.SESSION_STATUS_STOPPING: "stopping", runner_pb2.SESSION_STATUS_STOPPED: "stopped",
                  runner_pb2.SESSION_STATUS_FAILED: "failed"}


class SessionCreate(_In):
    environment: str = Field(pattern=NAME_PATTERN, description="The environment to work in.")
    version: int = Field(default=0, ge=0, le=INT32_MAX, description="0: the latest version (it must be built).")
    resources: RunResourcesIn | None = Field(default=None, description="cpu, memory, pids (no timeout: a session "
                                             "ends when stopped or idle). Default: the spec's, else 2 CPUs, 2Gi.")
    assignment: str | None = Field(
        default=None, pattern=NAME_PATTERN,
        description="The assignment you open it for: its starter code is unpacked into ~/<assignment>/. Left out: "
        "the starter code of every open assignment that uses this environment (or the environment it was "
        "forked from). Files already in your home are never overwritten.")


class Session(BaseModel):
    id: str
    workspace: str
    environment: str
    version: int
    owner: str = Field(description="User id of the session's owner.")
    owner_username: str
    status: Literal["starting", "running", "stopping", "stopped", "failed"]
    error: str | None
    created: datetime | None
    last_activity: datetime | None
    stopped: datetime | None
    idle_timeout_seconds: int = Field(description="Stopped after this long without activity (0: never).")
    cull_warning: bool = Field(description="Idle long enough to be stopped soon (see cull_in_seconds).")
    cull_in_seconds: int | None
    network: str
    url: str = Field(description="Where the browser opens it (through the gateway).")
    starter_code: list[str] = Field(default_factory=list, description="In the answer to a start only: the "
                                    "assignments whose starter code goes into ~/<assignment>/ (where absent).")

    @classmethod
    def of(cls, s: runner_pb2.Session) -> Session:
        return cls(id=s.id, workspace=s.workspace, environment=s.environment, version=s.version, owner=s.owner,
                   owner_username=s.owner_username, status=SESSION_STATUS.get(s.status, "failed"),
                   error=s.error or None, created=ts(s.created), last_activity=ts(s.last_activity),
                   stopped=ts(s.stopped), idle_timeout_seconds=s.idle_timeout_seconds, cull_warning=s.cull_warning,
                   cull_in_seconds=s.cull_in_seconds if s.status == runner_pb2.SESSION_STATUS_RUNNING
                   and s.idle_timeout_seconds else None, network=s.network, url=f"/sessions/{s.id}/")


class SessionList(BaseModel):
    items: list[Session]


def _not_a_bool(value: Any) -> Any:
    if isinstance(value, bool):  # JSON's true/false are not 1/0 here
        raise ValueError("must be a number, not true or false")
    return value


class SessionPolicy(_In):
    idle_timeout_seconds: Annotated[Literal[0] | Annotated[int, Field(ge=10, le=7 * 86400)],
                                    BeforeValidator(_not_a_bool)] = Field(
        default=3600, description="Idle sessions stop after this long in seconds: 0 (never) or 10 s to 7 days.")
    max_per_environment: int = Field(default=1, ge=1, le=20, strict=True, description="Active sessions per student and "
                                     "environment.")
    network: Literal["none", "index"] = Field(default="index", description="index: the package index is "
                                              "reachable (on the local target: the bridge network); none: nothing.")
    instructors_may_open: bool = Field(default=False, strict=True, description=(
        "The workspace's instructors and admins may open its students' sessions (to help them); otherwise only "
        "a session's owner can."))



# --- workspace quotas (issue 17 item 4) ---------------------------------------------------------------

STORAGE_COUNTED = ("storage counts the workspace's datasets (each stored file once) and the outputs its runs kept "
                   "(logs.txt, metrics.json, /outputs files); not counted: uploaded code archives, environment "
                   "images, session home folders")


class QuotaLimits(_In):
    """A workspace's limits; 0 means no limit."""

    max_concurrent_runs: int = Field(default=0, ge=0, le=1000, strict=True, description=(
        "Runs, sessions and model servers going at once in the whole workspace (0: no limit). A run or session "
        "beyond it is refused with 429 and Retry-After; nothing is started."))
    max_concurrent_runs_per_member: int = Field(default=0, ge=0, le=1000, strict=True, description=(
        "Runs and sessions one member (a student, typically) may have going at once (0: no limit)."))
    max_storage_bytes: int = Field(default=0, ge=0, le=1 << 50, strict=True, description=(
        "Bytes the workspace may keep (0: no limit): " + STORAGE_COUNTED + ". A dataset upload that would go "
        "beyond it, and a run started while the workspace is at or over it, are refused with 409 saying what is "
        "used and allowed; nothing is stored or started."))


class QuotaUsage(BaseModel):
    concurrent: int = Field(description="Runs + sessions + model servers going now (what max_concurrent_runs counts).")
    runs: int = Field(description="Runs queued, starting or running.")
    sessions: int = Field(description="Sessions starting or running.")
    model_servers: int = Field(description="Model servers deploying or serving.")
    yours: int = Field(description="The caller's own runs and sessions going now.")
    storage_bytes: int = Field(description="dataset_bytes + output_bytes (what max_storage_bytes counts).")
    dataset_bytes: int
    output_bytes: int


class WorkspaceQuotas(BaseModel):
    """The limits and what the workspace uses now."""

    workspace: str
    limits: QuotaLimits
    usage: QuotaUsage
    counted: str = Field(default=STORAGE_COUNTED, description="What storage counts, in words.")
    updated_by: str = ""
    can_change: bool = Field(description="The caller may change the limits (instructors and admins).")

    @classmethod
    def of(cls, u: runner_pb2.QuotaUsage, dataset_bytes: int, can_change: bool) -> WorkspaceQuotas:
        q = u.quota
        return cls(workspace=q.workspace, updated_by=q.updated_by, can_change=can_change, limits=QuotaLimits(
            max_concurrent_runs=q.max_concurrent_runs, max_concurrent_runs_per_member=q.max_concurrent_runs_per_user,
            max_storage_bytes=q.max_storage_bytes), usage=QuotaUsage(
            concurrent=u.active_runs + u.active_sessions + u.active_models, runs=u.active_runs,
            sessions=u.active_sessions, model_servers=u.active_models, yours=u.caller_active,
            storage_bytes=dataset_bytes + u.output_bytes, dataset_bytes=dataset_bytes, output_bytes=u.output_bytes))

# --- model serving (issue 15) -----------------------------------------------------------------------

# The runner's ``check_name``: a model's name is also a DNS label of its Kubernetes objects.
MODEL_NAME_PATTERN = pattern(r"^[a-z][a-z0-9-]{0,62}$",
                             "use 1-63 lower-case letters, digits and '-', starting with a letter")
OPTIONAL_MODEL_NAME_PATTERN = pattern(r"^$|^[a-z][a-z0-9-]{0,62}$",
                                      "leave it empty or use 1-63 lower-case letters, digits and '-', starting "
                                      "with a letter")
ARTIFACT_PATTERN = pattern(r"^[A-Za-z0-9_][A-Za-z0-9._/-]{0,499}$",
                           "give the output's path as the run lists it (e.g. model.joblib): letters, digits, "
                           "'.', '_', '-' and '/', not starting with '/' or '.'")
ModelState = Literal["deploying", "serving", "stopped", "failed"]


class ModelDeploy(_In):
    run_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$",
                        description="The run whose output to serve; it must have succeeded. The model is served "
                                    "in this run's own image digest.")
    artifact: str = Field(pattern=ARTIFACT_PATTERN,
                          description="The output to serve, by its name among the run's outputs: a scikit-learn "
                                      "joblib/pickle (.joblib, .pkl), an ONNX file (.onnx) or a score.py with "
                                      "init() and run(inputs).")
    name: str = Field(default="", max_length=63, pattern=OPTIONAL_MODEL_NAME_PATTERN,
                      description="The model's name (its stable URL is /serve/<ws>/<name>/v2/...). Empty: "
                                  "taken from the artifact's file name. Deploying to an existing name makes a new "
                                  "version of it.")
    sample_rate: float = Field(default=1.0, gt=0, le=1,
                               description="Share of requests whose inputs and predictions are collected for "
                                           "monitoring, above 0 and at most 1.")
    webhook_url: str = Field(default="", max_length=1000, pattern=r"^(https?://[^\s]+)?$",
                             description="Where drift and accuracy alerts are POSTed as JSON (workspace, model, "
                                         "version, kind, window_start, detail); only public addresses are called "
                                         "unless the operator allows private ones. Shown afterwards as its host "
                                         "only: its path may hold the hook's secret.")


class ModelVersion(BaseModel):
    workspace: str
    name: str
    version: int = Field(description="1, 2, ...: each deploy of the name is a new version.")
    run_id: str = Field(description="The run the artifact came from (provenance: its code, data, environment).")
    image: str = Field(description="The run's image, pinned by digest, that serves the model.")
    artifact: str
    kind: Literal["joblib", "pickle", "onnx", "score.py"]
    state: ModelState = Field(description="deploying, then serving (or failed with error); stopped once "
                                          "deleted.")
    active: bool = Field(description="Whether this version answers the model's stable URL.")
    target: str
    error: str | None
    created_by: str
    created: datetime | None
    webhook: str | None = Field(description="The alert webhook's scheme and host (null: none).")

    @classmethod
    def of(cls, m: serving_pb2.ModelVersion) -> ModelVersion:
        return cls(workspace=m.workspace, name=m.name, version=m.version, run_id=m.run_id, image=m.image,
                   artifact=m.artifact, kind=m.kind if m.kind in ("joblib", "pickle", "onnx") else "score.py",
                   state=m.state if m.state in ("deploying", "serving", "stopped") else "failed", active=m.active,
                   target=m.target, error=m.error or None, created_by=m.created_by, created=ts(m.created),
                   webhook=m.webhook_url or None)


class Model(BaseModel):
    workspace: str
    name: str
    active_version: int | None = Field(description="The version the stable URL serves (null: none).")
    url: str = Field(description="The stable Open Inference Protocol v2 base URL (through the gateway); "
                                 "authenticate with a model API key or your API token.")
    versions: list[ModelVersion] = Field(description="Every version, oldest first.")


class ModelList(BaseModel):
    items: list[Model]


class ModelRollback(_In):
    version: int = Field(ge=1, le=INT32_MAX, description="The version to serve at the stable URL (it must be "
                                                          "serving); an older one rolls back.")


class ModelKeyCreate(_In):
    label: str = Field(default="", max_length=200, pattern=TEXT_PATTERN,
                       description="What the key is for (shown in the list).")
    rate_per_minute: int = Field(default=0, ge=0, le=1_000_000,
                                 description="Requests per minute allowed with this key; 0: the gateway's "
                                             "default (REPROLAB_GATEWAY_SERVE_DEFAULT_RATE_PER_MINUTE).")


class ModelKey(BaseModel):
    id: str
    workspace: str
    name: str = Field(description="The model the key opens.")
    prefix: str = Field(description="The key's first characters, to tell keys apart; the rest is never shown "
                                    "again.")
    label: str
    created_by: str
    created: datetime | None
    revoked: bool
    rate_per_minute: int

    @classmethod
    def of(cls, k: serving_pb2.ModelKey) -> ModelKey:
        return cls(id=k.id, workspace=k.workspace, name=k.name, prefix=k.prefix, label=k.label,
                   created_by=k.created_by, created=ts(k.created), revoked=k.revoked,
                   rate_per_minute=k.rate_per_minute)


class CreatedModelKey(ModelKey):
    secret: str = Field(description="The key itself, shown this once: send it as 'Authorization: Bearer "
                                    "<secret>' to /serve/<ws>/<name>/v2/...")


class ModelKeyList(BaseModel):
    items: list[ModelKey]


class ModelAlert(BaseModel):
    id: str
    kind: Literal["drift", "accuracy"] = Field(description="drift: the inputs of a window drifted from the "
                                                           "training data; accuracy: late labels say the model "
                                                           "was wrong too often.")
    version: int
    window_start: str = Field(description="Start of the window (ISO 8601, UTC) the alert is about.")
    detail: str
    created: datetime | None


class ModelReference(BaseModel):
    dataset: str = Field(description="The run's dataset whose columns stand for the model's inputs.")
    rows: int


class ModelMonitoring(BaseModel):
    """A monitoring report: per window, feature statistics and drift against the training data, class shares
    (or the prediction distribution) and accuracy once labels arrived; and every alert of the model."""

    model: str
    window: Literal["hour", "day"]
    features: list[str] = Field(description="The model's input features, named by the reference's columns "
                                            "when it has one.")
    reference: ModelReference | None = Field(
        description="The training data compared against; null when none of the run's datasets (CSV, TSV, "
                    "Parquet) has columns that match the inputs: then there are statistics but no drift.")
    updated: str | None = Field(description="When the report was computed (ISO 8601).")
    reference_stats: dict[str, dict[str, Any]] = Field(
        description="Per feature: count, missing, missing_share, mean, median, std, min, max, cv of the "
                    "reference.")
    stats: dict[str, dict[str, dict[str, Any]]] = Field(
        description="Per window start, per feature: the same statistics over the requests of that window.")
    windows: list[dict[str, Any]] = Field(
        description="Per window: start, count and drift (null without a reference): drifted, drifted_count, "
                    "drifted_share, share, and per feature its kind, test (ks, chi2, z, wasserstein, "
                    "jensenshannon), score, threshold and whether it drifted.")
    predictions: list[dict[str, Any]] = Field(
        description="Per window: count, class_shares (a classifier) or distribution (a regressor), labelled, "
                    "accuracy and mae once labels arrived.")
    alerts: list[ModelAlert]

    @classmethod
    def of(cls, r: serving_pb2.ModelMonitorReport) -> ModelMonitoring:
        doc = json.loads(r.report_json or "{}")
        return cls(model=doc.get("model", ""), window=doc.get("window", "hour"), features=doc.get("features", []),
                   reference=doc.get("reference"), updated=doc.get("updated"),
                   reference_stats=doc.get("reference_stats", {}), stats=doc.get("stats", {}),
                   windows=doc.get("windows", []), predictions=doc.get("predictions", []),
                   alerts=[ModelAlert(id=a.id, kind=a.kind if a.kind == "accuracy" else "drift", version=a.version,
                                      window_start=a.window_start, detail=a.detail, created=ts(a.created))
                           for a in r.alerts])
