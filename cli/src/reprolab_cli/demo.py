"""``reprolab demo``: the course story, end to end through the REST API.

An instructor (alice) sets up "Intro to ML": a student (bob), the Iris data (training split and test
features public, test labels hidden), an environment she builds, changes and rolls back, and an
assignment whose evaluation scores predictions against the hidden labels. bob forks the environment,
adds a package, builds his fork, trains a model in it on this machine (target ``local``) and is
scored in a separate evaluation sandbox; the leaderboard ranks him against alice's baseline. bob deploys
his model as a web service in the run's own image, an app calls it with a model API key, and traffic whose
petals are longer than any in the training data raises a drift alert. The
activity log is exported and verified offline, and a tampered copy fails. The story ends with the
portal's URL and each person's username, password (set fresh each run) and API token.

The platform the demo starts is its own (a fresh data directory). When the demo runs in a terminal
it keeps that platform running afterwards, so the portal can be explored, until Ctrl-C; without a
terminal (``make demo`` in CI) it stops it and exits with the story's result. ``--keep-running`` and
``--exit`` choose explicitly.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import secrets
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from reprolab_common.auditlog import verify_bundle
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from .client import DEFAULT_DATA_DIR, ApiError, Client, ReprolabError, _http
from .pull_cmd import pull_image

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
# bob's addition to his fork: small, pure Python, and his training script uses it
EXTRA_PACKAGE = "tabulate>=0.9"
STEP = re.compile(r"^STEP (\d+)/(\d+): (.*)")

# The instructor's evaluation: accuracy of the run's predictions against the hidden labels. It runs in
# its own sandbox, with the labels at /data/labels and the student's file under /inputs.
EVALUATE_PY = """\
import csv, json
truth = {r["id"]: r["species"] for r in csv.DictReader(open("/data/labels"))}
pred = {r["id"]: r["species"] for r in csv.DictReader(open("/inputs/predictions.csv"))}
correct = sum(pred.get(i) == s for i, s in truth.items())
print(f"{correct} of {len(truth)} correct")
json.dump({"score": round(correct / len(truth), 4)}, open("/outputs/score.json", "w"))
"""

# bob's training script: fit on the public training split, predict the public test features.
TRAIN_PY = """\
import json, os
import joblib
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from tabulate import tabulate

train = pd.read_csv("/data/iris-train.csv")
test = pd.read_csv("/data/iris-test-features.csv")
X, y = train.drop(columns="species"), train["species"]
model = LogisticRegression(max_iter=500)
folds = cross_val_score(model, X, y, cv=5)
print(tabulate([[f"fold {i + 1}", f"{s:.3f}"] for i, s in enumerate(folds)], headers=["5-fold CV", "accuracy"]))
model.fit(X, y)
os.makedirs("/outputs", exist_ok=True)
joblib.dump(model, "/outputs/model.joblib")  # deployable as a web service
pd.DataFrame({"id": test["id"], "species": model.predict(test[X.columns])}).to_csv(
    "/outputs/predictions.csv", index=False)
json.dump({"cv_accuracy": round(float(folds.mean()), 4), "train_rows": len(train), "predicted": len(test)},
          open("/outputs/metrics.json", "w"))
print(f"wrote {len(test)} predictions to /outputs/predictions.csv")
"""

# alice's baseline for the leaderboard: every flower is a setosa.
BASELINE_PY = """\
import csv
rows = list(csv.DictReader(open("/data/iris-test-features.csv")))
with open("/outputs/predictions.csv", "w", newline="") as fh:
    out = csv.writer(fh)
    out.writerow(["id", "species"])
    out.writerows([r["id"], "setosa"] for r in rows)
