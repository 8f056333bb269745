import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from reprolab.v1 import common_pb2 as _common_pb2
from reprolab.v1 import runner_pb2 as _runner_pb2
from reprolab.v1 import serving_pb2 as _serving_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Event(_message.Message):
    __slots__ = ("schema_version", "id", "type", "actor", "workspace", "time", "subject", "workspace_created", "member_added", "environment_created", "version_created", "dataset_uploaded", "dataset_downloaded", "activity_exported", "member_removed", "build", "run", "assignment_created", "credential", "version_exported", "account", "lti", "member_role_changed", "dataset_deleted", "session", "environment_archived", "environment_restored", "environment_deleted", "agent_entry", "model")
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_CREATED_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ADDED_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_CREATED_FIELD_NUMBER: _ClassVar[int]
    VERSION_CREATED_FIELD_NUMBER: _ClassVar[int]
    DATASET_UPLOADED_FIELD_NUMBER: _ClassVar[int]
    DATASET_DOWNLOADED_FIELD_NUMBER: _ClassVar[int]
    ACTIVITY_EXPORTED_FIELD_NUMBER: _ClassVar[int]
    MEMBER_REMOVED_FIELD_NUMBER: _ClassVar[int]
    BUILD_FIELD_NUMBER: _ClassVar[int]
    RUN_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENT_CREATED_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    VERSION_EXPORTED_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    LTI_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ROLE_CHANGED_FIELD_NUMBER: _ClassVar[int]
    DATASET_DELETED_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_ARCHIVED_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_RESTORED_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_DELETED_FIELD_NUMBER: _ClassVar[int]
    AGENT_ENTRY_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    schema_version: _common_pb2.SchemaVersion
    id: str
    type: str
    actor: _common_pb2.Actor
    workspace: str
    time: _timestamp_pb2.Timestamp
    subject: str
    workspace_created: WorkspaceCreated
    member_added: MemberAdded
    environment_created: EnvironmentCreated
    version_created: VersionCreated
    dataset_uploaded: DatasetUploaded
    dataset_downloaded: DatasetDownloaded
    activity_exported: ActivityExported
    member_removed: MemberRemoved
    build: BuildEvent
    run: _runner_pb2.RunEvent
    assignment_created: AssignmentCreated
    credential: _runner_pb2.CredentialEvent
    version_exported: VersionExported
    account: AccountEvent
    lti: LtiEvent
    member_role_changed: MemberRoleChanged
    dataset_deleted: DatasetDeleted
    session: _runner_pb2.SessionEvent
    environment_archived: EnvironmentChange
    environment_restored: EnvironmentChange
    environment_deleted: EnvironmentChange
    agent_entry: AgentEntry
    model: _serving_pb2.ModelEvent
    def __init__(self, schema_version: _Optional[_Union[_common_pb2.SchemaVersion, str]] = ..., id: _Optional[str] = ..., type: _Optional[str] = ..., actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., subject: _Optional[str] = ..., workspace_created: _Optional[_Union[WorkspaceCreated, _Mapping]] = ..., member_added: _Optional[_Union[MemberAdded, _Mapping]] = ..., environment_created: _Optional[_Union[EnvironmentCreated, _Mapping]] = ..., version_created: _Optional[_Union[VersionCreated, _Mapping]] = ..., dataset_uploaded: _Optional[_Union[DatasetUploaded, _Mapping]] = ..., dataset_downloaded: _Optional[_Union[DatasetDownloaded, _Mapping]] = ..., activity_exported: _Optional[_Union[ActivityExported, _Mapping]] = ..., member_removed: _Optional[_Union[MemberRemoved, _Mapping]] = ..., build: _Optional[_Union[BuildEvent, _Mapping]] = ..., run: _Optional[_Union[_runner_pb2.RunEvent, _Mapping]] = ..., assignment_created: _Optional[_Union[AssignmentCreated, _Mapping]] = ..., credential: _Optional[_Union[_runner_pb2.CredentialEvent, _Mapping]] = ..., version_exported: _Optional[_Union[VersionExported, _Mapping]] = ..., account: _Optional[_Union[AccountEvent, _Mapping]] = ..., lti: _Optional[_Union[LtiEvent, _Mapping]] = ..., member_role_changed: _Optional[_Union[MemberRoleChanged, _Mapping]] = ..., dataset_deleted: _Optional[_Union[DatasetDeleted, _Mapping]] = ..., session: _Optional[_Union[_runner_pb2.SessionEvent, _Mapping]] = ..., environment_archived: _Optional[_Union[EnvironmentChange, _Mapping]] = ..., environment_restored: _Optional[_Union[EnvironmentChange, _Mapping]] = ..., environment_deleted: _Optional[_Union[EnvironmentChange, _Mapping]] = ..., agent_entry: _Optional[_Union[AgentEntry, _Mapping]] = ..., model: _Optional[_Union[_serving_pb2.ModelEvent, _Mapping]] = ...) -> None: ...

