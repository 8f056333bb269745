"""Object storage for datasets, code archives, run outputs and activity exports.

One ABC, two backends chosen by ``REPROLAB_OBJECT_STORE``: a local directory (embedded default)
and any S3 API through boto3 (production; moto in tests).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .settings import CommonSettings

CHUNK = 1024 * 1024
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*(/[A-Za-z0-9][A-Za-z0-9._\-]*)*$")


class ObjectNotFound(KeyError):
    pass


@dataclass(frozen=True)
class ObjectInfo:
    """One stored object as a listing shows it; ``modified`` is seconds since the epoch."""

    key: str
    size: int
    modified: float


class ObjectStoreUnsupported(RuntimeError):
    """The configured object store cannot do what was asked (e.g. presigned URLs on the local store)."""


def check_key(key: str) -> str:
    """Keys are relative slash paths of safe segments: no '..', no leading '/', no empty segment."""
    if not _KEY.match(key) or any(seg in {".", ".."} for seg in key.split("/")):
        raise ValueError(f"invalid object key {key!r}")
    return key


class ObjectStore(ABC):
    """Minimal blob store: whole-file puts, streamed gets."""

    @abstractmethod
    def put_file(self, key: str, path: Path) -> None:
        """Store the file at ``path`` under ``key`` atomically (readers never see half an object)."""

    @abstractmethod
    def open_chunks(self, key: str, chunk_size: int = CHUNK) -> Iterator[bytes]:
        """Yield the object's bytes; raises ObjectNotFound."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def size(self, key: str) -> int: ...

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; deleting a missing key is not an error (cleanup must be retryable)."""

    @abstractmethod
    def presigned_get_url(self, key: str, expires: int) -> str:
        """A URL anyone holding it can GET the object from for ``expires`` seconds (no credentials).

        Used to hand build contexts to Kubernetes build Jobs; only stores reachable over HTTP have it.
        """

    @abstractmethod
    def presigned_put_url(self, key: str, expires: int) -> str:
        """A URL anyone holding it can PUT this one object to for ``expires`` seconds (no credentials).
        One per key: S3 signs each key separately. Remote run targets upload outputs through these."""

    @abstractmethod
    def list_objects(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix`` (a folder such as ``exports/``), in no order;
        for clean-ups that must find what nobody remembers (e.g. activity exports never downloaded)."""

    def put_bytes(self, key: str, data: bytes) -> None:
        with tempfile.NamedTemporaryFile(delete=False) as tmp:
            tmp.write(data)
        try:
            self.put_file(key, Path(tmp.name))
        finally:
            os.unlink(tmp.name)

    def read_bytes(self, key: str) -> bytes:
        return b"".join(self.open_chunks(key))


class LocalObjectStore(ObjectStore):
    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / ".tmp").mkdir(exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put_file(self, key: str, path: Path) -> None:
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root / ".tmp")
        os.close(fd)
        try:
            shutil.copyfile(path, tmp)
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, dest)
        except BaseException:
            # a full disk must not keep the partial copy: it would stay full after the failed upload
            Path(tmp).unlink(missing_ok=True)
            raise

    def open_chunks(self, key: str, chunk_size: int = CHUNK) -> Iterator[bytes]:
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFound(key)
        return _file_chunks(path, chunk_size)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFound(key)
        return path.stat().st_size

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def list_objects(self, prefix: str) -> Iterator[ObjectInfo]:
        top = self._path(prefix.rstrip("/"))
        if not top.is_dir():
            return
        for path in top.rglob("*"):
            try:
                st = path.stat()
            except FileNotFoundError:  # removed meanwhile
                continue
            if path.is_file():
                yield ObjectInfo(path.relative_to(self.root).as_posix(), st.st_size, st.st_mtime)

    def presigned_get_url(self, key: str, expires: int) -> str:
        raise ObjectStoreUnsupported(
            "the local object store cannot hand out URLs; the kubernetes build backend needs "
            "REPROLAB_OBJECT_STORE=s3 (an S3 API the cluster can reach)")

    def presigned_put_url(self, key: str, expires: int) -> str:
        raise ObjectStoreUnsupported(
            "the local object store cannot hand out URLs; remote run targets (kubernetes, aws, azure, "
            "openstack) need REPROLAB_OBJECT_STORE=s3 (an S3 API they can reach)")


def _file_chunks(path: Path, chunk_size: int) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            yield chunk


class S3ObjectStore(ObjectStore):
    def __init__(self, bucket: str, *, endpoint_url: str | None, region: str) -> None:
        import boto3  # imported here: the local default should not pay boto3's import time

        self.bucket = bucket
        self.client = boto3.client("s3", endpoint_url=endpoint_url, region_name=region)
        try:
            self.client.head_bucket(Bucket=bucket)
        except self.client.exceptions.ClientError:
            kwargs = {} if region == "us-east-1" else {
                "CreateBucketConfiguration": {"LocationConstraint": region}}
            self.client.create_bucket(Bucket=bucket, **kwargs)

    def put_file(self, key: str, path: Path) -> None:
        self.client.upload_file(str(path), self.bucket, check_key(key))

    def open_chunks(self, key: str, chunk_size: int = CHUNK) -> Iterator[bytes]:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=check_key(key))["Body"]
        except self.client.exceptions.NoSuchKey as exc:
            raise ObjectNotFound(key) from exc
        return body.iter_chunks(chunk_size)

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=check_key(key))
            return True
        except self.client.exceptions.ClientError:
            return False

    def size(self, key: str) -> int:
        try:
            return int(self.client.head_object(Bucket=self.bucket, Key=check_key(key))["ContentLength"])
        except self.client.exceptions.ClientError as exc:
            raise ObjectNotFound(key) from exc

    def delete(self, key: str) -> None:
        # S3 answers 204 for a missing key too, which is the idempotence we want.
        self.client.delete_object(Bucket=self.bucket, Key=check_key(key))

    def list_objects(self, prefix: str) -> Iterator[ObjectInfo]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        for page in pages:
            for item in page.get("Contents", []):
                yield ObjectInfo(item["Key"], int(item["Size"]), item["LastModified"].timestamp())

    def presigned_get_url(self, key: str, expires: int) -> str:
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": check_key(key)}, ExpiresIn=int(expires))

    def presigned_put_url(self, key: str, expires: int) -> str:
        return self.client.generate_presigned_url(
            "put_object", Params={"Bucket": self.bucket, "Key": check_key(key)}, ExpiresIn=int(expires))


def make_object_store(settings: CommonSettings) -> ObjectStore:
    backends = {
        "local": lambda: LocalObjectStore(settings.objects_dir()),
        "s3": lambda: S3ObjectStore(settings.s3_bucket, endpoint_url=settings.s3_endpoint_url,
                                    region=settings.s3_region),
    }
    return backends[settings.object_store]()
