"""``reprolab demo``: the course scenario, end to end through the REST API.

An instructor sets up "Intro to ML" with the Iris data and an environment, changes it and rolls it
back; a student forks it; the activity log is exported and verified offline, and a tampered copy
is shown to fail.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import tarfile
import tempfile
import time
from contextlib import ExitStack
from importlib import resources
from pathlib import Path

import yaml
from reprolab_common.auditlog import verify_bundle
from rich.console import Console
from rich.table import Table

from .client import ApiError, Client

WS = "intro-ml"
# The offline Debian bookworm base (`make base-image`); with a registry in reach, python:3.12-slim
# (and python version "3.12") works the same way.
BASE = "localhost/reprolab/bookworm-python:latest"
SPEC_YAML = """\
name: iris
description: Python with pandas and scikit-learn for the Iris assignments
spec:
  base: {base}
  python:
    version: "3.11"
    requirements:
      - pandas>=2.2
      - scikit-learn>=1.5
  datasets:
    - digest: {train}
      mount: /data/iris
  resources:
    cpu: "2"
    memory: 4Gi
"""


def _data(name: str) -> Path:
    return Path(str(resources.files("reprolab_cli") / "data" / name))


def run_demo(*, data_dir: Path, url: str | None, token: str | None, console: Console) -> int:
    started = time.monotonic()
    with ExitStack() as stack:
        if url is None:
            from .supervisor import Platform

            if data_dir.exists():
                shutil.rmtree(data_dir)
            # the wheel cache outlives the demo's fresh state, so a second run does not download again
            cache = {"REPROLAB_BUILDER_CACHE_DIR": str((data_dir.parent / "cache").resolve())}
            with console.status("starting NATS, an OCI registry and the five services (SQLite, local store)"):
                platform = stack.enter_context(Platform(data_dir, extra_env=cache))
            url, token = platform.url, platform.admin_token()
            console.print(f"platform up at {url} (data in {data_dir}, logs in {platform.log_dir})")
        if not token:
            console.print("[red]--token is required with --url[/red]")
            return 2
        try:
            return _scenario(Client(url, token), console, started)
        except (ApiError, TimeoutError, AssertionError) as exc:
            console.print(f"[red]demo failed:[/red] {exc}")
            return 1


def _step(console: Console, text: str) -> None:
    console.print(f"[bold cyan]>[/bold cyan] {text}")


TRAIN_PY = """\
import json, os
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

