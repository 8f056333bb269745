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

class BuildStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BUILD_STATUS_UNSPECIFIED: _ClassVar[BuildStatus]
    BUILD_STATUS_QUEUED: _ClassVar[BuildStatus]
    BUILD_STATUS_RUNNING: _ClassVar[BuildStatus]
    BUILD_STATUS_SUCCEEDED: _ClassVar[BuildStatus]
    BUILD_STATUS_FAILED: _ClassVar[BuildStatus]
BUILD_STATUS_UNSPECIFIED: BuildStatus
BUILD_STATUS_QUEUED: BuildStatus
BUILD_STATUS_RUNNING: BuildStatus
BUILD_STATUS_SUCCEEDED: BuildStatus
BUILD_STATUS_FAILED: BuildStatus

class Build(_message.Message):
    __slots__ = ("id", "workspace", "environment", "version", "lock_digest", "status", "image_ref", "image_digest", "error", "backend", "created_at", "finished_at", "requested_by", "joined", "workspaces", "serves")
    ID_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LOCK_DIGEST_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_REF_FIELD_NUMBER: _ClassVar[int]
    IMAGE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    JOINED_FIELD_NUMBER: _ClassVar[int]
    WORKSPACES_FIELD_NUMBER: _ClassVar[int]
    SERVES_FIELD_NUMBER: _ClassVar[int]
    id: str
    workspace: str
    environment: str
    version: int
    lock_digest: str
    status: BuildStatus
    image_ref: str
    image_digest: str
    error: str
    backend: str
    created_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    requested_by: str
    joined: bool
    workspaces: _containers.RepeatedScalarFieldContainer[str]
    serves: _containers.RepeatedCompositeFieldContainer[BuildServes]
    def __init__(self, id: _Optional[str] = ..., workspace: _Optional[str] = ..., environment: _Optional[str] = ..., version: _Optional[int] = ..., lock_digest: _Optional[str] = ..., status: _Optional[_Union[BuildStatus, str]] = ..., image_ref: _Optional[str] = ..., image_digest: _Optional[str] = ..., error: _Optional[str] = ..., backend: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., requested_by: _Optional[str] = ..., joined: _Optional[bool] = ..., workspaces: _Optional[_Iterable[str]] = ..., serves: _Optional[_Iterable[_Union[BuildServes, _Mapping]]] = ...) -> None: ...

class BuildServes(_message.Message):
    __slots__ = ("workspace", "environment", "version", "image_ref", "requested_by")
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    IMAGE_REF_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    workspace: str
    environment: str
    version: int
    image_ref: str
    requested_by: str
    def __init__(self, workspace: _Optional[str] = ..., environment: _Optional[str] = ..., version: _Optional[int] = ..., image_ref: _Optional[str] = ..., requested_by: _Optional[str] = ...) -> None: ...

class RequestBuildRequest(_message.Message):
    __slots__ = ("actor", "workspace", "environment", "version", "spec_json", "parent_lock_digest")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SPEC_JSON_FIELD_NUMBER: _ClassVar[int]
    PARENT_LOCK_DIGEST_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    environment: str
    version: int
    spec_json: str
    parent_lock_digest: str
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., environment: _Optional[str] = ..., version: _Optional[int] = ..., spec_json: _Optional[str] = ..., parent_lock_digest: _Optional[str] = ...) -> None: ...

class GetBuildRequest(_message.Message):
    __slots__ = ("actor", "build_id")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    BUILD_ID_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    build_id: str
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., build_id: _Optional[str] = ...) -> None: ...

class ListBuildsRequest(_message.Message):
    __slots__ = ("actor", "workspace", "environment", "version", "limit")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    environment: str
    version: int
    limit: int
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., environment: _Optional[str] = ..., version: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class BuildList(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Build]
    def __init__(self, items: _Optional[_Iterable[_Union[Build, _Mapping]]] = ...) -> None: ...

class GetSbomRequest(_message.Message):
    __slots__ = ("actor", "build_id")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    BUILD_ID_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    build_id: str
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., build_id: _Optional[str] = ...) -> None: ...

class Sbom(_message.Message):
    __slots__ = ("build_id", "cyclonedx_json")
    BUILD_ID_FIELD_NUMBER: _ClassVar[int]
    CYCLONEDX_JSON_FIELD_NUMBER: _ClassVar[int]
    build_id: str
    cyclonedx_json: str
    def __init__(self, build_id: _Optional[str] = ..., cyclonedx_json: _Optional[str] = ...) -> None: ...

class GetLockRequest(_message.Message):
    __slots__ = ("actor", "lock_digest")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    LOCK_DIGEST_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    lock_digest: str
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., lock_digest: _Optional[str] = ...) -> None: ...

class Lock(_message.Message):
    __slots__ = ("lock_digest", "lock_json")
    LOCK_DIGEST_FIELD_NUMBER: _ClassVar[int]
    LOCK_JSON_FIELD_NUMBER: _ClassVar[int]
    lock_digest: str
    lock_json: str
    def __init__(self, lock_digest: _Optional[str] = ..., lock_json: _Optional[str] = ...) -> None: ...

