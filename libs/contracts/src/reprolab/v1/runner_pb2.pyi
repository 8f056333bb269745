import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from reprolab.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RunStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RUN_STATUS_UNSPECIFIED: _ClassVar[RunStatus]
    RUN_STATUS_QUEUED: _ClassVar[RunStatus]
    RUN_STATUS_STARTING: _ClassVar[RunStatus]
    RUN_STATUS_RUNNING: _ClassVar[RunStatus]
    RUN_STATUS_SUCCEEDED: _ClassVar[RunStatus]
    RUN_STATUS_FAILED: _ClassVar[RunStatus]
    RUN_STATUS_CANCELLED: _ClassVar[RunStatus]
    RUN_STATUS_TIMED_OUT: _ClassVar[RunStatus]

class SessionStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SESSION_STATUS_UNSPECIFIED: _ClassVar[SessionStatus]
    SESSION_STATUS_STARTING: _ClassVar[SessionStatus]
    SESSION_STATUS_RUNNING: _ClassVar[SessionStatus]
    SESSION_STATUS_STOPPING: _ClassVar[SessionStatus]
    SESSION_STATUS_STOPPED: _ClassVar[SessionStatus]
    SESSION_STATUS_FAILED: _ClassVar[SessionStatus]
RUN_STATUS_UNSPECIFIED: RunStatus
RUN_STATUS_QUEUED: RunStatus
RUN_STATUS_STARTING: RunStatus
RUN_STATUS_RUNNING: RunStatus
RUN_STATUS_SUCCEEDED: RunStatus
RUN_STATUS_FAILED: RunStatus
RUN_STATUS_CANCELLED: RunStatus
RUN_STATUS_TIMED_OUT: RunStatus
SESSION_STATUS_UNSPECIFIED: SessionStatus
SESSION_STATUS_STARTING: SessionStatus
SESSION_STATUS_RUNNING: SessionStatus
SESSION_STATUS_STOPPING: SessionStatus
SESSION_STATUS_STOPPED: SessionStatus
SESSION_STATUS_FAILED: SessionStatus

class RunResources(_message.Message):
    __slots__ = ("cpu_millis", "memory_bytes", "pids", "timeout_seconds")
    CPU_MILLIS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    PIDS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    cpu_millis: int
    memory_bytes: int
    pids: int
    timeout_seconds: int
    def __init__(self, cpu_millis: _Optional[int] = ..., memory_bytes: _Optional[int] = ..., pids: _Optional[int] = ..., timeout_seconds: _Optional[int] = ...) -> None: ...

class DatasetMount(_message.Message):
    __slots__ = ("digest", "name", "mount", "object_key")
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MOUNT_FIELD_NUMBER: _ClassVar[int]
    OBJECT_KEY_FIELD_NUMBER: _ClassVar[int]
    digest: str
    name: str
    mount: str
    object_key: str
    def __init__(self, digest: _Optional[str] = ..., name: _Optional[str] = ..., mount: _Optional[str] = ..., object_key: _Optional[str] = ...) -> None: ...

class Run(_message.Message):
    __slots__ = ("id", "workspace", "environment", "version", "image", "code_digest", "datasets", "command", "target", "resources", "network", "status", "exit_code", "error", "requested_by", "created_at", "started_at", "finished_at", "metrics_json", "provenance_json", "assignment", "score", "score_error", "scoring", "source")
    ID_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    CODE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    METRICS_JSON_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_JSON_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    SCORE_ERROR_FIELD_NUMBER: _ClassVar[int]
    SCORING_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    id: str
    workspace: str
    environment: str
    version: int
    image: str
    code_digest: str
    datasets: _containers.RepeatedCompositeFieldContainer[DatasetMount]
    command: _containers.RepeatedScalarFieldContainer[str]
    target: str
    resources: RunResources
    network: bool
    status: RunStatus
    exit_code: int
    error: str
    requested_by: str
    created_at: _timestamp_pb2.Timestamp
    started_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    metrics_json: str
    provenance_json: str
    assignment: str
    score: str
    score_error: str
    scoring: str
    source: CodeSource
    def __init__(self, id: _Optional[str] = ..., workspace: _Optional[str] = ..., environment: _Optional[str] = ..., version: _Optional[int] = ..., image: _Optional[str] = ..., code_digest: _Optional[str] = ..., datasets: _Optional[_Iterable[_Union[DatasetMount, _Mapping]]] = ..., command: _Optional[_Iterable[str]] = ..., target: _Optional[str] = ..., resources: _Optional[_Union[RunResources, _Mapping]] = ..., network: _Optional[bool] = ..., status: _Optional[_Union[RunStatus, str]] = ..., exit_code: _Optional[int] = ..., error: _Optional[str] = ..., requested_by: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., metrics_json: _Optional[str] = ..., provenance_json: _Optional[str] = ..., assignment: _Optional[str] = ..., score: _Optional[str] = ..., score_error: _Optional[str] = ..., scoring: _Optional[str] = ..., source: _Optional[_Union[CodeSource, _Mapping]] = ...) -> None: ...