print(f"baseline: {len(rows)} x setosa")
"""


def _data(name: str) -> Path:
    return Path(str(resources.files("reprolab_cli") / "data" / name))


DEMO_MARKER = ".reprolab-demo"


def prepare_demo_dir(data_dir: Path) -> str:
    """Make ``data_dir`` a fresh, marked demo directory; or say why not (then nothing was touched).

    The demo starts from nothing, so it deletes its previous state; but only a directory it made itself
    (the marker file holds the demo's process id) and that no demo is still running from. Anything else,
    e.g. a live platform's data directory given by mistake, is refused rather than wiped."""
    marker = data_dir / DEMO_MARKER
    if data_dir.is_symlink() or (data_dir.exists() and not data_dir.is_dir()):
        return f"{data_dir} is not a directory; choose another --data-dir"
    if data_dir.exists() and any(data_dir.iterdir()):
        # the default demo directory is the demo's by name (it predates the marker)
        if not marker.is_file() and data_dir.resolve() != (DEFAULT_DATA_DIR / "demo").resolve():
            return (f"{data_dir} exists and was not made by `reprolab demo`; it is left alone. Choose an empty or "
                    "new --data-dir (the demo deletes its own previous state only).")
        pid = marker.read_text().strip()
        if pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid)):
            return (f"a demo (process {pid}) is still running from {data_dir}; stop it first or choose another "
                    "--data-dir")
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text(f"{os.getpid()}\n")
    return ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def run_demo(*, data_dir: Path, url: str | None, token: str | None, console: Console,
             keep_running: bool = False) -> int:
    started = time.monotonic()
    with ExitStack() as stack:
        platform = None
        if url is None:
            from .supervisor import Platform

            refusal = prepare_demo_dir(data_dir)
            if refusal:
                console.print(f"[red]{escape(refusal)}[/red]")
                return 2
            # the wheel cache outlives the demo's fresh state, so a second run does not download again
            cache = {"REPROLAB_BUILDER_CACHE_DIR": str((data_dir.parent / "cache").resolve())}
            with console.status("starting NATS, an OCI registry and the five services (SQLite, local store)"):
                platform = stack.enter_context(Platform(data_dir, extra_env=cache))
            url, token = platform.url, platform.admin_token()
            console.print(f"platform up at {url} (data in {data_dir}, logs in {platform.log_dir})")
        if not token:
            console.print("[red]--token is required with --url[/red]")
            return 2
        if platform is not None:
            stack.callback(_tidy, Client(url, token))  # runs before the platform stops (LIFO)
        try:
            tokens = _scenario(Client(url, token), console, started)
        except (ReprolabError, TimeoutError, AssertionError) as exc:
            console.print(f"[red]demo failed:[/red] {escape(str(exc))}")
            if getattr(exc, "hint", ""):
                console.print(f"[yellow]hint:[/yellow] {escape(exc.hint)}")  # type: ignore[union-attr]
            return 1
        # the people sign in to the portal with passwords; the admin's is set only on the demo's own platform
        passwords = _set_passwords(Client(url, token), [*(["admin"] if platform is not None else []), *tokens])
        _goodbye(console, url, {"admin": token, **tokens}, passwords)
        if platform is not None and keep_running:
            console.print(f"The platform keeps running at [bold]{url}/[/bold] until you press Ctrl-C "
                          f"(logs in {platform.log_dir}).")
            _wait_for_ctrl_c(platform, console)
        elif platform is not None:
            console.print("Stopping the demo platform (run `reprolab demo --keep-running` to keep it, or "
                          "`reprolab up` for a lasting one).")
    return 0


def _set_passwords(admin: Client, names: list[str]) -> dict[str, str]:
    """A fresh random password for each demo person (a platform without passwords: none)."""
    passwords: dict[str, str] = {}
    for name in names:
        password = secrets.token_urlsafe(9)
        try:
            admin.request("PUT", f"/users/{name}/password", json={"password": password}, expect=(204,))
        except ReprolabError:
            return {}
        passwords[name] = password
    return passwords


def _goodbye(console: Console, url: str, tokens: dict[str, str], passwords: dict[str, str] | None = None) -> None:
    passwords = passwords or {}
    console.print(f"\n[bold]Portal:[/bold] {url}/  sign in with a username and password (API tokens are for "
                  "scripts and the CLI; the sign-in page takes them too):")
    roles = {"admin": "platform admin", "alice": "instructor of intro-ml", "bob": "student of intro-ml"}
    console.print(f"  {'user':<6} {'role':<23} {'password':<14} API token", highlight=False)
    for name, token in tokens.items():
        # whole passwords and tokens, never wrapped or cut, so they can be copied
        console.print(f"  {name:<6} {roles.get(name, ''):<23} {passwords.get(name, '-'):<14} {token}",
                      soft_wrap=True, highlight=False)
    console.print(f"CLI: export REPROLAB_URL={url} REPROLAB_TOKEN=<token>", soft_wrap=True, highlight=False)


