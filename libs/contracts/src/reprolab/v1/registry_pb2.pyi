import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from reprolab.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Workspace(_message.Message):
    __slots__ = ("slug", "title", "created_at", "caller_role", "caller_is_member")
    SLUG_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    CALLER_ROLE_FIELD_NUMBER: _ClassVar[int]
    CALLER_IS_MEMBER_FIELD_NUMBER: _ClassVar[int]
    slug: str
    title: str
    created_at: _timestamp_pb2.Timestamp
    caller_role: _common_pb2.Role
    caller_is_member: bool
    def __init__(self, slug: _Optional[str] = ..., title: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., caller_role: _Optional[_Union[_common_pb2.Role, str]] = ..., caller_is_member: _Optional[bool] = ...) -> None: ...

class Member(_message.Message):
    __slots__ = ("user_id", "username", "role", "added_at")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    ADDED_AT_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    username: str
    role: _common_pb2.Role
    added_at: _timestamp_pb2.Timestamp
    def __init__(self, user_id: _Optional[str] = ..., username: _Optional[str] = ..., role: _Optional[_Union[_common_pb2.Role, str]] = ..., added_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Version(_message.Message):
    __slots__ = ("workspace", "environment", "number", "spec_json", "spec_digest", "parent", "origin", "rollback_to", "created_by", "created_at", "note", "lock_digest", "image_ref", "image_digest")
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    SPEC_JSON_FIELD_NUMBER: _ClassVar[int]
    SPEC_DIGEST_FIELD_NUMBER: _ClassVar[int]
    PARENT_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    ROLLBACK_TO_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    LOCK_DIGEST_FIELD_NUMBER: _ClassVar[int]
    IMAGE_REF_FIELD_NUMBER: _ClassVar[int]
    IMAGE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    workspace: str
    environment: str
    number: int
    spec_json: str
    spec_digest: str
    parent: str
    origin: str
    rollback_to: int
    created_by: str
    created_at: _timestamp_pb2.Timestamp
    note: str
    lock_digest: str
    image_ref: str
    image_digest: str
    def __init__(self, workspace: _Optional[str] = ..., environment: _Optional[str] = ..., number: _Optional[int] = ..., spec_json: _Optional[str] = ..., spec_digest: _Optional[str] = ..., parent: _Optional[str] = ..., origin: _Optional[str] = ..., rollback_to: _Optional[int] = ..., created_by: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., note: _Optional[str] = ..., lock_digest: _Optional[str] = ..., image_ref: _Optional[str] = ..., image_digest: _Optional[str] = ...) -> None: ...

class Environment(_message.Message):
    __slots__ = ("workspace", "name", "description", "owner", "forked_from", "latest_version", "created_at", "latest", "kind", "caller_can_change", "archived_at")
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    FORKED_FROM_FIELD_NUMBER: _ClassVar[int]
    LATEST_VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    LATEST_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CALLER_CAN_CHANGE_FIELD_NUMBER: _ClassVar[int]
    ARCHIVED_AT_FIELD_NUMBER: _ClassVar[int]
    workspace: str
    name: str
    description: str
    owner: str
    forked_from: str
    latest_version: int
    created_at: _timestamp_pb2.Timestamp
    latest: Version
    kind: str
    caller_can_change: bool
    archived_at: _timestamp_pb2.Timestamp
    def __init__(self, workspace: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., owner: _Optional[str] = ..., forked_from: _Optional[str] = ..., latest_version: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., latest: _Optional[_Union[Version, _Mapping]] = ..., kind: _Optional[str] = ..., caller_can_change: _Optional[bool] = ..., archived_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Dataset(_message.Message):
    __slots__ = ("workspace", "name", "digest", "size", "media_type", "visibility", "object_key", "uploaded_by", "created_at")
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    VISIBILITY_FIELD_NUMBER: _ClassVar[int]
    OBJECT_KEY_FIELD_NUMBER: _ClassVar[int]
    UPLOADED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    workspace: str
    name: str
    digest: str
    size: int
    media_type: str
    visibility: str
    object_key: str
    uploaded_by: str
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, workspace: _Optional[str] = ..., name: _Optional[str] = ..., digest: _Optional[str] = ..., size: _Optional[int] = ..., media_type: _Optional[str] = ..., visibility: _Optional[str] = ..., object_key: _Optional[str] = ..., uploaded_by: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateWorkspaceRequest(_message.Message):
    __slots__ = ("actor", "slug", "title")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    SLUG_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    slug: str
    title: str
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., slug: _Optional[str] = ..., title: _Optional[str] = ...) -> None: ...

class ListWorkspacesRequest(_message.Message):
    __slots__ = ("actor",)
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ...) -> None: ...

