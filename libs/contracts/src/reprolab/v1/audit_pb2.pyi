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

class ActivityScope(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACTIVITY_SCOPE_UNSPECIFIED: _ClassVar[ActivityScope]
    ACTIVITY_SCOPE_OWN: _ClassVar[ActivityScope]
    ACTIVITY_SCOPE_WORKSPACE: _ClassVar[ActivityScope]
ACTIVITY_SCOPE_UNSPECIFIED: ActivityScope
ACTIVITY_SCOPE_OWN: ActivityScope
ACTIVITY_SCOPE_WORKSPACE: ActivityScope

class ActivityEntry(_message.Message):
    __slots__ = ("workspace", "seq", "event_id", "type", "subject", "actor_id", "actor_name", "time", "canonical_json", "prev_hash", "hash")
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_NAME_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    CANONICAL_JSON_FIELD_NUMBER: _ClassVar[int]
    PREV_HASH_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    workspace: str
    seq: int
    event_id: str
    type: str
    subject: str
    actor_id: str
    actor_name: str
    time: _timestamp_pb2.Timestamp
    canonical_json: str
    prev_hash: str
    hash: str
    def __init__(self, workspace: _Optional[str] = ..., seq: _Optional[int] = ..., event_id: _Optional[str] = ..., type: _Optional[str] = ..., subject: _Optional[str] = ..., actor_id: _Optional[str] = ..., actor_name: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., canonical_json: _Optional[str] = ..., prev_hash: _Optional[str] = ..., hash: _Optional[str] = ...) -> None: ...

class QueryActivityRequest(_message.Message):
    __slots__ = ("actor", "workspace", "scope", "subject_prefix", "actor_name", "type", "time", "limit", "after_seq")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_PREFIX_FIELD_NUMBER: _ClassVar[int]
    ACTOR_NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    scope: ActivityScope
    subject_prefix: str
    actor_name: str
    type: str
    time: _common_pb2.TimeRange
    limit: int
    after_seq: int
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., scope: _Optional[_Union[ActivityScope, str]] = ..., subject_prefix: _Optional[str] = ..., actor_name: _Optional[str] = ..., type: _Optional[str] = ..., time: _Optional[_Union[_common_pb2.TimeRange, _Mapping]] = ..., limit: _Optional[int] = ..., after_seq: _Optional[int] = ...) -> None: ...

class ActivityList(_message.Message):
    __slots__ = ("items", "head_seq")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    HEAD_SEQ_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[ActivityEntry]
    head_seq: int
    def __init__(self, items: _Optional[_Iterable[_Union[ActivityEntry, _Mapping]]] = ..., head_seq: _Optional[int] = ...) -> None: ...

class ExportActivityRequest(_message.Message):
    __slots__ = ("actor", "workspace", "scope")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    scope: ActivityScope
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., scope: _Optional[_Union[ActivityScope, str]] = ...) -> None: ...

class ExportActivityReply(_message.Message):
    __slots__ = ("object_key", "entries", "size_bytes", "sha256")
    OBJECT_KEY_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    object_key: str
    entries: int
    size_bytes: int
    sha256: str
    def __init__(self, object_key: _Optional[str] = ..., entries: _Optional[int] = ..., size_bytes: _Optional[int] = ..., sha256: _Optional[str] = ...) -> None: ...

class VerifyActivityRequest(_message.Message):
    __slots__ = ("actor", "object_key")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    OBJECT_KEY_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    object_key: str
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., object_key: _Optional[str] = ...) -> None: ...

class VerifyActivityReply(_message.Message):
    __slots__ = ("ok", "entries", "checkpoints", "workspace", "line", "seq", "reason", "keys_known")
    OK_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINTS_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    LINE_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    KEYS_KNOWN_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    entries: int
    checkpoints: int
    workspace: str
    line: int
    seq: int
    reason: str
    keys_known: bool
    def __init__(self, ok: _Optional[bool] = ..., entries: _Optional[int] = ..., checkpoints: _Optional[int] = ..., workspace: _Optional[str] = ..., line: _Optional[int] = ..., seq: _Optional[int] = ..., reason: _Optional[str] = ..., keys_known: _Optional[bool] = ...) -> None: ...