class CodeSource(_message.Message):
    __slots__ = ("git_url", "git_ref", "git_commit", "notebook")
    GIT_URL_FIELD_NUMBER: _ClassVar[int]
    GIT_REF_FIELD_NUMBER: _ClassVar[int]
    GIT_COMMIT_FIELD_NUMBER: _ClassVar[int]
    NOTEBOOK_FIELD_NUMBER: _ClassVar[int]
    git_url: str
    git_ref: str
    git_commit: str
    notebook: str
    def __init__(self, git_url: _Optional[str] = ..., git_ref: _Optional[str] = ..., git_commit: _Optional[str] = ..., notebook: _Optional[str] = ...) -> None: ...

class Evaluation(_message.Message):
    __slots__ = ("image", "code_digest", "code_object_key", "labels_digest", "labels_object_key", "predictions", "command", "metric", "revision")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    CODE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    CODE_OBJECT_KEY_FIELD_NUMBER: _ClassVar[int]
    LABELS_DIGEST_FIELD_NUMBER: _ClassVar[int]
    LABELS_OBJECT_KEY_FIELD_NUMBER: _ClassVar[int]
    PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    image: str
    code_digest: str
    code_object_key: str
    labels_digest: str
    labels_object_key: str
    predictions: str
    command: _containers.RepeatedScalarFieldContainer[str]
    metric: str
    revision: int
    def __init__(self, image: _Optional[str] = ..., code_digest: _Optional[str] = ..., code_object_key: _Optional[str] = ..., labels_digest: _Optional[str] = ..., labels_object_key: _Optional[str] = ..., predictions: _Optional[str] = ..., command: _Optional[_Iterable[str]] = ..., metric: _Optional[str] = ..., revision: _Optional[int] = ...) -> None: ...

class RescoreRunRequest(_message.Message):
    __slots__ = ("actor", "run_id", "evaluation")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    run_id: str
    evaluation: Evaluation
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., run_id: _Optional[str] = ..., evaluation: _Optional[_Union[Evaluation, _Mapping]] = ...) -> None: ...

class SubmitRunRequest(_message.Message):
    __slots__ = ("actor", "workspace", "environment", "version", "image", "code_digest", "code_object_key", "datasets", "command", "target", "resources", "network", "assignment", "evaluation", "source")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    CODE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    CODE_OBJECT_KEY_FIELD_NUMBER: _ClassVar[int]
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENT_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    environment: str
    version: int
    image: str
    code_digest: str
    code_object_key: str
    datasets: _containers.RepeatedCompositeFieldContainer[DatasetMount]
    command: _containers.RepeatedScalarFieldContainer[str]
    target: str
    resources: RunResources
    network: bool
    assignment: str
    evaluation: Evaluation
    source: CodeSource
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., environment: _Optional[str] = ..., version: _Optional[int] = ..., image: _Optional[str] = ..., code_digest: _Optional[str] = ..., code_object_key: _Optional[str] = ..., datasets: _Optional[_Iterable[_Union[DatasetMount, _Mapping]]] = ..., command: _Optional[_Iterable[str]] = ..., target: _Optional[str] = ..., resources: _Optional[_Union[RunResources, _Mapping]] = ..., network: _Optional[bool] = ..., assignment: _Optional[str] = ..., evaluation: _Optional[_Union[Evaluation, _Mapping]] = ..., source: _Optional[_Union[CodeSource, _Mapping]] = ...) -> None: ...

class GetRunRequest(_message.Message):
    __slots__ = ("actor", "run_id")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    run_id: str
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., run_id: _Optional[str] = ...) -> None: ...

class CancelRunRequest(_message.Message):
    __slots__ = ("actor", "run_id")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    run_id: str
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., run_id: _Optional[str] = ...) -> None: ...