class WorkspaceList(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Workspace]
    def __init__(self, items: _Optional[_Iterable[_Union[Workspace, _Mapping]]] = ...) -> None: ...

class GetWorkspaceRequest(_message.Message):
    __slots__ = ("actor", "workspace")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ...) -> None: ...

class AddMemberRequest(_message.Message):
    __slots__ = ("actor", "workspace", "user_id", "username", "role")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    user_id: str
    username: str
    role: _common_pb2.Role
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., user_id: _Optional[str] = ..., username: _Optional[str] = ..., role: _Optional[_Union[_common_pb2.Role, str]] = ...) -> None: ...

class ListMembersRequest(_message.Message):
    __slots__ = ("actor", "workspace")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ...) -> None: ...

class UpdateMemberRequest(_message.Message):
    __slots__ = ("actor", "workspace", "user_id", "role")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    user_id: str
    role: _common_pb2.Role
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., user_id: _Optional[str] = ..., role: _Optional[_Union[_common_pb2.Role, str]] = ...) -> None: ...

class RemoveMemberRequest(_message.Message):
    __slots__ = ("actor", "workspace", "user_id")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    user_id: str
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., user_id: _Optional[str] = ...) -> None: ...

class MemberList(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Member]
    def __init__(self, items: _Optional[_Iterable[_Union[Member, _Mapping]]] = ...) -> None: ...

class CreateEnvironmentRequest(_message.Message):
    __slots__ = ("actor", "workspace", "name", "description", "spec_json", "imported_from", "repository_digest")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SPEC_JSON_FIELD_NUMBER: _ClassVar[int]
    IMPORTED_FROM_FIELD_NUMBER: _ClassVar[int]
    REPOSITORY_DIGEST_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    name: str
    description: str
    spec_json: str
    imported_from: str
    repository_digest: str
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., spec_json: _Optional[str] = ..., imported_from: _Optional[str] = ..., repository_digest: _Optional[str] = ...) -> None: ...

class ListEnvironmentsRequest(_message.Message):
    __slots__ = ("actor", "workspace", "include_archived")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_ARCHIVED_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    include_archived: bool
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., include_archived: _Optional[bool] = ...) -> None: ...

class EnvironmentList(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Environment]
    def __init__(self, items: _Optional[_Iterable[_Union[Environment, _Mapping]]] = ...) -> None: ...

class GetEnvironmentRequest(_message.Message):
    __slots__ = ("actor", "workspace", "environment")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    environment: str
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., environment: _Optional[str] = ...) -> None: ...

class ArchiveEnvironmentRequest(_message.Message):
    __slots__ = ("actor", "workspace", "environment", "archived")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    ARCHIVED_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    environment: str
    archived: bool
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., environment: _Optional[str] = ..., archived: _Optional[bool] = ...) -> None: ...

class DeleteEnvironmentRequest(_message.Message):
    __slots__ = ("actor", "workspace", "environment", "runs")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    RUNS_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    environment: str
    runs: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., environment: _Optional[str] = ..., runs: _Optional[_Iterable[str]] = ...) -> None: ...

class CreateVersionRequest(_message.Message):
    __slots__ = ("actor", "workspace", "environment", "spec_json", "rollback_to", "note", "parent_version")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    SPEC_JSON_FIELD_NUMBER: _ClassVar[int]
    ROLLBACK_TO_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    PARENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    environment: str
    spec_json: str
    rollback_to: int
    note: str
    parent_version: int
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., environment: _Optional[str] = ..., spec_json: _Optional[str] = ..., rollback_to: _Optional[int] = ..., note: _Optional[str] = ..., parent_version: _Optional[int] = ...) -> None: ...

class ListVersionsRequest(_message.Message):
    __slots__ = ("actor", "workspace", "environment")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    environment: str
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., environment: _Optional[str] = ...) -> None: ...

class VersionList(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Version]
    def __init__(self, items: _Optional[_Iterable[_Union[Version, _Mapping]]] = ...) -> None: ...

