"""The platform with its object store on an S3 API (moto server, a fake of AWS over real HTTP)."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import boto3
from reprolab_cli.client import Client
from reprolab_cli.supervisor import Platform
from reprolab_common.auditlog import verify_bundle


def _keys(moto_url: str) -> list[str]:
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="testing",
                      aws_secret_access_key="testing")
    return [o["Key"] for o in s3.list_objects_v2(Bucket="rl-it").get("Contents", [])]


def test_datasets_and_exports_live_in_s3(moto_url: str, tmp_path: Path) -> None:
    creds = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    env = {"REPROLAB_OBJECT_STORE": "s3", "REPROLAB_S3_ENDPOINT_URL": moto_url, "REPROLAB_S3_BUCKET": "rl-it",
           **creds}
    with Platform(tmp_path / "p", extra_env=env) as platform:
        admin = Client(platform.url, platform.admin_token())
        admin.post("/workspaces", json={"slug": "s3ws", "title": "S3"})
        data = b"a,b\n" * 5000
        up = admin.post("/workspaces/s3ws/datasets", params={"name": "d.csv"}, content=data)
        assert up["digest"] == "sha256:" + hashlib.sha256(data).hexdigest()
        out = tmp_path / "d.csv"
        admin.download(f"/workspaces/s3ws/datasets/{up['digest']}/content", out)
        assert out.read_bytes() == data
        admin.wait_activity("s3ws", at_least=2)
        bundle = tmp_path / "b.jsonl"
        admin.download("/workspaces/s3ws/activity/export", bundle)
        assert verify_bundle(bundle).ok
        # The export lived in the bucket only while it was downloaded: then it was removed from there (issue
        # 11: exports must not pile up), and it never touched the platform's own disk.
        deadline = time.monotonic() + 15
        while any(k.startswith("exports/") for k in _keys(moto_url)):
            assert time.monotonic() < deadline, _keys(moto_url)
            time.sleep(0.2)
        assert not [p for p in (tmp_path / "p").rglob("*") if "exports" in p.parts]
    keys = _keys(moto_url)
    assert f"workspaces/s3ws/datasets/sha256/{up['digest'].split(':')[1]}" in keys
    assert not (tmp_path / "p" / "objects").exists() or not any((tmp_path / "p" / "objects").rglob("*.csv"))