def _wait_for_ctrl_c(platform: Any, console: Console) -> None:
    # SIGTERM too: the services run in their own sessions and would outlive a plain kill of the demo
    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        while all(proc.poll() is None for proc in platform.procs.values()):
            time.sleep(0.5)
        console.print("[red]a service exited; stopping[/red]")
    except KeyboardInterrupt:
        console.print("stopping...")
    finally:
        signal.signal(signal.SIGTERM, previous)


def _step(console: Console, text: str) -> None:
    console.print(f"[bold cyan]>[/bold cyan] {text}")


def _tar_gz(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            tar.addfile(info, io.BytesIO(text.encode()))
    return buf.getvalue()


def _upload(client: Client, console: Console, file: Path, name: str, visibility: str) -> dict:
    with Progress(TextColumn("    {task.description}"), BarColumn(), MofNCompleteColumn(), console=console,
                  transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task(f"uploading {name}", total=file.stat().st_size)
        return client.upload(f"/workspaces/{WS}/datasets", file, {"name": name, "visibility": visibility},
                             progress=lambda n: progress.advance(task, n))


def _build(client: Client, console: Console, env: str, number: int) -> dict:
    """Request a build and follow its live log under a progress bar (the Containerfile's steps)."""
    build = client.post(f"/workspaces/{WS}/environments/{env}/versions/{number}/builds", expect=(202,))
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task(f"    {env} v{number}: locking", total=None)
        for line in client.sse(f"/builds/{build['id']}/logs"):
            step = STEP.match(line)
            if step:
                progress.update(task, total=int(step[2]), completed=int(step[1]) - 1,
                                description=escape(f"    {env} v{number}: step {step[1]}/{step[2]}"))
            if line.startswith(("STEP", "pushed", "build ", "FAILED", "locked", "fetching")) \
                    or "Successfully installed" in line:
                console.print(f"    [dim]{escape(line[:110])}[/dim]", highlight=False, overflow="ellipsis",
                              no_wrap=True)
    build = client.get(f"/builds/{build['id']}")
    assert build["status"] == "succeeded", f"build of {env} v{number} failed: {build['error']}"
    return build


def _submit(client: Client, files: dict[str, str], command: list[str], **body: Any) -> dict:
    code = client.request("POST", f"/workspaces/{WS}/code", content=_tar_gz(files), expect=(201,))
    return client.request("POST", f"/workspaces/{WS}/runs", expect=(202,), json={
        "code": code["digest"], "command": command, "target": "local",
        "resources": {"cpu": "1", "memory": "1Gi", "timeout": 300}, **body})


def _open_session(bob: Client, console: Console, env: str, version: int) -> dict:
    """bob's JupyterLab in his fork's image, through the gateway, ready to open in a browser."""
    _step(console, f"bob opens his fork {env} v{version} in JupyterLab: the same image, his own home folder kept "
                   "between sessions, every cell recorded in the activity log")
    base_url = str(bob.http.base_url).rstrip("/").removesuffix("/api/v1")
    started = time.monotonic()
    session = bob.post(f"/workspaces/{WS}/sessions", json={"environment": env, "version": version}, expect=(201,))
    session = bob.poll(f"/workspaces/{WS}/sessions/{session['id']}", lambda s: s["status"] == "starting", 600, 0.5)
    assert session["status"] == "running", f"session {session['status']}: {session['error']}"
    status = bob.http.get(f"{base_url}/sessions/{session['id']}/api/status")
    assert status.status_code == 200, f"JupyterLab through the gateway: {status.status_code} {status.text[:200]}"
    session["url"] = f"{base_url}/sessions/{session['id']}/lab"
    console.print(f"    ready in {time.monotonic() - started:.1f} s: open [bold]{session['url']}[/bold] (sign in "
                  f"as bob), or the Sessions page {base_url}/w/{WS}/sessions")
    return session


def _tidy(admin: Client) -> None:
    """Stop what the demo started that outlives its services (model servers and notebook servers are
    containers of their own): the demo's platform is about to stop, and nothing would stop them later."""
    try:
        for model in admin.get(f"/workspaces/{WS}/models")["items"]:
            if model["active_version"] is not None or any(v["state"] in ("serving", "deploying")
                                                          for v in model["versions"]):
                admin.request("DELETE", f"/workspaces/{WS}/models/{model['name']}")
        live = [s for s in admin.get(f"/workspaces/{WS}/sessions")["items"]
                if s["status"] not in ("stopped", "failed")]
        for s in live:
            admin.request("DELETE", f"/workspaces/{WS}/sessions/{s['id']}", expect=(200, 202, 204))
        for s in live:
            admin.poll(f"/workspaces/{WS}/sessions/{s['id']}", lambda x: x["status"] not in ("stopped", "failed"),
                       60, 0.5)
    except (ReprolabError, TimeoutError) as exc:
        print(f"could not stop the demo's model and notebook servers: {exc}")


def _serve_and_monitor(bob: Client, console: Console, run: dict) -> dict:
    """Deploy the run's model.joblib in the run's own image, call it with a model API key, send traffic whose
    features are shifted, and show the drift alert the monitoring pass raises."""
    base_url = str(bob.http.base_url).rstrip("/").removesuffix("/api/v1")
    _step(console, "bob deploys his model as a web service (Open Inference Protocol), in his run's own image: "
                   "it predicts with exactly the packages it was trained with")
    started = time.monotonic()
    version = bob.post(f"/workspaces/{WS}/models", expect=(202,),
                       json={"run_id": run["id"], "artifact": "model.joblib", "name": "iris"})
    version = bob.poll(f"/workspaces/{WS}/models/iris/versions/{version['version']}",
                       lambda v: v["state"] == "deploying", 120, 0.3)
    assert version["state"] == "serving", f"model not serving: {version['error']}"
    key = bob.post(f"/workspaces/{WS}/models/iris/keys", expect=(201,), json={"label": "demo app"})
    model = bob.get(f"/workspaces/{WS}/models/iris")
    serve = _http().Client(base_url=base_url.rstrip("/"), timeout=60,
                           headers={"Authorization": f"Bearer {key['secret']}"})
    infer = f"{model['url']}/infer"
    features = [[float(r[c]) for c in ("sepal_length", "sepal_width", "petal_length", "petal_width")]
                for r in csv.DictReader(_data("iris-test-features.csv").open())]

    def predict(rows: list[list[float]]) -> list:
        r = serve.post(infer, json={"inputs": [{"name": "input-0", "shape": [len(rows), 4], "datatype": "FP64",
                                                "data": rows}]})
        assert r.status_code == 200, f"infer: {r.status_code} {r.text}"
        return r.json()["outputs"][0]["data"]

    first = predict(features[:1])
    console.print(f"    {base_url.rstrip('/')}{model['url']} (v{version['version']}, image "
                  f"...{version['image'][-12:]}); first prediction {first} "
                  f"{time.monotonic() - started:.1f} s after 'deploy', with a model API key")
    _step(console, "an app calls it: 30 flowers like the training data, then 40 whose petals are 3 cm longer; "
                   "bob runs the monitoring pass (it also runs every 5 minutes)")
    predict(features)
    predict([[a, b, c + 3, d + 2] for a, b, c, d in (features + features)[:40]])
    serve.close()
    report: dict = {}
    deadline = time.monotonic() + 30
    while not report.get("alerts"):  # the gateway writes collected traffic every 5 s
        assert time.monotonic() < deadline, f"no drift alert after 30 s: {report.get('windows')}"
        time.sleep(1)
        report = bob.post(f"/workspaces/{WS}/models/iris/monitoring")
    last = report["windows"][-1]
    table = Table("feature", "test", "p-value or distance", "drifted", "mean now", "mean in training",
                  title=f"monitoring: {last['count']} predictions in the hour from {last['start'][11:16]} UTC "
                        f"against {report['reference']['dataset']}", title_style="bold")
    now = report["stats"][last["start"]]
    for f in last["drift"]["features"]:
        table.add_row(f["feature"], f["test"], f"{f['score']:.3g}", "yes" if f["drifted"] else "no",
                      f"{now[f['feature']]['mean']:.2f}", f"{report['reference_stats'][f['feature']]['mean']:.2f}")
    console.print(table)
    console.print(f"    [bold red]alert[/bold red]: {report['alerts'][0]['detail']}")
    return model


def _follow_scored(client: Client, console: Console, run: dict, timeout: float = 300) -> dict:
    """Show the run's live output under a spinner, then wait for the evaluation sandbox's score."""
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                  transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task(f"    run {run['id'][:8]}: {run['status']}", total=None)
        for n, line in enumerate(client.sse(f"/runs/{run['id']}/logs")):
            if n == 0:
                progress.update(task, description=f"    run {run['id'][:8]}: running")
            console.print(f"    [dim]{escape(line[:110])}[/dim]", highlight=False)
        run = client.get(f"/runs/{run['id']}")
        progress.update(task, description="    scoring in the evaluation sandbox (hidden labels mounted only there)")
        run = client.poll(f"/runs/{run['id']}", lambda r: r["scoring"] == "pending", timeout, 0.3)
        assert run["scoring"] != "pending", f"run {run['id']} was not scored within {timeout:.0f}s"
    assert run["status"] == "succeeded", f"run {run['status']}: {run['error']}"
    assert run["scoring"] == "scored", f"run not scored: {run['score_error']}"
    return run


def _pull_and_import(console: Console, build: dict, puller: Client) -> None:
    _step(console, "the image works anywhere: bob pulls it (his username and API token sign him in to the "
          "registry) and imports scikit-learn in it, with no network")
    engine = shutil.which("podman") or shutil.which("docker")
    assert engine, "no container engine (podman or docker) to run the image: run `make container-deps`"
    pulled = pull_image(puller, engine, build["pull"], quiet=True)
    assert pulled.returncode == 0, pulled.stderr
    ran = subprocess.run([engine, "run", "--rm", "--network=none", build["pull"], "python3", "-c",
                          "import sklearn, pandas; print(sklearn.__version__, pandas.__version__)"],
                         capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    sk, pd = ran.stdout.split()
    console.print(f"    scikit-learn {sk} and pandas {pd} import inside the image")


def _scenario(admin: Client, console: Console, started: float) -> dict[str, str]:
    """The story; returns the tokens of the people it created."""
    _step(console, "admin creates an instructor (alice) and a student (bob)")
    tokens = {name: admin.post("/users", json={"username": name})["token"] for name in ("alice", "bob")}
    alice, bob = admin.as_user(tokens["alice"]), admin.as_user(tokens["bob"])

    # the platform admin creates the course (and so is its admin): alice is its instructor, as the portal says
    _step(console, f"admin creates the course 'Intro to ML' ({WS}) with alice as its instructor; alice adds bob "
          "as a student")
    admin.post("/workspaces", json={"slug": WS, "title": "Intro to ML"})
    admin.post(f"/workspaces/{WS}/members", json={"username": "alice", "role": "instructor"})
    alice.post(f"/workspaces/{WS}/members", json={"username": "bob", "role": "student"})
    role = alice.get(f"/workspaces/{WS}")["caller_role"]
    assert role == "instructor", f"alice is {role!r} of {WS}, not its instructor"

    _step(console, "alice uploads the Iris data: training split and test features public, test labels hidden")
    train = _upload(alice, console, _data("iris-train.csv"), "iris-train.csv", "public")
    features = _upload(alice, console, _data("iris-test-features.csv"), "iris-test-features.csv", "public")
    labels = _upload(alice, console, _data("iris-test-labels.csv"), "iris-test-labels.csv", "hidden")
    expected = "sha256:" + hashlib.sha256(_data("iris-train.csv").read_bytes()).hexdigest()
    assert train["digest"] == expected, f"upload digest {train['digest']} != {expected}"
    for d in (train, features, labels):
        console.print(f"    {d['name']:<24} {d['visibility']:<7} {d['size']:>5} bytes  {d['digest'][:19]}...")

    _step(console, "alice declares environment 'iris' in YAML (python 3.11, pandas, scikit-learn, the data)")
    spec_yaml = SPEC_YAML.format(train=train["digest"], base=BASE)
    env = alice.post(f"/workspaces/{WS}/environments", content=spec_yaml, headers={"Content-Type": "application/yaml"})
    v1 = env["latest"]
    spec = yaml.safe_load(spec_yaml)["spec"]
    spec["python"]["requirements"].append("matplotlib>=3.8")
    _step(console, "alice adds matplotlib (v2), then rolls back to v1 (v3: history is kept)")
    alice.post(f"/workspaces/{WS}/environments/iris/versions", json={"spec": spec, "note": "add matplotlib"})
    v3 = alice.post(f"/workspaces/{WS}/environments/iris/versions", json={"rollback_to": 1})
    assert v3["spec_digest"] == v1["spec_digest"], "rollback must reproduce v1's spec"

    _step(console, "alice builds v1 into an OCI image (locked, hashed wheels, offline install); live log:")
    build = _build(alice, console, "iris", 1)
    console.print(f"    image: [bold]{build['pull']}[/bold]")
    again = alice.post(f"/workspaces/{WS}/environments/iris/versions/3/builds", expect=(202,))
    assert again["id"] == build["id"], "the rollback should reuse v1's image"
    console.print("    v3 (the rollback) has v1's lock, so it gets the same image without building")
    _pull_and_import(console, build, bob)

    _step(console, "alice creates assignment 'iris': an evaluation script scores predictions.csv against the "
                   "hidden labels (accuracy)")
    evaluation = alice.request("POST", f"/workspaces/{WS}/code", content=_tar_gz({"evaluate.py": EVALUATE_PY}),
                               expect=(201,))
    alice.post(f"/workspaces/{WS}/assignments", json={
        "name": "iris", "title": "Classify the Iris test flowers", "environment": "iris", "version": 1,
        "evaluation_code": evaluation["digest"], "labels": "iris-test-labels.csv", "predictions": "predictions.csv",
        "metric": "accuracy", "higher_is_better": True,
        # how the course runs it (issue 17): instructions, a due date a week from now, a late penalty, a limit
        "instructions": "Train on `iris-train.csv`, predict the species of each row of `iris-test-features.csv` "
                        "and write `/outputs/predictions.csv` (id, species).",
        "due_at": (datetime.now(UTC) + timedelta(days=7)).isoformat().replace("+00:00", "Z"),
        "late_policy": "penalty", "late_penalty_percent": 10, "daily_limit": 5})
    console.print("    due in a week (late submissions lose 10 %), at most 5 submissions a day per student")
    # alice's baseline runs while bob works on his fork
    baseline = _submit(alice, {"baseline.py": BASELINE_PY}, ["python3", "baseline.py"], assignment="iris",
                       datasets=["iris-test-features.csv"])
    console.print("    alice submits a baseline (every flower is a setosa) for the leaderboard")

    _step(console, "bob may not change the course environment (403) nor see the hidden test labels (404)")
    try:
        bob.post(f"/workspaces/{WS}/environments", json={"name": "mine", "spec": spec})
        raise AssertionError("a student was allowed to create a workspace environment")
    except ApiError as exc:
        assert exc.status == 403, exc
        console.print(f"    refused as expected: {exc.problem.get('detail')}")
    try:
        bob.get(f"/workspaces/{WS}/datasets/{labels['digest']}")
        raise AssertionError("a student could see a hidden dataset")
    except ApiError as exc:
        assert exc.status == 404, exc

    _step(console, f"bob forks 'iris' into his own 'iris-bob', adds {EXTRA_PACKAGE} and builds it "
                   "(FROM the course image: only the new package is installed)")
    fork = bob.post(f"/workspaces/{WS}/environments/iris/fork", json={"name": "iris-bob", "version": 1})
    # the fork's v1 has the course's lock: its build joins the course image at once
    joined = bob.post(f"/workspaces/{WS}/environments/{fork['name']}/versions/1/builds", expect=(202,))
    joined = bob.poll(f"/builds/{joined['id']}", lambda b: b["status"] in ("queued", "running"), 120, 0.2)
    assert joined["status"] == "succeeded", f"build {joined['id']} {joined['status']}: {joined['error']}"
    assert joined["image_digest"] == build["image_digest"], "the fork's v1 was rebuilt"
    fork_spec = yaml.safe_load(spec_yaml)["spec"]
    fork_spec["python"]["requirements"].append(EXTRA_PACKAGE)
    added = bob.post(f"/workspaces/{WS}/environments/{fork['name']}/versions",
                     json={"spec": fork_spec, "note": f"add {EXTRA_PACKAGE}"})
    fork_build = _build(bob, console, fork["name"], added["number"])
    console.print(f"    image: [bold]{fork_build['pull']}[/bold]")

    _step(console, "bob trains a model on this machine (target local) in his fork's image: no network, "
                   "non-root, read-only, limited; it writes /outputs/predictions.csv for the assignment")
    run = _submit(bob, {"train.py": TRAIN_PY}, ["python3", "train.py"], environment=fork["name"],
                  version=added["number"], assignment="iris", datasets=["iris-train.csv", "iris-test-features.csv"])
    run = _follow_scored(bob, console, run)
    console.print(f"    metrics: {run['metrics']}; accuracy on the hidden labels: [bold]{run['score']}[/bold]")
    data = ", ".join(d[:19] + "..." for d in run["provenance"]["datasets"])
    console.print(f"    provenance pins image {run['provenance']['image'][-19:]}..., "
                  f"code {run['code_digest'][:19]}..., data {data}")
    base_run = alice.poll(f"/runs/{baseline['id']}", lambda r: r["status"] in ("queued", "running")
                          or r.get("scoring") == "pending", 300, 0.3)
    assert base_run["scoring"] == "scored", f"baseline not scored: {base_run['score_error']}"
    assert float(run["score"]) > float(base_run["score"]), (run["score"], base_run["score"])

    board = bob.get(f"/workspaces/{WS}/assignments/iris/leaderboard")
    table = Table("rank", "student", board["metric"], "run", "scored at", title="leaderboard: iris",
                  title_style="bold")
    for row in board["rows"]:
        table.add_row(str(row["rank"]), row["username"], row["score"], row["run_id"][:8],
                      (row["scored_at"] or "")[:19].replace("T", " "))
    console.print(table)
    assert [r["username"] for r in board["rows"]] == ["bob", "alice"], board

    model = _serve_and_monitor(bob, console, run)

    _step(console, "alice exports the gradebook of 'iris' (CSV): each student's best submission, its time, "
                   "late flag and score")
    alice.post(f"/workspaces/{WS}/assignments/iris/submissions/{run['id']}/feedback",
               json={"text": "Nice model; only you can read this, bob."})
    exported = alice.http.get(f"/workspaces/{WS}/assignments/iris/gradebook.csv")
    exported.raise_for_status()
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    table = Table("student", "score", "submitted", "late", "submissions", title="gradebook: iris (CSV)",
                  title_style="bold")
    for row in rows:
        table.add_row(row["username"], row["final_score"], row["submitted_at"][:19].replace("T", " "), row["late"],
                      row["submissions"])
    console.print(table)
    assert {r["username"] for r in rows} == {"bob", "alice"}, rows
    assert bob.get(f"/workspaces/{WS}/assignments/iris/gradebook")["rows"][0]["feedback"], "bob's feedback"

    _step(console, "bob downloads the training data to work on it at home (digest checked)")
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

    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(tmp) / "activity.jsonl"
        # events reach the audit log asynchronously: wait for the last ones of the story
        deadline = time.monotonic() + 30
        while True:
            alice.download(f"/workspaces/{WS}/activity/export", bundle)
            text = bundle.read_text()
            if ('"dataset.downloaded"' in text and text.count('"run.scored"') >= 2
                    and '"model.drift_alert"' in text):
                break
            assert time.monotonic() < deadline, "the activity log lacks the story's last events after 30s"
            time.sleep(0.3)
        result = verify_bundle(bundle)
        _step(console, f"the activity log holds {result.entries} entries; alice exports it and it verifies "
                       "offline")
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

        lines = text.splitlines()
        idx = next(i for i, line in enumerate(lines) if '"dataset.downloaded"' in line)
        lines[idx] = lines[idx].replace('"bob"', '"alice"', 1)
        tampered = Path(tmp) / "tampered.jsonl"
        tampered.write_text("\n".join(lines) + "\n")
        bad = verify_bundle(tampered)
        assert not bad.ok, "a tampered bundle verified"
        console.print(f"    a copy that blames alice for bob's download fails: {bad.reason}")

    session = _open_session(bob, console, fork["name"], added["number"])
    console.print(f"[bold green]demo passed[/bold green] in {time.monotonic() - started:.1f}s: course {WS}, "
                  f"{len(versions)} versions of iris (v3 rolled back to v1) built into one image, bob's fork "
                  f"{fork['name']} built on it, his run scored {run['score']} (baseline {base_run['score']}), "
                  f"his model served at {model['url']} with a drift alert, "
                  f"{result.entries} activity entries exported and verified; bob's JupyterLab is open at "
                  f"{session['url']}")
    return tokens