class GetVersionRequest(_message.Message):
    __slots__ = ("actor", "workspace", "environment", "number", "export_kind", "export_destination", "export_digest")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    EXPORT_KIND_FIELD_NUMBER: _ClassVar[int]
    EXPORT_DESTINATION_FIELD_NUMBER: _ClassVar[int]
    EXPORT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    environment: str
    number: int
    export_kind: str
    export_destination: str
    export_digest: str
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., environment: _Optional[str] = ..., number: _Optional[int] = ..., export_kind: _Optional[str] = ..., export_destination: _Optional[str] = ..., export_digest: _Optional[str] = ...) -> None: ...

class ForkEnvironmentRequest(_message.Message):
    __slots__ = ("actor", "workspace", "environment", "version", "new_name", "target_workspace")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    NEW_NAME_FIELD_NUMBER: _ClassVar[int]
    TARGET_WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    environment: str
    version: int
    new_name: str
    target_workspace: str
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., environment: _Optional[str] = ..., version: _Optional[int] = ..., new_name: _Optional[str] = ..., target_workspace: _Optional[str] = ...) -> None: ...

class RegisterDatasetRequest(_message.Message):
    __slots__ = ("actor", "workspace", "name", "digest", "size", "media_type", "visibility", "object_key")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    VISIBILITY_FIELD_NUMBER: _ClassVar[int]
    OBJECT_KEY_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    name: str
    digest: str
    size: int
    media_type: str
    visibility: str
    object_key: str
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., name: _Optional[str] = ..., digest: _Optional[str] = ..., size: _Optional[int] = ..., media_type: _Optional[str] = ..., visibility: _Optional[str] = ..., object_key: _Optional[str] = ...) -> None: ...

class ListDatasetsRequest(_message.Message):
    __slots__ = ("actor", "workspace")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ...) -> None: ...

class DatasetList(_message.Message):
    __slots__ = ("items", "total_bytes")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Dataset]
    total_bytes: int
    def __init__(self, items: _Optional[_Iterable[_Union[Dataset, _Mapping]]] = ..., total_bytes: _Optional[int] = ...) -> None: ...

class GetDatasetRequest(_message.Message):
    __slots__ = ("actor", "workspace", "digest", "for_download")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    FOR_DOWNLOAD_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    digest: str
    for_download: bool
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., digest: _Optional[str] = ..., for_download: _Optional[bool] = ...) -> None: ...

class DeleteDatasetRequest(_message.Message):
    __slots__ = ("actor", "workspace", "digest")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    digest: str
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., digest: _Optional[str] = ...) -> None: ...

class DatasetDeletion(_message.Message):
    __slots__ = ("dataset", "object_unreferenced")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    OBJECT_UNREFERENCED_FIELD_NUMBER: _ClassVar[int]
    dataset: Dataset
    object_unreferenced: bool
    def __init__(self, dataset: _Optional[_Union[Dataset, _Mapping]] = ..., object_unreferenced: _Optional[bool] = ...) -> None: ...

class RecordImageRequest(_message.Message):
    __slots__ = ("actor", "workspace", "environment", "number", "lock_digest", "image_ref", "image_digest")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    LOCK_DIGEST_FIELD_NUMBER: _ClassVar[int]
    IMAGE_REF_FIELD_NUMBER: _ClassVar[int]
    IMAGE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    environment: str
    number: int
    lock_digest: str
    image_ref: str
    image_digest: str
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., environment: _Optional[str] = ..., number: _Optional[int] = ..., lock_digest: _Optional[str] = ..., image_ref: _Optional[str] = ..., image_digest: _Optional[str] = ...) -> None: ...