class ListRunsRequest(_message.Message):
    __slots__ = ("actor", "workspace", "own_only")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    OWN_ONLY_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    own_only: bool
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., own_only: _Optional[bool] = ...) -> None: ...

class RunList(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Run]
    def __init__(self, items: _Optional[_Iterable[_Union[Run, _Mapping]]] = ...) -> None: ...

class ListTargetsRequest(_message.Message):
    __slots__ = ("actor",)
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ...) -> None: ...

class Target(_message.Message):
    __slots__ = ("name", "needs_credentials")
    NAME_FIELD_NUMBER: _ClassVar[int]
    NEEDS_CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    name: str
    needs_credentials: bool
    def __init__(self, name: _Optional[str] = ..., needs_credentials: _Optional[bool] = ...) -> None: ...

class TargetList(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Target]
    def __init__(self, items: _Optional[_Iterable[_Union[Target, _Mapping]]] = ...) -> None: ...

class OutputFile(_message.Message):
    __slots__ = ("name", "size", "sha256", "object_key")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    OBJECT_KEY_FIELD_NUMBER: _ClassVar[int]
    name: str
    size: int
    sha256: str
    object_key: str
    def __init__(self, name: _Optional[str] = ..., size: _Optional[int] = ..., sha256: _Optional[str] = ..., object_key: _Optional[str] = ...) -> None: ...

class RunOutputs(_message.Message):
    __slots__ = ("run_id", "files", "metrics_json")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    METRICS_JSON_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    files: _containers.RepeatedCompositeFieldContainer[OutputFile]
    metrics_json: str
    def __init__(self, run_id: _Optional[str] = ..., files: _Optional[_Iterable[_Union[OutputFile, _Mapping]]] = ..., metrics_json: _Optional[str] = ...) -> None: ...

class RunEvent(_message.Message):
    __slots__ = ("run_id", "environment", "version", "target", "image", "code_digest", "exit_code", "error", "assignment", "score", "score_error")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    CODE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    SCORE_ERROR_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    environment: str
    version: int
    target: str
    image: str
    code_digest: str
    exit_code: int
    error: str
    assignment: str
    score: str
    score_error: str
    def __init__(self, run_id: _Optional[str] = ..., environment: _Optional[str] = ..., version: _Optional[int] = ..., target: _Optional[str] = ..., image: _Optional[str] = ..., code_digest: _Optional[str] = ..., exit_code: _Optional[int] = ..., error: _Optional[str] = ..., assignment: _Optional[str] = ..., score: _Optional[str] = ..., score_error: _Optional[str] = ...) -> None: ...

class PutCredentialRequest(_message.Message):
    __slots__ = ("actor", "workspace", "vendor", "secret", "options")
    class SecretEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class OptionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    VENDOR_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    vendor: str
    secret: _containers.ScalarMap[str, str]
    options: _containers.ScalarMap[str, str]
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., vendor: _Optional[str] = ..., secret: _Optional[_Mapping[str, str]] = ..., options: _Optional[_Mapping[str, str]] = ...) -> None: ...

class GetCredentialRequest(_message.Message):
    __slots__ = ("actor", "workspace", "vendor")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    VENDOR_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    vendor: str
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., vendor: _Optional[str] = ...) -> None: ...

class DeleteCredentialRequest(_message.Message):
    __slots__ = ("actor", "workspace", "vendor")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    VENDOR_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    vendor: str
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., vendor: _Optional[str] = ...) -> None: ...

class ListCredentialsRequest(_message.Message):
    __slots__ = ("actor", "workspace")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ...) -> None: ...

