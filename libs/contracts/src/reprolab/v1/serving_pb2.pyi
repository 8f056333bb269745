import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from reprolab.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ModelVersion(_message.Message):
    __slots__ = ("workspace", "name", "version", "run_id", "image", "artifact", "kind", "state", "active", "target", "error", "created_by", "created", "webhook_url")
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_URL_FIELD_NUMBER: _ClassVar[int]
    workspace: str
    name: str
    version: int
    run_id: str
    image: str
    artifact: str
    kind: str
    state: str
    active: bool
    target: str
    error: str
    created_by: str
    created: _timestamp_pb2.Timestamp
    webhook_url: str
    def __init__(self, workspace: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[int] = ..., run_id: _Optional[str] = ..., image: _Optional[str] = ..., artifact: _Optional[str] = ..., kind: _Optional[str] = ..., state: _Optional[str] = ..., active: _Optional[bool] = ..., target: _Optional[str] = ..., error: _Optional[str] = ..., created_by: _Optional[str] = ..., created: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., webhook_url: _Optional[str] = ...) -> None: ...

class DeployModelRequest(_message.Message):
    __slots__ = ("actor", "workspace", "name", "run_id", "artifact", "webhook_url", "sample_rate")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_URL_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    name: str
    run_id: str
    artifact: str
    webhook_url: str
    sample_rate: float
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., name: _Optional[str] = ..., run_id: _Optional[str] = ..., artifact: _Optional[str] = ..., webhook_url: _Optional[str] = ..., sample_rate: _Optional[float] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ("actor", "workspace", "name")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    name: str
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class ModelList(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[ModelVersion]
    def __init__(self, items: _Optional[_Iterable[_Union[ModelVersion, _Mapping]]] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ("actor", "workspace", "name", "version")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    name: str
    version: int
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class ActivateModelRequest(_message.Message):
    __slots__ = ("actor", "workspace", "name", "version")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    name: str
    version: int
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class StopModelRequest(_message.Message):
    __slots__ = ("actor", "workspace", "name", "version")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    name: str
    version: int
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class ModelRoute(_message.Message):
    __slots__ = ("model", "upstream_url", "sample_rate")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    UPSTREAM_URL_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    model: ModelVersion
    upstream_url: str
    sample_rate: float
    def __init__(self, model: _Optional[_Union[ModelVersion, _Mapping]] = ..., upstream_url: _Optional[str] = ..., sample_rate: _Optional[float] = ...) -> None: ...

class RouteModelRequest(_message.Message):
    __slots__ = ("actor", "workspace", "name", "version")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    name: str
    version: int
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class ModelKey(_message.Message):
    __slots__ = ("id", "workspace", "name", "prefix", "label", "created_by", "created", "revoked", "rate_per_minute")
    ID_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    REVOKED_FIELD_NUMBER: _ClassVar[int]
    RATE_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    id: str
    workspace: str
    name: str
    prefix: str
    label: str
    created_by: str
    created: _timestamp_pb2.Timestamp
    revoked: bool
    rate_per_minute: int
    def __init__(self, id: _Optional[str] = ..., workspace: _Optional[str] = ..., name: _Optional[str] = ..., prefix: _Optional[str] = ..., label: _Optional[str] = ..., created_by: _Optional[str] = ..., created: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revoked: _Optional[bool] = ..., rate_per_minute: _Optional[int] = ...) -> None: ...

class CreateModelKeyRequest(_message.Message):
    __slots__ = ("actor", "workspace", "name", "label", "rate_per_minute")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    RATE_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    name: str
    label: str
    rate_per_minute: int
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., name: _Optional[str] = ..., label: _Optional[str] = ..., rate_per_minute: _Optional[int] = ...) -> None: ...

class CreatedModelKey(_message.Message):
    __slots__ = ("key", "secret")
    KEY_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    key: ModelKey
    secret: str
    def __init__(self, key: _Optional[_Union[ModelKey, _Mapping]] = ..., secret: _Optional[str] = ...) -> None: ...

class ListModelKeysRequest(_message.Message):
    __slots__ = ("actor", "workspace", "name")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    name: str
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class ModelKeyList(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[ModelKey]
    def __init__(self, items: _Optional[_Iterable[_Union[ModelKey, _Mapping]]] = ...) -> None: ...

class RevokeModelKeyRequest(_message.Message):
    __slots__ = ("actor", "workspace", "name", "key_id")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    name: str
    key_id: str
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., name: _Optional[str] = ..., key_id: _Optional[str] = ...) -> None: ...

class CheckModelKeyRequest(_message.Message):
    __slots__ = ("actor", "secret")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    secret: str
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., secret: _Optional[str] = ...) -> None: ...

class CheckedModelKey(_message.Message):
    __slots__ = ("valid", "key")
    VALID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    key: ModelKey
    def __init__(self, valid: _Optional[bool] = ..., key: _Optional[_Union[ModelKey, _Mapping]] = ...) -> None: ...

class ModelMonitorRequest(_message.Message):
    __slots__ = ("actor", "workspace", "name", "window", "run_now")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    RUN_NOW_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    name: str
    window: str
    run_now: bool
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., name: _Optional[str] = ..., window: _Optional[str] = ..., run_now: _Optional[bool] = ...) -> None: ...

class ModelMonitorReport(_message.Message):
    __slots__ = ("report_json", "alerts")
    REPORT_JSON_FIELD_NUMBER: _ClassVar[int]
    ALERTS_FIELD_NUMBER: _ClassVar[int]
    report_json: str
    alerts: _containers.RepeatedCompositeFieldContainer[ModelAlert]
    def __init__(self, report_json: _Optional[str] = ..., alerts: _Optional[_Iterable[_Union[ModelAlert, _Mapping]]] = ...) -> None: ...

class ModelAlert(_message.Message):
    __slots__ = ("id", "kind", "version", "window_start", "detail", "created")
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    id: str
    kind: str
    version: int
    window_start: str
    detail: str
    created: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., kind: _Optional[str] = ..., version: _Optional[int] = ..., window_start: _Optional[str] = ..., detail: _Optional[str] = ..., created: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ModelEvent(_message.Message):
    __slots__ = ("name", "version", "run_id", "image", "state", "error", "detail")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    run_id: str
    image: str
    state: str
    error: str
    detail: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., run_id: _Optional[str] = ..., image: _Optional[str] = ..., state: _Optional[str] = ..., error: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...