class Assignment(_message.Message):
    __slots__ = ("workspace", "name", "title", "environment", "version", "evaluation_code_digest", "evaluation_code_key", "labels_digest", "labels_name", "labels_key", "predictions", "metric", "higher_is_better", "command", "created_by", "created_at", "instructions", "starter_code_digest", "starter_code_key", "opens_at", "due_at", "late_policy", "late_penalty_percent", "daily_limit", "anonymous", "grade_by", "evaluation_revision", "past_due")
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_CODE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_CODE_KEY_FIELD_NUMBER: _ClassVar[int]
    LABELS_DIGEST_FIELD_NUMBER: _ClassVar[int]
    LABELS_NAME_FIELD_NUMBER: _ClassVar[int]
    LABELS_KEY_FIELD_NUMBER: _ClassVar[int]
    PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    HIGHER_IS_BETTER_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    INSTRUCTIONS_FIELD_NUMBER: _ClassVar[int]
    STARTER_CODE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    STARTER_CODE_KEY_FIELD_NUMBER: _ClassVar[int]
    OPENS_AT_FIELD_NUMBER: _ClassVar[int]
    DUE_AT_FIELD_NUMBER: _ClassVar[int]
    LATE_POLICY_FIELD_NUMBER: _ClassVar[int]
    LATE_PENALTY_PERCENT_FIELD_NUMBER: _ClassVar[int]
    DAILY_LIMIT_FIELD_NUMBER: _ClassVar[int]
    ANONYMOUS_FIELD_NUMBER: _ClassVar[int]
    GRADE_BY_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_REVISION_FIELD_NUMBER: _ClassVar[int]
    PAST_DUE_FIELD_NUMBER: _ClassVar[int]
    workspace: str
    name: str
    title: str
    environment: str
    version: int
    evaluation_code_digest: str
    evaluation_code_key: str
    labels_digest: str
    labels_name: str
    labels_key: str
    predictions: str
    metric: str
    higher_is_better: bool
    command: _containers.RepeatedScalarFieldContainer[str]
    created_by: str
    created_at: _timestamp_pb2.Timestamp
    instructions: str
    starter_code_digest: str
    starter_code_key: str
    opens_at: _timestamp_pb2.Timestamp
    due_at: _timestamp_pb2.Timestamp
    late_policy: str
    late_penalty_percent: int
    daily_limit: int
    anonymous: bool
    grade_by: str
    evaluation_revision: int
    past_due: bool
    def __init__(self, workspace: _Optional[str] = ..., name: _Optional[str] = ..., title: _Optional[str] = ..., environment: _Optional[str] = ..., version: _Optional[int] = ..., evaluation_code_digest: _Optional[str] = ..., evaluation_code_key: _Optional[str] = ..., labels_digest: _Optional[str] = ..., labels_name: _Optional[str] = ..., labels_key: _Optional[str] = ..., predictions: _Optional[str] = ..., metric: _Optional[str] = ..., higher_is_better: _Optional[bool] = ..., command: _Optional[_Iterable[str]] = ..., created_by: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., instructions: _Optional[str] = ..., starter_code_digest: _Optional[str] = ..., starter_code_key: _Optional[str] = ..., opens_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., due_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., late_policy: _Optional[str] = ..., late_penalty_percent: _Optional[int] = ..., daily_limit: _Optional[int] = ..., anonymous: _Optional[bool] = ..., grade_by: _Optional[str] = ..., evaluation_revision: _Optional[int] = ..., past_due: _Optional[bool] = ...) -> None: ...

class UpdateAssignmentRequest(_message.Message):
    __slots__ = ("actor", "workspace", "name", "fields", "title", "instructions", "starter_code_digest", "starter_code_key", "opens_at", "due_at", "late_policy", "late_penalty_percent", "daily_limit", "anonymous", "grade_by", "evaluation_code_digest", "evaluation_code_key", "command")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    INSTRUCTIONS_FIELD_NUMBER: _ClassVar[int]
    STARTER_CODE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    STARTER_CODE_KEY_FIELD_NUMBER: _ClassVar[int]
    OPENS_AT_FIELD_NUMBER: _ClassVar[int]
    DUE_AT_FIELD_NUMBER: _ClassVar[int]
    LATE_POLICY_FIELD_NUMBER: _ClassVar[int]
    LATE_PENALTY_PERCENT_FIELD_NUMBER: _ClassVar[int]
    DAILY_LIMIT_FIELD_NUMBER: _ClassVar[int]
    ANONYMOUS_FIELD_NUMBER: _ClassVar[int]
    GRADE_BY_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_CODE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_CODE_KEY_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    name: str
    fields: _containers.RepeatedScalarFieldContainer[str]
    title: str
    instructions: str
    starter_code_digest: str
    starter_code_key: str
    opens_at: _timestamp_pb2.Timestamp
    due_at: _timestamp_pb2.Timestamp
    late_policy: str
    late_penalty_percent: int
    daily_limit: int
    anonymous: bool
    grade_by: str
    evaluation_code_digest: str
    evaluation_code_key: str
    command: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., name: _Optional[str] = ..., fields: _Optional[_Iterable[str]] = ..., title: _Optional[str] = ..., instructions: _Optional[str] = ..., starter_code_digest: _Optional[str] = ..., starter_code_key: _Optional[str] = ..., opens_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., due_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., late_policy: _Optional[str] = ..., late_penalty_percent: _Optional[int] = ..., daily_limit: _Optional[int] = ..., anonymous: _Optional[bool] = ..., grade_by: _Optional[str] = ..., evaluation_code_digest: _Optional[str] = ..., evaluation_code_key: _Optional[str] = ..., command: _Optional[_Iterable[str]] = ...) -> None: ...

