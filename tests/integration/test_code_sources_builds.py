"""Build history with each build's log kept (issue 17 item 6), through the whole platform: after the builder
restarts and after the live log stream has lost the build's messages (as it does after 7 days), the
environment's history still lists every build with its status, and each log reads whole, with its steps
and without host paths, from where the builder kept it."""

from __future__ import annotations

import asyncio
import signal
import time

import nats
import pytest
from reprolab_cli.client import ApiError

from .test_runs import BASE


def _purge_live_log(running, build_id: str) -> None:
    """Drop the build's messages from the LOGS stream (operator identity), as its 7-day limit would."""

    async def purge() -> None:
        nc = await nats.connect(running.platform.nats.url, user="operator",
                                password=running.platform.nats_credentials()["operator"])
        try:
            await nc.jetstream().purge_stream("LOGS", subject=f"logs.build.{build_id}")
        finally:
            await nc.close()

    asyncio.run(purge())


def _wait(client, build_id: str) -> dict:
    deadline = time.monotonic() + 300
    while (build := client.get(f"/builds/{build_id}"))["status"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, build
        time.sleep(0.5)
    return build


def test_build_history_keeps_each_log_after_a_builder_restart(running, base_image) -> None:
    _, teacher = running.user("bh")
    ws = running.workspace(teacher, "bh")
    spec = {"base": BASE, "python": {"version": "3.11", "requirements": ["six==1.16.0"]}, "apt": ["make"]}
    teacher.post(f"/workspaces/{ws}/environments", json={"name": "hist", "spec": spec})
    ok = _wait(teacher, teacher.post(f"/workspaces/{ws}/environments/hist/versions/1/builds", expect=(202,))["id"])
    assert ok["status"] == "succeeded", ok
    # a version whose build fails (a Debian package that does not exist)
    teacher.post(f"/workspaces/{ws}/environments/hist/versions",
                 json={"spec": {**spec, "apt": ["make", "no-such-package-reprolab"]}})
    try:
        bad = teacher.post(f"/workspaces/{ws}/environments/hist/versions/2/builds", expect=(202,))
        bad = _wait(teacher, bad["id"])
    except ApiError as exc:  # refused when locking: still a failed build in the history
        assert exc.status == 422, exc
        bad = teacher.get(f"/builds/{exc.problem['build_id']}")
    assert bad["status"] == "failed"

    running.platform.stop_service("builder", sig=signal.SIGKILL)
    running.platform.start_service("builder")
    running.platform.wait_ready()
    for build in (ok, bad):
        _purge_live_log(running, build["id"])

    history = teacher.get(f"/workspaces/{ws}/environments/hist/builds")["items"]
    assert [(b["id"], b["version"], b["status"]) for b in history[:2]] == [
        (bad["id"], 2, "failed"), (ok["id"], 1, "succeeded")], history
    v1 = teacher.get(f"/workspaces/{ws}/environments/hist/builds", params={"version": 1})["items"]
    assert [b["id"] for b in v1] == [ok["id"]]

    text = teacher.get(f"/builds/{ok['id']}/log.txt").decode()
    assert "STEP 1/" in text, text[:2000]  # the steps the portal and the CLI count
    # the builder host's places (paths inside the image, such as /tmp/reprolab-agent, may show)
    for place in (str(running.platform.data_dir), "/tmp/pytest-of-", "/var/tmp/", "/tmp/buildah", "/tmp/tmp",
                  ".local/share/containers", "/var/lib/containers", ws):
        assert place not in text, (place, [line for line in text.splitlines() if place in line][:3])
    lines = list(teacher.sse(f"/builds/{ok['id']}/logs"))
    assert lines == text.splitlines(), (lines[:5], text.splitlines()[:5])
    if bad.get("lock_digest"):
        assert "no-such-package-reprolab" in teacher.get(f"/builds/{bad['id']}/log.txt").decode()

    # another workspace's user: as for nothing
    _, stranger = running.user("bhx")
    with pytest.raises(ApiError) as info:
        stranger.get(f"/builds/{ok['id']}/log.txt")
    assert info.value.status == 404
