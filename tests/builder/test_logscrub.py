"""Build logs and errors are read from every workspace a build serves: no host path, no workspace name."""

from __future__ import annotations

from pathlib import Path

from reprolab_builder.config import BuilderSettings
from reprolab_builder.logstream import Scrubber
from reprolab_common.settings import CommonSettings


def test_host_paths_and_the_builds_names_are_scrubbed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = BuilderSettings(common=CommonSettings(data_dir=data), registry_auth_file=tmp_path / "auth.json")
    scrub = Scrubber.for_host(settings).naming("127.0.0.1:5000/course-a/mine-alice:v3", "course-a")
    cases = {
        f"$ buildah bud --authfile {tmp_path}/auth.json -f {data}/builder/contexts/ab-1/Containerfile "
        f"-t 127.0.0.1:5000/course-a/mine-alice:v3 {data}/builder/contexts/ab-1":
            "$ buildah bud --authfile <auth.json> -f <builder-cache>/contexts/ab-1/Containerfile -t <image>:v3 "
            "<builder-cache>/contexts/ab-1",
        "$ buildah push --digestfile /tmp/reprolab-push-k2j/digest 127.0.0.1:5000/course-a/mine-alice:v3":
            "$ buildah push --digestfile <tmp> <image>:v3",
        "Error: writing blob: /var/lib/containers/storage/overlay/l/ABC: no space left on device":
            "Error: writing blob: <containers>: no space left on device",
        "open /root/.local/share/containers/storage/x": "open <containers>",
        "dataset sha256:1 is not in the object store (workspaces/course-a/datasets/sha256/1)":
            "dataset sha256:1 is not in the object store (workspaces/<workspace>/datasets/sha256/1)",
        "fetch https://alice:s3cret@example.org/simple": "fetch https://***:***@example.org/simple",
        # inside the image being built: not the host's, and the step must stay readable
        "STEP 5/7: RUN --mount=type=bind,target=/tmp/reprolab-agent install /tmp/reprolab-agent/agent.py /opt/x":
            "STEP 5/7: RUN --mount=type=bind,target=/tmp/reprolab-agent install /tmp/reprolab-agent/agent.py /opt/x",
    }
    for line, want in cases.items():
        assert scrub(line) == want
    assert str(data) not in scrub(f"{data.resolve()}/x")
