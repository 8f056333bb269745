"""render: lock → deterministic build context, layers in order, derived contexts hold only the delta."""

from __future__ import annotations

import copy
import re

from reprolab_builder.lock import lock_digest
from reprolab_builder.render import render, write_context

H = "sha256:" + "a" * 64
BASE = {"ref": "localhost/reprolab/bookworm-python:latest", "digest": "sha256:" + "b" * 64, "python": "3.11"}


def _pkg(name: str, version: str) -> dict:
    return {"name": name, "version": version, "hashes": [f"sha256:{name[0] * 64}"]}


def make_lock() -> dict:
    return {
        "format": "reprolab-lock/1",
        "platform": "linux/amd64",
        "base": dict(BASE),
        "apt": [{"name": "jq", "version": "1.6-2.1"}, {"name": "libjq1", "version": "1.6-2.1"}],
        "r": [{"name": "jsonlite", "deb": "r-cran-jsonlite", "version": "1.8.4+dfsg-1"}],
        "r_system": [{"name": "r-base-core", "version": "4.2.2.20221110-2"}],
        "python": {
            "version": "3.11",
            "installer": {"name": "pip", "version": "26.3", "filename": "pip-26.3-py3-none-any.whl",
                          "sha256": "sha256:" + "c" * 64},
            "packages": [_pkg("idna", "3.7"), _pkg("six", "1.17.0")],
        },
        "datasets": [{"digest": H, "mount": "/data/iris"}],
        "files": [{"path": "conf/app.toml", "content": "x = 1\n"}, {"path": "README", "content": "hi\n"}],
        "entrypoint": ["python3", "-m", "app"],
    }


def test_render_is_byte_deterministic(tmp_path):
    lock = make_lock()
    first = render(lock)
    assert render(copy.deepcopy(lock)) == first
    a, b = write_context(first, tmp_path / "a"), write_context(render(lock), tmp_path / "b")
    for rel in first:
        assert (a / rel).read_bytes() == (b / rel).read_bytes()
        assert (a / rel).stat().st_mode & 0o777 == 0o644
    text = first["Containerfile"].decode()
    assert not re.search(r"\d{4}-\d\d-\d\dT", text)  # no timestamps
    assert lock_digest(lock) in text
    assert first["reprolab/lock.json"].rstrip(b"\n").decode().startswith('{"apt":')  # canonical JSON


def test_layers_in_order_and_python_is_offline_with_hashes():
    files = render(make_lock())
    text = files["Containerfile"].decode()
    steps = [ln for ln in text.splitlines() if re.match(r"^[A-Z]+ ", ln)]
    kinds = [s.split()[0] for s in steps]
    assert kinds[0] == "FROM" and steps[0] == f"FROM localhost/reprolab/bookworm-python@{BASE['digest']}"
    apt_at = text.index("jq=1.6-2.1")
    r_at = text.index("r-cran-jsonlite=1.8.4+dfsg-1")
    py_at = text.index("pip install")
    ds_at = text.index(f"COPY datasets/{'a' * 64} /data/iris")
    cfg_at = text.index("COPY reprolab/lock.json /etc/reprolab/lock.json")
    assert apt_at < r_at < py_at < ds_at < cfg_at < text.index("LABEL") < text.index("ENTRYPOINT")
    assert "--no-install-recommends" in text and "rm -rf /var/lib/apt/lists/*" in text
    pip = text[text.index("RUN --mount=type=bind,source=wheels,target=/wheels"):ds_at]
    for flag in ("--no-index", "--require-hashes", "--no-deps", "--find-links /wheels", "SOURCE_DATE_EPOCH=0",
                 "/wheels/pip-26.3-py3-none-any.whl/pip"):
        assert flag in pip
    assert files["wheels/requirements.txt"].decode().splitlines() == [
        f"idna==3.7 --hash=sha256:{'i' * 64}", f"six==1.17.0 --hash=sha256:{'s' * 64}"]
    assert files[f"datasets/{'a' * 64}"] == b""  # placeholder, filled by digest
    assert files["files/conf/app.toml"] == b"x = 1\n"
    # the activity agent's layer comes last and its init wraps the lock's entrypoint
    assert text.index("LABEL") < text.index("/usr/local/reprolab/bin") < text.index("ENTRYPOINT")
    assert 'ENTRYPOINT ["/usr/local/bin/reprolab", "init", "--", "python3", "-m", "app"]' in text
    assert f'org.reprolab.lock-digest="{lock_digest(make_lock())}"' in text
    # nothing secret-like or host specific in any context file
    blob = b"".join(files.values())
    assert b"BEGIN CERTIFICATE" not in blob and b"/etc/ssl" not in blob


