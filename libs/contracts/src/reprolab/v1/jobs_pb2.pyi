import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from reprolab.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BuildJob(_message.Message):
    __slots__ = ("schema_version", "lock_digest", "workspace", "environment", "version", "actor", "requested_at")
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    LOCK_DIGEST_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_AT_FIELD_NUMBER: _ClassVar[int]
    schema_version: _common_pb2.SchemaVersion
    lock_digest: str
    workspace: str
    environment: str
    version: int
    actor: _common_pb2.Actor
    requested_at: _timestamp_pb2.Timestamp
    def __init__(self, schema_version: _Optional[_Union[_common_pb2.SchemaVersion, str]] = ..., lock_digest: _Optional[str] = ..., workspace: _Optional[str] = ..., environment: _Optional[str] = ..., version: _Optional[int] = ..., actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., requested_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RunJob(_message.Message):
    __slots__ = ("schema_version", "run_id", "workspace", "image_digest", "command", "target", "actor", "requested_at")
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_AT_FIELD_NUMBER: _ClassVar[int]
    schema_version: _common_pb2.SchemaVersion
    run_id: str
    workspace: str
    image_digest: str
    command: _containers.RepeatedScalarFieldContainer[str]
    target: str
    actor: _common_pb2.Actor
    requested_at: _timestamp_pb2.Timestamp
    def __init__(self, schema_version: _Optional[_Union[_common_pb2.SchemaVersion, str]] = ..., run_id: _Optional[str] = ..., workspace: _Optional[str] = ..., image_digest: _Optional[str] = ..., command: _Optional[_Iterable[str]] = ..., target: _Optional[str] = ..., actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., requested_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