class WorkspaceCreated(_message.Message):
    __slots__ = ("slug", "title")
    SLUG_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    slug: str
    title: str
    def __init__(self, slug: _Optional[str] = ..., title: _Optional[str] = ...) -> None: ...

class MemberAdded(_message.Message):
    __slots__ = ("user_id", "username", "role")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    username: str
    role: _common_pb2.Role
    def __init__(self, user_id: _Optional[str] = ..., username: _Optional[str] = ..., role: _Optional[_Union[_common_pb2.Role, str]] = ...) -> None: ...

class MemberRemoved(_message.Message):
    __slots__ = ("user_id", "username", "role")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    username: str
    role: _common_pb2.Role
    def __init__(self, user_id: _Optional[str] = ..., username: _Optional[str] = ..., role: _Optional[_Union[_common_pb2.Role, str]] = ...) -> None: ...

class MemberRoleChanged(_message.Message):
    __slots__ = ("user_id", "username", "role", "previous_role")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_ROLE_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    username: str
    role: _common_pb2.Role
    previous_role: _common_pb2.Role
    def __init__(self, user_id: _Optional[str] = ..., username: _Optional[str] = ..., role: _Optional[_Union[_common_pb2.Role, str]] = ..., previous_role: _Optional[_Union[_common_pb2.Role, str]] = ...) -> None: ...

class EnvironmentChange(_message.Message):
    __slots__ = ("name", "kind", "owner", "forked_from", "versions")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    FORKED_FROM_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: str
    owner: str
    forked_from: str
    versions: int
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[str] = ..., owner: _Optional[str] = ..., forked_from: _Optional[str] = ..., versions: _Optional[int] = ...) -> None: ...

class EnvironmentCreated(_message.Message):
    __slots__ = ("name", "owner", "forked_from", "imported_from", "repository_digest")
    NAME_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    FORKED_FROM_FIELD_NUMBER: _ClassVar[int]
    IMPORTED_FROM_FIELD_NUMBER: _ClassVar[int]
    REPOSITORY_DIGEST_FIELD_NUMBER: _ClassVar[int]
    name: str
    owner: str
    forked_from: str
    imported_from: str
    repository_digest: str
    def __init__(self, name: _Optional[str] = ..., owner: _Optional[str] = ..., forked_from: _Optional[str] = ..., imported_from: _Optional[str] = ..., repository_digest: _Optional[str] = ...) -> None: ...

class VersionCreated(_message.Message):
    __slots__ = ("environment", "number", "spec_digest", "parent", "origin", "rollback_to")
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    SPEC_DIGEST_FIELD_NUMBER: _ClassVar[int]
    PARENT_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    ROLLBACK_TO_FIELD_NUMBER: _ClassVar[int]
    environment: str
    number: int
    spec_digest: str
    parent: str
    origin: str
    rollback_to: int
    def __init__(self, environment: _Optional[str] = ..., number: _Optional[int] = ..., spec_digest: _Optional[str] = ..., parent: _Optional[str] = ..., origin: _Optional[str] = ..., rollback_to: _Optional[int] = ...) -> None: ...

class DatasetUploaded(_message.Message):
    __slots__ = ("name", "digest", "size", "visibility")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    VISIBILITY_FIELD_NUMBER: _ClassVar[int]
    name: str
    digest: str
    size: int
    visibility: str
    def __init__(self, name: _Optional[str] = ..., digest: _Optional[str] = ..., size: _Optional[int] = ..., visibility: _Optional[str] = ...) -> None: ...

class DatasetDeleted(_message.Message):
    __slots__ = ("name", "digest", "size", "bytes_freed")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    BYTES_FREED_FIELD_NUMBER: _ClassVar[int]
    name: str
    digest: str
    size: int
    bytes_freed: bool
    def __init__(self, name: _Optional[str] = ..., digest: _Optional[str] = ..., size: _Optional[int] = ..., bytes_freed: _Optional[bool] = ...) -> None: ...

class DatasetDownloaded(_message.Message):
    __slots__ = ("name", "digest")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    name: str
    digest: str
    def __init__(self, name: _Optional[str] = ..., digest: _Optional[str] = ...) -> None: ...

class VersionExported(_message.Message):
    __slots__ = ("environment", "version", "kind", "destination", "image_digest")
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    IMAGE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    environment: str
    version: int
    kind: str
    destination: str
    image_digest: str
    def __init__(self, environment: _Optional[str] = ..., version: _Optional[int] = ..., kind: _Optional[str] = ..., destination: _Optional[str] = ..., image_digest: _Optional[str] = ...) -> None: ...

