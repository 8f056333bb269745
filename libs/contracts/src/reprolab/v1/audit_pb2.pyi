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
    __slots__ = ("workspace", "seq", "event_id", "type", "subject", "actor_id", "actor_name", "time", "canonical_json", "leaf_hash")
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_NAME_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    CANONICAL_JSON_FIELD_NUMBER: _ClassVar[int]
    LEAF_HASH_FIELD_NUMBER: _ClassVar[int]
    workspace: str
    seq: int
    event_id: str
    type: str
    subject: str
    actor_id: str
    actor_name: str
    time: _timestamp_pb2.Timestamp
    canonical_json: str
    leaf_hash: str
    def __init__(self, workspace: _Optional[str] = ..., seq: _Optional[int] = ..., event_id: _Optional[str] = ..., type: _Optional[str] = ..., subject: _Optional[str] = ..., actor_id: _Optional[str] = ..., actor_name: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., canonical_json: _Optional[str] = ..., leaf_hash: _Optional[str] = ...) -> None: ...

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
    __slots__ = ("actor", "workspace", "scope", "for_verification")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    FOR_VERIFICATION_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    scope: ActivityScope
    for_verification: bool
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., scope: _Optional[_Union[ActivityScope, str]] = ..., for_verification: _Optional[bool] = ...) -> None: ...

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
    __slots__ = ("actor", "object_key", "old_checkpoint")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    OBJECT_KEY_FIELD_NUMBER: _ClassVar[int]
    OLD_CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    object_key: str
    old_checkpoint: str
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., object_key: _Optional[str] = ..., old_checkpoint: _Optional[str] = ...) -> None: ...

class VerifyActivityReply(_message.Message):
    __slots__ = ("ok", "entries", "checkpoints", "workspace", "line", "seq", "reason", "keys_known", "origin", "root", "against_size", "matches_log", "elided")
    OK_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINTS_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    LINE_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    KEYS_KNOWN_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    ROOT_FIELD_NUMBER: _ClassVar[int]
    AGAINST_SIZE_FIELD_NUMBER: _ClassVar[int]
    MATCHES_LOG_FIELD_NUMBER: _ClassVar[int]
    ELIDED_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    entries: int
    checkpoints: int
    workspace: str
    line: int
    seq: int
    reason: str
    keys_known: bool
    origin: str
    root: str
    against_size: int
    matches_log: bool
    elided: int
    def __init__(self, ok: _Optional[bool] = ..., entries: _Optional[int] = ..., checkpoints: _Optional[int] = ..., workspace: _Optional[str] = ..., line: _Optional[int] = ..., seq: _Optional[int] = ..., reason: _Optional[str] = ..., keys_known: _Optional[bool] = ..., origin: _Optional[str] = ..., root: _Optional[str] = ..., against_size: _Optional[int] = ..., matches_log: _Optional[bool] = ..., elided: _Optional[int] = ...) -> None: ...

class GetCheckpointRequest(_message.Message):
    __slots__ = ("actor", "workspace")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ...) -> None: ...

class SignedCheckpoint(_message.Message):
    __slots__ = ("workspace", "origin", "size", "root", "note", "verifier_keys")
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    ROOT_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    VERIFIER_KEYS_FIELD_NUMBER: _ClassVar[int]
    workspace: str
    origin: str
    size: int
    root: str
    note: str
    verifier_keys: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, workspace: _Optional[str] = ..., origin: _Optional[str] = ..., size: _Optional[int] = ..., root: _Optional[str] = ..., note: _Optional[str] = ..., verifier_keys: _Optional[_Iterable[str]] = ...) -> None: ...

class InclusionProofRequest(_message.Message):
    __slots__ = ("actor", "workspace", "index", "size")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    index: int
    size: int
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., index: _Optional[int] = ..., size: _Optional[int] = ...) -> None: ...

class InclusionProof(_message.Message):
    __slots__ = ("index", "size", "leaf_hash", "hashes", "root", "checkpoint")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    LEAF_HASH_FIELD_NUMBER: _ClassVar[int]
    HASHES_FIELD_NUMBER: _ClassVar[int]
    ROOT_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    index: int
    size: int
    leaf_hash: str
    hashes: _containers.RepeatedScalarFieldContainer[str]
    root: str
    checkpoint: str
    def __init__(self, index: _Optional[int] = ..., size: _Optional[int] = ..., leaf_hash: _Optional[str] = ..., hashes: _Optional[_Iterable[str]] = ..., root: _Optional[str] = ..., checkpoint: _Optional[str] = ...) -> None: ...

class ConsistencyProofRequest(_message.Message):
    __slots__ = ("actor", "workspace", "old_size", "new_size")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    OLD_SIZE_FIELD_NUMBER: _ClassVar[int]
    NEW_SIZE_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    old_size: int
    new_size: int
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., old_size: _Optional[int] = ..., new_size: _Optional[int] = ...) -> None: ...

class ConsistencyProof(_message.Message):
    __slots__ = ("old_size", "new_size", "hashes", "old_root", "new_root", "old_checkpoint", "new_checkpoint")
    OLD_SIZE_FIELD_NUMBER: _ClassVar[int]
    NEW_SIZE_FIELD_NUMBER: _ClassVar[int]
    HASHES_FIELD_NUMBER: _ClassVar[int]
    OLD_ROOT_FIELD_NUMBER: _ClassVar[int]
    NEW_ROOT_FIELD_NUMBER: _ClassVar[int]
    OLD_CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    NEW_CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    old_size: int
    new_size: int
    hashes: _containers.RepeatedScalarFieldContainer[str]
    old_root: str
    new_root: str
    old_checkpoint: str
    new_checkpoint: str
    def __init__(self, old_size: _Optional[int] = ..., new_size: _Optional[int] = ..., hashes: _Optional[_Iterable[str]] = ..., old_root: _Optional[str] = ..., new_root: _Optional[str] = ..., old_checkpoint: _Optional[str] = ..., new_checkpoint: _Optional[str] = ...) -> None: ...