def test_derived_render_holds_only_the_delta():
    parent = make_lock()
    child = make_lock()
    child["python"]["packages"] = [_pkg("attrs", "26.1.0"), *parent["python"]["packages"]]
    child["apt"] = [*parent["apt"], {"name": "zip", "version": "3.0-13"}]
    child["parent"] = {"lock_digest": lock_digest(parent), "image": "127.0.0.1:5000/ws/env@sha256:" + "d" * 64}
    files = render(child, parent_lock=parent)
    text = files["Containerfile"].decode()
    assert text.splitlines()[1] == "FROM 127.0.0.1:5000/ws/env@sha256:" + "d" * 64
    assert "zip=3.0-13" in text and "jq=" not in text
    assert "r-cran-jsonlite" not in text  # the parent has the R layer already
    assert files["wheels/requirements.txt"].decode().splitlines() == [f"attrs==26.1.0 --hash=sha256:{'a' * 64}"]
    assert not any(k.startswith("datasets/") for k in files) and "COPY datasets/" not in text
    assert f'org.reprolab.parent-lock-digest="{lock_digest(parent)}"' in text
    # a removed package is uninstalled; an upgraded one is installed at the new version
    child2 = make_lock()
    child2["python"]["packages"] = [_pkg("idna", "3.8")]
    child2["parent"] = child["parent"]
    text2 = render(child2, parent_lock=parent)["Containerfile"].decode()
    assert "uninstall -y" in text2 and " six" in text2
    assert render(child2, parent_lock=parent)["wheels/requirements.txt"].startswith(b"idna==3.8 ")


def test_lock_without_python_has_no_pip_step():
    lock = {"format": "reprolab-lock/1", "platform": "linux/amd64", "base": dict(BASE)}
    files = render(lock)
    assert {f for f in files if not f.startswith("reprolab/agent/")} == {"Containerfile", "reprolab/lock.json"}
    assert "pip " not in files["Containerfile"].decode() and "wheels" not in files["Containerfile"].decode()
    # a base without python3 gets no activity agent (it needs a Python to run)
    bare = render({**lock, "base": {**BASE, "python": None}})
    assert set(bare) == {"Containerfile", "reprolab/lock.json"} and "ENTRYPOINT" not in bare["Containerfile"].decode()


def _uv_lock(**extra: object) -> dict:
    lock = make_lock()
    for key in ("apt", "r", "r_system", "datasets", "files", "entrypoint"):
        lock.pop(key)
    lock["python"]["installer"] = {"name": "uv", "version": "0.13.8", "sha256": "sha256:" + "d" * 64,
                                   "filename": "uv-0.13.8-py3-none-manylinux_2_17_x86_64.whl"}
    lock.update(extra)
    return lock


def _derived(**extra: object) -> tuple[dict, dict]:
    """(child, parent): the child adds tabulate FROM the parent's image."""
    parent = _uv_lock()
    child = _uv_lock(**extra)
    child["python"]["packages"] = [*child["python"]["packages"], _pkg("tabulate", "0.10.0")]
    child["parent"] = {"lock_digest": lock_digest(parent), "image": "127.0.0.1:5000/w/e@sha256:" + "e" * 64}
    return child, parent


def test_derived_uv_lock_installs_writes_the_lock_and_runs_the_agent_in_one_step():
    child, parent = _derived()
    files = render(child, parent_lock=parent)
    text = files["Containerfile"].decode()
    runs = [ln for ln in text.splitlines() if ln.startswith("RUN ")]
    assert len(runs) == 1 and "COPY" not in text  # one build container, one layer
    assert "source=uv,target=/tmp/reprolab-uvbin" in runs[0] and "zipfile" not in text and "/wheels/uv-" not in text
    assert "uv/uv" in files  # placeholder: build.py links the binary taken out of the locked wheel
    assert files["wheels/requirements.txt"].decode().startswith("tabulate==0.10.0")
    assert text.index("--link-mode hardlink -r /wheels/requirements.txt") < \
        text.index("install -m 0644 /tmp/reprolab-context/lock.json /etc/reprolab/lock.json") < \
        text.index("agent.py baseline") < text.index("ENV PATH=")
    # what the step reads from reprolab/ is in its text: another lock never hits its layer cache
    other_child, _ = _derived(entrypoint=["python3"])
    other = render(other_child, parent_lock=parent)["Containerfile"].decode()
    ctx = re.search(r"REPROLAB_CONTEXT=(sha256:[0-9a-f]{64})", text)
    assert ctx and ctx.group(1) not in other
    assert render(child, parent_lock=parent) == files


def test_uv_lock_from_its_base_keeps_a_python_layer_that_depends_on_the_wheels_alone():
    text = render(_uv_lock())["Containerfile"].decode()
    assert "source=uv,target=/tmp/reprolab-uvbin" in text and "--link-mode hardlink" in text
    assert "reprolab-context" not in text and "REPROLAB_CONTEXT" not in text
    assert text.index("--link-mode hardlink") < text.index("COPY reprolab/lock.json") < \
        text.index("source=reprolab/agent")
    step = next(ln for ln in text.splitlines() if "REPROLAB_WHEELS" in ln)
    assert step in render(_uv_lock(entrypoint=["python3"]))["Containerfile"].decode()  # shared layer


def test_derived_uv_lock_with_a_dataset_keeps_the_lock_and_agent_steps_after_it():
    child, parent = _derived(datasets=[{"digest": H, "mount": "/data/iris"}])
    text = render(child, parent_lock=parent)["Containerfile"].decode()
    assert "reprolab-context" not in text and "REPROLAB_CONTEXT" not in text
    assert text.index("--link-mode hardlink") < text.index("COPY datasets/") < \
        text.index("COPY reprolab/lock.json") < text.index("source=reprolab/agent")