class AccountEvent(_message.Message):
    __slots__ = ("username", "method", "address", "reason", "role", "issuer", "external_subject", "count", "ref")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    ISSUER_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_SUBJECT_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    REF_FIELD_NUMBER: _ClassVar[int]
    username: str
    method: str
    address: str
    reason: str
    role: str
    issuer: str
    external_subject: str
    count: int
    ref: str
    def __init__(self, username: _Optional[str] = ..., method: _Optional[str] = ..., address: _Optional[str] = ..., reason: _Optional[str] = ..., role: _Optional[str] = ..., issuer: _Optional[str] = ..., external_subject: _Optional[str] = ..., count: _Optional[int] = ..., ref: _Optional[str] = ...) -> None: ...

class LtiEvent(_message.Message):
    __slots__ = ("issuer", "client_id", "deployment_id", "context_id", "lms_subject", "username", "message_type", "role", "outcome", "reason", "assignment", "score", "line_item", "count", "address", "previous_role")
    ISSUER_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    LMS_SUBJECT_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_TYPE_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    LINE_ITEM_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_ROLE_FIELD_NUMBER: _ClassVar[int]
    issuer: str
    client_id: str
    deployment_id: str
    context_id: str
    lms_subject: str
    username: str
    message_type: str
    role: str
    outcome: str
    reason: str
    assignment: str
    score: str
    line_item: str
    count: int
    address: str
    previous_role: str
    def __init__(self, issuer: _Optional[str] = ..., client_id: _Optional[str] = ..., deployment_id: _Optional[str] = ..., context_id: _Optional[str] = ..., lms_subject: _Optional[str] = ..., username: _Optional[str] = ..., message_type: _Optional[str] = ..., role: _Optional[str] = ..., outcome: _Optional[str] = ..., reason: _Optional[str] = ..., assignment: _Optional[str] = ..., score: _Optional[str] = ..., line_item: _Optional[str] = ..., count: _Optional[int] = ..., address: _Optional[str] = ..., previous_role: _Optional[str] = ...) -> None: ...

class ActivityExported(_message.Message):
    __slots__ = ("entries", "bundle_sha256")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_SHA256_FIELD_NUMBER: _ClassVar[int]
    entries: int
    bundle_sha256: str
    def __init__(self, entries: _Optional[int] = ..., bundle_sha256: _Optional[str] = ...) -> None: ...

class BuildEvent(_message.Message):
    __slots__ = ("build_id", "environment", "version", "lock_digest", "image_ref", "image_digest", "error")
    BUILD_ID_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LOCK_DIGEST_FIELD_NUMBER: _ClassVar[int]
    IMAGE_REF_FIELD_NUMBER: _ClassVar[int]
    IMAGE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    build_id: str
    environment: str
    version: int
    lock_digest: str
    image_ref: str
    image_digest: str
    error: str
    def __init__(self, build_id: _Optional[str] = ..., environment: _Optional[str] = ..., version: _Optional[int] = ..., lock_digest: _Optional[str] = ..., image_ref: _Optional[str] = ..., image_digest: _Optional[str] = ..., error: _Optional[str] = ...) -> None: ...

class AssignmentCreated(_message.Message):
    __slots__ = ("name", "environment", "version", "evaluation_code_digest", "labels_digest", "metric", "higher_is_better")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_CODE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    LABELS_DIGEST_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    HIGHER_IS_BETTER_FIELD_NUMBER: _ClassVar[int]
    name: str
    environment: str
    version: int
    evaluation_code_digest: str
    labels_digest: str
    metric: str
    higher_is_better: bool
    def __init__(self, name: _Optional[str] = ..., environment: _Optional[str] = ..., version: _Optional[int] = ..., evaluation_code_digest: _Optional[str] = ..., labels_digest: _Optional[str] = ..., metric: _Optional[str] = ..., higher_is_better: _Optional[bool] = ...) -> None: ...

class AgentEntry(_message.Message):
    __slots__ = ("chain", "seq", "kind", "details_json", "entry_time", "prev_hash", "hash", "origin", "run_id", "lock_digest", "chain_ok")
    CHAIN_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DETAILS_JSON_FIELD_NUMBER: _ClassVar[int]
    ENTRY_TIME_FIELD_NUMBER: _ClassVar[int]
    PREV_HASH_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    LOCK_DIGEST_FIELD_NUMBER: _ClassVar[int]
    CHAIN_OK_FIELD_NUMBER: _ClassVar[int]
    chain: str
    seq: int
    kind: str
    details_json: str
    entry_time: str
    prev_hash: str
    hash: str
    origin: str
    run_id: str
    lock_digest: str
    chain_ok: bool
    def __init__(self, chain: _Optional[str] = ..., seq: _Optional[int] = ..., kind: _Optional[str] = ..., details_json: _Optional[str] = ..., entry_time: _Optional[str] = ..., prev_hash: _Optional[str] = ..., hash: _Optional[str] = ..., origin: _Optional[str] = ..., run_id: _Optional[str] = ..., lock_digest: _Optional[str] = ..., chain_ok: _Optional[bool] = ...) -> None: ...