class AdmitSubmissionRequest(_message.Message):
    __slots__ = ("actor", "workspace", "assignment")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENT_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    assignment: str
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., assignment: _Optional[str] = ...) -> None: ...

class Admission(_message.Message):
    __slots__ = ("late", "penalty_percent", "remaining_today")
    LATE_FIELD_NUMBER: _ClassVar[int]
    PENALTY_PERCENT_FIELD_NUMBER: _ClassVar[int]
    REMAINING_TODAY_FIELD_NUMBER: _ClassVar[int]
    late: bool
    penalty_percent: int
    remaining_today: int
    def __init__(self, late: _Optional[bool] = ..., penalty_percent: _Optional[int] = ..., remaining_today: _Optional[int] = ...) -> None: ...

class RescoreTargets(_message.Message):
    __slots__ = ("assignment", "run_ids")
    ASSIGNMENT_FIELD_NUMBER: _ClassVar[int]
    RUN_IDS_FIELD_NUMBER: _ClassVar[int]
    assignment: Assignment
    run_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, assignment: _Optional[_Union[Assignment, _Mapping]] = ..., run_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class GradebookRequest(_message.Message):
    __slots__ = ("actor", "workspace", "assignment")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENT_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    assignment: str
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., assignment: _Optional[str] = ...) -> None: ...

class Feedback(_message.Message):
    __slots__ = ("run_id", "text", "author", "created_at")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    text: str
    author: str
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, run_id: _Optional[str] = ..., text: _Optional[str] = ..., author: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GradebookRow(_message.Message):
    __slots__ = ("user_id", "username", "run_id", "submitted_at", "late", "penalty_percent", "public_score", "private_score", "final_score", "submissions", "evaluation_revision", "feedback")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_AT_FIELD_NUMBER: _ClassVar[int]
    LATE_FIELD_NUMBER: _ClassVar[int]
    PENALTY_PERCENT_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_SCORE_FIELD_NUMBER: _ClassVar[int]
    PRIVATE_SCORE_FIELD_NUMBER: _ClassVar[int]
    FINAL_SCORE_FIELD_NUMBER: _ClassVar[int]
    SUBMISSIONS_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_REVISION_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    username: str
    run_id: str
    submitted_at: _timestamp_pb2.Timestamp
    late: bool
    penalty_percent: int
    public_score: str
    private_score: str
    final_score: str
    submissions: int
    evaluation_revision: int
    feedback: _containers.RepeatedCompositeFieldContainer[Feedback]
    def __init__(self, user_id: _Optional[str] = ..., username: _Optional[str] = ..., run_id: _Optional[str] = ..., submitted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., late: _Optional[bool] = ..., penalty_percent: _Optional[int] = ..., public_score: _Optional[str] = ..., private_score: _Optional[str] = ..., final_score: _Optional[str] = ..., submissions: _Optional[int] = ..., evaluation_revision: _Optional[int] = ..., feedback: _Optional[_Iterable[_Union[Feedback, _Mapping]]] = ...) -> None: ...

class Gradebook(_message.Message):
    __slots__ = ("assignment", "rows")
    ASSIGNMENT_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    assignment: Assignment
    rows: _containers.RepeatedCompositeFieldContainer[GradebookRow]
    def __init__(self, assignment: _Optional[_Union[Assignment, _Mapping]] = ..., rows: _Optional[_Iterable[_Union[GradebookRow, _Mapping]]] = ...) -> None: ...

class FeedbackRequest(_message.Message):
    __slots__ = ("actor", "workspace", "assignment", "run_id", "text")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENT_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    assignment: str
    run_id: str
    text: str
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., assignment: _Optional[str] = ..., run_id: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class CreateAssignmentRequest(_message.Message):
    __slots__ = ("actor", "workspace", "name", "title", "environment", "version", "evaluation_code_digest", "evaluation_code_key", "labels", "predictions", "metric", "higher_is_better", "command")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_CODE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_CODE_KEY_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    HIGHER_IS_BETTER_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    name: str
    title: str
    environment: str
    version: int
    evaluation_code_digest: str
    evaluation_code_key: str
    labels: str
    predictions: str
    metric: str
    higher_is_better: bool
    command: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., name: _Optional[str] = ..., title: _Optional[str] = ..., environment: _Optional[str] = ..., version: _Optional[int] = ..., evaluation_code_digest: _Optional[str] = ..., evaluation_code_key: _Optional[str] = ..., labels: _Optional[str] = ..., predictions: _Optional[str] = ..., metric: _Optional[str] = ..., higher_is_better: _Optional[bool] = ..., command: _Optional[_Iterable[str]] = ...) -> None: ...