class PutRegistryCredentialRequest(_message.Message):
    __slots__ = ("actor", "workspace", "registry", "username", "password")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    REGISTRY_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    registry: str
    username: str
    password: str
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., registry: _Optional[str] = ..., username: _Optional[str] = ..., password: _Optional[str] = ...) -> None: ...

class RegistryCredential(_message.Message):
    __slots__ = ("workspace", "registry", "username", "created_by", "created_at")
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    REGISTRY_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    workspace: str
    registry: str
    username: str
    created_by: str
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, workspace: _Optional[str] = ..., registry: _Optional[str] = ..., username: _Optional[str] = ..., created_by: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListRegistryCredentialsRequest(_message.Message):
    __slots__ = ("actor", "workspace")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ...) -> None: ...

class RegistryCredentialList(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[RegistryCredential]
    def __init__(self, items: _Optional[_Iterable[_Union[RegistryCredential, _Mapping]]] = ...) -> None: ...

class DeleteRegistryCredentialRequest(_message.Message):
    __slots__ = ("actor", "workspace", "registry")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    REGISTRY_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    registry: str
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., registry: _Optional[str] = ...) -> None: ...

class PutPackageIndexRequest(_message.Message):
    __slots__ = ("actor", "workspace", "name", "url", "kind", "priority", "username", "password", "token")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    name: str
    url: str
    kind: str
    priority: int
    username: str
    password: str
    token: str
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., name: _Optional[str] = ..., url: _Optional[str] = ..., kind: _Optional[str] = ..., priority: _Optional[int] = ..., username: _Optional[str] = ..., password: _Optional[str] = ..., token: _Optional[str] = ...) -> None: ...

class PackageIndex(_message.Message):
    __slots__ = ("workspace", "name", "url", "kind", "priority", "username", "has_secret", "created_by", "created_at")
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    HAS_SECRET_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    workspace: str
    name: str
    url: str
    kind: str
    priority: int
    username: str
    has_secret: bool
    created_by: str
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, workspace: _Optional[str] = ..., name: _Optional[str] = ..., url: _Optional[str] = ..., kind: _Optional[str] = ..., priority: _Optional[int] = ..., username: _Optional[str] = ..., has_secret: _Optional[bool] = ..., created_by: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListPackageIndexesRequest(_message.Message):
    __slots__ = ("actor", "workspace")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ...) -> None: ...

class PackageIndexList(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[PackageIndex]
    def __init__(self, items: _Optional[_Iterable[_Union[PackageIndex, _Mapping]]] = ...) -> None: ...

class DeletePackageIndexRequest(_message.Message):
    __slots__ = ("actor", "workspace", "name")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    name: str
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class PublishRequest(_message.Message):
    __slots__ = ("actor", "workspace", "source_ref", "source_digest", "destination")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_REF_FIELD_NUMBER: _ClassVar[int]
    SOURCE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    source_ref: str
    source_digest: str
    destination: str
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., source_ref: _Optional[str] = ..., source_digest: _Optional[str] = ..., destination: _Optional[str] = ...) -> None: ...

class PublishResult(_message.Message):
    __slots__ = ("destination", "digest")
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    destination: str
    digest: str
    def __init__(self, destination: _Optional[str] = ..., digest: _Optional[str] = ...) -> None: ...

class ExportImageRequest(_message.Message):
    __slots__ = ("actor", "workspace", "source_ref", "source_digest")
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_REF_FIELD_NUMBER: _ClassVar[int]
    SOURCE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    workspace: str
    source_ref: str
    source_digest: str
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., workspace: _Optional[str] = ..., source_ref: _Optional[str] = ..., source_digest: _Optional[str] = ...) -> None: ...

class ExportedImage(_message.Message):
    __slots__ = ("object_key", "size", "digest")
    OBJECT_KEY_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    object_key: str
    size: int
    digest: str
    def __init__(self, object_key: _Optional[str] = ..., size: _Optional[int] = ..., digest: _Optional[str] = ...) -> None: ...

class SessionLayerRequest(_message.Message):
    __slots__ = ("actor", "image", "lock_digest", "requirements", "files")
    class FilesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: bytes
        def __init__(self, key: _Optional[str] = ..., value: _Optional[bytes] = ...) -> None: ...
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    LOCK_DIGEST_FIELD_NUMBER: _ClassVar[int]
    REQUIREMENTS_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    actor: _common_pb2.Actor
    image: str
    lock_digest: str
    requirements: str
    files: _containers.ScalarMap[str, bytes]
    def __init__(self, actor: _Optional[_Union[_common_pb2.Actor, _Mapping]] = ..., image: _Optional[str] = ..., lock_digest: _Optional[str] = ..., requirements: _Optional[str] = ..., files: _Optional[_Mapping[str, bytes]] = ...) -> None: ...

class SessionLayer(_message.Message):
    __slots__ = ("image_ref", "image_digest", "cached", "seconds", "building")
    IMAGE_REF_FIELD_NUMBER: _ClassVar[int]
    IMAGE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    BUILDING_FIELD_NUMBER: _ClassVar[int]
    image_ref: str
    image_digest: str
    cached: bool
    seconds: float
    building: bool
    def __init__(self, image_ref: _Optional[str] = ..., image_digest: _Optional[str] = ..., cached: _Optional[bool] = ..., seconds: _Optional[float] = ..., building: _Optional[bool] = ...) -> None: ...