df = pd.read_csv("/data/iris-train.csv")
X, y = df.drop(columns="species"), df["species"]
scores = cross_val_score(LogisticRegression(max_iter=500), X, y, cv=5)
print(f"5-fold accuracy {scores.mean():.3f} on {len(df)} rows")
os.makedirs("/outputs", exist_ok=True)
json.dump({"cv_accuracy": round(float(scores.mean()), 4)}, open("/outputs/metrics.json", "w"))
"""


def _student_run(bob: Client, console: Console) -> dict:
    _step(console, "bob runs a training script on the public Iris data in the course image (no network, "
                   "non-root, read-only, limited)")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("train.py")
        info.size = len(TRAIN_PY.encode())
        tar.addfile(info, io.BytesIO(TRAIN_PY.encode()))
    code = bob.request("POST", f"/workspaces/{WS}/code", content=buf.getvalue(), expect=(201,))
    run = bob.request("POST", f"/workspaces/{WS}/runs", expect=(202,), json={
        "environment": "iris", "version": 1, "code": code["digest"], "command": ["python3", "train.py"],
        "datasets": ["iris-train.csv"], "resources": {"cpu": "1", "memory": "1Gi", "timeout": 300}})
    for line in bob.sse(f"/runs/{run['id']}/logs"):
        console.print(f"    [dim]{line[:100]}[/dim]", highlight=False)
    run = bob.get(f"/runs/{run['id']}")
    assert run["status"] == "succeeded", f"run {run['status']}: {run['error']}"
    console.print(f"    metrics: {run['metrics']}; provenance pins image {run['provenance']['image'][-19:]}..., "
                  f"code {run['code_digest'][:19]}..., data {run['provenance']['datasets'][0][:19]}...")
    return run


def _build_and_run(alice: Client, console: Console) -> None:
    _step(console, "alice builds v1 into an OCI image (locked, hashed wheels, offline install); live log:")
    build = alice.post(f"/workspaces/{WS}/environments/iris/versions/1/builds", expect=(202,))
    shown = 0
    for line in alice.sse(f"/builds/{build['id']}/logs"):
        if line.startswith(("STEP", "pushed", "build ", "FAILED")) or "Successfully installed" in line:
            console.print(f"    [dim]{line[:100]}[/dim]", highlight=False, overflow="ellipsis", no_wrap=True)
            shown += 1
    build = alice.get(f"/builds/{build['id']}")
    assert build["status"] == "succeeded", f"build failed: {build['error']}"
    console.print(f"    image: [bold]{build['pull']}[/bold]")
    v3 = alice.post(f"/workspaces/{WS}/environments/iris/versions/3/builds", expect=(202,))
    assert v3["id"] == build["id"], "the rollback should reuse v1's image"
    console.print("    v3 (the rollback) has v1's lock, so it gets the same image without building")

    _step(console, "a student pulls the image and runs python -c 'import sklearn' in it, with no network")
    engine = shutil.which("podman") or shutil.which("docker")
    assert engine, "no container engine (podman or docker) to run the image: run `make container-deps`"
    tls = ["--tls-verify=false"] if "podman" in engine else []
    pulled = subprocess.run([engine, "pull", "-q", *tls, build["pull"]], capture_output=True, text=True)
    assert pulled.returncode == 0, pulled.stderr
    ran = subprocess.run([engine, "run", "--rm", "--network=none", build["pull"], "python3", "-c",
                          "import sklearn, pandas; print(sklearn.__version__, pandas.__version__)"],
                         capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    sk, pd = ran.stdout.split()
    console.print(f"    scikit-learn {sk} and pandas {pd} import inside the image")


def _scenario(admin: Client, console: Console, started: float) -> int:
    _step(console, "admin creates an instructor (alice) and a student (bob)")
    alice = admin.as_user(admin.post("/users", json={"username": "alice"})["token"])
    bob = admin.as_user(admin.post("/users", json={"username": "bob"})["token"])

    _step(console, f"alice creates workspace '{WS}' and adds bob as a student")
    alice.post("/workspaces", json={"slug": WS, "title": "Intro to ML"})
    alice.post(f"/workspaces/{WS}/members", json={"username": "bob", "role": "student"})

    _step(console, "alice uploads the Iris data: training split public, test split hidden")
    train = alice.upload(f"/workspaces/{WS}/datasets", _data("iris-train.csv"),
                         {"name": "iris-train.csv", "visibility": "public"})
    test = alice.upload(f"/workspaces/{WS}/datasets", _data("iris-test.csv"),
                        {"name": "iris-test.csv", "visibility": "hidden"})
    expected = "sha256:" + hashlib.sha256(_data("iris-train.csv").read_bytes()).hexdigest()
    assert train["digest"] == expected, f"upload digest {train['digest']} != {expected}"

    _step(console, "alice declares environment 'iris' in YAML (python 3.11, pandas, scikit-learn, the data)")
    env = alice.post(f"/workspaces/{WS}/environments", content=SPEC_YAML.format(train=train["digest"], base=BASE),
                     headers={"Content-Type": "application/yaml"})
    v1 = env["latest"]
    spec = yaml.safe_load(SPEC_YAML.format(train=train["digest"], base=BASE))["spec"]
    spec["python"]["requirements"].append("matplotlib>=3.8")
    _step(console, "alice adds matplotlib (v2), then rolls back to v1 (v3: history is kept)")
    alice.post(f"/workspaces/{WS}/environments/iris/versions", json={"spec": spec, "note": "add matplotlib"})
    v3 = alice.post(f"/workspaces/{WS}/environments/iris/versions", json={"rollback_to": 1})
    assert v3["spec_digest"] == v1["spec_digest"], "rollback must reproduce v1's spec"

    _build_and_run(alice, console)

    _step(console, "bob may not change the course environment (403) nor see the hidden test labels (404)")
    try:
        bob.post(f"/workspaces/{WS}/environments", json={"name": "mine", "spec": spec})
        raise AssertionError("a student was allowed to create a workspace environment")
    except ApiError as exc:
        assert exc.status == 403, exc
        console.print(f"    refused as expected: {exc.problem.get('detail')}")
    try:
        bob.get(f"/workspaces/{WS}/datasets/{test['digest']}")
        raise AssertionError("a student could see a hidden dataset")
    except ApiError as exc:
        assert exc.status == 404, exc

    _student_run(bob, console)

    _step(console, "bob forks 'iris' and adds seaborn to his own copy; he downloads the training data")
    fork = bob.post(f"/workspaces/{WS}/environments/iris/fork", json={"name": "iris-bob"})
    fork_spec = yaml.safe_load(SPEC_YAML.format(train=train["digest"], base=BASE))["spec"]
    fork_spec["python"]["requirements"].append("seaborn>=0.13")
    bob.post(f"/workspaces/{WS}/environments/{fork['name']}/versions", json={"spec": fork_spec})
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "train.csv"
        bob.download(f"/workspaces/{WS}/datasets/{train['digest']}/content", out)
        assert "sha256:" + hashlib.sha256(out.read_bytes()).hexdigest() == train["digest"]

    versions = alice.get(f"/workspaces/{WS}/environments/iris/versions")["items"]
    fork_versions = bob.get(f"/workspaces/{WS}/environments/{fork['name']}/versions")["items"]
    table = Table("environment", "version", "origin", "parent", "spec digest", title="lineage")
    for env_name, items in (("iris", versions), (fork["name"], fork_versions)):
        for v in items:
            table.add_row(env_name, f"v{v['number']}", v["origin"], v["parent"] or "-", v["spec_digest"][:19])
    console.print(table)

    # workspace, 2 members, 2 datasets, 2 environments, 5 versions, 3 build events, 3 run events, 1 download
    head = alice.wait_activity(WS, at_least=19)
    _step(console, f"the activity log holds {head} entries; alice exports it and it verifies offline")
    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(tmp) / "activity.jsonl"
        alice.download(f"/workspaces/{WS}/activity/export", bundle)
        result = verify_bundle(bundle)
        assert result.ok, f"export did not verify: line {result.line}: {result.reason}"
        api = alice.post("/activity/verify", content=bundle.read_bytes(),
                         headers={"Content-Type": "application/x-ndjson"})
        assert api["ok"] and api["keys_known"], api
        console.print(f"    verified offline: {result.entries} entries, {result.checkpoints} signed checkpoints; "
                      f"the server confirms its own keys signed it")

        own = Path(tmp) / "bob.jsonl"
        bob.download(f"/workspaces/{WS}/activity/export", own)
        mine = verify_bundle(own)
        assert mine.ok, f"bob's export did not verify: {mine.reason}"
        console.print(f"    bob's own export verifies too: {mine.entries - mine.elided} entries of his, "
                      f"{mine.elided} of others elided to their digests")

        lines = bundle.read_text().splitlines()
        idx = next(i for i, line in enumerate(lines) if '"dataset.downloaded"' in line)
        lines[idx] = lines[idx].replace('"bob"', '"alice"', 1)
        tampered = Path(tmp) / "tampered.jsonl"
        tampered.write_text("\n".join(lines) + "\n")
        bad = verify_bundle(tampered)
        assert not bad.ok, "a tampered bundle verified"
        console.print(f"    a copy that blames alice for bob's download fails: {bad.reason}")

    console.print(f"[bold green]demo passed[/bold green] in {time.monotonic() - started:.1f}s: workspace "
                  f"{WS}, {len(versions)} versions of iris (v3 rolled back to v1) built into one image, "
                  f"fork {fork['name']}, {head} activity entries exported and verified.")
    return 0