class CredentialInfo(_message.Message):
    __slots__ = ("workspace", "vendor", "user_id", "options", "secret_fields", "key_hint", "key_id", "created_at", "updated_at")
    class OptionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    VENDOR_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELDS_FIELD_NUMBER: _ClassVar[int]
    KEY_HINT_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    workspace: str
    vendor: str
    user_id: str
    options: _containers.ScalarMap[str, str]
    secret_fields: _containers.RepeatedScalarFieldContainer[str]
    key_hint: str
    key_id: str
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, workspace: _Optional[str] = ..., vendor: _Optional[str] = ..., user_id: _Optional[str] = ..., options: _Optional[_Mapping[str, str]] = ..., secret_fields: _Optional[_Iterable[str]] = ..., key_hint: _Optional[str] = ..., key_id: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CredentialList(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[CredentialInfo]
    def __init__(self, items: _Optional[_Iterable[_Union[CredentialInfo, _Mapping]]] = ...) -> None: ...

class CredentialEvent(_message.Message):
    __slots__ = ("vendor", "key_hint")
    VENDOR_FIELD_NUMBER: _ClassVar[int]
    KEY_HINT_FIELD_NUMBER: _ClassVar[int]
    vendor: str
    key_hint: str
    def __init__(self, vendor: _Optional[str] = ..., key_hint: _Optional[str] = ...) -> None: ...

class Session(_message.Message):
    __slots__ = ("id", "workspace", "environment", "version", "owner", "status", "error", "created", "last_activity", "idle_timeout_seconds", "cull_warning", "cull_in_seconds", "owner_username", "image", "target", "resources", "network", "stopped")
    ID_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    LAST_ACTIVITY_FIELD_NUMBER: _ClassVar[int]
    IDLE_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CULL_WARNING_FIELD_NUMBER: _ClassVar[int]
    CULL_IN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    OWNER_USERNAME_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    STOPPED_FIELD_NUMBER: _ClassVar[int]
    id: str
    workspace: str
    environment: str
    version: int
    owner: str
    status: SessionStatus
    error: str
    created: _timestamp_pb2.Timestamp
    last_activity: _timestamp_pb2.Timestamp
    idle_timeout_seconds: int
    cull_warning: bool
    cull_in_seconds: int
    owner_username: str
    image: str
    target: str
    resources: RunResources
    network: str
    stopped: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., workspace: _Optional[str] = ..., environment: _Optional[str] = ..., version: _Optional[int] = ..., owner: _Optional[str] = ..., status: _Optional[_Union[SessionStatus, str]] = ..., error: _Optional[str] = ..., created: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_activity: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., idle_timeout_seconds: _Optional[int] = ..., cull_warning: _Optional[bool] = ..., cull_in_seconds: _Optional[int] = ..., owner_username: _Optional[str] = ..., image: _Optional[str] = ..., target: _Optional[str] = ..., resources: _Optional[_Union[RunResources, _Mapping]] = ..., network: _Optional[str] = ..., stopped: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StartSessionRequest(_message.Message):
    __slots__ = ("actor", "workspace", "environment", "version", "image", "lock_digest", "resources", "target", "starter")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    LOCK_DIGEST_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    STARTER_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    environment: str
    version: int
    image: str
    lock_digest: str
    resources: RunResources
    target: str
    starter: _containers.RepeatedCompositeFieldContainer[SessionStarter]
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., environment: _Optional[str] = ..., version: _Optional[int] = ..., image: _Optional[str] = ..., lock_digest: _Optional[str] = ..., resources: _Optional[_Union[RunResources, _Mapping]] = ..., target: _Optional[str] = ..., starter: _Optional[_Iterable[_Union[SessionStarter, _Mapping]]] = ...) -> None: ...

class SessionStarter(_message.Message):
    __slots__ = ("assignment", "digest", "object_key")
    ASSIGNMENT_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    OBJECT_KEY_FIELD_NUMBER: _ClassVar[int]
    assignment: str
    digest: str
    object_key: str
    def __init__(self, assignment: _Optional[str] = ..., digest: _Optional[str] = ..., object_key: _Optional[str] = ...) -> None: ...

class GetSessionRequest(_message.Message):
    __slots__ = ("actor", "session_id")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    session_id: str
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., session_id: _Optional[str] = ...) -> None: ...

class StopSessionRequest(_message.Message):
    __slots__ = ("actor", "session_id")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    session_id: str
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., session_id: _Optional[str] = ...) -> None: ...

class ListSessionsRequest(_message.Message):
    __slots__ = ("actor", "workspace", "own_only", "active_only")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    OWN_ONLY_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_ONLY_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    own_only: bool
    active_only: bool
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., own_only: _Optional[bool] = ..., active_only: _Optional[bool] = ...) -> None: ...

class SessionList(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Session]
    def __init__(self, items: _Optional[_Iterable[_Union[Session, _Mapping]]] = ...) -> None: ...

class ConnectSessionRequest(_message.Message):
    __slots__ = ("actor", "session_id")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    session_id: str
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., session_id: _Optional[str] = ...) -> None: ...