class ListAssignmentsRequest(_message.Message):
    __slots__ = ("actor", "workspace")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ...) -> None: ...

class AssignmentList(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Assignment]
    def __init__(self, items: _Optional[_Iterable[_Union[Assignment, _Mapping]]] = ...) -> None: ...

class GetAssignmentRequest(_message.Message):
    __slots__ = ("actor", "workspace", "name", "for_run")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    FOR_RUN_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    name: str
    for_run: bool
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., name: _Optional[str] = ..., for_run: _Optional[bool] = ...) -> None: ...

class RecordScoreRequest(_message.Message):
    __slots__ = ("actor", "workspace", "assignment", "run_id", "user_id", "username", "score", "scored_at", "private_score", "evaluation_revision", "submitted_at")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENT_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    SCORED_AT_FIELD_NUMBER: _ClassVar[int]
    PRIVATE_SCORE_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_REVISION_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_AT_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    assignment: str
    run_id: str
    user_id: str
    username: str
    score: str
    scored_at: _timestamp_pb2.Timestamp
    private_score: str
    evaluation_revision: int
    submitted_at: _timestamp_pb2.Timestamp
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., assignment: _Optional[str] = ..., run_id: _Optional[str] = ..., user_id: _Optional[str] = ..., username: _Optional[str] = ..., score: _Optional[str] = ..., scored_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., private_score: _Optional[str] = ..., evaluation_revision: _Optional[int] = ..., submitted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Score(_message.Message):
    __slots__ = ("workspace", "assignment", "run_id", "user_id", "username", "score", "scored_at")
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENT_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    SCORED_AT_FIELD_NUMBER: _ClassVar[int]
    workspace: str
    assignment: str
    run_id: str
    user_id: str
    username: str
    score: str
    scored_at: _timestamp_pb2.Timestamp
    def __init__(self, workspace: _Optional[str] = ..., assignment: _Optional[str] = ..., run_id: _Optional[str] = ..., user_id: _Optional[str] = ..., username: _Optional[str] = ..., score: _Optional[str] = ..., scored_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class LeaderboardRequest(_message.Message):
    __slots__ = ("actor", "workspace", "assignment")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENT_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    assignment: str
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., assignment: _Optional[str] = ...) -> None: ...

class LeaderboardRow(_message.Message):
    __slots__ = ("rank", "username", "score", "run_id", "scored_at", "you", "late")
    RANK_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    SCORED_AT_FIELD_NUMBER: _ClassVar[int]
    YOU_FIELD_NUMBER: _ClassVar[int]
    LATE_FIELD_NUMBER: _ClassVar[int]
    rank: int
    username: str
    score: str
    run_id: str
    scored_at: _timestamp_pb2.Timestamp
    you: bool
    late: bool
    def __init__(self, rank: _Optional[int] = ..., username: _Optional[str] = ..., score: _Optional[str] = ..., run_id: _Optional[str] = ..., scored_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., you: _Optional[bool] = ..., late: _Optional[bool] = ...) -> None: ...

class Leaderboard(_message.Message):
    __slots__ = ("workspace", "assignment", "metric", "higher_is_better", "rows", "split", "anonymous")
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENT_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    HIGHER_IS_BETTER_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    ANONYMOUS_FIELD_NUMBER: _ClassVar[int]
    workspace: str
    assignment: str
    metric: str
    higher_is_better: bool
    rows: _containers.RepeatedCompositeFieldContainer[LeaderboardRow]
    split: str
    anonymous: bool
    def __init__(self, workspace: _Optional[str] = ..., assignment: _Optional[str] = ..., metric: _Optional[str] = ..., higher_is_better: _Optional[bool] = ..., rows: _Optional[_Iterable[_Union[LeaderboardRow, _Mapping]]] = ..., split: _Optional[str] = ..., anonymous: _Optional[bool] = ...) -> None: ...
