"""The object store contract, on a local directory and on S3 (moto in server mode: real HTTP)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from reprolab_common.objectstore import (
    LocalObjectStore,
    ObjectNotFound,
    ObjectStoreUnsupported,
    S3ObjectStore,
    check_key,
)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "local":
        return LocalObjectStore(tmp_path / "objects")
    url = request.getfixturevalue("moto_url")
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        os.environ.setdefault(k, v)
    return S3ObjectStore(f"b{tmp_path.name[-20:].lower().replace('_', '-')}x", endpoint_url=url, region="us-east-1")


def test_put_get_size_exists_delete(store, tmp_path: Path) -> None:
    src = tmp_path / "blob"
    src.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    store.put_file("workspaces/cs/datasets/sha256/abc", src)
    assert store.exists("workspaces/cs/datasets/sha256/abc")
    assert store.size("workspaces/cs/datasets/sha256/abc") == src.stat().st_size
    assert store.read_bytes("workspaces/cs/datasets/sha256/abc") == src.read_bytes()
    store.put_bytes("exports/cs/x.jsonl", b"hello\n")
    assert b"".join(store.open_chunks("exports/cs/x.jsonl", chunk_size=2)) == b"hello\n"
    store.delete("exports/cs/x.jsonl")
    assert not store.exists("exports/cs/x.jsonl")
    with pytest.raises(ObjectNotFound):
        list(store.open_chunks("exports/cs/x.jsonl"))


def test_list_objects_under_a_prefix(store) -> None:
    before = time.time() - 5
    for key in ("exports/a/1.jsonl", "exports/b/2.jsonl", "exportsx/3.jsonl", "datasets/4.csv"):
        store.put_bytes(key, key.encode())
    listed = sorted(store.list_objects("exports/"), key=lambda o: o.key)
    assert [(o.key, o.size) for o in listed] == [("exports/a/1.jsonl", 17), ("exports/b/2.jsonl", 17)]
    assert all(before < o.modified < time.time() + 5 for o in listed)
    assert list(store.list_objects("nothing-here/")) == []


@pytest.mark.parametrize("key", ["../x", "/abs", "a//b", "a/../b", "", "a/./b", ".hidden/x"])
def test_unsafe_keys_are_refused(key: str) -> None:
    with pytest.raises(ValueError):
        check_key(key)


def test_presigned_urls_need_no_credentials(moto_url: str, tmp_path: Path) -> None:
    """A PUT URL uploads one object and a GET URL reads it back, with plain HTTP and no AWS keys."""
    import httpx

    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        os.environ.setdefault(k, v)
    store = S3ObjectStore("presign-bucket", endpoint_url=moto_url, region="us-east-1")
    put = store.presigned_put_url("runs/r1/status.json", 60)
    assert httpx.put(put, content=b'{"exit_code": 0}').status_code == 200
    assert store.read_bytes("runs/r1/status.json") == b'{"exit_code": 0}'
    assert httpx.get(store.presigned_get_url("runs/r1/status.json", 60)).content == b'{"exit_code": 0}'
    local = LocalObjectStore(tmp_path / "o")
    with pytest.raises(ObjectStoreUnsupported):
        local.presigned_put_url("x", 60)