class SessionConnection(_message.Message):
    __slots__ = ("session", "upstream_url", "server_token", "instructors_may_open")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    UPSTREAM_URL_FIELD_NUMBER: _ClassVar[int]
    SERVER_TOKEN_FIELD_NUMBER: _ClassVar[int]
    INSTRUCTORS_MAY_OPEN_FIELD_NUMBER: _ClassVar[int]
    session: Session
    upstream_url: str
    server_token: str
    instructors_may_open: bool
    def __init__(self, session: _Optional[_Union[Session, _Mapping]] = ..., upstream_url: _Optional[str] = ..., server_token: _Optional[str] = ..., instructors_may_open: _Optional[bool] = ...) -> None: ...

class TouchSessionRequest(_message.Message):
    __slots__ = ("actor", "session_id", "at")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    session_id: str
    at: _timestamp_pb2.Timestamp
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., session_id: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SessionCapture(_message.Message):
    __slots__ = ("session", "capture_json")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_JSON_FIELD_NUMBER: _ClassVar[int]
    session: Session
    capture_json: str
    def __init__(self, session: _Optional[_Union[Session, _Mapping]] = ..., capture_json: _Optional[str] = ...) -> None: ...

class SessionEvent(_message.Message):
    __slots__ = ("session_id", "environment", "version", "image", "error", "reason")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    environment: str
    version: int
    image: str
    error: str
    reason: str
    def __init__(self, session_id: _Optional[str] = ..., environment: _Optional[str] = ..., version: _Optional[int] = ..., image: _Optional[str] = ..., error: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class SessionPolicy(_message.Message):
    __slots__ = ("workspace", "idle_timeout_seconds", "max_per_environment", "network", "instructors_may_open")
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    IDLE_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_PER_ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    INSTRUCTORS_MAY_OPEN_FIELD_NUMBER: _ClassVar[int]
    workspace: str
    idle_timeout_seconds: int
    max_per_environment: int
    network: str
    instructors_may_open: bool
    def __init__(self, workspace: _Optional[str] = ..., idle_timeout_seconds: _Optional[int] = ..., max_per_environment: _Optional[int] = ..., network: _Optional[str] = ..., instructors_may_open: _Optional[bool] = ...) -> None: ...

class GetSessionPolicyRequest(_message.Message):
    __slots__ = ("actor", "workspace")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ...) -> None: ...

class PutSessionPolicyRequest(_message.Message):
    __slots__ = ("actor", "policy")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    policy: SessionPolicy
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., policy: _Optional[_Union[SessionPolicy, _Mapping]] = ...) -> None: ...

class WorkspaceQuota(_message.Message):
    __slots__ = ("workspace", "max_concurrent_runs", "max_concurrent_runs_per_user", "max_storage_bytes", "updated_by")
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENT_RUNS_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENT_RUNS_PER_USER_FIELD_NUMBER: _ClassVar[int]
    MAX_STORAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    UPDATED_BY_FIELD_NUMBER: _ClassVar[int]
    workspace: str
    max_concurrent_runs: int
    max_concurrent_runs_per_user: int
    max_storage_bytes: int
    updated_by: str
    def __init__(self, workspace: _Optional[str] = ..., max_concurrent_runs: _Optional[int] = ..., max_concurrent_runs_per_user: _Optional[int] = ..., max_storage_bytes: _Optional[int] = ..., updated_by: _Optional[str] = ...) -> None: ...

class QuotaUsage(_message.Message):
    __slots__ = ("quota", "active_runs", "active_sessions", "active_models", "caller_active", "output_bytes")
    QUOTA_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_RUNS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_MODELS_FIELD_NUMBER: _ClassVar[int]
    CALLER_ACTIVE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_BYTES_FIELD_NUMBER: _ClassVar[int]
    quota: WorkspaceQuota
    active_runs: int
    active_sessions: int
    active_models: int
    caller_active: int
    output_bytes: int
    def __init__(self, quota: _Optional[_Union[WorkspaceQuota, _Mapping]] = ..., active_runs: _Optional[int] = ..., active_sessions: _Optional[int] = ..., active_models: _Optional[int] = ..., caller_active: _Optional[int] = ..., output_bytes: _Optional[int] = ...) -> None: ...

class GetQuotaRequest(_message.Message):
    __slots__ = ("actor", "workspace")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ...) -> None: ...

class PutQuotaRequest(_message.Message):
    __slots__ = ("actor", "quota")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    QUOTA_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    quota: WorkspaceQuota
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., quota: _Optional[_Union[WorkspaceQuota, _Mapping]] = ...) -> None: ...
