"""reprolab_common.hostpaths: the runner's and builder's host places out of errors students read."""

from __future__ import annotations

from pathlib import Path

from reprolab_common.hostpaths import HostPaths


def test_known_places_longest_first_and_recognised_shapes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "objects").mkdir(parents=True)
    (tmp_path / "link").symlink_to(data)
    paths = HostPaths.of({data: "<data>", data / "objects": "<objects>", data / "runner": "<runner-work>",
                          None: "<ignored>", Path("relative"): "<never>"})
    assert paths(f"dataset file {data}/objects/workspaces/c/datasets/sha256/ab for /data/x.csv does not exist") == \
        "dataset file <objects>/workspaces/c/datasets/sha256/ab for /data/x.csv does not exist"
    assert paths(f"unpack {data}/runner/r1/code.tar.gz into /work") == "unpack <runner-work>/r1/code.tar.gz into /work"
    # the same place reached through a symlink is the resolved form
    assert HostPaths.of({tmp_path / "link": "<data>"})(f"{data}/x") == "<data>/x"
    assert paths("relative/x and /work/relative") == "relative/x and /work/relative"
    assert paths("mount /var/lib/containers/storage/overlay/x: busy") == "mount <containers>: busy"
    assert paths("copy /tmp/tmpab12cd/x and /tmp/reprolab-agent/agent.py") == \
        "copy <tmp> and /tmp/reprolab-agent/agent.py"
    assert paths.plus({"ws-a/env": "<image>"})("push ws-a/env:v1 from /tmp/podman-x") == "push <image>:v1 from <tmp>"
